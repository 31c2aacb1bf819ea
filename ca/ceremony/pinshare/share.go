package pinshare

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// version is the share format written by this package.
	version = 1
	// maxShares is the most shares GF(256) allows: x-coordinates 1..255.
	maxShares = 255
	// setIDBytes is the size of a set ID before hex encoding (128 bits).
	setIDBytes = 16
	// maxTokenLabel is what a PKCS#11 token label can hold (CK_TOKEN_INFO).
	maxTokenLabel = 32
	// maxCustodian bounds a custodian's name, in bytes.
	maxCustodian = 128
	// maxShareFile bounds a share document: 255 commitments of 66 bytes and
	// a 289-byte part fit several times over.
	maxShareFile = 64 << 10

	checksumDomain   = "sanad pinshare v1 checksum\x00"
	commitmentDomain = "sanad pinshare v1 commitment\x00"
)

// Share is one custodian's share of a split PIN, as kept in its JSON file.
// Every field takes part in the checksum; see the package documentation for
// what the checksum and the commitments protect against.
type Share struct {
	Version     int      `json:"version"`     // format version: 1
	SetID       string   `json:"set_id"`      // random 128-bit hex, the same for all shares of one split
	TokenLabel  string   `json:"token_label"` // which token's PIN (informational, must agree across shares)
	Custodian   string   `json:"custodian"`   // person holding this share
	Index       int      `json:"index"`       // 1..Total
	Threshold   int      `json:"threshold"`   // M: shares needed
	Total       int      `json:"shares"`      // N: shares made
	Value       string   `json:"share"`       // base64 of the Shamir part (payload bytes, then x-coordinate)
	Commitments []string `json:"commitments"` // hex SHA-256 of every share's part, bound to the set, in index order
	Checksum    string   `json:"checksum"`    // hex SHA-256 over all other fields in canonical order
}

// fieldTargets maps each JSON member of a share document, all required, to
// the field it fills.
func (s *Share) fieldTargets() map[string]any {
	return map[string]any{
		"version":     &s.Version,
		"set_id":      &s.SetID,
		"token_label": &s.TokenLabel,
		"custodian":   &s.Custodian,
		"index":       &s.Index,
		"threshold":   &s.Threshold,
		"shares":      &s.Total,
		"share":       &s.Value,
		"commitments": &s.Commitments,
		"checksum":    &s.Checksum,
	}
}

// who names a share in errors and logs: index and custodian, never its value.
func (s Share) who() string {
	return fmt.Sprintf("share %d (custodian %q)", s.Index, s.Custodian)
}

// String implements fmt.Stringer without the share's value.
func (s Share) String() string {
	return fmt.Sprintf("pinshare.Share{set %s, token %q, custodian %q, share %d of %d, threshold %d, value [redacted]}",
		s.SetID, s.TokenLabel, s.Custodian, s.Index, s.Total, s.Threshold)
}

// GoString implements fmt.GoStringer without the share's value.
func (s Share) GoString() string { return s.String() }

// Format implements fmt.Formatter, so that every verb prints String.
func (s Share) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// LogValue implements slog.LogValuer without the share's value.
func (s Share) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("set_id", s.SetID),
		slog.String("token_label", s.TokenLabel),
		slog.String("custodian", s.Custodian),
		slog.Int("index", s.Index),
		slog.Int("threshold", s.Threshold),
		slog.Int("shares", s.Total),
	)
}

// MarshalJSON implements json.Marshaler with the share's value redacted, so
// that a share inside a logged, audited or served structure never shows its
// part. The result is not a share file (ParseShare refuses it); the file is
// MarshalFile.
func (s Share) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Version    int    `json:"version"`
		SetID      string `json:"set_id"`
		TokenLabel string `json:"token_label"`
		Custodian  string `json:"custodian"`
		Index      int    `json:"index"`
		Threshold  int    `json:"threshold"`
		Total      int    `json:"shares"`
		Value      string `json:"share"`
	}{s.Version, s.SetID, s.TokenLabel, s.Custodian, s.Index, s.Threshold, s.Total, "[redacted]"})
}

// shareFile is Share without its methods: the file format, value included.
type shareFile Share

// MarshalFile returns the share as its file: indented JSON and a newline.
// This and WriteShareFile are the only ways to the share's value in text.
func (s Share) MarshalFile() []byte {
	// A struct of strings, ints and a string slice cannot fail to marshal.
	b, _ := json.MarshalIndent(shareFile(s), "", "  ")
	return append(b, '\n')
}

// ParseShare reads a share document strictly: one JSON object with exactly
// the ten members of Share, each once, of the right type, nothing after it;
// then the version, every field's range and format, and the checksum. Damage
// is reported as ErrCorruptShare with what is wrong. A file whose checksum is
// right but whose part does not match its own commitment was edited on
// purpose and is reported as ErrForgedShare.
func ParseShare(raw []byte) (Share, error) {
	s, err := decodeStrict(raw)
	if err != nil {
		return Share{}, err
	}
	if _, err := s.check(); err != nil {
		return Share{}, err
	}
	return s, nil
}

// decodeStrict decodes raw member by member. It reports JSON syntax errors by
// byte offset only: encoding/json quotes the offending input character, which
// may be part of the share's value.
func decodeStrict(raw []byte) (Share, error) {
	corrupt := func(format string, a ...any) (Share, error) {
		return Share{}, fmt.Errorf("%w: %s", ErrCorruptShare, fmt.Sprintf(format, a...))
	}
	if len(raw) > maxShareFile {
		return corrupt("document is %d bytes, more than %d", len(raw), maxShareFile)
	}
	if !utf8.Valid(raw) {
		return corrupt("document is not valid UTF-8")
	}
	var s Share
	targets := s.fieldTargets()
	seen := make(map[string]bool, len(targets))
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return corrupt("not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return corrupt("invalid JSON near byte %d", dec.InputOffset())
		}
		key, ok := tok.(string)
		if !ok {
			return corrupt("invalid JSON near byte %d", dec.InputOffset())
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return corrupt("invalid JSON for field %q near byte %d", key, dec.InputOffset())
		}
		target, known := targets[key]
		switch {
		case !known:
			return corrupt("unknown field %q", key)
		case seen[key]:
			return corrupt("field %q appears twice", key)
		case string(value) == "null":
			return corrupt("field %q is null", key)
		}
		seen[key] = true
		if err := json.Unmarshal(value, target); err != nil {
			return corrupt("field %q has the wrong type: want %s", key, jsonKind(target))
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return corrupt("invalid JSON near byte %d", dec.InputOffset())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return corrupt("data after the JSON object near byte %d", dec.InputOffset())
	}
	for _, name := range fieldNames() {
		if !seen[name] {
			return corrupt("field %q is missing", name)
		}
	}
	return s, nil
}

// fieldNames lists the members of a share document in file order.
func fieldNames() []string {
	return []string{"version", "set_id", "token_label", "custodian", "index", "threshold", "shares", "share", "commitments", "checksum"}
}

func jsonKind(target any) string {
	switch target.(type) {
	case *int:
		return "an integer"
	case *string:
		return "a string"
	default:
		return "an array of strings"
	}
}

// check validates every field of s and returns its decoded part. Errors wrap
// ErrCorruptShare, or ErrForgedShare for a share whose checksum is right but
// whose part does not match its own commitment.
func (s Share) check() ([]byte, error) {
	corrupt := func(format string, a ...any) ([]byte, error) {
		return nil, fmt.Errorf("%w: %s: %s", ErrCorruptShare, s.who(), fmt.Sprintf(format, a...))
	}
	if s.Version != version {
		return corrupt("version %d is not supported (want %d)", s.Version, version)
	}
	if !isLowerHex(s.Checksum, sha256.Size) {
		return corrupt("checksum is not %d lowercase hex digits", 2*sha256.Size)
	}
	if s.checksum() != s.Checksum {
		return corrupt("checksum mismatch: the file was damaged or altered")
	}
	if !isLowerHex(s.SetID, setIDBytes) {
		return corrupt("set_id is not %d lowercase hex digits", 2*setIDBytes)
	}
	if err := checkTokenLabel(s.TokenLabel); err != nil {
		return corrupt("%v", err)
	}
	if err := checkCustodian(s.Custodian); err != nil {
		return corrupt("%v", err)
	}
	if err := checkThreshold(s.Threshold, s.Total); err != nil {
		return corrupt("%v", err)
	}
	if s.Index < 1 || s.Index > s.Total {
		return corrupt("index %d is outside 1..%d", s.Index, s.Total)
	}
	if len(s.Commitments) != s.Total {
		return corrupt("%d commitments listed for %d shares", len(s.Commitments), s.Total)
	}
	for i, c := range s.Commitments {
		if !isLowerHex(c, sha256.Size) {
			return corrupt("commitment %d is not %d lowercase hex digits", i+1, 2*sha256.Size)
		}
	}
	part, err := base64.StdEncoding.Strict().DecodeString(s.Value)
	if err != nil {
		// CorruptInputError gives only an offset, never input bytes.
		return nil, fmt.Errorf("%w: %s: share value is not base64: %w", ErrCorruptShare, s.who(), err)
	}
	if !validPartLen(len(part)) {
		return corrupt("share value is %d bytes, not one of the sizes Split makes", len(part))
	}
	switch x := part[len(part)-1]; {
	case x == 0:
		return corrupt("share value has x-coordinate 0")
	case s.Total == 1 && x != 1:
		return corrupt("one-of-one share has x-coordinate %d, want 1", x)
	}
	if s.commitment(part) != s.Commitments[s.Index-1] {
		return nil, fmt.Errorf("%w: %s: its value does not match its own commitment; the file was edited and its checksum recomputed", ErrForgedShare, s.who())
	}
	return part, nil
}

// checksum computes the checksum of s over all its other fields, in file
// order.
func (s Share) checksum() string {
	h := sha256.New()
	io.WriteString(h, checksumDomain)
	writeField(h, "version", strconv.Itoa(s.Version))
	writeField(h, "set_id", s.SetID)
	writeField(h, "token_label", s.TokenLabel)
	writeField(h, "custodian", s.Custodian)
	writeField(h, "index", strconv.Itoa(s.Index))
	writeField(h, "threshold", strconv.Itoa(s.Threshold))
	writeField(h, "shares", strconv.Itoa(s.Total))
	writeField(h, "share", s.Value)
	writeField(h, "commitments", strconv.Itoa(len(s.Commitments)))
	for _, c := range s.Commitments {
		writeField(h, "commitment", c)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// commitment computes the commitment to part as share s's: bound to the set,
// the token, the custodian, the index and the threshold, so that a part cannot
// be passed off under another name or in another set.
func (s Share) commitment(part []byte) string {
	h := sha256.New()
	io.WriteString(h, commitmentDomain)
	writeField(h, "set_id", s.SetID)
	writeField(h, "token_label", s.TokenLabel)
	writeField(h, "custodian", s.Custodian)
	writeField(h, "index", strconv.Itoa(s.Index))
	writeField(h, "threshold", strconv.Itoa(s.Threshold))
	writeField(h, "shares", strconv.Itoa(s.Total))
	writeLenPrefixed(h, []byte("part"))
	writeLenPrefixed(h, part)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// writeField writes name and value, each length-prefixed, so that no two
// different sequences of fields hash alike.
func writeField(h hash.Hash, name, value string) {
	writeLenPrefixed(h, []byte(name))
	writeLenPrefixed(h, []byte(value))
}

func writeLenPrefixed(h hash.Hash, b []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	h.Write(n[:])
	h.Write(b)
}

// isLowerHex reports whether s is n bytes in lowercase hex.
func isLowerHex(s string, n int) bool {
	if len(s) != 2*n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkTokenLabel applies the rule of hsm's token labels (what PKCS#11 can
// store) and refuses control characters, which would reach terminals.
func checkTokenLabel(label string) error { return checkName("token label", label, maxTokenLabel) }

// checkCustodian refuses names that are empty, padded with blanks, very long
// or hold control characters: names are shown to people and in error
// messages.
func checkCustodian(name string) error { return checkName("custodian name", name, maxCustodian) }

// checkName is the rule both share names follow; what says which name.
func checkName(what, value string, maxLen int) error {
	switch {
	case value == "":
		return fmt.Errorf("empty %s", what)
	case len(value) > maxLen:
		return fmt.Errorf("%s %q is longer than %d bytes", what, value, maxLen)
	case strings.TrimSpace(value) != value:
		return fmt.Errorf("%s %q has leading or trailing blanks", what, value)
	case !printable(value):
		return fmt.Errorf("%s %q has control characters or is not UTF-8", what, value)
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// checkThreshold enforces 2 <= M <= N <= 255, or M = N = 1.
func checkThreshold(threshold, total int) error {
	switch {
	case total < 1 || total > maxShares:
		return fmt.Errorf("%d shares: want 1..%d", total, maxShares)
	case threshold == 1 && total == 1:
		return nil
	case threshold < 2 || threshold > total:
		return fmt.Errorf("threshold %d of %d shares: want 2 <= threshold <= shares (or 1 of 1)", threshold, total)
	}
	return nil
}
