package journal

// Synced returns the highest entry index known durable: every entry at or
// below it was covered by a successful fsync, or was read back and fsynced
// by Open. Entries above it may sit in the page cache only. It stays
// readable after a failure and after Close, so that whoever reopens a
// failed journal can drop what no fsync confirmed (TruncateBack(Synced())).
// Under SyncNone nothing is fsynced after Open, so it stays at Open's last
// index. Safe for concurrent use.
func (j *Journal) Synced() uint64 {
	j.w.Lock()
	defer j.w.Unlock()
	return j.w.synced
}
