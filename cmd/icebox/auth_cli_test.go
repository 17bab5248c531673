package main

import (
	"icebox/internal/testkit"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"icebox/internal/auth"
)

// TestRootCredentialsGenerated: a server started without credentials makes
// root credentials once, shows them once, keeps them 0600 in the data dir;
// the icebox CLI on the same host finds them there, and manages keys, roles
// and networks with them.
func TestRootCredentialsGenerated(t *testing.T) {
	requireRoot(t)
	binaries(t)
	dataDir := t.TempDir()
	s := startServer(t, how{ownRoot: true}, "serve", "--data-dir", dataDir)
	path := filepath.Join(dataDir, auth.RootCredentialsFile)
	id, secret, err := auth.ReadCredentialsFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode: %v %v", fi.Mode(), err)
	}
	testkit.WaitFor(t, 10*time.Second, "the credentials to be shown", func() bool {
		return strings.Contains(s.proc.stdout.String(), "export AWS_SECRET_ACCESS_KEY")
	})
	shown := regexp.MustCompile(`export AWS_ACCESS_KEY_ID=(\S+)\s+export AWS_SECRET_ACCESS_KEY=(\S+)`).FindStringSubmatch(s.proc.stdout.String())
	if shown == nil || shown[1] != id || shown[2] != secret || !strings.HasPrefix(id, "AKIA") {
		t.Errorf("printed credentials %q, file has %s", shown, id)
	}
	if strings.Contains(s.proc.stderr.String(), secret) {
		t.Error("the secret is in the server's log")
	}
	// Unsigned requests are refused.
	resp, err := http.Get(s.url + "/2015-03-31/functions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("x-amzn-ErrorType") != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned: %d %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
	}

	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(build.icebox, append(args, "--endpoint", s.url, "--data-dir", dataDir)...)
		cmd.Env = envWithoutAWS()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("icebox %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := cli("status"); !strings.Contains(out, "concurrent executions") {
		t.Errorf("status: %s", out)
	}
	pol := filepath.Join(t.TempDir(), "policy.json")
	os.WriteFile(pol, []byte(`{"Statement":[{"Effect":"Allow","Action":"lambda:List*","Resource":"*"}]}`), 0o644)
	// A policy the server refuses is named in the error too.
	wrong := filepath.Join(t.TempDir(), "wrong.json")
	os.WriteFile(wrong, []byte(`{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}`), 0o644)
	refused := exec.Command(build.icebox, "keys", "create", "--user", "dave", "--policy", wrong, "--endpoint", s.url, "--data-dir", dataDir)
	refused.Env = envWithoutAWS()
	if out, err := refused.CombinedOutput(); err == nil || !strings.Contains(string(out), "keys create (policy "+wrong+"): ") {
		t.Errorf("keys create with a policy the server refuses: %v %s", err, out)
	} else {
		t.Logf("refused policy: %s", out)
	}
	out := cli("keys", "create", "--user", "carol", "--policy", pol)
	m := regexp.MustCompile(`AWS_ACCESS_KEY_ID=(AKIA\S+)\nAWS_SECRET_ACCESS_KEY=(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("keys create printed %q", out)
	}
	if out := cli("keys", "list"); !strings.Contains(out, m[1]) || !strings.Contains(out, "carol") || strings.Contains(out, m[2]) {
		t.Errorf("keys list: %s", out)
	}
	if out := cli("roles", "put", "worker", "--policy", pol); strings.TrimSpace(out) != "arn:aws:iam::000000000000:role/worker" {
		t.Errorf("roles put: %s", out)
	}
	// carol may list functions but not read the status page.
	cmd := exec.Command(build.icebox, "status", "--endpoint", s.url)
	cmd.Env = append(envWithoutAWS(), "AWS_ACCESS_KEY_ID="+m[1], "AWS_SECRET_ACCESS_KEY="+m[2])
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "AccessDeniedException") {
		t.Errorf("carol's status: %v %s", err, out)
	}
	cli("keys", "delete", m[1])
	if out := cli("keys", "list"); strings.Contains(out, m[1]) {
		t.Errorf("deleted key listed: %s", out)
	}
	// Networks: put shows the definition; one that would open the host is refused by name.
	if out := cli("networks", "put", "db", "--cidr", "10.1.0.0/16", "--allow", "10.9.0.0/24,10.8.0.1/32", "--nat"); !regexp.MustCompile(`db\s+10.1.0.0/16\s+10.9.0.0/24,10.8.0.1/32\s+true`).MatchString(out) {
		t.Errorf("networks put: %s", out)
	}
	bad := exec.Command(build.icebox, "networks", "put", "meta", "--cidr", "169.254.169.254/32", "--endpoint", s.url, "--data-dir", dataDir)
	bad.Env = envWithoutAWS()
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "169.254.169.254/32 overlaps 169.254.0.0/16") {
		t.Errorf("networks put of link-local: %v %s", err, out)
	}

	// A restart keeps the credentials and does not show them again.
	s.proc.signal(os.Interrupt, 30*time.Second)
	s2 := startServer(t, how{ownRoot: true}, "serve", "--data-dir", dataDir)
	// It says where they are instead.
	testkit.WaitFor(t, 10*time.Second, "the restarted server to say where the credentials are", func() bool {
		return strings.Contains(s2.proc.stdout.String(), "icebox root credentials are in "+path+" ")
	})
	if strings.Contains(s2.proc.stdout.String(), "AWS_SECRET_ACCESS_KEY") || strings.Contains(s2.proc.stdout.String(), secret) {
		t.Error("credentials shown again on restart")
	}
	s = s2
	if out := cli("status"); !strings.Contains(out, "concurrent executions") {
		t.Errorf("status after restart: %s", out)
	}
	// Networks live in the engine.
	if out := cli("networks", "list"); !strings.Contains(out, "db") || strings.Contains(out, "meta") {
		t.Errorf("networks after restart: %s", out)
	}
	cli("networks", "delete", "db")
	if out := cli("networks", "list"); strings.Contains(out, "db") {
		t.Errorf("deleted network listed: %s", out)
	}
}
