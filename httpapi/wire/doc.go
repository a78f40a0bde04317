// Package wire is the binary record format of the HTTP API, media type
// application/vnd.badbatch.records: append batches (requests, and the
// binary frames of an append session) and read pages (answers). It imports
// only the standard library, so that the Go client (httpapi/client) shares
// it with the server without pulling in the server's dependencies.
//
// Every integer is a varint as encoding/binary writes it: "uvarint" is
// unsigned LEB128 (1 to 10 bytes), "varint" is zigzag-signed LEB128. Every
// variable-length field is preceded by its length. Nothing is base64.
//
// An append batch:
//
//	+---------+-------+----------------------+-----------------+---------+----------+
//	| "BBR1"  | flags | [idempotency key]    | [expected last] | count   | record * |
//	| 4 bytes | 1 B   | uvarint len + bytes  | varint          | uvarint | count    |
//	+---------+-------+----------------------+-----------------+---------+----------+
//	flags bit 0: an idempotency key follows (1 to 256 bytes)
//	flags bit 1: an expected last offset follows (>= -1; -1: the stream is empty)
//	other bits: 0
//
// A read page:
//
//	+---------+-------+-------------+---------+----------+
//	| "BBP1"  | flags | next offset | count   | record * |
//	| 4 bytes | 1 B   | uvarint     | uvarint | count    |
//	+---------+-------+-------------+---------+----------+
//	flags: 0 (reserved)
//
// A record, in both, is its length and its body, so that a reader can skip
// it and a decoder checks that the body is used up exactly:
//
//	+---------+------------------------------------------------------------------+
//	| uvarint | body (exactly that many bytes)                                   |
//	+---------+------------------------------------------------------------------+
//
//	body = [offset uvarint] [seq uvarint]     (pages only)
//	       rflags 1 B
//	       [timestamp varint]                 (rflags bit 1; always in pages)
//	       key     uvarint len + bytes        (len 0: no key)
//	       headers uvarint count, then per header:
//	               name uvarint len + bytes (1 or more), value uvarint len + bytes
//	       value   uvarint len + bytes
//	rflags bit 0: the value is JSON text (it reads back as JSON)
//	rflags bit 1: a timestamp follows (Unix nanoseconds; in an append batch,
//	              absent means the server's time)
//	other bits: 0
//
// The magic strings, flag bits and field order never change; a new version
// gets a new magic. Decoders reject unknown flag bits, truncated input,
// lengths past the end, duplicate header names, trailing bytes and varints
// longer than needed to hold 64 bits, each with an error wrapping
// ErrMalformed.
//
// Decoded records alias the input: keys and values are sub-slices of it
// (header names and values are strings, copied). Encoders append to a
// caller's buffer. The functions are safe for concurrent use; a Batch or
// Page is a plain value owned by its caller.
package wire
