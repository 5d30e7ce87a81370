package core

import "container/heap"

// leaseClock is one member's countdown of every lease it knows: when each runs out on
// this member's clock, and the term of the entry it last counted from. Every member
// keeps one, from its own applies (leases.go), so that a new leader resumes each
// countdown instead of starting it again. Expiry takes the earliest from a min-heap:
// O(log n) a renewal or a revoke, nothing a tick for the leases not yet due.
type leaseClock struct {
	byID map[uint64]*leaseItem
	h    leaseHeap
}

type leaseItem struct {
	id   uint64
	due  Time   // when it runs out here
	next Time   // when expiry looks at it again: due, or later while its revoke is in flight
	term uint64 // the term of the entry it was last counted from (a load: the snapshot's)
	i    int    // its place in the heap
}

func newLeaseClock() leaseClock { return leaseClock{byID: map[uint64]*leaseItem{}} }

// set counts lease id as running out at due, counted from an entry of term; never
// earlier than it already did: a member may count longer than the holder, never less.
func (lc *leaseClock) set(id uint64, due Time, term uint64) {
	it := lc.byID[id]
	if it == nil {
		it = &leaseItem{id: id, due: due, next: due, term: term}
		lc.byID[id] = it
		heap.Push(&lc.h, it)
		return
	}
	it.term = max(it.term, term)
	if due > it.due {
		it.due = due
		it.next = max(it.next, due)
		heap.Fix(&lc.h, it.i)
	}
}

// later makes expiry look at lease it again at t, not before.
func (lc *leaseClock) later(it *leaseItem, t Time) {
	it.next = t
	heap.Fix(&lc.h, it.i)
}

func (lc *leaseClock) remove(id uint64) {
	if it := lc.byID[id]; it != nil {
		heap.Remove(&lc.h, it.i)
		delete(lc.byID, id)
	}
}

// due is when lease id runs out here.
func (lc *leaseClock) due(id uint64) (Time, bool) {
	if it := lc.byID[id]; it != nil {
		return it.due, true
	}
	return 0, false
}

// first is the lease expiry looks at next (nil: none).
func (lc *leaseClock) first() *leaseItem {
	if len(lc.h) == 0 {
		return nil
	}
	return lc.h[0]
}

func (lc *leaseClock) len() int { return len(lc.h) }

// leaseHeap orders leases by when expiry looks at them next, then by ID: the order
// depends on nothing but the core's state, so a simulation replays exactly.
type leaseHeap []*leaseItem

func (h leaseHeap) Len() int { return len(h) }
func (h leaseHeap) Less(i, j int) bool {
	if h[i].next != h[j].next {
		return h[i].next < h[j].next
	}
	return h[i].id < h[j].id
}
func (h leaseHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].i, h[j].i = i, j
}
func (h *leaseHeap) Push(x any) {
	it := x.(*leaseItem)
	it.i = len(*h)
	*h = append(*h, it)
}
func (h *leaseHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
