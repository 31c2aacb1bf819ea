package main

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestWaitingCollector: /metrics counts the enrollments waiting for their
// code, for officers and for the CA, with the oldest one's age, on both
// databases; finished enrollments are not counted.
func TestWaitingCollector(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		now := time.Now().UTC()
		add := func(id, state string, age, sinceChange time.Duration) {
			t.Helper()
			at := now.Add(-age)
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				if _, err := tx.PutSubject(ctx, store.Subject{ID: "s_" + id, Kind: "person", NationalID: "IDCKZ-" + id, Attributes: []byte(`{}`), CreatedAt: at}); err != nil {
					return err
				}
				e := store.Enrollment{ID: id, SubjectID: "s_" + id, Profile: "citizen-sign", CSR: []byte{0x30},
					State: state, Proofing: []byte(`{}`), RequestHash: []byte{1}, CreatedAt: at, UpdatedAt: at}
				if err := tx.InsertEnrollment(ctx, e); err != nil {
					return err
				}
				e.UpdatedAt = now.Add(-sinceChange)
				return tx.UpdateEnrollment(ctx, state, e)
			}); err != nil {
				t.Fatal(err)
			}
		}
		add("a", store.StatePendingApproval, 3*time.Hour, time.Hour) // one officer of two approved an hour ago
		add("b", store.StatePendingApproval, time.Hour, time.Hour)
		add("c", store.StatePendingProof, 10*time.Minute, 10*time.Minute)
		add("d", store.StateIssued, 100*time.Hour, 100*time.Hour)
		add("e", store.StateRejected, 100*time.Hour, 100*time.Hour)
		add("f", store.StateApproved, 50*time.Hour, 2*time.Minute) // approved two minutes ago, after two days

		c := newWaitingCollector(db, func() time.Time { return now })
		reg := prometheus.NewPedanticRegistry()
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
		counts, ages := gatherWaiting(t, reg)
		if want := "map[approved:1 pending_approval:2 pending_proof:1]"; fmt.Sprint(counts) != want {
			t.Errorf("waiting: %v, want %s", counts, want)
		}
		// Waiting for officers since it was created; approved since the
		// approval.
		for state, want := range map[string]float64{store.StatePendingApproval: 3 * 3600, store.StatePendingProof: 600, store.StateApproved: 120} {
			if g := ages[state]; g < want || g > want+1 { // the store keeps microseconds
				t.Errorf("oldest %s: %.0f s, want %.0f", state, g, want)
			}
		}
		// None waiting: 0, not the age of nothing.
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			f, err := tx.EnrollmentForUpdate(ctx, "f")
			if err != nil {
				return err
			}
			f.State, f.UpdatedAt = store.StateIssued, now
			return tx.UpdateEnrollment(ctx, store.StateApproved, f)
		}); err != nil {
			t.Fatal(err)
		}
		if counts, ages := gatherWaiting(t, reg); counts[store.StateApproved] != 0 || ages[store.StateApproved] != 0 {
			t.Errorf("none approved: %v waiting, %v s", counts[store.StateApproved], ages[store.StateApproved])
		}

		// The store gone: -1, not a stale or zero count.
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if counts, _ := gatherWaiting(t, reg); fmt.Sprint(counts) != "map[approved:-1 pending_approval:-1 pending_proof:-1]" {
			t.Errorf("waiting with the store closed: %v, want -1 each", counts)
		}
	})
}

// gatherWaiting is what reg's waitingCollector says: the count and the
// oldest's age in seconds, by state.
func gatherWaiting(t *testing.T, reg *prometheus.Registry) (counts, ages map[string]float64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts, ages = map[string]float64{}, map[string]float64{}
	for _, mf := range families {
		into := map[string]map[string]float64{"sanad_ra_enrollments_waiting": counts, "sanad_ra_enrollments_waiting_oldest_seconds": ages}[mf.GetName()]
		for _, m := range mf.GetMetric() {
			if into != nil {
				into[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	return counts, ages
}

// metricValue is the value of the unlabelled metric name in a /metrics
// page; the test fails if the page lacks it.
func metricValue(t *testing.T, page, name string) float64 {
	t.Helper()
	for line := range strings.Lines(page) {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return v
		}
	}
	t.Fatalf("/metrics lacks %s", name)
	return 0
}
