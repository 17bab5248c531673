package main

// What a newcomer reads: help, version, and the messages that say what to
// do next when something is missing or wrong.

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"icebox/internal/testkit"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"icebox/internal/auth"
	"icebox/internal/auth/authtest"
	"icebox/runtimes"
)

// cli runs the icebox binary with env (the test's own when nil) and returns
// its exit code, stdout and stderr. It must finish within 30 s.
func cli(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	return cliAs(t, env, nil, args...)
}

func cliAs(t *testing.T, env []string, cred *syscall.Credential, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, build.icebox, args...)
	cmd.Env = env
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("icebox %q still running after 30s\nstderr:\n%s", args, stderr.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("icebox %q: %v", args, err)
	}
	return exitCode(err), stdout.String(), stderr.String()
}

// TestVersion: icebox version and icebox --version print the version the
// build recorded, as go version -m reads it from the binary.
func TestVersion(t *testing.T) {
	t.Parallel()
	binaries(t)
	info, err := exec.Command("go", "version", "-m", build.icebox).Output()
	if err != nil {
		t.Fatal(err)
	}
	mod := regexp.MustCompile(`(?m)^\s+mod\s+icebox\s+(\S+)`).FindSubmatch(info)
	if mod == nil {
		t.Fatalf("go version -m shows no main module:\n%s", info)
	}
	want := []string{"icebox " + string(mod[1])}
	if rev := regexp.MustCompile(`(?m)^\s+build\s+vcs\.revision=(\S+)`).FindSubmatch(info); rev != nil {
		want = append(want, "revision "+string(rev[1]))
	}
	var first string
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		code, out, errOut := cli(t, nil, args...)
		if code != 0 || errOut != "" {
			t.Errorf("icebox %q: exit %d, stderr %q; want 0 and nothing", args, code, errOut)
		}
		for _, w := range want {
			if !strings.HasPrefix(out, "icebox ") || !strings.Contains(out, w) {
				t.Errorf("icebox %q printed %q, want it to contain %q", args, out, w)
			}
		}
		if first == "" {
			first = out
		} else if out != first {
			t.Errorf("icebox %q printed %q, icebox version %q", args, out, first)
		}
	}
}

// TestHelp: every command explains itself on --help, with examples, on
// stdout and with exit 0.
func TestHelp(t *testing.T) {
	t.Parallel()
	binaries(t)
	for name, d := range docs {
		about := strings.SplitN(d.about, "\n", 2)[0]
		for _, args := range [][]string{{name, "--help"}, {name, "-h"}, {"help", name}} {
			code, out, errOut := cli(t, nil, args...)
			if code != 0 || errOut != "" {
				t.Errorf("icebox %q: exit %d, stderr %q; want 0 and nothing", args, code, errOut)
			}
			for _, want := range []string{"usage: icebox " + name, about, "\nexamples:\n", "\n  icebox " + name} {
				if !strings.Contains(out, want) {
					t.Errorf("icebox %q: stdout lacks %q:\n%s", args, want, out)
				}
			}
		}
	}
	// keys and roles: each subcommand too, with its flags.
	for _, args := range [][]string{
		{"keys", "create", "--help"}, {"keys", "list", "-h"}, {"roles", "put", "--help"}, {"roles", "delete", "--help"},
	} {
		code, out, errOut := cli(t, nil, args...)
		if code != 0 || errOut != "" || !strings.Contains(out, "usage: icebox "+args[0]) ||
			!strings.Contains(out, "-policy") || !strings.Contains(out, "examples:") {
			t.Errorf("icebox %q: exit %d, stderr %q, stdout:\n%s\nwant exit 0, usage, flags and examples", args, code, errOut, out)
		}
	}
	if _, out, _ := cli(t, nil, "serve", "--help"); !strings.Contains(out, ackWaitFlag) || !strings.Contains(out, "-listen") {
		t.Errorf("serve --help lacks %q or -listen:\n%s", ackWaitFlag, out)
	}
	// Every command is documented and listed.
	for name := range commandFuncs {
		if _, ok := docs[name]; !ok {
			t.Errorf("command %s has no help", name)
		}
		if !strings.Contains(usage, "icebox "+name) {
			t.Errorf("command %s is not in the usage", name)
		}
	}
	if code, out, _ := cli(t, nil, "help"); code != 0 || !strings.Contains(out, "--help") {
		t.Errorf("icebox help: exit %d:\n%s", code, out)
	}
	if code, _, errOut := cli(t, nil, "keys", "bogus"); code == 0 || !strings.Contains(errOut, `unknown subcommand "bogus"`) || !strings.Contains(errOut, "icebox keys create") {
		t.Errorf("icebox keys bogus: exit %d, stderr %q", code, errOut)
	}
}

// TestCLIHints: a mistake a newcomer makes gets a message saying what to do.
func TestCLIHints(t *testing.T) {
	t.Parallel()
	binaries(t)
	dir := t.TempDir()
	withKeys := append(envWithoutAWS(), authtest.Env()...)

	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()

	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{\n  \"Statement\": [\n    {\"Effect\": \"Allow\",}\n  ]\n}\n"), 0o644)
	short := filepath.Join(dir, "short.json")
	os.WriteFile(short, []byte(`{"Statement": [`), 0o644)

	py := filepath.Join(dir, "py")
	os.MkdirAll(py, 0o755)
	os.WriteFile(filepath.Join(py, "app.py"), []byte("def handler(event, context):\n    return event\n"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(empty, 0o755)
	os.WriteFile(filepath.Join(empty, "README"), []byte("no code"), 0o644)
	jsZip := filepath.Join(dir, "js.zip")
	os.WriteFile(jsZip, zipOf(t, "index.js", "exports.handler = async e => e\n"), 0o644)

	noCreds := filepath.Join(dir, "elsewhere")
	for _, tc := range []struct {
		env    []string
		args   []string
		stderr []string
	}{
		{withKeys, []string{"status", "--endpoint", down}, []string{"is `icebox serve` running at " + down + "?"}},
		{withKeys, []string{"logs", "fn", "--endpoint", down}, []string{"is `icebox serve` running at " + down + "?"}},
		{withKeys, []string{"keys", "list", "--endpoint", down}, []string{"is `icebox serve` running at " + down + "?"}},
		{envWithoutAWS(), []string{"status", "--data-dir", noCreds}, []string{
			"AWS_ACCESS_KEY_ID", "no root credentials at " + filepath.Join(noCreds, auth.RootCredentialsFile), "pass the same --data-dir"}},
		{envWithoutAWS(), []string{"logs", "fn"}, []string{"--data-dir"}},
		{withKeys, []string{"keys", "create", "--user", "a", "--policy", bad, "--endpoint", down}, []string{
			"policy " + bad + ":3:24: invalid character '}'"}},
		{withKeys, []string{"roles", "put", "r", "--policy", short, "--endpoint", down}, []string{
			"policy " + short + ":1:15: unexpected end of JSON input"}},
		{withKeys, []string{"roles", "put", "r", "--policy", filepath.Join(dir, "missing.json")}, []string{
			filepath.Join(dir, "missing.json"), "no such file"}},
		{nil, []string{"run", "--code", py}, []string{
			"no bootstrap in " + py + ": for Python code pass --runtime python3.11 --handler app.FUNCTION"}},
		{nil, []string{"run", "--code", jsZip}, []string{
			"no bootstrap in " + jsZip + ": for Node.js code pass --runtime nodejs20.x --handler index.FUNCTION"}},
		{nil, []string{"run", "--code", empty}, []string{
			"no bootstrap in " + empty + ": give an executable named bootstrap", "--runtime and --handler"}},
		{nil, []string{"run", "--code", filepath.Join(dir, "nothing")}, []string{"run: ", "no such file"}},
		{nil, []string{"run", "--code", py, "--runtime", "python3.11"}, []string{"--runtime python3.11 needs --handler: FILE.FUNCTION"}},
	} {
		code, out, errOut := cli(t, tc.env, tc.args...)
		if code == 0 || out != "" {
			t.Errorf("icebox %q: exit %d, stdout %q; want non-zero and nothing", tc.args, code, out)
		}
		for _, want := range tc.stderr {
			if !strings.Contains(errOut, want) {
				t.Errorf("icebox %q: stderr lacks %q:\n%s", tc.args, want, errOut)
			}
		}
		if strings.Contains(errOut, "Couldn't find valid bootstrap") {
			t.Errorf("icebox %q: %s", tc.args, errOut)
		}
	}
}

// TestNonRootRefused: icebox serve and icebox run as another user than root
// fail at once, saying why, before writing anything in the data dir.
func TestNonRootRefused(t *testing.T) {
	t.Parallel()
	binaries(t)
	dataDir := t.TempDir()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// As nobody, who may write the data dir and run the binary.
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		if err := os.Chown(dataDir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		for d := filepath.Dir(dataDir); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
			os.Chmod(d, 0o755) // the test's own temporary directories
		}
		os.Chmod(build.dir, 0o755)
		os.Chmod(build.codeDir, 0o755)
	}
	for _, args := range [][]string{
		{"serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0"},
		{"run", "--code", build.codeDir, "--listen", "127.0.0.1:0"},
	} {
		code, _, errOut := cliAs(t, envWithoutAWS(), cred, args...)
		if code == 0 || !strings.Contains(errOut, "icebox must run as root") || !strings.Contains(errOut, "sandboxes need namespaces, cgroups and mounts") {
			t.Errorf("icebox %q as a user: exit %d, stderr:\n%s\nwant non-zero and why root is needed", args, code, errOut)
		}
	}
	if left, _ := os.ReadDir(dataDir); len(left) > 0 {
		t.Errorf("a refused serve wrote in its data dir: %v", left)
	}
}

// TestPortInUse: serve or run on a taken port says so and names --listen
// (--url-listen for the function URL listener's).
func TestPortInUse(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	binaries(t)
	// Both the port and the next one (serve's default --url-listen) are
	// taken: the taken --listen is what is reported.
	l, next := twoAdjacentListeners(t)
	defer l.Close()
	defer next.Close()
	for _, args := range [][]string{
		{"serve", "--data-dir", t.TempDir()},
		{"run", "--code", build.codeDir},
	} {
		args = append(args, "--listen", l.Addr().String())
		code, _, errOut := cli(t, nil, args...)
		if code == 0 || !strings.Contains(errOut, "address already in use") ||
			!strings.Contains(errOut, "something already listens on "+l.Addr().String()) || !strings.Contains(errOut, "pass --listen") {
			t.Errorf("icebox %q on a taken port: exit %d, stderr:\n%s\nwant non-zero and a hint to --listen", args, code, errOut)
		}
	}
	// The function URL listener's port taken: named, with its own flag.
	code, _, errOut := cli(t, nil, "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--url-listen", l.Addr().String())
	if code == 0 || !strings.Contains(errOut, "function URL listener on "+l.Addr().String()) || !strings.Contains(errOut, "pass --url-listen") {
		t.Errorf("serve with a taken --url-listen: exit %d, stderr:\n%s\nwant non-zero and a hint to --url-listen", code, errOut)
	}
}

// twoAdjacentListeners listens on two free loopback ports, the second the
// first's next.
func twoAdjacentListeners(t *testing.T) (net.Listener, net.Listener) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		next, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port+1))
		if err == nil {
			return l, next
		}
		l.Close()
	}
	t.Fatal("no two adjacent free loopback ports in 100 tries")
	return nil, nil
}

// TestRunShowsFunctionOutput: icebox run prints each call's START, the
// function's own lines, END and REPORT on its stdout, as AWS's runtime
// interface emulator does; and runs Python code given --runtime and
// --handler, as the README shows.
func TestRunShowsFunctionOutput(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	binaries(t)
	fnZip := filepath.Join(t.TempDir(), "fn.zip")
	if err := os.WriteFile(fnZip, build.slowZip, 0o644); err != nil {
		t.Fatal(err)
	}
	py := t.TempDir()
	os.WriteFile(filepath.Join(py, "app.py"), []byte("def handler(event, context):\n    print('hello from python')\n    return event\n"), 0o644)
	for _, tc := range []struct {
		name  string
		args  []string
		event string
		line  string
	}{
		{"provided", []string{"run", "--code", fnZip}, `{"action":"log","size":2,"data":"from fn \u001b[2J"}`, `line 1 from fn \x1b[2J`},
		{"python", []string{"run", "--code", py, "--runtime", "python3.11", "--handler", "app.handler"}, `{"x":1}`, "hello from python"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.name == "python" {
				if _, err := runtimes.Lookup("python3.11"); err != nil {
					t.Skip(err)
				}
			}
			s := startServer(t, how{ownGroup: true}, tc.args...)
			url := s.url + "/2015-03-31/functions/function/invocations"
			testkit.WaitFor(t, 10*time.Second, "run to print how to invoke", func() bool {
				return strings.Contains(s.stderr.String(), "invoke with: curl -d '{}' "+url)
			})
			code, out, h := post(t, url, "application/x-www-form-urlencoded", tc.event)
			if code != http.StatusOK || h.Get("X-Amz-Function-Error") != "" {
				t.Fatalf("invoke: %d %s (function error %q)", code, out, h.Get("X-Amz-Function-Error"))
			}
			id := h.Get("x-amzn-RequestId")
			want := []string{"START RequestId: " + id, tc.line + "\n", "END RequestId: " + id, "REPORT RequestId: " + id}
			testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("run to print %q", want), func() bool {
				for _, w := range want {
					if !strings.Contains(s.stdout.String(), w) {
						return false
					}
				}
				return true
			})
			o := s.stdout.String()
			if strings.Index(o, want[0]) > strings.Index(o, want[1]) || strings.Index(o, want[1]) > strings.Index(o, want[2]) {
				t.Errorf("run printed the call out of order:\n%s", o)
			}
			if strings.Contains(o, "\x1b") {
				t.Errorf("run printed a raw control character: %q", o)
			}
			// Ctrl-C in a terminal signals the whole foreground job.
			s.signalGroup(syscall.SIGINT, 10*time.Second)
			// An environment icebox shuts down writes no error of its own.
			if o := s.stdout.String() + s.stderr.String(); strings.Contains(o, "Traceback") || strings.Contains(o, "Error") {
				t.Errorf("shutting down made the runtime complain:\n%s", o)
			}
		})
	}
}

// zipOf is a zip holding one file.
func zipOf(t *testing.T, name, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err == nil {
		_, err = w.Write([]byte(body))
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
