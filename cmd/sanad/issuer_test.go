package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/testenv"
	"github.com/sanadpki/sanad/ra/jwsauth"
)

// TestIssuerAdd: a second OCSP signer certified at a ceremony is recorded
// with `sanad issuer add` after its transcript, its place and its key are
// checked, and from the next start the CA signs new answers with it (the
// valid signer that lasts longest). A transcript of another ceremony, a
// key that is not the certificate's, a certificate in the wrong role, a
// second issuing CA and a taken id are refused; every addition is audited.
func TestIssuerAdd(t *testing.T) {
	requireSoftHSM(t)
	dir := filepath.Join(t.TempDir(), "var")
	env := sanadEnv()
	startDevEnv(t, dir, env).stop(t)
	cfg := filepath.Join(dir, "sanad.yaml")
	pki := func(name string) string { return filepath.Join(dir, "pki", name) }

	runDevCeremonyVariant(t, env, dir, "3-ocsp-signer.yaml", "6-ocsp-signer-2.yaml", "label: sanad-dev-ocsp", "label: sanad-dev-ocsp-2",
		"ocsp.pem", "ocsp-2.pem", "3-ocsp-signer.transcript", "6-ocsp-signer-2.transcript", "validity_days: 60", "validity_days: 80",
		"OCSP Responder", "OCSP Responder 2")
	before := auditEvents(t, env, cfg)
	add := func(args ...string) (int, string) {
		t.Helper()
		return runSanadEnv(t, env, append([]string{"issuer", "add", "--config", cfg}, args...)...)
	}
	newSigner := []string{"--role", "ocsp-signer", "--cert", pki("ocsp-2.pem"), "--key-label", "sanad-dev-ocsp-2"}

	for name, tt := range map[string]struct {
		args []string
		want string
	}{
		"another ceremony's transcript": {append([]string{"ocsp-2", "--transcript", pki("3-ocsp-signer.transcript.jsonl")}, newSigner...), "not signed by the certificate's key"},
		"another key":                   {[]string{"ocsp-2", "--role", "ocsp-signer", "--cert", pki("ocsp-2.pem"), "--key-label", "sanad-dev-ocsp", "--transcript", pki("6-ocsp-signer-2.transcript.jsonl")}, "not the certificate's key"},
		"the audit key as OCSP signer":  {[]string{"audit-2", "--role", "ocsp-signer", "--cert", pki("audit.pem"), "--key-label", "sanad-audit", "--transcript", pki("4-audit-key.transcript.jsonl")}, "OCSPSigning"},
		"a second issuing CA":           {[]string{"issuing-2", "--role", "issuing", "--cert", pki("issuing.pem"), "--key-label", "sanad-dev-issuing", "--transcript", pki("2-intermediate.transcript.jsonl")}, "already has issuing CA"},
		"a taken id":                    {append([]string{"ocsp", "--transcript", pki("6-ocsp-signer-2.transcript.jsonl")}, newSigner...), `already has an issuer "ocsp"`},
	} {
		if code, out := add(tt.args...); code != 1 || !strings.Contains(out, tt.want) {
			t.Errorf("%s: exit %d, want 1 with %q\n%s", name, code, tt.want, out)
		}
	}
	if code, out := add(append([]string{"ocsp-2", "--transcript", pki("6-ocsp-signer-2.transcript.jsonl")}, newSigner...)...); code != 0 {
		t.Fatalf("issuer add: exit %d\n%s", code, out)
	}
	if code, out := runSanadEnv(t, env, "issuer", "list", "--config", cfg); code != 0 || !strings.Contains(out, "ocsp-2") || !strings.Contains(out, "sanad-dev-ocsp-2") {
		t.Errorf("issuer list: exit %d\n%s", code, out)
	}
	if n := auditEvents(t, env, cfg) - before; n != 1 {
		t.Errorf("the refusals and the addition wrote %d audit events, want 1", n)
	}

	// From the next start, a new certificate's answer is signed by the
	// new signer.
	issuing, first, second := readPEMCert(t, pki("issuing.pem")), readPEMCert(t, pki("ocsp.pem")), readPEMCert(t, pki("ocsp-2.pem"))
	dev := startDevEnv(t, dir, env)
	c := newRAClient(t, dev, dir, env)
	if answer := newCertificateAnswer(t, c, issuing); answer.Certificate == nil || !answer.Certificate.Equal(second) {
		t.Errorf("answer signed by %v; want the new signer %s", subjectOf(answer.Certificate), second.Subject)
	}

	// The new signer, recorded among the issuing CA's certificates, is
	// revoked like any of them: the issuing CA's CRL lists it, and from the
	// next start the CA answers with the first signer again.
	if code, out := c.officer("Dana Officer", "revoke", jwsauth.SerialHex(second.SerialNumber), "--reason", "keyCompromise"); code != 0 {
		t.Fatalf("officer revoke of the OCSP signer: exit %d\n%s", code, out)
	}
	c.verifyWithCRL(openStoreOf(t, dir, store.DriverSQLite, ""), testenv.Tool(t, "openssl"), second, true)
	dev.stop(t)
	dev = startDevEnv(t, dir, env)
	c = newRAClient(t, dev, dir, env)
	if answer := newCertificateAnswer(t, c, issuing); answer.Certificate == nil || !answer.Certificate.Equal(first) {
		t.Errorf("after revoking the new signer, answer signed by %v; want the first signer %s", subjectOf(answer.Certificate), first.Subject)
	}
}

// newCertificateAnswer enrolls a citizen-auth certificate (issued at once)
// and returns the OCSP answer the dev deployment gives for it.
func newCertificateAnswer(t *testing.T, c *raClient, issuing *x509.Certificate) *ocsp.Response {
	t.Helper()
	code, e := c.enroll(newApplicant(t, "citizen-auth", person("KZ", "880312448217", "Aigerim", "Sadykova", "1988-03-12")))
	if code != 200 || e["state"] != "issued" {
		t.Fatalf("enrollment: %d %v", code, e)
	}
	leaf := pemCert(t, e["certificate"].(string))
	req, err := ocsp.CreateRequest(leaf, issuing, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(c.dev.url + "/ocsp/" + base64.StdEncoding.EncodeToString(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	answer, err := ocsp.ParseResponseForCert(raw, leaf, issuing)
	if err != nil {
		t.Fatalf("OCSP answer: %v", err)
	}
	if answer.Status != ocsp.Good || time.Until(answer.NextUpdate) <= 0 {
		t.Errorf("answer: status %d, nextUpdate %s", answer.Status, answer.NextUpdate)
	}
	return answer
}

// auditEvents is how many events the audit log of the dev deployment holds
// (sanad audit verify, which also checks the chain).
func auditEvents(t *testing.T, env []string, cfg string) int64 {
	t.Helper()
	code, out := runSanadEnv(t, env, "audit", "verify", "--config", cfg, "--json")
	var r struct {
		Events int64 `json:"events"`
	}
	if code != 0 || json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &r) != nil {
		t.Fatalf("audit verify: exit %d\n%s", code, out)
	}
	return r.Events
}

func pemCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		t.Fatalf("no PEM in %q", s)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func subjectOf(c *x509.Certificate) string {
	if c == nil {
		return "no certificate"
	}
	return c.Subject.String()
}
