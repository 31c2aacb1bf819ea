package pinshare

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
)

// The payload is the secret given to Shamir's scheme:
//
//	[len(PIN): 1 byte][PIN][zeros up to the bucket size][saltSize random bytes]
//
// The bucket is the smallest of 32, 64, 128 or 256 bytes that holds the
// length byte and the PIN, so a share reveals only which bucket the PIN's
// length falls in. The random tail keeps the commitments from being a test
// for a guessed PIN (see the package documentation).
const (
	saltSize  = 32
	maxPINLen = 255 // what the length byte can say, and PKCS#11's usual maximum
)

// bucketSizes are the sizes the length byte, PIN and padding are rounded to.
func bucketSizes() []int { return []int{32, 64, 128, 256} }

// bucketFor returns the bucket for a PIN of n bytes, 1 <= n <= maxPINLen.
func bucketFor(n int) int {
	for _, b := range bucketSizes() {
		if 1+n <= b {
			return b
		}
	}
	return 0
}

// validPartLen reports whether n is the length of a part Split makes: a
// payload and its x-coordinate byte.
func validPartLen(n int) bool {
	for _, b := range bucketSizes() {
		if n == b+saltSize+1 {
			return true
		}
	}
	return false
}

// encodePayload builds the payload for pin with a fresh random tail.
func encodePayload(pin []byte) ([]byte, error) {
	if len(pin) == 0 {
		return nil, errors.New("empty PIN")
	}
	if len(pin) > maxPINLen {
		return nil, fmt.Errorf("PIN is %d bytes; at most %d can be split", len(pin), maxPINLen)
	}
	bucket := bucketFor(len(pin))
	payload := make([]byte, bucket+saltSize)
	payload[0] = byte(len(pin))
	copy(payload[1:], pin)
	if _, err := rand.Read(payload[bucket:]); err != nil {
		return nil, fmt.Errorf("random payload tail: %w", err)
	}
	return payload, nil
}

// decodePayload returns a copy of the PIN in payload, after checking the
// length byte, the bucket and the zero padding. A payload that fails comes
// from shares that are not points of one honest split.
func decodePayload(payload []byte) ([]byte, error) {
	if !validPartLen(len(payload) + 1) {
		return nil, fmt.Errorf("combined secret is %d bytes", len(payload))
	}
	bucket := len(payload) - saltSize
	n := int(payload[0])
	if n == 0 || bucketFor(n) != bucket {
		return nil, errors.New("combined secret has a wrong length byte")
	}
	// Constant time over the padding, so timing says nothing about where
	// the PIN ends beyond what the length byte already said.
	var nonzero byte
	for _, c := range payload[1+n : bucket] {
		nonzero |= c
	}
	if subtle.ConstantTimeByteEq(nonzero, 0) != 1 {
		return nil, errors.New("combined secret has non-zero padding")
	}
	pin := make([]byte, n)
	copy(pin, payload[1:1+n])
	return pin, nil
}
