package ra

import (
	"context"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sanadpki/sanad/internal/api"
	"github.com/sanadpki/sanad/internal/store"
)

// Register adds the applicant API to mux:
//
//	POST /api/v1/enrollments            apply (Idempotency-Key honoured)
//	GET  /api/v1/enrollments/{id}       state, reasons, certificate once issued
//	POST /api/v1/enrollments/{id}/proof the one-time code
//	POST /api/v1/enrollments/{id}/code  send a new code (Resend)
//
// and the signed-request API (a compact JWS, application/jose, or in the
// Authorization header as "JWS <compact>" for reads):
//
//	POST /api/v1/officer/actions             approve, reject, revoke
//	GET  /api/v1/officer/queue               enrollments waiting for officers
//	GET  /api/v1/officer/enrollments/{id}    one enrollment, for review
//	GET  /api/v1/officer/subjects            a person's or business's enrollments and certificates
//	POST /api/v1/certificates/{serial}/revoke a holder revokes their own
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/enrollments", s.handleEnroll)
	mux.HandleFunc("GET /api/v1/enrollments/{id}", s.handleGet)
	mux.HandleFunc("POST /api/v1/enrollments/{id}/proof", s.handleProof)
	mux.HandleFunc("POST /api/v1/enrollments/{id}/code", s.handleResend)
	mux.HandleFunc("POST /api/v1/officer/actions", s.handleAct)
	mux.HandleFunc("GET /api/v1/officer/queue", s.handleQueue)
	mux.HandleFunc("GET /api/v1/officer/enrollments/{id}", s.handleShow)
	mux.HandleFunc("GET /api/v1/officer/subjects", s.handleFind)
	mux.HandleFunc("POST /api/v1/certificates/{serial}/revoke", s.handleRevokeOwn)
	mux.HandleFunc("POST /api/v1/certificates/{serial}/renew", s.handleRenew)
	mux.HandleFunc("GET /api/v1/certificates/{serial}", s.handleCertificate)
	mux.HandleFunc("GET /api/v1/openapi.json", s.handleOpenAPI)
	mux.HandleFunc("POST /api/v1/registry/events", s.handleRegistryEvent)
}

// handleRegistryEvent answers POST /api/v1/registry/events: a signed
// event of the national registry (application/jose), acted on.
func (s *Service) handleRegistryEvent(w http.ResponseWriter, r *http.Request) {
	answerSigned(s, w, r, s.ApplyRegistryEvent)
}

// answerSigned reads a signed request (readJWS) and answers what act makes
// of it as 200 JSON (202 for one taken but not yet carried out, such as
// a pending revocation), or its problem.
func answerSigned[T any](s *Service, w http.ResponseWriter, r *http.Request, act func(context.Context, string) (T, error)) {
	jws, err := readJWS(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out, err := act(r.Context(), jws)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	code := http.StatusOK
	if a, ok := any(out).(interface{ accepted() bool }); ok && a.accepted() {
		code = http.StatusAccepted
	}
	api.WriteJSON(w, code, out)
}

// CertificateView is a certificate and its status, for anyone.
type CertificateView struct {
	Serial      string    `json:"serial"`
	Issuer      string    `json:"issuer"`
	Profile     string    `json:"profile"`
	Status      string    `json:"status"`
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
	Reason      string    `json:"reason,omitempty"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	Certificate string    `json:"certificate"` // PEM
}

// handleCertificate answers GET /api/v1/certificates/{serial}: JSON with
// the PEM and the status, or the DER alone for Accept:
// application/pkix-cert.
func (s *Service) handleCertificate(w http.ResponseWriter, r *http.Request) {
	serial, err := parseSerial(r.PathValue("serial"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.d.Store.SignedCertificateBySerial(r.Context(), serial)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, refuse("certificate-not-found", ""))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if accepts(r, "application/pkix-cert") {
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Header().Set("Content-Length", strconv.Itoa(len(c.DER)))
		_, _ = w.Write(c.DER)
		return
	}
	api.WriteJSON(w, http.StatusOK, certificateView(c))
}

// certificateView is a signed certificate as the API shows it.
func certificateView(c store.Certificate) CertificateView {
	v := CertificateView{Serial: strings.ToUpper(hex.EncodeToString(c.Serial)), Issuer: c.IssuerID, Profile: c.Profile,
		Status: c.Status, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))}
	if c.Status == store.StatusRevoked {
		v.RevokedAt = c.RevokedAt
		for name, code := range reasonCodes {
			if code == c.Reason {
				v.Reason = name
			}
		}
		if v.Reason == "" {
			v.Reason = strconv.Itoa(c.Reason)
		}
	}
	return v
}

// accepts reports whether the Accept header names mediaType.
func accepts(r *http.Request, mediaType string) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == mediaType {
			return true
		}
	}
	return false
}

// MaxJWSBytes bounds a signed request: a certificate chain of one and a
// small payload.
const MaxJWSBytes = 16 << 10

func (s *Service) handleAct(w http.ResponseWriter, r *http.Request) {
	answerSigned(s, w, r, s.Act)
}

func (s *Service) handleQueue(w http.ResponseWriter, r *http.Request) {
	q, err := s.Queue(r.Context(), authorizationJWS(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, q)
}

func (s *Service) handleShow(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !enrollmentID.MatchString(id) {
		s.fail(w, r, refuse("not-found", ""))
		return
	}
	item, err := s.Show(r.Context(), id, authorizationJWS(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, item)
}

func (s *Service) handleFind(w http.ResponseWriter, r *http.Request) {
	out, err := s.Find(r.Context(), authorizationJWS(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (s *Service) handleRevokeOwn(w http.ResponseWriter, r *http.Request) {
	// Anyone holding a certificate's key may ask, again and again (a
	// certificate revoked for keyCompromise is reported again): each
	// request is a signature check and a nonce stored.
	if s.limitClient(w, r) {
		return
	}
	answerSigned(s, w, r, func(ctx context.Context, jws string) (Revocation, error) {
		return s.RevokeOwn(ctx, r.PathValue("serial"), jws)
	})
}

// handleRenew answers a holder's renewal as an enrollment is answered:
// 201 with the new enrollment (issued at once for an auto profile), and the
// same again, marked Idempotent-Replayed, for the same request sent again.
func (s *Service) handleRenew(w http.ResponseWriter, r *http.Request) {
	if s.limitClient(w, r) {
		return
	}
	jws, err := readJWS(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	e, replayed, err := s.Renew(r.Context(), r.PathValue("serial"), jws)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.answerCreated(w, r, e, replayed)
}

// readJWS reads a compact JWS body (application/jose).
func readJWS(w http.ResponseWriter, r *http.Request) (string, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/jose" {
		return "", refuse("unsupported-media-type", "a signed request is application/jose; got %q", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxJWSBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return "", refuse("request-too-large", "the limit is %d bytes", MaxJWSBytes)
	}
	if err != nil {
		return "", refuse("invalid-request", "reading the body: %v", err)
	}
	return strings.TrimSpace(string(body)), nil
}

// authorizationJWS is the compact JWS of an "Authorization: JWS …" header.
func authorizationJWS(r *http.Request) string {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "JWS ")
	if !ok || len(v) > MaxJWSBytes {
		return ""
	}
	return strings.TrimSpace(v)
}

// enrollmentID is what newID makes; anything else is not found without a
// database lookup.
var enrollmentID = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// IsEnrollmentID says whether s has the form of an enrollment id, for a
// client about to put one from an answer into a URL.
func IsEnrollmentID(s string) bool { return enrollmentID.MatchString(s) }

// limitClient refuses a client (by address, api.ClientKeys) over its
// request rate, or one of an IPv6 site over the site's.
func (s *Service) limitClient(w http.ResponseWriter, r *http.Request) bool {
	client, site := api.ClientKeys(r, s.d.TrustedProxies)
	ok, wait := s.d.ClientLimit.Allow(client)
	if ok && site != "" {
		ok, wait = s.d.SiteLimit.Allow(site)
	}
	if !ok {
		e := rateLimited(wait, "")
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		s.fail(w, r, e)
	}
	return !ok
}

func (s *Service) handleEnroll(w http.ResponseWriter, r *http.Request) {
	if s.limitClient(w, r) {
		return
	}
	body, err := readJSON(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	e, replayed, err := s.Enroll(r.Context(), body, r.Header.Get("Idempotency-Key"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.answerCreated(w, r, e, replayed)
}

// answerCreated answers 201 with the enrollment a request made, or made
// before when replayed (Idempotent-Replayed).
func (s *Service) answerCreated(w http.ResponseWriter, r *http.Request, e store.Enrollment, replayed bool) {
	v, err := s.view(r.Context(), e)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", v.Links["self"])
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	api.WriteJSON(w, http.StatusCreated, v)
}

func (s *Service) handleResend(w http.ResponseWriter, r *http.Request) {
	if s.limitClient(w, r) {
		return
	}
	id, ok := s.enrollmentIn(w, r)
	if !ok {
		return
	}
	e, err := s.Resend(r.Context(), id)
	s.answerEnrollment(w, r, e, nil, err)
}

// enrollmentIn is the enrollment id of the request's path, or, when it
// cannot be one (newID), false with a not-found answer sent.
func (s *Service) enrollmentIn(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !enrollmentID.MatchString(id) {
		s.fail(w, r, refuse("not-found", ""))
		return "", false
	}
	return id, true
}

// answerEnrollment answers the enrollment an applicant's action left, as
// its applicant sees it (with the certificate the action got, when it got
// one: not read back), or the action's error.
func (s *Service) answerEnrollment(w http.ResponseWriter, r *http.Request, e store.Enrollment, in *issuedCertificate, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.viewIssued(r.Context(), e, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, v)
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) {
	id, ok := s.enrollmentIn(w, r)
	if !ok {
		return
	}
	v, err := s.Get(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, v)
}

func (s *Service) handleProof(w http.ResponseWriter, r *http.Request) {
	if s.limitClient(w, r) {
		return
	}
	id, ok := s.enrollmentIn(w, r)
	if !ok {
		return
	}
	body, err := readJSON(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req struct {
		Code string `json:"code"`
	}
	if err := decodeStrict(body, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	e, cert, err := s.proof(r.Context(), id, req.Code)
	s.answerEnrollment(w, r, e, s.justIssued(cert), err)
}

// readJSON reads a JSON body of at most MaxRequestBytes.
func readJSON(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, refuse("unsupported-media-type", "the body must be application/json; got %q", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, refuse("request-too-large", "the limit is %d bytes", MaxRequestBytes)
	}
	if err != nil {
		return nil, refuse("invalid-request", "reading the body: %v", err)
	}
	return body, nil
}

// fail answers err as a problem document: an *Error as itself, anything
// else as a 500 whose detail stays in the log.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	if e, ok := ProblemOf(err); ok {
		if e.Status >= 500 {
			// Not the client's doing (the registry or the SMS gateway is
			// down): the operators must hear of it. Causes name no
			// identifier in full (registry errors mask them).
			s.d.Log.Warn("ra request not served", "type", e.Type, "route", r.Pattern, "err", e.Err)
		}
		p := api.NewProblem(e.Status, e.Type, e.Title, e.Detail)
		p.Extensions = e.Extra
		switch secs, _ := e.Extra["retry_after_seconds"].(int); {
		case secs > 0:
			w.Header().Set("Retry-After", strconv.Itoa(secs))
		case e.Status == http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", "30")
		}
		api.WriteProblem(w, p)
		return
	}
	if errors.Is(err, store.ErrConflict) {
		api.WriteProblem(w, api.NewProblem(http.StatusConflict, "conflict", "Another request changed this enrollment first; retry", ""))
		return
	}
	s.d.Log.Error("ra request failed", "method", r.Method, "route", r.Pattern, "err", err)
	api.WriteProblem(w, api.NewProblem(http.StatusInternalServerError, "internal", "Internal error", ""))
}
