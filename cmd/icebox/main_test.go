package main

// Binary-level tests: the icebox binary is built once and run as a user runs
// it, as a subprocess signalled like a terminal or a service manager would.
// What these tests own is what only the binary can get wrong: flag parsing,
// exit codes, signal handling, and leaving the host clean on shutdown
// (processes, cgroups, mounts).

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"icebox/internal/testkit"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"icebox/internal/auth/authtest"
)

// TestServeShutdownLeavesNothing stops `icebox serve` with SIGTERM and, after
// a restart on the same data dir, with SIGINT; each time the daemon must exit
// 0 promptly and leave no process, cgroup or mount behind.
//
// It is deliberately not parallel: while it runs, no other test of this
// package runs the icebox binary, so "no process of the binary remains" is
// exact.
func TestServeShutdownLeavesNothing(t *testing.T) {
	requireRoot(t)
	binaries(t)
	dataDir := t.TempDir()
	if left := cgroupDirs(cgroupHash(dataDir)); len(left) > 0 {
		t.Fatalf("cgroups for a fresh data dir before start: %v", left)
	}

	s := startServer(t, how{}, "serve", "--data-dir", dataDir)
	if s.dataDir != dataDir {
		t.Fatalf("daemon logged data_dir %q, want %q", s.dataDir, dataDir)
	}
	s.create(t, "echo")
	s.invoke(t, "echo", `{"a":1}`)
	s.invoke(t, "echo", `{"a":1}`)
	fp := record(t, s)
	running := false
	for _, pi := range fp.procs {
		running = running || pi.cmdline == "/var/task/bootstrap"
	}
	if !running {
		t.Errorf("the function's runtime (/var/task/bootstrap) is not among the daemon's descendants: %+v", fp.procs)
	}
	if fp.bridge == "" {
		t.Error("no egress bridge: icebox serve should give functions the network (--egress nat) unless told otherwise")
	}
	s.signal(syscall.SIGTERM, 10*time.Second)
	checkGone(t, fp, true)
	if t.Failed() {
		t.FailNow()
	}

	// Restart, naming the same data dir relatively: the daemon must find the
	// same functions and use the same cgroup parent (it makes the path absolute).
	s = startServer(t, how{dir: filepath.Dir(dataDir)}, "serve", "--data-dir", "./"+filepath.Base(dataDir))
	if s.dataDir != dataDir {
		t.Errorf("daemon started with a relative --data-dir logged %q, want %q", s.dataDir, dataDir)
	}
	if names := s.functionNames(t); len(names) != 1 || names[0] != "echo" {
		t.Fatalf("after restart functions are %v, want [echo]", names)
	}
	s.invoke(t, "echo", `{"a":2}`)
	fp = record(t, s)
	s.signal(syscall.SIGINT, 10*time.Second)
	checkGone(t, fp, true)
}

// releaseCgroups thaws and empties what is left of the given sandbox
// cgroups and removes them: the cleanup a restarted daemon should have done.
// cgroup.kill exists on v2 only: every process left is also killed by pid.
func releaseCgroups(t testing.TB, dirs []string) {
	t.Helper()
	procs := func(d string) []string {
		b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		return strings.Fields(string(b))
	}
	var left []string
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			left = append(left, d)
			_ = os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0o644)
			_ = os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte("0"), 0o644)
			_ = os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0o644)
			for _, pid := range procs(d) {
				if n, err := strconv.Atoi(pid); err == nil {
					_ = syscall.Kill(n, syscall.SIGKILL)
				}
			}
		}
	}
	if len(left) == 0 {
		return
	}
	testkit.WaitFor(t, 10*time.Second, "the processes left in the sandbox cgroups to die", func() bool {
		for _, d := range left {
			if len(procs(d)) > 0 {
				return false
			}
		}
		return true
	})
	slices.Reverse(left) // children before parents
	for _, d := range left {
		_ = os.Remove(d)
	}
}

// TestSignalToProcessGroup: Ctrl-C in a terminal signals the daemon's whole
// process group, sandbox inits included. In-flight calls must still finish
// (the daemon lets them, and only then destroys the sandboxes), and the host
// must be left clean.
func TestSignalToProcessGroup(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	binaries(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			s := startServer(t, how{ownGroup: true}, "serve", "--data-dir", t.TempDir())
			s.createFrom(t, "slow", build.slowZip)
			type reply struct {
				code int
				body []byte
				h    http.Header
				err  error
			}
			replied := make(chan reply, 1)
			go func() {
				var r reply
				r.code, r.body, r.h, r.err = tryPost(s.url+"/2015-03-31/functions/slow/invocations", "application/json", `{"action":"sleep","ms":1500}`)
				replied <- r
			}()
			// The runtime runs only once the daemon has taken the call.
			var fp footprint
			testkit.WaitFor(t, 10*time.Second, "the function's runtime to start", func() bool {
				for _, pi := range descendants(s.pid()) {
					if pi.cmdline == "/var/task/bootstrap" {
						return true
					}
				}
				return false
			})
			fp = record(t, s)
			s.signalGroup(sig, 10*time.Second)
			r := <-replied
			if r.err != nil || r.code != http.StatusOK || r.h.Get("X-Amz-Function-Error") != "" {
				t.Errorf("call in flight during %v to the process group: %d %s %v (function error %q), want it to finish",
					sig, r.code, r.body, r.err, r.h.Get("X-Amz-Function-Error"))
			}
			checkGone(t, fp, false)
		})
	}
}

// TestRunRIEMode serves one function like AWS's runtime interface emulator,
// from a directory and from a zip, called the way curl -d calls it.
func TestRunRIEMode(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	binaries(t)
	for _, tc := range []struct{ name, code string }{{"dir", build.codeDir}, {"zip", build.zipPath}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, how{}, "run", "--code", tc.code)
			// The API answers before the function exists: daemon.Start
			// serves at once and run creates the function afterwards, then
			// prints how to invoke it. Calls in between get 404; wait for
			// the hint as a user would.
			hint := "invoke with: curl -d '{}' " + s.url + "/2015-03-31/functions/function/invocations"
			testkit.WaitFor(t, 10*time.Second, "run to print how to invoke", func() bool {
				if s.exited() {
					t.Fatalf("icebox run exited: %v\n%s", s.err, s.stderr.String())
				}
				return strings.Contains(s.stderr.String(), hint)
			})
			url := s.url + "/2015-03-31/functions/function/invocations"
			// curl -d sends a form content type; the payload is still the event.
			code, out, _ := post(t, url, "application/x-www-form-urlencoded", `{"x":1}`)
			if code != http.StatusOK || string(out) != `{"x":1}` {
				t.Fatalf("invoke: %d %q, want 200 {\"x\":1}", code, out)
			}

			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					event := fmt.Sprintf(`{"x":%d}`, i)
					code, out, _, err := tryPost(url, "application/x-www-form-urlencoded", event)
					if err != nil || code != http.StatusOK || string(out) != event {
						t.Errorf("concurrent invoke %d: %d %q %v, want 200 %s", i, code, out, err, event)
					}
				})
			}
			wg.Wait()

			fp := record(t, s)
			s.signal(syscall.SIGTERM, 10*time.Second)
			checkGone(t, fp, false)
			// run's data dir is its own temporary directory.
			if _, err := os.Stat(s.dataDir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("run's temporary data dir %s remains after exit (%v)", s.dataDir, err)
			}
		})
	}
}

// TestLogsCommand reads a function's log through `icebox logs`, one-shot and
// following, with flags before and after the function name.
func TestLogsCommand(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	binaries(t)
	s := startServer(t, how{}, "serve", "--data-dir", t.TempDir())
	s.create(t, "logged")
	id := s.invoke(t, "logged", `{"n":1}`)
	if id == "" {
		t.Fatal("invoke returned no x-amzn-RequestId")
	}
	hasCall := func(out, id string) bool {
		for _, l := range []string{"START RequestId: " + id, "END RequestId: " + id, "REPORT RequestId: " + id} {
			if !strings.Contains(out, l) {
				return false
			}
		}
		return true
	}

	for _, args := range [][]string{
		{"logs", "--endpoint", s.url, "logged"},
		{"logs", "logged", "--endpoint", s.url},
		{"logs", "logged", "--since", "10m", "--endpoint=" + s.url},
	} {
		// Log events are stored asynchronously: allow a few seconds.
		var out []byte
		var err error
		testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("%v to print call %s", args, id), func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, build.icebox, args...)
			cmd.Env = append(os.Environ(), authtest.Env()...)
			cmd.Stderr = &stderr
			out, err = cmd.Output()
			if err != nil {
				t.Fatalf("%v: %v\n%s", args, err, stderr.String())
			}
			return hasCall(string(out), id)
		})
	}

	// A function logging to a group of its own (LoggingConfig.LogGroup) is
	// read from there.
	create := fmt.Sprintf(`{"FunctionName":"grouped","Runtime":"provided.al2023","Handler":"bootstrap","Role":"arn:aws:iam::000000000000:role/x",`+
		`"Code":{"ZipFile":%q},"LoggingConfig":{"LogGroup":"/shared/apps"}}`, base64.StdEncoding.EncodeToString(build.zip))
	if code, out, _ := post(t, s.url+"/2015-03-31/functions", "application/json", create); code != http.StatusCreated {
		t.Fatalf("create grouped: %d %s", code, out)
	}
	grouped := s.invoke(t, "grouped", `{"n":2}`)
	testkit.WaitFor(t, 10*time.Second, "icebox logs to read the function's own group", func() bool {
		cmd := exec.Command(build.icebox, "logs", "grouped", "--endpoint", s.url)
		cmd.Env = append(os.Environ(), authtest.Env()...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("icebox logs grouped: %v", err)
		}
		return hasCall(string(out), grouped)
	})

	// What a function prints cannot drive the reader's terminal: control
	// characters come out escaped unless --raw asks for the bytes.
	s.createFrom(t, "hostile", build.slowZip)
	hostile := `{"action":"log","size":1,"data":"\u001b]0;pwned\u0007 \u001b[2J"}`
	if code, out, _ := post(t, s.url+"/2015-03-31/functions/hostile/invocations", "application/json", hostile); code != http.StatusOK {
		t.Fatalf("invoke hostile: %d %s", code, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"logs", "hostile", "--endpoint", s.url}, `line 0 \x1b]0;pwned\x07 \x1b[2J`},
		{[]string{"logs", "hostile", "--endpoint", s.url, "--raw"}, "line 0 \x1b]0;pwned\x07 \x1b[2J"},
	} {
		var out []byte
		testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("%v to print the hostile line", c.args), func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, build.icebox, c.args...)
			cmd.Env = append(os.Environ(), authtest.Env()...)
			cmd.Stderr = &stderr
			var err error
			if out, err = cmd.Output(); err != nil {
				t.Fatalf("%v: %v\n%s", c.args, err, stderr.String())
			}
			return strings.Contains(string(out), "line 0 ")
		})
		if !strings.Contains(string(out), c.want+"\n") {
			t.Errorf("%v printed %q; want a line %q", c.args, out, c.want)
		}
		if raw := slices.Contains(c.args, "--raw"); !raw && strings.ContainsAny(string(out), "\x1b\x07") {
			t.Errorf("%v printed raw control characters: %q", c.args, out)
		}
	}

	// --follow keeps running and prints later calls too.
	f := start(t, how{}, "logs", "logged", "--endpoint", s.url, "--follow")
	testkit.WaitFor(t, 10*time.Second, "logs --follow to print the earlier call", func() bool {
		if f.exited() {
			t.Fatalf("logs --follow exited: %v\n%s", f.err, f.stderr.String())
		}
		return hasCall(f.stdout.String(), id)
	})
	later := s.invoke(t, "logged", `{"n":2}`)
	testkit.WaitFor(t, 10*time.Second, "logs --follow to print a later call", func() bool {
		if f.exited() {
			t.Fatalf("logs --follow exited: %v\n%s", f.err, f.stderr.String())
		}
		return hasCall(f.stdout.String(), later)
	})
	if n := strings.Count(f.stdout.String(), "START RequestId: "+id); n != 1 {
		t.Errorf("logs --follow printed the first call's START %d times, want once:\n%s", n, f.stdout.String())
	}
	f.signal(syscall.SIGINT, 5*time.Second)

	fp := record(t, s)
	s.signal(syscall.SIGTERM, 10*time.Second)
	checkGone(t, fp, false)
}

// TestCLIErrors: mistakes are reported on stderr with a non-zero status,
// before anything is started.
func TestCLIErrors(t *testing.T) {
	t.Parallel()
	binaries(t)
	dataDir := filepath.Join(t.TempDir(), "never-created")
	for _, tc := range []struct {
		args   []string
		code   int // 0: any non-zero
		stderr []string
	}{
		{[]string{"bogus"}, 2, []string{`unknown command "bogus"`, "usage:", "icebox serve"}},
		{nil, 2, []string{"usage:", "icebox serve"}},
		{[]string{"serve", "--account-id", "12", "--listen", "127.0.0.1:0", "--data-dir", dataDir}, 0, []string{`account id "12" must be 12 digits`}},
		{[]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "stray"}, 0, []string{`unexpected argument "stray"`}},
		{[]string{"run"}, 0, []string{"--code is required"}},
		{[]string{"logs"}, 0, []string{"usage: icebox logs NAME"}},
		{[]string{"logs", "a", "b"}, 0, []string{"usage: icebox logs NAME"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		cmd := exec.CommandContext(ctx, build.icebox, tc.args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
		cancel()
		switch code := exitCode(err); {
		case timedOut:
			t.Errorf("icebox %q still running after 15s, want it to fail at once", tc.args)
		case code == 0, tc.code > 0 && code != tc.code:
			t.Errorf("icebox %q: exit %d (%v), want %s\nstderr:\n%s", tc.args, code, err,
				map[bool]string{true: strconv.Itoa(tc.code), false: "non-zero"}[tc.code > 0], stderr.String())
		}
		for _, want := range tc.stderr {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("icebox %q: stderr lacks %q:\n%s", tc.args, want, stderr.String())
			}
		}
		if stdout.Len() > 0 {
			t.Errorf("icebox %q wrote to stdout on error: %q", tc.args, stdout.String())
		}
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a rejected serve created its data dir %s (%v)", dataDir, err)
	}

	out, err := exec.Command(build.icebox, "--help").Output()
	if err != nil || !strings.Contains(string(out), "usage:") {
		t.Errorf("icebox --help: %v, %q; want exit 0 and usage on stdout", err, out)
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		names    []string
		endpoint string
		follow   bool
	}{
		{[]string{"fn"}, []string{"fn"}, "default", false},
		{[]string{"fn", "--follow"}, []string{"fn"}, "default", true},
		{[]string{"--endpoint", "http://h:1", "fn"}, []string{"fn"}, "http://h:1", false},
		{[]string{"fn", "--endpoint", "http://h:1", "--follow"}, []string{"fn"}, "http://h:1", true},
		{[]string{"--follow", "fn", "-endpoint=http://h:1"}, []string{"fn"}, "http://h:1", true},
		{[]string{"a", "--follow", "b"}, []string{"a", "b"}, "default", true},
		{[]string{"--", "--follow"}, []string{"--follow"}, "default", false},
		{[]string{"fn", "--", "-x"}, []string{"fn", "-x"}, "default", false},
		{nil, nil, "default", false},
	} {
		fs := flag.NewFlagSet("logs", flag.ContinueOnError)
		endpoint := fs.String("endpoint", "default", "")
		follow := fs.Bool("follow", false, "")
		names, err := parseInterspersed(fs, tc.args)
		if err != nil || !slices.Equal(names, tc.names) || *endpoint != tc.endpoint || *follow != tc.follow {
			t.Errorf("parseInterspersed(%q) = %q, %v, endpoint %q, follow %v; want %q, endpoint %q, follow %v",
				tc.args, names, err, *endpoint, *follow, tc.names, tc.endpoint, tc.follow)
		}
	}
}
