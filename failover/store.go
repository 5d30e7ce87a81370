package failover

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"lite-raft/api"
	"lite-raft/client"
)

// KV is the part of the replicated store a monitor uses: *Store over the cluster, or an
// in-memory one in tests. Every call is bounded by the context; an error means the
// outcome is unknown, except ErrOlder and ErrNoCounters (refused: nothing was done).
type KV interface {
	Get(ctx context.Context, key string) (string, error)
	Set(ctx context.Context, key, value string) error
	Swap(ctx context.Context, key, old, value string) (bool, error)
	List(ctx context.Context, dir string) ([]string, error)
	Watch(ctx context.Context, key, known string, wait time.Duration) (string, error)
	Counter(ctx context.Context, name string) (int64, error)
	RaiseCounter(ctx context.Context, name string, from int64) (int64, bool, error)
	ReadDir(ctx context.Context, dir string) (api.DirEntries, error)
	Txn(ctx context.Context, t api.Txn) (api.TxnResult, bool, error)
}

var _ KV = (*Store)(nil)

// Store is the KV of the cluster, through a client.
type Store struct {
	call    func(context.Context, api.Request) (api.Response, error)
	timeout time.Duration
}

// NewStore talks to the cluster through c.
func NewStore(c *client.Client, timeout time.Duration) *Store {
	return NewStoreWith(c.Do, timeout)
}

// NewStoreWith talks to the cluster through call, which makes one request: a client's
// Do, or an in-memory state machine in tests (no wire, no client).
func NewStoreWith(call func(context.Context, api.Request) (api.Response, error), timeout time.Duration) *Store {
	return &Store{call: call, timeout: timeout}
}

// ErrUnknown wraps a failure whose outcome is unknown (timeout, no leader, no server);
// a request that got no answer also wraps its *client.Error, for the exit code.
var ErrUnknown = errors.New("outcome unknown")

func (s *Store) do(ctx context.Context, r api.Request) (api.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.call(ctx, r)
	if err != nil {
		return resp, fmt.Errorf("%w: %s %s: %w", ErrUnknown, r.Op, r.Key, err)
	}
	switch resp.Code {
	case api.CodeOK, api.CodeAlreadyHolds, api.CodeCondFalse, api.CodeNoKey, api.CodeNotFound, api.CodeNoDir:
		return resp, nil
	}
	return resp, fmt.Errorf("%w: %s %s: %s (exit %d)", ErrUnknown, r.Op, r.Key, resp.Msg, resp.Code)
}

// Get returns a key's value, "" if it does not exist.
func (s *Store) Get(ctx context.Context, key string) (string, error) {
	r, err := s.do(ctx, api.Request{Op: api.OpGet, Key: key})
	if err != nil || r.Code != 0 {
		return "", err
	}
	return string(r.Value), nil
}

// Set sets a key.
func (s *Store) Set(ctx context.Context, key, value string) error {
	_, err := s.do(ctx, api.Request{Op: api.OpSet, Key: key, Value: []byte(value)})
	return err
}

// Swap sets key to value if it holds old (a missing key matches nothing, not even "").
// It reports whether it won.
func (s *Store) Swap(ctx context.Context, key, old, value string) (bool, error) {
	r, err := s.do(ctx, api.Request{Op: api.OpIfSet, Key: key, Cond: "=", CondValue: []byte(old), Value: []byte(value)})
	if err != nil {
		return false, err
	}
	return r.Code == api.CodeOK || (r.Code == api.CodeAlreadyHolds && old == value), nil
}

// ErrNoCounters is a cluster with a member from before counters (command and request
// version 4): the caller falls back to the plain key it used before them.
var ErrNoCounters = errors.New("a member runs a lite-raft from before counters")

// Counter is counter name's value (0: never raised). Counters live apart from the keys:
// no set or unset reaches them, only RaiseCounter.
func (s *Store) Counter(ctx context.Context, name string) (int64, error) {
	r, err := s.do(ctx, api.Request{Op: api.OpCounter, Key: name})
	if r.Code == api.CodeUpgrade {
		return 0, fmt.Errorf("%w: %s", ErrNoCounters, r.Msg)
	}
	if err != nil {
		return 0, err
	}
	return parseCounter(r)
}

// RaiseCounter raises counter name, if it stands at from, to a value the store picks
// above every one it issued before (even before a restore), and returns it; if another
// raised it first, it reports false and the value it stands at.
func (s *Store) RaiseCounter(ctx context.Context, name string, from int64) (int64, bool, error) {
	r, err := s.do(ctx, api.Request{Op: api.OpCounterRaise, Key: name, Expect: uint64(from)})
	if r.Code == api.CodeUpgrade {
		return 0, false, fmt.Errorf("%w: %s", ErrNoCounters, r.Msg)
	}
	if err != nil {
		return 0, false, err
	}
	n, err := parseCounter(r)
	return n, err == nil && r.Code == api.CodeOK, err
}

func parseCounter(r api.Response) (int64, error) {
	n, err := strconv.ParseInt(string(r.Value), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: a counter of %q", ErrUnknown, r.Value)
	}
	return n, nil
}

// List returns the names below dir.
func (s *Store) List(ctx context.Context, dir string) ([]string, error) {
	r, err := s.do(ctx, api.Request{Op: api.OpList, Key: dir})
	if err != nil || r.Code != 0 {
		return nil, err
	}
	return r.Names, nil
}

// Watch returns key's value once it differs from known, or when wait has passed (then
// possibly still known). The member that answers uses its own state, so this only says
// when to look again; decisions are made with Swap.
func (s *Store) Watch(ctx context.Context, key, known string, wait time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+s.timeout)
	defer cancel()
	r, err := s.call(ctx, api.Request{Op: api.OpWatch, Key: key, CondValue: []byte(known),
		TimeoutMs: uint32(max(1, wait.Milliseconds()))})
	if err != nil {
		return known, fmt.Errorf("%w: watch %s: %w", ErrUnknown, key, err)
	}
	if r.Code != 0 {
		return known, fmt.Errorf("%w: watch %s: %s", ErrUnknown, key, r.Msg)
	}
	return string(r.Value), nil
}

// ErrOlder is a cluster with a member from before an operation the caller would use
// (list --values, txn: command and request version 5): it falls back to what it did
// before them.
var ErrOlder = errors.New("a member runs an older lite-raft")

// ReadDir reads every key and counter directly under dir at one moment (one read at one
// index). A folder that holds nothing reads as empty.
func (s *Store) ReadDir(ctx context.Context, dir string) (api.DirEntries, error) {
	r, err := s.do(ctx, api.Request{Op: api.OpListValues, Key: dir})
	switch {
	case r.Code == api.CodeUpgrade:
		return api.DirEntries{}, fmt.Errorf("%w: %s", ErrOlder, r.Msg)
	case err != nil:
		return api.DirEntries{}, err
	case r.Code == api.CodeNoDir || r.Code == api.CodeNoKey:
		return api.DirEntries{Dir: dir}, nil
	}
	return client.DirEntriesOf(r)
}

// Txn applies t: every action if every condition holds (won), else none. It returns
// the raised counters' new values.
func (s *Store) Txn(ctx context.Context, t api.Txn) (res api.TxnResult, won bool, err error) {
	r, err := s.do(ctx, api.Request{Op: api.OpTxn, Txn: t})
	switch {
	case r.Code == api.CodeUpgrade:
		return res, false, fmt.Errorf("%w: %s", ErrOlder, r.Msg)
	case err != nil:
		return res, false, err
	}
	res, err = client.TxnResultOf(r)
	if client.IsCondFalse(err) {
		return res, false, nil
	}
	return res, err == nil, err
}
