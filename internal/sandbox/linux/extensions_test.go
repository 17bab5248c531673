package linux

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"icebox/internal/sandbox"
)

// Extensions start with the runtime, as the sandbox user with its
// environment, their output in the runtime's; each end is reported by name,
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
		case <-time.After(10 * time.Second):
			t.Fatalf("extension exits: %v", got)
		}
	}
	if got["a-agent"].Code != 7 || got["b-broken"].Code != 126 {
		t.Errorf("extension exits %v", got)
	}
	out, _ := io.ReadAll(sb.Output())
	<-sb.Done()
	if !strings.Contains(string(out), "agent uid=993 foo=bar opt=a-agent,b-broken,") || !strings.Contains(string(out), "runtime done") {
		t.Errorf("output %q", out)
	}
	if st := sb.Exit(); st.Code != 0 {
		t.Errorf("runtime exit %v", st)
	}
}
