package linux

import (
	"embed"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"icebox/internal/sandbox/linux/pid1"
)

// InitArg is the argument that makes the icebox binary run as a sandbox's
// PID 1, when no icebox-init is embedded (see embeddedInit), or as a
// manager's watchdog (see watchdog.go). Binaries that create sandboxes, test
// binaries included, must check for it first thing in main or TestMain.
const InitArg = "init"

// RunInit is a binary re-executed with InitArg: the watchdog, the spawner
// or a sandbox's init. It never returns.
func RunInit() {
	if len(os.Args) > 2 && os.Args[2] == watchdogArg {
		runWatchdog()
	}
	pid1.Main()
}

//go:generate env CGO_ENABLED=0 go build -trimpath "-ldflags=-s -w" -o initbin/icebox-init icebox/cmd/icebox-init

// initbin holds icebox-init once go generate has built it.
//
//go:embed initbin
var initbin embed.FS

// InitEmbedded reports whether this binary has an icebox-init to run as
// its sandboxes' init, rather than re-executing itself.
func InitEmbedded() bool { return embeddedInit() != nil }

// embeddedInit is the icebox-init binary built into this one, nil when
// go generate was not run before the build.
func embeddedInit() []byte {
	b, _ := initbin.ReadFile("initbin/icebox-init")
	return b
}

// sealedInit puts bin, the embedded icebox-init, in a sealed memfd, so
// what /proc/1/exe leads to inside a sandbox cannot be written by anyone,
// and returns a read-only descriptor of it, to keep open, and the path to
// exec.
func sealedInit(bin []byte) (int, string, error) {
	fd, err := unix.MemfdCreate("icebox-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL { // before Linux 6.3, every memfd is executable
		fd, err = unix.MemfdCreate("icebox-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return -1, "", fmt.Errorf("memfd for the sandbox init: %w", err)
	}
	defer unix.Close(fd)
	for b := bin; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			return -1, "", fmt.Errorf("write the sandbox init: %w", err)
		}
		b = b[n:]
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return -1, "", fmt.Errorf("seal the sandbox init: %w", err)
	}
	// exec refuses a file open for writing (ETXTBSY): keep a read-only
	// descriptor of it.
	ro, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("reopen the sandbox init: %w", err)
	}
	high, exe, err := execPath(ro)
	if err != nil {
		return -1, "", fmt.Errorf("sandbox init descriptor: %w", err)
	}
	return high, exe, nil
}
