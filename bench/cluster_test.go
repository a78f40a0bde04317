package bench_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/badbatch/badbatch/storage/cluster"
)

// BenchmarkClusterAppend: BenchmarkStoreAppend's workload (100 records of
// 100 bytes per append, 4 producers, 32 appends in flight each) against a
// 3-node BadBatch cluster in this process: three cluster.Nodes over the
// TCP transport on loopback, each with its own data directory on this
// machine's disk, appending through the leader. An append counts once it is
// fsynced on a majority and applied. All three nodes share this machine's
// cores and one disk: a real cluster spreads them over three. One op is one
// record.
func BenchmarkClusterAppend(b *testing.B) {
	b.Run(fmt.Sprintf("batch=%d/producers=4/size=%dB", storeBatch, storeValueLen), func(b *testing.B) {
		c := openClusterContender(b, 3)
		defer func() {
			if err := c.close(); err != nil {
				b.Error(err)
			}
		}()
		rate, hist := storeRun(b, c, 4, b.N, 0)
		storeMaxRate.Store("cluster/4", rate)
		storeReport(b, rate, hist)
	})
}

// BenchmarkClusterAppendLatency is BenchmarkStoreAppendLatency's load=half
// for the 3-node cluster: paced at half of the cluster's own maximum.
func BenchmarkClusterAppendLatency(b *testing.B) {
	b.Run(fmt.Sprintf("batch=%d/producers=4/size=%dB/load=half", storeBatch, storeValueLen), func(b *testing.B) {
		c := openClusterContender(b, 3)
		defer func() {
			if err := c.close(); err != nil {
				b.Error(err)
			}
		}()
		max, ok := storeMaxRate.Load("cluster/4")
		if !ok {
			rate, _ := storeRun(b, c, 4, 200*storeBatch*4, 0)
			max = rate
		}
		pace := max.(float64) / 2
		b.ResetTimer()
		rate, hist := storeRun(b, c, 4, b.N, pace)
		storeReport(b, rate, hist)
		b.ReportMetric(pace, "target-records/s")
	})
}

type clusterContender struct {
	nodes  []*cluster.Node
	leader *storage.Store
}

// freePorts returns n loopback addresses that were free a moment ago.
func freePorts(b testing.TB, n int) []string {
	addrs := make([]string, n)
	ls := make([]net.Listener, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ls[i], addrs[i] = l, l.Addr().String()
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return addrs
}

func openClusterContender(b *testing.B, n int) *clusterContender {
	addrs := freePorts(b, n)
	peers := map[uint64]string{}
	for i, a := range addrs {
		peers[uint64(i+1)] = a
	}
	c := &clusterContender{}
	for i := range n {
		o := cluster.DefaultOptions()
		o.NodeID, o.ClusterAddr, o.Peers = uint64(i+1), addrs[i], peers
		o.HTTPURL = fmt.Sprintf("http://bench-node-%d", i+1)
		o.Secret = []byte("benchmark-cluster-secret")
		node, err := cluster.Open(b.TempDir(), o)
		if err != nil {
			b.Fatal(err)
		}
		c.nodes = append(c.nodes, node)
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.leader == nil {
		for _, node := range c.nodes {
			if node.IsLeader() {
				c.leader = node.Store()
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("no leader within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c
}

func (c *clusterContender) newSlot(batch, size int) storeSlot {
	recs := make([]storage.Record, batch)
	for i := range recs {
		recs[i].Value = storePayload(size, i)
	}
	return &badbatchSlot{s: c.leader, recs: recs}
}

func (c *clusterContender) close() error {
	var first error
	for _, n := range c.nodes {
		if err := n.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
