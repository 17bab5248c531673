package linux

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"icebox/internal/testkit"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"icebox/internal/sandbox"
	"icebox/internal/sandbox/linux/abitest"
	"icebox/internal/sandbox/linux/pid1"
)

func TestMain(m *testing.M) {
	abitest.Main()
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		RunInit()
	}
	os.Exit(m.Run())
}

func newManager(t *testing.T) *Manager {
	t.Helper()
	testkit.NeedRoot(t)
	m, err := NewManager(Config{StateDir: t.TempDir(), CgroupParent: egressTestParent(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func script(t testing.TB, body string) string {
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
	out := readAllWithin(t, sb.Output(), "the runtime's output to end (the sandbox's init to exit)")
	waitClosed(t, sb.Done(), "the sandbox's Done after its output ended")
	return string(out), sb.Exit()
}

// waitBound is how long a test waits for a sandbox to do something it
// does in milliseconds when idle; generous for a loaded 2-core CI host.
const waitBound = 30 * time.Second

// readAllWithin reads r to its end, failing the test with what it waited
// for, and what it read so far, after waitBound. The reader left behind
// ends when the test's Destroy closes the pipe.
func readAllWithin(t testing.TB, r io.Reader, what string) []byte {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	var mu sync.Mutex
	var sofar []byte
	go func() {
		var b []byte
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			b = append(b, buf[:n]...)
			mu.Lock()
			sofar = append(sofar, buf[:n]...)
			mu.Unlock()
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				ch <- result{b, err}
				return
			}
		}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("reading %s: %v", what, res.err)
		}
		return res.b
	case <-time.After(waitBound):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("waited %v for %s; read so far: %q", waitBound, what, sofar)
		return nil
	}
}

// waitClosed waits for c to close, failing the test with what it waited
// for after waitBound.
func waitClosed(t testing.TB, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(waitBound):
		t.Fatalf("waited %v for %s", waitBound, what)
	}
}

func TestSandboxIsolation(t *testing.T) {
	m := newManager(t)
	out, st := run(t, m, script(t, `
echo "uid=$(id -u) foo=$FOO pid=$$"
ls /
test -e /root && echo HAS_ROOT
test -e /.host && echo HAS_HOST_ROOT
cut -d' ' -f5 /proc/self/mountinfo | sed 's/^/MOUNT /'
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
	for _, bad := range []string{"HAS_ROOT", "HAS_HOST_ROOT", "TASK_WRITABLE", "USR_WRITABLE", "MOUNT /" + pid1.OldRootName} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %q", bad)
		}
	}
	// Its cgroup namespace is rooted at its own cgroup, in every hierarchy.
	cgroups := 0
	for _, l := range strings.Split(out, "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[0] != "" && f[0][0] >= '0' && f[0][0] <= '9' {
			cgroups++
			if f[2] != "/" {
				t.Errorf("cgroup %q seen from inside, want / (a namespace rooted at the sandbox's cgroup)", l)
			}
		}
	}
	if cgroups == 0 {
		t.Error("no /proc/self/cgroup lines")
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
	// Ticks written before the freeze are not ticks while frozen: wait
	// for the pipe to be read empty, then take what the reader still
	// holds.
	testkit.WaitFor(t, 5*time.Second, "the output written before the freeze to be read", func() bool { return sb.(*linuxSandbox).out.pending() == 0 })
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
	testkit.NeedRoot(t)
	mount := "/sys/fs/cgroup"
	if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err != nil {
		mount = "/sys/fs/cgroup/unified"
		if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err != nil {
			t.Skip("no cgroup2 hierarchy mounted on this host")
		}
	}
	m, err := NewManager(Config{StateDir: t.TempDir(), CgroupMount: mount, CgroupParent: egressTestParent(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	if m.CgroupVersion() != 2 {
		t.Fatalf("driver version %d at %s", m.CgroupVersion(), mount)
	}
	testFreezeAndKill(t, m)
}

// TestParentPidsMax: the group above a manager's sandboxes caps their tasks
// together, from the account concurrency and never above the host's share;
// the topmost group, which the daemons of a host share, holds the host's
// share. Checked on every hierarchy this host has with a pids controller.
func TestParentPidsMax(t *testing.T) {
	share, err := hostPidsShare()
	if err != nil {
		t.Fatal(err)
	}
	if share < 1024 {
		t.Fatalf("host share %d", share)
	}
	for _, c := range []struct{ concurrency, prebuilt int }{{100000, 2}, {0, 2}} {
		if lim, err := parentPidsMax(c.concurrency, c.prebuilt); err != nil || lim.parent != share || lim.host != share {
			t.Errorf("parentPidsMax(%d, %d) = %+v, %v; want the host share %d", c.concurrency, c.prebuilt, lim, err, share)
		}
	}
	testkit.NeedRoot(t)
	mounts := []string{"/sys/fs/cgroup"}
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil {
		mounts = append(mounts, "/sys/fs/cgroup/unified")
	}
	const concurrency = 3
	checked := 0
	for _, mount := range mounts {
		top := "icebox-test"
		m, err := NewManager(Config{StateDir: t.TempDir(), CgroupMount: mount, CgroupParent: top + "/" + filepath.Base(t.TempDir()) + "-" + randomID()[:8],
			AccountConcurrency: concurrency, Prebuilt: -1})
		if err != nil {
			t.Fatal(err)
		}
		var root, parent string
		switch d := m.cg.(type) {
		case *v1Driver:
			root, parent = filepath.Join(mount, "pids"), d.dirs["pids"]
		case *v2Driver:
			if !d.limits {
				t.Logf("%s: no pids controller on this hierarchy", mount)
				m.Close()
				continue
			}
			root, parent = mount, d.dir
		}
		for dir, want := range map[string]int64{parent: min(concurrency*sandboxPids, share), filepath.Join(root, top): share} {
			b, err := os.ReadFile(filepath.Join(dir, "pids.max"))
			if got := strings.TrimSpace(string(b)); err != nil || got != strconv.FormatInt(want, 10) {
				t.Errorf("%s/pids.max = %q (%v), want %d", dir, got, err, want)
			}
		}
		m.Close()
		checked++
	}
	if checked == 0 {
		t.Skip("no cgroup hierarchy with a pids controller")
	}
}

func TestMemoryLimit(t *testing.T) {
	m := newManager(t)
	if m.CgroupVersion() == 2 && !m.cg.(*v2Driver).limits {
		t.Skip("memory controller not available on this cgroup2 hierarchy")
	}
	// A shell doubling a variable until the kernel kills it.
	sb := start(t, m, `x=a; while true; do x="$x$x"; done`, 128)
	readAllWithin(t, sb.Output(), "the memory hog's output to end (its sandbox killed)")
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

// runArgs runs argv (no script file, so a shell holds no extra descriptor)
// in a fresh sandbox and returns its output; inspect, when set, runs on the
// host while the sandbox is still alive (it must print "ready" and wait).
func runArgs(t *testing.T, m *Manager, argv []string, env []string, inspect func(sb *linuxSandbox)) string {
	t.Helper()
	sb, err := m.Create(context.Background(), sandbox.Spec{ID: "a" + filepath.Base(t.TempDir()), CodeDir: t.TempDir(), MemoryMB: 128, TmpMB: 16,
		Args: argv, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := sb.Output().Read(buf)
		out = append(out, buf[:n]...)
		if inspect != nil && strings.Contains(string(out), "ready\n") {
			inspect(sb.(*linuxSandbox))
			inspect = nil
			sb.Kill()
		}
		if err != nil {
			break
		}
	}
	waitClosed(t, sb.Done(), "the sandbox's Done after its output ended")
	t.Log(string(out))
	return string(out)
}

// hostStatus reads one field of a host process's /proc status.
func hostStatus(t *testing.T, pid int, key string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

func TestUserNamespace(t *testing.T) {
	m := newManager(t)
	out := runArgs(t, m, []string{"/bin/sh", "-c", `
echo "uid_map $(cat /proc/self/uid_map)"
echo "gid_map $(cat /proc/self/gid_map)"
echo "init $(grep '^Uid' /proc/1/status)"
echo "groups $(id -G)"
unshare -U true 2>/dev/null && echo NESTED_USERNS
echo ready; sleep 100`}, []string{"PATH=/usr/bin:/bin"}, func(sb *linuxSandbox) {
		// Seen from the host, neither init nor the function is root, and
		// each has ids of its own block.
		initPID := sb.proc.Pid
		uid := hostStatus(t, initPID, "Uid")
		base, _ := strconv.Atoi(strings.Fields(uid)[0])
		if uid == "0 0 0 0" || base < DefaultIDBase || uid != strings.Repeat(strconv.Itoa(base)+" ", 4)[:len(uid)] {
			t.Errorf("sandbox init runs as host uid %q, want one id of the sandbox range", uid)
		}
		if g := hostStatus(t, initPID, "Groups"); g != "" {
			t.Errorf("sandbox init keeps host groups %q", g)
		}
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", initPID, initPID))
		rt, _ := strconv.Atoi(strings.Fields(string(kids))[0])
		if want := fmt.Sprintf("%d %[1]d %[1]d %[1]d", base+993); hostStatus(t, rt, "Uid") != want {
			t.Errorf("runtime host uid %q, want %q", hostStatus(t, rt, "Uid"), want)
		}
		if g := hostStatus(t, rt, "Groups"); g != "" {
			t.Errorf("runtime has supplementary groups %q", g)
		}
	})
	f := strings.Fields(out)
	if len(f) < 4 || f[0] != "uid_map" || f[1] != "0" || f[2] == "0" || f[3] != "65536" {
		t.Errorf("uid_map is not a private range: %q", out)
	}
	if !strings.Contains(out, "init Uid:\t0\t0\t0\t0") {
		t.Error("init is not root inside its namespace")
	}
	if !strings.Contains(out, "groups 993\n") {
		t.Error("runtime groups are not exactly its own")
	}
	if strings.Contains(out, "NESTED_USERNS") {
		t.Error("a function created a user namespace")
	}
}

// TestUserNamespaceRangesAreDisjoint: two live sandboxes never share host
// ids, and a destroyed sandbox's range is reused.
func TestUserNamespaceRangesAreDisjoint(t *testing.T) {
	r, err := newIDRanges(DefaultIDBase)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := r.get()
	b, _ := r.get()
	if a == b || a < DefaultIDBase || b < DefaultIDBase || max(a, b)-min(a, b) < idRangeSize {
		t.Fatalf("ranges %d and %d overlap", a, b)
	}
	r.put(a)
	if c, _ := r.get(); c != a {
		t.Errorf("released range %d not reused (got %d)", a, c)
	}
	if _, err := newIDRanges(1000); err == nil {
		t.Error("an id base among ordinary host ids was accepted")
	}
}

func TestSeccompPolicyAssembles(t *testing.T) {
	p, _, err := sandboxPolicy()
	if err != nil {
		t.Fatal(err)
	}
	insts, err := sandboxFilter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bpf.Assemble(insts); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, g := range p.Syscalls {
		for _, n := range g.Names {
			names[n] = true
		}
		for _, n := range g.NamesWithCondtions {
			names[n.Name] = true
		}
	}
	for _, must := range []string{"mount", "umount2", "pivot_root", "unshare", "setns", "ptrace", "kexec_load", "bpf",
		"perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "open_by_handle_at", "init_module",
		"finit_module", "delete_module", "reboot", "swapon", "clock_settime", "clone3", "clone", "personality",
		"process_madvise", "sethostname"} {
		if !names[must] {
			t.Errorf("filter does not deny %s", must)
		}
	}
}

// TestSeccompFilterDecisions runs the assembled filter in a BPF interpreter
// over the seccomp_data the kernel would pass, so the verdict for every ABI
// and argument case is checked on any architecture, without root.
func TestSeccompFilterDecisions(t *testing.T) {
	insts, err := sandboxFilter()
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}
	native, err := arch.GetInfo("")
	if err != nil {
		t.Fatal(err)
	}
	// The compat ABI of the running architecture.
	compat := arch.ARM
	if native.ID == arch.X86_64.ID {
		compat = arch.I386
	}
	nr := func(a *arch.Info, name string) uint32 {
		n, ok := a.SyscallNames[name]
		if !ok {
			t.Fatalf("%s has no %s", a.Name, name)
		}
		return uint32(n)
	}
	// verdict runs the filter on one call. The interpreter loads words big
	// endian where the kernel loads them native: each word is stored big
	// endian at the offset the kernel's layout gives it.
	verdict := func(auditArch, sysno uint32, args ...uint64) uint32 {
		data := make([]byte, 64)
		binary.BigEndian.PutUint32(data[seccompNrOff:], sysno)
		binary.BigEndian.PutUint32(data[seccompArchOff:], auditArch)
		for i, a := range args {
			lo := seccompArgLoOff(uint32(i))
			hi := lo ^ 4 // the other half of the 8 bytes
			binary.BigEndian.PutUint32(data[lo:], uint32(a))
			binary.BigEndian.PutUint32(data[hi:], uint32(a>>32))
		}
		v, err := vm.Run(data)
		if err != nil {
			t.Fatal(err)
		}
		return uint32(v)
	}
	const (
		allow = unix.SECCOMP_RET_ALLOW
		kill  = unix.SECCOMP_RET_KILL_PROCESS
		eperm = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		nosys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	)
	id := uint32(native.ID)
	for _, c := range []struct {
		name      string
		got, want uint32
	}{
		{"native getpid", verdict(id, nr(native, "getpid")), allow},
		{"native unshare", verdict(id, nr(native, "unshare"), unix.CLONE_NEWUSER), eperm},
		{"native clone3", verdict(id, nr(native, "clone3")), nosys},
		{"native clone, fork flags", verdict(id, nr(native, "clone"), uint64(unix.SIGCHLD)), allow},
		{"native clone, CLONE_NEWUSER", verdict(id, nr(native, "clone"), unix.CLONE_NEWUSER|uint64(unix.SIGCHLD)), eperm},
		// Every call of the compat ABI, whatever it is, and of an unknown one.
		{compat.Name + " getpid", verdict(uint32(compat.ID), nr(compat, "getpid")), kill},
		{compat.Name + " unshare", verdict(uint32(compat.ID), nr(compat, "unshare"), unix.CLONE_NEWUSER), kill},
		{compat.Name + " clone", verdict(uint32(compat.ID), nr(compat, "clone"), unix.CLONE_NEWUSER), kill},
		{compat.Name + " exit_group", verdict(uint32(compat.ID), nr(compat, "exit_group")), kill},
		{"arch 0", verdict(0, nr(native, "getpid")), kill},
		{"personality(PER_LINUX)", verdict(id, nr(native, "personality"), 0), allow},
		{"personality(PER_LINUX32)", verdict(id, nr(native, "personality"), 8), allow},
		{"personality(query)", verdict(id, nr(native, "personality"), 0xffffffff), allow},
		{"personality(ADDR_NO_RANDOMIZE)", verdict(id, nr(native, "personality"), 0x0040000), eperm},
		{"personality(READ_IMPLIES_EXEC)", verdict(id, nr(native, "personality"), 0x0400000), eperm},
		{"personality(1<<32)", verdict(id, nr(native, "personality"), 1<<32), eperm},
		{"socket(AF_INET)", verdict(id, nr(native, "socket"), unix.AF_INET, unix.SOCK_STREAM), allow},
		{"socket(AF_NETLINK)", verdict(id, nr(native, "socket"), unix.AF_NETLINK, unix.SOCK_RAW), allow},
		{"socket(AF_VSOCK)", verdict(id, nr(native, "socket"), unix.AF_VSOCK, unix.SOCK_STREAM), eperm},
		{"socket(1<<32|AF_VSOCK)", verdict(id, nr(native, "socket"), 1<<32|unix.AF_VSOCK, unix.SOCK_STREAM), eperm},
	} {
		if c.got != c.want {
			t.Errorf("%s: verdict %#x, want %#x", c.name, c.got, c.want)
		}
	}
	if native.ID == arch.X86_64.ID {
		// x32: the native audit arch, bit 30 set in the number.
		if v := verdict(id, uint32(arch.X32.SeccompMask)|nr(native, "unshare"), unix.CLONE_NEWUSER); v != nosys {
			t.Errorf("x32 unshare: verdict %#x, want %#x", v, nosys)
		}
		if v := verdict(id, uint32(arch.X32.SeccompMask)|nr(native, "getpid")); v != nosys {
			t.Errorf("x32 getpid: verdict %#x, want %#x", v, nosys)
		}
	}
}

func TestSeccompAndPrivileges(t *testing.T) {
	m := newManager(t)
	out := runArgs(t, m, []string{"/bin/sh", "-c", `
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
unshare -U true 2>&1 | grep -q 'Operation not permitted' && echo UNSHARE_EPERM
unshare -U -r true && echo UNSHARE_OK
strace -f true >/dev/null 2>&1 && echo PTRACE_OK
mkdir -p /tmp/m && mount -t tmpfs x /tmp/m 2>/dev/null && echo MOUNT_OK
kill -9 1 2>/dev/null && echo KILLED_INIT
echo done`}, []string{"PATH=/usr/bin:/bin"}, nil)
	for _, want := range []string{"CapInh:\t0000000000000000", "CapPrm:\t0000000000000000", "CapEff:\t0000000000000000",
		"CapBnd:\t0000000000000000", "CapAmb:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2", "UNSHARE_EPERM", "done"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, bad := range []string{"UNSHARE_OK", "PTRACE_OK", "MOUNT_OK", "KILLED_INIT"} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %q", bad)
		}
	}
}

// TestSeccompRefusesForeignABIs: a function cannot step around the filter
// through the i386 entry (int $0x80) or the x32 ABI, where unshare and
// clone would hand it a user namespace with every capability; the native
// ABI keeps working. The attempts are made by this test binary, copied into
// the sandbox.
func TestSeccompRefusesForeignABIs(t *testing.T) {
	if !abitest.Supported {
		t.Skipf("no foreign system call entry to try from %s", runtime.GOARCH)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if got := abitest.RunOne(exe, "i386-getpid"); got != abitest.OK {
		t.Skipf("this kernel runs no i386 system calls (IA32 emulation off): int $0x80 getpid outside any filter: %s", got)
	}
	m := newManager(t)
	code := script(t, "exec /var/task/abi "+abitest.Arg+" all\n")
	bin, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(code, "abi"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, _ := run(t, m, code)
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		name, outcome, _ := strings.Cut(l, " ")
		got[name] = outcome
	}
	for name, want := range abitest.UnderFilter {
		if got[name] != want {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

func TestDescriptorsEnvironmentLimits(t *testing.T) {
	m := newManager(t)
	out := runArgs(t, m, []string{"/bin/sh", "-c", `
echo "env $(tr '\0' ' ' < /proc/$$/environ)"
echo "nofile $(ulimit -Sn) $(ulimit -Hn)"
echo "nproc $(ulimit -Sp) $(ulimit -Hp)"
echo ready; sleep 100`}, []string{"PATH=/usr/bin:/bin", "ONLY=this"}, func(sb *linuxSandbox) {
		// The runtime (the shell, waiting for sleep) holds what it was
		// started with and nothing more: stdio and the telemetry pipe.
		pid := sb.proc.Pid
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%s/fd", strings.Fields(string(kids))[0]))
		var names []string
		for _, fd := range fds {
			names = append(names, fd.Name())
		}
		if strings.Join(names, " ") != "0 1 2 3" {
			t.Errorf("runtime descriptors %v, want 0 1 2 3", names)
		}
		if f := pidsFile(sb, "pids.max"); f != "" {
			if b, _ := os.ReadFile(f); strings.TrimSpace(string(b)) != "1088" {
				t.Errorf("pids.max = %q, want 1088 (the function user's 1024 and init's 64)", b)
			}
		}
	})
	for _, want := range []string{"env PATH=/usr/bin:/bin ONLY=this \n", "nofile 1024 1024\n", "nproc 1024 1024\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// pidsFile is the path of one file of the sandbox's pids cgroup, or "" when
// the host gives sandboxes no pids controller.
func pidsFile(sb *linuxSandbox, name string) string {
	switch g := sb.cg.(type) {
	case *v1Group:
		if dir, ok := g.paths["pids"]; ok {
			return filepath.Join(dir, name)
		}
	case *v2Group:
		if g.limits {
			return filepath.Join(g.dir, name)
		}
	}
	return ""
}

// TestForkLimitSparesInit: a runtime forking without end meets the
// function user's process limit (1,024, as on Lambda) before the sandbox's
// cgroup is full, so init keeps room for its own threads and reports how
// the runtime really ended; the daemon never has to assume a kill.
func TestForkLimitSparesInit(t *testing.T) {
	m := newManager(t)
	sb, err := m.Create(context.Background(), sandbox.Spec{ID: "forks", CodeDir: script(t, `
n=0
trap 'echo "forked $n"' EXIT
while [ $n -lt 2000 ]; do sleep 100 >/dev/null 2>&1 & n=$((n+1)); done
`), MemoryMB: 512, TmpMB: 16, Args: []string{"/var/task/bootstrap"}, Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	// The shell gives up when a fork fails, saying how many it made.
	out := string(readAllWithin(t, sb.Output(), "the runtime's output to end"))
	waitClosed(t, sb.Done(), "the runtime's end")
	ls := sb.(*linuxSandbox)
	if chanClosed(ls.initGone) {
		t.Errorf("init died with the runtime")
	}
	if st := sb.Exit(); st.Signal != 0 || st.Code != 2 {
		t.Errorf("runtime exit %+v, want the shell's own exit code 2 for a failed fork; output:\n%s", st, out)
	}
	// The shell itself is one of the user's 1,024.
	var forked int
	_, tail, _ := strings.Cut(out, "forked ")
	if _, err := fmt.Sscanf(tail, "%d", &forked); err != nil || forked < 1000 || forked > 1023 {
		t.Errorf("the shell forked %d times (%v); want the user's process limit of 1,024 to stop it:\n%s", forked, err, out)
	}
	if f := pidsFile(ls, "pids.events"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != "max 0" {
			t.Errorf("pids.events %q: the cgroup's limit was hit; want the user's process limit to stop the forks first", got)
		}
	}
}

// What the runtime writes to sandbox.TelemetryFD reaches Telemetry, apart
// from its stdout, from it and the processes it starts.
func TestTelemetryDescriptor(t *testing.T) {
	m := newManager(t)
	sb, err := m.Create(context.Background(), sandbox.Spec{ID: "telemetry", CodeDir: script(t, "printf 'one\\ntwo' >&3; sh -c 'printf three >&3'; echo out\n"),
		MemoryMB: 128, TmpMB: 64, Args: []string{"/var/task/bootstrap"}, Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	out := readAllWithin(t, sb.Output(), "the runtime's output to end")
	tel := readAllWithin(t, sb.Telemetry(), "the telemetry pipe to end")
	if string(out) != "out\n" || string(tel) != "one\ntwothree" {
		t.Errorf("stdout %q, telemetry %q", out, tel)
	}
}

func TestProcMaskedNoSysNoCgroupfs(t *testing.T) {
	m := newManager(t)
	out := runArgs(t, m, []string{"/bin/sh", "-c", `
echo "kcore $(head -c 16 /proc/kcore 2>/dev/null | wc -c)"
echo "keys $(cat /proc/keys 2>/dev/null | wc -c)"
echo "timer_list $(cat /proc/timer_list 2>/dev/null | wc -c)"
echo "sched_debug $(cat /proc/sched_debug 2>/dev/null | wc -c)"
ls /proc/acpi 2>/dev/null | grep -q . && echo ACPI_VISIBLE
echo c > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ_WRITTEN
echo icebox > /proc/sys/kernel/hostname 2>/dev/null && echo SYSCTL_WRITTEN
grep -q ' /proc/sys ' /proc/self/mounts && grep ' /proc/sys ' /proc/self/mounts | grep -q 'ro,' && echo SYS_RO
test -e /sys && echo HAS_SYS
mkdir /sys/fs/cgroup/x 2>/dev/null && echo CGROUP_WRITTEN
grep -q cgroup /proc/self/mounts && echo CGROUPFS_MOUNTED
echo ok`}, []string{"PATH=/usr/bin:/bin"}, nil)
	for _, want := range []string{"kcore 0\n", "keys 0\n", "timer_list 0\n", "sched_debug 0\n", "SYS_RO", "ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, bad := range []string{"ACPI_VISIBLE", "SYSRQ_WRITTEN", "SYSCTL_WRITTEN", "HAS_SYS", "CGROUP_WRITTEN", "CGROUPFS_MOUNTED"} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %q", bad)
		}
	}
}

// TestInitBinaryCannotBeRewritten: /proc/1/exe leads to the embedded
// icebox-init in a sealed memfd, or, for an init given by path (the
// fallback's re-executed binary among them), to a read-only mount of it:
// nothing writes through it, and the function cannot open it at all.
func TestInitBinaryCannotBeRewritten(t *testing.T) {
	probe := []string{"/bin/sh", "-c", `
(echo x >> /proc/1/exe) 2>/dev/null && echo EXE_WRITTEN
echo ready; sleep 100`}
	t.Run("embedded", func(t *testing.T) {
		m := newManager(t)
		if err := m.InitFallback(); err != nil {
			t.Errorf("the manager re-executes this binary although an icebox-init is embedded: %v", err)
		}
		out := runArgs(t, m, probe, []string{"PATH=/usr/bin:/bin"}, func(sb *linuxSandbox) {
			exe := fmt.Sprintf("/proc/%d/exe", sb.proc.Pid)
			if link, _ := os.Readlink(exe); !strings.HasPrefix(link, "/memfd:icebox-init") {
				t.Errorf("sandbox init runs from %q, not the embedded icebox-init", link)
			}
			fd, err := unix.Open(exe, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
			want := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
			if err != nil || seals&want != want {
				t.Errorf("sandbox init's memfd seals %#x (%v), want %#x", seals, err, want)
			}
		})
		if strings.Contains(out, "EXE_WRITTEN") {
			t.Error("the function wrote to /proc/1/exe")
		}
	})
	t.Run("by path", func(t *testing.T) {
		testkit.NeedRoot(t)
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewManager(Config{StateDir: t.TempDir(), CgroupParent: egressTestParent(t), InitPath: self})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		if m.initFD < 0 {
			t.Skip("kernel without open_tree/mount_setattr")
		}
		out := runArgs(t, m, probe, []string{"PATH=/usr/bin:/bin"}, func(sb *linuxSandbox) {
			// Opening for write fails with ETXTBSY before the mount is
			// looked at; the mount's own flags tell that it is read-only.
			var st unix.Statfs_t
			if err := unix.Statfs(fmt.Sprintf("/proc/%d/exe", sb.proc.Pid), &st); err != nil {
				t.Fatal(err)
			}
			if st.Flags&unix.ST_RDONLY == 0 {
				t.Errorf("sandbox init runs from a writable mount (statfs flags %#x)", st.Flags)
			}
		})
		if strings.Contains(out, "EXE_WRITTEN") {
			t.Error("the function wrote to /proc/1/exe")
		}
	})
}

// TestEmbeddedInitIsCurrent: the icebox-init embedded in this build is
// the one go generate makes from today's sources, so no test and no build
// runs a stale init.
func TestEmbeddedInitIsCurrent(t *testing.T) {
	got := embeddedInit()
	if got == nil {
		t.Fatal("no icebox-init embedded: run go generate ./... before building or testing (README.md)")
	}
	// The go:generate line of init.go, with another output.
	fresh := filepath.Join(t.TempDir(), "icebox-init")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", fresh, "icebox/cmd/icebox-init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build icebox-init: %v\n%s", err, out)
	}
	want, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the embedded icebox-init is not built from these sources: run go generate ./... (README.md)")
	}
}

// BenchmarkColdSandbox times a sandbox made from nothing (no pre-built
// one): namespaces, cgroup, root, code mount, runtime start, until the
// runtime (/bin/true) has exited.
func BenchmarkColdSandbox(b *testing.B) {
	testkit.NeedRoot(b)
	m, err := NewManager(Config{StateDir: b.TempDir(), CgroupParent: egressTestParent(b), Prebuilt: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	code := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sb, err := m.Create(context.Background(), sandbox.Spec{ID: "b", CodeDir: code, MemoryMB: 128, TmpMB: 16, Args: []string{"/bin/true"}})
		if err != nil {
			b.Fatal(err)
		}
		if err := sb.Start(); err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, sb.Output())
		<-sb.Done()
		sb.Destroy()
	}
}

// TestSpawner: every init is started by the spawner but is this process's
// child (so it is waited for here), and a spawner that dies is replaced at
// the next Create.
func TestSpawner(t *testing.T) {
	testkit.NeedRoot(t)
	m, err := NewManager(Config{StateDir: t.TempDir(), Prebuilt: -1, CgroupParent: egressTestParent(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	parentOf := func(pid int) int {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ppid …; comm may hold spaces.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		ppid, _ := strconv.Atoi(f[1])
		return ppid
	}
	spawnerPID := func() int {
		m.spawner.mu.Lock()
		defer m.spawner.mu.Unlock()
		return m.spawner.cmd.Process.Pid
	}
	var killed int
	for round := range 2 {
		sb := start(t, m, "exec sleep 1000", 128).(*linuxSandbox)
		if got := parentOf(sb.proc.Pid); got != os.Getpid() {
			t.Errorf("round %d: init's parent is %d, not this process (%d)", round, got, os.Getpid())
		}
		if round == 1 && spawnerPID() == killed {
			t.Errorf("the killed spawner %d was not replaced", killed)
		}
		sb.Destroy()
		select {
		case <-sb.initGone:
		case <-time.After(waitBound):
			t.Fatalf("round %d: init not waited for after Destroy", round)
		}
		killed = spawnerPID()
		if err := unix.Kill(killed, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
}

// An init that dies before answering fails the build with the end of its
// control socket, not a wait for the context's deadline (or, with none, a
// wait forever): the daemon keeps no copy of init's end of the socket.
func TestInitDyingMidBuildEndsCreate(t *testing.T) {
	testkit.NeedRoot(t)
	m, err := NewManager(Config{StateDir: t.TempDir(), Prebuilt: -1, CgroupParent: egressTestParent(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	// A stand-in init, run as the user namespace's root (no host
	// privilege): alive while the daemon opens its root and sends the
	// spec, gone without a word after.
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fake := filepath.Join(dir, "init")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nsleep 0.5\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m.spawnPath = fake
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	_, err = m.Create(ctx, sandbox.Spec{ID: "dies", CodeDir: script(t, "exit 0\n"), MemoryMB: 128, TmpMB: 16,
		Args: []string{"/var/task/bootstrap"}})
	// The socket's end is an EOF, or a reset when the spec sent was
	// left unread.
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Create with an init that died: %v, want the end of its control socket", err)
	}
}

// TestFreezeLeavesInitAsleep: freezing and thawing a sandbox whose runtime
// waits does not wake its init. The freezer leaves a thread asleep in a
// futex or nanosleep where it is, but pulls one blocked in wait4 or
// epoll_wait into the refrigerator at each freeze and back out at each
// thaw: CPU charged to the sandbox on every warm call.
func TestFreezeLeavesInitAsleep(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	sb := start(t, m, "exec sleep 1000", 128)
	pid := sb.(*linuxSandbox).proc.Pid
	testkit.WaitFor(t, waitBound, "init to start the runtime", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		return len(strings.Fields(string(b))) > 0
	})
	switches := func() int {
		n := 0
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, task := range tasks {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
			for _, l := range strings.Split(string(b), "\n") {
				if k, v, ok := strings.Cut(l, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
					c, _ := strconv.Atoi(strings.TrimSpace(v))
					n += c
				}
			}
		}
		return n
	}
	// Init's own start-up (a race-enabled build's above all) takes a
	// while to quiet down.
	testkit.WaitFor(t, waitBound, "init to be idle", func() bool {
		n := switches()
		time.Sleep(100 * time.Millisecond)
		return switches() == n
	})
	const cycles = 50
	before := switches()
	for range cycles {
		if err := sb.Freeze(); err != nil {
			t.Fatal(err)
		}
		// Writing FROZEN returns before every task is frozen: a
		// thread the freeze wakes gets the time to be switched in.
		time.Sleep(2 * time.Millisecond)
		if err := sb.Thaw(); err != nil {
			t.Fatal(err)
		}
	}
	// Go's own housekeeping may wake a thread now and then; a thread
	// the freezer wakes does so twice a cycle.
	if n := switches() - before; n >= cycles/2 {
		t.Errorf("init's threads were switched in %d times over %d freeze/thaw cycles", n, cycles)
	}
}
