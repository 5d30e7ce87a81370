#!/usr/bin/env bash
# Runs every test verbosely into a log and prints only the lines a person reads: package
# results, failures and the one-line summaries of the simulator and checkers. On failure the
# tail of the log follows, so CI shows what broke.
set -u
GO=${GO:-go}
cd "$(dirname "$0")/.."
log=$(mktemp "${TMPDIR:-/tmp}/lite-raft-test.XXXXXX")
trap 'rm -f "$log"' EXIT
"$GO" vet ./... || exit 1
"$GO" test -v -count=1 -timeout 20m ./... >"$log" 2>&1
rc=$?
# bench/etcdload, the etcd side of `make bench`, is a module of its own (lite-raft does
# not depend on etcd's client)
if [ $rc -eq 0 ]; then
	(cd bench/etcdload && "$GO" vet ./... && "$GO" test -v -count=1 ./...) >>"$log" 2>&1
	rc=$?
fi
# the packages whose goroutines share state, again under the race detector
# (the race detector needs cgo, which the build itself does without)
if [ $rc -eq 0 ]; then
	if command -v gcc >/dev/null 2>&1 || command -v cc >/dev/null 2>&1; then
		echo "--- race detector: agent, client, sshrpc (incl. real sshd), kvstore, failover, guard" >>"$log"
		CGO_ENABLED=1 "$GO" test -race -count=1 -timeout 10m ./agent/ ./client/ ./sshrpc/ ./kvstore/ ./failover/ ./internal/guard/ >>"$log" 2>&1
		rc=$?
	else
		echo "--- race detector skipped: no C compiler for cgo" >>"$log"
	fi
fi
grep -E '^(ok|FAIL|--- FAIL|--- race|panic:|go: |WARNING: DATA RACE|sim:|agentsim:|history:|locks:|powercut:|group commit:)' "$log"
if [ $rc -ne 0 ]; then
	# what the failing tests said: the lines before each failure, then the log's end
	# every line a test logged (t.Log, t.Fatal), with the failures; not the dumps between
	if grep -q 'WARNING: DATA RACE' "$log"; then
		echo "---- race reports ----"
		grep -A 45 'WARNING: DATA RACE' "$log" | head -n 200
	fi
	echo "---- what the tests said ----"
	grep -E '^\s+\S+_test\.go:[0-9]+: |^\s*--- FAIL|^panic:|^FAIL\s' "$log" | head -n 400
	echo "---- last 60 lines of the test log ----"
	tail -n 60 "$log"
fi
exit $rc
