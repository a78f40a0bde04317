//go:build linux

package bench_test

// The journal against the obvious alternatives, in the same run, with the
// same record sizes and the same batch sizes; every contender makes each
// batch durable with its own fsync before the next one starts:
//
//	BenchmarkJournalAppend/impl=journal/batch={1,16,256}/size={100B,1KiB,64KiB}
//	    journal.Write(batch groups of one record each) + journal.Sync():
//	    one pwrite and one fdatasync per batch (SyncAlways, defaults).
//	.../impl=journal-noprealloc/...
//	    the same with Options.DisablePreallocation (evidence for 0003).
//	.../impl=journal-recycle/...
//	    the journal with retention keeping two segments (RetentionBytes
//	    128 MiB) and RecycleSegments 1: once retention retires segments,
//	    each roll reuses a retired file, whose blocks are written
//	    (decision 0007). Pebble recycles its WAL files the same way.
//	.../impl=tidwall-write/...
//	    tidwall/wal v1.2.1, NoSync: true, one Log.Write per record, then one
//	    Log.Sync (fsync(2)) per batch. With NoSync false it would fsync after
//	    every record; this is its honest group-commit configuration.
//	.../impl=tidwall-batch/...
//	    tidwall/wal, NoSync: false, one WriteBatch per batch: one write and
//	    one fsync(2) per batch.
//	.../impl=raftwal/...
//	    hashicorp/raft-wal v0.4.0, one StoreLogs per batch (one fsync(2)).
//	.../impl=pebble/...
//	    Pebble v2 used as a log: one batch of Set(seq, record) per batch,
//	    Commit(pebble.Sync) (one WAL fdatasync), FormatNewest, quiet logger.
//	.../impl=file/...
//	    the physical limit: one pwrite(2) of the batch's concatenated records
//	    into a plain file allocated 64 MiB at a time with fallocate(2) mode
//	    0 (as the journal's segments are, decision 0007), then fdatasync(2).
//
// Each reports MB/s of record bytes (b.SetBytes), records/s and fsyncs/s
// (for the journal the fsyncs it counted, segment rolls included; for the
// others one per batch, which is what their APIs promise). Records are
// prepared before the timer starts (producers encode on their own
// goroutines in the real pipeline); the journal's groups add about 30
// bytes of framing per record that the MB/s figure does not count.
//
//	BenchmarkJournalRead/impl={mmap,pread,tidwall}/size={1KiB,64KiB}
//
// reads entries sequentially: impl=mmap iterates sealed segments (zero
// copy, CRC checked per entry), impl=pread iterates the active segment
// (ReadAt into a reused buffer, CRC checked), impl=tidwall calls Log.Read
// (NoCopy: a slice of its in-memory segment cache, no checksum).
//
//	BenchmarkJournalAppendInterleaved/batch={1,16,256}/size={100B,1KiB,64KiB}
//
// runs the same six contenders in one process, interleaved: each b.N
// iteration is one round in which every contender, in a shuffled order,
// makes a few batches durable (about 256 KiB, at least 1 and at most 8
// batches), so that the contenders alternate every few milliseconds. It reports each contender's MB/s over all its slices, and
// journal/file and journal/best-peer: for each other contender, the median
// over rounds of its slice time divided by the journal's in the same round
// (> 1: the journal was faster), the lowest over the peers. On a shared
// machine whose fsync latency drifts by an order of magnitude within a
// minute, these paired ratios are the figures to compare; the plain
// matrix above runs the contenders minutes apart.
//
// Run with, for example:
//
//	go test ./bench -run '^$' -bench 'BenchmarkJournal' -benchtime 1s
//
// Results and the machine are in docs/decisions/0003-journal-segment-format.md.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/tidwall/wal"

	"github.com/badbatch/badbatch/bench/internal/benchkit"
	"github.com/badbatch/badbatch/journal"
)

// journalAppender is one contender: append makes one batch durable.
type journalAppender interface {
	append(b *testing.B) error
	fsyncs() uint64
	close() error
}

type journalContender struct {
	name string
	kind contenderKind
	open func(b *testing.B, recs [][]byte) journalAppender
}

type contenderKind uint8

const (
	kindJournal contenderKind = iota // ours, as shipped
	kindVariant                      // ours with a non-default option, for the decision record
	kindPeer
	kindLimit
)

var journalContenders = []journalContender{
	{"journal", kindJournal, openJournalAppender(false)},
	{"journal-noprealloc", kindVariant, openJournalAppender(true)},
	{"journal-recycle", kindVariant, openJournalRecycleAppender},
	{"tidwall-write", kindPeer, openTidwallWriteAppender},
	{"tidwall-batch", kindPeer, openTidwallBatchAppender},
	{"raftwal", kindPeer, openRaftWALAppender},
	{"pebble", kindPeer, openPebbleAppender},
	{"file", kindLimit, openFileAppender},
}

func BenchmarkJournalAppend(b *testing.B) {
	for _, c := range journalContenders {
		for _, batch := range benchkit.JournalBatches {
			for _, size := range benchkit.JournalSizes {
				b.Run(fmt.Sprintf("impl=%s/batch=%d/size=%s", c.name, batch, benchkit.SizeName(size)), func(b *testing.B) {
					recs := make([][]byte, batch)
					for i := range recs {
						recs[i] = benchkit.Record(size, i)
					}
					a := c.open(b, recs)
					b.SetBytes(int64(batch * size))
					b.ReportAllocs()
					syncs := a.fsyncs()
					b.ResetTimer()
					for range b.N {
						if err := a.append(b); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					secs := b.Elapsed().Seconds()
					b.ReportMetric(float64(b.N*batch)/secs, "records/s")
					b.ReportMetric(float64(a.fsyncs()-syncs)/secs, "fsyncs/s")
					if err := a.close(); err != nil {
						b.Fatal(err)
					}
				})
			}
		}
	}
}

func BenchmarkJournalAppendInterleaved(b *testing.B) {
	for _, batch := range benchkit.JournalBatches {
		for _, size := range benchkit.JournalSizes {
			b.Run(fmt.Sprintf("batch=%d/size=%s", batch, benchkit.SizeName(size)), func(b *testing.B) {
				benchmarkInterleaved(b, batch, size)
			})
		}
	}
}

func benchmarkInterleaved(b *testing.B, batch, size int) {
	recs := make([][]byte, batch)
	for i := range recs {
		recs[i] = benchkit.Record(size, i)
	}
	appenders := make([]journalAppender, len(journalContenders))
	for i, c := range journalContenders {
		appenders[i] = c.open(b, recs)
	}
	perSlice := benchkit.PerSlice(batch, size)
	b.SetBytes(int64(len(appenders) * perSlice * batch * size))
	b.ReportAllocs()
	rounds := benchkit.Interleave(b, len(appenders), perSlice, uint64(batch), uint64(size), func(i int) error {
		return appenders[i].append(b)
	})
	ours := slices.IndexFunc(journalContenders, func(c journalContender) bool { return c.kind == kindJournal })
	recycle := slices.IndexFunc(journalContenders, func(c journalContender) bool { return c.name == "journal-recycle" })
	pebbleAt := slices.IndexFunc(journalContenders, func(c journalContender) bool { return c.name == "pebble" })
	// Against Pebble alone, with and without recycling (> 1: ours faster).
	b.ReportMetric(benchkit.PairedRatio(rounds, pebbleAt, ours), "journal/pebble")
	b.ReportMetric(benchkit.PairedRatio(rounds, pebbleAt, recycle), "journal-recycle/pebble")
	bytesPerImpl := float64(b.N * perSlice * batch * size)
	vsPeer := math.Inf(1)
	for i, c := range journalContenders {
		b.ReportMetric(bytesPerImpl/benchkit.Busy(rounds[i]).Seconds()/1e6, "MB/s-"+c.name)
		switch c.kind {
		case kindLimit:
			b.ReportMetric(benchkit.PairedRatio(rounds, i, ours), "journal/file")
		case kindPeer:
			vsPeer = min(vsPeer, benchkit.PairedRatio(rounds, i, ours))
		}
		if err := appenders[i].close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(vsPeer, "journal/best-peer")
}

// --- impl=journal ---

type journalAppenderImpl struct {
	j      *journal.Journal
	groups [][]byte
}

func openJournalAppender(noPrealloc bool) func(b *testing.B, recs [][]byte) journalAppender {
	return func(b *testing.B, recs [][]byte) journalAppender {
		o := journal.DefaultOptions()
		o.DisablePreallocation = noPrealloc
		j, err := journal.Open(b.TempDir(), o)
		if err != nil {
			b.Fatal(err)
		}
		return &journalAppenderImpl{j: j, groups: benchkit.JournalGroups(recs)}
	}
}

func (a *journalAppenderImpl) append(*testing.B) error {
	if _, err := a.j.Write(a.groups); err != nil {
		return err
	}
	return a.j.Sync()
}

func (a *journalAppenderImpl) fsyncs() uint64 { return a.j.Stats().Syncs }
func (a *journalAppenderImpl) close() error   { return a.j.Close() }

func openJournalRecycleAppender(b *testing.B, recs [][]byte) journalAppender {
	o := journal.DefaultOptions()
	o.RetentionBytes = 2 * journal.DefaultSegmentSize
	o.RecycleSegments = 1
	j, err := journal.Open(b.TempDir(), o)
	if err != nil {
		b.Fatal(err)
	}
	return &journalAppenderImpl{j: j, groups: benchkit.JournalGroups(recs)}
}

// --- impl=tidwall-write and impl=tidwall-batch ---

type tidwallAppender struct {
	l     *wal.Log
	recs  [][]byte
	next  uint64
	batch wal.Batch
	write bool // one Write per record + Sync, else WriteBatch
	syncs uint64
}

func openTidwallAppender(b *testing.B, recs [][]byte, write bool) journalAppender {
	opts := *wal.DefaultOptions // wal.Open mutates its options
	opts.NoSync = write
	opts.NoCopy = true
	l, err := wal.Open(b.TempDir(), &opts)
	if err != nil {
		b.Fatal(err)
	}
	return &tidwallAppender{l: l, recs: recs, next: 1, write: write}
}

func openTidwallWriteAppender(b *testing.B, recs [][]byte) journalAppender {
	return openTidwallAppender(b, recs, true)
}

func openTidwallBatchAppender(b *testing.B, recs [][]byte) journalAppender {
	return openTidwallAppender(b, recs, false)
}

func (a *tidwallAppender) append(*testing.B) error {
	a.syncs++
	if a.write {
		for _, r := range a.recs {
			if err := a.l.Write(a.next, r); err != nil {
				return err
			}
			a.next++
		}
		return a.l.Sync()
	}
	a.batch.Clear()
	for _, r := range a.recs {
		a.batch.Write(a.next, r)
		a.next++
	}
	return a.l.WriteBatch(&a.batch)
}

func (a *tidwallAppender) fsyncs() uint64 { return a.syncs }
func (a *tidwallAppender) close() error   { return a.l.Close() }

// --- impl=raftwal ---

type raftWALAppender struct {
	w     *raftwal.WAL
	arena []raft.Log
	logs  []*raft.Log
	recs  [][]byte
	next  uint64
	syncs uint64
}

func openRaftWALAppender(b *testing.B, recs [][]byte) journalAppender {
	w, err := raftwal.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	a := &raftWALAppender{w: w, recs: recs, next: 1,
		arena: make([]raft.Log, len(recs)), logs: make([]*raft.Log, len(recs))}
	for i := range a.logs {
		a.logs[i] = &a.arena[i]
	}
	return a
}

func (a *raftWALAppender) append(*testing.B) error {
	for i, r := range a.recs {
		a.arena[i] = raft.Log{Index: a.next, Term: 1, Type: raft.LogCommand, Data: r}
		a.next++
	}
	a.syncs++
	return a.w.StoreLogs(a.logs)
}

func (a *raftWALAppender) fsyncs() uint64 { return a.syncs }
func (a *raftWALAppender) close() error   { return a.w.Close() }

// --- impl=pebble ---

type journalBenchPebbleLogger struct{}

func (journalBenchPebbleLogger) Infof(string, ...any)         {}
func (journalBenchPebbleLogger) Errorf(string, ...any)        {}
func (journalBenchPebbleLogger) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

type pebbleAppender struct {
	db    *pebble.DB
	batch *pebble.Batch
	recs  [][]byte
	next  uint64
	syncs uint64
}

func openPebbleAppender(b *testing.B, recs [][]byte) journalAppender {
	db, err := pebble.Open(b.TempDir(), &pebble.Options{
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             journalBenchPebbleLogger{},
	})
	if err != nil {
		b.Fatal(err)
	}
	return &pebbleAppender{db: db, batch: db.NewBatch(), recs: recs}
}

func (a *pebbleAppender) append(*testing.B) error {
	a.batch.Reset()
	var key [8]byte
	for _, r := range a.recs {
		binary.BigEndian.PutUint64(key[:], a.next)
		a.next++
		if err := a.batch.Set(key[:], r, nil); err != nil {
			return err
		}
	}
	a.syncs++
	return a.batch.Commit(pebble.Sync)
}

func (a *pebbleAppender) fsyncs() uint64 { return a.syncs }
func (a *pebbleAppender) close() error {
	if err := a.batch.Close(); err != nil {
		return err
	}
	return a.db.Close()
}

// --- impl=file: the physical limit ---

type fileAppender struct {
	f          *os.File
	buf        []byte
	off, alloc int64 // write position; the file is allocated up to alloc
	syncs      uint64
}

// fileAllocStep is how much the plain-file limit allocates at a time: the
// journal's default segment size.
const fileAllocStep = 64 << 20

func openFileAppender(b *testing.B, recs [][]byte) journalAppender {
	dir := b.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		b.Fatal(err)
	}
	_ = d.Close()
	return &fileAppender{f: f, buf: bytes.Join(recs, nil)}
}

func (a *fileAppender) append(*testing.B) error {
	if n := int64(len(a.buf)); a.off+n > a.alloc {
		step := max(fileAllocStep, n)
		if err := syscall.Fallocate(int(a.f.Fd()), 0, a.alloc, step); err != nil {
			return err
		}
		a.alloc += step
	}
	if _, err := a.f.WriteAt(a.buf, a.off); err != nil {
		return err
	}
	a.off += int64(len(a.buf))
	a.syncs++
	return syscall.Fdatasync(int(a.f.Fd()))
}

func (a *fileAppender) fsyncs() uint64 { return a.syncs }
func (a *fileAppender) close() error   { return a.f.Close() }

// --- reads ---

// journalReadBytes is how much each read benchmark writes before reading.
const journalReadBytes = 64 << 20

func BenchmarkJournalRead(b *testing.B) {
	for _, impl := range []string{"mmap", "pread", "tidwall"} {
		for _, size := range []int{1 << 10, 64 << 10} {
			b.Run(fmt.Sprintf("impl=%s/size=%s", impl, benchkit.SizeName(size)), func(b *testing.B) {
				n := journalReadBytes / size
				rec := benchkit.Record(size, 1)
				var read func() int
				var closeFn func() error
				switch impl {
				case "mmap", "pread":
					read, closeFn = openJournalReader(b, impl == "mmap", n, rec)
				case "tidwall":
					read, closeFn = openTidwallReader(b, n, rec)
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				sink := 0
				for range b.N {
					sink += read()
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
				if sink == 0 {
					b.Fatal("read nothing")
				}
				if err := closeFn(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// openJournalReader fills a journal with n entries of one record each and
// returns a function that reads the next entry (wrapping around) through
// an iterator. sealed: small segments, reopened so that every entry read
// lies in a sealed (mmapped) segment; else one big active segment.
func openJournalReader(b *testing.B, sealed bool, n int, rec []byte) (func() int, func() error) {
	dir := b.TempDir()
	o := journal.DefaultOptions()
	o.SyncPolicy = journal.SyncNone
	o.SegmentSize = 1 << 30
	if sealed {
		o.SegmentSize = 4 << 20
	}
	j, err := journal.Open(dir, o)
	if err != nil {
		b.Fatal(err)
	}
	g := journal.AppendGroup(nil, &journal.Group{Stream: []byte("bench")}, []journal.Record{{Value: rec}})
	groups := [][]byte{g}
	for range n {
		if _, err := j.Write(groups); err != nil {
			b.Fatal(err)
		}
	}
	if sealed { // one more segment, so every entry above is sealed
		big := journal.AppendGroup(nil, &journal.Group{Stream: []byte("bench")}, []journal.Record{{Value: make([]byte, 4<<20)}})
		if _, err := j.Write([][]byte{big}); err != nil {
			b.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
	if j, err = journal.Open(dir, o); err != nil {
		b.Fatal(err)
	}
	it := j.NewIterator(1)
	pos := 0
	var r journal.GroupReader
	next := func() int {
		if pos == n { // entries 1..n only: entry n+1 fills the active segment
			_ = it.Close()
			it, pos = j.NewIterator(1), 0
		}
		if !it.Next() {
			b.Fatal(it.Err())
		}
		pos++
		e := it.Entry()
		r.Reset(e.Payload, e.FirstSeq)
		if !r.Next() || !r.NextRecord() {
			b.Fatal(r.Err())
		}
		v := r.Record().Value
		return int(v[0]) + int(v[len(v)-1]) + 1
	}
	return next, func() error { _ = it.Close(); return j.Close() }
}

func openTidwallReader(b *testing.B, n int, rec []byte) (func() int, func() error) {
	opts := *wal.DefaultOptions
	opts.NoSync = true
	opts.NoCopy = true
	dir := b.TempDir()
	l, err := wal.Open(dir, &opts)
	if err != nil {
		b.Fatal(err)
	}
	var batch wal.Batch
	for i := 1; i <= n; i++ {
		batch.Write(uint64(i), rec)
		if i%256 == 0 || i == n {
			if err := l.WriteBatch(&batch); err != nil {
				b.Fatal(err)
			}
			batch.Clear()
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	opts = *wal.DefaultOptions
	opts.NoSync = true
	opts.NoCopy = true
	if l, err = wal.Open(dir, &opts); err != nil {
		b.Fatal(err)
	}
	next := uint64(1)
	read := func() int {
		v, err := l.Read(next)
		if err != nil {
			b.Fatal(err)
		}
		next++
		if next > uint64(n) {
			next = 1
		}
		return int(v[0]) + int(v[len(v)-1]) + 1
	}
	return read, l.Close
}
