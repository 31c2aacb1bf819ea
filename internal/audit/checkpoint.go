package audit

import (
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
	"strconv"
	"strings"
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
func (c *Checkpointer) Checkpoint(ctx context.Context) (store.AuditCheckpoint, bool, error) {
	head, err := c.db.AuditHead(ctx)
	if err != nil {
		return store.AuditCheckpoint{}, false, fmt.Errorf("checkpoint: read head: %w", err)
	}
	last, err := c.db.LatestAuditCheckpoint(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return store.AuditCheckpoint{}, false, fmt.Errorf("checkpoint: read latest: %w", err)
	case last.Seq >= head.Seq:
		return last, false, nil
	}
	if head.Seq == 0 {
		return store.AuditCheckpoint{}, false, nil
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
	return cp, true, nil
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
