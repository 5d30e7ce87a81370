package failover

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is a package's settings, read from its control script (`SCRIPT echo VAR`) by
// `pkg init` and kept in the store, so every host monitors it the same way.
type Config struct {
	Pace           time.Duration // how often the active raises tick and checks status
	Timeout        time.Duration // the active's self-fencing deadline after its last tick
	StartTimeout   time.Duration
	StopTimeout    time.Duration
	PreferredOwner string
	AllowedHosts   []string // in order of preference; empty: any host running a monitor
	Restarts       int      // local restarts of a failed service before failing over
	// Fall and Rise (keepalived's names): Fall failed status runs in a row before the
	// owner restarts or fails over; Rise good ones before failures count from none again
	// (0 means 1). FailureTimeout (Pacemaker's failure-timeout): the restarts used are
	// forgotten, and a host that gave the package up stands by again, after that long
	// without a failure (0: never; pkg cleanup does it by hand).
	Fall, Rise     int
	FailureTimeout time.Duration
	Failback       bool // the preferred owner takes the package back when it returns
	// FenceCommand (sh -c) fences a previous owner that cannot be reached over ssh: a
	// power switch, a storage reservation keyed by the generation. Exit 0: go ahead.
	FenceCommand string
	// Watchdog is a Linux watchdog device the active monitor arms and feeds: if the
	// monitor dies or freezes, the host resets before a stand-by may take over.
	Watchdog string
	// Notify (sh -c) is run once per transition recorded in the history, in order.
	Notify string
	// OnStopFailure is what the owner does to itself after a stop that failed, the
	// package perhaps still up (Serviceguard's fail-fast): "" nothing (it waits to be
	// fenced), "reboot" or "halt" (the host, at once: see failfast.go).
	OnStopFailure string
}

// DefaultConfig is what a script that says nothing gets. stop_timeout is 30 s rather
// than the original's 60, so that the defaults obey the safety rule.
func DefaultConfig() Config {
	return Config{Pace: 4 * time.Second, Timeout: 60 * time.Second, StartTimeout: 60 * time.Second,
		StopTimeout: 30 * time.Second}
}

// Settings are the names a control script answers to `echo VAR`.
var Settings = []string{"timeout", "pace", "start_timeout", "stop_timeout", "preferred_owner",
	"allowed_hosts", "restarts", "failback", "fence_command", "watchdog", "notify", "on_stop_failure",
	"fall", "rise", "failure_timeout"}

// Set applies one setting's value (as the script printed it; empty keeps the default).
func (c *Config) Set(name, v string) error {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	dur := func(d *time.Duration) error {
		f, err := strconv.ParseFloat(v, 64)
		// written so that NaN, which compares false with everything, is refused too
		if err != nil || !(f > 0 && f <= 86400) {
			return fmt.Errorf("%s %q: want seconds above 0 (decimals allowed)", name, v)
		}
		*d = time.Duration(f * float64(time.Second))
		return nil
	}
	switch name {
	case "timeout":
		return dur(&c.Timeout)
	case "pace":
		return dur(&c.Pace)
	case "start_timeout":
		return dur(&c.StartTimeout)
	case "stop_timeout":
		return dur(&c.StopTimeout)
	case "preferred_owner":
		c.PreferredOwner = v
	case "allowed_hosts":
		c.AllowedHosts = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	case "restarts":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			return fmt.Errorf("restarts %q: want a whole number 0..100", v)
		}
		c.Restarts = n
	case "fall", "rise":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return fmt.Errorf("%s %q: want a whole number 1..100 (status runs in a row)", name, v)
		}
		if name == "fall" {
			c.Fall = n
		} else {
			c.Rise = n
		}
	case "failure_timeout":
		if v == "0" || v == "none" {
			c.FailureTimeout = 0
			return nil
		}
		return dur(&c.FailureTimeout)
	case "failback":
		switch v {
		case "manual", "no":
			c.Failback = false
		case "auto", "yes":
			c.Failback = true
		default:
			return fmt.Errorf("failback %q: want manual or auto", v)
		}
	case "fence_command":
		if strings.ContainsAny(v, "\n\r") {
			return fmt.Errorf("fence_command: one line")
		}
		c.FenceCommand = v
	case "notify":
		if strings.ContainsAny(v, "\n\r") {
			return fmt.Errorf("notify: one line")
		}
		c.Notify = v
	case "on_stop_failure":
		switch v {
		case "none":
			c.OnStopFailure = ""
		case "reboot", "halt":
			c.OnStopFailure = v
		default:
			return fmt.Errorf("on_stop_failure %q: want none, reboot or halt (what the host does to itself after a stop that failed)", v)
		}
	case "watchdog":
		if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "\n\r") {
			return fmt.Errorf("watchdog %q: want a device path such as /dev/watchdog", v)
		}
		c.Watchdog = v
	default:
		return fmt.Errorf("unknown setting %q", name)
	}
	return nil
}

// Check enforces the safety rule: the active must be able to stop the package before its
// fencing deadline, which is what a stand-by waits for before starting it.
func (c Config) Check() error {
	if c.StopTimeout+c.Pace >= c.Timeout {
		return fmt.Errorf("unsafe timing: stop_timeout (%v) + pace (%v) must be below timeout (%v). "+
			"An active host that loses the store stops the package within timeout of its last "+
			"heartbeat, and a stand-by starts it only timeout + 3*pace after the last heartbeat it saw; "+
			"if stopping can take longer than that, two hosts could run the package at once",
			c.StopTimeout, c.Pace, c.Timeout)
	}
	if c.Pace < 50*time.Millisecond {
		return fmt.Errorf("pace %v: at least 0.05 s", c.Pace)
	}
	if c.Watchdog != "" && c.watchdogTimeout() < 1 {
		return fmt.Errorf("watchdog: timeout - pace (%v) must be at least 1 s, the watchdog's resolution", c.Timeout-c.Pace)
	}
	if c.Watchdog != "" {
		// what the host's keeper asks of it (checkShared): a device timeout of whole
		// seconds above two paces that still leaves two paces of window below the budget
		budget := time.Duration(c.watchdogTimeout()) * time.Second
		if t := time.Duration(keeperTimeout(map[string]*keptPkg{"": {budget: budget, pace: c.Pace}})) * time.Second; t <= 2*c.Pace {
			return fmt.Errorf("watchdog: timeout - pace in whole seconds (%v) must exceed four paces (%v) by a whole second: "+
				"the device's timeout must be above two paces (it is fed once a pace), and leave two paces below timeout - pace "+
				"(the host must reset within that of the last feed); raise timeout", budget, 4*c.Pace)
		}
	}
	return nil
}

// Allowed reports whether host may run the package, and its rank (0 = most preferred).
func (c Config) Allowed(host string) (bool, int) {
	if len(c.AllowedHosts) == 0 {
		if host == c.PreferredOwner {
			return true, 0
		}
		return true, 1
	}
	i := slices.Index(c.AllowedHosts, host)
	return i >= 0, i
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

// Encode renders the config as "key=value" lines for packages/NAME/config.
func (c Config) Encode() string {
	fb := "manual"
	if c.Failback {
		fb = "auto"
	}
	s := fmt.Sprintf("pace=%s\ntimeout=%s\nstart_timeout=%s\nstop_timeout=%s\npreferred_owner=%s\nallowed_hosts=%s\nrestarts=%d\nfailback=%s\n",
		secs(c.Pace), secs(c.Timeout), secs(c.StartTimeout), secs(c.StopTimeout), c.PreferredOwner,
		strings.Join(c.AllowedHosts, ","), c.Restarts, fb)
	if c.FenceCommand != "" {
		s += "fence_command=" + c.FenceCommand + "\n"
	}
	if c.Watchdog != "" {
		s += "watchdog=" + c.Watchdog + "\n"
	}
	if c.Notify != "" {
		s += "notify=" + c.Notify + "\n"
	}
	if c.OnStopFailure != "" {
		s += "on_stop_failure=" + c.OnStopFailure + "\n"
	}
	// only when set: a build from before them refuses a config that names them, and a
	// package that does not use them stays readable by every build
	if c.Fall > 1 {
		s += "fall=" + strconv.Itoa(c.Fall) + "\n"
	}
	if c.Rise > 1 {
		s += "rise=" + strconv.Itoa(c.Rise) + "\n"
	}
	if c.FailureTimeout > 0 {
		s += "failure_timeout=" + secs(c.FailureTimeout) + "\n"
	}
	return s
}

// DecodeConfig parses Encode's output and checks it.
func DecodeConfig(s string) (Config, error) {
	c := DefaultConfig()
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return c, fmt.Errorf("config line %q: want key=value", line)
		}
		if err := c.Set(k, v); err != nil {
			return c, err
		}
	}
	return c, c.Check()
}

// watchdogTimeout is the watchdog's timeout in whole seconds: the host must reset before
// a stand-by may start the package, so no later than timeout - pace after the last feed
// (a feed follows each successful heartbeat).
func (c Config) watchdogTimeout() int { return int((c.Timeout - c.Pace) / time.Second) }
