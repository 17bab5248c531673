package enginetest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// clusterReadyTimeout bounds the wait for a JetStream meta leader. A fresh
// cluster has one in about 0.3 s; after its leader stopped, nats-server's
// election timeout (4–9 s, not configurable from outside its package) passes
// first.
const clusterReadyTimeout = 30 * time.Second

// NATSCluster is a JetStream cluster of in-process nats-servers on loopback,
// started by Cluster. Each server has its own store dir and fixed ports
// (reserved at random), so a stopped server restarts as the same
// peer.
type NATSCluster struct {
	t       testing.TB
	name    string
	servers []*ClusterServer
}

// ClusterServer is one server of a NATSCluster.
type ClusterServer struct {
	c    *NATSCluster
	opts server.Options // ports fixed after the first start

	mu sync.Mutex
	ns *server.Server // nil while stopped
}

// Cluster starts an n-server JetStream cluster on 127.0.0.1 and waits until it
// has a meta leader. With n = 1 the server is standalone (an external engine
// that can be stopped and restarted). Every server is shut down at the end of the test.
func Cluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	c := &NATSCluster{t: t, name: fmt.Sprintf("icebox-test-%d", time.Now().UnixNano())}
	// JetStream in a cluster needs its routes configured at start, so the
	// ports are reserved first (client ports too: one chosen at random
	// while starting could take a route port reserved for a later server).
	// Every server routes to all route ports, its own included (a server
	// ignores the route to itself).
	ports := freePorts(t, 2*n)
	routes := make([]*url.URL, n)
	for i := range routes {
		routes[i] = &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[n+i])}
	}
	// Store dirs first: cleanups run last-in first-out, and the servers
	// must stop before their dirs are removed.
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	t.Cleanup(func() {
		for _, s := range c.servers {
			s.Stop()
		}
	})
	for i := range n {
		s := &ClusterServer{c: c, opts: server.Options{
			ServerName: fmt.Sprintf("n%d", i),
			Host:       "127.0.0.1",
			Port:       ports[i],
			JetStream:  true,
			StoreDir:   dirs[i],
			NoLog:      true,
			NoSigs:     true,
			MaxPayload: 8 << 20, // as the embedded engine: 1 MiB async events fit
		}}
		if n > 1 {
			s.opts.Cluster = server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: port(routes[i])}
			s.opts.Routes = routes
		}
		c.servers = append(c.servers, s)
		s.start()
	}
	c.WaitLeader()
	return c
}

// URL is the comma-separated client URLs of all servers, as engine.Config.URL
// takes them.
func (c *NATSCluster) URL() string {
	urls := make([]string, len(c.servers))
	for i, s := range c.servers {
		urls[i] = s.URL()
	}
	return strings.Join(urls, ",")
}

// Server returns the i-th server.
func (c *NATSCluster) Server(i int) *ClusterServer { return c.servers[i] }

// WaitLeader waits until the cluster has a JetStream meta leader that sees
// every running server as a current peer, so placing an asset with as many
// replicas as there are running servers succeeds.
func (c *NATSCluster) WaitLeader() {
	c.t.Helper()
	if len(c.servers) == 1 {
		return // a single server is standalone: JetStream needs no leader
	}
	deadline := time.Now().Add(clusterReadyTimeout)
	for time.Now().Before(deadline) {
		running := 0
		var leader *server.Server
		for _, s := range c.servers {
			if ns := s.server(); ns != nil {
				running++
				if ns.JetStreamIsLeader() {
					leader = ns
				}
			}
		}
		if leader != nil && len(leader.JetStreamClusterPeers()) == running {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("nats cluster: no JetStream meta leader after %s", clusterReadyTimeout)
}

// StreamLeader returns the index of the server leading the global account's
// stream (KV bucket "B" is stream "KV_B", object store "O" is "OBJ_O"), or -1.
func (c *NATSCluster) StreamLeader(stream string) int {
	for i, s := range c.servers {
		if ns := s.server(); ns != nil && ns.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// URL is the server's client URL (stable across restarts).
func (s *ClusterServer) URL() string {
	return fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port)
}

// Stop shuts the server down without handing its Raft leaderships over, as a
// crash would (minus lost disk writes); a no-op when already stopped. Streams
// it led elect a new leader after nats-server's election timeout (4–9 s).
func (s *ClusterServer) Stop() {
	s.mu.Lock()
	ns := s.ns
	s.ns = nil
	s.mu.Unlock()
	if ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// Restart starts a stopped server again on its ports and store dir and waits
// until it accepts clients.
func (s *ClusterServer) Restart() {
	s.c.t.Helper()
	s.Stop()
	s.start()
}

func (s *ClusterServer) server() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ns
}

// freePorts returns n distinct loopback TCP ports that were free a moment ago,
// chosen below the kernel's ephemeral range: a port from that range, free
// when reserved, could be taken by another test's listener on port 0 or an
// outgoing connection before its server binds it.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	low := 32768 // Linux's default ip_local_port_range starts here
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 12000 {
				low = v
			}
		}
	}
	const floor = 10000 // above the well-known and common service ports
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries == 10000 {
			t.Fatalf("reserve ports: no %d free ports in %d–%d", n, floor, low-1)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", floor+rand.IntN(low-floor)))
		if err != nil {
			continue // taken
		}
		defer l.Close() // held until all are chosen, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func port(u *url.URL) int {
	p, _ := strconv.Atoi(u.Port())
	return p
}

func (s *ClusterServer) start() {
	t := s.c.t
	t.Helper()
	opts := s.opts // NewServer keeps and mutates its options
	ns, err := server.NewServer(&opts)
	if err != nil {
		t.Fatalf("nats-server %s: %v", s.opts.ServerName, err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		t.Fatalf("nats-server %s not ready", s.opts.ServerName)
	}
	s.mu.Lock()
	s.ns = ns
	s.mu.Unlock()
}
