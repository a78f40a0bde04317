package client

import (
	"bytes"
	"strconv"
)

// parseSessionResult reads a success answer in the exact layout the server
// writes ({"stream":"s","first_offset":0,...,"replayed":false}) without
// reflection. ok is false for anything else (an error answer, another
// field order, an escaped string): the caller then uses encoding/json.
func parseSessionResult(msg []byte, res *AppendResult) (ok bool) {
	p := answerParser{data: msg}
	var stream, durability []byte
	var count uint64
	ok = p.lit(`{"stream":"`) && p.str(&stream) &&
		p.lit(`,"first_offset":`) && p.num(&res.FirstOffset) &&
		p.lit(`,"last_offset":`) && p.num(&res.LastOffset) &&
		p.lit(`,"count":`) && p.num(&count) &&
		p.lit(`,"first_seq":`) && p.num(&res.FirstSeq) &&
		p.lit(`,"last_seq":`) && p.num(&res.LastSeq) &&
		p.lit(`,"durability":"`) && p.str(&durability) &&
		p.lit(`,"replayed":`) && p.boolean(&res.Replayed) &&
		p.lit(`}`) && p.pos == len(p.data)
	if !ok {
		return false
	}
	res.Stream, res.Durability, res.Count = string(stream), string(durability), int(count)
	return true
}

type answerParser struct {
	data []byte
	pos  int
}

func (p *answerParser) lit(s string) bool {
	if !bytes.HasPrefix(p.data[p.pos:], []byte(s)) {
		return false
	}
	p.pos += len(s)
	return true
}

// str reads up to the closing quote (consumed); escapes are refused.
func (p *answerParser) str(dst *[]byte) bool {
	i := bytes.IndexByte(p.data[p.pos:], '"')
	if i < 0 || bytes.IndexByte(p.data[p.pos:p.pos+i], '\\') >= 0 {
		return false
	}
	*dst = p.data[p.pos : p.pos+i]
	p.pos += i + 1
	return true
}

func (p *answerParser) num(dst *uint64) bool {
	start := p.pos
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
	}
	n, err := strconv.ParseUint(string(p.data[start:p.pos]), 10, 64)
	*dst = n
	return err == nil
}

func (p *answerParser) boolean(dst *bool) bool {
	switch {
	case p.lit("true"):
		*dst = true
	case p.lit("false"):
		*dst = false
	default:
		return false
	}
	return true
}
