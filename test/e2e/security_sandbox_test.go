package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/sandbox/linux/abitest"
	"icebox/internal/testkit"
)

// probeReport is what testdata/probe's "report" action returns.
type probeReport struct {
	Status     map[string]string `json:"status"`
	UIDMap     string            `json:"uidMap"`
	GIDMap     string            `json:"gidMap"`
	UID        int               `json:"uid"`
	GID        int               `json:"gid"`
	Groups     []int             `json:"groups"`
	NoFile     [2]uint64         `json:"nofile"`
	StartFDs   []string          `json:"startFDs"`
	Env        []string          `json:"env"`
	Processes  []string          `json:"processes"`
	Interfaces []string          `json:"interfaces"`
	Attempts   map[string]string `json:"attempts"`
}

// withProbe deploys testdata/probe, a hand-written Runtime API client.
func withProbe(t testing.TB, env map[string]string) func(*lambda.CreateFunctionInput) {
	zip := programZip(t, "probe")
	return func(in *lambda.CreateFunctionInput) {
		in.Code.ZipFile = zip
		if env != nil {
			in.Environment = &types.Environment{Variables: env}
		}
	}
}

// invokeJSON invokes and decodes a successful result into v.
func (s *server) invokeJSON(name string, event any, v any) {
	s.t.Helper()
	out := s.invoke(name, event)
	if out.FunctionError != nil {
		s.t.Fatalf("invoke %s: function error %s: %s", name, *out.FunctionError, out.Payload)
	}
	if err := json.Unmarshal(out.Payload, v); err != nil {
		s.t.Fatalf("decode %s: %v", out.Payload, err)
	}
}

// TestSandboxFromInside: a function sees no privilege, no host process, no
// host id, no descriptor or variable it was not given, and every way out
// the hardening closes is closed.
func TestSandboxFromInside(t *testing.T) {
	t.Setenv("ICEBOX_PROBE_HOST_SECRET", "must-not-leak")
	s := startServer(t)
	s.create("probe", withProbe(t, map[string]string{"PROBE_USER_VAR": "1"}))
	var r probeReport
	s.invokeJSON("probe", map[string]any{"action": "report", "dataDir": s.cfg.DataDir, "daemonAddr": strings.TrimPrefix(s.url, "http://")}, &r)

	// Privileges.
	for k, want := range map[string]string{"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
		"CapBnd": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"} {
		if r.Status[k] != want {
			t.Errorf("%s = %q, want %q", k, r.Status[k], want)
		}
	}
	// User namespace: uid 993 inside, a private high range outside.
	if r.UID != 993 || r.GID != 993 || len(r.Groups) != 0 {
		t.Errorf("uid %d gid %d groups %v, want 993 993 []", r.UID, r.GID, r.Groups)
	}
	for name, m := range map[string]string{"uid_map": r.UIDMap, "gid_map": r.GIDMap} {
		f := strings.Fields(m)
		if len(f) != 3 || f[0] != "0" || f[2] != "65536" || len(f[1]) < 7 {
			t.Errorf("%s = %q, want 0 → a private high host range", name, m)
		}
	}
	// Limits, descriptors, environment.
	if r.NoFile != [2]uint64{1024, 1024} {
		t.Errorf("RLIMIT_NOFILE = %v, want 1024/1024", r.NoFile)
	}
	// Stdio, and Lambda's telemetry descriptor (_LAMBDA_TELEMETRY_LOG_FD), a pipe.
	if len(r.StartFDs) != 4 || !strings.HasPrefix(r.StartFDs[0], "0 ") || !strings.HasPrefix(r.StartFDs[2], "2 ") || !strings.HasPrefix(r.StartFDs[3], "3 pipe:") {
		t.Errorf("runtime started with descriptors %q, want only 0, 1, 2 and the telemetry pipe 3", r.StartFDs)
	}
	lambdaVar := regexp.MustCompile(`^(AWS_[A-Z_]+|LAMBDA_[A-Z_]+|_HANDLER|_X_AMZN_TRACE_ID|_LAMBDA_TELEMETRY_LOG_FD|TZ|LANG|PATH|LD_LIBRARY_PATH|PROBE_USER_VAR)=`)
	for _, kv := range r.Env {
		if !lambdaVar.MatchString(kv) {
			t.Errorf("unexpected variable in the function's environment: %q", kv)
		}
	}
	if !strings.Contains(strings.Join(r.Env, "\n"), "PROBE_USER_VAR=1") {
		t.Error("the function's own variable is missing")
	}
	// Processes: the sandbox's init and the function, nothing of the host.
	for _, p := range r.Processes {
		f := strings.Fields(p)
		if len(f) < 2 || (f[0] == "1") != (f[1] == "icebox") || (f[0] != "1" && f[1] != "/var/task/bootstrap") {
			t.Errorf("the function sees process %q", p)
		}
	}
	if len(r.Processes) > 2 {
		t.Errorf("the function sees %d processes: %q", len(r.Processes), r.Processes)
	}
	if strings.Join(r.Interfaces, ",") != "lo" {
		t.Errorf("network interfaces %q, want lo only", r.Interfaces)
	}

	const eperm = "operation not permitted"
	for name, want := range map[string]string{
		"mount":         eperm,
		"unshare-user":  eperm, // EINVAL without the filter (Go is multi-threaded)
		"clone-newuser": eperm, // allowed to anyone without the filter
		"ptrace-child":  eperm, // allowed on one's own child without the filter
		"add-key":       eperm, // allowed to anyone without the filter
		"vsock":         eperm, // allowed without the filter: vsock ignores network namespaces
		"aslr-off":      eperm, // personality(ADDR_NO_RANDOMIZE), allowed to anyone without the filter
		"kill-init":     eperm,
		"data-dir":      "no such file or directory",
		"daemon-api":    "connection refused",
	} {
		if got := r.Attempts[name]; !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	// Masked: empty where the kernel has it, absent where it does not.
	if got := r.Attempts["kcore"]; got != "read 0 bytes" && !strings.Contains(got, "no such file") {
		t.Errorf("kcore: %q", got)
	}
	for _, name := range []string{"exe-write", "sysrq-trigger", "sysctl-write", "cgroup-write"} {
		if got := r.Attempts[name]; got == "ok" || got == "" {
			t.Errorf("%s succeeded", name)
		}
	}
	t.Run("ForeignABIs", func(t *testing.T) { checkForeignABIs(t, r.Attempts) })
	// Init survived the kill attempt: the same environment answers.
	var again map[string]string
	s.invokeJSON("probe", map[string]any{"action": "noop"}, &again)
	if again["action"] != "noop" || s.d.Environments()["idle"] != 1 {
		t.Errorf("after kill -9 1: %v, %v", again, s.d.Environments())
	}
}

// checkForeignABIs: inside the sandbox, every system call through the
// i386 entry (int $0x80) kills the caller, so unshare or clone cannot hand
// a function a user namespace of its own; x32 calls get ENOSYS; the native
// ABI works. The probe makes each call from a child of its own.
func checkForeignABIs(t *testing.T, attempts map[string]string) {
	if !abitest.Supported {
		t.Skipf("no foreign system call entry to try from %s", runtime.GOARCH)
	}
	// The same probe binary on the host, outside any filter, tells whether
	// this kernel runs i386 system calls at all.
	if got := abitest.RunOne(filepath.Join(buildDir, "probe", "bootstrap"), "i386-getpid"); got != abitest.OK {
		t.Skipf("this kernel runs no i386 system calls (IA32 emulation off): int $0x80 getpid outside any filter: %s", got)
	}
	for name, want := range abitest.UnderFilter {
		if got := attempts[name]; got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

// TestRuntimeAPIIsPerEnvironment: 127.0.0.1:9001 inside a sandbox is that
// sandbox's own Runtime API. A function answering its own call through it
// works; one posting a response for a call running in another environment
// reaches nothing that knows that call, and the other call's result is its
// own.
func TestRuntimeAPIIsPerEnvironment(t *testing.T) {
	s := startServer(t)
	s.create("victim", withProbe(t, nil), func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(20) })
	s.create("attacker", withProbe(t, nil))

	var own map[string]string
	s.invokeJSON("attacker", map[string]any{"action": "self"}, &own)
	if own["via"] != "127.0.0.1:9001" {
		t.Fatalf("answering through 127.0.0.1:9001: %v", own)
	}

	var wg sync.WaitGroup
	var victim *lambda.InvokeOutput
	wg.Add(1)
	go func() {
		defer wg.Done()
		victim, _ = s.client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("victim"),
			Payload: []byte(`{"action":"sleep","ms":3000}`)})
	}()
	id := loggedRequestID(t, s, "victim")
	var inj map[string]int
	s.invokeJSON("attacker", map[string]any{"action": "inject", "target": id}, &inj)
	if inj["status"] != 400 {
		t.Errorf("response for another environment's call: status %d, want 400 from the attacker's own Runtime API", inj["status"])
	}
	wg.Wait()
	if victim == nil || victim.FunctionError != nil || !strings.Contains(string(victim.Payload), `"slept":"`+id+`"`) {
		t.Errorf("victim's result was tampered with: %+v", victim)
	}
}

// loggedRequestID waits for the probe's "PROBE-REQUEST-ID" log line.
func loggedRequestID(t *testing.T, s *server, fn string) string {
	t.Helper()
	logs := cloudwatchlogs.New(cloudwatchlogs.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.url), Credentials: rootCredentials})
	var id string
	testkit.WaitFor(t, 10*time.Second, fn+" to log its request id", func() bool {
		res, err := logs.FilterLogEvents(context.Background(), &cloudwatchlogs.FilterLogEventsInput{
			LogGroupName: aws.String("/aws/lambda/" + fn), FilterPattern: aws.String("PROBE-REQUEST-ID"),
		})
		if err != nil {
			return false
		}
		for _, e := range res.Events {
			if f := strings.Fields(aws.ToString(e.Message)); len(f) == 2 && f[0] == "PROBE-REQUEST-ID" {
				id = f[1]
				return true
			}
		}
		return false
	})
	return id
}
