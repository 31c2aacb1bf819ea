package ra

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// fuzzNow is the moment the fuzz targets check events at.
var fuzzNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// refusedAsClientError fails t unless err is an *Error of a known problem
// type with a 4xx status.
func refusedAsClientError(t *testing.T, err error) {
	t.Helper()
	e, ok := ProblemOf(err)
	if !ok {
		t.Fatalf("refusal is not an *Error: %v", err)
	}
	if _, known := problems[e.Type]; !known || e.Status < 400 || e.Status > 499 {
		t.Fatalf("refusal %q with status %d", e.Type, e.Status)
	}
}

// FuzzRegistryEvent: any request body is refused as the client's error,
// or accepted as what the trusted key signed: its signature verifies with
// that key, and its payload reads as the same event.
func FuzzRegistryEvent(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	trusted, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	signed, err := SignRegistryEvent(RegistryEvent{EventID: "kz-1", Kind: "death", Country: "KZ", NationalID: "880312448217", OccurredAt: fuzzNow}, key, fuzzNow)
	if err != nil {
		f.Fatal(err)
	}
	good, err := SignRegistryEvent(RegistryEvent{EventID: "pk-9", Kind: "dissolution", Country: "PK", RegistrationNumber: "32778761", OccurredAt: fuzzNow}, trusted, fuzzNow)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{good, signed, signed + ".", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", `{"payload":"e30","signatures":[]}`, "", "...", strings.Repeat("A", 100)} {
		f.Add(seed)
	}
	keys := []RegistryKey{{Name: "registry:test", Key: trusted.Public()}}
	f.Fuzz(func(t *testing.T, compact string) {
		ev, source, err := ParseRegistryEvent(compact, keys, fuzzNow)
		if err != nil {
			refusedAsClientError(t, err)
			return
		}
		obj, err := jose.ParseSignedCompact(strings.TrimSpace(compact), eventAlgorithms)
		if err != nil {
			t.Fatalf("accepted %q, which go-jose does not parse: %v", compact, err)
		}
		payload, err := obj.Verify(trusted.Public())
		if err != nil || source != "registry:test" {
			t.Fatalf("accepted %q, which the trusted key did not sign: %v", compact, err)
		}
		again, err := decodeRegistryEvent(payload, fuzzNow)
		if err != nil || !again.same(ev) {
			t.Fatalf("accepted %q as %+v; its payload reads %+v, %v", compact, ev, again, err)
		}
	})
}

// FuzzRegistryEventPayload: any payload signed by a trusted key is refused
// as the client's error, or accepted as an event that names its subject
// (or is refused for its identifier) and reads the same after a JSON round
// trip.
func FuzzRegistryEventPayload(f *testing.F) {
	for _, seed := range []string{
		`{"event_id":"kz-1","kind":"death","country":"KZ","national_id":"880312448217","occurred_at":"2026-11-30T09:00:00Z"}`,
		`{"event_id":"pk-7","kind":"authority_change","country":"PK","registration_number":"32778761","representative":{"country":"PK","national_id":"6110148392762"},"occurred_at":"2026-11-30T09:00:00Z"}`,
		`{"event_id":"pk-9","kind":"dissolution","country":"PK","registration_number":"32778761","occurred_at":"2026-11-30T09:00:00+05:00"}`,
		`{"event_id":"x","kind":"death","country":"KZ","national_id":"880312448217","occurred_at":"2027-01-01T00:00:00Z"}`,
		`{"event_id":"x","kind":"death"} {}`, `[]`, `null`, `{"event_id":"x","extra":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev, err := decodeRegistryEvent(payload, fuzzNow)
		if err != nil {
			refusedAsClientError(t, err)
			return
		}
		if _, _, err := ev.subjectKeys(); err != nil {
			refusedAsClientError(t, err)
		}
		again, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		ev2, err := decodeRegistryEvent(again, fuzzNow)
		if err != nil {
			t.Fatalf("accepted %q, but not its own re-encoding %q: %v", payload, again, err)
		}
		if !ev.same(ev2) {
			t.Fatalf("%+v, then %+v", ev, ev2)
		}
	})
}
