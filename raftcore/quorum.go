package raftcore

import (
	"fmt"
	"slices"
	"strings"
)

// Membership is a cluster configuration. Outgoing is non-empty only in the joint phase
// C_old,new: then every decision needs a majority of Voters and a majority of Outgoing.
// Learners receive the log but neither vote nor count toward a quorum.
type Membership struct {
	Voters   []NodeID
	Outgoing []NodeID
	Learners []NodeID
}

// Joint reports whether m is a joint configuration.
func (m Membership) Joint() bool { return len(m.Outgoing) > 0 }

// IsVoter reports whether id votes in m (in either half of a joint configuration).
func (m Membership) IsVoter(id NodeID) bool {
	return slices.Contains(m.Voters, id) || slices.Contains(m.Outgoing, id)
}

// Contains reports whether id is a member in any role.
func (m Membership) Contains(id NodeID) bool {
	return m.IsVoter(id) || slices.Contains(m.Learners, id)
}

// All returns every member once, sorted.
func (m Membership) All() []NodeID {
	all := make([]NodeID, 0, len(m.Voters)+len(m.Outgoing)+len(m.Learners))
	all = append(all, m.Voters...)
	all = append(all, m.Outgoing...)
	all = append(all, m.Learners...)
	slices.Sort(all)
	return slices.Compact(all)
}

func (m Membership) clone() Membership {
	return Membership{Voters: slices.Clone(m.Voters), Outgoing: slices.Clone(m.Outgoing), Learners: slices.Clone(m.Learners)}
}

// Equal compares two memberships as sets.
func (m Membership) Equal(o Membership) bool {
	return sameSet(m.Voters, o.Voters) && sameSet(m.Outgoing, o.Outgoing) && sameSet(m.Learners, o.Learners)
}

func sameSet(a, b []NodeID) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func (m Membership) String() string {
	return string(EncodeMembership(m))
}

// EncodeMembership renders m as one readable line, e.g.
// "voters=a,b,c outgoing= learners=d", so `lite-raft debug` can print it as it is.
func EncodeMembership(m Membership) []byte {
	var b strings.Builder
	for i, part := range []struct {
		name string
		ids  []NodeID
	}{{"voters", m.Voters}, {"outgoing", m.Outgoing}, {"learners", m.Learners}} {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(part.name)
		b.WriteByte('=')
		ids := slices.Clone(part.ids)
		slices.Sort(ids)
		for j, id := range ids {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(string(id))
		}
	}
	return []byte(b.String())
}

// DecodeMembership parses EncodeMembership's output and validates it.
func DecodeMembership(data []byte) (Membership, error) {
	var m Membership
	fields := strings.Split(string(data), " ")
	if len(fields) != 3 {
		return m, fmt.Errorf("membership %q: want 3 fields, got %d", data, len(fields))
	}
	for i, want := range []string{"voters", "outgoing", "learners"} {
		name, list, ok := strings.Cut(fields[i], "=")
		if !ok || name != want {
			return m, fmt.Errorf("membership %q: field %d should be %s=", data, i+1, want)
		}
		var ids []NodeID
		if list != "" {
			for _, s := range strings.Split(list, ",") {
				ids = append(ids, NodeID(s))
			}
		}
		switch i {
		case 0:
			m.Voters = ids
		case 1:
			m.Outgoing = ids
		case 2:
			m.Learners = ids
		}
	}
	if err := m.Validate(); err != nil {
		return Membership{}, err
	}
	return m, nil
}

// ValidateID checks that id can be a member name: a host name or ssh_config alias.
func ValidateID(id NodeID) error {
	if id == None {
		return fmt.Errorf("empty member name")
	}
	if len(id) > 255 {
		return fmt.Errorf("member name %.20q...: longer than 255 bytes", id)
	}
	if id[0] == '-' {
		// "-" is "no vote" in state/current, and a leading dash reads as an option
		return fmt.Errorf("member name %q: must not start with '-'", id)
	}
	for _, c := range []byte(id) {
		if c <= ' ' || c >= 0x7f || c == ',' || c == '=' || c == ';' {
			return fmt.Errorf("member name %q: character %q is not allowed", id, c)
		}
	}
	return nil
}

// Validate checks names and that no set repeats a member or mixes voters and learners.
func (m Membership) Validate() error {
	for _, set := range [][]NodeID{m.Voters, m.Outgoing, m.Learners} {
		for i, id := range set {
			if err := ValidateID(id); err != nil {
				return err
			}
			if slices.Contains(set[:i], id) {
				return fmt.Errorf("member %q listed twice", id)
			}
		}
	}
	for _, id := range m.Learners {
		if slices.Contains(m.Voters, id) {
			return fmt.Errorf("member %q is both voter and learner", id)
		}
	}
	if len(m.Voters) == 0 && m.Joint() {
		return fmt.Errorf("joint membership without incoming voters")
	}
	return nil
}

// majorityValue returns the largest v such that a majority of ids have value ≥ v.
// An empty set imposes no constraint, so it returns the maximum.
func majorityValue(ids []NodeID, value func(NodeID) uint64) uint64 {
	if len(ids) == 0 {
		return ^uint64(0)
	}
	var buf [8]uint64
	vals := buf[:0]
	for _, id := range ids {
		vals = append(vals, value(id))
	}
	slices.Sort(vals)
	// ascending: the element at n-q, with q = n/2+1, is held by q members or more.
	return vals[len(vals)-(len(vals)/2+1)]
}

// quorumValue is majorityValue under m: joint configurations need both halves.
func (m Membership) quorumValue(value func(NodeID) uint64) uint64 {
	if len(m.Voters) == 0 {
		return 0
	}
	return min(majorityValue(m.Voters, value), majorityValue(m.Outgoing, value))
}

// voteResult tallies yes/no answers: won when a quorum said yes, lost when a quorum can
// no longer be reached.
func (m Membership) voteResult(votes map[NodeID]bool) (won, lost bool) {
	tally := func(ids []NodeID) (bool, bool) {
		if len(ids) == 0 {
			return true, false
		}
		yes, no := 0, 0
		for _, id := range ids {
			if v, ok := votes[id]; ok {
				if v {
					yes++
				} else {
					no++
				}
			}
		}
		q := len(ids)/2 + 1
		return yes >= q, no > len(ids)-q
	}
	w1, l1 := tally(m.Voters)
	w2, l2 := tally(m.Outgoing)
	return w1 && w2, l1 || l2
}
