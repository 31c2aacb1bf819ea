package pinshare

import (
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/vault/shamir"

	"github.com/sanadpki/sanad/hsm"
)

// Combine gives back the PIN from at least threshold shares of one split.
// It checks, in this order, and names the share at fault:
//
//  1. each share on its own, as ParseShare does (ErrCorruptShare, or
//     ErrForgedShare for a part that does not match its own commitment);
//  2. that all come from one split: same set ID, token label, threshold and
//     number of shares (ErrMixedShares);
//  3. that no index and no custodian appears twice (ErrDuplicateShare);
//  4. that there are at least threshold of them (ErrTooFewShares);
//  5. that each share's part matches the commitment the other shares list
//     for it, and that all list the same commitments (ErrForgedShare);
//  6. that all given shares lie on one polynomial and combine to a
//     well-formed payload (ErrForgedShare).
//
// More than threshold shares are fine: all of them are used and must agree.
// The order of shares does not matter, and shares is not modified.
func Combine(shares []Share) (hsm.PIN, error) {
	payload, err := combine(shares)
	if err != nil {
		return hsm.PIN{}, err
	}
	defer clear(payload)
	pin, err := decodePayload(payload)
	if err != nil {
		return hsm.PIN{}, fmt.Errorf("%w: %s combine to a malformed secret (%w): they are not shares of one honest split (was the threshold altered?)",
			ErrForgedShare, describe(sortedEntries(shares)), err)
	}
	defer clear(pin)
	p, err := hsm.NewPIN(pin)
	if err != nil {
		return hsm.PIN{}, fmt.Errorf("pinshare: combine: %w", err)
	}
	return p, nil
}

// entry is a share and its decoded part.
type entry struct {
	share Share
	part  []byte
}

// sortedEntries returns the shares in index order, without parts.
func sortedEntries(shares []Share) []entry {
	es := make([]entry, len(shares))
	for i, s := range shares {
		es[i].share = s
	}
	slices.SortStableFunc(es, func(a, b entry) int { return a.share.Index - b.share.Index })
	return es
}

// combine runs Combine's checks and returns the payload.
func combine(shares []Share) ([]byte, error) {
	if len(shares) == 0 {
		return nil, fmt.Errorf("%w: no shares given", ErrTooFewShares)
	}
	es := sortedEntries(shares)
	defer func() {
		for _, e := range es {
			clear(e.part)
		}
	}()
	for i := range es {
		part, err := es[i].share.check()
		if err != nil {
			return nil, err
		}
		es[i].part = part
	}
	if err := checkSameSplit(shares); err != nil {
		return nil, err
	}
	if err := checkDistinct(es); err != nil {
		return nil, err
	}
	first := es[0].share
	if len(es) < first.Threshold {
		return nil, fmt.Errorf("%w: %d of %d shares given: need %d more (%d-of-%d split for token %q; given: %s)",
			ErrTooFewShares, len(es), first.Threshold, first.Threshold-len(es), first.Threshold, first.Total, first.TokenLabel, describe(es))
	}
	if err := checkCommitments(es); err != nil {
		return nil, err
	}
	return interpolate(es)
}

// checkSameSplit compares every share with the first one given.
func checkSameSplit(shares []Share) error {
	a := shares[0]
	for _, b := range shares[1:] {
		switch {
		case a.SetID != b.SetID:
			return fmt.Errorf("%w: %s is from split %s, %s from split %s", ErrMixedShares, a.who(), a.SetID, b.who(), b.SetID)
		case a.TokenLabel != b.TokenLabel:
			return fmt.Errorf("%w: %s is for token %q, %s for token %q", ErrMixedShares, a.who(), a.TokenLabel, b.who(), b.TokenLabel)
		case a.Threshold != b.Threshold || a.Total != b.Total:
			return fmt.Errorf("%w: %s says %d-of-%d, %s says %d-of-%d",
				ErrMixedShares, a.who(), a.Threshold, a.Total, b.who(), b.Threshold, b.Total)
		}
	}
	return nil
}

// checkDistinct refuses an index or a custodian (ignoring case) given twice.
func checkDistinct(es []entry) error {
	for i, a := range es {
		for _, b := range es[i+1:] {
			switch {
			case a.share.Index == b.share.Index && a.share.Custodian == b.share.Custodian:
				return fmt.Errorf("%w: %s given twice", ErrDuplicateShare, a.share.who())
			case a.share.Index == b.share.Index:
				return fmt.Errorf("%w: index %d given twice: by custodian %q and by custodian %q",
					ErrDuplicateShare, a.share.Index, a.share.Custodian, b.share.Custodian)
			case strings.EqualFold(a.share.Custodian, b.share.Custodian):
				return fmt.Errorf("%w: custodian %q given twice: shares %d and %d",
					ErrDuplicateShare, a.share.Custodian, a.share.Index, b.share.Index)
			}
		}
	}
	return nil
}

// checkCommitments checks each share's part against the commitment listed
// for it by every other share, then that all list the same commitments. A
// share that a majority of the others reject is named as forged; if the
// vote is tied (two shares, say), both are named.
func checkCommitments(es []entry) error {
	if len(es) == 1 {
		// One of one: its own commitment was checked by check; there
		// is no other share to ask.
		return nil
	}
	var suspects, disputes []string
	for i, a := range es {
		c := a.share.commitment(a.part)
		var rejectedBy []string
		for j, b := range es {
			if i != j && b.share.Commitments[a.share.Index-1] != c {
				rejectedBy = append(rejectedBy, b.share.who())
			}
		}
		switch others := len(es) - 1; {
		case len(rejectedBy) == 0:
		case 2*len(rejectedBy) > others:
			suspects = append(suspects, fmt.Sprintf("%s does not match the commitment held by %d of the other %d shares",
				a.share.who(), len(rejectedBy), others))
		default:
			disputes = append(disputes, fmt.Sprintf("%s does not match the commitment held by %s",
				a.share.who(), strings.Join(rejectedBy, ", ")))
		}
	}
	if len(suspects) > 0 {
		return fmt.Errorf("%w: %s", ErrForgedShare, strings.Join(suspects, "; "))
	}
	if len(disputes) > 0 {
		return fmt.Errorf("%w: %s; at least one of these shares was altered", ErrForgedShare, strings.Join(disputes, "; "))
	}
	a := es[0].share
	for _, e := range es[1:] {
		b := e.share
		if k := slices.Compare(a.Commitments, b.Commitments); k != 0 {
			d := 0
			for a.Commitments[d] == b.Commitments[d] {
				d++
			}
			return fmt.Errorf("%w: %s and %s list different commitments for share %d: one of them was altered",
				ErrForgedShare, a.who(), b.who(), d+1)
		}
	}
	// Only a dishonest split can give matching commitments to parts that
	// Shamir's scheme cannot combine.
	seen := make(map[byte]Share, len(es))
	for _, e := range es {
		if len(e.part) != len(es[0].part) {
			return fmt.Errorf("%w: %s and %s have values of different lengths", ErrForgedShare, es[0].share.who(), e.share.who())
		}
		x := e.part[len(e.part)-1]
		if prev, ok := seen[x]; ok {
			return fmt.Errorf("%w: %s and %s have the same x-coordinate", ErrForgedShare, prev.who(), e.share.who())
		}
		seen[x] = e.share
	}
	return nil
}

// interpolate combines the parts. With more than threshold shares it also
// combines the first and the last threshold of them: shares that are points
// of one polynomial of degree threshold-1 give the same secret every way.
func interpolate(es []entry) ([]byte, error) {
	m := es[0].share.Threshold
	if m == 1 {
		p := es[0].part
		return slices.Clone(p[:len(p)-1]), nil
	}
	parts := make([][]byte, len(es))
	for i, e := range es {
		parts[i] = e.part
	}
	all, err := shamir.Combine(parts)
	if err != nil {
		return nil, fmt.Errorf("pinshare: shamir combine: %w", err)
	}
	if len(parts) == m {
		return all, nil
	}
	for _, subset := range [][][]byte{parts[:m], parts[len(parts)-m:]} {
		got, err := shamir.Combine(subset)
		if err != nil {
			clear(all)
			return nil, fmt.Errorf("pinshare: shamir combine: %w", err)
		}
		same := subtle.ConstantTimeCompare(got, all) == 1
		clear(got)
		if !same {
			clear(all)
			return nil, fmt.Errorf("%w: %s are not points of one polynomial of degree %d: they are not shares of one honest split",
				ErrForgedShare, describe(es), m-1)
		}
	}
	return all, nil
}

// describe names the shares of es for a message.
func describe(es []entry) string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.share.who()
	}
	return strings.Join(names, ", ")
}
