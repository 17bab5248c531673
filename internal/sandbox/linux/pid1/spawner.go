package pid1

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// SpawnerArg, after the init argument, makes the init binary the spawner.
const SpawnerArg = "spawner"

// SpawnRequest asks the spawner for a sandbox's init. It travels with the
// descriptors the init gets: its stdout and stderr first, then its extra
// files (CtlFD on).
type SpawnRequest struct {
	// Path is the binary to exec; empty means the spawner's own, the init.
	Path string   `json:"path,omitempty"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
	// FirstID and IDs map the user namespace's ids 0…IDs-1 to host ids
	// FirstID….
	FirstID int `json:"firstID"`
	IDs     int `json:"ids"`
}

// Spawn is the spawner: a small process of the init binary, started once
// per sandbox manager, that starts every sandbox's init in its new
// namespaces. A new user namespace rules out vfork, and a fork copies the
// page tables of the forking process: ~10 ms from the daemon (its heap,
// the engine's) against ~1 ms from here. With CLONE_PARENT the init is
// the daemon's child all the same: the daemon waits for it and is told of
// its end as before. One request at a time on the socket at CtlFD, each
// answered "pid N" or "error: …"; Spawn exits when the daemon closes its
// end. It never returns.
func Spawn() {
	// As init (see Run): Ctrl-C in the daemon's terminal is the daemon's
	// to act on; caught, not ignored, so the inits start with defaults.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGTERM)
	unix.CloseOnExec(CtlFD)
	ctl := NewConn(CtlFD)
	for {
		var req SpawnRequest
		fds, err := ctl.ReadJSON(&req)
		if errors.Is(err, io.EOF) {
			unix.Exit(0)
		}
		files := make([]*os.File, len(fds))
		for i, fd := range fds {
			files[i] = os.NewFile(uintptr(fd), "")
		}
		var pid int
		if err == nil {
			pid, err = spawn(&req, files)
		}
		for _, f := range files {
			f.Close()
		}
		if err != nil {
			ctl.Write(fmt.Sprintf("error: %s\n", strings.ReplaceAll(err.Error(), "\n", " ")))
			continue
		}
		ctl.Write(fmt.Sprintf("pid %d\n", pid))
	}
}

// spawn starts req's init with files[0] as its stdout and stderr and the
// rest as its extra files, and returns its pid. It is not waited for here: it is the
// daemon's child.
//
// The user namespace is created first and owns the others, so init is
// privileged over its own mounts, hostname and network only. Go writes
// uid_map and gid_map from here, as host root, before the child goes on
// to become root of the namespace and exec init; setgroups stays allowed
// so the child can drop the spawner's supplementary groups (host gid 0
// among them), which a mapped process would otherwise keep.
func spawn(req *SpawnRequest, files []*os.File) (int, error) {
	if len(files) == 0 {
		return 0, errors.New("spawn: no descriptors")
	}
	path := req.Path
	if path == "" {
		path = "/proc/self/exe"
	}
	idMap := []syscall.SysProcIDMap{{ContainerID: 0, HostID: req.FirstID, Size: req.IDs}}
	cmd := &exec.Cmd{
		Path:       path,
		Args:       req.Args,
		Env:        req.Env,
		Stdout:     files[0],
		Stderr:     files[0],
		ExtraFiles: files[1:],
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC |
				unix.CLONE_NEWUTS | unix.CLONE_NEWNET | unix.CLONE_PARENT,
			UidMappings:                idMap,
			GidMappings:                idMap,
			GidMappingsEnableSetgroups: true,
			Credential:                 &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}},
			Pdeathsig:                  syscall.SIGKILL,
		},
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start sandbox init: %w", err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	return pid, nil
}
