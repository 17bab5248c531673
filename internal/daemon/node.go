package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/admission"
	"icebox/internal/api"
	"icebox/internal/errdefs"
	"icebox/internal/invoke"
	"icebox/internal/membership"
	"icebox/internal/model"
)

// The node's place in a cluster: its membership entry, its readiness, and
// the gate that stops calls once the cluster has dropped it.

// Readiness reasons /readyz gives. Fixed strings: the probe is public.
const (
	notReadyStarting     = "starting"
	notReadyShuttingDown = "shutting down"
	notReadyEngine       = "engine unreachable"
	notReadyDisconnected = "engine disconnected"
	notReadyAdmission    = "admission unavailable"
)

// errEngineGone answers calls on a node that has lost its engine for longer
// than the membership TTL.
var errEngineGone = fmt.Errorf("this icebox node has not reached its engine for longer than its membership TTL and takes no calls; retry on another node: %w", errdefs.ErrUnavailable)

// admitter is admission as the daemon uses it: a Counter on an embedded
// engine (one node), Leases on an external one (a cluster).
type admitter interface {
	invoke.Admission
	api.Account
	SetReservation(name string, r *int)
	SetProvisioned(name string, n int)
	CheckReservation(name string, r int) error
	CheckProvisioned(name string, reserved *int, n int) error
}

// admission makes the node's admission: nodes on an external engine share
// its limits through leases; an embedded engine has one node, whose
// in-process counter decides alone (no engine on the hot path at all).
func (d *Daemon) admission(ctx context.Context, js jetstream.JetStream) (admitter, error) {
	cfg := admission.Config{AccountLimit: d.cfg.AccountConcurrency, UnreservedMin: d.cfg.UnreservedMin}
	if d.cfg.NatsURL == "" {
		return admission.New(cfg)
	}
	id, err := membership.NodeID(d.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	ttl := d.cfg.NodeTTL
	if ttl == 0 && d.cfg.NodeHeartbeat > 0 {
		ttl = 5 * d.cfg.NodeHeartbeat // membership's default
	}
	l, err := admission.NewLeases(ctx, js, admission.LeaseConfig{Config: cfg, NodeID: id, TTL: ttl}, d.log)
	if err != nil {
		return nil, err
	}
	d.leases = l
	return l, nil
}

// join registers the node in the cluster, serving at addr.
func (d *Daemon) join(ctx context.Context, addr net.Addr) error {
	id, err := membership.NodeID(d.cfg.DataDir)
	if err != nil {
		return err
	}
	m, err := membership.Join(ctx, d.engine.JetStream(), membership.Config{
		NodeID: id, Address: advertised(addr), Heartbeat: d.cfg.NodeHeartbeat, TTL: d.cfg.NodeTTL,
		Report: func(n *membership.Node) {
			n.Environments = d.pool.Counts()
			if d.leases != nil {
				n.Leases = d.leases.Held()
			}
		},
		// Each node allows its share of the functions' scaling rates.
		Live: d.pool.SetNodes,
	}, d.log)
	if err != nil {
		return err
	}
	d.member.Store(m)
	return nil
}

// NodeID is the node's id in the cluster ("" before it joined).
func (d *Daemon) NodeID() string {
	if m := d.member.Load(); m != nil {
		return m.ID()
	}
	return ""
}

// notReady is /readyz's answer: "" when the node should take calls.
func (d *Daemon) notReady() string {
	m := d.member.Load()
	switch {
	case d.draining.Load():
		return notReadyShuttingDown
	case m == nil:
		return notReadyStarting
	case m.Ready() != nil:
		return notReadyEngine
	case !d.engine.Connected():
		// A reconnect to another server of the cluster usually takes
		// milliseconds; a balancer sees the node unready meanwhile.
		return notReadyDisconnected
	case d.leases != nil && d.leases.Ready() != nil:
		// The leases bucket does not answer (say its stream lost its
		// leader): no unit can be granted or renewed here.
		return notReadyAdmission
	}
	return ""
}

// leave removes the node's entry on shutdown, so the others see it gone at
// once instead of after TTL.
func (d *Daemon) leave() {
	m := d.member.Load()
	if m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := m.Leave(ctx); err != nil {
		d.log.Warn("leaving the cluster; the node's entry expires by TTL", "err", err)
	}
}

// gatedInvoker refuses calls once the node's heartbeats have not reached the
// engine for TTL: the cluster has dropped the node by then, and with it what
// admission granted it, so admitting more would break cluster-wide limits
// (and their logs could not be stored). Until then, a short engine outage is
// ridden out: the catalog is cached and the hot path needs no engine. An
// embedded engine is never gated: there is no other node to go to, and its
// admission does not use the engine (a heartbeat held up by a busy host
// must not fail calls).
type gatedInvoker struct {
	api.Invoker
	d *Daemon
}

func (g gatedInvoker) Invoke(ctx context.Context, req invoke.Request) (model.Result, error) {
	if m := g.d.member.Load(); m != nil && g.d.cfg.NatsURL != "" && m.Ready() != nil {
		return model.Result{}, errEngineGone
	}
	return g.Invoker.Invoke(ctx, req)
}

// advertised is the API address others should use: the listener's, with
// the host name instead of an unspecified address (0.0.0.0, ::).
func advertised(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return addr.String()
	}
	host, err := os.Hostname()
	if err != nil {
		return addr.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}
