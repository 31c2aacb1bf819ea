// Command stepca-init creates a throw-away step-ca PKI and configuration for
// scripts/bench-stepca:
// P-256 root and intermediate (unencrypted keys), a JWK provisioner and ca.json.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"log"
	"math/big"
	"os"
	"path/filepath"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func writePEM(path, typ string, der []byte, mode os.FileMode) {
	must(os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode))
}

func serial() *big.Int {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	must(err)
	return s
}

// newCA makes a P-256 key and a CA certificate named cn for it, valid ten
// years from now, with at most maxPathLen CAs below it, signed by parent's
// key (self-signed when parent is nil).
func newCA(cn string, now time.Time, maxPathLen int, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, *x509.Certificate) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	tpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now,
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            maxPathLen,
		MaxPathLenZero:        maxPathLen == 0,
	}
	if parent == nil {
		parent, parentKey = tpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, &key.PublicKey, parentKey)
	must(err)
	cert, err := x509.ParseCertificate(der)
	must(err)
	return key, cert
}

func main() {
	dir := flag.String("dir", "ca", "output directory")
	addr := flag.String("address", "127.0.0.1:9443", "listen address")
	prov := flag.String("provisioner", "bench", "JWK provisioner name")
	dbType := flag.String("db", "badgerv2", "db type (badgerv2, badger, ...)")
	force := flag.Bool("force", false, "overwrite an existing directory")
	flag.Parse()

	abs, err := filepath.Abs(*dir)
	must(err)
	if _, err := os.Stat(filepath.Join(abs, "config", "ca.json")); err == nil && !*force {
		log.Fatalf("%s already initialised (use -force)", abs)
	}
	for _, d := range []string{"", "config", "secrets", "certs"} {
		must(os.MkdirAll(filepath.Join(abs, d), 0o700))
	}
	now := time.Now().Add(-time.Minute).Truncate(time.Second)

	rootKey, rootCert := newCA("Bench Root CA", now, 1, nil, nil)
	intKey, intCert := newCA("Bench Intermediate CA", now, 0, rootCert, rootKey)
	rootDER, intDER := rootCert.Raw, intCert.Raw

	rootKeyDER, err := x509.MarshalECPrivateKey(rootKey)
	must(err)
	intKeyDER, err := x509.MarshalECPrivateKey(intKey)
	must(err)
	writePEM(filepath.Join(abs, "root.crt"), "CERTIFICATE", rootDER, 0o644)
	writePEM(filepath.Join(abs, "root.key"), "EC PRIVATE KEY", rootKeyDER, 0o600)
	writePEM(filepath.Join(abs, "intermediate.crt"), "CERTIFICATE", intDER, 0o644)
	writePEM(filepath.Join(abs, "intermediate.key"), "EC PRIVATE KEY", intKeyDER, 0o600)

	// JWK provisioner key; kid = RFC 7638 SHA-256 thumbprint (what `step` uses).
	provKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	jwk := jose.JSONWebKey{Key: provKey, Algorithm: "ES256", Use: "sig"}
	pubKey := jwk.Public()
	tp, err := pubKey.Thumbprint(crypto.SHA256)
	must(err)
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	privJSON, err := json.MarshalIndent(jwk, "", "  ")
	must(err)
	must(os.WriteFile(filepath.Join(abs, "secrets", "provisioner.jwk"), append(privJSON, '\n'), 0o600))
	pub := jwk.Public()
	pubJSON, err := json.Marshal(pub)
	must(err)
	must(os.WriteFile(filepath.Join(abs, "certs", "provisioner.pub.jwk"), append(pubJSON, '\n'), 0o644))

	// ca.json (format: github.com/smallstep/certificates/authority/config.Config).
	// The JWK provisioner's "encryptedKey" is optional in step-ca (only used by
	// `step ca token` to fetch the key), so it is omitted.
	cfg := map[string]any{
		"root":     filepath.Join(abs, "root.crt"),
		"crt":      filepath.Join(abs, "intermediate.crt"),
		"key":      filepath.Join(abs, "intermediate.key"),
		"address":  *addr,
		"dnsNames": []string{"localhost", "127.0.0.1"},
		"logger":   map[string]any{"format": "text"},
		"db": map[string]any{
			"type":       *dbType,
			"dataSource": filepath.Join(abs, "db"),
		},
		"authority": map[string]any{
			"provisioners": []any{
				map[string]any{
					"type": "JWK",
					"name": *prov,
					"key":  json.RawMessage(pubJSON),
				},
			},
			"claims": map[string]any{
				"minTLSCertDuration":     "5m",
				"maxTLSCertDuration":     "24h",
				"defaultTLSCertDuration": "24h",
			},
		},
		"tls": map[string]any{
			"cipherSuites": []string{
				"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
				"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
			},
			"minVersion":    1.2,
			"maxVersion":    1.3,
			"renegotiation": false,
		},
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	must(err)
	must(os.WriteFile(filepath.Join(abs, "config", "ca.json"), append(out, '\n'), 0o600))
	log.Printf("wrote %s (provisioner %q kid %s)", filepath.Join(abs, "config", "ca.json"), *prov, jwk.KeyID)
}
