package linux

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"icebox/internal/sandbox/linux/pid1"
)

// cgroupDriver hides the difference between cgroup v1 (one hierarchy per
// controller) and v2 (one unified hierarchy). Files are written directly: the
// freeze/thaw path is on every warm invoke and must not poll or sleep.
type cgroupDriver interface {
	// create makes the (unlimited) group for one sandbox.
	create(name string) (cgroup, error)
	// version is 1 or 2.
	version() int
	// warmFreezer keeps freezing cheap while the driver is in use (see
	// v1Driver); coolFreezer undoes it before the parent is removed.
	warmFreezer() error
	coolFreezer()
	// limitPids caps the tasks of every sandbox together (see
	// parentPidsMax). A no-op where the hierarchy has no pids controller.
	limitPids(lim pidsLimit) error
}

type cgroup interface {
	// setLimits applies memory, CPU and pids limits; it runs when a
	// pre-built sandbox is given its function, before the runtime starts.
	setLimits(lim limits) error
	addProc(pid int) error
	freeze() error
	thaw() error
	stats() (maxMem, oomKills uint64)
	// procsFile lists the group's processes (host pids).
	procsFile() string
	// remove deletes the group; every process in it must be gone.
	remove() error
}

type limits struct {
	memoryBytes int64
	cpuShares   int64 // v1 cpu.shares; v2 cpu.weight is derived from it
	cpuQuotaUS  int64 // per cpuPeriodUS
	pids        int64
}

const cpuPeriodUS = 100000

// limitsFor derives Lambda's resource shape from the configured memory.
// Memory is a hard limit without swap. CPU follows memory as Lambda's does
// (1769 MB buys one vCPU) in two parts: under contention environments share
// CPU in proportion to their memory (shares/weight), and an environment is
// capped at its vCPU count rounded up to whole CPUs. A hard fractional quota
// (128 MB = 7% of a CPU) would throttle every small function for most of
// each 100 ms period even on an idle host, adding tens of milliseconds to
// calls without protecting anyone.
func limitsFor(memoryMB int) limits {
	cpus := (int64(memoryMB) + 1768) / 1769
	return limits{
		memoryBytes: int64(memoryMB) << 20,
		cpuShares:   max(int64(memoryMB)*1024/1769, 2),
		cpuQuotaUS:  cpus * cpuPeriodUS,
		pids:        sandboxPids,
	}
}

// sandboxPids is each sandbox's pids.max: init, the runtime and all it
// forks, threads included (the controller counts tasks). The function's
// user may hold pid1.NprocLimit of them (its RLIMIT_NPROC); the rest are
// init's, so a fork bomb never leaves init unable to start a thread (its Go
// runtime dies when it cannot, and the runtime's exit status with it).
const sandboxPids = pid1.NprocLimit + 64

// pidsLimit is the pids.max of the groups above the sandboxes'.
type pidsLimit struct {
	parent int64 // the manager's own parent group
	// host goes on the topmost group icebox makes ("icebox" of
	// "icebox/<data dir id>"), which every daemon on the host shares, so
	// several daemons together stay within the host's share too.
	host int64
}

// parentPidsMax decides how many tasks a manager's sandboxes may hold
// together. Each sandbox may hold sandboxPids, and at most concurrency of
// them run a function at once, plus the prebuilt ones; idle environments
// are frozen and hold a few tasks each. Without a cap on the parent, 100
// sandboxes × 1,024 is more tasks than a host has pids (pid_max is 32,768
// on small hosts), and fork bombs in a few functions starve the daemon and
// the host of pids. The parent gets the lower of that need and
// hostPidsShare; concurrency 0 (unknown) leaves the host share alone.
func parentPidsMax(concurrency, prebuilt int) (pidsLimit, error) {
	share, err := hostPidsShare()
	if err != nil {
		return pidsLimit{}, err
	}
	lim := pidsLimit{parent: share, host: share}
	if concurrency > 0 {
		lim.parent = min(int64(concurrency+max(prebuilt, 0))*sandboxPids, share)
	}
	return lim, nil
}

// hostPidsShare is three quarters of the tasks the host allows: the lower
// of kernel.pid_max and kernel.threads-max, since every thread takes a pid
// and counts against both. The quarter left keeps the daemon, sshd and the
// rest of the host able to fork whatever the functions do (a 2-core VM runs
// a few hundred tasks of its own; pid_max there is 32,768).
func hostPidsShare() (int64, error) {
	var lowest int64
	for _, f := range []string{"/proc/sys/kernel/pid_max", "/proc/sys/kernel/threads-max"} {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, fmt.Errorf("host task limit: %w", err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("host task limit: %s: %q", f, b)
		}
		if lowest == 0 || n < lowest {
			lowest = n
		}
	}
	return lowest / 4 * 3, nil
}

// writePidsMax sets pids.max on top, then on parent (top's descendant or
// top itself, which then gets the lower value).
func writePidsMax(top, parent string, lim pidsLimit) error {
	if top != parent {
		if err := writeFile(filepath.Join(top, "pids.max"), strconv.FormatInt(lim.host, 10)); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(parent, "pids.max"), strconv.FormatInt(min(lim.parent, lim.host), 10))
}

// topGroup is the first level of parent under root.
func topGroup(root, parent string) string {
	first, _, _ := strings.Cut(filepath.Clean(parent), string(filepath.Separator))
	return filepath.Join(root, first)
}

func writeFile(path, val string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(val)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// stateFile is a cgroup file written again and again (the freezer's state,
// twice per warm invocation): it stays open and each value is written at
// offset 0, which saves the open and close on the warm path.
type stateFile struct {
	path string

	// mu orders writes against close: a sandbox may be destroyed while its
	// Runtime API still freezes or thaws it.
	mu     sync.Mutex
	f      *os.File
	closed bool
}

func (s *stateFile) write(val string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("write %s: sandbox destroyed", s.path)
	}
	if s.f == nil {
		f, err := os.OpenFile(s.path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		s.f = f
	}
	if _, err := s.f.WriteAt([]byte(val), 0); err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	return nil
}

func (s *stateFile) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// statFile is a cgroup file read again and again (once per invocation for
// the REPORT line): it stays open and is re-read from offset 0, which saves
// the open and close on the warm path.
type statFile struct {
	path string
	f    *os.File
}

// open opens the file if it is not open yet. A group opens its files when
// it is made, with the sandbox ahead of need: an open on a call's path is a
// blocking system call after which the call's goroutine may wait for a P.
func (s *statFile) open() {
	if s.f == nil {
		if f, err := os.Open(s.path); err == nil {
			s.f = f
		}
	}
}

func (s *statFile) read() []byte {
	if s.open(); s.f == nil {
		return nil
	}
	var buf [512]byte
	n, _ := s.f.ReadAt(buf[:], 0)
	return buf[:n]
}

func (s *statFile) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

func readUint(f *statFile) uint64 {
	v, _ := strconv.ParseUint(strings.TrimSpace(string(f.read())), 10, 64)
	return v
}

// readKey reads "key value" lines (memory.events, memory.oom_control).
func readKey(f *statFile, key string) uint64 {
	b := f.read()
	if b == nil {
		return 0
	}
	// Cut, not a bufio.Scanner: this runs once per invocation, and a
	// Scanner allocated 4 KiB each time.
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		k, v, ok := bytes.Cut(line, []byte(" "))
		if ok && string(k) == key {
			n, _ := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			return n
		}
	}
	return 0
}

// rmdirRetry removes a cgroup directory. The kernel may report EBUSY for a
// moment after the last process was reaped.
func rmdirRetry(dir string) error {
	var err error
	for i := 0; i < 50; i++ {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// detectCgroups picks the driver for this host. A pure v2 host has
// cgroup.controllers at the mount root; otherwise the v1 controllers are used.
func detectCgroups(mountRoot, parent string) (cgroupDriver, error) {
	if _, err := os.Stat(filepath.Join(mountRoot, "cgroup.controllers")); err == nil {
		return newV2(mountRoot, parent)
	}
	return newV1(mountRoot, parent)
}

// ---- cgroup v1 ----

type v1Driver struct {
	// dirs maps each controller to the parent directory of icebox's groups.
	dirs    map[string]string
	pidsTop string // the topmost group icebox made in the pids hierarchy
	swap    bool   // memory.memsw.* present (swap accounting on)
	// pin is an empty freezer group kept FROZEN. The v1 freezer switches a
	// kernel-wide static key on with the first frozen group and off with
	// the last thaw; flipping it patches kernel text and costs ~80 µs, on
	// every freeze and thaw when an environment is the only frozen group.
	// With the pin frozen, a freeze or thaw costs about 1 µs.
	pin string
}

// warmFreezer makes the pin, named per start like a sandbox's group, so a
// crashed daemon's pin is cleaned up with its other stale groups.
func (d *v1Driver) warmFreezer() error {
	pin := filepath.Join(d.dirs["freezer"], "freezer-pin-"+randomID())
	if err := os.Mkdir(pin, 0o755); err != nil {
		return fmt.Errorf("freezer pin: %w", err)
	}
	d.pin = pin
	return writeFile(filepath.Join(pin, "freezer.state"), "FROZEN")
}

func (d *v1Driver) coolFreezer() {
	if d.pin != "" {
		_ = writeFile(filepath.Join(d.pin, "freezer.state"), "THAWED")
		_ = rmdirRetry(d.pin)
		d.pin = ""
	}
}

var v1Controllers = []string{"memory", "cpu", "pids", "freezer"}

func newV1(mountRoot, parent string) (*v1Driver, error) {
	d := &v1Driver{dirs: map[string]string{}}
	for _, c := range v1Controllers {
		dir := filepath.Join(mountRoot, c, parent)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cgroup v1 %s controller: %w", c, err)
		}
		d.dirs[c] = dir
	}
	d.pidsTop = topGroup(filepath.Join(mountRoot, "pids"), parent)
	_, err := os.Stat(filepath.Join(d.dirs["memory"], "memory.memsw.limit_in_bytes"))
	d.swap = err == nil
	return d, nil
}

func (d *v1Driver) version() int { return 1 }

func (d *v1Driver) limitPids(lim pidsLimit) error {
	return writePidsMax(d.pidsTop, d.dirs["pids"], lim)
}

func (d *v1Driver) create(name string) (_ cgroup, err error) {
	g := &v1Group{paths: map[string]string{}, swap: d.swap}
	defer func() {
		if err != nil {
			_ = g.remove()
		}
	}()
	for _, c := range v1Controllers {
		p := filepath.Join(d.dirs[c], name)
		if err := os.Mkdir(p, 0o755); err != nil {
			return nil, fmt.Errorf("create cgroup: %w", err)
		}
		g.paths[c] = p
	}
	// Paths are set once here: Freeze and Kill may run at the same time.
	g.state.path = filepath.Join(g.paths["freezer"], "freezer.state")
	g.peak.path = filepath.Join(g.paths["memory"], "memory.max_usage_in_bytes")
	g.oom.path = filepath.Join(g.paths["memory"], "memory.oom_control")
	g.peak.open()
	g.oom.open()
	return g, nil
}

type v1Group struct {
	paths     map[string]string
	swap      bool
	peak, oom statFile
	state     stateFile
}

func (g *v1Group) setLimits(lim limits) error {
	mem := strconv.FormatInt(lim.memoryBytes, 10)
	if err := writeFile(filepath.Join(g.paths["memory"], "memory.limit_in_bytes"), mem); err != nil {
		return err
	}
	if g.swap {
		if err := writeFile(filepath.Join(g.paths["memory"], "memory.memsw.limit_in_bytes"), mem); err != nil {
			return err
		}
	} else {
		_ = writeFile(filepath.Join(g.paths["memory"], "memory.swappiness"), "0")
	}
	if err := writeFile(filepath.Join(g.paths["cpu"], "cpu.shares"), strconv.FormatInt(lim.cpuShares, 10)); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(g.paths["cpu"], "cpu.cfs_period_us"), strconv.Itoa(cpuPeriodUS)); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(g.paths["cpu"], "cpu.cfs_quota_us"), strconv.FormatInt(lim.cpuQuotaUS, 10)); err != nil {
		return err
	}
	return writeFile(filepath.Join(g.paths["pids"], "pids.max"), strconv.FormatInt(lim.pids, 10))
}

func (g *v1Group) addProc(pid int) error {
	for _, c := range v1Controllers {
		if err := writeFile(filepath.Join(g.paths[c], "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

func (g *v1Group) freeze() error { return g.state.write("FROZEN") }
func (g *v1Group) thaw() error   { return g.state.write("THAWED") }

func (g *v1Group) procsFile() string { return filepath.Join(g.paths["memory"], "cgroup.procs") }

func (g *v1Group) stats() (uint64, uint64) {
	return readUint(&g.peak), readKey(&g.oom, "oom_kill")
}

func (g *v1Group) remove() error {
	g.peak.close()
	g.oom.close()
	g.state.close()
	var errs []error
	for _, c := range v1Controllers {
		if p, ok := g.paths[c]; ok {
			errs = append(errs, rmdirRetry(p))
		}
	}
	return errors.Join(errs...)
}

// ---- cgroup v2 ----

type v2Driver struct {
	dir string
	top string // the topmost group icebox made
	// limits is false where the memory/cpu/pids controllers cannot be enabled
	// (a v2 mount beside v1 controllers): groups still freeze and kill.
	limits bool
}

func newV2(mountRoot, parent string) (*v2Driver, error) {
	d := &v2Driver{dir: filepath.Join(mountRoot, parent), top: topGroup(mountRoot, parent)}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, fmt.Errorf("cgroup v2: %w", err)
	}
	// Enable the controllers on every level from the mount root down to our parent.
	rel, err := filepath.Rel(mountRoot, d.dir)
	if err != nil {
		return nil, err
	}
	avail, _ := os.ReadFile(filepath.Join(mountRoot, "cgroup.controllers"))
	want := []string{"memory", "cpu", "pids"}
	d.limits = true
	for _, c := range want {
		if !strings.Contains(" "+strings.TrimSpace(string(avail))+" ", " "+c+" ") {
			d.limits = false
		}
	}
	if d.limits {
		cur := mountRoot
		for _, part := range strings.Split(rel, string(filepath.Separator)) {
			if err := writeFile(filepath.Join(cur, "cgroup.subtree_control"), "+memory +cpu +pids"); err != nil {
				return nil, fmt.Errorf("cgroup v2: enable controllers: %w", err)
			}
			cur = filepath.Join(cur, part)
		}
		if err := writeFile(filepath.Join(cur, "cgroup.subtree_control"), "+memory +cpu +pids"); err != nil {
			return nil, fmt.Errorf("cgroup v2: enable controllers: %w", err)
		}
	}
	return d, nil
}

func (d *v2Driver) version() int { return 2 }

func (d *v2Driver) limitPids(lim pidsLimit) error {
	if !d.limits {
		return nil
	}
	return writePidsMax(d.top, d.dir, lim)
}

// The unified hierarchy's freezer has no kernel-wide switch to keep on.
func (d *v2Driver) warmFreezer() error { return nil }
func (d *v2Driver) coolFreezer()       {}

func (d *v2Driver) create(name string) (cgroup, error) {
	g := &v2Group{dir: filepath.Join(d.dir, name), limits: d.limits}
	if err := os.Mkdir(g.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	// Paths are set once here: Freeze and Kill may run at the same time.
	g.state.path = filepath.Join(g.dir, "cgroup.freeze")
	g.peak.path = filepath.Join(g.dir, "memory.peak")
	g.events.path = filepath.Join(g.dir, "memory.events")
	g.peak.open()
	g.events.open()
	return g, nil
}

type v2Group struct {
	dir          string
	limits       bool // the hierarchy has memory, cpu and pids controllers
	peak, events statFile
	state        stateFile
}

func (g *v2Group) setLimits(lim limits) error {
	if !g.limits {
		return nil
	}
	if err := writeFile(filepath.Join(g.dir, "memory.max"), strconv.FormatInt(lim.memoryBytes, 10)); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(g.dir, "memory.swap.max"), "0"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// cpu.weight spans 1..10000 with 100 as default, as shares span 2..262144 with 1024.
	if err := writeFile(filepath.Join(g.dir, "cpu.weight"), strconv.FormatInt(min(max(lim.cpuShares*100/1024, 1), 10000), 10)); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(g.dir, "cpu.max"), fmt.Sprintf("%d %d", lim.cpuQuotaUS, cpuPeriodUS)); err != nil {
		return err
	}
	return writeFile(filepath.Join(g.dir, "pids.max"), strconv.FormatInt(lim.pids, 10))
}

func (g *v2Group) addProc(pid int) error {
	return writeFile(filepath.Join(g.dir, "cgroup.procs"), strconv.Itoa(pid))
}

func (g *v2Group) freeze() error { return g.state.write("1") }
func (g *v2Group) thaw() error   { return g.state.write("0") }

func (g *v2Group) procsFile() string { return filepath.Join(g.dir, "cgroup.procs") }

func (g *v2Group) stats() (uint64, uint64) {
	return readUint(&g.peak), readKey(&g.events, "oom_kill")
}

func (g *v2Group) remove() error {
	g.peak.close()
	g.events.close()
	g.state.close()
	// cgroup.kill (5.14+) ends anything left behind before the rmdir.
	_ = writeFile(filepath.Join(g.dir, "cgroup.kill"), "1")
	return rmdirRetry(g.dir)
}
