package transcript

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Signature algorithms of the signature line (package doc).
const (
	AlgECDSAP256SHA256 = "ECDSA-SHA256"
	AlgECDSAP384SHA384 = "ECDSA-SHA384"
	AlgRSAPKCS1SHA256  = "RSA-PKCS1v15-SHA256"
)

// signedMessagePrefix versions the signed message.
const signedMessagePrefix = "sanad-ceremony-transcript-v1\n"

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// signatureData is the data of the signature line; its fields are in
// sorted order, so encoding it gives canonical JSON.
type signatureData struct {
	Algorithm       string `json:"algorithm"`
	PublicKey       string `json:"public_key"`
	PublicKeySHA256 string `json:"public_key_sha256"`
	Signature       string `json:"signature"`
}

// algorithmFor returns the algorithm and hash for a key, or an error if the
// key is not allowed (package doc).
func algorithmFor(pub crypto.PublicKey) (string, crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch name := k.Curve.Params().Name; name {
		case "P-256":
			return AlgECDSAP256SHA256, crypto.SHA256, nil
		case "P-384":
			return AlgECDSAP384SHA384, crypto.SHA384, nil
		default:
			return "", 0, fmt.Errorf("%w: ECDSA curve %s (want P-256 or P-384)", ErrUnsupportedKey, name)
		}
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return "", 0, fmt.Errorf("%w: RSA-%d (want at least %d bits)", ErrUnsupportedKey, bits, minRSABits)
		}
		return AlgRSAPKCS1SHA256, crypto.SHA256, nil
	default:
		return "", 0, fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
}

// signedMessage is what the signature covers (package doc).
func signedMessage(seq int, t time.Time, prev, alg, keySHA256 string) []byte {
	return []byte(signedMessagePrefix +
		"seq " + strconv.Itoa(seq) + "\n" +
		"time " + formatTime(t) + "\n" +
		"prev " + prev + "\n" +
		"algorithm " + alg + "\n" +
		"public_key_sha256 " + keySHA256 + "\n")
}

func digest(h crypto.Hash, msg []byte) []byte {
	d := h.New()
	d.Write(msg)
	return d.Sum(nil)
}

// checkSignature verifies sig over digest with pub under alg.
func checkSignature(pub crypto.PublicKey, h crypto.Hash, dgst, sig []byte) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, dgst, sig) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(k, h, dgst, sig); err != nil {
			return fmt.Errorf("RSA signature does not verify: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("unsupported key %T", pub)
	}
}

// signatureLine signs the chain head prev as line seq at time t and returns
// the signature line, without its "\n". It checks the signature before
// returning it, so a faulty signer cannot seal a transcript.
func signatureLine(signer crypto.Signer, rand io.Reader, seq int, t time.Time, prev string) ([]byte, error) {
	pub := signer.Public()
	alg, h, err := algorithmFor(pub)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: marshal public key: %w", ErrUnsupportedKey, err)
	}
	keySum := sha256.Sum256(spki)
	keyHex := hex.EncodeToString(keySum[:])
	dgst := digest(h, signedMessage(seq, t, prev, alg, keyHex))
	sig, err := signer.Sign(rand, dgst, h)
	if err != nil {
		return nil, fmt.Errorf("sign transcript head seq %d: %w", seq, err)
	}
	if err := checkSignature(pub, h, dgst, sig); err != nil {
		return nil, fmt.Errorf("%w: signer returned a signature that does not verify with its own key: %w", ErrBadSignature, err)
	}
	return encodeSignatureLine(seq, t, prev, signatureData{
		Algorithm:       alg,
		PublicKey:       base64.StdEncoding.EncodeToString(spki),
		PublicKeySHA256: keyHex,
		Signature:       base64.StdEncoding.EncodeToString(sig),
	})
}

func encodeSignatureLine(seq int, t time.Time, prev string, sd signatureData) ([]byte, error) {
	data, err := json.Marshal(sd)
	if err != nil {
		return nil, err
	}
	return encodeLine(seq, t, stepSignature, data, prev)
}

// signer is what a verified signature line yields.
type signer struct {
	pub       crypto.PublicKey
	keySHA256 string
	alg       string
}

// verifySignatureLine checks a parsed signature line whose envelope (seq,
// prev) has already been checked against the chain. raw is its exact bytes.
func verifySignatureLine(ln Line, raw []byte) (signer, error) {
	var sd signatureData
	dec := json.NewDecoder(bytes.NewReader(ln.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sd); err != nil {
		return signer{}, fmt.Errorf("signature data: %w", err)
	}
	var h crypto.Hash
	switch sd.Algorithm {
	case AlgECDSAP256SHA256, AlgRSAPKCS1SHA256:
		h = crypto.SHA256
	case AlgECDSAP384SHA384:
		h = crypto.SHA384
	default:
		return signer{}, fmt.Errorf("unknown algorithm %q", truncate(sd.Algorithm, 40))
	}
	spki, err := base64.StdEncoding.Strict().DecodeString(sd.PublicKey)
	if err != nil {
		return signer{}, fmt.Errorf("public_key is not base64: %w", err)
	}
	keySum := sha256.Sum256(spki)
	keyHex := hex.EncodeToString(keySum[:])
	if keyHex != sd.PublicKeySHA256 {
		return signer{}, errors.New("public_key_sha256 is not the SHA-256 of public_key")
	}
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return signer{}, fmt.Errorf("public_key: %w", err)
	}
	alg, _, err := algorithmFor(pub)
	if err != nil {
		return signer{}, err
	}
	if alg != sd.Algorithm {
		return signer{}, fmt.Errorf("algorithm %s does not match the key (want %s)", sd.Algorithm, alg)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(sd.Signature)
	if err != nil {
		return signer{}, fmt.Errorf("signature is not base64: %w", err)
	}
	canon, err := encodeSignatureLine(ln.Seq, ln.Time, ln.Prev, sd)
	if err != nil {
		return signer{}, err
	}
	if !bytes.Equal(canon, raw) {
		return signer{}, errors.New("signature line is not in its exact form (see the package doc)")
	}
	dgst := digest(h, signedMessage(ln.Seq, ln.Time, ln.Prev, sd.Algorithm, keyHex))
	if err := checkSignature(pub, h, dgst, sig); err != nil {
		return signer{}, err
	}
	return signer{pub: pub, keySHA256: keyHex, alg: alg}, nil
}
