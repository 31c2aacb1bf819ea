package ra_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/go-jose/go-jose/v4"

	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/ra"
	"github.com/sanadpki/sanad/ra/jwsauth"
)

// hostileRequest is one request an attacker (or a broken client) might
// send, and the refusal the RA owes it.
type hostileRequest struct {
	name    string
	method  string
	path    string
	header  http.Header
	body    []byte
	status  int
	problem string // the problem type, after urn:sanad:problem:
}

// TestHostileRequests is issue 6's acceptance for hostile input: every
// request of the table is refused with a 4xx RFC 9457 problem document of
// the expected stable type, and leaves the database (every row of every
// table) and the one-time code outbox as they were, on each database.
func TestHostileRequests(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			fx := newRAFixture(t, f, driver)
			rows := hostileRequests(t, fx)
			if len(rows) < 40 {
				t.Fatalf("%d hostile requests; the acceptance asks for at least 40", len(rows))
			}
			checkCoverage(t, fx, rows)

			before := fx.state(t)
			if files := fx.outboxFiles(t); len(files) != 0 {
				t.Fatalf("outbox before the hostile requests: %q", files)
			}
			prev := before
			for _, row := range rows {
				fx.checkRefused(t, row)
				// Each request is checked on its own, so that one that writes
				// is named; the whole table is compared again below.
				now := fx.state(t)
				if d := prev.diff(now); len(d) > 0 {
					t.Errorf("%s: the database changed: %s\n%s", row.name, strings.Join(d, "; "), describe(row))
				}
				if files := fx.outboxFiles(t); len(files) != 0 {
					t.Errorf("%s: a one-time code was sent: %q", row.name, files)
					for _, name := range files {
						if err := os.Remove(filepath.Join(fx.outbox, name)); err != nil {
							t.Fatal(err)
						}
					}
				}
				prev = now
			}
			after := fx.state(t)
			if b, a := before.counts(), after.counts(); !maps.Equal(b, a) {
				t.Errorf("row counts before the %d hostile requests: %v\nafter: %v", len(rows), b, a)
			}
			if d := before.diff(after); len(d) > 0 {
				t.Errorf("the database after %d hostile requests: %s", len(rows), strings.Join(d, "; "))
			}
		})
	}
}

// checkRefused sends row and checks the answer is the problem it names.
func (fx *raFixture) checkRefused(t *testing.T, row hostileRequest) {
	t.Helper()
	code, header, body := fx.send(t, row.method, row.path, row.header, row.body)
	var p struct {
		Type   *string  `json:"type"`
		Title  *string  `json:"title"`
		Status *float64 `json:"status"`
	}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	perr := json.Unmarshal(body, &p)
	var wrong []string
	if code != row.status {
		wrong = append(wrong, fmt.Sprintf("status %d, want %d", code, row.status))
	}
	if code < 400 || code > 499 {
		wrong = append(wrong, "not a 4xx")
	}
	if mt != "application/problem+json" {
		wrong = append(wrong, fmt.Sprintf("Content-Type %q", header.Get("Content-Type")))
	}
	switch {
	case perr != nil:
		wrong = append(wrong, fmt.Sprintf("the body is not a JSON object: %v", perr))
	case p.Type == nil || *p.Type != "urn:sanad:problem:"+row.problem:
		got := "(none)"
		if p.Type != nil {
			got = *p.Type
		}
		wrong = append(wrong, fmt.Sprintf("type %s, want urn:sanad:problem:%s", got, row.problem))
	}
	if perr == nil && (p.Title == nil || *p.Title == "") {
		wrong = append(wrong, "no title")
	}
	if perr == nil && (p.Status == nil || *p.Status != float64(code)) {
		wrong = append(wrong, "the problem's status is not the HTTP status")
	}
	if len(wrong) > 0 {
		t.Errorf("%s: %s\n%sanswer: %d %s", row.name, strings.Join(wrong, "; "), describe(row), code, clip(body, 300))
	}
}

// pathParams are the {name} segments of a documented path.
var pathParams = regexp.MustCompile(`\{[^}]*\}`)

// checkCoverage requires every operation of the served OpenAPI document
// that the RA serves and that takes input (parameters, a body or a signed
// request) to be attacked by at least three rows, and every row to reach
// one of them. The document also describes the verify role's route, whose
// hostile input verify/endpoint's own table covers.
func checkCoverage(t *testing.T, fx *raFixture, rows []hostileRequest) {
	t.Helper()
	code, raw := fx.do(t, http.MethodGet, "/api/v1/openapi.json", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json: %d %s", code, clip(raw, 200))
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	hits := map[string]int{}
	for _, row := range rows {
		_, pattern := fx.mux.Handler(httptest.NewRequest(row.method, row.path, nil))
		if pattern == "" {
			t.Errorf("%s: %s %s is no route of the RA", row.name, row.method, clip([]byte(row.path), 80))
		}
		hits[pattern]++
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			var o struct {
				Parameters  []json.RawMessage `json:"parameters"`
				RequestBody json.RawMessage   `json:"requestBody"`
				Security    []json.RawMessage `json:"security"`
			}
			if err := json.Unmarshal(op, &o); err != nil || method == "parameters" {
				continue
			}
			if len(o.Parameters) == 0 && o.RequestBody == nil && len(o.Security) == 0 {
				continue // takes no input: nothing to be hostile with
			}
			pattern := strings.ToUpper(method) + " " + path
			req := httptest.NewRequest(strings.ToUpper(method), pathParams.ReplaceAllString(path, "x"), nil)
			if _, served := fx.mux.Handler(req); served != pattern {
				continue // another role's (POST /api/v1/verify): its package has its own hostile table
			}
			if hits[pattern] < 3 {
				t.Errorf("%s: %d hostile requests; want at least 3", pattern, hits[pattern])
			}
		}
	}
}

// hostileRequests is the table. Most rows would be accepted but for the
// one thing wrong with them, so that a check that goes missing shows as a
// 2xx and a write.
func hostileRequests(t *testing.T, fx *raFixture) []hostileRequest {
	t.Helper()
	now := time.Now()
	csr := csrPEM(t, newKey(t))
	valid := func() map[string]any {
		return map[string]any{"profile": "citizen-sign", "applicant": citizen(), "csr": csr}
	}
	validBusiness := func() map[string]any {
		return map[string]any{"profile": "business-seal", "applicant": business(), "csr": csr}
	}
	validJSON := string(mustJSON(t, valid()))
	unknownProfile := mustJSON(t, with(valid(), "profile", "no-such-profile"))

	jsonType := http.Header{"Content-Type": {"application/json"}}
	joseType := http.Header{"Content-Type": {"application/jose"}}
	withKey := func(key string) http.Header {
		return http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {key}}
	}
	auth := func(v string) http.Header { return http.Header{"Authorization": {v}} }

	var rows []hostileRequest
	add := func(name, method, path string, header http.Header, body []byte, status int, problem string) {
		rows = append(rows, hostileRequest{name: name, method: method, path: path, header: header, body: body, status: status, problem: problem})
	}
	enroll := func(name string, body []byte, status int, problem string) {
		add("enroll: "+name, http.MethodPost, "/api/v1/enrollments", jsonType, body, status, problem)
	}
	enrollWith := func(name string, body map[string]any, status int, problem string) {
		enroll(name, mustJSON(t, body), status, problem)
	}

	// Size.
	enroll("body one byte over the limit", pad([]byte(validJSON), ra.MaxRequestBytes+1), 413, "request-too-large")
	enroll("body of 1 MiB", pad([]byte(validJSON), 1<<20), 413, "request-too-large")
	// Exactly at the limit the body is read and parsed whole: the refusal
	// is the profile's, not the size's.
	enroll("body exactly at the limit", pad(unknownProfile, ra.MaxRequestBytes), 422, "unknown-profile")

	// Not one strict JSON object.
	enroll("empty body", nil, 400, "invalid-request")
	enroll("truncated JSON", []byte(validJSON[:len(validJSON)/2]), 400, "invalid-request")
	enroll("bad JSON (single quotes)", []byte(`{'profile':'citizen-sign'}`), 400, "invalid-request")
	enroll("trailing JSON object", []byte(validJSON+` {}`), 400, "invalid-request")
	enroll("trailing garbage", []byte(validJSON+`x`), 400, "invalid-request")
	enroll("JSON array", []byte(`[`+validJSON+`]`), 400, "invalid-request")
	enroll("JSON null", []byte(`null`), 400, "invalid-request")
	enroll("JSON string", []byte(`"citizen-sign"`), 400, "invalid-request")
	enroll("JSON number", []byte(`42`), 400, "invalid-request")
	enroll("byte order mark", []byte("\ufeff"+validJSON), 400, "invalid-request")
	enroll("nesting 30000 deep", []byte(`{"profile":`+strings.Repeat("[", 30000)+strings.Repeat("]", 30000)+`}`), 400, "invalid-request")
	enroll("invalid UTF-8 in a string", []byte(strings.Replace(validJSON, "Aigerim", "Aig\xffrim", 1)), 400, "invalid-request")
	enrollWith("unknown top-level member", with(valid(), "admin", true), 400, "invalid-request")
	enrollWith("unknown member in applicant", with(valid(), "applicant.verified", true), 400, "invalid-request")
	enrollWith("unknown member in representative", with(validBusiness(), "applicant.representative.can_sign", true), 400, "invalid-request")
	enrollWith("profile is a number", with(valid(), "profile", 7), 400, "invalid-request")
	enrollWith("applicant is a string", with(valid(), "applicant", "Aigerim Sadykova"), 400, "invalid-request")
	enrollWith("csr is an object", with(valid(), "csr", map[string]any{"pem": csr}), 400, "invalid-request")

	// Ambiguous JSON: a member given twice, or in another case, means one
	// thing to a proxy or log reader that keeps the first and another to
	// a decoder that keeps the last. Each would be accepted as the second
	// spelling.
	enroll("duplicate member profile", []byte(`{"profile":"no-such-profile",`+validJSON[1:]), 400, "invalid-request")
	enroll("duplicate member in applicant", []byte(strings.Replace(validJSON, `"given_name":"Aigerim"`, `"given_name":"Mallory","given_name":"Aigerim"`, 1)), 400, "invalid-request")
	enroll("member name in upper case", []byte(strings.Replace(validJSON, `"profile":`, `"PROFILE":`, 1)), 400, "invalid-request")

	// Media type.
	add("enroll: Content-Type text/plain", http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"text/plain"}}, []byte(validJSON), 415, "unsupported-media-type")
	add("enroll: no Content-Type", http.MethodPost, "/api/v1/enrollments", nil, []byte(validJSON), 415, "unsupported-media-type")
	add("enroll: form-encoded", http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		[]byte(url.Values{"profile": {"citizen-sign"}, "csr": {csr}}.Encode()), 415, "unsupported-media-type")
	add("enroll: Content-Type application/jsonp", http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/jsonp"}}, []byte(validJSON), 415, "unsupported-media-type")
	add("enroll: malformed Content-Type", http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json; charset"}}, []byte(validJSON), 415, "unsupported-media-type")
	add("enroll: two media types", http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json, text/plain"}}, []byte(validJSON), 415, "unsupported-media-type")
	add("enroll: Content-Type application/problem+json", http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/problem+json"}}, []byte(validJSON), 415, "unsupported-media-type")
	// RFC 8259 §11: JSON has no charset parameter and is UTF-8; a charset
	// is ignored, and the body is judged as UTF-8.
	add("enroll: charset=utf-8, upper-case type", http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"Application/JSON; charset=UTF-8"}}, unknownProfile, 422, "unknown-profile")
	add("enroll: charset=utf-16 with a UTF-16 body", http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json; charset=utf-16"}}, utf16LE(validJSON), 400, "invalid-request")

	// Overlong strings.
	enrollWith("given_name of 129 bytes", with(valid(), "applicant.given_name", strings.Repeat("A", 129)), 400, "invalid-request")
	enrollWith("family_name of 60000 bytes", with(valid(), "applicant.family_name", strings.Repeat("Ж", 30000)), 400, "invalid-request")
	enrollWith("national_id of 33 bytes", with(valid(), "applicant.national_id", strings.Repeat("8", 33)), 400, "invalid-request")
	enrollWith("profile of 65 characters", with(valid(), "profile", strings.Repeat("a", 65)), 400, "invalid-request")
	enrollWith("csr over 32 KiB", with(valid(), "csr", csr+strings.Repeat(" ", 32<<10)), 400, "invalid-request")
	enrollWith("registration_number of 33 bytes", with(validBusiness(), "applicant.registration_number", strings.Repeat("3", 33)), 400, "invalid-request")
	enrollWith("birth_date of 11 bytes", with(valid(), "applicant.birth_date", "1988-03-120"), 400, "invalid-request")

	// Control and format characters.
	enrollWith("NUL in given_name", with(valid(), "applicant.given_name", "Aig\x00erim"), 400, "invalid-request")
	enrollWith("ESC in family_name", with(valid(), "applicant.family_name", "\x1b[31mSadykova"), 400, "invalid-request")
	enrollWith("U+202E in given_name", with(valid(), "applicant.given_name", "Aigerim\u202emived"), 400, "invalid-request")
	enrollWith("U+202E in national_id", with(valid(), "applicant.national_id", "\u202e712844213088"), 400, "invalid-request")
	enrollWith("U+200B in representative's family_name", with(validBusiness(), "applicant.representative.family_name", "Kh\u200ban"), 400, "invalid-request")
	enrollWith("newline in national_id", with(valid(), "applicant.national_id", "880312\n448217"), 400, "invalid-request")
	enrollWith("leading space in national_id", with(valid(), "applicant.national_id", " 880312448217"), 400, "invalid-request")
	enrollWith("NUL in profile", with(valid(), "profile", "citizen-sign\x00"), 400, "invalid-request")
	enroll("lone surrogate in given_name", []byte(strings.Replace(validJSON, `"Aigerim"`, `"Aig\ud800rim"`, 1)), 400, "invalid-request")

	// SQL metacharacters in every string field. Most are refused by the
	// field's syntax; an identifier is refused by its checksum rules; the
	// Idempotency-Key without spaces reaches a (parameterized) query.
	for _, sqli := range []string{`' OR 1=1 --`, `"; DROP TABLE enrollments; --`} {
		for _, c := range []struct {
			field   string
			body    func() map[string]any
			status  int
			problem string
		}{
			{"profile", valid, 400, "invalid-request"},
			{"csr", valid, 422, "invalid-csr"},
			{"applicant.kind", valid, 400, "invalid-request"},
			{"applicant.country", valid, 400, "invalid-request"},
			{"applicant.national_id", valid, 422, "invalid-identifier"},
			{"applicant.given_name", valid, 400, "invalid-request"},
			{"applicant.family_name", valid, 400, "invalid-request"},
			{"applicant.birth_date", valid, 400, "invalid-request"},
			{"applicant.registration_number", validBusiness, 422, "invalid-identifier"},
			{"applicant.representative.national_id", validBusiness, 422, "invalid-identifier"},
			{"applicant.representative.given_name", validBusiness, 400, "invalid-request"},
			{"applicant.representative.country", validBusiness, 400, "invalid-request"},
		} {
			enrollWith(fmt.Sprintf("SQL %q in %s", sqli, c.field), with(c.body(), c.field, sqli), c.status, c.problem)
		}
		add(fmt.Sprintf("enroll: SQL %q in Idempotency-Key", sqli), http.MethodPost, "/api/v1/enrollments", withKey(sqli), []byte(validJSON), 400, "invalid-request")
		add(fmt.Sprintf("proof: SQL %q as the code", sqli), http.MethodPost, "/api/v1/enrollments/"+fx.pending+"/proof", jsonType,
			mustJSON(t, map[string]any{"code": sqli[:min(len(sqli), 16)]}), 400, "invalid-request")
		add(fmt.Sprintf("get: SQL %q as the id", sqli), http.MethodGet, "/api/v1/enrollments/"+url.PathEscape(sqli), nil, nil, 404, "not-found")
		add(fmt.Sprintf("queue: SQL %q as the JWS", sqli), http.MethodGet, "/api/v1/officer/queue", auth("JWS "+sqli), nil, 401, "unauthorized")
	}
	add("enroll: SQL in an Idempotency-Key that reaches the database", http.MethodPost, "/api/v1/enrollments", withKey(`'OR'1'='1';DROP--`), unknownProfile, 422, "unknown-profile")

	// CSRs.
	block, _ := pem.Decode([]byte(csr))
	badSig := bytes.Clone(block.Bytes)
	badSig[len(badSig)-3] ^= 0x40 // inside the ECDSA signature's s
	enrollWith("bad PEM", with(valid(), "csr", "-----BEGIN CERTIFICATE REQUEST-----\n!!notbase64!!\n-----END CERTIFICATE REQUEST-----\n"), 422, "invalid-csr")
	enrollWith("a certificate instead of a CSR", with(valid(), "csr", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fx.officer.cert.Raw}))), 422, "invalid-csr")
	enrollWith("a CSR with a bad signature", with(valid(), "csr", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: badSig}))), 422, "invalid-csr")
	enrollWith("two CSRs", with(valid(), "csr", csr+csrPEM(t, newKey(t))), 422, "invalid-csr")
	enrollWith("a CSR for the CA's own key", with(valid(), "csr", csrPEM(t, fx.caKey)), 422, "invalid-csr")
	enrollWith("a CSR as bare base64", with(valid(), "csr", base64.StdEncoding.EncodeToString(block.Bytes)), 422, "invalid-csr")

	// Person and business fields mixed up, and missing.
	enrollWith("a person with a registration_number", with(valid(), "applicant.registration_number", "32778761"), 400, "invalid-request")
	enrollWith("a person with a representative", with(valid(), "applicant.representative", citizen()), 400, "invalid-request")
	enrollWith("a business with a national_id", with(validBusiness(), "applicant.national_id", "6110148392762"), 400, "invalid-request")
	enrollWith("a business without representative", without(validBusiness(), "applicant.representative"), 400, "invalid-request")
	enrollWith("a business with representative null", with(validBusiness(), "applicant.representative", nil), 400, "invalid-request")
	enrollWith("a business represented by a business", with(validBusiness(), "applicant.representative.kind", "business"), 400, "invalid-request")
	enrollWith("a representative with a representative", with(validBusiness(), "applicant.representative.representative", citizen()), 400, "invalid-request")
	enrollWith("kind in another case", with(valid(), "applicant.kind", "Person"), 400, "invalid-request")
	enrollWith("no kind", without(valid(), "applicant.kind"), 400, "invalid-request")
	enrollWith("a person for a business profile", with(valid(), "profile", "business-seal"), 422, "profile-mismatch")
	enrollWith("a business for a person profile", with(validBusiness(), "profile", "citizen-sign"), 422, "profile-mismatch")
	enroll("empty object", []byte(`{}`), 400, "invalid-request")
	enrollWith("no csr", without(valid(), "csr"), 400, "invalid-request")
	enrollWith("no applicant", without(valid(), "applicant"), 400, "invalid-request")
	enrollWith("no birth_date", without(valid(), "applicant.birth_date"), 400, "invalid-request")
	enrollWith("birth_date 1988-02-30", with(valid(), "applicant.birth_date", "1988-02-30"), 400, "invalid-request")

	// Profiles and countries the RA does not offer.
	enrollWith("unknown profile", with(valid(), "profile", "no-such-profile"), 422, "unknown-profile")
	enrollWith("the root CA profile", with(valid(), "profile", "root"), 422, "unknown-profile")
	enrollWith("the OCSP signer profile", with(valid(), "profile", "ocsp-signer"), 422, "unknown-profile")
	enrollWith("an unsupported country", with(valid(), "applicant.country", "US"), 422, "unsupported-country")

	// Idempotency-Key.
	add("enroll: Idempotency-Key of 129 characters", http.MethodPost, "/api/v1/enrollments", withKey(strings.Repeat("k", 129)), []byte(validJSON), 400, "invalid-request")
	add("enroll: non-ASCII Idempotency-Key", http.MethodPost, "/api/v1/enrollments", withKey("ключ-идемпотентности"), []byte(validJSON), 400, "invalid-request")
	add("enroll: Idempotency-Key with a tab", http.MethodPost, "/api/v1/enrollments", withKey("key\twith-tab"), []byte(validJSON), 400, "invalid-request")

	// Enrollment ids in paths.
	unknownID := strings.Repeat("A", 22)
	for _, c := range []struct{ name, id string }{
		{"encoded ../", "..%2F..%2Fofficer%2Fqueue"},
		{"encoded ..", "%2E%2E"},
		{`encoded ..\`, "..%5C..%5Cetc%5Cpasswd"},
		{"10000 characters", strings.Repeat("A", 10000)},
		{"21 characters", strings.Repeat("A", 21)},
		{"23 characters", strings.Repeat("A", 23)},
		{"a NUL", fx.pending[:21] + "%00"},
		{"the pending id and a quote", fx.pending + "%27"},
		{"an unknown id", unknownID},
	} {
		add("get: id "+c.name, http.MethodGet, "/api/v1/enrollments/"+c.id, nil, nil, 404, "not-found")
		add("proof: id "+c.name, http.MethodPost, "/api/v1/enrollments/"+c.id+"/proof", jsonType, []byte(`{"code":"123456"}`), 404, "not-found")
	}

	// Proof bodies, against the enrollment that waits for its code: none
	// may count as an attempt.
	add("code: unknown enrollment", http.MethodPost, "/api/v1/enrollments/"+unknownID+"/code", nil, nil, 404, "not-found")
	add("code: SQL as the id", http.MethodPost, "/api/v1/enrollments/"+url.PathEscape(`' OR 1=1 --`)+"/code", nil, nil, 404, "not-found")
	add("code: id of 10000 characters", http.MethodPost, "/api/v1/enrollments/"+strings.Repeat("A", 10000)+"/code", nil, nil, 404, "not-found")
	proof := "/api/v1/enrollments/" + fx.pending + "/proof"
	proofBody := func(name string, header http.Header, body []byte, status int, problem string) {
		add("proof: "+name, http.MethodPost, proof, header, body, status, problem)
	}
	proofBody("bad JSON", jsonType, []byte(`{"code":123456`), 400, "invalid-request")
	proofBody("unknown member", jsonType, []byte(`{"code":"123456","attempts":0}`), 400, "invalid-request")
	proofBody("code as a number", jsonType, []byte(`{"code":123456}`), 400, "invalid-request")
	proofBody("empty code", jsonType, []byte(`{"code":""}`), 400, "invalid-request")
	proofBody("code of 17 characters", jsonType, []byte(`{"code":"12345678901234567"}`), 400, "invalid-request")
	proofBody("JSON array", jsonType, []byte(`["123456"]`), 400, "invalid-request")
	proofBody("trailing data", jsonType, []byte(`{"code":"123456"}{"code":"654321"}`), 400, "invalid-request")
	proofBody("Content-Type text/plain", http.Header{"Content-Type": {"text/plain"}}, []byte(`{"code":"123456"}`), 415, "unsupported-media-type")
	proofBody("no Content-Type", nil, []byte(`{"code":"123456"}`), 415, "unsupported-media-type")
	proofBody("body over the limit", jsonType, pad([]byte(`{"code":"123456"}`), ra.MaxRequestBytes+1), 413, "request-too-large")
	proofBody("NUL in the code", jsonType, []byte(`{"code":"12345\u0000"}`), 400, "invalid-request")
	proofBody("U+202E in the code", jsonType, []byte(`{"code":"\u202e654321"}`), 400, "invalid-request")
	add("proof: duplicate member code", http.MethodPost, "/api/v1/enrollments/"+unknownID+"/proof", jsonType, []byte(`{"code":"111111","code":"222222"}`), 400, "invalid-request")

	// Signed requests: garbage, forgeries and misuse.
	sign := func(id identity, a jwsauth.Action, at time.Time) string {
		s, err := jwsauth.Sign(a, id.cert, id.key, at)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	queueAction := jwsauth.Action{Action: jwsauth.ActionQueue, Audience: ra.AudienceQueue}
	serial := jwsauth.SerialHex(fx.officer.cert.SerialNumber)
	holderRevoke := sign(fx.officer, jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: serial, Reason: "keyCompromise", Audience: ra.AudienceRevoke}, now)
	algNone := unsignedJWS(t, fx.officer, "none", queueAction, now)
	hmacForged := unsignedJWS(t, fx.officer, "HS256", queueAction, now)
	jsonSerialized := `{"payload":"e30","protected":"eyJhbGciOiJFUzI1NiJ9","signature":"AAAA"}`
	for _, c := range []struct{ name, jws string }{
		{"empty", ""},
		{"garbage", "garbage"},
		{"three dots of nothing", "..."},
		{"three bad parts", "a.b.c"},
		{"alg none", algNone},
		{"alg none, empty signature", algNone[:strings.LastIndexByte(algNone, '.')+1]},
		{"HS256 keyed with the certificate", hmacForged},
		{"JSON serialization", jsonSerialized},
	} {
		add("queue: JWS "+c.name, http.MethodGet, "/api/v1/officer/queue", auth("JWS "+c.jws), nil, 401, "unauthorized")
		add("actions: JWS "+c.name, http.MethodPost, "/api/v1/officer/actions", joseType, []byte(c.jws), 401, "unauthorized")
		add("revoke: JWS "+c.name, http.MethodPost, "/api/v1/certificates/"+serial+"/revoke", joseType, []byte(c.jws), 401, "unauthorized")
	}
	add("queue: no Authorization", http.MethodGet, "/api/v1/officer/queue", nil, nil, 401, "unauthorized")
	add("queue: empty Authorization", http.MethodGet, "/api/v1/officer/queue", auth(""), nil, 401, "unauthorized")
	add("queue: Bearer instead of JWS", http.MethodGet, "/api/v1/officer/queue", auth("Bearer "+sign(fx.officer, queueAction, now)), nil, 401, "unauthorized")
	add("queue: Authorization over 16 KiB", http.MethodGet, "/api/v1/officer/queue", auth("JWS "+strings.Repeat("A", ra.MaxJWSBytes+1)), nil, 401, "unauthorized")
	add("queue: signed an hour ago", http.MethodGet, "/api/v1/officer/queue", auth("JWS "+sign(fx.officer, queueAction, now.Add(-time.Hour))), nil, 401, "stale-request")
	add("queue: signed for another endpoint", http.MethodGet, "/api/v1/officer/queue", auth("JWS "+holderRevoke), nil, 401, "unauthorized")
	add("queue: signed by a key the RA does not know", http.MethodGet, "/api/v1/officer/queue", auth("JWS "+sign(fx.stranger, queueAction, now)), nil, 403, "not-an-officer")

	show := func(id string) jwsauth.Action {
		return jwsauth.Action{Action: jwsauth.ActionShow, Enrollment: id, Audience: ra.AudienceShow}
	}
	add("show: id encoded ../", http.MethodGet, "/api/v1/officer/enrollments/..%2Fqueue", auth("JWS "+sign(fx.officer, show(fx.pending), now)), nil, 404, "not-found")
	add("show: id of 10000 characters", http.MethodGet, "/api/v1/officer/enrollments/"+strings.Repeat("A", 10000), nil, nil, 404, "not-found")
	add("show: SQL as the id", http.MethodGet, "/api/v1/officer/enrollments/"+url.PathEscape(`' OR 1=1 --`), nil, nil, 404, "not-found")
	add("show: no Authorization", http.MethodGet, "/api/v1/officer/enrollments/"+fx.pending, nil, nil, 401, "unauthorized")
	add("show: JWS garbage", http.MethodGet, "/api/v1/officer/enrollments/"+fx.pending, auth("JWS garbage"), nil, 401, "unauthorized")
	add("show: signed for another enrollment", http.MethodGet, "/api/v1/officer/enrollments/"+fx.pending, auth("JWS "+sign(fx.officer, show(unknownID), now)), nil, 400, "invalid-request")
	add("show: signed by a key the RA does not know", http.MethodGet, "/api/v1/officer/enrollments/"+fx.pending, auth("JWS "+sign(fx.stranger, show(fx.pending), now)), nil, 403, "not-an-officer")

	find := func(subject string) jwsauth.Action {
		return jwsauth.Action{Action: jwsauth.ActionFind, Subject: subject, Audience: ra.AudienceFind}
	}
	const findPath = "/api/v1/officer/subjects"
	add("find: no Authorization", http.MethodGet, findPath, nil, nil, 401, "unauthorized")
	add("find: JWS garbage", http.MethodGet, findPath, auth("JWS garbage"), nil, 401, "unauthorized")
	add("find: an identifier type the RA never writes", http.MethodGet, findPath, auth("JWS "+sign(fx.officer, find("VATKZ-880312448217"), now)), nil, 400, "invalid-request")
	add("find: a show request for the find endpoint", http.MethodGet, findPath,
		auth("JWS "+sign(fx.officer, jwsauth.Action{Action: jwsauth.ActionShow, Enrollment: fx.pending, Audience: ra.AudienceFind}, now)), nil, 400, "invalid-request")
	add("find: a search signed for the show endpoint", http.MethodGet, findPath,
		auth("JWS "+sign(fx.officer, jwsauth.Action{Action: jwsauth.ActionFind, Subject: "IDCKZ-880312448217", Audience: ra.AudienceShow}, now)), nil, 401, "unauthorized")
	add("find: signed by a key the RA does not know", http.MethodGet, findPath, auth("JWS "+sign(fx.stranger, find("IDCKZ-880312448217"), now)), nil, 403, "not-an-officer")

	actions := func(name string, header http.Header, body []byte, status int, problem string) {
		add("actions: "+name, http.MethodPost, "/api/v1/officer/actions", header, body, status, problem)
	}
	approve := func(id string) jwsauth.Action {
		return jwsauth.Action{Action: jwsauth.ActionApprove, Enrollment: id, Audience: ra.AudienceActions}
	}
	actions("Content-Type application/json", jsonType, []byte(sign(fx.officer, approve(fx.pending), now)), 415, "unsupported-media-type")
	actions("Content-Type application/jose+json", http.Header{"Content-Type": {"application/jose+json"}}, []byte(sign(fx.officer, approve(fx.pending), now)), 415, "unsupported-media-type")
	actions("no Content-Type", nil, []byte(sign(fx.officer, approve(fx.pending), now)), 415, "unsupported-media-type")
	actions("body one byte over 16 KiB", joseType, bytes.Repeat([]byte("A"), ra.MaxJWSBytes+1), 413, "request-too-large")
	actions("body of exactly 16 KiB", joseType, bytes.Repeat([]byte("A"), ra.MaxJWSBytes), 401, "unauthorized")
	// The nonce is recorded in the transaction that then finds no
	// enrollment: it must roll back with it.
	actions("approve an unknown enrollment", joseType, []byte(sign(fx.officer, approve(unknownID), now)), 404, "not-found")
	actions("a queue request with the actions audience", joseType,
		[]byte(sign(fx.officer, jwsauth.Action{Action: jwsauth.ActionQueue, Audience: ra.AudienceActions}, now)), 400, "invalid-request")
	actions("a holder's revocation for the revoke endpoint", joseType, []byte(holderRevoke), 401, "unauthorized")
	actions("approve signed an hour ahead", joseType, []byte(sign(fx.officer, approve(fx.pending), now.Add(time.Hour))), 401, "stale-request")
	actions("approve signed by a key the RA does not know", joseType, []byte(sign(fx.stranger, approve(fx.pending), now)), 403, "not-an-officer")

	// A holder's revocation: a well-signed request for the holder's own
	// certificate, sent to a malformed serial, is refused before the CA or
	// the nonce table is touched.
	revoke := func(name, serialPath string, header http.Header, body []byte, status int, problem string) {
		add("revoke: "+name, http.MethodPost, "/api/v1/certificates/"+serialPath+"/revoke", header, body, status, problem)
	}
	revoke("serial not hex", "ZZ", joseType, []byte(holderRevoke), 400, "invalid-request")
	revoke("serial of 41 hex digits", strings.Repeat("A", 41), joseType, []byte(holderRevoke), 400, "invalid-request")
	revoke("serial with colons", colons(serial), joseType, []byte(holderRevoke), 400, "invalid-request")
	revoke("serial encoded ../", "..%2F"+serial, joseType, []byte(holderRevoke), 400, "invalid-request")
	revoke("SQL as the serial", url.PathEscape(`' OR 1=1 --`), joseType, []byte(holderRevoke), 400, "invalid-request")
	revoke("serial of 10000 characters", strings.Repeat("0", 10000), joseType, []byte(holderRevoke), 400, "invalid-request")
	revoke("a reason a holder may not give", serial, joseType,
		[]byte(sign(fx.officer, jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: serial, Reason: "unspecified", Audience: ra.AudienceRevoke}, now)), 400, "invalid-request")
	strangerSerial := jwsauth.SerialHex(fx.stranger.cert.SerialNumber)
	revoke("a certificate this CA never issued", strangerSerial, joseType,
		[]byte(sign(fx.stranger, jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: strangerSerial, Reason: "keyCompromise", Audience: ra.AudienceRevoke}, now)), 401, "unauthorized")
	revoke("an officer's action sent to the holder's endpoint", serial, joseType,
		[]byte(sign(fx.officer, jwsauth.Action{Action: jwsauth.ActionRevoke, Serial: serial, Reason: "keyCompromise", Audience: ra.AudienceActions}, now)), 401, "unauthorized")
	revoke("Content-Type application/json", serial, jsonType, []byte(holderRevoke), 415, "unsupported-media-type")
	revoke("body over 16 KiB", serial, joseType, pad([]byte(holderRevoke), ra.MaxJWSBytes+1), 413, "request-too-large")

	// A holder's renewal: the same gate, and a certificate with no
	// enrollment behind it (the officer's, made as sanad dev makes it) is
	// not renewed; none of these stores an enrollment or spends a nonce.
	renew := func(name, serialPath string, header http.Header, body []byte, status int, problem string) {
		add("renew: "+name, http.MethodPost, "/api/v1/certificates/"+serialPath+"/renew", header, body, status, problem)
	}
	renewAction := func(csr string) jwsauth.Action {
		return jwsauth.Action{Action: jwsauth.ActionRenew, Serial: serial, CSR: csr, Audience: ra.AudienceRenew}
	}
	newCSR := base64.RawURLEncoding.EncodeToString(csrDER(t, newKey(t)))
	holderRenew := sign(fx.officer, renewAction(newCSR), now)
	for _, c := range []struct{ name, jws string }{{"garbage", "garbage"}, {"alg none", algNone}, {"HS256 keyed with the certificate", hmacForged}} {
		renew("JWS "+c.name, serial, joseType, []byte(c.jws), 401, "unauthorized")
	}
	renew("serial not hex", "ZZ", joseType, []byte(holderRenew), 400, "invalid-request")
	renew("SQL as the serial", url.PathEscape(`' OR 1=1 --`), joseType, []byte(holderRenew), 400, "invalid-request")
	renew("a revocation sent to the renewal endpoint", serial, joseType, []byte(holderRevoke), 401, "unauthorized")
	renew("a renewal for the revoke endpoint", serial, joseType, []byte(sign(fx.officer, jwsauth.Action{Action: jwsauth.ActionRenew, Serial: serial, CSR: newCSR, Audience: ra.AudienceRevoke}, now)), 401, "unauthorized")
	renew("signed an hour ago", serial, joseType, []byte(sign(fx.officer, renewAction(newCSR), now.Add(-time.Hour))), 401, "stale-request")
	renew("a certificate this CA never issued", strangerSerial, joseType,
		[]byte(sign(fx.stranger, jwsauth.Action{Action: jwsauth.ActionRenew, Serial: strangerSerial, CSR: newCSR, Audience: ra.AudienceRenew}, now)), 401, "unauthorized")
	renew("a certificate with no enrollment", serial, joseType, []byte(holderRenew), 409, "not-renewable")
	renew("Content-Type application/json", serial, jsonType, []byte(holderRenew), 415, "unsupported-media-type")
	renew("body over 16 KiB", serial, joseType, pad([]byte(holderRenew), ra.MaxJWSBytes+1), 413, "request-too-large")

	// A certificate by serial: anyone may ask, so the serial is all there
	// is to attack.
	for _, c := range []struct{ name, serial string }{
		{"not hex", "ZZ"},
		{"41 hex digits", strings.Repeat("A", 41)},
		{"10000 characters", strings.Repeat("0", 10000)},
		{"with colons", colons(serial)},
		{"encoded ../", "..%2F..%2Fenrollments"},
		{"SQL", url.PathEscape(`' OR 1=1 --`)},
		{"a NUL", "0A%00"},
	} {
		add("certificate: serial "+c.name, http.MethodGet, "/api/v1/certificates/"+c.serial, nil, nil, 400, "invalid-request")
	}
	add("certificate: a serial no certificate has", http.MethodGet, "/api/v1/certificates/7E57"+strings.Repeat("00", 14), nil, nil, 404, "certificate-not-found")

	// Registry events: only the registry's key may speak, and what it
	// says is read as strictly as any other request.
	event := func(name string, header http.Header, body []byte, status int, problem string) {
		add("registry event: "+name, http.MethodPost, "/api/v1/registry/events", header, body, status, problem)
	}
	death := deathOf("kz-death-hostile")
	// with changes the map it is given: each row gets its own event.
	death2 := func() map[string]any { return deathOf("kz-death-hostile") }
	event("application/json", jsonType, signEvent(t, fx.registryKey, jose.ES256, death), 415, "unsupported-media-type")
	event("body over 16 KiB", joseType, pad(signEvent(t, fx.registryKey, jose.ES256, death), ra.MaxJWSBytes+1), 413, "request-too-large")
	event("signed by a key that is not the registry's", joseType, signEvent(t, fx.stranger.key, jose.ES256, death), 401, "unauthorized")
	event("alg none", joseType, []byte(b64(`{"alg":"none"}`)+"."+b64(string(mustJSON(t, death)))+"."), 400, "invalid-event")
	event("HS256 keyed with nothing secret", joseType, []byte(b64(`{"alg":"HS256"}`)+"."+b64(string(mustJSON(t, death)))+".c2ln"), 400, "invalid-event")
	event("JSON serialization", joseType, mustJSON(t, map[string]any{"payload": b64(string(mustJSON(t, death))), "signatures": []any{}}), 400, "invalid-event")
	event("SQL in the event id", joseType, signEvent(t, fx.registryKey, jose.ES256, with(death2(), "event_id", `x'; DROP TABLE certificates; --`)), 400, "invalid-event")
	event("a control character in the identifier", joseType, signEvent(t, fx.registryKey, jose.ES256, with(death2(), "national_id", "8803124482\u000017")), 422, "invalid-identifier")
	event("an authority change without the representative", joseType, signEvent(t, fx.registryKey, jose.ES256,
		map[string]any{"event_id": "pk-1", "kind": "authority_change", "country": "PK", "registration_number": "32778761", "occurred_at": death["occurred_at"]}), 400, "invalid-event")
	return rows
}

// b64 is unpadded base64url, as JWS writes its parts.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// unsignedJWS is a compact JWS whose header names alg and carries the
// identity's certificate, with the payload a: for "none" a placeholder
// signature, for "HS256" an HMAC keyed with the certificate's public key
// (the algorithm confusion attack).
func unsignedJWS(t *testing.T, id identity, alg string, a jwsauth.Action, now time.Time) string {
	t.Helper()
	fp := sha256.Sum256(id.cert.Raw)
	header := mustJSON(t, map[string]any{"alg": alg, "kid": hex.EncodeToString(fp[:]), "x5c": []string{base64.StdEncoding.EncodeToString(id.cert.Raw)}})
	a.Nonce, a.IssuedAt = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 24)), now.Unix()
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(mustJSON(t, a))
	sig := []byte{0, 0, 0}
	if alg == "HS256" {
		mac := hmac.New(sha256.New, id.cert.RawSubjectPublicKeyInfo)
		mac.Write([]byte(input))
		sig = mac.Sum(nil)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// with returns m with the member at the dotted path set to v.
func with(m map[string]any, path string, v any) map[string]any {
	names := strings.Split(path, ".")
	cur := m
	for _, n := range names[:len(names)-1] {
		next, ok := cur[n].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[n] = next
		}
		cur = next
	}
	cur[names[len(names)-1]] = v
	return m
}

// without returns m without the member at the dotted path.
func without(m map[string]any, path string) map[string]any {
	names := strings.Split(path, ".")
	cur := m
	for _, n := range names[:len(names)-1] {
		cur = cur[n].(map[string]any)
	}
	delete(cur, names[len(names)-1])
	return m
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pad appends spaces (JSON white space) to b up to n bytes.
func pad(b []byte, n int) []byte {
	return append(bytes.Clone(b), bytes.Repeat([]byte(" "), n-len(b))...)
}

func utf16LE(s string) []byte {
	var out []byte
	for _, u := range utf16.Encode([]rune(s)) {
		out = binary.LittleEndian.AppendUint16(out, u)
	}
	return out
}

// colons writes a hex serial as 0A:1B:….
func colons(h string) string {
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// describe prints a request for a failure message.
func describe(row hostileRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "request: %s %s\n", row.method, clip([]byte(row.path), 120))
	keys := make([]string, 0, len(row.header))
	for k := range row.header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %s\n", k, clip([]byte(strings.Join(row.header[k], ", ")), 120))
	}
	if row.body != nil {
		fmt.Fprintf(&b, "  body (%d bytes): %s\n", len(row.body), clip(row.body, 300))
	}
	return b.String()
}

// clip quotes b, cut to n bytes.
func clip(b []byte, n int) string {
	if len(b) <= n {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q…", b[:n])
}
