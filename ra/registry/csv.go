package registry

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The CSV file names in a registry directory, and their columns. Columns
// may come in any order; the header row names them.
const (
	PersonsCSV         = "persons.csv"
	BusinessesCSV      = "businesses.csv"
	RepresentativesCSV = "representatives.csv"
)

var (
	personColumns = columns{
		required: []string{"country", "national_id", "given_name", "family_name", "birth_date", "alive"},
		optional: []string{"phone", "email"},
	}
	businessColumns = columns{
		required: []string{"country", "registration_number", "name", "active"},
		optional: []string{"phone", "email"},
	}
	representativeColumns = columns{
		required: []string{"business_country", "registration_number", "country", "national_id", "role", "can_sign"},
	}
)

// CSVFiles are the three tables of a CSV registry. Persons is required;
// a nil Businesses or Representatives means none.
type CSVFiles struct {
	Persons         io.Reader
	Businesses      io.Reader
	Representatives io.Reader
}

// openCSVDir loads persons.csv, businesses.csv and representatives.csv from
// dir; any other .csv there is a problem, since a misspelt
// "representative.csv" would otherwise silently drop everyone's authority.
func openCSVDir(dir string, now func() time.Time) (*File, error) {
	name := filepath.Base(dir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open registry: %w", err)
	}
	var problems []string
	for _, e := range entries {
		n := e.Name()
		if strings.EqualFold(filepath.Ext(n), ".csv") && n != PersonsCSV && n != BusinessesCSV && n != RepresentativesCSV {
			problems = append(problems, fmt.Sprintf("%s: unexpected file (want %s, %s, %s)", n, PersonsCSV, BusinessesCSV, RepresentativesCSV))
		}
	}
	var files CSVFiles
	for _, t := range []struct {
		name     string
		into     *io.Reader
		required bool
	}{
		{PersonsCSV, &files.Persons, true},
		{BusinessesCSV, &files.Businesses, false},
		{RepresentativesCSV, &files.Representatives, false},
	} {
		f, err := os.Open(filepath.Join(dir, t.name))
		switch {
		case errors.Is(err, fs.ErrNotExist) && !t.required:
			continue
		case err != nil:
			return nil, fmt.Errorf("open registry: %w", err)
		}
		defer f.Close()
		*t.into = f
	}
	file, err := FromCSV(name, files, now)
	if len(problems) == 0 {
		return file, err
	}
	var le *LoadError
	if errors.As(err, &le) {
		problems = append(problems, le.Problems...)
	} else if err != nil {
		return nil, err
	}
	return nil, &LoadError{Name: name, Problems: problems}
}

// FromCSV loads a registry from its CSV tables; name stands for them in
// errors and in Evidence.Source ("file:<name>"). CSV has no version, so
// Evidence.Version stays empty.
func FromCSV(name string, files CSVFiles, now func() time.Time) (*File, error) {
	if err := checkLoadArgs(name, now); err != nil {
		return nil, err
	}
	l := &loader{name: name, now: now()}
	if files.Persons == nil {
		l.addf(PersonsCSV, "missing")
	} else {
		l.readTable(PersonsCSV, files.Persons, personColumns, func(where string, row map[string]*string) {
			w := personWire{
				Country: row["country"], NationalID: row["national_id"],
				GivenName: row["given_name"], FamilyName: row["family_name"],
				BirthDate: row["birth_date"], Phone: row["phone"], Email: row["email"],
			}
			var c fieldChecker
			w.Alive = c.csvBool("alive", row["alive"])
			p, problems := w.person(l.now)
			l.addPerson(where, p, append(c.problems, problems...))
		})
	}
	// businessAt finds a business read so far by its key; representatives
	// rows are attached to it below.
	businessAt := make(map[recordKey]int)
	seenBusiness := make(map[recordKey]bool)
	if files.Businesses != nil {
		l.readTable(BusinessesCSV, files.Businesses, businessColumns, func(where string, row map[string]*string) {
			none := []representativeWire{}
			w := businessWire{
				Country: row["country"], RegistrationNumber: row["registration_number"],
				Name: row["name"], Phone: row["phone"], Email: row["email"],
				Representatives: &none,
			}
			var c fieldChecker
			w.Active = c.csvBool("active", row["active"])
			b, problems := w.business()
			i := l.addBusiness(where, b, nil, append(c.problems, problems...))
			k := recordKey{b.Country, b.RegistrationNumber}
			if i >= 0 && !seenBusiness[k] {
				businessAt[k] = i
			}
			seenBusiness[k] = true
		})
	}
	if files.Representatives != nil {
		l.readTable(RepresentativesCSV, files.Representatives, representativeColumns, func(where string, row map[string]*string) {
			var c fieldChecker
			k := recordKey{c.country("business_country", row["business_country"]), c.id("registration_number", row["registration_number"])}
			w := representativeWire{Country: row["country"], NationalID: row["national_id"], Role: row["role"]}
			w.CanSign = c.csvBool("can_sign", row["can_sign"])
			r := w.representative(&c, "")
			if len(c.problems) > 0 {
				l.addAll(where, c.problems)
				return
			}
			i, ok := businessAt[k]
			if !ok {
				if !seenBusiness[k] { // else the business itself was reported
					l.addf(where, "business %s %s is not in %s", k.country, k.id, BusinessesCSV)
				}
				return
			}
			b := &l.businesses[i]
			for j, other := range b.record.Representatives {
				if other.Country == r.Country && other.NationalID == r.NationalID {
					l.addf(where, "representative %s %s is listed twice for this business (also %s)", r.Country, mask(r.NationalID), b.repWhere[j])
					return
				}
			}
			b.record.Representatives = append(b.record.Representatives, r)
			b.repWhere = append(b.repWhere, where)
		})
	}
	return l.finish(name, "", now)
}

type columns struct {
	required, optional []string
}

// readTable reads one CSV table with a header row and calls each for every
// data row, with the row's cells by column name (nil for an empty cell) and
// "<table>:<line>" to report it by. A header or syntax problem ends the
// table with that problem.
func (l *loader) readTable(table string, r io.Reader, cols columns, each func(where string, row map[string]*string)) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 0 // every row as wide as the header
	header, err := cr.Read()
	if err == io.EOF {
		l.addf(table, "empty (want a header row)")
		return
	}
	if err != nil {
		l.addf(table, "%v", err)
		return
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff") // spreadsheet exports start with a BOM
	}
	known := make(map[string]bool)
	for _, c := range cols.required {
		known[c] = true
	}
	for _, c := range cols.optional {
		known[c] = true
	}
	index := make(map[string]int)
	bad := false
	for i, h := range header {
		switch _, dup := index[h]; {
		case !known[h]:
			l.addf(table+":1", "unknown column %q", h)
			bad = true
		case dup:
			l.addf(table+":1", "column %q twice", h)
			bad = true
		}
		index[h] = i
	}
	for _, c := range cols.required {
		if _, ok := index[c]; !ok {
			l.addf(table+":1", "missing column %q", c)
			bad = true
		}
	}
	if bad {
		return
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				l.addf(fmt.Sprintf("%s:%d", table, pe.Line), "%v", pe.Err)
			} else {
				l.addf(table, "%v", err)
			}
			return
		}
		line, _ := cr.FieldPos(0)
		row := make(map[string]*string, len(index))
		for c, i := range index {
			if rec[i] != "" {
				v := rec[i]
				row[c] = &v
			}
		}
		each(fmt.Sprintf("%s:%d", table, line), row)
	}
}

// csvBool reads a true/false cell; spreadsheets write TRUE and FALSE, so
// case does not matter, but nothing else (yes, 1, Y) is guessed at.
func (c *fieldChecker) csvBool(field string, v *string) *bool {
	if v == nil {
		return nil // reported as missing by the record's own check
	}
	switch strings.ToLower(*v) {
	case "true":
		t := true
		return &t
	case "false":
		f := false
		return &f
	}
	c.addf("%s: %q is not true or false", field, *v)
	f := false
	return &f
}
