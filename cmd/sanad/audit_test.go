package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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

// TestTamperedLogNotReady: a running node whose audit log loses a
// checkpoint it signed (a database administrator covering an edit) stops
// being ready, naming the audit log, at its checkpointer's next interval.
func TestTamperedLogNotReady(t *testing.T) {
	requireSoftHSM(t)
	dir := filepath.Join(t.TempDir(), "var")
	startDev(t, dir).stop(t)
	cfgPath := filepath.Join(dir, "sanad.yaml")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	fast := strings.Replace(string(raw), "checkpoint_interval: 1m", "checkpoint_interval: 1s", 1)
	if fast == string(raw) {
		t.Fatal("the dev configuration's checkpoint interval moved; the test no longer shortens it")
	}
	if err := os.WriteFile(cfgPath, []byte(fast), 0o600); err != nil {
		t.Fatal(err)
	}
	dev := startDev(t, dir)
	defer func() { dev.stop(t) }()
	if code, body := httpGet(t, dev.url+"/readyz"); code != 200 || !strings.Contains(body, `"audit_log":"ok"`) {
		t.Fatalf("readyz = %d %s", code, body)
	}
	db, err := sql.Open("sqlite3", filepath.Join(dir, "sanad.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// An application, audited; then a checkpoint of this run covers it.
	c := newRAClient(t, dev, dir, sanadEnv())
	application, _ := json.Marshal(newApplicant(t, "citizen-auth", person("KZ", "880312448217", "Aigerim", "Sadykova", "1988-03-12")).body)
	if code, out := c.do(http.MethodPost, "/api/v1/enrollments", "application/json", application, nil); code != http.StatusCreated {
		t.Fatalf("enroll: %d %v", code, out)
	}
	covered := func() bool {
		var head, cp int64
		if err := db.QueryRow("SELECT (SELECT seq FROM audit_head), (SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints)").Scan(&head, &cp); err != nil {
			t.Fatal(err)
		}
		return cp == head
	}
	for deadline := time.Now().Add(30 * time.Second); !covered() && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := db.Exec("DELETE FROM audit_checkpoints"); err != nil {
		t.Fatal(err)
	}
	code, body := httpGet(t, dev.url+"/readyz")
	for deadline := time.Now().Add(30 * time.Second); code == 200 && time.Now().Before(deadline); code, body = httpGet(t, dev.url+"/readyz") {
		time.Sleep(200 * time.Millisecond)
	}
	if code != 503 || !strings.Contains(body, `"audit_log":"failing"`) || strings.Contains(body, "no longer in the database") {
		t.Errorf("readyz after the checkpoints were deleted = %d %s, want 503 naming the audit log, and no more", code, body)
	}
	if !strings.Contains(dev.output.String(), "no longer in the database") {
		t.Errorf("the log does not say why the audit log check fails:\n%s", dev.output.String())
	}

	// Restarted, it still refuses: the token keeps the last checkpoint
	// signed, which the database no longer holds.
	dev.stop(t)
	dev = startDev(t, dir)
	readyz := func(want int) (int, string) {
		t.Helper()
		code, body := httpGet(t, dev.url+"/readyz")
		for deadline := time.Now().Add(30 * time.Second); code != want && time.Now().Before(deadline); code, body = httpGet(t, dev.url+"/readyz") {
			time.Sleep(200 * time.Millisecond)
		}
		return code, body
	}
	if code, body := readyz(503); code != 503 || !strings.Contains(body, `"audit_log":"failing"`) {
		t.Errorf("readyz after a restart = %d %s, want 503 naming the audit log", code, body)
	}
	// An operator says the database was restored: recorded, and the node
	// signs again.
	if code, out := runSanadEnv(t, sanadEnv(), "audit", "restored", "--config", cfgPath); code != 0 || !strings.Contains(out, "recorded: the checkpoint at seq") {
		t.Fatalf("sanad audit restored: exit %d: %s", code, out)
	}
	if code, body := readyz(200); code != 200 {
		t.Errorf("readyz after sanad audit restored = %d %s", code, body)
	}
	var restored int
	if err := db.QueryRow("SELECT count(*) FROM audit_events WHERE action = 'audit.restored'").Scan(&restored); err != nil || restored != 1 {
		t.Errorf("%d audit.restored events, %v", restored, err)
	}
	if code, out := runSanadEnv(t, sanadEnv(), "audit", "restored", "--config", cfgPath); code == 0 || !strings.Contains(out, "was not restored") {
		t.Errorf("sanad audit restored again: exit %d: %s", code, out)
	}
}

// TestWrongPINAudited: a CA node started with a PIN the token refuses
// stops, and the refusal is in the audit log (a login failure is a state
// change auditors follow; an HSM locks its PIN after a few).
func TestWrongPINAudited(t *testing.T) {
	requireSoftHSM(t)
	dir := filepath.Join(t.TempDir(), "var")
	env := sanadEnv()
	startDevEnv(t, dir, env).stop(t)
	cfg := filepath.Join(dir, "sanad.yaml")
	pinFile := filepath.Join(dir, "hsm-pin")
	pin, err := os.ReadFile(pinFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pinFile, []byte("not-the-pin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := runSanadEnv(t, append(slices.Clone(env), "SANAD_HTTP_ADDR=127.0.0.1:0"), "serve", "--config", cfg, "--roles", "ca")
	if code == 0 || !strings.Contains(out, "PIN incorrect") || strings.Contains(out, string(bytes.TrimSpace(pin))) {
		t.Errorf("serve with a wrong PIN: exit %d\n%s", code, out)
	}
	if err := os.WriteFile(pinFile, pin, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := runSanadEnv(t, env, "audit", "list", "--config", cfg, "--action", "hsm.login.refused", "--json"); code != 0 || !strings.Contains(out, `"object":"token/sanad-dev"`) {
		t.Errorf("the refusal's audit event: exit %d\n%s", code, out)
	}
}
