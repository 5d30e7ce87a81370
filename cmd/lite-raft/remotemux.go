package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"lite-raft/api"
	"lite-raft/client"
	"lite-raft/conf"
	"lite-raft/sshrpc"
)

// lite-raft-remote's multiplexer: every remote call used to open an ssh connection of its
// own (TCP, key exchange, authentication, a channel, lite-raft rpc started there: 11-12
// round trips, 0.6 s at 50 ms). The first call starts, in the background, a process of
// this user that keeps the connections to the members and serves the calls of the same
// lite-raft folder, configuration and build on a unix socket (in a 0700 folder of this
// user's, and only to this user's processes); it exits once no call has used it for
// muxIdle, as OpenSSH's ControlPersist does. x/crypto/ssh cannot speak OpenSSH's
// ControlMaster protocol, so this is its own.
//
// A call keeps its client ID and sequence: the multiplexer passes the request's bytes
// through. Handing a request to it is not sending it to the cluster, so the outcomes stay
// exact: the multiplexer answers a failure with the verdict of the hosts it tried (not
// sent: 11 or 12; maybe applied: 2), and only a multiplexer lost after it took the
// request makes it unknown.

// muxIdle is how long the multiplexer stays without a call (LITE_RAFT_REMOTE_MUX_IDLE, a
// duration, changes it; "off" as LITE_RAFT_REMOTE_MUX turns the multiplexer off).
const muxIdle = 60 * time.Second

// muxLiveness bounds how long a connection of the multiplexer may stall
// (sshrpc.DialerOptions.Liveness).
const muxLiveness = 3 * time.Second

// muxFrameVerdict is the frame type of an answer that is the multiplexer's verdict
// (muxVerdict, JSON) rather than an agent's answer: told apart by its type, never by its
// text. No request uses it.
const muxFrameVerdict uint8 = 200

type muxVerdict struct {
	Outcome client.Outcome `json:"outcome"`
	Failure client.Failure `json:"failure"`
	Host    string         `json:"host"`
	Msg     string         `json:"msg"`
}

// muxSocket is the multiplexer's socket for dir and rc: in this user's private folder
// (XDG_RUNTIME_DIR, else the temporary folder), named for the folder, the remote
// configuration and the build, so that another configuration or a new binary gets a
// multiplexer of its own.
func muxSocket(dir string, rc conf.Remote) (string, error) {
	base := os.Getenv("XDG_RUNTIME_DIR")
	if base == "" {
		base = os.TempDir()
	}
	d := filepath.Join(base, fmt.Sprintf("lite-raft-mux-%d", os.Getuid()))
	if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	// in a shared /tmp another user could have made it first: it must be ours and private
	fi, err := os.Lstat(d)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s is not a private folder of this user's", d)
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{dir, strings.Join(rc.Hosts, " "), rc.Path, rc.User, Version}, "\n")))
	return filepath.Join(d, hex.EncodeToString(sum[:8])+".sock"), nil
}

// muxCaller is a call through the multiplexer: its verdict, when it gives one, is the
// call's.
type muxCaller struct{ conn *sshrpc.Conn }

// Call sends the request's bytes after the time the caller gives it (milliseconds, 0:
// none): a request's own timeout is not that (a watch asks the agent to hold it for less
// than its caller waits).
func (m muxCaller) Call(ctx context.Context, typ uint8, payload []byte) (sshrpc.Frame, error) {
	var ms uint64
	if dl, ok := ctx.Deadline(); ok {
		ms = uint64(max(time.Until(dl).Milliseconds(), 1))
	}
	f, err := m.conn.Call(ctx, typ, append(binary.AppendUvarint(nil, ms), payload...))
	if err != nil || f.Type != muxFrameVerdict {
		return f, err
	}
	var v muxVerdict
	if err := json.Unmarshal(f.Payload, &v); err != nil {
		// it had the request: what became of it is not known
		return sshrpc.Frame{}, fmt.Errorf("an unreadable verdict from the multiplexer: %w", err)
	}
	return sshrpc.Frame{}, &client.Error{Outcome: v.Outcome, Failure: v.Failure, Host: v.Host, Err: errors.New(v.Msg)}
}

// dialMux opens a stream to the multiplexer of dir and rc, starting it if none answers;
// nil when there is none and it could not be started (the caller goes direct).
func dialMux(dir string, rc conf.Remote) *sshrpc.Conn {
	if os.Getenv("LITE_RAFT_REMOTE_MUX") == "off" {
		return nil
	}
	sock, err := muxSocket(dir, rc)
	if err != nil {
		return nil
	}
	if conn, err := sshrpc.DialUnix(sock, sshrpc.ConnOptions{}); err == nil {
		return conn
	}
	self, err := os.Executable()
	if err != nil {
		return nil
	}
	// its own session, and none of this call's descriptors: $(lite-raft-remote get k)
	// must not wait for it
	cmd := exec.Command(self, "--dir", dir, "remote-mux", sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil
	}
	ended := make(chan struct{})
	go func() { cmd.Wait(); close(ended) }() // reaped if it ends while this call runs
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		if conn, err := sshrpc.DialUnix(sock, sshrpc.ConnOptions{}); err == nil {
			return conn
		}
		select {
		case <-ended:
			// it could not serve (another one won the socket: try it once more; or it
			// refused to start): every call would wait the whole 3 s for nothing
			if conn, err := sshrpc.DialUnix(sock, sshrpc.ConnOptions{}); err == nil {
				return conn
			}
			return nil
		case <-time.After(10 * time.Millisecond): // polling for the socket, with a deadline
		}
	}
	return nil
}

func remoteMuxCommand() *cli.Command {
	return &cli.Command{
		Name:   "remote-mux",
		Hidden: true,
		Usage:  "lite-raft-remote's multiplexer (started by it)",
		Action: func(c *cli.Context) error {
			dir, err := liteRaftDir(c)
			if err != nil || c.NArg() != 1 {
				return cli.Exit("remote-mux: want the socket", api.CodeUsage)
			}
			rc, err := conf.LoadRemote(dir)
			if err != nil {
				return cli.Exit(err, api.CodeUsage)
			}
			if want, err := muxSocket(dir, rc); err != nil || want != c.Args().First() {
				return cli.Exit("remote-mux: not this configuration's socket", api.CodeUsage)
			}
			idle := muxIdle
			if d, err := time.ParseDuration(os.Getenv("LITE_RAFT_REMOTE_MUX_IDLE")); err == nil && d > 0 {
				idle = d
			}
			return runMux(dir, rc, c.Args().First(), idle)
		},
	}
}

// runMux serves the calls until it has been idle for idle.
func runMux(dir string, rc conf.Remote, sock string, idle time.Duration) error {
	// its connections live long: one to a host that lost power is given up within a few
	// seconds (as an agent's links are), not left to TCP
	d, err := sshrpc.NewDialer(sshrpc.DialerOptions{User: rc.User, Liveness: muxLiveness})
	if err != nil {
		return cli.Exit(err, 1)
	}
	rm := newRemoteCaller(dir, rc, d)
	defer rm.Close()
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var inflight atomic.Int64
	handler := func(c *sshrpc.Conn, f sshrpc.Frame) {
		if f.Kind != sshrpc.KindRequest {
			return
		}
		inflight.Add(1)
		last.Store(time.Now().UnixNano())
		go func() {
			defer func() { inflight.Add(-1); last.Store(time.Now().UnixNano()) }()
			// a little less than the caller's own deadline: the verdict (and a host that
			// hung marked as such, asked last from then on) is there before the caller
			// gives up and asks again, as a call of its own would have it (a lock's next
			// renewal after its leader's host lost power goes to another member)
			ms, n := binary.Uvarint(f.Payload)
			if n <= 0 {
				c.ReplyError(f.ID, "remote-mux: a call without its time")
				return
			}
			payload := f.Payload[n:]
			timeout := 30 * time.Second
			if ms > 0 {
				t := time.Duration(ms) * time.Millisecond
				timeout = t - min(100*time.Millisecond, t/10)
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			out, err := rm.Call(ctx, f.Type, payload)
			if err == nil {
				c.Reply(f.ID, out.Type, out.Payload)
				return
			}
			v := muxVerdict{Outcome: client.MaybeApplied, Failure: client.FailTimeout, Msg: err.Error()}
			var ce *client.Error
			if errors.As(err, &ce) {
				v.Outcome, v.Failure, v.Host = ce.Outcome, ce.Failure, ce.Host
				if ce.Err != nil {
					v.Msg = ce.Err.Error()
				}
			}
			b, _ := json.Marshal(v)
			c.Reply(f.ID, muxFrameVerdict, b)
		}()
	}
	srv, err := sshrpc.Listen(sock, sshrpc.ConnOptions{Handler: handler, SameUser: true})
	if err != nil {
		return cli.Exit(err, 1) // another one answers there: it serves
	}
	defer srv.Close()
	for t := time.NewTicker(min(idle/4, time.Second)); ; {
		<-t.C
		quiet := time.Since(time.Unix(0, last.Load()))
		if inflight.Load() > 0 || srv.Streams() > 0 || quiet < idle {
			continue
		}
		// no new stream from here on (a call that finds no socket starts another); the
		// ones that came in meanwhile are served to their end
		srv.StopAccepting()
		for deadline := time.Now().Add(time.Minute); (srv.Streams() > 0 || inflight.Load() > 0) && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond) // draining, with a deadline
		}
		return nil
	}
}
