// Package sandbox defines what the pool needs from an execution environment's
// isolation: a box built from a Spec that runs one runtime process, can be
// frozen and thawed, and is destroyed with everything in it. The Linux
// implementation lives in sandbox/linux; tests of the pool use fakes.
package sandbox

import (
	"context"
	"fmt"
	"io"
	"net"
	"syscall"
)

// APIAddr is where icebox's own API is reachable inside every sandbox, for
// the function's AWS SDK (AWS_ENDPOINT_URL).
const APIAddr = "127.0.0.1:9070"

// TelemetryFD is the runtime's descriptor for framed log records, as on
// Lambda: AWS's runtime clients write every log call there as one frame
// (see package pool) when _LAMBDA_TELEMETRY_LOG_FD names it.
const TelemetryFD = 3

// Spec is everything a sandbox is built from.
type Spec struct {
	// ID names the sandbox (cgroup name, hostname suffix). Unique per host.
	ID string
	// CodeDir is mounted read-only at /var/task.
	CodeDir string
	// RuntimeDir, when set, is mounted read-only at /var/runtime.
	RuntimeDir string
	// OptDir, when set, is mounted read-only at /opt.
	OptDir string
	// MemoryMB is the hard memory limit (no swap); CPU share follows it.
	MemoryMB int
	// TmpMB sizes the private /tmp.
	TmpMB int
	// Args is the runtime's argv inside the sandbox; Args[0] is an absolute path.
	Args []string
	// Env is the runtime's complete environment.
	Env []string
	// Extensions are absolute paths inside the sandbox of executables
	// started with the runtime (Lambda's external extensions, under
	// /opt/extensions), with its user, environment and output.
	Extensions []string
	// Networks name the operator's networks the sandbox joins (the
	// function's VpcConfig SubnetIds); empty: the default egress policy.
	Networks []string
}

// Validate checks a Spec before any kernel object is made for it.
func (s *Spec) Validate() error {
	switch {
	case s.ID == "":
		return fmt.Errorf("sandbox spec: empty ID")
	case s.CodeDir == "":
		return fmt.Errorf("sandbox spec: empty CodeDir")
	case len(s.Args) == 0 || s.Args[0] == "" || s.Args[0][0] != '/':
		return fmt.Errorf("sandbox spec: Args[0] must be an absolute path")
	case s.MemoryMB <= 0 || s.TmpMB <= 0:
		return fmt.Errorf("sandbox spec: memory and /tmp sizes must be positive")
	}
	for _, x := range s.Extensions {
		if x == "" || x[0] != '/' {
			return fmt.Errorf("sandbox spec: extension %q must be an absolute path", x)
		}
	}
	return nil
}

// Factory builds sandboxes.
type Factory interface {
	// Create builds the sandbox and stops just before the runtime starts, so
	// the caller can serve the Runtime API on Listener first.
	Create(ctx context.Context, spec Spec) (Sandbox, error)
}

// Sandbox is one isolated box. Container control (Start, Freeze, Thaw, Kill,
// Destroy) is split from what the pool reads about the process (Done, Output,
// Stats).
type Sandbox interface {
	// Listener is 127.0.0.1:9001 inside the sandbox's own network namespace;
	// the Runtime API for this environment is served on it.
	Listener() net.Listener
	// APIListener is 127.0.0.1:9070 inside the same namespace; icebox's own
	// API is served on it for the function's SDK, with the function's
	// execution-role credentials.
	APIListener() net.Listener
	// Dial connects to 127.0.0.1:port inside the sandbox's network
	// namespace (Telemetry API deliveries to an extension's listener).
	Dial(ctx context.Context, port int) (net.Conn, error)
	// Output yields the runtime's stdout and stderr, merged, until it exits.
	Output() io.Reader
	// OutputWritten is the number of output bytes written so far: those
	// Output yielded and those it has still to yield, counted at one
	// instant.
	OutputWritten() int64
	// Telemetry yields what the runtime wrote to descriptor TelemetryFD
	// (Lambda's _LAMBDA_TELEMETRY_LOG_FD): framed log records, one per log
	// call, until it and every process it started have exited.
	Telemetry() io.Reader
	// TelemetryWritten is Telemetry's OutputWritten.
	TelemetryWritten() int64
	// ExtensionOutput yields the external extensions' stdout and stderr,
	// merged, apart from the runtime's; ExtensionOutputWritten is its
	// OutputWritten.
	ExtensionOutput() io.Reader
	ExtensionOutputWritten() int64
	// StartExtensions runs the extension processes alone, so that they
	// register before the runtime starts, as on Lambda; optional.
	StartExtensions() error
	// Start runs the runtime process (and the extensions first, unless
	// StartExtensions did).
	Start() error
	// Freeze stops every process in the sandbox; Thaw resumes them.
	Freeze() error
	Thaw() error
	// Kill ends every process in the sandbox at once (no grace period).
	Kill() error
	// SignalRuntime sends the runtime process SIGTERM, or SIGKILL (with
	// what it started in its process group); extensions keep running.
	SignalRuntime(sig syscall.Signal) error
	// Done is closed when the runtime process has exited; Exit then tells
	// how. Extensions may outlive it until Kill or Destroy.
	Done() <-chan struct{}
	// ExtensionExits reports each of Spec.Extensions that ends (or could
	// not start) while the runtime runs, once.
	ExtensionExits() <-chan ExtensionExit
	Exit() ExitStatus
	// Stats reads the sandbox's resource accounting.
	Stats() Stats
	// Destroy kills what is left and removes every kernel object of the
	// sandbox. It is safe to call more than once.
	Destroy() error
}

// Stats is a sandbox's resource accounting.
type Stats struct {
	MaxMemoryBytes uint64
	OOMKills       uint64
	// NetReceivedBytes and NetSentBytes are what the sandbox's network
	// interface (egress) carried since it was built; 0 without one.
	NetReceivedBytes, NetSentBytes uint64
}

// ExitStatus tells how the runtime process ended.
type ExitStatus struct {
	Code   int
	Signal syscall.Signal
}

// String renders the status as Go's os/exec does, which is what Lambda's
// "Runtime exited with error: …" messages show.
func (e ExitStatus) String() string {
	if e.Signal != 0 {
		return "signal: " + e.Signal.String()
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

// ExtensionExit is the end of one of a sandbox's extension processes.
type ExtensionExit struct {
	// Name is the file name of the extension's executable.
	Name   string
	Status ExitStatus
}

// StartError means the runtime process could not be started, e.g. the
// bootstrap is not executable. It is the function's fault, not icebox's.
type StartError struct{ Msg string }

func (e *StartError) Error() string { return e.Msg }
