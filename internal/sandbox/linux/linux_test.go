package linux

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"icebox/internal/sandbox"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		RunInit()
	}
	os.Exit(m.Run())
}

func newManager(t *testing.T) *Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sandbox tests need root (CI runs as root)")
	}
	m, err := NewManager(Config{StateDir: t.TempDir(), CgroupParent: "icebox-test/" + filepath.Base(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func script(t *testing.T, body string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func run(t *testing.T, m *Manager, code string) (string, sandbox.ExitStatus) {
	t.Helper()
	sb, err := m.Create(context.Background(), sandbox.Spec{ID: "t" + filepath.Base(code), CodeDir: code, MemoryMB: 128, TmpMB: 64,
		Args: []string{"/var/task/bootstrap"}, Env: []string{"PATH=/usr/bin:/bin", "FOO=bar"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(sb.Output())
	select {
	case <-sb.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("sandbox did not exit")
	}
	return string(out), sb.Exit()
}

func TestSandboxIsolation(t *testing.T) {
	m := newManager(t)
	out, st := run(t, m, script(t, `
echo "uid=$(id -u) foo=$FOO pid=$$"
ls /
test -e /root && echo HAS_ROOT
touch /var/task/x 2>/dev/null && echo TASK_WRITABLE
touch /usr/x 2>/dev/null && echo USR_WRITABLE
echo data > /tmp/f && echo TMP_OK
grep CapEff /proc/self/status
grep NoNewPrivs /proc/self/status
cat /proc/self/cgroup
ls /sys/class/net 2>/dev/null
exit 3
`))
	t.Log(out)
	if st.Code != 3 || st.String() != "exit status 3" {
		t.Fatalf("exit = %+v", st)
	}
	for _, want := range []string{"uid=993 foo=bar pid=", "TMP_OK", "CapEff:\t0000000000000000", "NoNewPrivs:\t1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, bad := range []string{"HAS_ROOT", "TASK_WRITABLE", "USR_WRITABLE"} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %q", bad)
		}
	}
}

// start creates and starts a sandbox running a shell script.
func start(t *testing.T, m *Manager, body string, memMB int) sandbox.Sandbox {
	t.Helper()
	code := script(t, body)
	sb, err := m.Create(context.Background(), sandbox.Spec{ID: "s" + filepath.Base(code), CodeDir: code, MemoryMB: memMB, TmpMB: 64,
		Args: []string{"/var/task/bootstrap"}, Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Destroy() })
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	return sb
}

// lines yields the words a sandbox writes, dropping them when nobody reads.
func lines(sb sandbox.Sandbox) <-chan string {
	ch := make(chan string, 1024)
	go func() {
		defer close(ch)
		buf := make([]byte, 4096)
		for {
			n, err := sb.Output().Read(buf)
			for _, l := range strings.Fields(string(buf[:n])) {
				select {
				case ch <- l:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

func countFor(ch <-chan string, d time.Duration) int {
	n := 0
	deadline := time.After(d)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return n
			}
			n++
		case <-deadline:
			return n
		}
	}
}

func testFreezeAndKill(t *testing.T, m *Manager) {
	// A double-forked, SIGTERM-ignoring grandchild printing ticks.
	sb := start(t, m, `trap "" TERM; (trap "" TERM; while true; do echo tick; sleep 0.01; done) & wait`, 128)
	ch := lines(sb)
	if n := countFor(ch, 300*time.Millisecond); n < 5 {
		t.Fatalf("only %d ticks before freezing", n)
	}
	if err := sb.Freeze(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let in-flight output drain
	countFor(ch, 50*time.Millisecond)
	if n := countFor(ch, 300*time.Millisecond); n > 1 {
		t.Errorf("%d ticks while frozen", n)
	}
	if err := sb.Thaw(); err != nil {
		t.Fatal(err)
	}
	if n := countFor(ch, 300*time.Millisecond); n < 5 {
		t.Errorf("only %d ticks after thaw", n)
	}
	// Kill while frozen: everything in the pid namespace dies.
	if err := sb.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := sb.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sb.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("sandbox survived kill")
	}
	if st := sb.Exit(); st.String() != "signal: killed" {
		t.Errorf("exit after kill = %s", st)
	}
	if err := sb.Destroy(); err != nil {
		t.Errorf("destroy: %v", err)
	}
}

func TestFreezeThawKillV1OrHost(t *testing.T) {
	testFreezeAndKill(t, newManager(t))
}

// TestCgroupV2 drives the v2 driver. On a pure v2 host that is the host's
// hierarchy; on a v1 host with a cgroup2 mount beside it (this project's CI),
// the v2 mount has no memory/cpu/pids controllers, so freeze and kill are
// tested there and the limits on the v1 side.
func TestCgroupV2(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sandbox tests need root (CI runs as root)")
	}
	mount := "/sys/fs/cgroup"
	if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err != nil {
		mount = "/sys/fs/cgroup/unified"
		if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err != nil {
			t.Skip("no cgroup2 hierarchy mounted on this host")
		}
	}
	m, err := NewManager(Config{StateDir: t.TempDir(), CgroupMount: mount, CgroupParent: "icebox-test/" + filepath.Base(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	if m.CgroupVersion() != 2 {
		t.Fatalf("driver version %d at %s", m.CgroupVersion(), mount)
	}
	testFreezeAndKill(t, m)
}

func TestMemoryLimit(t *testing.T) {
	m := newManager(t)
	if m.CgroupVersion() == 2 && !m.cg.(*v2Driver).limits {
		t.Skip("memory controller not available on this cgroup2 hierarchy")
	}
	// A shell doubling a variable until the kernel kills it.
	sb := start(t, m, `x=a; while true; do x="$x$x"; done`, 128)
	io.Copy(io.Discard, sb.Output())
	select {
	case <-sb.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("memory hog was not killed")
	}
	if st := sb.Exit(); st.String() != "signal: killed" {
		t.Errorf("exit = %s, want killed", st)
	}
	if s := sb.Stats(); s.OOMKills == 0 || s.MaxMemoryBytes < 100<<20 || s.MaxMemoryBytes > 129<<20 {
		t.Errorf("stats = %+v; want an OOM kill with peak near 128 MiB", s)
	}
}

func TestCgroupsRemoved(t *testing.T) {
	m := newManager(t)
	sb := start(t, m, `sleep 100`, 128)
	var dirs []string
	switch g := sb.(*linuxSandbox).cg.(type) {
	case *v1Group:
		for _, p := range g.paths {
			dirs = append(dirs, p)
		}
	case *v2Group:
		dirs = append(dirs, g.dir)
	}
	if err := sb.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left behind", d)
		}
	}
}
