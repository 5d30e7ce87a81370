package kvstore

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"lite-raft/api"
)

// walkBytes is what DataBytes must equal: the keys and values counted one by one.
func walkBytes(s *Store) int {
	n := 0
	s.data.Scan(func(k string, v []byte) bool {
		n += len(k) + len(v)
		return true
	})
	return n
}

// TestDataBytesKeptAsTheDataChanges: the running total equals a walk of the keys after
// every kind of change (set, replace, unset, a lease's keys revoked, a transaction),
// in a clone, and in a store restored from a snapshot.
func TestDataBytesKeptAsTheDataChanges(t *testing.T) {
	r := rand.New(rand.NewPCG(28, 1))
	s := New()
	var leases []uint64
	for i := uint64(1); i <= 2000; i++ {
		k := fmt.Sprintf("k/%d", r.IntN(50))
		v := bytes.Repeat([]byte{'v'}, r.IntN(300))
		var c Command
		switch r.IntN(6) {
		case 0, 1:
			c = Command{Op: OpSet, Key: k, Value: v}
		case 2:
			c = Command{Op: OpUnset, Key: k}
		case 3:
			c = Command{Op: OpSetLease, Key: k, Value: v, TTLMs: 5000}
			leases = append(leases, i)
		case 4:
			if len(leases) == 0 {
				continue
			}
			j := r.IntN(len(leases))
			c = Command{Op: OpRevoke, Lease: leases[j]}
			leases = append(leases[:j], leases[j+1:]...)
		case 5:
			c = Command{Op: OpTxn, ClientID: 9, Seq: i, Txn: api.Txn{Then: []api.TxnAction{
				{Do: api.DoSet, Key: k, Value: v}, {Do: api.DoUnset, Key: fmt.Sprintf("k/%d", r.IntN(50))}}}}
		}
		s.Apply(i, c)
		if got, want := s.DataBytes(), walkBytes(s); got != want {
			t.Fatalf("after %+v at %d: DataBytes %d, keys and values %d", c.Op, i, got, want)
		}
	}
	if s.DataBytes() == 0 {
		t.Fatal("nothing left to count: the test proves little")
	}
	if c := s.Clone(); c.DataBytes() != s.DataBytes() {
		t.Errorf("clone %d, store %d", c.DataBytes(), s.DataBytes())
	}
	var b bytes.Buffer
	if err := s.WriteSnapshot(&b); err != nil {
		t.Fatal(err)
	}
	back, err := Restore(&b)
	if err != nil {
		t.Fatal(err)
	}
	if back.DataBytes() != s.DataBytes() || walkBytes(back) != s.DataBytes() {
		t.Errorf("restored %d (walk %d), store %d", back.DataBytes(), walkBytes(back), s.DataBytes())
	}
}
