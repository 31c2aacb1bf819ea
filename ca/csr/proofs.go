package csr

import (
	"crypto/sha256"
	"sync"
)

// Proofs remembers the requests whose signature verified, by the SHA-256
// of their DER, so that the same bytes checked again in the same process
// are not verified again: the RA checks a request when it is enrolled and
// the CA checks it when it issues, and where both roles run in one process
// the second verification would recompute the first's answer from the
// same bytes. Whether a signature verifies depends on those bytes alone.
// Everything else ParseAndCheck decides (structure, key, policy, the
// forbidden keys) it decides again every time, and a request that failed
// is never remembered.
//
// A Proofs holds at most twice its size: when the current generation is
// full it becomes the previous one, and the one before is forgotten. A
// request checked again after that is verified again. The zero Proofs and
// a nil one remember nothing. It is safe for concurrent use.
type Proofs struct {
	mu   sync.Mutex
	size int
	// cur takes new entries; prev is the generation before it.
	cur, prev map[[sha256.Size]byte]struct{}
}

// NewProofs returns a Proofs that remembers at least the last size
// requests that verified.
func NewProofs(size int) *Proofs {
	return &Proofs{size: size, cur: make(map[[sha256.Size]byte]struct{}, size)}
}

// seen reports whether a request with this digest verified before.
func (p *Proofs) seen(sum [sha256.Size]byte) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.cur[sum]
	if !ok {
		_, ok = p.prev[sum]
	}
	return ok
}

// add remembers that a request with this digest verified.
func (p *Proofs) add(sum [sha256.Size]byte) {
	if p == nil || p.size <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cur) >= p.size {
		p.prev, p.cur = p.cur, make(map[[sha256.Size]byte]struct{}, p.size)
	}
	p.cur[sum] = struct{}{}
}
