package linux

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// memoryPeak is a sandbox's Max Memory Used: the larger of its cgroup's
// peak and the largest resident high-water mark (VmHWM) of a process in it
// other than init.
//
// The cgroup alone undercounts. A page is charged to the group that first
// faulted it in, and the code's file pages were cached by the daemon that
// unpacked the zip (the interpreter's, by whoever ran it first on the
// host), so a runtime's mapped binary is never charged to its sandbox: a Go
// hello function resident at 8 MiB, 7 of them its binary, showed a cgroup
// peak of 1.8 MiB and "Max Memory Used: 1 MB". VmHWM counts every page the
// process had mapped. Reading it (one cgroup.procs and one /proc/PID/status
// per process) cost ~90 µs of daemon CPU per warm invoke on a 2-core VM, so
// s.resident reads it again only when it may have moved (see
// residentCache.peak).
func (s *linuxSandbox) memoryPeak(cgroupPeak uint64) uint64 {
	if s.proc == nil {
		return cgroupPeak
	}
	pid := s.proc.Pid
	resident := s.resident.peak(cgroupPeak, time.Now(), func() uint64 {
		return residentPeak(s.cg.procsFile(), "/proc", pid)
	})
	return max(cgroupPeak, resident)
}

// residentRefresh bounds how old the resident part of Max Memory Used can
// be when the cgroup's peak did not move (the runtime mapped more pages that
// were cached by someone else, like a library loaded late).
const residentRefresh = time.Second

// residentSlack is how far the cgroup's peak may rise before the resident
// peak is read again. The cgroup's usage creeps up by pages of kernel memory
// and page cache under a steady load (a Go echo's group peak grew from 7 to
// 13 MB over 19,000 calls, a page or so at a time), which would make every
// call read again; memory the runtime allocates itself is charged to the
// group, so what goes unseen until the refresh is under 1 MB, the unit of
// Max Memory Used.
const residentSlack = 1 << 20

// residentCache holds a sandbox's last resident peak read.
type residentCache struct {
	mu     sync.Mutex
	valid  bool
	value  uint64    // the resident peak read
	cgroup uint64    // the cgroup's peak when it was read
	at     time.Time // when it was read
}

// peak returns the resident peak, calling read again when there is none yet,
// when the cgroup's peak rose by residentSlack since the last read (memory
// the runtime faulted in itself is charged to its group, so growth shows
// there first),
// when the group reports no peak (no memory controller), or when the last
// read is older than residentRefresh. Between those, VmHWM can only have
// grown by pages charged elsewhere, which the refresh catches.
func (c *residentCache) peak(cgroupPeak uint64, now time.Time, read func() uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.valid && cgroupPeak != 0 && cgroupPeak < c.cgroup+residentSlack && now.Sub(c.at) < residentRefresh {
		return c.value
	}
	// VmHWM never falls while a process lives; a process that exited takes
	// its peak with it, but the sandbox's Max Memory Used is a peak too.
	c.value = max(c.value, read())
	c.valid, c.cgroup, c.at = true, cgroupPeak, now
	return c.value
}

// residentPeak returns the largest VmHWM, in bytes, of the processes listed
// in procsFile (host pids), skipping init. Processes that exit meanwhile
// are skipped; an unreadable list gives 0.
func residentPeak(procsFile, proc string, init int) uint64 {
	b, err := os.ReadFile(procsFile)
	if err != nil {
		return 0
	}
	var peak uint64
	for _, f := range bytes.Fields(b) {
		pid, err := strconv.Atoi(string(f))
		if err != nil || pid == init {
			continue
		}
		status, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "status"))
		if err != nil {
			continue
		}
		peak = max(peak, vmHWM(status))
	}
	return peak
}

// vmHWM parses the "VmHWM:  8180 kB" line of /proc/PID/status into bytes;
// 0 when absent (kernel threads).
func vmHWM(status []byte) uint64 {
	_, rest, ok := bytes.Cut(status, []byte("\nVmHWM:"))
	if !ok {
		return 0
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	fields := bytes.Fields(line)
	if len(fields) != 2 || string(fields[1]) != "kB" {
		return 0
	}
	kb, err := strconv.ParseUint(string(fields[0]), 10, 64)
	if err != nil {
		return 0
	}
	return kb << 10
}
