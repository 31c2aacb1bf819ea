package csr

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"testing"
)

type checkFixtures struct {
	p256, p384, p521, ca *ecdsa.PrivateKey
	rsa2048, rsa3072     *rsa.PrivateKey
}

func newCheckFixtures(t *testing.T) *checkFixtures {
	t.Helper()
	return &checkFixtures{
		p256:    mustECDSA(t, elliptic.P256()),
		p384:    mustECDSA(t, elliptic.P384()),
		p521:    mustECDSA(t, elliptic.P521()),
		ca:      mustECDSA(t, elliptic.P384()),
		rsa2048: mustRSA(t, 2048),
		rsa3072: mustRSA(t, 3072),
	}
}

func parsed(t *testing.T, signer crypto.Signer) *x509.CertificateRequest {
	t.Helper()
	cr, err := Parse(newCSR(t, signer))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cr
}

func TestCheckAllows(t *testing.T) {
	fx := newCheckFixtures(t)
	defaults := Policy{
		KeyTypes:  []string{KeyECDSAP256, KeyECDSAP384, KeyRSA2048},
		Forbidden: []crypto.PublicKey{fx.ca.Public()},
	}
	tests := []struct {
		name    string
		signer  crypto.Signer
		policy  Policy
		keyType string
		rsaBits int
	}{
		{"P-256", fx.p256, defaults, KeyECDSAP256, 0},
		{"P-384", fx.p384, defaults, KeyECDSAP384, 0},
		{"P-521 when listed", fx.p521, Policy{KeyTypes: []string{KeyECDSAP521}}, KeyECDSAP521, 0},
		{"RSA 2048", fx.rsa2048, defaults, KeyRSA2048, 2048},
		{"RSA 3072 under an rsa-2048 minimum", fx.rsa3072, defaults, KeyRSA3072, 3072},
		{"RSA 3072 under an rsa-3072 minimum", fx.rsa3072, Policy{KeyTypes: []string{KeyRSA3072}}, KeyRSA3072, 3072},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := parsed(t, tt.signer)
			req, err := Check(cr, tt.policy)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if req.KeyType != tt.keyType || req.RSABits != tt.rsaBits {
				t.Errorf("KeyType, RSABits = %q, %d; want %q, %d", req.KeyType, req.RSABits, tt.keyType, tt.rsaBits)
			}
			if eq := req.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !eq.Equal(tt.signer.Public()) {
				t.Error("PublicKey is not the signer's key")
			}
			want, err := x509.MarshalPKIXPublicKey(tt.signer.Public())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(req.SPKI, want) || !bytes.Equal(req.SPKI, cr.RawSubjectPublicKeyInfo) {
				t.Error("SPKI is not the request's subjectPublicKeyInfo")
			}
			if &req.SPKI[0] == &cr.RawSubjectPublicKeyInfo[0] {
				t.Error("SPKI aliases the caller's buffer")
			}
			if req.RequestedSubject.CommonName != "applicant.example" {
				t.Errorf("RequestedSubject = %v", req.RequestedSubject)
			}
			oidSAN := asn1.ObjectIdentifier{2, 5, 29, 17}
			if len(req.RequestedExtensions) != 1 || !req.RequestedExtensions[0].Equal(oidSAN) {
				t.Errorf("RequestedExtensions = %v, want [%v]", req.RequestedExtensions, oidSAN)
			}
			// ParseAndCheck, from the bytes, decides the same.
			cr2, req2, err := ParseAndCheck(cr.Raw, tt.policy)
			if err != nil {
				t.Fatalf("ParseAndCheck: %v", err)
			}
			if !bytes.Equal(cr2.Raw, cr.Raw) || req2.KeyType != req.KeyType || req2.RSABits != req.RSABits ||
				!bytes.Equal(req2.SPKI, req.SPKI) || len(req2.RequestedExtensions) != len(req.RequestedExtensions) {
				t.Errorf("ParseAndCheck = %+v, Check = %+v", req2, req)
			}
		})
	}
}

func TestCheckRefuses(t *testing.T) {
	fx := newCheckFixtures(t)
	ecOnly := Policy{KeyTypes: []string{KeyECDSAP256, KeyECDSAP384}}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The same RSA modulus with another exponent: the applicant who can
	// sign with it can factor the CA's modulus.
	sameModulus := rsaFromPrimes(t, fx.rsa2048.Primes[0], fx.rsa2048.Primes[1], 65539)
	tests := []struct {
		name     string
		cr       func(t *testing.T) *x509.CertificateRequest
		policy   Policy
		code     string
		sentinel error
	}{
		{"P-521 by default", func(t *testing.T) *x509.CertificateRequest { return parsed(t, fx.p521) },
			Policy{KeyTypes: []string{KeyECDSAP256, KeyECDSAP384, KeyRSA2048}}, CodeKeyTypeNotAllowed, ErrForbiddenKey},
		{"P-384 when only P-256", func(t *testing.T) *x509.CertificateRequest { return parsed(t, fx.p384) },
			Policy{KeyTypes: []string{KeyECDSAP256}}, CodeKeyTypeNotAllowed, ErrForbiddenKey},
		{"RSA when only EC", func(t *testing.T) *x509.CertificateRequest { return parsed(t, fx.rsa2048) },
			ecOnly, CodeKeyTypeNotAllowed, ErrForbiddenKey},
		{"EC when only RSA", func(t *testing.T) *x509.CertificateRequest { return parsed(t, fx.p256) },
			Policy{KeyTypes: []string{KeyRSA2048}}, CodeKeyTypeNotAllowed, ErrForbiddenKey},
		{"RSA 2048 under an rsa-3072 minimum", func(t *testing.T) *x509.CertificateRequest { return parsed(t, fx.rsa2048) },
			Policy{KeyTypes: []string{KeyRSA3072, KeyECDSAP256}}, CodeRSATooSmall, ErrForbiddenKey},
		{"Ed25519", func(t *testing.T) *x509.CertificateRequest {
			// Parse refuses Ed25519 too; Check must not rely on it.
			cr, err := x509.ParseCertificateRequest(newCSR(t, edKey))
			if err != nil {
				t.Fatal(err)
			}
			return cr
		}, ecOnly, CodeKeyTypeNotAllowed, ErrForbiddenKey},
		{"the CA's key", func(t *testing.T) *x509.CertificateRequest { return parsed(t, fx.ca) },
			Policy{KeyTypes: []string{KeyECDSAP384}, Forbidden: []crypto.PublicKey{fx.p256.Public(), fx.ca.Public()}}, CodeKeyIsCAKey, ErrForbiddenKey},
		{"the CA's RSA modulus with another exponent", func(t *testing.T) *x509.CertificateRequest { return parsed(t, sameModulus) },
			Policy{KeyTypes: []string{KeyRSA2048}, Forbidden: []crypto.PublicKey{fx.rsa2048.Public()}}, CodeKeyIsCAKey, ErrForbiddenKey},
		{"nil request", func(*testing.T) *x509.CertificateRequest { return nil },
			ecOnly, CodeMalformed, ErrMalformed},
		{"request without Raw", func(t *testing.T) *x509.CertificateRequest {
			cr := parsed(t, fx.p256)
			cr.Raw = nil
			return cr
		}, ecOnly, CodeMalformed, ErrMalformed},
		{"fields swapped in memory are ignored", func(t *testing.T) *x509.CertificateRequest {
			// Raw is a P-521 request; the struct claims P-256. Check reads Raw.
			cr := parsed(t, fx.p256)
			other := parsed(t, fx.p521)
			other.PublicKey = cr.PublicKey
			other.RawSubjectPublicKeyInfo = cr.RawSubjectPublicKeyInfo
			other.PublicKeyAlgorithm = cr.PublicKeyAlgorithm
			return other
		}, ecOnly, CodeKeyTypeNotAllowed, ErrForbiddenKey},
		{"signature broken after Parse", func(t *testing.T) *x509.CertificateRequest {
			cr := parsed(t, fx.p256)
			cr.Raw = bytes.Clone(cr.Raw)
			cr.Raw[len(cr.Raw)-1] ^= 1
			return cr
		}, ecOnly, CodeBadSignature, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Check(tt.cr(t), tt.policy)
			if req != nil {
				t.Errorf("Check returned a request with error %v", err)
			}
			wantRefusal(t, err, tt.code, tt.sentinel)
		})
	}
}

// TestParseAndCheckRefuses: the one-pass form refuses what Parse or Check
// would, with the same codes.
func TestParseAndCheckRefuses(t *testing.T) {
	fx := newCheckFixtures(t)
	ecOnly := Policy{KeyTypes: []string{KeyECDSAP256, KeyECDSAP384}}
	flipped := bytes.Clone(parsed(t, fx.p256).Raw)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name     string
		in       []byte
		policy   Policy
		code     string
		sentinel error
	}{
		{"P-521 by default", parsed(t, fx.p521).Raw, ecOnly, CodeKeyTypeNotAllowed, ErrForbiddenKey},
		{"the CA's key", parsed(t, fx.ca).Raw, Policy{KeyTypes: []string{KeyECDSAP384}, Forbidden: []crypto.PublicKey{fx.ca.Public()}}, CodeKeyIsCAKey, ErrForbiddenKey},
		{"signature flipped", flipped, ecOnly, CodeBadSignature, ErrBadSignature},
		{"too large", make([]byte, MaxSize+1), ecOnly, CodeTooLarge, ErrMalformed},
		{"empty", nil, ecOnly, CodeMalformed, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr, req, err := ParseAndCheck(tt.in, tt.policy)
			if cr != nil || req != nil {
				t.Errorf("ParseAndCheck returned a request with error %v", err)
			}
			wantRefusal(t, err, tt.code, tt.sentinel)
		})
	}
	if _, _, err := ParseAndCheck(parsed(t, fx.p256).Raw, Policy{}); !errors.Is(err, ErrPolicy) {
		t.Errorf("an empty policy: %v, want ErrPolicy", err)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		ok     bool
	}{
		{"all key types", Policy{KeyTypes: []string{KeyECDSAP256, KeyECDSAP384, KeyECDSAP521, KeyRSA2048, KeyRSA3072, KeyRSA4096}}, true},
		{"empty", Policy{}, false},
		{"unknown key type", Policy{KeyTypes: []string{"ed25519"}}, false},
		{"RSA below the floor", Policy{KeyTypes: []string{"rsa-1024"}}, false},
		{"RSA without modulus", Policy{KeyTypes: []string{KeyRSA2048}, Forbidden: []crypto.PublicKey{&rsa.PublicKey{}}}, false},
		{"ECDSA without point", Policy{KeyTypes: []string{KeyRSA2048}, Forbidden: []crypto.PublicKey{&ecdsa.PublicKey{}}}, false},
		{"key by value", Policy{KeyTypes: []string{KeyRSA2048}, Forbidden: []crypto.PublicKey{rsa.PublicKey{}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrPolicy) {
					t.Errorf("errors.Is(%v, ErrPolicy) = false", err)
				}
				if _, cerr := Check(nil, tt.policy); !errors.Is(cerr, ErrPolicy) {
					t.Errorf("Check with invalid policy: %v", cerr)
				}
			}
		})
	}
}
