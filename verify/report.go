package verify

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"
)

// Indication is the overall answer of a validation (ETSI EN 319 102-1 §5.1.3).
type Indication string

const (
	TotalPassed   Indication = "TOTAL_PASSED"
	TotalFailed   Indication = "TOTAL_FAILED"
	Indeterminate Indication = "INDETERMINATE"
)

// SubIndication says why a validation did not pass, with the names of
// ETSI EN 319 102-1 Table 5.
type SubIndication string

// Sub-indications this package gives. FORMAT_FAILURE is a TOTAL_FAILED
// answer here: a signature that cannot be parsed is not a signature a
// government application may act on. CERTIFICATE_CHAIN_GENERAL_FAILURE is
// a certificate of the path that its CA's OCSP responder does not know, or
// a path not searched as the verification searched as many as it may
// (maxChainBuilds): unlike TRY_LATER, not an outage that passes (though a
// responder may not know yet a certificate issued a moment ago).
const (
	FormatFailure               SubIndication = "FORMAT_FAILURE"
	HashFailure                 SubIndication = "HASH_FAILURE"
	SigCryptoFailure            SubIndication = "SIG_CRYPTO_FAILURE"
	Revoked                     SubIndication = "REVOKED"
	Expired                     SubIndication = "EXPIRED"
	NotYetValid                 SubIndication = "NOT_YET_VALID"
	SigConstraintsFailure       SubIndication = "SIG_CONSTRAINTS_FAILURE"
	ChainConstraintsFailure     SubIndication = "CHAIN_CONSTRAINTS_FAILURE"
	CryptoConstraintsFailure    SubIndication = "CRYPTO_CONSTRAINTS_FAILURE"
	NoSigningCertificateFound   SubIndication = "NO_SIGNING_CERTIFICATE_FOUND"
	NoCertificateChainFound     SubIndication = "NO_CERTIFICATE_CHAIN_FOUND"
	RevokedNoPOE                SubIndication = "REVOKED_NO_POE"
	RevokedCANoPOE              SubIndication = "REVOKED_CA_NO_POE"
	OutOfBoundsNoPOE            SubIndication = "OUT_OF_BOUNDS_NO_POE"
	TryLater                    SubIndication = "TRY_LATER"
	SignedDataNotFound          SubIndication = "SIGNED_DATA_NOT_FOUND"
	CertificateChainGeneralFail SubIndication = "CERTIFICATE_CHAIN_GENERAL_FAILURE"
)

// Check results.
const (
	Passed        = "PASSED"
	Failed        = "FAILED"
	Inconclusive  = "INDETERMINATE"
	NotApplicable = "NOT_APPLICABLE"
)

// Check is one step of the validation and what it found.
type Check struct {
	// Name is the building block of ETSI EN 319 102-1 §5.2 it belongs to:
	// format, identification, crypto, chain, constraints, revocation, time.
	Name   string `json:"name"`
	Result string `json:"result"`
	Detail string `json:"detail,omitempty"`
}

// Signer says who signed, as the signing certificate states it.
type Signer struct {
	Name                   string `json:"name,omitempty"`
	Subject                string `json:"subject"`
	NationalID             string `json:"national_id,omitempty"`
	Organization           string `json:"organization,omitempty"`
	OrganizationIdentifier string `json:"organization_identifier,omitempty"`
	Country                string `json:"country,omitempty"`
	// Profile is the Sanad certificate profile the certificate matches
	// (citizen-sign, business-seal, …), empty when it matches none.
	Profile string `json:"profile,omitempty"`
	Serial  string `json:"serial"`
	Issuer  string `json:"issuer"`
}

// ChainCert is one certificate of the chain, signer first.
type ChainCert struct {
	Subject   string    `json:"subject"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// Source is where the certificate came from: signature, configured,
	// aia (fetched from the caIssuers URL of the certificate below it) or
	// trust-anchor.
	Source string `json:"source"`
	URL    string `json:"url,omitempty"`
	// Status is good, revoked, unknown or trust-anchor.
	Status string `json:"status"`
	// StatusSource is ocsp, crl or trust-anchor; StatusURL where it was
	// read, when the certificate named it: none for the configured OCSP
	// responder (Config.OCSPResponder), which may be an internal host.
	StatusSource string    `json:"status_source,omitempty"`
	StatusURL    string    `json:"status_url,omitempty"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
	Reason       string    `json:"revocation_reason,omitempty"`
	// OCSPResponse is the DER OCSP response the status was read from
	// (base64 in JSON), kept as the proof of the answer.
	OCSPResponse []byte `json:"ocsp_response,omitempty"`
	// CRLNumber is the number of the CRL the status was read from.
	CRLNumber string `json:"crl_number,omitempty"`
	// ThisUpdate and NextUpdate bound the status answer.
	ThisUpdate time.Time `json:"this_update,omitzero"`
	NextUpdate time.Time `json:"next_update,omitzero"`
}

// Report is the validation report of one signature.
type Report struct {
	Format        string        `json:"format"`
	Index         int           `json:"index"`
	Indication    Indication    `json:"indication"`
	SubIndication SubIndication `json:"sub_indication,omitempty"`
	// Reason says in one sentence why the indication is what it is.
	Reason string  `json:"reason,omitempty"`
	Signer *Signer `json:"signer,omitempty"`
	// SigningTime is the time the signer claims (a signed attribute or
	// protected header); it is not a proof of existence.
	SigningTime       time.Time `json:"signing_time,omitzero"`
	SigningTimeSource string    `json:"signing_time_source"`
	ValidationTime    time.Time `json:"validation_time"`
	// ContentSHA256 is the SHA-256 (hex) of the content the signature was
	// checked over, so that a caller can tell which document was signed.
	ContentSHA256   string      `json:"content_sha256,omitempty"`
	DigestAlgorithm string      `json:"digest_algorithm,omitempty"`
	SignatureAlg    string      `json:"signature_algorithm,omitempty"`
	Chain           []ChainCert `json:"chain,omitempty"`
	Checks          []Check     `json:"checks"`

	subjects map[*x509.Certificate]string
	names    *ttlCache[string] // the Verifier's, when set
}

// Result is the validation of everything one input held: one report per
// signer of a CMS SignedData or per signature of a JWS.
type Result struct {
	Format string `json:"format"`
	// Indication is TOTAL_PASSED only when every report passed; otherwise
	// the worst report's (TOTAL_FAILED before INDETERMINATE), the first of
	// the equally bad.
	Indication    Indication    `json:"indication"`
	SubIndication SubIndication `json:"sub_indication,omitempty"`
	Reports       []*Report     `json:"reports"`
}

func (r *Result) summarize() {
	r.Indication, r.SubIndication = TotalPassed, ""
	for _, rep := range r.Reports {
		if rep.Indication.worse(r.Indication) {
			r.Indication, r.SubIndication = rep.Indication, rep.SubIndication
		}
	}
}

// worse says whether i is a worse answer than j: TOTAL_FAILED, then
// INDETERMINATE, then TOTAL_PASSED (or none yet). What could not be
// determined never hides what failed: a signature whose signing time is
// before its certificate's notBefore has failed whether or not the
// status of that certificate can be read, and one signer revoked fails
// a document that another signer's unreachable CA leaves undetermined.
func (i Indication) worse(j Indication) bool {
	rank := func(i Indication) int {
		switch i {
		case TotalFailed:
			return 2
		case Indeterminate:
			return 1
		}
		return 0
	}
	return rank(i) > rank(j)
}

func (r *Report) check(name, result, format string, args ...any) {
	r.Checks = append(r.Checks, Check{Name: name, Result: result, Detail: fmt.Sprintf(format, args...)})
}

func (r *Report) pass(name, format string, args ...any) { r.check(name, Passed, format, args...) }

// fail records a failed check and sets the indication: the worst failure
// decides the report, the first of the equally bad.
func (r *Report) fail(name string, ind Indication, sub SubIndication, format string, args ...any) {
	result := Failed
	if ind == Indeterminate {
		result = Inconclusive
	}
	r.check(name, result, format, args...)
	if ind.worse(r.Indication) {
		r.Indication, r.SubIndication, r.Reason = ind, sub, fmt.Sprintf(format, args...)
	}
}

func (r *Report) setContent(content []byte) {
	sum := sha256.Sum256(content)
	r.ContentSHA256 = hex.EncodeToString(sum[:])
}

// WriteText writes the result in the readable form sanad verify prints.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", r.Format, r.Indication)
	if r.SubIndication != "" {
		fmt.Fprintf(&b, " / %s", r.SubIndication)
	}
	fmt.Fprintf(&b, " (%d signature(s))\n", len(r.Reports))
	for _, rep := range r.Reports {
		fmt.Fprintf(&b, "\nsignature %d: %s", rep.Index+1, rep.Indication)
		if rep.SubIndication != "" {
			fmt.Fprintf(&b, " / %s", rep.SubIndication)
		}
		b.WriteString("\n")
		if rep.Reason != "" {
			fmt.Fprintf(&b, "  reason:       %s\n", rep.Reason)
		}
		if s := rep.Signer; s != nil {
			fmt.Fprintf(&b, "  signer:       %s\n", s.Subject)
			if s.NationalID != "" {
				fmt.Fprintf(&b, "  national id:  %s\n", s.NationalID)
			}
			if s.Organization != "" || s.OrganizationIdentifier != "" {
				fmt.Fprintf(&b, "  organization: %s %s\n", s.Organization, s.OrganizationIdentifier)
			}
			if s.Profile != "" {
				fmt.Fprintf(&b, "  profile:      %s\n", s.Profile)
			}
		}
		if !rep.SigningTime.IsZero() {
			fmt.Fprintf(&b, "  signed at:    %s (%s)\n", rep.SigningTime.UTC().Format(time.RFC3339), rep.SigningTimeSource)
		}
		fmt.Fprintf(&b, "  validated at: %s\n", rep.ValidationTime.UTC().Format(time.RFC3339))
		for i, c := range rep.Chain {
			status := c.Status
			if c.StatusSource != "" && c.StatusSource != "trust-anchor" {
				status += " by " + c.StatusSource
			}
			if !c.RevokedAt.IsZero() {
				status += fmt.Sprintf(" at %s (%s)", c.RevokedAt.UTC().Format(time.RFC3339), c.Reason)
			}
			fmt.Fprintf(&b, "  chain[%d]:     %s [%s; %s]\n", i, c.Subject, c.Source, status)
		}
		for _, c := range rep.Checks {
			fmt.Fprintf(&b, "  %-13s %-13s %s\n", c.Name+":", c.Result, c.Detail)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
