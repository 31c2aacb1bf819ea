package pinshare

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/vault/shamir"

	"github.com/sanadpki/sanad/hsm"
)

// Split splits pin into one share per custodian, any threshold of which give
// it back (Combine). N = len(custodians); 2 <= threshold <= N <= 255, or
// threshold = N = 1 for a one-of-one share that only wraps the PIN (see the
// package documentation). Custodian names must be non-empty, free of
// control characters and leading or trailing blanks, and distinct ignoring
// case; tokenLabel follows the rules of PKCS#11 token labels (1..32 bytes).
// The PIN must be at most 255 bytes.
//
// Before returning, Split combines the whole set it made and checks that it
// gives the PIN back.
func Split(pin hsm.PIN, tokenLabel string, custodians []string, threshold int) ([]Share, error) {
	if err := checkSplit(tokenLabel, custodians, threshold); err != nil {
		return nil, fmt.Errorf("pinshare: split: %w", err)
	}
	secret := pin.Bytes()
	defer clear(secret)
	payload, err := encodePayload(secret)
	if err != nil {
		return nil, fmt.Errorf("pinshare: split: %w", err)
	}
	defer clear(payload)

	n := len(custodians)
	parts, err := makeParts(payload, n, threshold)
	if err != nil {
		return nil, fmt.Errorf("pinshare: split: %w", err)
	}
	defer func() {
		for _, p := range parts {
			clear(p)
		}
	}()
	var id [setIDBytes]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("pinshare: split: random set ID: %w", err)
	}

	shares := make([]Share, n)
	commitments := make([]string, n)
	for i, name := range custodians {
		shares[i] = Share{
			Version:    version,
			SetID:      hex.EncodeToString(id[:]),
			TokenLabel: tokenLabel,
			Custodian:  name,
			Index:      i + 1,
			Threshold:  threshold,
			Total:      n,
			Value:      base64.StdEncoding.EncodeToString(parts[i]),
		}
		commitments[i] = shares[i].commitment(parts[i])
	}
	for i := range shares {
		// A copy each, so that changing one share's list in memory
		// cannot change another's.
		shares[i].Commitments = slices.Clone(commitments)
		shares[i].Checksum = shares[i].checksum()
	}

	got, err := combine(shares)
	if err != nil {
		return nil, fmt.Errorf("pinshare: split self-check: %w", err)
	}
	defer clear(got)
	if subtle.ConstantTimeCompare(got, payload) != 1 {
		return nil, errors.New("pinshare: split self-check: the shares do not combine to the PIN")
	}
	return shares, nil
}

// checkSplit reports every problem with Split's parameters at once.
func checkSplit(tokenLabel string, custodians []string, threshold int) error {
	var errs []error
	if err := checkTokenLabel(tokenLabel); err != nil {
		errs = append(errs, err)
	}
	if err := checkThreshold(threshold, len(custodians)); err != nil {
		errs = append(errs, err)
	}
	for i, name := range custodians {
		if err := checkCustodian(name); err != nil {
			errs = append(errs, fmt.Errorf("custodian %d: %w", i+1, err))
			continue
		}
		for j := range i {
			if strings.EqualFold(name, custodians[j]) {
				errs = append(errs, fmt.Errorf("custodians %d and %d are both %q: each share needs its own person", j+1, i+1, name))
			}
		}
	}
	return errors.Join(errs...)
}

// makeParts splits payload into n parts, each the payload's length plus the
// x-coordinate byte. For one of one the part is the payload itself at x = 1:
// the constant polynomial.
func makeParts(payload []byte, n, threshold int) ([][]byte, error) {
	if threshold == 1 {
		return [][]byte{append(slices.Clone(payload), 1)}, nil
	}
	parts, err := shamir.Split(payload, n, threshold)
	if err != nil {
		return nil, fmt.Errorf("shamir split: %w", err)
	}
	return parts, nil
}
