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

	"github.com/go-jose/go-jose/v4"
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

// jwsSignature is one signature of a JWS in flattened form.
type jwsSignature struct {
	serialized string // compact, or flattened JSON, for go-jose
	compact    bool
	detached   bool
	protected  jwsHeader
	header     jwsHeader // unprotected (JSON serialization only)
}

// VerifyJWS validates each signature of a JWS (RFC 7515) in compact or
// JSON serialization. payload is the content of a detached JWS (RFC 7515
// Appendix F, or RFC 7797 with "b64": false).
func (v *Verifier) VerifyJWS(ctx context.Context, sig, payload []byte) (*Result, error) {
	if len(sig) > MaxSignatureSize {
		return nil, ErrTooLarge
	}
	sigs, err := splitJWS(bytes.TrimSpace(sig))
	if err != nil {
		return v.formatFailure(FormatJWS, err.Error()), nil
	}
	if len(sigs) > v.cfg.MaxSigners {
		return v.formatFailure(FormatJWS, fmt.Sprintf("%d signatures, more than the %d accepted", len(sigs), v.cfg.MaxSigners)), nil
	}
	res := &Result{Format: FormatJWS}
	for i, s := range sigs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rep := &Report{Format: FormatJWS, Index: i, ValidationTime: v.cfg.Now(), SigningTimeSource: "none"}
		if leaf, carried := v.checkJWSSignature(rep, s, payload); leaf != nil {
			v.validateSigner(ctx, rep, leaf, carried)
		}
		if rep.Indication == "" {
			rep.Indication = TotalPassed
		}
		res.Reports = append(res.Reports, rep)
	}
	res.summarize()
	return res, nil
}

// splitJWS returns the signatures of a JWS, each as a JWS of its own.
func splitJWS(b []byte) ([]jwsSignature, error) {
	if len(b) == 0 {
		return nil, errors.New("empty JWS")
	}
	if b[0] != '{' {
		parts := strings.Split(string(b), ".")
		if len(parts) != 3 {
			return nil, errors.New("compact JWS must have three parts")
		}
		s := jwsSignature{serialized: string(b), compact: true, detached: parts[1] == ""}
		if err := decodeHeader(parts[0], &s.protected); err != nil {
			return nil, err
		}
		return []jwsSignature{s}, nil
	}
	var general struct {
		Payload    *string           `json:"payload"`
		Protected  string            `json:"protected"`
		Header     json.RawMessage   `json:"header"`
		Signature  string            `json:"signature"`
		Signatures []json.RawMessage `json:"signatures"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&general); err != nil {
		return nil, fmt.Errorf("JWS JSON: %w", err)
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) > 0 {
		return nil, errors.New("trailing data after the JWS JSON")
	}
	flat := []json.RawMessage{}
	if general.Signatures != nil {
		if general.Signature != "" || general.Protected != "" {
			return nil, errors.New("JWS JSON mixes the general and the flattened syntax")
		}
		flat = general.Signatures
	} else {
		one, _ := json.Marshal(map[string]any{"protected": general.Protected, "header": general.Header, "signature": general.Signature})
		flat = append(flat, one)
	}
	if len(flat) == 0 {
		return nil, errors.New("JWS JSON without signatures")
	}
	var out []jwsSignature
	for _, raw := range flat {
		var one struct {
			Protected string          `json:"protected"`
			Header    json.RawMessage `json:"header"`
			Signature string          `json:"signature"`
		}
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, fmt.Errorf("JWS JSON signature: %w", err)
		}
		obj := map[string]any{"protected": one.Protected, "signature": one.Signature}
		if len(one.Header) > 0 && string(one.Header) != "null" {
			obj["header"] = one.Header
		}
		if general.Payload != nil {
			obj["payload"] = *general.Payload
		} else {
			// Detached (RFC 7515 Appendix F): go-jose wants the member;
			// the content is given to DetachedVerify.
			obj["payload"] = ""
		}
		ser, _ := json.Marshal(obj)
		s := jwsSignature{serialized: string(ser), detached: general.Payload == nil}
		if err := decodeHeader(one.Protected, &s.protected); err != nil {
			return nil, err
		}
		if len(one.Header) > 0 && string(one.Header) != "null" {
			if err := json.Unmarshal(one.Header, &s.header); err != nil {
				return nil, fmt.Errorf("JWS unprotected header: %w", err)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func decodeHeader(b64 string, h *jwsHeader) error {
	raw, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("JWS protected header is not base64url: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(h); err != nil {
		return fmt.Errorf("JWS protected header: %w", err)
	}
	return nil
}

// checkJWSSignature parses one signature with go-jose, finds the signer's
// certificate in x5c and verifies the signature with its key.
func (v *Verifier) checkJWSSignature(rep *Report, s jwsSignature, payload []byte) (*x509.Certificate, []*x509.Certificate) {
	if strings.EqualFold(s.protected.Alg, "none") {
		rep.fail("format", TotalFailed, FormatFailure, `"alg": "none" is not a signature`)
		return nil, nil
	}
	if !s.detached {
		payload = nil // the JWS carries its payload
	}
	var obj *jose.JSONWebSignature
	var err error
	switch {
	case s.compact && s.detached && payload != nil:
		obj, err = jose.ParseDetached(s.serialized, payload, jwsAlgorithms)
	case s.compact:
		obj, err = jose.ParseSignedCompact(s.serialized, jwsAlgorithms)
	default:
		obj, err = jose.ParseSignedJSON(s.serialized, jwsAlgorithms)
	}
	if err != nil {
		rep.fail("format", TotalFailed, FormatFailure, "JWS: %v", err)
		return nil, nil
	}
	rep.SignatureAlg = s.protected.Alg
	rep.pass("format", "JWS (RFC 7515), %s serialization, alg %s%s", map[bool]string{true: "compact", false: "JSON"}[s.compact], s.protected.Alg, map[bool]string{true: ", detached payload", false: ""}[s.detached])

	x5c := s.protected.X5c
	if len(x5c) == 0 {
		x5c = s.header.X5c
	}
	if len(x5c) == 0 {
		rep.fail("identification", Indeterminate, NoSigningCertificateFound, "the JWS has no x5c header naming the signer's certificate")
		return nil, nil
	}
	if len(x5c) > maxCertificates {
		rep.fail("format", TotalFailed, FormatFailure, "x5c holds %d certificates", len(x5c))
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
	rep.Signer = signerOf(leaf)
	if t := s.protected.X5tS256; t != "" {
		sum := sha256.Sum256(leaf.Raw)
		if t != base64.RawURLEncoding.EncodeToString(sum[:]) {
			rep.fail("identification", Indeterminate, NoSigningCertificateFound, "x5t#S256 names another certificate than x5c[0]")
			return nil, nil
		}
	}
	rep.pass("identification", "signer certificate %q serial %s (x5c[0]%s)", leaf.Subject, serialHex(leaf.SerialNumber), map[bool]string{true: ", unprotected header", false: ""}[len(s.protected.X5c) == 0])
	if err := readJWSTime(rep, s.protected); err != nil {
		rep.fail("format", TotalFailed, FormatFailure, "%v", err)
		return nil, nil
	}
	if s.detached && payload == nil {
		rep.fail("crypto", Indeterminate, SignedDataNotFound, "detached payload and no content given")
		return nil, nil
	}
	if s.detached && !s.compact {
		err = obj.DetachedVerify(payload, leaf.PublicKey)
	} else {
		_, err = obj.Verify(leaf.PublicKey)
	}
	if err != nil {
		rep.fail("crypto", TotalFailed, SigCryptoFailure, "the signature does not verify with the key of x5c[0]: %v", err)
		return nil, nil
	}
	rep.pass("crypto", "%s signature verifies with the key of x5c[0]", s.protected.Alg)
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
