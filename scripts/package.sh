#!/usr/bin/env bash
# make package: for each platform of make dist, a tarball of the whole lite-raft directory
# (what a sysadmin copies to the same path on every host); for Linux also a .deb and an
# .rpm that install that directory at /opt/lite-raft; then SHA256SUMS over what it made.
#
# Environment: VERSION (default: git describe), PLATFORMS (default: scripts/platforms,
# the list make dist builds), DIST (output folder, default dist/), GO, MAINTAINER.
# nfpm runs from tools/nfpm, a module of its own pinned there: lite-raft never links it.
set -euo pipefail
GO=${GO:-go}
cd "$(dirname "$0")/.."
root=$PWD
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
PLATFORMS=${PLATFORMS:-$(cat scripts/platforms)}
DIST=${DIST:-dist}
MAINTAINER=${MAINTAINER:-$(git log -1 --format='%an <%ae>' 2>/dev/null || echo 'lite-raft maintainers <root@localhost>')}
# what lands in -ldflags and in file names, unquoted
if ! [[ $VERSION =~ ^[A-Za-z0-9][A-Za-z0-9._+~-]*$ ]]; then
	echo "package: VERSION '$VERSION': use letters, digits and . _ + ~ - only" >&2
	exit 2
fi

# pkg_version turns git describe's output into a version dpkg and rpm both accept and
# order: a digit first and below any release when there is no tag (0.0.0~gitHASH: a bare
# hash such as 771d672 would otherwise sort by its hex digits), and no hyphen (dpkg would
# read the rest as a revision, rpm refuses it): the first becomes + (commits after a tag
# sort above it), later ones (-dirty) become .
pkg_version() {
	local v=${1#v} head
	head=$(git rev-parse HEAD 2>/dev/null || true)
	if [ ${#v} -ge 7 ] && [ -n "$head" ] && [[ $head == "${1%-dirty}"* ]]; then
		v=0.0.0~git$1
	fi
	case $v in
	[0-9]*) ;;
	*) v=0.0.0~git$v ;;
	esac
	v=${v/-/+}
	v=${v//-/.}
	printf '%s\n' "${v//_/.}"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/lite-raft-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$DIST"
DIST=$(cd "$DIST" && pwd)
made=()

build() { # GOOS GOARCH OUT
	CGO_ENABLED=0 GOOS=$1 GOARCH=$2 "$GO" build -trimpath -tags=urfave_cli_no_docs \
		-ldflags "-s -w -X main.Version=$VERSION" -o "$3" ./cmd/lite-raft ||
		{ echo "package: building for $1/$2 failed" >&2; return 1; }
}

# lay_out writes the lite-raft directory as make build leaves it, plus what a host needs
# beside it (units, boot scripts, logrotate, docs).
lay_out() { # BINARY DIR
	local bin=$1 d=$2
	mkdir -p "$d/pkg/control-scripts" "$d/pkg/conf" "$d/conf" "$d/scripts"
	install -m 0755 "$bin" "$d/lite-raft"
	ln -s lite-raft "$d/lite-raft-client"
	ln -s lite-raft "$d/lite-raft-remote"
	install -m 0755 "$bin" "$d/pkg/lite-raft"
	ln -s lite-raft "$d/pkg/lite-raft-remote"
	ln -s lite-raft "$d/pkg/pkg"
	install -m 0755 scripts/control-script-template "$d/pkg/control-scripts/template"
	# the defaults only: conf/cluster_nodes is the agent's to write
	install -m 0644 conf/election_timeout conf/snapshot_period "$d/conf/"
	install -m 0644 "${units[@]}" "$d/scripts/"
	cp -R scripts/boot scripts/logrotate "$d/scripts/"
	cp -R "$work/docs/man" "$work/docs/completion" "$d/"
	install -m 0644 README.md "$d/"
	cp -R docs "$d/"
}

# nfpm_config prints nfpm's configuration: every file, link and folder of the staged
# directory at /opt/lite-raft (conf/ as config files a user's edit survives), then the
# system's copies of the units, logrotate file, man pages and completions.
nfpm_config() { # STAGE ARCH
	local stage=$1 arch=$2 rel u m
	cat <<EOF
name: lite-raft
arch: $arch
platform: linux
version: "$pkgver"
version_schema: none
release: "1"
section: admin
priority: optional
maintainer: "$MAINTAINER"
license: "unspecified"
description: |-
  Raft cluster agent for sysadmins, talking to its peers over ssh.
  Installs the lite-raft directory at /opt/lite-raft (the same path on every host),
  its systemd units, logrotate file, man pages and completions. Nothing is started:
  first-boot the cluster by hand, then systemctl enable --now lite-raft@USER.
scripts:
  postinstall: "$root/scripts/package/postinst"
  postremove: "$root/scripts/package/postrm"
overrides:
  deb:
    depends: [openssh-client]
  rpm:
    depends: [openssh-clients]
contents:
EOF
	while IFS= read -r rel; do
		if [ -L "$stage/$rel" ]; then
			printf -- '- src: "%s"\n  dst: "/opt/lite-raft/%s"\n  type: symlink\n' "$(readlink "$stage/$rel")" "$rel"
		elif [ -d "$stage/$rel" ]; then
			printf -- '- dst: "/opt/lite-raft/%s"\n  type: dir\n' "$rel"
		elif [[ $rel == conf/* ]]; then
			printf -- '- src: "%s"\n  dst: "/opt/lite-raft/%s"\n  type: config|noreplace\n' "$stage/$rel" "$rel"
		else
			printf -- '- src: "%s"\n  dst: "/opt/lite-raft/%s"\n' "$stage/$rel" "$rel"
		fi
	done < <(cd "$stage" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort)
	for u in "${units[@]}"; do
		printf -- '- src: "%s"\n  dst: "/usr/lib/systemd/system/%s"\n' "$root/$u" "${u##*/}"
	done
	printf -- '- src: "%s"\n  dst: /etc/logrotate.d/lite-raft\n  type: config|noreplace\n' "$root/scripts/logrotate/lite-raft"
	for m in "$work/man1"/*.gz; do
		printf -- '- src: "%s"\n  dst: "/usr/share/man/man1/%s"\n' "$m" "${m##*/}"
	done
	printf -- '- src: "%s"\n  dst: /usr/share/bash-completion/completions/lite-raft\n' "$work/docs/completion/lite-raft.bash"
	# bash-completion loads a command's file by its name; the one file completes all three
	for m in lite-raft-client lite-raft-remote; do
		printf -- '- src: lite-raft\n  dst: /usr/share/bash-completion/completions/%s\n  type: symlink\n' "$m"
	done
	printf -- '- src: "%s"\n  dst: /usr/share/zsh/vendor-completions/_lite-raft\n' "$work/docs/completion/_lite-raft"
}

nfpm() {
	"$GO" -C "$root/tools/nfpm" tool nfpm "$@"
}

linux_packages() { # STAGE ARCH
	local stage=$1 arch=$2 rpmarch
	case $arch in
	amd64) rpmarch=x86_64 ;;
	arm64) rpmarch=aarch64 ;;
	*) rpmarch=$arch ;;
	esac
	nfpm_config "$stage" "$arch" >"$work/nfpm-$arch.yaml"
	local deb="lite-raft_${pkgver}-1_${arch}.deb" rpm="lite-raft-${pkgver}-1.${rpmarch}.rpm"
	nfpm package -f "$work/nfpm-$arch.yaml" -p deb -t "$DIST/$deb" >/dev/null ||
		{ echo "package: nfpm deb for linux/$arch failed" >&2; return 1; }
	nfpm package -f "$work/nfpm-$arch.yaml" -p rpm -t "$DIST/$rpm" >/dev/null ||
		{ echo "package: nfpm rpm for linux/$arch failed" >&2; return 1; }
	made+=("$deb" "$rpm")
}

pkgver=$(pkg_version "$VERSION")
shopt -s nullglob
# every unit scripts/ holds (the agent's, the package monitor's, the metrics timer's)
units=(scripts/*.service scripts/*.timer)
shopt -u nullglob

# the docs come from the binary that runs here: they are the same for every platform
hostos=$("$GO" env GOHOSTOS)
hostarch=$("$GO" env GOHOSTARCH)
build "$hostos" "$hostarch" "$work/host/lite-raft"
"$work/host/lite-raft" gen-docs "$work/docs"
mkdir -p "$work/man1"
for m in "$work/docs/man/man1"/*.1; do
	gzip -9n -c "$m" >"$work/man1/${m##*/}.gz"
done

for target in $PLATFORMS; do
	os=${target%/*} arch=${target#*/}
	bin=$work/host/lite-raft
	if [ "$os/$arch" != "$hostos/$hostarch" ]; then
		bin=$work/bin-$os-$arch/lite-raft
		build "$os" "$arch" "$bin"
	fi
	stage=$work/stage-$os-$arch
	lay_out "$bin" "$stage/lite-raft"
	tarball="lite-raft-$VERSION-$os-$arch.tar.gz"
	tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner -czf "$DIST/$tarball" lite-raft
	made+=("$tarball")
	if [ "$os" = linux ]; then
		linux_packages "$stage/lite-raft" "$arch"
	fi
done

(cd "$DIST" && sha256sum -- "${made[@]}" >SHA256SUMS)
for f in "${made[@]}" SHA256SUMS; do
	echo "package: $DIST/$f"
done
