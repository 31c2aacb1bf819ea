// Package api is the HTTP plumbing every Sanad role shares: RFC 9457 problem
// documents with stable type URIs, the operator endpoints (/healthz, /readyz,
// /metrics), request metrics and the server's start and graceful stop.
//
// Routing uses net/http's ServeMux patterns. Domain packages map their own
// errors to problems through Problem values; this package never knows a
// domain rule. It never logs a request's client address or body: OCSP and
// enrollment requests reveal who is checking or enrolling whom.
package api
