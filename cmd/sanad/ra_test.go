package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/internal/testenv"
	"github.com/sanadpki/sanad/ra"
	"github.com/sanadpki/sanad/ra/jwsauth"
)

// raClient drives a dev deployment over real HTTP.
type raClient struct {
	t    *testing.T
	dev  *devProcess
	dir  string // the dev directory (…/var)
	env  []string
	m    devManifest
	pems map[string]string // issuer role → PEM path
}

// newRAClient is a client of the dev deployment in dir, with its
// dev.json read and the PEM path of each issuer role.
func newRAClient(t *testing.T, dev *devProcess, dir string, env []string) *raClient {
	t.Helper()
	c := &raClient{t: t, dev: dev, dir: dir, env: env, pems: map[string]string{}}
	raw, err := os.ReadFile(filepath.Join(dir, "dev.json"))
	if err != nil || json.Unmarshal(raw, &c.m) != nil {
		t.Fatalf("dev.json: %s, %v", raw, err)
	}
	for _, is := range c.m.Issuers {
		c.pems[is.Role] = is.Certificate
	}
	return c
}

func (c *raClient) do(method, path, contentType string, body []byte, header map[string]string) (int, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.dev.url+path, strings.NewReader(string(body)))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("%s %s: %d %q is not JSON", method, path, resp.StatusCode, raw)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		c.t.Errorf("%s %s: %d with Content-Type %q", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, out
}

// applicant is someone of the sample registry with a fresh key.
type applicant struct {
	key  *ecdsa.PrivateKey
	body map[string]any
}

func newApplicant(t *testing.T, profile string, a map[string]any) applicant {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return applicant{key: key, body: map[string]any{"profile": profile, "applicant": a,
		"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}}
}

func person(country, id, given, family, born string) map[string]any {
	return map[string]any{"kind": "person", "country": country, "national_id": id, "given_name": given, "family_name": family, "birth_date": born}
}

// enroll posts an application and, when it is accepted, proves it with the
// code from the dev outbox; it returns the enrollment after the proof.
func (c *raClient) enroll(a applicant) (int, map[string]any) {
	c.t.Helper()
	body, _ := json.Marshal(a.body)
	code, out := c.do(http.MethodPost, "/api/v1/enrollments", "application/json", body, nil)
	if code != http.StatusCreated {
		return code, out
	}
	id := out["id"].(string)
	if out["state"] != "pending_proof" {
		c.t.Fatalf("new enrollment: %v", out)
	}
	raw, err := os.ReadFile(filepath.Join(c.dir, "outbox", id+".json"))
	if err != nil {
		c.t.Fatal(err)
	}
	var msg struct{ To, Channel, Code string }
	if err := json.Unmarshal(raw, &msg); err != nil || msg.Code == "" || msg.To == "" || msg.Channel == "" {
		c.t.Fatalf("outbox %s: %s", id, raw)
	}
	// A wrong code first: counted, refused with its own type.
	wrong := "000000"
	if msg.Code == wrong {
		wrong = "111111"
	}
	if code, p := c.do(http.MethodPost, "/api/v1/enrollments/"+id+"/proof", "application/json", []byte(`{"code":"`+wrong+`"}`), nil); code != 422 || p["type"] != "urn:sanad:problem:wrong-code" {
		c.t.Fatalf("wrong code: %d %v", code, p)
	}
	code, out = c.do(http.MethodPost, "/api/v1/enrollments/"+id+"/proof", "application/json", []byte(`{"code":"`+msg.Code+`"}`), nil)
	if code != http.StatusOK {
		c.t.Fatalf("proof: %d %v", code, out)
	}
	// Single use.
	if code, p := c.do(http.MethodPost, "/api/v1/enrollments/"+id+"/proof", "application/json", []byte(`{"code":"`+msg.Code+`"}`), nil); code != 409 || p["type"] != "urn:sanad:problem:wrong-state" {
		c.t.Errorf("code used twice: %d %v", code, p)
	}
	return code, out
}

// officer runs `sanad officer ARGS --officer NAME` in the dev directory's
// parent, as a newcomer would after `make run`.
func (c *raClient) officer(name string, args ...string) (int, string) {
	c.t.Helper()
	return c.sanad(nil, append(append([]string{"officer"}, args...), "--officer", name)...)
}

// sanad runs the binary with args, and env added to the client's, in the
// dev directory's parent, as a newcomer would after `make run`.
func (c *raClient) sanad(env []string, args ...string) (int, string) {
	c.t.Helper()
	cmd := exec.Command(sanadBin, args...)
	cmd.Dir = filepath.Dir(c.dir)
	cmd.Env = append(slices.Clone(c.env), env...)
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return 0, string(out)
}

func problemType(p map[string]any) string {
	s, _ := p["type"].(string)
	return strings.TrimPrefix(s, "urn:sanad:problem:")
}

// TestEnrollmentEndToEnd is issue 6's acceptance over real HTTP, on each
// database: a KZ citizen enrolls, proves, is approved by an officer, and
// gets a citizen-sign certificate that OpenSSL verifies with the CA's CRL;
// a PK business seal needs two different officers; the registry's refusals
// each have their own problem type; a replayed officer request is refused;
// a holder revokes with its own key, and OCSP and the CRL show it.
func TestEnrollmentEndToEnd(t *testing.T) {
	requireSoftHSM(t)
	openssl := testenv.Tool(t, "openssl")
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			env := sanadEnv()
			dsn := ""
			if driver == store.DriverPostgres {
				dsn = storetest.PostgresDSN(t)
				env = append(env, "SANAD_DATABASE_DRIVER=postgres", "SANAD_DATABASE_DSN="+dsn)
			}
			dir := filepath.Join(t.TempDir(), "var")
			c := newRAClient(t, startDevEnv(t, dir, env), dir, env)
			if len(c.m.Officers) != 2 || c.m.Registry == "" {
				t.Fatalf("dev.json: %+v", c.m)
			}

			// What no route takes is a problem document too.
			if code, p := c.do(http.MethodGet, "/api/v1/nothing", "", nil, nil); code != 404 || problemType(p) != "not-found" {
				t.Errorf("unknown path: %d %v", code, p)
			}
			if code, p := c.do(http.MethodDelete, "/api/v1/enrollments", "", nil, nil); code != 405 || problemType(p) != "method-not-allowed" {
				t.Errorf("wrong method: %d %v", code, p)
			}

			// A KZ citizen: enroll, prove, one officer approves, issued.
			citizen := newApplicant(t, "citizen-sign", person("KZ", "880312448217", "Aigerim", "Sadykova", "1988-03-12"))
			code, e := c.enroll(citizen)
			if code != 200 || e["state"] != "pending_approval" {
				t.Fatalf("after proof: %d %v", code, e)
			}
			id := e["id"].(string)
			if code, out := c.officer("Dana Officer", "queue"); code != 0 || !strings.Contains(out, id) {
				t.Fatalf("officer queue: %d %s", code, out)
			}
			if code, out := c.officer("Dana Officer", "approve", id); code != 0 || !strings.Contains(out, `"state": "issued"`) {
				t.Fatalf("officer approve: %d %s", code, out)
			}
			// The applicant is told, beside the code in the outbox.
			if raw, err := os.ReadFile(filepath.Join(c.dir, "outbox", id+".issued.json")); err != nil || !strings.Contains(string(raw), `"event": "issued"`) {
				t.Errorf("the applicant's notice of the approval: %v %s", err, raw)
			}
			code, e = c.do(http.MethodGet, "/api/v1/enrollments/"+id, "", nil, nil)
			if code != 200 || e["state"] != "issued" || e["certificate"] == nil || e["serial"] == nil {
				t.Fatalf("issued enrollment: %d %v", code, e)
			}
			block, _ := pem.Decode([]byte(e["certificate"].(string)))
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if cert.Subject.SerialNumber != "IDCKZ-880312448217" || cert.Subject.CommonName != "Aigerim Sadykova" || !cert.PublicKey.(*ecdsa.PublicKey).Equal(&citizen.key.PublicKey) {
				t.Errorf("citizen certificate subject %s", cert.Subject)
			}
			if e["serial"] != jwsauth.SerialHex(cert.SerialNumber) {
				t.Errorf("serial %v, certificate %s", e["serial"], jwsauth.SerialHex(cert.SerialNumber))
			}
			db := openStoreOf(t, dir, driver, dsn)
			c.verifyWithCRL(db, openssl, cert, false)
			// The chain the enrollment gives is what openssl needs beside
			// the root.
			chainPEM := filepath.Join(t.TempDir(), "chain.pem")
			if chain, _ := e["chain"].(string); chain == "" || os.WriteFile(chainPEM, []byte(chain), 0o600) != nil {
				t.Fatalf("issued enrollment without its chain: %v", e)
			}
			c.verifyWithCRLOf(db, openssl, "issuing", chainPEM, cert, false)
			serialHex := jwsauth.SerialHex(cert.SerialNumber)
			if code, v := c.do(http.MethodGet, "/api/v1/certificates/"+serialHex, "", nil, nil); code != 200 || v["status"] != "good" || v["issuer"] != "issuing" || v["serial"] != serialHex {
				t.Errorf("GET certificate: %d %v", code, v)
			}

			// A PK business seal: two different officers; one twice is refused.
			seal := newApplicant(t, "business-seal", map[string]any{"kind": "business", "country": "PK", "registration_number": "32778761",
				"representative": person("PK", "6110148392762", "Ayesha", "Khan", "1987-06-14")})
			code, e = c.enroll(seal)
			if code != 200 || e["state"] != "pending_approval" {
				t.Fatalf("business after proof: %d %v", code, e)
			}
			sealID := e["id"].(string)
			if code, out := c.officer("Dana Officer", "approve", sealID); code != 0 || !strings.Contains(out, `"state": "pending_approval"`) {
				t.Fatalf("first approval: %d %s", code, out)
			}
			if code, out := c.officer("Dana Officer", "approve", sealID); code != 1 || !strings.Contains(out, "already-decided") {
				t.Fatalf("same officer twice: %d %s", code, out)
			}
			if code, out := c.officer("Yerlan Officer", "approve", sealID); code != 0 || !strings.Contains(out, `"state": "issued"`) {
				t.Fatalf("second officer: %d %s", code, out)
			}
			// The company seals a document (sanad sign); a relying party's
			// OpenSSL verifies it with its default purpose (S/MIME signing),
			// as it does a citizen's signature.
			_, e = c.do(http.MethodGet, "/api/v1/enrollments/"+sealID, "", nil, nil)
			sealPEM, _ := e["certificate"].(string)
			sealBlock, _ := pem.Decode([]byte(sealPEM))
			if sealBlock == nil {
				t.Fatalf("the seal enrollment holds no certificate: %v", e)
			}
			sealCert, err := x509.ParseCertificate(sealBlock.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			sealCertFile, sealKeyFile := c.holderFiles(sealCert, seal.key)
			invoice := filepath.Join(t.TempDir(), "invoice.txt")
			if err := os.WriteFile(invoice, []byte("Invoice 2026-118, PKR 1,250,000\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if code, out := runSanadEnv(t, c.env, "sign", invoice, "--key", sealKeyFile, "--cert", sealCertFile, "--chain", c.pems["issuing"]); code != 0 {
				t.Fatalf("sanad sign with the seal: exit %d\n%s", code, out)
			}
			if out, err := exec.Command(openssl, "cms", "-verify", "-binary", "-inform", "PEM", "-in", invoice+".p7s", "-content", invoice,
				"-CAfile", c.pems["root"], "-out", os.DevNull).CombinedOutput(); err != nil {
				t.Errorf("openssl cms -verify of the seal's signature, default purpose: %v\n%s", err, out)
			}

			// An officer reviews and rejects; another revokes the seal.
			pkCitizen := newApplicant(t, "citizen-sign", person("PK", "61101-4839276-2", "Ayesha", "Khan", "1987-06-14"))
			code, e = c.enroll(pkCitizen)
			if code != 200 || e["state"] != "pending_approval" {
				t.Fatalf("PK citizen after proof: %d %v", code, e)
			}
			pkID := e["id"].(string)
			if code, out := c.officer("Yerlan Officer", "show", pkID); code != 0 || !strings.Contains(out, "IDCPK-6110148392762") || !strings.Contains(out, "registry_evidence") {
				t.Fatalf("officer show: %d %s", code, out)
			}
			if code, out := c.officer("Yerlan Officer", "reject", pkID, "--reason", "the photo does not match"); code != 0 || !strings.Contains(out, `"state": "rejected"`) || !strings.Contains(out, "the photo does not match") {
				t.Fatalf("officer reject: %d %s", code, out)
			}
			// The helpdesk: Ayesha Khan asks what became of her request.
			if code, out := c.officer("Dana Officer", "find", "IDCPK-6110148392762"); code != 0 || !strings.Contains(out, pkID) ||
				!strings.Contains(out, "the photo does not match") || strings.Contains(out, sealID) {
				t.Fatalf("officer find: %d %s", code, out)
			}
			if code, out := c.officer("Dana Officer", "find", "6110148392762"); code == 0 || !strings.Contains(out, "semantics identifier") {
				t.Errorf("officer find with a bare identifier: %d %s", code, out)
			}
			_, e = c.do(http.MethodGet, "/api/v1/enrollments/"+sealID, "", nil, nil)
			sealSerial, _ := e["serial"].(string)
			if code, out := c.officer("Yerlan Officer", "revoke", sealSerial, "--reason", "affiliationChanged"); code != 0 || !strings.Contains(out, `"status": "revoked"`) {
				t.Fatalf("officer revoke %s: %d %s", sealSerial, code, out)
			}
			if code, out := c.officer("Yerlan Officer", "revoke", sealSerial, "--reason", "affiliationChanged"); code != 1 || !strings.Contains(out, "already-revoked") {
				t.Fatalf("officer revoke twice: %d %s", code, out)
			}

			// Refusals, each with its own problem type; nothing stored.
			for _, tc := range []struct {
				name, want string
				a          applicant
			}{
				{"wrong name", "registry-mismatch", newApplicant(t, "citizen-sign", person("KZ", "880312448217", "Aigerim", "Wrongname", "1988-03-12"))},
				{"dead person", "subject-deceased", newApplicant(t, "citizen-sign", person("KZ", "410509301556", "Bolat", "Kassymov", "1941-05-09"))},
				{"bad checksum", "invalid-identifier", newApplicant(t, "citizen-sign", person("KZ", "880312448218", "Aigerim", "Sadykova", "1988-03-12"))},
				{"inactive business", "business-inactive", newApplicant(t, "business-seal", map[string]any{"kind": "business", "country": "KZ",
					"registration_number": "190640833025", "representative": person("KZ", "760218326482", "Dauren", "Abenov", "1976-02-18")})},
				{"not a representative", "not-a-representative", newApplicant(t, "business-seal", map[string]any{"kind": "business", "country": "KZ",
					"registration_number": "150340219487", "representative": person("KZ", "901105450936", "Madina", "Omarova", "1990-11-05")})},
			} {
				if code, p := c.enroll(tc.a); code < 400 || problemType(p) != tc.want {
					t.Errorf("%s: %d %v, want %s", tc.name, code, p, tc.want)
				} else if d, _ := p["detail"].(string); d == "" {
					// Each says why, not only what.
					t.Errorf("%s: %s with no detail", tc.name, tc.want)
				}
			}

			// A replayed officer request is refused.
			var dana devOfficer
			for _, o := range c.m.Officers {
				if o.Name == "Dana Officer" {
					dana = o
				}
			}
			signer, err := jwsauth.LoadSigner(dana.Key)
			if err != nil {
				t.Fatal(err)
			}
			danaCert, err := jwsauth.LoadCertificate(dana.Cert)
			if err != nil {
				t.Fatal(err)
			}
			queue, err := jwsauth.Sign(jwsauth.Action{Action: "queue", Audience: ra.AudienceQueue}, danaCert, signer, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range []int{200, 409} {
				code, p := c.do(http.MethodGet, "/api/v1/officer/queue", "", nil, map[string]string{"Authorization": "JWS " + queue})
				if code != want || (i == 1 && problemType(p) != "replayed-request") {
					t.Errorf("officer request, sent %d times: %d %v", i+1, code, p)
				}
			}

			// The holder renews on a new key with a request signed by the old
			// one: no new code, an officer approves as for citizen-sign
			// enrollments, and the new certificate, same subject, passes
			// openssl verify with the CRL.
			renewKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			renewCSR, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, renewKey)
			if err != nil {
				t.Fatal(err)
			}
			// The holder asks with sanad holder: the certificate, its key
			// (0600) and the new key's CSR in files, the RA's URL from
			// ./var/dev.json.
			certFile, keyFile := c.holderFiles(cert, citizen.key)
			csrFile := filepath.Join(t.TempDir(), "new.csr")
			if err := os.WriteFile(csrFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: renewCSR}), 0o644); err != nil {
				t.Fatal(err)
			}
			holder := func(args ...string) map[string]any {
				t.Helper()
				code, out := c.holder(keyFile, certFile, args...)
				var v map[string]any // the answer, before what is said on stderr
				if code != 0 || json.NewDecoder(strings.NewReader(out[strings.Index(out, "{"):])).Decode(&v) != nil {
					t.Fatalf("sanad holder %s: exit %d\n%s", strings.Join(args, " "), code, out)
				}
				return v
			}
			pendingOut := filepath.Join(t.TempDir(), "renewed.pem")
			e = holder("renew", "--csr", csrFile, "--out", pendingOut)
			if e["state"] != "pending_approval" || e["renews"] != "issuing/"+serialHex {
				t.Fatalf("renewal: %v", e)
			}
			if _, err := os.Stat(pendingOut); !os.IsNotExist(err) {
				t.Errorf("a renewal waiting for officers wrote %s: %v", pendingOut, err)
			}
			// Asked again while it waits: still refused, with the renewal
			// shown and what to do if it is not the holder's.
			if code, out := c.holder(keyFile, certFile, "renew", "--csr", csrFile, "--out", pendingOut); code != 1 || !strings.Contains(out, "already-renewed") ||
				!strings.Contains(out, `"state": "pending_approval"`) || !strings.Contains(out, "no certificate yet") {
				t.Errorf("sanad holder renew while the renewal waits: exit %d\n%s", code, out)
			}
			if code, out := c.officer("Dana Officer", "approve", e["id"].(string)); code != 0 || !strings.Contains(out, `"state": "issued"`) {
				t.Fatalf("officer approves the renewal: %d %s", code, out)
			}
			code, e = c.do(http.MethodGet, "/api/v1/enrollments/"+e["id"].(string), "", nil, nil)
			if code != 200 || e["state"] != "issued" {
				t.Fatalf("renewed enrollment: %d %v", code, e)
			}
			block, _ = pem.Decode([]byte(e["certificate"].(string)))
			renewed, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if renewed.Subject.String() != cert.Subject.String() || !renewed.PublicKey.(*ecdsa.PublicKey).Equal(&renewKey.PublicKey) {
				t.Errorf("renewed certificate: subject %s, key of the renewal %v", renewed.Subject, renewed.PublicKey.(*ecdsa.PublicKey).Equal(&renewKey.PublicKey))
			}
			// Asked again once approved: already-renewed, and sanad holder
			// fetches the renewal and writes its certificate.
			if again := holder("renew", "--csr", csrFile, "--out", pendingOut); again["id"] != e["id"] || again["state"] != "issued" {
				t.Errorf("sanad holder renew again: %v", again)
			}
			if got := readPEMCert(t, pendingOut); !bytes.Equal(got.Raw, renewed.Raw) {
				t.Errorf("sanad holder renew again wrote %s, not the renewed certificate", got.Subject)
			}
			// With another key's CSR, that renewal is not this one: the
			// refusal stands and nothing is written.
			otherCSR, otherOut := filepath.Join(t.TempDir(), "other.csr"), filepath.Join(t.TempDir(), "other.pem")
			if err := os.WriteFile(otherCSR, []byte(newApplicant(t, "citizen-sign", nil).body["csr"].(string)), 0o644); err != nil {
				t.Fatal(err)
			}
			if code, out := c.holder(keyFile, certFile, "renew", "--csr", otherCSR, "--out", otherOut); code != 1 || !strings.Contains(out, "not for the CSR's key") ||
				!strings.Contains(out, "keyCompromise") {
				t.Errorf("sanad holder renew with another key: exit %d\n%s", code, out)
			}
			if _, err := os.Stat(otherOut); !os.IsNotExist(err) {
				t.Errorf("a renewal for another key wrote %s: %v", otherOut, err)
			}
			c.verifyWithCRL(db, openssl, renewed, false)

			// The holder revokes with its own key.
			if out := holder("revoke", "--reason", "keyCompromise"); out["status"] != "revoked" || out["serial"] != jwsauth.SerialHex(cert.SerialNumber) {
				t.Fatalf("holder revocation: %v", out)
			}
			resp, err := db.OCSPResponse(context.Background(), "issuing", cert.SerialNumber.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			issuing := readPEMCert(t, c.pems["issuing"])
			parsed, err := ocsp.ParseResponseForCert(resp.DER, cert, issuing)
			if err != nil || parsed.Status != ocsp.Revoked || parsed.RevocationReason != ocsp.KeyCompromise {
				t.Errorf("OCSP after holder revocation: %+v, %v", parsed, err)
			}
			c.verifyWithCRL(db, openssl, cert, true) // within the publisher's debounce
			// The renewal the old key asked for is withdrawn with it
			// (privilegeWithdrawn): the thief may have been the one asking.
			c.verifyWithCRL(db, openssl, renewed, true)
			// The holder is told of both revocations in the outbox, beside
			// the codes: the one they asked for, and the withdrawal.
			for cert, reason := range map[*x509.Certificate]string{cert: "keyCompromise", renewed: "privilegeWithdrawn"} {
				row, err := db.Certificate(context.Background(), "issuing", cert.SerialNumber.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				raw, err := os.ReadFile(filepath.Join(c.dir, "outbox", row.EnrollmentID+"."+jwsauth.SerialHex(cert.SerialNumber)+"."+reason+".json"))
				var m ra.Message
				if err != nil || json.Unmarshal(raw, &m) != nil || m.Serial != jwsauth.SerialHex(cert.SerialNumber) || m.Reason != reason || m.To == "" ||
					!strings.Contains(m.Notice, "("+reason+")") {
					t.Errorf("revocation notice of %X in the outbox: %v %s", cert.SerialNumber, err, raw)
				}
			}
			if code, metrics := httpGet(t, c.dev.url+"/metrics"); code != 200 || !strings.Contains(metrics, "\nsanad_ra_revocation_notices_unsent 0\n") ||
				!strings.Contains(metrics, "\nsanad_ra_outcome_notices_unsent 0\n") || !strings.Contains(metrics, "\nsanad_ra_enrollments_waiting{state=\"approved\"} 0\n") {
				t.Errorf("metrics: %d, want sanad_ra_revocation_notices_unsent 0, sanad_ra_outcome_notices_unsent 0 and no enrollment approved and waiting", code)
			} else {
				// Every enrollment step and issuance went through a group
				// commit, several to one at times, never fewer.
				commits, calls := metricValue(t, metrics, "sanad_store_group_commits_total"), metricValue(t, metrics, "sanad_store_group_calls_total")
				if commits < 1 || calls < commits || metricValue(t, metrics, "sanad_store_group_reruns_total") > commits {
					t.Errorf("group commits: %v commits for %v callers", commits, calls)
				}
				// Their time is counted (store's TestGroupRerunsWithSavepoints
				// holds the two to what they measure).
				if busy, wait := metricValue(t, metrics, "sanad_store_group_busy_seconds_total"), metricValue(t, metrics, "sanad_store_group_wait_seconds_total"); busy <= 0 || wait <= 0 {
					t.Errorf("group commits: busy %vs, callers waited %vs", busy, wait)
				}
			}
			// An auditor asks what happened to the certificate, by its serial
			// as openssl prints it: the CA's and the RA's events, each
			// hash intact.
			code, out := c.sanad(nil, "audit", "list", "--object", "issuing/"+jwsauth.SerialHex(cert.SerialNumber), "--json")
			var actions []string
			for line := range strings.Lines(out) {
				var ev struct {
					Action string `json:"action"`
					HashOK bool   `json:"hash_ok"`
				}
				if err := json.Unmarshal([]byte(line), &ev); err != nil || !ev.HashOK {
					t.Errorf("audit list line %q: %v", line, err)
				}
				actions = append(actions, ev.Action)
			}
			if want := []string{"certificate.intent", "certificate.issue", "certificate.revoke", "certificate.revoke.notice"}; code != 0 || !slices.Equal(actions, want) {
				t.Errorf("sanad audit list --object: exit %d, actions %v, want %v\n%s", code, actions, want, out)
			}
			if code, out := c.sanad(nil, "audit", "list", "--since", "yesterday"); code != 2 || !strings.Contains(out, "RFC 3339") {
				t.Errorf("sanad audit list --since yesterday: exit %d, want 2 naming RFC 3339\n%s", code, out)
			}
			if code, v := c.do(http.MethodGet, "/api/v1/certificates/"+serialHex, "", nil, nil); code != 200 || v["status"] != "revoked" || v["reason"] != "keyCompromise" {
				t.Errorf("GET revoked certificate: %d %v", code, v)
			}
			req, _ := http.NewRequest(http.MethodGet, c.dev.url+"/api/v1/certificates/"+serialHex, nil)
			req.Header.Set("Accept", "application/pkix-cert")
			if resp, err := http.DefaultClient.Do(req); err != nil {
				t.Error(err)
			} else {
				der, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.Header.Get("Content-Type") != "application/pkix-cert" || string(der) != string(cert.Raw) {
					t.Errorf("GET certificate as DER: %s, %d bytes", resp.Header.Get("Content-Type"), len(der))
				}
			}

			// An auto-approved certificate renewed with sanad holder renew
			// --out: the new certificate is written at once, same subject,
			// new key. Revoking the old one twice: the second is refused
			// with the RA's problem type, and no key is no request at all.
			nurlan := newApplicant(t, "citizen-auth", person("KZ", "850721313761", "Nurlan", "Bekov", "1985-07-21"))
			if code, e := c.enroll(nurlan); code != 200 || e["state"] != "issued" {
				t.Fatalf("citizen-auth enrollment: %d %v", code, e)
			} else {
				block, _ := pem.Decode([]byte(e["certificate"].(string)))
				old, err := x509.ParseCertificate(block.Bytes)
				if err != nil {
					t.Fatal(err)
				}
				certFile, keyFile := c.holderFiles(old, nurlan.key)
				next := newApplicant(t, "citizen-auth", nil)
				csrFile, newFile := filepath.Join(t.TempDir(), "next.csr"), filepath.Join(t.TempDir(), "next.pem")
				if err := os.WriteFile(csrFile, []byte(next.body["csr"].(string)), 0o644); err != nil {
					t.Fatal(err)
				}
				chainFile := filepath.Join(t.TempDir(), "chain.pem")
				if code, out := c.holder(keyFile, certFile, "renew", "--csr", csrFile, "--out", newFile, "--chain", chainFile); code != 0 || !strings.Contains(out, `"state": "issued"`) {
					t.Fatalf("sanad holder renew --out --chain: exit %d\n%s", code, out)
				}
				renewed := readPEMCert(t, newFile)
				if renewed.Subject.String() != old.Subject.String() || !renewed.PublicKey.(*ecdsa.PublicKey).Equal(&next.key.PublicKey) {
					t.Errorf("renewed by sanad holder: subject %s, new key %v", renewed.Subject, renewed.PublicKey.(*ecdsa.PublicKey).Equal(&next.key.PublicKey))
				}
				if err := renewed.CheckSignatureFrom(readPEMCert(t, chainFile)); err != nil {
					t.Errorf("the chain sanad holder wrote did not sign the renewed certificate: %v", err)
				}
				if code, out := c.holder(keyFile, certFile, "renew", "--csr", csrFile, "--chain", chainFile); code != 2 || !strings.Contains(out, "--chain needs --out") {
					t.Errorf("sanad holder renew --chain without --out: exit %d, want 2\n%s", code, out)
				}
				if code, out := c.holder(keyFile, certFile, "revoke", "--reason", "superseded"); code != 0 || !strings.Contains(out, `"status": "revoked"`) {
					t.Errorf("sanad holder revoke: exit %d\n%s", code, out)
				}
				if code, out := c.holder(keyFile, certFile, "revoke", "--reason", "superseded"); code != 1 || !strings.Contains(out, "urn:sanad:problem:certificate-revoked") {
					t.Errorf("sanad holder revoke, again: exit %d, want 1 and certificate-revoked\n%s", code, out)
				}
				if code, out := c.holder("", certFile, "revoke", "--reason", "superseded"); code != 2 || !strings.Contains(out, "--key") {
					t.Errorf("sanad holder revoke without a key: exit %d, want 2 naming --key\n%s", code, out)
				}

				// The registry now records Nurlan's death, and sent no event:
				// sanad registry recheck finds it, revokes his renewed
				// certificate and publishes the CRL; a second recheck does
				// nothing more.
				regPath := filepath.Join(dir, "registry.json")
				raw, err := os.ReadFile(regPath)
				if err != nil {
					t.Fatal(err)
				}
				dead := strings.Replace(string(raw), `"national_id": "850721313761", "given_name": "Nurlan", "family_name": "Bekov", "birth_date": "1985-07-21", "alive": true`,
					`"national_id": "850721313761", "given_name": "Nurlan", "family_name": "Bekov", "birth_date": "1985-07-21", "alive": false`, 1)
				if dead == string(raw) || os.WriteFile(regPath, []byte(dead), 0o644) != nil {
					t.Fatal("could not record Nurlan's death in the dev registry")
				}
				code, out := c.sanad(nil, "registry", "recheck", "IDCKZ-850721313761", "IDCKZ-880312448217")
				if code != 0 || !strings.Contains(out, "IDCKZ-850721313761\tdeceased\trevoked 1,") || !strings.Contains(out, "IDCKZ-880312448217\talive") {
					t.Errorf("sanad registry recheck: exit %d\n%s", code, out)
				}
				renewedSerial := jwsauth.SerialHex(renewed.SerialNumber)
				if code, v := c.do(http.MethodGet, "/api/v1/certificates/"+renewedSerial, "", nil, nil); code != 200 || v["status"] != "revoked" || v["reason"] != "cessationOfOperation" {
					t.Errorf("the certificate of a person the recheck found dead: %d %v", code, v)
				}
				c.verifyWithCRL(db, openssl, renewed, true)
				if code, out := c.sanad(nil, "registry", "recheck", "IDCKZ-850721313761", "--json"); code != 0 || !strings.Contains(out, `"repeated":true`) {
					t.Errorf("sanad registry recheck, again: exit %d\n%s", code, out)
				}
				if code, out := c.sanad(nil, "registry", "recheck"); code != 2 {
					t.Errorf("sanad registry recheck without subjects: exit %d, want 2\n%s", code, out)
				}
			}

			// The registry reports a death, signed with the sample
			// registry's key that sanad dev made: the person's certificate
			// is revoked, cessationOfOperation, and the CRL shows it.
			if c.m.RegistryEventKey == "" {
				t.Errorf("dev.json names no registry_event_key: %+v", c.m)
			}
			arman := newApplicant(t, "citizen-auth", person("KZ", "011126570360", "Arman", "Seitkali", "2001-11-26"))
			code, e = c.enroll(arman)
			if code != 200 || e["state"] != "issued" {
				t.Fatalf("citizen-auth enrollment: %d %v", code, e)
			}
			block, _ = pem.Decode([]byte(e["certificate"].(string)))
			armans, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			armanSerial := jwsauth.SerialHex(armans.SerialNumber)
			code, out = c.sanad(nil, "registry", "sign-event", "--kind", "death", "--country", "KZ", "--national-id", "011126570360",
				"--event-id", "kz-death-e2e", "--url", c.dev.url)
			if code != 0 || !strings.Contains(out, `"outcome": "applied"`) || !strings.Contains(out, armanSerial) {
				t.Fatalf("sanad registry sign-event --url: exit %d\n%s", code, out)
			}
			if code, v := c.do(http.MethodGet, "/api/v1/certificates/"+armanSerial, "", nil, nil); code != 200 || v["status"] != "revoked" || v["reason"] != "cessationOfOperation" {
				t.Errorf("the dead person's certificate: %d %v", code, v)
			}
			c.verifyWithCRL(db, openssl, armans, true)
			code, out = c.sanad(nil, "registry", "events", "--json")
			var listed struct {
				EventID string `json:"id"`
				Outcome string `json:"outcome"`
				Subject string `json:"subject"`
				Result  struct {
					Revoked []string `json:"revoked"`
				} `json:"result"`
			}
			// The recheck's event above, then this one, oldest first.
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if code != 0 || len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &listed) != nil || listed.EventID != "KZ/kz-death-e2e" ||
				listed.Outcome != "applied" || !slices.Equal(listed.Result.Revoked, []string{armanSerial}) || !strings.Contains(lines[0], `"id":"KZ/recheck.`) ||
				listed.Subject != "IDCKZ-011126570360" {
				t.Errorf("sanad registry events --json: exit %d\n%s", code, out)
			}
			// In text, the subject by its identifier; none pending says so.
			if code, out := c.sanad(nil, "registry", "events"); code != 0 || !strings.Contains(out, "KZ/kz-death-e2e\tdeath\toccurred ") || !strings.Contains(out, "\tapplied\tIDCKZ-011126570360\n") {
				t.Errorf("sanad registry events: exit %d\n%s", code, out)
			}
			if code, out := c.sanad(nil, "registry", "events", "--pending"); code != 0 || !strings.Contains(out, "none waiting to be acted on") {
				t.Errorf("sanad registry events --pending: exit %d\n%s", code, out)
			}
			// From a directory below the quick start's, var/dev.json is
			// found above.
			below := filepath.Join(filepath.Dir(c.dir), "work", "deeper")
			if err := os.MkdirAll(below, 0o700); err != nil {
				t.Fatal(err)
			}
			fromBelow := exec.Command(sanadBin, "officer", "queue", "--officer", "Dana Officer")
			fromBelow.Dir, fromBelow.Env = below, c.env
			if out, err := fromBelow.CombinedOutput(); err != nil || !strings.Contains(string(out), `"enrollments"`) {
				t.Errorf("sanad officer queue from %s: %v\n%s", below, err, out)
			}
			// A dev.json others may write is not trusted (it names keys
			// and, for verify, roots).
			manifest := filepath.Join(c.dir, "dev.json")
			if err := os.Chmod(manifest, 0o666); err != nil {
				t.Fatal(err)
			}
			if code, out := c.sanad(nil, "officer", "queue", "--officer", "Dana Officer"); code == 0 || !strings.Contains(out, "is not trusted") {
				t.Errorf("sanad officer queue with a world-writable dev.json: exit %d\n%s", code, out)
			}
			if err := os.Chmod(manifest, 0o644); err != nil {
				t.Fatal(err)
			}
			if code, out := c.sanad(nil, "registry", "sign-event", "--kind", "death", "--country", "KZ", "--national-id", "011126570361", "--url", c.dev.url); code != 1 || !strings.Contains(out, "invalid-identifier") {
				t.Errorf("an event with a bad checksum: exit %d, want 1 naming invalid-identifier\n%s", code, out)
			}
			c.dev.stop(t)
		})
	}
}

// holder runs `sanad holder ARGS --key KEY --cert CERT` in the dev
// directory's parent, which finds the RA's URL in ./var/dev.json.
func (c *raClient) holder(key, cert string, args ...string) (int, string) {
	c.t.Helper()
	return c.sanad([]string{"SANAD_HOLDER_KEY=", "SANAD_HOLDER_CERT="}, append(append([]string{"holder"}, args...), "--key", key, "--cert", cert)...)
}

// holderFiles writes a holder's certificate and key (0600) to files.
func (c *raClient) holderFiles(cert *x509.Certificate, key *ecdsa.PrivateKey) (certFile, keyFile string) {
	c.t.Helper()
	dir := c.t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(pkcs8Block(c.t, key)), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return certFile, keyFile
}

// verifyWithCRL waits for the CA's current CRL to list (or not) the
// certificate and judges the certificate with openssl verify -crl_check.
func (c *raClient) verifyWithCRL(db *store.DB, openssl string, cert *x509.Certificate, revoked bool) {
	c.t.Helper()
	c.verifyWithCRLOf(db, openssl, "issuing", c.pems["issuing"], cert, revoked)
}

// verifyWithCRLOf is verifyWithCRL for a certificate of the issuing CA
// issuerID, whose certificate is at issuerPEM.
func (c *raClient) verifyWithCRLOf(db *store.DB, openssl, issuerID, issuerPEM string, cert *x509.Certificate, revoked bool) {
	t := c.t
	t.Helper()
	var crlDER []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		latest, err := db.LatestCRL(context.Background(), issuerID)
		if err != nil {
			t.Fatal(err)
		}
		rl, err := x509.ParseRevocationList(latest.DER)
		if err != nil {
			t.Fatal(err)
		}
		listed := false
		for _, e := range rl.RevokedCertificateEntries {
			listed = listed || e.SerialNumber.Cmp(cert.SerialNumber) == 0
		}
		if listed == revoked {
			crlDER = latest.DER
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CRL does not show serial %X revoked=%v after 30 s", cert.SerialNumber, revoked)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tmp := t.TempDir()
	leaf, crlPath := filepath.Join(tmp, "leaf.pem"), filepath.Join(tmp, "crl.pem")
	os.WriteFile(leaf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600)
	os.WriteFile(crlPath, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crlDER}), 0o600)
	out, err := exec.Command(openssl, "verify", "-x509_strict", "-crl_check", "-CAfile", c.pems["root"], "-untrusted", issuerPEM,
		"-CRLfile", crlPath, leaf).CombinedOutput()
	if revoked {
		if err == nil || !strings.Contains(string(out), "certificate revoked") {
			t.Errorf("openssl verify of a revoked certificate: %v\n%s", err, out)
		}
	} else if err != nil {
		t.Errorf("openssl verify -crl_check: %v\n%s", err, out)
	}
}

func readPEMCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openStoreOf opens the dev deployment's database beside it (SQLite in WAL
// mode allows a second reader).
func openStoreOf(t *testing.T, dir, driver, dsn string) *store.DB {
	t.Helper()
	if driver == store.DriverSQLite {
		dsn = filepath.Join(dir, "sanad.db")
	}
	db, err := store.Open(context.Background(), store.Config{Driver: driver, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestReadKeyFile: ra.code_key_file is an owner-only file of at least 32
// bytes (a trailing newline aside).
func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key := strings.Repeat("ab", 16)
	if b, err := readKeyFile(write("ok", key+"\n", 0o600)); err != nil || string(b) != key {
		t.Errorf("a good key file: %q, %v", b, err)
	}
	for name, path := range map[string]string{
		"readable by others": write("open", key, 0o644),
		"too short":          write("short", key[:31]+"\n", 0o600),
		"a directory":        dir,
	} {
		if _, err := readKeyFile(path); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestRAWithHTTPRegistryAndWebhook: the production wiring of the RA, a
// national registry over HTTP and an SMS gateway webhook, each with a
// bearer token from a file, serves a whole enrollment: the registry is
// asked with its token, the code goes to the gateway with its token, and
// the applicant proves with it and is issued.
func TestRAWithHTTPRegistryAndWebhook(t *testing.T) {
	requireSoftHSM(t)
	dir := filepath.Join(t.TempDir(), "var")
	startDev(t, dir).stop(t)

	var mu sync.Mutex
	var lookups []string
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lookups = append(lookups, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer registry-token" || r.URL.Path != "/v1/persons/KZ/880312448217" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"country":"KZ","national_id":"880312448217","given_name":"Aigerim","family_name":"Sadykova",`+
			`"birth_date":"1988-03-12","alive":true,"phone":"+77017431862","version":"v7"}`)
	}))
	defer reg.Close()
	var sent []map[string]string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		if r.Header.Get("Authorization") != "Bearer gateway-token" || json.NewDecoder(r.Body).Decode(&m) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		sent = append(sent, m)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer gw.Close()
	for name, token := range map[string]string{"registry-token": "registry-token", "gateway-token": "gateway-token"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "sanad.yaml")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	prod := strings.NewReplacer(
		"registry_file: registry.json", "registry_url: "+reg.URL+"\n  registry_token_file: registry-token",
		"outbox_dir: outbox", "notify_webhook: "+gw.URL+"/send\n  notify_webhook_token_file: gateway-token",
	).Replace(string(raw))
	if !strings.Contains(prod, "registry_url") || !strings.Contains(prod, "notify_webhook") {
		t.Fatal("the dev configuration's RA lines moved; the test no longer replaces them")
	}
	if err := os.WriteFile(cfgPath, []byte(prod), 0o600); err != nil {
		t.Fatal(err)
	}
	// Without its key, codes that go out for real would be stored as plain
	// SHA-256: the RA does not start.
	keyless := regexp.MustCompile(`(?m)^\s*code_key_file:.*\n`).ReplaceAllString(prod, "") + "ca: {base_url: 'http://pki.sanad.example'}\n"
	if !strings.Contains(prod, "code_key_file:") || strings.Contains(keyless, "code_key_file:") {
		t.Fatal("the dev configuration's code_key_file line moved; the test no longer removes it")
	}
	keylessPath := filepath.Join(dir, "keyless.yaml")
	if err := os.WriteFile(keylessPath, []byte(keyless), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := runSanadEnv(t, append(sanadEnv(), "SANAD_HTTP_ADDR=127.0.0.1:0"), "serve", "--config", keylessPath, "--roles", "ca,ra"); code == 0 || !strings.Contains(out, "ra.code_key_file is required with ra.notify_webhook") {
		t.Errorf("the RA with a webhook and no code key: exit %d\n%s", code, out)
	}
	dev := startDev(t, dir)
	defer dev.stop(t)
	c := newRAClient(t, dev, dir, sanadEnv())
	body, _ := json.Marshal(newApplicant(t, "citizen-auth", person("KZ", "880312448217", "Aigerim", "Sadykova", "1988-03-12")).body)
	code, out := c.do(http.MethodPost, "/api/v1/enrollments", "application/json", body, nil)
	if code != http.StatusCreated {
		t.Fatalf("enroll: %d %v", code, out)
	}
	id := out["id"].(string)
	mu.Lock()
	var msg map[string]string
	for _, m := range sent {
		if m["enrollment"] == id {
			msg = m
		}
	}
	mu.Unlock()
	if msg["code"] == "" || msg["to"] != "+77017431862" || msg["channel"] != "sms" {
		t.Fatalf("the gateway got %v for enrollment %s", sent, id)
	}
	code, out = c.do(http.MethodPost, "/api/v1/enrollments/"+id+"/proof", "application/json", []byte(`{"code":"`+msg["code"]+`"}`), nil)
	if code != http.StatusOK || out["state"] != "issued" {
		t.Fatalf("proof: %d %v", code, out)
	}
	mu.Lock()
	if len(lookups) == 0 || lookups[0] != "GET /v1/persons/KZ/880312448217 Bearer registry-token" {
		t.Errorf("the registry was asked %v", lookups)
	}
	mu.Unlock()
	if _, err := os.Stat(filepath.Join(dir, "outbox", id+".json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the code was written to the dev outbox too (%v)", err)
	}
}
