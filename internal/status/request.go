package status

import (
	"crypto"
	"encoding/asn1"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MaxRequestSize bounds an OCSP request, in DER. One request for one
// certificate with a 32-byte nonce is about 100 bytes; RFC 5019 §5 asks
// clients to keep GET requests under 255 bytes of base64.
const MaxRequestSize = 1 << 10

// Request is the one certificate an OCSP request asks about (RFC 6960
// §4.1.1). Sanad answers requests for exactly one certificate, as RFC 5019
// §2.1.1 profiles them; a request list of any other length is malformed.
type Request struct {
	// HashAlgorithm hashed the issuer's name and key in the CertID.
	HashAlgorithm  crypto.Hash
	IssuerNameHash []byte
	IssuerKeyHash  []byte
	// Serial is the serial number as the store keeps it: big-endian,
	// without leading zero bytes.
	Serial []byte
	// Nonce is the RFC 8954 nonce's value, nil when none was sent.
	Nonce []byte
}

// ErrMalformed is wrapped by every reason a request is refused; the
// responder answers malformedRequest (RFC 6960 §4.2.1).
var ErrMalformed = errors.New("malformed OCSP request")

// hashOIDs are the CertID hash algorithms Sanad parses: SHA-1 (RFC 5019
// §2.1.1 requires it) and the SHA-2 family (RFC 6960 §4.3 lets clients
// use others). A request by a SHA-2 CertID is well formed, and answered
// unauthorized: the responses are pre-signed for SHA-1 CertIDs (see
// Responder.loadIssuers).
var hashOIDs = map[string]crypto.Hash{
	"1.3.14.3.2.26":          crypto.SHA1,
	"2.16.840.1.101.3.4.2.1": crypto.SHA256,
	"2.16.840.1.101.3.4.2.2": crypto.SHA384,
	"2.16.840.1.101.3.4.2.3": crypto.SHA512,
}

// hashOIDsDER is hashOIDs by the OIDs' DER content octets, so that the
// hot path looks an algorithm up without formatting its OID.
var hashOIDsDER = func() map[string]crypto.Hash {
	m := make(map[string]crypto.Hash, len(hashOIDs))
	for dotted, h := range hashOIDs {
		var oid asn1.ObjectIdentifier
		for part := range strings.SplitSeq(dotted, ".") {
			n, _ := strconv.Atoi(part)
			oid = append(oid, n)
		}
		der, err := asn1.Marshal(oid)
		if err != nil {
			panic(err)
		}
		m[string(der[2:])] = h // past the tag and the one-octet length
	}
	return m
}()

// oidNonce is id-pkix-ocsp-nonce (RFC 6960 §4.4.1).
var oidNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}

// Nonce length bounds of RFC 8954 §2.1.
const (
	minNonce = 1
	maxNonce = 32
)

// ParseRequest reads a DER OCSPRequest (RFC 6960 §4.1.1) strictly: no
// trailing bytes, exactly one request, a known CertID hash whose lengths
// fit it, a positive serial of at most 20 octets (RFC 5280 §4.1.2.2), and
// a nonce, if any, of 1 to 32 octets (RFC 8954 §2.1). A signed request is
// accepted and its signature ignored: Sanad's answers are public.
func ParseRequest(der []byte) (Request, error) {
	var r Request
	if len(der) == 0 {
		return r, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if len(der) > MaxRequestSize {
		return r, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(der), MaxRequestSize)
	}
	in := cryptobyte.String(der)
	var ocspRequest, tbs, list cryptobyte.String
	if !in.ReadASN1(&ocspRequest, cbasn1.SEQUENCE) || !in.Empty() {
		return r, fmt.Errorf("%w: not one DER SEQUENCE", ErrMalformed)
	}
	if !ocspRequest.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return r, fmt.Errorf("%w: no tbsRequest", ErrMalformed)
	}
	// optionalSignature [0] EXPLICIT Signature OPTIONAL
	if !ocspRequest.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || !ocspRequest.Empty() {
		return r, fmt.Errorf("%w: unexpected data after tbsRequest", ErrMalformed)
	}

	// version [0] EXPLICIT Version DEFAULT v1: DER omits the default, so
	// a present version is never v1(0).
	var version cryptobyte.String
	var hasVersion bool
	if !tbs.ReadOptionalASN1(&version, &hasVersion, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return r, fmt.Errorf("%w: bad version", ErrMalformed)
	}
	if hasVersion {
		var v int64
		if !version.ReadASN1Int64WithTag(&v, cbasn1.INTEGER) || !version.Empty() {
			return r, fmt.Errorf("%w: bad version", ErrMalformed)
		}
		return r, fmt.Errorf("%w: version %d (only v1, encoded by omission, exists)", ErrMalformed, v+1)
	}
	// requestorName [1] EXPLICIT GeneralName OPTIONAL
	if !tbs.SkipOptionalASN1(cbasn1.Tag(1).Constructed().ContextSpecific()) {
		return r, fmt.Errorf("%w: bad requestorName", ErrMalformed)
	}
	if !tbs.ReadASN1(&list, cbasn1.SEQUENCE) {
		return r, fmt.Errorf("%w: no requestList", ErrMalformed)
	}
	var exts cryptobyte.String
	var hasExts bool
	if !tbs.ReadOptionalASN1(&exts, &hasExts, cbasn1.Tag(2).Constructed().ContextSpecific()) || !tbs.Empty() {
		return r, fmt.Errorf("%w: unexpected data in tbsRequest", ErrMalformed)
	}

	var single cryptobyte.String
	if !list.ReadASN1(&single, cbasn1.SEQUENCE) {
		return r, fmt.Errorf("%w: the requestList is empty", ErrMalformed)
	}
	if !list.Empty() {
		return r, fmt.Errorf("%w: more than one certificate in one request (RFC 5019 §2.1.1: one per request)", ErrMalformed)
	}
	if err := r.readCertID(&single); err != nil {
		return r, err
	}
	// singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL: none is
	// defined that changes the answer; read them for well-formedness.
	var singleExts cryptobyte.String
	var hasSingleExts bool
	if !single.ReadOptionalASN1(&singleExts, &hasSingleExts, cbasn1.Tag(0).Constructed().ContextSpecific()) || !single.Empty() {
		return r, fmt.Errorf("%w: unexpected data in the request", ErrMalformed)
	}
	if hasSingleExts {
		if _, err := readExtensions(singleExts); err != nil {
			return r, err
		}
	}
	if hasExts {
		nonce, err := readExtensions(exts)
		if err != nil {
			return r, err
		}
		r.Nonce = nonce
	}
	return r, nil
}

// readCertID reads CertID ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier,
// issuerNameHash OCTET STRING, issuerKeyHash OCTET STRING, serialNumber
// CertificateSerialNumber }.
func (r *Request) readCertID(single *cryptobyte.String) error {
	var certID, algID, oid cryptobyte.String
	if !single.ReadASN1(&certID, cbasn1.SEQUENCE) ||
		!certID.ReadASN1(&algID, cbasn1.SEQUENCE) ||
		!algID.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) {
		return fmt.Errorf("%w: bad CertID", ErrMalformed)
	}
	// The parameters are absent or NULL (RFC 5754 §2 lets both be).
	if !algID.Empty() {
		var null cryptobyte.String
		if !algID.ReadASN1(&null, cbasn1.NULL) || !null.Empty() || !algID.Empty() {
			return fmt.Errorf("%w: hash algorithm parameters are not NULL", ErrMalformed)
		}
	}
	h, ok := hashOIDsDER[string(oid)]
	if !ok {
		return fmt.Errorf("%w: CertID hash algorithm %x is not supported (SHA-1 and SHA-2 are)", ErrMalformed, []byte(oid))
	}
	var nameHash, keyHash, serial cryptobyte.String
	if !certID.ReadASN1(&nameHash, cbasn1.OCTET_STRING) ||
		!certID.ReadASN1(&keyHash, cbasn1.OCTET_STRING) ||
		!certID.ReadASN1(&serial, cbasn1.INTEGER) || !certID.Empty() {
		return fmt.Errorf("%w: bad CertID", ErrMalformed)
	}
	if len(nameHash) != h.Size() || len(keyHash) != h.Size() {
		return fmt.Errorf("%w: CertID hashes are not %d-byte %s digests", ErrMalformed, h.Size(), h)
	}
	s, err := positiveSerial(serial)
	if err != nil {
		return err
	}
	r.HashAlgorithm, r.IssuerNameHash, r.IssuerKeyHash, r.Serial = h, nameHash, keyHash, s
	return nil
}

// positiveSerial checks an INTEGER's content octets are a minimal positive
// number of at most 20 octets and returns it without the sign octet.
func positiveSerial(b []byte) ([]byte, error) {
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("%w: empty serial number", ErrMalformed)
	case b[0]&0x80 != 0:
		return nil, fmt.Errorf("%w: negative serial number", ErrMalformed)
	case len(b) > 1 && b[0] == 0 && b[1]&0x80 == 0:
		return nil, fmt.Errorf("%w: serial number is not minimally encoded", ErrMalformed)
	}
	if b[0] == 0 {
		b = b[1:]
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: serial number zero", ErrMalformed)
	}
	if len(b) > 20 {
		return nil, fmt.Errorf("%w: serial number of %d octets, more than 20", ErrMalformed, len(b))
	}
	return b, nil
}

// readExtensions reads Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension
// and returns the nonce's value, if one is there. Unknown non-critical
// extensions are ignored; an unknown critical one is refused (RFC 5280
// §4.2 semantics, which RFC 6960 §4.4 borrows).
func readExtensions(in cryptobyte.String) ([]byte, error) {
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() || seq.Empty() {
		return nil, fmt.Errorf("%w: bad extensions", ErrMalformed)
	}
	var nonce []byte
	seen := map[string]bool{}
	for !seq.Empty() {
		var ext, value cryptobyte.String
		var oid asn1.ObjectIdentifier
		critical := false
		if !seq.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) ||
			!ext.ReadOptionalASN1Boolean(&critical, cbasn1.BOOLEAN, false) ||
			!ext.ReadASN1(&value, cbasn1.OCTET_STRING) || !ext.Empty() {
			return nil, fmt.Errorf("%w: bad extension", ErrMalformed)
		}
		if seen[oid.String()] {
			return nil, fmt.Errorf("%w: extension %s twice", ErrMalformed, oid)
		}
		seen[oid.String()] = true
		if !oid.Equal(oidNonce) {
			if critical {
				return nil, fmt.Errorf("%w: unknown critical extension %s", ErrMalformed, oid)
			}
			continue
		}
		// RFC 8954 §2.1: Nonce ::= OCTET STRING (SIZE(1..32)), inside the
		// extension's OCTET STRING.
		var n cryptobyte.String
		if !value.ReadASN1(&n, cbasn1.OCTET_STRING) || !value.Empty() {
			return nil, fmt.Errorf("%w: the nonce is not an OCTET STRING", ErrMalformed)
		}
		if len(n) < minNonce || len(n) > maxNonce {
			return nil, fmt.Errorf("%w: nonce of %d octets (RFC 8954: 1 to 32)", ErrMalformed, len(n))
		}
		nonce = n
	}
	return nonce, nil
}
