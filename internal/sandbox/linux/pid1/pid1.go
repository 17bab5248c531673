// Package pid1 is a sandbox's init: the process the manager starts in a
// sandbox's new namespaces, which builds its root, starts the extensions
// and the runtime, and reaps. It is built on its own, as the small
// icebox-init binary the daemon embeds (internal/sandbox/linux/init.go), so that every
// environment pays for this code alone, not for the daemon's; the daemon
// binary re-executed as init runs the same Run.
package pid1

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BaseSpec is the part of a sandbox's root every function shares; it is
// built ahead of need. It travels with one file descriptor: the directory
// whose "rootfs" child the root is mounted on (see RootMountName).
type BaseSpec struct {
	Hostname string      `json:"hostname"`
	Binds    []Bind      `json:"binds"`
	Links    [][2]string `json:"links"` // {target, path inside the root}
	Files    [][2]string `json:"files"` // {path inside the root, content}
	// Seccomp is the filter the extensions and the runtime run under:
	// struct sock_filter after struct sock_filter, in native byte order.
	Seccomp []byte `json:"seccomp"`
}

// RunSpec is the function-specific part, sent when the sandbox is claimed.
// Its binds name their sources by index into the descriptors sent with it,
// opened in init's mount namespace: under OldRootName, since init has
// pivoted into the sandbox's root by then.
type RunSpec struct {
	Binds []Bind   `json:"binds"`
	TmpMB int      `json:"tmpMB"`
	UID   int      `json:"uid"`
	GID   int      `json:"gid"`
	Args  []string `json:"args"`
	Env   []string `json:"env"`
	// Exts are extension executables started before the runtime.
	Exts []string `json:"exts,omitempty"`
	Cwd  string   `json:"cwd"`
}

// Bind is one bind mount init makes in the root.
type Bind struct {
	Src string `json:"src,omitempty"` // a host path init can reach…
	FD  int    `json:"fd,omitempty"`  // …or 1 + the index of a descriptor sent along
	Dst string `json:"dst"`           // inside the root
	Dir bool   `json:"dir"`
	RW  bool   `json:"rw"`
}

// CtlFD is the control socket the daemon passes as the first extra file,
// TelemetryFD the write end of the runtime's telemetry pipe, its second:
// the runtime gets it as sandbox.TelemetryFD. ExtOutFD, the third, is the
// write end of the extensions' own pipe: their stdout and stderr, kept
// apart from the runtime's as Lambda keeps them (extension records).
const (
	CtlFD       = 3
	TelemetryFD = 4
	ExtOutFD    = 5
)

// RootMountName is the directory, inside the one the daemon sends with the
// BaseSpec, on which init mounts the sandbox's root tmpfs.
const RootMountName = "rootfs"

// OldRootName is where a built sandbox's init keeps the host's root, inside
// its own, until the function's code is mounted: the daemon opens what it
// sends with a RunSpec under it (see RunSpec).
const OldRootName = ".host"

// Main runs what os.Args asks of the init binary: the spawner, after
// SpawnerArg, or else a sandbox's PID 1. It never returns.
func Main() {
	if len(os.Args) > 2 && os.Args[2] == SpawnerArg {
		Spawn()
	}
	Run()
}

// Run is the sandbox's PID 1. It is entered in fresh user, mount, pid,
// ipc, uts and net namespaces, as root of its user namespace only: host ids
// are mapped to an unprivileged range, so nothing init or the function does
// counts as host root. Protocol on the control socket (one line each; the
// daemon's lines may carry file descriptors):
//
//	daemon → init: BaseSpec (JSON)  init → daemon: "ok" | "error: …"   (shared root built)
//	daemon → init: RunSpec (JSON)   init → daemon: "ok" | "error: …"   (code mounted, pivoted)
//	daemon → init: "go"             init → daemon: "ok" | "error: …"   (extensions started)
//	daemon → init: "runtime"        init → daemon: "ok" | "error: …"   (runtime started)
//	                                init → daemon: "ext I CODE SIGNAL" (extension I ended; any number)
//	                                init → daemon: "exit CODE SIGNAL"  (runtime ended)
//
// Init cannot reach the daemon's private directories (the data dir is
// usually 0700 and owned by host root, whom the user namespace does not
// map), so the daemon opens what init must mount through /proc/PID/root —
// inside init's own mount namespace — and passes the descriptors.
//
// After the first exchange the daemon moves init into its cgroup and opens
// the Runtime API listener inside the network namespace; the sandbox then
// waits, pre-built, until a function claims it. Init stays to reap orphans;
// when the runtime and every extension have exited, init exits, and the
// kernel kills everything left in the pid namespace. Init exits with
// unix.Exit: its writes are unbuffered, and the exit hooks of os.Exit
// would, in a race-enabled build, keep it (and what the runtime left
// behind) alive for another second.
func Run() {
	// Namespace-affecting prctls, the seccomp filter and the fork of the
	// runtime must happen on one thread: all of them are per thread.
	runtime.LockOSThread()
	// Init shares the daemon's process group, so Ctrl-C in a terminal (or a
	// SIGTERM to the group) reaches it too; dying then would fail the calls
	// the daemon is letting finish. The daemon ends init with SIGKILL when
	// it wants it gone. Catching (not ignoring) the signals leaves them at
	// their default in the runtime init execs.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGTERM)
	unix.CloseOnExec(CtlFD)
	unix.CloseOnExec(TelemetryFD)
	unix.CloseOnExec(ExtOutFD)
	// Not dumpable: /proc/1 belongs to the sandbox's root, not to whoever
	// shares init's uid, and nothing can attach to it.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	ctl := NewConn(CtlFD)
	reply := func(err error) {
		if err != nil {
			ctl.Write(fmt.Sprintf("error: %s\n", strings.ReplaceAll(err.Error(), "\n", " ")))
			unix.Exit(1)
		}
		ctl.Write("ok\n")
	}

	var base BaseSpec
	fds, err := ctl.ReadJSON(&base)
	if err == nil {
		err = buildBase(&base, fds)
	}
	closeAll(fds)
	reply(err)
	var run RunSpec
	if fds, err = ctl.ReadJSON(&run); err == nil {
		err = finishRoot(&run, fds)
	}
	closeAll(fds)
	reply(err)

	if line, fds, err := ctl.ReadLine(); err != nil || string(line) != "go" {
		unix.Exit(1)
	} else {
		closeAll(fds)
	}
	// Lambda's order: the extensions start, and register, before the
	// runtime starts; the daemon says when with "runtime".
	command, exts, err := startExtensions(&run, base.Seccomp)
	reply(err)
	r := newReaper(ctl, exts)
	for i, pid := range exts {
		if pid == 0 {
			// It could not be started: reported as exec's "command not
			// executable" status.
			ctl.Write(fmt.Sprintf("ext %d 126 0\n", i))
		}
	}
	go r.loop()

	if line, fds, err := ctl.ReadLine(); err != nil || string(line) != "runtime" {
		unix.Exit(1)
	} else {
		closeAll(fds)
	}
	pid, err := r.startRuntime(func() (int, error) {
		cmd := command(run.Args)
		// The first extra file is the runtime's sandbox.TelemetryFD.
		cmd.ExtraFiles = []*os.File{os.NewFile(TelemetryFD, "telemetry")}
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	})
	reply(err)
	relayRuntimeSignals(pid)
	code, sig := r.runtimeExit()
	ctl.Write(fmt.Sprintf("exit %d %d\n", code, sig))
	// Extensions outlive the runtime: they get SHUTDOWN (reason failure or
	// timeout) after it ended, and the daemon ends init when they are done
	// or their time is up. Without one left, init goes, and the kernel
	// kills what the runtime left behind.
	r.extensionsGone()
	unix.Exit(0)
}

// Signals the daemon sends init to act on the runtime alone, leaving the
// extensions running: SIGUSR1 kills the runtime and its process group,
// SIGUSR2 sends it SIGTERM (Lambda's graceful shutdown). Only a handler
// lets them reach a pid namespace's init from outside.
const (
	SigKillRuntime = syscall.SIGUSR1
	SigTermRuntime = syscall.SIGUSR2
)

// relayRuntimeSignals passes the daemon's SigKillRuntime and
// SigTermRuntime on to the runtime (pid; its own session and process group).
func relayRuntimeSignals(pid int) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, SigKillRuntime, SigTermRuntime)
	go func() {
		for s := range ch {
			if s == SigKillRuntime {
				_ = unix.Kill(-pid, unix.SIGKILL)
				_ = unix.Kill(pid, unix.SIGKILL)
			} else {
				_ = unix.Kill(pid, unix.SIGTERM)
			}
		}
	}()
}

// Conn reads newline-terminated messages and the descriptors that come
// with them from a control socket, and writes lines to it.
type Conn struct {
	mu  sync.Mutex // serializes writes
	fd  int
	buf []byte // bytes received after the last line
}

// NewConn reads and writes the socket fd.
func NewConn(fd int) *Conn { return &Conn{fd: fd} }

// ReadLine returns the next line (without its newline) and every descriptor
// received while reading it; io.EOF once the daemon closed its end. For
// init that means the daemon destroyed a pre-built sandbox, and init's
// reply, which nobody reads, ends it.
func (c *Conn) ReadLine() ([]byte, []int, error) {
	var fds []int
	p := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(16*4))
	for {
		if i := bytes.IndexByte(c.buf, '\n'); i >= 0 {
			line := c.buf[:i]
			c.buf = c.buf[i+1:]
			return line, fds, nil
		}
		n, oobn, _, _, err := unix.Recvmsg(c.fd, p, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			closeAll(fds)
			return nil, nil, io.EOF
		}
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return nil, fds, fmt.Errorf("control message: %w", err)
			}
			for _, m := range msgs {
				if r, err := unix.ParseUnixRights(&m); err == nil {
					fds = append(fds, r...)
				}
			}
		}
		c.buf = append(c.buf, p[:n]...)
	}
}

// ReadJSON decodes the next line into v and returns the descriptors that
// came with it.
func (c *Conn) ReadJSON(v any) ([]int, error) {
	line, fds, err := c.ReadLine()
	if err != nil {
		return fds, err
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fds, fmt.Errorf("decode spec: %w", err)
	}
	return fds, nil
}

// Write writes s whole; init exits when the daemon's end is gone.
func (c *Conn) Write(s string) {
	// The reaper reports extensions' ends while init answers the daemon.
	c.mu.Lock()
	defer c.mu.Unlock()
	for b := []byte(s); len(b) > 0; {
		n, err := unix.Write(c.fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Exit(1)
		}
		b = b[n:]
	}
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// source is where a bind's source is found from init.
func (b *Bind) source(fds []int) (string, error) {
	if b.FD == 0 {
		return b.Src, nil
	}
	if b.FD > len(fds) {
		return "", fmt.Errorf("bind %s: descriptor %d not received", b.Dst, b.FD)
	}
	// The magic link leads to the descriptor's directory without a path
	// walk, so no permission on its ancestors is needed.
	return fmt.Sprintf("/proc/self/fd/%d", fds[b.FD-1]), nil
}

// maskedProcPaths are hidden as runc hides them by default: files under a
// bind of /dev/null, directories under an empty read-only tmpfs. They leak
// kernel memory, keyrings, timers and scheduler state of the whole host.
var maskedProcPaths = []string{
	"acpi", "asound", "interrupts", "kcore", "keys", "latency_stats", "timer_list", "timer_stats",
	"sched_debug", "scsi",
}

// readOnlyProcPaths are bound read-only over themselves: sysctls, the
// SysRq trigger, bus and irq settings.
var readOnlyProcPaths = []string{"bus", "fs", "irq", "sys", "sysrq-trigger"}

// buildBase assembles the shared part of the sandbox's filesystem on a tmpfs
// mounted on the directory fds[0] names and pivots into it, the host's root
// kept at OldRootName until finishRoot. pivot_root costs time in proportion
// to the threads on the host (the kernel visits each one to move roots), so
// it is done here, ahead of need, rather than on a cold start.
func buildBase(s *BaseSpec, fds []int) error {
	if len(fds) != 1 {
		return fmt.Errorf("want 1 descriptor with the base spec, got %d", len(fds))
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	if err := unix.Fchdir(fds[0]); err != nil {
		return fmt.Errorf("enter root mount point: %w", err)
	}
	if err := unix.Mount("tmpfs", RootMountName, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755,size=16m"); err != nil {
		return fmt.Errorf("mount root tmpfs: %w", err)
	}
	if err := unix.Chdir(RootMountName); err != nil {
		return err
	}
	for _, d := range []string{"proc", "dev", "tmp", "etc", "var/task", "var/runtime", "opt"} {
		if err := os.MkdirAll(in(d), 0o755); err != nil {
			return err
		}
	}
	for _, b := range s.Binds {
		src, err := b.source(nil)
		if err != nil {
			return err
		}
		if err := bind(src, in(b.Dst), b.Dir, b.RW); err != nil {
			return err
		}
	}
	for _, l := range s.Links {
		if err := os.MkdirAll(filepath.Dir(in(l[1])), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(l[0], in(l[1])); err != nil {
			return err
		}
	}
	for _, f := range s.Files {
		if err := os.WriteFile(in(f[0]), []byte(f[1]), 0o644); err != nil {
			return err
		}
	}
	if err := unix.Mount("proc", in("proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := maskProc(); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	if err := os.Mkdir(OldRootName, 0o700); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", OldRootName); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	return unix.Chdir("/")
}

// in names a path inside the sandbox root, relative to init's working
// directory: the root, before and after pivot_root.
func in(p string) string { return filepath.Join(".", p) }

// maskProc hides and write-protects the parts of the sandbox's /proc that
// describe or control the host rather than the sandbox.
func maskProc() error {
	for _, p := range maskedProcPaths {
		dst := in("proc/" + p)
		fi, err := os.Stat(dst)
		if err != nil {
			continue // not on this kernel
		}
		if fi.IsDir() {
			err = unix.Mount("tmpfs", dst, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=555")
		} else {
			err = unix.Mount(in("dev/null"), dst, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("mask /proc/%s: %w", p, err)
		}
	}
	for _, p := range readOnlyProcPaths {
		dst := in("proc/" + p)
		fi, err := os.Stat(dst)
		if err != nil {
			continue
		}
		if err := bind(dst, dst, fi.IsDir(), false); err != nil {
			return fmt.Errorf("/proc/%s read-only: %w", p, err)
		}
	}
	return nil
}

// finishRoot mounts the function's code and its /tmp, lets go of the host's
// root and makes the sandbox's read-only.
func finishRoot(s *RunSpec, fds []int) error {
	for _, b := range s.Binds {
		src, err := b.source(fds)
		if err != nil {
			return err
		}
		if err := bind(src, in(b.Dst), b.Dir, b.RW); err != nil {
			return err
		}
	}
	tmpOpts := fmt.Sprintf("mode=1777,size=%dm", s.TmpMB)
	if err := unix.Mount("tmpfs", in("tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, tmpOpts); err != nil {
		return fmt.Errorf("mount /tmp: %w", err)
	}
	// The binds hold their own references to what they show; the rest of
	// the host goes from the namespace.
	if err := unix.Unmount(OldRootName, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := os.Remove(OldRootName); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("remount / read-only: %w", err)
	}
	return nil
}

// bind mounts src at dst, read-only unless rw. Inside a user namespace the
// flags the source mount carries (nodev, noexec, its atime mode…) are locked
// and a remount must repeat them, so they are read back and kept.
func bind(src, dst string, dir, rw bool) error {
	if dir {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
	} else if _, err := os.Lstat(dst); err != nil {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		f.Close()
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dst, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dst, err)
	}
	flags := uintptr(unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NOSUID) | lockedFlags(st.Flags)
	if !rw {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s: %w", dst, err)
	}
	return nil
}

// lockedFlags turns statfs flags into the mount flags a bind remount in a
// user namespace must keep.
func lockedFlags(st int64) uintptr {
	var f uintptr
	for _, m := range [][2]uintptr{
		{unix.ST_RDONLY, unix.MS_RDONLY}, {unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME},
	} {
		if uintptr(st)&m[0] != 0 {
			f |= m[1]
		}
	}
	switch {
	case uintptr(st)&unix.ST_NOATIME != 0:
		f |= unix.MS_NOATIME
	case uintptr(st)&unix.ST_RELATIME != 0:
		f |= unix.MS_RELATIME
	default:
		f |= unix.MS_STRICTATIME
	}
	return f
}

// nofileLimit is Lambda's open-file limit, soft and hard.
const nofileLimit = 1024

// NprocLimit is Lambda's limit on the function user's processes and
// threads, soft and hard. The sandbox's cgroup allows init a few tasks more
// than this, so a fork bomb meets this limit first and init can always
// start the threads its own runtime needs.
const NprocLimit = 1024

// startExtensions drops every privilege and starts the extensions as the
// sandbox user, in a cgroup namespace rooted at the sandbox's own cgroup;
// command then makes the runtime's command the same way. Everything here is
// done on init's locked thread, which the extensions and later the runtime
// are forked from: the rlimits, the cgroup namespace, the bounding set,
// no_new_privs and the seccomp filter all pass to them; init itself needs
// none of what the filter denies from here on (it only reaps and reports).
// exts holds the extensions' pids (0 for one that could not start, which
// fails the init rather than the sandbox).
func startExtensions(s *RunSpec, filter []byte) (command func(args []string) *exec.Cmd, exts []int, err error) {
	// syscall.Setrlimit, not unix's: it also stops Go from restoring the
	// soft limit it raised at start-up in the child.
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: nofileLimit, Max: nofileLimit}); err != nil {
		return nil, nil, fmt.Errorf("RLIMIT_NOFILE: %w", err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NPROC, &unix.Rlimit{Cur: NprocLimit, Max: NprocLimit}); err != nil {
		return nil, nil, fmt.Errorf("RLIMIT_NPROC: %w", err)
	}
	// Nothing of init's but stdin, stdout and stderr may reach the runtime.
	if err := closeOnExecFrom(3); err != nil {
		return nil, nil, err
	}
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return nil, nil, fmt.Errorf("cgroup namespace: %w", err)
	}
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return nil, nil, fmt.Errorf("drop capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return nil, nil, fmt.Errorf("no_new_privs: %w", err)
	}
	if err := loadSeccomp(filter); err != nil {
		return nil, nil, err
	}
	env := s.Env
	if env == nil {
		env = []string{} // nil would mean "inherit init's"
	}
	command = func(args []string) *exec.Cmd {
		return &exec.Cmd{
			Path:   args[0],
			Args:   args,
			Env:    env,
			Dir:    s.Cwd,
			Stdout: os.Stdout,
			Stderr: os.Stderr,
			SysProcAttr: &syscall.SysProcAttr{
				Credential: &syscall.Credential{Uid: uint32(s.UID), Gid: uint32(s.GID), Groups: []uint32{}},
				Setsid:     true,
				Pdeathsig:  syscall.SIGKILL,
			},
		}
	}
	exts = make([]int, len(s.Exts))
	extOut := os.NewFile(ExtOutFD, "extensions-output")
	for i, path := range s.Exts {
		x := command([]string{path})
		x.Stdout, x.Stderr = extOut, extOut
		if x.Start() == nil {
			exts[i] = x.Process.Pid
		}
	}
	return command, exts, nil
}

// closeOnExecFrom marks every descriptor from lowfd up close-on-exec.
func closeOnExecFrom(lowfd int) error {
	err := unix.CloseRange(uint(lowfd), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err != unix.ENOSYS && err != unix.EINVAL {
		return err
	}
	// Before Linux 5.11: walk /proc/self/fd.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list descriptors: %w", err)
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= lowfd {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// loadSeccomp installs filter (see BaseSpec.Seccomp) on the calling
// thread, which the runtime is then forked from.
func loadSeccomp(filter []byte) error {
	const size = int(unsafe.Sizeof(unix.SockFilter{}))
	if len(filter) == 0 || len(filter)%size != 0 || len(filter)/size > 0xffff {
		return fmt.Errorf("seccomp: a filter of %d bytes", len(filter))
	}
	insts := make([]unix.SockFilter, len(filter)/size)
	for i := range insts {
		b := filter[i*size:]
		insts[i] = unix.SockFilter{Code: binary.NativeEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.NativeEndian.Uint32(b[4:])}
	}
	prog := unix.SockFprog{Len: uint16(len(insts)), Filter: &insts[0]}
	// An unprivileged filter needs no_new_privs; init has set it already.
	if _, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog))); errno != 0 {
		return fmt.Errorf("seccomp: load filter: %w", errno)
	}
	return nil
}
