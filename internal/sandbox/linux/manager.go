// Package linux builds icebox sandboxes from Linux namespaces and cgroups.
// Every syscall icebox makes lives in this package.
package linux

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"icebox/internal/sandbox"
	"icebox/internal/sandbox/linux/pid1"
)

// Config configures the sandbox manager.
type Config struct {
	// StateDir holds the (empty) mount point sandboxes build their root on.
	StateDir string
	// CgroupParent is the group, relative to each hierarchy's root, under
	// which sandbox groups are made. Default "icebox".
	CgroupParent string
	// CgroupMount is where the cgroup hierarchies are mounted. Default /sys/fs/cgroup.
	CgroupMount string
	// InitPath, when set, is the binary exec'ed (with InitArg) as each
	// sandbox's PID 1: an icebox-init or a binary that calls RunInit.
	// Default: the icebox-init embedded in this binary, or this binary
	// when none is (see embeddedInit).
	InitPath string
	// UID and GID the runtime runs as. Default 993, Lambda's sbx_user1051.
	UID, GID int
	// Prebuilt is how many sandboxes are kept built ahead of need, so cold
	// starts skip namespace, cgroup and root creation. Default 2; negative
	// means none.
	Prebuilt int
	// AccountConcurrency is how many sandboxes may run a function at once
	// (the daemon's --account-concurrency). With Prebuilt it sizes the
	// parent group's pids.max, never above a share of the host's pids
	// (see parentPidsMax). Default 0: the host's share alone.
	AccountConcurrency int
	// Lock, when set, is the lock on the data dir the sandboxes serve. The
	// watchdog holds it too, until the sandboxes are dead, and the host id
	// leases the manager takes are recorded under its ID, so a restart
	// gets the same ids back.
	Lock *DataDirLock
	// OrphanRegistry is the host-wide directory where managers record
	// which data dir guards their cgroup parent, so a start on any data
	// dir reclaims the sandboxes of one whose daemon and watchdog both
	// died (orphans.go). Default DefaultOrphanRegistry; "-" turns it off.
	OrphanRegistry string
	// Egress, when enabled, gives sandboxes a policed route to the world
	// (see egress.go). Default off: loopback only.
	Egress EgressConfig
}

func (c *Config) setDefaults() {
	if c.CgroupParent == "" {
		c.CgroupParent = "icebox"
	}
	if c.OrphanRegistry == "" {
		c.OrphanRegistry = DefaultOrphanRegistry
	}
	if c.CgroupMount == "" {
		c.CgroupMount = "/sys/fs/cgroup"
	}
	if c.UID == 0 {
		c.UID, c.GID = 993, 993
	}
	if c.Prebuilt == 0 {
		c.Prebuilt = 2
	}
	if c.Egress.refuse == nil {
		c.Egress.refuse = defaultRefused
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.StateDir == "" {
		return errors.New("sandbox: StateDir is required")
	}
	if os.Geteuid() != 0 {
		return errors.New("sandbox: icebox must run as root to build sandboxes")
	}
	return c.Egress.Validate()
}

// RuntimeAPIAddr is where the Runtime API listens inside every sandbox.
const RuntimeAPIAddr = "127.0.0.1:9001"

// Manager creates sandboxes. It is safe for concurrent use.
type Manager struct {
	cfg    Config
	cg     cgroupDriver
	hostNS int    // this process's network namespace, to return to after setns
	root   string // holds pid1.RootMountName, the mount point of sandbox roots
	system []pid1.Bind
	links  [][2]string
	// seccomp is the filter every sandbox's init loads (seccompProgram).
	seccomp []byte
	// Host ids for sandboxes' user namespaces come from leases of the
	// host-wide registry, so managers on one host never share them.
	leases   idLeases
	ids      *idRanges
	watchdog *watchdog
	// exePath is this binary, exec'ed as the watchdog, and initPath each
	// sandbox's init; exeFD and initFD, when not -1, keep the sealed copies
	// they name open (see sealedExe and sealedInit).
	exePath, initPath string
	exeFD, initFD     int
	// reexec says why initPath is this binary (InitFallback).
	reexec error
	// spawner starts every sandbox's init (see pid1.Spawn); spawnPath, for
	// tests, is another binary for it to exec as init.
	spawner   *spawner
	spawnPath string
	// egress is nil unless cfg.Egress.Enabled.
	egress *egressNet

	ready chan *linuxSandbox // pre-built sandboxes
	// lastCreate is when Create last ran (UnixNano): the prebuild loop
	// waits for a quiet moment after it (see refillQuiet).
	lastCreate atomic.Int64
	stop       chan struct{}
	prebuilt   chan struct{} // closed when the prebuild loop has ended
}

var _ sandbox.Factory = (*Manager)(nil)

// NewManager prepares the host: cgroup parents, the root mount point, the
// watchdog that ends the sandboxes should the daemon die, and a lease of
// host ids. Groups a crashed daemon left under the same parent (when its
// watchdog died with it) are removed.
func NewManager(cfg Config) (_ *Manager, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, hostNS: -1, exeFD: -1, initFD: -1, root: filepath.Join(cfg.StateDir, "root")}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	// Sandbox inits are root only in their user namespace: they need search
	// permission on this directory (the daemon hands it over open) to reach
	// the mount point inside it.
	if err := os.MkdirAll(filepath.Join(m.root, pid1.RootMountName), 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(m.root, 0o711); err != nil {
		return nil, err
	}
	m.exeFD, m.exePath = sealedExe("/proc/self/exe")
	m.initPath = m.exePath
	switch bin := embeddedInit(); {
	case cfg.InitPath != "":
		m.initFD, m.initPath = sealedExe(cfg.InitPath)
	case bin != nil:
		// A host that allows no executable memfd (vm.memfd_noexec = 2)
		// keeps the daemon re-executed as init.
		var fd int
		var path string
		if fd, path, m.reexec = sealedInit(bin); m.reexec == nil {
			m.initFD, m.initPath = fd, path
		}
	default:
		m.reexec = errors.New("no icebox-init is embedded: build icebox after go generate ./... (README.md)")
	}
	if m.seccomp, err = seccompProgram(); err != nil {
		return nil, err
	}
	if m.spawner, err = startSpawner(m.initPath); err != nil {
		return nil, err
	}
	if m.cg, err = detectCgroups(cfg.CgroupMount, cfg.CgroupParent); err != nil {
		return nil, err
	}
	pids, err := parentPidsMax(cfg.AccountConcurrency, cfg.Prebuilt)
	if err != nil {
		return nil, err
	}
	if err := m.cg.limitPids(pids); err != nil {
		return nil, err
	}
	if err := m.startWatchdog(); err != nil {
		return nil, err
	}
	// Groups under the parent now are a predecessor's whose watchdog died
	// with it: the data dir lock keeps a live one out.
	_ = sweep(m.cgroupRoots(), cfg.CgroupParent)
	// And those of other data dirs whose daemon and watchdog are both
	// gone (orphans.go).
	if base, self := filepath.Split(cfg.CgroupParent); cfg.Lock != nil && cfg.OrphanRegistry != "-" && parentID.MatchString(self) {
		if err := registerParent(cfg.OrphanRegistry, self, cfg.Lock.dir); err == nil {
			_ = sweepOrphans(cfg.OrphanRegistry, m.cgroupRoots(), filepath.Clean(base), self)
		}
	}
	if err := m.leaseIDs(); err != nil {
		return nil, err
	}
	if cfg.Egress.Enabled {
		if m.egress, err = setupEgress(cfg.Egress, egressNamesFor(cfg.CgroupParent)); err != nil {
			return nil, err
		}
	}
	if err := m.cg.warmFreezer(); err != nil {
		return nil, err
	}
	if m.hostNS, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		return nil, fmt.Errorf("open host netns: %w", err)
	}
	m.system, m.links = hostSystem(m.egress != nil)
	m.stop, m.prebuilt = make(chan struct{}), make(chan struct{})
	if cfg.Prebuilt > 0 {
		m.ready = make(chan *linuxSandbox, cfg.Prebuilt-1)
		go m.prebuild()
	} else {
		close(m.prebuilt)
	}
	return m, nil
}

// InitFallback says why sandboxes run this binary re-executed as their
// init rather than an init binary of their own (icebox-init); nil when they
// run one.
func (m *Manager) InitFallback() error { return m.reexec }

// CgroupVersion reports which cgroup hierarchy the manager drives.
func (m *Manager) CgroupVersion() int { return m.cg.version() }

// Close releases the manager's own resources and removes its cgroup parents
// (and their ancestors up to the mount, when empty). Sandboxes must be
// destroyed first.
func (m *Manager) Close() {
	if m.stop != nil {
		close(m.stop)
		<-m.prebuilt
		m.stop = nil
		for len(m.ready) > 0 {
			(<-m.ready).Destroy()
		}
	}
	if m.spawner != nil {
		m.spawner.stop()
		m.spawner = nil
	}
	if m.hostNS >= 0 {
		unix.Close(m.hostNS)
		m.hostNS = -1
	}
	for _, fd := range []*int{&m.exeFD, &m.initFD} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	if m.egress != nil {
		m.egress.close()
		m.egress = nil
	}
	if m.cg != nil {
		m.cg.coolFreezer()
		removeParents(m.cgroupRoots(), m.cfg.CgroupParent)
	}
	// The watchdog finds nothing left to kill; it exits, and lets go of the
	// data dir lock and the id leases.
	if m.watchdog != nil {
		m.watchdog.stop()
		m.watchdog = nil
	}
	m.leases.close()
}

// cgroupRoots lists the hierarchies the sandboxes' groups are in.
func (m *Manager) cgroupRoots() []string {
	var roots []string
	switch m.cg.(type) {
	case *v1Driver:
		for _, c := range v1Controllers {
			roots = append(roots, filepath.Join(m.cfg.CgroupMount, c))
		}
	case *v2Driver:
		roots = append(roots, m.cfg.CgroupMount)
	}
	return roots
}

// startWatchdog starts the process that ends the sandboxes should the
// daemon die (see watchdog.go), handing it the data dir lock.
func (m *Manager) startWatchdog() (err error) {
	var hold []*os.File
	if m.cfg.Lock != nil {
		hold = append(hold, m.cfg.Lock.f)
	}
	spec := watchdogSpec{Roots: m.cgroupRoots(), Parent: m.cfg.CgroupParent}
	if m.cfg.Egress.Enabled {
		names := egressNamesFor(m.cfg.CgroupParent)
		spec.Egress = &names
	}
	if m.watchdog, err = startWatchdog(m.exePath, spec, hold...); err != nil {
		return err
	}
	if m.cfg.Lock != nil {
		return m.cfg.Lock.setWatchdog(m.watchdog.pid())
	}
	return nil
}

// leaseIDs takes the first lease of host ids; more follow as the live
// sandboxes outgrow it. Each goes to the watchdog too.
func (m *Manager) leaseIDs() error {
	m.leases = idLeases{dir: idLeaseDir, hold: m.watchdog.hold}
	if m.cfg.Lock != nil {
		m.leases.key = m.cfg.Lock.ID()
	}
	first, blocks, err := m.leases.take()
	if err != nil {
		return err
	}
	m.ids = &idRanges{lease: m.leases.take, next: first, left: blocks}
	return nil
}

// hostSystem lists what of the host's system directories a sandbox sees: the
// runtimes need /usr and the libraries, a few /etc files and device nodes.
// Never /root, /home, the data dir or other functions' code. /etc/hosts is
// always the sandbox's own (etcHosts); with egress /etc/resolv.conf is too
// (see egressNet.etcFiles).
func hostSystem(egress bool) ([]pid1.Bind, [][2]string) {
	var binds []pid1.Bind
	var links [][2]string
	for _, d := range []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			if t, err := os.Readlink(d); err == nil {
				links = append(links, [2]string{t, d})
			}
		case fi.IsDir():
			binds = append(binds, pid1.Bind{Src: d, Dst: d, Dir: true})
		}
	}
	for _, f := range []string{
		"/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/ld.so.cache", "/etc/ld.so.conf",
		"/etc/ld.so.conf.d", "/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/alternatives",
		"/etc/java-17-openjdk", "/etc/java-21-openjdk", "/etc/mime.types", "/etc/protocols", "/etc/services",
	} {
		if f == "/etc/hosts" || egress && f == "/etc/resolv.conf" {
			continue
		}
		if fi, err := os.Stat(f); err == nil {
			binds = append(binds, pid1.Bind{Src: f, Dst: f, Dir: fi.IsDir()})
		}
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom"} {
		binds = append(binds, pid1.Bind{Src: "/dev/" + d, Dst: "/dev/" + d, RW: true})
	}
	links = append(links,
		[2]string{"/proc/self/fd", "/dev/fd"}, [2]string{"/proc/self/fd/0", "/dev/stdin"},
		[2]string{"/proc/self/fd/1", "/dev/stdout"}, [2]string{"/proc/self/fd/2", "/dev/stderr"})
	return binds, links
}

// etcHosts is every sandbox's /etc/hosts: sandbox.localdomain is its own
// loopback, where Lambda's extensions listen for Telemetry API deliveries.
const etcHosts = "127.0.0.1\tlocalhost sandbox.localdomain\n::1\tlocalhost ip6-localhost ip6-loopback\n"

// Create builds a sandbox for spec up to the point where its runtime would
// start. It takes a pre-built sandbox when one is ready, so a cold start
// only applies limits, mounts the code and pivots.
func (m *Manager) Create(ctx context.Context, spec sandbox.Spec) (_ sandbox.Sandbox, err error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.lastCreate.Store(time.Now().UnixNano())
	var s *linuxSandbox
	select {
	case s = <-m.ready:
	default:
		if s, err = m.build(ctx); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			s.Destroy()
		}
	}()
	if err := s.cg.setLimits(limitsFor(spec.MemoryMB)); err != nil {
		return nil, err
	}
	if len(spec.Networks) > 0 && s.link != nil {
		if err := m.egress.join(s.link.addr, spec.Networks); err != nil {
			return nil, err
		}
	}
	run := pid1.RunSpec{
		TmpMB: spec.TmpMB,
		UID:   m.cfg.UID,
		GID:   m.cfg.GID,
		Args:  spec.Args,
		Env:   spec.Env,
		Cwd:   "/var/task",
		Exts:  spec.Extensions,
	}
	s.extExits = make(chan sandbox.ExtensionExit, len(spec.Extensions))
	for _, x := range spec.Extensions {
		s.extNames = append(s.extNames, path.Base(x))
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, d := range [][2]string{{spec.CodeDir, "/var/task"}, {spec.RuntimeDir, "/var/runtime"}, {spec.OptDir, "/opt"}} {
		if d[0] == "" {
			continue
		}
		fd, err := openInSandbox(s.proc.Pid, pid1.OldRootName, d[0])
		if err != nil {
			return nil, err
		}
		fds = append(fds, fd)
		run.Binds = append(run.Binds, pid1.Bind{FD: len(fds), Dst: d[1], Dir: true})
	}
	if err := s.send(run, fds...); err != nil {
		return nil, err
	}
	if err := s.expectOK(ctx, "mount function code"); err != nil {
		return nil, err
	}
	return s, nil
}

// prebuild keeps cfg.Prebuilt sandboxes ready until the manager closes.
func (m *Manager) prebuild() {
	defer close(m.prebuilt)
	// A build in progress ends when the manager closes: Close waits for
	// this loop, and an init that stops answering (seen when a terminal's
	// Ctrl-C reached the sandbox being built) must not hold it forever.
	// The watcher reads its own copy of the stop channel: Close sets
	// m.stop to nil once this loop has ended, and the watcher may not yet
	// have looked by then.
	stop := m.stop
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		s, err := m.build(ctx)
		if err != nil {
			// The host may be out of something; try again later rather than spin.
			select {
			case <-m.stop:
				return
			case <-time.After(time.Second):
				continue
			}
		}
		select {
		case m.ready <- s:
		case <-m.stop:
			s.Destroy()
			return
		}
		if !m.quiet() {
			return
		}
	}
}

// refillQuiet is how long the prebuild loop waits after a Create before it
// builds the next sandbox. A build is CPU-bound (clone, exec, mounts) and
// takes the mount lock many times: run next to the cold start that just
// took a pre-built sandbox, it doubled that cold start's time on two
// cores. A cold start is done in a few milliseconds; the replacement is
// built once the host is quiet again.
const refillQuiet = 40 * time.Millisecond

// quiet waits until refillQuiet has passed since the last Create, and
// reports false if the manager closed meanwhile.
func (m *Manager) quiet() bool {
	for {
		wait := refillQuiet - time.Since(time.Unix(0, m.lastCreate.Load()))
		if wait <= 0 {
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-m.stop:
			t.Stop()
			return false
		}
	}
}

// build makes a sandbox with everything functions share: namespaces, an
// unlimited cgroup, the shared part of the root and the Runtime API listener.
func (m *Manager) build(ctx context.Context) (_ *linuxSandbox, err error) {
	id := randomID()
	s := &linuxSandbox{id: id, hostNS: m.hostNS, done: make(chan struct{}), initGone: make(chan struct{}), statusDone: make(chan struct{}), runtimeReply: make(chan string, 1)}
	defer func() {
		if err != nil {
			s.Destroy()
		}
	}()
	firstID, err := m.ids.get()
	if err != nil {
		return nil, err
	}
	s.releaseIDs = func() { m.ids.put(firstID) }
	if s.cg, err = m.cg.create(id); err != nil {
		return nil, err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	// Non-blocking, so that reads go through Go's poller and honour the
	// deadlines expectOK sets (on a blocking descriptor they are ignored).
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	s.ctl = os.NewFile(uintptr(fds[0]), "ctl")
	s.ctlR = bufio.NewReader(s.ctl)
	child := os.NewFile(uintptr(fds[1]), "ctl-child")
	defer child.Close()
	pw, err := s.out.open()
	if err != nil {
		return nil, err
	}
	defer pw.Close()
	tw, err := s.telemetry.open()
	if err != nil {
		return nil, err
	}
	defer tw.Close()
	xw, err := s.extOut.open()
	if err != nil {
		return nil, err
	}
	defer xw.Close()
	// The runtime may reopen its end through /proc/self/fd (the JVM has no
	// other way to write to an inherited descriptor): the pipe's inode,
	// root's, must let the sandbox's user write. Only processes holding
	// the descriptor, or able to read this one's /proc, can name it.
	if err := tw.Chmod(0o602); err != nil {
		return nil, err
	}

	req := pid1.SpawnRequest{Path: m.spawnPath, Args: []string{"icebox", InitArg}, Env: initEnv, FirstID: int(firstID), IDs: idRangeSize}
	if s.proc, err = m.spawner.spawn(req, pw, child, tw, xw); err != nil { // pid1.CtlFD, pid1.TelemetryFD, pid1.ExtOutFD
		return nil, err
	}
	// Init has its copies now. The daemon's must go at once, not when
	// build returns: while it held the socket's other end, an init that
	// died before answering left expectOK waiting forever for a reply or
	// an EOF that could not come.
	for _, f := range []*os.File{child, pw, tw, xw} {
		f.Close()
	}
	go s.wait()

	base := pid1.BaseSpec{
		Seccomp:  m.seccomp,
		Hostname: "localhost",
		Binds:    m.system,
		Links:    m.links,
		Files: [][2]string{
			{"/etc/passwd", "root:x:0:0:root:/root:/sbin/nologin\nsbx_user1051:x:993:990::/home/sbx_user1051:/sbin/nologin\n"},
			{"/etc/group", "root:x:0:\nsbx_user1051:x:990:\n"},
			{"/etc/hosts", etcHosts},
		},
	}
	if m.egress != nil {
		base.Files = append(base.Files, m.egress.etcFiles()...)
	}
	rootFD, err := openInSandbox(s.proc.Pid, "/", m.root)
	if err != nil {
		return nil, err
	}
	err = s.send(base, rootFD)
	unix.Close(rootFD)
	if err != nil {
		return nil, err
	}
	// While init builds the root, join the cgroup and open the Runtime API
	// listener in the sandbox's network namespace.
	if err := s.cg.addProc(s.proc.Pid); err != nil {
		return nil, err
	}
	var inside func() error
	if m.egress != nil {
		if err := m.attachEgress(s); err != nil {
			return nil, err
		}
		inside = func() error { return m.egress.configureInside(s.link) }
	}
	ls, err := listenInNetns(m.hostNS, s.proc.Pid, inside, RuntimeAPIAddr, sandbox.APIAddr)
	if err != nil {
		return nil, err
	}
	s.listener, s.apiListener = ls[0], ls[1]
	if err := s.expectOK(ctx, "build sandbox root"); err != nil {
		return nil, err
	}
	return s, nil
}

// attachEgress gives s its veth pair and address (see egress.go).
func (m *Manager) attachEgress(s *linuxSandbox) error {
	nsFD, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", s.proc.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open sandbox netns: %w", err)
	}
	defer unix.Close(nsFD)
	if s.link, err = m.egress.attach(nsFD); err != nil {
		return err
	}
	s.egress = m.egress
	return nil
}

// initEnv is the whole environment of a sandbox's init (the runtime gets
// only its spec's). Init is one thread doing one thing at a time: a single P
// spares it the per-P caches, GC workers and threads that a second CPU
// brings for nothing, about 0.5 MiB of every environment's memory.
var initEnv = []string{"GOMAXPROCS=1"}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type linuxSandbox struct {
	id          string
	cg          cgroup
	proc        *os.Process // init
	ctl         *os.File
	ctlR        *bufio.Reader
	out         outputPipe
	telemetry   outputPipe
	extOut      outputPipe // the extensions' stdout and stderr
	hostNS      int        // the manager's, to come back to after a Dial
	listener    net.Listener
	apiListener net.Listener

	releaseIDs func() // returns the host id range; nil once returned
	// link is the sandbox's veth and address under egress, given back to
	// egress on Destroy; nil without egress.
	link   *sandboxLink
	egress *egressNet

	// extNames are the extensions' file names, by init's index; their
	// ends are sent on extExits (room for each).
	extNames []string
	extExits chan sandbox.ExtensionExit

	// resident caches the VmHWM part of Max Memory Used (memoryPeak).
	resident residentCache

	// done is closed when the runtime has exited (init said so, or init
	// itself is gone) and its status is known; initGone when init has
	// exited. Extensions may outlive the runtime, and init with them.
	done       chan struct{}
	doneOnce   sync.Once
	initGone   chan struct{}
	statusDone chan struct{} // closed when the status reader is finished (or never started)
	destroy    sync.Once

	// runtimeReply carries init's answer to "runtime": "" when started,
	// else why not (room for one).
	runtimeReply chan string

	mu             sync.Mutex
	started        bool // the extensions (Start or StartExtensions)
	runtimeStarted bool
	status         sandbox.ExitStatus
}

var _ sandbox.Sandbox = (*linuxSandbox)(nil)

func (s *linuxSandbox) Listener() net.Listener     { return s.listener }
func (s *linuxSandbox) APIListener() net.Listener  { return s.apiListener }
func (s *linuxSandbox) Output() io.Reader          { return &s.out }
func (s *linuxSandbox) Telemetry() io.Reader       { return &s.telemetry }
func (s *linuxSandbox) ExtensionOutput() io.Reader { return &s.extOut }
func (s *linuxSandbox) Done() <-chan struct{}      { return s.done }
func (s *linuxSandbox) Dial(ctx context.Context, port int) (net.Conn, error) {
	return dialInNetns(ctx, s.hostNS, s.proc.Pid, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}

func (s *linuxSandbox) ExtensionExits() <-chan sandbox.ExtensionExit {
	return s.extExits
}

func (s *linuxSandbox) OutputWritten() int64          { return s.out.Written() }
func (s *linuxSandbox) TelemetryWritten() int64       { return s.telemetry.Written() }
func (s *linuxSandbox) ExtensionOutputWritten() int64 { return s.extOut.Written() }

// send writes one JSON line to init, with fds attached to its first byte.
func (s *linuxSandbox) send(v any, fds ...int) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := sendWithFDs(s.ctl, append(b, '\n'), fds...); err != nil {
		return fmt.Errorf("send spec to sandbox init: %w", err)
	}
	return nil
}

// initRefusal is what init answered instead of "ok".
type initRefusal string

func (e initRefusal) Error() string { return string(e) }

// expectOK reads one reply line from init.
func (s *linuxSandbox) expectOK(ctx context.Context, what string) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = s.ctl.SetReadDeadline(dl)
		defer s.ctl.SetReadDeadline(time.Time{})
	}
	// Cancelling ctx ends the read at once (a deadline in the past), but
	// only while expectOK reads: stopping the AfterFunc does not stop one
	// already under way, and a cancellation just as the reply came would
	// otherwise end the status reader's reads after it.
	var mu sync.Mutex
	reading := true
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if reading {
			_ = s.ctl.SetReadDeadline(time.Unix(1, 0))
		}
	})
	defer func() {
		if !stop() {
			mu.Lock()
			reading = false
			mu.Unlock()
			_ = s.ctl.SetReadDeadline(time.Time{})
		}
	}()
	line, err := s.ctlR.ReadString('\n')
	if err != nil {
		return fmt.Errorf("%s: sandbox init: %w", what, err)
	}
	line = strings.TrimSuffix(line, "\n")
	if line == "ok" {
		return nil
	}
	return fmt.Errorf("%s: %w", what, initRefusal(strings.TrimPrefix(line, "error: ")))
}

// StartExtensions starts the extensions, not yet the runtime (Lambda
// starts it once they registered). Start calls it when it was not.
func (s *linuxSandbox) StartExtensions() error { return s.start("go\n") }

// start sends init the line that starts the extensions ("go"), with the
// one that starts the runtime after it when Start needs both at once, and
// reads init's answer to the first.
func (s *linuxSandbox) start(lines string) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("sandbox already started")
	}
	s.started = true
	s.mu.Unlock()
	if _, err := s.ctl.Write([]byte(lines)); err != nil {
		close(s.statusDone)
		return fmt.Errorf("start extensions: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.expectOK(ctx, "start extensions"); err != nil {
		close(s.statusDone)
		return err
	}
	go s.readStatus()
	return nil
}

// Start starts the runtime, and the extensions first unless
// StartExtensions did (then in one write: a cold start pays no extra
// round trip for them).
func (s *linuxSandbox) Start() error {
	s.mu.Lock()
	started, runtime := s.started, s.runtimeStarted
	s.runtimeStarted = true
	s.mu.Unlock()
	if runtime {
		return errors.New("sandbox runtime already started")
	}
	if !started {
		if err := s.start("go\nruntime\n"); err != nil {
			return err
		}
	} else if _, err := s.ctl.Write([]byte("runtime\n")); err != nil {
		return fmt.Errorf("start runtime: %w", err)
	}
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case reply := <-s.runtimeReply:
		return runtimeStartError(reply)
	case <-s.statusDone:
		// Init answers before it exits: an answer is read by now.
		select {
		case reply := <-s.runtimeReply:
			return runtimeStartError(reply)
		default:
		}
		return errors.New("start runtime: sandbox init exited")
	case <-timer.C:
		return errors.New("start runtime: sandbox init did not answer")
	}
}

// runtimeStartError is init's answer to "runtime" as Start returns it.
func runtimeStartError(reply string) error {
	if reply == "" {
		return nil
	}
	// Init could not exec the runtime (a bootstrap that is not
	// executable, say): the function's fault, not icebox's.
	return &sandbox.StartError{Msg: reply}
}

// readStatus passes on init's "ext I CODE SIGNAL" lines, before and after
// its "exit CODE SIGNAL" line for the runtime, until init is gone. If init
// dies without an exit line (it was killed), the runtime is reported
// killed.
func (s *linuxSandbox) readStatus() {
	defer close(s.statusDone)
	reported := make([]bool, len(s.extNames))
	for {
		line, err := s.ctlR.ReadString('\n')
		if err != nil {
			break
		}
		var i, code, sig int
		if _, err := fmt.Sscanf(line, "ext %d %d %d", &i, &code, &sig); err == nil {
			if i >= 0 && i < len(reported) && !reported[i] {
				reported[i] = true
				s.extExits <- sandbox.ExtensionExit{Name: s.extNames[i], Status: sandbox.ExitStatus{Code: code, Signal: syscall.Signal(sig)}}
			}
			continue
		}
		if _, err := fmt.Sscanf(line, "exit %d %d", &code, &sig); err == nil {
			s.runtimeExited(sandbox.ExitStatus{Code: code, Signal: syscall.Signal(sig)})
			continue
		}
		// init's answer to "runtime": "ok", or "error: …" before it exits.
		if line = strings.TrimSuffix(line, "\n"); line == "ok" || strings.HasPrefix(line, "error: ") {
			s.runtimeReply <- strings.TrimPrefix(strings.TrimPrefix(line, "ok"), "error: ")
			continue
		}
		break
	}
	s.runtimeExited(sandbox.ExitStatus{Signal: syscall.SIGKILL})
}

// runtimeExited records the runtime's end, the first one told.
func (s *linuxSandbox) runtimeExited(st sandbox.ExitStatus) {
	s.doneOnce.Do(func() {
		s.mu.Lock()
		s.status = st
		s.mu.Unlock()
		close(s.done)
	})
}

func (s *linuxSandbox) wait() {
	_, _ = s.proc.Wait()
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if started {
		<-s.statusDone
	}
	s.runtimeExited(sandbox.ExitStatus{Signal: syscall.SIGKILL})
	close(s.initGone)
}

func (s *linuxSandbox) Exit() sandbox.ExitStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// SignalRuntime sends the runtime process alone SIGTERM, or SIGKILL (its
// process group too), through init: extensions keep running.
func (s *linuxSandbox) SignalRuntime(sig syscall.Signal) error {
	if s.proc == nil || chanClosed(s.done) {
		return nil
	}
	relay := pid1.SigTermRuntime
	switch sig {
	case syscall.SIGKILL:
		relay = pid1.SigKillRuntime
	case syscall.SIGTERM:
	default:
		return fmt.Errorf("signal %v: only SIGTERM and SIGKILL reach the runtime", sig)
	}
	if err := s.proc.Signal(relay); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

func (s *linuxSandbox) Freeze() error { return s.cg.freeze() }
func (s *linuxSandbox) Thaw() error   { return s.cg.thaw() }

// Kill ends the sandbox's PID 1; the kernel then kills every other process
// of its pid namespace, double-forked or not. A frozen group is thawed so the
// signal is delivered.
func (s *linuxSandbox) Kill() error {
	if s.proc == nil {
		return nil
	}
	err := s.proc.Signal(syscall.SIGKILL)
	if s.cg != nil {
		_ = s.cg.thaw()
	}
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

func (s *linuxSandbox) Stats() sandbox.Stats {
	mem, oom := s.cg.stats()
	st := sandbox.Stats{MaxMemoryBytes: s.memoryPeak(mem), OOMKills: oom}
	if s.link != nil {
		st.NetReceivedBytes, st.NetSentBytes = s.link.traffic()
	}
	return st
}

func (s *linuxSandbox) Destroy() error {
	var err error
	s.destroy.Do(func() {
		if s.proc != nil {
			_ = s.Kill()
			select {
			case <-s.initGone:
			case <-time.After(10 * time.Second):
				err = fmt.Errorf("sandbox %s: init did not exit", s.id)
			}
		}
		if s.listener != nil {
			s.listener.Close()
		}
		if s.apiListener != nil {
			s.apiListener.Close()
		}
		if s.ctl != nil {
			s.ctl.Close()
		}
		// The readers may still be draining; closing here unblocks them.
		s.out.close()
		s.telemetry.close()
		s.extOut.close()
		if s.cg != nil {
			err = errors.Join(err, s.cg.remove())
		}
		if s.link != nil {
			s.egress.detach(s.link)
			s.link = nil
		}
		// A range goes back only when init is known to be gone: the kernel
		// has killed its whole pid namespace with it.
		if s.releaseIDs != nil && (s.proc == nil || chanClosed(s.initGone)) {
			s.releaseIDs()
			s.releaseIDs = nil
		}
	})
	return err
}

func chanClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// HostMemoryMB is the host's total RAM in MB.
func HostMemoryMB() (int, error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, err
	}
	return int(uint64(si.Totalram) * uint64(si.Unit) >> 20), nil
}
