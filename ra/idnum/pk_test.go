package idnum_test

import (
	"testing"
	"time"

	"github.com/sanadpki/sanad/ra/idnum"
)

func TestPKPersonValid(t *testing.T) {
	pk := checker(t, "PK")
	tests := []struct{ name, id, want string }{
		{"python-stdnum example, hyphens", "34201-0891231-8", "3420108912318"},
		{"python-stdnum example, plain", "3420108912318", "3420108912318"},
		{"Sindh, woman", "42201-0397640-8", "4220103976408"},
		{"Khyber Pakhtunkhwa", "12101-1234567-1", "1210112345671"},
		{"former FATA", "21101-0000001-3", "2110100000013"},
		{"Balochistan", "5440044885249", "5440044885249"},
		{"Islamabad", "61101-7654321-2", "6110176543212"},
		{"Gilgit-Baltistan", "71501-2345678-9", "7150123456789"},
		{"Azad Jammu and Kashmir", "82203-5555555-1", "8220355555551"},
		{"last digit 0", "35202-1234567-0", "3520212345670"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A CNIC encodes no birth date: any birth date is accepted.
			for _, birth := range []time.Time{{}, date(1980, 5, 17)} {
				got, err := pk.Person(tt.id, birth)
				if err != nil || got != tt.want {
					t.Errorf("Person(%s) = %q, %v, want %s", tt.id, got, err, tt.want)
				}
				if again, err := pk.Person(got, birth); err != nil || again != got {
					t.Errorf("Person(canonical %s) = %q, %v", got, again, err)
				}
			}
		})
	}
}

func TestPKPersonInvalid(t *testing.T) {
	pk := checker(t, "PK")
	tests := []struct{ name, id, code string }{
		{"12 digits", "342010891231", idnum.CodeLength},
		{"14 digits", "34201089123181", idnum.CodeLength},
		{"12 digits with hyphens", "34201-089123-8", idnum.CodeLength},
		{"one hyphen", "34201-08912318", idnum.CodeFormat},
		{"second hyphen only", "342010891231-8", idnum.CodeFormat},
		{"hyphens misplaced", "3420-10891231-8", idnum.CodeFormat},
		{"double hyphen", "34201--0891231-8", idnum.CodeFormat},
		{"trailing hyphen", "3420108912318-", idnum.CodeFormat},
		{"spaces for hyphens", "34201 0891231 8", idnum.CodeFormat},
		{"en dashes", "34201–0891231–8", idnum.CodeFormat},
		{"dots", "34201.0891231.8", idnum.CodeFormat},
		{"Urdu digits", "۳۴۲۰۱-۰۸۹۱۲۳۱-۸", idnum.CodeNonASCIIDigit},
		{"province 0", "04201-0891231-8", idnum.CodeRegion},
		{"province 9", "94201-0891231-8", idnum.CodeRegion},
		{"NTN given", "4174941-3", idnum.CodeWrongKind},
		{"NTN given plain", "41749413", idnum.CodeWrongKind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pk.Person(tt.id, time.Time{})
			if got != "" {
				t.Errorf("Person returned %q with the error", got)
			}
			wantCode(t, err, "PK", idnum.KindPerson, tt.code, tt.id)
		})
	}
}

func TestPKBusinessValid(t *testing.T) {
	pk := checker(t, "PK")
	tests := []struct{ name, id, want string }{
		{"org-id.guide example", "4174941-3", "41749413"},
		{"org-id.guide example, plain", "41749413", "41749413"},
		{"python-stdnum example", "3804142-1", "38041421"},
		{"leading zero kept", "0822910-4", "08229104"},
		{"individual's CNIC", "42101-1234567-1", "4210112345671"},
		{"individual's CNIC, plain", "4210112345671", "4210112345671"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pk.Business(tt.id)
			if err != nil || got != tt.want {
				t.Errorf("Business(%s) = %q, %v, want %s", tt.id, got, err, tt.want)
			}
			if again, err := pk.Business(got); err != nil || again != got {
				t.Errorf("Business(canonical %s) = %q, %v", got, again, err)
			}
		})
	}
}

func TestPKBusinessInvalid(t *testing.T) {
	pk := checker(t, "PK")
	tests := []struct{ name, id, code string }{
		{"check digit missing", "4174941", idnum.CodeLength},
		{"check digit missing, hyphen kept", "4174941-", idnum.CodeLength},
		{"6 digits", "417494", idnum.CodeLength},
		{"9 digits", "417494131", idnum.CodeLength},
		{"hyphens only", "--", idnum.CodeLength},
		{"hyphen misplaced", "417494-13", idnum.CodeFormat},
		{"two hyphens", "4174941--3", idnum.CodeFormat},
		{"leading hyphen", "-41749413", idnum.CodeFormat},
		{"spaced hyphen", "0822910 - 4", idnum.CodeFormat},
		{"slash", "4174941/3", idnum.CodeFormat},
		{"letter", "A174941-3", idnum.CodeFormat},
		{"CNIC, province 0", "02101-1234567-1", idnum.CodeRegion},
		{"CNIC, hyphens misplaced", "421011-234567-1", idnum.CodeFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pk.Business(tt.id)
			if got != "" {
				t.Errorf("Business returned %q with the error", got)
			}
			wantCode(t, err, "PK", idnum.KindBusiness, tt.code, tt.id)
		})
	}
}

func TestPKCNIC(t *testing.T) {
	pk := checker(t, "PK")
	for locality := 10000; locality <= 89999; locality += 7919 {
		for _, male := range []bool{true, false} {
			id, err := idnum.PKCNIC(locality, locality*37%10000000, male)
			if err != nil {
				t.Fatalf("PKCNIC(%d): %v", locality, err)
			}
			if got, err := pk.Person(id, time.Time{}); err != nil || got != id {
				t.Errorf("PKCNIC(%d) made %s: Person = %q, %v", locality, id, got, err)
			}
			if sex := id[12] - '0'; (sex%2 == 1) != male {
				t.Errorf("PKCNIC(male=%v) = %s: last digit says otherwise", male, id)
			}
		}
	}
	if id, _ := idnum.PKCNIC(42101, 1234567, true); id != "4210112345671" {
		t.Errorf("PKCNIC(42101, 1234567, true) = %s", id)
	}
	for _, bad := range [][2]int{{9999, 1}, {90000, 1}, {42101, -1}, {42101, 10000000}} {
		if id, err := idnum.PKCNIC(bad[0], bad[1], true); err == nil {
			t.Errorf("PKCNIC(%d, %d) = %s, want an error", bad[0], bad[1], id)
		}
	}
}
