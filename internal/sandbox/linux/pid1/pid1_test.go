package pid1

import (
	"encoding/binary"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

func TestSeccompPolicyAssembles(t *testing.T) {
	p, _, err := sandboxPolicy()
	if err != nil {
		t.Fatal(err)
	}
	insts, err := sandboxFilter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bpf.Assemble(insts); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, g := range p.Syscalls {
		for _, n := range g.Names {
			names[n] = true
		}
		for _, n := range g.NamesWithCondtions {
			names[n.Name] = true
		}
	}
	for _, must := range []string{"mount", "umount2", "pivot_root", "unshare", "setns", "ptrace", "kexec_load", "bpf",
		"perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "open_by_handle_at", "init_module",
		"finit_module", "delete_module", "reboot", "swapon", "clock_settime", "clone3", "clone", "personality",
		"process_madvise", "sethostname"} {
		if !names[must] {
			t.Errorf("filter does not deny %s", must)
		}
	}
}

// TestSeccompFilterDecisions runs the assembled filter in a BPF interpreter
// over the seccomp_data the kernel would pass, so the verdict for every ABI
// and argument case is checked on any architecture, without root.
func TestSeccompFilterDecisions(t *testing.T) {
	insts, err := sandboxFilter()
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}
	native, err := arch.GetInfo("")
	if err != nil {
		t.Fatal(err)
	}
	// The compat ABI of the running architecture.
	compat := arch.ARM
	if native.ID == arch.X86_64.ID {
		compat = arch.I386
	}
	nr := func(a *arch.Info, name string) uint32 {
		n, ok := a.SyscallNames[name]
		if !ok {
			t.Fatalf("%s has no %s", a.Name, name)
		}
		return uint32(n)
	}
	// verdict runs the filter on one call. The interpreter loads words big
	// endian where the kernel loads them native: each word is stored big
	// endian at the offset the kernel's layout gives it.
	verdict := func(auditArch, sysno uint32, args ...uint64) uint32 {
		data := make([]byte, 64)
		binary.BigEndian.PutUint32(data[seccompNrOff:], sysno)
		binary.BigEndian.PutUint32(data[seccompArchOff:], auditArch)
		for i, a := range args {
			lo := seccompArgLoOff(uint32(i))
			hi := lo ^ 4 // the other half of the 8 bytes
			binary.BigEndian.PutUint32(data[lo:], uint32(a))
			binary.BigEndian.PutUint32(data[hi:], uint32(a>>32))
		}
		v, err := vm.Run(data)
		if err != nil {
			t.Fatal(err)
		}
		return uint32(v)
	}
	const (
		allow = unix.SECCOMP_RET_ALLOW
		kill  = unix.SECCOMP_RET_KILL_PROCESS
		eperm = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		nosys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	)
	id := uint32(native.ID)
	for _, c := range []struct {
		name      string
		got, want uint32
	}{
		{"native getpid", verdict(id, nr(native, "getpid")), allow},
		{"native unshare", verdict(id, nr(native, "unshare"), unix.CLONE_NEWUSER), eperm},
		{"native clone3", verdict(id, nr(native, "clone3")), nosys},
		{"native clone, fork flags", verdict(id, nr(native, "clone"), uint64(unix.SIGCHLD)), allow},
		{"native clone, CLONE_NEWUSER", verdict(id, nr(native, "clone"), unix.CLONE_NEWUSER|uint64(unix.SIGCHLD)), eperm},
		// Every call of the compat ABI, whatever it is, and of an unknown one.
		{compat.Name + " getpid", verdict(uint32(compat.ID), nr(compat, "getpid")), kill},
		{compat.Name + " unshare", verdict(uint32(compat.ID), nr(compat, "unshare"), unix.CLONE_NEWUSER), kill},
		{compat.Name + " clone", verdict(uint32(compat.ID), nr(compat, "clone"), unix.CLONE_NEWUSER), kill},
		{compat.Name + " exit_group", verdict(uint32(compat.ID), nr(compat, "exit_group")), kill},
		{"arch 0", verdict(0, nr(native, "getpid")), kill},
		{"personality(PER_LINUX)", verdict(id, nr(native, "personality"), 0), allow},
		{"personality(PER_LINUX32)", verdict(id, nr(native, "personality"), 8), allow},
		{"personality(query)", verdict(id, nr(native, "personality"), 0xffffffff), allow},
		{"personality(ADDR_NO_RANDOMIZE)", verdict(id, nr(native, "personality"), 0x0040000), eperm},
		{"personality(READ_IMPLIES_EXEC)", verdict(id, nr(native, "personality"), 0x0400000), eperm},
		{"personality(1<<32)", verdict(id, nr(native, "personality"), 1<<32), eperm},
		{"socket(AF_INET)", verdict(id, nr(native, "socket"), unix.AF_INET, unix.SOCK_STREAM), allow},
		{"socket(AF_NETLINK)", verdict(id, nr(native, "socket"), unix.AF_NETLINK, unix.SOCK_RAW), allow},
		{"socket(AF_VSOCK)", verdict(id, nr(native, "socket"), unix.AF_VSOCK, unix.SOCK_STREAM), eperm},
		{"socket(1<<32|AF_VSOCK)", verdict(id, nr(native, "socket"), 1<<32|unix.AF_VSOCK, unix.SOCK_STREAM), eperm},
	} {
		if c.got != c.want {
			t.Errorf("%s: verdict %#x, want %#x", c.name, c.got, c.want)
		}
	}
	if native.ID == arch.X86_64.ID {
		// x32: the native audit arch, bit 30 set in the number.
		if v := verdict(id, uint32(arch.X32.SeccompMask)|nr(native, "unshare"), unix.CLONE_NEWUSER); v != nosys {
			t.Errorf("x32 unshare: verdict %#x, want %#x", v, nosys)
		}
		if v := verdict(id, uint32(arch.X32.SeccompMask)|nr(native, "getpid")); v != nosys {
			t.Errorf("x32 getpid: verdict %#x, want %#x", v, nosys)
		}
	}
}

// TestCloseOnExecFrom: a descriptor opened without O_CLOEXEC (as a library
// in init might) does not survive into the runtime.
func TestCloseOnExecFrom(t *testing.T) {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0) // deliberately inheritable
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := closeOnExecFrom(3); err != nil {
		t.Fatal(err)
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("fd %d flags %#x (%v): not close-on-exec", fd, fl, err)
	}
}
