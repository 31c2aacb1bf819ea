package ra

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a refusal the applicant or officer can act on: an HTTP status, a
// problem type (the name after urn:sanad:problem:, a contract with clients:
// never renamed), a title fixed per type, and a detail about this request.
// Anything that is not an *Error is the RA's own failure (500, no detail).
type Error struct {
	Status int
	Type   string
	Title  string
	Detail string
	// Extra members of the problem document (RFC 9457 §3.2).
	Extra map[string]any
	Err   error
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Title
	}
	return e.Title + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// problems are the RA's problem types with their status and title.
var problems = map[string]struct {
	status int
	title  string
}{
	"invalid-request":        {http.StatusBadRequest, "The request is malformed"},
	"unsupported-media-type": {http.StatusUnsupportedMediaType, "The request body has the wrong media type"},
	"request-too-large":      {http.StatusRequestEntityTooLarge, "The request body is too large"},
	"unknown-profile":        {http.StatusUnprocessableEntity, "No such certificate profile"},
	"profile-mismatch":       {http.StatusUnprocessableEntity, "The profile is not for this kind of applicant"},
	"unsupported-country":    {http.StatusUnprocessableEntity, "Identifiers of this country are not supported"},
	"invalid-identifier":     {http.StatusUnprocessableEntity, "The national identifier is not valid"},
	"invalid-csr":            {http.StatusUnprocessableEntity, "The certificate request is not acceptable"},
	"not-in-registry":        {http.StatusUnprocessableEntity, "The national registry has no such record"},
	"registry-mismatch":      {http.StatusUnprocessableEntity, "The details do not match the national registry"},
	"subject-deceased":       {http.StatusUnprocessableEntity, "The national registry records this person as deceased"},
	"business-inactive":      {http.StatusUnprocessableEntity, "The national registry records this business as inactive"},
	"not-a-representative":   {http.StatusForbidden, "The applicant may not sign for this business"},
	"registry-unavailable":   {http.StatusServiceUnavailable, "The national registry cannot be reached; try again later"},
	"notification-failed":    {http.StatusServiceUnavailable, "The one-time code could not be sent; try again later"},
	"idempotency-conflict":   {http.StatusConflict, "The Idempotency-Key was used for a different request"},
	"not-found":              {http.StatusNotFound, "No such resource"}, // as api.WithProblems answers an unknown path
	"wrong-state":            {http.StatusConflict, "The enrollment is not in a state that allows this"},
	"wrong-code":             {http.StatusUnprocessableEntity, "The one-time code is wrong"},
	"code-expired":           {http.StatusGone, "The one-time code has expired"},
	"enrollment-locked":      {http.StatusLocked, "Too many wrong codes: the enrollment is locked"},
	"enrollment-expired":     {http.StatusGone, "The enrollment has lapsed"},
	"issuance-failed":        {http.StatusUnprocessableEntity, "The CA refused to issue the certificate"},
	"rate-limited":           {http.StatusTooManyRequests, "Too many requests; slow down"},
	"unauthorized":           {http.StatusUnauthorized, "The signed request does not verify"},
	"stale-request":          {http.StatusUnauthorized, "The signed request is too old or from the future"},
	"replayed-request":       {http.StatusConflict, "This signed request was already used"},
	"not-an-officer":         {http.StatusForbidden, "The signer is not an active RA officer of this CA"},
	"ca-officer-required":    {http.StatusForbidden, "A CA certificate is revoked by two CA officers; the signer is not a CA officer"},
	"offline-issuer":         {http.StatusUnprocessableEntity, "The certificate's issuer is an offline CA: it is revoked on that CA's CRL, at a ceremony"},
	"certificate-not-valid":  {http.StatusForbidden, "The signer's certificate is not valid now"},
	"certificate-revoked":    {http.StatusForbidden, "The signer's certificate is revoked"},
	"already-decided":        {http.StatusConflict, "This officer already decided on this enrollment"},
	"own-enrollment":         {http.StatusForbidden, "An officer may not decide on their own enrollment"},
	"codes-exhausted":        {http.StatusConflict, "No more one-time codes are sent for this enrollment"},
	"already-revoked":        {http.StatusConflict, "The certificate is already revoked"},
	"certificate-not-found":  {http.StatusNotFound, "No such certificate"},
	"subject-not-found":      {http.StatusNotFound, "No such person or business"},
	"issuer-retired":         {http.StatusConflict, "The certificate's issuing CA is retired: it revokes nothing more"},
	"issuer-unavailable":     {http.StatusServiceUnavailable, "The certificate's issuing CA is not in service here; try again later"},
	"not-renewable":          {http.StatusConflict, "The certificate cannot be renewed; enroll instead"},
	"identity-too-old":       {http.StatusConflict, "The identity behind the certificate was proven too long ago to renew; enroll instead"},
	"already-renewed":        {http.StatusConflict, "The certificate was already renewed"},
	"invalid-event":          {http.StatusBadRequest, "The registry event is malformed"},
	"event-conflict":         {http.StatusConflict, "An event with this id was received with another content"},
	"registry-events-off":    {http.StatusNotFound, "This RA accepts no registry events (no registry key is configured)"},
	"event-incomplete":       {http.StatusServiceUnavailable, "The event is recorded, but not all it requires could be done yet; it is carried on"},
}

// refuse makes the *Error of a problem type; an unknown type is a bug.
func refuse(typ, format string, args ...any) *Error {
	p, ok := problems[typ]
	if !ok {
		panic("ra: unknown problem type " + typ)
	}
	return &Error{Status: p.status, Type: typ, Title: p.title, Detail: fmt.Sprintf(format, args...)}
}

// ProblemOf returns the *Error in err's chain, if any.
func ProblemOf(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
