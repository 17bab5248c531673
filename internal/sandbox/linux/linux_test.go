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

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		RunInit()
	}
	os.Exit(m.Run())
}

func newManager(t *testing.T) *Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sandbox tests need root (CI runs as root)")
	}
	m, err := NewManager(Config{StateDir: t.TempDir(), CgroupParent: "icebox-test/" + filepath.Base(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func script(t *testing.T, body string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func run(t *testing.T, m *Manager, code string) (string, sandbox.ExitStatus) {
	t.Helper()
	sb, err := m.Create(context.Background(), sandbox.Spec{ID: "t" + filepath.Base(code), CodeDir: code, MemoryMB: 128, TmpMB: 64,
		Args: []string{"/var/task/bootstrap"}, Env: []string{"PATH=/usr/bin:/bin", "FOO=bar"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(sb.Output())
	select {
	case <-sb.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("sandbox did not exit")
	}
	return string(out), sb.Exit()
}

func TestSandboxIsolation(t *testing.T) {
	m := newManager(t)
	out, st := run(t, m, script(t, `
echo "uid=$(id -u) foo=$FOO pid=$$"
ls /
test -e /root && echo HAS_ROOT
touch /var/task/x 2>/dev/null && echo TASK_WRITABLE
touch /usr/x 2>/dev/null && echo USR_WRITABLE
echo data > /tmp/f && echo TMP_OK
grep CapEff /proc/self/status
grep NoNewPrivs /proc/self/status
cat /proc/self/cgroup
ls /sys/class/net 2>/dev/null
exit 3
`))
	t.Log(out)
	if st.Code != 3 || st.String() != "exit status 3" {
		t.Fatalf("exit = %+v", st)
	}
	for _, want := range []string{"uid=993 foo=bar pid=", "TMP_OK", "CapEff:\t0000000000000000", "NoNewPrivs:\t1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, bad := range []string{"HAS_ROOT", "TASK_WRITABLE", "USR_WRITABLE"} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %q", bad)
		}
	}
}
