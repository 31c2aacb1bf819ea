package pinshare_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sanadpki/sanad/ca/ceremony/pinshare"
	"github.com/sanadpki/sanad/hsm"
)

const (
	testSecret = "s3cr3t-PIN-4711"
	testToken  = "root-2026"
)

var testCustodians = []string{"Alice", "Bob", "Carol", "Dave", "Erin"}

func testPIN(t testing.TB) hsm.PIN {
	t.Helper()
	pin, err := hsm.NewPIN([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return pin
}

// split3of5 splits the test PIN 3-of-5 among testCustodians.
func split3of5(t testing.TB) []pinshare.Share {
	t.Helper()
	set, err := pinshare.Split(testPIN(t), testToken, testCustodians, 3)
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	return set
}

// pick returns the shares of set at the given 1-based indexes, in that order.
func pick(set []pinshare.Share, indexes ...int) []pinshare.Share {
	out := make([]pinshare.Share, len(indexes))
	for i, idx := range indexes {
		out[i] = set[idx-1]
	}
	return out
}

// subsets returns every k-subset of 1..n, as 1-based indexes.
func subsets(n, k int) [][]int {
	var out [][]int
	var rec func(start int, cur []int)
	rec = func(start int, cur []int) {
		if len(cur) == k {
			out = append(out, slices.Clone(cur))
			return
		}
		for i := start; i <= n; i++ {
			rec(i+1, append(cur, i))
		}
	}
	rec(1, nil)
	return out
}

// wantPIN fails unless pin holds secret.
func wantPIN(t *testing.T, pin hsm.PIN, secret string) {
	t.Helper()
	if !bytes.Equal(pin.Bytes(), []byte(secret)) {
		t.Error("combined PIN differs from the PIN that was split")
	}
}

// leaks reports whether out shows the test PIN, in any obvious encoding, or
// any of the given share values.
func leaks(out string, shares ...pinshare.Share) bool {
	if strings.Contains(out, testSecret) ||
		strings.Contains(strings.ToLower(out), hex.EncodeToString([]byte(testSecret))) ||
		strings.Contains(out, fmt.Sprint([]byte(testSecret))) ||
		strings.Contains(out, base64.StdEncoding.EncodeToString([]byte(testSecret))) {
		return true
	}
	for _, s := range shares {
		if s.Value != "" && strings.Contains(out, s.Value) {
			return true
		}
	}
	return false
}

// reseal recomputes s's checksum, as a custodian editing a file can.
func reseal(s pinshare.Share) pinshare.Share {
	s.Commitments = slices.Clone(s.Commitments)
	s.Checksum = s.ChecksumForTest()
	return s
}

// part decodes s's value.
func part(t testing.TB, s pinshare.Share) []byte {
	t.Helper()
	p, err := base64.StdEncoding.DecodeString(s.Value)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCombineSubsets(t *testing.T) {
	set := split3of5(t)
	var cases [][]int
	for k := 3; k <= 5; k++ {
		cases = append(cases, subsets(5, k)...)
	}
	if len(cases) != 10+5+1 {
		t.Fatalf("%d subsets, want 16", len(cases))
	}
	cases = append(cases, []int{5, 3, 1}, []int{4, 2, 5, 1, 3}) // any order
	for _, idx := range cases {
		t.Run(fmt.Sprint(idx), func(t *testing.T) {
			// Through the file format, as a ceremony gets them.
			given := make([]pinshare.Share, len(idx))
			for i, s := range pick(set, idx...) {
				parsed, err := pinshare.ParseShare(s.MarshalFile())
				if err != nil {
					t.Fatalf("ParseShare(share %d): %v", s.Index, err)
				}
				given[i] = parsed
			}
			before := slices.Clone(given)
			pin, err := pinshare.Combine(given)
			if err != nil {
				t.Fatalf("Combine: %v", err)
			}
			wantPIN(t, pin, testSecret)
			if !reflect.DeepEqual(given, before) {
				t.Error("Combine modified its argument")
			}
		})
	}
}

// TestGolden combines share files made by an earlier build: a share kept in
// a safe for years must still open, so the file format, checksum and
// commitments may never change under version 1.
func TestGolden(t *testing.T) {
	var set []pinshare.Share
	for i := 1; i <= 5; i++ {
		path := filepath.Join("testdata", "golden", fmt.Sprintf("share-%d.json", i))
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := pinshare.ParseShare(raw)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got := s.MarshalFile(); !bytes.Equal(got, raw) {
			t.Errorf("%s: MarshalFile of the parsed share differs from the file:\n%s", path, got)
		}
		set = append(set, s)
	}
	for _, idx := range subsets(5, 3) {
		t.Run(fmt.Sprint(idx), func(t *testing.T) {
			pin, err := pinshare.Combine(pick(set, idx...))
			if err != nil {
				t.Fatalf("Combine: %v", err)
			}
			wantPIN(t, pin, "golden-PIN-0815")
		})
	}
}

func TestSplitShape(t *testing.T) {
	set := split3of5(t)
	for i, s := range set {
		switch {
		case s.Version != 1, s.Index != i+1, s.Threshold != 3, s.Total != 5,
			s.TokenLabel != testToken, s.Custodian != testCustodians[i]:
			t.Errorf("share %d: unexpected header %v", i+1, s)
		case s.SetID != set[0].SetID || len(s.SetID) != 32:
			t.Errorf("share %d: set ID %q, want 32 hex digits shared by the set", i+1, s.SetID)
		case !slices.Equal(s.Commitments, set[0].Commitments) || len(s.Commitments) != 5:
			t.Errorf("share %d: commitments differ within the set", i+1)
		}
	}
	// Each share has its own copy of the list.
	set[0].Commitments[1] = "changed"
	if set[1].Commitments[1] == "changed" {
		t.Error("shares of a set share one commitments slice")
	}
	if other := split3of5(t); other[0].SetID == set[0].SetID {
		t.Error("two splits got the same set ID")
	}
}

func TestSplitParameters(t *testing.T) {
	names := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("custodian %d", i+1)
		}
		return out
	}
	cases := []struct {
		name       string
		pin        hsm.PIN
		token      string
		custodians []string
		threshold  int
		wantErr    string // "" for success
	}{
		{name: "3 of 5", custodians: testCustodians, threshold: 3},
		{name: "2 of 2", custodians: names(2), threshold: 2},
		{name: "5 of 5", custodians: testCustodians, threshold: 5},
		{name: "1 of 1", custodians: names(1), threshold: 1},
		{name: "2 of 255", custodians: names(255), threshold: 2},
		{name: "255 of 255", custodians: names(255), threshold: 255},
		{name: "1 of 2", custodians: names(2), threshold: 1, wantErr: "threshold 1 of 2"},
		{name: "0 of 3", custodians: names(3), threshold: 0, wantErr: "threshold 0 of 3"},
		{name: "4 of 3", custodians: names(3), threshold: 4, wantErr: "threshold 4 of 3"},
		{name: "256 custodians", custodians: names(256), threshold: 2, wantErr: "256 shares"},
		{name: "no custodians", custodians: nil, threshold: 1, wantErr: "0 shares"},
		{name: "empty custodian", custodians: []string{"Alice", ""}, threshold: 2, wantErr: "custodian 2: empty custodian name"},
		{name: "blank-padded custodian", custodians: []string{"Alice", "Bob "}, threshold: 2, wantErr: "leading or trailing blanks"},
		{name: "control character", custodians: []string{"Alice", "Bob\x1b[2J"}, threshold: 2, wantErr: "control characters"},
		{name: "same custodian twice", custodians: []string{"Alice", "Bob", "alice"}, threshold: 2, wantErr: `custodians 1 and 3 are both "alice"`},
		{name: "empty token label", token: "-", custodians: names(3), threshold: 2, wantErr: "empty token label"},
		{name: "long token label", token: strings.Repeat("x", 33), custodians: names(3), threshold: 2, wantErr: "longer than 32 bytes"},
		{name: "zero PIN", pin: hsm.PIN{}, custodians: names(3), threshold: 2, wantErr: "empty PIN"},
		{name: "PIN of 256 bytes", pin: mustPIN(t, strings.Repeat("p", 256)), custodians: names(3), threshold: 2, wantErr: "PIN is 256 bytes"},
		{name: "every problem at once", token: "-", custodians: []string{"", "Bob", "bob"}, threshold: 4,
			wantErr: "empty token label\nthreshold 4 of 3 shares: want 2 <= threshold <= shares (or 1 of 1)\ncustodian 1: empty custodian name\ncustodians 2 and 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pin, token := tc.pin, tc.token
			if tc.name != "zero PIN" && tc.pin == (hsm.PIN{}) {
				pin = testPIN(t)
			}
			switch token {
			case "":
				token = testToken
			case "-":
				token = ""
			}
			set, err := pinshare.Split(pin, token, tc.custodians, tc.threshold)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Split error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			if len(set) != len(tc.custodians) {
				t.Fatalf("%d shares, want %d", len(set), len(tc.custodians))
			}
			got, err := pinshare.Combine(set[len(set)-tc.threshold:])
			if err != nil {
				t.Fatalf("Combine: %v", err)
			}
			wantPIN(t, got, testSecret)
		})
	}
}

func mustPIN(t testing.TB, s string) hsm.PIN {
	t.Helper()
	pin, err := hsm.NewPIN([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return pin
}

// TestPINLengths: every PIN length round-trips, and a share shows only the
// bucket the length falls in.
func TestPINLengths(t *testing.T) {
	cases := []struct {
		pinLen, partLen int
	}{
		{1, 65}, {31, 65}, {32, 97}, {63, 97}, {64, 161}, {127, 161}, {128, 289}, {255, 289},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d bytes", tc.pinLen), func(t *testing.T) {
			secret := strings.Repeat("7", tc.pinLen)
			set, err := pinshare.Split(mustPIN(t, secret), testToken, []string{"A", "B", "C"}, 2)
			if err != nil {
				t.Fatalf("Split: %v", err)
			}
			for _, s := range set {
				if n := len(part(t, s)); n != tc.partLen {
					t.Errorf("share %d: part is %d bytes, want %d", s.Index, n, tc.partLen)
				}
			}
			pin, err := pinshare.Combine(set[1:])
			if err != nil {
				t.Fatalf("Combine: %v", err)
			}
			wantPIN(t, pin, secret)
		})
	}
}

func TestOneOfOne(t *testing.T) {
	set, err := pinshare.Split(testPIN(t), "dev-token", []string{"Developer"}, 1)
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	if len(set) != 1 || set[0].Threshold != 1 || set[0].Total != 1 {
		t.Fatalf("got %v, want one 1-of-1 share", set)
	}
	s, err := pinshare.ParseShare(set[0].MarshalFile())
	if err != nil {
		t.Fatalf("ParseShare: %v", err)
	}
	pin, err := pinshare.Combine([]pinshare.Share{s})
	if err != nil {
		t.Fatalf("Combine: %v", err)
	}
	wantPIN(t, pin, testSecret)
	// A 1-of-1 share given twice is a duplicate, not a second opinion.
	if _, err := pinshare.Combine([]pinshare.Share{s, s}); !errors.Is(err, pinshare.ErrDuplicateShare) {
		t.Errorf("1-of-1 share twice: %v, want ErrDuplicateShare", err)
	}
}

// TestCombineErrors: each way Combine refuses, with the sentinel a caller
// branches on and a message that names the share at fault and never shows
// the PIN or a share's value.
func TestCombineErrors(t *testing.T) {
	set := split3of5(t)
	other := split3of5(t)
	otherToken, err := pinshare.Split(testPIN(t), "issuing-2026", testCustodians, 3)
	if err != nil {
		t.Fatal(err)
	}

	// forge plays custodian i (1-based) editing its file: edit, then fix
	// its own commitment entry if fixOwn, then recompute the checksum.
	forge := func(s pinshare.Share, edit func(*pinshare.Share), fixOwn bool) pinshare.Share {
		s.Commitments = slices.Clone(s.Commitments)
		edit(&s)
		if fixOwn {
			s.Commitments[s.Index-1] = s.CommitmentForTest(part(t, s))
		}
		return reseal(s)
	}

	// A coalition of Alice and Bob both claim the split was 2-of-5 and
	// fix their commitments consistently in both files.
	lowered := pick(set, 1, 2)
	for i := range lowered {
		lowered[i].Threshold = 2
	}
	for i := range lowered {
		lowered[i].Commitments = slices.Clone(lowered[i].Commitments)
		for _, s := range lowered {
			lowered[i].Commitments[s.Index-1] = s.CommitmentForTest(part(t, s))
		}
		lowered[i] = reseal(lowered[i])
	}

	// A dishonest dealer: share 5 of the set carries a part of another
	// split, with every file's commitment updated to match.
	dealt := slices.Clone(set)
	dealt[4].Value = other[4].Value
	c5 := dealt[4].CommitmentForTest(part(t, dealt[4]))
	for i := range dealt {
		dealt[i].Commitments = slices.Clone(dealt[i].Commitments)
		dealt[i].Commitments[4] = c5
		dealt[i] = reseal(dealt[i])
	}

	cases := []struct {
		name    string
		shares  []pinshare.Share
		wantErr error
		wantMsg []string
	}{
		{"no shares", nil, pinshare.ErrTooFewShares, []string{"no shares given"}},
		{"one share", pick(set, 4), pinshare.ErrTooFewShares, []string{"1 of 3 shares given: need 2 more"}},
		{"two shares", pick(set, 1, 5), pinshare.ErrTooFewShares, []string{"2 of 3 shares given: need 1 more", `custodian "Alice"`, `custodian "Erin"`}},
		{"same share twice", pick(set, 1, 2, 1), pinshare.ErrDuplicateShare, []string{`share 1 (custodian "Alice") given twice`}},
		{"a repeat does not count twice", pick(set, 2, 3, 3, 4), pinshare.ErrDuplicateShare, []string{`share 3 (custodian "Carol") given twice`}},
		{"same index, other custodian", []pinshare.Share{set[0], set[1], forge(set[1], func(s *pinshare.Share) { s.Custodian = "Mallory" }, true)},
			pinshare.ErrDuplicateShare, []string{`index 2 given twice`, `"Bob"`, `"Mallory"`}},
		{"same custodian, other index", []pinshare.Share{set[0], set[1], forge(set[2], func(s *pinshare.Share) { s.Custodian = "alice" }, true)},
			pinshare.ErrDuplicateShare, []string{`custodian "Alice" given twice: shares 1 and 3`}},
		{"share of another split", []pinshare.Share{set[0], set[1], other[2]}, pinshare.ErrMixedShares,
			[]string{"from split " + set[0].SetID, "from split " + other[2].SetID, `share 3 (custodian "Carol")`}},
		{"share for another token", []pinshare.Share{set[0], otherToken[1], set[2]}, pinshare.ErrMixedShares, []string{`share 2 (custodian "Bob")`}},
		{"threshold edited", []pinshare.Share{set[0], forge(set[1], func(s *pinshare.Share) { s.Threshold = 2 }, true), set[2]},
			pinshare.ErrMixedShares, []string{`share 2 (custodian "Bob") says 2-of-5`, "says 3-of-5"}},
		{"value replaced, checksum recomputed", []pinshare.Share{set[0], set[1], forge(set[2], func(s *pinshare.Share) { s.Value = other[2].Value }, false)},
			pinshare.ErrForgedShare, []string{`share 3 (custodian "Carol")`, "does not match its own commitment"}},
		{"value and own commitment replaced", []pinshare.Share{set[0], set[1], forge(set[2], func(s *pinshare.Share) { s.Value = other[2].Value }, true)},
			pinshare.ErrForgedShare, []string{`share 3 (custodian "Carol") does not match the commitment held by 2 of the other 2 shares`}},
		{"forged among four", []pinshare.Share{set[0], forge(set[1], func(s *pinshare.Share) { s.Value = other[1].Value }, true), set[2], set[3]},
			pinshare.ErrForgedShare, []string{`share 2 (custodian "Bob") does not match the commitment held by 3 of the other 3 shares`}},
		{"forger frames another", []pinshare.Share{set[0], set[1], forge(set[2], func(s *pinshare.Share) { s.Commitments[0] = set[0].Commitments[1] }, false)},
			pinshare.ErrForgedShare, []string{`share 1 (custodian "Alice") does not match the commitment held by share 3 (custodian "Carol")`, "at least one"}},
		{"commitment of an absent share altered", []pinshare.Share{forge(set[0], func(s *pinshare.Share) { s.Commitments[4] = set[0].Commitments[3] }, false), set[1], set[2]},
			pinshare.ErrForgedShare, []string{`share 1 (custodian "Alice") and share 2 (custodian "Bob") list different commitments for share 5`}},
		{"coalition lowers the threshold", lowered, pinshare.ErrForgedShare, []string{"malformed secret", "was the threshold altered?"}},
		{"dishonest dealer", dealt, pinshare.ErrForgedShare, []string{`share 5 (custodian "Erin")`}},
		{"corrupt in memory", []pinshare.Share{set[0], func() pinshare.Share { s := set[1]; s.Custodian = "Bobby"; return s }(), set[2]},
			pinshare.ErrCorruptShare, []string{`share 2 (custodian "Bobby")`, "checksum mismatch"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pin, err := pinshare.Combine(tc.shares)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Combine error = %v, want %v", err, tc.wantErr)
			}
			if pin != (hsm.PIN{}) {
				t.Error("Combine returned a PIN along with its error")
			}
			for _, want := range tc.wantMsg {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			all := slices.Concat(set, other, otherToken, tc.shares)
			if leaks(err.Error(), all...) || leaks(fmt.Sprintf("%+v %#v", err, err), all...) {
				t.Errorf("error shows the PIN or a share value: %v", err)
			}
		})
	}
	// The dealer's honest-looking subsets still open: the checks are on
	// what is given.
	if _, err := pinshare.Combine(pick(dealt, 1, 2, 3)); err != nil {
		t.Errorf("dishonest dealer's shares 1-3: %v", err)
	}
}

// marshalEdited returns s's file after edit changes its JSON members.
func marshalEdited(t *testing.T, s pinshare.Share, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(s.MarshalFile(), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseShareCorrupt(t *testing.T) {
	set := split3of5(t)
	s := set[1] // Bob
	raw := s.MarshalFile()
	valueAt := bytes.Index(raw, []byte(s.Value))
	if valueAt < 0 {
		t.Fatal("share value not in file")
	}
	replaceAt := func(i int, b byte) []byte {
		out := bytes.Clone(raw)
		if out[i] == b {
			b = 'B'
		}
		out[i] = b
		return out
	}
	resealed := func(edit func(*pinshare.Share)) []byte {
		c := s
		c.Commitments = slices.Clone(s.Commitments)
		edit(&c)
		return reseal(c).MarshalFile()
	}
	cases := []struct {
		name    string
		raw     []byte
		wantErr error
		wantMsg string
	}{
		{"flip a byte of share", replaceAt(valueAt+10, 'A'), pinshare.ErrCorruptShare, "checksum mismatch"},
		{"flip a bit of share", func() []byte { b := bytes.Clone(raw); b[valueAt+3] ^= 0x01; return b }(), pinshare.ErrCorruptShare, ""},
		{"non-base64 byte in share", replaceAt(valueAt+10, '*'), pinshare.ErrCorruptShare, ""},
		{"control byte in share", replaceAt(valueAt+10, 0x01), pinshare.ErrCorruptShare, "invalid JSON"},
		{"flip a byte of custodian", bytes.Replace(raw, []byte(`"Bob"`), []byte(`"Bpb"`), 1), pinshare.ErrCorruptShare, `custodian "Bpb"`},
		{"flip a byte of index", bytes.Replace(raw, []byte(`"index": 2`), []byte(`"index": 3`), 1), pinshare.ErrCorruptShare, "checksum mismatch"},
		{"flip a byte of a commitment", bytes.Replace(raw, []byte(s.Commitments[4][:10]), []byte("0000000000"), 1), pinshare.ErrCorruptShare, "checksum mismatch"},
		{"truncated to half", raw[:len(raw)/2], pinshare.ErrCorruptShare, "invalid JSON"},
		{"truncated closing brace", raw[:len(raw)-2], pinshare.ErrCorruptShare, "invalid JSON"},
		{"truncated inside share", raw[:valueAt+5], pinshare.ErrCorruptShare, "invalid JSON"},
		{"empty", nil, pinshare.ErrCorruptShare, "not a JSON object"},
		{"not JSON", []byte("share of Bob"), pinshare.ErrCorruptShare, "not a JSON object"},
		{"JSON array", []byte(`[1, 2]`), pinshare.ErrCorruptShare, "not a JSON object"},
		{"trailing data", append(bytes.Clone(raw), "{}"...), pinshare.ErrCorruptShare, "data after the JSON object"},
		{"unknown field", bytes.Replace(raw, []byte("{\n"), []byte("{\n  \"note\": \"x\",\n"), 1), pinshare.ErrCorruptShare, `unknown field "note"`},
		{"duplicate field", bytes.Replace(raw, []byte("{\n"), []byte("{\n  \"custodian\": \"Alice\",\n"), 1), pinshare.ErrCorruptShare, `field "custodian" appears twice`},
		{"missing field", marshalEdited(t, s, func(m map[string]any) { delete(m, "commitments") }), pinshare.ErrCorruptShare, `field "commitments" is missing`},
		{"null field", marshalEdited(t, s, func(m map[string]any) { m["index"] = nil }), pinshare.ErrCorruptShare, `field "index" is null`},
		{"index as string", marshalEdited(t, s, func(m map[string]any) { m["index"] = "2" }), pinshare.ErrCorruptShare, `field "index" has the wrong type: want an integer`},
		{"fractional index", bytes.Replace(raw, []byte(`"index": 2`), []byte(`"index": 2.5`), 1), pinshare.ErrCorruptShare, `field "index" has the wrong type`},
		{"share as number", marshalEdited(t, s, func(m map[string]any) { m["share"] = 7 }), pinshare.ErrCorruptShare, `field "share" has the wrong type: want a string`},
		{"invalid UTF-8", bytes.Replace(raw, []byte(`"Bob"`), []byte("\"B\xffb\""), 1), pinshare.ErrCorruptShare, "not valid UTF-8"},
		{"too large", append(bytes.Clone(raw), bytes.Repeat([]byte(" "), 64<<10)...), pinshare.ErrCorruptShare, "more than"},
		{"version 2", resealed(func(c *pinshare.Share) { c.Version = 2 }), pinshare.ErrCorruptShare, "version 2 is not supported"},
		{"uppercase checksum", bytes.Replace(raw, []byte(s.Checksum), []byte(strings.ToUpper(s.Checksum)), 1), pinshare.ErrCorruptShare, "checksum is not 64 lowercase hex digits"},
		{"index 0", resealed(func(c *pinshare.Share) { c.Index = 0 }), pinshare.ErrCorruptShare, "index 0 is outside 1..5"},
		{"index 6", resealed(func(c *pinshare.Share) { c.Index = 6 }), pinshare.ErrCorruptShare, "index 6 is outside 1..5"},
		{"threshold above shares", resealed(func(c *pinshare.Share) { c.Threshold = 6 }), pinshare.ErrCorruptShare, "threshold 6 of 5 shares"},
		{"threshold 1 of 5", resealed(func(c *pinshare.Share) { c.Threshold = 1 }), pinshare.ErrCorruptShare, "threshold 1 of 5 shares"},
		{"256 shares", resealed(func(c *pinshare.Share) { c.Total = 256 }), pinshare.ErrCorruptShare, "256 shares"},
		{"short set ID", resealed(func(c *pinshare.Share) { c.SetID = c.SetID[:30] }), pinshare.ErrCorruptShare, "set_id is not 32 lowercase hex digits"},
		{"escape sequence in custodian", resealed(func(c *pinshare.Share) { c.Custodian = "\x1b[31mBob" }), pinshare.ErrCorruptShare, "control characters"},
		{"empty token label", resealed(func(c *pinshare.Share) { c.TokenLabel = "" }), pinshare.ErrCorruptShare, "empty token label"},
		{"commitment missing", resealed(func(c *pinshare.Share) { c.Commitments = c.Commitments[:4] }), pinshare.ErrCorruptShare, "4 commitments listed for 5 shares"},
		{"commitment not hex", resealed(func(c *pinshare.Share) { c.Commitments[2] = strings.Repeat("g", 64) }), pinshare.ErrCorruptShare, "commitment 3 is not 64 lowercase hex digits"},
		{"unpadded base64", resealed(func(c *pinshare.Share) { c.Value = strings.TrimRight(c.Value, "=") }), pinshare.ErrCorruptShare, "not base64"},
		{"part of a wrong size", resealed(func(c *pinshare.Share) { c.Value = base64.StdEncoding.EncodeToString(make([]byte, 10)) }), pinshare.ErrCorruptShare, "10 bytes"},
		{"x-coordinate 0", resealed(func(c *pinshare.Share) {
			p := part(t, *c)
			p[len(p)-1] = 0
			c.Value = base64.StdEncoding.EncodeToString(p)
		}), pinshare.ErrCorruptShare, "x-coordinate 0"},
		{"value replaced, checksum recomputed", resealed(func(c *pinshare.Share) { c.Value = set[2].Value }), pinshare.ErrForgedShare, "does not match its own commitment"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pinshare.ParseShare(tc.raw)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ParseShare error = %v, want %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, pinshare.Share{}) {
				t.Error("ParseShare returned a share along with its error")
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tc.wantMsg)
			}
			if leaks(err.Error(), set...) {
				t.Errorf("error shows a share value: %v", err)
			}
		})
	}
}

func TestParseShareAccepts(t *testing.T) {
	s := split3of5(t)[0]
	var compact bytes.Buffer
	if err := json.Compact(&compact, s.MarshalFile()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		raw  []byte
	}{
		{"file", s.MarshalFile()},
		{"one line, as typed at a prompt", compact.Bytes()},
		{"CRLF and surrounding blanks", append([]byte("\r\n  "), bytes.ReplaceAll(s.MarshalFile(), []byte("\n"), []byte("\r\n"))...)},
		{"members in another order", marshalEdited(t, s, func(map[string]any) {})}, // map order: sorted keys
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pinshare.ParseShare(tc.raw)
			if err != nil {
				t.Fatalf("ParseShare: %v", err)
			}
			if !reflect.DeepEqual(got, s) {
				t.Errorf("ParseShare = %v, want %v", got, s)
			}
		})
	}
}

func TestNeverPrinted(t *testing.T) {
	set := split3of5(t)
	dev, err := pinshare.Split(testPIN(t), "dev-token", []string{"Developer"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(set), dev...)
	pin, err := pinshare.Combine(set[:3])
	if err != nil {
		t.Fatal(err)
	}
	type holder struct {
		Share pinshare.Share
		PIN   hsm.PIN
	}
	h := holder{Share: dev[0], PIN: pin}

	var textLog, jsonLog bytes.Buffer
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("combine", "share", dev[0], "shares", set, "pin", pin, "holder", h)
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("combine", "share", dev[0], "pin", pin, "holder", h)

	jsonShare, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"slog text":   textLog.String(),
		"slog json":   jsonLog.String(),
		"String":      dev[0].String(),
		"json struct": string(jsonShare),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outputs["share "+verb] = fmt.Sprintf(verb, dev[0])
		outputs["pointer to share "+verb] = fmt.Sprintf(verb, &dev[0])
		outputs["shares "+verb] = fmt.Sprintf(verb, all)
		outputs["struct "+verb] = fmt.Sprintf(verb, h)
		outputs["PIN "+verb] = fmt.Sprintf(verb, pin)
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			if leaks(out, all...) {
				t.Errorf("shows the PIN or a share value: %s", out)
			}
		})
	}
	if !strings.Contains(outputs["share %v"], `custodian "Developer"`) {
		t.Errorf("%%v of a share does not name its custodian: %s", outputs["share %v"])
	}
	// The redacted JSON cannot pass for a share file.
	var redacted struct{ Share json.RawMessage }
	if err := json.Unmarshal(jsonShare, &redacted); err != nil {
		t.Fatal(err)
	}
	if _, err := pinshare.ParseShare(redacted.Share); !errors.Is(err, pinshare.ErrCorruptShare) {
		t.Errorf("ParseShare of a share's redacted JSON: %v, want ErrCorruptShare", err)
	}
}

func TestShareFiles(t *testing.T) {
	set := split3of5(t)
	dev, err := pinshare.Split(testPIN(t), "dev-token", []string{"Developer"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	t.Run("written 0600 and read back", func(t *testing.T) {
		path := filepath.Join(dir, "bob.json")
		if err := pinshare.WriteShareFile(path, set[1]); err != nil {
			t.Fatalf("WriteShareFile: %v", err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("mode %04o, want 0600", perm)
		}
		got, err := pinshare.ReadShareFile(path)
		if err != nil {
			t.Fatalf("ReadShareFile: %v", err)
		}
		if !reflect.DeepEqual(got, set[1]) {
			t.Errorf("read back %v, want %v", got, set[1])
		}
	})

	cases := []struct {
		name    string
		setup   func(t *testing.T, path string) // prepares path
		share   pinshare.Share
		wantErr error
	}{
		{"existing file not overwritten", func(t *testing.T, path string) {
			if err := pinshare.WriteShareFile(path, set[0]); err != nil {
				t.Fatal(err)
			}
		}, set[2], fs.ErrExist},
		{"dangling symlink not followed", func(t *testing.T, path string) {
			if err := os.Symlink(path+".target", path); err != nil {
				t.Fatal(err)
			}
		}, set[2], fs.ErrExist},
		{"invalid share refused", nil, func() pinshare.Share { s := set[2]; s.Index = 9; return s }(), pinshare.ErrCorruptShare},
		{"missing directory", nil, set[2], fs.ErrNotExist},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("case-%d.json", i))
			if tc.name == "missing directory" {
				path = filepath.Join(dir, "no-such-dir", "share.json")
			}
			if tc.setup != nil {
				tc.setup(t, path)
			}
			before, _ := os.ReadFile(path)
			err := pinshare.WriteShareFile(path, tc.share)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("WriteShareFile error = %v, want %v", err, tc.wantErr)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("WriteShareFile changed the file at path")
			}
			if _, err := os.Lstat(path + ".target"); !errors.Is(err, fs.ErrNotExist) {
				t.Error("WriteShareFile created the target of a symlink")
			}
			if leaks(err.Error(), set...) {
				t.Errorf("error shows a share value: %v", err)
			}
		})
	}

	readCases := []struct {
		name    string
		share   pinshare.Share
		mode    fs.FileMode
		wantErr string // "" for success
	}{
		{"3-of-5 share, mode 0644", set[3], 0o644, ""},
		{"1-of-1 share, mode 0600", dev[0], 0o600, ""},
		{"1-of-1 share, mode 0640", dev[0], 0o640, "holds a one-of-one share (the PIN itself) and has mode 0640"},
	}
	for i, tc := range readCases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("read-%d.json", i))
			if err := pinshare.WriteShareFile(path, tc.share); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			got, err := pinshare.ReadShareFile(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ReadShareFile error = %v, want one containing %q", err, tc.wantErr)
				}
				if leaks(err.Error(), tc.share) {
					t.Errorf("error shows the share value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadShareFile: %v", err)
			}
			if !reflect.DeepEqual(got, tc.share) {
				t.Errorf("read back %v, want %v", got, tc.share)
			}
		})
	}

	t.Run("read errors", func(t *testing.T) {
		if _, err := pinshare.ReadShareFile(filepath.Join(dir, "absent.json")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("absent file: %v, want fs.ErrNotExist", err)
		}
		if _, err := pinshare.ReadShareFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("directory: %v, want not a regular file", err)
		}
		path := filepath.Join(dir, "damaged.json")
		raw := set[4].MarshalFile()
		if err := os.WriteFile(path, raw[:len(raw)-20], 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := pinshare.ReadShareFile(path)
		if !errors.Is(err, pinshare.ErrCorruptShare) || !strings.Contains(err.Error(), path) {
			t.Errorf("damaged file: %v, want ErrCorruptShare naming the path", err)
		}
	})
}
