package jwsauth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der)
}

func TestLoadSigner(t *testing.T) {
	all := identities(t)
	p256, p384, rsa3072 := all["P-256"], all["P-384"], all["RSA-3072"]
	sec1, err := x509.MarshalECPrivateKey(p384.key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	ecParams := pemBlock("EC PARAMETERS", []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}) // secp384r1
	pkcs1 := pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa3072.key.(*rsa.PrivateKey)))
	certPEM := func(id identity) []byte { return pemBlock("CERTIFICATE", id.cert.Raw) }

	tests := []struct {
		name string
		file []byte
		mode os.FileMode
		id   identity
	}{
		{"PKCS#8 P-256, 0600", pkcs8(t, p256.key), 0o600, p256},
		{"PKCS#8 P-256, 0400", pkcs8(t, p256.key), 0o400, p256},
		{"PKCS#8 RSA", pkcs8(t, rsa3072.key), 0o600, rsa3072},
		{"SEC 1 P-384 after EC PARAMETERS", append(ecParams, pemBlock("EC PRIVATE KEY", sec1)...), 0o600, p384},
		{"PKCS#1 RSA", pkcs1, 0o600, rsa3072},
		{"key and certificate in one file", append(certPEM(p256), pkcs8(t, p256.key)...), 0o600, p256},
		{"text around the block", append(append([]byte("Bag Attributes\n    localKeyID: 01\n"), pkcs8(t, p256.key)...), "\n\n"...), 0o600, p256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "officer.key")
			write(t, path, tc.file, tc.mode)
			k, err := LoadSigner(path)
			if err != nil {
				t.Fatal(err)
			}
			if !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.id.cert.PublicKey) {
				t.Fatal("loaded another key")
			}
			// The loaded key signs requests that the RA accepts.
			s, err := Sign(validAction(), tc.id.cert, k, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(s, testAudience, testNow, testSkew); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLoadSignerRefuses(t *testing.T) {
	all := identities(t)
	p256 := all["P-256"]
	good := pkcs8(t, p256.key)
	legacy := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00112233445566778899AABBCCDDEEFF"}, Bytes: []byte("ciphertext")})
	spki, _ := x509.MarshalPKIXPublicKey(p256.cert.PublicKey)
	corrupt := pemBlock("PRIVATE KEY", bytes.Repeat([]byte{0x30}, 40))

	tests := []struct {
		name string
		file []byte
		mode os.FileMode
		want string // in the error
	}{
		{"group-readable", good, 0o640, "mode 0640"},
		{"world-readable", good, 0o604, "mode 0604"},
		{"world-writable", good, 0o602, "mode 0602"},
		{"0644", good, 0o644, "chmod 600"},
		{"group-executable", good, 0o610, "mode 0610"},
		{"encrypted PKCS#8", pemBlock("ENCRYPTED PRIVATE KEY", []byte("ciphertext")), 0o600, "encrypted"},
		{"legacy encrypted PEM", legacy, 0o600, "encrypted"},
		{"two keys", append(pkcs8(t, p256.key), pkcs8(t, all["P-384"].key)...), 0o600, "more than one"},
		{"no PEM", []byte("not a key\n"), 0o600, "no PEM private key"},
		{"empty", nil, 0o600, "no PEM private key"},
		{"certificate only", pemBlock("CERTIFICATE", p256.cert.Raw), 0o600, "no PEM private key"},
		{"public key", pemBlock("PUBLIC KEY", spki), 0o600, "not a private key"},
		{"corrupt PKCS#8", corrupt, 0o600, "does not parse"},
		{"Ed25519", pkcs8(t, all["Ed25519"].key), 0o600, "ed25519"},
		{"P-521", pkcs8(t, all["P-521"].key), 0o600, "P-521"},
		{"RSA-1024", pkcs8(t, all["RSA-1024"].key), 0o600, "1024 bits"},
		{"too large", append(good, bytes.Repeat([]byte("\n"), maxPEMFile)...), 0o600, "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "officer.key")
			write(t, path, tc.file, tc.mode)
			k, err := LoadSigner(path)
			if err == nil {
				t.Fatalf("loaded a %T", k)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			// An error names the file but never quotes it.
			for _, line := range strings.Split(string(tc.file), "\n") {
				if len(line) > 16 && !strings.HasPrefix(line, "-----") && strings.Contains(err.Error(), line) {
					t.Errorf("error quotes the file: %q", err)
				}
			}
		})
	}

	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadSigner(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("directory: %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := LoadSigner(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("missing file: %v", err)
		}
	})
	t.Run("symlink to a world-readable file", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "key.pem")
		write(t, target, good, 0o644)
		link := filepath.Join(dir, "link.pem")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		// The mode checked is the file's, not the link's (always 0777).
		if _, err := LoadSigner(link); err == nil || !strings.Contains(err.Error(), "mode 0644") {
			t.Fatalf("symlink: %v", err)
		}
		if err := os.Chmod(target, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadSigner(link); err != nil {
			t.Fatalf("symlink to a 0600 file: %v", err)
		}
	})
}

func TestLoadCertificate(t *testing.T) {
	all := identities(t)
	p256, other := all["P-256"], all["other-P-256"]
	one := pemBlock("CERTIFICATE", p256.cert.Raw)
	tests := []struct {
		name string
		file []byte
		want string // error text, "" to load p256's certificate
	}{
		{"one certificate", one, ""},
		{"certificate after its key", append(pkcs8(t, p256.key), one...), ""},
		{"two certificates", append(append([]byte{}, one...), pemBlock("CERTIFICATE", other.cert.Raw)...), "holds 2 certificates"},
		{"none", pkcs8(t, p256.key), "no PEM certificate"},
		{"empty", nil, "no PEM certificate"},
		{"not a certificate", pemBlock("CERTIFICATE", []byte{0x30, 0x03, 0x02, 0x01, 0x01}), "x509"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "officer.pem")
			write(t, path, tc.file, 0o644)
			c, err := LoadCertificate(path)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !c.Equal(p256.cert) {
					t.Fatal("loaded another certificate")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := LoadCertificate(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("missing file loaded")
	}
}
