package sshrpc

import (
	"fmt"
	"io"
	"net"
	"time"
)

// Bridge is `lite-raft rpc`: what a peer runs over SSH. It only copies bytes between its
// standard input/output and the local agent's socket, so the SSH session becomes a
// stream to the agent. If no agent answers, it says so in a frame the caller's handshake
// reads, and returns the error (the command exits non-zero).
func Bridge(sockPath, host string, in io.Reader, out io.Writer) error {
	nc, err := net.DialTimeout("unix", sockPath, 5*time.Second)
	if err != nil {
		msg := fmt.Sprintf("%s%s. cannot process request. (%v)", noServerPrefix, host, err)
		out.Write(AppendFrame(nil, Frame{Kind: KindError, Payload: []byte(msg)}))
		return fmt.Errorf("%s", msg)
	}
	uc := nc.(*net.UnixConn)
	defer uc.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(uc, in)
		// the caller hung up: let the agent see the end of the stream
		uc.CloseWrite()
		errc <- err
	}()
	_, err = io.Copy(out, uc)
	return err
}
