package linux

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"icebox/internal/testkit"
)

// TestSweepOrphans: a start on any data dir kills and removes the frozen
// sandboxes of a data dir whose daemon and watchdog both died (its lock is
// free), and leaves alone those of one whose lock is held.
func TestSweepOrphans(t *testing.T) {
	testkit.NeedRoot(t)
	registry := t.TempDir()
	base := fmt.Sprintf("icebox-test/orphans-%d", os.Getpid())
	const orphan, live = "0123456789ab", "ba9876543210"
	dirs := map[string]string{orphan: t.TempDir(), live: t.TempDir()}
	var roots []string
	procs := map[string]*exec.Cmd{}
	for _, id := range []string{orphan, live} {
		parent := base + "/" + id
		drv, err := detectCgroups("/sys/fs/cgroup", parent)
		if err != nil {
			t.Fatal(err)
		}
		roots = (&Manager{cfg: Config{CgroupMount: "/sys/fs/cgroup"}, cg: drv}).cgroupRoots()
		g, err := drv.create("g0")
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sleep", "1000")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Wait() })
		// Runs before the Wait above: a frozen process dies only once thawed.
		t.Cleanup(func() { _ = sweep(roots, parent); removeParents(roots, parent) })
		procs[id] = cmd
		if err := g.addProc(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		if err := g.freeze(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirs[id], lockFileName), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := registerParent(registry, id, dirs[id]); err != nil {
			t.Fatal(err)
		}
	}
	// The live data dir's lock is held, as its daemon or watchdog would.
	f, err := os.OpenFile(filepath.Join(dirs[live], lockFileName), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	swept := sweepOrphans(registry, roots, base, "aaaaaaaaaaaa")
	if !slices.Equal(swept, []string{orphan}) {
		t.Fatalf("swept %v, want [%s]", swept, orphan)
	}
	err = procs[orphan].Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("orphaned frozen process ended %v, want SIGKILL", err)
	}
	for _, root := range roots {
		if _, err := os.Stat(filepath.Join(root, base, orphan)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("orphaned parent remains in %s (%v)", root, err)
		}
		if _, err := os.Stat(filepath.Join(root, base, live, "g0")); err != nil {
			t.Errorf("a live data dir's group was removed from %s: %v", root, err)
		}
	}
	if err := procs[live].Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("a live data dir's sandbox was killed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(registry, orphan)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the swept parent is still registered")
	}
	if _, err := os.Stat(filepath.Join(registry, live)); err != nil {
		t.Errorf("the live parent's entry is gone: %v", err)
	}
}
