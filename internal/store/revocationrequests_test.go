package store_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestRevocationRequests: a CA officer's request to revoke a CA
// certificate is kept per nonce, read back from a time on, oldest first,
// and refused for a certificate not recorded or a nonce used twice.
func TestRevocationRequests(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		signer := putRow(t, db, row{issuer: "issuing", serial: 0x51, signed: true})
		other := putRow(t, db, row{issuer: "issuing", serial: 0x52, signed: true})
		fp1, fp2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
		for i, fp := range [][]byte{fp1, fp2} {
			o := store.Officer{Fingerprint: fp, CertificateDER: []byte{0x30, byte(i)}, Name: "officer", Roles: []string{"ca-officer"}, Active: true, CreatedAt: refreshT0}
			if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.PutOfficer(ctx, o) }); err != nil {
				t.Fatal(err)
			}
		}
		request := func(c store.Certificate, fp []byte, nonce string, reason int, at time.Time) error {
			return db.InTx(ctx, func(tx *store.Tx) error {
				return tx.InsertRevocationRequest(ctx, store.RevocationRequest{IssuerID: c.IssuerID, Serial: c.Serial,
					OfficerFingerprint: fp, Nonce: nonce, Reason: reason, JWS: "h.p." + nonce, RequestedAt: at})
			})
		}
		read := func(c store.Certificate, since time.Time) []store.RevocationRequest {
			t.Helper()
			var out []store.RevocationRequest
			if err := db.InTx(ctx, func(tx *store.Tx) (err error) {
				out, err = tx.RevocationRequests(ctx, c.IssuerID, c.Serial, since)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return out
		}
		t0 := refreshT0
		for _, r := range []struct {
			c      store.Certificate
			fp     []byte
			nonce  string
			reason int
			at     time.Time
		}{
			{signer, fp2, "n1", 1, t0.Add(2 * time.Hour)},
			{signer, fp1, "n1", 1, t0},
			{signer, fp1, "n2", 4, t0.Add(time.Hour)},
			{other, fp1, "n3", 1, t0.Add(time.Hour)},
		} {
			if err := request(r.c, r.fp, r.nonce, r.reason, r.at); err != nil {
				t.Fatalf("request %s: %v", r.nonce, err)
			}
		}
		if err := request(signer, fp1, "n1", 1, t0.Add(3*time.Hour)); !errors.Is(err, store.ErrConflict) {
			t.Errorf("one officer's nonce twice: %v; want ErrConflict", err)
		}
		missing := store.Certificate{IssuerID: "issuing", Serial: []byte{0x7f}}
		if err := request(missing, fp1, "n9", 1, t0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a certificate not recorded: %v; want ErrNotFound", err)
		}

		got := read(signer, t0)
		if len(got) != 3 {
			t.Fatalf("requests for the signer = %+v; want 3", got)
		}
		want := []struct {
			fp     []byte
			nonce  string
			reason int
			at     time.Time
		}{{fp1, "n1", 1, t0}, {fp1, "n2", 4, t0.Add(time.Hour)}, {fp2, "n1", 1, t0.Add(2 * time.Hour)}}
		for i, w := range want {
			g := got[i]
			if !bytes.Equal(g.OfficerFingerprint, w.fp) || g.Nonce != w.nonce || g.Reason != w.reason || !g.RequestedAt.Equal(w.at) ||
				g.JWS != "h.p."+w.nonce || g.IssuerID != "issuing" || !bytes.Equal(g.Serial, signer.Serial) {
				t.Errorf("request %d = %+v; want %x %s reason %d at %s", i, g, w.fp[:1], w.nonce, w.reason, w.at)
			}
		}
		if got := read(signer, t0.Add(time.Hour)); len(got) != 2 || got[0].Nonce != "n2" {
			t.Errorf("requests since t0+1h = %+v; want n2 and the second officer's n1", got)
		}
		if got := read(other, t0); len(got) != 1 || got[0].Nonce != "n3" {
			t.Errorf("requests for the other certificate = %+v; want n3 alone", got)
		}

		// Pending: the requests since a time whose certificate a second
		// officer may still revoke: good, or revoked for another reason
		// than the keyCompromise asked.
		pending := func(since time.Time) []string {
			t.Helper()
			got, err := db.PendingRevocationRequests(ctx, since, 10)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range got {
				out = append(out, fmt.Sprintf("%x/%s/%d", r.Serial, r.Nonce, r.Reason))
			}
			return out
		}
		if got, want := pending(t0), []string{"51/n1/1", "51/n2/4", "52/n3/1", "51/n1/1"}; !slices.Equal(got, want) {
			t.Errorf("pending since t0 = %v; want %v", got, want)
		}
		if got, want := pending(t0.Add(90*time.Minute)), []string{"51/n1/1"}; !slices.Equal(got, want) {
			t.Errorf("pending since t0+90m = %v; want %v", got, want)
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			return tx.RevokeCertificate(ctx, "issuing", signer.Serial, t0, 4, t0)
		}); err != nil {
			t.Fatal(err)
		}
		if got, want := pending(t0), []string{"51/n1/1", "52/n3/1", "51/n1/1"}; !slices.Equal(got, want) {
			t.Errorf("pending once the signer was revoked as superseded = %v; want its keyCompromise requests and the other's", got)
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			return tx.RevokeCertificate(ctx, "issuing", other.Serial, t0, 1, t0)
		}); err != nil {
			t.Fatal(err)
		}
		if got, want := pending(t0), []string{"51/n1/1", "51/n1/1"}; !slices.Equal(got, want) {
			t.Errorf("pending once the other was revoked for keyCompromise = %v; want %v", got, want)
		}
	})
}
