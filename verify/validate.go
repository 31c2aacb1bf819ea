package verify

import (
	"context"
	"crypto/x509"
	encasn1 "encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"time"
)

var (
	oidOrganizationIdentifier = encasn1.ObjectIdentifier{2, 5, 4, 97}
	// Extended key usages that allow signing documents: RFC 9336
	// documentSigning, emailProtection (S/MIME), Microsoft and Adobe
	// document signing.
	signingEKUs = map[string]string{
		"1.3.6.1.5.5.7.3.36":      "documentSigning",
		"1.3.6.1.4.1.311.10.3.12": "msDocumentSigning",
		"1.2.840.113583.1.1.5":    "adobeAuthenticDocumentsTrust",
	}
)

// validateSigner runs what follows the cryptographic check, in the order of
// ETSI EN 319 102-1 §5.3: chain to a trust anchor, the signing
// certificate's constraints, revocation at the claimed signing time, and
// the time checks. The worst failure decides the report (TOTAL_FAILED
// over INDETERMINATE), the first of the equally bad; later steps still
// run where they can, so that the report says all it found and a failure
// found after an indeterminate step is not hidden by it. The
// signer was identified (setSigner) by the format's own checks.
func (v *Verifier) validateSigner(ctx context.Context, call *call, rep *Report, leaf *x509.Certificate, carried []*x509.Certificate) {
	now := rep.ValidationTime
	times := []time.Time{chainTime(leaf, rep.SigningTime, now)}
	if !times[0].Equal(now) && !now.Before(leaf.NotBefore) && !now.After(leaf.NotAfter) {
		// A path valid now is the one the time checks accept, so it is
		// tried first: built as of the signing time, the path would take
		// the certificates valid then, and an issuing CA since
		// re-certified (the old certificate carried, expired; the new one
		// configured) would fail a signature that is valid, and only
		// because it claimed a time.
		times = []time.Time{now, times[0]}
	}
	c := v.chainFor(ctx, call, rep, leaf, carried, times...)
	if c != nil {
		for i, cert := range c.certs {
			rep.Chain = append(rep.Chain, ChainCert{Subject: rep.subject(cert), Serial: serialHex(cert.SerialNumber),
				NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, Source: c.sources[i], URL: c.urls[i]})
		}
	}
	v.checkConstraints(rep, leaf, c)
	if c != nil {
		v.checkRevocation(ctx, call, rep, c)
	} else {
		rep.check("revocation", NotApplicable, "no chain, so no issuer to ask")
	}
	v.checkTimes(rep, leaf, c)
}

// chainTime is the time the path is built at: the claimed signing time
// if the signer's certificate was valid then, else now if it is valid
// now, else the nearest end of its validity, so that a path is found and
// the time checks can say precisely what is wrong.
func chainTime(leaf *x509.Certificate, signingTime, now time.Time) time.Time {
	valid := func(t time.Time) bool { return !t.Before(leaf.NotBefore) && !t.After(leaf.NotAfter) }
	switch {
	case !signingTime.IsZero() && valid(signingTime):
		return signingTime
	case valid(now):
		return now
	case now.Before(leaf.NotBefore):
		return leaf.NotBefore
	default:
		return leaf.NotAfter
	}
}

// SignerConstraints is why a signature by leaf's key, a certificate of
// the national PKI (one whose path ends at Config.Roots), is no signature
// of a document to a verifier (checkConstraints,
// CHAIN_CONSTRAINTS_FAILURE): a CA certificate, a key usage without
// contentCommitment, or extended key usages none of which covers
// documents; nil if none. Signers check it before they sign (sanad sign).
func SignerConstraints(leaf *x509.Certificate) error { return signerConstraints(leaf, true) }

// signerConstraints is SignerConstraints of a national signer, or of a
// foreign one (a path to Config.ForeignRoots), whose certificate needs
// digitalSignature or contentCommitment (RFC 5280 §4.2.1.3): another PKI's
// profiles are not known here, and an S/MIME signer's certificate may have
// digitalSignature alone, an eIDAS seal's nonRepudiation alone.
//
// Sanad's signing profiles (policies/profiles: citizen-sign,
// contentCommitment; business-seal, digitalSignature and
// contentCommitment) commit to content, as ETSI EN 319 412-2 §4.3.2 asks
// of a certificate for signing documents. The national PKI's other
// certificates with a documentSigning extended key usage do not: the
// audit key's (digitalSignature alone) signs the CA's log checkpoints,
// and a checkpoint or anything else it signs is not a seal of the
// national PKI on a document.
func signerConstraints(leaf *x509.Certificate, national bool) error {
	if leaf.IsCA {
		return errors.New("the signer's certificate is a CA certificate")
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return fmt.Errorf("key usage %s allows neither digitalSignature nor contentCommitment", keyUsageNames(leaf.KeyUsage))
	}
	if ekus := ekuNames(leaf); len(ekus) > 0 && !signingEKU(leaf) {
		return fmt.Errorf("extended key usage %s does not allow signing documents", strings.Join(ekus, ", "))
	}
	if national && leaf.KeyUsage&x509.KeyUsageContentCommitment == 0 {
		return fmt.Errorf("key usage %s lacks contentCommitment, which the national PKI's signing certificates (citizen-sign, business-seal) have: its other certificates, such as the audit key's that signs the CA's log checkpoints, sign no documents", keyUsageNames(leaf.KeyUsage))
	}
	return nil
}

// checkConstraints: the signer's certificate must allow signing (RFC 5280
// §4.2.1.3 digitalSignature or contentCommitment, and contentCommitment
// for a signer of the national PKI; §4.2.1.12 an extended key usage for
// documents, when it names any) and be an end entity. Without a path, it
// is held to what any PKI's signer is.
func (v *Verifier) checkConstraints(rep *Report, leaf *x509.Certificate, c *chain) {
	national := c != nil && v.national[string(c.certs[len(c.certs)-1].Raw)]
	if err := signerConstraints(leaf, national); err != nil {
		rep.fail("constraints", Indeterminate, ChainConstraintsFailure, "%v", err)
		return
	}
	ekus := ekuNames(leaf)
	// A CA whose certificate names extended key usages passes on no other
	// (the chain was built with ExtKeyUsageAny, which lets x509 skip this).
	if c != nil {
		for _, ca := range c.certs[1:] {
			if names := ekuNames(ca); len(names) > 0 && !signingEKU(ca) {
				rep.fail("constraints", Indeterminate, ChainConstraintsFailure, "CA %q is limited to extended key usage %s, which does not cover signing documents", rep.subject(ca), strings.Join(names, ", "))
				return
			}
		}
	}
	detail := "key usage " + keyUsageNames(leaf.KeyUsage)
	if len(ekus) > 0 {
		detail += "; extended key usage " + strings.Join(ekus, ", ")
	}
	if rep.Signer != nil && rep.Signer.Profile != "" {
		detail += "; profile " + rep.Signer.Profile
	}
	detail += " allow signing"
	if c != nil && !national {
		detail += " (a signer of another PKI: digitalSignature or contentCommitment suffices)"
	}
	rep.pass("constraints", "%s", detail)
}

// signingEKU says whether a certificate's extended key usage allows
// signing documents.
func signingEKU(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageAny || u == x509.ExtKeyUsageEmailProtection {
			return true
		}
	}
	for _, u := range c.UnknownExtKeyUsage {
		if _, ok := signingEKUs[u.String()]; ok {
			return true
		}
	}
	return false
}

// checkRevocation asks for the status of every certificate of the path
// but the trust anchor, and judges it at the claimed signing time: revoked
// before it is REVOKED; revoked after it is REVOKED_NO_POE, as nothing
// but the signer's own claim says the signature existed before the
// revocation (ETSI EN 319 102-1 §5.2.6). The answers are kept in the
// report as evidence.
func (v *Verifier) checkRevocation(ctx context.Context, call *call, rep *Report, c *chain) {
	now := rep.ValidationTime
	last := len(c.certs) - 1
	rep.Chain[last].Status, rep.Chain[last].StatusSource = "trust-anchor", "trust-anchor"
	for i := 0; i < last; i++ {
		cert, issuer, entry := c.certs[i], c.certs[i+1], &rep.Chain[i]
		if now.After(cert.NotAfter) {
			// RFC 5280 §3.3 / RFC 6960: status is kept only while the
			// certificate is valid; the time check says what follows.
			entry.Status = "unknown"
			rep.check("revocation", NotApplicable, "%q expired on %s: its status is no longer published", rep.subject(cert), cert.NotAfter.UTC().Format(time.RFC3339))
			continue
		}
		key := string(cert.Raw) + string(issuer.Raw)
		answer, asked := call.statuses[key]
		if !asked {
			answer.st, answer.notes = v.statusOf(ctx, cert, issuer)
			call.statuses[key] = answer
		}
		st, notes := answer.st, answer.notes
		if st == nil {
			entry.Status = "unknown"
			rep.fail("revocation", Indeterminate, TryLater, "no revocation status for %q: %s", rep.subject(cert), strings.Join(notes, "; "))
			continue
		}
		entry.Status, entry.StatusSource, entry.StatusURL = st.state, st.source, st.url
		entry.RevokedAt, entry.Reason, entry.OCSPResponse, entry.CRLNumber = st.revokedAt, st.reason, st.ocspDER, st.crlNumber
		entry.ThisUpdate, entry.NextUpdate = st.thisUpdate, st.nextUpdate
		from := sourceName(st.source, st.url)
		if len(notes) > 0 {
			from += " (after " + strings.Join(notes, "; ") + ")"
		}
		switch st.state {
		case "good":
			rep.pass("revocation", "%q is good by %s", rep.subject(cert), from)
		case "revoked":
			at := st.revokedAt.UTC().Format(time.RFC3339)
			switch {
			case !rep.SigningTime.IsZero() && !st.revokedAt.After(rep.SigningTime):
				rep.fail("revocation", TotalFailed, Revoked, "%q was revoked at %s (%s), before the signing time, by %s", rep.subject(cert), at, st.reason, from)
			case i == 0:
				rep.fail("revocation", Indeterminate, RevokedNoPOE, "%q was revoked at %s (%s), after the claimed signing time, by %s; no proof the signature existed before", rep.subject(cert), at, st.reason, from)
			default:
				rep.fail("revocation", Indeterminate, RevokedCANoPOE, "CA %q was revoked at %s (%s), by %s", rep.subject(cert), at, st.reason, from)
			}
		default:
			said := `a signed "unknown"`
			if st.unauthorized {
				said = `"unauthorized"`
			}
			rep.fail("revocation", Indeterminate, CertificateChainGeneralFail, "%q is unknown to %s, which answered %s: its CA keeps no record of it (a CRL, which lists only revocations, is not asked)", rep.subject(cert), from, said)
		}
	}
}

// checkTimes: the claimed signing time must not be in the future nor
// outside the signer certificate's validity, and every certificate of the
// path must be valid now; without a proof of existence (a time-stamp) a
// signature whose certificate is no longer valid cannot be shown to have
// been made while it was (OUT_OF_BOUNDS_NO_POE).
func (v *Verifier) checkTimes(rep *Report, leaf *x509.Certificate, c *chain) {
	now, st := rep.ValidationTime, rep.SigningTime
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	if !st.IsZero() {
		switch {
		case st.After(now.Add(v.cfg.ClockSkew)):
			rep.fail("time", Indeterminate, SigConstraintsFailure, "the claimed signing time %s is in the future", stamp(st))
			return
		case st.Before(leaf.NotBefore):
			rep.fail("time", TotalFailed, NotYetValid, "the claimed signing time %s is before the certificate's notBefore %s", stamp(st), stamp(leaf.NotBefore))
			return
		case st.After(leaf.NotAfter):
			rep.fail("time", TotalFailed, Expired, "the claimed signing time %s is after the certificate's notAfter %s", stamp(st), stamp(leaf.NotAfter))
			return
		}
	}
	certs := []*x509.Certificate{leaf}
	if c != nil {
		certs = c.certs
	}
	for _, cert := range certs {
		switch {
		case now.After(cert.NotAfter):
			rep.fail("time", Indeterminate, OutOfBoundsNoPOE, "%q expired on %s and no proof of existence shows the signature is older", rep.subject(cert), stamp(cert.NotAfter))
			return
		case now.Before(cert.NotBefore):
			rep.fail("time", Indeterminate, NotYetValid, "%q is not valid before %s", rep.subject(cert), stamp(cert.NotBefore))
			return
		}
	}
	detail := fmt.Sprintf("every certificate of the path is valid at %s", stamp(now))
	if !st.IsZero() {
		detail = fmt.Sprintf("signing time %s within the certificate's validity; ", stamp(st)) + detail
	}
	rep.pass("time", "%s", detail)
}

// setSigner records who signed, from the certificate's subject (ETSI EN 319
// 412-2 natural persons: serialNumber with the semantics identifier; 319
// 412-3 legal persons: organizationIdentifier).
func (r *Report) setSigner(c *x509.Certificate) {
	s := &Signer{Name: c.Subject.CommonName, Subject: r.subject(c), NationalID: c.Subject.SerialNumber,
		Serial: serialHex(c.SerialNumber), Issuer: r.dn(c.RawIssuer)}
	if len(c.Subject.Organization) > 0 {
		s.Organization = c.Subject.Organization[0]
	}
	if len(c.Subject.Country) > 0 {
		s.Country = c.Subject.Country[0]
	}
	for _, n := range c.Subject.Names {
		if n.Type.Equal(oidOrganizationIdentifier) {
			s.OrganizationIdentifier, _ = n.Value.(string)
		}
	}
	s.Profile = profileOf(c, s)
	r.Signer = s
}

// profileOf names the Sanad profile (policies/profiles) a certificate
// matches by its extended key usage and subject kind: a natural person
// has a serialNumber (the semantics identifier, ETSI EN 319 412-2), a
// legal person an organizationIdentifier (319 412-3); a certificate with
// neither matches none, nor does a documentSigning one without
// contentCommitment (the CA's own audit key).
func profileOf(c *x509.Certificate, s *Signer) string {
	business := s.OrganizationIdentifier != ""
	if !business && s.NationalID == "" {
		return ""
	}
	docSigning, clientAuth := false, hasEKU(c, x509.ExtKeyUsageClientAuth)
	for _, u := range c.UnknownExtKeyUsage {
		docSigning = docSigning || signingEKUs[u.String()] == "documentSigning"
	}
	// Sanad's signing profiles commit to content (citizen-sign,
	// business-seal); the audit key's certificate, documentSigning with
	// digitalSignature alone, signs checkpoints, and is neither.
	docSigning = docSigning && c.KeyUsage&x509.KeyUsageContentCommitment != 0
	switch {
	case docSigning && business:
		return "business-seal"
	case docSigning:
		return "citizen-sign"
	case clientAuth && business:
		return "business-auth"
	case clientAuth:
		return "citizen-auth"
	}
	return ""
}

func keyUsageNames(ku x509.KeyUsage) string {
	if ku == 0 {
		return "(none stated)"
	}
	names := []string{"digitalSignature", "contentCommitment", "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"}
	var out []string
	for i, n := range names {
		if ku&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
}

func ekuNames(c *x509.Certificate) []string {
	known := map[x509.ExtKeyUsage]string{x509.ExtKeyUsageAny: "any", x509.ExtKeyUsageServerAuth: "serverAuth",
		x509.ExtKeyUsageClientAuth: "clientAuth", x509.ExtKeyUsageCodeSigning: "codeSigning",
		x509.ExtKeyUsageEmailProtection: "emailProtection", x509.ExtKeyUsageTimeStamping: "timeStamping",
		x509.ExtKeyUsageOCSPSigning: "OCSPSigning"}
	var out []string
	for _, u := range c.ExtKeyUsage {
		if n, ok := known[u]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("eku(%d)", u))
		}
	}
	for _, u := range c.UnknownExtKeyUsage {
		if n, ok := signingEKUs[u.String()]; ok {
			out = append(out, n)
		} else {
			out = append(out, u.String())
		}
	}
	return out
}
