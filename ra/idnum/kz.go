package idnum

import (
	"errors"
	"fmt"
	"time"
)

// Kazakhstan checks the IIN (a person's number) and the BIN (a business's).
// Both are 12 ASCII digits with no separators; the canonical form is the
// input itself.
//
// IIN (Decree No. 565 of 11 June 2003; Law No. 223 of 12 January 2007):
//
//	digits 1-6   birth date YYMMDD; a real calendar date
//	digit  7     century and sex: 1, 2 = 1800s; 3, 4 = 1900s; 5, 6 = 2000s;
//	             odd male, even female
//	digits 8-11  serial
//	digit  12    check digit (kzCheckDigit)
//
// BIN (same decree; the OECD's Kazakhstan-TIN.pdf; python-stdnum kz/bin.py):
//
//	digits 1-4   year (last two digits) and month 01-12 of registration or
//	             re-registration
//	digit  5     type: 4 resident legal entity, 5 non-resident legal entity,
//	             6 individual entrepreneur in joint entrepreneurship, IP(S)
//	digit  6     attribute: 0 head unit of the legal entity or IP(S),
//	             1 branch, 2 representative office, 3 peasant (farm) holding
//	             in joint entrepreneurship
//	digits 7-11  serial
//	digit  12    check digit (kzCheckDigit)
//
// An IIN's 5th digit is the tens of a day (0-3) and a BIN's is 4-6, so no
// string is both; a valid number of the other kind gets CodeWrongKind. An
// individual entrepreneur in personal entrepreneurship is identified by the
// IIN (Law No. 223 art. 1), so Business does not take an IIN.
type Kazakhstan struct{}

// Country returns "KZ".
func (Kazakhstan) Country() string { return "KZ" }

// Person checks an IIN and, when birth is not zero, that its date and
// century are birth's calendar date (in birth's location: pass a date at
// midnight UTC as parsed from "2006-01-02"). The sex digit is not checked
// against anything: the applicant gives no sex.
func (Kazakhstan) Person(id string, birth time.Time) (string, error) {
	if e := checkIIN(id, birth); e != nil {
		if misread(e.Code) && checkBIN(id) == nil {
			return "", refusal("KZ", KindPerson, CodeWrongKind,
				"this is a BIN, a business's number (its 5th digit is %c); a person is identified by the IIN", id[4])
		}
		return "", e
	}
	return id, nil
}

// Business checks a BIN.
func (Kazakhstan) Business(id string) (string, error) {
	if e := checkBIN(id); e != nil {
		if misread(e.Code) && checkIIN(id, time.Time{}) == nil {
			return "", refusal("KZ", KindBusiness, CodeWrongKind,
				"this is an IIN, a person's number; a business is identified by the BIN")
		}
		return "", e
	}
	return id, nil
}

// misread reports whether a refusal concerns the meaning of the digits
// rather than how they were written, so that the string may be a valid
// number of the other kind.
func misread(code string) bool {
	switch code {
	case CodeBirthDate, CodeCentury, CodeEntityType, CodeAttribute, CodeRegistrationDate,
		CodeChecksum, CodeNoCheckDigit:
		return true
	}
	return false
}

// kzDigits checks that id is written as 12 ASCII digits and returns them.
func kzDigits(kind, name, id string) ([12]int, *Error) {
	var d [12]int
	if e := screen("KZ", kind, name, id); e != nil {
		return d, e
	}
	aName := "a " + name
	if name == "IIN" {
		aName = "an " + name
	}
	if what := notDigit(id, ""); what != "" {
		return d, refusal("KZ", kind, CodeFormat, "%s: %s is written as 12 digits, with no spaces or separators", what, aName)
	}
	if len(id) != len(d) {
		return d, refusal("KZ", kind, CodeLength, "%s has 12 digits; this has %d", aName, len(id))
	}
	for i := range d {
		d[i] = int(id[i] - '0')
	}
	return d, nil
}

// The two weight sequences of the IIN/BIN check digit (Decree No. 565): the
// first is 1..11; the second starts at 3 and wraps after 11.
var (
	kzWeights1 = [11]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	kzWeights2 = [11]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2}
)

// kzCheckDigit returns the check digit of an IIN or BIN whose first 11
// digits are d, or -1 when none exists: the weighted sum mod 11 with the
// first weights; if that is 10, with the second; if that is 10 too, the
// number is never issued.
func kzCheckDigit(d []int) int {
	for _, w := range [][11]int{kzWeights1, kzWeights2} {
		sum := 0
		for i, wi := range w {
			sum += wi * d[i]
		}
		if c := sum % 11; c != 10 {
			return c
		}
	}
	return -1
}

// kzChecksum refuses digits whose check digit is wrong or cannot exist.
func kzChecksum(kind, name string, d [12]int) *Error {
	switch c := kzCheckDigit(d[:11]); {
	case c < 0:
		return refusal("KZ", kind, CodeNoCheckDigit,
			"no %s can start with these 11 digits (no check digit exists for them); a digit is probably mistyped", name)
	case c != d[11]:
		return refusal("KZ", kind, CodeChecksum,
			"the check digit (12th) does not match the other digits; a digit is probably mistyped or two are swapped")
	}
	return nil
}

// iinCentury returns the first year of the century digit c (1-6) encodes.
func iinCentury(c int) int { return 1800 + 100*((c-1)/2) }

func checkIIN(id string, birth time.Time) *Error {
	d, e := kzDigits(KindPerson, "IIN", id)
	if e != nil {
		return e
	}
	c := d[6]
	if c < 1 || c > 6 {
		return refusal("KZ", KindPerson, CodeCentury,
			"the 7th digit (century of birth and sex) is %d; it must be 1-6", c)
	}
	year := iinCentury(c) + 10*d[0] + d[1]
	month, day := 10*d[2]+d[3], 10*d[4]+d[5]
	if month < 1 || month > 12 {
		return refusal("KZ", KindPerson, CodeBirthDate,
			"digits 3-4 (month of birth) are %02d; a month is 01-12", month)
	}
	if day < 1 || day > daysIn(year, time.Month(month)) {
		return refusal("KZ", KindPerson, CodeBirthDate,
			"digits 5-6 (day of birth) are %02d; %s %d has %d days", day, time.Month(month), year, daysIn(year, time.Month(month)))
	}
	if e := kzChecksum(KindPerson, "IIN", d); e != nil {
		return e
	}
	if birth.IsZero() {
		return nil
	}
	by, bm, bd := birth.Date()
	switch {
	case by == year && int(bm) == month && bd == day:
		return nil
	case int(bm) == month && bd == day && (by%100+100)%100 == year%100:
		return refusal("KZ", KindPerson, CodeCentury,
			"the 7th digit (%d) says born in the %ds, but the birth date given is in %d", c, iinCentury(c), by)
	}
	return refusal("KZ", KindPerson, CodeBirthDate,
		"the birth date in the IIN (digits 1-6) is not the birth date given")
}

// daysIn returns the number of days in month of year (proleptic Gregorian,
// so 1800 and 1900 have no 29 February and 2000 has).
func daysIn(year int, month time.Month) int {
	return time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func checkBIN(id string) *Error {
	d, e := kzDigits(KindBusiness, "BIN", id)
	if e != nil {
		return e
	}
	if month := 10*d[2] + d[3]; month < 1 || month > 12 {
		return refusal("KZ", KindBusiness, CodeRegistrationDate,
			"digits 3-4 (month of registration) are %02d; a month is 01-12", month)
	}
	if t := d[4]; t < 4 || t > 6 {
		return refusal("KZ", KindBusiness, CodeEntityType,
			"the 5th digit (type of entity) is %d; it must be 4 (resident legal entity), 5 (non-resident legal entity) or 6 (joint individual entrepreneurship)", t)
	}
	if a := d[5]; a > 3 {
		return refusal("KZ", KindBusiness, CodeAttribute,
			"the 6th digit (head unit, branch, representative office or peasant holding) is %d; it must be 0-3", a)
	}
	return kzChecksum(KindBusiness, "BIN", d)
}

// ErrNoCheckDigit is returned (wrapped) by KZIIN and KZBIN when the digits
// asked for have no check digit; the next serial will do.
var ErrNoCheckDigit = errors.New("no check digit exists for these digits")

// KZIIN computes a valid IIN for someone born on birth's calendar date
// (1800-2099) with serial 0-9999, for tests and sample registries. About
// one serial in 121 has no check digit: the error then wraps
// ErrNoCheckDigit.
func KZIIN(birth time.Time, male bool, serial int) (string, error) {
	y, m, dd := birth.Date()
	if y < 1800 || y > 2099 {
		return "", fmt.Errorf("idnum: KZIIN: birth year %d is outside 1800-2099, which an IIN cannot encode", y)
	}
	if serial < 0 || serial > 9999 {
		return "", fmt.Errorf("idnum: KZIIN: serial %d is outside 0-9999", serial)
	}
	c := 2*((y-1800)/100) + 1
	if !male {
		c++
	}
	return kzNumber(fmt.Sprintf("%02d%02d%02d%d%04d", y%100, int(m), dd, c, serial))
}

// KZEntityType is a BIN's 5th digit.
type KZEntityType int

// The types of entity a BIN names.
const (
	KZResident    KZEntityType = 4 // resident legal entity
	KZNonResident KZEntityType = 5 // non-resident legal entity
	KZJointIP     KZEntityType = 6 // individual entrepreneur in joint entrepreneurship, IP(S)
)

// KZAttribute is a BIN's 6th digit.
type KZAttribute int

// The attributes of a BIN's entity.
const (
	KZHeadUnit             KZAttribute = 0
	KZBranch               KZAttribute = 1
	KZRepresentativeOffice KZAttribute = 2
	KZPeasantHolding       KZAttribute = 3 // peasant (farm) holding in joint entrepreneurship
)

// KZBIN computes a valid BIN for an entity registered in registered's year
// (1900-2099) and month, with serial 0-99999, for tests and sample
// registries. The error wraps ErrNoCheckDigit when the digits have no check
// digit; the next serial will do.
func KZBIN(registered time.Time, typ KZEntityType, attr KZAttribute, serial int) (string, error) {
	y, m, _ := registered.Date()
	switch {
	case y < 1900 || y > 2099:
		return "", fmt.Errorf("idnum: KZBIN: registration year %d is outside 1900-2099", y)
	case typ < KZResident || typ > KZJointIP:
		return "", fmt.Errorf("idnum: KZBIN: entity type %d is not 4, 5 or 6", typ)
	case attr < KZHeadUnit || attr > KZPeasantHolding:
		return "", fmt.Errorf("idnum: KZBIN: attribute %d is not 0-3", attr)
	case serial < 0 || serial > 99999:
		return "", fmt.Errorf("idnum: KZBIN: serial %d is outside 0-99999", serial)
	}
	return kzNumber(fmt.Sprintf("%02d%02d%d%d%05d", y%100, int(m), typ, attr, serial))
}

// kzNumber appends the check digit to 11 ASCII digits.
func kzNumber(body string) (string, error) {
	d := make([]int, len(body))
	for i := range body {
		d[i] = int(body[i] - '0')
	}
	c := kzCheckDigit(d)
	if c < 0 {
		return "", fmt.Errorf("idnum: %w", ErrNoCheckDigit)
	}
	return body + string(rune('0'+c)), nil
}
