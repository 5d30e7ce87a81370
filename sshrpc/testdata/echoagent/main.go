// Command echoagent stands in for the agent in sshrpc's end-to-end tests: it listens on
// DIR/temp/agent.sock and echoes every request, so `lite-raft rpc` has something to
// bridge to.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"lite-raft/sshrpc"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: echoagent DIR")
		os.Exit(2)
	}
	s, err := sshrpc.Listen(filepath.Join(os.Args[1], "temp", "agent.sock"), sshrpc.ConnOptions{
		Handler: func(c *sshrpc.Conn, f sshrpc.Frame) {
			switch {
			case f.Kind != sshrpc.KindRequest:
			case f.Type == 2: // throughput: acknowledge without sending the data back
				c.Reply(f.ID, f.Type, nil)
			default:
				c.Reply(f.ID, f.Type, f.Payload)
			}
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "echoagent:", err)
		os.Exit(1)
	}
	fmt.Println("listening")
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
	s.Close()
}
