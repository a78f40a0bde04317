package storage

import (
	"fmt"
	"math"

	"github.com/badbatch/badbatch/journal"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// snapshotComplete marks a fully received, synced staging directory: Open
// finishes installing it if a crash interrupted InstallSnapshot.
const snapshotComplete = "COMPLETE"

// markSnapshotComplete makes the staged snapshot installable.
func markSnapshotComplete(fs vfs.FS, stage string) error {
	path := fs.PathJoin(stage, snapshotComplete)
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("storage: snapshot: mark complete: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("storage: snapshot: mark complete: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(fs, stage)
}

// finishInstall moves a complete staged snapshot's journal and index over
// the live ones (each step idempotent, so that Open can finish what a
// crash interrupted) and removes the staging directory. A staging
// directory that is not complete is removed.
func finishInstall(fs vfs.FS, dir string) error {
	stage := fs.PathJoin(dir, snapshotStage)
	if _, err := fs.Stat(stage); err != nil {
		return nil
	}
	if _, err := fs.Stat(fs.PathJoin(stage, snapshotComplete)); err != nil {
		return fs.RemoveAll(stage)
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
// that ReceiveSnapshot staged, then applies its journal up to commit. The
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
	if err := markSnapshotComplete(fs, fs.PathJoin(s.dir, snapshotStage)); err != nil {
		return err
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
	if err := finishInstall(s.opts.FS, s.dir); err != nil {
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
