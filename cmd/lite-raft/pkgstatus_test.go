package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestParseHistory(t *testing.T) {
	h := "2024-05-01T10:00:00.123Z host4 takes over from nobody (generation 1)\n\n" +
		"not a history line\n2024-05-01T10:00:01.000Z host4 state running"
	got := parseHistory(h)
	want := []pkgEvent{
		{Time: "2024-05-01T10:00:00.123Z", Host: "host4", Event: "takes over from nobody (generation 1)"},
		{Event: "not a history line"},
		{Time: "2024-05-01T10:00:01.000Z", Host: "host4", Event: "state running"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	// the text shows the lines as stored
	var lines []string
	for _, e := range got {
		lines = append(lines, e.String())
	}
	if strings.Join(lines, "\n") != strings.ReplaceAll(h, "\n\n", "\n") {
		t.Errorf("round trip: %q", strings.Join(lines, "\n"))
	}
	if e := parseHistory(""); e == nil || len(e) != 0 {
		t.Errorf("empty history: %#v, want an empty list", e)
	}
}

func TestPkgStatusPrinters(t *testing.T) {
	tick, gen, age, sbAge := int64(42), int64(3), 0.3, 1.2
	events := parseHistory("2024-05-01T10:00:00.123Z host4 state running")
	info := pkgInfo{Name: "web", Owner: "host4", State: "running", Tick: &tick, Generation: &gen,
		TickAge: &age, TickAgeExact: true, Enabled: true,
		Standbys: []pkgStandby{{Host: "host5", Fresh: true, TickAge: &age, TickAgeExact: true},
			{Host: "host6", Fresh: false}, {Host: "host7", Fresh: true, TickAge: &sbAge}},
		History: &events}

	var text bytes.Buffer
	printPkgText(&text, []pkgInfo{info})
	lines := strings.Split(text.String(), "\n")
	if f := strings.Fields(lines[1]); strings.Join(f, " ") != "web host4 running 42 300ms 3 host5,host7 yes no -" {
		t.Errorf("table row: %q", lines[1])
	}
	if !strings.Contains(text.String(), "recent history:\n2024-05-01T10:00:00.123Z host4 state running\n") {
		t.Errorf("no history:\n%s", text.String())
	}

	var one bytes.Buffer
	if err := printPkgJSON(&one, []pkgInfo{info}, true); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(one.Bytes(), &m); err != nil {
		t.Fatalf("%v\n%s", err, one.String())
	}
	for k, v := range map[string]any{"name": "web", "owner": "host4", "generation": 3.0, "tick": 42.0,
		"enabled": true, "halted": false, "move": "", "tick_age_seconds": 0.3} {
		if m[k] != v {
			t.Errorf("%s: %v, want %v", k, m[k], v)
		}
	}
	sbs := m["standbys"].([]any)
	if len(sbs) != 3 || sbs[1].(map[string]any)["tick_age_seconds"] != nil || sbs[2].(map[string]any)["tick_age_exact"] != false {
		t.Errorf("standbys: %v", sbs)
	}
	if h := m["history"].([]any); len(h) != 1 || h[0].(map[string]any)["host"] != "host4" {
		t.Errorf("history: %v", h)
	}

	// all packages: an array, without history; none at all: an empty array
	info.History = nil
	var all bytes.Buffer
	printPkgJSON(&all, []pkgInfo{info, {Name: "db", Standbys: []pkgStandby{}}}, false)
	var list []map[string]any
	if err := json.Unmarshal(all.Bytes(), &list); err != nil || len(list) != 2 {
		t.Fatalf("%v\n%s", err, all.String())
	}
	if _, ok := list[0]["history"]; ok || list[1]["tick"] != nil || list[1]["owner"] != "" {
		t.Errorf("list: %v", list)
	}
	var none bytes.Buffer
	printPkgJSON(&none, []pkgInfo{}, false)
	if strings.TrimSpace(none.String()) != "[]" {
		t.Errorf("no packages: %q", none.String())
	}
	// a package never initialised: dashes, as before
	text.Reset()
	printPkgText(&text, []pkgInfo{{Name: "nosuch", Enabled: true}})
	if f := strings.Fields(strings.Split(text.String(), "\n")[1]); strings.Join(f, " ") != "nosuch - - - - - - yes no -" {
		t.Errorf("unknown package: %q", text.String())
	}
}

// TestPkgConfirmStopped: confirm-stopped releases a package stop-failed on the host
// named, recording it as confirmed stopped (so the next owner does not fence it) and who
// said so; it refuses a package that is not stop-failed on that host.
func TestPkgConfirmStopped(t *testing.T) {
	dir := t.TempDir()
	startAgent(t, dir)
	set := func(k, v string) {
		if out, code := runApp(t, "--dir", dir, "client", "set", "packages/web/"+k, v); code != 0 {
			t.Fatalf("set %s: exit %d %s", k, code, out)
		}
	}
	get := func(k string) string {
		out, _ := runApp(t, "--dir", dir, "client", "get", "packages/web/"+k)
		return strings.TrimSpace(out)
	}
	set("owner", "host4")
	set("state", "running")
	set("history", "") // as pkg init leaves it
	if out, code := runApp(t, "--dir", dir, "pkg", "confirm-stopped", "web", "host4"); code != 1 || !strings.Contains(out, "not stop-failed on host4") {
		t.Fatalf("confirm-stopped of a running package: exit %d %q, want 1", code, out)
	}
	set("state", "stop-failed")
	set("previous", "host3 taken-over")
	if out, code := runApp(t, "--dir", dir, "pkg", "status", "web"); code != 0 || !strings.Contains(out, "its stop FAILED on host4") ||
		!strings.Contains(out, "pkg confirm-stopped web host4") || !strings.Contains(out, "previous owner: host3 taken-over") {
		t.Fatalf("pkg status of a stop-failed package: exit %d\n%s", code, out)
	}
	if out, code := runApp(t, "--dir", dir, "pkg", "status", "--json", "web"); code != 0 || !strings.Contains(out, `"state": "stop-failed"`) ||
		!strings.Contains(out, `"previous": "host3 taken-over"`) {
		t.Fatalf("pkg status --json of a stop-failed package: exit %d\n%s", code, out)
	}
	if out, code := runApp(t, "--dir", dir, "pkg", "confirm-stopped", "web", "host5"); code != 1 {
		t.Fatalf("confirm-stopped naming another host: exit %d %q, want 1", code, out)
	}
	if out, code := runApp(t, "--dir", dir, "pkg", "confirm-stopped", "web", "host4"); code != 0 || !strings.Contains(out, "released from host4") {
		t.Fatalf("confirm-stopped: exit %d %q", code, out)
	}
	if owner, prev := get("owner"), get("previous"); owner != "" || prev != "host4 confirmed" {
		t.Fatalf("after confirm-stopped: owner %q previous %q, want none and host4 confirmed", owner, prev)
	}
	if h := get("history"); !strings.Contains(h, "confirmed that host4 no longer runs it") {
		t.Fatalf("history: %q", h)
	}
}
