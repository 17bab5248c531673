package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"icebox/internal/testkit"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"golang.org/x/sys/unix"
)

// Hostile functions. Covered elsewhere and not repeated here: OOM
// (TestOutOfMemory), a SIGTERM-ignoring double-forked sleeper past the
// timeout (TestTimeoutKillsEverything), log flood (TestLogFloodIsBounded),
// an oversized response through aws-lambda-go (TestFunctionErrorsAreData),
// zip slip and bombs (api tests).

// marker is a string only the processes of one test carry in argv.
func marker(t *testing.T) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "icebox-hostile-" + hex.EncodeToString(b[:])
}

// hostProcessesWithMarker lists host processes whose command line holds m.
func hostProcessesWithMarker(m string) []string {
	var found []string
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		b, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), m) {
			found = append(found, d.Name()+" "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return found
}

// callTimesOut invokes a function expected to run past its timeout and
// checks the call ends as Lambda ends it, without waiting much longer.
func callTimesOut(t *testing.T, s *server, name string, event any, limit time.Duration) {
	t.Helper()
	start := time.Now()
	e := s.callFail(name, event)
	if e.ErrorType != "Sandbox.Timedout" {
		t.Errorf("error %+v, want Sandbox.Timedout", e)
	}
	if took := time.Since(start); took > limit {
		t.Errorf("timed-out call took %v", took)
	}
}

// TestForkBomb: the bomb stops at the pids limit, the call ends at its
// timeout (or its memory limit), nothing of it is left on the host and the function works again.
func TestForkBomb(t *testing.T) {
	s := startServer(t)
	s.create("bomb", withProbe(t, nil), func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(3) })
	m := marker(t)
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if n := int64(len(hostProcessesWithMarker(m))); n > peak.Load() {
				peak.Store(n)
			}
		}
	}()
	// The bomb's processes are charged to the function's memory too: on a
	// loaded host the cgroup may run out of memory before the timeout. Either
	// way the call must end, in time, with the platform's error.
	start := time.Now()
	if e := s.callFail("bomb", map[string]any{"action": "forkbomb", "marker": m}); e.ErrorType != "Sandbox.Timedout" && e.ErrorType != "Runtime.OutOfMemory" {
		t.Errorf("error %+v, want Sandbox.Timedout or Runtime.OutOfMemory", e)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the fork bomb's call took %v", took)
	}
	close(stop)
	wg.Wait()
	// The sampler scans /proc every 100 ms: on a loaded host it sees a few
	// dozen of the bomb's processes at once, so the lower bound only shows
	// that the bomb ran.
	if p := peak.Load(); p < 20 || p > 1024 {
		t.Errorf("bomb peaked at %d processes; want it running and held under the pids limit of 1024", p)
	}
	testkit.WaitFor(t, 10*time.Second, "the bomb's processes to disappear", func() bool { return len(hostProcessesWithMarker(m)) == 0 })
	if err := exec.Command("/bin/true").Run(); err != nil {
		t.Errorf("the host cannot fork after the bomb: %v", err)
	}
	var r map[string]string
	s.invokeJSON("bomb", map[string]any{"action": "noop"}, &r)
	if r["action"] != "noop" {
		t.Errorf("call after the bomb: %v", r)
	}
}

// TestBusyLoopIgnoringSIGTERMWithDoubleFork: a function spinning past its
// timeout with SIGTERM ignored, leaving a double-forked spinner behind,
// ends at the timeout and leaves no process on the host.
func TestBusyLoopIgnoringSIGTERMWithDoubleFork(t *testing.T) {
	s := startServer(t)
	s.create("spin", withProbe(t, nil), func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(1) })
	m := marker(t)
	callTimesOut(t, s, "spin", map[string]any{"action": "spin", "marker": m}, 4*time.Second)
	testkit.WaitFor(t, 5*time.Second, "the spinners to disappear", func() bool { return len(hostProcessesWithMarker(m)) == 0 })
	var r map[string]string
	s.invokeJSON("spin", map[string]any{"action": "noop"}, &r)
	if r["action"] != "noop" {
		t.Errorf("call after the timeout: %v", r)
	}
}

// TestTmpFlood: filling /tmp ends in ENOSPC at the configured ephemeral
// storage size, costs the host's disks nothing, and the environment goes on.
func TestTmpFlood(t *testing.T) {
	s := startServer(t)
	s.create("flood", withProbe(t, nil), func(in *lambda.CreateFunctionInput) {
		in.Timeout = aws.Int32(60)
		in.MemorySize = aws.Int32(1024) // /tmp is memory-backed: room for it
	})
	free := func(path string) int64 {
		var st unix.Statfs_t
		if err := unix.Statfs(path, &st); err != nil {
			t.Fatal(err)
		}
		return int64(st.Bavail) * st.Bsize
	}
	rootBefore, dataBefore := free("/"), free(s.cfg.DataDir)
	var r struct {
		Bytes  int64  `json:"bytes"`
		Error  string `json:"error"`
		ENOSPC bool   `json:"enospc"`
	}
	s.invokeJSON("flood", map[string]any{"action": "tmpflood"}, &r)
	if !r.ENOSPC || r.Bytes > 512<<20 || r.Bytes < 400<<20 {
		t.Errorf("flood wrote %d MiB and stopped with %q; want ENOSPC at the 512 MiB /tmp", r.Bytes>>20, r.Error)
	}
	if d := rootBefore - free("/"); d > 100<<20 {
		t.Errorf("host / lost %d MiB", d>>20)
	}
	if d := dataBefore - free(s.cfg.DataDir); d > 100<<20 {
		t.Errorf("data dir filesystem lost %d MiB", d>>20)
	}
	var again map[string]string
	s.invokeJSON("flood", map[string]any{"action": "noop"}, &again)
	if again["action"] != "noop" {
		t.Errorf("call after the flood: %v", again)
	}
}

// TestRuntimeAPIAbuse drives the Runtime API the way no library would.
func TestRuntimeAPIAbuse(t *testing.T) {
	s := startServer(t)
	s.create("abuse", withProbe(t, nil))

	// Answers for a request id that is not the current one.
	var wrong map[string]int
	s.invokeJSON("abuse", map[string]any{"action": "wrongid"}, &wrong)
	if wrong["response"] != 400 || wrong["error"] != 400 {
		t.Errorf("wrong request id: response %d, error %d; want 400 (InvalidRequestID)", wrong["response"], wrong["error"])
	}

	// Two answers to one event: the first counts, the second is refused.
	var first map[string]string
	s.invokeJSON("abuse", map[string]any{"action": "double"}, &first)
	if first["answer"] != "first" {
		t.Errorf("double response: caller got %v, want the first answer", first)
	}
	var second map[string]int64
	s.invokeJSON("abuse", map[string]any{"action": "lastdouble"}, &second)
	if second["second"] != 400 {
		t.Errorf("second response to one event: status %d, want 400", second["second"])
	}

	t.Run("two pollers", func(t *testing.T) {
		// Two threads asking for events at once: every call still ends,
		// as a result or as a function error, never a platform failure or
		// a hang.
		s.create("twopoll", withProbe(t, map[string]string{"PROBE_POLLERS": "2"}))
		for i := 0; i < 6; i++ {
			out := s.invoke("twopoll", map[string]any{"action": "noop"})
			if out.FunctionError != nil && !strings.Contains(string(out.Payload), "Runtime.") {
				t.Errorf("call %d: %s", i, out.Payload)
			}
		}
	})

	t.Run("never asks for an event", func(t *testing.T) {
		// Init never ends: after Lambda's 10 s init limit and a second
		// attempt under the function's timeout, the call fails as an init
		// error and nothing stays behind.
		s.create("nonext", withProbe(t, map[string]string{"PROBE_NO_NEXT": "1"}), func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(1) })
		start := time.Now()
		e := s.callFail("nonext", map[string]any{})
		if e.ErrorType != "Runtime.InitError" || !strings.Contains(e.ErrorMessage, "init phase did not complete") {
			t.Errorf("never calling /next: %+v", e)
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("call took %v", took)
		}
		testkit.WaitFor(t, 5*time.Second, "the stuck environments to go", func() bool {
			env := s.d.Environments()
			return env["initializing"] == 0 && env["busy"] == 0
		})
	})
}
