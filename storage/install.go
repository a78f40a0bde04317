package storage

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/badbatch/badbatch/journal"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// snapshotComplete marks a fully received, synced staging directory that
// the consensus module accepted; it holds the snapshot's index (8 bytes,
// little endian). Open finishes installing it if a crash interrupted
// InstallSnapshot, provided the consensus module's durable state names it
// (Replication.SnapshotIndex): that state is the installation's commit
// point.
const snapshotComplete = "COMPLETE"

// SealSnapshot makes the snapshot that ReceiveSnapshot staged installable
// at index, durably. The consensus module calls it before it records the
// snapshot in its own durable state, and calls InstallSnapshot after: a
// crash before its record leaves a sealed stage that the next Open
// removes (Replication.SnapshotIndex is below index), a crash after it a
// stage that the next Open installs. Cluster mode only.
func (s *Store) SealSnapshot(index uint64) error {
	if s.rep == nil {
		return fmt.Errorf("%w: SealSnapshot needs cluster mode", ErrInvalidArgument)
	}
	fs := s.opts.FS
	stage := fs.PathJoin(s.dir, snapshotStage)
	if _, err := fs.Stat(fs.PathJoin(stage, journalDirName)); err != nil {
		return fmt.Errorf("storage: snapshot: seal at %d: nothing staged: %w", index, err)
	}
	f, err := fs.Create(fs.PathJoin(stage, snapshotComplete), vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("storage: snapshot: seal at %d: %w", index, err)
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], index)
	if _, err := f.Write(b[:]); err != nil {
		_ = f.Close()
		return fmt.Errorf("storage: snapshot: seal at %d: %w", index, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("storage: snapshot: seal at %d: %w", index, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(fs, stage)
}

// sealedIndex returns the index a staged snapshot was sealed at, and false
// when it is not sealed (no marker, or a torn one).
func sealedIndex(fs vfs.FS, stage string) (uint64, bool) {
	f, err := fs.Open(fs.PathJoin(stage, snapshotComplete))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var b [8]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[:]), true
}

// finishInstall moves a staged snapshot sealed at an index at or below
// upTo over the live journal and index (each step idempotent, so that Open
// can finish what a crash interrupted) and removes the staging directory.
// A staging directory that is not sealed, or sealed above upTo (the
// consensus module never recorded it), is removed and changes nothing.
func finishInstall(fs vfs.FS, dir string, upTo uint64) error {
	stage := fs.PathJoin(dir, snapshotStage)
	if _, err := fs.Stat(stage); err != nil {
		return nil
	}
	if idx, ok := sealedIndex(fs, stage); !ok || idx > upTo {
		if err := fs.RemoveAll(stage); err != nil {
			return fmt.Errorf("storage: remove the unaccepted snapshot %s: %w", stage, err)
		}
		return syncDir(fs, dir)
	}
	for _, name := range []string{journalDirName, indexDirName} {
		staged := fs.PathJoin(stage, name)
		if _, err := fs.Stat(staged); err != nil {
			continue // moved before a crash
		}
		live := fs.PathJoin(dir, name)
		if err := fs.RemoveAll(live); err != nil {
			return fmt.Errorf("storage: install snapshot: remove %s: %w", live, err)
		}
		if err := syncDir(fs, dir); err != nil {
			return err
		}
		if err := fs.Rename(staged, live); err != nil {
			return fmt.Errorf("storage: install snapshot: rename %s: %w", staged, err)
		}
		if err := syncDir(fs, dir); err != nil {
			return err
		}
	}
	if err := fs.RemoveAll(stage); err != nil {
		return fmt.Errorf("storage: install snapshot: remove %s: %w", stage, err)
	}
	return syncDir(fs, dir)
}

// InstallSnapshot replaces the store's journal and index with the snapshot
// that ReceiveSnapshot staged and SealSnapshot sealed at commit, then
// applies its journal up to commit. The
// store stays open: readers wait while the files are swapped, then see the
// snapshot's state. Cluster mode only, on a node that proposes nothing (a
// follower). A crash part-way is finished by the next Open. After an error
// the store is unavailable (ErrUnavailable) until reopened.
func (s *Store) InstallSnapshot(commit uint64) error {
	r := s.rep
	if r == nil {
		return fmt.Errorf("%w: InstallSnapshot needs cluster mode", ErrInvalidArgument)
	}
	fs := s.opts.FS
	if idx, ok := sealedIndex(fs, fs.PathJoin(s.dir, snapshotStage)); !ok || idx != commit {
		return fmt.Errorf("%w: InstallSnapshot at %d: the staged snapshot is not sealed at it (SealSnapshot)", ErrInvalidArgument, commit)
	}
	r.pause()
	s.retainMu.Lock()
	defer s.retainMu.Unlock()
	s.readMu.Lock()
	err := s.swapIn(commit)
	if err != nil {
		s.detached = true
	}
	s.readMu.Unlock()
	if err != nil {
		s.fail(err)
		return err
	}
	r.resume()
	s.wake()
	return nil
}

// swapIn closes the journal and index, installs the staged snapshot and
// reopens and recovers. REQUIRES: readMu and retainMu held, apply goroutine
// paused.
func (s *Store) swapIn(commit uint64) error {
	if err := s.x.close(false); err != nil {
		return fmt.Errorf("storage: install snapshot: close index: %w", err)
	}
	if err := s.j.Close(); err != nil {
		return fmt.Errorf("storage: install snapshot: close journal: %w", err)
	}
	if err := finishInstall(s.opts.FS, s.dir, commit); err != nil {
		return err
	}
	j, err := journal.Open(JournalDir(s.opts.FS, s.dir), s.journalOptions())
	if err != nil {
		return fmt.Errorf("storage: install snapshot: open journal: %w", err)
	}
	s.j = j
	s.jErr.Store(j)
	if err := s.openIndex(); err != nil {
		return err
	}
	s.opts.Replication.Commit = commit
	s.rep.commit.Store(0)
	if err := s.recover(); err != nil {
		return err
	}
	s.durableEntry.Store(s.app.pos.Entry)
	return nil
}

// SetRetentionFloor keeps retention from removing any journal entry at or
// after index: cluster mode keeps every entry above raft's compaction point
// (the cluster raises the floor as it compacts). Standalone there is no
// floor.
func (s *Store) SetRetentionFloor(index uint64) {
	s.retentionFloor.Store(index + 1)
}

// noRetentionFloor is the floor of a standalone store.
const noRetentionFloor = math.MaxUint64
