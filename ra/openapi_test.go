package ra

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sanadpki/sanad/internal/api"
	"github.com/sanadpki/sanad/ra/jwsauth"
)

// openAPIDoc is as much of an OpenAPI 3.1 document as the tests check.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Parameters map[string]openAPIParameter `json:"parameters"`
		Responses  map[string]openAPIResponse  `json:"responses"`
		Schemas    map[string]openAPISchema    `json:"schemas"`
	} `json:"components"`
}

type openAPIOperation struct {
	Parameters []openAPIParameter         `json:"parameters"`
	Responses  map[string]openAPIResponse `json:"responses"`
}

type openAPIParameter struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

type openAPIResponse struct {
	Ref     string                     `json:"$ref"`
	Content map[string]json.RawMessage `json:"content"`
}

type openAPISchema struct {
	Ref        string                     `json:"$ref"`
	Required   []string                   `json:"required"`
	Properties map[string]json.RawMessage `json:"properties"`
	AllOf      []openAPISchema            `json:"allOf"`
	// Problem only.
	ProblemTypes map[string]struct {
		Status int    `json:"status"`
		Title  string `json:"title"`
	} `json:"x-problem-types"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json is OpenAPI %q, not 3.x", doc.OpenAPI)
	}
	return doc
}

// operations returns the document's operations by "METHOD /path", the form
// of a ServeMux pattern.
func (doc openAPIDoc) operations(t *testing.T) map[string]openAPIOperation {
	t.Helper()
	ops := map[string]openAPIOperation{}
	for path, item := range doc.Paths {
		for key, raw := range item {
			method := strings.ToUpper(key)
			if !slices.Contains([]string{"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}, method) {
				continue // summary, description, parameters, servers
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			ops[method+" "+path] = op
		}
	}
	return ops
}

// registeredRoutes reads the patterns that Register hands to its mux from
// the source, so that no list of routes is kept twice. Every pattern must
// be a string literal passed to mux.Handle or mux.HandleFunc, and the mux
// used for nothing else (not handed on to a helper this reader would not
// follow): anything else fails the test rather than going unseen.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var register *ast.FuncDecl
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if ok && fn.Name.Name == "Register" && fn.Recv != nil && receiverType(fn) == "Service" {
				register = fn
			}
		}
	}
	if register == nil || len(register.Type.Params.List) != 1 || len(register.Type.Params.List[0].Names) != 1 {
		t.Fatal("no (*Service).Register(mux) among the package's files")
	}
	mux := register.Type.Params.List[0].Names[0].Name
	var patterns []string
	handled := map[*ast.Ident]bool{}
	ast.Inspect(register.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		recv, ok := sel.X.(*ast.Ident)
		if !ok || recv.Name != mux {
			return true
		}
		pos := fset.Position(call.Pos())
		if sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc" || len(call.Args) != 2 {
			t.Fatalf("%s: Register calls %s.%s; this test reads only Handle and HandleFunc", pos, mux, sel.Sel.Name)
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			t.Fatalf("%s: a route pattern that is not a string literal; keep patterns literal so that this test sees them", pos)
		}
		p, err := strconv.Unquote(lit.Value)
		if err != nil {
			t.Fatal(err)
		}
		patterns = append(patterns, p)
		handled[recv] = true
		return true
	})
	ast.Inspect(register.Body, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && id.Name == mux && !handled[id] {
			t.Fatalf("%s: Register uses %s other than to call Handle or HandleFunc; routes added that way would escape this test", fset.Position(id.Pos()), mux)
		}
		return true
	})
	return patterns
}

func receiverType(fn *ast.FuncDecl) string {
	typ := fn.Recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

var pathParam = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// TestOpenAPIRoutes: the document's operations are exactly the routes
// Register adds, each path parameter is declared, and every error response
// is a problem document.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	ops := doc.operations(t)
	routes := registeredRoutes(t)
	if len(routes) == 0 {
		t.Fatal("Register adds no routes")
	}

	// What the source says is what Register really does: each pattern,
	// asked of a mux Register filled, is the one that answers.
	mux := http.NewServeMux()
	(&Service{}).Register(mux)
	for _, p := range routes {
		method, path, _ := strings.Cut(p, " ")
		req := httptest.NewRequest(method, pathParam.ReplaceAllString(path, "x"), nil)
		if _, got := mux.Handler(req); got != p {
			t.Errorf("route %q read from Register's source is not registered (a request for it finds %q)", p, got)
		}
	}

	for _, p := range routes {
		if _, ok := ops[p]; !ok {
			t.Errorf("Register adds %s, which openapi.json does not describe", p)
		}
	}
	for p := range ops {
		if !slices.Contains(routes, p) {
			t.Errorf("openapi.json describes %s, which Register does not add", p)
		}
	}

	for p, op := range ops {
		_, path, _ := strings.Cut(p, " ")
		want := map[string]bool{}
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			want[m[1]] = true
		}
		got := map[string]bool{}
		for _, prm := range op.Parameters {
			if prm.Ref != "" {
				var ok bool
				if prm, ok = doc.Components.Parameters[strings.TrimPrefix(prm.Ref, "#/components/parameters/")]; !ok {
					t.Errorf("%s: parameter %s does not resolve", p, prm.Ref)
					continue
				}
			}
			if prm.In == "path" {
				got[prm.Name] = true
			}
		}
		if !maps.Equal(want, got) {
			t.Errorf("%s: path parameters declared %v, in the path %v", p, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
		if len(op.Responses) == 0 {
			t.Errorf("%s: no responses", p)
		}
		for code, r := range op.Responses {
			if r.Ref != "" {
				var ok bool
				if r, ok = doc.Components.Responses[strings.TrimPrefix(r.Ref, "#/components/responses/")]; !ok {
					t.Errorf("%s %s: response %s does not resolve", p, code, r.Ref)
					continue
				}
			}
			if code >= "400" || code == "default" {
				if _, ok := r.Content["application/problem+json"]; !ok || len(r.Content) != 1 {
					t.Errorf("%s %s: an error response is application/problem+json alone, not %v", p, code, slices.Sorted(maps.Keys(r.Content)))
				}
			}
		}
	}
}

// problemsOutsideTable finds the problems the package writes without going
// through the table: api.NewProblem(status, "name", "title", …) calls,
// with their titles.
func problemsOutsideTable(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "NewProblem" {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "api" {
				return true
			}
			if len(call.Args) < 3 {
				t.Fatalf("%s: api.NewProblem with %d arguments", fset.Position(call.Pos()), len(call.Args))
			}
			typ, ok1 := call.Args[1].(*ast.BasicLit)
			title, ok2 := call.Args[2].(*ast.BasicLit)
			if !ok1 || !ok2 {
				return true // the table's own (fail passes e.Type, e.Title)
			}
			tv, err1 := strconv.Unquote(typ.Value)
			ti, err2 := strconv.Unquote(title.Value)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: api.NewProblem with a type or title that is not a string", fset.Position(call.Pos()))
			}
			out[tv] = ti
			return true
		})
	}
	return out
}

// TestOpenAPIProblemTypes: the Problem schema's type enum and its
// x-problem-types (status and title per type) are exactly the problems the
// RA answers with: the table of errors.go, and the few fail writes itself.
func TestOpenAPIProblemTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	schema, ok := doc.Components.Schemas["Problem"]
	if !ok {
		t.Fatal("openapi.json has no Problem schema")
	}
	var typ struct {
		Enum []string `json:"enum"`
	}
	if err := json.Unmarshal(schema.Properties["type"], &typ); err != nil || len(typ.Enum) == 0 {
		t.Fatalf("Problem.type has no enum: %v", err)
	}
	want := map[string]string{} // name → title
	for name, p := range problems {
		want[name] = p.title
	}
	for name, title := range problemsOutsideTable(t) {
		if _, dup := want[name]; dup {
			t.Errorf("problem type %s is both in the table and written directly", name)
		}
		want[name] = title
	}

	enum := map[string]bool{}
	for _, u := range typ.Enum {
		name, ok := strings.CutPrefix(u, api.ProblemTypeBase)
		if !ok {
			t.Errorf("problem type %q does not start with %s", u, api.ProblemTypeBase)
		}
		enum[name] = true
	}
	for name := range want {
		if !enum[name] {
			t.Errorf("problem type %s is missing from openapi.json's Problem.type enum", name)
		}
		if _, ok := schema.ProblemTypes[name]; !ok {
			t.Errorf("problem type %s is missing from openapi.json's x-problem-types", name)
		}
	}
	for name := range enum {
		if _, ok := want[name]; !ok {
			t.Errorf("openapi.json's Problem.type enum lists %s, which the RA never answers", name)
		}
	}
	for name, got := range schema.ProblemTypes {
		title, ok := want[name]
		switch {
		case !ok:
			t.Errorf("openapi.json's x-problem-types lists %s, which the RA never answers", name)
		case got.Title != title:
			t.Errorf("problem %s: title %q in openapi.json, %q in the code", name, got.Title, title)
		}
		if p, ok := problems[name]; ok && got.Status != p.status {
			t.Errorf("problem %s: status %d in openapi.json, %d in the code", name, got.Status, p.status)
		}
	}
}

// jsonFields returns the JSON member names of struct type typ (embedded
// structs' promoted), each with whether it is always present (no omitempty
// or omitzero).
func jsonFields(typ reflect.Type) map[string]bool {
	out := map[string]bool{}
	for f := range typ.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			maps.Copy(out, jsonFields(f.Type))
			continue
		}
		if name == "" {
			name = f.Name
		}
		optional := slices.Contains(strings.Split(opts, ","), "omitempty") || slices.Contains(strings.Split(opts, ","), "omitzero")
		out[name] = !optional
	}
	return out
}

// properties returns a schema's members (allOf parts and $refs followed)
// with whether each is required.
func (doc openAPIDoc) properties(t *testing.T, s openAPISchema) map[string]bool {
	t.Helper()
	if s.Ref != "" {
		name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
		ref, ok := doc.Components.Schemas[name]
		if !ok {
			t.Fatalf("schema %s does not resolve", s.Ref)
		}
		return doc.properties(t, ref)
	}
	out := map[string]bool{}
	for _, part := range s.AllOf {
		maps.Copy(out, doc.properties(t, part))
	}
	for name := range s.Properties {
		out[name] = slices.Contains(s.Required, name)
	}
	for _, name := range s.Required {
		if _, ok := s.Properties[name]; !ok && len(s.AllOf) == 0 {
			t.Errorf("required member %s is not among the properties", name)
		}
	}
	return out
}

// TestOpenAPISchemas: each request and response type's JSON members are
// its schema's properties, both ways, and the members always present (no
// omitempty) are the schema's required ones.
func TestOpenAPISchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	for name, typ := range map[string]reflect.Type{
		"EnrollRequest":   reflect.TypeFor[EnrollRequest](),
		"Applicant":       reflect.TypeFor[Applicant](),
		"View":            reflect.TypeFor[View](),
		"QueueItem":       reflect.TypeFor[QueueItem](),
		"EvidenceView":    reflect.TypeFor[EvidenceView](),
		"Revocation":      reflect.TypeFor[Revocation](),
		"CertificateView": reflect.TypeFor[CertificateView](),
		"SignedAction":    reflect.TypeFor[jwsauth.Action](),
	} {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("openapi.json has no schema %s (Go type %s)", name, typ)
			continue
		}
		got, want := doc.properties(t, schema), jsonFields(typ)
		for field, always := range want {
			required, ok := got[field]
			switch {
			case !ok:
				t.Errorf("%s.%s (Go %s) is missing from openapi.json", name, field, typ)
			case required != always:
				t.Errorf("%s.%s: required %v in openapi.json, but the Go field is always present: %v", name, field, required, always)
			}
		}
		for field := range got {
			if _, ok := want[field]; !ok {
				t.Errorf("openapi.json's %s has %s, which Go type %s does not", name, field, typ)
			}
		}
	}
}

// TestOpenAPIServed: GET /api/v1/openapi.json answers the embedded
// document as application/json.
func TestOpenAPIServed(t *testing.T) {
	mux := http.NewServeMux()
	(&Service{}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || string(body) != string(openAPI) {
		t.Fatalf("GET /api/v1/openapi.json: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	if !json.Valid(body) {
		t.Fatal("the served document is not JSON")
	}
}
