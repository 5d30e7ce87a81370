package failover

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Two packages share one watchdog: while both monitors feed, the device is fed and the
// host never resets; once one stops feeding (its monitor frozen), the other's feeds no
// longer reach the device, and the host resets by the silent one's last feed + its
// budget (timeout - pace), not before its window. One given up cleanly leaves the other
// alone with the device.
func TestKeeperSharedReset(t *testing.T) {
	for _, silent := range []string{"web", "db"} {
		t.Run(silent+" stops feeding", func(t *testing.T) {
			c := newFakeClock()
			dev := &fakeDevice{clock: c}
			useFakeWatchdog(t, dev)
			k := &Keeper{Path: "/dev/watchdog", Clock: c}
			budgets := map[string]time.Duration{"web": 9 * time.Second, "db": 20 * time.Second}
			paces := map[string]time.Duration{"web": time.Second, "db": 2 * time.Second}
			ids := map[string]uint64{}
			for _, n := range []string{"web", "db"} {
				got, id, err := k.Arm(n, budgets[n], paces[n])
				if err != nil || got != 7 {
					t.Fatalf("arm %s: %d s, %v; want 7 s (9 s - 2 paces)", n, got, err)
				}
				ids[n] = id
			}
			const step = 100 * time.Millisecond
			last := map[string]time.Time{}
			feeding := map[string]bool{"web": true, "db": true}
			var stoppedAt time.Time
			for i := 1; i <= 600; i++ { // 60 s
				c.advance(step)
				now := c.Now()
				if i == 300 {
					feeding[silent], stoppedAt = false, last[silent]
				}
				for n, pace := range paces {
					if feeding[n] && now.Sub(last[n]) >= pace {
						if err := k.Feed(n, ids[n]); err != nil {
							t.Fatal(err)
						}
						last[n] = now
					}
				}
				if dev.resetBy(now) {
					if stoppedAt.IsZero() {
						t.Fatalf("reset at %v while both monitors fed", now)
					}
					if window := budgets[silent] - 7*time.Second; now.Sub(stoppedAt) <= window {
						t.Fatalf("reset %v after %s's last feed: within its window %v", now.Sub(stoppedAt), silent, window)
					}
					if now.Sub(stoppedAt) > budgets[silent]+step {
						t.Fatalf("reset %v after %s's last feed: later than its budget %v", now.Sub(stoppedAt), silent, budgets[silent])
					}
					return
				}
			}
			t.Fatalf("%s stopped feeding at %v and the host was never reset", silent, stoppedAt)
		})
	}
	t.Run("db disarmed", func(t *testing.T) {
		c := newFakeClock()
		dev := &fakeDevice{clock: c}
		useFakeWatchdog(t, dev)
		k := &Keeper{Path: "/dev/watchdog", Clock: c}
		_, web, _ := k.Arm("web", 9*time.Second, time.Second)
		_, db, _ := k.Arm("db", 20*time.Second, 2*time.Second)
		k.Disarm("db", db)
		for i := 0; i < 60; i++ {
			c.advance(time.Second)
			k.Feed("web", web)
			if dev.resetBy(c.Now()) {
				t.Fatal("reset after db was disarmed, web feeding")
			}
		}
		k.Disarm("web", web)
		if _, closed, magic := dev.state(); !closed || !magic {
			t.Fatalf("the last disarm left the device closed %v, magic %v: want stopped", closed, magic)
		}
	})
}

// A package whose driver cannot fit is refused without touching the others: a newcomer
// whose budget leaves no room, or a driver that rounds the shared timeout up.
func TestKeeperRefusesNewcomer(t *testing.T) {
	c := newFakeClock()
	dev := &fakeDevice{clock: c}
	useFakeWatchdog(t, dev)
	k := &Keeper{Path: "/dev/watchdog", Clock: c}
	if _, _, err := k.Arm("web", 9*time.Second, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.Arm("db", 3*time.Second, time.Second); err == nil {
		t.Fatal("a package with timeout - pace 3 s at pace 1 s was armed beside web")
	}
	if dev.timeout != 7 {
		t.Fatalf("the refused newcomer left the device at %d s, want 7", dev.timeout)
	}
}

// The keeper process, over its socket: the first monitor to arm starts it (spawn), a
// second package arms with the same keeper, and a monitor that dies (its connection
// ends without disarm) leaves its package armed and unfed: the host resets, although
// the other package's monitor goes on feeding.
func TestKeeperProcess(t *testing.T) {
	c := newFakeClock()
	dev := &fakeDevice{clock: c}
	useFakeWatchdog(t, dev)
	dir := t.TempDir()
	k := &Keeper{Path: "/dev/watchdog", Clock: c}
	ctx, cancel := context.WithCancel(context.Background())
	var served sync.WaitGroup
	t.Cleanup(func() { cancel(); served.Wait() })
	spawns := 0
	client := &keeperClient{dir: dir, spawn: func(device string) error {
		spawns++
		ln, err := net.Listen("unix", KeeperSocket(dir, device))
		if err != nil {
			return err
		}
		served.Add(1)
		go func() { defer served.Done(); ServeKeeper(ctx, ln, k) }()
		return nil
	}}
	if filepath.Dir(KeeperSocket(dir, "/dev/watchdog")) != dir {
		t.Fatalf("socket %s not under %s", KeeperSocket(dir, "/dev/watchdog"), dir)
	}
	web, got, err := client.Arm("/dev/watchdog", "web", 9*time.Second, time.Second)
	if err != nil || got != 7 {
		t.Fatalf("arm web: %d, %v", got, err)
	}
	db, _, err := client.Arm("/dev/watchdog", "db", 20*time.Second, 2*time.Second)
	if err != nil {
		t.Fatalf("arm db: %v", err)
	}
	if spawns != 1 {
		t.Fatalf("%d keepers started, want 1", spawns)
	}
	for i := 0; i < 30; i++ {
		c.advance(time.Second)
		if err := web.Feed(); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			db.Feed()
		}
		if dev.resetBy(c.Now()) {
			t.Fatalf("reset while both fed, at %d s", i)
		}
	}
	db.(*keeperConn).conn.Close() // db's monitor dies: no disarm
	for i := 0; i < 25; i++ {
		c.advance(time.Second)
		if err := web.Feed(); err != nil {
			t.Fatal(err)
		}
		if dev.resetBy(c.Now()) {
			if i < 12 {
				t.Fatalf("reset %d s after db's monitor died: within db's window (13 s)", i+1)
			}
			return
		}
	}
	t.Fatal("db's monitor died and the host was never reset")
}

// A package armed while another is no longer fed does not feed the device for it (nor
// does setting a lower timeout, which would ping it): the host still resets by the
// silent one's last feed + its budget.
func TestKeeperNewcomerDoesNotRevive(t *testing.T) {
	for _, dbBudget := range []time.Duration{20 * time.Second, 6 * time.Second} { // keeps, lowers the timeout
		c := newFakeClock()
		dev := &fakeDevice{clock: c}
		useFakeWatchdog(t, dev)
		k := &Keeper{Path: "/dev/watchdog", Clock: c}
		if _, _, err := k.Arm("web", 9*time.Second, time.Second); err != nil {
			t.Fatal(err)
		}
		start := c.Now()
		c.advance(3 * time.Second) // web's monitor froze: past its window (9 - 7 = 2 s)
		_, db, err := k.Arm("db", dbBudget, 500*time.Millisecond)
		for i := 0; i < 100 && err == nil; i++ {
			c.advance(100 * time.Millisecond)
			k.Feed("db", db)
		}
		if !dev.resetBy(start.Add(9*time.Second + time.Millisecond)) {
			t.Fatalf("db (budget %v) armed after web went silent: the device was fed past web's budget (arm: %v)", dbBudget, err)
		}
	}
}
