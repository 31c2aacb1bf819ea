package csr

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"slices"
)

// MaxSize is the largest input Parse reads. A CSR with an 8192-bit RSA key
// and a generous subject is a few KiB; anything near this is not a request.
const MaxSize = 64 << 10

// pemTypes are the PEM labels of a CSR: RFC 7468 §7, and the legacy label
// some tools (Netscape, old OpenSSL, Windows) still write.
var pemTypes = []string{"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"}

const pemWhitespace = " \t\r\n"

// Parse reads one CSR, as raw DER or as exactly one PEM block (surrounding
// whitespace allowed, PEM headers not), and verifies its signature as proof
// of possession of the private key. It refuses, before any signature work,
// keys that no Policy could allow (see Check). Every error is a *KeyError.
//
// The result is safe to pass to Check; Check re-reads cr.Raw and trusts
// none of the other fields.
func Parse(pemOrDER []byte) (*x509.CertificateRequest, error) {
	der, err := readDER(pemOrDER)
	if err != nil {
		return nil, err
	}
	cr, _, err := parseDER(der, nil)
	return cr, err
}

// readDER bounds the input and returns the DER inside it.
func readDER(pemOrDER []byte) ([]byte, error) {
	if len(pemOrDER) > MaxSize {
		return nil, refuse(CodeTooLarge, "input of %d bytes is larger than %d", len(pemOrDER), MaxSize)
	}
	return unwrapPEM(pemOrDER)
}

// unwrapPEM returns the DER inside a single PEM CSR block, or the input
// unchanged if it is not PEM.
func unwrapPEM(in []byte) ([]byte, error) {
	trimmed := bytes.TrimLeft(in, pemWhitespace)
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		return in, nil
	}
	// pem.Decode skips anything it cannot read until the next BEGIN line,
	// so count the blocks first: exactly one, or we refuse.
	if n := bytes.Count(trimmed, []byte("-----BEGIN ")); n != 1 {
		return nil, refuse(CodeMultipleBlocks, "input has %d PEM blocks; exactly one is accepted", n)
	}
	block, rest := pem.Decode(trimmed)
	if block == nil {
		return nil, refuse(CodeMalformed, "PEM block does not decode")
	}
	if !slices.Contains(pemTypes, block.Type) {
		return nil, refuse(CodeMalformed, "PEM block is %q, not CERTIFICATE REQUEST", block.Type)
	}
	if len(block.Headers) != 0 {
		return nil, refuse(CodeMalformed, "PEM block has headers")
	}
	if extra := bytes.TrimLeft(rest, pemWhitespace); len(extra) != 0 {
		return nil, refuse(CodeTrailingData, "%d bytes after the PEM block", len(extra))
	}
	return block.Bytes, nil
}

// certificationRequest is the outline of RFC 2986 §4, enough to find the
// key before crypto/x509 parses the rest.
type certificationRequest struct {
	Info struct {
		Version    int
		Subject    asn1.RawValue
		PublicKey  asn1.RawValue
		Attributes asn1.RawValue `asn1:"tag:0"`
	}
	SignatureAlgorithm asn1.RawValue
	Signature          asn1.BitString
}

// parseDER checks the structure, inspects the key, hands the request to
// crypto/x509 and verifies the signature, in that order: no signature is
// computed over a key we would refuse anyway. The signature is not verified
// again if proofs has seen these bytes verify.
func parseDER(der []byte, proofs *Proofs) (*x509.CertificateRequest, *publicKey, error) {
	if len(der) == 0 {
		return nil, nil, refuse(CodeMalformed, "empty input")
	}
	var outline certificationRequest
	rest, err := asn1.Unmarshal(der, &outline)
	if err != nil {
		return nil, nil, refuseWrap(CodeMalformed, err, "not a DER CertificationRequest")
	}
	if len(rest) != 0 {
		return nil, nil, refuse(CodeTrailingData, "%d bytes after the DER CertificationRequest", len(rest))
	}
	// RFC 2986 §4.1: version is 0 for this version of the standard.
	if outline.Info.Version != 0 {
		return nil, nil, refuse(CodeMalformed, "CertificationRequestInfo version %d is not 0", outline.Info.Version)
	}
	key, err := inspectSPKI(outline.Info.PublicKey.FullBytes)
	if err != nil {
		return nil, nil, err
	}
	cr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, nil, refuseWrap(CodeMalformed, err, "crypto/x509 refuses the request")
	}
	// Belt and braces: both parsers must agree on the key.
	if !bytes.Equal(cr.RawSubjectPublicKeyInfo, outline.Info.PublicKey.FullBytes) {
		return nil, nil, refuse(CodeMalformed, "parsers disagree on subjectPublicKeyInfo")
	}
	if eq, ok := cr.PublicKey.(interface{ Equal(x crypto.PublicKey) bool }); !ok || !eq.Equal(key.key) {
		return nil, nil, refuse(CodeMalformed, "parsers disagree on the public key")
	}
	var sum [sha256.Size]byte
	if proofs != nil {
		sum = sha256.Sum256(der)
		if proofs.seen(sum) {
			return cr, key, nil
		}
	}
	if err := verifySignature(cr); err != nil {
		return nil, nil, err
	}
	proofs.add(sum)
	return cr, key, nil
}

// weakSignatureAlgorithms sign with a hash that is broken for collisions.
// crypto/x509 still accepts SHA-1 in CSRs; we do not.
var weakSignatureAlgorithms = []x509.SignatureAlgorithm{
	x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
}

func verifySignature(cr *x509.CertificateRequest) error {
	if slices.Contains(weakSignatureAlgorithms, cr.SignatureAlgorithm) {
		return refuse(CodeSignatureAlgorithm, "signature algorithm %s is not accepted", cr.SignatureAlgorithm)
	}
	if cr.SignatureAlgorithm == x509.UnknownSignatureAlgorithm {
		return refuse(CodeSignatureAlgorithm, "signature algorithm is unknown")
	}
	if err := cr.CheckSignature(); err != nil {
		var insecure x509.InsecureAlgorithmError
		if errors.As(err, &insecure) {
			return refuseWrap(CodeSignatureAlgorithm, err, "signature algorithm %s is not accepted", cr.SignatureAlgorithm)
		}
		return refuseWrap(CodeBadSignature, err, "signature does not verify with the request's public key (no proof of possession)")
	}
	return nil
}
