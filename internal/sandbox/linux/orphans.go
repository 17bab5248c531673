package linux

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"
)

// A daemon's watchdog ends its sandboxes when the daemon dies. If the
// watchdog is killed too (kill -9 of both, the OOM killer), the sandboxes
// stay, frozen, under the dead daemon's cgroup parent until a daemon starts
// again on that data dir; and that data dir may never be used again.
//
// So every manager records, in a host-wide registry on tmpfs (cgroups do not
// survive a reboot either), which data dir's lock guards its cgroup parent;
// on start it sweeps the parents whose lock nobody holds: neither a daemon
// nor a watchdog is alive for them, so what runs there is orphaned. The
// sweep holds that lock meanwhile, so a daemon starting on the data dir
// waits for it rather than meeting it half done.

// DefaultOrphanRegistry is where managers record their cgroup parents.
const DefaultOrphanRegistry = "/run/icebox/parents"

// parentID is the form of a parent's last element (DataDirLock.ID).
var parentID = regexp.MustCompile(`^[0-9a-f]{12}$`)

// registerParent records that the cgroup parent named id is guarded by the
// lock in dataDir.
func registerParent(registry, id, dataDir string) error {
	if err := os.MkdirAll(registry, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(registry, "."+id)
	if err := os.WriteFile(tmp, []byte(dataDir+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(registry, id))
}

// sweepOrphans kills and removes the sandbox groups of every registered
// parent under base, other than self, whose data dir lock is free, and
// forgets those parents. It returns the ids it swept.
func sweepOrphans(registry string, roots []string, base, self string) []string {
	ents, _ := os.ReadDir(registry)
	var swept []string
	for _, e := range ents {
		id := e.Name()
		if id == self || !parentID.MatchString(id) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(registry, id))
		if err != nil {
			continue
		}
		release, free := tryLock(filepath.Join(strings.TrimSpace(string(b)), lockFileName))
		if !free {
			continue // a daemon or its watchdog looks after it
		}
		parent := filepath.Join(base, id)
		_ = sweep(roots, parent)
		removeParents(roots, parent)
		_ = os.Remove(filepath.Join(registry, id))
		release()
		swept = append(swept, id)
	}
	return swept
}

// tryLock takes the flock on a data dir's lock file without waiting. free
// reports that nobody held it (or the file is gone with its data dir);
// release lets go of it.
func tryLock(path string) (release func(), free bool) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return func() {}, true
	}
	if err != nil {
		return nil, false
	}
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		unix.Close(fd)
		return nil, false
	}
	return func() { unix.Close(fd) }, true
}
