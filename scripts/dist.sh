#!/usr/bin/env bash
# Cross-builds the static binary for every platform the original ran on that Go supports.
set -eu
ldflags=$1
GO=${GO:-go}
cd "$(dirname "$0")/.."
mkdir -p dist
# scripts/platforms: the one list, shared with make package
for target in $(cat scripts/platforms); do
	os=${target%/*} arch=${target#*/}
	out=dist/lite-raft-$os-$arch
	if CGO_ENABLED=0 GOOS=$os GOARCH=$arch "$GO" build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/lite-raft; then
		echo "built $out"
	else
		echo "dist: $target failed" >&2
		exit 1
	fi
done
