package ceremony

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sanadpki/sanad/ca/ceremony/transcript"
	"github.com/sanadpki/sanad/hsm"
)

// Request is the certificate request a key ceremony writes: the subject the
// certifying ceremony is asked for, signed by the new key in its token.
type Request struct {
	Subject Subject `yaml:"subject"`
	Output  string  `yaml:"output"`
}

// makeRequest has key sign a PKCS#10 request for the script's subject,
// checks the signature, writes the request as PEM to a new file and
// records it. It returns the file and the request's SHA-256, which the
// witnesses record for the certifying ceremony (key.request_sha256).
func (s *Script) makeRequest(key *hsm.Key, tr *transcript.Writer) (path, sum string, err error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: s.Request.Subject.name()}, key)
	if err != nil {
		return "", "", fmt.Errorf("sign the certificate request in the HSM: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return "", "", err
	}
	if err := csr.CheckSignature(); err != nil {
		return "", "", fmt.Errorf("signed certificate request does not verify: %w", err)
	}
	path, sum = s.Resolve(s.Request.Output), derSHA256(der)
	if err := writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return path, sum, tr.Append(stepRequest, map[string]any{
		"subject": csr.Subject.String(), "request_sha256": sum,
		"public_key_sha256": spkiSHA256(key.Public()), "output": s.Request.Output,
	})
}

// stepRequest is the key ceremony's step that records its request;
// stepKeyRequest the certifying ceremony's that records the key it
// certifies from one.
const (
	stepRequest    = "request-issue"
	stepKeyRequest = "key-request"
)

// requestedKey is a key made at a key ceremony on another token, as its
// request and signed transcript show it.
type requestedKey struct {
	csr        *x509.CertificateRequest
	typ        hsm.KeyType
	label      string
	tokenLabel string
	protection hsm.Protection
	// transcriptSHA256 is the SHA-256 of the key ceremony's transcript.
	transcriptSHA256 string
}

// KeyCeremony is what a key ceremony's request and signed transcript say
// of the key it made (VerifyKeyCeremony).
type KeyCeremony struct {
	Label, TokenLabel string
	Type              hsm.KeyType
	Protection        hsm.Protection
	// PublicKeySHA256 is the SHA-256 of the key's SubjectPublicKeyInfo;
	// RequestSHA256 of the request (DER), as a certifying script's
	// key.request_sha256 gives it.
	PublicKeySHA256, RequestSHA256 string
	Subject                        string
}

// VerifyKeyCeremony checks a key ceremony's request and transcript as a
// certifying ceremony does before it certifies the key (readKeyCeremony),
// for sanad ceremony verify-transcript --request.
func VerifyKeyCeremony(requestPath, transcriptPath string) (KeyCeremony, error) {
	r, err := readKeyCeremony(requestPath, transcriptPath, func(p string) string { return p })
	if err != nil {
		return KeyCeremony{}, err
	}
	return KeyCeremony{Label: r.label, TokenLabel: r.tokenLabel, Type: r.typ, Protection: r.protection,
		PublicKeySHA256: spkiSHA256(r.public()), RequestSHA256: derSHA256(r.csr.Raw), Subject: r.csr.Subject.String()}, nil
}

// fileProblem is an error about one of the key ceremony's two files: its
// request ("key.request") or its transcript ("key.transcript"), the field
// of the certifying script that names it.
type fileProblem struct {
	field string
	err   error
}

func (p fileProblem) Error() string { return p.err.Error() }
func (p fileProblem) Unwrap() error { return p.err }

// readRequest reads the key ceremony's request and transcript the script
// names, and accepts them only if the request is the one the script's
// key.request_sha256 names: the witnesses of the key ceremony saw the key
// made in the HSM and the request's SHA-256 printed, and the officers of
// this one copied it into the script, which this ceremony's transcript
// hashes. Without it, whoever holds any key could bring a request and a
// transcript signed by it that say what a key ceremony would say.
func (s *Script) readRequest() (requestedKey, error) {
	r, err := readKeyCeremony(s.Key.Request, s.Key.Transcript, s.Resolve)
	if err != nil {
		return requestedKey{}, err
	}
	if got := derSHA256(r.csr.Raw); got != strings.ToLower(s.Key.RequestSHA256) {
		return requestedKey{}, fileProblem{"key.request", fmt.Errorf("%s: its SHA-256 is not key.request_sha256: it is not the request the key ceremony's witnesses recorded", s.Key.Request)}
	}
	return r, nil
}

// readKeyCeremony reads a key ceremony's request and transcript and
// accepts the key only if:
//   - the request's signature verifies (its key's holder signed it);
//   - the transcript is intact and signed by that key;
//   - the transcript is one key ceremony's, from its first line: one token
//     opened, then one key generated there (a key ceremony never certifies
//     a key made before it, which may already serve another purpose),
//     then this very request issued;
//   - the token said the key is protected as a CA key must be.
//
// All of that is the key's holder's word: readRequest binds it to what the
// key ceremony's witnesses saw. Errors name the files as given; resolve
// says where they are.
func readKeyCeremony(reqPath, trPath string, resolve func(string) string) (requestedKey, error) {
	reqBad := func(format string, args ...any) error {
		return fileProblem{"key.request", fmt.Errorf("%s: "+format, append([]any{reqPath}, args...)...)}
	}
	trBad := func(format string, args ...any) error {
		return fileProblem{"key.transcript", fmt.Errorf("%s: "+format, append([]any{trPath}, args...)...)}
	}
	raw, err := os.ReadFile(resolve(reqPath))
	if err != nil {
		return requestedKey{}, fileProblem{"key.request", err}
	}
	block, rest := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE REQUEST" || len(bytes.TrimSpace(rest)) > 0 {
		return requestedKey{}, reqBad("not one PEM CERTIFICATE REQUEST block")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return requestedKey{}, reqBad("%w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return requestedKey{}, reqBad("its signature does not verify: %w", err)
	}
	kt, err := hsm.KeyTypeOf(csr.PublicKey)
	if err != nil {
		return requestedKey{}, reqBad("%w", err)
	}
	trRaw, err := os.ReadFile(resolve(trPath))
	if err != nil {
		return requestedKey{}, fileProblem{"key.transcript", err}
	}
	res, err := transcript.Verify(bytes.NewReader(trRaw))
	if err != nil {
		return requestedKey{}, trBad("%w", err)
	}
	if err := res.SignedBy(csr.PublicKey); err != nil {
		return requestedKey{}, trBad("not signed by the key of %s: %w", reqPath, err)
	}
	r := requestedKey{csr: csr, typ: kt, transcriptSHA256: derSHA256(trRaw)}
	spki, reqSum := spkiSHA256(csr.PublicKey), derSHA256(csr.Raw)
	// The steps that say what the ceremony did, each exactly once and in
	// this order; others (the PIN's unlocking, the end) may come between.
	order := []string{"ceremony-start", "hsm-open", "key-generate", stepRequest}
	next := 0
	var keyType string
	for i, l := range res.Lines {
		switch l.Step {
		case "ceremony-start", "hsm-open", "key-generate", "key-use", stepRequest, stepKeyRequest, "certificate-issue", "crl-issue", "issuer-use":
		default:
			continue
		}
		if next == len(order) || l.Step != order[next] {
			return requestedKey{}, trBad("line %d: step %s where a key ceremony has %s", l.Seq, l.Step, strings.Join(order[min(next, len(order)-1):], ", then "))
		}
		next++
		var d struct {
			Ceremony   string          `json:"ceremony"`
			TokenLabel string          `json:"token_label"`
			Label      string          `json:"label"`
			Type       string          `json:"type"`
			PublicKey  string          `json:"public_key_sha256"`
			Request    string          `json:"request_sha256"`
			Protection json.RawMessage `json:"protection"`
		}
		if err := json.Unmarshal(l.Data, &d); err != nil {
			return requestedKey{}, trBad("line %d: %w", l.Seq, err)
		}
		switch l.Step {
		case "ceremony-start":
			if i != 0 {
				return requestedKey{}, trBad("line %d: the ceremony starts after its first line", l.Seq)
			}
			if d.Ceremony != KindKey {
				return requestedKey{}, trBad("a %q ceremony's transcript, not a key ceremony's", d.Ceremony)
			}
		case "hsm-open":
			r.tokenLabel = d.TokenLabel
		case "key-generate":
			if d.PublicKey != spki {
				return requestedKey{}, trBad("the key ceremony generated another key than the key of %s", reqPath)
			}
			if err := strictJSON(d.Protection, &r.protection); err != nil {
				return requestedKey{}, trBad("the key's protection: %w", err)
			}
			r.label, keyType = d.Label, d.Type
		case stepRequest:
			if d.Request != reqSum || d.PublicKey != spki {
				return requestedKey{}, trBad("the key ceremony did not issue %s", reqPath)
			}
		}
	}
	switch {
	case next < len(order):
		return requestedKey{}, trBad("no %s step: not a complete key ceremony's transcript", order[next])
	case keyType != string(kt):
		return requestedKey{}, trBad("the key ceremony says the key is %q, the request's is %s", keyType, kt)
	case !labelRE.MatchString(r.label):
		return requestedKey{}, trBad("the key ceremony's label %q is not a valid key label", r.label)
	}
	if err := r.protection.Check(kt); err != nil {
		return requestedKey{}, trBad("the token said of key %q: %w", r.label, err)
	}
	return r, nil
}

// strictJSON decodes a JSON object into v, refusing unknown members and a
// missing object.
func strictJSON(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return errors.New("not recorded")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// facts is what the certifying ceremony's transcript records of the key.
func (r requestedKey) facts(s *Script) map[string]any {
	return map[string]any{
		"label": r.label, "type": string(r.typ), "token_label": r.tokenLabel,
		"public_key_sha256": spkiSHA256(r.csr.PublicKey), "protection": r.protection,
		"request": s.Key.Request, "request_sha256": derSHA256(r.csr.Raw),
		"key_transcript": s.Key.Transcript, "key_transcript_sha256": r.transcriptSHA256,
	}
}

// public is the requested key.
func (r requestedKey) public() crypto.PublicKey { return r.csr.PublicKey }

// asksFor reports whether the request asks for the subject sub (as the key
// ceremony's script gave it, so as makeRequest encoded it).
func (r requestedKey) asksFor(sub Subject) bool {
	der, err := asn1.Marshal(sub.name().ToRDNSequence())
	return err == nil && bytes.Equal(der, r.csr.RawSubject)
}
