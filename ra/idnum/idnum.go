package idnum

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Checker validates one country's identifiers.
type Checker interface {
	Country() string // ISO 3166-1 alpha-2, upper case: "KZ", "PK"
	// Person checks a natural person's identifier (KZ IIN, PK CNIC) against
	// the birth date the applicant gave (zero time.Time = not given; then
	// any date encoded in the identifier is not checked against it) and
	// returns it in canonical form (digits only).
	Person(id string, birth time.Time) (string, error)
	// Business checks a legal person's identifier (KZ BIN, PK NTN) and
	// returns its canonical form.
	Business(id string) (string, error)
}

// ErrInvalid is what every *Error is (errors.Is).
var ErrInvalid = errors.New("invalid national identifier")

// Kinds of identifier, the values of Error.Kind.
const (
	KindPerson   = "person"
	KindBusiness = "business"
)

// Codes of Error.Code. They are a contract: the RA passes them on to
// clients, so a code is never renamed or reused for another mistake.
const (
	// CodeUnsupportedCountry: no Checker is registered for the country.
	CodeUnsupportedCountry = "unsupported-country"

	// Input hygiene, the same for every country and kind.
	CodeEmpty         = "empty"           // the identifier is the empty string
	CodeTooLong       = "too-long"        // longer than MaxLen bytes
	CodeWhitespace    = "whitespace"      // leading or trailing white space
	CodeNonASCIIDigit = "non-ascii-digit" // a digit of another script (٤, ۴, ４, …)

	// The written form and the digits, per country.
	CodeFormat           = "format"            // a character or separator the written form does not have
	CodeLength           = "length"            // the wrong number of digits
	CodeChecksum         = "checksum"          // the check digit does not match
	CodeNoCheckDigit     = "no-check-digit"    // IIN/BIN digits 1-11 for which no check digit exists
	CodeWrongKind        = "wrong-kind"        // a valid business number given for a person, or the reverse
	CodeBirthDate        = "birth-date"        // the date in the IIN is not a date, or disagrees with the birth date given
	CodeCentury          = "century"           // IIN 7th digit not 1-6, or disagrees with the birth year's century
	CodeEntityType       = "entity-type"       // BIN 5th digit not 4, 5 or 6
	CodeAttribute        = "attribute"         // BIN 6th digit not 0-3
	CodeRegistrationDate = "registration-date" // BIN month of registration (digits 3-4) not 01-12
	CodeRegion           = "region"            // CNIC 1st digit is no province or region
)

// MaxLen is the longest input, in bytes, that is looked at; every
// identifier here is far shorter, and anything longer is refused unread.
const MaxLen = 32

// Error says what is wrong with an identifier. Code is stable (the RA turns
// it into a problem type); Reason is a sentence for the applicant and never
// contains the identifier itself.
type Error struct {
	Country string // ISO 3166-1 alpha-2, or "" when the country itself is unusable
	Kind    string // KindPerson, KindBusiness, or "" (CodeUnsupportedCountry)
	Code    string
	Reason  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalid.Error())
	if who := strings.TrimSpace(e.Country + " " + e.Kind); who != "" {
		b.WriteString(" (" + who + ")")
	}
	b.WriteString(": " + e.Reason + " [" + e.Code + "]")
	return b.String()
}

// Unwrap makes every *Error match ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// refusal builds an *Error; checkers use it so every refusal reads alike.
func refusal(country, kind, code, format string, args ...any) *Error {
	return &Error{Country: country, Kind: kind, Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Registry maps a country code to its Checker. The RA may hold its own
// (tests plug in a fake country without touching the default one); For and
// Register use a default Registry holding Kazakhstan and Pakistan.
type Registry struct {
	mu       sync.RWMutex
	checkers map[string]Checker
}

// NewRegistry returns a Registry holding cs; it panics as Register does.
func NewRegistry(cs ...Checker) *Registry {
	r := &Registry{checkers: make(map[string]Checker, len(cs))}
	for _, c := range cs {
		r.Register(c)
	}
	return r
}

// Register adds c. Registering is wiring done at start-up, so a nil
// Checker, a country code that is not two upper-case ASCII letters, or a
// second Checker for a country is a programming error and panics.
func (r *Registry) Register(c Checker) {
	if c == nil {
		panic("idnum: Register of a nil Checker")
	}
	country := c.Country()
	if !isCountryCode(country) {
		panic(fmt.Sprintf("idnum: Register: country %q is not an upper-case ISO 3166-1 alpha-2 code", country))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.checkers[country]; dup {
		panic("idnum: Register: a Checker for " + country + " is already registered")
	}
	r.checkers[country] = c
}

// For returns the Checker for country, an upper-case ISO 3166-1 alpha-2
// code, or an *Error with Code CodeUnsupportedCountry.
func (r *Registry) For(country string) (Checker, error) {
	if !isCountryCode(country) {
		reason := "the country must be an ISO 3166-1 alpha-2 code in upper case, such as KZ"
		if up := strings.ToUpper(country); isCountryCode(up) {
			reason = fmt.Sprintf("the country code must be upper case: %s", up)
		}
		return nil, refusal("", "", CodeUnsupportedCountry, "%s", reason)
	}
	r.mu.RLock()
	c, ok := r.checkers[country]
	r.mu.RUnlock()
	if !ok {
		return nil, refusal(country, "", CodeUnsupportedCountry, "identifiers of country %s are not supported", country)
	}
	return c, nil
}

// Countries lists the registered country codes in no particular order.
func (r *Registry) Countries() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.checkers))
	for c := range r.checkers {
		out = append(out, c)
	}
	return out
}

// defaultRegistry backs For and Register. It is built from a plain
// expression, not in init(), and holds only stateless checkers.
var defaultRegistry = NewRegistry(Kazakhstan{}, Pakistan{})

// For returns the default Registry's Checker for country: "KZ" and "PK"
// unless more were registered.
func For(country string) (Checker, error) { return defaultRegistry.For(country) }

// Register plugs another country into the default Registry (panics on
// duplicate, see Registry.Register).
func Register(c Checker) { defaultRegistry.Register(c) }

func isCountryCode(s string) bool {
	return len(s) == 2 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z'
}
