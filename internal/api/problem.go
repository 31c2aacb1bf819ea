package api

import (
	"encoding/json"
	"net/http"
	"strings"
)

// ProblemTypeBase prefixes every problem type URI. The suffixes are a
// contract with clients: they are never renamed.
const ProblemTypeBase = "urn:sanad:problem:"

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Extensions are extra members (RFC 9457 §3.2), such as the failing
	// checks of /readyz.
	Extensions map[string]any `json:"-"`
}

// NewProblem returns a problem of type ProblemTypeBase+name.
func NewProblem(status int, name, title, detail string) Problem {
	return Problem{Type: ProblemTypeBase + name, Title: title, Status: status, Detail: detail}
}

// MarshalJSON flattens Extensions beside the standard members.
func (p Problem) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(p.Extensions)+4)
	for k, v := range p.Extensions {
		m[k] = v
	}
	m["type"], m["title"], m["status"] = p.Type, p.Title, p.Status
	if p.Detail != "" {
		m["detail"] = p.Detail
	}
	return json.Marshal(m)
}

// WriteProblem sends p as application/problem+json.
func WriteProblem(w http.ResponseWriter, p Problem) {
	body, err := json.Marshal(p)
	if err != nil {
		// Only an unmarshalable extension gets here; drop the extensions.
		p.Extensions = nil
		body, _ = json.Marshal(p)
	}
	if n, ok := w.(problemNoter); ok {
		n.noteProblem(strings.TrimPrefix(p.Type, ProblemTypeBase))
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}

// WriteJSON sends v as application/json with the given status, not to be
// stored by any cache nor sniffed as another type: an enrollment's answer
// carries a person's name and national identifier once issued.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		WriteProblem(w, NewProblem(http.StatusInternalServerError, "internal", "Internal error", "response could not be encoded"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// WithProblems serves mux, answering what no route of it handles (an
// unknown path, a method the path does not take) with a problem document
// instead of the mux's plain text: 404 not-found, or 405
// method-not-allowed with the Allow header the mux computed.
func WithProblems(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rec.header.Get("Allow"))
			WriteProblem(w, NewProblem(http.StatusMethodNotAllowed, "method-not-allowed", "This path does not take this method", "allowed: "+rec.header.Get("Allow")))
		case http.StatusNotFound:
			WriteProblem(w, NewProblem(http.StatusNotFound, "not-found", "No such resource", ""))
		default: // a redirect (the mux cleans paths): pass it on
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
		}
	})
}

// statusRecorder keeps the status and headers a fallback handler wrote.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(b), nil
}
func (r *statusRecorder) WriteHeader(status int) { r.status = status }

// problemNoter is a response writer that counts the problem types written
// through it (Metrics.Wrap).
type problemNoter interface{ noteProblem(typ string) }
