package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"lite-raft/internal/harness"
)

// pkgJSON is what `pkg status --json` prints of one package.
type pkgJSON struct {
	Name       string   `json:"name"`
	Owner      string   `json:"owner"`
	State      string   `json:"state"`
	Tick       *int64   `json:"tick"`
	Generation *int64   `json:"generation"`
	TickAge    *float64 `json:"tick_age_seconds"`
	Enabled    bool     `json:"enabled"`
	Halted     bool     `json:"halted"`
	Evacuated  []string `json:"evacuated"`
	Move       string   `json:"move"`
	Standbys   []struct {
		Host    string   `json:"host"`
		Fresh   bool     `json:"fresh"`
		TickAge *float64 `json:"tick_age_seconds"`
	} `json:"standbys"`
	History []struct {
		Time  string `json:"time"`
		Host  string `json:"host"`
		Event string `json:"event"`
	} `json:"history"`
}

func (p pkgJSON) fresh(host string) bool {
	for _, sb := range p.Standbys {
		if sb.Host == host {
			return sb.Fresh
		}
	}
	return false
}

func (c *cluster) pkgStatusJSON(h *harness.Host, name string) (pkgJSON, string) {
	c.t.Helper()
	out := c.must(h, "./pkg status --json "+name)
	var p pkgJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		c.t.Fatalf("pkg status --json %s: %v\n%s", name, err, out)
	}
	return p, out
}

// TestPkgOps: pkg status --json, and pkg move's rules: only to a host whose monitor stands
// by (or will within --wait), not while in maintenance or halted, nothing to do for the
// owner.
func TestPkgOps(t *testing.T) {
	c, hosts := pkgCluster(t)
	h4, h5 := c.runWeb(hosts)

	c.eventually(10*time.Second, "pkg status --json web: owner host4, generation 1 or more, host5 standing by", func() (bool, string) {
		p, out := c.pkgStatusJSON(h4, "web")
		return p.Name == "web" && p.Owner == "host4" && p.State == "running" && p.Generation != nil && *p.Generation >= 1 &&
			p.Tick != nil && p.TickAge != nil && p.Enabled && !p.Halted && p.fresh("host5") && len(p.History) > 0, out
	})
	p, out := c.pkgStatusJSON(h4, "web")
	if h := p.History[len(p.History)-1]; h.Host == "" || !strings.HasSuffix(h.Time, "Z") || h.Event == "" {
		t.Errorf("history entry %+v\n%s", h, out)
	}
	all := c.must(h5, "./pkg status --json")
	var list []pkgJSON
	if err := json.Unmarshal([]byte(all), &list); err != nil || len(list) != 1 || list[0].Name != "web" || list[0].Owner != "host4" {
		t.Fatalf("pkg status --json: %v\n%s", err, all)
	}

	// host3 is a member of the cluster, but no monitor of web runs there
	o, e, code := c.lr(h4, "./pkg move web host3")
	if code != 1 || !strings.Contains(e, "host3") || !strings.Contains(e, "standing by: host5") {
		t.Fatalf("pkg move web host3: exit %d, want 1 naming host5 as standing by\n%s%s", code, o, e)
	}
	t.Logf("pkg move web host3: %s", strings.TrimSpace(e))
	if p, out := c.pkgStatusJSON(h4, "web"); p.Move != "" || p.Owner != "host4" {
		t.Fatalf("a refused move changed the package:\n%s", out)
	}
	// maintenance: refused
	c.must(h4, "./pkg disable web")
	if o, e, code := c.lr(h4, "./pkg move web host5"); code != 1 || !strings.Contains(e, "maintenance") {
		t.Fatalf("pkg move in maintenance: exit %d\n%s%s", code, o, e)
	}
	c.must(h4, "./pkg enable web")

	c.must(h4, "./pkg move web host5")
	c.waitOwner(h4, "web", "host5", 20*time.Second)
	c.expect(h4, "./pkg move web host5", 0, "package web already runs on host5: nothing to move")

	// host4's monitor stopped: its last report goes stale within three intervals (2 s at
	// this pace) and a second, then a move there is refused
	c.must(h4, "./pkg stop web")
	c.eventually(15*time.Second, "host4's stand-by report going stale", func() (bool, string) {
		p, out := c.pkgStatusJSON(h5, "web")
		return !p.fresh("host4"), out
	})
	o, e, code = c.lr(h5, "./pkg move web host4")
	if code != 1 || !strings.Contains(e, "no monitor of web stands by on host4") || !strings.Contains(e, "standing by: nobody") {
		t.Fatalf("pkg move web host4 with no monitor there: exit %d\n%s%s", code, o, e)
	}
	t.Logf("pkg move web host4: %s", strings.TrimSpace(e))
	c.waitOwner(h5, "web", "host5", 5*time.Second)

	// --wait: the monitor just started stands by within it
	start := time.Now()
	out = c.must(h4, "./pkg run web && ./pkg move --wait 20s web host4")
	t.Logf("pkg run, then pkg move --wait: %v\n%s", time.Since(start).Round(10*time.Millisecond), out)
	c.waitOwner(h5, "web", "host4", 20*time.Second)
	if p, out := c.pkgStatusJSON(h5, "web"); p.Move != "" || p.Generation == nil || *p.Generation < 3 {
		t.Fatalf("after the moves:\n%s", out)
	}

	// halted: refused
	c.must(h4, "./pkg halt web")
	c.eventually(20*time.Second, "web halted", func() (bool, string) {
		p, out := c.pkgStatusJSON(h4, "web")
		return p.Halted && p.Owner == "", out
	})
	if o, e, code := c.lr(h4, "./pkg move web host5"); code != 1 || !strings.Contains(e, "halted") {
		t.Fatalf("pkg move of a halted package: exit %d\n%s%s", code, o, e)
	}
	checkNeverTwice(t, events(t, hosts))
}
