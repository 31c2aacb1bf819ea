package status

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sanadpki/sanad/internal/api"
)

// Header values shared by every response (net/http never changes them).
var (
	hdrOCSPResponse = []string{"application/ocsp-response"}
	hdrNoStore      = []string{"no-store"}
)

// Handler serves OCSP GET requests itself and hands everything else to
// next. A GET request's base64 may hold "/", "+", "=" and "//", raw or
// percent-encoded; ServeMux would clean "//" with a redirect (Boulder
// #884), so the path is read here, raw, before any mux sees it.
func (r *Responder) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet || req.Method == http.MethodHead {
			if rest, ok := strings.CutPrefix(originForm(req.RequestURI), "/ocsp/"); ok {
				r.serveGET(w, req, rest)
				return
			}
		}
		next.ServeHTTP(w, req)
	})
}

// RegisterRoutes adds POST /ocsp, and the CRLs and CA certificates, to mux.
func (r *Responder) RegisterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /ocsp", r.servePOST)
	mux.HandleFunc("POST /ocsp/{$}", r.servePOST)
	mux.HandleFunc("GET /crl/{file}", r.serveCRL)
	mux.HandleFunc("GET /ca/{file}", r.serveCACert)
}

// maxGETPath bounds a GET request's path: MaxRequestSize of DER as base64,
// every octet percent-encoded, and the prefix.
const maxGETPath = len("/ocsp/") + 3*(MaxRequestSize*4/3+4)

// maxCachedGET bounds the encoded requests the GET cache keeps. A plain
// request (a CertID of SHA-256 hashes and a 20-byte serial) encodes to
// about 140 characters; a longer one (padded with extensions, every
// character percent-encoded) is parsed each time, not kept: 65 536 kept
// paths of 4 KB would be 256 MB an anonymous client could fill.
const maxCachedGET = 256

// originForm is the path and query of a request target: as sent, or, for
// the absolute form a client sends to a proxy (RFC 9112 §3.2.2), what
// follows the authority.
func originForm(target string) string {
	if strings.HasPrefix(target, "/") {
		return target
	}
	if _, rest, ok := strings.Cut(target, "://"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return rest[i:]
		}
	}
	return target
}

// serveGET answers GET /ocsp/{raw}, raw being the rest of the target.
func (r *Responder) serveGET(w http.ResponseWriter, req *http.Request, raw string) {
	start := r.now()
	r.metrics.getRequests.Inc()
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	if len(req.RequestURI) > maxGETPath {
		r.reply(w, req, start, nil, outcomeMalformed)
		return
	}
	if parsed, ok := r.gets.getString(raw); ok {
		r.serveParsed(w, req, start, parsed)
		return
	}
	der, err := decodeGET(raw)
	if err != nil {
		r.reply(w, req, start, nil, outcomeMalformed)
		return
	}
	parsed, err := ParseRequest(der)
	if err != nil {
		r.reply(w, req, start, nil, outcomeMalformed)
		return
	}
	if parsed.Nonce == nil && len(raw) <= maxCachedGET {
		// A request with a nonce is asked once; keeping it is waste.
		r.gets.put(raw, parsed)
	}
	r.serveParsed(w, req, start, parsed)
}

// decodeGET reverses RFC 6960 Appendix A.1's encoding: percent-decoding of
// the path segment, then base64, standard or URL-safe, padded or not.
func decodeGET(raw string) ([]byte, error) {
	s := raw
	if strings.IndexByte(raw, '%') >= 0 {
		var err error
		if s, err = url.PathUnescape(raw); err != nil {
			return nil, err
		}
	}
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		if strings.ContainsAny(s, "+/") {
			return nil, errors.New("mixed base64 alphabets")
		}
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

func (r *Responder) servePOST(w http.ResponseWriter, req *http.Request) {
	start := r.now()
	r.metrics.postRequests.Inc()
	// The media type, whatever parameters a client adds (a charset, which
	// binary DER has none of, but some clients send).
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/ocsp-request" {
		api.WriteProblem(w, api.NewProblem(http.StatusUnsupportedMediaType, "unsupported-media-type",
			"Unsupported media type", "an OCSP request is sent as application/ocsp-request (RFC 6960 Appendix A.1)"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxRequestSize+1))
	if err != nil || len(body) > MaxRequestSize {
		// Too large or cut off: malformed, and the connection closes
		// rather than read the rest.
		w.Header()["Connection"] = []string{"close"}
		r.reply(w, req, start, nil, outcomeMalformed)
		return
	}
	r.serveDER(w, req, start, body)
}

func (r *Responder) serveDER(w http.ResponseWriter, req *http.Request, start time.Time, der []byte) {
	parsed, err := ParseRequest(der)
	if err != nil {
		r.reply(w, req, start, nil, outcomeMalformed)
		return
	}
	r.serveParsed(w, req, start, parsed)
}

func (r *Responder) serveParsed(w http.ResponseWriter, req *http.Request, start time.Time, parsed Request) {
	e, o := r.answer(req.Context(), parsed, start)
	if r.cfg.LogRequests {
		r.log.Debug("OCSP request", "serial", fmt.Sprintf("%x", parsed.Serial), "outcome", o, "client", req.RemoteAddr)
	}
	if e != nil && parsed.Nonce != nil && r.cfg.NonceSigner != nil {
		// Without the nonce the pre-signed answer is still right (RFC
		// 5019 §4); the client decides whether it accepts it. It answers
		// past the budget of signatures, and when no signer can.
		if ok, _ := r.nonces.Allow(""); !ok {
			r.metrics.nonceThrottled.Inc()
		} else if der, err := r.cfg.NonceSigner(e.der, parsed.Nonce); err == nil {
			// An answer to this request alone: nobody may cache it.
			h := w.Header()
			h["Content-Type"] = hdrOCSPResponse
			h["Cache-Control"] = hdrNoStore
			_, _ = w.Write(der)
			r.metrics.nonceSigned.Inc()
			r.done(start, o)
			return
		} else if errors.Is(err, ErrNoNonceSigner) {
			r.log.Debug("OCSP response without the nonce", "err", err)
		} else {
			r.log.Error("sign an OCSP response with a nonce", "err", err)
		}
	}
	r.reply(w, req, start, e, o)
}

// reply writes a pre-signed response with its caching headers (RFC 5019
// §6.2), or an error answer that no one may cache.
//
// It is the hot path: header values are shared slices or computed once a
// second, and Content-Length is left to net/http, which sets it for a body
// written whole.
func (r *Responder) reply(w http.ResponseWriter, req *http.Request, start time.Time, e *entry, o outcome) {
	h := w.Header()
	h["Content-Type"] = hdrOCSPResponse
	body := errorAnswer(o)
	if e != nil {
		body = e.der
		if notModified(writeCaching(h, e, start), req) {
			w.WriteHeader(http.StatusNotModified)
			r.done(start, o)
			return
		}
	} else {
		h["Cache-Control"] = hdrNoStore
	}
	if req.Method == http.MethodHead {
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.WriteHeader(http.StatusOK)
	} else {
		_, _ = w.Write(body)
	}
	r.done(start, o)
}

func (r *Responder) done(start time.Time, o outcome) {
	r.metrics.outcomeCounters[o].Inc()
	r.metrics.requestSeconds.Observe(r.now().Sub(start).Seconds())
}

func errorAnswer(o outcome) []byte {
	switch o {
	case outcomeUnauthorized:
		return respUnauthorized
	case outcomeTryLater:
		return respTryLater
	default:
		return respMalformed
	}
}

// writeCaching sets the caching headers of e and returns its ETag. A body
// that expires (an OCSP response, a CRL) may be cached until its
// nextUpdate and no longer (RFC 5019 §6.2: max-age, public, no-transform,
// must-revalidate); one that does not (a CA certificate) for a day.
func writeCaching(h http.Header, e *entry, now time.Time) string {
	h["Cache-Control"] = e.cacheControl(now)
	h["Etag"] = e.etagHeader
	if e.lastModifiedHeader != nil {
		h["Last-Modified"] = e.lastModifiedHeader
	}
	if e.expiresHeader != nil {
		h["Expires"] = e.expiresHeader
	}
	return e.etag
}

// cacheControl is the Cache-Control value at now, made once a minute per
// entry: max-age counts down to nextUpdate (or the earlier cacheUntil) in
// whole minutes, from the end of the current minute, so that it never
// passes nextUpdate (RFC 5019 §6.2) while it is served, and is at most the
// entry's maxAge when it has one (a CRL's).
func (e *entry) cacheControl(now time.Time) []string {
	minute := now.Unix() / 60
	if cc := e.cc.Load(); cc != nil && cc.minute == minute {
		return cc.value[:]
	}
	maxAge := int64(86400)
	if until := e.nextUpdate; !until.IsZero() {
		if !e.cacheUntil.IsZero() {
			until = e.cacheUntil
		}
		maxAge = max(0, (until.Unix()-(minute+1)*60)/60*60)
	}
	if e.maxAge > 0 {
		maxAge = min(maxAge, int64(e.maxAge/time.Second))
	}
	cc := &cacheControlValue{minute: minute, value: [1]string{"max-age=" + strconv.FormatInt(maxAge, 10) + ", public, no-transform, must-revalidate"}}
	e.cc.Store(cc)
	return cc.value[:]
}

type cacheControlValue struct {
	minute int64
	value  [1]string
}

// notModified reports whether the request's If-None-Match names etag
// (RFC 9110 §13.1.2: weak comparison, or "*").
func notModified(etag string, req *http.Request) bool {
	inm := req.Header.Get("If-None-Match")
	if inm == "" {
		return false
	}
	for tag := range strings.SplitSeq(inm, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == etag {
			return true
		}
	}
	return false
}

// serveCRL serves GET /crl/{issuer}.crl: the issuer's latest CRL.
func (r *Responder) serveCRL(w http.ResponseWriter, req *http.Request) {
	id, ok := strings.CutSuffix(req.PathValue("file"), ".crl")
	is := r.issuers.Load().byID[id]
	if !ok || is == nil {
		notFound(w, "no CRL of that name")
		return
	}
	e, err := r.crls.get(req.Context(), r.store, id)
	switch {
	case err != nil && e != nil:
		// The store cannot say whether a newer one exists: the CRL held,
		// still within its nextUpdate, is served, as OCSP answers are.
		r.log.Warn("CRL from the store; serving the one held", "issuer", id, "err", err)
	case err != nil:
		r.log.Error("CRL from the store", "issuer", id, "err", err)
		api.WriteProblem(w, api.NewProblem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "the CRL cannot be read now"))
		return
	}
	if e == nil {
		notFound(w, "this issuer has published no CRL here")
		return
	}
	serveStatic(w, req, e, r.now())
}

// serveCACert serves GET /ca/{issuer}.crt: the issuer's certificate, DER
// (RFC 5280 §4.2.2.1: what AIA caIssuers points at).
func (r *Responder) serveCACert(w http.ResponseWriter, req *http.Request) {
	id, ok := strings.CutSuffix(req.PathValue("file"), ".crt")
	is := r.issuers.Load().byID[id]
	if !ok || is == nil {
		notFound(w, "no CA certificate of that name")
		return
	}
	serveStatic(w, req, is.certEntry, r.now())
}

func serveStatic(w http.ResponseWriter, req *http.Request, e *entry, now time.Time) {
	h := w.Header()
	h["Content-Type"] = []string{e.contentType}
	if notModified(writeCaching(h, e, now), req) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Length"] = []string{strconv.Itoa(len(e.der))} // a CRL may be larger than net/http's buffer
	if req.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	_, _ = w.Write(e.der)
}

func notFound(w http.ResponseWriter, detail string) {
	api.WriteProblem(w, api.NewProblem(http.StatusNotFound, "not-found", "Not found", detail))
}

// crlCache keeps each issuer's latest CRL ready to serve, re-read from the
// store when its number changed (checked at most every SyncInterval).
type crlCache struct {
	every time.Duration
	now   func() time.Time

	mu sync.Mutex // guards m; each issuer's cachedCRL has its own
	m  map[string]*cachedCRL
}

// cachedCRL is one issuer's CRL held; mu is held while it is read from the
// store, so that a slow read delays that issuer's requests only.
type cachedCRL struct {
	mu        sync.Mutex
	number    int64
	checkedAt time.Time
	e         *entry // nil until one was read
}

// slot is issuerID's cachedCRL, made empty the first time.
func (c *crlCache) slot(issuerID string) *cachedCRL {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.m[issuerID]
	if s == nil {
		s = &cachedCRL{}
		c.m[issuerID] = s
	}
	return s
}

// crlMaxAge caps how long HTTP caches keep a CRL. Its nextUpdate is far
// (an offline root's, a year; an issuing CA's, days), but a newer CRL can
// come any time: the CA's after a revocation, a root's emergency one
// imported from a ceremony. Capped, it reaches caches within the hour;
// the responder serves a CRL from memory, so being asked hourly costs
// nothing.
const crlMaxAge = time.Hour

func (c *crlCache) get(ctx context.Context, st Store, issuerID string) (*entry, error) {
	cur := c.slot(issuerID)
	cur.mu.Lock()
	defer cur.mu.Unlock()
	now := c.now()
	held := cur.e
	if held != nil && !now.Before(held.nextUpdate) {
		held = nil // past its nextUpdate: never served
	}
	if held != nil && now.Sub(cur.checkedAt) < c.every {
		return held, nil
	}
	// A read that fails leaves the CRL held, within its nextUpdate, to be
	// served with the error.
	summary, err := st.LatestCRLSummary(ctx, issuerID)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return held, err
	}
	// Only a newer CRL replaces the one served: behind replicas that lag
	// by different amounts, a read may find an older one.
	if cur.e == nil || summary.Number > cur.number {
		latest, err := st.LatestCRL(ctx, issuerID)
		if err != nil {
			return held, err
		}
		if cur.e == nil || latest.Number > cur.number {
			e := staticEntry(latest.DER, "application/pkix-crl", latest.ThisUpdate, latest.NextUpdate)
			// Nor an Expires at nextUpdate, which a cache without max-age
			// would keep to.
			e.maxAge, e.expiresHeader = crlMaxAge, nil
			cur.number, cur.e = latest.Number, e
		}
	}
	cur.checkedAt = now
	return cur.e, nil
}
