package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The single-function rows: `icebox run` and AWS's runtime interface
// emulator (a binary the user supplies) serve the same echo bootstrap at
// POST /2015-03-31/functions/function/invocations, unsigned, and the same
// plain net/http callers load each at 1, 4 and 32 callers. Both run as
// processes of their own, so the CPU of icebox run's daemon and of its
// sandboxes can be told apart from the load generator's.

const singleInvokePath = "/2015-03-31/functions/function/invocations"

// singleServer is one such process.
type singleServer struct {
	url    string
	cmd    *exec.Cmd
	done   chan struct{}
	output *tailBuffer
}

// tailBuffer keeps the last 4 KiB written to it, for error messages.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = append([]byte(nil), t.b[len(t.b)-4096:]...)
	}
	return len(p), nil
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startSingle runs bin with args, its own process group, and waits until
// a call at addr succeeds (the first one is a cold start).
func startSingle(ctx context.Context, c *http.Client, addr, bin string, args ...string) (*singleServer, error) {
	s := &singleServer{url: "http://" + addr + singleInvokePath, done: make(chan struct{}), output: &tailBuffer{}}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := postTo(cctx, c, s.url, payload)
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("%s exited: %s", bin, s.output.String())
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stop()
			return nil, fmt.Errorf("%s not answering after 60s: %v", bin, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *singleServer) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop asks the process group to end (icebox run removes its sandboxes),
// then kills what remains after 20 s.
func (s *singleServer) stop() {
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
}

// echoAt measures the bare echo with the plain client at c callers, once
// per run and level.
func (r *run) echoAt(ctx context.Context, c int) Stat {
	if st, ok := r.echoLoad[c]; ok {
		return st
	}
	quiesce()
	rate, lat, bad, _ := load(ctx, c, r.cfg.ThroughputTime, func(ctx context.Context) error { return r.echo.post(ctx, r.plain, payload) })
	st := loadStat(rate, lat, bad)
	if r.echoLoad == nil {
		r.echoLoad = map[int]Stat{}
	}
	r.echoLoad[c] = st
	return st
}

// measureIceboxRun loads `icebox run --code` of the echo bootstrap at each
// single-function level, and returns its rows and the CPU row (32 callers).
func (r *run) measureIceboxRun(ctx context.Context) ([]Row, error) {
	levels := r.cfg.SingleConcurrency
	if r.cfg.IceboxBin == "" {
		row := Row{ID: IceboxRunRow(32), Name: "icebox run", Unit: UnitLoad, Skipped: "no icebox binary (run from the source tree)"}
		return []Row{row}, nil
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s, err := startSingle(ctx, r.plain, addr, r.cfg.IceboxBin, "run", "--code", r.echoDir, "--listen", addr)
	if err != nil {
		return nil, fmt.Errorf("icebox run: %w", err)
	}
	defer s.stop()
	call := func(ctx context.Context) error { return postTo(ctx, r.plain, s.url, payload) }
	var rows []Row
	for _, c := range levels {
		r.progress("icebox run: %d callers for %v", c, r.cfg.ThroughputTime)
		// Warm-up: icebox run makes environments as callers need them.
		for range 3 {
			load(ctx, c, 200*time.Millisecond, call)
		}
		quiesce()
		pid := s.cmd.Process.Pid
		sandboxes := descendants(pid)
		d0, rt0, self0 := procCPU(pid), cpuOf(sandboxes), selfCPU()
		rate, lat, bad, _ := load(ctx, c, r.cfg.ThroughputTime, call)
		d1, rt1, self1 := procCPU(pid), cpuOf(sandboxes), selfCPU()
		echo := r.echoAt(ctx, c)
		rows = append(rows, Row{
			ID: IceboxRunRow(c), Name: "icebox run, " + plural(c, "caller") + " (net/http POST, unsigned)", Unit: UnitLoad,
			Result: loadStat(rate, lat, bad), FloorName: "bare loopback HTTP echo, same client, " + plural(c, "caller"), Floor: echo,
		})
		if (c == 1 || c == 32) && len(lat) > 0 {
			per := func(d time.Duration, n int) float64 { return float64(d) / float64(time.Microsecond) / float64(n) }
			daemon, runtime := per(d1-d0, len(lat)), per(rt1-rt0, len(lat))
			rows = append(rows, Row{
				ID: CPURunRow(c), Name: "CPU per warm invoke, icebox run, " + plural(c, "caller"), Unit: UnitCPU,
				Result:    Stat{Value: daemon + runtime, Daemon: daemon, Runtime: runtime, Samples: len(lat)},
				FloorName: "the callers' own CPU per call (load generator)", Floor: Stat{Value: per(self1-self0, len(lat)), Samples: len(lat)},
				Note: "/proc of the icebox run process and of its sandboxes",
			})
		}
	}
	if s.exited() {
		return rows, fmt.Errorf("icebox run exited during the load: %s", s.output.String())
	}
	return rows, nil
}

// measurePeerRIE loads AWS's runtime interface emulator at each level,
// started afresh for each (it serves one call at a time; its failures are
// counted, not fatal, and one level's crash does not spill into the next).
func (r *run) measurePeerRIE(ctx context.Context) ([]Row, error) {
	if r.cfg.PeerRIE == "" {
		return nil, nil
	}
	if _, err := os.Stat(r.cfg.PeerRIE); err != nil {
		return nil, fmt.Errorf("peer emulator: %w", err)
	}
	var rows []Row
	for _, c := range r.cfg.SingleConcurrency {
		r.progress("aws-lambda-rie: %d callers for %v", c, r.cfg.ThroughputTime)
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		api, err := freeAddr()
		if err != nil {
			return nil, err
		}
		s, err := startSingle(ctx, r.plain, addr, r.cfg.PeerRIE,
			"--runtime-interface-emulator-address", addr, "--runtime-api-address", api, r.echoBin)
		if err != nil {
			return nil, fmt.Errorf("peer emulator: %w", err)
		}
		call := func(ctx context.Context) error { return postTo(ctx, r.plain, s.url, payload) }
		// Callers stop when the emulator exits: the calls made until then
		// are what it served and failed; refused connections after it are
		// not calls it failed.
		lctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-s.done:
				cancel()
			case <-lctx.Done():
			}
		}()
		rate, lat, bad, firstErr := load(lctx, c, r.cfg.ThroughputTime, call)
		exited := s.exited()
		cancel()
		s.stop()
		echo := r.echoAt(ctx, c)
		row := Row{
			ID: PeerRIERow(c), Name: "aws-lambda-rie, " + plural(c, "caller") + " (net/http POST, unsigned)", Unit: UnitLoad,
			Result: loadStat(rate, lat, bad), FloorName: "bare loopback HTTP echo, same client, " + plural(c, "caller"), Floor: echo,
		}
		switch {
		case exited:
			row.Note = "the emulator exited during the load"
			if p := panicLine(s.output.String()); p != "" {
				row.Note += ": " + p
			}
		case bad > 0 && firstErr != nil:
			row.Note = "first failure: " + shortErr(firstErr)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// shortErr is err's message cut to 80 characters for a table cell.
func shortErr(err error) string {
	var ne net.Error
	msg := err.Error()
	if errors.As(err, &ne) && ne.Timeout() {
		msg = "timeout"
	}
	if len(msg) > 80 {
		msg = msg[:77] + "…"
	}
	return strconv.Quote(msg)
}

// panicLine is the first line of a Go panic in out and the function it
// happened in, cut short for a table cell; "" if out has none.
func panicLine(out string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "panic: ") {
			continue
		}
		msg := strings.TrimPrefix(l, "panic: ")
		for _, f := range lines[i+1:] {
			if f = strings.TrimSpace(f); f != "" && !strings.HasPrefix(f, "[") && !strings.HasPrefix(f, "goroutine ") {
				if j := strings.LastIndexByte(f, '/'); j >= 0 {
					f = f[j+1:]
				}
				msg += " in " + f
				break
			}
		}
		if len(msg) > 120 {
			msg = msg[:117] + "…"
		}
		return msg
	}
	return ""
}
