package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ra/registry"
)

var testNow = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func clock() time.Time { return testNow }

// del marks a key to remove in with.
type del struct{}

// with returns a copy of m with the pairs set (del{} removes the key).
func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if _, ok := kv[i+1].(del); ok {
			delete(out, k)
			continue
		}
		out[k] = kv[i+1]
	}
	return out
}

func aigerim() map[string]any {
	return map[string]any{
		"country": "KZ", "national_id": "880312448217", "given_name": "Aigerim", "family_name": "Sadykova",
		"birth_date": "1988-03-12", "alive": true, "phone": "+77017431862", "email": "aigerim.sadykova@example.kz",
	}
}

func nurlan() map[string]any {
	return map[string]any{
		"country": "KZ", "national_id": "850721313761", "given_name": "Nurlan", "family_name": "Bekov",
		"birth_date": "1985-07-21", "alive": true,
	}
}

func rep(country, id, role string, canSign bool) map[string]any {
	return map[string]any{"country": country, "national_id": id, "role": role, "can_sign": canSign}
}

func dala() map[string]any {
	return map[string]any{
		"country": "KZ", "registration_number": "150340219487", "name": "Dala Logistics LLP", "active": true,
		"phone": "+77172695140", "email": "dala.logistics@example.kz",
		"representatives": []any{
			rep("KZ", "850721313761", "director", true),
			rep("KZ", "880312448217", "chief accountant", false),
		},
	}
}

func doc(t testing.TB, top map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func validDoc() map[string]any {
	return map[string]any{
		"source":     "test-registry",
		"version":    "v3",
		"persons":    []any{aigerim(), nurlan()},
		"businesses": []any{dala()},
	}
}

func TestFromBytesLookups(t *testing.T) {
	f, err := registry.FromBytes("test.json", doc(t, validDoc()), clock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	p, ev, err := f.Person(ctx, "KZ", "880312448217")
	if err != nil {
		t.Fatal(err)
	}
	want := registry.Person{
		Country: "KZ", NationalID: "880312448217", GivenName: "Aigerim", FamilyName: "Sadykova",
		BirthDate: "1988-03-12", Alive: true, Phone: "+77017431862", Email: "aigerim.sadykova@example.kz",
	}
	if p != want {
		t.Errorf("person = %+v, want %+v", p, want)
	}
	wantHash, _ := registry.CanonicalHash(want)
	if ev.Source != "file:test-registry" || ev.Record != registry.RecordPerson || ev.Version != "v3" ||
		!bytes.Equal(ev.Hash, wantHash) || !ev.LookedUpAt.Equal(testNow) {
		t.Errorf("evidence = %+v", ev)
	}

	b, ev, err := f.Business(ctx, "KZ", "150340219487")
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "Dala Logistics LLP" || !b.Active || len(b.Representatives) != 2 ||
		b.Representatives[0] != (registry.Representative{Country: "KZ", NationalID: "850721313761", Role: "director", CanSign: true}) ||
		b.Representatives[1].CanSign {
		t.Errorf("business = %+v", b)
	}
	if ev.Record != registry.RecordBusiness || len(ev.Hash) != 32 {
		t.Errorf("business evidence = %+v", ev)
	}
	// The caller's copy is its own.
	b.Representatives[1].CanSign = true
	again, _, _ := f.Business(ctx, "KZ", "150340219487")
	if again.Representatives[1].CanSign {
		t.Error("changing a returned business changed the registry")
	}

	for _, tc := range []struct {
		name, country, id string
		business          bool
		want              error
	}{
		{"unknown person", "KZ", "880312448218", false, registry.ErrNotFound},
		{"other country", "PK", "880312448217", false, registry.ErrNotFound},
		{"a business is not a person", "KZ", "150340219487", false, registry.ErrNotFound},
		{"unknown business", "KZ", "150340219488", true, registry.ErrNotFound},
		{"lower-case country", "kz", "880312448217", false, registry.ErrInvalidKey},
		{"separators", "KZ", "880312-448217", false, registry.ErrInvalidKey},
		{"empty id", "KZ", "", true, registry.ErrInvalidKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.business {
				_, _, err = f.Business(ctx, tc.country, tc.id)
			} else {
				_, _, err = f.Person(ctx, tc.country, tc.id)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.id != "" && strings.Contains(err.Error(), tc.id) && !tc.business {
				t.Errorf("error %q shows the full identifier", err)
			}
		})
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := f.Person(cctx, "KZ", "880312448217"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled lookup: err = %v", err)
	}
}

func TestEvidenceHashStable(t *testing.T) {
	d := validDoc()
	f1, err := registry.FromBytes("a.json", doc(t, d), clock)
	if err != nil {
		t.Fatal(err)
	}
	// Same records, other order, other white space, other source.
	d2 := with(d, "source", "elsewhere", "persons", []any{nurlan(), aigerim()})
	b, _ := json.MarshalIndent(d2, "", "    ")
	f2, err := registry.FromBytes("b.json", b, clock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, e1, _ := f1.Person(ctx, "KZ", "880312448217")
	_, e2, _ := f2.Person(ctx, "KZ", "880312448217")
	if !bytes.Equal(e1.Hash, e2.Hash) {
		t.Error("person hash differs across loads")
	}
	_, e1, _ = f1.Business(ctx, "KZ", "150340219487")
	_, e2, _ = f2.Business(ctx, "KZ", "150340219487")
	if !bytes.Equal(e1.Hash, e2.Hash) {
		t.Error("business hash differs across loads")
	}
	// A changed record hashes differently.
	f3, err := registry.FromBytes("c.json", doc(t, with(d, "persons", []any{with(aigerim(), "alive", false), nurlan()})), clock)
	if err != nil {
		t.Fatal(err)
	}
	_, e3, _ := f3.Person(ctx, "KZ", "880312448217")
	_, e1, _ = f1.Person(ctx, "KZ", "880312448217")
	if bytes.Equal(e1.Hash, e3.Hash) {
		t.Error("a dead person hashes as the living one")
	}
}

func TestSourceDefaultsToName(t *testing.T) {
	f, err := registry.FromBytes("people.json", doc(t, with(validDoc(), "source", del{}, "version", del{})), clock)
	if err != nil {
		t.Fatal(err)
	}
	_, ev, err := f.Person(context.Background(), "KZ", "850721313761")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Source != "file:people.json" || ev.Version != "" {
		t.Errorf("evidence = %+v", ev)
	}
}

func TestFromBytesLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want []string // each must be one of the problems (substring match)
	}{
		{"syntax", []byte(`{"persons": [}`), []string{"document: JSON syntax error at byte 14"}},
		{"truncated", []byte(`{"persons": [`), []string{"document: the JSON ends too early"}},
		{"empty", []byte(``), []string{"document: no JSON value"}},
		{"not an object", []byte(`[]`), []string{"document: a JSON array"}},
		{"trailing data", append(doc(t, validDoc()), []byte(` {}`)...), []string{"document: data after the JSON document"}},
		{"unknown top-level field", doc(t, with(validDoc(), "comment", "hi")), []string{`document: unknown field "comment"`}},
		// What encoding/json would resolve silently: the second list kept,
		// "ALIVE" read as alive.
		{"two person lists", []byte(`{"persons": [], "persons": []}`), []string{`document: member "persons" appears twice`}},
		{"a field in another case", []byte(strings.Replace(string(doc(t, with(validDoc(), "persons", []any{with(aigerim(), "alive", false), nurlan()}))), `"alive":false`, `"alive":false,"ALIVE":true`, 1)),
			[]string{`document: member "ALIVE" is not "alive"`}},
		{"not UTF-8", []byte("{\"source\": \"\xff\"}"), []string{"document: not UTF-8"}},
		{"a business name with a bidirectional override", doc(t, with(validDoc(), "businesses", []any{with(dala(), "name", "Dala \u202eLogistics")})),
			[]string{"businesses[0]: name: contains a format character"}},
		{"no persons", doc(t, with(validDoc(), "persons", []any{}, "businesses", del{})), []string{"document: no persons"}},
		{"unknown person field", doc(t, with(validDoc(), "persons", []any{with(aigerim(), "nickname", "Aika"), nurlan()})),
			[]string{`persons[0]: unknown field "nickname"`}},
		{"unknown representative field", doc(t, with(validDoc(), "businesses", []any{with(dala(), "representatives", []any{with(rep("KZ", "850721313761", "director", true), "title", "Mr")})})),
			[]string{`businesses[0]: unknown field "title"`}},
		{"wrong type", doc(t, with(validDoc(), "persons", []any{with(aigerim(), "alive", "yes"), nurlan()})),
			[]string{"persons[0]: alive: a JSON string where true or false was expected"}},
		{"missing fields", doc(t, with(validDoc(), "persons", []any{with(aigerim(), "alive", del{}, "given_name", del{}, "birth_date", ""), nurlan()})),
			[]string{"persons[0]: alive: missing", "persons[0]: given_name: missing", "persons[0]: birth_date: missing"}},
		{"null is missing", doc(t, with(validDoc(), "persons", []any{with(aigerim(), "alive", nil), nurlan()})),
			[]string{"persons[0]: alive: missing"}},
		{"bad date", doc(t, with(validDoc(), "persons", []any{with(aigerim(), "birth_date", "1988-02-30"), with(nurlan(), "birth_date", "21.07.1985")})),
			[]string{`persons[0]: birth_date: "1988-02-30" is not a date`, `persons[1]: birth_date: "21.07.1985" is not a date`}},
		{"future date", doc(t, with(validDoc(), "persons", []any{with(aigerim(), "birth_date", "2026-03-02"), nurlan()})),
			[]string{"persons[0]: birth_date: 2026-03-02 is in the future"}},
		{"country", doc(t, with(validDoc(), "persons", []any{with(aigerim(), "country", "kz"), with(nurlan(), "country", "KAZ")})),
			[]string{`persons[0]: country: "kz" is not two upper-case letters`, `persons[1]: country: "KAZ" is not two upper-case letters`}},
		{"business country", doc(t, with(validDoc(), "businesses", []any{with(dala(), "country", "K1")})),
			[]string{`businesses[0]: country: "K1" is not two upper-case letters`}},
		{"identifier with separators", doc(t, with(validDoc(), "persons", []any{with(aigerim(), "national_id", "8803-1244-8217"), nurlan()})),
			[]string{"persons[0]: national_id: ", "is not canonical"}},
		{"phone and e-mail", doc(t, with(validDoc(), "persons", []any{with(aigerim(), "phone", "8 701 743 18 62", "email", "Aigerim <a@example.kz>"), nurlan()})),
			[]string{`persons[0]: phone: "8 701 743 18 62" is not an E.164 number`, `persons[0]: email: "Aigerim <a@example.kz>" is not a bare e-mail address`}},
		{"white space around a name", doc(t, with(validDoc(), "persons", []any{with(aigerim(), "family_name", " Sadykova"), nurlan()})),
			[]string{`persons[0]: family_name: " Sadykova" has surrounding white space`}},
		{"duplicate person", doc(t, with(validDoc(), "persons", []any{aigerim(), nurlan(), with(aigerim(), "given_name", "Aika")})),
			[]string{"persons[2]: person KZ ********8217 is already persons[0]"}},
		{"duplicate business", doc(t, with(validDoc(), "businesses", []any{dala(), with(dala(), "name", "Dala 2")})),
			[]string{"businesses[1]: business KZ 150340219487 is already businesses[0]"}},
		{"business fields", doc(t, with(validDoc(), "businesses", []any{with(dala(), "active", del{}, "name", "", "representatives", del{})})),
			[]string{"businesses[0]: active: missing", "businesses[0]: name: missing", "businesses[0]: representatives: missing"}},
		{"representative fields", doc(t, with(validDoc(), "businesses", []any{with(dala(), "representatives", []any{map[string]any{"country": "KZ", "national_id": "850721313761"}})})),
			[]string{"businesses[0]: representatives[0].role: missing", "businesses[0]: representatives[0].can_sign: missing"}},
		{"representative not a person", doc(t, with(validDoc(), "businesses", []any{with(dala(), "representatives", []any{rep("KZ", "850721313761", "director", true), rep("PK", "6110148392762", "attorney", true)})})),
			[]string{"businesses[0].representatives[1]: representative PK *********2762 is not a person of this registry"}},
		{"representative twice", doc(t, with(validDoc(), "businesses", []any{with(dala(), "representatives", []any{rep("KZ", "850721313761", "director", true), rep("KZ", "850721313761", "attorney", false)})})),
			[]string{"businesses[0]: representatives[1].national_id: KZ ********3761 is listed twice (also representatives[0])"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := registry.FromBytes("t.json", tc.data, clock)
			var le *registry.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want a *LoadError", err)
			}
			if le.Name != "t.json" {
				t.Errorf("name = %q", le.Name)
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

// checkMasked fails if err shows a full national identifier of the tests.
func checkMasked(t *testing.T, err error) {
	t.Helper()
	for _, id := range []string{"880312448217", "850721313761", "6110148392762"} {
		if strings.Contains(err.Error(), id) {
			t.Errorf("error shows identifier %s: %v", id, err)
		}
	}
}

func containsProblem(problems []string, want string) bool {
	for _, p := range problems {
		if strings.Contains(p, want) {
			return true
		}
	}
	return false
}

func TestEveryProblemAtOnce(t *testing.T) {
	d := with(validDoc(),
		"persons", []any{with(aigerim(), "birth_date", "1988-13-01"), nurlan(), with(nurlan(), "country", "kz"), nurlan()},
		"businesses", []any{with(dala(), "active", "no"), with(dala(), "registration_number", "X-1")},
	)
	_, err := registry.FromBytes("t.json", doc(t, d), clock)
	var le *registry.LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v", err)
	}
	want := []string{"persons[0]: birth_date", "persons[2]: country", "persons[3]: person KZ", "businesses[0]: active", "businesses[1]: registration_number"}
	if len(le.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(le.Problems), len(want), strings.Join(le.Problems, "\n"))
	}
	for _, w := range want {
		if !containsProblem(le.Problems, w) {
			t.Errorf("missing %q", w)
		}
	}
	if !strings.Contains(err.Error(), "5 problems") {
		t.Errorf("message: %v", err)
	}
}

func TestLoadArguments(t *testing.T) {
	if _, err := registry.FromBytes("", doc(t, validDoc()), clock); err == nil {
		t.Error("no name: no error")
	}
	if _, err := registry.FromBytes("x", doc(t, validDoc()), nil); err == nil {
		t.Error("no clock: no error")
	}
}

func TestOpenFileJSON(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "people.json")
	if err := os.WriteFile(path, doc(t, with(validDoc(), "source", del{})), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := registry.OpenFile(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	if f.Source() != "file:people.json" || len(f.Persons()) != 2 || len(f.Businesses()) != 1 {
		t.Errorf("source %q, %d persons, %d businesses", f.Source(), len(f.Persons()), len(f.Businesses()))
	}

	other := filepath.Join(dir, "people.yaml")
	if err := os.WriteFile(other, []byte("persons: []"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := registry.OpenFile(other, clock); err == nil {
		t.Error("a .yaml file loaded")
	}
	if _, err := registry.OpenFile(filepath.Join(dir, "missing.json"), clock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}
