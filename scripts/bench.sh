#!/usr/bin/env bash
# make bench: lite-raft on a three-host harness cluster against etcd (Debian's
# etcd-server, three members on loopback), the same workloads in one run, and the ratios.
# Needs root (network namespaces, sshd). ETCD=no runs lite-raft alone; DURATION sets each
# workload's length; ONLY=scale (or another comma-separated list) runs only those
# workloads (ONLY=wan: the WAN section, lite-raft and etcd 50 and 100 ms apart, then
# SOAK_WAN=5m of e2e's TestSoakWAN, 0 skips it; ONLY=batch: lite-raft-client batch against
# a loop of single calls, beside etcdctl put in a loop and etcd's Go client pipelined);
# SCALE_KEYS and SCALE_DURATION size the scale workload; BENCH_ARGS passes more flags to
# clusterbench (see its -help).
set -eu
GO=${GO:-go}
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lite-raft-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
args=(--lite-raft . --duration "${DURATION:-10s}" --json "${BENCH_JSON:-bench-results.json}"
	--scale-keys "${SCALE_KEYS:-500000}" --scale-duration "${SCALE_DURATION:-30s}"
	--soak-wan "${SOAK_WAN:-5m}" --go "$GO")
if [ -n "${ONLY:-}" ]; then
	args+=(--only "$ONLY")
fi
if [ "${ETCD:-yes}" != no ]; then
	if ! command -v etcd >/dev/null 2>&1; then
		if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
			echo "bench: installing etcd-server (Debian) for the comparison"
			# the package's own service would take etcd's default ports; it is stopped
			# where systemd runs, and clusterbench uses ports 23791-23803 anyway
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >/dev/null ||
				{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >/dev/null; }
			systemctl stop etcd >/dev/null 2>&1 || true
		else
			echo "bench: etcd is not installed (apt-get install etcd-server), and I cannot install it; ETCD=no skips the comparison" >&2
			exit 1
		fi
	fi
	# the WAN section times etcdctl from a host outside the cluster, the batch workload a
	# loop of etcdctl put (Debian's etcd-client)
	if ! command -v etcdctl >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "bench: installing etcd-client (Debian) for etcdctl"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-client >/dev/null ||
			{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-client >/dev/null; } ||
			echo "bench: etcd-client could not be installed: the WAN section times lite-raft-remote alone, the batch workload skips etcdctl's loop" >&2
	fi
	if command -v etcdctl >/dev/null 2>&1; then
		args+=(--etcdctl "$(command -v etcdctl)")
	fi
	(cd bench/etcdload && CGO_ENABLED=0 "$GO" build -o "$tmp/etcdload" .)
	args+=(--etcd "$(command -v etcd)" --etcdload "$tmp/etcdload")
fi
"$GO" build -o "$tmp/clusterbench" ./bench/clusterbench
"$tmp/clusterbench" "${args[@]}" ${BENCH_ARGS:-}
