package jwsauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/sanadpki/sanad/internal/secretfile"
)

// maxPEMFile bounds the key and certificate files read: an RSA-4096 key in
// PEM is about 3.3 KB.
const maxPEMFile = 64 << 10

// LoadSigner reads a signing key from a PEM file for sanad officer: one
// "PRIVATE KEY" (PKCS#8), "EC PRIVATE KEY" (SEC 1) or "RSA PRIVATE KEY"
// (PKCS#1) block, of a kind Sign can use (ECDSA P-256 or P-384, RSA of 2048
// to 4096 bits). "EC PARAMETERS" blocks (as openssl ecparam -genkey writes)
// and "CERTIFICATE" blocks (a key and its certificate in one file) are
// skipped; anything else, and a second key, is refused. Encrypted keys are
// refused: keep the key in a PKCS#11 token instead.
//
// Like every secret file (internal/secretfile), it refuses a file that
// group or others may access (mode & 0o077 != 0): a key others can read is
// a key others may have. Errors name the file, never its contents.
func LoadSigner(keyPath string) (crypto.Signer, error) {
	b, err := readPEMFile(keyPath, true)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	var key crypto.Signer
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		k, err := parseKeyBlock(block)
		clear(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("jwsauth: key file %s: %w", keyPath, err)
		}
		if k == nil {
			continue
		}
		if key != nil {
			return nil, fmt.Errorf("jwsauth: key file %s holds more than one private key", keyPath)
		}
		key = k
	}
	if key == nil {
		return nil, fmt.Errorf("jwsauth: key file %s holds no PEM private key", keyPath)
	}
	if _, err := algorithmsFor(key.Public()); err != nil {
		return nil, fmt.Errorf("jwsauth: key file %s: %w", keyPath, err)
	}
	return key, nil
}

// parseKeyBlock returns the private key in block, or nil for a block to
// skip.
func parseKeyBlock(block *pem.Block) (crypto.Signer, error) {
	if _, encrypted := block.Headers["Proc-Type"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, errors.New("the private key is encrypted; store it unencrypted with mode 0600, or in a PKCS#11 token")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "EC PARAMETERS", "CERTIFICATE":
		return nil, nil
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		// The x509 parsers' errors describe the structure, not its
		// contents; still, say only which kind failed.
		return nil, fmt.Errorf("the %s block does not parse", block.Type)
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("a %T key cannot sign requests (only ECDSA and RSA)", k)
}

// LoadCertificate reads the signer's certificate from a PEM file holding
// exactly one "CERTIFICATE" block (other block types, such as the private
// key in a combined file, are skipped). A chain is refused, since the
// request carries the signer's certificate alone.
func LoadCertificate(path string) (*x509.Certificate, error) {
	b, err := readPEMFile(path, false)
	if err != nil {
		return nil, err
	}
	defer clear(b) // in case the file also holds a key
	var cert *x509.Certificate
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			clear(block.Bytes)
			continue
		}
		n++
		if cert, err = x509.ParseCertificate(block.Bytes); err != nil {
			return nil, fmt.Errorf("jwsauth: certificate file %s: %w", path, err)
		}
	}
	switch n {
	case 0:
		return nil, fmt.Errorf("jwsauth: certificate file %s holds no PEM certificate", path)
	case 1:
		return cert, nil
	}
	return nil, fmt.Errorf("jwsauth: certificate file %s holds %d certificates; give the signer's certificate alone", path, n)
}

// readPEMFile reads a regular file of at most maxPEMFile bytes; private
// says it must not be accessible to group or others.
func readPEMFile(path string, private bool) ([]byte, error) {
	what := "jwsauth: certificate file"
	if private {
		what = "jwsauth: key file"
	}
	return secretfile.ReadFile(what, path, maxPEMFile, private)
}
