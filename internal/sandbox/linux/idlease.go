package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// idLeaseDir is the host-wide registry of id leases. /run is emptied at
// boot, as the host is of sandboxes.
const idLeaseDir = "/run/icebox/ids"

// idLeaseBlocks is how many sandbox blocks (idRangeSize ids each) one lease
// holds. A manager takes another lease when its live sandboxes outgrow the
// ones it has, so the host's 49151 blocks above DefaultIDBase are shared by
// up to 192 managers without any of them being capped below the rest.
const idLeaseBlocks = 256

// idLeases leases the host's sandbox id space to one manager, so that
// managers on one host, whatever their data dirs, never hand out the same
// host ids. The registry is a directory with one file per lease. A lease
// is held by an flock on its file: the kernel releases it when the last
// holder is gone, so a crashed daemon's leases need no reclaiming. The
// watchdog (see watchdog.go) is handed every lease and keeps it until the
// sandboxes that used its ids are dead.
//
// A lease's file records the data dir that last held it, and a manager
// first takes the free leases its own data dir held before, so a
// restarted daemon gets the ids it had; then never-used ones; then
// leases other data dirs left free.
type idLeases struct {
	dir string
	key string // the data dir's ID; "" for a manager that serves none
	// hold, when set, passes a newly taken lease to the watchdog.
	hold func(*os.File) error

	files []*os.File // the leases taken
}

// leaseRange is the ids of lease k: blocks many blocks from first.
func leaseRange(k int) (first, blocks uint32) {
	total := (uint64(1<<32-1) - DefaultIDBase) / idRangeSize
	start := uint64(k) * idLeaseBlocks
	return uint32(DefaultIDBase + start*idRangeSize), uint32(min(idLeaseBlocks, total-start))
}

// idLeaseCount is how many leases the id space holds.
func idLeaseCount() int {
	total := (uint64(1<<32-1) - DefaultIDBase) / idRangeSize
	return int((total + idLeaseBlocks - 1) / idLeaseBlocks)
}

// take reserves one more lease and returns its range.
func (l *idLeases) take() (first, blocks uint32, err error) {
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return 0, 0, fmt.Errorf("sandbox: id lease registry: %w", err)
	}
	n := idLeaseCount()
	var mine, unused, others []int
	for k := range n {
		b, err := os.ReadFile(filepath.Join(l.dir, strconv.Itoa(k)))
		switch owner := strings.TrimSpace(string(b)); {
		case err != nil || owner == "":
			unused = append(unused, k)
		case owner == l.key:
			mine = append(mine, k)
		default:
			others = append(others, k)
		}
	}
	for _, k := range append(append(mine, unused...), others...) {
		f, err := l.tryLease(k)
		if err != nil {
			return 0, 0, err
		}
		if f == nil {
			continue
		}
		if l.hold != nil {
			if err := l.hold(f); err != nil {
				f.Close()
				return 0, 0, err
			}
		}
		l.files = append(l.files, f)
		first, blocks = leaseRange(k)
		return first, blocks, nil
	}
	return 0, 0, fmt.Errorf("sandbox: no free host id range: all %d leases of %s are held", n, l.dir)
}

// tryLease locks lease k and records the key in it; it returns nil when
// another holder has it.
func (l *idLeases) tryLease(k int) (_ *os.File, err error) {
	f, err := os.OpenFile(filepath.Join(l.dir, strconv.Itoa(k)), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sandbox: id lease: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("sandbox: id lease %d: %w", k, err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if err := f.Truncate(0); err != nil {
		return nil, fmt.Errorf("sandbox: id lease %d: %w", k, err)
	}
	if _, err := f.WriteAt([]byte(l.key+"\n"), 0); err != nil {
		return nil, fmt.Errorf("sandbox: id lease %d: %w", k, err)
	}
	return f, nil
}

// close lets go of the manager's leases; each is free once the watchdog
// has let go of it too.
func (l *idLeases) close() {
	for _, f := range l.files {
		f.Close()
	}
	l.files = nil
}
