package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConf(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "conf"), 0o755)
	for name, v := range files {
		if err := os.WriteFile(Path(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoad(t *testing.T) {
	c, err := Load(writeConf(t, nil))
	if err != nil || c.ClusterNodes != nil || c.ElectionTimeout != DefaultElectionTimeout || c.SnapshotPeriod != DefaultSnapshotPeriod {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = Load(writeConf(t, map[string]string{"cluster_nodes": " h1 h2\th3\n", "election_timeout": "0.5\n",
		"snapshot_period": "200", "remote_dir": "/opt/lite-raft"}))
	if err != nil || strings.Join(c.ClusterNodes, ",") != "h1,h2,h3" || c.ElectionTimeout != 500*time.Millisecond ||
		c.SnapshotPeriod != 200 || c.RemoteDir != "/opt/lite-raft" {
		t.Fatalf("values: %+v %v", c, err)
	}
	// the repository's own defaults load
	if _, err := Load(".."); err != nil {
		t.Fatalf("shipped conf/: %v", err)
	}
}

func TestLoadRefusesBadValues(t *testing.T) {
	for _, tc := range []struct{ file, value, msg string }{
		{"cluster_nodes", "", "no host names"},
		{"cluster_nodes", "h1 h2 h1", "listed twice"},
		{"cluster_nodes", "h1 h,2", "not allowed"},
		{"election_timeout", "abc", "not a number"},
		{"election_timeout", "-1", "outside"},
		{"election_timeout", "0", "outside"},
		{"election_timeout", "NaN", "not a number"},
		{"snapshot_period", "-5", "whole number"},
		{"snapshot_period", "0", "whole number"},
		{"snapshot_period", "1.5", "whole number"},
		{"remote_dir", "relative/path", "absolute"},
	} {
		_, err := Load(writeConf(t, map[string]string{tc.file: tc.value}))
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), tc.file) {
			t.Errorf("%s=%q: %v (want an error naming the file and saying %q)", tc.file, tc.value, err, tc.msg)
		}
	}
}

func FuzzParseClusterNodes(f *testing.F) {
	f.Add("h1 h2 h3")
	f.Add(" h1\th2\n")
	f.Add("h1 h1")
	f.Fuzz(func(t *testing.T, v string) {
		nodes, err := ParseClusterNodes(v)
		if err != nil {
			return
		}
		again, err := ParseClusterNodes(string(FormatClusterNodes(nodes)))
		if err != nil || strings.Join(again, " ") != strings.Join(nodes, " ") {
			t.Fatalf("%q does not survive FormatClusterNodes: %v", v, err)
		}
	})
}

func FuzzParseElectionTimeout(f *testing.F) {
	for _, s := range []string{"3", "0.5", "-1", "1e3", "NaN", "0x10", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, err := ParseElectionTimeout(v)
		if err == nil && (d < 10*time.Millisecond || d > 24*time.Hour) {
			t.Fatalf("%q accepted as %v", v, d)
		}
	})
}
