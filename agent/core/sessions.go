package core

import (
	"lite-raft/api"
	"lite-raft/kvstore"
)

// stamp stamps cmd, the command of client request r, once every member understands
// stamped commands (api.StampCommands): with this leader's clock, which becomes the
// state machine's time (the largest stamp applied), and r's first-send time, by which
// the state machine tells a late retry from a new client. The clock is the wall clock
// as the core knows it (when it was made, plus its time since): the clients' first-send
// times are wall clocks too, and a new leader's monotonic clock starts anywhere. Until
// every member understands stamps the command goes unstamped, and every member
// forgets sessions by the old count rule alike.
func (c *Core) stamp(cmd *kvstore.Command, r api.Request) {
	if !c.everyMember(api.StampCommands) {
		return
	}
	cmd.StampMs = uint64(max(1, c.cfg.StartedAtNs/1_000_000+int64(c.now)))
	cmd.FirstSentMs = r.FirstSentMs
}
