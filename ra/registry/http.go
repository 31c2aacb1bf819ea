package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sanadpki/sanad/internal/outbound"
	"github.com/sanadpki/sanad/internal/secretfile"
)

// Defaults of HTTPConfig, in one place.
const (
	DefaultTimeout       = 2 * time.Second
	DefaultRetries       = 2
	DefaultBackoff       = 200 * time.Millisecond
	DefaultMaxBackoff    = 2 * time.Second
	DefaultMaxRetryAfter = 5 * time.Second
	DefaultMaxBody       = 64 << 10
)

// HTTPConfig configures the client of a national registry.
type HTTPConfig struct {
	// BaseURL is the registry API's root; lookups go to
	// {BaseURL}/v1/persons/... and {BaseURL}/v1/businesses/.... It must be
	// https, except on a loopback host (tests, a local stub), and carries
	// no user name, password, query or fragment.
	BaseURL string
	// Client sends the requests; nil means a client of our own that
	// follows no redirects (a registry API that redirects is misconfigured).
	Client *http.Client
	// Timeout bounds one attempt, reading the body included; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Retries is how many attempts follow a failed first one; 0 means
	// DefaultRetries, a negative number none. Only network errors,
	// timeouts, 429 and 5xx are retried.
	Retries int
	// Backoff is the first wait between attempts, doubled each time up to
	// MaxBackoff, with jitter; 0 means DefaultBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration // 0 means DefaultMaxBackoff
	// MaxRetryAfter is the longest Retry-After (429, 503) honoured; a
	// registry asking for longer ends the lookup at once with
	// ErrUnavailable, since the applicant is told "try later" anyway.
	// 0 means DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
	// MaxBody caps a response body in bytes; 0 means DefaultMaxBody.
	MaxBody int64
	// TokenFile, if set, names a file holding a bearer token sent as
	// "Authorization: Bearer <token>". It is read at start and again at
	// every lookup, so it can be rotated in place; it is never logged nor
	// put in an error.
	TokenFile string
	// Now is the clock for Evidence.LookedUpAt and Retry-After dates.
	Now func() time.Time
}

// HTTP is the client of a national registry speaking the contract in the
// package documentation. It is safe for concurrent use.
type HTTP struct {
	base          string // BaseURL without a trailing slash
	source        string // Evidence.Source: the base URL's host
	client        *http.Client
	timeout       time.Duration
	retries       int
	backoff       time.Duration
	maxBackoff    time.Duration
	maxRetryAfter time.Duration
	maxBody       int64
	tokenFile     string
	now           func() time.Time
	// waiting, when set (tests only), is called as a lookup starts to
	// wait before its next attempt.
	waiting func()
}

// NewHTTP validates cfg, reporting every problem at once, and returns the
// client.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	h := &HTTP{
		client:        cfg.Client,
		timeout:       orDefault(cfg.Timeout, DefaultTimeout),
		retries:       cfg.Retries,
		backoff:       orDefault(cfg.Backoff, DefaultBackoff),
		maxBackoff:    orDefault(cfg.MaxBackoff, DefaultMaxBackoff),
		maxRetryAfter: orDefault(cfg.MaxRetryAfter, DefaultMaxRetryAfter),
		maxBody:       orDefault(cfg.MaxBody, DefaultMaxBody),
		tokenFile:     cfg.TokenFile,
		now:           cfg.Now,
	}
	switch {
	case cfg.Retries == 0:
		h.retries = DefaultRetries
	case cfg.Retries < 0:
		h.retries = 0
	case cfg.Retries > 10:
		add("retries: %d is more than 10", cfg.Retries)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeout", cfg.Timeout}, {"backoff", cfg.Backoff}, {"max backoff", cfg.MaxBackoff}, {"max retry-after", cfg.MaxRetryAfter}} {
		if d.v < 0 {
			add("%s: %v is negative", d.name, d.v)
		}
	}
	if cfg.MaxBody < 0 {
		add("max body: %d is negative", cfg.MaxBody)
	}
	if cfg.Now == nil {
		add("now: no clock")
	}
	// National identifiers travel in the path: over https, or http on
	// a loopback host (see outbound).
	if u, err := outbound.Parse(cfg.BaseURL); err != nil {
		add("base URL: %v", err)
	} else {
		h.base = strings.TrimRight(u.String(), "/")
		h.source = u.Host
	}
	if cfg.TokenFile != "" {
		if _, err := h.token(); err != nil {
			add("token file: %v", err)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("registry http config: %s", strings.Join(problems, "; "))
	}
	if h.client == nil {
		h.client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return h, nil
}

func orDefault[T time.Duration | int64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// token reads the bearer token; errors name the file, never its content.
func (h *HTTP) token() (string, error) {
	if h.tokenFile == "" {
		return "", nil
	}
	return ReadBearerToken(h.tokenFile)
}

// ReadBearerToken reads the one token a token file holds (surrounding
// white space trimmed), for an "Authorization: Bearer" header: the
// registry's, the notification gateway's. The file must be the owner's
// alone (secretfile.Read). Errors name the file, never its content.
func ReadBearerToken(path string) (string, error) {
	b, err := secretfile.Read("token file", path)
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	switch {
	case t == "":
		return "", fmt.Errorf("%s is empty", path)
	case strings.ContainsAny(t, "\r\n\t "):
		return "", fmt.Errorf("%s holds more than one token", path)
	}
	return t, nil
}

// Source is what Evidence.Source says for this registry: the base URL's host.
func (h *HTTP) Source() string { return h.source }

// httpPerson and httpBusiness are the response bodies: the record plus its
// version. Unknown fields are ignored (a national registry adds fields over
// time); required ones must be there.
type httpPerson struct {
	personWire
	Version *string `json:"version"`
}

type httpBusiness struct {
	businessWire
	Version *string `json:"version"`
}

// Person asks GET {base}/v1/persons/{country}/{id}.
func (h *HTTP) Person(ctx context.Context, country, nationalID string) (Person, Evidence, error) {
	if err := checkKey(country, nationalID); err != nil {
		return Person{}, Evidence{}, fmt.Errorf("registry person lookup: %w", err)
	}
	what := fmt.Sprintf("person %s %s", country, mask(nationalID))
	body, err := h.get(ctx, "persons", country, nationalID)
	if err != nil {
		return Person{}, Evidence{}, fmt.Errorf("registry %s: %s: %w", h.source, what, err)
	}
	p, version, err := decodePerson(body, country, nationalID, h.now())
	if err != nil {
		return Person{}, Evidence{}, fmt.Errorf("registry %s: %s: %w: %w: %w", h.source, what, ErrUnavailable, ErrBadResponse, err)
	}
	return p, h.evidence(RecordPerson, version, body), nil
}

// Business asks GET {base}/v1/businesses/{country}/{id}.
func (h *HTTP) Business(ctx context.Context, country, registrationNumber string) (Business, Evidence, error) {
	if err := checkKey(country, registrationNumber); err != nil {
		return Business{}, Evidence{}, fmt.Errorf("registry business lookup: %w", err)
	}
	// Masked as a national identifier is: a Kazakh sole trader's BIN is
	// their IIN.
	what := fmt.Sprintf("business %s %s", country, mask(registrationNumber))
	body, err := h.get(ctx, "businesses", country, registrationNumber)
	if err != nil {
		return Business{}, Evidence{}, fmt.Errorf("registry %s: %s: %w", h.source, what, err)
	}
	b, version, err := decodeBusiness(body, country, registrationNumber)
	if err != nil {
		return Business{}, Evidence{}, fmt.Errorf("registry %s: %s: %w: %w: %w", h.source, what, ErrUnavailable, ErrBadResponse, err)
	}
	return b, h.evidence(RecordBusiness, version, body), nil
}

func (h *HTTP) evidence(record, version string, body []byte) Evidence {
	sum := sha256.Sum256(body)
	return Evidence{
		Source:     h.source,
		Record:     record,
		Version:    version,
		Hash:       sum[:],
		LookedUpAt: h.now(),
	}
}

// decodeJSON decodes exactly one JSON value from body into v, ignoring
// unknown fields.
func decodeJSON(body []byte, v any) error {
	if err := strictJSON(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return errors.New(jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

func decodePerson(body []byte, country, id string, now time.Time) (Person, string, error) {
	var w httpPerson
	if err := decodeJSON(body, &w); err != nil {
		return Person{}, "", err
	}
	p, problems := w.personWire.person(now)
	version, vp := responseVersion(w.Version)
	problems = append(problems, vp...)
	if len(problems) == 0 && (p.Country != country || p.NationalID != id) {
		problems = append(problems, fmt.Sprintf("answered for person %s %s", p.Country, mask(p.NationalID)))
	}
	if len(problems) > 0 {
		return Person{}, "", errors.New(strings.Join(problems, "; "))
	}
	return p, version, nil
}

func decodeBusiness(body []byte, country, number string) (Business, string, error) {
	var w httpBusiness
	if err := decodeJSON(body, &w); err != nil {
		return Business{}, "", err
	}
	b, problems := w.businessWire.business()
	version, vp := responseVersion(w.Version)
	problems = append(problems, vp...)
	if len(problems) == 0 && (b.Country != country || b.RegistrationNumber != number) {
		problems = append(problems, fmt.Sprintf("answered for business %s %s", b.Country, mask(b.RegistrationNumber)))
	}
	if len(problems) > 0 {
		return Business{}, "", errors.New(strings.Join(problems, "; "))
	}
	return b, version, nil
}

// responseVersion checks the optional "version" member.
func responseVersion(v *string) (string, []string) {
	if v == nil || *v == "" {
		return "", nil
	}
	var c fieldChecker
	return c.text("version", v), c.problems
}

// attemptError is one failed attempt: whether another may help, and how
// long the registry asked us to wait.
type attemptError struct {
	err        error
	retry      bool
	retryAfter time.Duration
	tooLong    bool // Retry-After beyond MaxRetryAfter
}

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

// get fetches {base}/v1/{kind}/{country}/{id} with retries and returns the
// body of a 200. Errors wrap ErrNotFound, ErrUnavailable or the context's
// error; none carries the URL, which holds the full identifier.
func (h *HTTP) get(ctx context.Context, kind, country, id string) ([]byte, error) {
	token, err := h.token()
	if err != nil {
		return nil, fmt.Errorf("%w: bearer token: %w", ErrUnavailable, err)
	}
	u := h.base + "/v1/" + kind + "/" + url.PathEscape(country) + "/" + url.PathEscape(id)
	for attempt := 0; ; attempt++ {
		body, err := h.attempt(ctx, u, token)
		if err == nil {
			return body, nil
		}
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, contextError(ctxErr)
		}
		var ae *attemptError
		if !errors.As(err, &ae) || !ae.retry || attempt >= h.retries {
			return nil, fmt.Errorf("%w after %d attempt(s): %w", ErrUnavailable, attempt+1, err)
		}
		if ae.tooLong {
			return nil, fmt.Errorf("%w: asked to retry after %v, more than %v: %w", ErrUnavailable, ae.retryAfter, h.maxRetryAfter, err)
		}
		wait := ae.retryAfter
		if wait == 0 {
			wait = h.jitteredBackoff(attempt)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return nil, fmt.Errorf("%w: no time left for attempt %d: %w", ErrUnavailable, attempt+2, err)
		}
		if h.waiting != nil {
			h.waiting()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, contextError(ctx.Err())
		case <-t.C:
		}
	}
}

// contextError wraps the caller's context error; a deadline also counts as
// the registry being unavailable (the RA's own time ran out waiting for it).
func contextError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return fmt.Errorf("registry lookup: %w", err)
}

// jitteredBackoff is "equal jitter": half the exponential step, plus a
// random share of the other half, so that many RA nodes do not retry in step.
func (h *HTTP) jitteredBackoff(attempt int) time.Duration {
	d := h.backoff
	for i := 0; i < attempt && d < h.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, h.maxBackoff)
	half := d / 2
	return half + rand.N(d-half+1)
}

// attempt is one GET within its own timeout.
func (h *HTTP) attempt(ctx context.Context, u, token string) ([]byte, error) {
	actx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", networkError(err, h.timeout))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sanad-ra")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, &attemptError{err: networkError(err, h.timeout), retry: true}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, h.maxBody+1))
	if err != nil {
		return nil, &attemptError{err: networkError(err, h.timeout), retry: true}
	}
	oversized := int64(len(body)) > h.maxBody
	switch {
	case resp.StatusCode == http.StatusOK && oversized:
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrBadResponse, h.maxBody)
	case resp.StatusCode == http.StatusOK && !isJSON(resp.Header.Get("Content-Type")):
		// A 200 HTML page (a captive portal, a proxy's error) is not the
		// registry's answer, however it parses.
		return nil, fmt.Errorf("%w: a 200 answer of type %q, not JSON", ErrBadResponse, resp.Header.Get("Content-Type"))
	case resp.StatusCode == http.StatusOK:
		return body, nil
	case resp.StatusCode == http.StatusNotFound && isJSON(resp.Header.Get("Content-Type")):
		return nil, ErrNotFound
	case resp.StatusCode == http.StatusNotFound:
		// A 404 page from a proxy or a wrong base URL must not tell an
		// applicant that they do not exist.
		return nil, &attemptError{err: fmt.Errorf("HTTP 404 without a JSON body (wrong base URL?)")}
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		ae := &attemptError{err: fmt.Errorf("HTTP %d", resp.StatusCode), retry: true}
		if d, ok := h.retryAfter(resp.Header.Get("Retry-After")); ok {
			ae.retryAfter = d
			ae.tooLong = d > h.maxRetryAfter
		}
		return nil, ae
	default:
		return nil, &attemptError{err: fmt.Errorf("HTTP %d", resp.StatusCode)}
	}
}

// networkError words a transport error without its URL (which holds the
// full identifier).
func networkError(err error, timeout time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %v", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToUpper(ue.Op), ue.Err)
	}
	return err
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || mt == "application/problem+json")
}

// retryAfter parses Retry-After: delay-seconds or an HTTP-date (RFC 9110
// §10.2.3).
func (h *HTTP) retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(h.now()), 0), true
}
