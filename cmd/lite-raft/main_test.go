package main

import (
	"os"
	"testing"
)

// TestMain lets a test run this binary's main as a program of its own (a COMMAND that
// calls lite-raft, say): the test binary, started with LITE_RAFT_TEST_AS_MAIN=1, is
// lite-raft (asMain gives the command line that does so). The lock's guard is this
// binary started as `lite-raft lock-guard ...` (os.Executable): that is main too.
func TestMain(m *testing.M) {
	if os.Getenv("LITE_RAFT_TEST_AS_MAIN") == "1" || (len(os.Args) > 1 && os.Args[1] == "lock-guard") {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// asMain is the shell words that run lite-raft in a script of a test.
func asMain(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return "LITE_RAFT_TEST_AS_MAIN=1 " + exe
}
