package ca_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// tweakedCSR is a CSR for key whose SubjectPublicKeyInfo SEQUENCE carries
// one extra trailing element (NULL), which DER parsers skip: the same key,
// other bytes.
func tweakedCSR(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	var seq asn1.RawValue
	if _, err := asn1.Unmarshal(spki, &seq); err != nil {
		t.Fatal(err)
	}
	content := append(append([]byte{}, seq.Bytes...), 0x05, 0x00)
	tweaked, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: content})
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := asn1.Marshal(pkix.Name{}.ToRDNSequence())
	info := struct {
		Version    int
		Subject    asn1.RawValue
		PublicKey  asn1.RawValue
		Attributes asn1.RawValue `asn1:"tag:0"`
	}{0, asn1.RawValue{FullBytes: subject}, asn1.RawValue{FullBytes: tweaked}, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true}}
	tbs, err := asn1.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(tbs)
	sig, err := key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(struct {
		TBS asn1.RawValue
		Alg pkix.AlgorithmIdentifier
		Sig asn1.BitString
	}{asn1.RawValue{FullBytes: tbs}, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}}, asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// TestBlockedKeyInOtherBytes: a key revoked for keyCompromise is refused
// in a request that spells its SubjectPublicKeyInfo in other bytes, by the
// RA's check and by the CA's own.
func TestBlockedKeyInOtherBytes(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := context.Background()
		authority := f.CA(t, db, audit.New(time.Now))
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		cert := compromised(t, authority, key, "citizen-sign")
		tweaked := tweakedCSR(t, key)
		block, _ := pem.Decode(tweaked)
		cr, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(cr.RawSubjectPublicKeyInfo, cert.RawSubjectPublicKeyInfo) {
			t.Fatal("the tweaked request spells the key as the certificate does")
		}
		if err := ca.CheckKeyNotBlocked(ctx, db, cr.PublicKey); !errors.Is(err, ca.ErrKeyCompromised) {
			t.Errorf("CheckKeyNotBlocked(the key in other bytes) = %v, want ErrKeyCompromised", err)
		}
		if again, err := authority.Issue(ctx, ca.Request{Profile: "citizen-sign", CSR: tweaked, Verified: person, Actor: "test"}); !errors.Is(err, ca.ErrKeyCompromised) {
			t.Errorf("Issue(the key in other bytes): certificate returned %v, err %v; want ErrKeyCompromised", again != nil, err)
		}
	})
}

// TestBlockedRSAModulusAnyExponent: an RSA key revoked for keyCompromise
// is refused with any exponent on its modulus, whose factors are what was
// compromised.
func TestBlockedRSAModulusAnyExponent(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := context.Background()
		authority := f.CA(t, db, audit.New(time.Now))
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		compromised(t, authority, key, "citizen-auth")
		// The same primes, the next exponent the CSR policy allows that
		// has an inverse.
		p, q := key.Primes[0], key.Primes[1]
		one := big.NewInt(1)
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		var other *rsa.PrivateKey
		for e := int64(65539); other == nil; e += 2 {
			if d := new(big.Int).ModInverse(big.NewInt(e), phi); d != nil {
				other = &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: key.N, E: int(e)}, D: d, Primes: []*big.Int{p, q}}
			}
		}
		if err := other.Validate(); err != nil {
			t.Fatal(err)
		}
		other.Precompute()
		if again, err := authority.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: csrFor(t, other, nil), Verified: person, Actor: "test"}); !errors.Is(err, ca.ErrKeyCompromised) {
			t.Errorf("Issue(the modulus with e=%d): certificate returned %v, err %v; want ErrKeyCompromised", other.E, again != nil, err)
		}
	})
}

// compromised issues a certificate of profile for key and revokes it for
// keyCompromise.
func compromised(t *testing.T, authority *ca.CA, key crypto.Signer, profile string) *x509.Certificate {
	t.Helper()
	cert, err := authority.Issue(t.Context(), ca.Request{Profile: profile, CSR: csrFor(t, key, nil), Verified: person, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := authority.Revoke(t.Context(), cert.SerialNumber.Bytes(), 1, "officer:test"); err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestIntentKeyBlocked: a certificate whose issuance stopped between its
// intent and the store (the HSM may have signed it: a crash) has no DER,
// only the TBS it was to sign. Reported compromised, its key is blocked
// all the same, read from the TBS: while the intent is open, and once
// recovery revoked it (cessationOfOperation), its reason being raised to
// keyCompromise. Before, neither blocked the key.
func TestIntentKeyBlocked(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	ctx := t.Context()
	deps := f.Deps(db, audit.New(time.Now))
	deps.Fault = func(point string) error {
		if point == ca.FaultAfterIntent {
			return errors.New("crash after the intent")
		}
		return nil
	}
	f.PutIssuer(t, db)
	authority, err := ca.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	intent := func() (crypto.PublicKey, []byte) {
		t.Helper()
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		before, err := db.UnsignedCertificates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := authority.Issue(ctx, ca.Request{Profile: "citizen-sign", CSR: csrFor(t, key, nil), Verified: person, Actor: "test"}); err == nil {
			t.Fatal("the issuance did not stop after its intent")
		}
		after, err := db.UnsignedCertificates(ctx)
		if err != nil || len(after) != len(before)+1 {
			t.Fatalf("intents before %d, after %d (%v)", len(before), len(after), err)
		}
		for _, c := range after {
			if !slices.ContainsFunc(before, func(b store.Certificate) bool { return bytes.Equal(b.Serial, c.Serial) }) {
				return key.Public(), c.Serial
			}
		}
		t.Fatal("no new intent")
		return nil, nil
	}

	// Open: its status good, no DER.
	open, openSerial := intent()
	if err := authority.Revoke(ctx, openSerial, 1, "officer:test"); err != nil {
		t.Fatalf("keyCompromise on an open intent: %v", err)
	}
	if err := ca.CheckKeyNotBlocked(ctx, db, open); !errors.Is(err, ca.ErrKeyCompromised) {
		t.Errorf("the open intent's key: CheckKeyNotBlocked = %v, want ErrKeyCompromised", err)
	}
	// Recovered: revoked, cessationOfOperation; reported compromised, its
	// reason is raised.
	recovered, recoveredSerial := intent()
	if n, err := authority.Recover(ctx, 0); err != nil || n != 1 {
		t.Fatalf("Recover: %d, %v; want the second intent revoked", n, err)
	}
	if err := authority.Revoke(ctx, recoveredSerial, 1, "officer:test"); err != nil {
		t.Fatalf("keyCompromise on a recovered intent: %v", err)
	}
	if c, err := db.Certificate(ctx, "issuing", recoveredSerial); err != nil || c.Reason != 1 {
		t.Errorf("the recovered intent's reason: %v (%v); want keyCompromise", c.Reason, err)
	}
	if err := ca.CheckKeyNotBlocked(ctx, db, recovered); !errors.Is(err, ca.ErrKeyCompromised) {
		t.Errorf("the recovered intent's key: CheckKeyNotBlocked = %v, want ErrKeyCompromised", err)
	}
}
