package store

import (
	"net/url"
	"strings"
	"testing"
)

func TestSQLiteDSN(t *testing.T) {
	tests := []struct {
		name     string
		dsn      string
		wantPath string
		want     map[string]string // parameters that must have these values
		absent   []string          // parameters that must be gone
	}{
		{
			name:     "plain path",
			dsn:      "/var/lib/sanad/sanad.db",
			wantPath: "/var/lib/sanad/sanad.db",
			want: map[string]string{
				"_txlock": "immediate", "_journal_mode": "WAL", "_foreign_keys": "1",
				"_busy_timeout": "5000", "_synchronous": "FULL", "_stmt_cache_size": "128",
			},
		},
		{
			name:     "file URI keeps its own parameters",
			dsn:      "file:/tmp/x.db?cache=private&_busy_timeout=10000&_sync=NORMAL&_stmt_cache_size=0",
			wantPath: "file:/tmp/x.db",
			want:     map[string]string{"cache": "private", "_busy_timeout": "10000", "_sync": "NORMAL", "_txlock": "immediate", "_stmt_cache_size": "0"},
			absent:   []string{"_synchronous"},
		},
		{
			name:     "what correctness needs is forced",
			dsn:      "x.db?_txlock=deferred&_fk=0&_journal=DELETE&_foreign_keys=0",
			wantPath: "x.db",
			want:     map[string]string{"_txlock": "immediate", "_foreign_keys": "1", "_journal_mode": "WAL"},
			absent:   []string{"_fk", "_journal"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sqliteDSN(tc.dsn)
			if err != nil {
				t.Fatalf("sqliteDSN(%q): %v", tc.dsn, err)
			}
			path, query, _ := strings.Cut(got, "?")
			if path != tc.wantPath {
				t.Errorf("path = %q, want %q", path, tc.wantPath)
			}
			params, err := url.ParseQuery(query)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got := params[k]; len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want [%q]", k, got, v)
				}
			}
			for _, k := range tc.absent {
				if params.Has(k) {
					t.Errorf("%s present, want absent", k)
				}
			}
		})
	}
}
