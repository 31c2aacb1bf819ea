package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/testenv"
)

func writePEM(t testing.TB, path, typ string, der []byte) string {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOpenSSLSignatures: CMS and S/MIME signatures made by openssl, the
// independent writer, with each key type and padding, attached and
// detached, DER, PEM and S/MIME, all verify TOTAL_PASSED; the same bytes
// with the content changed fail with HASH_FAILURE. One made with -noattr
// (no signed attributes) is a FORMAT_FAILURE.
func TestOpenSSLSignatures(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	p := newTestPKI(t)
	dir := t.TempDir()
	docPath := filepath.Join(dir, "doc.txt")
	if err := os.WriteFile(docPath, document, 0o600); err != nil {
		t.Fatal(err)
	}
	caPath := writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", p.ca.Raw)

	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]crypto.Signer{"p256": newKey(t), "p384": ec384, "rsa": rsaKey}
	paths := map[string][2]string{}
	for name, k := range keys {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		c := p.leaf(t, k, citizenSign())
		paths[name] = [2]string{writePEM(t, filepath.Join(dir, name+".key"), "PRIVATE KEY", der), writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", c.Raw)}
	}
	v, err := New(p.config())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		key      string
		args     []string
		detached bool
		alg      string
	}{
		{"cms detached DER P-256", "p256", []string{"cms", "-sign", "-binary", "-outform", "DER"}, true, "ECDSA P-256 with SHA-256"},
		{"cms attached PEM P-256", "p256", []string{"cms", "-sign", "-binary", "-nodetach", "-outform", "PEM"}, false, "ECDSA P-256 with SHA-256"},
		{"cms detached P-384 SHA-384", "p384", []string{"cms", "-sign", "-binary", "-md", "sha384", "-outform", "DER"}, true, "ECDSA P-384 with SHA-384"},
		{"cms RSA PKCS#1 v1.5", "rsa", []string{"cms", "-sign", "-binary", "-outform", "DER"}, true, "RSA-2048 PKCS#1 v1.5 with SHA-256"},
		{"cms RSA-PSS", "rsa", []string{"cms", "-sign", "-binary", "-outform", "DER", "-signer", "SIGNER", "-inkey", "KEY", "-keyopt", "rsa_padding_mode:pss"}, true, "RSA-2048 PSS with SHA-256"},
		{"cms ESS signing-certificate-v2", "p256", []string{"cms", "-sign", "-binary", "-cades", "-outform", "DER"}, true, "ECDSA P-256 with SHA-256"},
		{"smime multipart/signed", "p256", []string{"smime", "-sign"}, true, "ECDSA P-256 with SHA-256"},
		{"smime opaque", "p256", []string{"smime", "-sign", "-nodetach"}, false, "ECDSA P-256 with SHA-256"},
		{"smime PEM", "p256", []string{"smime", "-sign", "-binary", "-outform", "PEM"}, true, "ECDSA P-256 with SHA-256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, "sig")
			// -keyopt applies to the -signer before it, so a case may place
			// them itself.
			args := []string{}
			for _, a := range tc.args {
				switch a {
				case "SIGNER":
					a = paths[tc.key][1]
				case "KEY":
					a = paths[tc.key][0]
				}
				args = append(args, a)
			}
			if !slices.Contains(args, "-signer") {
				args = append(args, "-signer", paths[tc.key][1], "-inkey", paths[tc.key][0])
			}
			args = append(args, "-in", docPath, "-certfile", caPath, "-out", out)
			if b, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
				t.Fatalf("openssl %v: %v\n%s", args, err, b)
			}
			sig, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var content []byte
			if tc.detached && tc.args[0] == "cms" || tc.name == "smime PEM" {
				content = document
			}
			res, err := v.Verify(context.Background(), sig, content)
			if err != nil {
				t.Fatal(err)
			}
			if res.Indication != TotalPassed || len(res.Reports) != 1 || res.Reports[0].SignatureAlg != tc.alg {
				t.Fatalf("openssl's signature: %s/%s alg %q: %+v", res.Indication, res.SubIndication, res.Reports[0].SignatureAlg, res.Reports[0].Checks)
			}
			if rep := res.Reports[0]; rep.SigningTimeSource != "signing-time attribute" || time.Since(rep.SigningTime) > time.Minute {
				t.Errorf("signing time %v from %s", rep.SigningTime, rep.SigningTimeSource)
			}
			// Only -cades adds signing-certificate-v2.
			want := "the signature binds its key only"
			if slices.Contains(tc.args, "-cades") {
				want = "bound by the ESS signing-certificate attribute"
			}
			if id := res.Reports[0].Checks[1]; id.Name != "identification" || !strings.Contains(id.Detail, want) {
				t.Errorf("identification %+v, want %q", id, want)
			}
			if content != nil {
				res, err = v.Verify(context.Background(), sig, append([]byte("changed "), content...))
				if err != nil || res.SubIndication != HashFailure {
					t.Errorf("changed content: %+v %v", res, err)
				}
			}
		})
	}
	// openssl signs without signed attributes only when told -noattr:
	// CAdES requires them, and such a signature is a FORMAT_FAILURE.
	out := filepath.Join(dir, "noattr.p7s")
	args := []string{"cms", "-sign", "-binary", "-noattr", "-outform", "DER", "-signer", paths["p256"][1], "-inkey", paths["p256"][0], "-in", docPath, "-certfile", caPath, "-out", out}
	if b, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, b)
	}
	sig, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := v.Verify(context.Background(), sig, document); err != nil || res.Indication != TotalFailed || res.SubIndication != FormatFailure {
		t.Errorf("openssl cms -sign -noattr: %+v %v", res, err)
	}
}
