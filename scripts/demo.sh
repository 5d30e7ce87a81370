#!/usr/bin/env bash
# make demo: a one-host cluster (no ssh needed) in ./demo, driven like the original's
# tutorial, each command shown before its output.
set -u
cd "$(dirname "$0")/.."
demo=demo
[ -x "$demo/lite-raft" ] && "$demo/lite-raft" stop >/dev/null 2>&1
rm -rf "$demo"
mkdir -p "$demo/conf"
cp lite-raft "$demo/" && ln -sf lite-raft "$demo/lite-raft-client"
cp conf/election_timeout conf/snapshot_period "$demo/conf/"
echo 0.5 > "$demo/conf/election_timeout"   # a quick demo
cd "$demo"
run() {
	echo "\$ $*"
	"$@"
	echo "  (exit $?)"
}
run ./lite-raft first-boot
run ./lite-raft-client set packages/web/owner host1
run ./lite-raft-client set counter 1
run ./lite-raft-client get packages/web/owner
run ./lite-raft-client if counter = 1 set 2
run ./lite-raft-client if counter = 1 set 3
run ./lite-raft-client if counter -lt 5 set 2
run ./lite-raft-client if missing = 1 set 2
run ./lite-raft-client set t -5
run ./lite-raft-client list
run ./lite-raft-client list packages
run ./lite-raft-client get nothing-here
run ./lite-raft-client status
run ./lite-raft debug --last 5
run ./lite-raft stop
run ./lite-raft-client get counter
