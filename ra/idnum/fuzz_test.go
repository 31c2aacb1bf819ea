package idnum_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ra/idnum"
)

// codes are every Code a Person or Business refusal may carry.
var codes = map[string]bool{
	idnum.CodeEmpty: true, idnum.CodeTooLong: true, idnum.CodeWhitespace: true,
	idnum.CodeNonASCIIDigit: true, idnum.CodeFormat: true, idnum.CodeLength: true,
	idnum.CodeChecksum: true, idnum.CodeNoCheckDigit: true, idnum.CodeWrongKind: true,
	idnum.CodeBirthDate: true, idnum.CodeCentury: true, idnum.CodeEntityType: true,
	idnum.CodeAttribute: true, idnum.CodeRegistrationDate: true, idnum.CodeRegion: true,
}

// fuzzCountry picks the country under test from a fuzzed flag.
func fuzzCountry(t *testing.T, pk bool) (string, idnum.Checker) {
	country := "KZ"
	if pk {
		country = "PK"
	}
	return country, checker(t, country)
}

// fuzzBirth turns a fuzzed number into a birth date: 0 is "not given",
// anything else a day between 1800 and 2100.
func fuzzBirth(days int32) time.Time {
	if days == 0 {
		return time.Time{}
	}
	n := int(days) % 110000
	if n < 0 {
		n = -n
	}
	return date(1800, 1, 1).AddDate(0, 0, n)
}

// checkRefusal fails t unless err is a well-formed refusal of id that does
// not quote it.
func checkRefusal(t *testing.T, err error, country, kind, id string) {
	t.Helper()
	var ie *idnum.Error
	if !errors.As(err, &ie) || !errors.Is(err, idnum.ErrInvalid) {
		t.Fatalf("%q: err %v (%T) is not an *idnum.Error", id, err, err)
	}
	if ie.Country != country || ie.Kind != kind || !codes[ie.Code] || ie.Reason == "" {
		t.Fatalf("%q: malformed refusal %+v", id, *ie)
	}
	// Reasons never quote the identifier: checked on inputs that are long
	// runs of digits and hyphens, which no fixed reason text contains.
	if len(id) >= 10 && strings.Trim(id, "0123456789-") == "" && strings.Contains(err.Error(), id) {
		t.Fatalf("%q: refusal quotes the identifier: %v", id, err)
	}
}

// checkCanonical fails t unless canon looks like a canonical identifier.
func checkCanonical(t *testing.T, canon string, lengths ...int) {
	t.Helper()
	if strings.Trim(canon, "0123456789") != "" {
		t.Fatalf("canonical form %q is not digits only", canon)
	}
	for _, n := range lengths {
		if len(canon) == n {
			return
		}
	}
	t.Fatalf("canonical form %q has length %d, want one of %v", canon, len(canon), lengths)
}

func FuzzPerson(f *testing.F) {
	f.Add(false, "791028302728", int32(0))
	f.Add(false, "000229699995", int32(73107)) // 2000-02-29
	f.Add(false, "850714300970", int32(0))
	f.Add(false, "940140000385", int32(0))
	f.Add(false, "٩٤٠١٤٠٠٠٠٣٨٥", int32(0))
	f.Add(true, "34201-0891231-8", int32(1))
	f.Add(true, "3420108912318", int32(0))
	f.Add(true, "4174941-3", int32(0))
	f.Add(true, " 34201-0891231-8", int32(0))
	f.Fuzz(func(t *testing.T, pk bool, id string, days int32) {
		country, c := fuzzCountry(t, pk)
		birth := fuzzBirth(days)
		got, err := c.Person(id, birth)
		gotNoBirth, errNoBirth := c.Person(id, time.Time{})
		if errNoBirth != nil {
			checkRefusal(t, errNoBirth, country, idnum.KindPerson, id)
			if err == nil {
				t.Fatalf("%q valid with birth %v but not without one: %v", id, birth, errNoBirth)
			}
		}
		if err != nil {
			checkRefusal(t, err, country, idnum.KindPerson, id)
			if got != "" {
				t.Fatalf("%q: %q returned with %v", id, got, err)
			}
			return
		}
		if gotNoBirth != got {
			t.Fatalf("%q: canonical %q with birth, %q without", id, got, gotNoBirth)
		}
		if pk {
			checkCanonical(t, got, 13)
		} else {
			checkCanonical(t, got, 12)
			if _, err := c.Business(got); !isCode(err, idnum.CodeWrongKind) {
				t.Fatalf("IIN %s as a business: %v, want wrong-kind", got, err)
			}
		}
		if again, err := c.Person(got, birth); err != nil || again != got {
			t.Fatalf("canonical %q does not re-validate to itself: %q, %v", got, again, err)
		}
	})
}

func FuzzBusiness(f *testing.F) {
	f.Add(false, "940140000385")
	f.Add(false, "150363124089")
	f.Add(false, "150340000090")
	f.Add(false, "791028302728")
	f.Add(false, "940 140 000 385")
	f.Add(true, "4174941-3")
	f.Add(true, "0822910-4")
	f.Add(true, "4174941")
	f.Add(true, "42101-1234567-1")
	f.Add(true, "۴۱۷۴۹۴۱-۳")
	f.Fuzz(func(t *testing.T, pk bool, id string) {
		country, c := fuzzCountry(t, pk)
		got, err := c.Business(id)
		if err != nil {
			checkRefusal(t, err, country, idnum.KindBusiness, id)
			if got != "" {
				t.Fatalf("%q: %q returned with %v", id, got, err)
			}
			return
		}
		switch {
		case pk:
			checkCanonical(t, got, 8, 13)
			if len(got) == 13 {
				if p, err := c.Person(got, time.Time{}); err != nil || p != got {
					t.Fatalf("CNIC %s taken as NTN but not as a person: %q, %v", got, p, err)
				}
			}
		default:
			checkCanonical(t, got, 12)
			if _, err := c.Person(got, time.Time{}); !isCode(err, idnum.CodeWrongKind) {
				t.Fatalf("BIN %s as a person: %v, want wrong-kind", got, err)
			}
		}
		if again, err := c.Business(got); err != nil || again != got {
			t.Fatalf("canonical %q does not re-validate to itself: %q, %v", got, again, err)
		}
	})
}
