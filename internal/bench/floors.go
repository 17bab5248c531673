package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The floors: what the machine does for the same job with no platform in
// between. They are measured with the same client, binary and concurrency
// as the rows they sit next to.

// echoServer is a bare net/http server on loopback that returns the body.
type echoServer struct {
	url string
	srv *http.Server
}

func startEcho() (*echoServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &echoServer{url: "http://" + l.Addr().String() + "/", srv: &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}}
	go e.srv.Serve(l)
	return e, nil
}

func (e *echoServer) close() { e.srv.Close() }

// post makes one round trip to the echo server with c.
func (e *echoServer) post(ctx context.Context, c *http.Client, payload []byte) error {
	return postTo(ctx, c, e.url, payload)
}

// execOnce runs bin with an empty environment until it exits (an
// aws-lambda-go program without AWS_LAMBDA_RUNTIME_API exits at once).
func execOnce(bin string) error {
	cmd := exec.Command(bin)
	cmd.Env = []string{}
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return nil
	}
	return err
}

// forkExecRate runs n copies of /bin/true at once and returns how many
// finished per second.
func forkExecRate(n int) (float64, error) {
	bin, err := exec.LookPath("true")
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := exec.Command(bin).Run(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}

// runtimeAPI is a trivial Runtime API, for copies of the echo binary on
// the host or for a sandbox's runtime. /next hands out the payload at once,
// or when gated, only when a value arrives on gate (what a platform does
// when a call comes; with no call, the runtime waits there as an idle
// environment's does). /response counts the answer and, when gated,
// reports it on answered.
type runtimeAPI struct {
	srv      *http.Server
	asked    chan struct{} // one value per /next request received
	count    atomic.Int64
	gate     chan struct{}
	answered chan struct{}
	cmds     []*exec.Cmd
}

func serveRuntimeAPI(l net.Listener, gated bool) *runtimeAPI {
	a := &runtimeAPI{asked: make(chan struct{}, 4096)}
	if gated {
		a.gate, a.answered = make(chan struct{}), make(chan struct{}, 1)
	}
	deadline := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case a.asked <- struct{}{}:
		default:
		}
		if a.gate != nil {
			select {
			case <-a.gate:
			case <-r.Context().Done():
				return
			}
		}
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", randomHex(8))
		h.Set("Lambda-Runtime-Deadline-Ms", deadline)
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:echo")
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(payload)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		a.count.Add(1)
		if a.answered != nil {
			a.answered <- struct{}{}
		}
		w.WriteHeader(http.StatusAccepted)
	})
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go a.srv.Serve(l)
	return a
}

// startRuntimes serves a runtimeAPI (gated or not) on loopback and starts
// n copies of bin against it.
func startRuntimes(bin string, n int, gated bool) (_ *runtimeAPI, err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := serveRuntimeAPI(l, gated)
	defer func() {
		if err != nil {
			a.stop()
		}
	}()
	for range n {
		cmd := exec.Command(bin)
		cmd.Env = []string{"AWS_LAMBDA_RUNTIME_API=" + l.Addr().String(), "_HANDLER=bootstrap"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		a.cmds = append(a.cmds, cmd)
	}
	return a, nil
}

// startIdle starts n copies of bin that wait for their next event: the
// floor of an idle environment.
func startIdle(ctx context.Context, bin string, n int) (*runtimeAPI, error) {
	a, err := startRuntimes(bin, n, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.waitNext(ctx, n); err != nil {
		a.stop()
		return nil, err
	}
	return a, nil
}

// waitNext waits until n runtimes have asked for their next event.
func (a *runtimeAPI) waitNext(ctx context.Context, n int) error {
	for range n {
		select {
		case <-a.asked:
		case <-ctx.Done():
			return fmt.Errorf("waiting for idle runtimes: %w", ctx.Err())
		}
	}
	return nil
}

func (a *runtimeAPI) pids() []int {
	out := make([]int, len(a.cmds))
	for i, c := range a.cmds {
		out[i] = c.Process.Pid
	}
	return out
}

// stop ends the copies started, if any, and the server.
func (a *runtimeAPI) stop() {
	for _, c := range a.cmds {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	a.cmds = nil
	a.srv.Close()
}

// roundTrip hands one event to the runtime waiting in /next and returns
// when its response has arrived.
func (a *runtimeAPI) roundTrip(ctx context.Context) error {
	select {
	case a.gate <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("runtime round trip: no runtime asked for an event: %w", ctx.Err())
	}
	select {
	case <-a.answered:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("runtime round trip: no response: %w", ctx.Err())
	}
}

// runtimeFloor runs n copies of the echo binary on the host against a
// trivial Runtime API that hands them events back to back, for d after a
// short warm-up, and returns their CPU per call and the calls measured: the
// floor of a runtime's share of a warm invoke with n environments busy (each
// runtime's own two loopback exchanges per call, with no platform and no
// freezer around it).
func runtimeFloor(ctx context.Context, bin string, n int, d time.Duration) (perCall time.Duration, calls int, err error) {
	a, err := startRuntimes(bin, n, false)
	if err != nil {
		return 0, 0, err
	}
	defer a.stop()
	for a.count.Load() < int64(100*n) {
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("runtime floor: %d calls answered: %w", a.count.Load(), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cpu0, n0 := cpuOf(a.pids()), a.count.Load()
	select {
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	case <-time.After(d):
	}
	cpu1, n1 := cpuOf(a.pids()), a.count.Load()
	if n1 == n0 {
		return 0, 0, errors.New("runtime floor: no call answered")
	}
	return (cpu1 - cpu0) / time.Duration(n1-n0), int(n1 - n0), nil
}

// runtimeRoundTrips times n sequential round trips of one copy of the echo
// binary on the host, after a warm-up of 100: each from an event handed to
// the runtime waiting in /next to its response read by the trivial Runtime
// API. It is the floor of the runtime's part of a sequential warm invoke.
func runtimeRoundTrips(ctx context.Context, bin string, n int) (samples, error) {
	a, err := startRuntimes(bin, 1, true)
	if err != nil {
		return nil, err
	}
	defer a.stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second+time.Duration(n)*time.Millisecond)
	defer cancel()
	out := make(samples, 0, n)
	for i := range 100 + n {
		d, err := timed(func() error { return a.roundTrip(ctx) })
		if err != nil {
			return nil, err
		}
		if i >= 100 {
			out = append(out, d)
		}
	}
	return out, nil
}

// rawFreezer is a bare cgroup (freezer only) holding one idle process. Its
// writes are the floor of a sandbox's freeze and thaw: the same
// open-write-close of the same control file, with no sandbox around it.
// The files are written here rather than through sandbox/linux so the floor
// owes nothing to the code it is the floor of.
type rawFreezer struct {
	dir            string
	file           string
	frozen, thawed string
}

// newRawFreezer makes the group on the hierarchy the platform uses
// (version 1: freezer.state; version 2: cgroup.freeze) and moves pid in.
func newRawFreezer(version, pid int) (*rawFreezer, error) {
	name := "icebox-bench-" + randomHex(4)
	f := &rawFreezer{}
	switch version {
	case 1:
		f.dir = filepath.Join("/sys/fs/cgroup/freezer", name)
		f.file, f.frozen, f.thawed = "freezer.state", "FROZEN", "THAWED"
	case 2:
		f.dir = filepath.Join("/sys/fs/cgroup", name)
		f.file, f.frozen, f.thawed = "cgroup.freeze", "1", "0"
	default:
		return nil, fmt.Errorf("cgroup version %d", version)
	}
	if err := os.Mkdir(f.dir, 0o755); err != nil {
		return nil, fmt.Errorf("raw freezer: %w", err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		os.Remove(f.dir)
		return nil, fmt.Errorf("raw freezer: %w", err)
	}
	return f, nil
}

func (f *rawFreezer) write(v string) error {
	return os.WriteFile(filepath.Join(f.dir, f.file), []byte(v), 0)
}

func (f *rawFreezer) freeze() error { return f.write(f.frozen) }
func (f *rawFreezer) thaw() error   { return f.write(f.thawed) }

// remove thaws the group and removes it once the caller has ended its
// process; the kernel refuses while a task remains, so it retries briefly.
func (f *rawFreezer) remove() error {
	_ = f.thaw()
	var err error
	for range 1000 {
		if err = os.Remove(f.dir); err == nil || !errors.Is(err, syscall.EBUSY) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	return err
}

// invokeStub is the floor of the SDK rows: a trivial loopback server that
// answers every POST …/invocations like Lambda's Invoke (200, the event back
// as the payload, the executed version), called by the same aws-sdk-go-v2
// client with the same signing. What separates a row from it is icebox, not
// the client's own cost.
type invokeStub struct {
	url string
	srv *http.Server
}

func startInvokeStub() (*invokeStub, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &invokeStub{url: "http://" + l.Addr().String(), srv: &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/invocations") || r.Header.Get("Authorization") == "" {
				http.Error(w, `{"message":"not an invoke"}`, http.StatusBadRequest)
				return
			}
			body, _ := io.ReadAll(io.LimitReader(r.Body, 6<<20))
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("X-Amz-Executed-Version", "$LATEST")
			h.Set("X-Amzn-Requestid", "00000000-0000-0000-0000-000000000000")
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}}
	go s.srv.Serve(l)
	return s, nil
}

func (s *invokeStub) close() { s.srv.Close() }

// postTo makes one round trip to url with c and fails unless it answers 200.
func postTo(ctx context.Context, c *http.Client, url string, payload []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return err
}
