package sshrpc

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// Bridge is `lite-raft rpc`: what a peer runs over SSH, so that the SSH session becomes a
// stream to the local agent. When its input and output are files (sshd's pipes), it
// hands them to the agent (handoff.go) and waits for the agent to hang up; otherwise, or
// if the agent does not take them, it copies bytes both ways. If no agent answers, it
// says so in a frame the caller's handshake reads, and returns the error (the command
// exits non-zero).
//
// With allow (ssh-command --allow's list), the stream is restricted (restrict.go): no
// handoff, the agent holds its frames to the list, and an agent that cannot is refused
// in a frame the caller reads as such.
func Bridge(sockPath, host, allow string, in io.Reader, out io.Writer) error {
	nc, err := net.DialTimeout("unix", sockPath, 5*time.Second)
	if err != nil {
		msg := fmt.Sprintf("%s%s. cannot process request. (%v)", noServerPrefix, host, err)
		out.Write(AppendFrame(nil, Frame{Kind: KindError, Payload: []byte(msg)}))
		return fmt.Errorf("%s", msg)
	}
	uc := nc.(*net.UnixConn)
	defer uc.Close()
	if allow != "" {
		if err := sendRestriction(uc, allow); err != nil {
			out.Write(AppendFrame(nil, Frame{Kind: KindError, Payload: []byte(err.Error())}))
			return err
		}
	}
	inF, inOK := in.(*os.File)
	outF, outOK := out.(*os.File)
	if inOK && outOK && allow == "" {
		taken, err := offerHandoff(uc, inF, outF)
		if err != nil {
			return err
		}
		if taken {
			// the agent has the session now; keep no copy (sshd sees the end of the
			// output only when every copy is closed), and live until the agent hangs up
			inF.Close()
			outF.Close()
			io.Copy(io.Discard, uc)
			return nil
		}
		// an agent that does not take handoffs: copy, on a fresh connection
		uc.Close()
		if nc, err = net.DialTimeout("unix", sockPath, 5*time.Second); err != nil {
			return err
		}
		uc = nc.(*net.UnixConn)
		defer uc.Close()
	}
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
