package storage

import "fmt"

// MaxStreamNameLength is the longest valid stream name.
const MaxStreamNameLength = 200

// NamePattern is the syntax of stream and cursor names, for messages and
// documentation; ValidateStreamName is what checks it.
const NamePattern = "[A-Za-z0-9][A-Za-z0-9._-]{0,199}"

// ValidateStreamName reports whether name matches NamePattern. The error
// wraps ErrInvalidStream.
func ValidateStreamName(name string) error {
	if len(name) == 0 {
		return fmt.Errorf("%w: empty", ErrInvalidStream)
	}
	if len(name) > MaxStreamNameLength {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidStream, len(name), MaxStreamNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return fmt.Errorf("%w: %q: byte %d (%q) not allowed", ErrInvalidStream, name, i, c)
		}
	}
	return nil
}

// RecordSize is what MaxRecordBytes bounds: the record's key, value and
// header names and values, in bytes.
func RecordSize(r *Record) int {
	n := len(r.Key) + len(r.Value)
	for k, v := range r.Headers {
		n += len(k) + len(v)
	}
	return n
}
