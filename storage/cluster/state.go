package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// The state file (DIR/cluster/state) holds what raft needs beside its log:
// the HardState, the membership with every member's addresses, the raft
// compaction point (the snapshot index and term) and the node's identity.
//
// It has two slots of stateSlotSize bytes; a save overwrites the slot not
// holding the newest valid state and then (when durable is asked for)
// fdatasyncs, so a torn save leaves the other slot intact. Open takes the
// valid slot with the higher sequence number. A slot is:
//
//	 0       4        8          16       20
//	+-------+--------+----------+--------+-----------------------+
//	| magic | length | sequence | crc32c | JSON body (length B)  |
//	|"BBCS" |  u32   |   u64    | [0,16) + body                  |
//	+-------+--------+----------+--------+-----------------------+
//
// (little-endian; crc32c covers bytes [0,16) and the body). NEVER CHANGE
// these constants; add a field to the body instead.
const (
	stateFileName   = "state"
	stateSlotSize   = 64 << 10
	stateHeaderSize = 20
	stateMagic      = "BBCS"
)

var stateCRC = crc32.MakeTable(crc32.Castagnoli)

// member is one node of the membership as the state file keeps it.
type member struct {
	ID          uint64 `json:"id"`
	ClusterAddr string `json:"cluster_addr"`
	URL         string `json:"url,omitempty"`
}

// persistent is the body of a state slot.
type persistent struct {
	NodeID    uint64 `json:"node_id"`
	ClusterID uint64 `json:"cluster_id"`
	// HardState.
	Term   uint64 `json:"term"`
	Vote   uint64 `json:"vote"`
	Commit uint64 `json:"commit"`
	// ConfState (as raft keeps it) and the index of the configuration
	// entry that produced it.
	Voters         []uint64 `json:"voters"`
	Learners       []uint64 `json:"learners,omitempty"`
	VotersOutgoing []uint64 `json:"voters_outgoing,omitempty"`
	LearnersNext   []uint64 `json:"learners_next,omitempty"`
	AutoLeave      bool     `json:"auto_leave,omitempty"`
	ConfIndex      uint64   `json:"conf_index"`
	// Members holds the addresses of every node in the configuration.
	Members []member `json:"members"`
	// SnapIndex and SnapTerm are raft's compaction point: entries up to
	// SnapIndex are reported compacted to raft (the journal may still hold
	// them for reads) and the term of SnapIndex survives here even after
	// the journal dropped that entry.
	SnapIndex uint64 `json:"snap_index"`
	SnapTerm  uint64 `json:"snap_term"`
	// Removed is set once this node applied its own removal.
	Removed bool `json:"removed,omitempty"`
}

// stateFile is the open state file. Not safe for concurrent use: the raft
// goroutine owns it (Open reads it before that goroutine starts).
type stateFile struct {
	f    vfs.File
	path string
	seq  uint64 // sequence of the newest valid slot
	slot int    // index (0 or 1) of the newest valid slot
	buf  []byte
}

var errNoState = errors.New("cluster: no state file")

// openState opens path. It returns errNoState (and a nil file) if the file
// does not exist; a file with no valid slot is an error.
func openState(fs vfs.FS, path string) (*stateFile, persistent, error) {
	f, err := fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		if _, serr := fs.Stat(path); serr != nil && errors.Is(serr, os.ErrNotExist) {
			return nil, persistent{}, errNoState
		}
		return nil, persistent{}, fmt.Errorf("cluster: open state %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, persistent{}, fmt.Errorf("cluster: stat state %s: %w", path, err)
	}
	if st.Size() == 0 {
		_ = f.Close()
		return nil, persistent{}, errNoState
	}
	sf := &stateFile{f: f, path: path, slot: -1}
	var best persistent
	for i := range 2 {
		b := make([]byte, stateSlotSize)
		n, rerr := f.ReadAt(b, int64(i)*stateSlotSize)
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			_ = f.Close()
			return nil, persistent{}, fmt.Errorf("cluster: read state %s slot %d: %w", path, i, rerr)
		}
		p, seq, ok := decodeSlot(b[:n])
		if ok && (sf.slot < 0 || seq > sf.seq) {
			sf.slot, sf.seq, best = i, seq, p
		}
	}
	if sf.slot < 0 {
		_ = f.Close()
		return nil, persistent{}, fmt.Errorf("cluster: state file %s has no valid slot (corrupt)", path)
	}
	return sf, best, nil
}

// createState creates path durably with p as its first state.
func createState(fs vfs.FS, dir string, p persistent) (*stateFile, error) {
	path := fs.PathJoin(dir, stateFileName)
	tmp := path + ".tmp"
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("cluster: create state %s: %w", tmp, err)
	}
	sf := &stateFile{f: f, path: tmp, slot: 1}
	if err := sf.save(p, true); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("cluster: close state %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("cluster: rename state %s: %w", tmp, err)
	}
	if err := syncDir(fs, dir); err != nil {
		return nil, err
	}
	sf2, _, err := openState(fs, path)
	return sf2, err
}

// mkdirDurable creates dir and its missing parents, fsyncing each new
// directory's parent so that the entry survives a power loss.
func mkdirDurable(fs vfs.FS, dir string) error {
	if _, err := fs.Stat(dir); err == nil {
		return nil
	}
	parent := fs.PathDir(dir)
	if parent != dir && parent != "" {
		if err := mkdirDurable(fs, parent); err != nil {
			return err
		}
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if parent == "" {
		parent = "."
	}
	return syncDir(fs, parent)
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("cluster: open dir %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("cluster: fsync dir %s: %w", dir, err)
	}
	return d.Close()
}

// save writes p into the older slot; durable fdatasyncs it before
// returning.
func (sf *stateFile) save(p persistent, durable bool) error {
	body, err := json.Marshal(&p)
	if err != nil {
		return fmt.Errorf("cluster: encode state: %w", err)
	}
	if len(body) > stateSlotSize-stateHeaderSize {
		return fmt.Errorf("cluster: state of %d bytes exceeds the slot", len(body))
	}
	seq := sf.seq + 1
	b := append(sf.buf[:0], make([]byte, stateHeaderSize)...)
	copy(b, stateMagic)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(body)))
	binary.LittleEndian.PutUint64(b[8:], seq)
	b = append(b, body...)
	crc := crc32.Update(crc32.Checksum(b[:16], stateCRC), stateCRC, body)
	binary.LittleEndian.PutUint32(b[16:], crc)
	sf.buf = b
	slot := 1 - sf.slot
	if sf.slot < 0 {
		slot = 0
	}
	off := int64(slot) * stateSlotSize
	if _, err := sf.f.WriteAt(b, off); err != nil {
		return fmt.Errorf("cluster: write state %s at %d: %w", sf.path, off, err)
	}
	if durable {
		if err := sf.f.SyncData(); err != nil {
			return fmt.Errorf("cluster: fdatasync state %s: %w", sf.path, err)
		}
	}
	sf.seq, sf.slot = seq, slot
	return nil
}

func (sf *stateFile) close() error { return sf.f.Close() }

// decodeSlot decodes one slot; ok is false for an empty, torn or corrupt
// one.
func decodeSlot(b []byte) (p persistent, seq uint64, ok bool) {
	if len(b) < stateHeaderSize || string(b[:4]) != stateMagic {
		return p, 0, false
	}
	n := binary.LittleEndian.Uint32(b[4:])
	if int64(n) > int64(len(b)-stateHeaderSize) {
		return p, 0, false
	}
	body := b[stateHeaderSize : stateHeaderSize+int(n)]
	if crc32.Update(crc32.Checksum(b[:16], stateCRC), stateCRC, body) != binary.LittleEndian.Uint32(b[16:]) {
		return p, 0, false
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return p, 0, false
	}
	return p, binary.LittleEndian.Uint64(b[8:]), true
}
