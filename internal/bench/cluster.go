package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"icebox/internal/admission"

	"icebox/internal/daemon"
)

// The cluster rows (--cluster): sync Invoke throughput of one function at
// ClusterCallers SDK callers through one node on its embedded engine (the
// floor), then through ClusterNodes in-process nodes, each with its own
// data dir, on one external JetStream started here. Every node on an
// external engine holds the account limit cluster-wide with leases
// (internal/admission); the rows differ in how often the leases need the
// engine: a roomy limit is granted once, a tight one makes nodes trade
// units. On one host the nodes share its cores, so these rows show the cost
// of clustering, not its gain (docs/cluster.md).

// Row ids of the cluster rows.
const (
	RowClusterOne     = "cluster_1_node"             // embedded engine: the floor
	RowClusterOneExt  = "cluster_1_of_3_nodes"       // every caller on one node of the cluster
	RowClusterNodes   = "cluster_3_nodes"            // round-robin over the nodes, roomy limit
	RowClusterLimited = "cluster_3_nodes_held_limit" // round-robin, tight limit held by leases
)

// Defaults of the cluster rows.
const (
	ClusterNodes        = 3
	ClusterCallers      = 32
	clusterRoomyLimit   = 256 // leases granted in chunks of 16: no trading
	clusterLimitPercent = 150 // the tight limit: callers + 50%
)

// clusterLimit is the tight account limit for c callers.
func clusterLimit(c int) int { return c * clusterLimitPercent / 100 }

// cluster is the nodes on one external engine.
type cluster struct {
	ns      *server.Server
	js      jetstream.JetStream // the bench's own connection, to count lease writes
	dirs    []string
	nodes   []*daemon.Daemon
	clients []*lambda.Client
}

// startNATS runs a standalone JetStream server on a free loopback port, as
// an operator's external engine (max_payload raised as docs/cluster.md
// says).
func startNATS(dir string) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{
		ServerName: "bench",
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("nats-server: not ready after 10s")
	}
	return ns, nil
}

// startNodes starts len(c.dirs) daemons on c.ns with account limit limit,
// all with the target's credentials.
func (r *run) startNodes(ctx context.Context, c *cluster, limit int, key, secret string) error {
	for _, dir := range c.dirs {
		dcfg := daemon.Config{
			Listen:              "127.0.0.1:0",
			DataDir:             dir,
			NatsURL:             c.ns.ClientURL(),
			IdleTimeout:         time.Hour,
			ShutdownTimeout:     time.Minute,
			AccountConcurrency:  limit,
			MemoryBudgetMB:      clusterRoomyLimit * 128 * 2,
			ScaleBurst:          clusterRoomyLimit,
			ScaleRate:           clusterRoomyLimit,
			RootAccessKeyID:     key,
			RootSecretAccessKey: secret,
		}
		d, err := daemon.Start(ctx, dcfg, r.cfg.Log)
		if err != nil {
			return fmt.Errorf("start cluster node: %w", err)
		}
		c.nodes = append(c.nodes, d)
		c.clients = append(c.clients, r.t.clientFor("http://"+d.Addr()))
	}
	return nil
}

// leaseWrites is how many writes the admission bucket has had (grants,
// renewals, returns: each a compare-and-set on the engine).
func (c *cluster) leaseWrites(ctx context.Context) (uint64, error) {
	st, err := c.js.Stream(ctx, "KV_"+admission.LeaseBucket)
	if err != nil {
		return 0, fmt.Errorf("lease bucket: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("lease bucket: %w", err)
	}
	return info.State.LastSeq, nil
}

// stopNodes shuts the cluster's daemons down (the engine keeps running).
func (c *cluster) stopNodes() error {
	var err error
	for _, d := range c.nodes {
		err = errors.Join(err, d.Shutdown())
	}
	c.nodes, c.clients = nil, nil
	return err
}

// RunCluster measures the cluster rows only (icebox-bench --cluster). The
// single node stays up beside the cluster and is measured in rounds that
// alternate with each cluster row's, so both see the same noise from
// whatever else the host runs.
func RunCluster(ctx context.Context, cfg Config) (_ *Report, err error) {
	cfg.Cluster = true
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, start: time.Now()}
	if r.dir, err = workDir(); err != nil {
		return nil, err
	}
	defer os.RemoveAll(r.dir)
	rep := &Report{Machine: machine(), Mode: "in-process cluster", Started: time.Now()}
	callers := ClusterCallers
	each := plural(callers, "caller")

	// One node on its embedded engine: the floor of the others.
	r.progress("1 node, embedded engine")
	if r.t, err = startTarget(ctx, &r.cfg, filepath.Join(r.dir, "single"), false); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, r.t.d.Shutdown()) }()
	if r.stub, err = startInvokeStub(); err != nil {
		return nil, err
	}
	defer r.stub.close()
	fn := r.t.prefix + "echo"
	if err := r.t.create(ctx, fn, cfg.EchoZip, 3*time.Second); err != nil {
		return nil, err
	}
	creds, err := r.t.creds.Retrieve(ctx)
	if err != nil {
		return nil, err
	}

	// The nodes on one external engine.
	c := &cluster{}
	if c.ns, err = startNATS(filepath.Join(r.dir, "nats")); err != nil {
		return nil, err
	}
	defer func() {
		err = errors.Join(err, c.stopNodes())
		c.ns.Shutdown()
		c.ns.WaitForShutdown()
	}()
	nc, err := nats.Connect(c.ns.ClientURL())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if c.js, err = jetstream.New(nc); err != nil {
		return nil, err
	}
	for i := range ClusterNodes {
		c.dirs = append(c.dirs, filepath.Join(r.dir, fmt.Sprintf("node%d", i)))
	}
	r.progress("%d nodes on one external JetStream, account limit %d", ClusterNodes, clusterRoomyLimit)
	if err := r.startNodes(ctx, c, clusterRoomyLimit, creds.AccessKeyID, creds.SecretAccessKey); err != nil {
		return nil, err
	}
	if _, err := c.clients[0].CreateFunction(ctx, createInput(fn, cfg.EchoZip)); err != nil {
		return nil, fmt.Errorf("create function on the cluster: %w", err)
	}
	if err := waitEverywhere(ctx, c.clients, fn); err != nil {
		return nil, err
	}
	single := &arm{clients: []*lambda.Client{r.t.lambda}}
	ext := &arm{clients: c.clients[:1], c: c}
	all := &arm{clients: c.clients, c: c}
	r.progress("  %s: 1 node, 1 of %d, round-robin over %d; %d alternating rounds in %v each", each, ClusterNodes, ClusterNodes, clusterRounds, cfg.ThroughputTime)
	if err := r.measureArms(ctx, fn, callers, single, ext, all); err != nil {
		return nil, err
	}
	one := single.stat()
	quiesce()
	stubLambda := r.t.clientFor(r.stub.url)
	frate, flat, bad, ferr := load(ctx, callers, cfg.ThroughputTime, func(ctx context.Context) error { return invokeWith(ctx, stubLambda, fn, payload) })
	if bad > 0 {
		return nil, fmt.Errorf("SDK floor: %d calls failed: %w", bad, ferr)
	}
	floorName := "1 node, embedded engine (in rounds alternating with this row's)"
	rep.Rows = append(rep.Rows,
		Row{ID: RowClusterOne, Name: "sync invokes, " + each + ", 1 node (embedded engine)", Unit: UnitLoad, Result: one,
			FloorName: sdkFloorName + ", " + each, Floor: loadStat(frate, flat, 0)},
		Row{ID: RowClusterOneExt,
			Name: fmt.Sprintf("sync invokes, %s, 1 of %d nodes on one external JetStream (leases, account limit %d)", each, ClusterNodes, clusterRoomyLimit),
			Unit: UnitLoad, Result: ext.stat(), FloorName: floorName, Floor: one,
			Note: "the other nodes idle; " + ext.writesNote()},
		Row{ID: RowClusterNodes,
			Name: fmt.Sprintf("sync invokes, %s round-robin over %d nodes on one external JetStream (leases, account limit %d)", each, ClusterNodes, clusterRoomyLimit),
			Unit: UnitLoad, Result: all.stat(), FloorName: floorName, Floor: one,
			Note: "on one host: the overhead of clustering, not its gain; " + all.writesNote()})

	// The same nodes restarted (same data dirs, same node ids) with an
	// account limit the callers come close to.
	limit := clusterLimit(callers)
	r.progress("%d nodes restarted with account limit %d", ClusterNodes, limit)
	if err := c.stopNodes(); err != nil {
		return nil, err
	}
	if err := r.startNodes(ctx, c, limit, creds.AccessKeyID, creds.SecretAccessKey); err != nil {
		return nil, err
	}
	if err := waitEverywhere(ctx, c.clients, fn); err != nil {
		return nil, err
	}
	single2 := &arm{clients: []*lambda.Client{r.t.lambda}}
	held := &arm{clients: c.clients, c: c, throttles: true}
	if err := r.measureArms(ctx, fn, callers, single2, held); err != nil {
		return nil, err
	}
	note := "throttled calls (429) count as failed"
	if held.failed == 0 {
		note = "no call throttled"
	}
	rep.Rows = append(rep.Rows, Row{ID: RowClusterLimited,
		Name: fmt.Sprintf("sync invokes, %s round-robin over %d nodes, account limit %d held cluster-wide (leases)", each, ClusterNodes, limit),
		Unit: UnitLoad, Result: held.stat(), FloorName: floorName, Floor: single2.stat(), Note: note + "; " + held.writesNote()})

	r.progress("done")
	rep.Duration = time.Since(rep.Started)
	return rep, nil
}

// clusterRounds is how many rounds each arm's measured time is split into.
const clusterRounds = 4

// arm is one way of calling the function (its clients, each call on the
// next one: round-robin, as a load balancer would) and what it measured.
type arm struct {
	clients   []*lambda.Client
	c         *cluster // counts lease writes; nil: none to count
	throttles bool     // Lambda's 429 counts as a failed call, not an error

	next, throttled atomic.Int64
	lat             samples
	took            time.Duration
	failed          int
	writes          uint64
}

// op calls fn once through the arm's next client.
func (a *arm) op(fn string) func(context.Context) error {
	return func(ctx context.Context) error {
		c := a.clients[int(a.next.Add(1))%len(a.clients)]
		err := invokeWith(ctx, c, fn, payload)
		var tooMany *types.TooManyRequestsException
		if a.throttles && errors.As(err, &tooMany) {
			a.throttled.Add(1)
		}
		return err
	}
}

// run loads fn from callers for d; failures other than allowed throttles
// are an error.
func (a *arm) run(ctx context.Context, fn string, callers int, d time.Duration, keep bool) error {
	a.throttled.Store(0)
	var w0 uint64
	var err error
	if keep && a.c != nil {
		if w0, err = a.c.leaseWrites(ctx); err != nil {
			return err
		}
	}
	start := time.Now()
	_, lat, bad, err := load(ctx, callers, d, a.op(fn))
	took := time.Since(start)
	if bad > 0 && (!a.throttles || int64(bad) != a.throttled.Load()) {
		return fmt.Errorf("%d calls failed: %w", bad, err)
	}
	if !keep {
		return nil
	}
	if a.c != nil {
		w1, err := a.c.leaseWrites(ctx)
		if err != nil {
			return err
		}
		a.writes += w1 - w0
	}
	a.lat = append(a.lat, lat...)
	a.took += took
	a.failed += bad
	return nil
}

func (a *arm) stat() Stat {
	return loadStat(float64(len(a.lat))/a.took.Seconds(), a.lat, a.failed)
}

// writesNote says how often the engine was on the arm's hot path.
func (a *arm) writesNote() string {
	return fmt.Sprintf("%d lease writes to the engine in %s calls", a.writes, formatCount(float64(len(a.lat)+a.failed)))
}

// measureArms warms every arm up (until a round gains no throughput, so
// the measured runs have the environments they need: cold starts are not
// these rows' business), then measures them in alternating rounds.
func (r *run) measureArms(ctx context.Context, fn string, callers int, arms ...*arm) error {
	for _, a := range arms {
		prev := 0.0
		for range 20 {
			start := time.Now()
			if err := a.run(ctx, fn, callers, 300*time.Millisecond, false); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
			rate := float64(a.next.Load()) / time.Since(start).Seconds()
			a.next.Store(0)
			if rate < prev*1.1 {
				break
			}
			prev = rate
		}
	}
	quiesce()
	for range clusterRounds {
		for _, a := range arms {
			if err := a.run(ctx, fn, callers, r.cfg.ThroughputTime/clusterRounds, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitEverywhere waits until fn answers on every node (the catalog reaches
// the others through their KV watch).
func waitEverywhere(ctx context.Context, clients []*lambda.Client, fn string) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range clients {
		for {
			err := invokeWith(ctx, c, fn, payload)
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("function %s not callable on every node: %w", fn, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// createInput is the echo function as target.create makes it.
func createInput(name string, zip []byte) *lambda.CreateFunctionInput {
	return &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		Role:         aws.String("arn:aws:iam::000000000000:role/icebox-bench"),
		MemorySize:   aws.Int32(128),
		Timeout:      aws.Int32(3),
		Code:         &types.FunctionCode{ZipFile: zip},
	}
}
