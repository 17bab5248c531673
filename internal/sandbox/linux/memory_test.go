package linux

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"icebox/internal/testkit"
)

func TestVMHWM(t *testing.T) {
	for in, want := range map[string]uint64{
		"Name:\tbootstrap\nVmPeak:\t  712000 kB\nVmHWM:\t    8180 kB\nVmRSS:\t    8180 kB\n": 8180 << 10,
		"Name:\tkthreadd\nState:\tS (sleeping)\n":                                            0,
		"Name:\tx\nVmHWM:\tlots kB\n":                                                        0,
	} {
		if got := vmHWM([]byte(in)); got != want {
			t.Errorf("vmHWM(%q) = %d, want %d", in, got, want)
		}
	}
}

// residentPeak takes the largest VmHWM of the group's processes, skipping
// init and processes that are gone.
func TestResidentPeak(t *testing.T) {
	proc := t.TempDir()
	for pid, kb := range map[int]int{1: 1, 10: 90000, 11: 3000, 12: 8000} {
		dir := filepath.Join(proc, strconv.Itoa(pid))
		os.Mkdir(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "status"), []byte("Name:\tx\nVmHWM:\t"+strconv.Itoa(kb)+" kB\n"), 0o644)
	}
	procs := filepath.Join(t.TempDir(), "cgroup.procs")
	os.WriteFile(procs, []byte("10\n11\n12\n13\n"), 0o644) // 13 exited
	if got := residentPeak(procs, proc, 10); got != 8000<<10 {
		t.Errorf("residentPeak = %d, want %d (init 10 skipped)", got, 8000<<10)
	}
	if got := residentPeak(filepath.Join(t.TempDir(), "none"), proc, 10); got != 0 {
		t.Errorf("residentPeak of a removed group = %d, want 0", got)
	}
}

// A runtime's own binary is resident in it but cached (so charged) by
// whoever read it first: Max Memory Used still counts it.
func TestMemoryPeakCountsMappedCode(t *testing.T) {
	testkit.NeedRoot(t)
	m := newManager(t)
	sb := start(t, m, `exec sleep 100`, 128)
	ls := sb.(*linuxSandbox)
	var rss uint64
	testkit.WaitFor(t, 5*time.Second, "the runtime resident", func() bool {
		for _, pid := range pidsOf(t, ls) {
			b, _ := os.ReadFile("/proc/" + pid + "/status")
			if strings.HasPrefix(string(b), "Name:\tsleep\n") {
				rss = vmHWM(b)
			}
		}
		return rss > 0
	})
	if got := sb.Stats().MaxMemoryBytes; got < rss {
		t.Errorf("MaxMemoryBytes = %d, below the runtime's resident peak %d", got, rss)
	}
}

func pidsOf(t *testing.T, s *linuxSandbox) []string {
	dir := ""
	switch g := s.cg.(type) {
	case *v1Group:
		dir = g.paths["memory"]
	case *v2Group:
		dir = g.dir
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// The resident peak is read again whenever it may have moved: first use,
// a rise of the cgroup's peak by residentSlack, a group without a peak, or after
// residentRefresh; otherwise the last read stands.
func TestResidentCache(t *testing.T) {
	var c residentCache
	reads, value := 0, uint64(8<<20)
	read := func() uint64 { reads++; return value }
	t0 := time.Unix(1000, 0)
	step := func(cgroupPeak uint64, at time.Duration, wantReads int, want uint64) {
		t.Helper()
		if got := c.peak(cgroupPeak, t0.Add(at), read); got != want || reads != wantReads {
			t.Errorf("peak(%d, +%v) = %d after %d reads, want %d after %d", cgroupPeak, at, got, reads, want, wantReads)
		}
	}
	step(2<<20, 0, 1, 8<<20)                       // first call reads
	value = 9 << 20                                // grew by pages charged elsewhere
	step(2<<20, time.Millisecond, 1, 8<<20)        // cgroup peak unchanged: cached
	step(3<<20-4096, 2*time.Millisecond, 1, 8<<20) // crept up by less than residentSlack: cached
	step(3<<20, 2*time.Millisecond, 2, 9<<20)      // rose by residentSlack: read
	value = 10 << 20
	step(3<<20, residentRefresh+2*time.Millisecond, 3, 10<<20) // stale: read
	value = 1 << 20                                            // the big process exited
	step(0, residentRefresh+3*time.Millisecond, 4, 10<<20)     // no cgroup peak: read; the peak stays
}

// readKey finds one "key value" line of a cgroup stat file.
func TestReadKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "memory.oom_control")
	os.WriteFile(path, []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), 0o644)
	f := &statFile{path: path}
	defer f.close()
	for key, want := range map[string]uint64{"oom_kill": 3, "under_oom": 0, "oom": 0, "missing": 0} {
		if got := readKey(f, key); got != want {
			t.Errorf("readKey(%q) = %d, want %d", key, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { readKey(f, "oom_kill") }); n > 1 {
		t.Errorf("readKey allocates %v times per call", n)
	}
}

// TestStatsFilesOpenWhenBuilt: a sandbox's cgroup statistics files (its
// memory peak and OOM kills, read for every REPORT) are open once the
// sandbox is built, so that its first call's REPORT opens none of them.
func TestStatsFilesOpenWhenBuilt(t *testing.T) {
	m := newManager(t)
	s, err := m.build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	var files []string
	switch g := s.cg.(type) {
	case *v1Group:
		files = []string{g.peak.path, g.oom.path}
	case *v2Group:
		if !g.limits {
			t.Skip("the cgroup v2 hierarchy here has no memory controller: there are no memory statistics to open")
		}
		files = []string{g.peak.path, g.events.path}
	}
	open := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil {
			open[target] = true
		}
	}
	for _, f := range files {
		if !open[f] {
			t.Errorf("%s is not open after the sandbox was built; its first REPORT would open it", f)
		}
	}
}
