package main

// What a daemon owns on the host beyond its own process: its sandboxes must
// end with it however it ends, its data dir is its alone, and its sandboxes'
// host ids are not another daemon's.

import (
	"context"
	"errors"
	"fmt"
	"icebox/internal/testkit"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"icebox/internal/auth/authtest"
)

// TestKill9EndsSandboxes: a daemon killed outright cannot clean up, and on
// cgroup v1 its frozen idle environments do not act on the SIGKILL its
// death sends them. Without any restart, its watchdog must end every one
// of its processes and remove its cgroups. The data dir is named through a
// symlink, which must not matter.
func TestKill9EndsSandboxes(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	binaries(t)
	_, link := linkedDataDir(t)
	s := startServer(t, how{}, "serve", "--data-dir", link)
	for _, fn := range []string{"a", "b"} {
		s.create(t, fn)
		s.invoke(t, fn, `{"n":1}`)
	}
	fp := record(t, s)
	t.Cleanup(func() { releaseCgroups(t, cgroupDirs(fp.hash)) })
	testkit.WaitFor(t, 10*time.Second, "both idle environments to be frozen", func() bool { return frozenSandboxes(fp.hash) >= 2 })
	if _, ok := watchdogOf(fp); !ok {
		t.Fatalf("no watchdog among the daemon's descendants: %+v", fp.procs)
	}

	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.done
	waitGone(t, fp, 10*time.Second)
}

// TestRestartAfterCrashCleansUp: should the watchdog die with the daemon
// (both killed outright), the frozen sandboxes stay; starting icebox again
// on the data dir, even through another spelling of its path, must remove
// them and their cgroups.
func TestRestartAfterCrashCleansUp(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	binaries(t)
	dataDir, link := linkedDataDir(t)
	s := startServer(t, how{}, "serve", "--data-dir", link)
	s.create(t, "echo")
	s.invoke(t, "echo", `{"a":1}`)
	crashed := record(t, s)
	// Should the restart fail, do not leave frozen processes on the host.
	t.Cleanup(func() { releaseCgroups(t, crashed.cgroups) })
	testkit.WaitFor(t, 10*time.Second, "the idle environment to be frozen", func() bool { return frozenSandboxes(crashed.hash) >= 1 })
	wd, ok := watchdogOf(crashed)
	if !ok {
		t.Fatalf("no watchdog among the daemon's descendants: %+v", crashed.procs)
	}
	for _, pid := range []int{wd.pid, s.pid()} {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	<-s.done
	var left []string
	for _, pi := range crashed.procs {
		if now, ok := stillRunning(pi); ok {
			left = append(left, fmt.Sprintf("%d %s (%c)", pi.pid, pi.cmdline, now.state))
		}
	}
	t.Logf("after SIGKILL of the daemon and its watchdog, %d of its %d descendants remain: %v", len(left), len(crashed.procs), left)

	s = startServer(t, how{}, "serve", "--data-dir", dataDir)
	checkRestartCleanedUp(t, crashed)
	s.invoke(t, "echo", `{"a":2}`)
	fp := record(t, s)
	if fp.hash != crashed.hash {
		t.Errorf("cgroups named %s through the symlink, %s through the real path", crashed.hash, fp.hash)
	}
	s.signal(syscall.SIGTERM, 10*time.Second)
	checkGone(t, fp, false)
}

// TestSecondDaemonOnSameDataDir: a second `icebox serve` on a data dir in
// use, named the same way or through a symlink, fails at once naming the
// first daemon's pid, and leaves the first daemon's sandboxes and cgroups
// alone: it keeps serving.
func TestSecondDaemonOnSameDataDir(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	binaries(t)
	dataDir, link := linkedDataDir(t)
	s := startServer(t, how{}, "serve", "--data-dir", dataDir)
	s.create(t, "echo")
	s.invoke(t, "echo", `{"a":1}`)
	fp := record(t, s)

	for _, dir := range []string{dataDir, link} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, build.icebox, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), authtest.ServerEnv()...)
		out, err := cmd.CombinedOutput()
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
		cancel()
		want := fmt.Sprintf("pid %d", s.pid())
		switch {
		case timedOut:
			t.Errorf("a second daemon on %s still ran after 10s, want it to fail at once\n%s", dir, out)
		case exitCode(err) == 0:
			t.Errorf("a second daemon on %s exited 0, want a failure\n%s", dir, out)
		case !strings.Contains(string(out), want):
			t.Errorf("a second daemon on %s failed without naming the holder (%q):\n%s", dir, want, out)
		}
	}

	for _, pi := range fp.procs {
		if _, ok := stillRunning(pi); !ok {
			t.Errorf("process %d (%s) of the first daemon ended when a second one started", pi.pid, pi.cmdline)
		}
	}
	for _, d := range fp.cgroups {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("cgroup %s of the first daemon is gone after a second one started: %v", d, err)
		}
	}
	s.invoke(t, "echo", `{"a":2}`)
	fp = record(t, s)
	s.signal(syscall.SIGTERM, 10*time.Second)
	checkGone(t, fp, false)
}

// TestDaemonsGetDisjointIDRanges: two daemons with different data dirs
// never map their sandboxes to the same host ids.
func TestDaemonsGetDisjointIDRanges(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	binaries(t)
	type span struct {
		pid         int
		first, last uint64
	}
	var spans [2][]span
	var servers [2]*server
	for i := range servers {
		s := startServer(t, how{}, "serve", "--data-dir", t.TempDir())
		s.create(t, "echo")
		s.invoke(t, "echo", `{"a":1}`)
		servers[i] = s
	}
	for i, s := range servers {
		for _, pi := range descendants(s.pid()) {
			if pi.cmdline != "icebox init" {
				continue
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pi.pid))
			if err != nil {
				continue // ended meanwhile
			}
			f := strings.Fields(string(b))
			if len(f) != 3 || f[0] != "0" {
				t.Fatalf("sandbox init %d: uid_map %q, want one range from 0", pi.pid, b)
			}
			first, _ := strconv.ParseUint(f[1], 10, 64)
			n, _ := strconv.ParseUint(f[2], 10, 64)
			spans[i] = append(spans[i], span{pi.pid, first, first + n - 1})
		}
		if len(spans[i]) == 0 {
			t.Fatalf("daemon %d has no sandbox init to read the uid_map of", s.pid())
		}
	}
	t.Logf("sandbox host uid ranges: %v and %v", spans[0], spans[1])
	for _, a := range spans[0] {
		for _, b := range spans[1] {
			if a.first <= b.last && b.first <= a.last {
				t.Errorf("sandbox %d of one daemon maps to host ids %d–%d, sandbox %d of another to %d–%d",
					a.pid, a.first, a.last, b.pid, b.first, b.last)
			}
		}
	}
	for _, s := range servers {
		fp := record(t, s)
		s.signal(syscall.SIGTERM, 10*time.Second)
		checkGone(t, fp, false)
	}
}

// linkedDataDir makes a data dir and a symlink to it: two spellings of it.
func linkedDataDir(t *testing.T) (dir, link string) {
	t.Helper()
	dir = t.TempDir()
	link = filepath.Join(t.TempDir(), "data")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	return dir, link
}
