package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sanadpki/sanad/ca/csr"
	"github.com/sanadpki/sanad/ca/lint"
	"github.com/sanadpki/sanad/ca/ocspsign"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
)

// Issuer is the issuing CA: its certificate, its HSM key, and the URLs its
// certificates point relying parties at.
type Issuer struct {
	ID           string
	Certificate  *x509.Certificate
	Signer       crypto.Signer
	CRLURL       string
	OCSPURL      string
	CAIssuersURL string
}

// lintExclusions are zlint lints that cannot apply to Sanad's issuance,
// each with its reason:
//   - e_cert_issued_by_compromised_emudhra_ca tries the public keys of eight
//     compromised eMudhra intermediates on every signature. Sanad's issuing
//     keys are its own, and the pre-signing lint runs on a copy carrying a
//     throw-away key's signature, so it can never fire; it alone cost half
//     of the CPU time of an issuance (BenchmarkIssue profile).
//   - e_ecdsa_small_private_key is a check of the applicant's key, and
//     csr refuses the same keys before anything is built (CodeECSmallKey,
//     held to the lint by csr.TestSmallKeyAgreesWithZlint) with a table
//     lookup instead of the lint's 32 curve additions per certificate,
//     which were a twelfth of an issuance's CPU (bench issue profile).
//     The CA's own keys are linted by the ceremonies, which run every lint.
var lintExclusions = []string{"e_cert_issued_by_compromised_emudhra_ca", "e_ecdsa_small_private_key"}

// NewLinter returns the zlint configuration issuance uses.
func NewLinter() (*lint.Linter, error) { return lint.New("", lintExclusions...) }

// Deps are what the CA is built from; cmd/sanad wires them.
type Deps struct {
	Store     *store.DB
	Audit     *audit.Log
	Linter    *lint.Linter
	OCSP      *ocspsign.Signer
	Issuer    Issuer
	Responder ocspsign.Responder
	Profiles  map[string]profile.Profile
	// OtherKeys are the public keys of the CA's other issuers and
	// signers (an earlier issuing CA, its OCSP signers): never certified,
	// like the Issuer's and the Responder's own.
	OtherKeys []crypto.PublicKey
	// Proofs, if set, remembers the requests whose proof of possession
	// verified: the RA's, when it runs in this process and shares it,
	// and the CA's own. See csr.Proofs.
	Proofs *csr.Proofs
	Now    func() time.Time
	// Fault, when set (tests only), is called at each Fault* point of an
	// issuance; an error stops the issuance there, as a crash would.
	Fault func(point string) error
}

// CA issues end-entity certificates.
type CA struct {
	d Deps
	// commits groups the transactions of concurrent issuances.
	commits *group
	// lintSignature is the signature of the copy of each certificate that
	// is linted before the HSM signs (see lint); alg is the issuer key's
	// signature algorithm, which both use.
	lintSignature []byte
	alg           signatureAlg
	// forbidden are the keys never certified: the issuer's, every
	// responder's it signed with and OtherKeys; responding is the OCSP
	// signer it signs with now (d.Responder at first). swap orders their
	// changes (UseResponder).
	forbidden  atomic.Pointer[[]crypto.PublicKey]
	responding atomic.Pointer[responding]
	swap       sync.Mutex
	// changed holds one pending signal that a status changed (a
	// revocation or a recovery): the CRL publisher waits on it.
	changed chan struct{}
}

// New returns a CA after checking its dependencies fit together.
func New(d Deps) (*CA, error) {
	var errs []error
	if d.Store == nil || d.Audit == nil || d.Linter == nil || d.OCSP == nil || d.Now == nil {
		errs = append(errs, errors.New("ca: store, audit log, linter, OCSP signer and clock are required"))
	}
	if d.Issuer.Certificate == nil || d.Issuer.Signer == nil || d.Issuer.ID == "" {
		errs = append(errs, errors.New("ca: issuer needs an id, a certificate and a signer"))
	} else if !publicKeysEqual(d.Issuer.Signer.Public(), d.Issuer.Certificate.PublicKey) {
		errs = append(errs, fmt.Errorf("ca: issuer %s: the key does not match the certificate", d.Issuer.ID))
	}
	errs = append(errs, checkResponder(d.Issuer, d.Responder)...)
	if d.Issuer.CRLURL == "" || d.Issuer.OCSPURL == "" || d.Issuer.CAIssuersURL == "" {
		errs = append(errs, errors.New("ca: issuer needs CRL, OCSP and caIssuers URLs"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	alg, err := signatureAlgFor(d.Issuer.Signer.Public())
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	lintSignature, err := newLintSignature(d.Issuer.Signer.Public(), alg)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	forbidden := append([]crypto.PublicKey{d.Issuer.Certificate.PublicKey, d.Responder.Certificate.PublicKey}, d.OtherKeys...)
	ca := &CA{d: d, commits: newGroup(d.Store, d.Audit, d.Now), lintSignature: lintSignature, alg: alg, changed: make(chan struct{}, 1)}
	ca.forbidden.Store(&forbidden)
	ca.responding.Store(&responding{r: d.Responder})
	return ca, nil
}

// Ready reports whether the CA can issue and revoke now, beyond the
// database and the HSM the service checks: its OCSP responder certificate
// must be valid for the whole of a response signed now, or no certificate
// could get its answer (ocspsign.ErrResponderValidity).
func (ca *CA) Ready(context.Context) error {
	r, err := ca.responder()
	if err != nil {
		return err
	}
	return ca.d.OCSP.CheckResponder(r)
}

// InValidity reports whether the issuing CA's certificate is valid now: an
// issuing CA certified for a time not yet come (a ceremony's date ahead of
// this clock) issues nothing before it (newTemplate), which readiness
// says where the issuance's own error would only be retried.
func (ca *CA) InValidity(context.Context) error {
	c, now := ca.d.Issuer.Certificate, ca.d.Now().UTC()
	switch {
	case now.Before(c.NotBefore):
		return fmt.Errorf("issuing CA %s is valid only from %s; it is %s here", ca.d.Issuer.ID, c.NotBefore.UTC().Format(time.RFC3339), now.Format(time.RFC3339))
	case now.After(c.NotAfter):
		return fmt.Errorf("issuing CA %s expired at %s", ca.d.Issuer.ID, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// IssuanceEnds is the last time Issue accepts every end-entity profile:
// after it, the issuer's remaining life is shorter than the returned
// profile's validity and Issue refuses that profile (a certificate never
// outlives its issuer); zero and "" when no end-entity profile is configured. The next
// issuing CA must be in service by then (a rollover, sanad issuer add).
func (ca *CA) IssuanceEnds() (time.Time, string) {
	var (
		ends    time.Time
		profile string
	)
	for _, name := range slices.Sorted(maps.Keys(ca.d.Profiles)) {
		p := ca.d.Profiles[name]
		if p.SubjectKind == "" {
			continue
		}
		// Issue refuses once now + ValidityDays - 1s is after notAfter.
		t := ca.d.Issuer.Certificate.NotAfter.AddDate(0, 0, -p.ValidityDays).Add(time.Second)
		if profile == "" || t.Before(ends) {
			ends, profile = t, name
		}
	}
	return ends, profile
}

// Changes receives a value after a certificate's status changed (revoked
// or recovered) since the last receive; signals coalesce, so a burst of
// revocations is one value. The CRL publisher rebuilds on it.
func (ca *CA) Changes() <-chan struct{} { return ca.changed }

// statusChanged signals Changes without ever blocking.
func (ca *CA) statusChanged() {
	select {
	case ca.changed <- struct{}{}:
	default:
	}
}

// Request is an approved enrollment to certify.
type Request struct {
	Profile string
	// CSR is the applicant's request, PEM or DER; only its public key is
	// used, after proof of possession.
	CSR []byte
	// Verified are the attributes the RA verified; the subject is built
	// from these only.
	Verified     profile.Verified
	SubjectID    string
	EnrollmentID string
	// Actor is who caused the issuance, for the audit log.
	Actor string
	// Then, when set, runs in the transaction that stores the signed
	// certificate, after it, in a savepoint of its own and with a context
	// that is not cancelled: the RA records its enrollment as issued in
	// the same commit. It may run more than once (a group may run again):
	// it must derive what it reports from its last run. If it fails, it
	// alone is rolled back, the certificate is stored without it, and
	// Issue returns the certificate with an error wrapping ErrThen and
	// Then's.
	Then func(ctx context.Context, tx *store.Tx, cert *x509.Certificate) error
	// Recorded, when set, is this request's intent, which the caller
	// prepared (Prepare) and recorded (Intent.Record) in a transaction
	// that committed: Issue reads it back, signs it if it is committed as
	// prepared and was not taken to sign before, and stores the
	// certificate as it would have.
	Recorded *Intent
}

// ErrThen is wrapped by Issue's error when the certificate was issued and
// stored but Request.Then failed: the certificate is returned with it.
var ErrThen = errors.New("the certificate was stored without what was to be recorded with it")

// ErrRequest is wrapped by every refusal of a request (as opposed to a
// failure of the CA itself).
var ErrRequest = errors.New("request refused")

// Issue certifies a request: profile → template → lint of a copy with a
// throw-away signature → intent row and audit event committed → HSM
// signature → signed TBS checked byte for byte against the linted one →
// certificate stored with its pre-signed OCSP response and audit event. If
// the intent cannot be written, or no OCSP response could be signed for the
// certificate, nothing is signed; if anything after the intent fails, the
// intent stays and recovery resolves it, at start-up or at the Publisher's
// next scan (see doc.go). A request whose intent the caller recorded
// itself (Request.Recorded) starts at reading that intent back, then the
// HSM signature.
func (ca *CA) Issue(ctx context.Context, req Request) (*x509.Certificate, error) {
	d := ca.d
	in := req.Recorded
	if in == nil {
		var err error
		if in, err = ca.Prepare(ctx, req); err != nil {
			return nil, err
		}
		if err := ca.commits.do(ctx, &in.write); err != nil {
			return nil, fmt.Errorf("issue %s: record intent: %w", in.object, err)
		}
	} else if err := ca.checkRecorded(ctx, in, req); err != nil {
		return nil, fmt.Errorf("issue %s: %w", in.object, err)
	}
	if err := ca.fault(FaultAfterIntent); err != nil {
		return nil, err
	}
	p, tbs, now, object, intent := in.pr.profile, in.pr.tbs, in.pr.now, in.object, *in.write.intent
	serial := intent.Serial

	// Retired since the intent was prepared: no answer could be signed,
	// so the HSM does not sign the certificate (recovery resolves the
	// intent).
	if _, err := ca.responder(); err != nil {
		return nil, fmt.Errorf("issue %s: %w", object, err)
	}
	der, err := ca.signTBS(tbs)
	if err != nil {
		return nil, fmt.Errorf("issue %s: HSM signature: %w", object, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", object, err)
	}
	if !bytes.Equal(cert.RawTBSCertificate, tbs) {
		return nil, fmt.Errorf("issue %s: the signed TBS differs from the linted one", object)
	}
	// A faulty HSM must not hand out a certificate that does not verify.
	if err := cert.CheckSignatureFrom(d.Issuer.Certificate); err != nil {
		return nil, fmt.Errorf("issue %s: the HSM's signature does not verify: %w", object, err)
	}
	// The OCSP response is signed before the transaction, so the HSM's
	// time is not spent holding the audit head.
	responder, err := ca.responder()
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", object, err)
	}
	resp, err := d.OCSP.Sign(responder, intent)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", object, err)
	}
	if err := ca.fault(FaultAfterSign); err != nil {
		return nil, err
	}
	w := &groupWrite{
		signed: &store.SignedCertificate{IssuerID: d.Issuer.ID, Serial: serial, DER: der, At: now},
		ocsp:   &resp,
		event: audit.Event{Actor: req.Actor, Action: "certificate.issue", Object: object,
			Details: map[string]any{"profile": p.Name, "enrollment": req.EnrollmentID, "subject": cert.Subject.String(),
				"certificate_sha256": hexSHA256(der), "not_after": cert.NotAfter}}}
	if req.Then != nil {
		// The batch's other writes are not the caller's to cancel: Then
		// runs to its end whatever the caller's context says.
		thenCtx := context.WithoutCancel(ctx)
		w.then = func(tx *store.Tx) error { return req.Then(thenCtx, tx, cert) }
	}
	err = ca.commits.do(ctx, w)
	var then *thenError
	if errors.As(err, &then) {
		return cert, fmt.Errorf("issue %s: %w: %w", object, ErrThen, then.err)
	}
	if revoked := (*store.IntentRevokedError)(nil); errors.As(err, &revoked) && revoked.Reason == reasonKeyCompromise {
		// Its key was reported compromised (in another certificate of
		// it) while the HSM signed: refused for good, as the key is
		// blocked from now on. An intent recovery revoked (another
		// reason) is only an outage: a later issuance succeeds.
		return nil, fmt.Errorf("issue %s: %w: %w: the key was reported compromised while the certificate was being signed, at %s",
			object, ErrRequest, ErrKeyCompromised, revoked.At.UTC().Format(time.RFC3339))
	}
	if err != nil {
		return nil, fmt.Errorf("issue %s: store: %w", object, err)
	}
	if err := ca.fault(FaultAfterCommit); err != nil {
		return nil, err
	}
	return cert, nil
}

// Intent is an issuance checked and built, not yet signed (Prepare): the
// certificate's TBS, its intent row and the intent's audit event. A caller
// whose own transaction commits just before the issuance (the RA, recording
// an applicant's proof for a profile without officers) records the intent
// in it (Record) and saves the issuance the intent's commit of its own;
// Issue then signs it (Request.Recorded), once at most. Should the caller
// stop between, recovery resolves the intent as any other.
type Intent struct {
	ca     *CA
	req    Request
	pr     prepared
	object string
	// write is the intent row and its audit event.
	write groupWrite
	// signing is set when Issue takes the intent to sign.
	signing atomic.Bool
}

// Prepare makes every check Issue makes before the intent (Check's, and
// that the OCSP responder can answer for the certificate) and builds the
// intent, writing nothing. Its refusals are Issue's.
func (ca *CA) Prepare(ctx context.Context, req Request) (*Intent, error) {
	d := ca.d
	pr, err := ca.prepare(req)
	if err != nil {
		return nil, err
	}
	serial := pr.tmpl.SerialNumber.Bytes()
	object := SerialObject(d.Issuer.ID, serial)
	// A certificate whose OCSP answer cannot be signed must not be
	// signed: its intent would stay unresolved, since recovery needs the
	// responder too.
	if err := ca.Ready(ctx); err != nil {
		return nil, fmt.Errorf("issue %s: %w", object, err)
	}
	keyIDs, err := KeyIDs(pr.csr.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", object, err)
	}
	intent := &store.Certificate{
		IssuerID: d.Issuer.ID, Serial: serial, SubjectID: req.SubjectID, EnrollmentID: req.EnrollmentID, Profile: pr.profile.Name,
		NotBefore: pr.tmpl.NotBefore, NotAfter: pr.tmpl.NotAfter, TBS: pr.tbs, Status: store.StatusGood, CreatedAt: pr.now,
		SPKISHA256: keyIDs[0],
	}
	return &Intent{ca: ca, req: req, pr: pr, object: object, write: groupWrite{intent: intent, keyIDs: keyIDs,
		event: audit.Event{Actor: req.Actor, Action: "certificate.intent", Object: object,
			Details: map[string]any{"profile": pr.profile.Name, "enrollment": req.EnrollmentID, "tbs_sha256": hexSHA256(pr.tbs)}}}}, nil
}

// Record writes the intent row and its audit event in tx, a transaction of
// the caller's. It refuses as Issue does a key revoked for keyCompromise
// (ErrKeyCompromised), before it writes anything: tx can go on without the
// intent. Once tx has committed, Issue signs it.
func (in *Intent) Record(ctx context.Context, tx *store.Tx) error {
	return in.ca.commits.write(ctx, tx, []*groupWrite{&in.write})
}

// checkRecorded refuses to sign in for req unless in is this CA's intent
// for req, not taken to sign before, and committed in the store as it was
// prepared: the certificate the HSM signs is never one the store does not
// know about, whatever the caller did with the intent.
func (ca *CA) checkRecorded(ctx context.Context, in *Intent, req Request) error {
	r := in.req
	if in.ca != ca || r.EnrollmentID != req.EnrollmentID || r.SubjectID != req.SubjectID || r.Profile != req.Profile || !bytes.Equal(r.CSR, req.CSR) {
		return fmt.Errorf("the intent recorded is not this CA's for this request (enrollment %s)", req.EnrollmentID)
	}
	if !in.signing.CompareAndSwap(false, true) {
		return errors.New("the intent was taken to sign before")
	}
	stored, err := ca.d.Store.Certificate(ctx, ca.d.Issuer.ID, in.write.intent.Serial)
	if err != nil {
		return fmt.Errorf("the intent is not recorded: %w", err)
	}
	if stored.DER != nil || stored.Status != store.StatusGood || !bytes.Equal(stored.TBS, in.pr.tbs) {
		return errors.New("the intent is not recorded as it was prepared, or was completed or revoked since")
	}
	return nil
}

// Check runs every check Issue makes of req before the HSM signs: the
// profile, the CSR (key policy and proof of possession), the subject, the
// template, and zlint over a copy with the throw-away signature. It
// writes nothing and signs nothing in the HSM. Its refusals are Issue's
// (ErrRequest, or a lint finding). `sanad bench issue` times it: its cost
// and the HSM's two signatures are the least a certificate can cost.
func (ca *CA) Check(req Request) error {
	_, err := ca.prepare(req)
	return err
}

// prepared is a request Issue has checked: its profile and CSR, the
// template, and the linted TBS the HSM will sign.
type prepared struct {
	profile profile.Profile
	csr     *x509.CertificateRequest
	tmpl    *x509.Certificate
	tbs     []byte
	now     time.Time
}

// prepare is Issue up to the HSM: see Check.
func (ca *CA) prepare(req Request) (prepared, error) {
	d := ca.d
	p, ok := d.Profiles[req.Profile]
	if !ok || p.SubjectKind == "" {
		return prepared{}, fmt.Errorf("%w: %q is not an end-entity profile", ErrRequest, req.Profile)
	}
	keyTypes := make([]string, len(p.KeyTypes))
	for i, kt := range p.KeyTypes {
		keyTypes[i] = string(kt)
	}
	cr, checked, err := csr.ParseAndCheck(req.CSR, csr.Policy{KeyTypes: keyTypes, Forbidden: *ca.forbidden.Load(), Proofs: ca.d.Proofs})
	if err != nil {
		return prepared{}, fmt.Errorf("%w: %w", ErrRequest, err)
	}
	subject, err := RequestSubject(p, req.Verified, cr)
	if err != nil {
		return prepared{}, err
	}
	tmpl, err := ca.template(p, subject, checked.PublicKey, d.Now())
	if err != nil {
		return prepared{}, err
	}
	tbs, err := ca.lint(tmpl, checked.PublicKey)
	if err != nil {
		return prepared{}, err
	}
	// The time of issue is the template's: its validity's start.
	return prepared{profile: p, csr: cr, tmpl: tmpl, tbs: tbs, now: tmpl.NotBefore}, nil
}

// RequestSubject is the subject profile p builds from the verified
// attributes v, after refusing (ErrRequest) a CSR that asks for something
// the profile decides: another subject, subject alternative names, CA
// rights or name constraints. Nothing from the CSR but its key is ever
// copied; the refusal tells the applicant their request was not what they
// will get. The RA asks at enrollment, the CA again at issuance.
func RequestSubject(p profile.Profile, v profile.Verified, cr *x509.CertificateRequest) (pkix.Name, error) {
	subject, err := p.Subject(v)
	if err != nil {
		return pkix.Name{}, fmt.Errorf("%w: %w", ErrRequest, err)
	}
	return subject, RequestMatches(cr, subject)
}

// RequestMatches is RequestSubject's check of the CSR against a subject
// already built.
func RequestMatches(cr *x509.CertificateRequest, subject pkix.Name) error {
	if err := requestMatches(cr, subject); err != nil {
		return fmt.Errorf("%w: %w", ErrRequest, err)
	}
	return nil
}

func requestMatches(cr *x509.CertificateRequest, subject pkix.Name) error {
	if cn := cr.Subject.CommonName; cn != "" && cn != subject.CommonName {
		return fmt.Errorf("the CSR asks for subject %q; the verified subject is %q", cn, subject.CommonName)
	}
	if sn := cr.Subject.SerialNumber; sn != "" && sn != subject.SerialNumber {
		return fmt.Errorf("the CSR asks for serialNumber %q; the verified one is %q", sn, subject.SerialNumber)
	}
	for _, ext := range cr.Extensions {
		switch {
		case ext.Id.Equal(oidSubjectAltName):
			// By OID, not by crypto/x509's parsed names, which leave out
			// otherName, directoryName and others.
			return errors.New("the CSR asks for subject alternative names; the profile decides the names")
		case ext.Id.Equal(oidBasicConstraints):
			return errors.New("the CSR asks for basic constraints (CA rights); the profile decides")
		case ext.Id.Equal(oidNameConstraints):
			return errors.New("the CSR asks for name constraints; the profile decides")
		}
	}
	return nil
}

var (
	oidSubjectAltName   = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidNameConstraints  = asn1.ObjectIdentifier{2, 5, 29, 30}
)

func (ca *CA) template(p profile.Profile, subject pkix.Name, pub crypto.PublicKey, at time.Time) (*x509.Certificate, error) {
	return newTemplate(ca.d.Issuer, p, subject, pub, at)
}

// newTemplate is the end-entity certificate of profile p for subject and
// pub, issued by is at the clock's reading at, with a fresh serial: its
// validity starts at at's second, its serial's time is at's (to 256 ms, so
// that the serials of one group commit sort together; see NewSerial).
func newTemplate(is Issuer, p profile.Profile, subject pkix.Name, pub crypto.PublicKey, at time.Time) (*x509.Certificate, error) {
	serial, err := NewSerial(at)
	if err != nil {
		return nil, err
	}
	now := at.UTC().Truncate(time.Second)
	ski, err := SubjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	// A certificate's validity lies within its issuer's (RFC 5280 §6.1.3
	// does not ask it, but validators on the chain model do): an issuing
	// CA certified for a time not yet come (a ceremony's date, a clock
	// behind) issues nothing before it.
	if now.Before(is.Certificate.NotBefore) {
		return nil, fmt.Errorf("issuer %s is valid only from %s; it is %s", is.ID, is.Certificate.NotBefore.UTC().Format(time.RFC3339), now.Format(time.RFC3339))
	}
	notAfter := now.AddDate(0, 0, p.ValidityDays).Add(-time.Second)
	if notAfter.After(is.Certificate.NotAfter) {
		return nil, fmt.Errorf("issuer %s expires at %s, before a %d-day certificate would", is.ID, is.Certificate.NotAfter, p.ValidityDays)
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             now,
		NotAfter:              notAfter,
		KeyUsage:              p.KeyUsage,
		ExtKeyUsage:           p.ExtKeyUsage,
		UnknownExtKeyUsage:    p.OtherExtKeyUsage,
		BasicConstraintsValid: true,
		Policies:              p.PolicyOIDs,
		SubjectKeyId:          ski,
		CRLDistributionPoints: []string{is.CRLURL},
		OCSPServer:            []string{is.OCSPURL},
		IssuingCertificateURL: []string{is.CAIssuersURL},
	}, nil
}

// lint encodes the template's TBS, makes a certificate of it with the CA's
// lintSignature and lints that; the TBS is what the HSM will sign.
func (ca *CA) lint(tmpl *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	tbs, err := encodeTBS(tmpl, ca.d.Issuer.Certificate, pub, ca.alg)
	if err != nil {
		return nil, fmt.Errorf("build certificate: %w", err)
	}
	pre, err := assemble(tbs, ca.alg, ca.lintSignature)
	if err != nil {
		return nil, fmt.Errorf("build certificate: %w", err)
	}
	if err := ca.d.Linter.Certificate(pre); err != nil {
		return nil, fmt.Errorf("certificate refused before signing: %w", err)
	}
	return tbs, nil
}

// signTBS has the issuer's key (the HSM) sign the TBS bytes themselves and
// returns the certificate. The HSM signs exactly the bytes that were
// linted: the TBS cannot change between lint and signature.
func (ca *CA) signTBS(tbs []byte) ([]byte, error) {
	sig, err := ca.alg.sign(ca.d.Issuer.Signer, tbs)
	if err != nil {
		return nil, err
	}
	return assemble(tbs, ca.alg, sig)
}

// NewSerial is the serial of a certificate made at now (RFC 5280
// §4.1.2.2): 20 octets, the first 5 the time in units of 256 ms since 1970
// (0 before it), the other 15 from crypto/rand. With the time's top bit 0
// its DER INTEGER needs no leading zero octet, so it is at most 20 octets
// (RFC 5280's limit), positive, with 120 random bits: well above the 64 the
// CA/B Forum asks for, beyond guessing even for someone who knows when the
// certificate was made. From the year 6429 the time's top bit would be 1
// and the INTEGER 21 octets: NewSerial refuses such a time. Every
// certificate Sanad signs, in a ceremony or by issuance, gets one.
//
// The time comes first so that certificates issued together get serials
// that sort together: their rows in the indexes keyed by serial (the
// certificates' and OCSP responses' keys, certificates_serial, and
// audit_events_object for their events) go into the same few index pages,
// where fully random serials put each in a page of its own. Those indexes
// took about a third of the pages each SQLite commit wrote during
// issuance; on PostgreSQL each page first touched after a checkpoint is a
// full-page image in the WAL.
func NewSerial(now time.Time) (*big.Int, error) {
	units := uint64(max(now.UnixMilli(), 0)) >> 8
	if units >= 1<<39 {
		return nil, fmt.Errorf("serial: the time %v does not fit a 20-octet serial", now)
	}
	var b [20]byte
	binary.BigEndian.PutUint64(b[:8], units<<24)
	for {
		if _, err := rand.Read(b[5:]); err != nil {
			return nil, err
		}
		if s := new(big.Int).SetBytes(b[:]); s.Sign() > 0 {
			return s, nil
		}
	}
}

// SubjectKeyID is RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey
// BIT STRING.
func SubjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, err
	}
	sum := sha1.Sum(info.PublicKey.Bytes)
	return sum[:], nil
}

// ThrowawayKey makes an in-memory key of the issuer key's algorithm and
// size, for linting before the HSM signs: the lint signature then has the
// same algorithm, so the linted TBS is the one the HSM will sign.
func ThrowawayKey(pub crypto.PublicKey) (crypto.Signer, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		case elliptic.P384():
			return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		}
	case *rsa.PublicKey:
		return rsa.GenerateKey(rand.Reader, k.N.BitLen())
	}
	return nil, fmt.Errorf("unsupported issuer key %T", pub)
}

// newLintSignature is a signature by a throw-away key of the type of the
// issuer key pub, with alg, over bytes of its own: the signature of every
// copy of a certificate that is linted before the HSM signs.
//
// zlint never checks a certificate's signature (it has no issuer key; the
// one lint that tries keys of its own, e_cert_issued_by_compromised_emudhra_ca,
// is excluded, see lintExclusions), but it reads its length:
// e_mp_ecdsa_signature_encoding_correct takes an ECDSA signature of at
// most 72 octets for a P-256 key's and one of 73 to 104 for a P-384 key's,
// and checks the signature algorithm against that. So the signature must
// be a real one by a key of the issuer's type, as this is; over each TBS
// it would only cost an ECDSA signature per certificate, a fiftieth of an
// enrollment's CPU, and lint the same. The certificate the HSM signs is
// checked against the issuer's key (Issue).
func newLintSignature(pub crypto.PublicKey, alg signatureAlg) ([]byte, error) {
	key, err := ThrowawayKey(pub)
	if err != nil {
		return nil, err
	}
	return alg.sign(key, []byte("sanad: the signature of linted copies"))
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// SerialObject names certificate serial of issuerID in the audit log:
// "issuing/0a1b…", the serial in lower-case hex.
func SerialObject(issuerID string, serial []byte) string {
	return issuerID + "/" + hex.EncodeToString(serial)
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
