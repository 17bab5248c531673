package runtimes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"icebox/internal/errdefs"
)

// fakeInterpreter writes an executable that prints say for --version and
// counts its runs in path+".runs".
func fakeInterpreter(t *testing.T, path, say string) {
	t.Helper()
	script := "#!/bin/sh\necho x >> " + path + ".runs\necho '" + say + "'\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func runs(t *testing.T, path string) int {
	b, _ := os.ReadFile(path + ".runs")
	return strings.Count(string(b), "x")
}

// TestInterpreterVersions: an id is offered only on an interpreter of its
// version, asked once per interpreter file.
func TestInterpreterVersions(t *testing.T) {
	h, err := NewHost(HostConfig{})
	if err != nil {
		t.Fatal(err)
	}
	node := filepath.Join(t.TempDir(), "node")
	fakeInterpreter(t, node, "v22.3.0")
	for _, id := range []string{"nodejs20.x", "nodejs22.x"} {
		h.runtimes[id] = registry[id].at(node)
	}
	for range 3 {
		if _, err := h.Lookup("nodejs22.x"); err != nil {
			t.Fatalf("nodejs22.x on Node 22: %v", err)
		}
		_, err := h.Lookup("nodejs20.x")
		if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), node+" is Node.js 22.3.0, not 20") ||
			!strings.Contains(err.Error(), "--runtime-path nodejs20.x=PATH") {
			t.Fatalf("nodejs20.x on Node 22: %v", err)
		}
	}
	if n := runs(t, node); n != 1 {
		t.Errorf("node --version ran %d times, want once", n)
	}
	// Another interpreter at the same path is asked again.
	fakeInterpreter(t, node, "v20.11.1")
	if _, err := h.Lookup("nodejs20.x"); err != nil {
		t.Errorf("nodejs20.x on Node 20: %v", err)
	}
	if _, err := h.Lookup("nodejs22.x"); err == nil {
		t.Error("nodejs22.x offered on Node 20")
	}
	if n := runs(t, node); n != 2 {
		t.Errorf("node --version ran %d times, want twice", n)
	}

	py := filepath.Join(t.TempDir(), "python3")
	fakeInterpreter(t, py, "Python 3.12.1")
	h.runtimes["python3.12"] = registry["python3.12"].at(py)
	h.runtimes["python3.13"] = registry["python3.13"].at(py)
	if r, err := h.Lookup("python3.12"); err != nil || r.Command("app.handler", 128)[0] != py {
		t.Errorf("python3.12 on Python 3.12.1: %v %v", r.Command("", 128), err)
	}
	if _, err := h.Lookup("python3.13"); err == nil || !strings.Contains(err.Error(), "is Python 3.12.1, not 3.13") {
		t.Errorf("python3.13 on Python 3.12.1: %v", err)
	}
	h.runtimes["python3.11"] = registry["python3.11"].at(filepath.Join(t.TempDir(), "nothing"))
	if _, err := h.Lookup("python3.11"); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "nothing is missing") {
		t.Errorf("missing interpreter: %v", err)
	}
	st := h.Statuses()
	for _, s := range st {
		if s.ID == "python3.12" && (!s.Available || s.Why != py+" (Python 3.12.1)" || !strings.Contains(s.SDK, "boto3 ")) {
			t.Errorf("status: %+v", s)
		}
		if s.ID == "python3.13" && (s.Available || !strings.HasPrefix(s.Why, py+" is Python 3.12.1, not 3.13")) {
			t.Errorf("status: %+v", s)
		}
	}
}

func TestVersionMatches(t *testing.T) {
	for _, c := range []struct {
		want, got string
		ok        bool
	}{
		{"3.11", "3.11.2", true}, {"3.11", "3.11", true}, {"3.1", "3.11.2", false}, {"3.11", "3.12.0", false},
		{"20", "20.20.2", true}, {"2", "20.20.2", false}, {"22", "20.1.0", false}, {"17", "17.0.15", true},
	} {
		if versionMatches(c.want, c.got) != c.ok {
			t.Errorf("versionMatches(%q, %q) = %v", c.want, c.got, !c.ok)
		}
	}
}

// TestRuntimePaths: --runtime-path moves an id to an interpreter that
// sandboxes can see, and only ids whose interpreter can move.
func TestRuntimePaths(t *testing.T) {
	for paths, want := range map[*map[string]string]string{
		{"nodejs22.x": "/opt/node22/bin/node"}:  "under /usr/",
		{"nodejs22.x": "node"}:                  "absolute path",
		{"java17": "/usr/bin/java"}:             "cannot be moved",
		{"cobol1.0": "/usr/bin/cobc"}:           "not supported",
		{"nodejs22.x": "/usr/bin/no-such-node"}: "no such file",
	} {
		if _, err := NewHost(HostConfig{Paths: *paths}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want %q", *paths, err, want)
		}
	}
	if _, err := os.Stat("/usr/bin/python3.11"); err != nil {
		t.Skip("no /usr/bin/python3.11")
	}
	h, err := NewHost(HostConfig{Paths: map[string]string{"python3.12": "/usr/bin/python3.11"}})
	if err != nil {
		t.Fatal(err)
	}
	r := h.runtimes["python3.12"]
	if r.Interpreter != "/usr/bin/python3.11" || r.Command("", 128)[0] != "/usr/bin/python3.11" {
		t.Errorf("python3.12 not moved: %+v", r)
	}
	if _, err := h.Lookup("python3.12"); err == nil || !strings.Contains(err.Error(), "/usr/bin/python3.11 is Python 3.11") {
		t.Errorf("python3.12 on a Python 3.11: %v", err)
	}
}
