package httpapi

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small strict JSON reader for append bodies. It decodes the record shape
// R (and the {"records":[...]} wrapper) without reflection, about ten times
// faster than encoding/json, and it is stricter: keys match exactly (no
// case folding), a key may not repeat, and only the fields of R exist.
// Strings that need no unescaping are returned as subslices of the body,
// which is safe because the store copies every byte before Append returns.
// FuzzParseAppendBody checks it against encoding/json.

// maxNesting bounds the depth of a JSON value, as encoding/json does.
const maxNesting = 10000

type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: "+format, append([]any{s.pos}, args...)...)
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// expect consumes byte c after optional whitespace.
func (s *scanner) expect(c byte) error {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return s.errorf("unexpected end of JSON, want %q", c)
	}
	if s.data[s.pos] != c {
		return s.errorf("invalid character %q, want %q", s.data[s.pos], c)
	}
	s.pos++
	return nil
}

// peek returns the next non-space byte (0 at the end).
func (s *scanner) peek() byte {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

// atEnd reports whether only whitespace is left.
func (s *scanner) atEnd() bool {
	s.skipSpace()
	return s.pos >= len(s.data)
}

// literal consumes a keyword such as null.
func (s *scanner) literal(word string) bool {
	if len(s.data)-s.pos >= len(word) && string(s.data[s.pos:s.pos+len(word)]) == word {
		s.pos += len(word)
		return true
	}
	return false
}

// null consumes null if it comes next.
func (s *scanner) null() bool {
	s.skipSpace()
	return s.literal("null")
}

// str reads a JSON string. The result aliases the input when the string has
// no escapes. Raw bytes that are not UTF-8 are an error (RFC 8259 8.1: JSON
// text is UTF-8; encoding/json would silently turn them into U+FFFD, so the
// record would not read back as sent). An escaped lone surrogate (\ud800)
// is valid JSON syntax and becomes U+FFFD, as in encoding/json.
func (s *scanner) str() ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	start := s.pos
	for i := start; i < len(s.data); i++ {
		c := s.data[i]
		switch {
		case c == '"':
			s.pos = i + 1
			out := s.data[start:i]
			if !utf8.Valid(out) {
				s.pos = start
				return nil, s.errorf("invalid UTF-8 in string")
			}
			return out, nil
		case c == '\\':
			return s.strSlow(start)
		case c < 0x20:
			s.pos = i
			return nil, s.errorf("control character %#x in string", c)
		}
	}
	s.pos = len(s.data)
	return nil, s.errorf("unterminated string")
}

func (s *scanner) strSlow(start int) ([]byte, error) {
	out := make([]byte, 0, 2*(len(s.data)-start))
	i := start
	for i < len(s.data) {
		c := s.data[i]
		switch {
		case c == '"':
			if !utf8.Valid(out) {
				s.pos = start
				return nil, s.errorf("invalid UTF-8 in string")
			}
			s.pos = i + 1
			return out, nil
		case c < 0x20:
			s.pos = i
			return nil, s.errorf("control character %#x in string", c)
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(s.data) {
			break
		}
		switch e := s.data[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(s.data, i+2)
			if !ok {
				s.pos = i
				return nil, s.errorf("bad \\u escape")
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(s.data, i+2); ok && i+1 < len(s.data) && s.data[i] == '\\' && s.data[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						out = utf8.AppendRune(out, dec)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			s.pos = i
			return nil, s.errorf("bad escape \\%c", e)
		}
		i += 2
	}
	s.pos = len(s.data)
	return nil, s.errorf("unterminated string")
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[i:i+4]), 16, 16)
	return rune(n), err == nil
}

// listNext consumes what follows an element of an object or array: ','
// (done false: another element follows) or closer (done true). ok is false,
// and nothing is consumed, when neither is next.
func (s *scanner) listNext(closer byte) (done, ok bool) {
	switch s.peek() {
	case ',':
		s.pos++
		return false, true
	case closer:
		s.pos++
		return true, true
	}
	return false, false
}

// value validates one JSON value and appends it, without insignificant
// whitespace, to dst.
func (s *scanner) value(dst []byte, depth int) ([]byte, error) {
	if depth > maxNesting {
		return nil, s.errorf("exceeded max depth")
	}
	switch c := s.peek(); {
	case c == '{':
		s.pos++
		dst = append(dst, '{')
		if s.peek() == '}' {
			s.pos++
			return append(dst, '}'), nil
		}
		for {
			if s.peek() != '"' {
				return nil, s.errorf("want a string key")
			}
			var err error
			if dst, err = s.rawString(dst); err != nil {
				return nil, err
			}
			if err := s.expect(':'); err != nil {
				return nil, err
			}
			dst = append(dst, ':')
			if dst, err = s.value(dst, depth+1); err != nil {
				return nil, err
			}
			done, ok := s.listNext('}')
			if !ok {
				return nil, s.errorf("want ',' or '}' in object")
			}
			if done {
				return append(dst, '}'), nil
			}
			dst = append(dst, ',')
		}
	case c == '[':
		s.pos++
		dst = append(dst, '[')
		if s.peek() == ']' {
			s.pos++
			return append(dst, ']'), nil
		}
		for {
			var err error
			if dst, err = s.value(dst, depth+1); err != nil {
				return nil, err
			}
			done, ok := s.listNext(']')
			if !ok {
				return nil, s.errorf("want ',' or ']' in array")
			}
			if done {
				return append(dst, ']'), nil
			}
			dst = append(dst, ',')
		}
	case c == '"':
		return s.rawString(dst)
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number(dst)
	case s.literal("true"):
		return append(dst, "true"...), nil
	case s.literal("false"):
		return append(dst, "false"...), nil
	case s.literal("null"):
		return append(dst, "null"...), nil
	case s.pos >= len(s.data):
		return nil, s.errorf("unexpected end of JSON")
	default:
		return nil, s.errorf("invalid character %q looking for a value", c)
	}
}

// rawString validates a string and appends it as written (escapes kept).
func (s *scanner) rawString(dst []byte) ([]byte, error) {
	start := s.pos
	s.pos++ // the opening quote, checked by the caller
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			if !utf8.Valid(s.data[start:s.pos]) {
				s.pos = start
				return nil, s.errorf("invalid UTF-8 in string")
			}
			return append(dst, s.data[start:s.pos]...), nil
		case c < 0x20:
			return nil, s.errorf("control character %#x in string", c)
		case c == '\\':
			if s.pos+1 >= len(s.data) {
				return nil, s.errorf("unterminated string")
			}
			switch s.data[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if _, ok := hex4(s.data, s.pos+2); !ok {
					return nil, s.errorf("bad \\u escape")
				}
				s.pos += 6
			default:
				return nil, s.errorf("bad escape")
			}
		default:
			s.pos++
		}
	}
	return nil, s.errorf("unterminated string")
}

// number validates a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number(dst []byte) ([]byte, error) {
	start := s.pos
	d := s.data
	i := s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return i > j
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case !digits():
		s.pos = i
		return nil, s.errorf("bad number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			s.pos = i
			return nil, s.errorf("bad number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			s.pos = i
			return nil, s.errorf("bad number")
		}
	}
	s.pos = i
	return append(dst, d[start:i]...), nil
}

// Field presence bits of a record object.
const (
	fieldKey = 1 << iota
	fieldValue
	fieldValueBase64
	fieldHeaders
	fieldTimestamp
	fieldRecords
)

// object reads an object whose keys are dispatched to fn, rejecting
// duplicate keys. seen accumulates the fields' bits.
func (s *scanner) object(fn func(key []byte) (int, error)) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	seen := 0
	for {
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		bit, err := fn(key)
		if err != nil {
			return err
		}
		if bit != 0 && seen&bit != 0 {
			return fmt.Errorf("duplicate field %q", key)
		}
		seen |= bit
		done, ok := s.listNext('}')
		if !ok {
			return s.errorf("want ',' or '}' after field %q", key)
		}
		if done {
			return nil
		}
	}
}

// recordFields are the parsed fields of one R.
type recordFields struct {
	key, value, valueBase64, timestamp []byte
	hasKey, hasValue, hasB64, hasTime  bool
	headers                            map[string]string
}

// recordField reads the value of one field of R. Compacted JSON values are
// appended to *buf and alias it.
func (s *scanner) recordField(r *recordFields, key []byte, buf *[]byte) (int, error) {
	var err error
	switch string(key) {
	case "key":
		if !s.null() {
			r.key, err = s.str()
			r.hasKey = true
		}
		return fieldKey, err
	case "value":
		start := len(*buf)
		*buf, err = s.value(*buf, 1)
		if err == nil {
			r.value, r.hasValue = (*buf)[start:len(*buf):len(*buf)], true
		}
		return fieldValue, err
	case "value_base64":
		if !s.null() {
			r.valueBase64, err = s.str()
			r.hasB64 = true
		}
		return fieldValueBase64, err
	case "timestamp":
		if !s.null() {
			r.timestamp, err = s.str()
			r.hasTime = true
		}
		return fieldTimestamp, err
	case "headers":
		if s.null() {
			return fieldHeaders, nil
		}
		r.headers = map[string]string{}
		return fieldHeaders, s.object(func(name []byte) (int, error) {
			v, err := s.str()
			if err != nil {
				return 0, err
			}
			if _, dup := r.headers[string(name)]; dup {
				return 0, fmt.Errorf("duplicate header %q", name)
			}
			r.headers[string(name)] = string(v)
			return 0, nil
		})
	}
	return 0, fmt.Errorf("unknown field %q", key)
}

// record reads one R.
func (s *scanner) record(r *recordFields, buf *[]byte) error {
	if s.peek() != '{' {
		return s.errorf("want a record object")
	}
	return s.object(func(key []byte) (int, error) { return s.recordField(r, key, buf) })
}

func (r *recordFields) any() bool {
	return r.hasKey || r.hasValue || r.hasB64 || r.hasTime || r.headers != nil
}
