package linux

import (
	"encoding/binary"
	"fmt"
	"sync"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
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
	"mount", "umount", "umount2", "pivot_root", "unshare", "setns", "chroot",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "open_tree_attr", "mount_setattr",
	"sethostname", "setdomainname",
	// Other processes.
	"ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "kcmp", "pidfd_getfd",
	// Kernel code and kernel state.
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"create_module", "get_kernel_syms", "query_module", "bpf", "perf_event_open",
	"lookup_dcookie", "syslog", "reboot", "acct", "swapon", "swapoff", "quotactl", "quotactl_fd",
	"nfsservctl", "_sysctl", "sysfs", "ustat", "uselib", "vhangup",
	"iopl", "ioperm", "vm86", "vm86old",
	// Keyrings.
	"keyctl", "add_key", "request_key",
	// Clock.
	"clock_settime", "clock_adjtime", "settimeofday", "adjtimex", "stime",
	// Memory tricks used to win kernel races, NUMA placement.
	"userfaultfd", "mbind", "get_mempolicy", "set_mempolicy", "set_mempolicy_home_node", "move_pages", "migrate_pages",
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

// Personalities Docker's profile lets through (<linux/personality.h>): the
// default, 32-bit uname and the 2.6 uname, and the query. Any other flag
// (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...) weakens the process's own
// exploit mitigations and is refused.
var allowedPersonalities = []uint64{
	0x0000000,  // PER_LINUX
	0x0000008,  // PER_LINUX32
	0x0020000,  // UNAME26
	0x0020008,  // UNAME26 | PER_LINUX32
	0xffffffff, // query the current personality
}

var (
	policyOnce sync.Once
	policy     seccomp.Policy
	archInfo   *arch.Info // the running architecture's audit arch and syscall table
	policyErr  error
)

// sandboxPolicy builds the filter policy once. Names the running
// architecture does not have (iopl off x86, vm86 off i386) are skipped.
// It is assembled into BPF only by sandboxFilter, once per sandbox.
func sandboxPolicy() (seccomp.Policy, *arch.Info, error) {
	policyOnce.Do(func() {
		info, err := arch.GetInfo("")
		if err != nil {
			policyErr = fmt.Errorf("seccomp: %w", err)
			return
		}
		archInfo = info
		known := func(names []string) []string {
			var out []string
			for _, n := range names {
				if _, ok := info.SyscallNames[n]; ok {
					out = append(out, n)
				}
			}
			return out
		}
		personality := seccomp.ArgumentConditions{}
		for _, p := range allowedPersonalities {
			personality = append(personality, seccomp.Condition{Argument: 0, Operation: seccomp.NotEqual, Value: p})
		}
		policy = seccomp.Policy{
			DefaultAction: seccomp.ActionAllow,
			Syscalls: []seccomp.SyscallGroup{
				{Action: seccomp.ActionErrno, Names: known(deniedSyscalls)},
				{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: known(notImplementedSyscalls)},
				{Action: seccomp.ActionErrno, NamesWithCondtions: []seccomp.NameWithConditions{
					{Name: "clone", Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: namespaceFlags}}},
					// Conditions are ANDed: refused when the value is none of the allowed.
					{Name: "personality", Conditions: personality},
				}},
			},
		}
	})
	return policy, archInfo, policyErr
}

// foreignABIAction is what a system call made through any ABI but the
// native one gets: the i386 int $0x80 gate and the 32-bit compat entries
// of x86-64 (AUDIT_ARCH_I386), AArch32 on arm64 (AUDIT_ARCH_ARM). The
// policy's syscall numbers mean other calls there (i386 unshare is 310,
// x86-64's is 272), so the deny list cannot apply and the whole ABI is
// refused; without this, an int $0x80 unshare(CLONE_NEWUSER) gave a
// function every capability in a new user namespace.
//
// The process is killed rather than told EPERM, as libseccomp (and so runc
// and Docker) does for an architecture its filter does not cover: its
// default bad-architecture action is a kill. An errno would not even let
// such a program exit (exit_group fails too); SIGSYS ends it at once and
// says why. KILL_PROCESS, not libseccomp's default KILL_THREAD, so a
// multi-threaded runtime does not go on with a thread missing. x32 calls
// (native arch, number with bit 30 set) are answered ENOSYS by the
// policy, as on the many kernels built without x32.
const foreignABIAction = unix.SECCOMP_RET_KILL_PROCESS

// sandboxFilter assembles the filter: a check that refuses every foreign
// ABI, the vsock check, then the policy's program, which the library
// compiles (its own arch test, left in place, now always passes).
func sandboxFilter() ([]bpf.Instruction, error) {
	p, info, err := sandboxPolicy()
	if err != nil {
		return nil, err
	}
	body, err := p.Assemble()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: seccompArchOff, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(info.ID), SkipTrue: 1},
		bpf.RetConstant{Val: foreignABIAction},
	}
	// socket(AF_VSOCK, ...) is refused: vsock reaches the hypervisor and
	// other guests whatever the network namespace (Docker's profile refuses
	// it too). The kernel takes the family as an int, from the argument's
	// low 32 bits; the library's conditions compare all 64, so a family of
	// 1<<32|AF_VSOCK would get past one of them.
	if socket, ok := info.SyscallNames["socket"]; ok {
		prog = append(prog,
			bpf.LoadAbsolute{Off: seccompNrOff, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(socket), SkipFalse: 3},
			bpf.LoadAbsolute{Off: seccompArgLoOff(0), Size: 4},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AF_VSOCK, SkipFalse: 1},
			bpf.RetConstant{Val: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		)
	}
	return append(prog, body...), nil
}

// Offsets in struct seccomp_data: nr and arch are 32-bit, then the 64-bit
// instruction pointer and six 64-bit arguments, all in native byte order.
const (
	seccompNrOff   = 0
	seccompArchOff = 4
	seccompArgsOff = 16
)

// seccompArgLoOff is where argument i's low 32 bits are.
func seccompArgLoOff(i uint32) uint32 {
	off := seccompArgsOff + 8*i
	if bigEndian() {
		off += 4
	}
	return off
}

func bigEndian() bool { return binary.NativeEndian.Uint16([]byte{0, 1}) == 1 }

var (
	programOnce sync.Once
	program     []byte
	programErr  error
)

// seccompProgram is the sandbox filter assembled, once per daemon, in
// the form pid1 loads it (pid1.BaseSpec.Seccomp): each instruction's
// struct sock_filter in native byte order. Inits get it ready-made rather
// than build it themselves: the library's syscall tables alone cost each
// init more CPU than its mounts.
func seccompProgram() ([]byte, error) {
	programOnce.Do(func() {
		insts, err := sandboxFilter()
		if err != nil {
			programErr = err
			return
		}
		raw, err := bpf.Assemble(insts)
		if err != nil {
			programErr = fmt.Errorf("seccomp: %w", err)
			return
		}
		for _, r := range raw {
			program = binary.NativeEndian.AppendUint16(program, r.Op)
			program = append(program, r.Jt, r.Jf)
			program = binary.NativeEndian.AppendUint32(program, r.K)
		}
	})
	return program, programErr
}
