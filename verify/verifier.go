package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"time"
)

// Config is what a Verifier trusts and how it reaches the network.
type Config struct {
	// Roots are the trust anchors: the national roots.
	Roots []*x509.Certificate
	// Intermediates are CA certificates to build chains with besides those
	// a signature carries and those fetched by AIA.
	Intermediates []*x509.Certificate
	// OCSPResponder, when set, is asked instead of the AIA OCSP URL of each
	// certificate (a responder the application runs or trusts).
	OCSPResponder string
	// NoAIA turns off fetching missing intermediates from caIssuers URLs.
	NoAIA bool
	// AIAPrefixes, when not empty, are the only URL prefixes a caIssuers
	// URL may start with to be fetched. The certificate that names it is
	// not yet trusted (its issuer is what is missing), so a server that
	// verifies signatures from anyone should say where it will go: else
	// a signature could make it request internal addresses (SSRF).
	AIAPrefixes []string
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
	// one JWS (default 64, at most 1024); more is a FORMAT_FAILURE.
	MaxSigners int
	// ClockSkew is how far in the future a signing time or a status
	// answer's thisUpdate may be (default 5 minutes).
	ClockSkew time.Duration
}

// Limits on what is read from outside.
const (
	// MaxSignatureSize bounds a signature (CMS or JWS) given to Verify.
	MaxSignatureSize = 16 << 20
	maxFetchSize     = 4 << 20 // an AIA certificate, an OCSP response, a CRL
	maxAIADepth      = 4
)

// ErrTooLarge is returned for a signature larger than MaxSignatureSize.
var ErrTooLarge = errors.New("verify: signature larger than the limit")

// Verifier checks signatures against its Config. It is safe for concurrent
// use; it keeps a small cache of revocation answers and fetched CA
// certificates.
type Verifier struct {
	cfg       Config
	roots     *x509.CertPool
	ocspCache *ttlCache[*status]
	crlCache  *ttlCache[*crlEntries]
	aiaCache  *ttlCache[[]*x509.Certificate]
	certCache *ttlCache[*x509.Certificate]
}

// Cache sizes: OCSP answers by certificate, CRLs and caIssuers by URL.
const (
	ocspCacheEntries = 100_000
	crlCacheEntries  = 64
	aiaCacheEntries  = 256
	aiaCacheTTL      = time.Hour
	certCacheEntries = 4096
)

// New returns a Verifier for cfg.
func New(cfg Config) (*Verifier, error) {
	if len(cfg.Roots) == 0 {
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
	v := &Verifier{cfg: cfg, roots: x509.NewCertPool(),
		ocspCache: newTTLCache[*status](cfg.RevocationCacheTTL, ocspCacheEntries),
		crlCache:  newTTLCache[*crlEntries](cfg.RevocationCacheTTL, crlCacheEntries),
		aiaCache:  newTTLCache[[]*x509.Certificate](aiaCacheTTL, aiaCacheEntries),
		certCache: newTTLCache[*x509.Certificate](time.Hour, certCacheEntries)}
	for _, r := range cfg.Roots {
		v.roots.AddCert(r)
	}
	return v, nil
}

// parseCert parses a certificate a signature carries; a CA certificate
// only once for all the signatures that carry it. The bytes are the key,
// so a certificate is only ever the one parsed from exactly these bytes;
// a parsed certificate is never modified.
func (v *Verifier) parseCert(der []byte) (*x509.Certificate, error) {
	if c, ok := v.certCache.get(string(der)); ok {
		return c, nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if c.IsCA {
		v.certCache.put(string(der), c, time.Time{})
	}
	return c, nil
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
	rep := &Report{Format: format, ValidationTime: v.cfg.Now(), SigningTimeSource: "none"}
	rep.fail("format", TotalFailed, FormatFailure, "%s", detail)
	res := &Result{Format: format, Reports: []*Report{rep}}
	res.summarize()
	return res
}
