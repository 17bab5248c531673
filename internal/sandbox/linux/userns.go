package linux

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// idRangeSize host ids back each sandbox's user namespace: ids 0..65535
// inside (root, the function's 993, nobody's 65534) map to a block of host
// ids that nothing else on the host uses. Every live sandbox gets its own
// block, so two functions never share a host uid: per-user kernel limits
// (pending signals, inotify instances, …) and any id check on the host keep
// them apart.
const idRangeSize = 65536

// DefaultIDBase is the first host id handed to sandboxes: far above the ids
// distributions give to users (1000…) and to subordinate ranges
// (/etc/subuid usually starts at 100000 and grows by 65536 per user).
const DefaultIDBase = 1 << 30

// idRanges hands out disjoint host id blocks from the leases it takes (see
// idLeases): blocks released by destroyed sandboxes first, then the next
// block of the current lease, then a new lease.
type idRanges struct {
	// lease reserves blocks many more blocks starting at host id first.
	// It is called with mu held.
	lease func() (first, blocks uint32, err error)

	mu   sync.Mutex
	free []uint32 // first ids of released blocks, reused first
	next uint32   // first id of the next block of the current lease
	left uint32   // blocks of the current lease never handed out
}

// newIDRanges hands out every block from base up, as one lease.
func newIDRanges(base uint32) (*idRanges, error) {
	if base < idRangeSize {
		return nil, fmt.Errorf("sandbox: id base %d overlaps ordinary host ids", base)
	}
	blocks := (uint64(1<<32-1) - uint64(base)) / idRangeSize
	if blocks == 0 {
		return nil, fmt.Errorf("sandbox: id base %d leaves no room for a sandbox", base)
	}
	leased := false
	return &idRanges{lease: func() (uint32, uint32, error) {
		if leased {
			return 0, 0, errors.New("sandbox: no free host id range")
		}
		leased = true
		return base, uint32(blocks), nil
	}}, nil
}

// get reserves a block and returns its first host id.
func (r *idRanges) get() (uint32, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.free); n > 0 {
		first := r.free[n-1]
		r.free = r.free[:n-1]
		return first, nil
	}
	if r.left == 0 {
		first, blocks, err := r.lease()
		if err != nil {
			return 0, err
		}
		r.next, r.left = first, blocks
	}
	first := r.next
	r.next += idRangeSize // the last block ends below 2^32-1: no overflow
	r.left--
	return first, nil
}

// put returns a block. Every process that ran with its ids must be gone.
func (r *idRanges) put(first uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.free = append(r.free, first)
}

// openInSandbox opens the host's path as it is seen from inside init's
// mount namespace, where init keeps the host's root at hostRoot (relative
// to its own root), as an O_PATH descriptor init can mount from. Going through
// /proc/PID/root matters twice: the daemon, host root, walks directories
// init may not enter, and the result belongs to init's mount namespace,
// where the kernel accepts it as a bind source (one opened in the daemon's
// own namespace would be refused). Symlinks on the way (a data dir
// reached through one) are resolved first, in the daemon's view: an
// absolute link followed under /proc/PID/root would lead back into the
// daemon's namespace.
func openInSandbox(pid int, hostRoot, path string) (int, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return -1, fmt.Errorf("open %s for the sandbox: %w", path, err)
	}
	abs, err := filepath.Abs(real)
	if err != nil {
		return -1, err
	}
	p := filepath.Join("/proc", strconv.Itoa(pid), "root", hostRoot, abs)
	fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s for the sandbox: %w", path, err)
	}
	return fd, nil
}

// sealedExe makes the binary at path available for exec through a private,
// read-only bind mount of it that is attached nowhere (open_tree). Sandbox
// inits run from it, so /proc/1/exe inside a sandbox leads to a read-only
// mount: even a process that got hold of it could not rewrite the icebox
// binary (the CVE-2019-5736 class). It returns the descriptor, to keep open,
// and the path to exec; on kernels without the new mount API (before 5.12)
// it returns -1 and path unchanged, leaving the user namespace's id mapping
// as the protection.
func sealedExe(path string) (int, string) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, path
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return -1, path
	}
	high, exe, err := execPath(fd)
	if err != nil {
		return -1, path
	}
	return high, exe
}

// execPath moves fd, a file to exec, clear of the low numbers a forked
// child dup2s its stdio and extra files onto before it execs, and returns
// the new descriptor (fd itself is closed) and the path that execs it.
func execPath(fd int) (int, string, error) {
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 100)
	unix.Close(fd)
	if err != nil {
		return -1, "", err
	}
	return high, "/proc/self/fd/" + strconv.Itoa(high), nil
}
