package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File is a registry held in memory, loaded once from a JSON document or a
// directory of CSV files (see the package documentation for both layouts).
// It is read-only after loading and safe for concurrent use.
type File struct {
	source     string // Evidence.Source: "file:<name>"
	version    string // Evidence.Version: the document's "version", if any
	now        func() time.Time
	persons    []fileRecord[Person]
	businesses []fileRecord[Business]
	personAt   map[recordKey]int
	businessAt map[recordKey]int
}

type recordKey struct{ country, id string }

type fileRecord[T any] struct {
	record T
	hash   []byte // CanonicalHash(record), computed once at load
}

// LoadError lists every problem found while loading a registry file, each
// prefixed with where it is: "persons[3]", "businesses[1].representatives[0]"
// for JSON, "persons.csv:7" for CSV.
type LoadError struct {
	Name     string
	Problems []string
}

func (e *LoadError) Error() string {
	if len(e.Problems) == 1 {
		return fmt.Sprintf("registry %s: %s", e.Name, e.Problems[0])
	}
	return fmt.Sprintf("registry %s: %d problems:\n\t%s", e.Name, len(e.Problems), strings.Join(e.Problems, "\n\t"))
}

// OpenFile loads a registry from path: a ".json" file holding one document,
// or a directory holding persons.csv and, optionally, businesses.csv and
// representatives.csv. Evidence.Source is "file:" and the document's
// "source", or else the file or directory's base name.
func OpenFile(path string, now func() time.Time) (*File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open registry: %w", err)
	}
	name := filepath.Base(path)
	if fi.IsDir() {
		return openCSVDir(path, now)
	}
	if !strings.EqualFold(filepath.Ext(path), ".json") {
		return nil, fmt.Errorf("open registry %s: want a .json file or a directory of CSV files (persons.csv, businesses.csv, representatives.csv)", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open registry: %w", err)
	}
	return FromBytes(name, data, now)
}

// document is the JSON file layout; records stay raw until each is decoded
// on its own, so that every record's problems are reported, not only the
// first one's.
type document struct {
	Source     string            `json:"source"`
	Version    string            `json:"version"`
	Persons    []json.RawMessage `json:"persons"`
	Businesses []json.RawMessage `json:"businesses"`
}

// FromBytes loads a registry from a JSON document, e.g. embedded data; name
// stands for the data in errors and, when the document has no "source", in
// Evidence.Source.
func FromBytes(name string, data []byte, now func() time.Time) (*File, error) {
	if err := checkLoadArgs(name, now); err != nil {
		return nil, err
	}
	l := &loader{name: name, now: now()}
	if err := strictJSON(data); err != nil {
		return nil, &LoadError{Name: name, Problems: []string{"document: " + err.Error()}}
	}
	var doc document
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &LoadError{Name: name, Problems: []string{"document: " + jsonProblem(err)}}
		}
		// An unknown top-level field or a wrongly typed one: the rest was
		// decoded, so go on and report the records' problems too.
		l.addf("document", "%s", jsonProblem(err))
	} else if _, err := dec.Token(); err != io.EOF {
		l.addf("document", "data after the JSON document")
	}
	source := name
	if doc.Source != "" {
		var c fieldChecker
		source = c.text("source", &doc.Source)
		l.addAll("document", c.problems)
	}
	if doc.Version != "" {
		var c fieldChecker
		c.text("version", &doc.Version)
		l.addAll("document", c.problems)
	}
	for i, raw := range doc.Persons {
		where := fmt.Sprintf("persons[%d]", i)
		var w personWire
		if err := decodeRecord(raw, &w); err != nil {
			l.addf(where, "%s", jsonProblem(err))
			continue
		}
		p, problems := w.person(l.now)
		l.addPerson(where, p, problems)
	}
	for i, raw := range doc.Businesses {
		where := fmt.Sprintf("businesses[%d]", i)
		var w businessWire
		if err := decodeRecord(raw, &w); err != nil {
			l.addf(where, "%s", jsonProblem(err))
			continue
		}
		b, problems := w.business()
		repWhere := make([]string, len(b.Representatives))
		for j := range repWhere {
			repWhere[j] = fmt.Sprintf("%s.representatives[%d]", where, j)
		}
		l.addBusiness(where, b, repWhere, problems)
	}
	return l.finish(source, doc.Version, now)
}

func decodeRecord(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func checkLoadArgs(name string, now func() time.Time) error {
	switch {
	case name == "":
		return errors.New("load registry: no name")
	case now == nil:
		return fmt.Errorf("load registry %s: no clock", name)
	}
	return nil
}

// loader gathers records and problems from either file format; finish
// checks what only the whole registry can show.
type loader struct {
	name       string
	now        time.Time
	problems   []string
	persons    []placed[Person]
	businesses []placedBusiness
}

type placed[T any] struct {
	where  string
	record T
}

type placedBusiness struct {
	placed[Business]
	repWhere []string // where each representative was listed
}

func (l *loader) addf(where, format string, args ...any) {
	l.problems = append(l.problems, where+": "+fmt.Sprintf(format, args...))
}

func (l *loader) addAll(where string, problems []string) {
	for _, p := range problems {
		l.problems = append(l.problems, where+": "+p)
	}
}

// addPerson keeps a valid person; an invalid one is only reported.
func (l *loader) addPerson(where string, p Person, problems []string) {
	if len(problems) > 0 {
		l.addAll(where, problems)
		return
	}
	l.persons = append(l.persons, placed[Person]{where, p})
}

// addBusiness keeps a business, or reports it; repWhere names each of its
// representatives' place.
func (l *loader) addBusiness(where string, b Business, repWhere []string, problems []string) int {
	if len(problems) > 0 {
		l.addAll(where, problems)
		return -1
	}
	l.businesses = append(l.businesses, placedBusiness{placed[Business]{where, b}, repWhere})
	return len(l.businesses) - 1
}

// finish rejects duplicates and representatives who are not persons of the
// registry, then builds the File if nothing at all was wrong.
func (l *loader) finish(source, version string, now func() time.Time) (*File, error) {
	f := &File{
		source:     "file:" + source,
		version:    version,
		now:        now,
		personAt:   make(map[recordKey]int),
		businessAt: make(map[recordKey]int),
	}
	if len(l.persons) == 0 && len(l.problems) == 0 {
		l.addf("document", "no persons")
	}
	personWhere := make(map[recordKey]string)
	for _, p := range l.persons {
		k := recordKey{p.record.Country, p.record.NationalID}
		if first, dup := personWhere[k]; dup {
			l.addf(p.where, "person %s %s is already %s", k.country, mask(k.id), first)
			continue
		}
		personWhere[k] = p.where
		f.personAt[k] = len(f.persons)
		f.persons = append(f.persons, fileRecord[Person]{record: p.record})
	}
	businessWhere := make(map[recordKey]string)
	for _, b := range l.businesses {
		k := recordKey{b.record.Country, b.record.RegistrationNumber}
		if first, dup := businessWhere[k]; dup {
			l.addf(b.where, "business %s %s is already %s", k.country, b.record.RegistrationNumber, first)
			continue
		}
		businessWhere[k] = b.where
		for i, r := range b.record.Representatives {
			if _, ok := personWhere[recordKey{r.Country, r.NationalID}]; !ok {
				l.addf(b.repWhere[i], "representative %s %s is not a person of this registry", r.Country, mask(r.NationalID))
			}
		}
		f.businessAt[k] = len(f.businesses)
		f.businesses = append(f.businesses, fileRecord[Business]{record: b.record})
	}
	if len(l.problems) > 0 {
		return nil, &LoadError{Name: l.name, Problems: l.problems}
	}
	for i := range f.persons {
		h, err := CanonicalHash(f.persons[i].record)
		if err != nil {
			return nil, fmt.Errorf("load registry %s: %w", l.name, err)
		}
		f.persons[i].hash = h
	}
	for i := range f.businesses {
		h, err := CanonicalHash(f.businesses[i].record)
		if err != nil {
			return nil, fmt.Errorf("load registry %s: %w", l.name, err)
		}
		f.businesses[i].hash = h
	}
	return f, nil
}

// Source is what Evidence.Source says for this registry: "file:<name>".
func (f *File) Source() string { return f.source }

// Persons returns every person in file order.
func (f *File) Persons() []Person {
	out := make([]Person, len(f.persons))
	for i, p := range f.persons {
		out[i] = p.record
	}
	return out
}

// Businesses returns every business in file order.
func (f *File) Businesses() []Business {
	out := make([]Business, len(f.businesses))
	for i, b := range f.businesses {
		out[i] = cloneBusiness(b.record)
	}
	return out
}

// Person looks a person up by exact country and canonical identifier.
func (f *File) Person(ctx context.Context, country, nationalID string) (Person, Evidence, error) {
	if err := ctx.Err(); err != nil {
		return Person{}, Evidence{}, fmt.Errorf("registry person lookup: %w", err)
	}
	if err := checkKey(country, nationalID); err != nil {
		return Person{}, Evidence{}, fmt.Errorf("registry person lookup: %w", err)
	}
	i, ok := f.personAt[recordKey{country, nationalID}]
	if !ok {
		return Person{}, Evidence{}, fmt.Errorf("person %s %s: %w", country, mask(nationalID), ErrNotFound)
	}
	p := f.persons[i]
	return p.record, f.evidence(RecordPerson, p.hash), nil
}

// Business looks a business up by exact country and canonical registration
// number.
func (f *File) Business(ctx context.Context, country, registrationNumber string) (Business, Evidence, error) {
	if err := ctx.Err(); err != nil {
		return Business{}, Evidence{}, fmt.Errorf("registry business lookup: %w", err)
	}
	if err := checkKey(country, registrationNumber); err != nil {
		return Business{}, Evidence{}, fmt.Errorf("registry business lookup: %w", err)
	}
	i, ok := f.businessAt[recordKey{country, registrationNumber}]
	if !ok {
		return Business{}, Evidence{}, fmt.Errorf("business %s %s: %w", country, registrationNumber, ErrNotFound)
	}
	b := f.businesses[i]
	return cloneBusiness(b.record), f.evidence(RecordBusiness, b.hash), nil
}

func (f *File) evidence(record string, hash []byte) Evidence {
	return Evidence{
		Source:     f.source,
		Record:     record,
		Version:    f.version,
		Hash:       append([]byte(nil), hash...),
		LookedUpAt: f.now(),
	}
}
