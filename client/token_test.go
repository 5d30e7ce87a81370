package client

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"lite-raft/api"
)

// TestLeaseCarriesTheLockToken: the token a lock's acquire returned goes with the lease's
// renewals and its release, which the store refuses without it (issue 24).
func TestLeaseCarriesTheLockToken(t *testing.T) {
	seen := map[api.Op]uint64{}
	do := func(_ time.Duration, req api.Request) (api.Response, error) {
		seen[req.Op] = req.Token
		if req.Op == api.OpLockAcquire {
			b, _ := json.Marshal(api.LockPlace{Lease: 5, Generation: 9, Token: 77})
			return api.Response{Value: b}, nil
		}
		return api.Response{}, nil
	}
	l, err := AcquireLock(context.Background(), LockOptions{Name: "job", TTL: 3 * time.Second, Do: do})
	if err != nil {
		t.Fatal(err)
	}
	if l.Lease.Token != 77 || l.Place.Token != 77 {
		t.Fatalf("lease token %d, place token %d; want 77", l.Lease.Token, l.Place.Token)
	}
	if err := l.Lease.Renew(); err != nil {
		t.Fatal(err)
	}
	l.Lease.Release("test")
	if seen[api.OpLeaseKeep] != 77 || seen[api.OpRevoke] != 77 {
		t.Fatalf("tokens sent: %v; want 77 with the keep and the revoke", seen)
	}
}
