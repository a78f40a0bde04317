package transport

import (
	"bytes"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seededRand is a deterministic nonce source for handshake tests.
func seededRand(seed uint64) io.Reader { return mrand.NewChaCha8([32]byte{byte(seed)}) }

func identity(nodeID uint64, secret []byte, seed uint64) *handshakeConfig {
	return &handshakeConfig{secret: secret, clusterID: testClusterID, nodeID: nodeID,
		url: "http://n" + string(rune('0'+nodeID)), addr: "127.0.0.1:700" + string(rune('0'+nodeID)), rand: seededRand(seed)}
}

// runHandshake runs both sides over a synchronous pipe.
func runHandshake(dialer, acceptor *handshakeConfig, kind connKind, expect uint64, check func(uint64) status) (d, a *session, derr, aerr error) {
	c1, c2 := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		a, aerr = acceptHandshake(c2, acceptor, check)
		c2.Close()
	}()
	d, derr = dialHandshake(c1, dialer, kind, expect)
	c1.Close()
	<-done
	return d, a, derr, aerr
}

func allowAll(uint64) status { return statusOK }

func TestHandshake(t *testing.T) {
	for _, kind := range []connKind{kindStream, kindSnapshot} {
		d, a, derr, aerr := runHandshake(identity(1, testSecret, 1), identity(2, testSecret, 2), kind, 2, allowAll)
		require.NoError(t, derr)
		require.NoError(t, aerr)
		assert.Equal(t, d.sendKey, a.recvKey, "dialer to acceptor key")
		assert.Equal(t, d.recvKey, a.sendKey, "acceptor to dialer key")
		assert.NotEqual(t, d.sendKey, d.recvKey, "the directions have different keys")
		assert.Equal(t, uint64(2), d.peer.from)
		assert.Equal(t, "http://n2", d.peer.url)
		assert.Equal(t, "127.0.0.1:7002", d.peer.addr)
		assert.Equal(t, uint64(1), a.peer.from)
		assert.Equal(t, "http://n1", a.peer.url)
		assert.Equal(t, kind, a.peer.kind)
	}
	// Other nonces, other keys.
	d1, _, _, _ := runHandshake(identity(1, testSecret, 1), identity(2, testSecret, 2), kindStream, 2, allowAll)
	d2, _, _, _ := runHandshake(identity(1, testSecret, 3), identity(2, testSecret, 2), kindStream, 2, allowAll)
	assert.NotEqual(t, d1.sendKey, d2.sendKey)
}

func TestHandshakeRefusals(t *testing.T) {
	other := identity(2, []byte("another secret of 16+ bytes"), 2)
	wrongCluster := identity(2, testSecret, 2)
	wrongCluster.clusterID = 8
	cases := []struct {
		name        string
		acceptor    *handshakeConfig
		expect      uint64
		check       func(uint64) status
		dialStatus  status // the status in the dialer's error
		byPeer      bool
		acceptState status
	}{
		{"wrong secret", other, 2, allowAll, statusBadProof, true, statusBadProof},
		{"wrong cluster", wrongCluster, 2, allowAll, statusWrongCluster, true, statusWrongCluster},
		{"wrong node at the address", identity(3, testSecret, 2), 2, allowAll, statusWrongNode, true, statusWrongNode},
		{"unknown dialer", identity(2, testSecret, 2), 2, func(uint64) status { return statusUnknownPeer }, statusUnknownPeer, true, statusUnknownPeer},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, a, derr, aerr := runHandshake(identity(1, testSecret, 1), c.acceptor, kindStream, c.expect, c.check)
			assert.Nil(t, d)
			assert.Nil(t, a)
			var de, ae *authError
			require.ErrorAs(t, derr, &de)
			require.ErrorAs(t, aerr, &ae)
			assert.ErrorIs(t, derr, ErrAuth)
			assert.Equal(t, c.dialStatus, de.status)
			assert.Equal(t, c.byPeer, de.byPeer)
			assert.Equal(t, c.acceptState, ae.status)
		})
	}
}

// fakeAcceptor answers a dialer with the hello h and a confirm proved with
// secret, whatever the dialer sent.
func fakeAcceptor(t *testing.T, h hello, secret []byte) (net.Conn, <-chan struct{}) {
	c1, c2 := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c2.Close()
		_, raw1, err := readHello(c2)
		if err != nil {
			return
		}
		raw2 := appendHello(nil, &h)
		if _, err := c2.Write(raw2); err != nil {
			return
		}
		var proof [proofSize]byte
		if _, err := io.ReadFull(c2, proof[:]); err != nil {
			return
		}
		want := transcriptMAC(secret, labelProofAcc, raw1, raw2)
		_, _ = c2.Write(append([]byte{0}, want[:]...))
	}()
	t.Cleanup(func() { c1.Close(); <-done })
	return c1, done
}

// The dialer checks the acceptor: its cluster id, its node id, whom it
// addressed, and its proof. Each is refused by the dialer itself.
func TestHandshakeDialerVerifiesAcceptor(t *testing.T) {
	good := hello{version: protocolVersion, kind: kindStream, clusterID: testClusterID, from: 2, to: 1}
	cases := map[string]struct {
		mutate func(*hello)
		secret []byte
		want   status
	}{
		"wrong secret":      {func(*hello) {}, []byte("a different secret!!"), statusBadProof},
		"wrong cluster":     {func(h *hello) { h.clusterID++ }, testSecret, statusWrongCluster},
		"impersonated id":   {func(h *hello) { h.from = 3 }, testSecret, statusWrongNode},
		"addressed another": {func(h *hello) { h.to = 5 }, testSecret, statusWrongNode},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			h := good
			c.mutate(&h)
			conn, _ := fakeAcceptor(t, h, c.secret)
			_, err := dialHandshake(conn, identity(1, testSecret, 1), kindStream, 2)
			var ae *authError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, c.want, ae.status)
			assert.False(t, ae.byPeer)
		})
	}
	t.Run("other kind", func(t *testing.T) {
		h := good
		h.kind = kindSnapshot
		conn, _ := fakeAcceptor(t, h, testSecret)
		_, err := dialHandshake(conn, identity(1, testSecret, 1), kindStream, 2)
		require.ErrorIs(t, err, ErrHandshake)
	})
	t.Run("honest", func(t *testing.T) {
		conn, _ := fakeAcceptor(t, good, testSecret)
		_, err := dialHandshake(conn, identity(1, testSecret, 1), kindStream, 2)
		require.NoError(t, err)
	})
}

func TestHelloParse(t *testing.T) {
	h := hello{version: protocolVersion, kind: kindSnapshot, status: statusWrongNode, clusterID: 1<<63 + 5, from: 9, to: 10,
		url: "http://x:1", addr: "10.0.0.1:7000"}
	for i := range h.nonce {
		h.nonce[i] = byte(i)
	}
	raw := appendHello(nil, &h)
	got, gotRaw, err := readHello(bytes.NewReader(raw))
	require.NoError(t, err)
	assert.Equal(t, h, got)
	assert.Equal(t, raw, gotRaw)

	bad := func(mut func(b []byte) []byte) error {
		_, _, err := readHello(bytes.NewReader(mut(bytes.Clone(raw))))
		return err
	}
	for name, mut := range map[string]func([]byte) []byte{
		"magic":     func(b []byte) []byte { b[0] = 'X'; return b },
		"version":   func(b []byte) []byte { b[4] = 2; return b },
		"kind 0":    func(b []byte) []byte { b[5] = 0; return b },
		"kind 3":    func(b []byte) []byte { b[5] = 3; return b },
		"status":    func(b []byte) []byte { b[6] = byte(statusMax) + 1; return b },
		"reserved":  func(b []byte) []byte { b[7] = 1; return b },
		"url len":   func(b []byte) []byte { b[64], b[65] = 0x01, 0x02; return b }, // 513
		"addr len":  func(b []byte) []byte { b[66], b[67] = 0xff, 0xff; return b },
		"truncated": func(b []byte) []byte { return b[:len(b)-1] },
		"fixed cut": func(b []byte) []byte { return b[:40] },
		"empty":     func(b []byte) []byte { return nil },
	} {
		err := bad(mut)
		assert.ErrorIs(t, err, ErrHandshake, name)
	}
}

// A dialer of another protocol version is told so in our format.
func TestHandshakeVersionMismatch(t *testing.T) {
	c1, c2 := net.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := acceptHandshake(c2, identity(2, testSecret, 2), allowAll)
		c2.Close()
		done <- err
	}()
	h := hello{version: 9, kind: kindStream, clusterID: testClusterID, from: 1, to: 2}
	go func() { _, _ = c1.Write(appendHello(nil, &h)) }()
	got, _, err := readHello(c1)
	c1.Close()
	require.NoError(t, err)
	assert.Equal(t, statusBadVersion, got.status)
	assert.ErrorIs(t, <-done, ErrHandshake)
}

func TestAuthErrorText(t *testing.T) {
	err := error(&authError{status: statusWrongCluster, byPeer: true})
	assert.True(t, errors.Is(err, ErrAuth))
	assert.Contains(t, err.Error(), "refused by peer: wrong cluster id")
}
