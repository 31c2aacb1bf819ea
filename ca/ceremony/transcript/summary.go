package transcript

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// maxFactLen is the longest value Summary prints; longer values (PEM, base64
// blobs) are shown by size only and stay in the transcript itself.
const maxFactLen = 100

// Summary writes a human summary: one line per ceremony step in order, with
// seq, time, step and every fact in its data (flattened to dotted names,
// lists joined by ", ", long values shown by size), then who signed. Text
// from the transcript is escaped so that a hostile transcript cannot forge
// summary lines or terminal control sequences.
func (r Result) Summary(w io.Writer) error {
	bw := bufio.NewWriter(w)
	steps, width := 0, 0
	for _, ln := range r.Lines {
		if ln.Step != stepSignature {
			steps++
			width = max(width, len(ln.Step))
		}
	}
	status := "NOT SIGNED: nothing in it is attested"
	if r.SignerPublicKey != nil {
		status = "signed"
	}
	fmt.Fprintf(bw, "Ceremony transcript: %d steps, %s\n", steps, status)
	for _, ln := range r.Lines {
		if ln.Step == stepSignature {
			continue
		}
		fmt.Fprintf(bw, "%4d  %s  %-*s", ln.Seq, formatTime(ln.Time), width, ln.Step)
		if facts := flattenFacts(ln.Data); len(facts) > 0 {
			fmt.Fprintf(bw, "  %s", strings.Join(facts, "; "))
		}
		bw.WriteString("\n")
	}
	if r.SignerPublicKey != nil {
		fmt.Fprintf(bw, "Signed %s with %s by key SHA-256 %s\n", formatTime(r.SignedAt), r.Algorithm, r.SignerKeySHA256)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write transcript summary: %w", err)
	}
	return nil
}

// flattenFacts turns a data object into "name=value" facts, sorted by name.
func flattenFacts(data json.RawMessage) []string {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	var out []string
	flattenValue("", v, &out)
	return out
}

func flattenValue(path string, v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			flattenValue(joinPath(path, Printable(k)), x[k], out)
		}
	case []any:
		scalars := make([]string, 0, len(x))
		for _, e := range x {
			switch e.(type) {
			case map[string]any, []any:
				for i, e := range x {
					flattenValue(path+"["+strconv.Itoa(i)+"]", e, out)
				}
				return
			}
			scalars = append(scalars, scalar(e))
		}
		*out = append(*out, path+"="+strings.Join(scalars, ", "))
	default:
		*out = append(*out, path+"="+scalar(x))
	}
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > maxFactLen {
			return fmt.Sprintf("(%d bytes, see the transcript)", len(x))
		}
		return Printable(x)
	case json.Number:
		return Printable(x.String())
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	default:
		return Printable(fmt.Sprint(x))
	}
}

// Printable returns s unchanged if every rune is graphic (letters, marks,
// numbers, punctuation, symbols, spaces), and Go-quoted otherwise, so that
// newlines, terminal escapes and bidirectional overrides show as escapes:
// for a terminal showing text someone else wrote.
func Printable(s string) string {
	for _, r := range s {
		if !unicode.IsGraphic(r) || r == unicode.ReplacementChar {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}
