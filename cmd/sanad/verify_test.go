package main

import (
	"bytes"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/testenv"
	"github.com/sanadpki/sanad/ra/jwsauth"
)

// verifyRun runs sanad verify in dir (the parent of a dev deployment's
// var/, so that its root is the default trust anchor) and returns the exit
// code and the report.
func verifyRun(t *testing.T, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(sanadBin, append([]string{"verify"}, args...)...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestVerifyAgainstDev is issue 8's acceptance end to end: a citizen's
// certificate from the dev RA signs with openssl cms and openssl smime and
// with sanad sign; sanad verify and POST /api/v1/verify report
// TOTAL_PASSED with the signer and the OCSP answer of the dev status tier;
// after an officer revokes the certificate, the earlier signature is
// REVOKED_NO_POE (with the OCSP proof) and a later one REVOKED.
func TestVerifyAgainstDev(t *testing.T) {
	requireSoftHSM(t)
	openssl := testenv.Tool(t, "openssl")
	env := sanadEnv()
	// A fresh directory for each start: the dev CA's certificates name
	// the port of the start that made them.
	var dir string
	dev := startDevOnFreePort(t, env, func() string { dir = filepath.Join(t.TempDir(), "var"); return dir })
	c := newRAClient(t, dev, dir, env)
	root, issuing := c.pems["root"], c.pems["issuing"]
	work := t.TempDir()
	key := mustECDSA(t, elliptic.P256())
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, certPath := filepath.Join(work, "citizen.key"), filepath.Join(work, "citizen.pem")
	cert := c.enrollApproved(certPath, "citizen-sign", person("KZ", "880312448217", "Aigerim", "Sadykova", "1988-03-12"),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(pkcs8Block(t, key)), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(work, "filing.txt")
	if err := os.WriteFile(doc, signDocument, 0o644); err != nil {
		t.Fatal(err)
	}
	opensslSign := func(name string, args ...string) string {
		t.Helper()
		out := filepath.Join(work, name)
		args = append(args, "-in", doc, "-signer", certPath, "-inkey", keyPath, "-certfile", issuing, "-out", out)
		if b, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return out
	}
	cmsDER := opensslSign("filing.p7s", "cms", "-sign", "-binary", "-outform", "DER")
	smime := opensslSign("filing.eml", "smime", "-sign")
	if code, out := runSanadEnv(t, env, "sign", doc, "--key", keyPath, "--cert", certPath, "--chain", issuing, "--out", filepath.Join(work, "sanad.p7s")); code != 0 {
		t.Fatalf("sanad sign: %d %s", code, out)
	}
	if code, out := runSanadEnv(t, env, "sign", doc, "--key", keyPath, "--cert", certPath, "--chain", issuing, "--jws", "--out", filepath.Join(work, "sanad.jws")); code != 0 {
		t.Fatalf("sanad sign --jws: %d %s", code, out)
	}
	parent := filepath.Dir(dir)

	// sanad verify: the dev root from ./var/dev.json, or --roots.
	for _, tc := range []struct {
		name, timeSource string
		args             []string
	}{
		{"openssl cms", "signing-time attribute", []string{cmsDER, "--content", doc}},
		{"openssl smime", "signing-time attribute", []string{smime}},
		{"sanad sign", "signing-time attribute", []string{filepath.Join(work, "sanad.p7s"), "--content", doc, "--roots", root}},
		{"sanad sign --jws", "sigT header", []string{filepath.Join(work, "sanad.jws"), "--content", doc}},
	} {
		code, out := verifyRun(t, parent, env, tc.args...)
		if code != 0 || !strings.Contains(out, ": TOTAL_PASSED (1 signature(s))") || !strings.Contains(out, "IDCKZ-880312448217") || !strings.Contains(out, "("+tc.timeSource+")") ||
			!strings.Contains(out, "profile:      citizen-sign") || !strings.Contains(out, "good by ocsp") || !strings.Contains(out, "good by crl") {
			t.Errorf("%s: sanad verify exit %d\n%s", tc.name, code, out)
		}
	}
	// A changed document, as JSON.
	changed := filepath.Join(work, "changed.txt")
	if err := os.WriteFile(changed, append([]byte("X"), signDocument...), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := verifyRun(t, parent, env, cmsDER, "--content", changed, "--json")
	var res struct {
		Indication    string `json:"indication"`
		SubIndication string `json:"sub_indication"`
		Reports       []struct {
			Chain []struct {
				Status       string    `json:"status"`
				RevokedAt    time.Time `json:"revoked_at"`
				Reason       string    `json:"revocation_reason"`
				OCSPResponse []byte    `json:"ocsp_response"`
			} `json:"chain"`
		} `json:"reports"`
	}
	// The JSON report, then (on stderr) why the exit code is 1.
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&res); err != nil || code != 1 || res.SubIndication != "HASH_FAILURE" {
		t.Errorf("changed document: exit %d %v\n%s", code, err, out)
	}
	if code, out := verifyRun(t, parent, env, cmsDER, "--content", doc, "--roots", c.pems["ocsp-signer"]); code != 1 || !strings.Contains(out, "NO_CERTIFICATE_CHAIN_FOUND") {
		t.Errorf("another trust anchor: exit %d\n%s", code, out)
	}
	if code, out := verifyRun(t, work, env, cmsDER); code != exitUsage {
		t.Errorf("no trust anchor outside a dev directory: exit %d\n%s", code, out)
	}
	// The dev root given as another PKI's: the citizen's signature passes,
	// held to what any PKI's signer is held to.
	if code, out := verifyRun(t, work, env, filepath.Join(work, "sanad.p7s"), "--content", doc, "--foreign-roots", root); code != 0 || !strings.Contains(out, "a signer of another PKI") {
		t.Errorf("--foreign-roots: exit %d\n%s", code, out)
	}

	// POST /api/v1/verify, multipart and JSON.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for name, path := range map[string]string{"signature": cmsDER, "content": doc} {
		fw, _ := mw.CreateFormFile(name, filepath.Base(path))
		b, _ := os.ReadFile(path)
		fw.Write(b)
	}
	mw.Close()
	if code, v := c.do(http.MethodPost, "/api/v1/verify", mw.FormDataContentType(), body.Bytes(), nil); code != 200 || v["indication"] != "TOTAL_PASSED" {
		t.Errorf("POST multipart: %d %v", code, v)
	}
	jws, _ := os.ReadFile(filepath.Join(work, "sanad.jws"))
	req, _ := json.Marshal(map[string]string{"signature_text": string(jws), "content": base64.StdEncoding.EncodeToString(signDocument)})
	if code, v := c.do(http.MethodPost, "/api/v1/verify", "application/json", req, nil); code != 200 || v["indication"] != "TOTAL_PASSED" || v["format"] != "JWS" {
		t.Errorf("POST JSON: %d %v", code, v)
	}
	if code, p := c.do(http.MethodPost, "/api/v1/verify", "text/plain", jws, nil); code != 415 || problemType(p) != "unsupported-media-type" {
		t.Errorf("POST text/plain: %d %v", code, p)
	}

	// A node of the verify role alone, on the same store: no HSM, the
	// store's root as trust anchor, the API document served, and no
	// revocation cache (it asks the dev status tier every time).
	devYAML, err := os.ReadFile(filepath.Join(dir, "sanad.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	nodeYAML := filepath.Join(dir, "verify-node.yaml")
	if err := os.WriteFile(nodeYAML, append(devYAML, "\nverify: {revocation_cache_ttl: 0s}\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	node := startNode(t, append(append([]string{}, env...), "SANAD_HTTP_ADDR=127.0.0.1:0"), nodeYAML, "verify")
	nodeVerify := func() map[string]any {
		t.Helper()
		resp, err := http.Post(node+"/api/v1/verify", mw.FormDataContentType(), bytes.NewReader(body.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("verify node: %d %v", resp.StatusCode, err)
		}
		return out
	}
	if out := nodeVerify(); out["indication"] != "TOTAL_PASSED" {
		t.Errorf("verify node: %v", out)
	}
	if code, doc := httpGet(t, node+"/api/v1/openapi.json"); code != 200 || !strings.Contains(doc, `"/api/v1/verify"`) {
		t.Errorf("verify node's API document: %d", code)
	}

	// An officer revokes; the signature made before is REVOKED_NO_POE,
	// with the OCSP answer kept; one made after is REVOKED. Signing
	// times have one-second resolution, hence the pauses.
	time.Sleep(1100 * time.Millisecond)
	serial := jwsauth.SerialHex(cert.SerialNumber)
	if code, out := c.officer("Dana Officer", "revoke", serial, "--reason", "keyCompromise"); code != 0 {
		t.Fatalf("revoke: %d %s", code, out)
	}
	time.Sleep(1100 * time.Millisecond)
	after := opensslSign("after.p7s", "cms", "-sign", "-binary", "-outform", "DER")
	testenv.WaitFor(t, "sanad verify to see the revocation (neither TOTAL_PASSED nor TRY_LATER)", func() bool {
		code, out = verifyRun(t, parent, env, cmsDER, "--content", doc, "--json")
		res.Reports = nil
		if err := json.NewDecoder(strings.NewReader(out)).Decode(&res); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return res.SubIndication != "" && res.SubIndication != "TRY_LATER"
	})
	if code != 1 || res.Indication != "INDETERMINATE" || res.SubIndication != "REVOKED_NO_POE" {
		t.Fatalf("signed before the revocation: exit %d\n%s", code, out)
	}
	leaf := res.Reports[0].Chain[0]
	if leaf.Status != "revoked" || leaf.Reason != "keyCompromise" || leaf.RevokedAt.IsZero() || len(leaf.OCSPResponse) == 0 {
		t.Errorf("revoked leaf in the report: %+v", leaf)
	}
	// The OCSP proof in the report is one openssl accepts.
	respPath := filepath.Join(work, "proof.der")
	os.WriteFile(respPath, leaf.OCSPResponse, 0o644)
	if b, err := exec.Command(openssl, "ocsp", "-respin", respPath, "-issuer", issuing, "-CAfile", root, "-cert", certPath).CombinedOutput(); err != nil ||
		!strings.Contains(string(b), "revoked") || !strings.Contains(string(b), "Response verify OK") {
		t.Errorf("openssl ocsp -respin of the kept proof: %v\n%s", err, b)
	}
	if code, out := verifyRun(t, parent, env, after, "--content", doc); code != 1 || !strings.Contains(out, "TOTAL_FAILED / REVOKED") {
		t.Errorf("signed after the revocation: exit %d\n%s", code, out)
	}
	// The verify node, which keeps no answer, sees the revocation too.
	if out := nodeVerify(); out["sub_indication"] != "REVOKED_NO_POE" {
		t.Errorf("verify node after the revocation: %v", out)
	}
}
