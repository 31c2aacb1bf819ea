package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	"github.com/sanadpki/sanad/internal/strictjson"
)

// jwsAlgorithms are the JWS algorithms accepted (RFC 7518 §3.1); "none"
// and the HMAC algorithms are not signatures anyone else can check.
var jwsAlgorithms = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

// jwsHeader is what this package reads from a JWS header itself: the
// certificate chain (RFC 7515 §4.1.6), its thumbprint (§4.1.8) and the
// claimed signing time (ETSI TS 119 182-1 sigT, else iat).
type jwsHeader struct {
	Alg     string      `json:"alg"`
	X5c     []string    `json:"x5c"`
	X5tS256 string      `json:"x5t#S256"`
	SigT    string      `json:"sigT"`
	Iat     json.Number `json:"iat"`
}

// jwsInput is a JWS parsed once by go-jose, its payload decoded once
// whatever the number of signatures, with what this package reads from
// each signature's headers itself, in the same order.
type jwsInput struct {
	obj      *jose.JSONWebSignature
	compact  bool
	detached bool
	sigs     []jwsSignature
}

// jwsSignature is what one signature's headers say.
type jwsSignature struct {
	protected jwsHeader
	header    jwsHeader // unprotected (JSON serialization only)
}

// VerifyJWS validates each signature of a JWS (RFC 7515) in compact or
// JSON serialization. payload is the content of a detached JWS (RFC 7515
// Appendix F, or RFC 7797 with "b64": false); given for a JWS that
// carries its payload, it must be the same bytes.
func (v *Verifier) VerifyJWS(ctx context.Context, sig, payload []byte) (*Result, error) {
	if len(sig) > MaxSignatureSize {
		return nil, ErrTooLarge
	}
	in, err := parseJWS(bytes.TrimSpace(sig), payload, v.cfg.MaxSigners)
	if err != nil {
		return v.formatFailure(FormatJWS, err.Error()), nil
	}
	res, call := &Result{Format: FormatJWS}, v.newCall()
	fetchCtx, cancel := v.fetchContext(ctx)
	defer cancel()
	for i := range in.sigs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rep := v.newReport(FormatJWS, i, call.now)
		if leaf, carried := v.checkJWSSignature(rep, in, i, payload); leaf != nil {
			v.validateSigner(fetchCtx, call, rep, leaf, carried)
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

// parseJWS parses a compact or JSON JWS. The number of signatures is
// checked before anything is decoded; "alg": "none" is refused by name.
func parseJWS(b, payload []byte, maxSigners int) (*jwsInput, error) {
	if len(b) == 0 {
		return nil, errors.New("empty JWS")
	}
	in := &jwsInput{}
	var err error
	if b[0] != '{' {
		parts := strings.Split(string(b), ".")
		if len(parts) != 3 {
			return nil, errors.New("compact JWS must have three parts")
		}
		in.compact, in.detached = true, parts[1] == ""
		var s jwsSignature
		if err := decodeHeader(parts[0], &s.protected); err != nil {
			return nil, err
		}
		if err := refuseNone(s.protected); err != nil {
			return nil, err
		}
		in.sigs = []jwsSignature{s}
		if in.detached && payload != nil {
			in.obj, err = jose.ParseDetached(string(b), payload, jwsAlgorithms)
		} else {
			in.obj, err = jose.ParseSignedCompact(string(b), jwsAlgorithms)
		}
		if err != nil {
			return nil, fmt.Errorf("JWS: %w", err)
		}
		return in, nil
	}
	// RFC 7515 §7.2: one reading of the JSON decides both what go-jose
	// verifies and what this package reports. encoding/json matches member
	// names regardless of case and keeps the last of two, where go-jose
	// reads "protected" exactly: {"protected": real, "Protected": forged}
	// had the real header's signature verified and the forged header's
	// sigT reported. Such a document is refused, and go-jose is given the
	// object as read here, not the bytes received.
	if err := strictJSON(b); err != nil {
		return nil, fmt.Errorf("JWS JSON: %w", err)
	}
	type rawSignature struct {
		Protected string          `json:"protected"`
		Header    json.RawMessage `json:"header,omitempty"`
		Signature string          `json:"signature"`
	}
	var general struct {
		Payload *string `json:"payload"`
		rawSignature
		Signatures []rawSignature `json:"signatures"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&general); err != nil {
		return nil, fmt.Errorf("JWS JSON: %w", err)
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) > 0 {
		return nil, errors.New("trailing data after the JWS JSON")
	}
	raws := general.Signatures
	switch {
	case raws != nil && (general.Signature != "" || general.Protected != "" || len(general.Header) > 0):
		return nil, errors.New("JWS JSON mixes the general and the flattened syntax")
	case raws == nil:
		raws = []rawSignature{general.rawSignature}
	case len(raws) == 0:
		return nil, errors.New("JWS JSON without signatures")
	}
	// go-jose parses at most jose.MaxSignatures (32): more is refused here,
	// in this package's words, whatever Config.MaxSigners allows.
	if limit := min(maxSigners, jose.MaxSignatures); len(raws) > limit {
		return nil, fmt.Errorf("%d signatures, more than the %d accepted", len(raws), limit)
	}
	for _, r := range raws {
		var s jwsSignature
		if err := decodeHeader(r.Protected, &s.protected); err != nil {
			return nil, err
		}
		if len(r.Header) > 0 && string(r.Header) != "null" {
			if err := json.Unmarshal(r.Header, &s.header); err != nil {
				return nil, fmt.Errorf("JWS unprotected header: %w", err)
			}
		}
		if err := refuseNone(s.protected); err != nil {
			return nil, err
		}
		in.sigs = append(in.sigs, s)
	}
	// Detached (RFC 7515 Appendix F): go-jose wants the member; the
	// content is given to DetachedVerify.
	read := struct {
		Payload    string         `json:"payload"`
		Signatures []rawSignature `json:"signatures"`
	}{Signatures: raws}
	if general.Payload == nil {
		in.detached = true
	} else {
		read.Payload = *general.Payload
	}
	if b, err = json.Marshal(read); err != nil {
		return nil, err
	}
	if in.obj, err = jose.ParseSignedJSON(string(b), jwsAlgorithms); err != nil {
		return nil, fmt.Errorf("JWS: %w", err)
	}
	if len(in.obj.Signatures) != len(in.sigs) {
		return nil, fmt.Errorf("JWS: %d signatures parsed of %d", len(in.obj.Signatures), len(in.sigs))
	}
	return in, nil
}

// jwsMemberNames are the member names of a JWS JSON serialization (RFC
// 7515 §7.2.1) and of its headers that this package reads itself.
var jwsMemberNames = []string{
	"payload", "protected", "header", "signature", "signatures",
	"alg", "x5c", "x5t#S256", "sigT", "iat",
}

// strictJSON refuses a JWS JSON document, or a header, that encoding/json
// would read otherwise than go-jose or another reader of the same bytes
// (internal/strictjson): invalid UTF-8 (replaced), a member given twice
// in one object (the last kept), and a member of jwsMemberNames in
// another spelling ("Protected", "SIGT": matched regardless of case).
func strictJSON(b []byte) error {
	if !utf8.Valid(b) {
		return errors.New("not UTF-8")
	}
	return strictjson.Members(b, strictjson.ExactNames(jwsMemberNames...))
}

func refuseNone(h jwsHeader) error {
	if strings.EqualFold(h.Alg, "none") {
		return errors.New(`"alg": "none" is not a signature`)
	}
	return nil
}

func decodeHeader(b64 string, h *jwsHeader) error {
	raw, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("JWS protected header is not base64url: %w", err)
	}
	if err := strictJSON(raw); err != nil {
		return fmt.Errorf("JWS protected header: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(h); err != nil {
		return fmt.Errorf("JWS protected header: %w", err)
	}
	return nil
}

// checkJWSSignature finds the signer's certificate of signature i in its
// x5c and verifies that signature alone with its key, over the payload.
func (v *Verifier) checkJWSSignature(rep *Report, in *jwsInput, i int, payload []byte) (*x509.Certificate, []*x509.Certificate) {
	s := in.sigs[i]
	rep.SignatureAlg = s.protected.Alg
	rep.pass("format", "JWS (RFC 7515), %s serialization, alg %s%s", map[bool]string{true: "compact", false: "JSON"}[in.compact], s.protected.Alg, map[bool]string{true: ", detached payload", false: ""}[in.detached])

	x5c := s.protected.X5c
	if len(x5c) == 0 {
		x5c = s.header.X5c
	}
	if len(x5c) == 0 {
		rep.fail("identification", Indeterminate, NoSigningCertificateFound, "the JWS has no x5c header naming the signer's certificate")
		return nil, nil
	}
	if len(x5c) > maxCertificates {
		rep.fail("format", TotalFailed, FormatFailure, "x5c holds %d certificates, more than the %d accepted (a certification path needs a few)", len(x5c), maxCertificates)
		return nil, nil
	}
	certs := make([]*x509.Certificate, 0, len(x5c))
	for i, c := range x5c {
		der, err := base64.StdEncoding.DecodeString(c) // RFC 7515 §4.1.6: base64, not base64url
		if err != nil {
			rep.fail("format", TotalFailed, FormatFailure, "x5c[%d] is not base64: %v", i, err)
			return nil, nil
		}
		cert, err := v.parseCert(der)
		if err != nil {
			rep.fail("format", TotalFailed, FormatFailure, "x5c[%d]: %v", i, err)
			return nil, nil
		}
		certs = append(certs, cert)
	}
	leaf := certs[0]
	rep.setSigner(leaf)
	if t := s.protected.X5tS256; t != "" {
		sum := sha256.Sum256(leaf.Raw)
		if t != base64.RawURLEncoding.EncodeToString(sum[:]) {
			rep.fail("identification", Indeterminate, NoSigningCertificateFound, "x5t#S256 names another certificate than x5c[0]")
			return nil, nil
		}
	}
	binding := "x5c[0] of the protected header"
	switch {
	case s.protected.X5tS256 != "":
		binding = "x5c[0], bound by x5t#S256"
	case len(s.protected.X5c) == 0:
		// RFC 7515 §7.2.1 allows it; JAdES does not. Anyone may swap
		// another certificate of the same key into an unprotected header.
		binding = "x5c[0] of the unprotected header: the signature binds its key only"
	}
	rep.pass("identification", "signer certificate %q serial %s, %s", rep.subject(leaf), serialHex(leaf.SerialNumber), binding)
	if err := readJWSTime(rep, s.protected); err != nil {
		rep.fail("format", TotalFailed, FormatFailure, "%v", err)
		return nil, nil
	}
	if why := rsaSizeProblem(leaf.PublicKey); why != "" {
		rep.fail("crypto", Indeterminate, CryptoConstraintsFailure, "%s", why)
		return nil, nil
	}
	if in.detached && payload == nil {
		rep.fail("crypto", Indeterminate, SignedDataNotFound, "detached payload and no content given")
		return nil, nil
	}
	// This signature alone: go-jose's Verify wants exactly one.
	one := *in.obj
	one.Signatures = in.obj.Signatures[i : i+1]
	var err error
	signed := payload
	if in.detached && !in.compact {
		err = one.DetachedVerify(payload, leaf.PublicKey)
	} else {
		signed, err = one.Verify(leaf.PublicKey)
	}
	if err != nil {
		rep.fail("crypto", TotalFailed, SigCryptoFailure, "the signature does not verify with the key of x5c[0]: %v", err)
		return nil, nil
	}
	if payload != nil && !bytes.Equal(signed, payload) {
		rep.fail("crypto", TotalFailed, HashFailure, "the content given is not the payload the JWS carries")
		return nil, nil
	}
	rep.pass("crypto", "%s signature verifies with the key of x5c[0]", s.protected.Alg)
	rep.setContent(signed)
	return leaf, certs[1:]
}

// readJWSTime reads the claimed signing time: sigT (ETSI TS 119 182-1
// §5.2.1, an RFC 3339 UTC time) or iat (RFC 7519 NumericDate).
func readJWSTime(rep *Report, h jwsHeader) error {
	switch {
	case h.SigT != "":
		t, err := time.Parse(time.RFC3339, h.SigT)
		if err != nil {
			return fmt.Errorf("sigT header: %w", err)
		}
		rep.SigningTime, rep.SigningTimeSource = t, "sigT header"
	case h.Iat != "":
		n, err := h.Iat.Int64()
		if err != nil || n < 0 {
			return fmt.Errorf("iat header %q is not a NumericDate", h.Iat)
		}
		rep.SigningTime, rep.SigningTimeSource = time.Unix(n, 0), "iat header"
	}
	return nil
}
