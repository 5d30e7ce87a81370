package lockcore

import (
	"testing"
	"time"
)

func TestMargin(t *testing.T) {
	for _, c := range []struct {
		ttl, want time.Duration
	}{
		{time.Second, 251 * time.Millisecond},
		{15 * time.Second, 265 * time.Millisecond},
		{time.Minute, 310 * time.Millisecond},
		{24 * time.Hour, 86650 * time.Millisecond},
	} {
		if got := Margin(c.ttl); got != c.want {
			t.Errorf("Margin(%v) = %v, want %v", c.ttl, got, c.want)
		}
	}
}

func TestKillDeadline(t *testing.T) {
	const s = Reading(1_000_000_000_000)
	for _, c := range []struct {
		sent Reading
		ttl  time.Duration
		want Reading
	}{
		{s, 15 * time.Second, s.Add(15*time.Second - 265*time.Millisecond)},
		{s, 24 * time.Hour, s.Add(24*time.Hour - 86650*time.Millisecond)},
		{0, time.Second, Reading(749 * time.Millisecond)},
	} {
		if got := KillDeadline(c.sent, c.ttl); got != c.want {
			t.Errorf("KillDeadline(%d, %v) = %d, want %d", c.sent, c.ttl, got, c.want)
		}
	}
}

func TestValid(t *testing.T) {
	const s = Reading(5_000_000_000)
	ttl := 15 * time.Second // kill deadline s+14.735s, margin 265 ms: valid before s+14.470s
	for _, c := range []struct {
		now  Reading
		want bool
	}{
		{s, true},
		{s.Add(14469 * time.Millisecond), true},
		{s.Add(14470 * time.Millisecond), false},
		{s.Add(14735 * time.Millisecond), false},
		{s.Add(time.Hour), false},
	} {
		if got := Valid(c.now, s, ttl); got != c.want {
			t.Errorf("Valid(sent+%v) = %v, want %v", c.now.Sub(s), got, c.want)
		}
	}
	if Valid(s, s, 100*time.Millisecond) {
		t.Error("a ttl shorter than twice its margin is never valid, yet Valid said yes")
	}
}
