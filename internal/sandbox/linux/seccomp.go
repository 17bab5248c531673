package linux

import (
	"fmt"
	"sync"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/sys/unix"
)

// deniedSyscalls fail with EPERM inside a sandbox. The list follows Docker's
// default profile for a container without capabilities: everything that
// changes the mount table or namespaces, traces or inspects other processes,
// loads code into the kernel, touches keyrings, the clock, swap, quotas or
// the kernel log, or opens files by handle. The runtime holds no capability,
// so most of these would fail anyway; the filter keeps that true even if a
// kernel bug hands one back, and it shrinks the kernel surface a function can
// reach (bpf, perf_event_open, userfaultfd, keyctl are frequent exploit
// entry points that need no privilege).
var deniedSyscalls = []string{
	// Mounts and namespaces.
	"mount", "umount2", "pivot_root", "unshare", "setns", "chroot",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
	// Other processes.
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	// Kernel code and kernel state.
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"create_module", "get_kernel_syms", "query_module", "bpf", "perf_event_open",
	"lookup_dcookie", "syslog", "reboot", "acct", "swapon", "swapoff", "quotactl", "quotactl_fd",
	"nfsservctl", "_sysctl", "sysfs", "ustat", "uselib",
	"iopl", "ioperm", "vm86", "vm86old",
	// Keyrings.
	"keyctl", "add_key", "request_key",
	// Clock.
	"clock_settime", "clock_adjtime", "settimeofday", "adjtimex", "stime",
	// Memory tricks used to win kernel races, NUMA placement.
	"userfaultfd", "mbind", "set_mempolicy", "set_mempolicy_home_node", "move_pages", "migrate_pages",
	// Files by handle (the "shocker" escape), fanotify (needs CAP_SYS_ADMIN).
	"open_by_handle_at", "name_to_handle_at", "fanotify_init",
}

// notImplementedSyscalls fail with ENOSYS, so that callers take the fallback
// they already have for older kernels. clone3 passes its flags in memory a
// filter cannot read, so it is refused and libc falls back to clone, whose
// flags the filter checks. io_uring has been a steady source of kernel bugs;
// libuv and friends fall back to ordinary syscalls without it.
var notImplementedSyscalls = []string{"clone3", "io_uring_setup", "io_uring_enter", "io_uring_register"}

// namespaceFlags may not be passed to clone: a function makes no namespaces.
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME

var (
	policyOnce sync.Once
	policy     seccomp.Policy
	policyErr  error
)

// sandboxPolicy builds the filter policy once. Names the running
// architecture does not have (iopl off x86, vm86 off i386) are skipped.
// It is assembled into BPF only by LoadFilter, once per sandbox (a test
// checks that it assembles).
func sandboxPolicy() (seccomp.Policy, error) {
	policyOnce.Do(func() {
		info, err := arch.GetInfo("")
		if err != nil {
			policyErr = fmt.Errorf("seccomp: %w", err)
			return
		}
		known := func(names []string) []string {
			var out []string
			for _, n := range names {
				if _, ok := info.SyscallNames[n]; ok {
					out = append(out, n)
				}
			}
			return out
		}
		policy = seccomp.Policy{
			DefaultAction: seccomp.ActionAllow,
			Syscalls: []seccomp.SyscallGroup{
				{Action: seccomp.ActionErrno, Names: known(deniedSyscalls)},
				{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: known(notImplementedSyscalls)},
				{Action: seccomp.ActionErrno, NamesWithCondtions: []seccomp.NameWithConditions{{
					Name:       "clone",
					Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: namespaceFlags}},
				}}},
			},
		}
	})
	return policy, policyErr
}

// loadSeccomp installs the sandbox filter on the calling thread (which the
// runtime is then forked from). no_new_privs must already be set.
func loadSeccomp() error {
	p, err := sandboxPolicy()
	if err != nil {
		return err
	}
	return seccomp.LoadFilter(seccomp.Filter{NoNewPrivs: true, Policy: p})
}
