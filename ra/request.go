package ra

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sanadpki/sanad/internal/strictjson"
)

// MaxRequestBytes bounds every JSON body the RA reads; a CSR of the largest
// key allowed (RSA 8192) fits several times over.
const MaxRequestBytes = 64 << 10

// EnrollRequest is the body of POST /api/v1/enrollments.
type EnrollRequest struct {
	Profile   string    `json:"profile"`
	Applicant Applicant `json:"applicant"`
	CSR       string    `json:"csr"` // PEM
}

// Applicant is a person, or a business with the person who represents it.
type Applicant struct {
	Kind    string `json:"kind"` // person | business
	Country string `json:"country"`
	// A person.
	NationalID string `json:"national_id,omitempty"`
	GivenName  string `json:"given_name,omitempty"`
	FamilyName string `json:"family_name,omitempty"`
	BirthDate  string `json:"birth_date,omitempty"` // YYYY-MM-DD
	// A business.
	RegistrationNumber string     `json:"registration_number,omitempty"`
	Representative     *Applicant `json:"representative,omitempty"`
}

var (
	countryCode = regexp.MustCompile(`^[A-Z]{2}$`)
	profileName = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
)

// ParseEnrollRequest decodes and checks a request body strictly: one JSON
// object, no unknown fields, no trailing data, every string within its
// limit and free of control characters, and the fields of the applicant's
// kind present (and no others). Every problem is reported at once.
func ParseEnrollRequest(body []byte) (EnrollRequest, error) {
	var req EnrollRequest
	if err := decodeStrict(body, &req); err != nil {
		return EnrollRequest{}, err
	}
	var problems []string
	bad := func(field, format string, args ...any) {
		problems = append(problems, field+": "+fmt.Sprintf(format, args...))
	}
	if !profileName.MatchString(req.Profile) {
		bad("profile", "must be a profile name (lower-case letters, digits, dashes)")
	}
	if req.CSR == "" {
		bad("csr", "required (PEM)")
	} else if len(req.CSR) > 32<<10 {
		bad("csr", "longer than 32 KiB")
	}
	checkApplicant("applicant", req.Applicant, bad, true)
	if len(problems) > 0 {
		return EnrollRequest{}, refuse("invalid-request", "%s", strings.Join(problems, "; "))
	}
	return req, nil
}

func checkApplicant(at string, a Applicant, bad func(field, format string, args ...any), top bool) {
	if !countryCode.MatchString(a.Country) {
		bad(at+".country", "must be an ISO 3166-1 alpha-2 code such as KZ or PK")
	}
	switch a.Kind {
	case "person":
		text(at+".national_id", a.NationalID, 32, bad)
		name(at+".given_name", a.GivenName, bad)
		name(at+".family_name", a.FamilyName, bad)
		text(at+".birth_date", a.BirthDate, 10, bad)
		if a.RegistrationNumber != "" || a.Representative != nil {
			bad(at, "a person has no registration_number or representative")
		}
	case "business":
		if !top {
			bad(at+".kind", "a representative must be a person")
			return
		}
		text(at+".registration_number", a.RegistrationNumber, 32, bad)
		if a.NationalID != "" || a.GivenName != "" || a.FamilyName != "" || a.BirthDate != "" {
			bad(at, "a business's person fields belong in representative")
		}
		if a.Representative == nil {
			bad(at+".representative", "required for a business")
		} else {
			if a.Representative.Kind != "person" {
				bad(at+".representative.kind", "must be person")
			} else {
				checkApplicant(at+".representative", *a.Representative, bad, false)
			}
		}
	default:
		bad(at+".kind", "must be person or business")
	}
}

// text checks a required single-line field.
func text(field, v string, maxLen int, bad func(field, format string, args ...any)) {
	switch {
	case v == "":
		bad(field, "required")
	case len(v) > maxLen:
		bad(field, "longer than %d bytes", maxLen)
	case !utf8.ValidString(v):
		bad(field, "not UTF-8")
	case strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0:
		bad(field, "contains control or format characters")
	case strings.TrimSpace(v) != v:
		bad(field, "has leading or trailing spaces")
	}
}

// name checks a personal name: letters, marks, spaces, apostrophes, dots
// and hyphens, up to 128 bytes.
func name(field, v string, bad func(field, format string, args ...any)) {
	before := 0
	text(field, v, 128, func(f, format string, args ...any) { before++; bad(f, format, args...) })
	if before > 0 {
		return
	}
	for _, r := range v {
		if !unicode.IsLetter(r) && !unicode.Is(unicode.M, r) && !strings.ContainsRune(" '’.-", r) {
			bad(field, "contains %q, which is not part of a name", r)
			return
		}
	}
}

// decodeStrict decodes exactly one JSON value into v with no unknown fields.
func decodeStrict(body []byte, v any) error {
	if len(body) > MaxRequestBytes {
		return refuse("request-too-large", "the limit is %d bytes", MaxRequestBytes)
	}
	if !utf8.Valid(body) {
		return refuse("invalid-request", "the body is not UTF-8")
	}
	if err := checkMembers(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return refuse("invalid-request", "%s", jsonError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return refuse("invalid-request", "data after the JSON object")
	}
	return nil
}

// checkMembers refuses what encoding/json would silently resolve
// (strictjson): a member given twice in one object, and a member name in
// another case. Every member name of the RA's JSON is lower-case
// snake_case, so any other spelling is refused here and unknown lower-case
// names by DisallowUnknownFields.
func checkMembers(body []byte) error {
	err := strictjson.Members(body, func(name string) error {
		if !memberName.MatchString(name) {
			return refuse("invalid-request", "member name %q is not a field of this request", name)
		}
		return nil
	})
	if dup := (*strictjson.DuplicateError)(nil); errors.As(err, &dup) {
		return refuse("invalid-request", "member %q appears twice", dup.Name)
	}
	return err
}

var memberName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

func jsonError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ) && typ.Field == "":
		return "the body must be a JSON object"
	case errors.As(err, &typ):
		return fmt.Sprintf("%s has the wrong JSON type (%s)", typ.Field, typ.Value)
	case errors.Is(err, io.EOF):
		return "empty body"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
