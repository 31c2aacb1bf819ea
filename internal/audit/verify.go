package audit

import (
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"

	"github.com/sanadpki/sanad/internal/store"
)

// Problem is one place where the log is not what it committed to.
type Problem struct {
	Seq    int64  `json:"seq"`
	Reason string `json:"reason"`
}

// Report is the outcome of Verify.
type Report struct {
	// Events is the number of rows read.
	Events int64 `json:"events"`
	// HeadSeq is what the head row claims.
	HeadSeq int64 `json:"head_seq"`
	// Checkpoints is the number of checkpoints read.
	Checkpoints int `json:"checkpoints"`
	// AttestedSeq is the highest sequence number covered by a checkpoint
	// whose signature verified.
	AttestedSeq int64 `json:"attested_seq"`
	// Unattested counts the events after AttestedSeq.
	Unattested int64 `json:"unattested"`
	// FirstBad is the first sequence number that cannot be trusted; 0 when
	// the log verified.
	FirstBad int64 `json:"first_bad,omitempty"`
	// Problems lists what was found, by sequence number.
	Problems []Problem `json:"problems,omitempty"`
}

// OK reports whether the log verified.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Verify walks the whole log and its checkpoints. Checkpoint signatures are
// checked against keys, the trusted audit public keys (from the HSM or the
// auditor's own copy — never from the database being checked), and the note
// origin must be the configured one. An error means the log could not be
// read; tampering is reported in the Report.
//
// held are checkpoints kept outside the database (SignedNote, as `sanad
// audit checkpoint` prints them): the log must still hold what each
// covers. The database's own checkpoints cannot show a rewrite by someone
// who also deleted them, or cut the log short before them; a held one
// can.
func Verify(ctx context.Context, db *store.DB, origin string, keys []crypto.PublicKey, held ...store.AuditCheckpoint) (Report, error) {
	var r Report
	trusted := make(map[string]crypto.PublicKey, len(keys))
	for _, k := range keys {
		id, err := KeyID(k)
		if err != nil {
			return r, err
		}
		trusted[string(id)] = k
	}
	// One snapshot for the checkpoints, the head and the events: read one
	// after the other, an event committed meanwhile would look like a row
	// appended outside the log.
	err := db.InAuditSnapshot(ctx, func(s *store.AuditSnapshot) error {
		return r.walk(ctx, s, origin, trusted, held)
	})
	return r, err
}

// walk is Verify over one snapshot of the log.
func (r *Report) walk(ctx context.Context, s *store.AuditSnapshot, origin string, trusted map[string]crypto.PublicKey, held []store.AuditCheckpoint) error {
	checkpoints, err := s.Checkpoints(ctx)
	if err != nil {
		return fmt.Errorf("read checkpoints: %w", err)
	}
	r.Checkpoints = len(checkpoints)
	head, err := s.Head(ctx)
	if err != nil {
		return fmt.Errorf("read head: %w", err)
	}
	r.HeadSeq = head.Seq

	wanted := make(map[int64]bool, len(checkpoints)+len(held))
	for _, cp := range slices.Concat(checkpoints, held) {
		wanted[cp.Seq] = true
	}
	hashAt := make(map[int64][]byte, len(checkpoints))

	// The chain: only the first break is reported, since everything after it
	// is suspect anyway; the walk goes on to collect checkpointed hashes.
	var (
		expected = int64(1)
		prev     = zeroHash
		broken   bool
	)
	report := func(seq int64, format string, args ...any) {
		r.Problems = append(r.Problems, Problem{Seq: seq, Reason: fmt.Sprintf(format, args...)})
	}
	err = s.ScanEvents(ctx, 0, func(ev store.AuditEvent) error {
		r.Events++
		if !broken {
			if seq, why := brokenLink(ev, expected, prev); why != "" {
				report(seq, "%s", why)
				broken = true
			}
		}
		if wanted[ev.Seq] {
			hashAt[ev.Seq] = ev.Hash
		}
		prev = ev.Hash
		expected = ev.Seq + 1
		return nil
	})
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	last := expected - 1
	var chainBad int64
	if broken {
		chainBad = r.Problems[0].Seq
	}

	switch {
	case head.Seq > last:
		report(last+1, "head says the log ends at seq %d but the last row is seq %d: rows were deleted from the end", head.Seq, last)
	case head.Seq < last:
		report(head.Seq+1, "head says the log ends at seq %d but rows go on to seq %d: rows were appended outside the log", head.Seq, last)
	case last > 0 && !bytes.Equal(head.Hash, prev):
		report(last, "head hash %s does not match seq %d", short(head.Hash), last)
	}

	// Checkpoints fix what they cover: a rewrite that recomputed every hash
	// after it still cannot match a signed checkpoint. The first bad event
	// then lies after the previous good checkpoint.
	// signed reports a checkpoint that no trusted key signed.
	signed := func(what string, cp store.AuditCheckpoint) bool {
		pub, ok := trusted[string(cp.KeyID)]
		if !ok {
			report(cp.Seq, "%s at seq %d is signed by key %s, which is not a trusted audit key", what, cp.Seq, short(cp.KeyID))
			return false
		}
		if err := verifyNote(pub, origin, cp); err != nil {
			report(cp.Seq, "%s at seq %d: signature invalid: %v", what, cp.Seq, err)
			return false
		}
		return true
	}
	var attested int64
	for _, cp := range checkpoints {
		if !signed("checkpoint", cp) {
			continue
		}
		got, present := hashAt[cp.Seq]
		switch {
		case !present:
			report(min(cp.Seq, last+1), "signed checkpoint covers seq %d but the log ends at seq %d: rows were deleted", cp.Seq, last)
		case !bytes.Equal(got, cp.Hash):
			// A chain break inside the range already locates the change;
			// otherwise the whole range since the last good checkpoint is
			// suspect (a rewrite that recomputed every hash).
			first := attested + 1
			if chainBad > attested && chainBad <= cp.Seq {
				first = chainBad
			}
			report(first, "seq %d no longer matches its signed checkpoint: events %d..%d were rewritten", cp.Seq, first, cp.Seq)
		default:
			attested = cp.Seq
		}
	}
	// A held checkpoint is checked as the database's are, but attests
	// nothing beyond them: it is the auditor's, and it only tells whether
	// the log still holds what it covers.
	for _, cp := range held {
		if !signed("held checkpoint", cp) {
			continue
		}
		got, present := hashAt[cp.Seq]
		switch {
		case !present:
			report(min(cp.Seq, last+1), "held checkpoint covers seq %d but the log ends at seq %d: rows were deleted", cp.Seq, last)
		case !bytes.Equal(got, cp.Hash):
			report(cp.Seq, "seq %d no longer matches the checkpoint held outside the database: events up to it were rewritten", cp.Seq)
		}
	}
	r.AttestedSeq = attested
	r.Unattested = max(last-attested, 0)

	sort.SliceStable(r.Problems, func(i, j int) bool { return r.Problems[i].Seq < r.Problems[j].Seq })
	if len(r.Problems) > 0 {
		r.FirstBad = r.Problems[0].Seq
	}
	return nil
}

// brokenLink is where and why ev does not follow, as the chain requires,
// the event before it: expected is the seq it must have, prev the hash it
// must commit to (nil: not known, not checked). why is "" when it does.
func brokenLink(ev store.AuditEvent, expected int64, prev []byte) (seq int64, why string) {
	switch {
	case ev.Seq != expected:
		return expected, fmt.Sprintf("expected seq %d, found %d: a row was deleted, inserted or renumbered", expected, ev.Seq)
	case !bytes.Equal(Hash(ev), ev.Hash):
		return ev.Seq, "content does not match its hash: the row was edited, inserted or moved"
	case prev != nil && !bytes.Equal(ev.PrevHash, prev):
		// The row itself is intact, but its predecessor is not the one it
		// committed to: the predecessor was rewritten (or this row's
		// prev_hash was, with its hash recomputed).
		return max(ev.Seq-1, 1), fmt.Sprintf("seq %d committed to a different predecessor: seq %d was rewritten", ev.Seq, ev.Seq-1)
	}
	return 0, ""
}

func short(b []byte) string {
	s := hex.EncodeToString(b)
	if len(s) > 16 {
		s = s[:16] + "…"
	}
	return s
}
