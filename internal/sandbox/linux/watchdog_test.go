package linux

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

	"golang.org/x/sys/unix"
)

// TestDataDirLock: a second lock on a data dir, however its path is
// spelled, fails at once and names the holder's pid; the identity is the
// same through a symlink; the lock is free again after Close.
func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	l, err := LockDataDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, link} {
		began := time.Now()
		_, err := LockDataDir(context.Background(), p)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("in use by icebox (pid %d)", os.Getpid())) {
			t.Errorf("second lock through %s: %v, want an error naming pid %d", p, err, os.Getpid())
		}
		if d := time.Since(began); d > staleHoldWait/2 {
			t.Errorf("second lock through %s took %v to fail, want at once", p, d)
		}
	}
	id := l.ID()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = LockDataDir(context.Background(), link)
	if err != nil {
		t.Fatalf("lock after Close: %v", err)
	}
	defer l.Close()
	if l.ID() != id {
		t.Errorf("data dir id through a symlink %q, directly %q", l.ID(), id)
	}

	// A copy of the data dir is another data dir.
	cp := t.TempDir()
	b, err := os.ReadFile(filepath.Join(dir, lockFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cp, lockFileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LockDataDir(context.Background(), cp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ID() == id {
		t.Errorf("a copied data dir kept the original's id %q", id)
	}
}

// TestDataDirLockWaitsForLeftoverHolder: when the daemon the lock file
// names is dead but another process (its watchdog) still holds the lock, a
// new daemon waits for it rather than failing.
func TestDataDirLockWaitsForLeftoverHolder(t *testing.T) {
	dir := t.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	// A daemon line naming a process that is not running (pid 1 started
	// at another time), and a holder that lets go when its stdin closes.
	if _, err := f.WriteString("daemon 1 18446744073709551615\n"); err != nil {
		t.Fatal(err)
	}
	holder := exec.Command("/bin/sh", "-c", "read x")
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	holder.ExtraFiles = []*os.File{f}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	f.Close()

	got := make(chan error, 1)
	go func() {
		l, err := LockDataDir(context.Background(), dir)
		if err == nil {
			l.Close()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("lock held by a leftover holder returned %v before it let go, want a wait", err)
	case <-time.After(100 * time.Millisecond):
	}
	stdin.Close()
	if err := <-got; err != nil {
		t.Fatalf("lock once the leftover holder let go: %v", err)
	}

	// A cancelled wait ends at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f, _ = os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR, 0)
	defer f.Close()
	_ = unix.Flock(int(f.Fd()), unix.LOCK_EX)
	if _, err := LockDataDir(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Errorf("lock with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestIDLeases: managers get disjoint leases; a data dir gets its lease
// back after a restart; a lease whose holder is gone is taken over; when
// every lease is held, taking one fails.
func TestIDLeases(t *testing.T) {
	reg := t.TempDir()
	a := &idLeases{dir: reg, key: "a"}
	b := &idLeases{dir: reg, key: "b"}
	fa, na, err := a.take()
	if err != nil {
		t.Fatal(err)
	}
	fb, nb, err := b.take()
	if err != nil {
		t.Fatal(err)
	}
	if fa < DefaultIDBase || na != idLeaseBlocks || nb != idLeaseBlocks ||
		uint64(fa)+uint64(na)*idRangeSize > uint64(fb) && uint64(fb)+uint64(nb)*idRangeSize > uint64(fa) {
		t.Fatalf("leases [%d +%d blocks) and [%d +%d blocks) overlap or are misplaced", fa, na, fb, nb)
	}
	a.close()
	c := &idLeases{dir: reg, key: "c"}
	if f, _, _ := c.take(); f == fa {
		t.Errorf("a new data dir took the lease another one held last while unused ones were free")
	}
	a2 := &idLeases{dir: reg, key: "a"}
	if f, _, err := a2.take(); err != nil || f != fa {
		t.Errorf("after a restart data dir a leased %d (%v), want its lease %d back", f, err, fa)
	}

	// Fill the registry.
	held := []*idLeases{a2, b, c}
	defer func() {
		for _, l := range held {
			l.close()
		}
	}()
	last := uint64(0)
	for {
		l := &idLeases{dir: reg}
		f, n, err := l.take()
		if err != nil {
			if !strings.Contains(err.Error(), "no free host id range") {
				t.Fatalf("taking a lease of a full registry: %v", err)
			}
			break
		}
		held = append(held, l)
		last = max(last, uint64(f)+uint64(n)*idRangeSize-1)
		if len(held) > idLeaseCount()+1 {
			t.Fatalf("more than %d leases handed out", idLeaseCount())
		}
	}
	if last >= 1<<32-1 {
		t.Errorf("the last lease reaches host id %d, past the largest valid id", last)
	}
}

// TestIDRangesTakeLeases: blocks come from the current lease, then from a
// new one; released blocks are reused first.
func TestIDRangesTakeLeases(t *testing.T) {
	leases := 0
	r := &idRanges{lease: func() (uint32, uint32, error) {
		leases++
		return DefaultIDBase + uint32(leases)*10*idRangeSize, 2, nil
	}}
	var got []uint32
	for range 3 {
		id, err := r.get()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	want := []uint32{DefaultIDBase + 10*idRangeSize, DefaultIDBase + 11*idRangeSize, DefaultIDBase + 20*idRangeSize}
	if fmt.Sprint(got) != fmt.Sprint(want) || leases != 2 {
		t.Errorf("blocks %v from %d leases, want %v from 2", got, leases, want)
	}
	r.put(got[0])
	if id, _ := r.get(); id != got[0] {
		t.Errorf("released block %d not reused (got %d)", got[0], id)
	}
}

// TestWatchdogKillsFrozenGroups: when the daemon's end of the socket
// closes, the watchdog kills the processes of every group under the
// parent, frozen ones included, removes the groups and the parent, and
// holds what it was handed until then.
func TestWatchdogKillsFrozenGroups(t *testing.T) {
	testkit.NeedRoot(t)
	parent := egressTestParent(t)
	drv, err := detectCgroups("/sys/fs/cgroup", parent)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{cfg: Config{CgroupMount: "/sys/fs/cgroup", CgroupParent: parent}, cg: drv}
	roots := m.cgroupRoots()
	t.Cleanup(func() { _ = sweep(roots, parent); removeParents(roots, parent) })

	var procs []*exec.Cmd
	for i := range 2 {
		g, err := drv.create("g" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sleep", "1000")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
		if err := g.addProc(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		if err := g.freeze(); err != nil {
			t.Fatal(err)
		}
	}

	lockPath := filepath.Join(t.TempDir(), "held")
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	w, err := startWatchdog("/proc/self/exe", watchdogSpec{Roots: roots, Parent: parent}, f)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if lockedElsewhere(t, lockPath) == false {
		t.Error("the file handed to the watchdog is not held once the daemon closed its own copy")
	}

	began := time.Now()
	w.stop()
	t.Logf("watchdog done in %v", time.Since(began))
	if st := w.cmd.ProcessState; st == nil || !st.Success() {
		t.Errorf("watchdog ended %v, want exit 0", st)
	}
	for _, cmd := range procs {
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("frozen process %d ended %v, want SIGKILL", cmd.Process.Pid, err)
		}
	}
	for _, root := range roots {
		if _, err := os.Stat(filepath.Join(root, parent)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s remains after the watchdog (%v)", filepath.Join(root, parent), err)
		}
	}
	if lockedElsewhere(t, lockPath) {
		t.Error("the watchdog exited but the file it held is still locked")
	}
}

// lockedElsewhere reports whether another open file holds an flock on path.
func lockedElsewhere(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	return errors.Is(err, unix.EWOULDBLOCK)
}
