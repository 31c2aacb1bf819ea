package registry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sanadpki/sanad/ra/registry"
)

// The same records as validDoc, as CSV tables; columns in another order
// than the documentation's, to show the header decides.
const (
	personsCSV = "\ufeffnational_id,country,given_name,family_name,birth_date,alive,phone,email\n" +
		"880312448217,KZ,Aigerim,Sadykova,1988-03-12,true,+77017431862,aigerim.sadykova@example.kz\n" +
		"850721313761,KZ,Nurlan,Bekov,1985-07-21,TRUE,,\n"
	businessesCSV = "country,registration_number,name,active,phone,email\n" +
		"KZ,150340219487,Dala Logistics LLP,true,+77172695140,dala.logistics@example.kz\n"
	representativesCSV = "business_country,registration_number,country,national_id,role,can_sign\n" +
		"KZ,150340219487,KZ,850721313761,director,true\n" +
		"KZ,150340219487,KZ,880312448217,chief accountant,false\n"
)

func csvFiles(persons, businesses, representatives string) registry.CSVFiles {
	var f registry.CSVFiles
	if persons != "" {
		f.Persons = strings.NewReader(persons)
	}
	if businesses != "" {
		f.Businesses = strings.NewReader(businesses)
	}
	if representatives != "" {
		f.Representatives = strings.NewReader(representatives)
	}
	return f
}

func TestFromCSVMatchesJSON(t *testing.T) {
	fc, err := registry.FromCSV("test", csvFiles(personsCSV, businessesCSV, representativesCSV), clock)
	if err != nil {
		t.Fatal(err)
	}
	fj, err := registry.FromBytes("test.json", doc(t, validDoc()), clock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"880312448217", "850721313761"} {
		pc, ec, err := fc.Person(ctx, "KZ", id)
		if err != nil {
			t.Fatal(err)
		}
		pj, ej, err := fj.Person(ctx, "KZ", id)
		if err != nil {
			t.Fatal(err)
		}
		if pc != pj {
			t.Errorf("CSV %+v, JSON %+v", pc, pj)
		}
		if !bytes.Equal(ec.Hash, ej.Hash) {
			t.Errorf("person %s: CSV and JSON hashes differ", id)
		}
		if ec.Source != "file:test" || ec.Version != "" {
			t.Errorf("CSV evidence = %+v", ec)
		}
	}
	bc, ec, err := fc.Business(ctx, "KZ", "150340219487")
	if err != nil {
		t.Fatal(err)
	}
	_, ej, _ := fj.Business(ctx, "KZ", "150340219487")
	if len(bc.Representatives) != 2 || !bc.Representatives[0].CanSign || bc.Representatives[1].CanSign {
		t.Errorf("business = %+v", bc)
	}
	if !bytes.Equal(ec.Hash, ej.Hash) {
		t.Error("business: CSV and JSON hashes differ")
	}
}

func TestFromCSVPersonsOnly(t *testing.T) {
	f, err := registry.FromCSV("people", csvFiles(personsCSV, "", ""), clock)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Persons()) != 2 || len(f.Businesses()) != 0 {
		t.Errorf("%d persons, %d businesses", len(f.Persons()), len(f.Businesses()))
	}
	// A business without representatives rows has none.
	f, err = registry.FromCSV("people", csvFiles(personsCSV, businessesCSV, ""), clock)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := f.Business(context.Background(), "KZ", "150340219487")
	if err != nil || b.Representatives == nil || len(b.Representatives) != 0 {
		t.Errorf("business = %+v, %v", b, err)
	}
}

func TestFromCSVLoadErrors(t *testing.T) {
	const personsHeader = "country,national_id,given_name,family_name,birth_date,alive,phone,email\n"
	for _, tc := range []struct {
		name                                 string
		persons, businesses, representatives string
		want                                 []string
	}{
		{"no persons table", "", businessesCSV, "", []string{"persons.csv: missing"}},
		{"empty persons table", "\n", "", "", []string{"persons.csv: empty"}},
		{"header only", personsHeader, "", "", []string{"document: no persons"}},
		{"unknown column", "country,national_id,given_name,family_name,birth_date,alive,nickname\n", "", "",
			[]string{`persons.csv:1: unknown column "nickname"`}},
		{"missing column", "country,national_id,given_name,birth_date,alive\n", "", "",
			[]string{`persons.csv:1: missing column "family_name"`}},
		{"column twice", "country,national_id,given_name,family_name,birth_date,alive,country\n", "", "",
			[]string{`persons.csv:1: column "country" twice`}},
		{"ragged row", personsHeader + "KZ,880312448217,Aigerim\n", "", "",
			[]string{"persons.csv:2: wrong number of fields"}},
		{"bad cells", personsHeader +
			"KZ,880312448217,Aigerim,Sadykova,1988-03-12,yes,,\n" +
			"kz,850721313761,Nurlan,Bekov,1985-07-21,true,,\n" +
			"KZ,850721313762,Nurlan,,1985-02-30,,,\n", "", "",
			[]string{
				`persons.csv:2: alive: "yes" is not true or false`,
				`persons.csv:3: country: "kz" is not two upper-case letters`,
				"persons.csv:4: family_name: missing",
				`persons.csv:4: birth_date: "1985-02-30" is not a date`,
				"persons.csv:4: alive: missing",
			}},
		{"duplicate person", personsCSV + "880312448217,KZ,Aika,Sadykova,1988-03-12,true,,\n", "", "",
			[]string{"persons.csv:4: person KZ ********8217 is already persons.csv:2"}},
		{"duplicate business", personsCSV, businessesCSV + "KZ,150340219487,Dala 2,true,,\n", "",
			[]string{"businesses.csv:3: business KZ 150340219487 is already businesses.csv:2"}},
		{"business fields", personsCSV, "country,registration_number,name,active\nKZ,150340219487,,maybe\n", "",
			[]string{"businesses.csv:2: name: missing", `businesses.csv:2: active: "maybe" is not true or false`}},
		{"representative of an unknown business", personsCSV, businessesCSV,
			representativesCSV + "KZ,999999999999,KZ,850721313761,director,true\n",
			[]string{"representatives.csv:4: business KZ 999999999999 is not in businesses.csv"}},
		{"representative not a person", personsCSV, businessesCSV,
			representativesCSV + "KZ,150340219487,PK,6110148392762,attorney,true\n",
			[]string{"representatives.csv:4: representative PK *********2762 is not a person of this registry"}},
		{"representative twice", personsCSV, businessesCSV,
			representativesCSV + "KZ,150340219487,KZ,850721313761,attorney,false\n",
			[]string{"representatives.csv:4: representative KZ ********3761 is listed twice for this business (also representatives.csv:2)"}},
		{"representative fields", personsCSV, businessesCSV,
			"business_country,registration_number,country,national_id,role,can_sign\nKZ,150340219487,KZ,850721313761,,\n",
			[]string{"representatives.csv:2: role: missing", "representatives.csv:2: can_sign: missing"}},
		{"quote error", personsHeader + "KZ,880312448217,\"Aigerim,Sadykova,1988-03-12,true,,\n", "", "",
			[]string{"persons.csv:2: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := registry.FromCSV("t", csvFiles(tc.persons, tc.businesses, tc.representatives), clock)
			var le *registry.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want a *LoadError", err)
			}
			for _, w := range tc.want {
				if !containsProblem(le.Problems, w) {
					t.Errorf("no problem %q in\n%s", w, strings.Join(le.Problems, "\n"))
				}
			}
			checkMasked(t, err)
		})
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenFileCSVDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kz-registry")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{
		registry.PersonsCSV:         personsCSV,
		registry.BusinessesCSV:      businessesCSV,
		registry.RepresentativesCSV: representativesCSV,
		"README.txt":                "not a table",
	})
	f, err := registry.OpenFile(dir, clock)
	if err != nil {
		t.Fatal(err)
	}
	if f.Source() != "file:kz-registry" {
		t.Errorf("source = %q", f.Source())
	}
	b, _, err := f.Business(context.Background(), "KZ", "150340219487")
	if err != nil || len(b.Representatives) != 2 {
		t.Errorf("business = %+v, %v", b, err)
	}

	// A misspelt table is reported with the other problems, never ignored.
	writeFiles(t, dir, map[string]string{
		"representative.csv": representativesCSV,
		registry.PersonsCSV:  personsCSV + "1,KZ,X,Y,1990-01-01,dead,,\n",
	})
	_, err = registry.OpenFile(dir, clock)
	var le *registry.LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v", err)
	}
	for _, w := range []string{"representative.csv: unexpected file", `persons.csv:4: alive: "dead"`} {
		if !containsProblem(le.Problems, w) {
			t.Errorf("no problem %q in\n%s", w, strings.Join(le.Problems, "\n"))
		}
	}

	empty := t.TempDir()
	if _, err := registry.OpenFile(empty, clock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory without persons.csv: err = %v", err)
	}
}

func TestFromCSVReadError(t *testing.T) {
	files := registry.CSVFiles{Persons: io.MultiReader(strings.NewReader(personsCSV), errReader{})}
	_, err := registry.FromCSV("t", files, clock)
	var le *registry.LoadError
	if !errors.As(err, &le) || !containsProblem(le.Problems, "disk on fire") {
		t.Errorf("err = %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }
