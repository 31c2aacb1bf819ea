package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sanadpki/sanad/internal/store"
)

// Checkpointer signs the head of the log with the HSM audit key.
type Checkpointer struct {
	db     *store.DB
	signer crypto.Signer
	keyID  []byte
	origin string
	now    func() time.Time

	// memory keeps the last checkpoint signed outside the database, for
	// a restart and for the other nodes signing with the key (Remember);
	// nil: in this process only.
	memory Memory

	mu sync.Mutex
	// signed is the last checkpoint signed, by this Checkpointer or, as
	// memory recalls, another with the key, which the database must still
	// hold (see Checkpoint).
	signed store.AuditCheckpoint
	// refused is the ErrNotExtended of the last Checkpoint, nil once one
	// finds the log extending its checkpoints again (see Extends).
	refused error
}

// NewCheckpointer returns a Checkpointer that signs with signer (the HSM audit
// key) and names the log origin in every note.
func NewCheckpointer(db *store.DB, signer crypto.Signer, origin string, now func() time.Time) (*Checkpointer, error) {
	if origin == "" || strings.Contains(origin, "\n") {
		return nil, errors.New("checkpoint origin must be one non-empty line")
	}
	id, err := KeyID(signer.Public())
	if err != nil {
		return nil, err
	}
	return &Checkpointer{db: db, signer: signer, keyID: id, origin: origin, now: now}, nil
}

// Memory keeps values where those who can write the database cannot
// change them: an HSM's private data objects (hsm.Token.ReadData and
// WriteData, with a label), which only someone logged in to the token
// reads or writes.
type Memory interface {
	// Recall returns what Keep kept: none, one value, or (a Keep stopped
	// half way) two.
	Recall(ctx context.Context) ([][]byte, error)
	Keep(ctx context.Context, value []byte) error
}

// Remember has the Checkpointer keep each checkpoint it signs in m (as a
// SignedNote), and recall, before each Checkpoint, the last one any
// Checkpointer with the key kept there. The database must then hold it
// whatever happened since: a restart, or another node carrying on, does not
// forget what the HSM signed, and never signs a history rewritten under it.
func (c *Checkpointer) Remember(m Memory) { c.memory = m }

// recall returns the newest checkpoint the memory kept that the key
// signed, or the zero checkpoint.
func (c *Checkpointer) recall(ctx context.Context) (store.AuditCheckpoint, error) {
	var newest store.AuditCheckpoint
	if c.memory == nil {
		return newest, nil
	}
	values, err := c.memory.Recall(ctx)
	if err != nil {
		return newest, fmt.Errorf("recall the last checkpoint signed: %w", err)
	}
	for _, v := range values {
		if len(v) == 0 { // Restored to a log without checkpoints
			continue
		}
		origin, cp, err := ParseSignedNote(v)
		if err == nil && (origin != c.origin || !bytes.Equal(cp.KeyID, c.keyID)) {
			err = errors.New("another log's, or another key's")
		}
		if err == nil {
			err = verifyNote(c.signer.Public(), origin, cp)
		}
		if err != nil {
			return store.AuditCheckpoint{}, fmt.Errorf("the last checkpoint signed, as kept: %w", err)
		}
		if cp.Seq > newest.Seq {
			newest = cp
		}
	}
	return newest, nil
}

// ErrNotRestored is Restored's refusal when the database holds the last
// checkpoint signed: nothing was lost.
var ErrNotRestored = errors.New("the audit log holds the last checkpoint signed: it was not restored from before it")

// Restored records, once the database was restored from a backup older
// than the last checkpoint signed (which the memory kept and the database
// no longer holds), that the history after the restored log's latest
// checkpoint this key signed (its signature checked) was lost: an audit event by actor names the checkpoint lost
// (its signed note, which an auditor checks against any copy of the log
// kept elsewhere) and the one the log resumes from. Then the memory keeps
// that one, and Checkpoint signs again. It needs the memory, so the HSM:
// someone who can only write the database cannot call a rewrite a
// restore.
func (c *Checkpointer) Restored(ctx context.Context, log *Log, actor string) (lost, resumed store.AuditCheckpoint, err error) {
	if c.memory == nil {
		return lost, resumed, errors.New("restored: the checkpointer keeps no memory of what it signed")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if lost, err = c.recall(ctx); err != nil {
		return lost, resumed, fmt.Errorf("restored: %w", err)
	}
	// The log resumes from the latest checkpoint this key signed, as its
	// signature says, not from the latest row: one forged at the end of a
	// rewritten history would otherwise be what the memory keeps, and the
	// next checkpoint would be signed over the rewrite.
	held := false
	err = c.db.InAuditSnapshot(ctx, func(s *store.AuditSnapshot) error {
		checkpoints, err := s.Checkpoints(ctx)
		if err != nil {
			return err
		}
		held = lost.Seq > 0 && c.holds(checkpoints, lost)
		for i := len(checkpoints) - 1; i >= 0; i-- {
			cp := checkpoints[i]
			if bytes.Equal(cp.KeyID, c.keyID) && verifyNote(c.signer.Public(), c.origin, cp) == nil {
				resumed = cp
				break
			}
		}
		return nil
	})
	if err != nil {
		return lost, resumed, fmt.Errorf("restored: read checkpoints: %w", err)
	}
	if lost.Seq == 0 || held {
		return lost, resumed, ErrNotRestored
	}
	details := map[string]any{"lost_checkpoint_seq": lost.Seq, "lost_checkpoint": string(SignedNote(c.origin, lost)), "resumes_from_seq": resumed.Seq}
	if err := c.db.InTx(ctx, func(tx *store.Tx) error {
		return log.Append(tx, Event{Actor: actor, Action: "audit.restored", Object: "audit-checkpoint/" + strconv.FormatInt(lost.Seq, 10), Details: details})
	}); err != nil {
		return lost, resumed, fmt.Errorf("restored: %w", err)
	}
	var keep []byte
	if resumed.Seq > 0 {
		keep = SignedNote(c.origin, resumed)
	}
	if err := c.memory.Keep(ctx, keep); err != nil {
		return lost, resumed, fmt.Errorf("restored: recorded, but the memory did not keep the checkpoint resumed from (run it again): %w", err)
	}
	c.signed, c.refused = resumed, nil
	return lost, resumed, nil
}

// holds reports whether checkpoints include signed: the same event and
// hash, signed by this key (the same bytes, or another encoding of an
// ECDSA signature, as (r, n−s) is: a database writer who re-encodes the
// signature has changed nothing signed, and must not stop the
// checkpoints; one who replaces it with anything else has).
func (c *Checkpointer) holds(checkpoints []store.AuditCheckpoint, signed store.AuditCheckpoint) bool {
	return slices.ContainsFunc(checkpoints, func(cp store.AuditCheckpoint) bool {
		return cp.Seq == signed.Seq && bytes.Equal(cp.Hash, signed.Hash) &&
			(bytes.Equal(cp.Signature, signed.Signature) || verifyNote(c.signer.Public(), c.origin, cp) == nil)
	})
}

// KeyID is the SHA-256 of the key's DER SubjectPublicKeyInfo.
func KeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	sum := sha256.Sum256(spki)
	return sum[:], nil
}

// Checkpoint signs the current head unless the latest checkpoint already
// covers it. It returns the checkpoint and whether a new one was written.
//
// It signs only a log that extends what was signed before: the events
// after the last checkpoint signed (this Checkpointer's, or the memory's:
// Remember; without one, the database's latest if its signature is this
// key's) must chain from the event it covers, that event must still have
// the hash it signed, and that checkpoint must still be in the database.
// A checkpoint row's word is never taken for it: anyone who can write the
// database can write one. A
// log rewritten or cut short by someone with access to the database is
// refused with ErrNotExtended, and nothing is signed: the HSM never
// attests to it. (Events after the latest checkpoint can still be
// rewritten with their chain recomputed before they are signed: only a
// checkpoint fixes them. One held outside the database, see Verify, shows a
// rewrite of the checkpoints too.)
func (c *Checkpointer) Checkpoint(ctx context.Context) (store.AuditCheckpoint, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.memory != nil {
		// What the memory keeps, even older than this Checkpointer's own
		// last (another node's, or one Restored kept): the memory is
		// the record of what was signed.
		kept, err := c.recall(ctx)
		if err != nil {
			return store.AuditCheckpoint{}, false, fmt.Errorf("checkpoint: %w", err)
		}
		c.signed = kept
	}
	var (
		head store.AuditHead
		last store.AuditCheckpoint
	)
	err := c.db.InAuditSnapshot(ctx, func(s *store.AuditSnapshot) error {
		checkpoints, err := s.Checkpoints(ctx)
		if err != nil {
			return fmt.Errorf("read checkpoints: %w", err)
		}
		if head, err = s.Head(ctx); err != nil {
			return fmt.Errorf("read head: %w", err)
		}
		if n := len(checkpoints); n > 0 {
			last = checkpoints[n-1]
		}
		if c.signed.Seq > 0 && !c.holds(checkpoints, c.signed) {
			return fmt.Errorf("%w: the checkpoint signed at seq %d is no longer in the database (if the database was restored from a backup, see sanad audit restored)", ErrNotExtended, c.signed.Seq)
		}
		if last.Seq > head.Seq {
			return fmt.Errorf("%w: the head (seq %d) is behind the latest checkpoint (seq %d): the log was cut short", ErrNotExtended, head.Seq, last.Seq)
		}
		// The log must run on from what this key signed, not from what
		// the database says was signed: a checkpoint row anyone may write
		// (with any hash and a signature no one checks) would otherwise
		// be the point a rewritten history is chained on from. From the
		// checkpoint signed last (the memory's, or this Checkpointer's);
		// without one, from the database's latest if this key signed it
		// (one of this key's that does not verify is a forgery), else
		// from the first event (an earlier audit key's, which this one
		// cannot check). Also when that covers the head: the event it
		// covers must still be there, with its hash, and be the last.
		base := c.signed
		if base.Seq == 0 && last.Seq > 0 && bytes.Equal(last.KeyID, c.keyID) {
			if err := verifyNote(c.signer.Public(), c.origin, last); err != nil {
				return fmt.Errorf("%w: the latest checkpoint (seq %d) names this audit key but its signature does not verify: %v", ErrNotExtended, last.Seq, err)
			}
			base = last
		}
		return extends(ctx, s, base, head)
	})
	switch {
	case errors.Is(err, ErrNotExtended):
		c.refused = fmt.Errorf("checkpoint: %w", err)
		return store.AuditCheckpoint{}, false, c.refused
	case err != nil: // the database's or the HSM's trouble, not the log's
		return store.AuditCheckpoint{}, false, fmt.Errorf("checkpoint: %w", err)
	}
	c.refused = nil
	switch {
	case head.Seq == 0:
		return store.AuditCheckpoint{}, false, nil
	case last.Seq >= head.Seq:
		return last, false, nil
	}
	cp := store.AuditCheckpoint{
		Seq:   head.Seq,
		Hash:  head.Hash,
		Time:  c.now().UTC().Truncate(time.Microsecond),
		KeyID: c.keyID,
	}
	digest := sha256.Sum256(Note(c.origin, cp))
	sig, err := c.signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return store.AuditCheckpoint{}, false, fmt.Errorf("checkpoint seq %d: sign: %w", cp.Seq, err)
	}
	cp.Signature = sig
	if err := c.db.InTx(ctx, func(tx *store.Tx) error { return tx.PutAuditCheckpoint(ctx, cp) }); err != nil {
		return store.AuditCheckpoint{}, false, fmt.Errorf("checkpoint seq %d: store: %w", cp.Seq, err)
	}
	c.signed = cp
	// Kept once stored: a checkpoint the memory holds and the database
	// never did would refuse every later one. Not over a newer one another
	// node kept meanwhile.
	if c.memory != nil {
		kept, err := c.recall(ctx)
		if err == nil && kept.Seq < cp.Seq {
			err = c.memory.Keep(ctx, SignedNote(c.origin, cp))
		}
		if err != nil {
			return cp, true, fmt.Errorf("checkpoint seq %d signed and stored, but not kept: %w", cp.Seq, err)
		}
	}
	return cp, true, nil
}

// Extends is an api.Check for /readyz: the ErrNotExtended with which the
// last Checkpoint refused the log, or nil. A node whose audit log was cut
// short or rewritten under its checkpoints stops being ready (it would
// chain new events, issuances among them, onto a forged history) until a
// Checkpoint finds the log extending them again: an operator restored it.
// It does not read the log; Run's interval paces the reading.
func (c *Checkpointer) Extends(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused
}

// ErrNotExtended is Checkpoint's refusal of a log that does not extend
// what was signed before.
var ErrNotExtended = errors.New("the audit log does not extend its signed checkpoints")

// extends checks that the events after checkpoint last (none: the whole
// log) chain, each to the one before and the first to the event last
// covers, whose hash is still the one last signed, up to head.
func extends(ctx context.Context, s *store.AuditSnapshot, last store.AuditCheckpoint, head store.AuditHead) error {
	expected, prev := int64(1), zeroHash
	if last.Seq > 0 {
		expected, prev = last.Seq, last.Hash
	}
	err := s.ScanEvents(ctx, max(last.Seq-1, 0), func(ev store.AuditEvent) error {
		// The event last covers is read for its hash, not its link: its
		// predecessor is not read.
		link := prev
		if ev.Seq == last.Seq {
			link = nil
		}
		switch seq, why := brokenLink(ev, expected, link); {
		case why != "":
			return fmt.Errorf("%w: seq %d: %s", ErrNotExtended, seq, why)
		case ev.Seq == last.Seq && !bytes.Equal(ev.Hash, last.Hash):
			return fmt.Errorf("%w: seq %d no longer has the hash its checkpoint signed", ErrNotExtended, ev.Seq)
		}
		prev, expected = ev.Hash, ev.Seq+1
		return nil
	})
	switch {
	case err != nil:
		return err
	case expected-1 != head.Seq || !bytes.Equal(prev, head.Hash):
		return fmt.Errorf("%w: the head (seq %d) is not the last event (seq %d)", ErrNotExtended, head.Seq, expected-1)
	}
	return nil
}

// Run signs a checkpoint at once, then every interval while the log grows,
// and a last one when ctx ends, so a clean shutdown leaves nothing
// unattested.
func (c *Checkpointer) Run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	try := func(ctx context.Context) {
		cp, wrote, err := c.Checkpoint(ctx)
		switch {
		case err != nil:
			log.Error("audit checkpoint failed", "err", err)
		case wrote:
			log.Debug("audit checkpoint signed", "seq", cp.Seq)
		}
	}
	try(ctx)
	for {
		select {
		case <-tick.C:
			try(ctx)
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			try(final)
			cancel()
			return
		}
	}
}

// Note is the signed text of a checkpoint (see the package doc).
func Note(origin string, cp store.AuditCheckpoint) []byte {
	return []byte(origin + "\n" +
		strconv.FormatInt(cp.Seq, 10) + "\n" +
		base64.StdEncoding.EncodeToString(cp.Hash) + "\n" +
		cp.Time.UTC().Format(timeLayout) + "\n")
}

// signaturePrefix starts a SignedNote's signature line.
const signaturePrefix = "\u2014 sanad-audit "

// SignedNote is a checkpoint as it is kept outside the database (by an
// auditor, a witness, a file on another host): its Note, a blank line, and
// one signature line,
//
//	— sanad-audit <base64 key id> <base64 signature>
//
// Verify takes it back (ParseSignedNote) to check that the log still holds
// what it covers.
func SignedNote(origin string, cp store.AuditCheckpoint) []byte {
	return []byte(string(Note(origin, cp)) + "\n" + signaturePrefix +
		base64.StdEncoding.EncodeToString(cp.KeyID) + " " + base64.StdEncoding.EncodeToString(cp.Signature) + "\n")
}

// ParseSignedNote reads a SignedNote. It checks the form, not the
// signature: Verify checks that with the trusted keys.
func ParseSignedNote(b []byte) (origin string, cp store.AuditCheckpoint, err error) {
	bad := func(format string, args ...any) (string, store.AuditCheckpoint, error) {
		return "", store.AuditCheckpoint{}, fmt.Errorf("signed checkpoint note: "+format, args...)
	}
	text, sigLine, ok := strings.Cut(string(b), "\n\n")
	if !ok {
		return bad("no blank line before the signature")
	}
	lines := strings.Split(text, "\n")
	if len(lines) != 4 {
		return bad("%d lines before the signature, want 4 (origin, seq, hash, time)", len(lines))
	}
	origin = lines[0]
	if cp.Seq, err = strconv.ParseInt(lines[1], 10, 64); err != nil || cp.Seq < 1 || strconv.FormatInt(cp.Seq, 10) != lines[1] {
		return bad("seq %q is not a positive decimal number", lines[1])
	}
	if cp.Hash, err = canonicalBase64(lines[2]); err != nil || len(cp.Hash) != sha256.Size {
		return bad("hash %q is not 32 bytes of base64", lines[2])
	}
	if cp.Time, err = time.Parse(timeLayout, lines[3]); err != nil || cp.Time.UTC().Format(timeLayout) != lines[3] {
		return bad("time %q is not RFC 3339 UTC with six fractional digits", lines[3])
	}
	rest, ok := strings.CutPrefix(sigLine, signaturePrefix)
	rest, end := strings.CutSuffix(rest, "\n")
	fields := strings.Split(rest, " ")
	if !ok || !end || len(fields) != 2 {
		return bad("the signature line is not %q followed by a key id and a signature", strings.TrimSpace(signaturePrefix))
	}
	if cp.KeyID, err = canonicalBase64(fields[0]); err != nil || len(cp.KeyID) != sha256.Size {
		return bad("key id is not 32 bytes of base64")
	}
	if cp.Signature, err = canonicalBase64(fields[1]); err != nil || len(cp.Signature) == 0 {
		return bad("signature is not base64")
	}
	cp.Time = cp.Time.UTC()
	return origin, cp, nil
}

// canonicalBase64 decodes s, standard base64 as SignedNote writes it and
// nothing else: Go's decoder skips CR and LF even when strict, so a note
// with a line broken inside a value would otherwise read as the note that
// SignedNote writes differently.
func canonicalBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err == nil && base64.StdEncoding.EncodeToString(b) != s {
		err = errors.New("not canonical base64")
	}
	return b, err
}

// verifyNote checks a checkpoint's signature with pub.
func verifyNote(pub crypto.PublicKey, origin string, cp store.AuditCheckpoint) error {
	digest := sha256.Sum256(Note(origin, cp))
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest[:], cp.Signature) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], cp.Signature)
	default:
		return fmt.Errorf("unsupported audit key type %T", pub)
	}
}
