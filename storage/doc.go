// Package storage is the embeddable BadBatch store: named streams of
// records, appended atomically and durably, read back by offset, by time or
// in global commit order, and tailed. The HTTP server wraps it.
//
// # Pipeline
//
// A Store joins the disruptor and the journal into the LMAX pipeline:
//
//	producers ─► multi-producer ring (one slot = one append = one journal group)
//	   ├─► journaling processor (journal.Handler): one entry + one fsync per ring batch
//	   ├─► replication processor (standalone: a pass-through; cluster mode below)
//	   └─► business-logic processor (after both): offsets, expected-offset
//	       checks, idempotency, ONE Pebble batch per ring batch, embedder
//	       Handlers, futures completed, Wait callers woken
//
// A producer validates, stamps the group (and every record without a
// timestamp) with its clock, encodes the group into the slot's reused
// buffer and publishes. An append returns only after its entry is fsynced
// (journal.SyncAlways, the default) and applied; the offsets it returns are
// final. At most Options.RingSize appends are in flight.
//
// # Invariants
//
//   - Determinism: every decision of the business logic (offsets, 409s,
//     duplicates) is a function of the journal alone. Idempotency windows
//     are measured on a clock that is the largest journaled group timestamp
//     applied so far, never the wall clock at apply time.
//   - The index never runs ahead of the journal. Pebble runs without its
//     own WAL (decision 0004): every Pebble batch carries the applied
//     journal position, Pebble persists only whole memtables, so the
//     durable index is a prefix of the applied batches. Open re-applies the
//     journal from that position; if the index is nonetheless ahead (only
//     possible under a weak sync policy), Open rebuilds it from scratch.
//   - The index is flushed at least every Options.IndexFlushBytes of
//     applied journal, which bounds the work of Open after a crash.
//   - Rejected and duplicate appends are journaled (they consume global
//     positions) but not indexed; ReadGlobal skips them.
//   - Journal retention never removes an entry the durable index has not
//     applied.
//   - After a journal, replication or index failure the store is
//     unavailable (ErrUnavailable) until closed and reopened.
//
// # Cluster mode
//
// With Options.Replication the journal is a replicated log that another
// component writes (storage/cluster, over etcd raft; docs/decisions/0012):
//
//		producers ─► ring ─► proposing processor: ONE Proposal per ring batch ─► Replication.Proposer
//		consensus module: WriteEntry into the journal ... Store.Proposed / Refuse
//		                  Store.CommitEntries (or Commit) ─► apply goroutine (the business logic)
//
//	  - The apply goroutine applies committed entries in log order, the same
//	    decisions as standalone, one Pebble batch per round, and answers this
//	    node's own proposals. It never applies past the commit index, at Open
//	    neither (Replication.Commit).
//	  - A proposal is matched to the next committed entry with groups of the
//	    term it was proposed in (the consensus module must not forward
//	    proposals); an applied entry of a higher term fails the older ones
//	    with ErrNotCommitted. A proposal whose leader is cut off waits for
//	    its caller's context: its outcome is unknown until an idempotent
//	    retry resolves it.
//	  - The applied position names the next entry to apply (every entry
//	    counts, with groups or not), so AppliedIndex is exact.
//	  - Snapshots: WriteSnapshot streams an index checkpoint and the journal,
//	    ReceiveSnapshot stages one on disk, InstallSnapshot swaps it in while
//	    readers wait; Open finishes an installation a crash interrupted.
//	  - A data directory belongs to one mode: Open refuses the other
//	    (ErrWrongMode); the cluster keeps its state in DIR/cluster.
//
// # Journal groups written by the store
//
// An append is one journal group whose Stream is the stream name. A
// SetCursor is a command group whose Stream is 0x00 'c' followed by the
// stream name (stream names never start with 0x00), holding one record:
// key = cursor name, value = offset as 8 bytes big endian. A lifecycle
// operation (create with a configuration, close, delete, touch, and appends
// with a producer, a close or a must-exist condition) is a group on the
// stream's own name with control bytes (journal.GroupHasControl; layout on
// the control type in lifecycle.go; decision 0018), holding the records
// that go with it, or none. These encodings are part of the on-disk format.
//
// # Index key layout (Pebble)
//
// All integers are big endian. A stream name inside a composite key is
// followed by 0x00 (never part of a name), so one stream's keys are
// contiguous and never interleave with those of a stream whose name
// extends it. Tags are never reused.
//
//	tag  key                                        value
//	0x01 0x01 'a'                                   applied position, 29 bytes:
//	                                                  [0] format version (1)
//	                                                  [1:9] next entry index, [9:13] next group ordinal,
//	                                                  [13:21] next seq, [21:29] idempotency clock (ns, int64)
//	0x02 0x02 stream                                stream metadata, 32 bytes: next offset, bytes (keys +
//	                                                  values), last timestamp (ns), max timestamp (ns); then,
//	                                                  for a stream with lifecycle state: flags (1: created,
//	                                                  2: closed), uvarint content-type length, content type,
//	                                                  uvarint TTL (ns), varint expires-at (ns), varint access (ns)
//	0x03 0x03 stream 0x00 lastOffset(8)             run: one accepted group, 28 bytes: entry index (8),
//	                                                  group ordinal (4), byte offset of the group in the entry
//	                                                  payload (4), record count (4), first seq (8)
//	0x04 0x04 stream 0x00 maxTime(8)                time index: offset (8) of the first record at which the
//	                                                  stream's max-timestamp-so-far first exceeded its previous
//	                                                  value; maxTime is the group's max, as uint64(ns) ^ 1<<63
//	0x05 0x05 stream 0x00 idempotencyKey            original result, 28 bytes: group time (ns, 8),
//	                                                  first offset (8), count (4), first seq (8)
//	0x06 0x06 stream 0x00 cursorName                offset (8)
//	0x08 0x08 stream 0x00 producerId                producer, 36 bytes: epoch (8), last seq (8), first offset (8),
//	                                                  count (4), first seq (8) of its last accepted append
//	0x07 0x07 firstSeq(8)                           chunk: the decisions on consecutive groups of one entry
//	                                                  applied in one Pebble batch: uvarint entry index, uvarint
//	                                                  first ordinal, uvarint byte offset, uvarint n, then n times
//	                                                  uvarint records, uvarint (0 = not indexed | first offset+1)
//
// The run index is sparse: one key per accepted group, not per record.
// Reading offset o seeks the first run key of the stream at or after o (key
// = the run's LAST offset). The time index is sparse too: at most one key
// per group, written only when the group raises the stream's maximum
// timestamp.
//
// # Hot state
//
// Each stream's metadata and the live idempotency keys are loaded into
// memory at Open, so appends never read Pebble.
package storage
