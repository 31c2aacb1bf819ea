package jwsauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math"
	"math/big"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/sanadpki/sanad/internal/testenv"
)

func TestSignParseRoundTrip(t *testing.T) {
	actions := []Action{
		{Action: ActionApprove, Enrollment: "q3J8yq0mTnOE2w_Zc1Vf-A"},
		{Action: ActionReject, Enrollment: "q3J8yq0mTnOE2w_Zc1Vf-A", Reason: "الاسم لا يطابق السجل <b>&</b> \"quoted\""},
		{Action: ActionShow, Enrollment: "abc"},
		{Action: ActionQueue},
		{Action: ActionFind, Subject: "IDCKZ-880312448217"},
		{Action: ActionFind, Subject: "NTRPK-32778761"},
		{Action: ActionRevoke, Serial: "0A1B2C", Reason: "keyCompromise"},
		{Action: ActionRenew, Serial: "0A1B2C", CSR: "MIIBAA"},
		{Action: ActionApprove, Enrollment: "x", Nonce: testNonce, IssuedAt: testNow.Unix() - 60},
	}
	for _, kind := range []struct{ id, alg string }{{"P-256", "ES256"}, {"P-384", "ES384"}, {"RSA-3072", "PS256"}} {
		id := identities(t)[kind.id]
		for _, a := range actions {
			t.Run(kind.id+"/"+a.Action, func(t *testing.T) {
				a.Audience = testAudience
				compact, err := Sign(a, id.cert, id.key, testNow)
				if err != nil {
					t.Fatal(err)
				}
				p, err := Parse(compact, testAudience, testNow, testSkew)
				if err != nil {
					t.Fatal(err)
				}
				want := a
				if want.Nonce == "" {
					want.Nonce = p.Action.Nonce
					if len(p.Action.Nonce) != 32 {
						t.Errorf("made nonce %q, want 32 characters", p.Action.Nonce)
					}
				}
				if want.IssuedAt == 0 {
					want.IssuedAt = testNow.Unix()
				}
				if p.Action != want {
					t.Errorf("action\n got %+v\nwant %+v", p.Action, want)
				}
				if !p.Certificate.Equal(id.cert) || p.Fingerprint != sha256.Sum256(id.cert.Raw) || p.Raw != compact {
					t.Error("certificate, fingerprint or raw differs")
				}
				checkIndependently(t, compact, kind.alg, id.cert)
			})
		}
	}
}

// checkIndependently reads a signed request with encoding/json and crypto
// alone: the header holds alg, kid and x5c and nothing else, and the
// signature verifies over the signing input.
func checkIndependently(t testing.TB, compact, alg string, cert *x509.Certificate) {
	t.Helper()
	hb, _, sig := parts(t, compact)
	var hdr map[string]any
	if err := json.Unmarshal(hb, &hdr); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"alg": alg, "kid": kidOf(cert), "x5c": []any{base64.StdEncoding.EncodeToString(cert.Raw)}}
	if !reflect.DeepEqual(hdr, want) {
		t.Errorf("header %v, want %v", hdr, want)
	}
	input := []byte(compact[:strings.LastIndexByte(compact, '.')])
	d256, d384 := sha256.Sum256(input), sha512.Sum384(input)
	var err error
	switch alg {
	case "ES256", "ES384":
		digest := d256[:]
		if alg == "ES384" {
			digest = d384[:]
		}
		n := len(sig) / 2
		if !ecdsa.Verify(cert.PublicKey.(*ecdsa.PublicKey), digest, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])) {
			err = errors.New("ECDSA signature does not verify")
		}
	case "PS256":
		err = rsa.VerifyPSS(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, d256[:], sig, nil)
	case "RS256":
		err = rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, d256[:], sig)
	default:
		err = errors.New("unknown alg " + alg)
	}
	if err != nil {
		t.Errorf("%s signature: %v", alg, err)
	}
}

// TestSignOpenSSL has openssl judge Sign's signatures.
func TestSignOpenSSL(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	for _, name := range []string{"P-256", "P-384", "RSA-3072"} {
		t.Run(name, func(t *testing.T) {
			id := identities(t)[name]
			a := validAction()
			a.Nonce = ""
			compact, err := Sign(a, id.cert, id.key, testNow)
			if err != nil {
				t.Fatal(err)
			}
			_, _, sig := parts(t, compact)
			dir := t.TempDir()
			input := filepath.Join(dir, "input")
			pub := filepath.Join(dir, "pub.pem")
			sigFile := filepath.Join(dir, "sig")
			spki, _ := x509.MarshalPKIXPublicKey(id.cert.PublicKey)
			write(t, input, []byte(compact[:strings.LastIndexByte(compact, '.')]), 0o600)
			write(t, pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), 0o600)
			args := []string{"dgst", "-verify", pub, "-signature", sigFile}
			switch name {
			case "P-256", "P-384":
				// JWS carries r||s (RFC 7518 §3.4); openssl wants DER.
				n := len(sig) / 2
				der, _ := asn1Sig(sig[:n], sig[n:])
				write(t, sigFile, der, 0o600)
				if name == "P-256" {
					args = append(args, "-sha256")
				} else {
					args = append(args, "-sha384")
				}
			default:
				write(t, sigFile, sig, 0o600)
				args = append(args, "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:auto")
			}
			out, err := exec.Command(openssl, append(args, input)...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Verified OK") {
				t.Fatalf("openssl %v: %v\n%s", args, err, out)
			}
		})
	}
}

func TestParseRefusals(t *testing.T) {
	all := identities(t)
	p256, p384, rsa3072 := all["P-256"], all["P-384"], all["RSA-3072"]
	other := all["other-P-256"]
	good := func(t *testing.T) string {
		s, err := Sign(validAction(), p256.cert, p256.key, testNow)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// withHeader signs validAction under the P-256 key with an altered header.
	withHeader := func(alter func(h map[string]any)) func(t *testing.T) string {
		return func(t *testing.T) string {
			h := headerFor(p256.cert, "ES256")
			alter(h)
			return forge(t, h, mustJSON(validAction()), "ES256", p256.key, nil)
		}
	}
	// withPayload signs payload correctly under the P-256 key.
	withPayload := func(payload string) func(t *testing.T) string {
		return func(t *testing.T) string {
			return forge(t, headerFor(p256.cert, "ES256"), []byte(payload), "ES256", p256.key, nil)
		}
	}
	// withAction signs an altered validAction.
	withAction := func(alter func(a *Action)) func(t *testing.T) string {
		return func(t *testing.T) string {
			a := validAction()
			alter(&a)
			return forge(t, headerFor(p256.cert, "ES256"), mustJSON(a), "ES256", p256.key, nil)
		}
	}
	// payloadJSON is validAction as JSON with replace applied.
	payloadJSON := func(old, new string) string {
		s := string(mustJSON(validAction()))
		if !strings.Contains(s, old) {
			panic("payloadJSON: no " + old)
		}
		return strings.Replace(s, old, new, 1)
	}
	jsonSerialization := func(flat bool) func(t *testing.T) string {
		return func(t *testing.T) string {
			opts := (&jose.SignerOptions{}).WithHeader("kid", kidOf(p256.cert)).
				WithHeader("x5c", []string{base64.StdEncoding.EncodeToString(p256.cert.Raw)})
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: cryptosigner.Opaque(p256.key)}, opts)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := s.Sign(mustJSON(validAction()))
			if err != nil {
				t.Fatal(err)
			}
			if flat {
				var full map[string]any
				_ = json.Unmarshal([]byte(obj.FullSerialize()), &full)
				return string(mustJSON(full))
			}
			return obj.FullSerialize()
		}
	}
	publicKeyPEM := func(c *x509.Certificate) []byte {
		der, _ := x509.MarshalPKIXPublicKey(c.PublicKey)
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}

	tests := []struct {
		name     string
		compact  func(t *testing.T) string
		audience string // testAudience if empty
		want     string
	}{
		// The signature.
		{"tampered payload", func(t *testing.T) string {
			p := strings.Split(good(t), ".")
			a := validAction()
			a.Enrollment = "someone-else"
			p[1] = b64(mustJSON(a))
			return strings.Join(p, ".")
		}, "", CodeSignature},
		{"tampered signature", func(t *testing.T) string {
			h, pl, sig := parts(t, good(t))
			sig[10] ^= 0x01
			return b64(h) + "." + b64(pl) + "." + b64(sig)
		}, "", CodeSignature},
		{"truncated signature", func(t *testing.T) string {
			h, pl, sig := parts(t, good(t))
			return b64(h) + "." + b64(pl) + "." + b64(sig[:63])
		}, "", CodeSignature},
		{"signed by another key than x5c's", func(t *testing.T) string {
			return forge(t, headerFor(p256.cert, "ES256"), mustJSON(validAction()), "ES256", other.key, nil)
		}, "", CodeSignature},
		{"header swapped onto another signature", func(t *testing.T) string {
			o, err := Sign(validAction(), other.cert, other.key, testNow)
			if err != nil {
				t.Fatal(err)
			}
			mine := strings.Split(good(t), ".")
			theirs := strings.Split(o, ".")
			return mine[0] + "." + mine[1] + "." + theirs[2]
		}, "", CodeSignature},

		// The algorithm.
		{"alg none", withHeader(func(h map[string]any) { h["alg"] = "none" }), "", CodeAlgorithm},
		{"alg None", withHeader(func(h map[string]any) { h["alg"] = "None" }), "", CodeAlgorithm},
		{"alg none, empty signature", func(t *testing.T) string {
			return b64(mustJSON(map[string]any{"alg": "none"})) + "." + b64(mustJSON(validAction())) + "."
		}, "", CodeMalformed},
		{"HS256 keyed with the public key DER", func(t *testing.T) string {
			der, _ := x509.MarshalPKIXPublicKey(p256.cert.PublicKey)
			return forge(t, headerFor(p256.cert, "HS256"), mustJSON(validAction()), "HS256", nil, der)
		}, "", CodeAlgorithm},
		{"HS256 keyed with the public key PEM (RSA)", func(t *testing.T) string {
			return forge(t, headerFor(rsa3072.cert, "HS256"), mustJSON(validAction()), "HS256", nil, publicKeyPEM(rsa3072.cert))
		}, "", CodeAlgorithm},
		{"alg missing", withHeader(func(h map[string]any) { delete(h, "alg") }), "", CodeAlgorithm},
		{"alg not a string", withHeader(func(h map[string]any) { h["alg"] = 256 }), "", CodeHeader},
		{"ES256 header over an RSA key", func(t *testing.T) string {
			return forge(t, headerFor(rsa3072.cert, "ES256"), mustJSON(validAction()), "ES256", p256.key, nil)
		}, "", CodeAlgorithm},
		{"RS256 header over a P-256 key", func(t *testing.T) string {
			return forge(t, headerFor(p256.cert, "RS256"), mustJSON(validAction()), "RS256", rsa3072.key, nil)
		}, "", CodeAlgorithm},
		{"ES384 header over a P-256 key", func(t *testing.T) string {
			return forge(t, headerFor(p256.cert, "ES384"), mustJSON(validAction()), "ES384", p384.key, nil)
		}, "", CodeAlgorithm},
		{"ES256 header over a P-384 key", func(t *testing.T) string {
			return forge(t, headerFor(p384.cert, "ES256"), mustJSON(validAction()), "ES256", p256.key, nil)
		}, "", CodeAlgorithm},
		{"PS384 not accepted", func(t *testing.T) string {
			return forge(t, headerFor(rsa3072.cert, "PS384"), mustJSON(validAction()), "PS256", rsa3072.key, nil)
		}, "", CodeAlgorithm},
		{"EdDSA not accepted", func(t *testing.T) string {
			return forge(t, headerFor(all["Ed25519"].cert, "EdDSA"), mustJSON(validAction()), "none", nil, nil)
		}, "", CodeAlgorithm},
		{"Ed25519 certificate under ES256", func(t *testing.T) string {
			return forge(t, headerFor(all["Ed25519"].cert, "ES256"), mustJSON(validAction()), "ES256", p256.key, nil)
		}, "", CodeAlgorithm},
		{"P-521 certificate", func(t *testing.T) string {
			return forge(t, headerFor(all["P-521"].cert, "ES256"), mustJSON(validAction()), "ES256", p256.key, nil)
		}, "", CodeAlgorithm},
		{"RSA-1024 certificate", func(t *testing.T) string {
			id := all["RSA-1024"]
			return forge(t, headerFor(id.cert, "PS256"), mustJSON(validAction()), "PS256", id.key, nil)
		}, "", CodeAlgorithm},

		// The header.
		{"kid of another certificate", withHeader(func(h map[string]any) { h["kid"] = kidOf(other.cert) }), "", CodeHeader},
		{"kid in upper case", withHeader(func(h map[string]any) { h["kid"] = strings.ToUpper(kidOf(p256.cert)) }), "", CodeHeader},
		{"kid missing", withHeader(func(h map[string]any) { delete(h, "kid") }), "", CodeHeader},
		{"two certificates in x5c", withHeader(func(h map[string]any) {
			h["x5c"] = []string{base64.StdEncoding.EncodeToString(p256.cert.Raw), base64.StdEncoding.EncodeToString(other.cert.Raw)}
		}), "", CodeHeader},
		{"empty x5c", withHeader(func(h map[string]any) { h["x5c"] = []string{} }), "", CodeHeader},
		{"x5c missing", withHeader(func(h map[string]any) { delete(h, "x5c") }), "", CodeHeader},
		{"x5c not a certificate", withHeader(func(h map[string]any) { h["x5c"] = []string{"MAA="} }), "", CodeHeader},
		{"x5c a string, not an array", withHeader(func(h map[string]any) { h["x5c"] = base64.StdEncoding.EncodeToString(p256.cert.Raw) }), "", CodeHeader},
		{"jwk header", withHeader(func(h map[string]any) {
			h["jwk"] = jose.JSONWebKey{Key: p256.cert.PublicKey}
		}), "", CodeHeader},
		{"jwk header alone, no x5c", withHeader(func(h map[string]any) {
			delete(h, "x5c")
			delete(h, "kid")
			h["jwk"] = jose.JSONWebKey{Key: p256.cert.PublicKey}
		}), "", CodeHeader},
		{"jku header", withHeader(func(h map[string]any) { h["jku"] = "https://attacker.example/jwks.json" }), "", CodeHeader},
		{"x5u header", withHeader(func(h map[string]any) { h["x5u"] = "https://attacker.example/cert.pem" }), "", CodeHeader},
		{"crit header", withHeader(func(h map[string]any) { h["crit"] = []string{"exp"} }), "", CodeHeader},
		{"crit header with b64 false", withHeader(func(h map[string]any) { h["crit"] = []string{"b64"}; h["b64"] = false }), "", CodeHeader},
		{"typ header", withHeader(func(h map[string]any) { h["typ"] = "JWT" }), "", CodeHeader},
		{"duplicate alg", func(t *testing.T) string {
			h := strings.Replace(string(mustJSON(headerFor(p256.cert, "ES256"))), `{"alg":"ES256",`, `{"alg":"HS256","alg":"ES256",`, 1)
			return forge(t, h, mustJSON(validAction()), "ES256", p256.key, nil)
		}, "", CodeMalformed},
		{"header not JSON", func(t *testing.T) string {
			return forge(t, "alg=ES256", mustJSON(validAction()), "ES256", p256.key, nil)
		}, "", CodeMalformed},
		{"header a JSON array", func(t *testing.T) string {
			return forge(t, `["ES256"]`, mustJSON(validAction()), "ES256", p256.key, nil)
		}, "", CodeMalformed},

		// The serialization.
		{"JSON serialization", jsonSerialization(false), "", CodeMalformed},
		{"JSON serialization, re-marshalled", jsonSerialization(true), "", CodeMalformed},
		{"two parts", func(t *testing.T) string {
			p := strings.Split(good(t), ".")
			return p[0] + "." + p[1]
		}, "", CodeMalformed},
		{"four parts", func(t *testing.T) string { return good(t) + ".AAAA" }, "", CodeMalformed},
		{"detached payload", func(t *testing.T) string {
			p := strings.Split(good(t), ".")
			return p[0] + ".." + p[2]
		}, "", CodeMalformed},
		{"line break", func(t *testing.T) string {
			s := good(t)
			return s[:20] + "\n" + s[20:]
		}, "", CodeMalformed},
		{"trailing newline", func(t *testing.T) string { return good(t) + "\n" }, "", CodeMalformed},
		{"padding", func(t *testing.T) string {
			p := strings.Split(good(t), ".")
			return p[0] + "." + base64.URLEncoding.EncodeToString(mustJSON(validAction())) + "==." + p[2]
		}, "", CodeMalformed},
		{"standard base64 alphabet", func(t *testing.T) string {
			p := strings.Split(good(t), ".")
			sig, _ := base64.RawURLEncoding.DecodeString(p[2])
			for !strings.ContainsAny(base64.RawStdEncoding.EncodeToString(sig), "+/") {
				sig[0]++
			}
			return p[0] + "." + p[1] + "." + base64.RawStdEncoding.EncodeToString(sig)
		}, "", CodeMalformed},
		{"non-canonical base64 (spare bits set)", func(t *testing.T) string {
			p := strings.Split(good(t), ".")
			// 64 signature bytes are 86 characters, the last carrying 2
			// bits and 4 spare ones; setting a spare bit keeps the bytes.
			last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", p[2][85])
			p[2] = p[2][:85] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])
			return strings.Join(p, ".")
		}, "", CodeMalformed},
		{"oversize", func(t *testing.T) string {
			h := headerFor(p256.cert, "ES256")
			a := validAction()
			a.Reason = strings.Repeat("x", MaxSize)
			return forge(t, h, mustJSON(a), "ES256", p256.key, nil)
		}, "", CodeMalformed},
		{"empty", func(t *testing.T) string { return "" }, "", CodeMalformed},

		// The payload.
		{"unknown payload member", withPayload(payloadJSON(`"action":`, `"role":"admin","action":`)), "", CodePayload},
		{"member name in another case", withPayload(payloadJSON(`"action":`, `"Action":`)), "", CodePayload},
		{"duplicate payload member", withPayload(payloadJSON(`"action":"approve"`, `"action":"revoke","action":"approve"`)), "", CodePayload},
		{"trailing data", withPayload(payloadJSON(`}`, `}x`)), "", CodePayload},
		{"second JSON value", withPayload(payloadJSON(`}`, `}{}`)), "", CodePayload},
		{"payload an array", withPayload(`[]`), "", CodePayload},
		{"payload not UTF-8", withPayload(payloadJSON(`"approve"`, "\"appr\xffove\"")), "", CodePayload},
		{"null enrollment", withPayload(payloadJSON(`"q3J8yq0mTnOE2w_Zc1Vf-A"`, `null`)), "", CodePayload},
		{"iat as a string", withPayload(payloadJSON(`"iat":1800000000`, `"iat":"1800000000"`)), "", CodePayload},
		{"iat with a fraction", withPayload(payloadJSON(`"iat":1800000000`, `"iat":1800000000.5`)), "", CodePayload},
		{"iat with an exponent", withPayload(payloadJSON(`"iat":1800000000`, `"iat":1.8e9`)), "", CodePayload},
		{"iat missing", withPayload(payloadJSON(`,"iat":1800000000`, ``)), "", CodePayload},
		{"missing nonce", withAction(func(a *Action) { a.Nonce = "" }), "", CodePayload},
		{"short nonce (15 bytes)", withAction(func(a *Action) { a.Nonce = b64(make([]byte, 15)) }), "", CodePayload},
		{"nonce of 21 characters", withAction(func(a *Action) { a.Nonce = testNonce[:21] }), "", CodePayload},
		{"nonce too long", withAction(func(a *Action) { a.Nonce = b64(make([]byte, 49)) }), "", CodePayload},
		{"nonce padded", withAction(func(a *Action) { a.Nonce = base64.URLEncoding.EncodeToString(make([]byte, 17)) }), "", CodePayload},
		{"nonce in standard base64", withAction(func(a *Action) { a.Nonce = "+/+/+/+/+/+/+/+/+/+/+/+/" }), "", CodePayload},
		{"nonce with spare bits set", withAction(func(a *Action) { a.Nonce = strings.Repeat("A", 21) + "B" }), "", CodePayload},
		{"audience missing", withAction(func(a *Action) { a.Audience = "" }), "", CodePayload},
		{"unknown action", withAction(func(a *Action) { a.Action = "hold" }), "", CodePayload},
		{"action in upper case", withAction(func(a *Action) { a.Action = "APPROVE" }), "", CodePayload},
		{"approve without enrollment", withAction(func(a *Action) { a.Enrollment = "" }), "", CodePayload},
		{"approve with a serial", withAction(func(a *Action) { a.Serial = "01" }), "", CodePayload},
		{"approve with a reason", withAction(func(a *Action) { a.Reason = "fine" }), "", CodePayload},
		{"approve with a csr", withAction(func(a *Action) { a.CSR = "MIIBAA" }), "", CodePayload},
		{"renew without csr", withAction(func(a *Action) { a.Action, a.Enrollment, a.Serial = ActionRenew, "", "0A1B2C" }), "", CodePayload},
		{"renew without serial", withAction(func(a *Action) { a.Action, a.Enrollment, a.CSR = ActionRenew, "", "MIIBAA" }), "", CodePayload},
		{"renew with a reason", withAction(func(a *Action) {
			a.Action, a.Enrollment, a.Serial, a.CSR, a.Reason = ActionRenew, "", "0A1B2C", "MIIBAA", "superseded"
		}), "", CodePayload},
		{"renew csr padded", withAction(func(a *Action) { a.Action, a.Enrollment, a.Serial, a.CSR = ActionRenew, "", "0A1B2C", "MIIBAA==" }), "", CodePayload},
		{"renew csr in standard base64", withAction(func(a *Action) { a.Action, a.Enrollment, a.Serial, a.CSR = ActionRenew, "", "0A1B2C", "MII+/w" }), "", CodePayload},
		{"renew csr with spare bits set", withAction(func(a *Action) { a.Action, a.Enrollment, a.Serial, a.CSR = ActionRenew, "", "0A1B2C", "MIIBAB" }), "", CodePayload},
		{"renew csr too long", withAction(func(a *Action) {
			a.Action, a.Enrollment, a.Serial, a.CSR = ActionRenew, "", "0A1B2C", strings.Repeat("A", MaxCSRChars+4)
		}), "", CodePayload},
		{"enrollment id with a slash", withAction(func(a *Action) { a.Enrollment = "../etc" }), "", CodePayload},
		{"enrollment id too long", withAction(func(a *Action) { a.Enrollment = strings.Repeat("a", 65) }), "", CodePayload},
		{"show without enrollment", withAction(func(a *Action) { a.Action, a.Enrollment = ActionShow, "" }), "", CodePayload},
		{"queue with enrollment", withAction(func(a *Action) { a.Action = ActionQueue }), "", CodePayload},
		{"find subject null", withPayload(payloadJSON(`"action":"approve","enrollment":"q3J8yq0mTnOE2w_Zc1Vf-A"`, `"action":"find","subject":null`)), "", CodePayload},
		{"find subject a number", withPayload(payloadJSON(`"action":"approve","enrollment":"q3J8yq0mTnOE2w_Zc1Vf-A"`, `"action":"find","subject":880312448217`)), "", CodePayload},
		{"find subject twice", withPayload(payloadJSON(`"action":"approve","enrollment":"q3J8yq0mTnOE2w_Zc1Vf-A"`,
			`"action":"find","subject":"IDCKZ-880312448217","subject":"IDCKZ-990101300123"`)), "", CodePayload},
		{"find without subject", withAction(func(a *Action) { a.Action, a.Enrollment = ActionFind, "" }), "", CodePayload},
		{"find with an enrollment", withAction(func(a *Action) { a.Action, a.Subject = ActionFind, "IDCKZ-880312448217" }), "", CodePayload},
		{"show with a subject", withAction(func(a *Action) { a.Action, a.Subject = ActionShow, "IDCKZ-880312448217" }), "", CodePayload},
		{"find subject in lower case", withAction(func(a *Action) { a.Action, a.Enrollment, a.Subject = ActionFind, "", "idckz-880312448217" }), "", CodePayload},
		{"find subject without its type", withAction(func(a *Action) { a.Action, a.Enrollment, a.Subject = ActionFind, "", "880312448217" }), "", CodePayload},
		{"find subject as written with dashes", withAction(func(a *Action) { a.Action, a.Enrollment, a.Subject = ActionFind, "", "IDCPK-35202-1234567-1" }), "", CodePayload},
		{"find subject with SQL", withAction(func(a *Action) { a.Action, a.Enrollment, a.Subject = ActionFind, "", "IDCKZ-1' OR '1'='1" }), "", CodePayload},
		{"find subject too long", withAction(func(a *Action) { a.Action, a.Enrollment, a.Subject = ActionFind, "", "IDCKZ-"+strings.Repeat("9", 33) }), "", CodePayload},
		{"reject without reason", withAction(func(a *Action) { a.Action = ActionReject }), "", CodePayload},
		{"reject reason with a newline", withAction(func(a *Action) { a.Action, a.Reason = ActionReject, "bad\nline" }), "", CodePayload},
		{"reject reason with DEL", withAction(func(a *Action) { a.Action, a.Reason = ActionReject, "bad\x7f" }), "", CodePayload},
		{"reject reason with a C1 control", withAction(func(a *Action) { a.Action, a.Reason = ActionReject, "bad\u0085" }), "", CodePayload},
		{"reject reason with a bidi override", withAction(func(a *Action) { a.Action, a.Reason = ActionReject, "ok\u202egnp.exe" }), "", CodePayload},
		{"reject reason with U+FFFD", withAction(func(a *Action) { a.Action, a.Reason = ActionReject, "bad\ufffd" }), "", CodePayload},
		{"reject reason with a lone surrogate escape", withPayload(payloadJSON(`"action":"approve"`, `"action":"reject","reason":"bad\ud800"`)), "", CodePayload},
		{"reject reason too long", withAction(func(a *Action) { a.Action, a.Reason = ActionReject, strings.Repeat("é", 257) }), "", CodePayload},
		{"revoke with an enrollment", withAction(func(a *Action) { a.Action, a.Serial, a.Reason = ActionRevoke, "0A1B2C", "superseded" }), "", CodePayload},
		{"revoke without serial", withAction(func(a *Action) { a.Action, a.Enrollment, a.Reason = ActionRevoke, "", "superseded" }), "", CodePayload},
		{"revoke without reason", withAction(func(a *Action) { a.Action, a.Enrollment, a.Serial = ActionRevoke, "", "0A1B2C" }), "", CodePayload},
		{"revoke with a bad reason", withAction(func(a *Action) { a.Action, a.Enrollment, a.Serial, a.Reason = ActionRevoke, "", "0A1B2C", "lost it" }), "", CodePayload},
		{"revoke reason in another case", withAction(func(a *Action) {
			a.Action, a.Enrollment, a.Serial, a.Reason = ActionRevoke, "", "0A1B2C", "KeyCompromise"
		}), "", CodePayload},
		{"revoke reason certificateHold", withAction(func(a *Action) {
			a.Action, a.Enrollment, a.Serial, a.Reason = ActionRevoke, "", "0A1B2C", "certificateHold"
		}), "", CodePayload},
		{"revoke reason removeFromCRL", withAction(func(a *Action) {
			a.Action, a.Enrollment, a.Serial, a.Reason = ActionRevoke, "", "0A1B2C", "removeFromCRL"
		}), "", CodePayload},
		{"serial in lower case", withAction(func(a *Action) { a.Action, a.Enrollment, a.Serial, a.Reason = ActionRevoke, "", "0a1b2c", "superseded" }), "", CodePayload},
		{"serial with colons", withAction(func(a *Action) {
			a.Action, a.Enrollment, a.Serial, a.Reason = ActionRevoke, "", "0A:1B:2C", "superseded"
		}), "", CodePayload},
		{"serial of odd length", withAction(func(a *Action) { a.Action, a.Enrollment, a.Serial, a.Reason = ActionRevoke, "", "A1B2C", "superseded" }), "", CodePayload},
		{"serial with a leading zero octet", withAction(func(a *Action) {
			a.Action, a.Enrollment, a.Serial, a.Reason = ActionRevoke, "", "000A1B2C", "superseded"
		}), "", CodePayload},
		{"serial zero", withAction(func(a *Action) { a.Action, a.Enrollment, a.Serial, a.Reason = ActionRevoke, "", "00", "superseded" }), "", CodePayload},
		{"serial of 21 octets", withAction(func(a *Action) {
			a.Action, a.Enrollment, a.Serial, a.Reason = ActionRevoke, "", "7"+strings.Repeat("F", 41), "superseded"
		}), "", CodePayload},
		{"serial with 0x", withAction(func(a *Action) {
			a.Action, a.Enrollment, a.Serial, a.Reason = ActionRevoke, "", "0x0A1B2C", "superseded"
		}), "", CodePayload},

		// Time and audience.
		{"iat too old", withAction(func(a *Action) { a.IssuedAt = testNow.Add(-testSkew - time.Second).Unix() }), "", CodeStale},
		{"iat in the future", withAction(func(a *Action) { a.IssuedAt = testNow.Add(testSkew + time.Second).Unix() }), "", CodeStale},
		{"iat at the end of time", withAction(func(a *Action) { a.IssuedAt = math.MaxInt64 }), "", CodeStale},
		{"iat zero", withAction(func(a *Action) { a.IssuedAt = 0 }), "", CodePayload},
		{"iat negative", withAction(func(a *Action) { a.IssuedAt = -1 }), "", CodePayload},
		{"wrong audience", func(t *testing.T) string { return good(t) }, "/api/v1/officer/queue", CodeAudience},
		{"audience with a trailing slash", func(t *testing.T) string { return good(t) }, testAudience + "/", CodeAudience},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			aud := tc.audience
			if aud == "" {
				aud = testAudience
			}
			compact := tc.compact(t)
			p, err := Parse(compact, aud, testNow, testSkew)
			if err == nil {
				t.Fatalf("accepted: %+v", p.Action)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.want {
				t.Fatalf("error %v, want code %s", err, tc.want)
			}
			t.Log(err)
			if len(e.Reason) > 300 {
				t.Errorf("reason of %d bytes", len(e.Reason))
			}
			if !reflect.DeepEqual(p, Parsed{}) {
				t.Errorf("refusal returned %+v", p)
			}
		})
	}
}

// TestParseAccepts covers what the forged requests may be that Sign does
// not make: RS256, an enrollment id at its limit, the skew's edges.
func TestParseAccepts(t *testing.T) {
	all := identities(t)
	p256, rsa3072 := all["P-256"], all["RSA-3072"]
	at := func(iat int64) []byte {
		a := validAction()
		a.IssuedAt = iat
		return mustJSON(a)
	}
	tests := []struct {
		name    string
		compact func(t *testing.T) string
	}{
		{"RS256", func(t *testing.T) string {
			return forge(t, headerFor(rsa3072.cert, "RS256"), mustJSON(validAction()), "RS256", rsa3072.key, nil)
		}},
		{"PS256 with a hash-length salt", func(t *testing.T) string {
			return forge(t, headerFor(rsa3072.cert, "PS256"), mustJSON(validAction()), "PS256", rsa3072.key, nil)
		}},
		{"oldest iat", func(t *testing.T) string {
			return forge(t, headerFor(p256.cert, "ES256"), at(testNow.Add(-testSkew).Unix()), "ES256", p256.key, nil)
		}},
		{"newest iat", func(t *testing.T) string {
			return forge(t, headerFor(p256.cert, "ES256"), at(testNow.Add(testSkew).Unix()), "ES256", p256.key, nil)
		}},
		{"members in another order, white space", func(t *testing.T) string {
			p := " {\n \"aud\": \"/api/v1/officer/actions\", \"iat\": 1800000000, \"nonce\": \"" + testNonce +
				"\", \"enrollment\": \"q3J8yq0mTnOE2w_Zc1Vf-A\", \"action\": \"approve\" }\n"
			return forge(t, headerFor(p256.cert, "ES256"), []byte(p), "ES256", p256.key, nil)
		}},
		{"header members in another order", func(t *testing.T) string {
			h := `{"x5c":["` + base64.StdEncoding.EncodeToString(p256.cert.Raw) + `"],"kid":"` + kidOf(p256.cert) + `","alg":"ES256"}`
			return forge(t, h, mustJSON(validAction()), "ES256", p256.key, nil)
		}},
		{"reason with ZWNJ and escapes", func(t *testing.T) string {
			a := validAction()
			a.Action, a.Reason = ActionReject, "می\u200cخواهم \"x\" \\ é"
			return forge(t, headerFor(p256.cert, "ES256"), mustJSON(a), "ES256", p256.key, nil)
		}},
		{"serial of 20 octets", func(t *testing.T) string {
			a := validAction()
			a.Action, a.Enrollment, a.Serial, a.Reason = ActionRevoke, "", "7"+strings.Repeat("F", 39), "unspecified"
			return forge(t, headerFor(p256.cert, "ES256"), mustJSON(a), "ES256", p256.key, nil)
		}},
		{"nonce of 64 characters", func(t *testing.T) string {
			a := validAction()
			a.Nonce = b64(make([]byte, 48))
			return forge(t, headerFor(p256.cert, "ES256"), mustJSON(a), "ES256", p256.key, nil)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse(tc.compact(t), testAudience, testNow, testSkew); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseRefusesNonPositiveSkew(t *testing.T) {
	id := identities(t)["P-256"]
	s, err := Sign(validAction(), id.cert, id.key, testNow)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(s, testAudience, testNow, 0)
	if err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("maxSkew 0: %v, want a caller error", err)
	}
}

func TestSignRefuses(t *testing.T) {
	all := identities(t)
	p256 := all["P-256"]
	tests := []struct {
		name string
		a    Action
		id   identity
	}{
		{"key not the certificate's", validAction(), identity{key: all["other-P-256"].key, cert: p256.cert}},
		{"P-521", validAction(), all["P-521"]},
		{"RSA-1024", validAction(), all["RSA-1024"]},
		{"Ed25519", validAction(), all["Ed25519"]},
		{"no certificate", validAction(), identity{key: p256.key}},
		{"no signer", validAction(), identity{cert: p256.cert}},
		{"approve without enrollment", Action{Action: ActionApprove, Audience: testAudience}, p256},
		{"no audience", Action{Action: ActionQueue}, p256},
		{"bad nonce", Action{Action: ActionQueue, Audience: testAudience, Nonce: "short"}, p256},
		{"reason not UTF-8", Action{Action: ActionReject, Enrollment: "e", Reason: "\xff", Audience: testAudience}, p256},
		{"serial in lower case", Action{Action: ActionRevoke, Serial: "0a", Reason: "superseded", Audience: testAudience}, p256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := Sign(tc.a, tc.id.cert, tc.id.key, testNow); err == nil {
				t.Fatalf("signed %s", s)
			}
		})
	}
}

func TestSerialHex(t *testing.T) {
	for _, tc := range []struct {
		n    *big.Int
		want string
	}{
		{big.NewInt(1), "01"},
		{big.NewInt(0x80), "80"},
		{big.NewInt(0x0a1b2c), "0A1B2C"},
		{new(big.Int).Lsh(big.NewInt(1), 159), "80" + strings.Repeat("00", 19)},
		{big.NewInt(0), ""},
		{big.NewInt(-5), ""},
		{nil, ""},
	} {
		if got := SerialHex(tc.n); got != tc.want {
			t.Errorf("SerialHex(%v) = %q, want %q", tc.n, got, tc.want)
		}
		if tc.want != "" {
			if err := checkSerial(tc.want); err != nil {
				t.Errorf("checkSerial(%q): %v", tc.want, err)
			}
		}
	}
}

// TestSerialHexOpenSSL has openssl say how it prints serials, which is the
// form Action.Serial takes.
func TestSerialHexOpenSSL(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	key := identities(t)["P-256"].key
	for _, serial := range []*big.Int{big.NewInt(1), big.NewInt(0x80), big.NewInt(0x0a1b2c), new(big.Int).SetBytes([]byte{0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})} {
		tmpl := &x509.Certificate{SerialNumber: serial, NotBefore: testNow, NotAfter: testNow.Add(time.Hour)}
		der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "c.pem")
		write(t, path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
		out, err := exec.Command(openssl, "x509", "-noout", "-serial", "-in", path).Output()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.TrimSpace(string(out)), "serial="+SerialHex(serial); got != want {
			t.Errorf("openssl prints %q, SerialHex %q", got, want)
		}
	}
}

func TestErrorIs(t *testing.T) {
	var err error = &Error{Code: CodeStale, Reason: "old"}
	if !errors.Is(err, ErrInvalid) || !errors.Is(errors.Join(errors.New("x"), err), ErrInvalid) {
		t.Error("*Error is not ErrInvalid")
	}
	if errors.Is(errors.New("invalid signed request"), ErrInvalid) {
		t.Error("another error is ErrInvalid")
	}
}
