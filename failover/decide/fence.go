package decide

// FenceResult is what fencing a host over ssh (`pkg fence-stop NAME` run there) found.
type FenceResult uint8

const (
	// FenceStopped: the host answered, its stop succeeded and its status says stopped.
	FenceStopped FenceResult = iota + 1
	// FenceUnreachable: no connection could be made (a prepared one whose keepalive went
	// stale is redialled first): nothing was run there.
	FenceUnreachable
	// FenceUnknown: the session broke after fence-stop was sent: it may or may not have
	// stopped the package.
	FenceUnknown
	// FenceStillUp: the host answered and the package may still run there (its stop
	// failed, or its status says up).
	FenceStillUp
	// FenceAlive: asked to fence only a dead or frozen monitor, the host answered that
	// its monitor runs (or its supervisor is restarting it): nothing was done there.
	FenceAlive
)

func (f FenceResult) String() string {
	switch f {
	case FenceStopped:
		return "stopped there"
	case FenceUnreachable:
		return "unreachable"
	case FenceUnknown:
		return "unknown (the session broke after fence-stop was sent)"
	case FenceStillUp:
		return "still up there"
	case FenceAlive:
		return "its monitor runs there: nothing done"
	}
	return "fence?"
}

// Next is what a takeover does after fencing.
type Next uint8

const (
	Start           Next = iota + 1 // go on: the script's own fence, then start
	RunFenceCommand                 // the host could not be reached: run fence_command, start if it succeeds
	DoNotStart                      // do not start; leave the previous owner recorded as still to fence
)

// AfterFence decides what a takeover does once fencing host returned res.
// fenceOnly: the host's stop failed, so the timing rule does not cover it (an
// unreachable host is stopped only by fence_command). hasCommand: fence_command is set.
func AfterFence(res FenceResult, fenceOnly, hasCommand bool) Next {
	switch res {
	case FenceStopped:
		return Start
	case FenceUnreachable:
		switch {
		case hasCommand:
			return RunFenceCommand
		case fenceOnly:
			return DoNotStart
		}
		// its monitor, if alive, has stopped the package by its self-fencing deadline
		return Start
	}
	return DoNotStart
}
