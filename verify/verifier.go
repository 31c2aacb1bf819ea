package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"net/http"
	"time"
)

// Config is what a Verifier trusts and how it reaches the network.
type Config struct {
	// Roots are the trust anchors of the national PKI, Sanad's roots. A
	// signer whose path ends at one is held to Sanad's signing profiles:
	// its certificate commits to content (contentCommitment), as
	// citizen-sign's and business-seal's do, and the CA's other
	// certificates (the audit key's) do not.
	Roots []*x509.Certificate
	// ForeignRoots are trust anchors of other PKIs (another country's
	// national root), whose profiles are not Sanad's: a signer whose path
	// ends at one needs digitalSignature or contentCommitment (RFC 5280
	// §4.2.1.3), as an S/MIME signer's or an eIDAS seal's certificate
	// has. A root in both is national.
	ForeignRoots []*x509.Certificate
	// Intermediates are CA certificates to build chains with besides those
	// a signature carries and those fetched by AIA.
	Intermediates []*x509.Certificate
	// OCSPResponder, when set, is asked instead of the AIA OCSP URL of each
	// certificate that names one (a responder the application runs or
	// trusts); a certificate that names none (a CA's) is looked up on its
	// CRL.
	OCSPResponder string
	// AIAPrefixes are the URL prefixes under which a missing intermediate
	// is fetched from the caIssuers URL of the certificate below it; none
	// by default. That certificate is not trusted yet (its issuer is what
	// is missing), so a server that verifies signatures from anyone must
	// say where it will go: else a signature could make it request
	// internal addresses (SSRF). AnyAIA fetches from any http(s) URL: for
	// a person checking a signature on their own machine.
	AIAPrefixes []string
	AnyAIA      bool
	// NoCRL turns off the CRL fallback when OCSP gives no answer.
	NoCRL bool
	// HTTPClient makes the AIA, OCSP and CRL requests. Default: a client
	// with a 5 s timeout.
	HTTPClient *http.Client
	// Now is the validation time. Default: time.Now.
	Now func() time.Time
	// RevocationCacheTTL bounds how long an OCSP answer or a CRL is reused
	// (never past its nextUpdate). Default 1 minute; negative: no cache.
	RevocationCacheTTL time.Duration
	// MaxSigners bounds the signer infos of one CMS and the signatures of
	// one JWS (default 64, at most 1024; a JWS has at most 32, go-jose's
	// jose.MaxSignatures, whatever this says); more is a FORMAT_FAILURE.
	MaxSigners int
	// ClockSkew is how far in the future a signing time or a status
	// answer's thisUpdate may be (default 5 minutes).
	ClockSkew time.Duration
	// Timeout bounds the fetches of one verification together (AIA, OCSP,
	// CRL, each also bounded by HTTPClient): past it, what is still
	// unanswered is reported TRY_LATER rather than waited for, however
	// many signers and certificates there are. Default 30 s; negative: no
	// bound beyond the caller's context.
	Timeout time.Duration
}

// Limits on what is read from outside.
const (
	// MaxSignatureSize bounds a signature (CMS or JWS) given to Verify.
	MaxSignatureSize = 16 << 20
	maxFetchSize     = 4 << 20 // an AIA certificate, an OCSP response, a CRL
	maxAIADepth      = 4       // intermediates fetched for one path
	maxAIAURLs       = 2       // caIssuers URLs tried for one certificate
	maxAIAFetches    = 8       // caIssuers requests for one verification
	maxChainBuilds   = 16      // path searches (x509.Verify) for one verification
)

// ErrTooLarge is returned for a signature larger than MaxSignatureSize.
var ErrTooLarge = errors.New("verify: signature larger than the limit")

// Verifier checks signatures against its Config. It is safe for concurrent
// use; it keeps a small cache of revocation answers and fetched CA
// certificates.
type Verifier struct {
	cfg         Config
	roots       *x509.CertPool  // Roots and ForeignRoots
	national    map[string]bool // the DER of each of Roots
	ocspCache   *ttlCache[*status]
	crlCache    *ttlCache[*crlEntries]
	aiaCache    *ttlCache[[]*x509.Certificate]
	aiaFailures *ttlCache[error]
	certCache   *ttlCache[*x509.Certificate]
	dnCache     *ttlCache[string] // subjects and issuers as reports write them
}

// Cache sizes: OCSP answers by certificate, CRLs and caIssuers by URL.
const (
	ocspCacheEntries = 100_000
	crlCacheEntries  = 64
	aiaCacheEntries  = 256
	aiaCacheTTL      = time.Hour
	certCacheEntries = 4096
	maxCachedCert    = 8 << 10
)

// New returns a Verifier for cfg.
func New(cfg Config) (*Verifier, error) {
	if len(cfg.Roots)+len(cfg.ForeignRoots) == 0 {
		return nil, errors.New("verify: no trust anchors configured")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RevocationCacheTTL == 0 {
		cfg.RevocationCacheTTL = time.Minute
	}
	if cfg.MaxSigners <= 0 {
		cfg.MaxSigners = 64
	}
	cfg.MaxSigners = min(cfg.MaxSigners, maxSignerInfos)
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = 5 * time.Minute
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	v := &Verifier{cfg: cfg, roots: x509.NewCertPool(), national: map[string]bool{},
		ocspCache:   newTTLCache[*status](cfg.RevocationCacheTTL, ocspCacheEntries),
		crlCache:    newTTLCache[*crlEntries](cfg.RevocationCacheTTL, crlCacheEntries),
		aiaCache:    newTTLCache[[]*x509.Certificate](aiaCacheTTL, aiaCacheEntries),
		aiaFailures: newTTLCache[error](time.Minute, aiaCacheEntries),
		certCache:   newTTLCache[*x509.Certificate](time.Hour, certCacheEntries),
		dnCache:     newTTLCache[string](time.Hour, certCacheEntries)}
	for _, r := range cfg.Roots {
		v.roots.AddCert(r)
		v.national[string(r.Raw)] = true
	}
	for _, r := range cfg.ForeignRoots {
		v.roots.AddCert(r)
	}
	return v, nil
}

// parseCert parses a certificate a signature carries; a CA certificate
// only once for all the signatures that carry it. The bytes are the key,
// so a certificate is only ever the one parsed from exactly these bytes;
// a parsed certificate is never modified. What is cached is parsed from a
// copy (x509 keeps the bytes it was given, which would otherwise hold the
// whole request in memory) and small: anyone can send CA certificates.
func (v *Verifier) parseCert(der []byte) (*x509.Certificate, error) {
	if c, ok := v.certCache.get(string(der)); ok {
		return c, nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil || !c.IsCA || len(der) > maxCachedCert {
		return c, err
	}
	if c, err = x509.ParseCertificate(bytes.Clone(der)); err == nil {
		v.certCache.put(string(c.Raw), c, time.Time{})
	}
	return c, err
}

// call is what one verification shares between its signers: the
// validation time, budgets of caIssuers requests and path searches, the
// paths already built and the revocation answers already read, so that
// many signer infos naming one certificate cost one path search and one
// status request, and the content's digests, computed once per algorithm.
type call struct {
	now         time.Time
	aiaFetches  int
	chainBuilds int
	chains      map[[sha256.Size]byte]chainOutcome
	statuses    map[string]statusAnswer
	digests     map[crypto.Hash][]byte
}

// digest is content's digest by h, once per verification.
func (c *call) digest(h crypto.Hash, content []byte) []byte {
	if d, ok := c.digests[h]; ok {
		return d
	}
	d := digest(h, content)
	c.digests[h] = d
	return d
}

// digest is b's digest by h.
func digest(h crypto.Hash, b []byte) []byte {
	d := h.New()
	d.Write(b)
	return d.Sum(nil)
}

type statusAnswer struct {
	st    *status
	notes []string
}

// fetchContext is ctx bounded by Config.Timeout, for one verification's
// fetches; the caller's own cancellation still ends the verification.
func (v *Verifier) fetchContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if v.cfg.Timeout < 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, v.cfg.Timeout)
}

// Timeout is how long one verification's fetches may take together
// (Config.Timeout); negative: no bound.
func (v *Verifier) Timeout() time.Duration { return v.cfg.Timeout }

// newCall starts a verification, validated as of now.
func (v *Verifier) newCall() *call {
	return &call{now: v.cfg.Now(), chains: map[[sha256.Size]byte]chainOutcome{}, statuses: map[string]statusAnswer{}, digests: map[crypto.Hash][]byte{}}
}

// newReport starts the report of signature index, validated as of now.
func (v *Verifier) newReport(format string, index int, now time.Time) *Report {
	return &Report{Format: format, Index: index, ValidationTime: now, SigningTimeSource: "none", names: v.dnCache}
}

// Format names.
const (
	FormatCMS = "CMS"
	FormatJWS = "JWS"
)

// Verify validates the signature sig: a CMS SignedData (DER, PEM or
// S/MIME) or a JWS (compact or JSON serialization). content is the signed
// content for a detached signature, nil otherwise. Hostile input yields a
// FORMAT_FAILURE report, never an error; the error is only for a
// cancelled context or an oversized input.
func (v *Verifier) Verify(ctx context.Context, sig, content []byte) (*Result, error) {
	if len(sig) > MaxSignatureSize {
		return nil, ErrTooLarge
	}
	if looksLikeJWS(sig) {
		return v.VerifyJWS(ctx, sig, content)
	}
	return v.VerifyCMS(ctx, sig, content)
}

// looksLikeJWS tells a JWS (JSON, or three base64url parts) from CMS.
func looksLikeJWS(b []byte) bool {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return false
	}
	if b[0] == '{' {
		return true
	}
	if bytes.Count(b, []byte{'.'}) != 2 {
		return false
	}
	for _, c := range b {
		if !(c == '.' || c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// formatFailure is the result for input that is not a signature at all.
func (v *Verifier) formatFailure(format, detail string) *Result {
	rep := v.newReport(format, 0, v.cfg.Now())
	rep.fail("format", TotalFailed, FormatFailure, "%s", detail)
	res := &Result{Format: format, Reports: []*Report{rep}}
	res.summarize()
	return res
}
