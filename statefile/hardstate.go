package statefile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"lite-raft/raftcore"
)

// The hard state file is plain text so that `cat state/current` answers "which term, whom
// did it vote for":
//
//	term 7
//	vote host2
//
// An empty vote is written as "vote -".

func encodeHardState(hs raftcore.HardState) []byte {
	vote := string(hs.Vote)
	if vote == "" {
		vote = "-"
	}
	return []byte(fmt.Sprintf("term %d\nvote %s\n", hs.Term, vote))
}

func decodeHardState(data []byte) (raftcore.HardState, error) {
	var hs raftcore.HardState
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		key, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || seen[key] {
			return hs, fmt.Errorf("line %d: want \"term N\" and \"vote NAME\" once each", line)
		}
		seen[key] = true
		switch key {
		case "term":
			t, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return hs, fmt.Errorf("line %d: term %q is not a number", line, val)
			}
			hs.Term = t
		case "vote":
			if val != "-" {
				if err := raftcore.ValidateID(raftcore.NodeID(val)); err != nil {
					return hs, fmt.Errorf("line %d: vote: %w", line, err)
				}
				hs.Vote = raftcore.NodeID(val)
			}
		default:
			return hs, fmt.Errorf("line %d: unknown key %q", line, key)
		}
	}
	if err := sc.Err(); err != nil {
		return hs, fmt.Errorf("line %d: %w", line+1, err)
	}
	if !seen["term"] || !seen["vote"] {
		return hs, errors.New("want both \"term N\" and \"vote NAME\"")
	}
	return hs, nil
}

func loadHardState(path string) (raftcore.HardState, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return raftcore.HardState{}, nil
	}
	if err != nil {
		return raftcore.HardState{}, fmt.Errorf("read %s: %w", path, err)
	}
	hs, err := decodeHardState(data)
	if err != nil {
		return hs, fmt.Errorf("%s: %w", path, err)
	}
	return hs, nil
}
