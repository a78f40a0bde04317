package storage

import "time"

// openWithClock is Open with clock, rather than time.Now, as the producers'
// clock: the group and default record timestamps, and the wall-clock time
// TTLs and expiry are read against.
func openWithClock(dir string, opts *Options, clock func() time.Time) (*Store, error) {
	return open(dir, opts, clock)
}
