package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch/storage"
)

// TestReplicatedLifecycle: create, close, delete and producer decisions
// are replicated state: every node reaches the same answer, and a new
// leader goes on deciding from it.
func TestReplicatedLifecycle(t *testing.T) {
	c := newTestCluster(t, 3, 5)
	c.openAll()
	ld := c.leader(10 * time.Second)
	ctx := context.Background()
	s := ld.Store()
	_, err := s.CreateStream(ctx, "cfg", storage.StreamConfig{ContentType: "application/json"}, rec("1"))
	require.NoError(t, err)
	_, err = s.CreateStream(ctx, "closed", storage.StreamConfig{})
	require.NoError(t, err)
	_, err = s.CloseStream(ctx, "closed", storage.AppendOptions{}, rec("last"))
	require.NoError(t, err)
	_, err = s.Append(ctx, "gone", rec("x"))
	require.NoError(t, err)
	require.NoError(t, s.DeleteStream(ctx, "gone"))
	_, err = s.AppendWith(ctx, "prod", storage.AppendOptions{Producer: &storage.Producer{ID: "p", Epoch: 2}}, rec("p0"))
	require.NoError(t, err)

	for id := uint64(1); id <= 3; id++ {
		n := c.node(id)
		assert.Equal(t, []string{"1"}, values(readAll(t, n, "cfg")), "node %d", id)
		assert.Equal(t, []string{"last"}, values(readAll(t, n, "closed")), "node %d", id)
		info, err := n.Store().StreamInfo(ctx, "closed")
		require.NoError(t, err)
		assert.True(t, info.Closed, "node %d", id)
		info, err = n.Store().StreamInfo(ctx, "cfg")
		require.NoError(t, err)
		assert.Equal(t, "application/json", info.ContentType, "node %d", id)
		_, err = n.Store().StreamInfo(ctx, "gone")
		assert.ErrorIs(t, err, storage.ErrNotFound, "node %d", id)
	}

	// A new leader decides from the replicated state.
	c.stop(ld.ID())
	ld2 := c.leader(10 * time.Second)
	s = ld2.Store()
	_, err = s.Append(ctx, "closed", rec("more"))
	assert.ErrorIs(t, err, storage.ErrStreamClosed)
	_, err = s.CreateStream(ctx, "cfg", storage.StreamConfig{ContentType: "text/plain"})
	assert.ErrorIs(t, err, storage.ErrStreamExists)
	res, err := s.AppendWith(ctx, "prod", storage.AppendOptions{Producer: &storage.Producer{ID: "p", Epoch: 2}}, rec("p0"))
	require.NoError(t, err)
	assert.True(t, res.Replayed)
	_, err = s.AppendWith(ctx, "prod", storage.AppendOptions{Producer: &storage.Producer{ID: "p", Epoch: 1}}, rec("old"))
	assert.ErrorIs(t, err, storage.ErrProducerFenced)
}

func values(recs []storage.StoredRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}
