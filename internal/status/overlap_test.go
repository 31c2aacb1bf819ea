package status_test

import (
	"context"
	"crypto"
	"database/sql"
	"io"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/status"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/internal/testenv"
)

// slowSigner is an OCSP signer key behind a slow HSM (a wait for a
// session, a slow answer).
type slowSigner struct {
	crypto.Signer
	delay time.Duration
}

func (s slowSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	time.Sleep(s.delay)
	return s.Signer.Sign(r, d, o)
}

// TestRevocationLongerThanOverlap: a revocation whose OCSP signature takes
// longer than the responders' Overlap, while other responses are stored
// meanwhile, still reaches a responder that had the certificate good: its
// answer is stamped as it is written, not when its signature began, so the
// responder's next syncs read it.
func TestRevocationLongerThanOverlap(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	const overlap = 300 * time.Millisecond
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		d := deploy(t, f, db)
		d.serve(t, status.Config{SyncInterval: 20 * time.Millisecond, Overlap: overlap})
		d.run(t)
		victim := d.issue(t)
		testenv.WaitFor(t, "the responder to answer good", func() bool { return d.statusOf(t, victim) == ocsp.Good })

		// Another CA node whose OCSP signature takes three overlaps.
		slow := f
		slow.Responder.Signer = slowSigner{f.Responder.Signer, 3 * overlap}
		other, err := ca.New(slow.Deps(db, audit.New(time.Now)))
		if err != nil {
			t.Fatal(err)
		}
		revoked := make(chan error, 1)
		go func() { revoked <- other.Revoke(context.Background(), victim.SerialNumber.Bytes(), 1, "officer:test") }()
		// Meanwhile the first node goes on issuing: each certificate's
		// response moves the responder's cursor on.
		for done := false; !done; {
			select {
			case err := <-revoked:
				if err != nil {
					t.Fatal(err)
				}
				done = true
			default:
				d.issue(t)
				time.Sleep(overlap / 6)
			}
		}
		testenv.WaitFor(t, "the responder to answer revoked", func() bool { return d.statusOf(t, victim) == ocsp.Revoked })
	})
}
