package ceremony

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/ceremony/pinshare"
	"github.com/sanadpki/sanad/ca/ceremony/transcript"
	"github.com/sanadpki/sanad/ca/lint"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/hsm"
)

// lintConfig tells zlint that ceremony CRLs are offline root CRLs: they
// cover CA certificates only, so the CA/B Forum limit on nextUpdate is
// 12 months, not the 10 days of a subscriber CRL.
const lintConfig = `
[e_crl_next_update_invalid]
SubscriberCRL = false
`

// NewLinter returns the zlint configuration ceremonies use. No lint is
// excluded.
func NewLinter() (*lint.Linter, error) { return lint.New(lintConfig) }

// Options are what a ceremony needs besides its script.
type Options struct {
	Profiles map[string]profile.Profile
	Linter   *lint.Linter
	Now      func() time.Time
	// Shares gathers the custodian shares when the script's PIN is split:
	// files named on the command line, or no-echo prompts.
	Shares func(ctx context.Context, need int) ([]pinshare.Share, error)
	// Version of sanad, recorded in the transcript.
	Version string
}

// Result is what a ceremony made.
type Result struct {
	KeyLabel        string
	KeySHA256       string // SHA-256 of the key's SubjectPublicKeyInfo
	Certificate     *x509.Certificate
	CertificatePath string
	CRLPath         string
	RequestPath     string // a key ceremony's certificate request
	RequestSHA256   string // its SHA-256 (DER): key.request_sha256 of the ceremony that certifies the key
	TranscriptPath  string
}

// Run checks the script, then executes it against the HSM, recording every
// step in the transcript and signing the transcript with the ceremony's key.
// Nothing is overwritten: keys, outputs and the transcript must be new.
func Run(ctx context.Context, s *Script, opts Options) (Result, error) {
	now := opts.Now().UTC().Truncate(time.Second)
	if err := s.Check(opts.Profiles, now); err != nil {
		return Result{}, fmt.Errorf("%s: %w", s.Path, err)
	}
	// Everything that can be refused is checked before the transcript
	// exists — the shares, the token, the issuer key, a taken key label —
	// so a refused ceremony leaves nothing behind that blocks the retry.
	pin, unlock, err := s.pin(ctx, opts)
	if err != nil {
		return Result{}, err
	}
	mod, err := hsm.LoadModule(s.HSM.Module)
	if err != nil {
		return Result{}, err
	}
	defer mod.Close()
	tok, err := mod.OpenToken(ctx, hsm.TokenConfig{Label: s.HSM.TokenLabel, PIN: pin, MaxSessions: 2})
	if err != nil {
		return Result{}, err
	}
	defer tok.Close()
	var issuerCert *x509.Certificate
	// The keys the ceremony uses are found before the transcript begins,
	// and only if the token says they never left it and may only sign
	// (hsm.FindProtectedKey): a refusal then blocks no retry.
	var issuerKey *hsm.Key
	var issuerProtection hsm.Protection
	if s.Issuer != nil {
		if issuerCert, err = readCertificate(s.Resolve(s.Issuer.Certificate)); err != nil {
			return Result{}, err
		}
		if issuerKey, issuerProtection, err = tok.FindProtectedKey(ctx, s.Issuer.KeyLabel); err != nil {
			return Result{}, fmt.Errorf("issuer key %q: %w", s.Issuer.KeyLabel, err)
		}
		if !issuerKey.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(issuerCert.PublicKey) {
			return Result{}, fmt.Errorf("issuer key %q does not match %s", s.Issuer.KeyLabel, s.Issuer.Certificate)
		}
	}
	var existing *hsm.Key
	var existingProtection hsm.Protection
	var requested *requestedKey
	switch {
	case s.Key != nil && s.Key.Request != "":
		// Check read it, and refused the issuer's own key; read again,
		// it is the same request (key.request_sha256).
		r, err := s.readRequest()
		if err != nil {
			return Result{}, err
		}
		requested = &r
	case s.Key != nil && s.Key.Existing:
		if existing, existingProtection, err = tok.FindProtectedKey(ctx, s.Key.Label); err != nil {
			return Result{}, fmt.Errorf("key %q: %w", s.Key.Label, err)
		}
		if kt, _ := hsm.ParseKeyType(s.Key.Type); existing.Type() != kt { // Check parsed it
			return Result{}, fmt.Errorf("key %q is %s, the script says %s", s.Key.Label, existing.Type(), s.Key.Type)
		}
	case s.Key != nil:
		switch _, err := tok.FindKey(ctx, s.Key.Label); {
		case err == nil:
			return Result{}, fmt.Errorf("key %q: %w: a ceremony never replaces a key", s.Key.Label, hsm.ErrKeyExists)
		case !errors.Is(err, hsm.ErrKeyNotFound):
			return Result{}, err
		}
	}
	// A certificate the lints would refuse once the key is made is
	// refused now: a generated key and a begun transcript would block the
	// retry. A CRL is built (from the files it names) once, here, and
	// linted as it will be signed.
	var crl crlDraft
	if s.CRL != nil {
		crl, err = s.draftCRL(issuerCert, now, opts)
	} else {
		err = s.LintDraft(issuerCert, now, opts)
	}
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", s.Path, err)
	}

	res := Result{TranscriptPath: s.Resolve(s.Transcript)}
	if err := os.MkdirAll(filepath.Dir(res.TranscriptPath), 0o755); err != nil {
		return Result{}, err
	}
	tr, err := transcript.Create(res.TranscriptPath, opts.Now)
	if err != nil {
		return Result{}, err
	}
	defer tr.Close()
	sum := s.Hash()
	if err := tr.Append("ceremony-start", map[string]any{
		"ceremony": s.Ceremony, "description": s.Description, "present": s.Witnesses,
		"script": filepath.Base(s.Path), "script_sha256": hex.EncodeToString(sum[:]),
		"sanad_version": opts.Version,
	}); err != nil {
		return Result{}, err
	}
	if err := tr.Append("pin-unlock", unlock); err != nil {
		return Result{}, err
	}
	if err := tr.Append("hsm-open", map[string]any{"module": mod.Path(), "token_label": s.HSM.TokenLabel}); err != nil {
		return Result{}, err
	}
	if s.Issuer != nil {
		if err := tr.Append("issuer-use", map[string]any{
			"key_label": s.Issuer.KeyLabel, "public_key_sha256": spkiSHA256(issuerCert.PublicKey),
			"certificate_sha256": derSHA256(issuerCert.Raw), "subject": issuerCert.Subject.String(),
			"protection": issuerProtection,
		}); err != nil {
			return Result{}, err
		}
	}

	// The transcript is signed by the key this ceremony created or used
	// on its token, or else (a CRL, a key certified from its request) by
	// the issuer that signed.
	ceremonyKey := issuerKey
	var subjectKey crypto.PublicKey
	switch {
	case requested != nil:
		if err := tr.Append(stepKeyRequest, requested.facts(s)); err != nil {
			return Result{}, err
		}
		subjectKey = requested.public()
		res.KeyLabel, res.KeySHA256 = requested.label, spkiSHA256(subjectKey)
	case s.Key != nil:
		key, err := s.makeKey(ctx, tok, existing, existingProtection, tr)
		if err != nil {
			return Result{}, err
		}
		ceremonyKey, subjectKey = key, key.Public()
		res.KeyLabel, res.KeySHA256 = key.Label(), spkiSHA256(subjectKey)
	}
	if s.Request != nil {
		if res.RequestPath, res.RequestSHA256, err = s.makeRequest(ceremonyKey, tr); err != nil {
			return Result{}, err
		}
	}
	if s.Certificate != nil {
		signer, parent := crypto.Signer(ceremonyKey), issuerCert
		if s.Ceremony != KindRoot {
			signer = issuerKey
		}
		cert, path, err := s.makeCertificate(subjectKey, signer, parent, now, opts)
		if err != nil {
			return Result{}, err
		}
		res.Certificate, res.CertificatePath = cert, path
		if err := tr.Append("certificate-issue", map[string]any{
			"profile": s.Certificate.Profile, "subject": cert.Subject.String(), "serial": hex.EncodeToString(cert.SerialNumber.Bytes()),
			"not_before": cert.NotBefore, "not_after": cert.NotAfter, "certificate_sha256": derSHA256(cert.Raw),
			"public_key_sha256": spkiSHA256(cert.PublicKey), "output": s.Certificate.Output,
		}); err != nil {
			return Result{}, err
		}
	}
	if s.CRL != nil {
		if res.CRLPath, err = s.makeCRL(crl, issuerKey, issuerCert, opts, tr); err != nil {
			return Result{}, err
		}
	}
	if err := tr.Append("ceremony-end", map[string]any{"signed_by": ceremonyKey.Label(), "public_key_sha256": spkiSHA256(ceremonyKey.Public())}); err != nil {
		return Result{}, err
	}
	if err := tr.Sign(ceremonyKey); err != nil {
		return Result{}, fmt.Errorf("sign transcript: %w", err)
	}
	return res, nil
}

// pin unlocks the token PIN from the script's source and describes, for the
// transcript, how — never the PIN itself.
func (s *Script) pin(ctx context.Context, opts Options) (hsm.PIN, map[string]any, error) {
	src := s.HSM.PIN
	switch {
	case src.File != "":
		pin, err := hsm.PINFromFile(s.Resolve(src.File))
		return pin, map[string]any{"method": "file"}, err
	case src.Env != "":
		pin, err := hsm.PINFromEnv(src.Env)
		return pin, map[string]any{"method": "env", "variable": src.Env}, err
	}
	if opts.Shares == nil {
		return hsm.PIN{}, nil, errors.New("the script needs PIN shares but no way to read them was given")
	}
	shares, err := opts.Shares(ctx, src.Shares)
	if err != nil {
		return hsm.PIN{}, nil, err
	}
	if len(shares) < src.Shares {
		return hsm.PIN{}, nil, fmt.Errorf("%w: the script needs %d custodian shares, %d given", pinshare.ErrTooFewShares, src.Shares, len(shares))
	}
	pin, err := pinshare.Combine(shares)
	if err != nil {
		return hsm.PIN{}, nil, err
	}
	// Shares of another token's PIN combine into a PIN this token
	// refuses, and every refused login brings a real HSM nearer to
	// locking its user PIN: they are refused before any login (after
	// Combine, which tells a corrupted share from a foreign one).
	for _, sh := range shares {
		if sh.TokenLabel != s.HSM.TokenLabel {
			return hsm.PIN{}, nil, fmt.Errorf("%w: share %d (%s) is of token %q's PIN, the script's token is %q; no login was tried",
				pinshare.ErrMixedShares, sh.Index, sh.Custodian, sh.TokenLabel, s.HSM.TokenLabel)
		}
	}
	custodians := make([]string, len(shares))
	for i, sh := range shares {
		custodians[i] = fmt.Sprintf("%s (share %d of %d)", sh.Custodian, sh.Index, sh.Total)
	}
	return pin, map[string]any{"method": "shares", "threshold": shares[0].Threshold, "custodians": custodians}, nil
}

// makeKey generates the ceremony's key, or takes the existing one Run
// found with its protection, and records it with what the token says of
// its protection.
func (s *Script) makeKey(ctx context.Context, tok *hsm.Token, existing *hsm.Key, p hsm.Protection, tr *transcript.Writer) (*hsm.Key, error) {
	step, key := "key-use", existing
	if key == nil {
		kt, err := hsm.ParseKeyType(s.Key.Type)
		if err != nil {
			return nil, err
		}
		step = "key-generate"
		if key, err = tok.GenerateKey(ctx, hsm.KeySpec{Label: s.Key.Label, Type: kt}); err != nil {
			return nil, fmt.Errorf("generate key %q: %w", s.Key.Label, err)
		}
		if p, err = key.Protection(ctx); err == nil {
			err = p.Check(key.Type()) // generated here, this fails only with a faulty token
		}
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key.Label(), err)
		}
	}
	return key, tr.Append(step, map[string]any{
		"label": key.Label(), "type": string(key.Type()), "id": hex.EncodeToString(key.ID()),
		"public_key_sha256": spkiSHA256(key.Public()), "protection": p,
	})
}

// makeCertificate builds the certificate from the profile and the script,
// lints it signed by a throw-away key, signs it in the HSM, checks and lints
// the result, and writes it as PEM to a new file.
func (s *Script) makeCertificate(pub crypto.PublicKey, signer crypto.Signer, parent *x509.Certificate, now time.Time, opts Options) (*x509.Certificate, string, error) {
	c := s.Certificate
	p := opts.Profiles[c.Profile]
	tmpl, err := s.template(p, pub, now)
	if err != nil {
		return nil, "", err
	}
	if parent == nil {
		// RFC 5280 §4.2.1.1 lets a self-signed certificate omit the AKI;
		// it is included, equal to the SKI, as CA/B Forum roots do.
		tmpl.AuthorityKeyId = tmpl.SubjectKeyId
		parent = tmpl
	}
	if parent != tmpl {
		if err := canIssue(parent, tmpl); err != nil {
			return nil, "", fmt.Errorf("certificate for %s, before signing: %w", c.Subject.CommonName, err)
		}
	}
	// Lint first with a throw-away key of the issuer's type, so a bad
	// certificate is never signed by a real CA key.
	throwaway, err := ca.ThrowawayKey(signer.Public())
	if err != nil {
		return nil, "", err
	}
	if err := lintUnsigned(tmpl, parent, pub, throwaway, opts.Linter); err != nil {
		return nil, "", fmt.Errorf("certificate for %s, before signing: %w", c.Subject.CommonName, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, "", fmt.Errorf("sign certificate in the HSM: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "", err
	}
	issuer := parent
	if parent == tmpl {
		issuer = cert
	}
	if err := cert.CheckSignatureFrom(issuer); err != nil {
		return nil, "", fmt.Errorf("signed certificate does not verify: %w", err)
	}
	if err := opts.Linter.Certificate(der); err != nil {
		return nil, "", fmt.Errorf("certificate for %s, after signing: %w", c.Subject.CommonName, err)
	}
	path := s.Resolve(c.Output)
	return cert, path, writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// canIssue refuses a certificate its issuer may not sign, before the
// issuer's key signs anything: an issuer that is no CA or lacks
// keyCertSign, or a CA certificate under an issuer whose path length is 0.
// (Signed, each would only fail its relying parties' path validation.) A
// certificate may outlive its issuer: the dev hierarchy's audit
// certificate ends a second after its issuing CA, made a second later.
func canIssue(issuer, tmpl *x509.Certificate) error {
	name := issuer.Subject.CommonName
	switch {
	case !issuer.BasicConstraintsValid || !issuer.IsCA:
		return fmt.Errorf("the issuer %q is not a CA", name)
	case issuer.KeyUsage&x509.KeyUsageCertSign == 0:
		return fmt.Errorf("the issuer %q may not sign certificates (no keyCertSign)", name)
	case tmpl.IsCA && issuer.MaxPathLen == 0 && issuer.MaxPathLenZero:
		return fmt.Errorf("the issuer %q has path length 0: it may not certify another CA", name)
	}
	return nil
}

// lintUnsigned lints tmpl for subject key pub, signed by throwaway (a key
// of the issuer's type) instead of parent's key (tmpl itself for a root):
// what the lints see is what the HSM would sign, but no CA key has signed
// anything.
func lintUnsigned(tmpl, parent *x509.Certificate, pub crypto.PublicKey, throwaway crypto.Signer, linter *lint.Linter) error {
	var (
		pre []byte
		err error
	)
	if parent == tmpl {
		// A root must be self-signed for the lints to treat it as one, so
		// the throw-away key stands in as its subject key too.
		fake := *tmpl
		if fake.SubjectKeyId, err = ca.SubjectKeyID(throwaway.Public()); err != nil {
			return err
		}
		fake.AuthorityKeyId = fake.SubjectKeyId
		pre, err = x509.CreateCertificate(rand.Reader, &fake, &fake, throwaway.Public(), throwaway)
	} else {
		fakeParent := *parent
		fakeParent.PublicKey = throwaway.Public()
		pre, err = x509.CreateCertificate(rand.Reader, tmpl, &fakeParent, pub, throwaway)
	}
	if err != nil {
		return fmt.Errorf("build certificate: %w", err)
	}
	return linter.Certificate(pre)
}

// LintDraft lints the certificate the script would make (the ceremony's
// lints before signing) with a software key of the script's type in place
// of the key the HSM will generate (or the key of the key ceremony's
// request the script certifies): a certificate the lints refuse is
// refused before any key is made or transcript begun. issuer is the
// issuing certificate (nil for a root). A CRL is linted signed by a
// throw-away key of the issuer's type. A script with neither passes.
func (s *Script) LintDraft(issuer *x509.Certificate, now time.Time, opts Options) error {
	if s.CRL != nil && issuer != nil {
		_, err := s.draftCRL(issuer, now, opts)
		return err
	}
	if s.Certificate == nil || s.Key == nil {
		return nil
	}
	pub, standIn, err := s.draftKey()
	if err != nil {
		return err
	}
	tmpl, err := s.template(opts.Profiles[s.Certificate.Profile], pub, now)
	if err != nil {
		return err
	}
	// A root signs itself: the stand-in key is its throw-away signer too.
	parent, throwaway := issuer, standIn
	if issuer == nil {
		tmpl.AuthorityKeyId = tmpl.SubjectKeyId
		parent = tmpl
	} else {
		// An issuer that may not sign this certificate, or not today, is
		// refused here too, not only once the new key is made
		// (makeCertificate): a key on the token would block the retry.
		if err := canIssue(issuer, tmpl); err != nil {
			return err
		}
		if now.Before(issuer.NotBefore) || now.After(issuer.NotAfter) {
			return fmt.Errorf("the issuer %q is valid from %s to %s, not now", issuer.Subject.CommonName,
				issuer.NotBefore.UTC().Format(time.RFC3339), issuer.NotAfter.UTC().Format(time.RFC3339))
		}
		if throwaway, err = ca.ThrowawayKey(issuer.PublicKey); err != nil {
			return err
		}
	}
	if err := lintUnsigned(tmpl, parent, pub, throwaway, opts.Linter); err != nil {
		return fmt.Errorf("certificate for %s: %w", s.Certificate.Subject.CommonName, err)
	}
	return nil
}

// draftKey is the key LintDraft puts in the certificate: the requested key
// itself when the script certifies a key ceremony's request, else a
// stand-in of the script's key type (standIn, which also signs a root's
// draft in place of the root's key).
func (s *Script) draftKey() (pub crypto.PublicKey, standIn crypto.Signer, err error) {
	if s.Key.Request != "" {
		r, err := s.readRequest()
		if err != nil {
			return nil, nil, err
		}
		return r.public(), nil, nil
	}
	kt, err := hsm.ParseKeyType(s.Key.Type)
	if err != nil {
		return nil, nil, err
	}
	if standIn, err = kt.StandIn(); err != nil {
		return nil, nil, err
	}
	return standIn.Public(), standIn, nil
}

// CheckDraft is LintDraft with the issuer's certificate the script names,
// for sanad ceremony check, which opens no HSM. It reports whether it
// linted: there may be no certificate to make, or its issuer's may not be
// made yet (a script checked before the ceremony it follows).
func (s *Script) CheckDraft(now time.Time, opts Options) (bool, error) {
	if (s.Certificate == nil || s.Key == nil) && s.CRL == nil {
		return false, nil
	}
	var issuer *x509.Certificate
	if s.Issuer != nil {
		c, err := readCertificate(s.Resolve(s.Issuer.Certificate))
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		issuer = c
	}
	return true, s.LintDraft(issuer, now, opts)
}

func (s *Script) template(p profile.Profile, pub crypto.PublicKey, now time.Time) (*x509.Certificate, error) {
	c := s.Certificate
	notBefore := now
	if c.NotBefore != "" {
		notBefore, _ = time.Parse(time.RFC3339, c.NotBefore) // checked
	}
	serial, err := ca.NewSerial(now)
	if err != nil {
		return nil, err
	}
	ski, err := ca.SubjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               c.Subject.name(),
		NotBefore:             notBefore,
		NotAfter:              notBefore.AddDate(0, 0, c.ValidityDays).Add(-time.Second),
		KeyUsage:              p.KeyUsage,
		ExtKeyUsage:           p.ExtKeyUsage,
		UnknownExtKeyUsage:    p.OtherExtKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  p.CA,
		SubjectKeyId:          ski,
	}
	if c.PathLen != nil {
		t.MaxPathLen = *c.PathLen
		t.MaxPathLenZero = *c.PathLen == 0
	} else if p.CA {
		t.MaxPathLen = -1
	}
	for _, o := range c.PolicyOIDs {
		// Go encodes Policies (not the older PolicyIdentifiers) since 1.24.
		oid, err := x509.ParseOID(o)
		if err != nil {
			return nil, fmt.Errorf("certificate.policy_oids: %w", err)
		}
		t.Policies = append(t.Policies, oid)
	}
	if nc := c.NameConstraints; nc != nil {
		t.PermittedDNSDomainsCritical = true
		t.PermittedDNSDomains, t.ExcludedDNSDomains = nc.PermittedDNS, nc.ExcludedDNS
		t.PermittedEmailAddresses, t.ExcludedEmailAddresses = nc.PermittedEmail, nc.ExcludedEmail
	}
	if c.CRLURL != "" {
		t.CRLDistributionPoints = []string{c.CRLURL}
	}
	if c.OCSPURL != "" {
		t.OCSPServer = []string{c.OCSPURL}
	}
	if c.CAIssuersURL != "" {
		t.IssuingCertificateURL = []string{c.CAIssuersURL}
	}
	if p.OCSPNoCheck {
		// RFC 6960 §4.2.2.2.1: id-pkix-ocsp-nocheck, value NULL.
		t.ExtraExtensions = append(t.ExtraExtensions, pkix.Extension{Id: oidOCSPNoCheck, Value: asn1.NullBytes})
	}
	return t, nil
}

// name is the distinguished name the subject describes.
func (sub Subject) name() pkix.Name {
	n := pkix.Name{CommonName: sub.CommonName, Organization: []string{sub.Organization}, Country: []string{sub.Country}}
	if sub.OrganizationalUnit != "" {
		n.OrganizationalUnit = []string{sub.OrganizationalUnit}
	}
	if sub.OrganizationIdentifier != "" {
		n.ExtraNames = []pkix.AttributeTypeAndValue{{Type: profile.OIDOrganizationIdentifier, Value: sub.OrganizationIdentifier}}
	}
	return n
}

var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// crlTemplate is the CRL the script describes, issued by issuer: the
// entries it carries from the previous CRL (carried), then its own, each
// revoked certificate named by its file issuer's. It returns the previous
// CRL too (nil for the first).
func (s *Script) crlTemplate(issuer *x509.Certificate, now time.Time) (*x509.RevocationList, *x509.RevocationList, error) {
	c := s.CRL
	thisUpdate := s.crlThisUpdate(now)
	carried, ps := s.carried(issuer, thisUpdate)
	if len(ps) > 0 {
		return nil, nil, Problems(ps)
	}
	tmpl := &x509.RevocationList{
		Number:                    big.NewInt(c.Number),
		ThisUpdate:                thisUpdate,
		NextUpdate:                thisUpdate.AddDate(0, 0, c.NextUpdateDays),
		RevokedCertificateEntries: carried.keep,
	}
	for _, r := range c.Revoked {
		var serial *big.Int
		if r.Certificate != "" {
			cert, err := readCertificate(s.Resolve(r.Certificate))
			if err != nil {
				return nil, nil, err
			}
			if err := cert.CheckSignatureFrom(issuer); err != nil {
				return nil, nil, fmt.Errorf("revoked certificate %s was not issued by this CA: %w", r.Certificate, err)
			}
			serial = cert.SerialNumber
		} else {
			serial, _ = parseSerial(r.Serial) // checked
		}
		// A restated entry keeps its date, unless the script moves it
		// earlier (carried).
		at, restated := carried.revokedAt[serial.String()]
		if !restated {
			at = thisUpdate
		}
		if r.RevokedAt != "" {
			at, _ = time.Parse(time.RFC3339, r.RevokedAt) // checked
		}
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: serial, RevocationTime: at, ReasonCode: reasonCodes[r.Reason],
		})
	}
	return tmpl, carried.prev, nil
}

// crlDraft is the CRL a ceremony will sign (tmpl), and the previous CRL
// whose entries it carries (nil for the first).
type crlDraft struct{ tmpl, prev *x509.RevocationList }

// draftCRL builds the CRL the script describes and lints it signed by a
// throw-away key of the issuer's type, as lintUnsigned does a
// certificate: a CRL the lints refuse is refused before the issuer's key
// signs it.
func (s *Script) draftCRL(issuer *x509.Certificate, now time.Time, opts Options) (crlDraft, error) {
	tmpl, prev, err := s.crlTemplate(issuer, now)
	if err != nil {
		return crlDraft{}, err
	}
	throwaway, err := ca.ThrowawayKey(issuer.PublicKey)
	if err != nil {
		return crlDraft{}, err
	}
	fakeIssuer := *issuer
	fakeIssuer.PublicKey = throwaway.Public()
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, &fakeIssuer, throwaway)
	if err != nil {
		return crlDraft{}, fmt.Errorf("build CRL %d: %w", s.CRL.Number, err)
	}
	if err := opts.Linter.RevocationList(der); err != nil {
		return crlDraft{}, fmt.Errorf("CRL %d: %w", s.CRL.Number, err)
	}
	return crlDraft{tmpl, prev}, nil
}

// makeCRL signs the drafted CRL in the HSM, checks and lints it, writes it
// to a new file and records it, with the previous CRL it carries entries
// of.
func (s *Script) makeCRL(draft crlDraft, signer crypto.Signer, issuer *x509.Certificate, opts Options, tr *transcript.Writer) (string, error) {
	c, prev := s.CRL, draft.prev
	der, err := x509.CreateRevocationList(rand.Reader, draft.tmpl, issuer, signer)
	if err != nil {
		return "", fmt.Errorf("sign CRL in the HSM: %w", err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return "", err
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return "", fmt.Errorf("signed CRL does not verify: %w", err)
	}
	if err := opts.Linter.RevocationList(der); err != nil {
		return "", fmt.Errorf("CRL %d: %w", c.Number, err)
	}
	path := s.Resolve(c.Output)
	if err := writeNew(path, der, 0o644); err != nil {
		return "", err
	}
	facts := map[string]any{
		"crl_number": crl.Number.String(), "this_update": crl.ThisUpdate, "next_update": crl.NextUpdate,
		"revoked_serials": entrySerials(crl), "crl_sha256": derSHA256(crl.Raw), "output": c.Output,
	}
	if prev != nil {
		kept := map[string]bool{}
		for _, e := range crl.RevokedCertificateEntries {
			kept[e.SerialNumber.String()] = true
		}
		dropped := []string{}
		for _, e := range prev.RevokedCertificateEntries {
			if !kept[e.SerialNumber.String()] {
				dropped = append(dropped, hexSerial(e.SerialNumber))
			}
		}
		facts["previous_crl_number"], facts["previous_crl_sha256"], facts["dropped_serials"] = prev.Number.String(), derSHA256(prev.Raw), dropped
	}
	return path, tr.Append("crl-issue", facts)
}

func entrySerials(crl *x509.RevocationList) []string {
	serials := make([]string, len(crl.RevokedCertificateEntries))
	for i, e := range crl.RevokedCertificateEntries {
		serials[i] = hexSerial(e.SerialNumber)
	}
	return serials
}

func parseSerial(s string) (*big.Int, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) == 0 || len(b) > 20 || b[0] == 0 {
		return nil, errSerial
	}
	return new(big.Int).SetBytes(b), nil
}

func readCertificate(path string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", path)
	}
	return x509.ParseCertificate(block.Bytes)
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func spkiSHA256(pub crypto.PublicKey) string {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	return derSHA256(spki)
}

func derSHA256(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
