package verify

import (
	"bytes"
	"crypto"
	_ "crypto/sha1" // CertID hashes: RFC 6960's default
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// certIDHashes are the hash algorithms an OCSP CertID may name here, by
// OID.
var certIDHashes = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
}{
	{asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, crypto.SHA1},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, crypto.SHA256},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}, crypto.SHA384},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}, crypto.SHA512},
}

// checkCertID requires the OCSP ResponseData tbs to answer about cert of
// issuer in exactly one SingleResponse, and that one to name issuer by its
// CertID (RFC 6960 §4.1.1: the hashes of the issuer's name and key), as a
// relying party matches an answer to its request. x/crypto/ocsp picks the
// SingleResponse by serial alone: a responder serving several CAs could
// otherwise have its answer about another CA's certificate of the same
// serial taken for this one's.
func checkCertID(tbs []byte, cert, issuer *x509.Certificate) error {
	keyBits, err := subjectPublicKeyBits(issuer.RawSubjectPublicKeyInfo)
	if err != nil {
		return err
	}
	in := cryptobyte.String(tbs)
	var data, responderID, responses cryptobyte.String
	var idTag cbasn1.Tag
	if !in.ReadASN1(&data, cbasn1.SEQUENCE) || !in.Empty() ||
		!data.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!data.ReadAnyASN1(&responderID, &idTag) || // byName [1] or byKey [2]
		idTag != cbasn1.Tag(1).Constructed().ContextSpecific() && idTag != cbasn1.Tag(2).Constructed().ContextSpecific() ||
		!data.SkipASN1(cbasn1.GeneralizedTime) ||
		!data.ReadASN1(&responses, cbasn1.SEQUENCE) {
		return errors.New("response data is malformed")
	}
	about := 0
	for !responses.Empty() {
		var single, id, alg cryptobyte.String
		var oid asn1.ObjectIdentifier
		var nameHash, keyHash []byte
		serial := new(big.Int)
		if !responses.ReadASN1(&single, cbasn1.SEQUENCE) || !single.ReadASN1(&id, cbasn1.SEQUENCE) ||
			!id.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) ||
			!id.ReadASN1Bytes(&nameHash, cbasn1.OCTET_STRING) || !id.ReadASN1Bytes(&keyHash, cbasn1.OCTET_STRING) ||
			!id.ReadASN1Integer(serial) || !id.Empty() {
			return errors.New("a CertID of the response is malformed")
		}
		if serial.Cmp(cert.SerialNumber) != 0 {
			continue
		}
		about++
		h, ok := certIDHash(oid)
		if !ok {
			return fmt.Errorf("the answer's CertID hashes with %v, which this verifier does not take", oid)
		}
		if !bytes.Equal(nameHash, digest(h, issuer.RawSubject)) || !bytes.Equal(keyHash, digest(h, keyBits)) {
			return errors.New("the answer is about a certificate of this serial from another issuer (its CertID names another issuer's name or key)")
		}
	}
	if about != 1 {
		return fmt.Errorf("the response carries %d answers about this serial, not one", about)
	}
	return nil
}

func certIDHash(oid asn1.ObjectIdentifier) (crypto.Hash, bool) {
	for _, c := range certIDHashes {
		if c.oid.Equal(oid) {
			return c.hash, true
		}
	}
	return 0, false
}

// subjectPublicKeyBits are the bits of a SubjectPublicKeyInfo's
// subjectPublicKey, which a CertID's issuerKeyHash hashes (without the
// BIT STRING's tag, length and unused-bits count).
func subjectPublicKeyBits(spki []byte) ([]byte, error) {
	in := cryptobyte.String(spki)
	var info cryptobyte.String
	var bits asn1.BitString
	if !in.ReadASN1(&info, cbasn1.SEQUENCE) || !info.SkipASN1(cbasn1.SEQUENCE) || !info.ReadASN1BitString(&bits) || bits.BitLength%8 != 0 {
		return nil, errors.New("the issuer's public key is malformed")
	}
	return bits.Bytes, nil
}
