package registry

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func fuzzClock() time.Time { return time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) }

// FuzzFromBytes: no input panics the loader, and whatever loads looks up
// to itself with its canonical hash.
func FuzzFromBytes(f *testing.F) {
	f.Add(sampleJSON)
	f.Add([]byte(`{"persons": [{"country": "KZ", "national_id": "1", "given_name": "A", "family_name": "B", "birth_date": "2000-01-01", "alive": true}]}`))
	f.Add([]byte(`{"persons": [], "businesses": [{"representatives": [{}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		reg, err := FromBytes("fuzz.json", data, fuzzClock)
		if err != nil {
			if reg != nil {
				t.Fatal("a registry and an error")
			}
			return
		}
		checkLoaded(t, reg)
	})
}

// FuzzFromCSV: the same for the three CSV tables, split from one input at
// form feeds.
func FuzzFromCSV(f *testing.F) {
	f.Add("country,national_id,given_name,family_name,birth_date,alive\nKZ,1,A,B,2000-01-01,true\n" +
		"\fcountry,registration_number,name,active\nKZ,2,C,true\n" +
		"\fbusiness_country,registration_number,country,national_id,role,can_sign\nKZ,2,KZ,1,director,true\n")
	f.Add("\ufeffalive,country\n\"x\n")
	f.Fuzz(func(t *testing.T, data string) {
		parts := strings.SplitN(data, "\f", 3)
		var files CSVFiles
		files.Persons = strings.NewReader(parts[0])
		if len(parts) > 1 {
			files.Businesses = strings.NewReader(parts[1])
		}
		if len(parts) > 2 {
			files.Representatives = strings.NewReader(parts[2])
		}
		reg, err := FromCSV("fuzz", files, fuzzClock)
		if err != nil {
			return
		}
		checkLoaded(t, reg)
	})
}

func checkLoaded(t *testing.T, reg *File) {
	ctx := context.Background()
	for _, p := range reg.Persons() {
		got, ev, err := reg.Person(ctx, p.Country, p.NationalID)
		want, _ := CanonicalHash(p)
		if err != nil || got != p || !bytes.Equal(ev.Hash, want) {
			t.Fatalf("person %+v: got %+v, %v", p, got, err)
		}
	}
	for _, b := range reg.Businesses() {
		got, ev, err := reg.Business(ctx, b.Country, b.RegistrationNumber)
		want, _ := CanonicalHash(b)
		if err != nil || got.Name != b.Name || !bytes.Equal(ev.Hash, want) {
			t.Fatalf("business %+v: got %+v, %v", b, got, err)
		}
		for _, r := range b.Representatives {
			if _, _, err := reg.Person(ctx, r.Country, r.NationalID); err != nil {
				t.Fatalf("representative %+v is no person: %v", r, err)
			}
		}
	}
}

// FuzzDecodeResponse: no registry answer panics the HTTP decoders, and an
// accepted one is for the record asked.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"country": "PK", "national_id": "6110148392762", "given_name": "Ayesha", "family_name": "Khan", "birth_date": "1987-06-14", "alive": true, "version": "v1"}`))
	f.Add([]byte(`{"country": "PK", "registration_number": "6110148392762", "name": "N", "active": false, "representatives": [{"country": "PK", "national_id": "1", "role": "r", "can_sign": true}], "x": [1, {}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		const country, id = "PK", "6110148392762"
		if p, _, err := decodePerson(body, country, id, fuzzClock()); err == nil && (p.Country != country || p.NationalID != id) {
			t.Fatalf("accepted a person for %s %s", p.Country, p.NationalID)
		}
		if b, _, err := decodeBusiness(body, country, id); err == nil && (b.Country != country || b.RegistrationNumber != id) {
			t.Fatalf("accepted a business for %s %s", b.Country, b.RegistrationNumber)
		}
	})
}
