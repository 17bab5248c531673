//go:build !amd64

package abitest

import "golang.org/x/sys/unix"

// Supported tells whether this architecture has a foreign entry to try.
// An arm64 binary cannot switch to AArch32 itself; the filter's arch check
// is covered there by the BPF tests of the sandbox package.
const Supported = false

func syscall386(nr, a1, a2, a3 uint32) int64 { return -int64(unix.ENOSYS) }
func clone386(flags uint32) int64            { return -int64(unix.ENOSYS) }
