package linux

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"icebox/internal/sandbox/linux/pid1"
)

// spawner is the daemon's handle on its spawner process (pid1.Spawn),
// which starts sandbox inits as the daemon's children. A spawner that died
// is replaced at the next request.
type spawner struct {
	path string // the init binary

	// mu holds one request and its answer together, and guards the rest.
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd has been waited for
	conn    *os.File      // the daemon's end of the socket
	r       *bufio.Reader
	stopped bool
}

// startSpawner runs the init binary at path as the spawner.
func startSpawner(path string) (*spawner, error) {
	sp := &spawner{path: path}
	if err := sp.start(); err != nil {
		return nil, err
	}
	return sp, nil
}

// start starts a spawner process; mu held or sp not yet shared.
func (sp *spawner) start() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("spawner socket: %w", err)
	}
	conn := os.NewFile(uintptr(fds[0]), "spawner")
	child := os.NewFile(uintptr(fds[1]), "spawner-child")
	defer child.Close()
	cmd := &exec.Cmd{
		Path:        sp.path,
		Args:        []string{"icebox", InitArg, pid1.SpawnerArg},
		Env:         initEnv,
		Stderr:      os.Stderr,
		ExtraFiles:  []*os.File{child}, // pid1.CtlFD
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	// The inits the spawner starts have this process as parent, in fact
	// the thread that started the spawner: their parent-death signal comes
	// when that thread ends. A locked thread is never ended under another
	// goroutine's feet; it is let go (not ended) once the spawner is gone.
	started, exited := make(chan error), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		conn.Close()
		return fmt.Errorf("start spawner: %w", err)
	}
	sp.cmd, sp.exited, sp.conn, sp.r = cmd, exited, conn, bufio.NewReader(conn)
	return nil
}

// errSpawnerGone is a request that could not reach the spawner or get its
// answer.
var errSpawnerGone = errors.New("sandbox spawner gone")

// spawn starts a sandbox's init for req, with out as its stdout and stderr
// and extra as its files from pid1.CtlFD on.
func (sp *spawner) spawn(req pid1.SpawnRequest, out *os.File, extra ...*os.File) (*os.Process, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	fds := []int{int(out.Fd())}
	for _, f := range extra {
		fds = append(fds, int(f.Fd()))
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.stopped {
		return nil, errors.New("sandbox spawner stopped")
	}
	line, err := sp.request(b, fds)
	if errors.Is(err, errSpawnerGone) {
		// Replaced once: the request may have been read by the one that
		// died, but not answered, so no init of it is known to run.
		sp.end()
		if err := sp.start(); err != nil {
			return nil, err
		}
		line, err = sp.request(b, fds)
	}
	if err != nil {
		return nil, err
	}
	if msg, ok := strings.CutPrefix(line, "error: "); ok {
		return nil, errors.New(msg)
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(line, "pid "))
	if err != nil {
		return nil, fmt.Errorf("sandbox spawner: unexpected answer %q", line)
	}
	// The init is this process's child (CLONE_PARENT): its pid cannot
	// be reused before it is waited for here.
	return os.FindProcess(pid)
}

// request sends one request and reads its answer; mu held.
func (sp *spawner) request(b []byte, fds []int) (string, error) {
	if err := sendWithFDs(sp.conn, b, fds...); err != nil {
		return "", fmt.Errorf("%w: %w", errSpawnerGone, err)
	}
	line, err := sp.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%w: %w", errSpawnerGone, err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// end closes the daemon's end, which ends the spawner, and waits for it;
// one that does not end within 10 s is killed. mu held.
func (sp *spawner) end() {
	sp.conn.Close()
	awaitExit(sp.cmd.Process, sp.exited)
}

// stop ends the spawner for good.
func (sp *spawner) stop() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if !sp.stopped {
		sp.stopped = true
		sp.end()
	}
}
