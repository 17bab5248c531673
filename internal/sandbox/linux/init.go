package linux

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// InitArg is the argument that makes the icebox binary run as a sandbox's
// PID 1 (see RunInit). Binaries that create sandboxes, test binaries
// included, must check for it first thing in main or TestMain.
const InitArg = "init"

// baseSpec is the part of a sandbox's root every function shares; it is
// built ahead of need.
type baseSpec struct {
	Root     string      `json:"root"`
	Hostname string      `json:"hostname"`
	Binds    []bindMount `json:"binds"`
	Links    [][2]string `json:"links"` // {target, path inside the root}
	Files    [][2]string `json:"files"` // {path inside the root, content}
}

// runSpec is the function-specific part, sent when the sandbox is claimed.
type runSpec struct {
	Binds []bindMount `json:"binds"`
	TmpMB int         `json:"tmpMB"`
	UID   int         `json:"uid"`
	GID   int         `json:"gid"`
	Args  []string    `json:"args"`
	Env   []string    `json:"env"`
	Cwd   string      `json:"cwd"`
}

type bindMount struct {
	Src string `json:"src"`
	Dst string `json:"dst"` // inside the root
	Dir bool   `json:"dir"`
	RW  bool   `json:"rw"`
}

// ctlFD is the control socket the daemon passes as the first extra file.
const ctlFD = 3

// RunInit is the sandbox's PID 1. It is entered in fresh mount, pid, ipc, uts
// and net namespaces. Protocol on the control socket (one line each):
//
//	daemon → init: baseSpec (JSON)  init → daemon: "ok" | "error: …"   (shared root built)
//	daemon → init: runSpec (JSON)   init → daemon: "ok" | "error: …"   (code mounted, pivoted)
//	daemon → init: "go"             init → daemon: "ok" | "error: …"   (runtime started)
//	                                init → daemon: "exit CODE SIGNAL"  (runtime ended)
//
// After the first exchange the daemon moves init into its cgroup and opens
// the Runtime API listener inside the network namespace; the sandbox then
// waits, pre-built, until a function claims it. Init stays to reap orphans;
// when the runtime exits, init exits, and the kernel kills everything left
// in the pid namespace.
func RunInit() {
	// Namespace-affecting prctls and the fork of the runtime must happen on
	// one thread: no_new_privs and the capability bounding set are per thread.
	runtime.LockOSThread()
	unix.CloseOnExec(ctlFD)
	ctl := os.NewFile(ctlFD, "ctl")
	r := bufio.NewReader(ctl)
	reply := func(err error) {
		if err != nil {
			fmt.Fprintf(ctl, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			os.Exit(1)
		}
		fmt.Fprintln(ctl, "ok")
	}

	var base baseSpec
	err := readJSON(r, &base)
	if err == nil {
		err = buildBase(&base)
	}
	reply(err)
	var run runSpec
	if err = readJSON(r, &run); err == nil {
		err = finishRoot(base.Root, &run)
	}
	reply(err)

	if line, err := r.ReadString('\n'); err != nil || line != "go\n" {
		os.Exit(1)
	}
	cmd, err := startRuntime(&run)
	reply(err)

	code, sig := reap(cmd.Process.Pid)
	fmt.Fprintf(ctl, "exit %d %d\n", code, sig)
	os.Exit(0)
}

// readJSON reads one line and decodes it; a closed socket ends init quietly
// (the daemon destroyed a pre-built sandbox).
func readJSON(r *bufio.Reader, v any) error {
	line, err := r.ReadBytes('\n')
	if err != nil {
		os.Exit(1)
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("decode spec: %w", err)
	}
	return nil
}

// buildBase assembles the shared part of the sandbox's filesystem on a tmpfs.
func buildBase(s *baseSpec) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	if err := unix.Mount("tmpfs", s.Root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755,size=16m"); err != nil {
		return fmt.Errorf("mount root tmpfs: %w", err)
	}
	in := func(p string) string { return filepath.Join(s.Root, p) }
	for _, d := range []string{"proc", "dev", "tmp", "etc", "var/task", "var/runtime", "opt"} {
		if err := os.MkdirAll(in(d), 0o755); err != nil {
			return err
		}
	}
	for _, b := range s.Binds {
		if err := bind(b.Src, in(b.Dst), b.Dir, b.RW); err != nil {
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
	if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	return nil
}

// finishRoot mounts the function's code and its /tmp, then pivots into the
// root and makes it read-only.
func finishRoot(root string, s *runSpec) error {
	in := func(p string) string { return filepath.Join(root, p) }
	for _, b := range s.Binds {
		if err := bind(b.Src, in(b.Dst), b.Dir, b.RW); err != nil {
			return err
		}
	}
	tmpOpts := fmt.Sprintf("mode=1777,size=%dm", s.TmpMB)
	if err := unix.Mount("tmpfs", in("tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, tmpOpts); err != nil {
		return fmt.Errorf("mount /tmp: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; the
	// detach then leaves only the new root (runc does the same).
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("remount / read-only: %w", err)
	}
	return nil
}

// bind mounts src at dst, read-only unless rw.
func bind(src, dst string, dir, rw bool) error {
	if dir {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
	} else {
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
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_NOSUID)
	if !rw {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s: %w", dst, err)
	}
	return nil
}

// startRuntime drops every privilege and starts the runtime as the sandbox
// user, in a cgroup namespace rooted at the sandbox's own cgroup.
func startRuntime(s *runSpec) (*exec.Cmd, error) {
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return nil, fmt.Errorf("drop capability %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("no_new_privs: %w", err)
	}
	cmd := &exec.Cmd{
		Path:   s.Args[0],
		Args:   s.Args,
		Env:    s.Env,
		Dir:    s.Cwd,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWCGROUP,
			Credential: &syscall.Credential{Uid: uint32(s.UID), Gid: uint32(s.GID), Groups: []uint32{}},
			Setsid:     true,
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

// reap collects every child (orphans are re-parented to PID 1) until the
// runtime itself exits, and returns how it ended.
func reap(pid int) (code int, sig syscall.Signal) {
	for {
		var ws unix.WaitStatus
		p, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 255, 0
		}
		if p != pid {
			continue
		}
		if ws.Signaled() {
			return 0, ws.Signal()
		}
		return ws.ExitStatus(), 0
	}
}
