package linux

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
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
// process had mapped. Reading it costs one cgroup.procs and one
// /proc/PID/status per invocation (tens of µs), next to a call's
// milliseconds.
func (s *linuxSandbox) memoryPeak(cgroupPeak uint64) uint64 {
	if s.cmd == nil || s.cmd.Process == nil {
		return cgroupPeak
	}
	return max(cgroupPeak, residentPeak(s.cg.procsFile(), "/proc", s.cmd.Process.Pid))
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
