package client

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// A minimal WebSocket client (RFC 6455) for append sessions, on the
// standard library alone (the client's dependency rule,
// docs/decisions/0016): the handshake goes through the Client's
// http.Client (its redirect policy follows a cluster follower to its
// leader), which hands back the connection on 101 Switching Protocols.
// No extensions, no compression. Client frames are masked; the server's
// are not.

// WebSocket opcodes.
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xa
)

// wsGUID is the handshake's fixed key suffix (RFC 6455, 1.3).
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// wsConn is one WebSocket connection. Writes are serialized by wmu; reads
// belong to one goroutine.
type wsConn struct {
	rwc io.ReadWriteCloser
	br  *bufio.Reader
	wmu sync.Mutex
	wb  []byte // frame being written; REQUIRES: wmu held
	// closeStatus and closeReason are the server's close frame, once read.
	closeStatus int
	closeReason string
}

// errWSClosed is returned by read after the server's close frame.
var errWSClosed = errors.New("client: websocket closed by the server")

// dialWS opens a WebSocket on path (escaped) with query q. The connection
// lives until closed, whatever ctx does after the handshake. On a refused
// handshake it returns the server's answer as an *Error.
func (c *Client) dialWS(ctx context.Context, path string, q url.Values) (*wsConn, *http.Response, error) {
	var key [16]byte
	_, _ = rand.Read(key[:])
	h := http.Header{}
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", "websocket")
	h.Set("Sec-WebSocket-Version", "13")
	h.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key[:]))
	req, err := c.newRequest(ctx, http.MethodGet, path, q, h, nil)
	if err != nil {
		return nil, nil, newClientError(CodeInvalidOptions, err.Error(), err)
	}
	resp, err := c.wsHTTP().Do(req)
	if err != nil {
		return nil, nil, newClientError(CodeConnection, err.Error(), err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, resp, errorFromAnswer(resp, data)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	sum := sha1.Sum([]byte(h.Get("Sec-WebSocket-Key") + wsGUID))
	if !ok || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		resp.Body.Close()
		return nil, resp, newClientError(CodeConnection, "bad WebSocket handshake answer", nil)
	}
	return &wsConn{rwc: rwc, br: bufio.NewReaderSize(rwc, 64<<10)}, resp, nil
}

// wsHTTP is the http.Client of WebSocket handshakes: the Client's own,
// with HTTP/2 off when its transport is a *http.Transport (an upgrade is
// HTTP/1.1 only).
func (c *Client) wsHTTP() *http.Client {
	tr, ok := c.http.Transport.(*http.Transport)
	if !ok || c.http.Transport == nil {
		return c.http
	}
	c.wsOnce.Do(func() {
		t := tr.Clone()
		t.ForceAttemptHTTP2 = false
		t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		hc := *c.http
		hc.Transport = t
		c.wsClient = &hc
	})
	return c.wsClient
}

// write sends one unfragmented message.
func (w *wsConn) write(op byte, payload []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	b := w.wb[:0]
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := mrand.Uint32()
	b = binary.BigEndian.AppendUint32(b, mask)
	start := len(b)
	b = append(b, payload...)
	var m [4]byte
	binary.BigEndian.PutUint32(m[:], mask)
	for i := range b[start:] {
		b[start+i] ^= m[i&3]
	}
	_, err := w.rwc.Write(b)
	if cap(b) <= 1<<20 {
		w.wb = b
	}
	return err
}

// read returns the next data message (text or binary), answering pings.
// After the server's close frame it returns errWSClosed (closeStatus and
// closeReason then hold the server's).
func (w *wsConn) read(buf []byte) (op byte, msg []byte, err error) {
	msg = buf[:0]
	op = 0xff
	for {
		var hdr [2]byte
		if _, err := io.ReadFull(w.br, hdr[:]); err != nil {
			return 0, nil, err
		}
		fin, code := hdr[0]&0x80 != 0, hdr[0]&0x0f
		if hdr[0]&0x70 != 0 {
			return 0, nil, errors.New("client: websocket frame with reserved bits")
		}
		n := uint64(hdr[1] & 0x7f)
		switch n {
		case 126:
			var x [2]byte
			if _, err := io.ReadFull(w.br, x[:]); err != nil {
				return 0, nil, err
			}
			n = uint64(binary.BigEndian.Uint16(x[:]))
		case 127:
			var x [8]byte
			if _, err := io.ReadFull(w.br, x[:]); err != nil {
				return 0, nil, err
			}
			n = binary.BigEndian.Uint64(x[:])
		}
		if hdr[1]&0x80 != 0 {
			return 0, nil, errors.New("client: masked frame from the server")
		}
		if n > 64<<20 {
			return 0, nil, fmt.Errorf("client: websocket frame of %d bytes", n)
		}
		switch code {
		case wsPing, wsPong, wsClose:
			ctrl := make([]byte, n)
			if _, err := io.ReadFull(w.br, ctrl); err != nil {
				return 0, nil, err
			}
			switch code {
			case wsPing:
				if err := w.write(wsPong, ctrl); err != nil {
					return 0, nil, err
				}
			case wsClose:
				w.closeStatus = 1005
				if len(ctrl) >= 2 {
					w.closeStatus = int(binary.BigEndian.Uint16(ctrl))
					w.closeReason = string(ctrl[2:])
				}
				_ = w.write(wsClose, ctrl[:min(len(ctrl), 2)])
				return 0, nil, errWSClosed
			}
			continue
		case wsText, wsBinary:
			op = code
		case wsContinuation:
			if op == 0xff {
				return 0, nil, errors.New("client: websocket continuation without a message")
			}
		default:
			return 0, nil, fmt.Errorf("client: websocket opcode %#x", code)
		}
		start := len(msg)
		msg = append(msg, make([]byte, n)...)
		if _, err := io.ReadFull(w.br, msg[start:]); err != nil {
			return 0, nil, err
		}
		if fin {
			return op, msg, nil
		}
	}
}

// close sends a normal close frame and closes the connection.
func (w *wsConn) close() {
	_ = w.write(wsClose, []byte{0x03, 0xe8}) // 1000
	_ = w.rwc.Close()
}

// closeNow closes the connection without a close frame.
func (w *wsConn) closeNow() { _ = w.rwc.Close() }

// closeError describes the server's close frame.
func (w *wsConn) closeError() string {
	if w.closeReason == "" {
		return fmt.Sprintf("status %d", w.closeStatus)
	}
	return fmt.Sprintf("status %d: %s", w.closeStatus, strings.TrimSpace(w.closeReason))
}
