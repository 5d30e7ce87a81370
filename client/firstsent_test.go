package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"lite-raft/api"
	"lite-raft/sshrpc"
)

// sentLog answers each call with the next of its errors or answers, and keeps what it
// was sent.
type sentLog struct {
	sent    []api.Request
	answers []func() (sshrpc.Frame, error)
}

func (s *sentLog) Call(_ context.Context, _ uint8, payload []byte) (sshrpc.Frame, error) {
	r, err := api.DecodeRequest(payload)
	if err != nil {
		return sshrpc.Frame{}, err
	}
	s.sent = append(s.sent, r)
	next := s.answers[0]
	s.answers = s.answers[1:]
	return next()
}

func answer(r api.Response) func() (sshrpc.Frame, error) {
	return func() (sshrpc.Frame, error) { return sshrpc.Frame{Payload: r.Encode()}, nil }
}

// TestFirstSentKeptAcrossRetries: a write carries its first-send time, set once before
// the first attempt and sent again unchanged, with the same client ID and sequence
// number, by a retry after a broken connection; a read carries none.
func TestFirstSentKeptAcrossRetries(t *testing.T) {
	broke := func() (sshrpc.Frame, error) { return sshrpc.Frame{}, errors.New("stream broke") }
	s := &sentLog{answers: []func() (sshrpc.Frame, error){broke, broke, answer(api.Response{})}}
	before := uint64(time.Now().UnixMilli())
	if _, err := New(s).Do(context.Background(), api.Request{Op: api.OpSet, Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if len(s.sent) != 3 {
		t.Fatalf("%d attempts", len(s.sent))
	}
	first := s.sent[0]
	if first.FirstSentMs < before || first.FirstSentMs > uint64(time.Now().UnixMilli()) {
		t.Fatalf("first-send time %d, not now", first.FirstSentMs)
	}
	for _, r := range s.sent[1:] {
		if r.FirstSentMs != first.FirstSentMs || r.ClientID != first.ClientID || r.Seq != first.Seq {
			t.Fatalf("a retry went as %+v, the first attempt as %+v", r, first)
		}
	}
	s = &sentLog{answers: []func() (sshrpc.Frame, error){answer(api.Response{})}}
	if _, err := New(s).Do(context.Background(), api.Request{Op: api.OpGet, Key: "k"}); err != nil || s.sent[0].FirstSentMs != 0 {
		t.Fatalf("a read: %+v, %v", s.sent, err)
	}
}

// TestFirstSentDroppedForAnOlderAgent: an agent from before request version 7 answers
// 14 to the field; the same request goes again without it.
func TestFirstSentDroppedForAnOlderAgent(t *testing.T) {
	s := &sentLog{answers: []func() (sshrpc.Frame, error){answer(api.Response{Code: api.CodeUpgrade,
		Msg: "h1 runs lite-raft v1.2, which cannot read this request (decode request: " + api.ErrUnknownField.Error() + "): upgrade it first (nothing was done)"}),
		answer(api.Response{})}}
	resp, err := New(s).Do(context.Background(), api.Request{Op: api.OpSet, Key: "k", Value: []byte("v")})
	if err != nil || resp.Code != 0 || len(s.sent) != 2 || s.sent[1].FirstSentMs != 0 || s.sent[1].Seq != s.sent[0].Seq {
		t.Fatalf("%+v, %v after %+v", resp, err, s.sent)
	}
}

// TestUpgradeAnsweredAfterOneResend: a 14 for another reason (a cluster that does not
// know the op yet) comes back to the resend without the field, and is the answer.
func TestUpgradeAnsweredAfterOneResend(t *testing.T) {
	refuse := answer(api.Response{Code: api.CodeUpgrade, Msg: "m3 runs an older lite-raft: upgrade it first"})
	s := &sentLog{answers: []func() (sshrpc.Frame, error){refuse, refuse, answer(api.Response{})}}
	resp, err := New(s).Do(context.Background(), api.Request{Op: api.OpSet, Key: "k", Value: []byte("v")})
	if err != nil || resp.Code != api.CodeUpgrade || len(s.sent) != 2 {
		t.Fatalf("%+v, %v after %d sends, want 14 after 2", resp, err, len(s.sent))
	}
}

// TestTimeoutNeverWraps: a deadline beyond the field's 49 days is sent as its largest,
// not as what is left over 2^32 ms.
func TestTimeoutNeverWraps(t *testing.T) {
	s := &sentLog{answers: []func() (sshrpc.Frame, error){answer(api.Response{})}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*24*time.Hour)
	defer cancel()
	if _, err := New(s).Do(ctx, api.Request{Op: api.OpGet, Key: "k"}); err != nil {
		t.Fatal(err)
	}
	if got := s.sent[0].TimeoutMs; got < 1<<32-1 {
		t.Fatalf("a 50-day deadline sent as %d ms", got)
	}
}
