package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/testenv"
	"github.com/sanadpki/sanad/ra/jwsauth"
)

// TestIssuerAdd: a second OCSP signer certified at a ceremony is recorded
// with `sanad issuer add` after its transcript, its place and its key are
// checked, and the running CA signs new answers with it (the valid signer
// that lasts longest) from its next signer check, without a restart. A
// transcript of another ceremony, a key that is not the certificate's, a
// certificate in the wrong role, an issuing CA's key again and a taken id
// are refused; every addition is audited. Revoked through the running
// node, the new signer signs nothing more: the node answers with the first
// one again at once.
func TestIssuerAdd(t *testing.T) {
	requireSoftHSM(t)
	dir := filepath.Join(t.TempDir(), "var")
	env := sanadEnv()
	startDevEnv(t, dir, env).stop(t)
	cfg := filepath.Join(dir, "sanad.yaml")
	pki := func(name string) string { return filepath.Join(dir, "pki", name) }
	appendFile(t, cfg, "ca:\n  signer_check_interval: 1s\nocsp:\n  nonce: sign\n")

	runDevCeremonyVariant(t, env, dir, "3-ocsp-signer.yaml", "6-ocsp-signer-2.yaml", "label: sanad-dev-ocsp", "label: sanad-dev-ocsp-2",
		"ocsp.pem", "ocsp-2.pem", "3-ocsp-signer.transcript", "6-ocsp-signer-2.transcript", "validity_days: 60", "validity_days: 80",
		"OCSP Responder", "OCSP Responder 2")
	before := auditEvents(t, env, cfg)
	add := func(args ...string) (int, string) {
		t.Helper()
		return runSanadEnv(t, env, append([]string{"issuer", "add", "--config", cfg}, args...)...)
	}
	newSigner := []string{"--role", "ocsp-signer", "--cert", pki("ocsp-2.pem"), "--key-label", "sanad-dev-ocsp-2"}
	// A key made by pkcs11-tool with its default usages, ECDH among them:
	// not a CA key (hsm.FindProtectedKey).
	devPKCS11Tool(t, env, dir, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "ecdh-capable", "--id", "e0")

	for name, tt := range map[string]struct {
		args []string
		want string
	}{
		"another ceremony's transcript": {append([]string{"ocsp-2", "--transcript", pki("3-ocsp-signer.transcript.jsonl")}, newSigner...), "not signed by the certificate's key"},
		"another key":                   {[]string{"ocsp-2", "--role", "ocsp-signer", "--cert", pki("ocsp-2.pem"), "--key-label", "sanad-dev-ocsp", "--transcript", pki("6-ocsp-signer-2.transcript.jsonl")}, "not the certificate's key"},
		"the audit key as OCSP signer":  {[]string{"audit-2", "--role", "ocsp-signer", "--cert", pki("audit.pem"), "--key-label", "sanad-audit", "--transcript", pki("4-audit-key.transcript.jsonl")}, "OCSPSigning"},
		"the issuing CA again":          {[]string{"issuing-2", "--role", "issuing", "--cert", pki("issuing.pem"), "--key-label", "sanad-dev-issuing", "--transcript", pki("2-intermediate.transcript.jsonl")}, "already issuing issuing's"},
		"a taken id":                    {append([]string{"ocsp", "--transcript", pki("6-ocsp-signer-2.transcript.jsonl")}, newSigner...), `already has an issuer "ocsp"`},
		"a key that may derive":         {[]string{"ocsp-2", "--role", "ocsp-signer", "--cert", pki("ocsp-2.pem"), "--key-label", "ecdh-capable", "--transcript", pki("6-ocsp-signer-2.transcript.jsonl")}, "CKA_DERIVE true"},
	} {
		if code, out := add(tt.args...); code != 1 || !strings.Contains(out, tt.want) {
			t.Errorf("%s: exit %d, want 1 with %q\n%s", name, code, tt.want, out)
		}
	}
	if n := auditEvents(t, env, cfg) - before; n != 0 {
		t.Errorf("the refusals wrote %d audit events", n)
	}

	// Added while the CA runs, the new signer answers from the node's
	// next signer check.
	issuing, first, second := readPEMCert(t, pki("issuing.pem")), readPEMCert(t, pki("ocsp.pem")), readPEMCert(t, pki("ocsp-2.pem"))
	dev := startDevEnv(t, dir, env)
	c := newRAClient(t, dev, dir, env)
	if answer := newCertificateAnswer(t, c, issuing); answer.Certificate == nil || !answer.Certificate.Equal(first) {
		t.Errorf("before the addition, answer signed by %v; want the first signer %s", subjectOf(answer.Certificate), first.Subject)
	}
	if code, out := add(append([]string{"ocsp-2", "--transcript", pki("6-ocsp-signer-2.transcript.jsonl")}, newSigner...)...); code != 0 {
		t.Fatalf("issuer add: exit %d\n%s", code, out)
	}
	db := openStoreOf(t, dir, store.DriverSQLite, "")
	if events, err := db.ListAuditEvents(t.Context(), store.AuditFilter{Action: "issuer.add"}); err != nil || len(events) != 1 || events[0].Object != "ocsp-2" {
		t.Errorf("issuer.add events: %v, %v; want the one addition", events, err)
	}
	if code, out := runSanadEnv(t, env, "issuer", "list", "--config", cfg); code != 0 || !strings.Contains(out, "ocsp-2") || !strings.Contains(out, "sanad-dev-ocsp-2") {
		t.Errorf("issuer list: exit %d\n%s", code, out)
	}
	// The CA role and the status role (which signs answers to requests
	// with a nonce) each check.
	for _, changed := range []string{`msg="the OCSP signer in service changed"`, `msg="the OCSP signer that signs nonces changed"`} {
		for deadline := time.Now().Add(time.Minute); !strings.Contains(dev.output.String(), changed) && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
	}
	leaf := enrollCitizen(t, c)
	if answer := ocspAnswer(t, c, leaf, issuing); answer.Certificate == nil || !answer.Certificate.Equal(second) {
		t.Errorf("after the addition, answer signed by %v; want the new signer %s\n%s", subjectOf(answer.Certificate), second.Subject, dev.output.String())
	}
	if out := opensslOCSPWithNonce(t, testenv.Tool(t, "openssl"), c, c.pems["issuing"], leaf, "good"); !strings.Contains(out, "OCSP Responder 2") {
		t.Errorf("after the addition, the answer to a request with a nonce is not signed by the new signer:\n%s", out)
	}

	// A root made on an offline HSM (here another token, whose PIN the
	// configuration does not have) is recorded under the label its
	// ceremony gave its key, without the key.
	hsmEnv := append(env[:len(env):len(env)], "SOFTHSM2_CONF="+filepath.Join(dir, "softhsm2.conf"), "OFFLINE_PIN=40961024")
	initToken := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "offline-root", "--pin", "40961024", "--so-pin", "40961025")
	initToken.Env = hsmEnv
	if out, err := initToken.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	script, err := os.ReadFile(filepath.Join(dir, "ceremonies", "1-root.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	offlineScript := filepath.Join(dir, "ceremonies", "7-offline-root.yaml")
	if err := os.WriteFile(offlineScript, []byte(strings.NewReplacer("token_label: sanad-dev", "token_label: offline-root", "env: \"\"", "env: OFFLINE_PIN",
		"shares: 1", "shares: 0", "label: sanad-dev-root", "label: offline-root-g2", "Sanad Dev Root CA", "Sanad Dev Offline Root CA",
		"root.pem", "root-2.pem", "1-root.transcript", "7-offline-root.transcript").Replace(string(script))), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := runSanadEnv(t, hsmEnv, "ceremony", "run", offlineScript); code != 0 {
		t.Fatalf("the offline root's ceremony: exit %d\n%s", code, out)
	}
	offlineRoot := []string{"--role", "root", "--cert", pki("root-2.pem"), "--transcript", pki("7-offline-root.transcript.jsonl")}
	if code, out := add(append([]string{"root-2", "--key-label", "sanad-dev-root"}, offlineRoot...)...); code != 1 || !strings.Contains(out, `the ceremony's transcript names the key "offline-root-g2"`) {
		t.Errorf("an offline root under another label: exit %d\n%s", code, out)
	}
	if code, out := add(append([]string{"root-2"}, offlineRoot...)...); code != 0 {
		t.Fatalf("issuer add of an offline root: exit %d\n%s", code, out)
	}
	if code, out := runSanadEnv(t, env, "issuer", "list", "--config", cfg); code != 0 || !strings.Contains(out, "offline-root-g2") {
		t.Errorf("issuer list after the offline root: exit %d\n%s", code, out)
	}

	// The new signer, recorded among the issuing CA's certificates, is
	// revoked like any of them: the issuing CA's CRL lists it, and the
	// node it was revoked through answers with the first signer again at
	// once, as it does after a restart.
	// (An answer is replaced only by one with a later thisUpdate, in whole
	// seconds: one signed in the second the signer is replaced is signed
	// again at the next pass, a minute on. The test leaves a second.)
	time.Sleep(time.Second)
	c.revokeByTwo(t, jwsauth.SerialHex(second.SerialNumber), "the new OCSP signer")
	if answer := newCertificateAnswer(t, c, issuing); answer.Certificate == nil || !answer.Certificate.Equal(first) {
		t.Errorf("once the new signer was revoked, answer signed by %v; want the first signer %s", subjectOf(answer.Certificate), first.Subject)
	}
	// What the revoked signer signed, not due for days, is signed again
	// by the first (Publisher.ResignNow), and served within the status
	// tier's sync.
	resigned := ocspAnswer(t, c, leaf, issuing)
	for deadline := time.Now().Add(time.Minute); (resigned.Certificate == nil || !resigned.Certificate.Equal(first)) && time.Now().Before(deadline); resigned = ocspAnswer(t, c, leaf, issuing) {
		time.Sleep(100 * time.Millisecond)
	}
	if resigned.Certificate == nil || !resigned.Certificate.Equal(first) || resigned.Status != ocsp.Good {
		t.Errorf("the answer the revoked signer signed: status %d, signed by %v; want good, signed again by the first signer", resigned.Status, subjectOf(resigned.Certificate))
	}
	// Every node re-signs from the time the store keeps, with its event.
	if code, out := runSanadEnv(t, env, "audit", "list", "--config", cfg, "--action", "ocsp.resign", "--json"); code != 0 ||
		!strings.Contains(out, `"revoked_signer":"`+jwsauth.SerialHex(second.SerialNumber)+`"`) || !strings.Contains(out, `"signer":"`+jwsauth.SerialHex(first.SerialNumber)+`"`) {
		t.Errorf("the re-signing's audit event: exit %d\n%s", code, out)
	}
	c.verifyWithCRL(db, testenv.Tool(t, "openssl"), second, true)
	// issuer list shows it revoked, and it is not added again.
	if code, out := runSanadEnv(t, env, "issuer", "list", "--config", cfg); code != 0 || !regexp.MustCompile(`(?m)^ocsp-2 .*revoked by issuing at \S+, keyCompromise$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^ocsp .* good$`).MatchString(out) {
		t.Errorf("issuer list after revoking ocsp-2: exit %d\n%s", code, out)
	}
	if code, out := add(append([]string{"ocsp-3", "--transcript", pki("6-ocsp-signer-2.transcript.jsonl")}, newSigner...)...); code != 1 || !strings.Contains(out, "the certificate is revoked by issuing at ") {
		t.Errorf("issuer add of a revoked signer: exit %d\n%s", code, out)
	}
	dev.stop(t)
	dev = startDevEnv(t, dir, env)
	c = newRAClient(t, dev, dir, env)
	if answer := newCertificateAnswer(t, c, issuing); answer.Certificate == nil || !answer.Certificate.Equal(first) {
		t.Errorf("after revoking the new signer and a restart, answer signed by %v; want the first signer %s", subjectOf(answer.Certificate), first.Subject)
	}

	// The first signer revoked too (sanad dev does not record its own
	// among the issuing CA's certificates, as sanad issuer add does: the
	// test does), with no other left: the node retires it at once, is not
	// ready, and says so once; the status role stops signing nonces with it.
	if err := db.InTx(t.Context(), func(tx *store.Tx) error {
		return ca.RecordCertified(t.Context(), tx, "issuing", "ocsp-signer", first, time.Now().UTC())
	}); err != nil {
		t.Fatal(err)
	}
	c.revokeByTwo(t, jwsauth.SerialHex(first.SerialNumber), "the last OCSP signer")
	// (readyz runs its checks at most once a second.)
	code, body := httpGet(t, dev.url+"/readyz")
	for deadline := time.Now().Add(30 * time.Second); code == http.StatusOK && time.Now().Before(deadline); code, body = httpGet(t, dev.url+"/readyz") {
		time.Sleep(100 * time.Millisecond)
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"ocsp_responder":"failing"`) {
		t.Errorf("readyz with every OCSP signer revoked = %d %s; want 503 naming the OCSP responder", code, body)
	}
	const nonces = "nonce responses for its issuing CA go without a nonce"
	for deadline := time.Now().Add(time.Minute); !strings.Contains(dev.output.String(), nonces) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // three more checks, which must say nothing new
	out := dev.output.String()
	if n := strings.Count(out, "the OCSP signer in service was revoked and none can replace it"); n != 1 || !strings.Contains(out, nonces) {
		t.Errorf("the log says %d times that the signer was retired (want once), nonces retired: %v\n%s", n, strings.Contains(out, nonces), out)
	}
	// The pre-signed answers are still served, without the nonce asked
	// for: nothing signs one now.
	leafPath := filepath.Join(t.TempDir(), "leaf.pem")
	if err := os.WriteFile(leafPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	nonceOut, err := exec.Command(testenv.Tool(t, "openssl"), "ocsp", "-issuer", c.pems["issuing"], "-cert", leafPath, "-url", dev.url+"/ocsp",
		"-CAfile", c.pems["root"], "-verify_other", c.pems["issuing"], "-timeout", "10").CombinedOutput()
	if err != nil || !strings.Contains(string(nonceOut), "no nonce in response") || !strings.Contains(string(nonceOut), leafPath+": good") {
		t.Errorf("openssl ocsp with a nonce once every signer is retired: %v\n%s; want the pre-signed good answer, without a nonce", err, nonceOut)
	}

}

// TestIssuingCARollover: the next issuing CA, certified by the root at a
// ceremony with an OCSP signer of its own, is added with sanad issuer add
// (a node started between the two additions leaves it out and issues from
// the first); from the next start new certificates come from it, answered
// by its signer and listed on its CRL, while the certificates of the first
// issuing CA keep working: an officer whose certificate the first one
// issued still acts, and a certificate it issued is revoked onto its CRL
// and answered revoked by its signer. With the first one's key gone while
// its certificates are unexpired, the CA refuses to start.
func TestIssuingCARollover(t *testing.T) {
	requireSoftHSM(t)
	openssl := testenv.Tool(t, "openssl")
	dir := filepath.Join(t.TempDir(), "var")
	env := sanadEnv()
	cfg := filepath.Join(dir, "sanad.yaml")
	pki := func(name string) string { return filepath.Join(dir, "pki", name) }

	dev := startDevEnv(t, dir, env)
	c := newRAClient(t, dev, dir, env)
	old := enrollCitizen(t, c)
	dev.stop(t)

	// The next issuing CA's key is made at a key ceremony, and the root
	// certifies it from that ceremony's request, as when the root's key is
	// on an offline HSM (here both are on the dev token).
	keyScript := `ceremony: key
description: dev issuing CA 2's key
witnesses: ["sanad test"]
hsm: {token_label: sanad-dev, pin: {shares: 1}}
key: {label: sanad-dev-issuing-2, type: ecdsa-p256}
request:
  subject: {common_name: Sanad Dev Issuing CA 2, organization: Sanad Dev PKI (not for production), country: KZ}
  output: ../pki/issuing-2.csr
transcript: ../pki/6-issuing-key-2.transcript.jsonl
`
	if err := os.WriteFile(filepath.Join(dir, "ceremonies", "6-issuing-key-2.yaml"), []byte(keyScript), 0o600); err != nil {
		t.Fatal(err)
	}
	runDevCeremonyVariant(t, env, dir, "6-issuing-key-2.yaml", "6-issuing-key-2.yaml")
	// The witnesses write down the request's SHA-256 the key ceremony
	// printed (here, of the file it wrote).
	csrPEM, err := os.ReadFile(pki("issuing-2.csr"))
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := pem.Decode(csrPEM)
	if csr == nil {
		t.Fatal("the key ceremony's request is not PEM")
	}
	csrSum := sha256.Sum256(csr.Bytes)
	runDevCeremonyVariant(t, env, dir, "2-intermediate.yaml", "7-intermediate-2.yaml",
		"label: sanad-dev-issuing\n", "label: sanad-dev-issuing-2\n",
		`request: ""`, "request: ../pki/issuing-2.csr", `transcript: ""`, "transcript: ../pki/6-issuing-key-2.transcript.jsonl",
		`request_sha256: ""`, "request_sha256: "+hex.EncodeToString(csrSum[:]),
		"issuing.pem", "issuing-2.pem", "2-intermediate.transcript", "7-intermediate-2.transcript",
		"common_name: Sanad Dev Issuing CA", "common_name: Sanad Dev Issuing CA 2", "validity_days: 1825", "validity_days: 1900")
	// Each transcript is checked against the key that signed it: the key
	// ceremony's by its request's key, the root's by the root's.
	for _, check := range [][4]string{
		{pki("6-issuing-key-2.transcript.jsonl"), "--request", pki("issuing-2.csr"), "request SHA-256 " + hex.EncodeToString(csrSum[:])},
		{pki("7-intermediate-2.transcript.jsonl"), "--cert", pki("root.pem"), "signature valid by the key of"},
	} {
		if code, out := runSanadEnv(t, env, "ceremony", "verify-transcript", check[0], check[1], check[2]); code != 0 || !strings.Contains(out, "transcript OK") || !strings.Contains(out, check[3]) {
			t.Errorf("verify-transcript %s: exit %d\n%s", strings.Join(check[:3], " "), code, out)
		}
	}
	if code, out := runSanadEnv(t, env, "ceremony", "verify-transcript", pki("7-intermediate-2.transcript.jsonl"), "--request", pki("issuing-2.csr")); code != 1 || !strings.Contains(out, "signed by another key") {
		t.Errorf("verify-transcript of the root's transcript by the request's key: exit %d\n%s", code, out)
	}
	runDevCeremonyVariant(t, env, dir, "3-ocsp-signer.yaml", "8-ocsp-signer-2.yaml", "key_label: sanad-dev-issuing", "key_label: sanad-dev-issuing-2",
		"issuing.pem", "issuing-2.pem", "label: sanad-dev-ocsp", "label: sanad-dev-ocsp-g2", "ocsp.pem", "ocsp-g2.pem",
		"3-ocsp-signer.transcript", "8-ocsp-signer-2.transcript", "Issuing CA OCSP Responder", "Issuing CA 2 OCSP Responder")
	add := func(args ...string) (int, string) {
		t.Helper()
		return runSanadEnv(t, env, append([]string{"issuer", "add", "--config", cfg}, args...)...)
	}
	// The key ceremony's transcript issued no certificate; the OCSP
	// signer's ceremony's is signed by neither the certificate's key nor
	// the root's.
	for _, c := range []struct{ transcript, want string }{
		{"6-issuing-key-2.transcript.jsonl", "the ceremony did not issue this certificate"},
		{"3-ocsp-signer.transcript.jsonl", "not signed by the certificate's key, nor by its issuer root's"},
	} {
		if code, out := add("issuing-2", "--role", "issuing", "--cert", pki("issuing-2.pem"), "--key-label", "sanad-dev-issuing-2",
			"--transcript", pki(c.transcript)); code != 1 || !strings.Contains(out, c.want) {
			t.Errorf("issuer add with %s: exit %d\n%s", c.transcript, code, out)
		}
	}
	if code, out := add("issuing-2", "--role", "issuing", "--cert", pki("issuing-2.pem"), "--key-label", "sanad-dev-issuing-2",
		"--transcript", pki("7-intermediate-2.transcript.jsonl")); code != 0 {
		t.Fatalf("issuer add issuing-2: exit %d\n%s", code, out)
	}
	if code, out := add("issuing-3", "--role", "issuing", "--cert", pki("issuing-2.pem"), "--key-label", "sanad-dev-issuing-2",
		"--transcript", pki("7-intermediate-2.transcript.jsonl")); code != 1 || !strings.Contains(out, "already issuing issuing-2's") {
		t.Errorf("the new issuing CA's key again: exit %d\n%s", code, out)
	}
	issuing, issuing2 := readPEMCert(t, pki("issuing.pem")), readPEMCert(t, pki("issuing-2.pem"))

	// Requests with a nonce get an answer signed now, by the signer of the
	// certificate's issuing CA; nodes look at the signers every second.
	appendFile(t, cfg, "ca:\n  signer_check_interval: 1s\nocsp:\n  nonce: sign\n")
	// Between the two additions the new issuing CA has no signer yet: a
	// node started then leaves it out, says so, and issues from the first.
	dev = startDevEnv(t, dir, env)
	if out := dev.output.String(); !strings.Contains(out, "an issuing CA is left out") || !strings.Contains(out, "issuer=issuing-2 ") {
		t.Errorf("no warning that issuing-2 is left out before its signer is added:\n%s", out)
	}
	c = newRAClient(t, dev, dir, env)
	between := enrollCitizen(t, c)
	if between.CheckSignatureFrom(issuing) != nil {
		t.Errorf("before the new signer was added, issued by %s", between.Issuer)
	}
	dev.stop(t)
	// A status node started then, and left running, signs the new issuing
	// CA's nonces once its signer is added.
	statusURL := startNode(t, append(slices.Clone(env), "SANAD_HTTP_ADDR=127.0.0.1:0"), cfg, "status")

	if code, out := add("ocsp-g2", "--role", "ocsp-signer", "--cert", pki("ocsp-g2.pem"), "--key-label", "sanad-dev-ocsp-g2",
		"--transcript", pki("8-ocsp-signer-2.transcript.jsonl")); code != 0 {
		t.Fatalf("issuer add ocsp-g2: exit %d\n%s", code, out)
	}
	signer, signer2 := readPEMCert(t, pki("ocsp.pem")), readPEMCert(t, pki("ocsp-g2.pem"))
	dev = startDevEnv(t, dir, env)
	c = newRAClient(t, dev, dir, env)
	db := openStoreOf(t, dir, store.DriverSQLite, "")

	// New certificates: the new issuing CA, its signer, its CRL.
	leaf := enrollCitizen(t, c)
	if err := leaf.CheckSignatureFrom(issuing2); err != nil {
		t.Fatalf("a certificate issued after the rollover is not the new issuing CA's: %v (issuer %s)", err, leaf.Issuer)
	}
	if len(leaf.CRLDistributionPoints) != 1 || !strings.HasSuffix(leaf.CRLDistributionPoints[0], "/crl/issuing-2.crl") {
		t.Errorf("CRL distribution points %v", leaf.CRLDistributionPoints)
	}
	if a := ocspAnswer(t, c, leaf, issuing2); a.Status != ocsp.Good || a.Certificate == nil || !a.Certificate.Equal(signer2) {
		t.Errorf("new certificate: status %d, signed by %v; want good by %s", a.Status, subjectOf(a.Certificate), signer2.Subject)
	}
	pem2 := pki("issuing-2.pem")
	c.verifyWithCRLOf(db, openssl, "issuing-2", pem2, leaf, false)
	// Operators alert on what runs out, per issuing CA.
	_, metrics := httpGet(t, dev.url+"/metrics")
	for _, want := range []string{`sanad_ca_issuer_active{issuer="issuing-2"} 1`, `sanad_ca_issuer_active{issuer="issuing"} 0`,
		`sanad_ca_ocsp_signing_ends_timestamp_seconds{issuer="issuing"}`, `sanad_ca_ocsp_signing_ends_timestamp_seconds{issuer="issuing-2"}`,
		`sanad_ca_issuance_ends_timestamp_seconds{issuer="issuing-2"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	opensslOCSPWithNonce(t, openssl, c, pem2, leaf, "good")
	nonceOut, nonceErr := opensslOCSPNonce(openssl, c.pems["root"], statusURL, pem2, leaf, "good")
	for deadline := time.Now().Add(30 * time.Second); nonceErr != nil && time.Now().Before(deadline); nonceOut, nonceErr = opensslOCSPNonce(openssl, c.pems["root"], statusURL, pem2, leaf, "good") {
		time.Sleep(200 * time.Millisecond)
	}
	if nonceErr != nil {
		t.Errorf("the status node started before the new issuing CA's signer was added, with a nonce: %v\n%s", nonceErr, nonceOut)
	}

	// The first issuing CA's certificates: an officer it certified revokes
	// one it issued, which its CRL lists and its signer answers revoked.
	if code, out := c.officer("Dana Officer", "revoke", jwsauth.SerialHex(old.SerialNumber), "--reason", "keyCompromise"); code != 0 {
		t.Fatalf("officer revoke of a certificate of the first issuing CA: exit %d\n%s", code, out)
	}
	c.verifyWithCRLOf(db, openssl, "issuing", c.pems["issuing"], old, true)
	// The status tier follows the store by its sync loop.
	a := ocspAnswer(t, c, old, issuing)
	for deadline := time.Now().Add(30 * time.Second); a.Status == ocsp.Good && time.Now().Before(deadline); a = ocspAnswer(t, c, old, issuing) {
		time.Sleep(100 * time.Millisecond)
	}
	if a.Status != ocsp.Revoked || a.RevocationReason != ocsp.KeyCompromise ||
		a.Certificate == nil || !a.Certificate.Equal(signer) {
		t.Errorf("old certificate: status %d reason %d, signed by %v; want revoked by %s", a.Status, a.RevocationReason, subjectOf(a.Certificate), signer.Subject)
	}
	opensslOCSPWithNonce(t, openssl, c, c.pems["issuing"], old, "revoked")
	// The new certificate is on neither CRL.
	c.verifyWithCRLOf(db, openssl, "issuing-2", pem2, leaf, false)
	dev.stop(t)

	// The first issuing CA's key destroyed while certificates it issued are
	// unexpired: they could be neither revoked nor kept fresh, so the CA
	// does not start, and says why. (Once they have all expired, it is
	// left out like the new one above.)
	devPKCS11Tool(t, env, dir, "--delete-object", "--type", "privkey", "--label", "sanad-dev-issuing")
	refused := exec.Command(sanadBin, "dev", "--dir", dir, "--addr", "127.0.0.1:0")
	refused.Env = env
	out, err := refused.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "issuer issuing") || !strings.Contains(string(out), "unexpired certificates") {
		t.Errorf("sanad dev with the key of an issuing CA that has unexpired certificates gone: %v\n%s", err, out)
	}
}

// opensslOCSPWithNonce asks the dev deployment for leaf's status with
// openssl ocsp, which sends a nonce and checks the answer's nonce, its
// signature and its responder's chain to the root through issuerPEM.
func opensslOCSPWithNonce(t *testing.T, openssl string, c *raClient, issuerPEM string, leaf *x509.Certificate, want string) string {
	t.Helper()
	out, err := opensslOCSPNonce(openssl, c.pems["root"], c.dev.url, issuerPEM, leaf, want)
	if err != nil {
		t.Errorf("%v\n%s", err, out)
	}
	return out
}

// opensslOCSPNonce asks the responder at url with openssl ocsp, with a
// nonce, about leaf of the issuing CA in issuerPEM (under the root in
// rootPEM), and reports what is wrong if the answer does not verify, has
// no nonce or does not say want.
func opensslOCSPNonce(openssl, rootPEM, url, issuerPEM string, leaf *x509.Certificate, want string) (string, error) {
	dir, err := os.MkdirTemp("", "sanad-ocsp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "leaf.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o600); err != nil {
		return "", err
	}
	raw, err := exec.Command(openssl, "ocsp", "-issuer", issuerPEM, "-cert", path, "-url", url+"/ocsp",
		"-CAfile", rootPEM, "-verify_other", issuerPEM, "-timeout", "10", "-resp_text").CombinedOutput()
	out := string(raw)
	// (-resp_text prints the nonce extension itself: a warning about the
	// nonce is what must not appear.)
	if err != nil || !strings.Contains(out, "Response verify OK") || strings.Contains(strings.ToLower(out), "nonce verify error") ||
		strings.Contains(strings.ToLower(out), "no nonce") || !strings.Contains(out, path+": "+want) {
		return out, fmt.Errorf("openssl ocsp with a nonce, want %s: %v", want, err)
	}
	return out, nil
}

// appendFile appends text to the file at path.
func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// enrollCitizen enrolls a citizen-auth certificate, issued at once.
func enrollCitizen(t *testing.T, c *raClient) *x509.Certificate {
	t.Helper()
	code, e := c.enroll(newApplicant(t, "citizen-auth", person("KZ", "880312448217", "Aigerim", "Sadykova", "1988-03-12")))
	if code != 200 || e["state"] != "issued" {
		t.Fatalf("enrollment: %d %v", code, e)
	}
	cert := pemCert(t, e["certificate"].(string))
	// Its chain is the issuing CA that signed it, in the proof's answer
	// and in GET's, across rollovers.
	_, got := c.do(http.MethodGet, "/api/v1/enrollments/"+e["id"].(string), "", nil, nil)
	chain, _ := e["chain"].(string)
	if chain == "" || got["chain"] != chain {
		t.Fatalf("chain of %s: the proof's %q, GET's %v", e["id"], chain, got["chain"])
	}
	if err := cert.CheckSignatureFrom(pemCert(t, chain)); err != nil {
		t.Errorf("the chain given with %X did not sign it: %v", cert.SerialNumber, err)
	}
	return cert
}

// ocspAnswer is the dev deployment's OCSP answer (GET) for leaf, checked
// as a relying party does against its issuer.
func ocspAnswer(t *testing.T, c *raClient, leaf, issuer *x509.Certificate) *ocsp.Response {
	t.Helper()
	req, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(c.dev.url + "/ocsp/" + base64.StdEncoding.EncodeToString(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	answer, err := ocsp.ParseResponseForCert(raw, leaf, issuer)
	if err != nil {
		t.Fatalf("OCSP answer: %v", err)
	}
	if time.Until(answer.NextUpdate) <= 0 {
		t.Errorf("answer: nextUpdate %s", answer.NextUpdate)
	}
	return answer
}

// newCertificateAnswer enrolls a citizen-auth certificate (issued at once)
// and returns the OCSP answer the dev deployment gives for it.
func newCertificateAnswer(t *testing.T, c *raClient, issuing *x509.Certificate) *ocsp.Response {
	t.Helper()
	answer := ocspAnswer(t, c, enrollCitizen(t, c), issuing)
	if answer.Status != ocsp.Good {
		t.Errorf("answer: status %d", answer.Status)
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

// devPKCS11Tool runs pkcs11-tool, logged in, on the token of the sanad dev
// environment in dir.
func devPKCS11Tool(t *testing.T, env []string, dir string, args ...string) {
	t.Helper()
	module, err := hsm.DefaultModulePath()
	if err != nil {
		t.Fatal(err)
	}
	pin, err := os.ReadFile(filepath.Join(dir, "hsm-pin"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Tool(t, "pkcs11-tool"), append([]string{"--module", module, "--token-label", "sanad-dev", "--login", "--pin", "env:SANAD_TEST_PIN"}, args...)...)
	cmd.Env = append(env[:len(env):len(env)], "SOFTHSM2_CONF="+filepath.Join(dir, "softhsm2.conf"), "SANAD_TEST_PIN="+strings.TrimSpace(string(pin)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pkcs11-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// revokeByTwo has the dev officers, CA officers both, revoke the CA
// certificate serial (what) for keyCompromise: one officer's request is
// pending, and the second's has the CA revoke it.
func (c *raClient) revokeByTwo(t *testing.T, serial, what string) {
	t.Helper()
	if code, out := c.officer("Dana Officer", "revoke", serial, "--reason", "keyCompromise"); code != 0 || !strings.Contains(out, `"status": "pending"`) {
		t.Fatalf("the first CA officer's revoke of %s: exit %d; want pending\n%s", what, code, out)
	}
	if code, out := c.officer("Yerlan Officer", "revoke", serial, "--reason", "keyCompromise"); code != 0 || !strings.Contains(out, `"status": "revoked"`) {
		t.Fatalf("the second CA officer's revoke of %s: exit %d; want revoked\n%s", what, code, out)
	}
}
