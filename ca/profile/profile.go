// Package profile reads certificate profiles — policies/profiles/*.yaml —
// into validated values. A profile decides what a certificate may contain;
// code never hard-codes one. Unknown fields, unknown key usages and
// impossible validities are errors naming the file and the field.
//
// This package only describes certificates; it never signs anything.
package profile

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sanadpki/sanad/hsm"
)

// Profile is one validated certificate profile.
type Profile struct {
	Name        string
	Description string
	CA          bool
	KeyUsage    x509.KeyUsage
	ExtKeyUsage []x509.ExtKeyUsage
	// OtherExtKeyUsage holds EKUs Go has no constant for, such as RFC 9336
	// id-kp-documentSigning.
	OtherExtKeyUsage []asn1.ObjectIdentifier
	// OCSPNoCheck adds id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1).
	OCSPNoCheck bool
	KeyTypes    []hsm.KeyType
	// MaxValidityDays bounds notAfter - notBefore.
	MaxValidityDays int
	// Require lists script fields this profile cannot do without
	// (crl_url, ocsp_url, ca_issuers_url, policy_oids).
	Require []string

	// End-entity profiles only.

	// SubjectKind is "person" (ETSI EN 319 412-2) or "business" (EN 319
	// 412-3); the subject is built from verified attributes by Subject.
	SubjectKind string
	// ValidityDays is the validity of a certificate issued on this profile.
	ValidityDays int
	// PolicyOIDs go into certificatePolicies.
	PolicyOIDs []x509.OID
	// RevocationReasons are the RFC 5280 §5.3.1 reason codes a revocation
	// on this profile may give.
	RevocationReasons []int
}

// file is the YAML form.
type file struct {
	Name            string   `yaml:"name"`
	Description     string   `yaml:"description"`
	CA              bool     `yaml:"ca"`
	KeyUsage        []string `yaml:"key_usage"`
	ExtKeyUsage     []string `yaml:"ext_key_usage"`
	OCSPNoCheck     bool     `yaml:"ocsp_no_check"`
	KeyTypes        []string `yaml:"key_types"`
	MaxValidityDays int      `yaml:"max_validity_days"`
	Require         []string `yaml:"require"`

	SubjectKind       string   `yaml:"subject_kind"`
	ValidityDays      int      `yaml:"validity_days"`
	PolicyOIDs        []string `yaml:"policy_oids"`
	RevocationReasons []string `yaml:"revocation_reasons"`
}

// ReasonCodes are the RFC 5280 §5.3.1 reasons the CA names.
// certificateHold (6) and removeFromCRL (8) are not offered: a national CA
// does not suspend certificates. cACompromise and aACompromise are named
// (ReasonName) but no profile may allow them: they are not reasons for a
// subscriber's certificate.
var ReasonCodes = map[string]int{
	"unspecified":          0,
	"keyCompromise":        1,
	"cACompromise":         2,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
	"privilegeWithdrawn":   9,
	"aACompromise":         10,
}

// AnyProfileReasons are the reasons a profile may allow (ReasonCodes but
// cACompromise and aACompromise), in code order: what a certificate whose
// profile is no longer loaded may be revoked for, since a revocation must
// always be possible (CA/Browser Forum BR 4.9.1).
func AnyProfileReasons() []int {
	var out []int
	for _, c := range ReasonCodes {
		if !caOnlyReason(c) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// caOnlyReason reports whether code is a reason for a CA's certificate
// alone (cACompromise, aACompromise), which no profile may allow: zlint's
// e_cab_crl_has_valid_reason_code refuses it on a CRL.
func caOnlyReason(code int) bool {
	return code == ReasonCodes["cACompromise"] || code == ReasonCodes["aACompromise"]
}

// ReasonName is the RFC 5280 name of a CRLReason code the CA may record,
// or "reason N" for a code ReasonCodes does not offer.
func ReasonName(code int) string {
	for name, c := range ReasonCodes {
		if c == code {
			return name
		}
	}
	return fmt.Sprintf("reason %d", code)
}

var keyUsages = map[string]x509.KeyUsage{
	"digitalSignature":  x509.KeyUsageDigitalSignature,
	"contentCommitment": x509.KeyUsageContentCommitment,
	"keyEncipherment":   x509.KeyUsageKeyEncipherment,
	"dataEncipherment":  x509.KeyUsageDataEncipherment,
	"keyAgreement":      x509.KeyUsageKeyAgreement,
	"keyCertSign":       x509.KeyUsageCertSign,
	"cRLSign":           x509.KeyUsageCRLSign,
}

var extKeyUsages = map[string]x509.ExtKeyUsage{
	"serverAuth":      x509.ExtKeyUsageServerAuth,
	"clientAuth":      x509.ExtKeyUsageClientAuth,
	"codeSigning":     x509.ExtKeyUsageCodeSigning,
	"emailProtection": x509.ExtKeyUsageEmailProtection,
	"timeStamping":    x509.ExtKeyUsageTimeStamping,
	"ocspSigning":     x509.ExtKeyUsageOCSPSigning,
}

// otherExtKeyUsages are EKUs without a crypto/x509 constant.
var otherExtKeyUsages = map[string]asn1.ObjectIdentifier{
	"documentSigning": {1, 3, 6, 1, 5, 5, 7, 3, 36}, // RFC 9336
}

var requirable = []string{"crl_url", "ocsp_url", "ca_issuers_url", "policy_oids"}

// Parse validates one profile file; name is used in errors.
func Parse(name string, raw []byte) (Profile, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return Profile{}, fmt.Errorf("profile %s: %w", name, err)
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("profile %s: %s: %s", name, field, fmt.Sprintf(format, args...)))
	}
	p := Profile{Name: f.Name, Description: f.Description, CA: f.CA, OCSPNoCheck: f.OCSPNoCheck, MaxValidityDays: f.MaxValidityDays}
	if f.Name == "" {
		bad("name", "required")
	}
	if len(f.KeyUsage) == 0 {
		bad("key_usage", "required")
	}
	for _, u := range f.KeyUsage {
		ku, ok := keyUsages[u]
		if !ok {
			bad("key_usage", "unknown usage %q (known: %s)", u, known(keyUsages))
		}
		p.KeyUsage |= ku
	}
	for _, u := range f.ExtKeyUsage {
		if eku, ok := extKeyUsages[u]; ok {
			p.ExtKeyUsage = append(p.ExtKeyUsage, eku)
		} else if oid, ok := otherExtKeyUsages[u]; ok {
			p.OtherExtKeyUsage = append(p.OtherExtKeyUsage, oid)
		} else {
			bad("ext_key_usage", "unknown usage %q (known: %s, %s)", u, known(extKeyUsages), known(otherExtKeyUsages))
		}
	}
	// RFC 5280 §4.2.1.3: keyCertSign only in CA certificates, and a CA
	// certificate must be able to sign certificates.
	if certSign := p.KeyUsage&x509.KeyUsageCertSign != 0; certSign != f.CA {
		bad("key_usage", "keyCertSign must be present exactly when ca is true")
	}
	// A subscriber's certificate with ocspSigning would be a delegated
	// responder for the whole issuing CA (RFC 6960 §4.2.2.2), one with
	// cRLSign an issuer of its CRLs.
	if f.SubjectKind != "" && slices.Contains(p.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		bad("ext_key_usage", "ocspSigning is for the CA's OCSP signer, not an end-entity profile: its holder would answer for the whole issuing CA")
	}
	if f.SubjectKind != "" && p.KeyUsage&x509.KeyUsageCRLSign != 0 {
		bad("key_usage", "cRLSign is for the CA, not an end-entity profile")
	}
	if f.OCSPNoCheck && !slices.Contains(p.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		bad("ocsp_no_check", "only for an ocspSigning profile (RFC 6960 §4.2.2.2.1)")
	}
	if len(f.KeyTypes) == 0 {
		bad("key_types", "required")
	}
	for _, kt := range f.KeyTypes {
		t, err := hsm.ParseKeyType(kt)
		if err != nil {
			bad("key_types", "%v", err)
		}
		p.KeyTypes = append(p.KeyTypes, t)
	}
	if f.MaxValidityDays < 1 || f.MaxValidityDays > 365*30 {
		bad("max_validity_days", "%d is outside 1..%d", f.MaxValidityDays, 365*30)
	}
	for _, r := range f.Require {
		if !slices.Contains(requirable, r) {
			bad("require", "unknown field %q (known: %s)", r, strings.Join(requirable, ", "))
		}
	}
	p.Require = f.Require
	p.SubjectKind, p.ValidityDays = f.SubjectKind, f.ValidityDays
	switch {
	case f.SubjectKind == "" && f.ValidityDays != 0:
		bad("validity_days", "only for an end-entity profile (set subject_kind)")
	case f.SubjectKind == "":
	case f.SubjectKind != "person" && f.SubjectKind != "business":
		bad("subject_kind", "%q is neither person nor business", f.SubjectKind)
	case f.CA:
		bad("subject_kind", "a CA profile has no end-entity subject")
	case f.ValidityDays < 1 || f.ValidityDays > f.MaxValidityDays:
		bad("validity_days", "%d is outside 1..max_validity_days (%d)", f.ValidityDays, f.MaxValidityDays)
	}
	if f.SubjectKind != "" && len(f.RevocationReasons) == 0 {
		bad("revocation_reasons", "required for an end-entity profile")
	}
	if len(f.RevocationReasons) > 0 && !slices.Contains(f.RevocationReasons, "keyCompromise") {
		// A compromised key is always revocable (BR 4.9.1): an edit that
		// drops it would leave such certificates good.
		bad("revocation_reasons", "must include keyCompromise")
	}
	for _, o := range f.PolicyOIDs {
		oid, err := x509.ParseOID(o)
		if err != nil {
			bad("policy_oids", "%q is not a dotted OID", o)
			continue
		}
		p.PolicyOIDs = append(p.PolicyOIDs, oid)
	}
	for _, r := range f.RevocationReasons {
		code, ok := ReasonCodes[r]
		if !ok {
			bad("revocation_reasons", "%q is not a reason offered here (known: %s)", r, known(ReasonCodes))
			continue
		}
		if caOnlyReason(code) {
			// zlint's e_cab_crl_has_valid_reason_code refuses them on a
			// CRL: one such revocation would stop every CRL of the issuer.
			bad("revocation_reasons", "%q is not a reason for a subscriber's certificate (CA/Browser Forum BR 7.2.2; the CRL lints refuse it)", r)
			continue
		}
		p.RevocationReasons = append(p.RevocationReasons, code)
	}
	if err := errors.Join(errs...); err != nil {
		return Profile{}, err
	}
	return p, nil
}

// LoadAll reads every profiles/*.yaml of fsys (policies.FS in production)
// and checks each file's name matches its profile name.
func LoadAll(fsys fs.FS) (map[string]Profile, error) {
	names, err := fs.Glob(fsys, "profiles/*.yaml")
	if err != nil {
		return nil, err
	}
	out := make(map[string]Profile, len(names))
	var errs []error
	for _, n := range names {
		raw, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		p, err := Parse(n, raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if want := strings.TrimSuffix(path.Base(n), ".yaml"); p.Name != want {
			errs = append(errs, fmt.Errorf("profile %s: name %q does not match the file name", n, p.Name))
			continue
		}
		out[p.Name] = p
	}
	return out, errors.Join(errs...)
}

// AllowsKeyType reports whether the profile accepts keys of type t.
func (p Profile) AllowsKeyType(t hsm.KeyType) bool { return slices.Contains(p.KeyTypes, t) }

// Requires reports whether the profile needs the script field.
func (p Profile) Requires(field string) bool { return slices.Contains(p.Require, field) }

func known[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}
