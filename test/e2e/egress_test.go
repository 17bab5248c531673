package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"icebox/internal/daemon"
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
	th.RouteFrom(t, s.d.EgressBridge())
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

// fetchResult is what each fetcher (testdata/fn's "fetch", fetchPython,
// fetchNode) returns per URL.
type fetchResult struct {
	Status int    `json:"status"`
	Bytes  int64  `json:"bytes"`
	Head   string `json:"head"`
	Error  string `json:"error"`
}

const fetchPython = `import urllib.request

def handler(event, context):
    out = {}
    for u in event["urls"]:
        try:
            with urllib.request.urlopen(u, timeout=20) as r:
                head, n = b"", 0
                while True:
                    b = r.read(1 << 20)
                    if not b:
                        break
                    head, n = head or b[:64], n + len(b)
                out[u] = {"status": r.status, "bytes": n, "head": head.decode()}
        except Exception as e:
            out[u] = {"error": repr(e)}
    return out
`

const fetchNode = `const http = require('http');
const get = (u) => new Promise((resolve) => {
  http.get(u, (r) => {
    let n = 0, head = '';
    r.on('data', (c) => { if (!head) head = c.subarray(0, 64).toString(); n += c.length; });
    r.on('end', () => resolve({ status: r.statusCode, bytes: n, head }));
  }).on('error', (e) => resolve({ error: String(e) }));
});
exports.handler = async (event) => {
  const out = {};
  for (const u of event.urls) out[u] = await get(u);
  return out;
};
`

// TestEgressFetch: an aws-lambda-go, a Python and a Node.js function each
// fetch a page by a name the test's resolver serves and a 50 MB download
// from the test host; the bytes show in icebox_network_received_bytes_total.
// Then a function in a network (VpcConfig, set with the AWS CLI) reaches
// that network and nothing else.
func TestEgressFetch(t *testing.T) {
	th := egresstest.New(t)
	s := startServer(t, func(c *daemon.Config) {
		c.Egress, c.EgressDNS = daemon.EgressNAT, []netip.Addr{netip.MustParseAddr(th.Addr)}
	})
	th.RouteFrom(t, s.d.EgressBridge())
	const size = 50 << 20
	page := "http://page.egress.test/" // the test's resolver answers th.Addr for every name
	download := fmt.Sprintf("http://%s/bytes/%d", th.Addr, size)
	fetchers := map[string]func(*lambda.CreateFunctionInput){
		"fetch-go": func(in *lambda.CreateFunctionInput) {},
		"fetch-python": func(in *lambda.CreateFunctionInput) {
			needPython(t)
			in.Runtime, in.Handler = types.RuntimePython311, aws.String("app.handler")
			in.Code.ZipFile = zipOf(map[string][]byte{"app.py": []byte(fetchPython)})
		},
		"fetch-node": func(in *lambda.CreateFunctionInput) {
			needNode(t)
			in.Runtime, in.Handler = types.RuntimeNodejs20x, aws.String("index.handler")
			in.Code.ZipFile = zipOf(map[string][]byte{"index.js": []byte(fetchNode)})
		},
	}
	for name, runtime := range fetchers {
		t.Run(name, func(t *testing.T) {
			s.create(name, runtime, withTimeout(60), func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(256) })
			out := s.invoke(name, map[string]any{"action": "fetch", "urls": []string{page, download}})
			var got map[string]fetchResult
			if out.FunctionError != nil || json.Unmarshal(out.Payload, &got) != nil {
				t.Fatalf("%s: %s", aws.ToString(out.FunctionError), out.Payload)
			}
			if r := got[page]; r.Status != 200 || r.Head != "hello from page.egress.test" {
				t.Errorf("%s: %+v, want the test host's page", page, r)
			}
			if r := got[download]; r.Status != 200 || r.Bytes != size {
				t.Errorf("%s: %+v, want %d bytes", download, r, size)
			}
			if in := metric(t, s, "icebox_network_received_bytes_total", `{function="`+name+`"}`); in < size {
				t.Errorf("icebox_network_received_bytes_total = %v, want at least %d", in, size)
			}
			if sent := metric(t, s, "icebox_network_sent_bytes_total", `{function="`+name+`"}`); sent <= 0 {
				t.Errorf("icebox_network_sent_bytes_total = %v, want the requests counted", sent)
			}
		})
	}

	// A network holding only the test host's second address, without NAT.
	body := strings.NewReader(fmt.Sprintf(`{"Cidrs":["%s/32"]}`, th.Private))
	req, _ := http.NewRequest("PUT", s.url+"/icebox/v1/networks/db", body)
	if resp, err := signingClient().Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("put network: %v %v", resp, err)
	}
	cli := newAWSCLI(t, s)
	var cfg struct {
		VpcConfig struct {
			SubnetIds, SecurityGroupIds []string
			VpcId                       string
		}
	}
	cli.json(&cfg, "lambda", "update-function-configuration", "--function-name", "fetch-go", "--vpc-config", "SubnetIds=db,SecurityGroupIds=sg-1")
	cli.json(&cfg, "lambda", "get-function-configuration", "--function-name", "fetch-go")
	if v := cfg.VpcConfig; len(v.SubnetIds) != 1 || v.SubnetIds[0] != "db" || len(v.SecurityGroupIds) != 1 || v.VpcId != "vpc-icebox" {
		t.Errorf("VpcConfig read back by the AWS CLI: %+v", v)
	}
	private := "http://" + th.Private + "/"
	public := "http://" + th.Addr + "/"
	out := s.invoke("fetch-go", map[string]any{"action": "fetch", "urls": []string{private, public}})
	var got map[string]fetchResult
	_ = json.Unmarshal(out.Payload, &got)
	if r := got[private]; r.Status != 200 {
		t.Errorf("in the network, %s: %+v, want its page", private, r)
	}
	if r := got[public]; r.Error == "" || !strings.Contains(r.Error, "refused") {
		t.Errorf("in the network, %s: %+v, want refused", public, r)
	}
}
