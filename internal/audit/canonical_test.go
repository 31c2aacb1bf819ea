package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

// roundTrip is canonicalJSON without its shortcut: encode, decode into
// map[string]any keeping numbers as written, encode again.
func roundTrip(t testing.TB, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(generic)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type state string

type unsorted struct {
	Z string `json:"z"`
	A string `json:"a"`
}

type selfEncoded struct{}

func (selfEncoded) MarshalJSON() ([]byte, error) { return []byte(`{"z":1,"a":2}`), nil }

// octet is a byte that encodes itself: json.Marshal calls it for each
// element of a []octet instead of writing base64.
type octet byte

func (octet) MarshalJSON() ([]byte, error) { return []byte(`{"z":1,"a":"\u00e9"}`), nil }

// ptrOctet encodes itself through a pointer, which slice elements are.
type ptrOctet byte

func (*ptrOctet) MarshalText() ([]byte, error) { return []byte("a\xffb"), nil }

type textKey string

func (k textKey) MarshalText() ([]byte, error) { return []byte("k-" + k), nil }

// TestCanonicalJSON: what canonicalJSON writes is the round trip's
// encoding for every kind of detail, whether it takes the shortcut (plain)
// or not; and the values that json.Marshal alone would encode otherwise
// (a struct, a Marshaler, invalid UTF-8, a TextMarshaler key) are not
// plain.
func TestCanonicalJSON(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 30, 0, 123456789, time.FixedZone("", 5*3600))
	serial := []byte{0x01, 0xa2, 0xff}
	for _, c := range []struct {
		name  string
		v     any
		plain bool
	}{
		{"the usual map", map[string]any{"profile": "citizen-sign", "state": state("issued"), "serial": "01a2", "n": 3}, true},
		{"nested maps and slices", map[string]any{"z": []any{1, "b", nil, map[string]any{"y": true, "x": 1.5}}, "a": []string{"q", "p"}}, true},
		{"numbers", map[string]any{"big": uint64(math.MaxUint64), "neg": int64(math.MinInt64), "tiny": 1e-9, "huge": 1e21, "f32": float32(0.1), "zero": math.Copysign(0, -1)}, true},
		{"escapes", map[string]any{"html": "<a&b>", "ctl": "a\x01\n\t", "sep": "\u2028\u2029", "quote": `"\`, "<key>": "ü 中"}, true},
		{"time, bytes, pointer, array", map[string]any{"at": at, "der": serial, "p": &at, "nilp": (*int)(nil), "arr": [2]byte{1, 2}}, true},
		{"map of strings", map[string]string{"b": "2", "a": "1"}, true},
		{"nil slice and map", map[string]any{"s": []string(nil), "m": map[string]any(nil)}, true},
		{"a struct", map[string]any{"s": unsorted{Z: "z", A: "a"}}, false},
		{"a struct at the top", unsorted{Z: "z", A: "a"}, false},
		{"a Marshaler", map[string]any{"m": selfEncoded{}}, false},
		{"invalid UTF-8", map[string]any{"s": "a\xffb"}, false},
		{"invalid UTF-8 key", map[string]any{"a\xffb": 1}, false},
		{"a TextMarshaler key", map[textKey]int{"b": 1, "a": 2}, false},
		{"an int key", map[int]string{10: "a", 9: "b"}, false},
		{"octets that encode themselves", map[string]any{"x": []octet{1}}, false},
		{"an array of them", map[string]any{"x": [1]octet{1}}, false},
		{"octets that encode themselves through a pointer", map[string]any{"x": []ptrOctet{1, 2}}, false},
	} {
		if got := plain(reflect.ValueOf(c.v)); got != c.plain {
			t.Errorf("%s: plain %v, want %v", c.name, got, c.plain)
		}
		got, err := canonicalJSON(c.v)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if want := roundTrip(t, c.v); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, want)
		}
	}
}

// FuzzCanonicalJSON: for any string, number and bytes in a detail, the
// shortcut writes what the round trip writes.
func FuzzCanonicalJSON(f *testing.F) {
	f.Add("IDCKZ-880312448217", 1.5, int64(-7), []byte{0, 1})
	f.Add("a\xffb<>&\u2028", 1e21, int64(math.MaxInt64), []byte(nil))
	f.Fuzz(func(t *testing.T, s string, x float64, n int64, b []byte) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return // json.Marshal refuses them, canonicalJSON with it
		}
		v := map[string]any{"s": s, s: []any{x, n, b, map[string]any{s: s, "t": time.Unix(n%1e10, 0).UTC()}}}
		got, err := canonicalJSON(v)
		if err != nil {
			t.Fatal(err)
		}
		if want := roundTrip(t, v); !bytes.Equal(got, want) {
			t.Errorf("plain %v:\n got %s\nwant %s", plain(reflect.ValueOf(v)), got, want)
		}
	})
}
