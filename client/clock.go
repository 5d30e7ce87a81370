package client

import "time"

// Clock is the time a caller reads: the system's, or a fake one in tests.
type Clock interface {
	Now() time.Time
}

// Timer is a Clock that can also wait: the lease keeper and the lock sleep on it between
// requests, so that a fake one runs them without waiting for real.
type Timer interface {
	Clock
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// SystemTimer is the system's clock.
var SystemTimer Timer = systemClock{}
