package cluster

import "github.com/cockroachdb/pebble/v2/vfs"

// rlSnapIndex is raft's compaction point.
func (n *Node) rlSnapIndex() uint64 {
	n.rl.mu.RLock()
	defer n.rl.mu.RUnlock()
	return n.rl.mu.snapIndex
}

func newCrashableMem() *vfs.MemFS { return vfs.NewCrashableMem() }
