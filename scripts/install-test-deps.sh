#!/usr/bin/env bash
# Installs the system packages that the end-to-end tests need (a real OpenSSH sshd per
# simulated host, network namespaces, packet filters, arping and ping for floating addresses,
# fusermount3 for internal/lazyfs's power-cut file system). Only root can; anyone else is told
# what is missing and the tests that need it skip (or fail under CI=true).
set -u
missing=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing+=(iproute2)
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || missing+=(iptables)
# the pkg tests move a floating address: duplicate-address probe, gratuitous ARP, ping
command -v arping >/dev/null 2>&1 || [ -x /usr/sbin/arping ] || missing+=(iputils-arping)
command -v ping >/dev/null 2>&1 || [ -x /bin/ping ] || missing+=(iputils-ping)
# internal/lazyfs mounts FUSE: root with mount(2), anyone else through fusermount3
command -v fusermount3 >/dev/null 2>&1 || [ -x /bin/fusermount3 ] || missing+=(fuse3)
# the boot entries' test checks the Solaris SMF manifests; the man pages' renders them
command -v xmllint >/dev/null 2>&1 || missing+=(libxml2-utils)
command -v man >/dev/null 2>&1 || missing+=(man-db)
# the package test lists the .rpm that make package builds (rpm -qpl)
command -v rpm >/dev/null 2>&1 || missing+=(rpm)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-test-deps: not root, cannot install: ${missing[*]} (end-to-end tests will skip)" >&2
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-test-deps: no apt-get here; please install: ${missing[*]}" >&2
	exit 0
fi
echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
