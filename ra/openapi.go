package ra

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 document of the routes Register adds, written
// by hand; openapi_test.go holds it to the routes, the problem types and
// the JSON fields of the request and response types.
//
//go:embed openapi.json
var openAPI []byte

// handleOpenAPI serves the document (GET /api/v1/openapi.json).
func (s *Service) handleOpenAPI(w http.ResponseWriter, r *http.Request) { ServeOpenAPI(w, r) }

// ServeOpenAPI serves the document, for a node that serves the verify role
// without the RA (which otherwise serves it).
func ServeOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(openAPI)
}
