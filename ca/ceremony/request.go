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
// records it.
func (s *Script) makeRequest(key *hsm.Key, tr *transcript.Writer) (string, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: s.Request.Subject.name()}, key)
	if err != nil {
		return "", fmt.Errorf("sign the certificate request in the HSM: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return "", err
	}
	if err := csr.CheckSignature(); err != nil {
		return "", fmt.Errorf("signed certificate request does not verify: %w", err)
	}
	path := s.Resolve(s.Request.Output)
	if err := writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o644); err != nil {
		return "", err
	}
	return path, tr.Append(stepRequest, map[string]any{
		"subject": csr.Subject.String(), "request_sha256": derSHA256(der),
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

// readRequest reads the key ceremony's request and transcript the script
// names (key.request, key.transcript) and accepts the key only if:
//   - the request's signature verifies (its key's holder signed it);
//   - the transcript is intact and signed by that key;
//   - the transcript is of a key ceremony that generated or used that key
//     and issued this very request;
//   - the token said the key is protected as a CA key must be.
//
// Any other request could carry a key whose private half was never in an
// HSM, or someone else's.
func (s *Script) readRequest() (requestedKey, error) {
	reqPath, trPath := s.Resolve(s.Key.Request), s.Resolve(s.Key.Transcript)
	raw, err := os.ReadFile(reqPath)
	if err != nil {
		return requestedKey{}, err
	}
	block, rest := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE REQUEST" || len(bytes.TrimSpace(rest)) > 0 {
		return requestedKey{}, fmt.Errorf("%s: not one PEM CERTIFICATE REQUEST block", s.Key.Request)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return requestedKey{}, fmt.Errorf("%s: %w", s.Key.Request, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return requestedKey{}, fmt.Errorf("%s: its signature does not verify: %w", s.Key.Request, err)
	}
	kt, err := hsm.KeyTypeOf(csr.PublicKey)
	if err != nil {
		return requestedKey{}, fmt.Errorf("%s: %w", s.Key.Request, err)
	}
	trRaw, err := os.ReadFile(trPath)
	if err != nil {
		return requestedKey{}, err
	}
	res, err := transcript.Verify(bytes.NewReader(trRaw))
	if err != nil {
		return requestedKey{}, fmt.Errorf("%s: %w", s.Key.Transcript, err)
	}
	if err := res.SignedBy(csr.PublicKey); err != nil {
		return requestedKey{}, fmt.Errorf("%s: not signed by the key of %s: %w", s.Key.Transcript, s.Key.Request, err)
	}
	r := requestedKey{csr: csr, typ: kt, transcriptSHA256: derSHA256(trRaw)}
	spki, reqSum := spkiSHA256(csr.PublicKey), derSHA256(csr.Raw)
	var kind, keyType string
	var made, issued bool
	for _, l := range res.Lines {
		var d struct {
			Ceremony   string          `json:"ceremony"`
			TokenLabel string          `json:"token_label"`
			Label      string          `json:"label"`
			Type       string          `json:"type"`
			PublicKey  string          `json:"public_key_sha256"`
			Request    string          `json:"request_sha256"`
			Protection json.RawMessage `json:"protection"`
		}
		if json.Unmarshal(l.Data, &d) != nil {
			continue
		}
		switch l.Step {
		case "ceremony-start":
			kind = d.Ceremony
		case "hsm-open":
			r.tokenLabel = d.TokenLabel
		case "key-generate", "key-use":
			if d.PublicKey != spki {
				continue
			}
			var p hsm.Protection
			if err := strictJSON(d.Protection, &p); err != nil {
				return requestedKey{}, fmt.Errorf("%s: the key's protection: %w", s.Key.Transcript, err)
			}
			made, r.label, keyType, r.protection = true, d.Label, d.Type, p
		case stepRequest:
			issued = issued || (d.Request == reqSum && d.PublicKey == spki)
		}
	}
	switch {
	case kind != KindKey:
		return requestedKey{}, fmt.Errorf("%s: a %q ceremony's transcript, not a key ceremony's", s.Key.Transcript, kind)
	case !made:
		return requestedKey{}, fmt.Errorf("%s: the key ceremony did not make or use the key of %s", s.Key.Transcript, s.Key.Request)
	case !issued:
		return requestedKey{}, fmt.Errorf("%s: the key ceremony did not issue %s", s.Key.Transcript, s.Key.Request)
	case keyType != string(kt):
		return requestedKey{}, fmt.Errorf("%s: the key ceremony says the key is %q, the request's is %s", s.Key.Transcript, keyType, kt)
	case !labelRE.MatchString(r.label):
		return requestedKey{}, fmt.Errorf("%s: the key ceremony's label %q is not a valid key label", s.Key.Transcript, r.label)
	}
	if err := r.protection.Check(kt); err != nil {
		return requestedKey{}, fmt.Errorf("%s: the token said of key %q: %w", s.Key.Transcript, r.label, err)
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
