package sshrpc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Server accepts framed streams on a unix socket: the local clients (lite-raft client,
// pkg) and, through `lite-raft rpc`, peers and remote clients arriving over SSH.
type Server struct {
	ln    net.Listener
	opt   ConnOptions
	mu    sync.Mutex
	conns map[*Conn]bool
	wg    sync.WaitGroup
	// streams counts them from their accept to their end: conns holds them only once
	// their handshake is done
	streams atomic.Int64
}

// Listen opens the socket at path. Its folder must be private to the user (0700; it is
// created so if missing, refused if group or others may enter it) and the socket is made
// 0600: whoever can reach it can change the cluster's data. A socket left by an agent that
// died is removed; one that still answers means another agent runs here.
func Listen(path string, opt ConnOptions) (*Server, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := CheckPrivate(dir); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another agent is listening there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	s := &Server{ln: ln, opt: opt, conns: map[*Conn]bool{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// CheckPrivate refuses a folder that group or others can enter or change.
func CheckPrivate(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s has permissions %04o: it must be private to its owner (chmod 700 %s)", dir, perm, dir)
	}
	return nil
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if s.opt.Logf != nil {
				s.opt.Logf("accept: %v", err)
			}
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors: do not spin
			continue
		}
		s.wg.Add(1)
		s.streams.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.streams.Add(-1)
			if s.opt.SameUser {
				if err := checkSameUser(nc.(*net.UnixConn)); err != nil {
					nc.Close()
					if s.opt.Logf != nil {
						s.opt.Logf("refused a stream: %v", err)
					}
					return
				}
			}
			stream, kind, allow, err := acceptStream(nc.(*net.UnixConn))
			if err != nil {
				nc.Close()
				if s.opt.Logf != nil {
					s.opt.Logf("refused a stream: %v", err)
				}
				return
			}
			opt := s.opt
			opt.Peer, opt.Allow = kind, allow
			c, err := NewConn(stream, opt)
			if err != nil {
				if s.opt.Logf != nil {
					s.opt.Logf("refused a stream: %v", err)
				}
				return
			}
			s.mu.Lock()
			if s.conns == nil {
				s.mu.Unlock()
				c.Close()
				return
			}
			s.conns[c] = true
			s.mu.Unlock()
			<-c.Done()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Streams is how many streams are open, counting those still being opened (a caller
// that connected before StopAccepting is one: the multiplexer waits for it).
func (s *Server) Streams() int {
	return int(s.streams.Load())
}

// StopAccepting removes the socket and accepts no more streams; those open go on until
// they end (or Close).
func (s *Server) StopAccepting() error {
	return s.ln.Close() // a unix listener it made removes its socket
}

// Close stops accepting, ends every stream and waits for them.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	s.wg.Wait()
	return err
}

// DialUnix opens a stream to the server at path.
func DialUnix(path string, opt ConnOptions) (*Conn, error) {
	nc, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if opt.Peer == "" {
		opt.Peer = path
	}
	if opt.Allow != "" {
		if err := sendRestriction(nc, opt.Allow); err != nil {
			nc.Close()
			return nil, err
		}
		opt.Allow = "" // the agent's to hold, not this end's
	}
	return NewConn(nc, opt)
}
