package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/badbatch/badbatch/journal"
	"github.com/badbatch/badbatch/storage"
	"github.com/badbatch/badbatch/storage/cluster"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/spf13/cobra"
)

type verifyFlags struct {
	dataDir string
	repair  bool
	workDir string
}

func newVerifyCmd() *cobra.Command {
	f := verifyFlags{}
	cmd := &cobra.Command{
		Use:   "verify --data-dir D [--repair]",
		Short: "Check the journal's CRCs and the index's consistency with the journal, offline",
		Long: `Check a stopped server's data directory:

  1. the journal: every segment header and entry CRC (CRC-32C), the density of
     entry indexes and of sequence numbers, and whether the tail is torn;
  2. the index: every stream is read back through the index from its first to
     its next offset (each index run is matched against its journal entry),
     offsets are dense and counts agree, and the global log is in order.

Without --repair nothing in --data-dir is modified: the checks run on a copy in
--work-dir. With --repair they run in place: a torn journal tail is truncated
to the last valid entry (those bytes were never acknowledged), and an index
that cannot be opened or read is moved aside and rebuilt from the journal.
The exit status is 0 when everything is consistent, 2 when problems remain.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runVerify(cmd, &f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.dataDir, "data-dir", "./data", "data directory to check")
	fs.BoolVar(&f.repair, "repair", false, "repair in place (truncate a torn tail, rebuild a broken index)")
	fs.StringVar(&f.workDir, "work-dir", "", "where the check-only copy goes (default: the system temp dir)")
	withEnvHelp(fs)
	return cmd
}

// report collects the verification's findings.
type report struct {
	w        io.Writer
	problems int
}

func (r *report) ok(format string, args ...any) { fmt.Fprintf(r.w, "  ok       "+format+"\n", args...) }
func (r *report) note(format string, args ...any) {
	fmt.Fprintf(r.w, "  note     "+format+"\n", args...)
}
func (r *report) problem(format string, args ...any) {
	r.problems++
	fmt.Fprintf(r.w, "  PROBLEM  "+format+"\n", args...)
}

func runVerify(cmd *cobra.Command, f *verifyFlags) error {
	out := cmd.OutOrStdout()
	if _, err := os.Stat(storage.JournalDir(vfs.Default, f.dataDir)); err != nil {
		return fmt.Errorf("%s is not a BadBatch data directory: %w", f.dataDir, err)
	}
	target := f.dataDir
	if !f.repair {
		tmp, err := os.MkdirTemp(f.workDir, "badbatch-verify-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		n, err := copyTree(f.dataDir, tmp)
		if err != nil {
			return fmt.Errorf("copying %s for a check-only run: %w", f.dataDir, err)
		}
		fmt.Fprintf(out, "verifying a copy of %s (%s) in %s; nothing in %s is modified (--repair works in place)\n",
			f.dataDir, humanBytes(n), tmp, f.dataDir)
		target = tmp
	} else {
		fmt.Fprintf(out, "verifying and repairing %s in place\n", f.dataDir)
	}
	r := &report{w: out}
	policy := journal.SyncNone // a throw-away copy
	if f.repair {
		policy = journal.SyncAlways
	}
	fmt.Fprintln(out, "journal:")
	journalRecords, ok := verifyJournal(r, storage.JournalDir(vfs.Default, target), policy, f.repair)
	if ok {
		fmt.Fprintln(out, "index:")
		verifyIndex(cmd.Context(), r, target, policy, f.repair, journalRecords)
	}
	if r.problems > 0 {
		return exitError{code: 2, err: fmt.Errorf("%d problem(s) found in %s", r.problems, f.dataDir)}
	}
	fmt.Fprintf(out, "%s is consistent\n", f.dataDir)
	return nil
}

// verifyJournal opens the journal with ScanSealed (so Open checks every
// CRC of every segment, not only the active one's, and repairs a torn
// tail) and iterates every entry. It returns the journal's record
// count and whether the index check can run.
func verifyJournal(r *report, dir string, policy journal.SyncPolicy, repair bool) (uint64, bool) {
	j, err := journal.Open(dir, &journal.Options{SyncPolicy: policy, ScanSealed: true, Logger: quiet()})
	if err != nil {
		r.problem("journal does not open: %v", err)
		if errors.Is(err, journal.ErrCorrupt) {
			r.note("corruption before the tail is not repaired automatically: restore the segment named above from a backup")
		}
		return 0, false
	}
	defer j.Close()
	if rep := j.RepairReport(); rep.Truncated {
		verb := "would be truncated (run --repair, or the next serve does it)"
		if repair {
			verb = "truncated"
		}
		r.note("torn tail %s: %s at byte %d, %d bytes, %d complete entries never acknowledged (%s)",
			verb, rep.Segment, rep.Offset, rep.Bytes, rep.Entries, rep.Reason)
	}
	for _, name := range j.RepairReport().RemovedFiles {
		r.note("leftover file removed: %s", name)
	}
	st := j.Stats()
	it := j.NewIterator(0)
	defer it.Close()
	var entries, records uint64
	var prev journal.EntryInfo
	for it.Next() {
		e := it.Entry()
		if entries > 0 {
			if e.Index != prev.Index+1 {
				r.problem("entry %d follows entry %d: index gap", e.Index, prev.Index)
			}
			if e.FirstSeq != prev.FirstSeq+uint64(prev.Records) {
				r.problem("entry %d starts at seq %d, want %d", e.Index, e.FirstSeq, prev.FirstSeq+uint64(prev.Records))
			}
		}
		prev = e.EntryInfo
		entries++
		records += uint64(e.Records)
	}
	if err := it.Err(); err != nil {
		r.problem("reading entry %d: %v", prev.Index+1, err)
		return records, false
	}
	if entries != st.Entries {
		r.problem("iterated %d entries, the journal holds %d", entries, st.Entries)
	}
	r.ok("%d segments, %s, entries %d..%d, %d records: every CRC valid, indexes and seqs dense",
		st.Segments, humanBytes(st.Bytes), st.FirstIndex, st.LastIndex, records)
	return records, true
}

// verifyIndex opens the store over the journal (bringing the index up to
// the journal's end) and reads every stream back through the index, then
// the global log.
func verifyIndex(ctx context.Context, r *report, dir string, policy journal.SyncPolicy, repair bool, journalRecords uint64) {
	store := openVerifiedStore(r, dir, policy, repair)
	if store == nil {
		return
	}
	defer store.Close()
	problemsBefore := r.problems
	infos, err := store.Streams(ctx)
	if err != nil {
		r.problem("listing streams: %v", err)
		return
	}
	spans := map[string]offsetSpan{}
	var indexed uint64
	for _, info := range infos {
		spans[info.Stream] = offsetSpan{info.FirstOffset, info.NextOffset}
		indexed += verifyStream(ctx, r, store, info)
	}
	global := verifyGlobalLog(ctx, r, store, spans)
	if global != indexed {
		r.problem("the global log has %d records, the streams %d", global, indexed)
	}
	if indexed > journalRecords {
		r.problem("the index holds %d records, more than the journal's %d", indexed, journalRecords)
	}
	if r.problems == problemsBefore {
		r.ok("%d streams, %d records read back through the index, each matched to its journal entry; global log in order",
			len(infos), indexed)
		if d := journalRecords - indexed; d > 0 {
			r.note("%d journaled records are not stream records: cursor updates, rejected appends (offset mismatches, duplicates), or records removed by retention", d)
		}
	}
}

// openVerifiedStore opens the store in dir, in cluster mode if it holds a
// cluster node's state. With repair, an index that does not open is moved
// aside and rebuilt from the journal. It returns nil after reporting a
// problem.
func openVerifiedStore(r *report, dir string, policy journal.SyncPolicy, repair bool) *storage.Store {
	so := storage.DefaultOptions()
	so.SyncPolicy = policy
	so.Logger = quiet()
	node, commit, clustered, err := cluster.StoredState(so.FS, dir)
	if err != nil {
		r.problem("cluster state: %v", err)
		return nil
	}
	if clustered {
		// A stopped cluster node: apply its journal up to the commit index
		// it stored; verify appends nothing, so nothing is ever proposed.
		so.Replication = &storage.Replication{Commit: commit, Proposer: noProposals{}}
		r.ok("cluster node %d, commit index %d", node, commit)
	}
	store, err := storage.Open(dir, so)
	if err != nil && repair {
		r.note("index does not open (%v): moving it aside and rebuilding it from the journal", err)
		aside, merr := storage.MoveIndexAside(so.FS, dir, time.Now())
		if merr != nil {
			r.problem("%v", merr)
			return nil
		}
		r.note("index moved to %s", aside)
		store, err = storage.Open(dir, so)
	}
	if err != nil {
		r.problem("index does not open over the journal: %v (--repair rebuilds it)", err)
		return nil
	}
	return store
}

// offsetSpan is a stream's retained offsets [first, next).
type offsetSpan struct{ first, next uint64 }

// verifyStream reads info's stream back from its first to its next offset
// and returns the records read.
func verifyStream(ctx context.Context, r *report, store *storage.Store, info storage.StreamInfo) uint64 {
	if info.Records != info.NextOffset-info.FirstOffset {
		r.problem("stream %s: %d records for offsets [%d, %d)", info.Stream, info.Records, info.FirstOffset, info.NextOffset)
	}
	var read uint64
	want := info.FirstOffset
	for want < info.NextOffset {
		recs, err := store.Read(ctx, info.Stream, want, 10000)
		if err != nil {
			r.problem("stream %s offset %d: %v", info.Stream, want, err)
			break
		}
		if len(recs) == 0 {
			r.problem("stream %s: offsets [%d, %d) missing", info.Stream, want, info.NextOffset)
			break
		}
		for i := range recs {
			if recs[i].Offset != want || recs[i].Stream != info.Stream {
				r.problem("stream %s: record %s/%d where offset %d was expected", info.Stream, recs[i].Stream, recs[i].Offset, want)
			}
			want = recs[i].Offset + 1
		}
		read += uint64(len(recs))
	}
	return read
}

// verifyGlobalLog reads the global log, checks that seqs increase and that
// every record lies within its stream's span, and returns its length.
func verifyGlobalLog(ctx context.Context, r *report, store *storage.Store, spans map[string]offsetSpan) uint64 {
	var global, lastSeq uint64
	for from := uint64(0); ; {
		recs, err := store.ReadGlobal(ctx, from, 10000)
		if err != nil {
			r.problem("global log from seq %d: %v", from, err)
			return global
		}
		if len(recs) == 0 {
			return global
		}
		for i := range recs {
			rec := &recs[i]
			if global > 0 && rec.Seq <= lastSeq {
				r.problem("global log: seq %d after %d", rec.Seq, lastSeq)
			}
			sp, ok := spans[rec.Stream]
			if !ok || rec.Offset < sp.first || rec.Offset >= sp.next {
				r.problem("global log: seq %d is %s/%d, outside the stream's offsets", rec.Seq, rec.Stream, rec.Offset)
			}
			lastSeq = rec.Seq
			global++
		}
		from = lastSeq + 1
	}
}

// noProposals is the Proposer of a store opened by verify, which never
// appends.
type noProposals struct{}

func (noProposals) Propose(*storage.Proposal) {}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// copyTree copies the regular files under src into dst and returns the
// bytes copied. The journal's spare files (recycled segments, whose bytes
// mean nothing) are left out.
func copyTree(src, dst string) (int64, error) {
	var total int64
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() || journal.IsSpareFile(d.Name()) {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		outFile, err := os.Create(to)
		if err != nil {
			return err
		}
		n, err := io.Copy(outFile, in)
		total += n
		if cerr := outFile.Close(); err == nil {
			err = cerr
		}
		return err
	})
	return total, err
}
