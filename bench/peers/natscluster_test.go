package peers_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The 3-node cluster: the peer of BadBatch's raft cluster. Its
// configuration is stated in docs/benchmarks.md (bench/cmd/bbbench's
// natsClusterConfig); change both together.
const (
	// natsClusterName names the cluster; its servers are
	// badbatch-bench-0, -1 and -2.
	natsClusterName = "badbatch-bench"

	// natsClusterNodes is the number of servers, and the stream's replicas.
	natsClusterNodes = 3

	// natsClusterProducers is the one producers= point of
	// BenchmarkNATSClusterAppend: BadBatch's cluster is compared at 4
	// producers only.
	natsClusterProducers = 4

	// natsClusterWindow is the acks each producer of mode=publish may have
	// pending. The stream's raft leader sends whatever has queued up as one
	// append to its followers, so unlike a single server with SyncAlways
	// (one fsync per record: fsync-bound from 32 up) a wider window means
	// fewer fsyncs per record. Tried on the development machine at 4
	// producers and -benchtime 1s: 32 gave 19-21k records/s; 256, 512 and
	// 1024 gave 22-43k with no order that stood out of the noise, and a p50
	// latency that grew with the window (23-37 ms at 256, 90-137 ms at
	// 1024). 256 is the smallest window on that plateau. The batches of
	// mode=atomic-batch100 keep the single server's natsBatchWindow of 4:
	// 16 was no faster (66-69k against 70-72k records/s) at four times
	// the latency.
	natsClusterWindow = 256

	// natsClusterReady bounds the wait for the meta leader and for the
	// stream's leader and followers. On the development machine both are
	// ready in about 2 s (the first meta election campaigns at once).
	natsClusterReady = 30 * time.Second
)

// natsClusterMode is one mode= of BenchmarkNATSClusterAppend.
type natsClusterMode struct {
	name string
	// atomicBatches: the stream allows atomic batches and each producer
	// publishes natsBatch records per batch (natsBatchProducer); otherwise
	// one record per publish (natsProducer).
	atomicBatches bool
}

// natsClusterModes are the single server's two durable ways of appending,
// BenchmarkNATSAtomicBatch's and BenchmarkNATSPublish's sync=always, on R3.
var natsClusterModes = []natsClusterMode{
	{name: fmt.Sprintf("atomic-batch%d", natsBatch), atomicBatches: true},
	{name: "publish"},
}

// natsCluster is natsClusterNodes embedded nats-servers in this process,
// clustered over routes on the loopback interface. Each has its own
// JetStream store directory in tb.TempDir() and SyncAlways; all of them
// share the machine's cores and its one disk. It is owned by one benchmark
// or test; its servers are shut down, and waited for, when tb ends.
type natsCluster struct {
	nodes []*natsServer
}

// startNATSCluster starts the servers and waits until the JetStream meta
// group has a leader that every server follows and that has heard from all
// of them: a stream can be placed on three peers only once the leader has
// every peer's JetStream statistics (JetStreamClusterPeers lists the peers
// that are online, run JetStream and have sent them), which can come well
// after the election on a busy machine ("no suitable peers for placement").
func startNATSCluster(tb testing.TB) *natsCluster {
	tb.Helper()
	ports := freeLoopbackPorts(tb, natsClusterNodes)
	routes := make([]*url.URL, len(ports))
	for i, port := range ports {
		routes[i] = &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	}
	c := &natsCluster{}
	for i, port := range ports {
		dir := tb.TempDir()
		opts := &server.Options{
			ServerName: fmt.Sprintf("%s-%d", natsClusterName, i),
			// A clustered server must listen for clients: without a client
			// listener (DontListen) nats-server never starts its routes.
			// The benchmark's clients still connect in-process.
			Host:                   "127.0.0.1",
			Port:                   server.RANDOM_PORT,
			NoLog:                  true,
			NoSigs:                 true,
			JetStream:              true,
			StoreDir:               dir,
			SyncAlways:             true,
			DisableJetStreamBanner: true,
			Cluster: server.ClusterOpts{
				Name: natsClusterName,
				Host: "127.0.0.1",
				Port: port,
			},
			// Every server is given all three routes, its own included
			// (nats-server drops a route to itself): the meta group then
			// expects three peers from the start.
			Routes: routes,
		}
		srv, err := server.NewServer(opts)
		require.NoError(tb, err)
		go srv.Start()
		c.nodes = append(c.nodes, &natsServer{srv: srv, dir: dir})
	}
	tb.Cleanup(func() {
		for _, n := range c.nodes {
			n.srv.Shutdown()
		}
		for _, n := range c.nodes {
			n.srv.WaitForShutdown()
		}
	})
	for _, n := range c.nodes {
		if !n.srv.ReadyForConnections(10 * time.Second) {
			tb.Fatalf("nats server %s not ready after 10s (its route port may have been taken since it was found free)", n.srv.Name())
		}
	}
	waitFor(tb, natsClusterReady, "the JetStream meta leader", func() error {
		var leaders []*natsServer
		for _, n := range c.nodes {
			if n.srv.JetStreamIsLeader() {
				leaders = append(leaders, n)
			}
			if !n.srv.JetStreamIsCurrent() {
				return fmt.Errorf("%s is not current with the meta group", n.srv.Name())
			}
		}
		if len(leaders) != 1 {
			return fmt.Errorf("%d meta leaders", len(leaders))
		}
		if peers := leaders[0].srv.JetStreamClusterPeers(); len(peers) != natsClusterNodes {
			return fmt.Errorf("the meta leader can place streams on %d peers (%v)", len(peers), peers)
		}
		return nil
	})
	return c
}

// freeLoopbackPorts returns n TCP ports of 127.0.0.1 that were free a moment
// ago: the servers' route ports, which each server must know of all the
// others before any of them starts. They are held open together, so that
// they differ, and closed before returning.
func freeLoopbackPorts(tb testing.TB, n int) []int {
	tb.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(tb, err)
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// waitFor polls cond every 25 ms until it returns nil, and fails tb with
// cond's last error after timeout.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waiting %v for %s: %v", timeout, what, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// node returns the server named name.
func (c *natsCluster) node(tb testing.TB, name string) *natsServer {
	tb.Helper()
	for _, n := range c.nodes {
		if n.srv.Name() == name {
			return n
		}
	}
	tb.Fatalf("no server %q in the cluster", name)
	return nil
}

// createStream creates the benchmark stream with natsClusterNodes replicas
// through a connection to the first server, waits until it has a leader and
// two current followers, and returns the leader's server: the one the
// producers connect to, so that a publish reaches the stream's leader
// without a hop over a route.
func (c *natsCluster) createStream(tb testing.TB, atomicBatches bool) *natsServer {
	tb.Helper()
	js := c.nodes[0].jetStream(tb, 1)
	ctx, cancel := context.WithTimeout(context.Background(), natsClusterReady)
	defer cancel()
	stream, err := js.CreateStream(ctx, natsStreamConfig(natsClusterNodes, atomicBatches))
	require.NoError(tb, err)
	info := waitStreamReplicated(tb, stream, -1)
	return c.node(tb, info.Cluster.Leader)
}

// waitStreamReplicated waits until the stream has a leader and
// natsClusterNodes-1 followers, all current and online, and, when msgs is
// not negative, that many messages; it returns the stream's info then.
func waitStreamReplicated(tb testing.TB, stream jetstream.Stream, msgs int64) *jetstream.StreamInfo {
	tb.Helper()
	var info *jetstream.StreamInfo
	waitFor(tb, natsClusterReady, "the stream's leader and followers", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		if info, err = stream.Info(ctx); err != nil {
			return err
		}
		return streamReplicated(info, msgs)
	})
	return info
}

// streamReplicated checks what waitStreamReplicated waits for.
func streamReplicated(info *jetstream.StreamInfo, msgs int64) error {
	switch {
	case info.Cluster == nil:
		return errors.New("no cluster information")
	case info.Cluster.Leader == "":
		return errors.New("no stream leader")
	case len(info.Cluster.Replicas) != natsClusterNodes-1:
		return fmt.Errorf("%d followers", len(info.Cluster.Replicas))
	case msgs >= 0 && info.State.Msgs != uint64(msgs):
		return fmt.Errorf("%d messages, want %d", info.State.Msgs, msgs)
	}
	for _, r := range info.Cluster.Replicas {
		if !r.Current || r.Offline {
			return fmt.Errorf("follower %s: current %v, offline %v", r.Name, r.Current, r.Offline)
		}
	}
	return nil
}

// BenchmarkNATSClusterAppend appends 100-byte records to a JetStream stream
// replicated on a 3-node NATS cluster (R3, file storage), the peer of
// BadBatch's 3-node raft cluster. The three nats-servers run in this
// process, clustered over loopback routes, each with its own store
// directory and SyncAlways, so each server's raft log of the stream is
// fsynced as it is written; the leader commits a record, and sends its
// PubAck, once two of the three logs (its own and one follower's) hold it.
// 4 producers, each with its own in-process connection to the stream's
// leader: mode=atomic-batch100 publishes JetStream atomic batches of 100
// records with up to 4 batches waiting for their PubAck (as
// BenchmarkNATSAtomicBatch does on one server), mode=publish one record per
// async publish with up to 256 acks pending (natsClusterWindow). One op is
// one record, and counts only once JetStream has acknowledged it; the
// stream is checked to have grown by b.N records. Reports records/s and
// the publish-to-ack p50/p99 in ns (per batch in mode=atomic-batch100).
// All three servers share the machine's cores and its one disk.
func BenchmarkNATSClusterAppend(b *testing.B) {
	for _, mode := range natsClusterModes {
		b.Run("mode="+mode.name, func(b *testing.B) {
			// One cluster and stream per mode, kept across the runs that
			// size b.N: a cluster takes seconds to form.
			c := startNATSCluster(b)
			leader := c.createStream(b, mode.atomicBatches)
			var producerIDs atomic.Int64
			b.Run(fmt.Sprintf("producers=%d/size=%dB", natsClusterProducers, natsRecordSize), func(b *testing.B) {
				benchmarkNATSClusterAppend(b, leader, mode, &producerIDs, natsClusterProducers, natsRecordSize)
			})
		})
	}
}

// benchmarkNATSClusterAppend appends b.N records of size bytes from
// producers goroutines connected to the stream's leader. producerIDs
// numbers the batch producers across the runs on the same stream, so that
// no batch ID is used twice.
func benchmarkNATSClusterAppend(b *testing.B, leader *natsServer, mode natsClusterMode, producerIDs *atomic.Int64, producers, size int) {
	control := leader.jetStream(b, 1)
	ctx, cancel := context.WithTimeout(context.Background(), natsClusterReady)
	defer cancel()
	stream, err := control.Stream(ctx, natsStream)
	require.NoError(b, err)
	before, err := stream.Info(ctx)
	require.NoError(b, err)

	runs, hists := make([]natsRun, producers), make([]*hdrhistogram.Histogram, producers)
	for i := range producers {
		if mode.atomicBatches {
			p := &natsBatchProducer{id: int(producerIDs.Add(1)), js: leader.jetStream(b, natsBatchWindow), batch: natsBatch, window: natsBatchWindow, hist: natsHistogram()}
			runs[i], hists[i] = p.run, p.hist
		} else {
			p := &natsProducer{js: leader.jetStream(b, natsClusterWindow), window: natsClusterWindow, hist: natsHistogram()}
			runs[i], hists[i] = p.run, p.hist
		}
	}
	total := runNATSProducers(b, runs, hists, natsPayload(size))

	acks := int64(b.N)
	if mode.atomicBatches {
		acks = (int64(b.N) + natsBatch - 1) / natsBatch
	}
	require.Equal(b, acks, total.TotalCount(), "every publish (every batch's commit) must be acknowledged")
	after, err := stream.Info(ctx)
	require.NoError(b, err)
	require.EqualValues(b, b.N, after.State.Msgs-before.State.Msgs, "the stream must hold every acknowledged record")
}

// TestNATSClusterR3Durable checks what BenchmarkNATSClusterAppend relies
// on: the three servers form one JetStream cluster with SyncAlways and
// their stores in the test's directories; the stream has 3 replicas, a
// leader and 2 current followers; records published by several producers
// to the leader, in both modes, are all acknowledged, and every replica's
// own store holds all of them; and the cluster shuts down without leaving
// a goroutine behind.
func TestNATSClusterR3Durable(t *testing.T) {
	for _, mode := range natsClusterModes {
		t.Run("mode="+mode.name, func(t *testing.T) {
			// Registered first, so it runs after the cluster's cleanup.
			ignore := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

			c := startNATSCluster(t)
			require.Len(t, c.nodes, natsClusterNodes)
			for _, n := range c.nodes {
				cfg := n.srv.JetStreamConfig()
				require.NotNil(t, cfg, "%s: JetStream must be enabled", n.srv.Name())
				assert.True(t, cfg.SyncAlways, "%s runs with SyncAlways", n.srv.Name())
				assert.True(t, strings.HasPrefix(cfg.StoreDir, n.dir), "%s: store %q must be under %q", n.srv.Name(), cfg.StoreDir, n.dir)
				assert.True(t, n.srv.JetStreamIsClustered(), "%s is clustered", n.srv.Name())
				assert.Equal(t, natsClusterName, n.srv.ClusterName())
			}

			leader := c.createStream(t, mode.atomicBatches)
			const producers, records = 3, 1050 // the last batch is short
			var (
				next atomic.Int64
				wg   sync.WaitGroup
				errs = make([]error, producers)
				acks atomic.Int64
			)
			for i := range producers {
				wg.Go(func() {
					if mode.atomicBatches {
						p := &natsBatchProducer{id: i, js: leader.jetStream(t, natsBatchWindow), batch: natsBatch, window: natsBatchWindow, hist: natsHistogram()}
						errs[i] = p.run(&next, records, natsPayload(natsRecordSize))
						acks.Add(p.hist.TotalCount())
						return
					}
					p := &natsProducer{js: leader.jetStream(t, natsClusterWindow), window: natsClusterWindow, hist: natsHistogram()}
					errs[i] = p.run(&next, records, natsPayload(natsRecordSize))
					acks.Add(p.hist.TotalCount())
				})
			}
			wg.Wait()
			require.NoError(t, errors.Join(errs...))
			wantAcks := int64(records)
			if mode.atomicBatches {
				wantAcks = (records + natsBatch - 1) / natsBatch
			}
			assert.Equal(t, wantAcks, acks.Load(), "every publish (every batch's commit) acknowledged")

			ctx, cancel := context.WithTimeout(context.Background(), natsClusterReady)
			defer cancel()
			stream, err := leader.jetStream(t, 1).Stream(ctx, natsStream)
			require.NoError(t, err)
			info := waitStreamReplicated(t, stream, records)
			assert.Equal(t, natsClusterNodes, info.Config.Replicas)
			assert.Equal(t, natsClusterName, info.Cluster.Name)
			assert.Equal(t, leader.srv.Name(), info.Cluster.Leader)
			assert.EqualValues(t, records, info.State.LastSeq)

			// Each server's own copy of the stream, not the leader's view.
			waitFor(t, natsClusterReady, "every replica to hold every record", func() error {
				for _, n := range c.nodes {
					msgs, err := localStreamMsgs(n.srv)
					if err != nil {
						return fmt.Errorf("%s: %w", n.srv.Name(), err)
					}
					if msgs != records {
						return fmt.Errorf("%s holds %d records, want %d", n.srv.Name(), msgs, records)
					}
				}
				return nil
			})
			for _, n := range c.nodes {
				dirs, err := filepath.Glob(filepath.Join(n.dir, "jetstream", server.DEFAULT_GLOBAL_ACCOUNT, "streams", natsStream))
				require.NoError(t, err)
				assert.Len(t, dirs, 1, "%s stores the stream under its own directory", n.srv.Name())
			}
		})
	}
}

// localStreamMsgs is the number of messages in the benchmark stream's
// replica on srv, from the server's own monitoring data.
func localStreamMsgs(srv *server.Server) (uint64, error) {
	acc, err := srv.JszAccount(&server.JSzOptions{Account: server.DEFAULT_GLOBAL_ACCOUNT, Streams: true})
	if err != nil {
		return 0, err
	}
	for _, s := range acc.Streams {
		if s.Name == natsStream {
			return s.State.Msgs, nil
		}
	}
	return 0, errors.New("no replica of the stream")
}
