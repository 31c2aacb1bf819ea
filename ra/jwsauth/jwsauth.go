package jwsauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
)

// MaxSize bounds a signed request in its compact form: room for an RSA-4096
// certificate with ordinary extensions, its signature, and the payload.
const MaxSize = 16 << 10

// RSA moduli accepted in a signer's certificate. The upper bound is
// go-jose's own default (jose.MaxRSAModulusBits) and keeps the cost of a
// verification bounded.
const (
	minRSABits = 2048
	maxRSABits = 4096
)

// nonceBytes is how much randomness Sign puts in a nonce it makes.
const nonceBytes = 24

// Error codes: stable, the RA maps them to problem types.
const (
	CodeMalformed = "malformed" // not a compact JWS of bounded size in canonical base64url, or a header that is not a JSON object
	CodeAlgorithm = "algorithm" // alg not accepted, or not the one the certificate's key dictates
	CodeHeader    = "header"    // a header other than alg, kid and x5c; x5c not exactly one certificate; kid not its SHA-256
	CodeSignature = "signature" // the signature does not verify with the x5c certificate's key
	CodePayload   = "payload"   // the payload is not a well-formed Action
	CodeStale     = "stale"     // iat is more than maxSkew from now
	CodeAudience  = "audience"  // aud is not the endpoint the request was sent to
)

// ErrInvalid is what every refusal of a signed request Is.
var ErrInvalid = errors.New("invalid signed request")

// Error is a refusal of a signed request: Code (one of the Code constants)
// says which rule it broke, Reason explains it for the client. Reason never
// holds key material, and quotes the request only in short, checked parts.
type Error struct{ Code, Reason string }

func (e *Error) Error() string { return "invalid signed request (" + e.Code + "): " + e.Reason }

// Is makes every *Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func refuse(code, format string, args ...any) *Error {
	return &Error{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Parsed is a JWS whose signature verified with the certificate in its x5c
// header (chain and status NOT yet checked: that is the caller's job, with
// its store), and whose payload passed every syntactic check.
type Parsed struct {
	Action      Action
	Certificate *x509.Certificate
	// Fingerprint is the SHA-256 of Certificate.Raw, which is also the
	// JWS "kid": the key under which a caller records the nonce.
	Fingerprint [32]byte
	Raw         string
}

// Sign makes a compact JWS of a over signer: ES256 or ES384 for an ECDSA
// P-256 or P-384 key, PS256 for RSA (2048 to 4096 bits). The protected
// header holds exactly "alg", "kid" (lower-case hex SHA-256 of cert.Raw)
// and "x5c" ([cert], standard base64 of the DER). Sign fills in a.Nonce
// (24 bytes from crypto/rand) and a.IssuedAt (now) when they are empty,
// checks a as Parse would, and verifies its own result before returning it,
// so that a signer whose key is not the certificate's fails here rather
// than at the RA.
func Sign(a Action, cert *x509.Certificate, signer crypto.Signer, now time.Time) (string, error) {
	if cert == nil || signer == nil {
		return "", errors.New("jwsauth: sign: no certificate or no signer")
	}
	algs, err := algorithmsFor(cert.PublicKey)
	if err != nil {
		return "", fmt.Errorf("jwsauth: sign: certificate %s: %w", SerialHex(cert.SerialNumber), err)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return "", fmt.Errorf("jwsauth: sign: the signing key is not the key of certificate %s", SerialHex(cert.SerialNumber))
	}
	if a.Nonce == "" {
		var b [nonceBytes]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("jwsauth: sign: nonce: %w", err)
		}
		a.Nonce = base64.RawURLEncoding.EncodeToString(b[:])
	}
	if a.IssuedAt == 0 {
		a.IssuedAt = now.Unix()
	}
	if err := a.check(); err != nil {
		return "", fmt.Errorf("jwsauth: sign: %w", err)
	}
	payload, err := json.Marshal(a)
	if err != nil {
		return "", fmt.Errorf("jwsauth: sign: %w", err)
	}
	fp := sha256.Sum256(cert.Raw)
	opts := (&jose.SignerOptions{}).
		WithHeader("kid", hex.EncodeToString(fp[:])).
		WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(cert.Raw)})
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: algs[0], Key: cryptosigner.Opaque(signer)}, opts)
	if err != nil {
		return "", fmt.Errorf("jwsauth: sign: %w", err)
	}
	obj, err := js.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("jwsauth: sign with %s: %w", algs[0], err)
	}
	compact, err := obj.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("jwsauth: sign: %w", err)
	}
	if _, err := verify(compact); err != nil {
		return "", fmt.Errorf("jwsauth: sign: own signed request does not verify: %w", err)
	}
	return compact, nil
}

// Parse checks a signed request and returns it. It refuses, with an *Error
// whose Code says why:
//
//   - malformed: more than MaxSize bytes; the JSON serialization (only the
//     compact one, RFC 7515 §7.1, is accepted); other than three non-empty
//     parts of canonical unpadded base64url (no white space, no line breaks,
//     no non-zero spare bits); a protected header that is not one JSON
//     object of valid UTF-8 without duplicate members.
//   - algorithm: alg missing or not ES256, ES384, PS256 or RS256 (so never
//     "none" nor HMAC); alg not the one the certificate's key dictates
//     (ES256 for P-256, ES384 for P-384, PS256 or RS256 for RSA of 2048 to
//     4096 bits); a certificate key of any other kind.
//   - header: any header member besides alg, kid and x5c — in particular
//     jku, jwk, x5u (keys from elsewhere) and crit (extensions such as
//     "b64": false, which go-jose would honour); an x5c that is not exactly
//     one certificate in standard base64; a kid that is not the lower-case
//     hex SHA-256 of that certificate.
//   - signature: exactly one signature, which does not verify with the
//     certificate's public key.
//   - payload: not exactly one JSON object (valid UTF-8, case-sensitive
//     member names, no unknown or duplicate members, strings where strings
//     belong, iat an integer, nothing after it), or an Action whose fields
//     break its rules: a known action with the fields its kind needs and no
//     others (approve and show: enrollment; reject: enrollment and reason;
//     revoke: serial and reason; queue: none), a well-formed nonce, iat
//     positive, aud printable ASCII.
//   - stale: iat more than maxSkew before or after now.
//   - audience: aud not equal to audience.
//
// The signature is verified before the payload is read. Parse does not and
// cannot refuse a replay: the caller records (Fingerprint, Action.Nonce)
// atomically with the action it authorizes and refuses a pair it already
// holds. Nor does it trust the certificate: see the package documentation.
// A maxSkew that is not positive is the caller's error, not an *Error.
func Parse(compact string, audience string, now time.Time, maxSkew time.Duration) (Parsed, error) {
	if maxSkew <= 0 {
		return Parsed{}, fmt.Errorf("jwsauth: parse: maxSkew %v is not positive", maxSkew)
	}
	p, err := verify(compact)
	if err != nil {
		return Parsed{}, err
	}
	// Compare whole seconds as integers: time.Unix of an absurd iat would
	// overflow.
	lo, hi := now.Add(-maxSkew).Unix(), now.Add(maxSkew).Unix()
	if iat := p.Action.IssuedAt; iat < lo || iat > hi {
		return Parsed{}, refuse(CodeStale, "issued at %d, more than %v from the server's time %d", iat, maxSkew, now.Unix())
	}
	if p.Action.Audience != audience {
		return Parsed{}, refuse(CodeAudience, "the request is for %q, not %q", p.Action.Audience, audience)
	}
	return p, nil
}

// verify is Parse without the checks that depend on the moment and the
// endpoint: everything about the request itself.
func verify(compact string) (Parsed, error) {
	if len(compact) > MaxSize {
		return Parsed{}, refuse(CodeMalformed, "the signed request is %d bytes; at most %d", len(compact), MaxSize)
	}
	if strings.HasPrefix(strings.TrimLeft(compact, " \t\r\n"), "{") {
		return Parsed{}, refuse(CodeMalformed, "only the compact serialization of a JWS is accepted, not the JSON one")
	}
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return Parsed{}, refuse(CodeMalformed, "a compact JWS has three parts separated by dots, not %d", len(parts))
	}
	var raw [3][]byte
	for i, part := range parts {
		name := [3]string{"protected header", "payload", "signature"}[i]
		// encoding/base64 skips CR and LF even when Strict, so the alphabet
		// is checked first: one request, one spelling.
		if part == "" || strings.ContainsFunc(part, func(r rune) bool { return !isBase64URL(r) }) {
			return Parsed{}, refuse(CodeMalformed, "the %s is not non-empty unpadded base64url", name)
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(part)
		if err != nil {
			return Parsed{}, refuse(CodeMalformed, "the %s is not canonical base64url", name)
		}
		raw[i] = b
	}

	h, err := parseHeader(raw[0])
	if err != nil {
		return Parsed{}, err
	}
	algs, err := algorithmsFor(h.cert.PublicKey)
	if err != nil {
		return Parsed{}, refuse(CodeAlgorithm, "certificate key: %v", err)
	}
	if !slices.Contains(algs, h.alg) {
		return Parsed{}, refuse(CodeAlgorithm, "alg %s does not fit the certificate's key (%s)", h.alg, algs[0])
	}

	// The checks above leave go-jose one algorithm to accept and one key to
	// verify with; it is kept to what it does well, the signature itself.
	obj, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{h.alg})
	if err != nil {
		return Parsed{}, refuse(CodeMalformed, "%v", err)
	}
	if len(obj.Signatures) != 1 {
		return Parsed{}, refuse(CodeSignature, "exactly one signature is accepted")
	}
	payload, err := obj.Verify(h.cert.PublicKey)
	if err != nil {
		return Parsed{}, refuse(CodeSignature, "the signature does not verify with the key of the x5c certificate")
	}

	a, err := decodeAction(payload)
	if err != nil {
		return Parsed{}, refuse(CodePayload, "%v", err)
	}
	if err := a.check(); err != nil {
		return Parsed{}, refuse(CodePayload, "%v", err)
	}
	return Parsed{Action: a, Certificate: h.cert, Fingerprint: h.fingerprint, Raw: compact}, nil
}

// header is the checked protected header.
type header struct {
	alg         jose.SignatureAlgorithm
	cert        *x509.Certificate
	fingerprint [32]byte
}

// accepted are the algorithms Parse knows; which one a request may use
// follows from its certificate's key (algorithmsFor).
var accepted = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.PS256, jose.RS256}

// parseHeader reads the protected header. It is read here rather than left
// to go-jose so that every member is accounted for: go-jose would accept
// and pass through headers this package refuses (jku, x5u, crit with b64).
func parseHeader(b []byte) (header, error) {
	var alg, kid *string
	var x5c []string
	err := decodeObject(b, func(name string, dec *json.Decoder) error {
		switch name {
		case "alg", "kid":
			s, err := stringValue(dec, name)
			if err != nil {
				return refuse(CodeHeader, "%v", err)
			}
			if name == "alg" {
				alg = &s
			} else {
				kid = &s
			}
			return nil
		case "x5c":
			var err error
			if x5c, err = stringArray(dec); err != nil {
				return refuse(CodeHeader, "x5c: %v", err)
			}
			return nil
		case "jku", "jwk", "x5u":
			return refuse(CodeHeader, "header %q is not accepted: the key comes from the x5c certificate alone", name)
		case "crit":
			return refuse(CodeHeader, "header \"crit\" is not accepted: no JWS extension is understood")
		default:
			return refuse(CodeHeader, "header %q is not accepted (only alg, kid and x5c are)", truncate(name, 32))
		}
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return header{}, e
		}
		return header{}, refuse(CodeMalformed, "protected header: %v", err)
	}

	if alg == nil {
		return header{}, refuse(CodeAlgorithm, "the protected header has no alg")
	}
	if !slices.Contains(accepted, jose.SignatureAlgorithm(*alg)) {
		return header{}, refuse(CodeAlgorithm, "alg %q is not accepted (only ES256, ES384, PS256, RS256)", truncate(*alg, 16))
	}
	if x5c == nil {
		return header{}, refuse(CodeHeader, "the protected header has no x5c")
	}
	if len(x5c) != 1 {
		return header{}, refuse(CodeHeader, "x5c holds %d certificates; exactly one (the signer's) is accepted", len(x5c))
	}
	// RFC 7515 §4.1.6: x5c holds standard base64 (padded), not base64url.
	der, err := base64.StdEncoding.Strict().DecodeString(x5c[0])
	if err != nil || strings.ContainsAny(x5c[0], "\r\n") {
		return header{}, refuse(CodeHeader, "x5c[0] is not canonical standard base64")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return header{}, refuse(CodeHeader, "x5c[0]: %v", err)
	}
	fp := sha256.Sum256(cert.Raw)
	if kid == nil {
		return header{}, refuse(CodeHeader, "the protected header has no kid")
	}
	if *kid != hex.EncodeToString(fp[:]) {
		return header{}, refuse(CodeHeader, "kid is not the lower-case hex SHA-256 of the x5c certificate")
	}
	return header{alg: jose.SignatureAlgorithm(*alg), cert: cert, fingerprint: fp}, nil
}

// stringArray reads a JSON array of strings.
func stringArray(dec *json.Decoder) ([]string, error) {
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return nil, errors.New("not an array")
	}
	out := []string{}
	for dec.More() {
		s, err := stringValue(dec, "element")
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim(']') {
		return nil, errors.New("not an array")
	}
	return out, nil
}

// algorithmsFor returns the algorithms a key may sign requests with, the
// one Sign uses first. Fixing the algorithm by the key, not by the header,
// is what rules out algorithm confusion (RFC 8725 §2.1, §3.1).
func algorithmsFor(pub crypto.PublicKey) ([]jose.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []jose.SignatureAlgorithm{jose.ES256}, nil
		case elliptic.P384():
			return []jose.SignatureAlgorithm{jose.ES384}, nil
		}
		return nil, fmt.Errorf("ECDSA curve %s is not accepted (only P-256 and P-384)", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits || n > maxRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is not accepted (%d to %d)", n, minRSABits, maxRSABits)
		}
		return []jose.SignatureAlgorithm{jose.PS256, jose.RS256}, nil
	}
	return nil, fmt.Errorf("key type %T is not accepted (only ECDSA and RSA)", pub)
}

// truncate shortens attacker-chosen text quoted in a Reason.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
