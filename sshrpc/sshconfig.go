package sshrpc

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// hostSettings is what ssh_config says about one host name, with OpenSSH's defaults.
type hostSettings struct {
	alias          string
	hostname       string
	port           string
	user           string
	identityFiles  []string
	identityAgent  string   // ssh-agent socket; "" for none
	knownHosts     []string // UserKnownHostsFile, then GlobalKnownHostsFile
	strict         string   // yes, no, accept-new (ask is treated as yes: nobody can answer)
	connectTimeout time.Duration
	aliveInterval  time.Duration
	aliveCountMax  int
	bindAddress    string
	proxyJump      string
}

func (h hostSettings) addr() string { return joinHostPort(h.hostname, h.port) }

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// sshConfigs holds the parsed ssh_config files, consulted in order: the first value
// found for a keyword wins, as in OpenSSH.
type sshConfigs struct {
	files []*ssh_config.Config
	home  string
	user  string
}

func loadSSHConfigs(paths []string, home string) (*sshConfigs, error) {
	sc := &sshConfigs{home: home}
	if u, err := user.Current(); err == nil {
		sc.user = u.Username
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read ssh config %s: %w", p, err)
		}
		cfg, err := ssh_config.DecodeBytes(data)
		if err != nil {
			return nil, fmt.Errorf("ssh config %s: %w", p, err)
		}
		sc.files = append(sc.files, cfg)
	}
	return sc, nil
}

func (sc *sshConfigs) get(alias, key string) string {
	for _, cfg := range sc.files {
		if v, err := cfg.Get(alias, key); err == nil && v != "" {
			return v
		}
	}
	return ""
}

func (sc *sshConfigs) getAll(alias, key string) []string {
	var all []string
	for _, cfg := range sc.files {
		if v, err := cfg.GetAll(alias, key); err == nil {
			all = append(all, v...)
		}
	}
	return all
}

// expand handles ~ and the % tokens that matter for file names.
func (sc *sshConfigs) expand(s string, h hostSettings) string {
	if strings.HasPrefix(s, "~/") {
		s = filepath.Join(sc.home, s[2:])
	}
	r := strings.NewReplacer("%d", sc.home, "%h", h.hostname, "%n", h.alias, "%p", h.port,
		"%r", h.user, "%u", sc.user, "%%", "%")
	return r.Replace(s)
}

// resolve computes the settings for alias.
func (sc *sshConfigs) resolve(alias string) (hostSettings, error) {
	h := hostSettings{alias: alias}
	h.hostname = sc.get(alias, "HostName")
	if h.hostname == "" {
		h.hostname = alias
	}
	h.hostname = strings.ReplaceAll(h.hostname, "%h", alias)
	h.port = sc.get(alias, "Port")
	if h.port == "" {
		h.port = "22"
	}
	if n, err := strconv.Atoi(h.port); err != nil || n <= 0 || n > 65535 {
		return h, fmt.Errorf("ssh config for %s: bad Port %q", alias, h.port)
	}
	h.user = sc.get(alias, "User")
	if h.user == "" {
		h.user = sc.user
	}
	for _, f := range sc.getAll(alias, "IdentityFile") {
		h.identityFiles = append(h.identityFiles, sc.expand(f, h))
	}
	if len(h.identityFiles) == 0 {
		for _, f := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			h.identityFiles = append(h.identityFiles, filepath.Join(sc.home, ".ssh", f))
		}
	}
	switch v := sc.get(alias, "IdentityAgent"); {
	case v == "" || v == "SSH_AUTH_SOCK":
		h.identityAgent = os.Getenv("SSH_AUTH_SOCK")
	case strings.EqualFold(v, "none"):
	case strings.HasPrefix(v, "$"):
		h.identityAgent = os.Getenv(v[1:])
	default:
		h.identityAgent = sc.expand(v, h)
	}
	user := sc.get(alias, "UserKnownHostsFile")
	if user == "" {
		user = "~/.ssh/known_hosts ~/.ssh/known_hosts2"
	}
	global := sc.get(alias, "GlobalKnownHostsFile")
	if global == "" {
		global = "/etc/ssh/ssh_known_hosts"
	}
	for _, f := range append(strings.Fields(user), strings.Fields(global)...) {
		if f != "/dev/null" && f != "none" {
			h.knownHosts = append(h.knownHosts, sc.expand(f, h))
		}
	}
	switch v := strings.ToLower(sc.get(alias, "StrictHostKeyChecking")); v {
	case "", "accept-new":
		// OpenSSH asks by default; an agent cannot ask, and DESIGN.md chose accept-new
		h.strict = "accept-new"
	case "yes", "ask":
		h.strict = "yes"
	case "no", "off":
		h.strict = "no"
	default:
		return h, fmt.Errorf("ssh config for %s: unknown StrictHostKeyChecking %q", alias, v)
	}
	var err error
	if h.connectTimeout, err = secondsSetting(sc.get(alias, "ConnectTimeout"), 10*time.Second); err != nil {
		return h, fmt.Errorf("ssh config for %s: ConnectTimeout: %w", alias, err)
	}
	if h.aliveInterval, err = secondsSetting(sc.get(alias, "ServerAliveInterval"), 0); err != nil {
		return h, fmt.Errorf("ssh config for %s: ServerAliveInterval: %w", alias, err)
	}
	h.aliveCountMax = 3
	if v := sc.get(alias, "ServerAliveCountMax"); v != "" {
		if h.aliveCountMax, err = strconv.Atoi(v); err != nil || h.aliveCountMax < 0 {
			return h, fmt.Errorf("ssh config for %s: bad ServerAliveCountMax %q", alias, v)
		}
	}
	h.bindAddress = sc.get(alias, "BindAddress")
	if pj := sc.get(alias, "ProxyJump"); pj != "" && !strings.EqualFold(pj, "none") {
		h.proxyJump = pj
	}
	return h, nil
}

func secondsSetting(v string, def time.Duration) (time.Duration, error) {
	if v == "" || strings.EqualFold(v, "none") {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a number of seconds", v)
	}
	if n == 0 {
		return def, nil
	}
	return time.Duration(n) * time.Second, nil
}
