package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	encasn1 "encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// OIDs of RFC 5652 and RFC 5035.
var (
	oidSignedData    = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidData          = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidContentType   = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningTime   = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidSigningCertV1 = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}
	oidSigningCertV2 = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	maxCertificates  = 32 // of a CMS or an x5c: a national path is three, each one a candidate issuer
	maxAttributes    = 64
	maxSignedAttrs   = 64 << 10
	// maxSignerInfos bounds the work of parsing; Config.MaxSigners (at
	// most this) is what a caller accepts.
	maxSignerInfos     = 1024
	tagExplicit0       = asn1.Tag(0).Constructed().ContextSpecific()
	tagImplicit0Prim   = asn1.Tag(0).ContextSpecific()
	tagImplicit1Constr = asn1.Tag(1).Constructed().ContextSpecific()
)

// signedData is a parsed CMS SignedData (RFC 5652 §5.1).
type signedData struct {
	eContentType encasn1.ObjectIdentifier
	content      []byte
	hasContent   bool
	certs        []*x509.Certificate
	signers      []signerInfo
}

// signerInfo is one SignerInfo (RFC 5652 §5.3).
type signerInfo struct {
	issuer    []byte // the DER Name of IssuerAndSerialNumber
	serial    *big.Int
	ski       []byte // or the SubjectKeyIdentifier
	digestAlg encasn1.ObjectIdentifier
	// signedAttrs is the DER of the signed attributes with the SET OF tag
	// the signature covers (RFC 5652 §5.4), nil when there are none.
	signedAttrs  []byte
	attrs        map[string][][]byte // attribute OID → its values (DER)
	sigAlg       encasn1.ObjectIdentifier
	sigAlgParams []byte
	signature    []byte
}

var errNotDER = errors.New("not a DER CMS ContentInfo")

// parseSignedData parses a DER ContentInfo holding a SignedData, its
// certificates with parseCert. It reads only what RFC 5652 defines, with
// DER lengths, and refuses trailing data; nothing recurses on the input's
// nesting.
func parseSignedData(der []byte, parseCert func([]byte) (*x509.Certificate, error)) (*signedData, error) {
	input := cryptobyte.String(der)
	var ci, content, sd cryptobyte.String
	var ct encasn1.ObjectIdentifier
	if !input.ReadASN1(&ci, asn1.SEQUENCE) {
		return nil, errNotDER
	}
	if !input.Empty() {
		return nil, errors.New("trailing data after the ContentInfo")
	}
	if !ci.ReadASN1ObjectIdentifier(&ct) || !ci.ReadASN1(&content, tagExplicit0) || !ci.Empty() {
		return nil, errors.New("malformed ContentInfo")
	}
	if !ct.Equal(oidSignedData) {
		return nil, fmt.Errorf("content type %s is not SignedData", ct)
	}
	if !content.ReadASN1(&sd, asn1.SEQUENCE) || !content.Empty() {
		return nil, errors.New("malformed SignedData")
	}
	out := &signedData{}
	var version int64
	var digestAlgs, eci, sis cryptobyte.String
	if !sd.ReadASN1Integer(&version) || !sd.ReadASN1(&digestAlgs, asn1.SET) || !sd.ReadASN1(&eci, asn1.SEQUENCE) {
		return nil, errors.New("malformed SignedData version, digestAlgorithms or encapContentInfo")
	}
	if version < 1 || version > 5 {
		return nil, fmt.Errorf("SignedData version %d", version)
	}
	var eContent cryptobyte.String
	if !eci.ReadASN1ObjectIdentifier(&out.eContentType) || !eci.ReadOptionalASN1(&eContent, &out.hasContent, tagExplicit0) || !eci.Empty() {
		return nil, errors.New("malformed encapContentInfo")
	}
	if out.hasContent {
		var octets cryptobyte.String
		if !eContent.ReadASN1(&octets, asn1.OCTET_STRING) || !eContent.Empty() {
			return nil, errors.New("eContent is not one DER OCTET STRING")
		}
		out.content = octets
	}
	var certs cryptobyte.String
	var hasCerts bool
	if !sd.ReadOptionalASN1(&certs, &hasCerts, tagExplicit0) {
		return nil, errors.New("malformed certificates")
	}
	for !certs.Empty() {
		var raw cryptobyte.String
		var tag asn1.Tag
		if !certs.ReadAnyASN1Element(&raw, &tag) {
			return nil, errors.New("malformed certificates")
		}
		if tag != asn1.SEQUENCE {
			continue // attribute certificates and other formats: not used here
		}
		if len(out.certs) == maxCertificates {
			return nil, fmt.Errorf("more than %d certificates, the most accepted (a certification path needs a few)", maxCertificates)
		}
		c, err := parseCert(raw)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out.certs), err)
		}
		out.certs = append(out.certs, c)
	}
	if !sd.SkipOptionalASN1(tagImplicit1Constr) || !sd.ReadASN1(&sis, asn1.SET) || !sd.Empty() {
		return nil, errors.New("malformed crls or signerInfos")
	}
	for !sis.Empty() {
		var si cryptobyte.String
		if !sis.ReadASN1(&si, asn1.SEQUENCE) {
			return nil, errors.New("malformed SignerInfo")
		}
		if len(out.signers) == maxSignerInfos {
			return nil, fmt.Errorf("more than %d signer infos", maxSignerInfos)
		}
		s, err := parseSignerInfo(si)
		if err != nil {
			return nil, fmt.Errorf("SignerInfo %d: %w", len(out.signers), err)
		}
		out.signers = append(out.signers, s)
	}
	return out, nil
}

func parseSignerInfo(si cryptobyte.String) (signerInfo, error) {
	var s signerInfo
	var version int64
	if !si.ReadASN1Integer(&version) || (version != 1 && version != 3) {
		return s, errors.New("version is not 1 or 3")
	}
	switch {
	case si.PeekASN1Tag(asn1.SEQUENCE):
		var ias cryptobyte.String
		var name cryptobyte.String
		s.serial = new(big.Int)
		if !si.ReadASN1(&ias, asn1.SEQUENCE) || !ias.ReadASN1Element(&name, asn1.SEQUENCE) || !ias.ReadASN1Integer(s.serial) || !ias.Empty() {
			return s, errors.New("malformed issuerAndSerialNumber")
		}
		s.issuer = name
	case si.PeekASN1Tag(tagImplicit0Prim):
		var ski cryptobyte.String
		if !si.ReadASN1(&ski, tagImplicit0Prim) {
			return s, errors.New("malformed subjectKeyIdentifier")
		}
		s.ski = ski
	default:
		return s, errors.New("unknown signer identifier")
	}
	var alg cryptobyte.String
	if !si.ReadASN1(&alg, asn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&s.digestAlg) {
		return s, errors.New("malformed digestAlgorithm")
	}
	if si.PeekASN1Tag(tagExplicit0) {
		var full, attrs cryptobyte.String
		if !si.ReadASN1Element(&full, tagExplicit0) {
			return s, errors.New("malformed signedAttrs")
		}
		if len(full) > maxSignedAttrs {
			return s, fmt.Errorf("signed attributes of %d bytes, more than %d", len(full), maxSignedAttrs)
		}
		// RFC 5652 §5.4: the signature covers the DER of the attributes
		// with the EXPLICIT SET OF tag, not the [0] IMPLICIT one sent.
		s.signedAttrs = append([]byte{}, full...)
		s.signedAttrs[0] = 0x31
		if !full.ReadASN1(&attrs, tagExplicit0) {
			return s, errors.New("malformed signedAttrs")
		}
		var err error
		if s.attrs, err = parseAttributes(attrs); err != nil {
			return s, err
		}
	}
	var sigAlg, signature cryptobyte.String
	if !si.ReadASN1(&sigAlg, asn1.SEQUENCE) || !sigAlg.ReadASN1ObjectIdentifier(&s.sigAlg) {
		return s, errors.New("malformed signatureAlgorithm")
	}
	s.sigAlgParams = sigAlg
	if !si.ReadASN1(&signature, asn1.OCTET_STRING) || !si.SkipOptionalASN1(tagImplicit1Constr) || !si.Empty() {
		return s, errors.New("malformed signature or unsignedAttrs")
	}
	s.signature = signature
	return s, nil
}

func parseAttributes(attrs cryptobyte.String) (map[string][][]byte, error) {
	out := map[string][][]byte{}
	for n := 0; !attrs.Empty(); n++ {
		if n == maxAttributes {
			return nil, fmt.Errorf("more than %d signed attributes", maxAttributes)
		}
		var attr, values cryptobyte.String
		var oid encasn1.ObjectIdentifier
		if !attrs.ReadASN1(&attr, asn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&oid) || !attr.ReadASN1(&values, asn1.SET) || !attr.Empty() {
			return nil, errors.New("malformed signed attribute")
		}
		key := oid.String()
		if _, dup := out[key]; dup {
			// RFC 5652 §5.3: each attribute type appears once.
			return nil, fmt.Errorf("signed attribute %s twice", key)
		}
		var vals [][]byte
		for !values.Empty() {
			var v cryptobyte.String
			var tag asn1.Tag
			if !values.ReadAnyASN1Element(&v, &tag) {
				return nil, fmt.Errorf("malformed value of signed attribute %s", key)
			}
			vals = append(vals, v)
		}
		out[key] = vals
	}
	return out, nil
}

// single returns the one value of a signed attribute.
func (s *signerInfo) single(oid encasn1.ObjectIdentifier) ([]byte, bool, error) {
	vals, ok := s.attrs[oid.String()]
	if !ok {
		return nil, false, nil
	}
	if len(vals) != 1 {
		return nil, true, fmt.Errorf("signed attribute %s has %d values, not one", oid, len(vals))
	}
	return vals[0], true, nil
}

// VerifyCMS validates every signer of a CMS SignedData given as DER, PEM or
// an S/MIME message (multipart/signed or application/pkcs7-mime). content is
// the signed content of a detached signature.
func (v *Verifier) VerifyCMS(ctx context.Context, sig, content []byte) (*Result, error) {
	if len(sig) > MaxSignatureSize {
		return nil, ErrTooLarge
	}
	der, mimeContent, err := unwrapCMS(sig)
	if err != nil {
		return v.formatFailure(FormatCMS, err.Error()), nil
	}
	sd, err := parseSignedData(der, v.parseCert)
	if err != nil {
		return v.formatFailure(FormatCMS, err.Error()), nil
	}
	// The content checked is the one the signature covers; content given
	// besides must be the same bytes, or a caller would be told that a
	// document it holds was signed when another one was.
	differs := false
	if mimeContent != nil {
		if sd.hasContent {
			// RFC 8551 §3.5: the signature part of multipart/signed is
			// detached; one with content of its own leaves the displayed
			// part unsigned.
			return v.formatFailure(FormatCMS, "multipart/signed whose signature part carries content of its own"), nil
		}
		differs = content != nil && !bytes.Equal(content, mimeContent)
		content = mimeContent
	}
	if sd.hasContent {
		differs = differs || content != nil && !bytes.Equal(content, sd.content)
		content = sd.content
	}
	switch {
	case len(sd.signers) == 0:
		return v.formatFailure(FormatCMS, "SignedData has no signer"), nil
	case len(sd.signers) > v.cfg.MaxSigners:
		return v.formatFailure(FormatCMS, fmt.Sprintf("%d signer infos, more than the %d accepted", len(sd.signers), v.cfg.MaxSigners)), nil
	}
	if sd.hasContent {
		content = sd.content
	}
	res, call := &Result{Format: FormatCMS}, v.newCall()
	fetchCtx, cancel := v.fetchContext(ctx)
	defer cancel()
	for i := range sd.signers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rep := v.newReport(FormatCMS, i, call.now)
		rep.pass("format", "CMS SignedData (RFC 5652), %d signer(s), %d certificate(s)", len(sd.signers), len(sd.certs))
		if leaf := v.checkCMSSigner(call, rep, sd, &sd.signers[i], content, differs); leaf != nil {
			v.validateSigner(fetchCtx, call, rep, leaf, sd.certs)
		}
		if rep.Indication == "" {
			rep.Indication = TotalPassed
		}
		res.Reports = append(res.Reports, rep)
	}
	// A caller that gave up is told so, not given what its going made
	// of the last report (TRY_LATER).
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.summarize()
	return res, nil
}

// checkCMSSigner identifies the signer's certificate and checks the
// digest and the signature (EN 319 102-1 §5.2.2, §5.2.7); it returns the
// certificate when both hold.
func (v *Verifier) checkCMSSigner(call *call, rep *Report, sd *signedData, s *signerInfo, content []byte, differs bool) *x509.Certificate {
	var leaf *x509.Certificate
	for _, c := range sd.certs {
		if s.serial != nil && bytes.Equal(c.RawIssuer, s.issuer) && c.SerialNumber.Cmp(s.serial) == 0 ||
			s.ski != nil && len(c.SubjectKeyId) > 0 && bytes.Equal(c.SubjectKeyId, s.ski) {
			leaf = c
			break
		}
	}
	if leaf == nil {
		rep.fail("identification", Indeterminate, NoSigningCertificateFound, "the signature does not carry the certificate its signer identifier names")
		return nil
	}
	rep.setSigner(leaf)
	bound, err := checkESS(s, leaf)
	if err != nil {
		rep.fail("identification", Indeterminate, NoSigningCertificateFound, "%v", err)
		return nil
	}
	binding := "bound by the ESS signing-certificate attribute"
	if !bound {
		// CAdES requires the attribute; plain CMS (openssl cms -sign
		// without -cades) does not have it. The signature then binds the
		// key, and another certificate for the same key would fit too.
		binding = "not bound by an ESS signing-certificate attribute: the signature binds its key only"
	}
	rep.pass("identification", "signer certificate %q serial %s, %s", rep.subject(leaf), serialHex(leaf.SerialNumber), binding)
	if s.signedAttrs == nil {
		// ETSI EN 319 122-1 §5.1 (CAdES): content-type and message-digest
		// are signed attributes of every signature; RFC 5652 §5.3 lets
		// plain CMS leave them out for id-data. Without them the signature
		// is over the content's bytes alone and says nothing of what they
		// are: any signature a key made over any bytes, for any purpose,
		// would read as a signed document (the CA's audit key signs its
		// checkpoint notes so). openssl cms -sign and sanad sign add them.
		rep.fail("format", TotalFailed, FormatFailure, "the signer info has no signed attributes: CAdES (ETSI EN 319 122-1) requires content-type and message-digest, which say that a document was signed")
		return nil
	}

	h, name, err := digestFor(s.digestAlg)
	rep.DigestAlgorithm = name
	if err != nil {
		rep.fail("crypto", Indeterminate, CryptoConstraintsFailure, "%v", err)
		return nil
	}
	if content == nil {
		rep.fail("crypto", Indeterminate, SignedDataNotFound, "detached signature and no content given")
		return nil
	}
	if differs {
		rep.fail("crypto", TotalFailed, HashFailure, "the content given is not the content the signature carries")
		return nil
	}
	if err := v.checkSignedAttrs(call, rep, sd, s, h, content); err != nil {
		return nil
	}
	algName, err := checkSignature(leaf.PublicKey, s.sigAlg, s.sigAlgParams, h, s.signedAttrs, s.signature)
	rep.SignatureAlg = algName
	if err != nil {
		var unsupported unsupportedError
		if errors.As(err, &unsupported) {
			rep.fail("crypto", Indeterminate, CryptoConstraintsFailure, "%v", err)
		} else {
			rep.fail("crypto", TotalFailed, SigCryptoFailure, "signature does not verify with the signer's key: %v", err)
		}
		return nil
	}
	rep.pass("crypto", "%s digest of the content matches; %s signature verifies", name, algName)
	rep.setContent(content)
	return leaf
}

// checkSignedAttrs checks content-type and message-digest (RFC 5652
// §11.1, §11.2) and reads signing-time (§11.3).
func (v *Verifier) checkSignedAttrs(call *call, rep *Report, sd *signedData, s *signerInfo, h crypto.Hash, content []byte) error {
	bad := func(format string, args ...any) error {
		rep.fail("format", TotalFailed, FormatFailure, format, args...)
		return errors.New("bad signed attributes")
	}
	ct, ok, err := s.single(oidContentType)
	if err != nil {
		return bad("%v", err)
	}
	var oid encasn1.ObjectIdentifier
	if cs := cryptobyte.String(ct); !ok || !cs.ReadASN1ObjectIdentifier(&oid) || !cs.Empty() || !oid.Equal(sd.eContentType) {
		return bad("content-type attribute missing or not %s", sd.eContentType)
	}
	md, ok, err := s.single(oidMessageDigest)
	if err != nil {
		return bad("%v", err)
	}
	var digest cryptobyte.String
	if cs := cryptobyte.String(md); !ok || !cs.ReadASN1(&digest, asn1.OCTET_STRING) || !cs.Empty() {
		return bad("message-digest attribute missing or malformed")
	}
	if st, ok, err := s.single(oidSigningTime); err != nil {
		return bad("%v", err)
	} else if ok {
		t, err := parseTime(st)
		if err != nil {
			return bad("signing-time attribute: %v", err)
		}
		rep.SigningTime, rep.SigningTimeSource = t, "signing-time attribute"
	}
	if !bytes.Equal(call.digest(h, content), digest) {
		rep.fail("crypto", TotalFailed, HashFailure, "the content's digest differs from the signed message-digest: the content changed after signing")
		return errors.New("hash failure")
	}
	return nil
}

// checkESS checks the ESS signing-certificate(-v2) attribute (RFC 5035,
// RFC 2634 §5.4): when present, its first certificate id is the signer's.
// bound says whether it was present.
func checkESS(s *signerInfo, leaf *x509.Certificate) (bound bool, err error) {
	for _, oid := range []encasn1.ObjectIdentifier{oidSigningCertV2, oidSigningCertV1} {
		val, ok, err := s.single(oid)
		if err != nil {
			return false, err
		}
		if !ok {
			continue
		}
		in := cryptobyte.String(val)
		var sc, ids, id cryptobyte.String
		if !in.ReadASN1(&sc, asn1.SEQUENCE) || !sc.ReadASN1(&ids, asn1.SEQUENCE) || !ids.ReadASN1(&id, asn1.SEQUENCE) {
			return true, errors.New("malformed ESS signing-certificate attribute")
		}
		h := crypto.SHA1
		if oid.Equal(oidSigningCertV2) {
			h = crypto.SHA256
			if id.PeekASN1Tag(asn1.SEQUENCE) {
				var alg cryptobyte.String
				var algOID encasn1.ObjectIdentifier
				if !id.ReadASN1(&alg, asn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&algOID) {
					return true, errors.New("malformed ESS certificate id")
				}
				if h, _, err = digestFor(algOID); err != nil {
					return true, fmt.Errorf("ESS certificate id: %w", err)
				}
			}
		}
		var certHash cryptobyte.String
		if !id.ReadASN1(&certHash, asn1.OCTET_STRING) {
			return true, errors.New("malformed ESS certificate id")
		}
		if !bytes.Equal(digest(h, leaf.Raw), certHash) {
			return true, errors.New("the ESS signing-certificate attribute names another certificate than the one found")
		}
		return true, nil
	}
	return false, nil
}

// parseTime reads a UTCTime or GeneralizedTime (RFC 5652 §11.3).
func parseTime(der []byte) (time.Time, error) {
	s := cryptobyte.String(der)
	var t time.Time
	switch {
	case s.PeekASN1Tag(asn1.UTCTime):
		if !s.ReadASN1UTCTime(&t) {
			return t, errors.New("malformed UTCTime")
		}
	case s.PeekASN1Tag(asn1.GeneralizedTime):
		if !s.ReadASN1GeneralizedTime(&t) {
			return t, errors.New("malformed GeneralizedTime")
		}
	default:
		return t, errors.New("not a time")
	}
	if !s.Empty() {
		return t, errors.New("trailing data")
	}
	return t, nil
}
