package linux

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// lockFileName is the file in a data dir whose flock a daemon holds for its
// whole life. It is never removed: unlinking a lock file lets a newcomer
// lock a fresh inode while an old holder still has the old one.
const lockFileName = "icebox.lock"

// staleHoldWait bounds how long a daemon waits for the watchdog of a dead
// predecessor to finish killing its sandboxes (see LockDataDir).
const staleHoldWait = 15 * time.Second

// DataDirLock is one daemon's exclusive hold on its data dir. The flock is
// taken before anything in the dir, or any cgroup named after it, is
// touched. The lock file names the holder: the daemon's pid and, once it
// runs, its watchdog's, each with its start time so that a reused pid is
// not mistaken for the holder. It also keeps the data dir's ID.
//
// The watchdog (see watchdog.go) is handed the same open file, so the lock
// outlives a daemon that is killed until the watchdog has killed the
// sandboxes and removed their groups: a restarted daemon never starts
// while the previous one's sandboxes still run under the same names.
type DataDirLock struct {
	dir    string
	f      *os.File
	id     string
	holder string // the ID's line and this daemon's
}

// LockDataDir takes the lock on dir (which must exist). When a live daemon
// holds it, it fails at once, naming that daemon's pid. When the holder has
// died and only its watchdog still holds the lock, it waits for the
// watchdog to finish, up to staleHoldWait or until ctx ends.
func LockDataDir(ctx context.Context, dir string) (_ *DataDirLock, err error) {
	// The identity is the directory's, taken from the descriptor the lock
	// file is opened through: the one every spelling of the path leads to.
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	fd, err := unix.Openat(dfd, lockFileName, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, lockFileName))
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	deadline := time.Now().Add(staleHoldWait)
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
		}
		h := readHolders(f)
		if pid, ok := h["daemon"]; ok && pid.alive() {
			return nil, fmt.Errorf("data dir %s is in use by icebox (pid %d)", dir, pid.pid)
		}
		if time.Now().After(deadline) {
			what := "its previous daemon exited"
			if w, ok := h["watchdog"]; ok && w.alive() {
				what += fmt.Sprintf(" and its watchdog (pid %d) is still cleaning up", w.pid)
			}
			return nil, fmt.Errorf("data dir %s is still locked after %v: %s", dir, staleHoldWait, what)
		}
		// The daemon is gone (or has not written its line yet): whoever
		// holds the lock is finishing with it.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	l := &DataDirLock{dir: dir, f: f, id: readID(f, uint64(st.Dev), uint64(st.Ino))}
	self, _ := procStart(os.Getpid())
	l.holder = fmt.Sprintf("id %s %d %d\ndaemon %d %d\n", l.id, st.Dev, st.Ino, os.Getpid(), self)
	if err := l.record(l.holder); err != nil {
		return nil, err
	}
	return l, nil
}

// readID returns the ID the lock file keeps for the directory with device
// dev and inode ino, or a new one. An ID is random, and kept with the
// device and inode it was made for: every spelling of the path (relative,
// through symlinks or bind mounts) reaches the same file, while a copied
// or restored data dir, or one deleted and made again (even on a recycled
// inode), gets an ID of its own.
func readID(f *os.File, dev, ino uint64) string {
	var buf [256]byte
	n, _ := f.ReadAt(buf[:], 0)
	for _, line := range strings.Split(string(buf[:n]), "\n") {
		var id string
		var d, i uint64
		if _, err := fmt.Sscanf(line, "id %s %d %d", &id, &d, &i); err == nil && d == dev && i == ino && len(id) == 12 {
			return id
		}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ID identifies the locked data dir independently of how its path was
// spelled; cgroups and id leases are named after it.
func (l *DataDirLock) ID() string { return l.id }

// setWatchdog adds the watchdog to the holders the lock file names.
func (l *DataDirLock) setWatchdog(pid int) error {
	start, _ := procStart(pid)
	return l.record(l.holder + fmt.Sprintf("watchdog %d %d\n", pid, start))
}

func (l *DataDirLock) record(s string) error {
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("lock data dir %s: %w", l.dir, err)
	}
	if _, err := l.f.WriteAt([]byte(s), 0); err != nil {
		return fmt.Errorf("lock data dir %s: %w", l.dir, err)
	}
	return nil
}

// Close releases the lock, which is free once the watchdog (stopped by
// Manager.Close) has let go of it too. The ID stays in the file.
func (l *DataDirLock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	idLine, _, _ := strings.Cut(l.holder, "\n")
	_ = l.record(idLine + "\n")
	err := l.f.Close()
	l.f = nil
	return err
}

// holder is a process named in a lock file.
type holder struct {
	pid   int
	start uint64
}

// alive reports whether the named process still runs: it exists, has the
// recorded start time (the pid was not reused) and is not a zombie, which
// has closed its files and holds no lock.
func (h holder) alive() bool {
	start, ok := procStart(h.pid)
	return ok && start == h.start
}

// readHolders parses "ROLE PID START" lines.
func readHolders(f *os.File) map[string]holder {
	var buf [256]byte
	n, _ := f.ReadAt(buf[:], 0)
	out := map[string]holder{}
	for _, line := range strings.Split(string(buf[:n]), "\n") {
		var role string
		var h holder
		if _, err := fmt.Sscanf(line, "%s %d %d", &role, &h.pid, &h.start); err == nil && h.pid > 0 {
			out[role] = h
		}
	}
	return out
}

// procStart returns a live (not zombie) process's start time in clock
// ticks after boot.
func procStart(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name is parenthesised and may hold spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state) of proc(5)
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	return start, err == nil
}
