package ra

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
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
	"time"

	"github.com/sanadpki/sanad/internal/api"
	"github.com/sanadpki/sanad/ra/jwsauth"
	"github.com/sanadpki/sanad/verify"
	"github.com/sanadpki/sanad/verify/endpoint"
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

// routeSource is a type whose Register method adds routes the document
// describes: dir is its package's directory, recv the receiver type, and
// register that method on a value whose Register needs nothing else.
type routeSource struct {
	dir, recv string
	register  func(*http.ServeMux)
}

// routeSources are the RA's routes and the verify role's POST
// /api/v1/verify: another role serves it, but this is the one document the
// deployment serves, so it describes both.
func routeSources() []routeSource {
	return []routeSource{
		{".", "Service", (&Service{}).Register},
		// Register only takes the method value; the Verifier is not used.
		{"../verify/endpoint", "Handler", endpoint.New(nil, 1, 1, slog.New(slog.DiscardHandler)).Register},
	}
}

// parseDir parses the non-test Go files of dir.
func parseDir(t *testing.T, fset *token.FileSet, dir string) []*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	return files
}

// registeredRoutes reads the patterns that (*recv).Register in the package
// of dir hands to its mux from the source, so that no list of routes is
// kept twice. Every pattern must be a string literal passed to mux.Handle
// or mux.HandleFunc, and the mux used for nothing else (not handed on to a
// helper this reader would not follow): anything else fails the test
// rather than going unseen.
func registeredRoutes(t *testing.T, dir, recv string) []string {
	t.Helper()
	fset := token.NewFileSet()
	var register *ast.FuncDecl
	for _, f := range parseDir(t, fset, dir) {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if ok && fn.Name.Name == "Register" && fn.Recv != nil && receiverType(fn) == recv {
				register = fn
			}
		}
	}
	if register == nil || len(register.Type.Params.List) != 1 || len(register.Type.Params.List[0].Names) != 1 {
		t.Fatalf("no (*%s).Register(mux) among the files of %s", recv, dir)
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

// TestOpenAPIRoutes: the document's operations are exactly the routes the
// Register methods of routeSources add, each path parameter is declared,
// and every error response is a problem document.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	ops := doc.operations(t)
	var routes []string
	for _, src := range routeSources() {
		read := registeredRoutes(t, src.dir, src.recv)
		if len(read) == 0 {
			t.Fatalf("(*%s).Register in %s adds no routes", src.recv, src.dir)
		}

		// What the source says is what Register really does: each
		// pattern, asked of a mux Register filled, is the one that answers.
		mux := http.NewServeMux()
		src.register(mux)
		for _, p := range read {
			method, path, _ := strings.Cut(p, " ")
			req := httptest.NewRequest(method, pathParam.ReplaceAllString(path, "x"), nil)
			if _, got := mux.Handler(req); got != p {
				t.Errorf("route %q read from the source of (*%s).Register in %s is not registered (a request for it finds %q)", p, src.recv, src.dir, got)
			}
			if slices.Contains(routes, p) {
				t.Errorf("route %q is added by two Register methods", p)
			}
		}
		routes = append(routes, read...)
	}

	for _, p := range routes {
		if _, ok := ops[p]; !ok {
			t.Errorf("Register adds %s, which openapi.json does not describe", p)
		}
	}
	for p := range ops {
		if !slices.Contains(routes, p) {
			t.Errorf("openapi.json describes %s, which no Register adds", p)
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

// writtenProblem is a problem type's status and title as a package
// writes it.
type writtenProblem struct {
	status int
	title  string
}

// problemsOutsideTable finds the problems the package of dir writes
// without going through the RA's table, with their status and title:
// api.NewProblem(status, "name", "title", …) calls, and composite
// literals with name: "…" and title: "…" (verify/endpoint keeps a refusal
// so until it writes it). A NewProblem whose type is not a literal writes
// one of those (or, in the RA, of the table): it is not read.
func problemsOutsideTable(t *testing.T, dir string) map[string]writtenProblem {
	t.Helper()
	fset := token.NewFileSet()
	out := map[string]writtenProblem{}
	add := func(pos token.Pos, status ast.Expr, name, title string) {
		code, ok := httpStatus(status)
		if !ok {
			t.Fatalf("%s: problem %s with a status this test cannot read; give it as an http.Status constant or an integer", fset.Position(pos), name)
		}
		p := writtenProblem{code, title}
		if have, ok := out[name]; ok && have != p {
			t.Errorf("%s: problem %s written as %d %q here, as %d %q elsewhere in %s", fset.Position(pos), name, code, title, have.status, have.title, dir)
		}
		out[name] = p
	}
	for _, f := range parseDir(t, fset, dir) {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "NewProblem" {
					return true
				}
				if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "api" {
					return true
				}
				if len(n.Args) < 3 {
					t.Fatalf("%s: api.NewProblem with %d arguments", fset.Position(n.Pos()), len(n.Args))
				}
				name, ok1 := stringLit(n.Args[1])
				title, ok2 := stringLit(n.Args[2])
				if !ok1 || !ok2 {
					return true // the table's own (fail passes e.Type, e.Title), or a literal read below
				}
				add(n.Pos(), n.Args[0], name, title)
			case *ast.CompositeLit:
				fields := map[string]ast.Expr{}
				for _, elt := range n.Elts {
					if kv, ok := elt.(*ast.KeyValueExpr); ok {
						if key, ok := kv.Key.(*ast.Ident); ok {
							fields[key.Name] = kv.Value
						}
					}
				}
				name, ok1 := stringLit(fields["name"])
				title, ok2 := stringLit(fields["title"])
				if ok1 && ok2 {
					add(n.Pos(), fields["status"], name, title)
				}
			}
			return true
		})
	}
	return out
}

// stringLit is the value of a string literal.
func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// httpStatus is the value of a status written as an integer literal or as
// a net/http constant, whose name is Status and its StatusText in one word.
func httpStatus(e ast.Expr) (int, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		n, err := strconv.Atoi(e.Value)
		return n, e.Kind == token.INT && err == nil
	case *ast.SelectorExpr:
		if pkg, ok := e.X.(*ast.Ident); !ok || pkg.Name != "http" {
			return 0, false
		}
		oneWord := strings.NewReplacer(" ", "", "-", "", "'", "")
		for code := 100; code < 600; code++ {
			if text := http.StatusText(code); text != "" && "Status"+oneWord.Replace(text) == e.Sel.Name {
				return code, true
			}
		}
	}
	return 0, false
}

// TestOpenAPIProblemTypes: the Problem schema's type enum and its
// x-problem-types (status and title per type) are exactly the problems the
// documented routes answer with: the RA's table in errors.go, the few
// fail writes itself, and those the other routeSources write, which must
// agree with the RA's where they share a type.
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
	want := map[string]writtenProblem{}
	for name, p := range problems {
		want[name] = writtenProblem{p.status, p.title}
	}
	for _, src := range routeSources() {
		for name, p := range problemsOutsideTable(t, src.dir) {
			have, ok := want[name]
			switch {
			case ok && src.dir == ".":
				t.Errorf("problem type %s is both in the table and written directly", name)
			case ok && have != p:
				t.Errorf("problem type %s: %d %q in %s, %d %q in the RA; one type has one status and title", name, p.status, p.title, src.dir, have.status, have.title)
			case !ok:
				want[name] = p
			}
		}
	}

	// What the catch-all answers on every role: an unknown path, a method
	// the path does not take.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/openapi.json", func(http.ResponseWriter, *http.Request) {})
	for _, req := range []*http.Request{httptest.NewRequest(http.MethodGet, "/api/v1/nope", nil), httptest.NewRequest(http.MethodDelete, "/api/v1/openapi.json", nil)} {
		rec := httptest.NewRecorder()
		api.WithProblems(mux).ServeHTTP(rec, req)
		var p struct {
			Type, Title string
			Status      int
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("%s %s: %v", req.Method, req.URL, err)
		}
		name, _ := strings.CutPrefix(p.Type, api.ProblemTypeBase)
		if have, ok := want[name]; ok && have != (writtenProblem{p.Status, p.Title}) {
			t.Errorf("problem type %s: %d %q for %s %s, %d %q in the RA; one type has one status and title", name, p.Status, p.Title, req.Method, req.URL, have.status, have.title)
		}
		want[name] = writtenProblem{p.Status, p.Title}
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
			t.Errorf("openapi.json's Problem.type enum lists %s, which no documented route answers", name)
		}
	}
	for name, got := range schema.ProblemTypes {
		p, ok := want[name]
		switch {
		case !ok:
			t.Errorf("openapi.json's x-problem-types lists %s, which no documented route answers", name)
		case got.Title != p.title:
			t.Errorf("problem %s: title %q in openapi.json, %q in the code", name, got.Title, p.title)
		case got.Status != p.status:
			t.Errorf("problem %s: status %d in openapi.json, %d in the code", name, got.Status, p.status)
		}
	}
}

// goMember is one JSON member of a Go type: whether it is always present
// (no omitempty or omitzero), and its Go type.
type goMember struct {
	always bool
	typ    reflect.Type
}

// jsonFields returns the JSON members of struct type typ, embedded
// structs' promoted.
func jsonFields(typ reflect.Type) map[string]goMember {
	out := map[string]goMember{}
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
		options := strings.Split(opts, ",")
		optional := slices.Contains(options, "omitempty") || slices.Contains(options, "omitzero")
		out[name] = goMember{always: !optional, typ: f.Type}
	}
	return out
}

// schemaMember is one property of a schema: whether it is required, and
// its schema.
type schemaMember struct {
	required bool
	schema   json.RawMessage
}

// properties returns a schema's members (allOf parts and $refs followed).
func (doc openAPIDoc) properties(t *testing.T, s openAPISchema) map[string]schemaMember {
	t.Helper()
	if s.Ref != "" {
		name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
		ref, ok := doc.Components.Schemas[name]
		if !ok {
			t.Fatalf("schema %s does not resolve", s.Ref)
		}
		return doc.properties(t, ref)
	}
	out := map[string]schemaMember{}
	for _, part := range s.AllOf {
		maps.Copy(out, doc.properties(t, part))
	}
	for name, raw := range s.Properties {
		out[name] = schemaMember{required: slices.Contains(s.Required, name), schema: raw}
	}
	for _, name := range s.Required {
		if _, ok := s.Properties[name]; !ok && len(s.AllOf) == 0 {
			t.Errorf("required member %s is not among the properties", name)
		}
	}
	return out
}

// TestOpenAPISchemas: each request and response type's JSON members are
// its schema's properties, both ways; the members always present (no
// omitempty or omitzero) are the schema's required ones; and the members
// encoding/json writes in a form of its own are described so: a time.Time
// is an RFC 3339 date-time, a []byte is base64.
func TestOpenAPISchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	for name, typ := range map[string]reflect.Type{
		"EnrollRequest":       reflect.TypeFor[EnrollRequest](),
		"Applicant":           reflect.TypeFor[Applicant](),
		"View":                reflect.TypeFor[View](),
		"QueueItem":           reflect.TypeFor[QueueItem](),
		"EvidenceView":        reflect.TypeFor[EvidenceView](),
		"Revocation":          reflect.TypeFor[Revocation](),
		"PendingRevocation":   reflect.TypeFor[PendingRevocation](),
		"Queue":               reflect.TypeFor[OfficerQueue](),
		"CertificateView":     reflect.TypeFor[CertificateView](),
		"RegistryEvent":       reflect.TypeFor[RegistryEvent](),
		"RegistryEventResult": reflect.TypeFor[RegistryEventResult](),
		"RegistryEventView":   reflect.TypeFor[RegistryEventView](),
		"SubjectView":         reflect.TypeFor[SubjectView](),
		"SignedAction":        reflect.TypeFor[jwsauth.Action](),
		"VerifyRequest":       reflect.TypeFor[endpoint.Request](),
		"VerifyResult":        reflect.TypeFor[verify.Result](),
		"VerifyReport":        reflect.TypeFor[verify.Report](),
		"VerifyCheck":         reflect.TypeFor[verify.Check](),
		"VerifySigner":        reflect.TypeFor[verify.Signer](),
		"VerifyChainCert":     reflect.TypeFor[verify.ChainCert](),
	} {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("openapi.json has no schema %s (Go type %s)", name, typ)
			continue
		}
		got, want := doc.properties(t, schema), jsonFields(typ)
		for field, m := range want {
			p, ok := got[field]
			if !ok {
				t.Errorf("%s.%s (Go %s) is missing from openapi.json", name, field, typ)
				continue
			}
			if p.required != m.always {
				t.Errorf("%s.%s: required %v in openapi.json, but the Go field is always present: %v", name, field, p.required, m.always)
			}
			var prop struct {
				Format          string `json:"format"`
				ContentEncoding string `json:"contentEncoding"`
			}
			if err := json.Unmarshal(p.schema, &prop); err != nil {
				t.Fatalf("%s.%s: %v", name, field, err)
			}
			switch m.typ {
			case reflect.TypeFor[time.Time](), reflect.TypeFor[*time.Time]():
				if prop.Format != "date-time" {
					t.Errorf("%s.%s is a Go %s, but not a date-time in openapi.json", name, field, m.typ)
				}
			case reflect.TypeFor[[]byte]():
				if prop.ContentEncoding != "base64" {
					t.Errorf("%s.%s is a Go []byte, which encoding/json writes in base64, but its contentEncoding is not base64 in openapi.json", name, field)
				}
			}
		}
		for field := range got {
			if _, ok := want[field]; !ok {
				t.Errorf("openapi.json's %s has %s, which Go type %s does not", name, field, typ)
			}
		}
	}
}

// constBlock returns the values of the const block of the package in dir
// that declares name: a set of answers, as package verify keeps them
// (Indication, SubIndication, check results, formats, chain sources).
func constBlock(t *testing.T, dir, name string) []string {
	t.Helper()
	fset := token.NewFileSet()
	for _, f := range parseDir(t, fset, dir) {
		for _, d := range f.Decls {
			gen, ok := d.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST || !slices.ContainsFunc(gen.Specs, func(s ast.Spec) bool {
				return slices.ContainsFunc(s.(*ast.ValueSpec).Names, func(id *ast.Ident) bool { return id.Name == name })
			}) {
				continue
			}
			var values []string
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					var v string
					if i < len(vs.Values) {
						v, ok = stringLit(vs.Values[i])
					}
					if i >= len(vs.Values) || !ok {
						t.Fatalf("%s: constant %s is not a string literal; this test reads literals", fset.Position(id.Pos()), id.Name)
					}
					values = append(values, v)
				}
			}
			return values
		}
	}
	t.Fatalf("no constant %s in %s", name, dir)
	return nil
}

// TestOpenAPIVerifyEnums: the verify schemas' enums are exactly the values
// of package verify's constants, read from its source.
func TestOpenAPIVerifyEnums(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, c := range []struct{ schema, property, constant string }{
		{"VerifyResult", "format", "FormatCMS"},
		{"VerifyResult", "indication", "TotalPassed"},
		{"VerifyResult", "sub_indication", "FormatFailure"},
		{"VerifyReport", "format", "FormatCMS"},
		{"VerifyReport", "indication", "TotalPassed"},
		{"VerifyReport", "sub_indication", "FormatFailure"},
		{"VerifyCheck", "result", "Passed"},
		{"VerifyChainCert", "source", "sourceSignature"},
	} {
		schema, ok := doc.Components.Schemas[c.schema]
		if !ok {
			t.Errorf("openapi.json has no schema %s", c.schema)
			continue
		}
		var prop struct {
			Enum []string `json:"enum"`
		}
		if err := json.Unmarshal(schema.Properties[c.property], &prop); err != nil {
			t.Errorf("%s.%s: %v", c.schema, c.property, err)
			continue
		}
		want := constBlock(t, "../verify", c.constant)
		for _, v := range want {
			if !slices.Contains(prop.Enum, v) {
				t.Errorf("%s.%s: package verify answers %s (a constant with %s), which the enum in openapi.json lacks", c.schema, c.property, v, c.constant)
			}
		}
		for _, v := range prop.Enum {
			if !slices.Contains(want, v) {
				t.Errorf("%s.%s: the enum in openapi.json lists %s, which is none of package verify's constants with %s", c.schema, c.property, v, c.constant)
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
