package transcript

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

const (
	// maxLineBytes bounds one line, without its "\n" (package doc).
	maxLineBytes = 1 << 20
	// maxDepth bounds JSON nesting in a line (package doc).
	maxDepth = 32
	// maxStepLen bounds a step name (package doc).
	maxStepLen = 64
	// timeLayout is RFC 3339 in UTC with whole seconds.
	timeLayout = "2006-01-02T15:04:05Z"
	// stepSignature is the reserved step of the final line.
	stepSignature = "signature"
)

// zeroHash is prev for line 1.
const zeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Line is one parsed line of a transcript.
type Line struct {
	Seq  int
	Time time.Time
	Step string
	// Data is the step's JSON object exactly as it appears in the file.
	Data json.RawMessage
	// Prev is the lowercase hex SHA-256 of the previous line.
	Prev string
	// Hash is the lowercase hex SHA-256 of this line's exact bytes (without
	// its "\n"): the next line's Prev.
	Hash string
}

// wireLine fixes the member order of a line; encoding/json writes struct
// fields in declaration order.
type wireLine struct {
	Seq  int             `json:"seq"`
	Time string          `json:"time"`
	Step string          `json:"step"`
	Data json.RawMessage `json:"data"`
	Prev string          `json:"prev"`
}

// lineFields returns the members of a line, in their required order.
func lineFields() [5]string { return [5]string{"seq", "time", "step", "data", "prev"} }

// encodeLine returns the bytes of one line, without its "\n". data must
// already be a compact JSON object.
func encodeLine(seq int, t time.Time, step string, data json.RawMessage, prev string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(wireLine{Seq: seq, Time: formatTime(t), Step: step, Data: data, Prev: prev})
	if err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// sha256Hex is the lowercase hex SHA-256 of b (of a line: without its "\n").
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// validStep reports whether step is an allowed step name (package doc).
func validStep(step string) bool {
	if len(step) == 0 || len(step) > maxStepLen || step[0] < 'a' || step[0] > 'z' {
		return false
	}
	for i := 0; i < len(step); i++ {
		c := step[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validHex256 reports whether s is 64 lowercase hex digits.
func validHex256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// parseLine parses one line strictly. It checks the line on its own; the
// chain (seq, prev) and the signature are checked by the caller.
func parseLine(raw []byte) (Line, error) {
	if len(raw) == 0 {
		return Line{}, errors.New("empty line")
	}
	if len(raw) > maxLineBytes {
		return Line{}, fmt.Errorf("longer than %d bytes", maxLineBytes)
	}
	if !utf8.Valid(raw) {
		return Line{}, errors.New("not valid UTF-8")
	}
	if raw[0] != '{' || raw[len(raw)-1] != '}' {
		return Line{}, errors.New("not one JSON object alone on its line (stray bytes before or after it, such as a carriage return)")
	}
	keys, err := checkJSON(raw)
	if err != nil {
		return Line{}, err
	}
	fields := lineFields()
	for i, k := range keys {
		if i >= len(fields) {
			return Line{}, fmt.Errorf("unknown field %q", truncate(k, 40))
		}
		if k != fields[i] {
			if !isLineField(k) {
				return Line{}, fmt.Errorf("unknown field %q", truncate(k, 40))
			}
			return Line{}, fmt.Errorf("field %q where %q is required (fields are seq, time, step, data, prev in that order)", truncate(k, 40), fields[i])
		}
	}
	if len(keys) < len(fields) {
		return Line{}, fmt.Errorf("missing field %q", fields[len(keys)])
	}

	var w struct {
		Seq, Time, Step, Data, Prev json.RawMessage
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return Line{}, err
	}
	var ln Line
	if ln.Seq, err = parseSeq(w.Seq); err != nil {
		return Line{}, err
	}
	var ts string
	if err := unmarshalString(w.Time, &ts); err != nil {
		return Line{}, fmt.Errorf("time: %w", err)
	}
	if ln.Time, err = time.Parse(timeLayout, ts); err != nil || formatTime(ln.Time) != ts {
		return Line{}, fmt.Errorf("time %q is not RFC 3339 UTC with whole seconds (YYYY-MM-DDTHH:MM:SSZ)", ts)
	}
	if err := unmarshalString(w.Step, &ln.Step); err != nil {
		return Line{}, fmt.Errorf("step: %w", err)
	}
	if !validStep(ln.Step) {
		return Line{}, fmt.Errorf("step %q is not 1 to %d characters of [a-z0-9_-] starting with a letter", ln.Step, maxStepLen)
	}
	if len(w.Data) == 0 || w.Data[0] != '{' {
		return Line{}, errors.New("data is not a JSON object")
	}
	ln.Data = w.Data
	if err := unmarshalString(w.Prev, &ln.Prev); err != nil {
		return Line{}, fmt.Errorf("prev: %w", err)
	}
	if !validHex256(ln.Prev) {
		return Line{}, errors.New("prev is not 64 lowercase hex digits")
	}
	if ln.Step != stepSignature {
		if err := checkFingerprints(ln.Data); err != nil {
			return Line{}, err
		}
	}
	ln.Hash = sha256Hex(raw)
	return ln, nil
}

func isLineField(k string) bool {
	for _, f := range lineFields() {
		if f == k {
			return true
		}
	}
	return false
}

// parseSeq accepts a plain positive decimal integer: no sign, exponent,
// fraction, leading zero or quotes.
func parseSeq(raw json.RawMessage) (int, error) {
	s := string(raw)
	bad := len(s) == 0 || len(s) > 9 || s[0] < '1' || s[0] > '9'
	for i := 0; !bad && i < len(s); i++ {
		bad = s[i] < '0' || s[i] > '9'
	}
	if bad {
		return 0, fmt.Errorf("seq %s is not a positive integer below 10^9", truncate(s, 20))
	}
	return strconv.Atoi(s)
}

func unmarshalString(raw json.RawMessage, s *string) error {
	if len(raw) == 0 || raw[0] != '"' {
		return errors.New("not a JSON string")
	}
	return json.Unmarshal(raw, s)
}

// checkJSON checks that raw is exactly one well-formed JSON value with no
// repeated member name in any object and nesting at most maxDepth, and
// returns the member names of the outermost object in order.
func checkJSON(raw []byte) ([]string, error) {
	type frame struct {
		object  bool
		wantKey bool
		keys    map[string]bool
	}
	var (
		stack []frame
		top   []string
		done  bool
	)
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
		if len(stack) == 0 {
			done = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if !done {
				return nil, errors.New("malformed JSON: unexpected end")
			}
			return top, nil
		}
		if err != nil {
			return nil, fmt.Errorf("malformed JSON: %w", err)
		}
		if done {
			return nil, errors.New("malformed JSON: more than one value")
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			key, ok := tok.(string)
			if !ok {
				return nil, errors.New("malformed JSON: object member without a name")
			}
			if stack[n-1].keys[key] {
				return nil, fmt.Errorf("member %q repeated in one object", truncate(key, 40))
			}
			stack[n-1].keys[key] = true
			stack[n-1].wantKey = false
			if n == 1 {
				top = append(top, key)
			}
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("nested deeper than %d", maxDepth)
			}
			obj := tok == json.Delim('{')
			f := frame{object: obj, wantKey: obj}
			if obj {
				f.keys = make(map[string]bool)
			}
			stack = append(stack, f)
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// checkFingerprints checks that every "public_key_sha256" member, at any
// depth, is 64 lowercase hex digits.
func checkFingerprints(data json.RawMessage) error {
	var bad error
	walkMembers(data, func(path, key string, v any) {
		if key != "public_key_sha256" || bad != nil {
			return
		}
		if s, ok := v.(string); !ok || !validHex256(s) {
			bad = fmt.Errorf("data member %s is not 64 lowercase hex digits", path)
		}
	})
	return bad
}

// walkMembers calls fn for every object member in data, depth first, keys
// in sorted order (the canonical order), with a dotted path.
func walkMembers(data json.RawMessage, fn func(path, key string, v any)) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return
	}
	walkValue("", v, fn)
}

func walkValue(path string, v any, fn func(path, key string, v any)) {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			p := joinPath(path, k)
			fn(p, k, x[k])
			walkValue(p, x[k], fn)
		}
	case []any:
		for i, e := range x {
			walkValue(path+"["+strconv.Itoa(i)+"]", e, fn)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
