package idnum_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ra/idnum"
)

// date is a birth date as the RA passes it: midnight UTC.
func date(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }

// checker returns the default registry's Checker for country.
func checker(t testing.TB, country string) idnum.Checker {
	t.Helper()
	c, err := idnum.For(country)
	if err != nil {
		t.Fatalf("For(%q): %v", country, err)
	}
	return c
}

// check calls Person (with birth) or Business, as kind says.
func check(c idnum.Checker, kind, id string, birth time.Time) (string, error) {
	if kind == idnum.KindPerson {
		return c.Person(id, birth)
	}
	return c.Business(id)
}

// wantCode fails t unless err is an *idnum.Error with code, country and
// kind, that is ErrInvalid and does not quote id.
func wantCode(t *testing.T, err error, country, kind, code, id string) {
	t.Helper()
	var ie *idnum.Error
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v (%T), want *idnum.Error with code %q", err, err, code)
	}
	if ie.Code != code || ie.Country != country || ie.Kind != kind {
		t.Errorf("err = %+v, want code %q country %q kind %q", *ie, code, country, kind)
	}
	if !errors.Is(err, idnum.ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	if ie.Reason == "" {
		t.Errorf("err %+v has no reason", *ie)
	}
	if len(id) >= 8 && strings.Contains(err.Error(), id) {
		t.Errorf("err %q quotes the identifier", err)
	}
}

func TestFor(t *testing.T) {
	for _, country := range []string{"KZ", "PK"} {
		if got := checker(t, country).Country(); got != country {
			t.Errorf("For(%q).Country() = %q", country, got)
		}
	}
	tests := []struct{ name, country, reason string }{
		{"unknown", "FR", "FR are not supported"},
		{"lower case", "kz", "must be upper case: KZ"},
		{"mixed case", "Pk", "must be upper case: PK"},
		{"empty", "", "ISO 3166-1 alpha-2"},
		{"alpha-3", "KAZ", "ISO 3166-1 alpha-2"},
		{"digits", "12", "ISO 3166-1 alpha-2"},
		{"non-ASCII", "КZ", "ISO 3166-1 alpha-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := idnum.For(tt.country)
			if c != nil {
				t.Errorf("For(%q) returned a Checker", tt.country)
			}
			var ie *idnum.Error
			if !errors.As(err, &ie) || ie.Code != idnum.CodeUnsupportedCountry || !errors.Is(err, idnum.ErrInvalid) {
				t.Fatalf("For(%q) err = %v, want unsupported-country", tt.country, err)
			}
			if !strings.Contains(ie.Reason, tt.reason) {
				t.Errorf("reason %q does not say %q", ie.Reason, tt.reason)
			}
		})
	}
}

// fake is a Checker for a test country.
type fake struct{ country string }

func (f fake) Country() string { return f.country }
func (fake) Person(id string, _ time.Time) (string, error) {
	return id, nil
}
func (fake) Business(id string) (string, error) { return id, nil }

func TestRegistry(t *testing.T) {
	r := idnum.NewRegistry(idnum.Kazakhstan{}, fake{"XX"})
	if c, err := r.For("XX"); err != nil || c.Country() != "XX" {
		t.Fatalf("For(XX) = %v, %v", c, err)
	}
	if _, err := r.For("PK"); err == nil {
		t.Error("a registry without Pakistan found PK")
	}
	got := r.Countries()
	slices.Sort(got)
	if !slices.Equal(got, []string{"KZ", "XX"}) {
		t.Errorf("Countries() = %v", got)
	}
	if _, err := idnum.For("XX"); err == nil {
		t.Error("a private registry leaked into the default one")
	}

	panics := []struct {
		name string
		c    idnum.Checker
	}{
		{"duplicate", fake{"KZ"}},
		{"nil", nil},
		{"lower-case country", fake{"xx"}},
		{"long country", fake{"XXX"}},
	}
	for _, tt := range panics {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%v) did not panic", tt.c)
				}
			}()
			r.Register(tt.c)
		})
	}
	t.Run("default duplicate", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("Register(Pakistan{}) on the default registry did not panic")
			}
		}()
		idnum.Register(idnum.Pakistan{})
	})
}

func TestErrorText(t *testing.T) {
	e := &idnum.Error{Country: "KZ", Kind: idnum.KindPerson, Code: idnum.CodeChecksum, Reason: "the check digit does not match"}
	want := "invalid national identifier (KZ person): the check digit does not match [checksum]"
	if e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
	e = &idnum.Error{Code: idnum.CodeUnsupportedCountry, Reason: "no"}
	if want := "invalid national identifier: no [unsupported-country]"; e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
}

// TestInput covers the rules every country and kind shares: each input is
// refused with the same code whichever checker gets it.
func TestInput(t *testing.T) {
	tests := []struct {
		name, id, code string
	}{
		{"empty", "", idnum.CodeEmpty},
		{"over MaxLen", strings.Repeat("1", idnum.MaxLen+1), idnum.CodeTooLong},
		{"far over MaxLen", strings.Repeat("٤", 1000), idnum.CodeTooLong},
		{"leading space", " 940140000385", idnum.CodeWhitespace},
		{"trailing space", "940140000385 ", idnum.CodeWhitespace},
		{"trailing newline", "940140000385\n", idnum.CodeWhitespace},
		{"leading tab", "\t940140000385", idnum.CodeWhitespace},
		{"leading no-break space", "\u00a0940140000385", idnum.CodeWhitespace},
		{"trailing ideographic space", "940140000385\u3000", idnum.CodeWhitespace},
		{"only spaces", "   ", idnum.CodeWhitespace},
		{"Arabic-Indic digits", "٩٤٠١٤٠٠٠٠٣٨٥", idnum.CodeNonASCIIDigit},
		{"Extended Arabic-Indic (Urdu) digits", "۳۴۲۰۱۰۸۹۱۲۳۱۸", idnum.CodeNonASCIIDigit},
		{"one fullwidth digit", "94014000038５", idnum.CodeNonASCIIDigit},
		{"Devanagari digit", "९40140000385", idnum.CodeNonASCIIDigit},
		{"invalid UTF-8", "94014000\xff385", idnum.CodeFormat},
		{"letter", "94014O000385", idnum.CodeFormat},
		{"inner space", "940140 000385", idnum.CodeFormat},
		{"slash", "9401400/00385", idnum.CodeFormat},
		{"en dash", "34201–0891231–8", idnum.CodeFormat},
		{"zero-width space", "9401400\u200b00385", idnum.CodeFormat},
		{"NUL", "940140\x00000385", idnum.CodeFormat},
		{"plus sign", "+940140000385", idnum.CodeFormat},
	}
	for _, country := range []string{"KZ", "PK"} {
		c := checker(t, country)
		for _, kind := range []string{idnum.KindPerson, idnum.KindBusiness} {
			for _, tt := range tests {
				t.Run(country+"/"+kind+"/"+tt.name, func(t *testing.T) {
					got, err := check(c, kind, tt.id, time.Time{})
					if got != "" {
						t.Errorf("returned %q with the error", got)
					}
					wantCode(t, err, country, kind, tt.code, tt.id)
				})
			}
		}
	}
}
