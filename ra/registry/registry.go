package registry

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sanadpki/sanad/internal/strictjson"
)

// Person is a natural person as the registry records them.
type Person struct {
	Country    string `json:"country"`     // ISO 3166-1 alpha-2: "KZ", "PK"
	NationalID string `json:"national_id"` // canonical: KZ IIN (12 digits), PK CNIC (13 digits)
	GivenName  string `json:"given_name"`
	FamilyName string `json:"family_name"`
	BirthDate  string `json:"birth_date"` // YYYY-MM-DD
	Alive      bool   `json:"alive"`
	Phone      string `json:"phone,omitempty"` // E.164
	Email      string `json:"email,omitempty"`
}

// Representative is a person the business register lists for a business.
type Representative struct {
	Country    string `json:"country"`
	NationalID string `json:"national_id"`
	Role       string `json:"role"`     // as the register words it: "director", "attorney", …
	CanSign    bool   `json:"can_sign"` // signing authority for the business
}

// Business is a legal entity as the business register records it.
type Business struct {
	Country            string           `json:"country"`
	RegistrationNumber string           `json:"registration_number"` // KZ BIN (12 digits), PK NTN (8 digits)
	Name               string           `json:"name"`
	Active             bool             `json:"active"`
	Phone              string           `json:"phone,omitempty"` // E.164
	Email              string           `json:"email,omitempty"`
	Representatives    []Representative `json:"representatives"`
}

// Record kinds in Evidence.Record.
const (
	RecordPerson   = "person"
	RecordBusiness = "business"
)

// Evidence is what a lookup relied on, kept with the enrollment
// (registry_evidence): enough to show later which answer issuance trusted.
type Evidence struct {
	// Source names the registry: "file:<name>" or the HTTP registry's host.
	Source string `json:"source"`
	// Record is RecordPerson or RecordBusiness.
	Record string `json:"record"`
	// Version is the registry's version of the record or data set, when it
	// has one.
	Version string `json:"version,omitempty"`
	// Hash is the SHA-256 of the record as received: the HTTP response body,
	// or the canonical JSON of a file record (see CanonicalHash). Always set.
	Hash []byte `json:"hash"`
	// LookedUpAt is when the answer arrived, by the injected clock.
	LookedUpAt time.Time `json:"looked_up_at"`
}

// Registry answers who exists. Implementations return ErrNotFound only when
// the registry itself said there is no such record, and ErrUnavailable when
// it could not give an answer the RA can rely on.
type Registry interface {
	Person(ctx context.Context, country, nationalID string) (Person, Evidence, error)
	Business(ctx context.Context, country, registrationNumber string) (Business, Evidence, error)
}

var (
	// ErrNotFound means the registry answered: no such record.
	ErrNotFound = errors.New("not in the registry")
	// ErrUnavailable means there is no answer to rely on (timeouts, 5xx
	// after retries, a response that could not be accepted): the RA answers
	// "try later", never "no such person".
	ErrUnavailable = errors.New("registry unavailable")
	// ErrBadResponse marks, in addition to ErrUnavailable, an answer that
	// broke the contract (oversized, not JSON, required fields missing, a
	// record other than the one asked for): retrying will not help, an
	// operator must look.
	ErrBadResponse = errors.New("registry response breaks the contract")
	// ErrInvalidKey means a lookup was asked with a country or identifier
	// that is not in canonical form; the RA validates identifiers first, so
	// this is the caller's bug.
	ErrInvalidKey = errors.New("lookup key is not canonical")
)

var (
	_ Registry = (*File)(nil)
	_ Registry = (*HTTP)(nil)
)

// CanonicalHash is the SHA-256 of v's canonical JSON: encoding/json of the
// Go value (fields in declaration order, no insignificant white space). The
// file backend's Evidence.Hash is CanonicalHash of the Person or Business
// returned, so the same record hashes the same from JSON or CSV.
func CanonicalHash(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	h := sha256.Sum256(b)
	return h[:], nil
}

// checkKey reports whether country and id are canonical lookup keys: two
// upper-case letters, and 1–32 digits or upper-case ASCII letters (no
// spaces, dashes or dots: those are stripped by the RA before it asks).
func checkKey(country, id string) error {
	if !validCountry(country) {
		return fmt.Errorf("%w: country %q is not two upper-case letters", ErrInvalidKey, country)
	}
	if !canonicalID(id) {
		return fmt.Errorf("%w: identifier %s is not 1–32 digits or upper-case letters", ErrInvalidKey, mask(id))
	}
	return nil
}

func validCountry(s string) bool {
	return len(s) == 2 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z'
}

func canonicalID(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// mask hides all but the last four characters of a national identifier, for
// error messages and logs (STYLE: never a full national ID).
func mask(id string) string {
	if len(id) <= 4 {
		return strings.Repeat("*", len(id))
	}
	return strings.Repeat("*", len(id)-4) + id[len(id)-4:]
}

// The wire forms below carry presence: a field the source left out is nil,
// so "alive" missing is a problem, never a silent false.

type personWire struct {
	Country    *string `json:"country"`
	NationalID *string `json:"national_id"`
	GivenName  *string `json:"given_name"`
	FamilyName *string `json:"family_name"`
	BirthDate  *string `json:"birth_date"`
	Alive      *bool   `json:"alive"`
	Phone      *string `json:"phone"`
	Email      *string `json:"email"`
}

type representativeWire struct {
	Country    *string `json:"country"`
	NationalID *string `json:"national_id"`
	Role       *string `json:"role"`
	CanSign    *bool   `json:"can_sign"`
}

type businessWire struct {
	Country            *string               `json:"country"`
	RegistrationNumber *string               `json:"registration_number"`
	Name               *string               `json:"name"`
	Active             *bool                 `json:"active"`
	Phone              *string               `json:"phone"`
	Email              *string               `json:"email"`
	Representatives    *[]representativeWire `json:"representatives"`
}

// fieldChecker collects the problems of one record, each "field: what".
type fieldChecker struct {
	problems []string
}

func (c *fieldChecker) addf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *fieldChecker) country(field string, v *string) string {
	switch {
	case v == nil || *v == "":
		c.addf("%s: missing", field)
	case !validCountry(*v) && len(*v) > 3: // maybe an identifier in the wrong column
		c.addf("%s: %s is not two upper-case letters (ISO 3166-1 alpha-2)", field, mask(*v))
	case !validCountry(*v):
		c.addf("%s: %q is not two upper-case letters (ISO 3166-1 alpha-2)", field, *v)
	default:
		return *v
	}
	return ""
}

func (c *fieldChecker) id(field string, v *string) string {
	switch {
	case v == nil || *v == "":
		c.addf("%s: missing", field)
	case !canonicalID(*v):
		c.addf("%s: %s is not canonical (1–32 digits or upper-case letters, no separators)", field, mask(*v))
	default:
		return *v
	}
	return ""
}

// text checks a required human-readable field: present, valid UTF-8, no
// control or format characters (bidirectional overrides, zero-width
// characters: a business's name goes into its certificate as the registry
// spells it, and must read as it is), no surrounding white space, at most
// 256 bytes.
func (c *fieldChecker) text(field string, v *string) string {
	switch {
	case v == nil || strings.TrimSpace(*v) == "":
		c.addf("%s: missing", field)
	case !utf8.ValidString(*v):
		c.addf("%s: not valid UTF-8", field)
	case strings.TrimSpace(*v) != *v:
		c.addf("%s: %q has surrounding white space", field, *v)
	case len(*v) > 256:
		c.addf("%s: longer than 256 bytes", field)
	case strings.IndexFunc(*v, unicode.IsControl) >= 0:
		c.addf("%s: contains a control character", field)
	case strings.IndexFunc(*v, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) >= 0:
		c.addf("%s: contains a format character (such as a bidirectional override or a zero-width space)", field)
	default:
		return *v
	}
	return ""
}

func (c *fieldChecker) flag(field string, v *bool) bool {
	if v == nil {
		c.addf("%s: missing (true or false)", field)
		return false
	}
	return *v
}

// birthDate checks a YYYY-MM-DD date that is not after now.
func (c *fieldChecker) birthDate(field string, v *string, now time.Time) string {
	if v == nil || *v == "" {
		c.addf("%s: missing", field)
		return ""
	}
	d, err := time.Parse(time.DateOnly, *v)
	if err != nil {
		c.addf("%s: %q is not a date (YYYY-MM-DD)", field, *v)
		return ""
	}
	if d.After(now) {
		c.addf("%s: %s is in the future", field, *v)
		return ""
	}
	return *v
}

// phone checks an optional E.164 number: "+", a non-zero digit, 7–15 digits in all.
func (c *fieldChecker) phone(field string, v *string) string {
	if v == nil || *v == "" {
		return ""
	}
	s := *v
	ok := len(s) >= 8 && len(s) <= 16 && s[0] == '+' && s[1] != '0'
	for i := 1; ok && i < len(s); i++ {
		ok = '0' <= s[i] && s[i] <= '9'
	}
	if !ok {
		c.addf("%s: %q is not an E.164 number (+ and 7–15 digits)", field, s)
		return ""
	}
	return s
}

// email checks an optional bare address (no display name, no angle brackets).
func (c *fieldChecker) email(field string, v *string) string {
	if v == nil || *v == "" {
		return ""
	}
	a, err := mail.ParseAddress(*v)
	if err != nil || a.Address != *v || a.Name != "" || !strings.Contains(*v, "@") {
		c.addf("%s: %q is not a bare e-mail address", field, *v)
		return ""
	}
	return *v
}

// person validates w and returns the Person with every problem found.
func (w personWire) person(now time.Time) (Person, []string) {
	var c fieldChecker
	p := Person{
		Country:    c.country("country", w.Country),
		NationalID: c.id("national_id", w.NationalID),
		GivenName:  c.text("given_name", w.GivenName),
		FamilyName: c.text("family_name", w.FamilyName),
		BirthDate:  c.birthDate("birth_date", w.BirthDate, now),
		Alive:      c.flag("alive", w.Alive),
		Phone:      c.phone("phone", w.Phone),
		Email:      c.email("email", w.Email),
	}
	return p, c.problems
}

func (w representativeWire) representative(c *fieldChecker, prefix string) Representative {
	return Representative{
		Country:    c.country(prefix+"country", w.Country),
		NationalID: c.id(prefix+"national_id", w.NationalID),
		Role:       c.text(prefix+"role", w.Role),
		CanSign:    c.flag(prefix+"can_sign", w.CanSign),
	}
}

// business validates w and returns the Business with every problem found;
// a representative listed twice is a problem, since which entry's authority
// counts would be a guess.
func (w businessWire) business() (Business, []string) {
	var c fieldChecker
	b := Business{
		Country:            c.country("country", w.Country),
		RegistrationNumber: c.id("registration_number", w.RegistrationNumber),
		Name:               c.text("name", w.Name),
		Active:             c.flag("active", w.Active),
		Phone:              c.phone("phone", w.Phone),
		Email:              c.email("email", w.Email),
		Representatives:    []Representative{},
	}
	if w.Representatives == nil {
		c.addf("representatives: missing (an empty list when there are none)")
		return b, c.problems
	}
	seen := make(map[[2]string]int)
	for i, rw := range *w.Representatives {
		prefix := fmt.Sprintf("representatives[%d].", i)
		r := rw.representative(&c, prefix)
		k := [2]string{r.Country, r.NationalID}
		if r.Country != "" && r.NationalID != "" {
			if j, dup := seen[k]; dup {
				c.addf("%snational_id: %s %s is listed twice (also representatives[%d])", prefix, r.Country, mask(r.NationalID), j)
			}
			seen[k] = i
		}
		b.Representatives = append(b.Representatives, r)
	}
	return b, c.problems
}

// cloneBusiness returns b with its own Representatives slice, so a caller
// cannot change what the registry holds.
func cloneBusiness(b Business) Business {
	b.Representatives = append([]Representative{}, b.Representatives...)
	return b
}

// jsonProblem words a JSON decoding error without Go type names.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Sprintf("a JSON %s where an object was expected", te.Value)
		}
		return fmt.Sprintf("%s: a JSON %s where %s was expected", te.Field, te.Value, jsonKind(te.Type.String()))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "the JSON ends too early"
	}
	if errors.Is(err, io.EOF) {
		return "no JSON value"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("JSON syntax error at byte %d: %v", se.Offset, se.Error())
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(goType string) string {
	switch strings.TrimLeft(goType, "*") {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	}
	if strings.Contains(goType, "[]") {
		return "a list"
	}
	return "an object"
}

// memberNames are the member names of the registry's JSON, file and HTTP,
// at every level.
var memberNames = []string{
	"source", "version", "persons", "businesses",
	"country", "national_id", "given_name", "family_name", "birth_date", "alive", "phone", "email",
	"registration_number", "name", "active", "representatives", "role", "can_sign",
}

// strictJSON refuses what encoding/json would read otherwise than another
// reader of the same bytes, the evidence an auditor checks later: invalid
// UTF-8 (replaced by U+FFFD), a member given twice in one object (the last
// kept: "alive": false, "alive": true), and a known member in another
// spelling ("ALIVE", matched regardless of case).
func strictJSON(body []byte) error {
	if !utf8.Valid(body) {
		return errors.New("not UTF-8")
	}
	return strictjson.Members(body, strictjson.ExactNames(memberNames...))
}
