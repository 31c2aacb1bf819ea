package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/internal/testenv"
	"github.com/sanadpki/sanad/policies"
	"github.com/sanadpki/sanad/verify"
)

// signDocument is what the signing tests sign: CRLF and every byte value,
// so that a verifier which canonicalized text would notice.
var signDocument = append([]byte("Shartnama No. 1\r\nThe parties agree.\r\n"), func() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()...)

// signer is one certificate holder of TestSignVerifiedByOpenSSL: the key
// as sanad sign is given it, and the certificate the dev RA issued for it.
type signer struct {
	name, key, cert string
	certificate     *x509.Certificate
	config          string // for a pkcs11: key
	wantAlg         jose.SignatureAlgorithm
}

// TestSignVerifiedByOpenSSL is issue 8 part 4's acceptance: citizens
// enrolled and approved through the dev RA sign a document with sanad sign,
// and OpenSSL, with the dev root as its only trust anchor, verifies the
// detached CMS, checks its ESS signing-certificate-v2 (-cades), and refuses
// a changed document; go-jose verifies the JWS forms. The keys: P-256 in
// PKCS#8, RSA-2048 in PKCS#1 (so CMS signs with PKCS#1 v1.5), P-384 in
// SEC 1 (SHA-384, ES384), and a P-256 key generated on the dev token by
// pkcs11-tool, given to sanad sign as pkcs11:LABEL.
func TestSignVerifiedByOpenSSL(t *testing.T) {
	requireSoftHSM(t)
	openssl := testenv.Tool(t, "openssl")
	pkcs11Tool := testenv.Tool(t, "pkcs11-tool")
	env := sanadEnv()
	dir := filepath.Join(t.TempDir(), "var")
	c := newRAClient(t, startDevEnv(t, dir, env), dir, env)
	root, issuing := c.pems["root"], c.pems["issuing"]
	work := t.TempDir()

	var signers []signer
	p256, rsa2048, p384 := mustECDSA(t, elliptic.P256()), mustRSA(t), mustECDSA(t, elliptic.P384())
	sec1, err := x509.MarshalECPrivateKey(p384.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		key     crypto.Signer
		block   *pem.Block
		who     map[string]any
		wantAlg jose.SignatureAlgorithm
	}{
		{"p256-pkcs8", p256, pkcs8Block(t, p256), person("KZ", "880312448217", "Aigerim", "Sadykova", "1988-03-12"), jose.ES256},
		{"rsa2048-pkcs1", rsa2048, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsa2048.(*rsa.PrivateKey))},
			person("KZ", "920930477121", "Aliya", "Zhaksylykova", "1992-09-30"), jose.PS256},
		{"p384-sec1", p384, &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}, person("KZ", "951208491843", "Gulnara", "Akhmetova", "1995-12-08"), jose.ES384},
	} {
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, tc.key)
		if err != nil {
			t.Fatal(err)
		}
		s := signer{name: tc.name, key: filepath.Join(work, tc.name+".key"), cert: filepath.Join(work, tc.name+".pem"), wantAlg: tc.wantAlg}
		s.certificate = c.enrollApproved(s.cert, "citizen-sign", tc.who, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))
		if err := os.WriteFile(s.key, pem.EncodeToMemory(tc.block), 0o600); err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
	}

	// A citizen whose key lives on a token: generated there and its CSR
	// signed there by pkcs11-tool, so that this test process never loads
	// the PKCS#11 module (hsmtest owns it, with another SOFTHSM2_CONF).
	module, err := hsm.DefaultModulePath()
	if err != nil {
		t.Fatal(err)
	}
	// The PIN in pkcs11-tool's environment, not its argv (ps shows argv).
	tok := &p11Tool{tool: pkcs11Tool, dir: t.TempDir(), id: "5a01",
		env: append(append([]string{}, env...), "SOFTHSM2_CONF="+filepath.Join(dir, "softhsm2.conf"),
			"SANAD_TEST_PIN="+readSecret(t, filepath.Join(dir, "hsm-pin"))),
		login: []string{"--module", module, "--token-label", "sanad-dev", "--login", "--pin", "env:SANAD_TEST_PIN"}}
	if _, err := tok.run("--keypairgen", "--key-type", "EC:prime256v1", "--label", "citizen-token"); err != nil {
		t.Fatal(err)
	}
	spki, err := tok.run("--read-object", "--type", "pubkey")
	if err == nil {
		tok.pub, err = x509.ParsePKIXPublicKey(spki)
	}
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, tok)
	if err != nil {
		t.Fatal(err)
	}
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})
	tokenSigner := signer{name: "pkcs11", key: "pkcs11:citizen-token", cert: filepath.Join(work, "token.pem"),
		config: filepath.Join(dir, "sanad.yaml"), wantAlg: jose.ES256}
	tokenSigner.certificate = c.enrollApproved(tokenSigner.cert, "citizen-sign", person("KZ", "811115333053", "Askar", "Zhumabayev", "1981-11-15"), csrPEM)
	signers = append(signers, tokenSigner)
	// Signing needs no server; stopping it leaves the token to sanad sign.
	c.dev.stop(t)

	for _, s := range signers {
		t.Run(s.name, func(t *testing.T) {
			sub := filepath.Join(work, s.name)
			if err := os.Mkdir(sub, 0o700); err != nil {
				t.Fatal(err)
			}
			doc := filepath.Join(sub, "doc.txt")
			if err := os.WriteFile(doc, signDocument, 0o644); err != nil {
				t.Fatal(err)
			}
			sign := func(extra ...string) string {
				t.Helper()
				args := append([]string{"sign", doc, "--key", s.key, "--cert", s.cert, "--chain", issuing}, extra...)
				if s.config != "" {
					args = append(args, "--config", s.config)
				}
				code, out := runSanadEnv(t, env, args...)
				if code != 0 {
					t.Fatalf("sanad %s: exit %d\n%s", strings.Join(args, " "), code, out)
				}
				return out
			}

			// The default: detached CMS in PEM, beside the document.
			out := sign()
			p7s := doc + ".p7s"
			if !strings.Contains(out, "wrote "+p7s) || !strings.Contains(out, s.certificate.Subject.CommonName) {
				t.Errorf("sanad sign said %q", out)
			}
			if b, _ := os.ReadFile(p7s); !bytes.HasPrefix(b, []byte("-----BEGIN CMS-----\n")) {
				t.Errorf("%s does not start with a CMS PEM header: %.40q", p7s, b)
			}
			verify := []string{"cms", "-verify", "-binary", "-inform", "PEM", "-in", p7s, "-content", doc, "-CAfile", root, "-out", os.DevNull}
			judge := func(name string, wantOK bool, args ...string) {
				t.Helper()
				out, err := exec.Command(openssl, args...).CombinedOutput()
				if (err == nil) != wantOK {
					t.Errorf("%s: openssl %s: %v (want success %v)\n%s", name, strings.Join(args, " "), err, wantOK, out)
				}
			}
			judge("purpose any, issuing CA from -certfile", true, append(verify, "-certfile", issuing, "-purpose", "any")...)
			// The citizen-sign profile has emailProtection, so OpenSSL's
			// default S/MIME signing purpose holds too; without
			// -certfile, the issuing CA comes from the signature (--chain).
			judge("default purpose, chain from the signature", true, verify...)
			// -cades makes OpenSSL check signing-certificate-v2 against
			// the signer's certificate (hash, issuer and serial).
			judge("CAdES", true, append(verify, "-cades", "-purpose", "any")...)
			changed := filepath.Join(sub, "changed.txt")
			os.WriteFile(changed, append([]byte{signDocument[0] ^ 1}, signDocument[1:]...), 0o644)
			changedArgs := append([]string{}, verify...)
			changedArgs[slices.Index(changedArgs, "-content")+1] = changed
			judge("changed document", false, append(changedArgs, "-purpose", "any")...)
			printed, err := exec.Command(openssl, "cms", "-cmsout", "-print", "-inform", "PEM", "-in", p7s).CombinedOutput()
			if err != nil || !strings.Contains(string(printed), "signingCertificateV2 (1.2.840.113549.1.9.16.2.47)") {
				t.Errorf("openssl cms -print shows no signingCertificateV2: %v\n%s", err, printed)
			}

			// Never overwrites; --force does.
			if code, out := runSanadEnv(t, env, "sign", doc, "--key", s.key, "--cert", s.cert); code != exitUsage || !strings.Contains(out, "exists") {
				t.Errorf("second sign without --force: exit %d\n%s", code, out)
			}
			sign("--force")
			judge("after --force", true, append(verify, "-certfile", issuing, "-purpose", "any")...)

			// Attached CMS in DER: OpenSSL gives the document back.
			p7m, back := filepath.Join(sub, "doc.p7m"), filepath.Join(sub, "back.txt")
			sign("--attached", "--der", "--out", p7m)
			judge("attached DER", true, "cms", "-verify", "-binary", "-inform", "DER", "-in", p7m, "-CAfile", root, "-purpose", "any", "-out", back)
			if b, _ := os.ReadFile(back); !bytes.Equal(b, signDocument) {
				t.Errorf("openssl returned %d bytes from the attached CMS, not the document", len(b))
			}

			// JWS, detached (RFC 7515 Appendix F) and attached.
			sign("--jws")
			jwsRaw, err := os.ReadFile(doc + ".jws")
			if err != nil {
				t.Fatal(err)
			}
			compact := strings.TrimSuffix(string(jwsRaw), "\n")
			if parts := strings.Split(compact, "."); len(parts) != 3 || parts[1] != "" {
				t.Fatalf("detached JWS %q: want an empty payload part", compact)
			}
			checkJWS(t, compact, s, root, issuing, nil)
			sign("--jws", "--attached", "--json", "--out", filepath.Join(sub, "attached.jws"))
			jwsRaw, err = os.ReadFile(filepath.Join(sub, "attached.jws"))
			if err != nil {
				t.Fatal(err)
			}
			checkJWS(t, strings.TrimSuffix(string(jwsRaw), "\n"), s, root, issuing, signDocument)
		})
	}
}

// checkJWS parses compact with go-jose and checks its alg, its x5c (the
// signer's certificate, then the issuing CA, chaining to the root at
// rootPEM) and its signature over
// signDocument: detached when attached is nil, else with that payload in it.
func checkJWS(t *testing.T, compact string, s signer, rootPEM, issuingPEM string, attached []byte) {
	t.Helper()
	obj, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.PS256, jose.RS256})
	if err != nil {
		t.Fatalf("go-jose: %v", err)
	}
	h := obj.Signatures[0].Protected
	if h.Algorithm != string(s.wantAlg) {
		t.Errorf("alg %s, want %s", h.Algorithm, s.wantAlg)
	}
	// x5c exactly: the signer's certificate, then the issuing CA's.
	var raw struct{ X5C []string }
	header, err := base64.RawURLEncoding.DecodeString(strings.Split(compact, ".")[0])
	if err != nil || json.Unmarshal(header, &raw) != nil {
		t.Fatalf("protected header %q: %v", header, err)
	}
	issuing := readPEMCert(t, issuingPEM)
	if len(raw.X5C) != 2 || raw.X5C[0] != base64.StdEncoding.EncodeToString(s.certificate.Raw) ||
		raw.X5C[1] != base64.StdEncoding.EncodeToString(issuing.Raw) {
		t.Errorf("x5c holds %d certificates, not the signer's and the issuing CA's", len(raw.X5C))
	}
	// And go-jose builds a path from it to the dev root.
	roots := x509.NewCertPool()
	roots.AddCert(readPEMCert(t, rootPEM))
	chains, err := h.Certificates(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil || !chains[0][0].Equal(s.certificate) {
		t.Errorf("x5c does not chain the signer's certificate to the root: %v", err)
	}
	if attached == nil {
		if err := obj.DetachedVerify(signDocument, s.certificate.PublicKey); err != nil {
			t.Errorf("detached JWS does not verify over the document: %v", err)
		}
		if err := obj.DetachedVerify(append([]byte{}, signDocument[1:]...), s.certificate.PublicKey); err == nil {
			t.Error("detached JWS verifies over a changed document")
		}
		return
	}
	payload, err := obj.Verify(s.certificate.PublicKey)
	if err != nil || !bytes.Equal(payload, attached) {
		t.Errorf("attached JWS: %v, payload of %d bytes", err, len(payload))
	}
}

// enrollApproved enrolls who for profile with csrPEM, has Dana Officer
// approve it, writes the certificate to certPath and returns it.
func (c *raClient) enrollApproved(certPath, profile string, who map[string]any, csrPEM []byte) *x509.Certificate {
	t := c.t
	t.Helper()
	code, e := c.enroll(applicant{body: map[string]any{"profile": profile, "applicant": who, "csr": string(csrPEM)}})
	if code != 200 || e["state"] != "pending_approval" {
		t.Fatalf("enroll %v: %d %v", who, code, e)
	}
	id := e["id"].(string)
	if code, out := c.officer("Dana Officer", "approve", id); code != 0 || !strings.Contains(out, `"state": "issued"`) {
		t.Fatalf("approve %s: %d %s", id, code, out)
	}
	code, e = c.do(http.MethodGet, "/api/v1/enrollments/"+id, "", nil, nil)
	certPEM, _ := e["certificate"].(string)
	if code != 200 || certPEM == "" {
		t.Fatalf("issued enrollment %s: %d %v", id, code, e)
	}
	if err := os.WriteFile(certPath, []byte(certPEM), 0o644); err != nil {
		t.Fatal(err)
	}
	return readPEMCert(t, certPath)
}

// TestSignRefusals covers what sanad sign refuses, with a throw-away
// self-signed certificate: no deployment is needed to be refused.
func TestSignRefusals(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "doc.txt")
	if err := os.WriteFile(doc, signDocument, 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	key, cert := writeSelfSigned(t, dir, "signer", now.Add(-time.Hour), now.Add(time.Hour))
	otherKey, _ := writeSelfSigned(t, dir, "other", now.Add(-time.Hour), now.Add(time.Hour))
	expiredKey, expiredCert := writeSelfSigned(t, dir, "expired", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	_, unrelated := writeSelfSigned(t, dir, "unrelated", now.Add(-time.Hour), now.Add(time.Hour))
	loginKey, loginCert := writeSelfSigned(t, dir, "login", now.Add(-time.Hour), now.Add(time.Hour), x509.ExtKeyUsageClientAuth)
	auditKey, auditCert := writeCertificate(t, dir, "audit", &x509.Certificate{Subject: pkix.Name{CommonName: "Sanad Audit Log Checkpoints", Organization: []string{"Sanad National PKI"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 36}}}) // the audit profile's documentSigning
	openKey := filepath.Join(dir, "open.key")
	if raw, err := os.ReadFile(key); err != nil || os.WriteFile(openKey, raw, 0o644) != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(dir, "existing.p7s")
	if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want int
		out  string
	}{
		{"no --cert", nil, []string{"sign", doc, "--key", key}, exitUsage, "needs --key and --cert"},
		{"no --key", nil, []string{"sign", doc, "--cert", cert}, exitUsage, "needs --key and --cert"},
		{"two files", nil, []string{"sign", doc, doc, "--key", key, "--cert", cert}, exitUsage, "one FILE"},
		{"no file", nil, []string{"sign", "--key", key, "--cert", cert}, exitUsage, "one FILE"},
		{"--der with --jws", nil, []string{"sign", doc, "--key", key, "--cert", cert, "--jws", "--der"}, exitUsage, "--der is for CMS"},
		{"empty pkcs11 label", nil, []string{"sign", doc, "--key", "pkcs11:", "--cert", cert}, exitUsage, "names no key"},
		{"existing output", nil, []string{"sign", doc, "--key", key, "--cert", cert, "--out", existing}, exitUsage, "exists"},
		{"key of another certificate", nil, []string{"sign", doc, "--key", otherKey, "--cert", cert}, exitFailure, "is not the key of certificate"},
		{"expired certificate", nil, []string{"sign", doc, "--key", expiredKey, "--cert", expiredCert}, exitFailure, "not now"},
		// What sanad verify would call CHAIN_CONSTRAINTS_FAILURE.
		{"an authentication certificate", nil, []string{"sign", doc, "--key", loginKey, "--cert", loginCert}, exitFailure, "may not sign documents: extended key usage clientAuth does not allow signing documents"},
		{"the audit key's certificate", nil, []string{"sign", doc, "--key", auditKey, "--cert", auditCert}, exitFailure, "may not sign documents: key usage digitalSignature lacks contentCommitment"},
		{"key readable by others", nil, []string{"sign", doc, "--key", openKey, "--cert", cert}, exitFailure, "group and others must have no access"},
		{"chain off the path", nil, []string{"sign", doc, "--key", key, "--cert", cert, "--chain", unrelated}, exitFailure, "did not issue"},
		{"missing file", nil, []string{"sign", filepath.Join(dir, "nothing.txt"), "--key", key, "--cert", cert}, exitFailure, "no such file"},
		{"environment defaults", []string{"SANAD_SIGN_KEY=" + key, "SANAD_SIGN_CERT=" + cert}, []string{"sign", doc, "--out", filepath.Join(dir, "env.p7s")}, exitOK, "wrote "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runSanadEnv(t, append(sanadEnv(), tc.env...), tc.args...)
			if code != tc.want || !strings.Contains(out, tc.out) {
				t.Errorf("exit %d, output %q; want exit %d mentioning %q", code, out, tc.want, tc.out)
			}
		})
	}
	// Nothing refused left a signature behind, and the existing file is
	// untouched.
	if _, err := os.Stat(doc + ".p7s"); !os.IsNotExist(err) {
		t.Errorf("a refused sign wrote %s.p7s (%v)", doc, err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("%s was overwritten: %q", existing, b)
	}
}

// TestSigningProfiles: of Sanad's end-entity profiles (policies/profiles),
// verify.SignerConstraints, which sanad sign checks and sanad verify holds
// a signer of the national PKI to, accepts the key and extended key
// usages of the signing profiles, citizen-sign and business-seal, and of
// no other: not the authentication profiles', the OCSP signer's, nor the
// audit key's (documentSigning, but digitalSignature alone). The rule is
// code, as package verify reads no policy file; this keeps it the
// profiles'.
func TestSigningProfiles(t *testing.T) {
	profiles, err := profile.LoadAll(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range profiles {
		if p.CA {
			continue
		}
		err := verify.SignerConstraints(&x509.Certificate{KeyUsage: p.KeyUsage, ExtKeyUsage: p.ExtKeyUsage, UnknownExtKeyUsage: p.OtherExtKeyUsage})
		if signs := name == "citizen-sign" || name == "business-seal"; signs != (err == nil) {
			t.Errorf("profile %s: SignerConstraints says %v", name, err)
		}
	}
	if _, ok := profiles["audit"]; !ok {
		t.Error("no audit profile")
	}
}

// writeSelfSigned writes a P-256 key (0600) and a self-signed certificate
// for document signing (contentCommitment, as citizen-sign's) valid from
// notBefore to notAfter, with the extended key usages ekus if any; it
// returns their paths.
func writeSelfSigned(t *testing.T, dir, name string, notBefore, notAfter time.Time, ekus ...x509.ExtKeyUsage) (keyPath, certPath string) {
	t.Helper()
	return writeCertificate(t, dir, name, &x509.Certificate{Subject: pkix.Name{CommonName: name},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageContentCommitment, ExtKeyUsage: ekus})
}

// writeCertificate writes a P-256 key (0600) and a self-signed certificate
// of tmpl, and returns their paths.
func writeCertificate(t *testing.T, dir, name string, tmpl *x509.Certificate) (keyPath, certPath string) {
	t.Helper()
	key := mustECDSA(t, elliptic.P256())
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, certPath = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(pkcs8Block(t, key)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return keyPath, certPath
}

func mustECDSA(t *testing.T, curve elliptic.Curve) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRSA(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pkcs8Block(t *testing.T, k crypto.Signer) *pem.Block {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

// p11Tool is a key on a token, used through pkcs11-tool: a crypto.Signer
// for x509.CreateCertificateRequest.
type p11Tool struct {
	tool, dir, id string
	env, login    []string
	pub           crypto.PublicKey
}

// run runs pkcs11-tool on the key and returns what it wrote to its output
// file.
func (p *p11Tool) run(args ...string) ([]byte, error) {
	out := filepath.Join(p.dir, "out")
	os.Remove(out)
	cmd := exec.Command(p.tool, append(append(append([]string{}, p.login...), "--id", p.id, "--output-file", out), args...)...)
	cmd.Env = p.env
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pkcs11-tool %s: %w\n%s", args[0], err, msg)
	}
	b, err := os.ReadFile(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func (p *p11Tool) Public() crypto.PublicKey { return p.pub }

// Sign signs digest with CKM_ECDSA; "openssl" is the DER ECDSA-Sig-Value
// crypto.Signer returns.
func (p *p11Tool) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	in := filepath.Join(p.dir, "digest")
	if err := os.WriteFile(in, digest, 0o600); err != nil {
		return nil, err
	}
	return p.run("--sign", "--mechanism", "ECDSA", "--signature-format", "openssl", "--input-file", in)
}
