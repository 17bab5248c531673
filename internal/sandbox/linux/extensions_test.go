package linux

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"icebox/internal/sandbox"
)

// Extensions start with the runtime, as the sandbox user with its
// environment, their output apart from the runtime's; each end is reported by name,
// one that cannot be executed as status 126, and the runtime's end is still
// the sandbox's.
func TestExtensionProcesses(t *testing.T) {
	m := newManager(t)
	code := script(t, "sleep 0.3; echo runtime done\n")
	opt := t.TempDir()
	exts := filepath.Join(opt, "extensions")
	if err := os.MkdirAll(exts, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"a-agent":  "#!/bin/sh\necho \"agent uid=$(id -u) foo=$FOO opt=$(ls /opt/extensions | tr '\\n' ,)\"\nexit 7\n",
		"b-broken": "#!/no/such/interpreter\n",
	} {
		if err := os.WriteFile(filepath.Join(exts, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sb, err := m.Create(context.Background(), sandbox.Spec{ID: "x" + filepath.Base(code), CodeDir: code, OptDir: opt, MemoryMB: 128, TmpMB: 16,
		Args: []string{"/var/task/bootstrap"}, Env: []string{"PATH=/usr/bin:/bin", "FOO=bar"},
		Extensions: []string{"/opt/extensions/a-agent", "/opt/extensions/b-broken"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	got := map[string]sandbox.ExitStatus{}
	for len(got) < 2 {
		select {
		case ex := <-sb.ExtensionExits():
			got[ex.Name] = ex.Status
		case <-time.After(waitBound):
			t.Fatalf("waited %v for both extensions' exits, got %v", waitBound, got)
		}
	}
	if got["a-agent"].Code != 7 || got["b-broken"].Code != 126 {
		t.Errorf("extension exits %v", got)
	}
	out := readAllWithin(t, sb.Output(), "the runtime's output to end (the sandbox's init to exit)")
	waitClosed(t, sb.Done(), "the sandbox's Done after its output ended")
	extOut := readAllWithin(t, sb.ExtensionOutput(), "the extensions' output to end")
	if !strings.Contains(string(extOut), "agent uid=993 foo=bar opt=a-agent,b-broken,") || strings.Contains(string(extOut), "runtime done") {
		t.Errorf("extensions' output %q", extOut)
	}
	if !strings.Contains(string(out), "runtime done") || strings.Contains(string(out), "agent") {
		t.Errorf("runtime's output %q", out)
	}
	if st := sb.Exit(); st.Code != 0 {
		t.Errorf("runtime exit %v", st)
	}
}

// Extensions outlive the runtime, for their SHUTDOWN: SignalRuntime ends
// the runtime alone (SIGTERM reaches its handler; SIGKILL its process
// group), the sandbox's Done closes with the runtime's end, and an
// extension's end is still reported after it.
func TestExtensionsOutliveRuntime(t *testing.T) {
	m := newManager(t)
	code := script(t, "trap 'touch /tmp/go; exit 4' TERM\nsleep 60 &\nwait\n")
	opt := t.TempDir()
	if err := os.MkdirAll(filepath.Join(opt, "extensions"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The agent ends a while after the runtime's TERM handler ran.
	agent := "#!/bin/sh\nwhile [ ! -e /tmp/go ]; do sleep 0.02; done\nsleep 0.5\necho agent-saw-the-end\n"
	if err := os.WriteFile(filepath.Join(opt, "extensions", "agent"), []byte(agent), 0o755); err != nil {
		t.Fatal(err)
	}
	sb, err := m.Create(context.Background(), sandbox.Spec{ID: "y" + filepath.Base(code), CodeDir: code, OptDir: opt, MemoryMB: 128, TmpMB: 16,
		Args: []string{"/var/task/bootstrap"}, Env: []string{"PATH=/usr/bin:/bin"}, Extensions: []string{"/opt/extensions/agent"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	if err := sb.StartExtensions(); err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the trap is set
	if err := sb.SignalRuntime(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sb.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the runtime did not end on SIGTERM")
	}
	if st := sb.Exit(); st.Code != 4 {
		t.Errorf("runtime exit %v, want its TERM handler's 4", st)
	}
	select {
	case ex := <-sb.ExtensionExits():
		t.Fatalf("the extension ended with the runtime: %v", ex)
	case <-time.After(100 * time.Millisecond):
	}
	select {
	case ex := <-sb.ExtensionExits():
		if ex.Name != "agent" || ex.Status.Code != 0 {
			t.Errorf("extension exit %+v", ex)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no extension exit after the runtime's")
	}
	if out := readAllWithin(t, sb.ExtensionOutput(), "the extensions' output to end"); !strings.Contains(string(out), "agent-saw-the-end") {
		t.Errorf("extensions' output %q", out)
	}
}
