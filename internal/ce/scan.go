package ce

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// A small scanner for the top level of a JSON object: it yields each
// member's key and raw value without building a map, which makes decoding
// a structured event several times cheaper than encoding/json into
// map[string]json.RawMessage. Nested values are skipped structurally;
// strings are copied without unescaping when they hold no escapes.

var errSyntax = errors.New("invalid JSON")

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 512

type scanner struct {
	d   []byte
	i   int
	esc bool // whether the last string value scanned had escapes
}

func (s *scanner) ws() {
	for s.i < len(s.d) {
		switch s.d[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// members calls fn for each member of the object at the current position
// and checks that nothing but whitespace follows it. raw is the member's
// value as it stands in the input; when it is a string, valEscaped says
// whether it holds escapes.
func (s *scanner) members(fn func(key, raw []byte, keyEscaped, valEscaped bool) error) error {
	s.ws()
	if s.i >= len(s.d) || s.d[s.i] != '{' {
		return errSyntax
	}
	s.i++
	s.ws()
	if s.i < len(s.d) && s.d[s.i] == '}' {
		s.i++
	} else {
		for {
			s.ws()
			key, esc, err := s.str()
			if err != nil {
				return err
			}
			s.ws()
			if s.i >= len(s.d) || s.d[s.i] != ':' {
				return errSyntax
			}
			s.i++
			s.ws()
			start := s.i
			s.esc = false
			if err := s.value(0); err != nil {
				return err
			}
			if err := fn(key, s.d[start:s.i], esc, s.esc); err != nil {
				return err
			}
			s.ws()
			if s.i >= len(s.d) {
				return errSyntax
			}
			if s.d[s.i] == '}' {
				s.i++
				break
			}
			if s.d[s.i] != ',' {
				return errSyntax
			}
			s.i++
		}
	}
	s.ws()
	if s.i != len(s.d) {
		return errSyntax
	}
	return nil
}

// str scans a string and returns its contents between the quotes and
// whether they contain escapes. Runs of ordinary bytes are skipped eight at
// a time.
func (s *scanner) str() (content []byte, escaped bool, err error) {
	if s.i >= len(s.d) || s.d[s.i] != '"' {
		return nil, false, errSyntax
	}
	start := s.i + 1
	for i := start; i < len(s.d); {
		if i+8 <= len(s.d) && special(binary.LittleEndian.Uint64(s.d[i:])) == 0 {
			i += 8
			continue
		}
		switch c := s.d[i]; {
		case c == '"':
			s.i = i + 1
			return s.d[start:i], escaped, nil
		case c == '\\':
			escaped = true
			i += 2 // the escaped byte; \uXXXX digits are ordinary bytes here
			continue
		case c < 0x20:
			return nil, false, errSyntax
		}
		i++
	}
	return nil, false, errSyntax
}

// special is nonzero when one of the eight bytes of w is a quote, a
// backslash or a control character: the bytes str must look at. Each term
// is the usual test for a zero byte, (x-0x01..)&^x&0x80.., applied to w
// xor the byte sought, or to w less 0x20 for "some byte is below 0x20"
// (exact for any limit up to 0x80). It may flag the wrong byte within the
// word, never a word without one.
func special(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := w ^ (ones * '"')
	b := w ^ (ones * '\\')
	return ((q-ones)&^q | (b-ones)&^b | (w-ones*0x20)&^w) & highs
}

// value skips one JSON value.
func (s *scanner) value(depth int) error {
	if depth > maxDepth || s.i >= len(s.d) {
		return errSyntax
	}
	switch c := s.d[s.i]; {
	case c == '"':
		_, esc, err := s.str()
		s.esc = esc
		return err
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		s.i++
		s.ws()
		if s.i < len(s.d) && s.d[s.i] == end {
			s.i++
			return nil
		}
		for {
			s.ws()
			if c == '{' {
				if _, _, err := s.str(); err != nil {
					return err
				}
				s.ws()
				if s.i >= len(s.d) || s.d[s.i] != ':' {
					return errSyntax
				}
				s.i++
				s.ws()
			}
			if err := s.value(depth + 1); err != nil {
				return err
			}
			s.ws()
			if s.i >= len(s.d) {
				return errSyntax
			}
			if s.d[s.i] == end {
				s.i++
				return nil
			}
			if s.d[s.i] != ',' {
				return errSyntax
			}
			s.i++
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		start := s.i
		for s.i < len(s.d) {
			switch b := s.d[s.i]; {
			case '0' <= b && b <= '9', b == '-', b == '+', b == '.', b == 'e', b == 'E':
				s.i++
				continue
			}
			break
		}
		if !json.Valid(s.d[start:s.i]) {
			return errSyntax
		}
		return nil
	}
	return errSyntax
}

func (s *scanner) literal(lit string) error {
	if len(s.d)-s.i < len(lit) || string(s.d[s.i:s.i+len(lit)]) != lit {
		return errSyntax
	}
	s.i += len(lit)
	return nil
}

// unquote turns a scanned string's contents into a Go string the way
// encoding/json does (escapes decoded, invalid UTF-8 replaced).
func unquote(content []byte, escaped bool) (string, bool) {
	if !escaped && utf8.Valid(content) {
		return string(content), true
	}
	quoted := make([]byte, 0, len(content)+2)
	quoted = append(append(append(quoted, '"'), content...), '"')
	var out string
	if json.Unmarshal(quoted, &out) != nil {
		return "", false
	}
	return out, true
}
