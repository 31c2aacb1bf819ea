package idnum_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ra/idnum"
)

// validIINs are IINs with their holders' birth dates. The published ones
// come from outside this package (so they test our reading of the
// algorithm, not our writer against our reader); the computed ones were made
// by KZIIN and checked against an independent implementation.
var validIINs = []struct {
	name  string
	id    string
	birth time.Time
	male  bool
}{
	// Published examples.
	{"py-kz-validators README", "791028302728", date(1979, 10, 28), true},
	{"kz-iin-validator README", "061211600012", date(2006, 12, 11), false},
	{"mock registry record", "790303402568", date(1979, 3, 3), false},
	// Computed: every century, both sexes, leap days, edges of the range.
	{"first day of the 1800s", "000101100016", date(1800, 1, 1), true},
	{"leap day 1896", "960229200177", date(1896, 2, 29), false},
	{"last day of the 1800s", "991231142422", date(1899, 12, 31), true},
	{"1900 has no leap day, 1 March", "000301403057", date(1900, 3, 1), false},
	{"leap day 1964", "640229327189", date(1964, 2, 29), true},
	{"1985", "850714400014", date(1985, 7, 14), false},
	{"leap day 2000", "000229699995", date(2000, 2, 29), false},
	{"serial 0", "190630500005", date(2019, 6, 30), true},
	{"leap day 2024", "240229512348", date(2024, 2, 29), true},
	{"last day of the 2000s", "991231600776", date(2099, 12, 31), false},
}

// validBINs are BINs, published ones first, then one of every entity type
// and attribute computed by KZBIN.
var validBINs = []struct {
	name string
	id   string
}{
	{"Halyk Bank head office (1994)", "940140000385"},
	{"Halyk Bank branch (1995)", "950341000052"},
	{"Halyk Bank branch (1996)", "961141000023"},
	{"Halyk Bank branch (2007)", "070941024691"},
	{"python-stdnum example", "990140004654"},
	{"resident, head unit", "150340123858"},
	{"resident, branch", "150341123863"},
	{"resident, representative office", "150342123879"},
	{"resident, peasant holding", "150343123884"},
	{"non-resident, head unit", "150350123951"},
	{"non-resident, branch", "150351123967"},
	{"non-resident, representative office", "150352123972"},
	{"non-resident, peasant holding", "150353123988"},
	{"joint IP, head unit", "150360124052"},
	{"joint IP, branch", "150361124068"},
	{"joint IP, representative office", "150362124073"},
	{"joint IP, peasant holding", "150363124089"},
}

func TestKZPersonValid(t *testing.T) {
	kz := checker(t, "KZ")
	for _, tt := range validIINs {
		t.Run(tt.name, func(t *testing.T) {
			for _, birth := range []time.Time{tt.birth, {}, tt.birth.Add(23 * time.Hour)} {
				got, err := kz.Person(tt.id, birth)
				if err != nil || got != tt.id {
					t.Errorf("Person(%s, %v) = %q, %v", tt.id, birth, got, err)
				}
			}
		})
	}
}

func TestKZBusinessValid(t *testing.T) {
	kz := checker(t, "KZ")
	for _, tt := range validBINs {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := kz.Business(tt.id); err != nil || got != tt.id {
				t.Errorf("Business(%s) = %q, %v", tt.id, got, err)
			}
		})
	}
}

func TestKZPersonInvalid(t *testing.T) {
	kz := checker(t, "KZ")
	tests := []struct {
		name  string
		id    string
		birth time.Time
		code  string
	}{
		{"11 digits", "79102830272", time.Time{}, idnum.CodeLength},
		{"13 digits", "7910283027281", time.Time{}, idnum.CodeLength},
		{"separators", "791028-30272-8", time.Time{}, idnum.CodeFormat},
		{"spaces inside", "791028 302728", time.Time{}, idnum.CodeFormat},
		{"century digit 0", "791028002728", time.Time{}, idnum.CodeCentury},
		{"century digit 7", "791028702728", time.Time{}, idnum.CodeCentury},
		{"century digit 9", "791028902728", time.Time{}, idnum.CodeCentury},
		{"month 00", "790028302728", time.Time{}, idnum.CodeBirthDate},
		{"month 13", "791328302728", time.Time{}, idnum.CodeBirthDate},
		{"day 00", "791000302728", time.Time{}, idnum.CodeBirthDate},
		{"31 April", "790431302728", time.Time{}, idnum.CodeBirthDate},
		{"29 February 1979", "790229302728", time.Time{}, idnum.CodeBirthDate},
		{"29 February 1900", "000229302728", time.Time{}, idnum.CodeBirthDate},
		{"29 February 1800", "000229102728", time.Time{}, idnum.CodeBirthDate},
		{"last digit changed", "791028302729", time.Time{}, idnum.CodeChecksum},
		{"one digit changed", "791028302828", time.Time{}, idnum.CodeChecksum},
		{"two digits swapped", "791028307228", time.Time{}, idnum.CodeChecksum},
		{"no check digit exists", "850714300970", time.Time{}, idnum.CodeNoCheckDigit},
		{"no check digit exists, other last digit", "850714300979", time.Time{}, idnum.CodeNoCheckDigit},
		{"another birth day", "791028302728", date(1979, 10, 27), idnum.CodeBirthDate},
		{"another birth month", "791028302728", date(1979, 11, 28), idnum.CodeBirthDate},
		{"another birth year", "791028302728", date(1978, 10, 28), idnum.CodeBirthDate},
		{"birth in another century", "791028302728", date(2079, 10, 28), idnum.CodeCentury},
		{"birth in the 1800s", "061211600012", date(1806, 12, 11), idnum.CodeCentury},
		{"birth year the IIN cannot encode", "061211600012", date(2206, 12, 11), idnum.CodeCentury},
		{"leap-day IIN, next day given", "000229699995", date(2000, 3, 1), idnum.CodeBirthDate},
		{"BIN given", "940140000385", time.Time{}, idnum.CodeWrongKind},
		{"BIN given with a birth date", "150363124089", date(2015, 3, 1), idnum.CodeWrongKind},
		{"BIN-like but bad checksum", "940140000386", time.Time{}, idnum.CodeCentury},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := kz.Person(tt.id, tt.birth)
			if got != "" {
				t.Errorf("Person returned %q with the error", got)
			}
			wantCode(t, err, "KZ", idnum.KindPerson, tt.code, tt.id)
		})
	}
}

func TestKZBusinessInvalid(t *testing.T) {
	kz := checker(t, "KZ")
	tests := []struct{ name, id, code string }{
		{"11 digits", "94014000038", idnum.CodeLength},
		{"spaces inside", "940 140 000 385", idnum.CodeFormat},
		{"month 00", "940040000385", idnum.CodeRegistrationDate},
		{"month 13", "941340000385", idnum.CodeRegistrationDate},
		{"month 99", "949940000385", idnum.CodeRegistrationDate},
		{"entity type 3", "940130000385", idnum.CodeEntityType},
		{"entity type 7", "940170000385", idnum.CodeEntityType},
		{"entity type 9", "940190000385", idnum.CodeEntityType},
		{"attribute 4", "940144000385", idnum.CodeAttribute},
		{"attribute 9", "940149000385", idnum.CodeAttribute},
		{"last digit changed", "940140000386", idnum.CodeChecksum},
		{"two digits swapped", "940140003085", idnum.CodeChecksum},
		{"no check digit exists", "150340000090", idnum.CodeNoCheckDigit},
		{"IIN given", "791028302728", idnum.CodeWrongKind},
		{"IIN of the 2000s given", "000229699995", idnum.CodeWrongKind},
		{"IIN-like but bad checksum", "791028302729", idnum.CodeEntityType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := kz.Business(tt.id)
			if got != "" {
				t.Errorf("Business returned %q with the error", got)
			}
			wantCode(t, err, "KZ", idnum.KindBusiness, tt.code, tt.id)
		})
	}
}

// oracleCheck is the IIN/BIN check digit written again from the rule, apart
// from the package's code: weights 1..11, sum mod 11; if 10, weights
// 3..11,1,2; if 10 again, none (-1).
func oracleCheck(body string) int {
	sum := 0
	for i := 0; i < 11; i++ {
		sum += (i + 1) * int(body[i]-'0')
	}
	if sum%11 != 10 {
		return sum % 11
	}
	sum = 0
	for i := 0; i < 11; i++ {
		w := i + 3
		if w > 11 {
			w -= 11
		}
		sum += w * int(body[i]-'0')
	}
	if sum%11 != 10 {
		return sum % 11
	}
	return -1
}

// TestKZCheckDigitProperty takes random valid IIN and BIN bodies (11
// digits) and tries all ten last digits: exactly the one the rule gives
// validates, or none when the rule says no check digit exists.
func TestKZCheckDigitProperty(t *testing.T) {
	kz := checker(t, "KZ")
	rng := rand.New(rand.NewPCG(6, 2))
	none := 0
	for n := 0; n < 20000; n++ {
		var body []byte
		var validate func(string) error
		if n%2 == 0 {
			c := 1 + rng.IntN(6)
			year := 1800 + 100*((c-1)/2) + rng.IntN(100)
			birth := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rng.IntN(366))
			if birth.Year() != year {
				birth = birth.AddDate(0, 0, -1)
			}
			body = birth.AppendFormat(nil, "060102")
			body = append(body, byte('0'+c))
			body = append(body, randomDigits(rng, 4)...)
			validate = func(id string) error { _, err := kz.Person(id, birth); return err }
		} else {
			body = append(body, byte('0'+rng.IntN(10)), byte('0'+rng.IntN(10)))
			month := 1 + rng.IntN(12)
			body = append(body, byte('0'+month/10), byte('0'+month%10), byte('4'+rng.IntN(3)), byte('0'+rng.IntN(4)))
			body = append(body, randomDigits(rng, 5)...)
			validate = func(id string) error { _, err := kz.Business(id); return err }
		}
		want := oracleCheck(string(body))
		if want < 0 {
			none++
		}
		valid := 0
		for c := byte('0'); c <= '9'; c++ {
			id := string(append(body, c))
			err := validate(id)
			switch {
			case err == nil:
				valid++
				if int(c-'0') != want {
					t.Fatalf("%s validates; the rule gives check digit %d", id, want)
				}
			case want < 0 && !isCode(err, idnum.CodeNoCheckDigit):
				t.Fatalf("%s: %v, want no-check-digit", id, err)
			case want >= 0 && !isCode(err, idnum.CodeChecksum):
				t.Fatalf("%s: %v, want checksum", id, err)
			}
		}
		if (want < 0 && valid != 0) || (want >= 0 && valid != 1) {
			t.Fatalf("body %s: %d last digits validate, rule gives %d", body, valid, want)
		}
	}
	// About one body in 121 has no check digit; make sure that case ran.
	if none == 0 {
		t.Error("no body without a check digit was drawn")
	}
}

func randomDigits(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + rng.IntN(10))
	}
	return b
}

func isCode(err error, code string) bool {
	var ie *idnum.Error
	return errors.As(err, &ie) && ie.Code == code
}

func TestKZIIN(t *testing.T) {
	kz := checker(t, "KZ")
	for _, tt := range validIINs[3:] { // the computed ones
		t.Run(tt.name, func(t *testing.T) {
			serial := int(tt.id[7]-'0')*1000 + int(tt.id[8]-'0')*100 + int(tt.id[9]-'0')*10 + int(tt.id[10]-'0')
			got, err := idnum.KZIIN(tt.birth, tt.male, serial)
			if err != nil || got != tt.id {
				t.Errorf("KZIIN(%v, %v, %d) = %q, %v, want %s", tt.birth, tt.male, serial, got, err, tt.id)
			}
		})
	}
	// Every serial of one day: a valid IIN for that day, or ErrNoCheckDigit.
	birth, skipped := date(1991, 12, 16), 0
	for serial := 0; serial <= 9999; serial++ {
		id, err := idnum.KZIIN(birth, serial%2 == 0, serial)
		if errors.Is(err, idnum.ErrNoCheckDigit) {
			skipped++
			continue
		}
		if err != nil {
			t.Fatalf("KZIIN serial %d: %v", serial, err)
		}
		if _, err := kz.Person(id, birth); err != nil {
			t.Fatalf("KZIIN serial %d made %s: %v", serial, id, err)
		}
	}
	if skipped == 0 || skipped > 200 {
		t.Errorf("%d of 10000 serials had no check digit, want about 83", skipped)
	}
	bad := []struct {
		name   string
		birth  time.Time
		serial int
	}{
		{"1799", date(1799, 12, 31), 1},
		{"2100", date(2100, 1, 1), 1},
		{"negative serial", date(1990, 1, 1), -1},
		{"serial 10000", date(1990, 1, 1), 10000},
	}
	for _, tt := range bad {
		if id, err := idnum.KZIIN(tt.birth, true, tt.serial); err == nil {
			t.Errorf("%s: KZIIN = %q, want an error", tt.name, id)
		}
	}
}

func TestKZBIN(t *testing.T) {
	kz := checker(t, "KZ")
	registered := date(2015, 3, 1)
	i := 5 // validBINs[5:] are the computed ones, by type then attribute
	for typ := idnum.KZResident; typ <= idnum.KZJointIP; typ++ {
		for attr := idnum.KZHeadUnit; attr <= idnum.KZPeasantHolding; attr++ {
			got, err := idnum.KZBIN(registered, typ, attr, 12345+10*int(typ)+int(attr))
			if err != nil || got != validBINs[i].id {
				t.Errorf("KZBIN(%d, %d) = %q, %v, want %s", typ, attr, got, err, validBINs[i].id)
			}
			i++
		}
	}
	if _, err := idnum.KZBIN(registered, idnum.KZResident, idnum.KZHeadUnit, 9); !errors.Is(err, idnum.ErrNoCheckDigit) {
		t.Errorf("KZBIN serial 9: %v, want ErrNoCheckDigit", err)
	}
	for serial := 0; serial < 3000; serial++ {
		id, err := idnum.KZBIN(date(2008, 12, 31), idnum.KZNonResident, idnum.KZBranch, serial)
		if errors.Is(err, idnum.ErrNoCheckDigit) {
			continue
		}
		if err != nil {
			t.Fatalf("KZBIN serial %d: %v", serial, err)
		}
		if _, err := kz.Business(id); err != nil {
			t.Fatalf("KZBIN serial %d made %s: %v", serial, id, err)
		}
	}
	bad := []struct {
		name   string
		reg    time.Time
		typ    idnum.KZEntityType
		attr   idnum.KZAttribute
		serial int
	}{
		{"1899", date(1899, 1, 1), 4, 0, 1},
		{"2100", date(2100, 1, 1), 4, 0, 1},
		{"type 3", registered, 3, 0, 1},
		{"type 7", registered, 7, 0, 1},
		{"attribute -1", registered, 4, -1, 1},
		{"attribute 4", registered, 4, 4, 1},
		{"serial -1", registered, 4, 0, -1},
		{"serial 100000", registered, 4, 0, 100000},
	}
	for _, tt := range bad {
		if id, err := idnum.KZBIN(tt.reg, tt.typ, tt.attr, tt.serial); err == nil {
			t.Errorf("%s: KZBIN = %q, want an error", tt.name, id)
		}
	}
}
