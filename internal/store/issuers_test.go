package store_test

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestOCSPResignBefore: the time before which an issuer's OCSP answers
// are signed again starts unset, only ever moves later, and is per issuer;
// an issuer not recorded is ErrNotFound.
func TestOCSPResignBefore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		putIssuer(t, db, testIssuer("issuing", "issuing"))
		putIssuer(t, db, testIssuer("other", "issuing"))
		get := func(id string) time.Time {
			t.Helper()
			got, err := db.OCSPResignBefore(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		raise := func(id string, at time.Time) (bool, error) {
			var changed bool
			err := db.InTx(ctx, func(tx *store.Tx) (err error) {
				changed, err = tx.RaiseOCSPResignBefore(ctx, id, at)
				return err
			})
			return changed, err
		}
		if got := get("issuing"); !got.IsZero() {
			t.Errorf("before any: %s; want zero", got)
		}
		t0 := refreshT0
		for _, step := range []struct {
			at      time.Time
			changed bool
			want    time.Time
		}{
			{t0, true, t0},
			{t0.Add(-time.Minute), false, t0},
			{t0, false, t0},
			{t0.Add(time.Second), true, t0.Add(time.Second)},
		} {
			changed, err := raise("issuing", step.at)
			if err != nil || changed != step.changed {
				t.Errorf("raise to %s: %v, %v; want changed %v", step.at, changed, err, step.changed)
			}
			if got := get("issuing"); !got.Equal(step.want) {
				t.Errorf("after raising to %s: %s; want %s", step.at, got, step.want)
			}
		}
		if got := get("other"); !got.IsZero() {
			t.Errorf("the other issuer: %s; want zero", got)
		}
		if _, err := raise("nope", t0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("raise for an issuer not recorded: %v; want ErrNotFound", err)
		}
		if _, err := db.OCSPResignBefore(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("read for an issuer not recorded: %v; want ErrNotFound", err)
		}
	})
}
