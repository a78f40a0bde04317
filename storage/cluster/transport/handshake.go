package transport

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Handshake constants. NEVER CHANGE any of them: they are the wire format
// (doc.go). A new protocol gets a new version byte and a new label.
const (
	helloMagic      = "BBCT"
	protocolVersion = 1
	// protocolLabel starts every MAC input of the handshake and of the key
	// derivation, so that nothing else keyed by the secret collides with them.
	protocolLabel   = "badbatch cluster transport v1\x00"
	helloFixedSize  = 68
	nonceSize       = 32
	proofSize       = sha256.Size
	confirmSize     = 1 + proofSize
	labelProofDial  = "proof dialer\x00"
	labelProofAcc   = "proof acceptor\x00"
	labelKeyDialAcc = "key dialer to acceptor\x00"
	labelKeyAccDial = "key acceptor to dialer\x00"
)

// connKind says what a connection carries. NEVER CHANGE the values.
type connKind uint8

const (
	kindStream   connKind = 1 // raft messages from the dialer; heartbeats both ways
	kindSnapshot connKind = 2 // one MsgSnap and its body from the dialer; one ack back
)

func (k connKind) String() string {
	switch k {
	case kindStream:
		return "stream"
	case kindSnapshot:
		return "snapshot"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// status is the acceptor's verdict, sent in its hello and in its confirm.
// NEVER CHANGE the values. The status is advisory (unauthenticated): the
// dialer trusts only the acceptor's proof.
type status uint8

const (
	statusOK           status = 0
	statusBadVersion   status = 1
	statusWrongCluster status = 2
	statusWrongNode    status = 3 // the dialer expected another node id here
	statusUnknownPeer  status = 4 // the dialer's id is not a peer of the acceptor (or is its own)
	statusBadProof     status = 5 // the dialer's proof did not verify: wrong secret
	statusMax                 = statusBadProof
)

func (s status) String() string {
	switch s {
	case statusOK:
		return "ok"
	case statusBadVersion:
		return "unsupported protocol version"
	case statusWrongCluster:
		return "wrong cluster id"
	case statusWrongNode:
		return "wrong node id"
	case statusUnknownPeer:
		return "unknown peer id"
	case statusBadProof:
		return "bad proof (wrong secret)"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// hello is the first message each side sends.
type hello struct {
	version   uint8
	kind      connKind
	status    status
	clusterID uint64
	from      uint64 // the sender's node id
	to        uint64 // the node id the sender expects on the other side
	nonce     [nonceSize]byte
	url       string // the sender's HTTP URL
	addr      string // the sender's cluster listen address
}

// appendHello appends h's encoding to b.
func appendHello(b []byte, h *hello) []byte {
	b = append(b, helloMagic...)
	b = append(b, h.version, byte(h.kind), byte(h.status), 0)
	b = binary.LittleEndian.AppendUint64(b, h.clusterID)
	b = binary.LittleEndian.AppendUint64(b, h.from)
	b = binary.LittleEndian.AppendUint64(b, h.to)
	b = append(b, h.nonce[:]...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.url)))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.addr)))
	b = append(b, h.url...)
	return append(b, h.addr...)
}

// parseHelloFixed validates the fixed part of a hello and returns it with
// the lengths of the two strings that follow. A hello of another version is
// returned with its version and an error wrapping ErrHandshake.
func parseHelloFixed(b *[helloFixedSize]byte) (h hello, urlLen, addrLen int, err error) {
	if string(b[0:4]) != helloMagic {
		return h, 0, 0, fmt.Errorf("%w: bad magic % x", ErrHandshake, b[0:4])
	}
	h.version = b[4]
	if h.version != protocolVersion {
		return h, 0, 0, fmt.Errorf("%w: protocol version %d, this node speaks %d", ErrHandshake, h.version, protocolVersion)
	}
	h.kind, h.status = connKind(b[5]), status(b[6])
	switch {
	case h.kind != kindStream && h.kind != kindSnapshot:
		return h, 0, 0, fmt.Errorf("%w: unknown connection kind %d", ErrHandshake, b[5])
	case h.status > statusMax:
		return h, 0, 0, fmt.Errorf("%w: unknown status %d", ErrHandshake, b[6])
	case b[7] != 0:
		return h, 0, 0, fmt.Errorf("%w: nonzero reserved byte", ErrHandshake)
	}
	h.clusterID = binary.LittleEndian.Uint64(b[8:16])
	h.from = binary.LittleEndian.Uint64(b[16:24])
	h.to = binary.LittleEndian.Uint64(b[24:32])
	copy(h.nonce[:], b[32:64])
	urlLen = int(binary.LittleEndian.Uint16(b[64:66]))
	addrLen = int(binary.LittleEndian.Uint16(b[66:68]))
	if urlLen > MaxAnnounceBytes || addrLen > MaxAnnounceBytes {
		return h, 0, 0, fmt.Errorf("%w: announced url (%d bytes) or address (%d bytes) over %d bytes", ErrHandshake, urlLen, addrLen, MaxAnnounceBytes)
	}
	return h, urlLen, addrLen, nil
}

// errNoHello is a connection that ended before the first byte of its hello
// (a port probe, or a peer that gave up).
var errNoHello = errors.New("connection closed before its hello")

// readHello reads one hello from r and returns it with its raw bytes (for
// the transcript). It reads at most helloFixedSize+2*MaxAnnounceBytes bytes.
func readHello(r io.Reader) (hello, []byte, error) {
	var fixed [helloFixedSize]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = errNoHello
		}
		return hello{}, nil, fmt.Errorf("%w: reading hello: %w", ErrHandshake, err)
	}
	h, urlLen, addrLen, err := parseHelloFixed(&fixed)
	if err != nil {
		return h, nil, err
	}
	raw := make([]byte, helloFixedSize+urlLen+addrLen)
	copy(raw, fixed[:])
	if _, err := io.ReadFull(r, raw[helloFixedSize:]); err != nil {
		return hello{}, nil, fmt.Errorf("%w: reading hello: %w", ErrHandshake, err)
	}
	h.url = string(raw[helloFixedSize : helloFixedSize+urlLen])
	h.addr = string(raw[helloFixedSize+urlLen:])
	return h, raw, nil
}

// transcriptMAC is HMAC-SHA256(secret, protocolLabel || label || hello1 ||
// hello2): the proofs and the session keys. Both hellos are self-delimiting,
// so the concatenation is unambiguous; they hold the version, the kind, the
// cluster id, both node ids, both nonces and both announcements.
func transcriptMAC(secret []byte, label string, dialerHello, acceptorHello []byte) [proofSize]byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(protocolLabel))
	m.Write([]byte(label))
	m.Write(dialerHello)
	m.Write(acceptorHello)
	var out [proofSize]byte
	m.Sum(out[:0])
	return out
}

// session is the result of a completed handshake: the peer's hello and the
// two directions' frame keys.
type session struct {
	peer    hello
	sendKey [proofSize]byte
	recvKey [proofSize]byte
}

// authError is a refusal: ErrAuth with the status that says why.
type authError struct {
	status status
	byPeer bool // the other side refused us (its status), rather than we it
	detail string
}

func (e *authError) Error() string {
	who := "refused"
	if e.byPeer {
		who = "refused by peer"
	}
	if e.detail != "" {
		return fmt.Sprintf("%v: %s: %s (%s)", ErrAuth, who, e.status, e.detail)
	}
	return fmt.Sprintf("%v: %s: %s", ErrAuth, who, e.status)
}

func (e *authError) Unwrap() error { return ErrAuth }

// handshakeConfig is one side's identity for a handshake.
type handshakeConfig struct {
	secret    []byte
	clusterID uint64
	nodeID    uint64
	url       string
	addr      string
	rand      io.Reader // nonces
}

func (c *handshakeConfig) hello(kind connKind, to uint64) (hello, error) {
	h := hello{version: protocolVersion, kind: kind, clusterID: c.clusterID, from: c.nodeID, to: to, url: c.url, addr: c.addr}
	if len(h.url) > MaxAnnounceBytes {
		h.url = ""
	}
	if len(h.addr) > MaxAnnounceBytes {
		h.addr = ""
	}
	if _, err := io.ReadFull(c.rand, h.nonce[:]); err != nil {
		return h, fmt.Errorf("cluster/transport: reading a nonce: %w", err)
	}
	return h, nil
}

// dialHandshake runs the dialer's side on rw, expecting node peerID on the
// other side. The caller bounds it with a deadline.
//
//	dialer -> acceptor: hello (nonce D)
//	acceptor -> dialer: hello (nonce A, status)
//	dialer -> acceptor: proof D = MAC(secret, "proof dialer", hellos)
//	acceptor -> dialer: status, proof A = MAC(secret, "proof acceptor", hellos)
func dialHandshake(rw io.ReadWriter, c *handshakeConfig, kind connKind, peerID uint64) (*session, error) {
	mine, err := c.hello(kind, peerID)
	if err != nil {
		return nil, err
	}
	raw1 := appendHello(make([]byte, 0, helloFixedSize+len(mine.url)+len(mine.addr)), &mine)
	if _, err := rw.Write(raw1); err != nil {
		return nil, fmt.Errorf("%w: writing hello: %w", ErrHandshake, err)
	}
	theirs, raw2, err := readHello(rw)
	if err != nil {
		return nil, err
	}
	switch {
	case theirs.status != statusOK:
		return nil, &authError{status: theirs.status, byPeer: true}
	case theirs.kind != kind:
		return nil, fmt.Errorf("%w: the acceptor answered kind %s to %s", ErrHandshake, theirs.kind, kind)
	case theirs.clusterID != c.clusterID:
		return nil, &authError{status: statusWrongCluster, detail: fmt.Sprintf("peer is in cluster %d, this node in %d", theirs.clusterID, c.clusterID)}
	case theirs.from != peerID:
		return nil, &authError{status: statusWrongNode, detail: fmt.Sprintf("expected node %d, found node %d", peerID, theirs.from)}
	case theirs.to != c.nodeID:
		return nil, &authError{status: statusWrongNode, detail: fmt.Sprintf("peer addressed node %d, this is node %d", theirs.to, c.nodeID)}
	}
	proof := transcriptMAC(c.secret, labelProofDial, raw1, raw2)
	if _, err := rw.Write(proof[:]); err != nil {
		return nil, fmt.Errorf("%w: writing proof: %w", ErrHandshake, err)
	}
	var confirm [confirmSize]byte
	if _, err := io.ReadFull(rw, confirm[:]); err != nil {
		return nil, fmt.Errorf("%w: reading confirmation: %w", ErrHandshake, err)
	}
	if s := status(confirm[0]); s != statusOK {
		return nil, &authError{status: s, byPeer: true}
	}
	want := transcriptMAC(c.secret, labelProofAcc, raw1, raw2)
	if !hmac.Equal(confirm[1:], want[:]) {
		return nil, &authError{status: statusBadProof, detail: "the acceptor's proof does not verify"}
	}
	return &session{
		peer:    theirs,
		sendKey: transcriptMAC(c.secret, labelKeyDialAcc, raw1, raw2),
		recvKey: transcriptMAC(c.secret, labelKeyAccDial, raw1, raw2),
	}, nil
}

// acceptHandshake runs the acceptor's side on rw. check judges the
// dialer's claimed identity (its id) once the cluster id and the target id
// have matched; it returns statusOK or the refusal. The caller bounds the
// handshake with a deadline.
func acceptHandshake(rw io.ReadWriter, c *handshakeConfig, check func(dialerID uint64) status) (*session, error) {
	theirs, raw1, err := readHello(rw)
	if err != nil {
		if theirs.version != 0 && theirs.version != protocolVersion {
			// Tell a node of another version why, in our own format.
			if refusal, herr := c.hello(kindStream, theirs.from); herr == nil {
				refusal.status = statusBadVersion
				_, _ = rw.Write(appendHello(nil, &refusal))
			}
		}
		return nil, err
	}
	mine, err := c.hello(theirs.kind, theirs.from)
	if err != nil {
		return nil, err
	}
	var refusal *authError
	switch {
	case theirs.status != statusOK:
		return nil, fmt.Errorf("%w: a dialer's hello with status %s", ErrHandshake, theirs.status)
	case theirs.clusterID != c.clusterID:
		refusal = &authError{status: statusWrongCluster, detail: fmt.Sprintf("peer is in cluster %d, this node in %d", theirs.clusterID, c.clusterID)}
	case theirs.to != c.nodeID:
		refusal = &authError{status: statusWrongNode, detail: fmt.Sprintf("peer expected node %d, this is node %d", theirs.to, c.nodeID)}
	default:
		if s := check(theirs.from); s != statusOK {
			refusal = &authError{status: s, detail: fmt.Sprintf("peer claims node id %d", theirs.from)}
		}
	}
	if refusal != nil {
		mine.status = refusal.status
	}
	raw2 := appendHello(make([]byte, 0, helloFixedSize+len(mine.url)+len(mine.addr)), &mine)
	if _, err := rw.Write(raw2); err != nil {
		return nil, fmt.Errorf("%w: writing hello: %w", ErrHandshake, err)
	}
	if refusal != nil {
		return nil, refusal
	}
	var proof [proofSize]byte
	if _, err := io.ReadFull(rw, proof[:]); err != nil {
		return nil, fmt.Errorf("%w: reading proof: %w", ErrHandshake, err)
	}
	var confirm [confirmSize]byte
	want := transcriptMAC(c.secret, labelProofDial, raw1, raw2)
	if !hmac.Equal(proof[:], want[:]) {
		confirm[0] = byte(statusBadProof)
		_, _ = rw.Write(confirm[:])
		return nil, &authError{status: statusBadProof, detail: "the dialer's proof does not verify"}
	}
	mineProof := transcriptMAC(c.secret, labelProofAcc, raw1, raw2)
	copy(confirm[1:], mineProof[:])
	if _, err := rw.Write(confirm[:]); err != nil {
		return nil, fmt.Errorf("%w: writing confirmation: %w", ErrHandshake, err)
	}
	return &session{
		peer:    theirs,
		sendKey: transcriptMAC(c.secret, labelKeyAccDial, raw1, raw2),
		recvKey: transcriptMAC(c.secret, labelKeyDialAcc, raw1, raw2),
	}, nil
}
