package hsm

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"

	"github.com/miekg/pkcs11"
)

// Sign signs digest with the key in the HSM; rand is ignored (the HSM has
// its own). It waits for a free session for at most TokenConfig.SessionWait.
// See SignContext.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.SignContext(context.Background(), digest, opts)
}

// SignContext signs digest, the hash of the message made with
// opts.HashFunc() (SHA-224, SHA-256, SHA-384 or SHA-512; SHA-1 and unhashed
// input are refused):
//
//   - an ECDSA key returns an ASN.1 DER ECDSA-Sig-Value (RFC 5480 §2.2.3),
//     like crypto/ecdsa;
//   - an RSA key returns a PKCS#1 v1.5 signature (RFC 8017 §8.2), or a PSS
//     one (RFC 8017 §8.1) when opts is *rsa.PSSOptions, with MGF1 over the
//     same hash and a salt as long as the hash for PSSSaltLengthEqualsHash
//     and PSSSaltLengthAuto.
//
// ctx bounds the wait for a free session (so does TokenConfig.SessionWait);
// a PKCS#11 call in progress cannot be cancelled.
func (k *Key) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("hsm: sign with %q: %w", k.label, err)
	}
	mech, input, err := k.signInput(digest, opts)
	if err != nil {
		return nil, err
	}
	t := k.token
	var sig []byte
	err = t.do(ctx, t.wait, k, func(sh pkcs11.SessionHandle) error {
		if err := t.p11.SignInit(sh, mech, pkcs11.ObjectHandle(k.handle.Load())); err != nil {
			return err
		}
		s, err := t.p11.Sign(sh, input)
		sig = s
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("hsm: sign with %q on token %q: %w", k.label, t.label, err)
	}
	if k.bits == 0 {
		der, err := ecdsaDER(sig)
		if err != nil {
			return nil, fmt.Errorf("hsm: sign with %q: %w", k.label, err)
		}
		return der, nil
	}
	return sig, nil
}

// signInput checks digest and opts and returns the mechanism and the data
// to give C_Sign.
func (k *Key) signInput(digest []byte, opts crypto.SignerOpts) ([]*pkcs11.Mechanism, []byte, error) {
	if opts == nil {
		return nil, nil, fmt.Errorf("hsm: sign with %q: no hash function given", k.label)
	}
	h := opts.HashFunc()
	hp, ok := hashParamsOf(h)
	if !ok {
		if h == 0 {
			return nil, nil, fmt.Errorf("hsm: sign with %q: unhashed input is not supported", k.label)
		}
		return nil, nil, fmt.Errorf("hsm: sign with %q: hash %v is not supported", k.label, h)
	}
	if len(digest) != h.Size() {
		return nil, nil, fmt.Errorf("hsm: sign with %q: digest is %d bytes, %v needs %d", k.label, len(digest), h, h.Size())
	}
	pss, isPSS := opts.(*rsa.PSSOptions)
	if k.bits == 0 { // ECDSA: the token hashes nothing, it signs the digest
		if isPSS {
			return nil, nil, fmt.Errorf("hsm: sign with %q: PSS options for an ECDSA key", k.label)
		}
		return k.mech, digest, nil
	}
	if !isPSS {
		// RFC 8017 §9.2: the token pads DigestInfo || digest.
		input := make([]byte, 0, len(hp.digestInfo)+len(digest))
		input = append(input, hp.digestInfo...)
		input = append(input, digest...)
		return k.mech, input, nil
	}
	salt := pss.SaltLength
	switch {
	case salt == rsa.PSSSaltLengthAuto, salt == rsa.PSSSaltLengthEqualsHash:
		salt = h.Size()
	case salt < 0:
		return nil, nil, fmt.Errorf("hsm: sign with %q: invalid PSS salt length %d", k.label, salt)
	}
	// RFC 8017 §9.1.1: emLen >= hLen + sLen + 2, emLen = ceil((modBits-1)/8).
	if emLen := (k.bits - 1 + 7) / 8; salt > emLen-h.Size()-2 {
		return nil, nil, fmt.Errorf("hsm: sign with %q: PSS salt length %d too long for a %d-bit key and %v", k.label, salt, k.bits, h)
	}
	params := pkcs11.NewPSSParams(hp.mech, hp.mgf, uint(salt))
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, params)}, digest, nil
}

// hashParams is what PKCS#11 needs to know about a hash.
type hashParams struct {
	mech       uint   // CKM_SHAxxx, for PSS
	mgf        uint   // CKG_MGF1_SHAxxx, for PSS
	digestInfo string // DER DigestInfo prefix, for PKCS#1 v1.5 (RFC 8017 §9.2 note 1)
}

func hashParamsOf(h crypto.Hash) (hashParams, bool) {
	switch h {
	case crypto.SHA224:
		return hashParams{pkcs11.CKM_SHA224, pkcs11.CKG_MGF1_SHA224,
			"\x30\x2d\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x04\x05\x00\x04\x1c"}, true
	case crypto.SHA256:
		return hashParams{pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256,
			"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"}, true
	case crypto.SHA384:
		return hashParams{pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384,
			"\x30\x41\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x02\x05\x00\x04\x30"}, true
	case crypto.SHA512:
		return hashParams{pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512,
			"\x30\x51\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x03\x05\x00\x04\x40"}, true
	}
	return hashParams{}, false
}

// ecdsaDER turns the raw r || s that CKM_ECDSA returns (PKCS#11 v2.40 §2.3.1:
// r and s, each as long as the group order) into
// ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (RFC 5480 §2.2.3).
func ecdsaDER(raw []byte) ([]byte, error) {
	if len(raw) == 0 || len(raw)%2 != 0 {
		return nil, fmt.Errorf("ECDSA signature of %d bytes is not r || s", len(raw))
	}
	r, s := derUint(raw[:len(raw)/2]), derUint(raw[len(raw)/2:])
	if r == nil || s == nil {
		return nil, errors.New("ECDSA signature has r or s zero")
	}
	rLen, sLen := derUintLen(r), derUintLen(s)
	body := 1 + derLenLen(rLen) + rLen + 1 + derLenLen(sLen) + sLen
	out := make([]byte, 0, 1+derLenLen(body)+body)
	out = append(out, 0x30)
	out = appendDERLen(out, body)
	out = appendDERUint(out, r, rLen)
	out = appendDERUint(out, s, sLen)
	return out, nil
}

// derUint strips leading zero bytes of a big-endian unsigned integer; nil
// means zero.
func derUint(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) == 0 {
		return nil
	}
	return b
}

// derUintLen is the length of the INTEGER contents: a leading 0x00 keeps a
// high first bit from reading as negative (X.690 §8.3).
func derUintLen(b []byte) int {
	if b[0]&0x80 != 0 {
		return len(b) + 1
	}
	return len(b)
}

func appendDERUint(out, b []byte, n int) []byte {
	out = append(out, 0x02)
	out = appendDERLen(out, n)
	if n > len(b) {
		out = append(out, 0)
	}
	return append(out, b...)
}

// derLenLen is the size of a DER length field for n (X.690 §8.1.3).
func derLenLen(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n <= 0xff:
		return 2
	default:
		return 3 // ECDSA signatures never need more
	}
}

func appendDERLen(out []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(out, byte(n))
	case n <= 0xff:
		return append(out, 0x81, byte(n))
	default:
		return append(out, 0x82, byte(n>>8), byte(n))
	}
}
