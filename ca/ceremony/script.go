package ceremony

import (
	"bytes"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/hsm"
)

// Kinds of ceremony.
const (
	KindRoot         = "root"
	KindIntermediate = "intermediate"
	KindOCSPSigner   = "ocsp-signer"
	KindCRL          = "crl"
	KindAuditKey     = "audit-key"
	// KindKey makes a key and a certificate request signed by it, and no
	// certificate: for a key whose certifying CA is on another token (an
	// issuing CA's key on the online HSM, certified at the offline root's
	// ceremony from this request and this ceremony's transcript).
	KindKey = "key"
)

// profileOf is the certificate profile each kind must use.
var profileOf = map[string]string{
	KindRoot:         "root",
	KindIntermediate: "intermediate",
	KindOCSPSigner:   "ocsp-signer",
	KindAuditKey:     "audit",
}

// Script is one ceremony, as written by the CA officers.
type Script struct {
	Ceremony    string       `yaml:"ceremony"`
	Description string       `yaml:"description"`
	Witnesses   []string     `yaml:"witnesses"`
	HSM         HSM          `yaml:"hsm"`
	Issuer      *Issuer      `yaml:"issuer"`
	Key         *Key         `yaml:"key"`
	Certificate *Certificate `yaml:"certificate"`
	CRL         *CRL         `yaml:"crl"`
	Request     *Request     `yaml:"request"`
	Transcript  string       `yaml:"transcript"`

	// Path is the script file; relative paths in it are resolved against
	// its directory. Raw is its exact bytes (hashed into the transcript).
	Path string `yaml:"-"`
	Raw  []byte `yaml:"-"`
	// lines maps a field path ("certificate.subject.common_name") to its
	// line in the file, for problems.
	lines map[string]int
}

// HSM names the token and where its PIN comes from.
type HSM struct {
	Module     string    `yaml:"module"`
	TokenLabel string    `yaml:"token_label"`
	PIN        PINSource `yaml:"pin"`
}

// PINSource is exactly one of a 0600 file, an environment variable, or M
// custodian shares (given as files on the command line or typed at no-echo
// prompts).
type PINSource struct {
	File   string `yaml:"file"`
	Env    string `yaml:"env"`
	Shares int    `yaml:"shares"`
}

// Issuer is the CA key that signs, and its certificate.
type Issuer struct {
	Certificate string `yaml:"certificate"`
	KeyLabel    string `yaml:"key_label"`
}

// Key is the key the ceremony creates, or an existing one it certifies, or
// a key on another token that a key ceremony made: the certificate request
// it wrote (Request), whose SHA-256 the key ceremony printed and its
// witnesses recorded (RequestSHA256), and its signed transcript
// (Transcript). Such a key's label and type come from that transcript;
// given here, they must agree.
type Key struct {
	Label         string `yaml:"label"`
	Type          string `yaml:"type"`
	Existing      bool   `yaml:"existing"`
	Request       string `yaml:"request"`
	RequestSHA256 string `yaml:"request_sha256"`
	Transcript    string `yaml:"transcript"`
}

// Certificate describes the certificate to make; what it may contain comes
// from its profile.
type Certificate struct {
	Profile         string           `yaml:"profile"`
	Subject         Subject          `yaml:"subject"`
	NotBefore       string           `yaml:"not_before"`
	ValidityDays    int              `yaml:"validity_days"`
	PathLen         *int             `yaml:"path_len"`
	PolicyOIDs      []string         `yaml:"policy_oids"`
	NameConstraints *NameConstraints `yaml:"name_constraints"`
	CRLURL          string           `yaml:"crl_url"`
	OCSPURL         string           `yaml:"ocsp_url"`
	CAIssuersURL    string           `yaml:"ca_issuers_url"`
	Output          string           `yaml:"output"`
}

// Subject is the distinguished name of a CA or service certificate.
type Subject struct {
	CommonName         string `yaml:"common_name"`
	Organization       string `yaml:"organization"`
	OrganizationalUnit string `yaml:"organizational_unit"`
	Country            string `yaml:"country"`
	// OrganizationIdentifier names the operator as ETSI EN 319 412-1
	// §5.1.4 does a legal person (NTRKZ-<BIN>, VATxx-…, LEIXG-…), as EN
	// 319 412-2 asks of a certificate issuer's name. Optional.
	OrganizationIdentifier string `yaml:"organization_identifier"`
}

// NameConstraints limit what an issuing CA may certify (RFC 5280 §4.2.1.10).
type NameConstraints struct {
	PermittedDNS   []string `yaml:"permitted_dns"`
	ExcludedDNS    []string `yaml:"excluded_dns"`
	PermittedEmail []string `yaml:"permitted_email"`
	ExcludedEmail  []string `yaml:"excluded_email"`
}

// CRL describes an offline CRL signed by the issuer. After the first, it
// carries every entry of the issuer's previous CRL (Previous), but those of
// expired certificates it drops (Drop: their files), and adds Revoked.
type CRL struct {
	Number         int64     `yaml:"number"`
	Previous       string    `yaml:"previous"`
	ThisUpdate     string    `yaml:"this_update"`
	NextUpdateDays int       `yaml:"next_update_days"`
	Revoked        []Revoked `yaml:"revoked"`
	Drop           []string  `yaml:"drop"`
	Output         string    `yaml:"output"`
}

// Revoked is one CRL entry: a certificate file or a hex serial.
type Revoked struct {
	Certificate string `yaml:"certificate"`
	Serial      string `yaml:"serial"`
	RevokedAt   string `yaml:"revoked_at"`
	Reason      string `yaml:"reason"`
}

// RFC 5280 §5.3.1 reason codes a CA officer may choose: those the CRL
// lints accept (CA/B Forum BR 7.2.2, e_cab_crl_has_valid_reason_code), and
// unspecified, which the CRL says by leaving the reason out.
// certificateHold (6) is not offered: a national CA does not suspend. Nor
// is cACompromise (2): a CA whose own key is compromised is revoked for
// keyCompromise, as any other holder of a compromised key.
var reasonCodes = map[string]int{
	"unspecified":          0,
	"keyCompromise":        1,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
	"privilegeWithdrawn":   9,
}

// Load reads and parses a script file; it does not check it.
func Load(path string) (*Script, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ceremony script: %w", err)
	}
	return Parse(path, raw)
}

// Parse decodes a script strictly (unknown fields are errors with their
// line) and remembers where each field is.
func Parse(path string, raw []byte) (*Script, error) {
	s := &Script{Path: path, Raw: raw}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.lines = map[string]int{}
	collectLines(&root, "", s.lines)
	return s, nil
}

func collectLines(n *yaml.Node, prefix string, out map[string]int) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			collectLines(c, prefix, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			out[p] = k.Line
			collectLines(v, p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			out[p] = c.Line
			collectLines(c, p, out)
		}
	}
}

// Hash is the SHA-256 of the script's exact bytes.
func (s *Script) Hash() [32]byte { return sha256.Sum256(s.Raw) }

// Resolve makes a script path absolute against the script's directory.
func (s *Script) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(s.Path), p)
}

// Problem is one thing wrong with a script.
type Problem struct {
	Line  int
	Field string
	Msg   string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", p.Line, p.Field, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.Field, p.Msg)
}

// Problems is every problem of a script, in line order; as an error it lists
// them all.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return fmt.Sprintf("%d problem(s):\n  %s", len(ps), strings.Join(lines, "\n  "))
}

var (
	labelRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
	// organizationIdentifierRE is ETSI EN 319 412-1 §5.1.4's syntax: three
	// letters of type, two of country, a hyphen, then the identifier (in
	// PrintableString's characters, at most 64 in all: ub-name).
	organizationIdentifierRE = regexp.MustCompile(`^[A-Z]{3}[A-Z]{2}-[A-Za-z0-9.:/-]{1,58}$`)
)

// Check validates the script without touching the HSM: every problem at
// once, with its line. profiles are the loaded certificate profiles; now
// is the ceremony's clock.
func (s *Script) Check(profiles map[string]profile.Profile, now time.Time) error {
	var ps Problems
	bad := func(field, format string, args ...any) {
		line := s.lines[field]
		for f := field; line == 0 && f != ""; {
			i := strings.LastIndexAny(f, ".[")
			if i < 0 {
				break
			}
			f = f[:i]
			line = s.lines[f]
		}
		ps = append(ps, Problem{Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	// outputs must not exist: a ceremony never overwrites anything. Nor
	// may two be one file: the second would find it taken after the HSM
	// signed, and what it signed would be lost.
	outputs := map[string]string{}
	output := func(field, p string) {
		if p == "" {
			bad(field, "required")
			return
		}
		resolved := filepath.Clean(s.Resolve(p))
		if other, ok := outputs[resolved]; ok {
			bad(field, "%s is also %s: each output is a file of its own", p, other)
		}
		outputs[resolved] = field
		if _, err := os.Stat(resolved); err == nil {
			bad(field, "%s exists: a ceremony never overwrites an output", p)
		}
	}

	kind := s.Ceremony
	wantProfile, makesCert := profileOf[kind]
	switch kind {
	case KindRoot, KindIntermediate, KindOCSPSigner, KindCRL, KindAuditKey, KindKey:
	default:
		bad("ceremony", "%q is not one of root, intermediate, ocsp-signer, crl, audit-key, key", kind)
	}
	if len(s.Witnesses) == 0 {
		bad("witnesses", "name at least one person present")
	}
	for i, w := range s.Witnesses {
		if strings.TrimSpace(w) == "" {
			bad(fmt.Sprintf("witnesses[%d]", i), "empty name")
		}
	}
	if s.HSM.TokenLabel == "" {
		bad("hsm.token_label", "required")
	}
	sources := 0
	for _, set := range []bool{s.HSM.PIN.File != "", s.HSM.PIN.Env != "", s.HSM.PIN.Shares != 0} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		bad("hsm.pin", "set exactly one of file, env, shares")
	}
	if s.HSM.PIN.Shares < 0 || s.HSM.PIN.Shares > 255 {
		bad("hsm.pin.shares", "%d is outside 1..255", s.HSM.PIN.Shares)
	}
	output("transcript", s.Transcript)

	needsIssuer := kind != KindRoot && kind != KindKey
	switch {
	case needsIssuer && s.Issuer == nil:
		bad("issuer", "required for a %s ceremony", kind)
	case !needsIssuer && s.Issuer != nil && kind == KindKey:
		bad("issuer", "a key ceremony certifies nothing: remove issuer (the certifying ceremony names this one's request)")
	case !needsIssuer && s.Issuer != nil:
		bad("issuer", "a root is self-signed: remove issuer")
	case s.Issuer != nil:
		if !labelRE.MatchString(s.Issuer.KeyLabel) {
			bad("issuer.key_label", "%q is not a valid key label", s.Issuer.KeyLabel)
		}
		if s.Issuer.Certificate == "" {
			bad("issuer.certificate", "required")
		} else if _, err := readCertificate(s.Resolve(s.Issuer.Certificate)); err != nil {
			bad("issuer.certificate", "%v", err)
		}
	}

	needsKey := kind != KindCRL
	var requested *requestedKey
	switch {
	case needsKey && s.Key == nil:
		bad("key", "required for a %s ceremony", kind)
	case !needsKey && s.Key != nil:
		bad("key", "a crl ceremony creates no key: remove key")
	case s.Key != nil && (s.Key.Request != "" || s.Key.Transcript != "" || s.Key.RequestSHA256 != ""):
		requested = s.checkRequestedKey(bad)
	case s.Key != nil:
		if kind == KindKey && s.Key.Existing {
			// A key made before may already serve another purpose (an
			// OCSP signer's key would become a CA's).
			bad("key.existing", "a key ceremony generates its key: remove existing")
		}
		if !labelRE.MatchString(s.Key.Label) {
			bad("key.label", "%q is not a valid key label (letters, digits, . _ -, at most 64)", s.Key.Label)
		}
		if s.Issuer != nil && s.Key.Label == s.Issuer.KeyLabel {
			bad("key.label", "same as issuer.key_label")
		}
		if _, err := hsm.ParseKeyType(s.Key.Type); err != nil {
			bad("key.type", "%v", err)
		}
	}

	switch {
	case makesCert && s.Certificate == nil:
		bad("certificate", "required for a %s ceremony", kind)
	case !makesCert && s.Certificate != nil:
		bad("certificate", "a %s ceremony makes no certificate", kind)
	case s.Certificate != nil:
		s.checkCertificate(bad, output, profiles, wantProfile, requested, now)
	}

	switch {
	case kind == KindKey && s.Request == nil:
		bad("request", "required for a key ceremony: the certificate request its certifying ceremony reads")
	case kind != KindKey && s.Request != nil:
		bad("request", "only for a key ceremony")
	case s.Request != nil:
		checkSubject(bad, "request.subject", s.Request.Subject)
		output("request.output", s.Request.Output)
	}

	switch {
	case kind == KindCRL && s.CRL == nil:
		bad("crl", "required for a crl ceremony")
	case kind != KindCRL && s.CRL != nil:
		bad("crl", "only for a crl ceremony")
	case s.CRL != nil:
		s.checkCRL(bad, output, now)
		if s.Issuer != nil {
			if issuer, err := readCertificate(s.Resolve(s.Issuer.Certificate)); err == nil {
				_, carriedProblems := s.carried(issuer, s.crlThisUpdate(now))
				for _, p := range carriedProblems {
					bad(p.Field, "%s", p.Msg)
				}
			}
		}
	}

	if len(ps) == 0 {
		return nil
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return ps
}

// maxBackdate is how far before the ceremony a certificate's notBefore may
// be set.
const maxBackdate = 48 * time.Hour

// checkRequestedKey checks a key the script certifies from a key
// ceremony's request and transcript (readRequest), and returns it, or nil
// with the problems reported.
func (s *Script) checkRequestedKey(bad func(string, string, ...any)) *requestedKey {
	k := s.Key
	missing := false
	for _, f := range []struct{ field, value, what string }{
		{"key.request", k.Request, "the key ceremony's certificate request"},
		{"key.request_sha256", k.RequestSHA256, "the request's SHA-256, as the key ceremony printed it and its witnesses recorded it"},
		{"key.transcript", k.Transcript, "the key ceremony's signed transcript"},
	} {
		switch {
		case s.Ceremony == KindRoot || s.Ceremony == KindKey:
			if f.value != "" {
				bad(f.field, "a %s ceremony makes its key on its own token: remove %s", s.Ceremony, f.field)
			}
			missing = true
		case f.value == "":
			bad(f.field, "required to certify a key ceremony's key: %s", f.what)
			missing = true
		}
	}
	switch {
	case missing:
		return nil
	case k.Existing:
		bad("key.existing", "a requested key is on another token: remove existing")
		return nil
	case !validHex256(k.RequestSHA256):
		bad("key.request_sha256", "%q is not a SHA-256 in hex: copy the one the key ceremony printed for its request", k.RequestSHA256)
		return nil
	}
	r, err := s.readRequest()
	if err != nil {
		field := "key.request"
		if fp := (fileProblem{}); errors.As(err, &fp) {
			field = fp.field
		}
		bad(field, "%v", err)
		return nil
	}
	// Nor the issuer's own key (a key ceremony may run on the root's token).
	if s.Issuer != nil {
		if issuer, err := readCertificate(s.Resolve(s.Issuer.Certificate)); err == nil && spkiSHA256(issuer.PublicKey) == spkiSHA256(r.public()) {
			bad("key.request", "the request's key is the issuer's own (%s)", s.Issuer.Certificate)
		}
	}
	if k.Label != "" && k.Label != r.label {
		bad("key.label", "%q, but the key ceremony labelled the key %q", k.Label, r.label)
	}
	if k.Type != "" && k.Type != string(r.typ) {
		bad("key.type", "%q, but the request's key is %s", k.Type, r.typ)
	}
	return &r
}

// checkSubject checks a CA or service certificate's subject.
func checkSubject(bad func(string, string, ...any), field string, sub Subject) {
	if sub.CommonName == "" {
		bad(field+".common_name", "required")
	}
	if sub.Organization == "" {
		bad(field+".organization", "required")
	}
	if !countryRE.MatchString(sub.Country) {
		bad(field+".country", "%q is not an ISO 3166 two-letter code", sub.Country)
	}
	if id := sub.OrganizationIdentifier; id != "" && !organizationIdentifierRE.MatchString(id) {
		bad(field+".organization_identifier", "%q is not an ETSI EN 319 412-1 identifier: a type (NTR, VAT, PSD, LEI), a country code, a hyphen, then the identifier, as in NTRKZ-240140010009", id)
	}
}

func (s *Script) checkCertificate(bad func(string, string, ...any), output func(string, string), profiles map[string]profile.Profile, wantProfile string, requested *requestedKey, now time.Time) {
	c := s.Certificate
	p, ok := profiles[c.Profile]
	switch {
	case !ok:
		bad("certificate.profile", "no profile %q in policies/profiles", c.Profile)
	case c.Profile != wantProfile:
		bad("certificate.profile", "a %s ceremony uses profile %q, not %q", s.Ceremony, wantProfile, c.Profile)
	}
	checkSubject(bad, "certificate.subject", c.Subject)
	// The key ceremony asked for a name: a certificate under another is
	// the wrong request brought to this one, or the wrong script.
	if requested != nil && !requested.asksFor(c.Subject) {
		bad("certificate.subject", "the request %s asks for %q, not this subject", s.Key.Request, requested.csr.Subject.String())
	}
	if c.NotBefore != "" {
		switch nb, err := time.Parse(time.RFC3339, c.NotBefore); {
		case err != nil:
			bad("certificate.not_before", "not RFC 3339: %v", err)
		case nb.Before(now.Add(-maxBackdate)):
			// A certificate that claims to have existed before it was made
			// misleads whoever relies on its dates; 48 hours is the skew
			// the CA/Browser Forum's requirements tolerate.
			bad("certificate.not_before", "%s is more than 48 hours before the ceremony: certificates are not backdated", c.NotBefore)
		}
	}
	if ok {
		if c.ValidityDays < 1 || c.ValidityDays > p.MaxValidityDays {
			bad("certificate.validity_days", "%d is outside 1..%d (profile %s)", c.ValidityDays, p.MaxValidityDays, p.Name)
		}
		switch {
		case requested != nil && !p.AllowsKeyType(requested.typ):
			bad("key.request", "profile %s does not allow the request's key, %s", p.Name, requested.typ)
		case requested == nil && s.Key != nil:
			if kt, err := hsm.ParseKeyType(s.Key.Type); err == nil && !p.AllowsKeyType(kt) {
				bad("key.type", "profile %s does not allow %s", p.Name, kt)
			}
		}
		if c.PathLen != nil && !p.CA {
			bad("certificate.path_len", "only for a CA certificate")
		}
		if c.NameConstraints != nil && !p.CA {
			bad("certificate.name_constraints", "only for a CA certificate")
		}
		for field, v := range map[string]string{"crl_url": c.CRLURL, "ocsp_url": c.OCSPURL, "ca_issuers_url": c.CAIssuersURL} {
			if v == "" && p.Requires(field) {
				bad("certificate."+field, "required by profile %s", p.Name)
			}
		}
		if len(c.PolicyOIDs) == 0 && p.Requires("policy_oids") {
			bad("certificate.policy_oids", "required by profile %s", p.Name)
		}
	}
	if c.PathLen != nil && *c.PathLen < 0 {
		bad("certificate.path_len", "must not be negative")
	}
	for i, o := range c.PolicyOIDs {
		if _, err := parseOID(o); err != nil {
			bad(fmt.Sprintf("certificate.policy_oids[%d]", i), "%v", err)
		}
	}
	for field, v := range map[string]string{"crl_url": c.CRLURL, "ocsp_url": c.OCSPURL, "ca_issuers_url": c.CAIssuersURL} {
		if v == "" {
			continue
		}
		// RFC 5280 §4.2.1.13 / §4.2.2.1: relying parties fetch these over
		// HTTP (not HTTPS, which would need status checking itself).
		if u, err := url.Parse(v); err != nil || u.Scheme != "http" || u.Host == "" {
			bad("certificate."+field, "%q is not an absolute http:// URL", v)
		}
	}
	output("certificate.output", c.Output)
}

func (s *Script) checkCRL(bad func(string, string, ...any), output func(string, string), now time.Time) {
	c := s.CRL
	if c.Number < 1 {
		bad("crl.number", "must be at least 1")
	}
	switch {
	case c.Number > 1 && c.Previous == "":
		// Without it the ceremony cannot know what it would leave out: a
		// revoked CA left off a CRL the root signed is good again to
		// whoever reads that CRL.
		bad("crl.previous", "required after CRL number 1: the issuer's latest CRL, whose entries this one carries")
	case c.Previous == "" && len(c.Drop) > 0:
		bad("crl.drop", "only with crl.previous, the CRL whose entries it drops")
	}
	thisUpdate := now
	if c.ThisUpdate != "" {
		switch t, err := time.Parse(time.RFC3339, c.ThisUpdate); {
		case err != nil:
			bad("crl.this_update", "not RFC 3339: %v", err)
		case t.After(now):
			// A CRL dated ahead, signed today, could be published later in
			// place of the CRLs made meanwhile, hiding their revocations.
			bad("crl.this_update", "%s is after the ceremony: a CRL is dated when it is signed", c.ThisUpdate)
		case t.Before(now.Add(-maxBackdate)):
			bad("crl.this_update", "%s is more than 48 hours before the ceremony: CRLs are not backdated", c.ThisUpdate)
		default:
			thisUpdate = t
		}
	}
	// An offline root CRL is re-signed within 12 months (RFC 5280 leaves
	// it to policy; the CA/B Forum's, which zlint checks, says 12 months):
	// 365 days, or 366 over a 29 February.
	if most := int(thisUpdate.AddDate(1, 0, 0).Sub(thisUpdate).Hours() / 24); c.NextUpdateDays < 1 || c.NextUpdateDays > most {
		bad("crl.next_update_days", "%d is outside 1..%d: next_update is at most 12 months after this_update (%s)", c.NextUpdateDays, most, thisUpdate.UTC().Format(time.RFC3339))
	}
	for i, r := range c.Revoked {
		f := fmt.Sprintf("crl.revoked[%d]", i)
		switch {
		case (r.Certificate == "") == (r.Serial == ""):
			bad(f, "set exactly one of certificate and serial")
		case r.Certificate != "":
			if _, err := readCertificate(s.Resolve(r.Certificate)); err != nil {
				bad(f+".certificate", "%v", err)
			}
		default:
			if _, err := parseSerial(r.Serial); err != nil {
				bad(f+".serial", "%v", err)
			}
		}
		if _, ok := reasonCodes[r.Reason]; !ok {
			hint := ""
			if r.Reason == "cACompromise" {
				hint = "; a CA whose key is compromised is revoked for keyCompromise (BR 7.2.2)"
			}
			bad(f+".reason", "%q is not an RFC 5280 reason offered here (%s)%s", r.Reason, knownReasons(), hint)
		}
		if r.RevokedAt != "" {
			if t, err := time.Parse(time.RFC3339, r.RevokedAt); err != nil {
				bad(f+".revoked_at", "not RFC 3339: %v", err)
			} else if t.After(thisUpdate) {
				bad(f+".revoked_at", "after the CRL's this_update")
			}
		}
	}
	output("crl.output", c.Output)
}

// crlThisUpdate is the CRL's thisUpdate: the script's, or the ceremony's
// time (now).
func (s *Script) crlThisUpdate(now time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339, s.CRL.ThisUpdate); err == nil {
		return t
	}
	return now
}

func knownReasons() string {
	names := make([]string, 0, len(reasonCodes))
	for n := range reasonCodes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%q is not a dotted OID", s)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || (i == 0 && n > 2) {
			return nil, fmt.Errorf("%q is not a dotted OID", s)
		}
		oid[i] = n
	}
	return oid, nil
}

// validHex256 reports whether s is a SHA-256 in hex.
func validHex256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

var errSerial = errors.New("serial must be 1 to 20 octets of hex, not starting with 00")
