package storage

import "fmt"

// MaxStreamNameLength is the longest valid stream name.
const MaxStreamNameLength = 200

// ValidateStreamName reports whether name matches
// [A-Za-z0-9][A-Za-z0-9._-]{0,199}. The error wraps ErrInvalidStream.
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
