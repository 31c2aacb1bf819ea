package registry_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sanadpki/sanad/internal/testenv"
	"github.com/sanadpki/sanad/ra/registry"
)

const (
	ayeshaID   = "6110148392762"
	ayeshaJSON = `{"country": "PK", "national_id": "6110148392762", "given_name": "Ayesha", "family_name": "Khan",
		"birth_date": "1987-06-14", "alive": true, "phone": "+923005417826", "version": "v41"}`
	indusJSON = `{"country": "PK", "registration_number": "32778761", "name": "Indus Textiles (Private) Limited",
		"active": true, "version": "2026-02-01T09:00:00Z", "representatives": [
		{"country": "PK", "national_id": "6110148392762", "role": "director", "can_sign": true},
		{"country": "PK", "national_id": "3520277164593", "role": "director", "can_sign": true}]}`
)

// stub is a registry whose every answer the test scripts; it counts and
// records requests.
type stub struct {
	mu       sync.Mutex
	attempts int
	paths    []string
	auth     []string
	times    []time.Time
	handle   func(w http.ResponseWriter, r *http.Request, attempt int)
	host     string // the server's host:port
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.attempts++
	n := s.attempts
	s.paths = append(s.paths, r.URL.EscapedPath())
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.times = append(s.times, time.Now())
	s.mu.Unlock()
	s.handle(w, r, n)
}

func (s *stub) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

func jsonAnswer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// newStub starts a server and a client with quick retries. An attempt
// has 10 s, so that one that succeeds never times out on a loaded machine
// and adds an attempt to the count; the cases about timeouts set their own.
func newStub(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, attempt int), tweak ...func(*registry.HTTPConfig)) (*stub, *registry.HTTP) {
	t.Helper()
	s := &stub{handle: handle}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.host = strings.TrimPrefix(srv.URL, "http://")
	cfg := registry.HTTPConfig{
		BaseURL:    srv.URL + "/api/",
		Timeout:    10 * time.Second,
		Backoff:    time.Millisecond,
		MaxBackoff: 5 * time.Millisecond,
		Now:        clock,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	h, err := registry.NewHTTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, h
}

func TestHTTPPerson(t *testing.T) {
	s, h := newStub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		jsonAnswer(w, http.StatusOK, ayeshaJSON)
	})
	p, ev, err := h.Person(context.Background(), "PK", ayeshaID)
	if err != nil {
		t.Fatal(err)
	}
	want := registry.Person{Country: "PK", NationalID: ayeshaID, GivenName: "Ayesha", FamilyName: "Khan",
		BirthDate: "1987-06-14", Alive: true, Phone: "+923005417826"}
	if p != want {
		t.Errorf("person = %+v", p)
	}
	sum := sha256.Sum256([]byte(ayeshaJSON))
	if ev.Source != s.host || ev.Record != registry.RecordPerson || ev.Version != "v41" ||
		!bytes.Equal(ev.Hash, sum[:]) || !ev.LookedUpAt.Equal(testNow) {
		t.Errorf("evidence = %+v (host %s)", ev, s.host)
	}
	if s.paths[0] != "/api/v1/persons/PK/"+ayeshaID {
		t.Errorf("path = %q", s.paths[0])
	}
	if s.auth[0] != "" {
		t.Errorf("Authorization sent without a token: %q", s.auth[0])
	}
}

func TestHTTPBusiness(t *testing.T) {
	s, h := newStub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		jsonAnswer(w, http.StatusOK, indusJSON)
	})
	b, ev, err := h.Business(context.Background(), "PK", "32778761")
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "Indus Textiles (Private) Limited" || !b.Active || len(b.Representatives) != 2 ||
		!b.Representatives[0].CanSign || !b.Representatives[1].CanSign {
		t.Errorf("business = %+v", b)
	}
	if ev.Record != registry.RecordBusiness || ev.Version != "2026-02-01T09:00:00Z" {
		t.Errorf("evidence = %+v", ev)
	}
	if s.paths[0] != "/api/v1/businesses/PK/32778761" {
		t.Errorf("path = %q", s.paths[0])
	}

	// An answer about another business is refused, naming the number it
	// was about masked, as for a person: it reaches the log.
	_, h = newStub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		jsonAnswer(w, http.StatusOK, indusJSON)
	})
	if _, _, err := h.Business(context.Background(), "PK", "32778762"); err == nil || !strings.Contains(err.Error(), "answered for business PK") || strings.Contains(err.Error(), "32778761") {
		t.Errorf("an answer about another business: %v", err)
	}
}

func TestHTTPAnswers(t *testing.T) {
	big := `{"country": "PK", "national_id": "6110148392762", "padding": "` + strings.Repeat("x", 70<<10) + `"}`
	for _, tc := range []struct {
		name     string
		handle   func(w http.ResponseWriter, r *http.Request, attempt int)
		tweak    func(*registry.HTTPConfig)
		want     []error // err must match each
		notWant  error
		attempts int
		// lateAttempts: the client may give up on the last attempt before
		// the server has seen it, so the count is awaited.
		lateAttempts bool
	}{
		{
			name:     "404 JSON is not found",
			handle:   func(w http.ResponseWriter, _ *http.Request, _ int) { jsonAnswer(w, 404, `{"type": "not-found"}`) },
			want:     []error{registry.ErrNotFound},
			notWant:  registry.ErrUnavailable,
			attempts: 1,
		},
		{
			name: "404 problem+json is not found",
			handle: func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("Content-Type", "application/problem+json; charset=utf-8")
				w.WriteHeader(404)
			},
			want:     []error{registry.ErrNotFound},
			attempts: 1,
		},
		{
			name: "404 HTML is a wrong base URL, not a missing person",
			handle: func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(404)
				_, _ = w.Write([]byte("<h1>Not Found</h1>"))
			},
			want:     []error{registry.ErrUnavailable},
			notWant:  registry.ErrNotFound,
			attempts: 1,
		},
		{
			name: "500 then 200 is retried",
			handle: func(w http.ResponseWriter, _ *http.Request, n int) {
				if n == 1 {
					w.WriteHeader(500)
					return
				}
				jsonAnswer(w, 200, ayeshaJSON)
			},
			attempts: 2,
		},
		{
			name:     "503 every time",
			handle:   func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(503) },
			want:     []error{registry.ErrUnavailable},
			notWant:  registry.ErrNotFound,
			attempts: 3,
		},
		{
			name:     "no retries",
			handle:   func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(502) },
			tweak:    func(c *registry.HTTPConfig) { c.Retries = -1 },
			want:     []error{registry.ErrUnavailable},
			attempts: 1,
		},
		{
			name:     "400 is not retried",
			handle:   func(w http.ResponseWriter, _ *http.Request, _ int) { jsonAnswer(w, 400, `{}`) },
			want:     []error{registry.ErrUnavailable},
			attempts: 1,
		},
		{
			name: "a redirect is not followed",
			handle: func(w http.ResponseWriter, r *http.Request, _ int) {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			},
			want:     []error{registry.ErrUnavailable},
			attempts: 1,
		},
		{
			name: "429 with a long Retry-After ends at once",
			handle: func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(429)
			},
			want:     []error{registry.ErrUnavailable},
			attempts: 1,
		},
		{
			name: "429 with a past Retry-After date retries",
			handle: func(w http.ResponseWriter, _ *http.Request, n int) {
				if n == 1 {
					w.Header().Set("Retry-After", testNow.Add(-time.Hour).Format(http.TimeFormat))
					w.WriteHeader(429)
					return
				}
				jsonAnswer(w, 200, ayeshaJSON)
			},
			attempts: 2,
		},
		{
			name:     "oversized body",
			handle:   func(w http.ResponseWriter, _ *http.Request, _ int) { jsonAnswer(w, 200, big) },
			want:     []error{registry.ErrUnavailable, registry.ErrBadResponse},
			attempts: 1,
		},
		{
			name:     "not JSON",
			handle:   func(w http.ResponseWriter, _ *http.Request, _ int) { jsonAnswer(w, 200, `<html>`) },
			want:     []error{registry.ErrUnavailable, registry.ErrBadResponse},
			attempts: 1,
		},
		{
			name:     "two JSON values",
			handle:   func(w http.ResponseWriter, _ *http.Request, _ int) { jsonAnswer(w, 200, ayeshaJSON+ayeshaJSON) },
			want:     []error{registry.ErrBadResponse},
			attempts: 1,
		},
		{
			name: "required field missing",
			handle: func(w http.ResponseWriter, _ *http.Request, _ int) {
				jsonAnswer(w, 200, strings.Replace(ayeshaJSON, `"alive": true,`, "", 1))
			},
			want:     []error{registry.ErrUnavailable, registry.ErrBadResponse},
			attempts: 1,
		},
		{
			name: "another person's record",
			handle: func(w http.ResponseWriter, _ *http.Request, _ int) {
				jsonAnswer(w, 200, strings.Replace(ayeshaJSON, ayeshaID, "6110148392764", 1))
			},
			want:     []error{registry.ErrBadResponse},
			attempts: 1,
		},
		// What encoding/json would read as alive, where another reader of
		// the same bytes (the evidence's hash covers them) reads dead.
		{
			name: "a member given twice",
			handle: func(w http.ResponseWriter, _ *http.Request, _ int) {
				jsonAnswer(w, 200, strings.Replace(ayeshaJSON, `"alive": true`, `"alive": false, "alive": true`, 1))
			},
			want:     []error{registry.ErrUnavailable, registry.ErrBadResponse},
			attempts: 1,
		},
		{
			name: "a member in another case",
			handle: func(w http.ResponseWriter, _ *http.Request, _ int) {
				jsonAnswer(w, 200, strings.Replace(ayeshaJSON, `"alive": true`, `"alive": false, "ALIVE": true`, 1))
			},
			want:     []error{registry.ErrUnavailable, registry.ErrBadResponse},
			attempts: 1,
		},
		{
			// ſ (U+017F) folds to s: encoding/json reads "verſion" as version.
			name: "a member spelled with a letter that folds to another",
			handle: func(w http.ResponseWriter, _ *http.Request, _ int) {
				jsonAnswer(w, 200, strings.Replace(ayeshaJSON, `"version": "v41"`, `"version": "v41", "ver\u017fion": "v99"`, 1))
			},
			want:     []error{registry.ErrUnavailable, registry.ErrBadResponse},
			attempts: 1,
		},
		{
			name: "a 200 that is not JSON by its type",
			handle: func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte(ayeshaJSON))
			},
			want:     []error{registry.ErrUnavailable, registry.ErrBadResponse},
			attempts: 1,
		},
		{
			name: "invalid UTF-8",
			handle: func(w http.ResponseWriter, _ *http.Request, _ int) {
				jsonAnswer(w, 200, strings.Replace(ayeshaJSON, `"Khan"`, "\"Kh\xffan\"", 1))
			},
			want:     []error{registry.ErrUnavailable, registry.ErrBadResponse},
			attempts: 1,
		},
		{
			name: "unknown fields are ignored",
			handle: func(w http.ResponseWriter, _ *http.Request, _ int) {
				jsonAnswer(w, 200, strings.Replace(ayeshaJSON, `{`, `{"patronymic": null, "address": {"city": "Islamabad"},`, 1))
			},
			attempts: 1,
		},
		{
			name: "every attempt times out",
			handle: func(w http.ResponseWriter, r *http.Request, _ int) {
				<-r.Context().Done()
			},
			// Two seconds, so that each request reaches the server before
			// its attempt gives up, even on a loaded machine.
			tweak:        func(c *registry.HTTPConfig) { c.Timeout = 2 * time.Second },
			want:         []error{registry.ErrUnavailable},
			attempts:     3,
			lateAttempts: true,
		},
		{
			name: "a slow body times out too",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(200)
					_, _ = w.Write([]byte(`{"country": `))
					w.(http.Flusher).Flush()
					<-r.Context().Done()
					return
				}
				jsonAnswer(w, 200, ayeshaJSON)
			},
			// Long enough for the second attempt on a loaded machine: one
			// that timed out too would make a third.
			tweak:    func(c *registry.HTTPConfig) { c.Timeout = 3 * time.Second },
			attempts: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tweaks []func(*registry.HTTPConfig)
			if tc.tweak != nil {
				tweaks = append(tweaks, tc.tweak)
			}
			s, h := newStub(t, tc.handle, tweaks...)
			p, _, err := h.Person(context.Background(), "PK", ayeshaID)
			t.Logf("err: %v", err)
			if len(tc.want) == 0 {
				if err != nil || p.GivenName != "Ayesha" {
					t.Fatalf("person = %+v, err = %v", p, err)
				}
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want %v", err, w)
				}
			}
			if tc.notWant != nil && errors.Is(err, tc.notWant) {
				t.Errorf("err = %v, must not be %v", err, tc.notWant)
			}
			if err != nil && strings.Contains(err.Error(), ayeshaID) {
				t.Errorf("error shows the full identifier: %v", err)
			}
			if tc.lateAttempts {
				testenv.WaitFor(t, fmt.Sprintf("%d attempts at the server", tc.attempts), func() bool { return s.count() >= tc.attempts })
			}
			if got := s.count(); got != tc.attempts {
				t.Errorf("%d attempts, want %d", got, tc.attempts)
			}
		})
	}
}

// TestHTTPRetryAfter checks a Retry-After in seconds is waited for; the
// backoff is a millisecond, so only Retry-After explains a second's gap.
func TestHTTPRetryAfter(t *testing.T) {
	s, h := newStub(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return
		}
		jsonAnswer(w, 200, ayeshaJSON)
	})
	if _, _, err := h.Person(context.Background(), "PK", ayeshaID); err != nil {
		t.Fatal(err)
	}
	if s.count() != 2 {
		t.Fatalf("%d attempts", s.count())
	}
	if gap := s.times[1].Sub(s.times[0]); gap < time.Second {
		t.Errorf("retried after %v, before the Retry-After second", gap)
	}
}

func TestHTTPContext(t *testing.T) {
	block := func(w http.ResponseWriter, r *http.Request, _ int) { <-r.Context().Done() }

	t.Run("cancelled", func(t *testing.T) {
		_, h := newStub(t, block, func(c *registry.HTTPConfig) { c.Timeout = 10 * time.Second })
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, _, err := h.Person(ctx, "PK", ayeshaID)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
		if errors.Is(err, registry.ErrNotFound) {
			t.Errorf("cancelled lookup says not found: %v", err)
		}
	})

	t.Run("cancelled while waiting to retry", func(t *testing.T) {
		// The cancel comes as the client starts to wait out the
		// Retry-After, which only the cancel can cut short (a retry after
		// it would fail with the same error).
		ctx, cancel := context.WithCancel(context.Background())
		s, h := newStub(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(503)
		}, func(c *registry.HTTPConfig) { c.MaxRetryAfter = time.Minute })
		waited := 0
		registry.SetWaiting(h, func() { waited++; cancel() })
		start := time.Now()
		_, _, err := h.Person(ctx, "PK", ayeshaID)
		if !errors.Is(err, context.Canceled) || s.count() != 1 || waited != 1 {
			t.Errorf("err = %v after %d attempts and %d waits", err, s.count(), waited)
		}
		if d := time.Since(start); d >= 30*time.Second {
			t.Errorf("returned after %v: the cancel did not end the wait", d)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		_, h := newStub(t, block, func(c *registry.HTTPConfig) { c.Timeout = 10 * time.Second })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, _, err := h.Business(ctx, "PK", "32778761")
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, registry.ErrUnavailable) {
			t.Errorf("err = %v", err)
		}
		// A registration number is masked as a national identifier is (a
		// sole trader's BIN is their IIN).
		if strings.Contains(err.Error(), "32778761") {
			t.Errorf("err shows the registration number: %v", err)
		}
	})

	t.Run("no time left to wait for a retry", func(t *testing.T) {
		// The deadline is far enough for a slow first attempt, and still
		// short of the Retry-After.
		s, h := newStub(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
			w.Header().Set("Retry-After", "45")
			w.WriteHeader(503)
		}, func(c *registry.HTTPConfig) { c.MaxRetryAfter = time.Minute })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _, err := h.Person(ctx, "PK", ayeshaID)
		if !errors.Is(err, registry.ErrUnavailable) || s.count() != 1 {
			t.Errorf("err = %v after %d attempts", err, s.count())
		}
		if ctx.Err() != nil {
			t.Error("waited for the deadline instead of giving up")
		}
	})
}

func TestHTTPToken(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "registry-token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var refuse atomic.Bool
	s, h := newStub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if refuse.Load() {
			jsonAnswer(w, 401, `{}`)
			return
		}
		jsonAnswer(w, 200, ayeshaJSON)
	}, func(c *registry.HTTPConfig) { c.TokenFile = tokenFile })

	if _, _, err := h.Person(context.Background(), "PK", ayeshaID); err != nil {
		t.Fatal(err)
	}
	// Rotated in place: the next lookup sends the new token.
	if err := os.WriteFile(tokenFile, []byte("s3cret-two"), 0o600); err != nil {
		t.Fatal(err)
	}
	refuse.Store(true)
	_, _, err := h.Person(context.Background(), "PK", ayeshaID)
	if !errors.Is(err, registry.ErrUnavailable) {
		t.Errorf("401: err = %v", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the token: %v", err)
	}
	if s.auth[0] != "Bearer s3cret-one" || s.auth[1] != "Bearer s3cret-two" {
		t.Errorf("Authorization headers = %q", s.auth)
	}

	// A token file others may read is refused, and the token not sent.
	refuse.Store(false)
	if err := os.Chmod(tokenFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Person(context.Background(), "PK", ayeshaID); !errors.Is(err, registry.ErrUnavailable) || !strings.Contains(err.Error(), "has mode 0644") {
		t.Errorf("token file of mode 0644: err = %v", err)
	}
	if len(s.auth) != 2 {
		t.Errorf("the token of a 0644 file was sent: %q", s.auth)
	}

	// A token file that disappears makes the registry unavailable, not empty-handed.
	if err := os.Remove(tokenFile); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Person(context.Background(), "PK", ayeshaID); !errors.Is(err, registry.ErrUnavailable) {
		t.Errorf("missing token file: err = %v", err)
	}
}

func TestHTTPInvalidKeyIsNotSent(t *testing.T) {
	s, h := newStub(t, func(w http.ResponseWriter, _ *http.Request, _ int) { jsonAnswer(w, 200, ayeshaJSON) })
	for _, id := range []string{"../../admin", "61101-4839276-2", "6110148392762/x", ""} {
		if _, _, err := h.Person(context.Background(), "PK", id); !errors.Is(err, registry.ErrInvalidKey) {
			t.Errorf("%q: err = %v", id, err)
		}
	}
	if _, _, err := h.Business(context.Background(), "P/", "32778761"); !errors.Is(err, registry.ErrInvalidKey) {
		t.Errorf("country P/: err = %v", err)
	}
	if s.count() != 0 {
		t.Errorf("%d requests sent", s.count())
	}
}

func TestNewHTTPConfig(t *testing.T) {
	emptyToken := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(emptyToken, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  registry.HTTPConfig
		want []string
	}{
		{"all at once", registry.HTTPConfig{BaseURL: "http://registry.gov.kz", Timeout: -1, Retries: 11, TokenFile: emptyToken},
			[]string{"plain http is allowed only on a loopback host", "timeout: -1ns is negative", "retries: 11", "now: no clock", "token file: ", "is empty"}},
		{"no base URL", registry.HTTPConfig{Now: clock}, []string{"base URL: missing"}},
		{"credentials in the URL", registry.HTTPConfig{BaseURL: "https://ra:pw@registry.gov.kz", Now: clock}, []string{"carries credentials"}},
		{"query", registry.HTTPConfig{BaseURL: "https://registry.gov.kz/?key=1", Now: clock}, []string{"base URL: carries credentials, a query"}},
		{"scheme", registry.HTTPConfig{BaseURL: "ftp://registry.gov.kz", Now: clock}, []string{"base URL: is not an http(s) URL"}},
		{"no host", registry.HTTPConfig{BaseURL: "registry.gov.kz/api", Now: clock}, []string{"base URL: is not an http(s) URL of the form scheme://host"}},
		{"missing token file", registry.HTTPConfig{BaseURL: "https://registry.gov.kz", Now: clock, TokenFile: "/nonexistent/token"}, []string{"token file: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := registry.NewHTTP(tc.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: missing %q", err, w)
				}
			}
		})
	}

	for _, base := range []string{"https://registry.gov.kz/api/", "http://127.0.0.1:8080", "http://localhost:9000", "http://[::1]:8080"} {
		h, err := registry.NewHTTP(registry.HTTPConfig{BaseURL: base, Now: clock})
		if err != nil {
			t.Errorf("%s: %v", base, err)
			continue
		}
		u, _ := url.Parse(base)
		if h.Source() != u.Host {
			t.Errorf("%s: source %q", base, h.Source())
		}
	}
}
