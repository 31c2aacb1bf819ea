package jwsauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Action is the signed payload.
type Action struct {
	Action     string `json:"action"`               // approve | reject | revoke | renew | queue | show | find
	Enrollment string `json:"enrollment,omitempty"` // for approve, reject, show
	// Subject is the ETSI EN 319 412-1 semantics identifier of the person
	// or business to find (IDCKZ-880312448217, NTRPK-32778761), for find.
	Subject string `json:"subject,omitempty"`
	// Serial is the certificate to revoke, in hex as openssl x509 -serial
	// prints it: upper case, no colons, two digits per octet, no leading
	// zero octet (SerialHex makes it).
	Serial string `json:"serial,omitempty"`
	// Reason is free text for reject (≤ 512 bytes, no control characters),
	// an RFC 5280 §5.3.1 reason name for revoke (see RevocationReasons).
	Reason string `json:"reason,omitempty"`
	// CSR is the new key's certificate request for renew: its DER in
	// unpadded base64url, at most MaxCSRChars characters. The old key's
	// signature over it is the holder's consent to the new key.
	CSR      string `json:"csr,omitempty"`
	Nonce    string `json:"nonce"` // base64url (no padding) of ≥ 16 random bytes: 22..64 characters
	IssuedAt int64  `json:"iat"`   // Unix seconds
	// Audience is the RA endpoint the request is for, e.g.
	// "/api/v1/officer/actions": it binds the JWS to that endpoint.
	Audience string `json:"aud"`
}

// The action kinds.
const (
	ActionApprove = "approve"
	ActionReject  = "reject"
	ActionRevoke  = "revoke"
	ActionRenew   = "renew"
	ActionQueue   = "queue"
	ActionShow    = "show"
	ActionFind    = "find"
)

// Limits on the payload's fields.
const (
	MaxRejectReason = 512 // bytes
	// MaxCSRChars bounds renew's csr: 6 KiB of base64url, 4.5 KiB of DER,
	// room for an RSA-8192 request.
	MaxCSRChars     = 6 << 10
	MinNonceBytes   = 16
	minNonceChars   = 22 // base64url of 16 bytes
	maxNonceChars   = 64
	maxEnrollment   = 64
	maxAudience     = 256
	maxSerialOctets = 20 // RFC 5280 §4.1.2.2
	maxSubjectID    = 32 // characters after the semantics identifier's "IDCKZ-"
)

// needs says, for each action kind, which optional fields it requires; a
// field not required is forbidden.
var needs = map[string]struct{ enrollment, serial, reason, csr, subject bool }{
	ActionApprove: {enrollment: true},
	ActionReject:  {enrollment: true, reason: true},
	ActionShow:    {enrollment: true},
	ActionQueue:   {},
	ActionRevoke:  {serial: true, reason: true},
	ActionRenew:   {serial: true, csr: true},
	ActionFind:    {subject: true},
}

// revocationReasons are the RFC 5280 §5.3.1 reasons a revoke action may
// name, spelled as there. certificateHold and removeFromCRL (codes 6 and 8)
// are not revocations and are not accepted.
var revocationReasons = []string{
	"unspecified", "keyCompromise", "affiliationChanged", "superseded",
	"cessationOfOperation", "privilegeWithdrawn",
}

// RevocationReasons returns the reason names a revoke action may carry.
// Which of them a given signer may use (a holder only keyCompromise,
// superseded and cessationOfOperation) is the caller's rule.
func RevocationReasons() []string {
	return append([]string(nil), revocationReasons...)
}

// SerialHex formats a certificate serial number the way Action.Serial
// wants it, which is how openssl x509 -serial prints it: upper-case hex of
// the big-endian octets, no leading zero octet, no colons (e.g. 0x0a1b →
// "0A1B"). It returns "" for a serial that is not positive, which no
// certificate may have (RFC 5280 §4.1.2.2).
func SerialHex(serial *big.Int) string {
	if serial == nil || serial.Sign() <= 0 {
		return ""
	}
	return fmt.Sprintf("%X", serial.Bytes())
}

// check applies every syntactic rule of the payload to a and returns the
// first problem found.
func (a Action) check() error {
	need, ok := needs[a.Action]
	if !ok {
		return fmt.Errorf("unknown action %q", truncate(a.Action, 16))
	}
	if err := presence("enrollment", a.Enrollment, need.enrollment, a.Action); err != nil {
		return err
	}
	if err := presence("serial", a.Serial, need.serial, a.Action); err != nil {
		return err
	}
	if err := presence("reason", a.Reason, need.reason, a.Action); err != nil {
		return err
	}
	if err := presence("csr", a.CSR, need.csr, a.Action); err != nil {
		return err
	}
	if err := presence("subject", a.Subject, need.subject, a.Action); err != nil {
		return err
	}
	if a.Subject != "" && !IsSubjectID(a.Subject) {
		return fmt.Errorf("subject must be a semantics identifier: three and two capital letters, \"-\", then 1 to %d of 0-9 A-Z (IDCKZ-880312448217)", maxSubjectID)
	}
	if a.CSR != "" {
		if _, err := a.RequestDER(); err != nil {
			return err
		}
	}
	if a.Enrollment != "" && !isEnrollmentID(a.Enrollment) {
		return fmt.Errorf("enrollment id must be 1 to %d characters of A-Z a-z 0-9 - _", maxEnrollment)
	}
	if a.Serial != "" {
		if err := checkSerial(a.Serial); err != nil {
			return err
		}
	}
	switch {
	case a.Reason == "":
	case a.Action == ActionRevoke:
		if !slices.Contains(revocationReasons, a.Reason) {
			return fmt.Errorf("revocation reason %q is not one of %s", truncate(a.Reason, 32), strings.Join(revocationReasons, ", "))
		}
	default:
		if err := checkFreeText(a.Reason); err != nil {
			return err
		}
	}
	if err := checkNonce(a.Nonce); err != nil {
		return err
	}
	if a.IssuedAt <= 0 {
		return errors.New("iat must be a positive number of Unix seconds")
	}
	if a.Audience == "" || len(a.Audience) > maxAudience || strings.ContainsFunc(a.Audience, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return fmt.Errorf("aud must be 1 to %d printable ASCII characters without spaces", maxAudience)
	}
	return nil
}

// RequestDER decodes CSR, refusing anything but canonical unpadded
// base64url of at most MaxCSRChars characters (one request, one spelling).
// Whether the DER is a good request is the caller's to check.
func (a Action) RequestDER() ([]byte, error) {
	if a.CSR == "" || len(a.CSR) > MaxCSRChars {
		return nil, fmt.Errorf("csr must be 1 to %d base64url characters", MaxCSRChars)
	}
	if strings.ContainsFunc(a.CSR, func(r rune) bool { return !isBase64URL(r) }) {
		return nil, errors.New("csr is not base64url (the DER of the request, unpadded)")
	}
	der, err := base64.RawURLEncoding.Strict().DecodeString(a.CSR)
	if err != nil {
		return nil, errors.New("csr is not canonical unpadded base64url")
	}
	return der, nil
}

func presence(field, value string, required bool, action string) error {
	switch {
	case required && value == "":
		return fmt.Errorf("action %q needs %s", action, field)
	case !required && value != "":
		return fmt.Errorf("action %q takes no %s", action, field)
	}
	return nil
}

// IsSubjectID says whether s is spelled as the RA spells a semantics
// identifier: a three-letter type and a two-letter country, "-", and the
// identifier in capitals and digits, as the registry's normal form has it
// (IDCKZ-880312448217, NTRPK-32778761).
func IsSubjectID(s string) bool {
	prefix, id, found := strings.Cut(s, "-")
	return found && len(prefix) == 5 && !strings.ContainsFunc(prefix, func(r rune) bool { return r < 'A' || r > 'Z' }) &&
		id != "" && len(id) <= maxSubjectID && !strings.ContainsFunc(id, func(r rune) bool { return !('0' <= r && r <= '9' || 'A' <= r && r <= 'Z') })
}

func isEnrollmentID(s string) bool {
	return len(s) <= maxEnrollment && s != "" && !strings.ContainsFunc(s, func(r rune) bool { return !isBase64URL(r) })
}

func isBase64URL(r rune) bool {
	return 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_'
}

// checkSerial accepts exactly what SerialHex produces, so that one serial
// has one spelling: lower case, colons, an odd number of digits and a
// leading zero octet are all refused rather than normalized.
func checkSerial(s string) error {
	if len(s)%2 != 0 || len(s) > 2*maxSerialOctets {
		return fmt.Errorf("serial must be 1 to %d octets, two hex digits each", maxSerialOctets)
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'A' <= r && r <= 'F') {
			return errors.New("serial must be upper-case hex without separators, as openssl x509 -serial prints it")
		}
	}
	if strings.HasPrefix(s, "00") {
		return errors.New("serial must not start with a zero octet")
	}
	return nil
}

// checkFreeText keeps a reject reason to one line of plain text, so that it
// shows in logs, audit records and the applicant's view as signed: no
// control characters (C0, DEL, C1), no line or paragraph separators, no
// bidirectional embeddings, overrides or isolates (which can make text read
// differently from its bytes), and no U+FFFD, which encoding/json puts in
// place of invalid escapes and which therefore would not be what was
// signed.
func checkFreeText(s string) error {
	if len(s) > MaxRejectReason {
		return fmt.Errorf("reason is %d bytes; at most %d", len(s), MaxRejectReason)
	}
	if !utf8.ValidString(s) {
		return errors.New("reason is not UTF-8")
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r), r == '\u2028', r == '\u2029',
			'\u202a' <= r && r <= '\u202e', '\u2066' <= r && r <= '\u2069', r == utf8.RuneError:
			return fmt.Errorf("reason contains the character %U", r)
		}
	}
	return nil
}

func checkNonce(s string) error {
	if s == "" {
		return errors.New("nonce missing")
	}
	if len(s) < minNonceChars || len(s) > maxNonceChars {
		return fmt.Errorf("nonce must be %d to %d base64url characters", minNonceChars, maxNonceChars)
	}
	// Strict decoding refuses non-zero spare bits, but like all of
	// encoding/base64 it skips CR and LF, so the alphabet is checked first.
	if strings.ContainsFunc(s, func(r rune) bool { return !isBase64URL(r) }) {
		return errors.New("nonce is not base64url")
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return errors.New("nonce is not canonical unpadded base64url")
	}
	if len(b) < MinNonceBytes {
		return fmt.Errorf("nonce must hold at least %d bytes", MinNonceBytes)
	}
	return nil
}

// decodeAction reads the payload as exactly one JSON object with the
// members of Action and nothing else. encoding/json alone is too lenient
// for a signed request: it matches member names without regard to case,
// keeps the last of duplicate members, accepts null for a string, and
// replaces invalid UTF-8. Each of those would let the bytes that were
// signed say something other than what is acted on.
func decodeAction(b []byte) (Action, error) {
	var a Action
	str := map[string]*string{
		"action": &a.Action, "enrollment": &a.Enrollment, "serial": &a.Serial,
		"reason": &a.Reason, "csr": &a.CSR, "subject": &a.Subject, "nonce": &a.Nonce, "aud": &a.Audience,
	}
	err := decodeObject(b, func(name string, dec *json.Decoder) error {
		if p, ok := str[name]; ok {
			s, err := stringValue(dec, name)
			*p = s
			return err
		}
		if name != "iat" {
			return fmt.Errorf("unknown member %q", truncate(name, 32))
		}
		t, err := dec.Token()
		if err != nil {
			return err
		}
		n, ok := t.(json.Number)
		if !ok {
			return errors.New("iat is not a number")
		}
		// ParseInt refuses fractions and exponents: iat is whole seconds.
		a.IssuedAt, err = strconv.ParseInt(n.String(), 10, 64)
		if err != nil {
			return errors.New("iat is not an integer of Unix seconds")
		}
		return nil
	})
	return a, err
}

// decodeObject reads b as one JSON object: valid UTF-8, no duplicate
// member names, nothing but white space after it. It calls member for each
// member, which must consume the value from dec.
func decodeObject(b []byte, member func(name string, dec *json.Decoder) error) error {
	if !utf8.Valid(b) {
		return errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name, ok := t.(string)
		if !ok {
			return errors.New("not a JSON object")
		}
		if seen[name] {
			return fmt.Errorf("duplicate member %q", truncate(name, 32))
		}
		seen[name] = true
		if err := member(name, dec); err != nil {
			return err
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return errors.New("not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// stringValue reads the value of member name, which must be a JSON string
// (not null, nor any other type).
func stringValue(dec *json.Decoder, name string) (string, error) {
	t, err := dec.Token()
	if err != nil {
		return "", err
	}
	s, ok := t.(string)
	if !ok {
		return "", fmt.Errorf("%s is not a string", name)
	}
	return s, nil
}
