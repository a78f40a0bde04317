package transport

import (
	"errors"
	"fmt"
)

// Sentinel errors. Check them with errors.Is: the transport wraps them with
// the reason, and where it has one, the remote address or peer id.
var (
	// ErrInvalidOptions is returned by New for options it cannot use.
	ErrInvalidOptions = errors.New("cluster/transport: invalid options")
	// ErrClosed is returned by Close after the first call.
	ErrClosed = errors.New("cluster/transport: closed")
	// ErrHandshake reports a handshake that is not well formed: bad magic,
	// version, kind, reserved bytes or lengths, or a connection that ended
	// or timed out before the handshake completed.
	ErrHandshake = errors.New("cluster/transport: bad handshake")
	// ErrAuth reports a handshake that was well formed but refused: wrong
	// secret (a proof that does not verify), wrong cluster id, a node id
	// that is not the expected one, or a peer this node does not know.
	ErrAuth = errors.New("cluster/transport: authentication failed")
	// ErrFrame reports a frame that fails validation after the handshake:
	// a bad header, a length over the bound, a MAC that does not verify
	// (replayed, reordered, spliced or damaged), a truncated frame, an
	// undecodable body, or a frame type not allowed at that point. The
	// connection is closed.
	ErrFrame = errors.New("cluster/transport: bad frame")
	// ErrSnapshot reports a snapshot transfer that the receiver refused or
	// that did not complete.
	ErrSnapshot = errors.New("cluster/transport: snapshot failed")
)

// frameErrorf wraps ErrFrame with the frame's ordinal on its connection.
func frameErrorf(frame uint64, format string, args ...any) error {
	return fmt.Errorf("%w: frame %d: %s", ErrFrame, frame, fmt.Sprintf(format, args...))
}
