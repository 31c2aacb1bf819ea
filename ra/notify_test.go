package ra

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
