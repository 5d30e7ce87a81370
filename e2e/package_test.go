package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"lite-raft/internal/harness"
)

// What dpkg must never leave in the test machine's own root: the test installs only into
// the hosts' overlays (isolateDpkg), and says so before and after.
var realRootMarks = []string{
	"/var/lib/dpkg/info/lite-raft.list",
	"/etc/logrotate.d/lite-raft",
	"/usr/lib/systemd/system/lite-raft@.service",
	"/usr/share/man/man1/lite-raft.1.gz",
	// the harness's mount point: the hosts' directories are mounted over it, never in it
	"/opt/lite-raft/lite-raft",
}

// TestPackageInstall builds the linux/amd64 release (make package) twice, checks the
// tarball, the .rpm and SHA256SUMS, installs the .deb with dpkg on three hosts whose
// lite-raft directories start empty, first-boots a cluster from /opt/lite-raft, upgrades
// one host to the second build by the README's steps, then removes and purges the package
// on another.
func TestPackageInstall(t *testing.T) {
	for _, tool := range []string{"dpkg", "dpkg-deb", "dpkg-query", "tar", "sha256sum", "man", "findmnt"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" is missing (Debian's dpkg, tar, coreutils, man-db, util-linux)")
		}
	}
	if !checkRealRootClean(t, "before the test") {
		t.FailNow() // it could not tell the hosts' installs from the machine's own
	}
	// after the harness's cleanup (cleanups run last first): the hosts' overlays are gone
	// by then, and nothing of theirs may have reached the real root
	t.Cleanup(func() { checkRealRootClean(t, "after the test") })

	// under /var/tmp: the hosts see it (their /tmp is their own) through /var's overlay
	dist, err := os.MkdirTemp("/var/tmp", "lite-raft-pkgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dist) })
	start := time.Now()
	v1 := buildPackages(t, filepath.Join(dist, "v1"), "1.0.0")
	v2 := buildPackages(t, filepath.Join(dist, "v2"), "1.0.1")
	t.Logf("make package (linux/amd64) twice: %v", time.Since(start).Round(time.Millisecond))
	checkArtifacts(t, v1, "1.0.0")

	// no template: the hosts' directories start empty, as on a fresh machine
	c := &cluster{t: t, Cluster: harness.New(t, 3, harness.Options{Timeout: 90 * time.Second})}
	showLogsOnFailure(c)
	deb1 := filepath.Join(v1, "lite-raft_1.0.0-1_amd64.deb")
	for _, h := range c.Hosts {
		if ents, err := os.ReadDir(h.Dir); err != nil || len(ents) != 0 {
			t.Fatalf("%s: its lite-raft directory should start empty: %d entries, %v", h.Name, len(ents), err)
		}
		isolateDpkg(t, h)
		out := dpkg(t, h, "-i", deb1)
		if !strings.Contains(out, "nothing was enabled or started") {
			t.Errorf("%s: postinst did not say that nothing was started:\n%s", h.Name, out)
		}
		if got := pkgStatus(t, h); got != "install ok installed 1.0.0-1" {
			t.Fatalf("%s: dpkg-query says %q", h.Name, got)
		}
	}
	checkRealRootClean(t, "with the package installed on the hosts")

	// the tutorial, from the installed directory; election_timeout is a conffile the
	// sysadmin edits (3 s shipped) and the upgrade must keep
	for _, h := range c.Hosts {
		c.must(h, "echo host1 host2 host3 > conf/cluster_nodes && echo 1 > conf/election_timeout")
		c.must(h, "./lite-raft first-boot")
	}
	lead := c.leader(c.Hosts, 20*time.Second)
	follower := others(c.Hosts, lead)[0]
	c.must(lead, "./lite-raft-client set pkgtest installed")
	c.expect(follower, "./lite-raft-client get pkgtest", 0, "installed")

	upgraded := follower
	upgrade(t, c, upgraded, filepath.Join(v2, "lite-raft_1.0.1-1_amd64.deb"))
	c.expect(upgraded, "./lite-raft-client get pkgtest", 0, "installed")

	out, _, code, err := c.Hosts[0].Exec("man", "-l", "-P", "cat", "/usr/share/man/man1/lite-raft.1.gz")
	if err != nil || code != 0 || !strings.Contains(out, "lite-raft") {
		t.Errorf("man -l on the installed page: exit %d, %v\n%s", code, err, tail(out, 5))
	}

	purged := others(c.Hosts, upgraded)[0]
	removeAndPurge(t, c, purged)
	rpmInstallErase(t, c, purged, filepath.Join(v1, "lite-raft-1.0.0-1.x86_64.rpm"))
}

func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if inCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// buildPackages runs make package's script for linux/amd64 into dir.
func buildPackages(t *testing.T, dir, version string) string {
	t.Helper()
	cmd := exec.Command("bash", "../scripts/package.sh")
	cmd.Env = append(os.Environ(), "GO="+filepath.Join(runtime.GOROOT(), "bin", "go"),
		"VERSION="+version, "PLATFORMS=linux/amd64", "DIST="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("package.sh VERSION=%s: %v\n%s", version, err, out)
	}
	return dir
}

// checkArtifacts checks the checksums, the tarball's layout and what the packages hold.
func checkArtifacts(t *testing.T, dir, version string) {
	t.Helper()
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("sha256sum", "-c", "--strict", "SHA256SUMS")
	listing := run("tar", "-tvzf", "lite-raft-"+version+"-linux-amd64.tar.gz")
	for _, want := range []string{" lite-raft/lite-raft\n", " lite-raft/lite-raft-client -> lite-raft\n",
		" lite-raft/lite-raft-remote -> lite-raft\n", " lite-raft/pkg/lite-raft\n", " lite-raft/pkg/pkg -> lite-raft\n",
		" lite-raft/pkg/control-scripts/template\n", " lite-raft/pkg/conf/\n", " lite-raft/conf/election_timeout\n",
		" lite-raft/conf/snapshot_period\n", " lite-raft/man/man1/lite-raft.1\n", " lite-raft/completion/lite-raft.bash\n",
		" lite-raft/scripts/lite-raft@.service\n", " lite-raft/scripts/lite-raft-pkg@.service\n",
		" lite-raft/scripts/boot/freebsd/lite_raft\n", " lite-raft/scripts/logrotate/lite-raft\n", " lite-raft/README.md\n"} {
		if !strings.Contains(listing, want) {
			t.Errorf("the tarball lacks %q:\n%s", strings.TrimSpace(want), listing)
		}
	}
	deb := "lite-raft_" + version + "-1_amd64.deb"
	if strings.Contains(listing, "cluster_nodes") || strings.Contains(run("dpkg-deb", "-c", deb), "cluster_nodes") {
		t.Error("conf/cluster_nodes is the agent's: no release may ship it")
	}
	conffiles := run("dpkg-deb", "--info", deb, "conffiles")
	for _, want := range []string{"/opt/lite-raft/conf/election_timeout", "/opt/lite-raft/conf/snapshot_period", "/etc/logrotate.d/lite-raft"} {
		if !strings.Contains(conffiles, want) {
			t.Errorf("conffiles lack %s:\n%s", want, conffiles)
		}
	}
	if _, err := exec.LookPath("rpm"); err != nil {
		if inCI() {
			t.Fatal("rpm is missing (Debian's rpm package, for rpm -qpl)")
		}
		t.Log("rpm is missing: the .rpm's listing is not checked")
		return
	}
	files := run("rpm", "-qpl", "lite-raft-"+version+"-1.x86_64.rpm")
	for _, want := range []string{"/opt/lite-raft/lite-raft", "/opt/lite-raft/lite-raft-client", "/opt/lite-raft/conf/election_timeout",
		"/usr/lib/systemd/system/lite-raft@.service", "/usr/lib/systemd/system/lite-raft-pkg@.service", "/etc/logrotate.d/lite-raft"} {
		if !strings.Contains(files, want+"\n") {
			t.Errorf("rpm -qpl lacks %s:\n%s", want, files)
		}
	}
}

// isolateDpkg gives h's mount namespace overlays over /usr, /etc and /var, their upper
// layers on a tmpfs of the host's, so dpkg reads the machine's real database (its
// dependencies are installed) and every write of dpkg, the maintainer scripts and
// triggers (man-db's index in /var/cache) lands in the host. /opt/lite-raft is the host's
// own directory already. The namespace outlives this call: the host's init holds it.
func isolateDpkg(t *testing.T, h *harness.Host) {
	t.Helper()
	const script = `set -eu
t=/run/lite-raft-pkgtest
# a mount below /usr or /var would not show through an overlay of it: refuse rather than
# let dpkg write through to the machine
if findmnt -rn -o TARGET | grep -E '^/(usr|var)/'; then
	echo "mounts below /usr or /var: cannot overlay them safely" >&2
	exit 1
fi
mkdir -p $t
mount -t tmpfs -o mode=0700,size=512m lrpkg $t
# the host's own ssh, hosts and hostname are bind mounts under /etc that an overlay's
# lower layer does not show: build the overlay aside, bind them into it, then move it
mkdir -p $t/etc/upper $t/etc/work $t/etc/merged
mount -t overlay lrpkg-etc -o lowerdir=/etc,upperdir=$t/etc/upper,workdir=$t/etc/work $t/etc/merged
findmnt -rn -o TARGET | grep '^/etc/' | while read -r m; do
	mount --bind "$m" "$t/etc/merged${m#/etc}"
done
mount --move $t/etc/merged /etc
for d in usr var; do
	mkdir -p $t/$d/upper $t/$d/work
	mount -t overlay lrpkg-$d -o lowerdir=/$d,upperdir=$t/$d/upper,workdir=$t/$d/work /$d
done
findmnt -n -o FSTYPE /etc; findmnt -n -o FSTYPE /usr; findmnt -n -o FSTYPE /var
`
	out, errOut, code, err := h.Exec("sh", "-c", script)
	if err != nil || code != 0 || strings.Count(out, "overlay") != 3 {
		t.Fatalf("%s: overlays for dpkg: exit %d, %v\n%s%s", h.Name, code, err, out, errOut)
	}
	// the host's own names must survive the /etc overlay: its agent reaches peers by them
	if hosts, _, _, _ := h.Exec("cat", "/etc/hosts"); !strings.Contains(hosts, h.Addr) {
		t.Fatalf("%s: /etc/hosts lost the host's own after the overlay:\n%s", h.Name, hosts)
	}
}

// dpkg runs dpkg in h's namespaces (never the test machine's: isolateDpkg ran first).
func dpkg(t *testing.T, h *harness.Host, args ...string) string {
	t.Helper()
	out, errOut, code, err := h.Exec(append([]string{"dpkg"}, args...)...)
	if err != nil || code != 0 {
		t.Fatalf("%s: dpkg %s: exit %d, %v\n%s%s", h.Name, strings.Join(args, " "), code, err, out, errOut)
	}
	return out + errOut
}

// pkgStatus is dpkg's status and version of lite-raft on h, or "" if it knows none.
func pkgStatus(t *testing.T, h *harness.Host) string {
	t.Helper()
	out, _, code, err := h.Exec("dpkg-query", "-W", "-f=${Status} ${Version}", "lite-raft")
	if err != nil {
		t.Fatalf("%s: dpkg-query: %v", h.Name, err)
	}
	if code != 0 {
		return ""
	}
	return strings.TrimSpace(out)
}

// upgrade follows the README's steps on h with the new .deb in the new binary's place:
// stop, install, start, then the host must come back into the cluster with the new build,
// its edited conf and the members the agent wrote.
func upgrade(t *testing.T, c *cluster, h *harness.Host, deb string) {
	t.Helper()
	c.must(h, "./lite-raft stop")
	// an edit of this host alone, made while it is down, as a sysadmin tuning it would
	c.must(h, "echo 5000 > conf/snapshot_period")
	dpkg(t, h, "-i", deb)
	if got := pkgStatus(t, h); got != "install ok installed 1.0.1-1" {
		t.Fatalf("%s: after the upgrade dpkg-query says %q", h.Name, got)
	}
	c.expect(h, "cat conf/election_timeout", 0, "1")
	c.expect(h, "cat conf/snapshot_period", 0, "5000")
	c.expect(h, "cat conf/cluster_nodes", 0, "host1 host2 host3")
	c.expect(h, "./lite-raft version", 0, "1.0.1")
	c.must(h, "./lite-raft start")
	c.eventually(20*time.Second, h.Name+" back as a member running 1.0.1", func() (bool, string) {
		st, ok := c.status(h)
		return ok && st.Build == "1.0.1" && st.Leader != "", st.Build + " led by " + st.Leader
	})
}

// removeAndPurge stops h's agent, removes the package (the agent's state stays) and then
// purges it (nothing stays).
func removeAndPurge(t *testing.T, c *cluster, h *harness.Host) {
	t.Helper()
	c.must(h, "./lite-raft stop")
	dpkg(t, h, "-r", "lite-raft")
	if got := pkgStatus(t, h); !strings.HasPrefix(got, "deinstall ok config-files") {
		t.Errorf("%s: after dpkg -r, dpkg-query says %q", h.Name, got)
	}
	for _, kept := range []string{"state", "state-machine-log", "temp", "message-log", "conf/cluster_nodes", "conf/election_timeout"} {
		if _, err := os.Stat(filepath.Join(h.Dir, kept)); err != nil {
			t.Errorf("%s: dpkg -r should keep %s: %v", h.Name, kept, err)
		}
	}
	for _, gone := range []string{"lite-raft", "lite-raft-client", "pkg/lite-raft"} {
		if _, err := os.Lstat(filepath.Join(h.Dir, gone)); err == nil {
			t.Errorf("%s: dpkg -r left %s", h.Name, gone)
		}
	}
	dpkg(t, h, "--purge", "lite-raft")
	if got := pkgStatus(t, h); got != "" && !strings.HasPrefix(got, "unknown ok not-installed") {
		t.Errorf("%s: after dpkg --purge, dpkg-query says %q", h.Name, got)
	}
	if ents, err := os.ReadDir(h.Dir); err != nil || len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("%s: dpkg --purge left %v in /opt/lite-raft (%v)", h.Name, names, err)
	}
	if _, _, code, _ := h.Exec("test", "-e", "/etc/logrotate.d/lite-raft"); code == 0 {
		t.Errorf("%s: dpkg --purge left /etc/logrotate.d/lite-raft", h.Name)
	}
}

// rpmInstallErase installs the .rpm on h (whose overlays hold rpm's database as well)
// and erases it: rpm has no purge, so the agent's files and an edited conf file stay.
// --nodeps: rpm's database on a Debian machine knows none of the dependencies.
func rpmInstallErase(t *testing.T, c *cluster, h *harness.Host, rpmFile string) {
	t.Helper()
	if _, err := exec.LookPath("rpm"); err != nil {
		return // checkArtifacts said so, or failed under CI
	}
	rpm := func(args ...string) string {
		t.Helper()
		out, errOut, code, err := h.Exec(append([]string{"rpm"}, args...)...)
		if err != nil || code != 0 {
			t.Fatalf("%s: rpm %s: exit %d, %v\n%s%s", h.Name, strings.Join(args, " "), code, err, out, errOut)
		}
		return out + errOut
	}
	if out := rpm("-i", "--nodeps", rpmFile); !strings.Contains(out, "nothing was enabled or started") {
		t.Errorf("%s: the rpm's %%post did not say that nothing was started:\n%s", h.Name, out)
	}
	c.expect(h, "./lite-raft version", 0, "1.0.0")
	c.must(h, "mkdir state && echo host1 > conf/cluster_nodes && echo 2 > conf/election_timeout")
	rpm("-e", "--nodeps", "lite-raft")
	for _, kept := range []string{"state", "conf/cluster_nodes", "conf/election_timeout.rpmsave"} {
		if _, err := os.Stat(filepath.Join(h.Dir, kept)); err != nil {
			t.Errorf("%s: rpm -e should keep %s: %v", h.Name, kept, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(h.Dir, "lite-raft")); err == nil {
		t.Errorf("%s: rpm -e left the binary", h.Name)
	}
}

// checkRealRootClean fails the test if the machine's own dpkg database or file system
// holds lite-raft's package.
func checkRealRootClean(t *testing.T, when string) bool {
	t.Helper()
	clean := true
	status, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		t.Errorf("%s: %v", when, err)
		return false
	}
	if strings.HasPrefix(string(status), "Package: lite-raft\n") || strings.Contains(string(status), "\nPackage: lite-raft\n") {
		t.Errorf("%s: the machine's own /var/lib/dpkg/status lists lite-raft", when)
		clean = false
	}
	if _, err := exec.LookPath("rpm"); err == nil {
		if out, err := exec.Command("rpm", "-q", "lite-raft").CombinedOutput(); err == nil {
			t.Errorf("%s: the machine's own rpm database lists lite-raft: %s", when, out)
			clean = false
		}
	}
	for _, p := range realRootMarks {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s: the machine's own root holds %s", when, p)
			clean = false
		}
	}
	return clean
}
