package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/badbatch/badbatch/journal"
	"github.com/badbatch/badbatch/storage"
	"github.com/badbatch/badbatch/storage/cluster/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestEntrySizeBound: no raft entry exceeds MaxEntryBytes. Concurrent
// appends are packed into entries up to the bound, never past it, and a
// single append larger than the bound fails with ErrBatchTooLarge while
// the cluster goes on. (The process test TestClusterOversizedAppend found
// the bug: an entry larger than the transport's frame was dropped on every
// send, and the log behind it stalled for good.)
func TestEntrySizeBound(t *testing.T) {
	const bound = 64 << 10
	c := newTestCluster(t, 3, 11)
	c.tune = func(o *Options) { o.MaxEntryBytes = bound }
	c.openAll()
	ld := c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err := ld.Store().Append(ctx, "big", storage.Record{Value: make([]byte, bound+1)})
	require.ErrorIs(t, err, storage.ErrBatchTooLarge)

	// 16 producers of 20 KiB appends: a ring batch holds several, which
	// must be split into entries of at most bound bytes. Whether appends
	// meet in one ring batch is up to the scheduler: a loaded machine may
	// run them one by one, so a round that packed none is run again.
	largest, packed := 0, 0
	for round := 0; packed == 0; round++ {
		require.Less(t, round, 5, "entries with more than one append: the bound splits batches, it does not stop packing")
		stream := fmt.Sprint("s", round)
		var wg sync.WaitGroup
		errs := make(chan error, 16*20)
		for p := range 16 {
			wg.Go(func() {
				for i := range 20 {
					v := fmt.Appendf(make([]byte, 0, 20<<10), "p%d-%d", p, i)
					// Through whichever node leads, under one key: a loaded
					// machine can move leadership mid-test (-race beside
					// other packages did).
					key := fmt.Sprintf("%s-p%d-%d", stream, p, i)
					_, err := c.appendRetry(ctx, stream, storage.AppendOptions{IdempotencyKey: key}, storage.Record{Value: v[:cap(v)]})
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		ld = c.leader(10 * time.Second)
		assert.Len(t, readAll(t, ld, stream), 16*20)

		largest, packed = 0, 0
		j := ld.Store().Journal()
		for i := j.FirstIndex(); i <= j.LastIndex(); i++ {
			require.NoError(t, j.Read(i, func(e *journal.Entry) error {
				largest = max(largest, len(e.Payload))
				if e.Groups > 1 {
					packed++
				}
				return nil
			}))
		}
	}
	assert.LessOrEqual(t, largest, bound, "the largest entry's payload")
	t.Logf("largest entry %d bytes (bound %d); %d entries packed more than one append", largest, bound, packed)
}

// TestDefaultMaxEntryBytesFitsAFrame: a MsgApp carrying one entry of
// DefaultMaxEntryBytes, every other field at its largest, fits the TCP
// transport's frame; and a larger MaxEntryBytes is refused with the TCP
// transport.
func TestDefaultMaxEntryBytesFitsAFrame(t *testing.T) {
	huge := ^uint64(0)
	m := &pb.Message{
		Type: pb.MessageType_MsgApp.Enum(), To: new(huge), From: new(huge), Term: new(huge),
		LogTerm: new(huge), Index: new(huge), Commit: new(huge), Reject: new(true), RejectHint: new(huge),
		Entries: []*pb.Entry{{
			Term: new(huge), Index: new(huge), Type: pb.EntryType_EntryNormal.Enum(),
			Data: make([]byte, DefaultMaxEntryBytes),
		}},
	}
	size := proto.Size(m)
	assert.LessOrEqual(t, size+16, transport.DefaultMaxFrameBytes, "message of %d bytes and its length prefix", size)

	o := DefaultOptions()
	o.NodeID, o.ClusterAddr, o.Secret = 1, "127.0.0.1:1", testSecret
	o.Peers = map[uint64]string{1: o.ClusterAddr}
	o.MaxEntryBytes = DefaultMaxEntryBytes + 1
	_, err := Open(t.TempDir(), o)
	require.ErrorIs(t, err, ErrBadConfig)
	assert.Contains(t, err.Error(), "fit the transport's frame")
}
