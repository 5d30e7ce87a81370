package conf

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"lite-raft/internal/logsink"
	"lite-raft/raftcore"
)

// Defaults for files that are missing.
const (
	DefaultElectionTimeout = 3 * time.Second
	DefaultSnapshotPeriod  = 10000
)

// Config is what conf/ says.
type Config struct {
	// ClusterNodes is empty when conf/cluster_nodes is missing: this host alone.
	ClusterNodes    []string
	ElectionTimeout time.Duration
	SnapshotPeriod  uint64
	// RemoteDir is where lite-raft lives on the other hosts ("" means the same path).
	RemoteDir string
	// Log is where the agent and the package monitors log (conf/log; default a file).
	Log logsink.Setting
	// LogLevel drops the lines less severe than it (conf/log_level; default info).
	LogLevel logsink.Level
}

// Path returns the path of a file in dir's conf/ folder.
func Path(dir, name string) string { return filepath.Join(dir, "conf", name) }

// readValue returns a file's content without surrounding space; ok is false if missing.
func readValue(dir, name string) (string, bool, error) {
	b, err := os.ReadFile(Path(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", Path(dir, name), err)
	}
	return strings.TrimSpace(string(b)), true, nil
}

// Load reads dir/conf/ and checks every value.
func Load(dir string) (Config, error) {
	c := Config{ElectionTimeout: DefaultElectionTimeout, SnapshotPeriod: DefaultSnapshotPeriod}
	if v, ok, err := readValue(dir, "cluster_nodes"); err != nil {
		return c, err
	} else if ok {
		if c.ClusterNodes, err = ParseClusterNodes(v); err != nil {
			return c, fmt.Errorf("%s: %w", Path(dir, "cluster_nodes"), err)
		}
	}
	if v, ok, err := readValue(dir, "election_timeout"); err != nil {
		return c, err
	} else if ok {
		if c.ElectionTimeout, err = ParseElectionTimeout(v); err != nil {
			return c, fmt.Errorf("%s: %w", Path(dir, "election_timeout"), err)
		}
	}
	if v, ok, err := readValue(dir, "snapshot_period"); err != nil {
		return c, err
	} else if ok {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return c, fmt.Errorf("%s: %q is not a whole number of entries above 0", Path(dir, "snapshot_period"), v)
		}
		c.SnapshotPeriod = n
	}
	if v, ok, err := readValue(dir, "log"); err != nil {
		return c, err
	} else if c.Log, err = logsink.Parse(v); err != nil {
		return c, fmt.Errorf("%s: %w", Path(dir, "log"), err)
	} else if !ok {
		c.Log = logsink.Setting{Kind: "file"}
	}
	if v, _, err := readValue(dir, "log_level"); err != nil {
		return c, err
	} else if c.LogLevel, err = logsink.ParseLevel(v); err != nil {
		return c, fmt.Errorf("%s: %w", Path(dir, "log_level"), err)
	}
	if v, ok, err := readValue(dir, "remote_dir"); err != nil {
		return c, err
	} else if ok && v != "" {
		if !filepath.IsAbs(v) {
			return c, fmt.Errorf("%s: %q is not an absolute path", Path(dir, "remote_dir"), v)
		}
		c.RemoteDir = v
	}
	return c, nil
}

// ParseClusterNodes splits a cluster_nodes value into host names and checks them.
func ParseClusterNodes(v string) ([]string, error) {
	nodes := strings.Fields(v)
	if len(nodes) == 0 {
		return nil, errors.New("no host names (remove the file to run this host alone)")
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		if err := raftcore.ValidateID(raftcore.NodeID(n)); err != nil {
			return nil, err
		}
		if seen[n] {
			return nil, fmt.Errorf("host %s is listed twice", n)
		}
		seen[n] = true
	}
	return nodes, nil
}

// ParseElectionTimeout reads seconds, decimals allowed, between 10 ms and one day.
func ParseElectionTimeout(v string) (time.Duration, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number of seconds", v)
	}
	if f < 0.01 || f > 86400 {
		return 0, fmt.Errorf("%s seconds is outside 0.01..86400", v)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// FormatClusterNodes renders members for conf/cluster_nodes.
func FormatClusterNodes(nodes []string) []byte {
	return []byte(strings.Join(nodes, " ") + "\n")
}

// ShortHostname is a node's identity: the host name up to the first dot.
func ShortHostname() (string, error) {
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("find this host's name: %w", err)
	}
	h, _, _ = strings.Cut(h, ".")
	return h, nil
}

// Remote is what `lite-raft remote` and pkg need to reach a cluster they are not part
// of: conf/remote_hosts (the members to try), conf/remote_path (where lite-raft lives on
// them; default: the same path as here) and conf/remote_user (default: as ssh_config says).
type Remote struct {
	Hosts []string
	Path  string
	User  string
}

// LoadRemote reads the remote settings of dir.
func LoadRemote(dir string) (Remote, error) {
	var r Remote
	v, ok, err := readValue(dir, "remote_hosts")
	if err != nil {
		return r, err
	}
	if !ok {
		return r, fmt.Errorf("%s is missing: write the cluster's host names there", Path(dir, "remote_hosts"))
	}
	if r.Hosts, err = ParseClusterNodes(v); err != nil {
		return r, fmt.Errorf("%s: %w", Path(dir, "remote_hosts"), err)
	}
	if r.Path, ok, err = readValue(dir, "remote_path"); err != nil {
		return r, err
	} else if !ok || r.Path == "" {
		r.Path = dir
	} else if !filepath.IsAbs(r.Path) {
		return r, fmt.Errorf("%s: %q is not an absolute path", Path(dir, "remote_path"), r.Path)
	}
	if r.User, _, err = readValue(dir, "remote_user"); err != nil {
		return r, err
	}
	if r.User != "" && strings.ContainsAny(r.User, " \t@:") {
		return r, fmt.Errorf("%s: %q is not a user name", Path(dir, "remote_user"), r.User)
	}
	return r, nil
}
