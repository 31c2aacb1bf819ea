package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ra/registry"
)

// kzCheckDigit is an implementation of the IIN/BIN control digit kept
// apart from anything in Sanad: weights 1..11 over the first eleven digits,
// modulo 11; a result of 10 means a second pass with weights 3..11, 1, 2; a
// second 10 means no valid number has these eleven digits (-1).
func kzCheckDigit(first11 string) int {
	passes := [2][11]int{
		{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
		{3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2},
	}
	for _, weights := range passes {
		sum := 0
		for i, w := range weights {
			sum += int(first11[i]-'0') * w
		}
		if r := sum % 11; r != 10 {
			return r
		}
	}
	return -1
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// checkIIN checks a KZ IIN: 12 digits, YYMMDD then the century/gender
// digit (1–2: 1800s, 3–4: 1900s, 5–6: 2000s), a serial and the check
// digit, against the birth date.
func checkIIN(iin, birthDate string) error {
	if len(iin) != 12 || !allDigits(iin) {
		return fmt.Errorf("not 12 digits")
	}
	if c := kzCheckDigit(iin[:11]); c < 0 || c != int(iin[11]-'0') {
		return fmt.Errorf("check digit %c, want %d", iin[11], c)
	}
	centuries := map[byte]string{'1': "18", '2': "18", '3': "19", '4': "19", '5': "20", '6': "20"}
	century, ok := centuries[iin[6]]
	if !ok {
		return fmt.Errorf("century digit %c", iin[6])
	}
	born := fmt.Sprintf("%s%s-%s-%s", century, iin[0:2], iin[2:4], iin[4:6])
	if born != birthDate {
		return fmt.Errorf("IIN says born %s, record says %s", born, birthDate)
	}
	return nil
}

// checkBIN checks a KZ BIN: YYMM of registration, entity type 4 (resident
// legal entity), an attribute digit, a serial and the check digit.
func checkBIN(bin string) error {
	if len(bin) != 12 || !allDigits(bin) {
		return fmt.Errorf("not 12 digits")
	}
	if m, _ := strconv.Atoi(bin[2:4]); m < 1 || m > 12 {
		return fmt.Errorf("month %s", bin[2:4])
	}
	if bin[4] != '4' {
		return fmt.Errorf("entity type %c, want 4", bin[4])
	}
	if c := kzCheckDigit(bin[:11]); c < 0 || c != int(bin[11]-'0') {
		return fmt.Errorf("check digit %c, want %d", bin[11], c)
	}
	return nil
}

func TestKZCheckDigitKnownAnswers(t *testing.T) {
	// Worked by hand: 8,8,0,3,1,2,4,4,8,2,1 · 1..11 = 216 ≡ 7 (mod 11).
	if got := kzCheckDigit("88031244821"); got != 7 {
		t.Errorf("first pass: got %d, want 7", got)
	}
	// 1,5,0,3,4,0,2,1,9,4,8 · 1..11 = 274 ≡ 10; · 3..11,1,2 = 216 ≡ 7.
	if got := kzCheckDigit("15034021948"); got != 7 {
		t.Errorf("second pass: got %d, want 7", got)
	}
}

func TestSample(t *testing.T) {
	f, err := registry.Sample(clock)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(registry.SampleJSON(), registry.SampleJSON()) || len(registry.SampleJSON()) == 0 {
		t.Fatal("SampleJSON is not stable")
	}
	persons, businesses := f.Persons(), f.Businesses()
	byCountry := map[string]int{}
	alive := map[string]bool{}
	secondPass := 0
	for _, p := range persons {
		byCountry[p.Country]++
		alive[p.Country+p.NationalID] = p.Alive
		if p.Phone == "" {
			t.Errorf("%s %s has no phone", p.GivenName, p.FamilyName)
		}
		switch p.Country {
		case "KZ":
			if err := checkIIN(p.NationalID, p.BirthDate); err != nil {
				t.Errorf("%s %s: IIN %s: %v", p.GivenName, p.FamilyName, p.NationalID, err)
			}
			if s := sumFirst(p.NationalID); s%11 == 10 {
				secondPass++
			}
			if !strings.HasPrefix(p.Phone, "+77") || len(p.Phone) != 12 {
				t.Errorf("%s: phone %s is not +7 7xx xxx xx xx", p.GivenName, p.Phone)
			}
			if p.Email != "" && !strings.HasSuffix(p.Email, "@example.kz") {
				t.Errorf("%s: e-mail %s", p.GivenName, p.Email)
			}
		case "PK":
			// CNIC: 13 digits, a province code 1–7 first; the last digit
			// is the gender (odd male, even female).
			if len(p.NationalID) != 13 || !allDigits(p.NationalID) || p.NationalID[0] < '1' || p.NationalID[0] > '7' {
				t.Errorf("%s: CNIC %s", p.GivenName, p.NationalID)
			}
			if !strings.HasPrefix(p.Phone, "+923") || len(p.Phone) != 13 {
				t.Errorf("%s: phone %s is not +92 3xx xxxxxxx", p.GivenName, p.Phone)
			}
			if p.Email != "" && !strings.HasSuffix(p.Email, "@example.pk") {
				t.Errorf("%s: e-mail %s", p.GivenName, p.Email)
			}
		default:
			t.Errorf("%s: country %s", p.GivenName, p.Country)
		}
		if _, err := time.Parse(time.DateOnly, p.BirthDate); err != nil {
			t.Error(err)
		}
	}
	if len(persons) < 20 || byCountry["KZ"] < 8 || byCountry["PK"] < 8 {
		t.Errorf("%d persons (%v), want at least 20 across KZ and PK", len(persons), byCountry)
	}
	if secondPass == 0 {
		t.Error("no IIN exercises the check digit's second pass")
	}

	var dead, inactive, nonSigner, twoSigners int
	bizByCountry := map[string]int{}
	for _, p := range persons {
		if !p.Alive {
			dead++
		}
	}
	for _, b := range businesses {
		bizByCountry[b.Country]++
		switch b.Country {
		case "KZ":
			if err := checkBIN(b.RegistrationNumber); err != nil {
				t.Errorf("%s: BIN %s: %v", b.Name, b.RegistrationNumber, err)
			}
			if s := sumFirst(b.RegistrationNumber); s%11 == 10 {
				secondPass++
			}
		case "PK":
			// NTN: seven digits and a check digit, written plain.
			if len(b.RegistrationNumber) != 8 || !allDigits(b.RegistrationNumber) {
				t.Errorf("%s: NTN %s", b.Name, b.RegistrationNumber)
			}
		}
		if !b.Active {
			inactive++
		}
		signers := 0
		for _, r := range b.Representatives {
			if r.CanSign {
				signers++
				if !alive[r.Country+r.NationalID] {
					t.Errorf("%s: signer %s is dead", b.Name, r.NationalID)
				}
			} else {
				nonSigner++
			}
		}
		if signers == 0 {
			t.Errorf("%s: nobody can sign", b.Name)
		}
		if signers >= 2 {
			twoSigners++
		}
	}
	if len(businesses) < 5 || bizByCountry["KZ"] < 2 || bizByCountry["PK"] < 2 {
		t.Errorf("%d businesses (%v), want at least 5 across KZ and PK", len(businesses), bizByCountry)
	}
	for what, n := range map[string]int{
		"dead person": dead, "inactive business": inactive,
		"representative without signing authority": nonSigner, "business with two signers": twoSigners,
	} {
		if n == 0 {
			t.Errorf("no %s in the sample", what)
		}
	}

	// The README's examples, looked up as the RA will.
	ctx := context.Background()
	for _, tc := range []struct{ country, id, given string }{
		{"KZ", "880312448217", "Aigerim"},
		{"PK", "6110148392762", "Ayesha"},
		{"KZ", "410509301556", "Bolat"},
	} {
		p, ev, err := f.Person(ctx, tc.country, tc.id)
		if err != nil || p.GivenName != tc.given {
			t.Errorf("%s %s: %+v, %v", tc.country, tc.id, p, err)
		}
		if ev.Source != "file:sanad-sample" || ev.Version == "" || len(ev.Hash) != 32 {
			t.Errorf("evidence = %+v", ev)
		}
	}
	for _, tc := range []struct {
		country, number string
		active          bool
		signers         int
	}{
		{"KZ", "150340219487", true, 1},
		{"PK", "32778761", true, 2},
		{"KZ", "190640833025", false, 1},
	} {
		b, _, err := f.Business(ctx, tc.country, tc.number)
		if err != nil {
			t.Errorf("%s %s: %v", tc.country, tc.number, err)
			continue
		}
		n := 0
		for _, r := range b.Representatives {
			if r.CanSign {
				n++
			}
		}
		if b.Active != tc.active || n != tc.signers {
			t.Errorf("%s: active %v, %d signers", b.Name, b.Active, n)
		}
	}
}

// sumFirst is the first-pass weighted sum, to count second-pass numbers.
func sumFirst(id string) int {
	s := 0
	for i := 0; i < 11; i++ {
		s += int(id[i]-'0') * (i + 1)
	}
	return s
}
