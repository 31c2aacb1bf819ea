// Package endpoint serves signature verification over HTTP:
// POST /api/v1/verify takes a signature (and, for a detached one, the
// content) and answers the validation report of package verify.
//
// It is server code (it writes Sanad's problem documents), kept apart from
// package verify so that applications importing verify pull in none of it.
// It never logs the signature, the content or who signed: a verification
// request says who is dealing with whose documents.
package endpoint

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sanadpki/sanad/internal/api"
	"github.com/sanadpki/sanad/verify"
)

// Request is the JSON form of a verification request (decodeRequest reads
// it as it arrives). The signature is given once: as base64 of its bytes
// (DER, PEM, S/MIME or JWS alike), or as text (PEM, S/MIME or a JWS).
type Request struct {
	Signature     string `json:"signature,omitempty"`
	SignatureText string `json:"signature_text,omitempty"`
	// Content is base64 of the signed content, for a detached signature.
	Content string `json:"content,omitempty"`
}

// Handler answers verification requests with one Verifier.
type Handler struct {
	v          *verify.Verifier
	maxContent int64
	log        *slog.Logger
	// slots holds one token per request being verified, each using the
	// verification's CPU, so only so many run at once. reads holds one
	// per request whose body is arriving (four times as many), each for
	// at most readTimeout: a client trickling its body holds no
	// verification slot, so a few of them cannot stop everyone's
	// verifications (as they could when a slot was taken before the body
	// came), only wait their turn to be read.
	slots       chan struct{}
	reads       chan struct{}
	readTimeout time.Duration
	// bytes is the budget of bytes the bodies read and held at once may
	// have (MaxHeld): a request holds its body's share from the start of
	// its read to the end of its verification, so that the memory
	// requests take is bounded by their bytes, not their count.
	bytes *budget
	// busyWait is how long a request waits for a slot, or for its share
	// of bytes, before it is answered 503 (5 s): a burst is served in
	// turn, a flood is told to come back.
	busyWait time.Duration

	// One client (api.ClientKey, behind trusted proxies) holds at most
	// half the slots, so that one trickling its bodies cannot hold them
	// all until the server's read timeout.
	trusted  []netip.Prefix
	mu       sync.Mutex
	inFlight map[string]int
}

// TrustProxies names the proxies whose X-Forwarded-For says who the client
// is (config http.trusted_proxies); without them a client is its address.
func (h *Handler) TrustProxies(p []netip.Prefix) *Handler {
	h.trusted = p
	return h
}

// perClient is how many requests one client may have in flight.
func (h *Handler) perClient() int { return max(1, cap(h.slots)/2) }

// readTimeout is how long a request's body may take to arrive;
// answerTime how long its report may take to be written once verified.
const (
	readTimeout = 10 * time.Second
	answerTime  = 10 * time.Second
)

// enter counts a request of client in, unless it has perClient already.
func (h *Handler) enter(client string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inFlight[client] >= h.perClient() {
		return false
	}
	h.inFlight[client]++
	return true
}

func (h *Handler) leave(client string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inFlight[client]--; h.inFlight[client] <= 0 {
		delete(h.inFlight, client)
	}
}

// New returns a Handler; maxContent bounds the detached content of a
// request (the signature is bounded by verify.MaxSignatureSize), and
// maxConcurrent the requests verified at once (at least 1; four times as
// many bodies are read at once). The bodies read and held at once are at
// most twice the largest body in bytes (MaxHeld changes it).
func New(v *verify.Verifier, maxContent int64, maxConcurrent int, log *slog.Logger) *Handler {
	n := max(1, maxConcurrent)
	h := &Handler{v: v, maxContent: maxContent, log: log, slots: make(chan struct{}, n), reads: make(chan struct{}, 4*n),
		readTimeout: readTimeout, busyWait: 5 * time.Second, inFlight: map[string]int{}}
	h.bytes = newBudget(2 * h.maxBody())
	return h
}

// MaxHeld bounds the bytes of request bodies read and held at once, all
// requests together (config verify.max_held_bytes), from the start of a
// request's read to the end of its verification; n ≤ 0 keeps the
// default, twice the largest body. A body larger than n is refused
// (413), and one whose bytes are not free within the wait answered busy
// (503). It is set before the Handler serves. A request holds about as
// many bytes as its body has: what the body decodes to, and a little
// while it is read.
func (h *Handler) MaxHeld(n int64) *Handler {
	if n > 0 {
		h.bytes = newBudget(n)
	}
	return h
}

// acquire takes a token of slots, waiting at most h.busyWait; false when
// none came (or the client left).
func (h *Handler) acquire(r *http.Request, slots chan struct{}) bool {
	select {
	case slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(h.busyWait)
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-r.Context().Done():
		return false
	}
}

// Register adds the route to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/verify", h.handleVerify)
}

// maxBody is the largest request body: both parts base64-encoded in JSON,
// and a little for the rest.
func (h *Handler) maxBody() int64 {
	return (verify.MaxSignatureSize+h.maxContent)/3*4 + 64<<10
}

// bodyLimit is the largest body this node reads: maxBody, or less when
// the byte budget is smaller.
func (h *Handler) bodyLimit() int64 { return min(h.maxBody(), h.bytes.size) }

// problem is a refusal of the request itself, as a problem document.
type problem struct {
	status      int
	name, title string
	detail      string
	cause       error
}

func (p *problem) Error() string { return p.detail }
func (p *problem) Unwrap() error { return p.cause }

func badRequest(format string, args ...any) error {
	return &problem{status: http.StatusBadRequest, name: "invalid-request", title: "The request is malformed", detail: fmt.Sprintf(format, args...)}
}

// unreadable is a body that could not be read: a bad request, unless the
// cause is the body limit or the byte budget, which handleVerify answers
// as such.
func unreadable(cause error, format string, args ...any) error {
	p := badRequest(format, args...).(*problem)
	p.cause = cause
	return p
}

func tooLarge(format string, args ...any) error {
	return &problem{status: http.StatusRequestEntityTooLarge, name: "request-too-large", title: "The request body is too large", detail: fmt.Sprintf(format, args...)}
}

func (h *Handler) handleVerify(w http.ResponseWriter, r *http.Request) {
	client := api.ClientKey(r, h.trusted)
	if !h.enter(client) {
		w.Header().Set("Retry-After", "1")
		api.WriteProblem(w, api.NewProblem(http.StatusTooManyRequests, "rate-limited", "Too many requests; slow down",
			fmt.Sprintf("this client has %d verifications in flight, the most one client may", h.perClient())))
		return
	}
	defer h.leave(client)
	busy := func(detail string) {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(h.busyWait/time.Second))))
		api.WriteProblem(w, api.NewProblem(http.StatusServiceUnavailable, "busy", "Too many verifications at once", detail))
	}
	busyBytes := func() {
		busy(fmt.Sprintf("this node reads and holds at most %d bytes of requests at once, and they are taken; try again shortly", h.bytes.size))
	}
	limit := h.bodyLimit()
	if r.ContentLength > limit {
		api.WriteProblem(w, api.NewProblem(http.StatusRequestEntityTooLarge, "request-too-large", "The request body is too large",
			fmt.Sprintf("the limit is %d bytes", limit)))
		return
	}
	if !h.acquire(r, h.reads) {
		busy(fmt.Sprintf("this node reads at most %d requests at once, and all are taken; try again shortly", cap(h.reads)))
		return
	}
	// The request holds its bytes from now until its verification ends.
	body := h.bytes.share(r.Context(), h.busyWait, http.MaxBytesReader(w, r.Body, limit), r.ContentLength)
	defer body.release()
	if !body.reserve() {
		<-h.reads
		busyBytes()
		return
	}
	r.Body = io.NopCloser(body)
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(h.readTimeout)) // a server that cannot set one keeps its own ReadTimeout
	sig, content, err := h.read(r, body.left)
	_ = rc.SetReadDeadline(time.Time{})
	<-h.reads
	if err == nil {
		if !h.acquire(r, h.slots) {
			busy(fmt.Sprintf("this node verifies at most %d requests at once, and all are taken; try again shortly", cap(h.slots)))
			return
		}
		defer func() { <-h.slots }()
		// The verification's fetches may take its whole time
		// (verify.Config.Timeout), whatever the server's write timeout,
		// which began when the headers came: the answer is still
		// written, a TRY_LATER rather than a broken connection.
		if d := h.v.Timeout(); d > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(d + answerTime))
		}
		var res *verify.Result
		res, err = h.v.Verify(r.Context(), sig, content)
		if err == nil {
			api.WriteJSON(w, http.StatusOK, res) // no-store, as every JSON answer
			return
		}
		if errors.Is(err, verify.ErrTooLarge) {
			err = tooLarge("the signature is larger than %d bytes", verify.MaxSignatureSize)
		}
	}
	var p *problem
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, errNoBudget):
		busyBytes()
	case errors.As(err, &tooBig):
		api.WriteProblem(w, api.NewProblem(http.StatusRequestEntityTooLarge, "request-too-large", "The request body is too large",
			fmt.Sprintf("the limit is %d bytes", tooBig.Limit)))
	case errors.As(err, &p):
		api.WriteProblem(w, api.NewProblem(p.status, p.name, p.title, p.detail))
	case r.Context().Err() != nil:
		// The client went away; nothing to answer.
	default:
		h.log.Error("verify request failed", "err", err)
		api.WriteProblem(w, api.NewProblem(http.StatusInternalServerError, "internal", "Internal error", ""))
	}
}

// read takes the signature and the content from a JSON or a
// multipart/form-data body (parts "signature" and "content"); left says
// how much of the body is still to come (-1: unknown).
func (h *Handler) read(r *http.Request, left func() int64) (sig, content []byte, err error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		mt = ""
	}
	switch mt {
	case "application/json":
		return decodeRequest(r.Body, left, h.maxContent)
	case "multipart/form-data":
		return h.readMultipart(r, left)
	}
	return nil, nil, &problem{status: http.StatusUnsupportedMediaType, name: "unsupported-media-type", title: "The request body has the wrong media type",
		detail: fmt.Sprintf("send application/json or multipart/form-data, not %q", r.Header.Get("Content-Type"))}
}

func (h *Handler) readMultipart(r *http.Request, left func() int64) (sig, content []byte, err error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, badRequest("multipart body: %v", err)
	}
	seen := map[string]bool{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, unreadable(err, "multipart body: %v", err)
		}
		name := part.FormName()
		var limit int64
		switch name {
		case "signature":
			limit = verify.MaxSignatureSize
		case "content":
			limit = h.maxContent
		default:
			return nil, nil, badRequest("unknown part %q: send signature and, for a detached signature, content", name)
		}
		if seen[name] {
			return nil, nil, badRequest("part %q twice", name)
		}
		seen[name] = true
		if strings.EqualFold(part.Header.Get("Content-Transfer-Encoding"), "base64") {
			// RFC 7578 §4.7 deprecates it, but some clients still send it.
			return nil, nil, badRequest("part %q: Content-Transfer-Encoding is not supported; send the bytes", name)
		}
		b, err := readPart(part, name, limit, left)
		if err != nil {
			return nil, nil, err
		}
		if name == "signature" {
			sig = b
		} else {
			content = b
		}
	}
	if sig == nil {
		return nil, nil, badRequest("no signature part")
	}
	return sig, content, nil
}
