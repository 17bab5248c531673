package linux

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupDriver hides the difference between cgroup v1 (one hierarchy per
// controller) and v2 (one unified hierarchy). Files are written directly: the
// freeze/thaw path is on every warm invoke and must not poll or sleep.
type cgroupDriver interface {
	// create makes the group for one sandbox with its limits.
	create(name string, lim limits) (cgroup, error)
	// version is 1 or 2.
	version() int
}

type cgroup interface {
	addProc(pid int) error
	freeze() error
	thaw() error
	stats() (maxMem, oomKills uint64)
	// remove deletes the group; every process in it must be gone.
	remove() error
}

type limits struct {
	memoryBytes int64
	cpuQuotaUS  int64 // per cpuPeriodUS
	pids        int64
}

const cpuPeriodUS = 100000

// limitsFor derives Lambda's resource shape from the configured memory:
// memory is a hard limit without swap, CPU is proportional to memory
// (1769 MB buys one vCPU).
func limitsFor(memoryMB int) limits {
	return limits{
		memoryBytes: int64(memoryMB) << 20,
		cpuQuotaUS:  max(int64(memoryMB)*cpuPeriodUS/1769, 1000),
		pids:        1024,
	}
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

func readUint(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v
}

// readKey reads "key value" lines (memory.events, memory.oom_control).
func readKey(path, key string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
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
	dirs map[string]string
	swap bool // memory.memsw.* present (swap accounting on)
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
	_, err := os.Stat(filepath.Join(d.dirs["memory"], "memory.memsw.limit_in_bytes"))
	d.swap = err == nil
	return d, nil
}

func (d *v1Driver) version() int { return 1 }

func (d *v1Driver) create(name string, lim limits) (_ cgroup, err error) {
	g := &v1Group{paths: map[string]string{}}
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
	mem := strconv.FormatInt(lim.memoryBytes, 10)
	if err := writeFile(filepath.Join(g.paths["memory"], "memory.limit_in_bytes"), mem); err != nil {
		return nil, err
	}
	if d.swap {
		if err := writeFile(filepath.Join(g.paths["memory"], "memory.memsw.limit_in_bytes"), mem); err != nil {
			return nil, err
		}
	} else {
		_ = writeFile(filepath.Join(g.paths["memory"], "memory.swappiness"), "0")
	}
	if err := writeFile(filepath.Join(g.paths["cpu"], "cpu.cfs_period_us"), strconv.Itoa(cpuPeriodUS)); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(g.paths["cpu"], "cpu.cfs_quota_us"), strconv.FormatInt(lim.cpuQuotaUS, 10)); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(g.paths["pids"], "pids.max"), strconv.FormatInt(lim.pids, 10)); err != nil {
		return nil, err
	}
	return g, nil
}

type v1Group struct {
	paths map[string]string
}

func (g *v1Group) addProc(pid int) error {
	for _, c := range v1Controllers {
		if err := writeFile(filepath.Join(g.paths[c], "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

func (g *v1Group) freeze() error {
	return writeFile(filepath.Join(g.paths["freezer"], "freezer.state"), "FROZEN")
}

func (g *v1Group) thaw() error {
	return writeFile(filepath.Join(g.paths["freezer"], "freezer.state"), "THAWED")
}

func (g *v1Group) stats() (uint64, uint64) {
	m := g.paths["memory"]
	return readUint(filepath.Join(m, "memory.max_usage_in_bytes")), readKey(filepath.Join(m, "memory.oom_control"), "oom_kill")
}

func (g *v1Group) remove() error {
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
	// limits is false where the memory/cpu/pids controllers cannot be enabled
	// (a v2 mount beside v1 controllers): groups still freeze and kill.
	limits bool
}

func newV2(mountRoot, parent string) (*v2Driver, error) {
	d := &v2Driver{dir: filepath.Join(mountRoot, parent)}
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

func (d *v2Driver) create(name string, lim limits) (_ cgroup, err error) {
	g := &v2Group{dir: filepath.Join(d.dir, name)}
	if err := os.Mkdir(g.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	defer func() {
		if err != nil {
			_ = g.remove()
		}
	}()
	if !d.limits {
		return g, nil
	}
	if err := writeFile(filepath.Join(g.dir, "memory.max"), strconv.FormatInt(lim.memoryBytes, 10)); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(g.dir, "memory.swap.max"), "0"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := writeFile(filepath.Join(g.dir, "cpu.max"), fmt.Sprintf("%d %d", lim.cpuQuotaUS, cpuPeriodUS)); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(g.dir, "pids.max"), strconv.FormatInt(lim.pids, 10)); err != nil {
		return nil, err
	}
	return g, nil
}

type v2Group struct {
	dir string
}

func (g *v2Group) addProc(pid int) error {
	return writeFile(filepath.Join(g.dir, "cgroup.procs"), strconv.Itoa(pid))
}

func (g *v2Group) freeze() error { return writeFile(filepath.Join(g.dir, "cgroup.freeze"), "1") }
func (g *v2Group) thaw() error   { return writeFile(filepath.Join(g.dir, "cgroup.freeze"), "0") }

func (g *v2Group) stats() (uint64, uint64) {
	return readUint(filepath.Join(g.dir, "memory.peak")), readKey(filepath.Join(g.dir, "memory.events"), "oom_kill")
}

func (g *v2Group) remove() error {
	// cgroup.kill (5.14+) ends anything left behind before the rmdir.
	_ = writeFile(filepath.Join(g.dir, "cgroup.kill"), "1")
	return rmdirRetry(g.dir)
}
