package strictjson

import (
	"errors"
	"testing"
)

func TestMembers(t *testing.T) {
	check := ExactNames("alive", "can_sign")
	for _, c := range []struct {
		body, dup string
		bad       bool
	}{
		{`{"alive": true, "x": {"alive": false}, "l": [{"alive": 1}, {"alive": 2}]}`, "", false},
		{`{"a": {"b": 1, "b": 2}}`, "b", true},
		{`[{"c": 1}, {"d": [{"e": 1, "e": 1}]}]`, "e", true},
		{`{"alive": true, "ALIVE": false}`, "", true},
		{`{"can_\u017fign": true}`, "", true}, // ſ folds to s
		{`{"alive": true, "unknown": 1, "Unknown": 2}`, "", false},
		{`{"alive": `, "", false}, // malformed: the decoder's to report
	} {
		err := Members([]byte(c.body), check)
		var dup *DuplicateError
		switch {
		case c.bad != (err != nil):
			t.Errorf("%s: %v", c.body, err)
		case c.dup != "" && (!errors.As(err, &dup) || dup.Name != c.dup):
			t.Errorf("%s: %v, want %q twice", c.body, err, c.dup)
		}
	}
}
