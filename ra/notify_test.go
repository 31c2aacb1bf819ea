package ra

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOutbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	m := Message{EnrollmentID: "abc", To: "+77017431862", Channel: "sms", Code: "123456"}
	if err := (Outbox{Dir: dir}).Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "abc.json")
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("outbox file: %v, mode %v", err, info.Mode())
	}
	raw, _ := os.ReadFile(path)
	var got map[string]string
	if err := json.Unmarshal(raw, &got); err != nil || got["to"] != m.To || got["channel"] != "sms" || got["code"] != "123456" {
		t.Fatalf("outbox file holds %s (%v)", raw, err)
	}
}

func TestWebhook(t *testing.T) {
	var got Message
	status := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &got) != nil {
			t.Errorf("gateway got %s %q %s", r.Method, r.Header.Get("Content-Type"), body)
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	m := Message{EnrollmentID: "abc", To: "a@example.kz", Channel: "email", Code: "654321"}
	if err := (Webhook{URL: srv.URL}).Send(t.Context(), m); err != nil || got != m {
		t.Fatalf("send: %v, gateway got %+v", err, got)
	}
	status = http.StatusBadGateway
	if err := (Webhook{URL: srv.URL}).Send(t.Context(), m); err == nil {
		t.Fatal("a 502 from the gateway was taken as sent")
	}
}

// TestWebhookIdempotencyKey: a message sent again carries the key it
// carried the first time; any other message, another. The key is keyed
// with the RA's secret: without it, it does not give the code away (a
// plain hash of a code's message would, to a search of a million codes);
// with no secret, no key is sent.
func TestWebhookIdempotencyKey(t *testing.T) {
	var keys []string
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		keys, bodies = append(keys, r.Header.Get("Idempotency-Key")), append(bodies, body)
	}))
	defer srv.Close()
	secret := []byte("0123456789abcdef0123456789abcdef")
	notice := Message{EnrollmentID: "abc", To: "a@example.kz", Channel: "email", Notice: "revoked", Event: EventRevoked, Serial: "0A", Reason: "keyCompromise"}
	other := notice
	other.Reason = "superseded"
	code := Message{EnrollmentID: "abc", To: "a@example.kz", Channel: "email", Code: "654321"}
	code2 := code
	code2.Code = "654322"
	for _, m := range []Message{notice, notice, other, code, code2, code} {
		if err := (Webhook{URL: srv.URL, IdempotencySecret: secret}).Send(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	if len(keys) != 6 || len(keys[0]) != 32 || keys[1] != keys[0] || keys[5] != keys[3] {
		t.Fatalf("keys %q: want the same key for a message sent again", keys)
	}
	seen := map[string]bool{}
	for _, k := range []string{keys[0], keys[2], keys[3], keys[4]} {
		if seen[k] {
			t.Fatalf("keys %q: two messages share one", keys)
		}
		seen[k] = true
	}
	plain := sha256.Sum256(bodies[3])
	if keys[3] == hex.EncodeToString(plain[:16]) || keys[3] == idempotencyKey([]byte("another secret"), bodies[3]) {
		t.Errorf("the code message's key %s is not keyed with the RA's secret", keys[3])
	}
	if err := (Webhook{URL: srv.URL}).Send(t.Context(), code); err != nil {
		t.Fatal(err)
	}
	if keys[6] != "" {
		t.Errorf("without a secret, a key was sent: %q", keys[6])
	}
}

// TestWebhookRefusesWhatWouldLeak: the gateway's token goes in a header
// from its file; a redirect is not followed (it would carry the code to a
// host nobody configured); an error names the gateway's host, never the
// URL's path and query, nor the token.
func TestWebhookRefusesWhatWouldLeak(t *testing.T) {
	var elsewhere int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere++ }))
	defer other.Close()
	var auth string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
		}
	}))
	defer gw.Close()
	tokenFile := filepath.Join(t.TempDir(), "gateway-token")
	if err := os.WriteFile(tokenFile, []byte("gw-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := Message{EnrollmentID: "abc", To: "+77017431862", Channel: "sms", Code: "123456"}
	if err := (Webhook{URL: gw.URL + "/send", TokenFile: tokenFile}).Send(t.Context(), m); err != nil || auth != "Bearer gw-token-1" {
		t.Fatalf("send with a token file: %v, Authorization %q", err, auth)
	}
	err := (Webhook{URL: gw.URL + "/moved", TokenFile: tokenFile}).Send(t.Context(), m)
	if err == nil || !strings.Contains(err.Error(), "307") || elsewhere != 0 {
		t.Errorf("a redirect: %v, the other host got %d requests; want refused, none", err, elsewhere)
	}
	// A gateway that does not answer: the error names its host only.
	dead := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	host := dead.Listener.Addr().String()
	dead.Close()
	err = (Webhook{URL: "http://" + host + "/v1/send?api_key=url-secret", TokenFile: tokenFile}).Send(t.Context(), m)
	if err == nil || !strings.Contains(err.Error(), "notification gateway "+host) || strings.Contains(err.Error(), "url-secret") ||
		strings.Contains(err.Error(), "/v1/send") || strings.Contains(err.Error(), "gw-token-1") {
		t.Errorf("an unreachable gateway: %v; want its host, no path, query or token", err)
	}
	if err := (Webhook{URL: gw.URL, TokenFile: filepath.Join(t.TempDir(), "none")}).Send(t.Context(), m); err == nil {
		t.Error("a missing token file was not an error")
	}
}

// TestOutboxRefusesALooseDirectory: codes are proofs of identity, so the
// outbox is the owner's alone; nor does a message write outside it.
func TestOutboxRefusesALooseDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	m := Message{EnrollmentID: "abc", To: "+77017431862", Channel: "sms", Code: "123456"}
	if err := (Outbox{Dir: dir}).Send(t.Context(), m); err == nil || !strings.Contains(err.Error(), "has mode 0777") {
		t.Errorf("a 0777 outbox: %v", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	m.EnrollmentID = "../escape"
	if err := (Outbox{Dir: dir}).Send(t.Context(), m); err == nil {
		t.Error("a message named ../escape was written")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape.json")); err == nil {
		t.Error("escape.json was written outside the outbox")
	}
}
