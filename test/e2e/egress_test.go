package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"icebox/internal/daemon"
	sblinux "icebox/internal/sandbox/linux"
	"icebox/internal/sandbox/linux/egresstest"
)

// dialReport is what testdata/probe's "dial" action returns.
type dialReport struct {
	Results map[string]struct {
		Status  int     `json:"status"`
		Body    string  `json:"body"`
		Error   string  `json:"error"`
		Refused bool    `json:"refused"`
		Seconds float64 `json:"seconds"`
	} `json:"results"`
	ResolvConf string `json:"resolvConf"`
	Hosts      string `json:"hosts"`
}

// egressBridge names the bridge of the daemon serving dataDir: the sandbox
// manager's, named after the cgroup parent the daemon gives it, itself
// named after the data dir's id (kept in its lock file).
func egressBridge(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "icebox.lock"))
	if err != nil {
		t.Fatal(err)
	}
	var id string
	if _, err := fmt.Sscanf(string(b), "id %s", &id); err != nil {
		t.Fatalf("lock file %q: %v", b, err)
	}
	return sblinux.EgressBridge("icebox/" + id)
}

func withTimeout(sec int32) func(*lambda.CreateFunctionInput) {
	return func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(sec) }
}

// hostService listens on every address of the host and accepts until the
// test ends: what a sandbox must never reach, however it spells the host.
func hostService(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// TestEgress: with `--egress nat` a function fetches a page from a host
// "on the internet" (a test host, see egresstest), and is refused, at once,
// a service of the host's by a host interface address, cloud metadata and
// a private address; its /etc/hosts has localhost and its resolv.conf the
// host's nameservers.
func TestEgress(t *testing.T) {
	th := egresstest.New(t)
	s := startServer(t, func(c *daemon.Config) { c.Egress = daemon.EgressNAT })
	th.RouteFrom(t, egressBridge(t, s.cfg.DataDir))
	port := hostService(t)

	page := "http://" + th.Addr + "/"
	refused := []string{
		fmt.Sprintf("http://%s:%d/", th.Gateway, port),
		"http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.1/",
	}
	s.create("net", withProbe(t, nil), withTimeout(30))
	var r dialReport
	s.invokeJSON("net", map[string]any{"action": "dial", "urls": append([]string{page}, refused...)}, &r)
	t.Logf("%+v", r)
	if got := r.Results[page]; got.Status != 200 || got.Body != "hello from "+th.Addr {
		t.Errorf("%s: %+v, want the test host's page", page, got)
	}
	for _, u := range refused {
		got := r.Results[u]
		if !got.Refused || got.Seconds >= 1 {
			t.Errorf("%s: %+v, want refused in under 1 s", u, got)
		}
	}
	if !strings.Contains(r.Hosts, "127.0.0.1\tlocalhost") {
		t.Errorf("/etc/hosts = %q, want localhost", r.Hosts)
	}
	if !strings.Contains(r.ResolvConf, "nameserver ") {
		t.Logf("no IPv4 nameserver on the host: resolv.conf = %q", r.ResolvConf)
	}
}

// TestEgressNone: by default a function has its loopback only; a dial out
// fails at once (no route), it does not hang.
func TestEgressNone(t *testing.T) {
	s := startServer(t)
	page := "http://198.18.0.2/" // nothing holds it; there is no route to it either
	s.create("net", withProbe(t, nil), withTimeout(30))
	var r dialReport
	s.invokeJSON("net", map[string]any{"action": "dial", "urls": []string{page}}, &r)
	if got := r.Results[page]; got.Status != 0 || !got.Refused || got.Seconds >= 1 {
		t.Errorf("%s: %+v, want unreachable at once", page, got)
	}
}
