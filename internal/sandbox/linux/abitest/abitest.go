// Package abitest makes system calls through the entry points a 64-bit
// process is not meant to use (the i386 int $0x80 gate and the x32 ABI), so
// tests can check that the sandbox's seccomp filter refuses them. Each
// attempt runs in a child process of its own: the filter kills a process
// that uses a foreign ABI, and the outcome is how the child ended.
package abitest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Arg, as a binary's first argument, makes Main run one attempt.
const Arg = "abi-attempt"

// Attempts names every attempt Run makes. "native-getpid" is the control:
// the 64-bit ABI keeps working.
var Attempts = []string{"native-getpid", "i386-getpid", "i386-unshare-user", "i386-clone-newuser", "x32-unshare-user"}

// Outcomes of an attempt, besides "errno: TEXT" for a refused call.
const (
	OK     = "ok"                      // the call returned a non-negative value
	Killed = "killed: bad system call" // SIGSYS: seccomp's kill action
	// NoIA32 is how an i386 call ends where the kernel has no IA32
	// emulation: without the int $0x80 gate the CPU raises a fault.
	NoIA32 = "killed: segmentation fault"
)

// UnderFilter is what each attempt must end with inside a sandbox: the
// native ABI works, an i386 call kills the process (without the filter the
// i386 unshare is EINVAL only because the caller is multi-threaded, and the
// i386 clone makes a user namespace), an x32 call is not implemented.
var UnderFilter = map[string]string{
	"native-getpid":      OK,
	"i386-getpid":        Killed,
	"i386-unshare-user":  Killed,
	"i386-clone-newuser": Killed,
	"x32-unshare-user":   "errno: " + unix.ENOSYS.Error(),
}

// Main, when os.Args[1] is Arg, runs the attempt named by os.Args[2] and
// prints its raw result, or with "all" runs every attempt as Run does and
// prints one "NAME OUTCOME" line each; then it exits. Otherwise it returns
// at once.
func Main() {
	if len(os.Args) < 3 || os.Args[1] != Arg {
		return
	}
	if os.Args[2] == "all" {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for name, outcome := range Run(exe) {
			fmt.Println(name, outcome)
		}
		os.Exit(0)
	}
	r, err := attempt(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(r)
	os.Exit(0)
}

// Run makes every attempt, each in a child started from exe (a binary
// whose main calls Main), and returns how each ended: OK, "errno: TEXT",
// or "killed: SIGNAL".
func Run(exe string) map[string]string {
	out := map[string]string{}
	for _, name := range Attempts {
		out[name] = RunOne(exe, name)
	}
	return out
}

// RunOne makes the attempt name in a child started from exe.
func RunOne(exe, name string) string {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(exe, Arg, name)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled():
		return "killed: " + ee.Sys().(syscall.WaitStatus).Signal().String()
	default:
		return fmt.Sprintf("child failed: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	r, err := strconv.ParseInt(strings.TrimSpace(stdout.String()), 10, 64)
	if err != nil {
		return fmt.Sprintf("child printed %q", stdout.String())
	}
	if r < 0 {
		return "errno: " + syscall.Errno(-r).Error()
	}
	return OK
}

// i386 system call numbers (arch/x86/entry/syscalls/syscall_32.tbl).
// clone (120) is in abi_amd64.s.
const (
	i386Getpid  = 20
	i386Unshare = 310
)

// x32Bit marks a system call of the x32 ABI, made with the 64-bit syscall
// instruction.
const x32Bit = 0x40000000

// attempt makes one call and returns its raw result: a negative errno on
// failure.
func attempt(name string) (int64, error) {
	switch name {
	case "native-getpid":
		r, _, _ := unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
		return int64(r), nil
	case "x32-unshare-user":
		r, _, errno := unix.RawSyscall(x32Bit|unix.SYS_UNSHARE, unix.CLONE_NEWUSER, 0, 0)
		if errno != 0 {
			return -int64(errno), nil
		}
		return int64(r), nil
	}
	if !Supported {
		return -int64(unix.ENOSYS), nil
	}
	switch name {
	case "i386-getpid":
		return syscall386(i386Getpid, 0, 0, 0), nil
	case "i386-unshare-user":
		// From a multi-threaded process, EINVAL even without a filter.
		return syscall386(i386Unshare, unix.CLONE_NEWUSER, 0, 0), nil
	case "i386-clone-newuser":
		// A new process in a new user namespace, holding every capability
		// there: the way out the filter must close.
		pid := clone386(unix.CLONE_NEWUSER | uint32(unix.SIGCHLD))
		if pid > 0 {
			var ws unix.WaitStatus
			if _, err := unix.Wait4(int(pid), &ws, 0, nil); err != nil {
				return 0, fmt.Errorf("wait for the cloned child: %w", err)
			}
		}
		return pid, nil
	}
	return 0, fmt.Errorf("unknown attempt %q", name)
}
