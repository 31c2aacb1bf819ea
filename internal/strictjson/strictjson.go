// Package strictjson refuses what encoding/json would silently resolve in
// a document from outside: a member given twice in one object (it keeps
// the last, where a proxy, a log reader or an auditor's tool may keep the
// first) and member names its callers' rules refuse (encoding/json matches
// names to fields without regard to case, "ALIVE" or "alıve" for "alive").
// Either would let the bytes received say one thing and what is acted on
// another.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DuplicateError is a member name given twice in one object.
type DuplicateError struct{ Name string }

func (e *DuplicateError) Error() string { return fmt.Sprintf("member %q appears twice", e.Name) }

// Members walks every object of body, at any depth, and returns a
// *DuplicateError for a member name given twice in one object, or the
// first error check returns for a member name. Malformed JSON is left to
// the decoder, which reports it precisely: Members stops without error at
// the first syntax error.
func Members(body []byte, check func(name string) error) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		seen   map[string]bool
		key    bool // the next token of an object is a member name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) || err != nil {
			return nil
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key && tok != json.Delim('}') {
			name, _ := tok.(string)
			if top.seen[name] {
				return &DuplicateError{Name: name}
			}
			if err := check(name); err != nil {
				return err
			}
			top.seen[name] = true
			top.key = false
			continue
		}
		if top != nil && top.object {
			top.key = true // after this value, a name comes next
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, seen: map[string]bool{}, key: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].key = true
			}
		}
	}
}

// ExactNames is a check for Members: a name that encoding/json would
// match to one of known (strings.EqualFold) must be spelled exactly so.
// Other names pass: a caller that ignores unknown members still does.
func ExactNames(known ...string) func(string) error {
	return func(name string) error {
		for _, k := range known {
			if name != k && strings.EqualFold(name, k) {
				return fmt.Errorf("member %q is not %q", name, k)
			}
		}
		return nil
	}
}
