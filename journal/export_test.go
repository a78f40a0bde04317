package journal

// residentCount returns how many segments the set holds.
func (r *residentSet) residentCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lru)
}
