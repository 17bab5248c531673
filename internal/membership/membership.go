// Package membership registers an icebox node in the cluster: every node
// keeps an entry in the "nodes" KV bucket fresh with a heartbeat, and the
// bucket's TTL removes the entry of a node that stopped heartbeating (killed,
// cut off from the engine), so the survivors see it gone within TTL.
//
// The last heartbeat's outcome is also the node's view of its engine: Ready
// answers from it without a round trip, so a health probe costs nothing.
package membership

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/engine"
	"icebox/internal/errdefs"
)

// Bucket is the KV bucket holding one entry per live node.
const Bucket = "nodes"

// Config configures a node's membership.
type Config struct {
	// NodeID names the node; see NodeID for a stable one per data dir.
	NodeID string
	// Address is where the node's API is reached (shown by `icebox status`).
	Address string
	// Heartbeat is the interval between heartbeats. Default 2s.
	Heartbeat time.Duration
	// TTL is how long an entry outlives its last heartbeat, and how long
	// the node stays ready without a successful one. Default 5×Heartbeat.
	TTL time.Duration
	// Report fills the node's entry with what it runs now (environments by
	// state); nil reports nothing.
	Report func(*Node)
	// Live, when set, is told after each heartbeat how many nodes are live
	// (see Membership.Live), so the node can take its share of limits the
	// cluster holds together.
	Live func(n int)
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if !validID.MatchString(c.NodeID) {
		return fmt.Errorf("membership: node id %q: want 1-64 of [A-Za-z0-9_-]: %w", c.NodeID, errdefs.ErrInvalid)
	}
	if c.Heartbeat < 0 || c.TTL < 0 || (c.TTL > 0 && c.Heartbeat > 0 && c.TTL < 2*c.Heartbeat) {
		return fmt.Errorf("membership: TTL %s must be at least twice the heartbeat %s: %w", c.TTL, c.Heartbeat, errdefs.ErrInvalid)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Heartbeat == 0 {
		c.Heartbeat = 2 * time.Second
	}
	if c.TTL == 0 {
		c.TTL = 5 * c.Heartbeat
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// validID keeps ids usable as KV keys and in metrics labels.
var validID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Node is one node's entry.
type Node struct {
	ID            string         `json:"id"`
	Address       string         `json:"address"`
	Started       time.Time      `json:"started"`
	LastHeartbeat time.Time      `json:"lastHeartbeat"`
	Environments  map[string]int `json:"environments,omitempty"`
	// Leases are the concurrency units the node holds, by admission pool
	// (account, fn.NAME, prov.NAME).
	Leases map[string]int `json:"leases,omitempty"`
}

// Membership is this node's registration.
type Membership struct {
	cfg     Config
	kv      jetstream.KeyValue
	log     *slog.Logger
	started time.Time
	stop    context.CancelFunc
	done    chan struct{}

	leaveOnce sync.Once

	mu sync.Mutex
	// lastOK is when a heartbeat last reached the engine; lastErr is the
	// error of the last one that did not (nil after a success).
	lastOK  time.Time
	lastErr error
	// heard is each node's last heartbeat as the bucket's watch delivered
	// it, this node's own included.
	heard map[string]time.Time
}

// Join opens the bucket, writes the node's first heartbeat and keeps it
// fresh until Leave.
func Join(ctx context.Context, js jetstream.JetStream, cfg Config, log *slog.Logger) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// A bucket made by nodes with another TTL is opened as it is: entries
	// expire by theirs, and Nodes drops stale ones by this node's.
	kv, err := engine.OpenKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "icebox nodes: one entry per live node, removed TTL after its last heartbeat",
		History:     1,
		TTL:         cfg.TTL,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("membership: open bucket %s: %w: %w", Bucket, errdefs.ErrUnavailable, err)
	}
	m := &Membership{cfg: cfg, kv: kv, log: log, started: cfg.Now(), done: make(chan struct{}), heard: map[string]time.Time{}}
	if err := m.beat(ctx); err != nil {
		return nil, fmt.Errorf("membership: first heartbeat: %w: %w", errdefs.ErrUnavailable, err)
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	w, err := kv.WatchAll(bg)
	if err != nil {
		stop()
		return nil, fmt.Errorf("membership: watch bucket %s: %w: %w", Bucket, errdefs.ErrUnavailable, err)
	}
	m.stop = stop
	go m.watch(w)
	go m.loop(bg)
	return m, nil
}

// ID is the node's id.
func (m *Membership) ID() string { return m.cfg.NodeID }

func (m *Membership) loop(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		failing := m.failing()
		// A put may take longer than the interval (a leader election);
		// ticks missed meanwhile are dropped.
		bctx, cancel := context.WithTimeout(ctx, m.cfg.TTL/2)
		err := m.beat(bctx)
		cancel()
		// Logged on the change only: an outage would log every beat.
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			m.log.Warn("membership: heartbeat failed; the node stops being ready after TTL", "node", m.cfg.NodeID, "ttl", m.cfg.TTL, "err", err)
		case err == nil && failing:
			m.log.Info("membership: heartbeats reach the engine again", "node", m.cfg.NodeID)
		}
		if m.cfg.Live != nil {
			m.cfg.Live(m.Live())
		}
	}
}

// watch follows the bucket: every heartbeat of every node arrives as an
// update, so Live needs no round trip. Entries the bucket's TTL removes
// arrive as nothing at all; Live ages them out by their last heartbeat.
func (m *Membership) watch(w jetstream.KeyWatcher) {
	defer w.Stop()
	for e := range w.Updates() {
		if e == nil {
			continue // the end of the initial values
		}
		var n Node
		put := e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &n) == nil
		m.mu.Lock()
		if put {
			m.heard[e.Key()] = n.LastHeartbeat
		} else {
			delete(m.heard, e.Key())
		}
		m.mu.Unlock()
	}
}

// Live is how many nodes have heartbeated within TTL, this one included:
// the count nodes divide the cluster's scaling limits by.
func (m *Membership) Live() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	now, n := m.cfg.Now(), 0
	for id, hb := range m.heard {
		if id == m.cfg.NodeID || now.Sub(hb) <= m.cfg.TTL {
			n++
		}
	}
	return max(n, 1)
}

func (m *Membership) failing() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr != nil
}

// beat writes the node's entry and records the outcome for Ready.
func (m *Membership) beat(ctx context.Context) error {
	n := Node{ID: m.cfg.NodeID, Address: m.cfg.Address, Started: m.started, LastHeartbeat: m.cfg.Now().UTC()}
	if m.cfg.Report != nil {
		m.cfg.Report(&n)
	}
	b, err := json.Marshal(n)
	if err == nil {
		_, err = m.kv.Put(ctx, m.cfg.NodeID, b)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.lastErr = err
		return err
	}
	m.lastOK, m.lastErr = m.cfg.Now(), nil
	return nil
}

// Ready reports whether the node's last heartbeat reached the engine within
// TTL. Past that, the cluster has dropped the node's entry (and with it
// anything granted to it), so the node must not act as a member.
func (m *Membership) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if age := m.cfg.Now().Sub(m.lastOK); age > m.cfg.TTL {
		return fmt.Errorf("no heartbeat reached the engine for %s (%v): %w", age.Round(time.Second), m.lastErr, errdefs.ErrUnavailable)
	}
	return nil
}

// Nodes lists the live nodes by id: entries whose heartbeat is within TTL.
func (m *Membership) Nodes(ctx context.Context) ([]Node, error) {
	lister, err := m.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("membership: list: %w: %w", errdefs.ErrUnavailable, err)
	}
	defer lister.Stop()
	var nodes []Node
	now := m.cfg.Now()
	for key := range lister.Keys() {
		e, err := m.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // left or expired meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("membership: get %s: %w: %w", key, errdefs.ErrUnavailable, err)
		}
		var n Node
		if json.Unmarshal(e.Value(), &n) != nil || now.Sub(n.LastHeartbeat) > m.cfg.TTL {
			continue
		}
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	return nodes, nil
}

// Leave stops heartbeating and removes the node's entry, so the others see
// it gone at once rather than after TTL.
// Calls after the first do nothing.
func (m *Membership) Leave(ctx context.Context) error {
	var err error
	m.leaveOnce.Do(func() {
		m.stop()
		<-m.done
		if err = m.kv.Delete(ctx, m.cfg.NodeID); err != nil {
			err = fmt.Errorf("membership: leave: %w", err)
		}
	})
	return err
}

// NodeID returns the node id kept in dataDir/node-id, creating it on first
// use: a node keeps its id across restarts on the same data dir.
func NodeID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "node-id")
	if b, err := os.ReadFile(path); err == nil {
		id := strings.TrimSpace(string(b))
		if !validID.MatchString(id) {
			return "", fmt.Errorf("membership: %s holds %q, not a node id: %w", path, id, errdefs.ErrInvalid)
		}
		return id, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("membership: %w", err)
	}
	var b [6]byte
	rand.Read(b[:])
	id := "n-" + hex.EncodeToString(b[:])
	// Written whole or not at all: a crash leaves no half id.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("membership: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("membership: %w", err)
	}
	return id, nil
}
