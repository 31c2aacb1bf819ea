package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// status is a revocation answer for one certificate.
type status struct {
	state      string // good, revoked, unknown
	source     string // ocsp or crl
	url        string // "" for the configured OCSP responder (sourceName)
	revokedAt  time.Time
	reason     string
	ocspDER    []byte
	crlNumber  string
	thisUpdate time.Time
	nextUpdate time.Time
	// unauthorized: the responder answered "unauthorized" (unsigned, RFC
	// 6960 §2.3) where another signs "unknown"; the state is unknown.
	unauthorized bool
}

// sourceName names a status source in a report: by its URL when a
// certificate gave it (the CA published it), else as the configured OCSP
// responder (url ""), whose URL may be an internal host's.
func sourceName(source, url string) string {
	if url == "" {
		return "the configured OCSP responder"
	}
	return source + " " + url
}

// anyURL allows every redirect of an OCSP or CRL request: those URLs come
// from certificates whose chain was verified, so the CA chose them.
func anyURL(string) bool { return true }

// RFC 5280 §5.3.1 reason codes, by value.
var reasonNames = map[int]string{
	0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged",
	4: "superseded", 5: "cessationOfOperation", 6: "certificateHold", 8: "removeFromCRL",
	9: "privilegeWithdrawn", 10: "aACompromise",
}

func reasonName(code int) string {
	if n, ok := reasonNames[code]; ok {
		return n
	}
	return fmt.Sprintf("reason %d", code)
}

// statusOf asks OCSP (the certificate's AIA URL, or the configured
// responder in its place when it names one) and, when that gives no usable
// answer (none, tryLater, internalError, malformed, stale but for a
// revocation), the certificate's CRL distribution points. A responder that does not know the certificate, a signed
// "unknown" or "unauthorized", ends the search with state unknown: the CA
// keeps no record of it (Sanad's responder answers unauthorized for a
// serial its store does not hold, the safeguard against a certificate
// signed but never recorded), and a CRL, which lists only revocations,
// would call it good. The notes say what each source answered; a nil
// status means none answered.
func (v *Verifier) statusOf(ctx context.Context, cert, issuer *x509.Certificate) (*status, []string) {
	var notes []string
	// The configured responder stands in for the one the certificate
	// names, and is not asked of a certificate that names none: a CA's
	// certificate, which its issuer's CRL covers, and which Sanad's
	// responder answers unauthorized (it answers for the issuing CAs).
	urls, configured := cert.OCSPServer, v.cfg.OCSPResponder != "" && len(cert.OCSPServer) > 0
	if configured {
		urls = []string{v.cfg.OCSPResponder}
	}
	for _, u := range urls {
		shown := u
		if configured {
			shown = ""
		}
		st, err := v.askOCSP(ctx, u, shown, cert, issuer)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", sourceName("OCSP", shown), err))
			continue
		}
		return st, notes
	}
	if v.cfg.NoCRL {
		return nil, notes
	}
	for _, u := range cert.CRLDistributionPoints {
		st, err := v.fromCRL(ctx, u, cert, issuer)
		if err != nil {
			notes = append(notes, fmt.Sprintf("CRL %s: %v", u, err))
			continue
		}
		return st, notes
	}
	if len(urls) == 0 && len(cert.CRLDistributionPoints) == 0 {
		notes = append(notes, "the certificate names no OCSP responder and no CRL")
	}
	return nil, notes
}

// askOCSP gets and checks one OCSP answer (RFC 6960): signed by the issuer
// or by a responder certificate the issuer gave id-kp-OCSPSigning and that
// is valid now, with an algorithm and key the verification accepts, about
// this serial from this issuer (checkCertID), current (thisUpdate not in
// the future, nextUpdate not
// past). An authentic "revoked" counts however old: a revocation is never
// undone (but a hold, which is not kept here), so a stale copy of one (an
// HTTP cache's) is no reason to ask a CRL that may predate it. The status
// names the responder by shown, its URL or "" (sourceName).
func (v *Verifier) askOCSP(ctx context.Context, responder, shown string, cert, issuer *x509.Certificate) (*status, error) {
	key := "ocsp\x00" + responder + "\x00" + string(issuer.RawSubjectPublicKeyInfo) + "\x00" + string(cert.SerialNumber.Bytes())
	if st, ok := v.ocspCache.get(key); ok {
		return st, nil
	}
	req, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return nil, err
	}
	var der []byte
	// RFC 5019 §5: GET when the encoded request fits in 255 bytes, so
	// that caches in between can answer.
	enc := url.PathEscape(base64.StdEncoding.EncodeToString(req))
	if len(enc) <= 255 {
		der, err = v.fetch(ctx, http.MethodGet, strings.TrimRight(responder, "/")+"/"+enc, "", nil, anyURL)
	} else {
		der, err = v.fetch(ctx, http.MethodPost, responder, "application/ocsp-request", req, anyURL)
	}
	if err != nil {
		return nil, err
	}
	resp, err := ocsp.ParseResponseForCert(der, cert, issuer)
	if err != nil {
		var re ocsp.ResponseError
		if errors.As(err, &re) && re.Status == ocsp.Unauthorized {
			return &status{state: "unknown", source: "ocsp", url: shown, unauthorized: true}, nil
		}
		if errors.As(err, &re) {
			return nil, fmt.Errorf("responder answered %v", re.Status)
		}
		return nil, fmt.Errorf("bad response: %w", err)
	}
	if resp.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		return nil, errors.New("response is about another serial")
	}
	if err := checkCertID(resp.TBSResponseData, cert, issuer); err != nil {
		return nil, err
	}
	now := v.cfg.Now()
	if slices.Contains(insecureAlgorithms, resp.SignatureAlgorithm) {
		return nil, fmt.Errorf("response signed with %v, an algorithm no longer accepted", resp.SignatureAlgorithm)
	}
	if rc := resp.Certificate; rc != nil && !bytes.Equal(rc.Raw, issuer.Raw) {
		// x/crypto/ocsp checked the issuer signed it; RFC 6960 §4.2.2.2
		// also wants the OCSP signing purpose, and a relying party wants
		// it valid, with a key the verification accepts.
		if !hasEKU(rc, x509.ExtKeyUsageOCSPSigning) {
			return nil, errors.New("responder certificate lacks id-kp-OCSPSigning")
		}
		if now.Before(rc.NotBefore) || now.After(rc.NotAfter) {
			return nil, fmt.Errorf("responder certificate not valid at %s", now.UTC().Format(time.RFC3339))
		}
		if p := rsaSizeProblem(rc.PublicKey); p != "" {
			return nil, fmt.Errorf("responder certificate: %s", p)
		}
	}
	var stale error
	switch {
	case resp.ThisUpdate.After(now.Add(v.cfg.ClockSkew)):
		stale = fmt.Errorf("thisUpdate %s is in the future", resp.ThisUpdate.UTC().Format(time.RFC3339))
	case !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate):
		stale = fmt.Errorf("stale: nextUpdate %s has passed", resp.NextUpdate.UTC().Format(time.RFC3339))
	case resp.NextUpdate.IsZero() && now.Sub(resp.ThisUpdate) > maxAgeWithoutNextUpdate:
		// RFC 6960 §4.2.2.1: without nextUpdate, newer information is
		// always available; an old answer may be a replay.
		stale = fmt.Errorf("no nextUpdate and thisUpdate %s is older than %s", resp.ThisUpdate.UTC().Format(time.RFC3339), maxAgeWithoutNextUpdate)
	}
	if stale != nil && (resp.Status != ocsp.Revoked || resp.RevocationReason == ocsp.CertificateHold) {
		return nil, stale
	}
	st := &status{source: "ocsp", url: shown, ocspDER: der, thisUpdate: resp.ThisUpdate, nextUpdate: resp.NextUpdate}
	switch resp.Status {
	case ocsp.Good:
		st.state = "good"
	case ocsp.Revoked:
		st.state, st.revokedAt, st.reason = "revoked", resp.RevokedAt, reasonName(resp.RevocationReason)
	default:
		st.state = "unknown"
	}
	if stale == nil {
		v.ocspCache.put(key, st, resp.NextUpdate)
	}
	return st, nil
}

func hasEKU(c *x509.Certificate, want x509.ExtKeyUsage) bool {
	for _, u := range c.ExtKeyUsage {
		if u == want {
			return true
		}
	}
	return false
}

// crlEntries is a checked CRL, its entries by serial.
type crlEntries struct {
	number     string
	thisUpdate time.Time
	nextUpdate time.Time
	revoked    map[string]x509.RevocationListEntry
}

// fromCRL reads the certificate's status from the CRL at u (RFC 5280
// §6.3): signed by the issuer, current, and listing the serial or not.
func (v *Verifier) fromCRL(ctx context.Context, u string, cert, issuer *x509.Certificate) (*status, error) {
	key := "crl\x00" + u + "\x00" + string(issuer.RawSubjectPublicKeyInfo)
	var list *crlEntries
	if e, ok := v.crlCache.get(key); ok {
		list = e
	} else {
		der, err := v.fetch(ctx, http.MethodGet, u, "", nil, anyURL)
		if err != nil {
			return nil, err
		}
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("bad CRL: %w", err)
		}
		if !bytes.Equal(rl.RawIssuer, issuer.RawSubject) {
			return nil, errors.New("CRL of another issuer")
		}
		if slices.Contains(insecureAlgorithms, rl.SignatureAlgorithm) {
			return nil, fmt.Errorf("CRL signed with %v, an algorithm no longer accepted", rl.SignatureAlgorithm)
		}
		if err := rl.CheckSignatureFrom(issuer); err != nil {
			return nil, fmt.Errorf("CRL signature: %w", err)
		}
		if err := completeCRL(rl); err != nil {
			return nil, err
		}
		list = &crlEntries{thisUpdate: rl.ThisUpdate, nextUpdate: rl.NextUpdate, revoked: make(map[string]x509.RevocationListEntry, len(rl.RevokedCertificateEntries))}
		if rl.Number != nil {
			list.number = rl.Number.String()
		}
		for _, e := range rl.RevokedCertificateEntries {
			list.revoked[string(e.SerialNumber.Bytes())] = e
		}
		v.crlCache.put(key, list, list.nextUpdate)
	}
	st := &status{state: "good", source: "crl", url: u, crlNumber: list.number, thisUpdate: list.thisUpdate, nextUpdate: list.nextUpdate}
	e, listed := list.revoked[string(cert.SerialNumber.Bytes())]
	if listed {
		st.state, st.revokedAt, st.reason = "revoked", e.RevocationTime, reasonName(e.ReasonCode)
		if e.ReasonCode != ocsp.CertificateHold {
			// Authentic, and a revocation is never undone: however old
			// the CRL, as for OCSP (askOCSP).
			return st, nil
		}
	}
	now := v.cfg.Now()
	if list.thisUpdate.After(now.Add(v.cfg.ClockSkew)) {
		return nil, fmt.Errorf("thisUpdate %s is in the future", list.thisUpdate.UTC().Format(time.RFC3339))
	}
	if list.nextUpdate.IsZero() {
		// RFC 5280 §5.1.2.5: conforming CRL issuers include nextUpdate.
		return nil, errors.New("CRL without nextUpdate")
	}
	if now.After(list.nextUpdate) {
		return nil, fmt.Errorf("stale: nextUpdate %s has passed", list.nextUpdate.UTC().Format(time.RFC3339))
	}
	return st, nil
}

// CRL extensions (RFC 5280 §5.2, §5.3).
var (
	oidAuthorityKeyID       = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLNumber            = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidDeltaCRLIndicator    = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidIssuingDistPoint     = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidReasonCode           = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidInvalidityDate       = asn1.ObjectIdentifier{2, 5, 29, 24}
	oidCertificateIssuer    = asn1.ObjectIdentifier{2, 5, 29, 29}
	maxAgeWithoutNextUpdate = time.Hour
)

// completeCRL refuses what this package cannot read as the issuer's full
// list of revoked certificates: a delta CRL (§5.2.4), a partitioned or
// scoped one (issuingDistributionPoint, §5.2.5), an indirect one (entries
// with certificateIssuer, §5.3.3), and any critical extension it does not
// know (§5.2: "a CRL validation MUST fail"). Its absence of an answer
// then sends the verification to TRY_LATER, never to "good".
func completeCRL(rl *x509.RevocationList) error {
	for _, ext := range rl.Extensions {
		switch {
		case ext.Id.Equal(oidDeltaCRLIndicator):
			return errors.New("a delta CRL is not a full CRL")
		case ext.Id.Equal(oidIssuingDistPoint):
			return errors.New("a CRL with an issuingDistributionPoint covers part of the certificates; not supported")
		case ext.Critical && !ext.Id.Equal(oidAuthorityKeyID) && !ext.Id.Equal(oidCRLNumber):
			return fmt.Errorf("unknown critical CRL extension %s", ext.Id)
		}
	}
	for _, e := range rl.RevokedCertificateEntries {
		for _, ext := range e.Extensions {
			switch {
			case ext.Id.Equal(oidCertificateIssuer):
				return errors.New("an indirect CRL (certificateIssuer entries) is not supported")
			case ext.Critical && !ext.Id.Equal(oidReasonCode) && !ext.Id.Equal(oidInvalidityDate):
				return fmt.Errorf("unknown critical CRL entry extension %s", ext.Id)
			}
		}
	}
	return nil
}

// ttlCache keeps OCSP answers or CRLs for at most ttl and never past
// their nextUpdate, so that a busy application does not ask the responder
// for every signature (RFC 5019 §6 lets HTTP caches do the same). A
// negative ttl keeps nothing; a full cache starts again empty.
type ttlCache[V any] struct {
	ttl     time.Duration
	max     int
	mu      sync.Mutex
	entries map[string]cached[V]
}

type cached[V any] struct {
	v       V
	expires time.Time
}

func newTTLCache[V any](ttl time.Duration, max int) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, max: max, entries: map[string]cached[V]{}}
}

func (c *ttlCache[V]) get(key string) (V, bool) {
	var zero V
	if c.ttl < 0 {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || time.Now().After(e.expires) {
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(key string, v V, nextUpdate time.Time) {
	if c.ttl < 0 {
		return
	}
	exp := time.Now().Add(c.ttl)
	if !nextUpdate.IsZero() && nextUpdate.Before(exp) {
		exp = nextUpdate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[key] = cached[V]{v: v, expires: exp}
}

// serialHex is a serial as openssl x509 -serial prints it: upper-case
// hex, an even number of digits.
func serialHex(n *big.Int) string {
	s := fmt.Sprintf("%X", n)
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
}
