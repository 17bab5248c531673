package linux

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"icebox/internal/sandbox/linux/pid1"
)

// Sandboxes must not outlive their daemon, however it ends. Each sandbox's
// init gets SIGKILL when the daemon dies (Pdeathsig), but on cgroup v1 a
// frozen process acts on no signal until it is thawed, and an idle
// environment is frozen: after a kill -9 of the daemon they stayed, with
// their memory, until a restart on the same data dir cleaned up.
//
// So every manager starts a watchdog: the same binary re-executed (like a
// sandbox's init) as `icebox init watchdog`, holding one end of a socket
// whose other end only the daemon has. When that end closes — the daemon
// exited or was killed, any way — the watchdog kills and thaws every group
// under the manager's cgroup parent, removes the groups and exits. On a
// clean shutdown the manager has destroyed its sandboxes first, so the
// watchdog finds nothing and Manager.Close waits for it to exit.
//
// Sandboxes cannot reach it: it runs as host root in the host's pid
// namespace, which they neither see nor share ids with. It has a session of
// its own, so a terminal's or service manager's signal to the daemon's
// process group does not end it, ignores SIGINT/SIGTERM/SIGHUP, and is the
// last process the OOM killer would pick.
//
// It also holds the data dir lock and the manager's id leases (the same
// open files, passed over the socket), so neither is free while a
// sandbox of the dead daemon may still run: a daemon restarted on the data
// dir waits for the watchdog instead of meeting its predecessor's groups.

// watchdogArg, after InitArg, makes RunInit run the watchdog.
const watchdogArg = "watchdog"

// watchdogSpec is the first line the daemon sends; every descriptor sent
// with it or later is held until the watchdog exits.
type watchdogSpec struct {
	// Roots are the cgroup hierarchies the sandboxes' groups are in (one
	// per v1 controller, or the v2 mount).
	Roots []string `json:"roots"`
	// Parent is the manager's parent group, relative to each root.
	Parent string `json:"parent"`
	// Egress names the bridge and table to remove, when egress is on.
	Egress *egressNames `json:"egress,omitempty"`
}

// watchdog is the daemon's handle on its watchdog process.
type watchdog struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been waited for

	// mu orders sends against stop.
	mu   sync.Mutex
	conn *os.File // the daemon's end of the socket; nil once stopped
}

// startWatchdog runs the binary at path as the watchdog over spec and
// hands it the files in hold.
func startWatchdog(path string, spec watchdogSpec, hold ...*os.File) (_ *watchdog, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("watchdog socket: %w", err)
	}
	w := &watchdog{conn: os.NewFile(uintptr(fds[0]), "watchdog"), exited: make(chan struct{})}
	child := os.NewFile(uintptr(fds[1]), "watchdog-child")
	defer child.Close()
	w.cmd = &exec.Cmd{
		Path:        path,
		Args:        []string{"icebox", InitArg, watchdogArg},
		Env:         initEnv,
		Stderr:      os.Stderr, // its only output: what it could not clean up
		ExtraFiles:  []*os.File{child},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := w.cmd.Start(); err != nil {
		w.conn.Close()
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	go func() {
		_ = w.cmd.Wait()
		close(w.exited)
	}()
	defer func() {
		if err != nil {
			w.stop()
		}
	}()
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	if err := w.send(append(b, '\n'), hold...); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *watchdog) pid() int { return w.cmd.Process.Pid }

// hold hands f to the watchdog to keep until it exits.
func (w *watchdog) hold(f *os.File) error { return w.send([]byte("hold\n"), f) }

func (w *watchdog) send(b []byte, files ...*os.File) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		return errors.New("watchdog stopped")
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	if err := sendWithFDs(w.conn, b, fds...); err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	return nil
}

// stop closes the daemon's end, which sets the watchdog sweeping, and
// waits for it to exit; one that does not within 10 s is killed.
func (w *watchdog) stop() {
	w.mu.Lock()
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
	w.mu.Unlock()
	awaitExit(w.cmd.Process, w.exited)
}

// awaitExit waits until exited is closed; a process p that has not ended
// within 10 s is killed.
func awaitExit(p *os.Process, exited <-chan struct{}) {
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = p.Kill()
		<-exited
	}
}

// sendWithFDs writes b to the socket conn, with fds attached to its first byte.
func sendWithFDs(conn *os.File, b []byte, fds ...int) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	var oob []byte // sent with the first bytes only
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	err = rc.Write(func(fd uintptr) bool {
		for len(b) > 0 {
			n, err := unix.SendmsgN(int(fd), b, oob, nil, 0)
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				return false // wait until the socket can take more
			}
			if err != nil {
				serr = err
				return true
			}
			b, oob = b[n:], nil
		}
		return true
	})
	return errors.Join(err, serr)
}

// runWatchdog is the watchdog process (see the top of this file). It never
// returns. It ends with unix.Exit: nothing is left to flush, and the exit
// hooks os.Exit runs would, in a race-enabled build, hold the process (and
// the daemon's Close, which waits for it) for a second.
func runWatchdog() {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0)
	ctl := pid1.NewConn(pid1.CtlFD)
	var spec watchdogSpec
	// The descriptors that come with each line are kept open, never
	// closed: holding them is the point.
	if _, err := ctl.ReadJSON(&spec); err != nil {
		// The daemon died before it had a sandbox to guard.
		unix.Exit(0)
	}
	for {
		if _, _, err := ctl.ReadLine(); err != nil {
			break
		}
	}
	err := sweep(spec.Roots, spec.Parent)
	removeParents(spec.Roots, spec.Parent)
	if spec.Egress != nil {
		// The sandboxes' veths go with their namespaces.
		teardownEgress(*spec.Egress)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "icebox watchdog: %v\n", err)
		unix.Exit(1)
	}
	unix.Exit(0)
}

// sweep kills every process in the groups under parent in each root and
// removes the groups. Every group is signalled first and waited for
// second, so their pid namespaces come down in parallel.
func sweep(roots []string, parent string) error {
	var groups []string
	for _, root := range roots {
		dir := filepath.Join(root, parent)
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() {
				groups = append(groups, filepath.Join(dir, e.Name()))
			}
		}
	}
	for _, g := range groups {
		killGroup(g)
	}
	deadline := time.Now().Add(10 * time.Second)
	var errs []error
	for _, g := range groups {
		for killGroup(g) > 0 {
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("cgroup %s: processes outlive SIGKILL", g))
				break
			}
			time.Sleep(time.Millisecond)
		}
		errs = append(errs, rmdirRetry(g))
	}
	return errors.Join(errs...)
}

// killGroup sends SIGKILL to every process in group g, then thaws it, and
// returns how many processes it found. On cgroup v1 a frozen process acts
// on the signal only once thawed; signalled before the thaw, none can fork
// in between. A sandbox's init dying takes its whole pid namespace along.
func killGroup(g string) int {
	_ = writeFile(filepath.Join(g, "cgroup.kill"), "1") // v2, Linux 5.14+: all at once
	n := 0
	if b, err := os.ReadFile(filepath.Join(g, "cgroup.procs")); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = unix.Kill(pid, unix.SIGKILL)
				n++
			}
		}
	}
	_ = writeFile(filepath.Join(g, "freezer.state"), "THAWED") // v1
	_ = writeFile(filepath.Join(g, "cgroup.freeze"), "0")      // v2
	return n
}

// removeParents removes parent in each root, and its ancestors up to the
// root, where empty; rmdir fails harmlessly on a level another daemon uses.
func removeParents(roots []string, parent string) {
	for _, root := range roots {
		for dir := filepath.Join(root, parent); dir != root && dir != "."; dir = filepath.Dir(dir) {
			if unix.Rmdir(dir) != nil {
				break
			}
		}
	}
}
