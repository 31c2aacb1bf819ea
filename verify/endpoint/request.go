package endpoint

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sanadpki/sanad/verify"
)

// decodeRequest reads the JSON form of a request (Request) from in as its
// bytes arrive, and decodes signature and content from base64 on the way:
// a request holds the decoded bytes and a small buffer, never its body
// besides. encoding/json held the body, then each member as a string, then
// the decoded bytes: a request of 64 MB took 368 MB while it was read.
// left says how many bytes of the body are still to come (-1: unknown),
// so that what a member decodes to is allocated once.
//
// It reads what encoding/json with DisallowUnknownFields read into
// Request: one object of string (or null) members, their names matched
// without regard to case; an unknown member, or anything after the
// object, is refused. Unlike it, a member given twice and a string that is
// not UTF-8 (RFC 8259 §8.1) are refused too, where encoding/json kept the
// last one and replaced the bytes. Refusals are problems; an error reading
// in is returned as the cause of one (unreadable), so that the body's
// limit and the byte budget are answered as such.
func decodeRequest(in io.Reader, left func() int64, maxContent int64) (sig, content []byte, err error) {
	d := &jsonReader{in: bufio.NewReaderSize(in, 32<<10), left: left}
	var sigText []byte
	var seen [3]bool
	err = d.object(func(name string) error {
		i := -1
		for j, known := range []string{"signature", "signature_text", "content"} {
			if strings.EqualFold(name, known) {
				i = j
			}
		}
		switch {
		case i < 0:
			return badRequest("unknown member %q: send signature (base64) or signature_text, and content (base64) for a detached signature", name)
		case seen[i]:
			return badRequest("member %q given twice", name)
		}
		seen[i] = true
		var err error
		switch i {
		case 0:
			sig, err = d.stringValue(name, verify.MaxSignatureSize, true)
		case 1:
			if sigText, err = d.stringValue(name, verify.MaxSignatureSize, false); err == nil && !utf8.Valid(sigText) {
				err = badRequest("signature_text is not UTF-8")
			}
		case 2:
			content, err = d.stringValue(name, maxContent, true)
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	switch {
	case sig != nil && sigText != nil:
		return nil, nil, badRequest("give signature or signature_text, not both")
	case sigText != nil:
		sig = sigText
	case sig == nil:
		return nil, nil, badRequest("no signature: give signature (base64) or signature_text")
	}
	return sig, content, nil
}

// jsonReader reads the few JSON forms a request has (RFC 8259), from a
// buffered reader, one byte at a time but for the runs of a string.
type jsonReader struct {
	in   *bufio.Reader
	left func() int64
}

// remaining is how many bytes of the body are still to be read here, -1
// when unknown.
func (d *jsonReader) remaining() int64 {
	if l := d.left(); l >= 0 {
		return l + int64(d.in.Buffered())
	}
	return -1
}

// syntax is a body that is not a request object.
func syntax(format string, args ...any) error {
	return badRequest("the body is not a verification request: "+format, args...)
}

// failed is what an error reading the body means: its end, a syntax
// error; else the error itself, as the cause.
func (d *jsonReader) failed(err error) error {
	if errors.Is(err, io.EOF) {
		return syntax("it ends too soon")
	}
	return unreadable(err, "the body could not be read: %v", err)
}

// next is the next byte that is not white space.
func (d *jsonReader) next() (byte, error) {
	for {
		c, err := d.in.ReadByte()
		if err != nil {
			return 0, d.failed(err)
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, nil
		}
	}
}

// object reads one object whose values member reads, after their name,
// and then nothing but white space.
func (d *jsonReader) object(member func(name string) error) error {
	c, err := d.next()
	if err != nil {
		return err
	}
	if c != '{' {
		return syntax("not a JSON object")
	}
	if c, err = d.next(); err != nil {
		return err
	}
	for c != '}' {
		if c != '"' {
			return syntax("a member name expected")
		}
		var name []byte
		err := d.str(func(b []byte) error {
			if name = append(name, b...); len(name) > 64 {
				return syntax("a member name longer than 64 bytes")
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !utf8.Valid(name) {
			return syntax("a member name that is not UTF-8")
		}
		if c, err = d.next(); err != nil {
			return err
		} else if c != ':' {
			return syntax("':' expected after member %q", name)
		}
		if err := member(string(name)); err != nil {
			return err
		}
		if c, err = d.next(); err != nil {
			return err
		}
		switch c {
		case ',':
			if c, err = d.next(); err != nil {
				return err
			}
			if c == '}' {
				return syntax("a member name expected after ','")
			}
		case '}':
		default:
			return syntax("',' or '}' expected after member %q", name)
		}
	}
	for {
		switch c, err := d.in.ReadByte(); {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return d.failed(err)
		case c != ' ' && c != '\t' && c != '\n' && c != '\r':
			return badRequest("data after the JSON object")
		}
	}
}

// stringValue reads a member's value: a string, its bytes (base64-decoded
// when b64) at most limit, else too large; or null, nil as if it were not
// given (as encoding/json left a string field), as is "".
func (d *jsonReader) stringValue(name string, limit int64, b64 bool) ([]byte, error) {
	c, err := d.next()
	if err != nil {
		return nil, err
	}
	switch c {
	case '"':
	case 'n':
		var ull [3]byte
		if _, err := io.ReadFull(d.in, ull[:]); err != nil {
			return nil, d.failed(err)
		}
		if string(ull[:]) != "ull" {
			return nil, syntax("member %q is not a string", name)
		}
		return nil, nil
	default:
		return nil, badRequest("member %q is not a string", name)
	}
	out := &output{limit: limit, max: limit + 1, name: name, rest: d.remaining}
	if b64 {
		// What the rest of the body decodes to, the pending quanta and
		// the last one's padding included.
		out.max, out.rest = limit+3, func() int64 {
			if r := d.remaining(); r >= 0 {
				return (r+4096)/4*3 + 3
			}
			return -1
		}
		dec := &b64Decoder{out: out}
		if err := d.str(dec.write); err != nil {
			return nil, err
		}
		if err := dec.close(); err != nil {
			return nil, err
		}
	} else if err := d.str(out.write); err != nil {
		return nil, err
	}
	return out.bytes(), nil
}

// str reads a string whose opening quote was read, through its closing
// quote, and gives emit its bytes unescaped, in runs.
func (d *jsonReader) str(emit func([]byte) error) error {
	for {
		if _, err := d.in.Peek(1); err != nil {
			return d.failed(err)
		}
		buf, _ := d.in.Peek(d.in.Buffered())
		i := 0
		for i < len(buf) && buf[i] != '"' && buf[i] != '\\' && buf[i] >= 0x20 {
			i++
		}
		if i > 0 {
			// emit copies what it keeps: buf is the reader's.
			err := emit(buf[:i])
			_, _ = d.in.Discard(i)
			if err != nil {
				return err
			}
			continue
		}
		c, _ := d.in.ReadByte()
		switch {
		case c == '"':
			return nil
		case c < 0x20:
			return syntax("a control character in a string")
		}
		r, err := d.escape()
		if err != nil {
			return err
		}
		var b [utf8.UTFMax]byte
		if err := emit(b[:utf8.EncodeRune(b[:], r)]); err != nil {
			return err
		}
	}
}

// escape reads an escape after its backslash (RFC 8259 §7). A UTF-16
// surrogate that is not half of a pair is refused (§8.2: what it means is
// unpredictable; encoding/json read U+FFFD).
func (d *jsonReader) escape() (rune, error) {
	c, err := d.in.ReadByte()
	if err != nil {
		return 0, d.failed(err)
	}
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
		r, err := d.hex4()
		if err != nil || !utf16.IsSurrogate(r) {
			return r, err
		}
		var low rune
		if next, _ := d.in.Peek(2); string(next) == `\u` {
			_, _ = d.in.Discard(2)
			if low, err = d.hex4(); err != nil {
				return 0, err
			}
		}
		if pair := utf16.DecodeRune(r, low); pair != utf8.RuneError {
			return pair, nil
		}
		return 0, syntax("an unpaired UTF-16 surrogate in a string")
	}
	return 0, syntax("an invalid escape \\%c in a string", c)
}

func (d *jsonReader) hex4() (rune, error) {
	var h [4]byte
	if _, err := io.ReadFull(d.in, h[:]); err != nil {
		return 0, d.failed(err)
	}
	var r rune
	for _, c := range h {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, syntax("an invalid \\u escape in a string")
		}
		r = r<<4 | rune(c)
	}
	return r, nil
}

// b64Decoder decodes standard base64 (RFC 4648 §4) as it is written to
// it, as base64.StdEncoding.DecodeString decodes it whole: \r and \n are
// skipped, padding is required and ends the data.
type b64Decoder struct {
	out     *output
	pending [4096]byte
	n       int
	padded  bool // a quantum with padding was decoded: nothing may follow
}

func (b *b64Decoder) write(p []byte) error {
	b.out.any = b.out.any || len(p) > 0 // "\n" is given, and decodes to nothing
	for _, c := range p {
		if c == '\r' || c == '\n' {
			continue
		}
		if b.padded {
			return badRequest("%s is not base64: data after the padding", b.out.name)
		}
		b.pending[b.n] = c
		if b.n++; b.n == len(b.pending) {
			if err := b.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush decodes the whole quanta pending.
func (b *b64Decoder) flush() error {
	whole := b.n / 4 * 4
	if whole == 0 {
		return nil
	}
	dst, err := b.out.grow(whole / 4 * 3)
	if err != nil {
		return err
	}
	n, err := base64.StdEncoding.Decode(dst, b.pending[:whole])
	if err != nil {
		return badRequest("%s is not base64", b.out.name)
	}
	b.out.buf = b.out.buf[:len(b.out.buf)+n]
	b.padded = b.pending[whole-1] == '='
	b.n = copy(b.pending[:], b.pending[whole:b.n])
	return nil
}

// close decodes what is left: a partial quantum is not base64.
func (b *b64Decoder) close() error {
	if err := b.flush(); err != nil {
		return err
	}
	if b.n > 0 {
		return badRequest("%s is not base64: its length is not a multiple of 4", b.out.name)
	}
	return b.out.check()
}

// output collects a member's bytes, up to max of them (the limit and a
// little more, to tell what exceeds it), in one buffer: when the body's
// length is known, a member larger than a signature usually is gets, at
// its second allocation, all the rest of the body can hold, and it is the
// last; appending would allocate five times the size on the way.
type output struct {
	buf        []byte
	limit, max int64
	// rest is how many more bytes the member can take from the rest of
	// the body, -1 when its length is unknown.
	rest func() int64
	name string
	any  bool // a byte was written: "" is not given
}

func (o *output) write(p []byte) error {
	dst, err := o.grow(len(p))
	if err != nil {
		return err
	}
	o.buf = o.buf[:len(o.buf)+copy(dst, p)]
	return nil
}

// grow makes room for n more bytes and returns it; too large past max.
func (o *output) grow(n int) ([]byte, error) {
	o.any = true
	need := int64(len(o.buf) + n)
	if need > o.max {
		return nil, tooLarge("%s is larger than %d bytes", o.name, o.limit)
	}
	if need > int64(cap(o.buf)) {
		c := max(256<<10, 2*int64(cap(o.buf)))
		if rest := o.rest(); rest >= 0 && (cap(o.buf) > 0 || need+rest < c) {
			c = need + rest
		}
		o.buf = append(make([]byte, 0, max(need, min(c, o.max))), o.buf...)
	}
	return o.buf[len(o.buf) : len(o.buf)+n], nil
}

// check refuses what exceeds the limit.
func (o *output) check() error {
	if int64(len(o.buf)) > o.limit {
		return tooLarge("%s is larger than %d bytes", o.name, o.limit)
	}
	return nil
}

// bytes is what was written, nil when nothing was (""); a buffer much
// larger than its bytes is not kept.
func (o *output) bytes() []byte {
	switch {
	case !o.any:
		return nil
	case o.buf == nil:
		return []byte{}
	case cap(o.buf)-len(o.buf) > 64<<10 && cap(o.buf) > 2*len(o.buf):
		return bytes.Clone(o.buf)
	}
	return o.buf
}

// readPart reads a multipart part of at most limit bytes as output
// collects a member; left is what is left of the body, -1 when unknown.
func readPart(r io.Reader, name string, limit int64, left func() int64) ([]byte, error) {
	out := &output{limit: limit, max: limit + 1, name: fmt.Sprintf("part %q", name), rest: func() int64 {
		if l := left(); l >= 0 {
			return l + 8<<10 // and what the multipart reader holds
		}
		return -1
	}}
	for {
		dst, err := out.grow(int(min(32<<10, out.max-int64(len(out.buf)))))
		if err != nil {
			return nil, err
		}
		if len(dst) == 0 {
			return nil, tooLarge("%s is larger than %d bytes", out.name, limit)
		}
		n, err := r.Read(dst)
		out.buf = out.buf[:len(out.buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, unreadable(err, "%s: %v", out.name, err)
		}
	}
	if err := out.check(); err != nil {
		return nil, err
	}
	return out.bytes(), nil
}
