package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
)

// TestAuditObject: a certificate serial or officer fingerprint is found
// however it is typed; an enrollment id keeps its case.
func TestAuditObject(t *testing.T) {
	for in, want := range map[string]string{
		"issuing/0A1B":                   "issuing/0a1b",
		"issuing/serial=0A1B":            "issuing/0a1b",
		"issuing/0xa1b":                  "issuing/0a1b",
		"issuing/0a1b":                   "issuing/0a1b",
		"officer/ABCDEF":                 "officer/abcdef",
		"enrollment/AbC-d_E":             "enrollment/AbC-d_E",
		"enrollment/ABCDEF":              "enrollment/ABCDEF",
		"sanad-dev/sanad-bench-0a1b2c3d": "sanad-dev/sanad-bench-0a1b2c3d",
		"root":                           "root",
	} {
		if got := auditObject(in); got != want {
			t.Errorf("auditObject(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAuditLine: an event as written lists with its hash intact; one edited
// since is marked, even when its details are no longer JSON or carry
// terminal control characters.
func TestAuditLine(t *testing.T) {
	ev := store.AuditEvent{Seq: 7, Time: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), Actor: "officer:ab", Action: "certificate.revoke",
		Object: "issuing/0a", Details: []byte(`{"reason":"keyCompromise"}`), PrevHash: make([]byte, 32)}
	ev.Hash = audit.Hash(ev)
	if l := auditLineOf(ev); !l.HashOK || string(l.Details) != `{"reason":"keyCompromise"}` || strings.Contains(l.text(), "MISMATCH") {
		t.Errorf("an event as written: %+v, %q", l, l.text())
	}
	edited := ev
	edited.Details, edited.Actor = []byte(`{"reason": `), "officer:\x1b[2Jab"
	l := auditLineOf(edited)
	out, err := json.Marshal(l)
	if err != nil || l.HashOK || l.Details != nil || l.DetailsRaw != `{"reason": ` {
		t.Errorf("an edited event: %+v, %s, %v", l, out, err)
	}
	if text := l.text(); !strings.Contains(text, "HASH MISMATCH") || strings.Contains(text, "\x1b") || !strings.Contains(text, `"officer:\x1b[2Jab"`) {
		t.Errorf("an edited event as text: %q", text)
	}
}
