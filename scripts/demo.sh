#!/usr/bin/env bash
# The demo grows with the project: for now it shows the binary and its command tree.
set -eu
cd "$(dirname "$0")/.."
echo "+ ./lite-raft --version"; ./lite-raft --version
echo "+ ./lite-raft --help";    ./lite-raft --help
