package main

// The harness of the binary-level tests (main_test.go): building icebox and
// the test functions, running the binary as a subprocess, and taking the
// footprint a daemon leaves on the host (processes, cgroups, mounts).

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"icebox/internal/testkit"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"icebox/internal/auth/authtest"
	sblinux "icebox/internal/sandbox/linux"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// build holds what buildAll made: the icebox binary and the echo function
// (test/e2e/testdata/echo, aws-lambda-go) as a bootstrap, bare and zipped.
var build struct {
	once    sync.Once
	err     error
	dir     string
	icebox  string
	codeDir string // holds only "bootstrap"
	zipPath string
	zip     []byte
	slowZip []byte // test/e2e/testdata/fn, whose {"action":"sleep","ms":N} sleeps
}

func requireRoot(t *testing.T) {
	t.Helper()
	testkit.NeedRoot(t)
}

// binaries builds icebox and the echo function once per test binary.
func binaries(t *testing.T) {
	t.Helper()
	build.once.Do(func() {
		began := time.Now()
		build.err = buildAll()
		t.Logf("built icebox and the test functions in %v", time.Since(began).Round(time.Millisecond))
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
}

func buildAll() error {
	dir, err := os.MkdirTemp("", "icebox-cmd-test-")
	if err != nil {
		return err
	}
	build.dir = dir
	build.icebox = filepath.Join(dir, "icebox")
	build.codeDir = filepath.Join(dir, "code")
	echo := filepath.Join(build.codeDir, "bootstrap")
	slow := filepath.Join(dir, "fn", "bootstrap")
	// Functions are static, as aws-lambda-go functions for provided.al2023 are.
	static := append(os.Environ(), "CGO_ENABLED=0")
	targets := []struct {
		out, pkg string
		env      []string
	}{
		{build.icebox, ".", nil},
		{echo, "../../test/e2e/testdata/echo", static},
		{slow, "../../test/e2e/testdata/fn", static},
	}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Go(func() {
			cmd := exec.Command("go", "build", "-o", tg.out, tg.pkg)
			cmd.Env = tg.env
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go build %s: %v\n%s", tg.pkg, err, out)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if build.zip, err = zipBootstrap(echo); err != nil {
		return err
	}
	build.zipPath = filepath.Join(dir, "echo.zip")
	if err := os.WriteFile(build.zipPath, build.zip, 0o644); err != nil {
		return err
	}
	build.slowZip, err = zipBootstrap(slow)
	return err
}

// zipBootstrap makes a deployment package holding the program at path as
// an executable "bootstrap".
func zipBootstrap(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	// Stored, not deflated: under -race compressing ~10 MB takes seconds,
	// and the size is well within CreateFunction's limit.
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Store}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ---- running the binary ----

// syncBuffer collects a subprocess's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a running icebox subprocess.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	done   chan struct{} // closed when the process has been waited for
	err    error         // Wait's result, once done is closed
}

// how says how to start a subprocess.
type how struct {
	dir      string // working directory; the test's own if empty
	ownGroup bool   // in a process group of its own, as a shell runs a foreground job
	// ownRoot: no credentials in the environment, so a server generates
	// its root credentials and a client must find them in the data dir.
	ownRoot bool
}

// start runs the icebox binary with args. If the test ends with it still
// running, it is stopped with SIGTERM (so it can clean up) and killed if
// that does not work; if the test binary dies, the kernel sends it SIGTERM.
func start(t *testing.T, h how, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(build.icebox, args...)
	p.cmd.Dir = h.dir
	// Servers take these root credentials; clients sign with them.
	p.cmd.Env = append(append(os.Environ(), authtest.ServerEnv()...), authtest.Env()...)
	if h.ownRoot {
		p.cmd.Env = envWithoutAWS()
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: h.ownGroup, Pdeathsig: syscall.SIGTERM}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	// Nothing icebox starts may hold its output open; bound the wait if it does.
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.exited() {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig and waits up to within for the process to exit; it
// fails the test unless the exit status is 0.
func (p *proc) signal(sig os.Signal, within time.Duration) {
	p.t.Helper()
	closeIdleConns()
	began := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
	p.waitExit(sig, began, within)
}

// signalGroup is signal for the process's whole group, as Ctrl-C in a
// terminal signals the foreground job.
func (p *proc) signalGroup(sig syscall.Signal, within time.Duration) {
	p.t.Helper()
	closeIdleConns()
	began := time.Now()
	if err := syscall.Kill(-p.pid(), sig); err != nil {
		p.t.Fatalf("signal group %d with %v: %v", p.pid(), sig, err)
	}
	p.waitExit(sig, began, within)
}

func (p *proc) waitExit(sig os.Signal, began time.Time, within time.Duration) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		p.t.Fatalf("icebox %s still running %v after %v\nstderr:\n%s", p.cmd.Args[1], within, sig, p.stderr.String())
	}
	if p.err != nil {
		p.t.Fatalf("icebox %s after %v: %v (want exit 0)\nstderr:\n%s", p.cmd.Args[1], sig, p.err, p.stderr.String())
	}
	took := time.Since(began)
	p.t.Logf("icebox %s exited 0 %v after %v", p.cmd.Args[1], took.Round(time.Millisecond), sig)
	if took > 3*time.Second {
		p.t.Logf("slow shutdown; stderr:\n%s", p.stderr.String())
	}
}

var servingRE = regexp.MustCompile(`msg="icebox serving" listen=(\S+) data_dir=("(?:[^"\\]|\\.)*"|\S+)`)

// server is a running `icebox serve` or `icebox run`.
type server struct {
	*proc
	url     string
	dataDir string // as the daemon logged it
}

// startServer runs `icebox ARGS... --listen 127.0.0.1:0` and waits until the
// API answers. The kernel picks the port, which the daemon logs; that cannot
// race with other tests the way probing for a free port can.
func startServer(t *testing.T, h how, args ...string) *server {
	t.Helper()
	p := start(t, h, append(args, "--listen", "127.0.0.1:0")...)
	s := &server{proc: p}
	testkit.WaitFor(t, 20*time.Second, "the daemon to log its address", func() bool {
		if p.exited() {
			t.Fatalf("icebox %s exited early: %v\nstderr:\n%s", args[0], p.err, p.stderr.String())
		}
		m := servingRE.FindStringSubmatch(p.stderr.String())
		if m == nil {
			return false
		}
		s.url, s.dataDir = "http://"+m[1], m[2]
		if uq, err := strconv.Unquote(m[2]); err == nil {
			s.dataDir = uq
		}
		return true
	})
	testkit.WaitFor(t, 10*time.Second, "GET /2015-03-31/functions to answer 200", func() bool {
		resp, err := httpClient.Get(s.url + "/2015-03-31/functions")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var list struct{ Functions []json.RawMessage }
		if h.ownRoot { // our signature is not the server's: any answer will do
			return resp.StatusCode == http.StatusForbidden
		}
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&list) == nil
	})
	return s
}

// create makes an echo function through the plain REST API.
func (s *server) create(t *testing.T, name string) { s.createFrom(t, name, build.zip) }

func (s *server) createFrom(t *testing.T, name string, zipFile []byte) {
	t.Helper()
	s.createWithEnv(t, name, zipFile, nil)
}

// createWithEnv makes a function from zipFile with env as its environment
// variables.
func (s *server) createWithEnv(t *testing.T, name string, zipFile []byte, env map[string]string) {
	t.Helper()
	type environment struct{ Variables map[string]string }
	req := struct {
		FunctionName, Runtime, Handler, Role string
		Timeout                              int
		Code                                 struct{ ZipFile []byte }
		Environment                          *environment `json:",omitempty"`
	}{FunctionName: name, Runtime: "provided.al2023", Handler: "bootstrap", Role: "arn:aws:iam::000000000000:role/x", Timeout: 30}
	req.Code.ZipFile = zipFile
	if env != nil {
		req.Environment = &environment{Variables: env}
	}
	body, _ := json.Marshal(req)
	code, out, _ := post(t, s.url+"/2015-03-31/functions", "application/json", string(body))
	if code != http.StatusCreated {
		t.Fatalf("create %s: %d %s", name, code, out)
	}
}

// invoke calls name with event, expects it echoed and returns the request id.
func (s *server) invoke(t *testing.T, name, event string) string {
	t.Helper()
	code, out, h := post(t, s.url+"/2015-03-31/functions/"+name+"/invocations", "application/json", event)
	if code != http.StatusOK || string(out) != event || h.Get("X-Amz-Function-Error") != "" {
		t.Fatalf("invoke %s(%s): %d %q (function error %q), want 200 %q", name, event, code, out, h.Get("X-Amz-Function-Error"), event)
	}
	return h.Get("x-amzn-RequestId")
}

func (s *server) functionNames(t *testing.T) []string {
	t.Helper()
	resp, err := httpClient.Get(s.url + "/2015-03-31/functions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Functions []struct{ FunctionName string }
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list functions: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range list.Functions {
		names = append(names, f.FunctionName)
	}
	return names
}

// envWithoutAWS is the test's environment without AWS or icebox credentials.
func envWithoutAWS() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "ICEBOX_ROOT_") {
			env = append(env, kv)
		}
	}
	return env
}

// httpClient bounds every request, so a daemon that accepts and never
// answers fails the test instead of hanging it.
var httpClient = &http.Client{Timeout: 20 * time.Second, Transport: authtest.Transport(nil)}

// closeIdleConns drops the client's pooled connections before a daemon is
// told to stop. Under concurrency Go's Transport dials connections it then
// never uses; the daemon's http.Server.Shutdown counts such a connection
// (no request yet) as active for 5 s, which would add up to 5 s to the
// shutdown being timed.
func closeIdleConns() { httpClient.CloseIdleConnections() }

func post(t *testing.T, url, contentType, body string) (int, []byte, http.Header) {
	t.Helper()
	code, out, h, err := tryPost(url, contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	return code, out, h
}

// tryPost is post for goroutines other than the test's.
func tryPost(url, contentType, body string) (int, []byte, http.Header, error) {
	resp, err := httpClient.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("POST %s: read response: %w", url, err)
	}
	return resp.StatusCode, out, resp.Header, nil
}

func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		return -1
	}
}

// ---- what a daemon leaves on the host ----

// procInfo identifies a process; pid and start time together survive pid reuse.
type procInfo struct {
	pid, ppid int
	start     uint64 // clock ticks after boot
	state     byte
	exe       string
	cmdline   string
}

func readProc(pid int) (procInfo, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procInfo{}, false
	}
	// The command name is parenthesised and may hold spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procInfo{}, false
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state) of proc(5)
	if len(f) < 20 {
		return procInfo{}, false
	}
	pi := procInfo{pid: pid, state: f[0][0]}
	pi.ppid, _ = strconv.Atoi(f[1])
	pi.start, _ = strconv.ParseUint(f[19], 10, 64)
	pi.exe, _ = os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	pi.cmdline = strings.TrimSpace(strings.ReplaceAll(string(cl), "\x00", " "))
	return pi, true
}

// stillRunning reports whether the process pi describes exists and has not
// died: a zombie only waits for whoever inherited it to reap it.
func stillRunning(pi procInfo) (procInfo, bool) {
	now, ok := readProc(pi.pid)
	return now, ok && now.start == pi.start && now.state != 'Z'
}

func allProcs() []procInfo {
	ents, _ := os.ReadDir("/proc")
	var ps []procInfo
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			if pi, ok := readProc(pid); ok {
				ps = append(ps, pi)
			}
		}
	}
	return ps
}

// descendants lists every process whose parent chain leads to root.
func descendants(root int) []procInfo {
	children := map[int][]procInfo{}
	for _, pi := range allProcs() {
		children[pi.ppid] = append(children[pi.ppid], pi)
	}
	var out []procInfo
	queue := []int{root}
	for len(queue) > 0 {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
		queue = queue[1:]
	}
	return out
}

// cgroupHash is the level the daemon names its sandbox cgroups under:
// icebox/ + the data dir's ID, which the daemon keeps in the data dir's lock
// file (so it is the same however the path is spelled). A data dir that
// never had a daemon has none yet.
func cgroupHash(dataDir string) string {
	b, _ := os.ReadFile(filepath.Join(dataDir, "icebox.lock"))
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "id" {
			return f[1]
		}
	}
	return "no-id-yet"
}

// cgroupDirs lists the daemon's cgroup directories in every hierarchy (v1
// controllers or the v2 root), its icebox/HASH level included.
func cgroupDirs(hash string) []string {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/icebox/" + hash)
	if _, err := os.Stat("/sys/fs/cgroup/icebox/" + hash); err == nil {
		roots = append(roots, "/sys/fs/cgroup/icebox/"+hash)
	}
	var dirs []string
	for _, r := range roots {
		_ = filepath.WalkDir(r, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	return dirs
}

// mountsUnder lists the host's mount points at or below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// footprint is what a running daemon put on the host.
type footprint struct {
	dataDir string
	hash    string
	procs   []procInfo
	cgroups []string
	bridge  string // the egress bridge, if the daemon has one
}

// record takes the running daemon's footprint and checks it is what a
// daemon with sandboxes should have, so the checks after shutdown mean
// something.
func record(t *testing.T, s *server) footprint {
	t.Helper()
	fp := footprint{dataDir: s.dataDir, hash: cgroupHash(s.dataDir), procs: descendants(s.pid())}
	inits := 0
	for _, pi := range fp.procs {
		if pi.cmdline == "icebox init" && runsEmbeddedInit(pi.pid) {
			inits++
		}
	}
	if inits == 0 {
		t.Fatalf("no `icebox init` child of the daemon (pid %d) running the icebox-init it embeds; descendants: %+v", s.pid(), fp.procs)
	}
	// Sandboxes are pre-built, so groups exist below the hash level even
	// before any call.
	fp.cgroups = cgroupDirs(fp.hash)
	sandboxGroups := 0
	for _, d := range fp.cgroups {
		if filepath.Base(filepath.Dir(d)) == fp.hash {
			sandboxGroups++
		}
	}
	if sandboxGroups == 0 {
		t.Fatalf("no sandbox cgroup under icebox/%s for data dir %s; found %v", fp.hash, fp.dataDir, fp.cgroups)
	}
	// Sandbox roots are mounted in the sandboxes' own mount namespaces only.
	if m := mountsUnder(t, fp.dataDir); len(m) > 0 {
		t.Errorf("while serving, the host sees mounts under the data dir: %v", m)
	}
	if b := sblinux.EgressBridge("icebox/" + fp.hash); linkExists(b) {
		fp.bridge = b
	}
	t.Logf("daemon pid %d: %d descendants (%d sandbox inits), %d cgroup dirs under icebox/%s, egress bridge %q", s.pid(), len(fp.procs), inits, len(fp.cgroups), fp.hash, fp.bridge)
	return fp
}

// runsBinary reports whether process pid runs the test's icebox binary. A
// sandbox's init runs it from a read-only mount inside its own mount
// namespace, where /proc/PID/exe names no host path; the file is the same.
func runsBinary(pid int) bool {
	exe, err1 := os.Stat(fmt.Sprintf("/proc/%d/exe", pid))
	bin, err2 := os.Stat(build.icebox)
	return err1 == nil && err2 == nil && os.SameFile(exe, bin)
}

// runsEmbeddedInit reports whether process pid runs the icebox-init the
// daemon embeds, from its sealed memfd.
func runsEmbeddedInit(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.HasPrefix(exe, "/memfd:icebox-init")
}

// watchdogOf finds the watchdog among a daemon's descendants.
func watchdogOf(fp footprint) (procInfo, bool) {
	for _, pi := range fp.procs {
		if pi.cmdline == "icebox init watchdog" && runsBinary(pi.pid) {
			return pi, true
		}
	}
	return procInfo{}, false
}

// frozenSandboxes counts the daemon's frozen sandbox groups that hold
// processes (the empty v1 freezer pin does not count).
func frozenSandboxes(hash string) int {
	n := 0
	for _, d := range cgroupDirs(hash) {
		state, err := os.ReadFile(filepath.Join(d, "freezer.state"))
		if err != nil {
			state, err = os.ReadFile(filepath.Join(d, "cgroup.freeze"))
		}
		frozen := err == nil && (strings.TrimSpace(string(state)) == "FROZEN" || strings.TrimSpace(string(state)) == "1")
		procs, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if frozen && len(strings.Fields(string(procs))) > 0 {
			n++
		}
	}
	return n
}

// waitGone waits, up to within, until no process of fp runs and none of
// its cgroups remains, and fails the test with what is left if that does
// not happen.
func waitGone(t *testing.T, fp footprint, within time.Duration) {
	t.Helper()
	began := time.Now()
	var left []string
	defer func() {
		if len(left) > 0 {
			t.Logf("%d of the daemon's things remain:\n%s", len(left), strings.Join(left, "\n"))
		}
	}()
	testkit.WaitFor(t, within, "every process and cgroup of the daemon to be gone after it ended", func() bool {
		left = left[:0]
		for _, pi := range fp.procs {
			if now, ok := stillRunning(pi); ok {
				left = append(left, fmt.Sprintf("process %d (%s, state %c)", pi.pid, pi.cmdline, now.state))
			}
		}
		for _, d := range cgroupDirs(fp.hash) {
			left = append(left, "cgroup "+d)
		}
		return len(left) == 0
	})
	t.Logf("every process and cgroup of the daemon gone %v after it ended", time.Since(began).Round(time.Millisecond))
}

// checkRestartCleanedUp verifies, after a daemon started on the data dir of
// a crashed one, that none of the crashed daemon's processes and none of
// its sandboxes' cgroups remain (their parent, named by the data dir, is
// the new daemon's).
func checkRestartCleanedUp(t *testing.T, crashed footprint) {
	t.Helper()
	for _, pi := range crashed.procs {
		if now, ok := stillRunning(pi); ok {
			t.Errorf("process %d (%s) of the crashed daemon outlived the restart (state %c)", pi.pid, pi.cmdline, now.state)
		}
	}
	for _, d := range crashed.cgroups {
		if filepath.Base(d) != crashed.hash {
			if _, err := os.Stat(d); err == nil {
				t.Errorf("cgroup %s of the crashed daemon outlived the restart", d)
			}
		}
	}
}

// checkGone verifies, after the daemon exited, that nothing of fp remains.
// With allOfBinary, no process running the test's icebox binary may remain
// at all (only valid while no other test runs that binary).
func checkGone(t *testing.T, fp footprint, allOfBinary bool) {
	t.Helper()
	for _, pi := range fp.procs {
		if now, ok := stillRunning(pi); ok {
			t.Errorf("process %d (%s) outlived the daemon (state %c)", pi.pid, pi.cmdline, now.state)
		}
	}
	if allOfBinary {
		for _, pi := range allProcs() {
			if runsBinary(pi.pid) && pi.state != 'Z' {
				t.Errorf("process %d (%s) runs %s after the daemon exited", pi.pid, pi.cmdline, build.icebox)
			}
		}
	}
	for _, d := range fp.cgroups {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s remains after shutdown", d)
		}
	}
	if left := cgroupDirs(fp.hash); len(left) > 0 {
		t.Errorf("cgroups of this daemon remain after shutdown: %v", left)
	}
	if m := mountsUnder(t, fp.dataDir); len(m) > 0 {
		t.Errorf("mounts under the data dir remain after shutdown: %v", m)
	}
	if fp.bridge != "" && linkExists(fp.bridge) {
		t.Errorf("the egress bridge %s remains after shutdown", fp.bridge)
	}
}

// linkExists reports whether the host has a network interface named name.
func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}
