package store

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestVerifiedTLS: a database on another host is reached only over TLS
// that checks the server's certificate; this host's is reached as the DSN
// says.
func TestVerifiedTLS(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://sanad@db.example/sanad?sslmode=disable":     "db.example",
		"postgres://sanad@db.example/sanad":                     "db.example", // pgx's default: prefer
		"postgres://sanad@db.example/sanad?sslmode=prefer":      "db.example",
		"postgres://sanad@db.example/sanad?sslmode=require":     "db.example",
		"host=db.example,db2.example sslmode=require dbname=x":  "db.example",
		"postgres://sanad@db.example/sanad?sslmode=verify-full": "",
		"postgres://sanad@127.0.0.1/sanad?sslmode=disable":      "",
		"postgres://sanad@[::1]/sanad?sslmode=disable":          "",
		"host=localhost dbname=sanad sslmode=disable":           "",
		"host=/var/run/postgresql dbname=sanad":                 "",
	} {
		pc, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		err = verifiedTLS(pc)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", dsn, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "verify-full")):
			t.Errorf("%s: %v, want refused for %s", dsn, err, want)
		}
	}
}
