package ra_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/hsm/hsmtest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/policies"
	"github.com/sanadpki/sanad/ra"
	"github.com/sanadpki/sanad/ra/registry"
)

// The CA fixture keeps its keys in SoftHSM2; Main removes the token
// directory when the test binary exits.
func TestMain(m *testing.M) { hsmtest.Main(m) }

// raFixture is a real RA served over HTTP: a migrated store (SQLite or
// PostgreSQL), the CA of catest, the sample registry, the shipped profiles
// and RA policy, and the development outbox. It holds one registered RA
// officer and one enrollment waiting for its one-time code, so that
// requests can name things that exist.
type raFixture struct {
	driver string
	db     *store.DB
	raw    *sql.DB // the same database, for reading every table
	url    string  // the httptest server's base URL
	mux    *http.ServeMux
	outbox string
	// officer is an active RA officer whose certificate this CA issued;
	// it is also a certificate holder for the revocation route.
	officer identity
	// stranger has a self-signed certificate: a key the RA has never seen.
	stranger identity
	// caKey is the issuing CA's own key, which the RA must never certify.
	caKey crypto.Signer
	// registryKey signs the national registry's events.
	registryKey *ecdsa.PrivateKey
	// pending is an enrollment in pending_proof.
	pending string
	// ca is the issuing CA the RA uses; svc is the RA, made of deps.
	ca   *ca.CA
	svc  *ra.Service
	deps ra.Deps
}

// identity is a certificate and its private key.
type identity struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// newRAFixture builds the RA over a fresh store of driver and the CA of f;
// opts change the RA's dependencies before it is made (a clock, limits).
func newRAFixture(t *testing.T, f catest.Fixture, driver string, opts ...func(*ra.Deps)) *raFixture {
	t.Helper()
	db, raw := storetest.Open(t, driver)
	log := audit.New(time.Now)
	authority := f.CA(t, db, log)
	profiles, err := profile.LoadAll(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := ra.LoadPolicy(policies.FS, profiles)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Sample(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	fx := &raFixture{driver: driver, db: db, raw: raw, outbox: ownerOnlyDir(t), caKey: f.CAKey, ca: authority, registryKey: newKey(t)}
	deps := ra.Deps{
		Store: db, Audit: log, CA: authority, Revoker: authority,
		Issuers:  map[string]*x509.Certificate{f.Issuer.ID: f.Issuer.Certificate},
		Registry: reg, Notifier: ra.Outbox{Dir: fx.outbox}, Profiles: profiles, Policy: policy,
		Forbidden: authority.ForbiddenKeys, Now: time.Now,
		RegistryKeys: []ra.RegistryKey{{Name: "registry:test", Key: fx.registryKey.Public()}},
		// As cmd/sanad sets it.
		IntentWithProof: driver == store.DriverSQLite,
	}
	for _, o := range opts {
		o(&deps)
	}
	svc, err := ra.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	// On SQLite the RA's transactions share the database's one group
	// commit with the CA's issuance writes; on PostgreSQL the RA has its own.
	if shared := ra.GroupOf(svc) == db.Group(); shared != (db.Driver() == store.DriverSQLite) {
		t.Fatalf("%s: the RA's transactions in the database's group commit: %v", db.Driver(), shared)
	}
	fx.svc, fx.deps = svc, deps
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close) // before the store closes: cleanups run last in, first out
	fx.url, fx.mux = srv.URL, mux

	fx.officer = registerOfficer(t, authority, db)
	fx.stranger = selfSigned(t)

	// An enrollment waiting for its code; its message is taken out of the
	// outbox, which hostile requests must then leave empty.
	code, body := fx.do(t, http.MethodPost, "/api/v1/enrollments", http.Header{"Content-Type": {"application/json"}},
		enrollBody(t, citizen(), "citizen-sign", csrPEM(t, newKey(t))))
	var v ra.View
	if code != http.StatusCreated || json.Unmarshal(body, &v) != nil || v.State != store.StatePendingProof {
		t.Fatalf("fixture enrollment: %d %s", code, body)
	}
	fx.pending = v.ID
	if err := os.Remove(filepath.Join(fx.outbox, v.ID+".json")); err != nil {
		t.Fatal(err)
	}
	return fx
}

// registerOfficer has the CA issue an officer certificate and records the
// officer (role ra-officer), as `sanad dev` does.
func registerOfficer(t *testing.T, authority *ca.CA, db *store.DB) identity {
	t.Helper()
	return registerOfficerAs(t, authority, db, "Yerlan Officer", yerlan)
}

// yerlan is the fixture's RA officer, a person outside the sample registry.
var yerlan = profile.Verified{Country: "KZ", NationalID: "700422364275", GivenName: "Yerlan", FamilyName: "Tulegenov"}

// danaPerson and aigerimPerson are the persons tests register as further
// officers (Aigerim Sadykova is also a citizen of the sample registry).
var (
	danaPerson    = profile.Verified{Country: "KZ", NationalID: "850714400178", GivenName: "Dana", FamilyName: "Serikova"}
	aigerimPerson = profile.Verified{Country: "KZ", NationalID: "880312448217", GivenName: "Aigerim", FamilyName: "Sadykova"}
)

// registerOfficerAs registers an RA officer certificate for the person v:
// called twice with one person, it is one officer with two certificates.
func registerOfficerAs(t *testing.T, authority *ca.CA, db *store.DB, name string, v profile.Verified) identity {
	t.Helper()
	return registerOfficerKey(t, authority, db, name, v, newKey(t))
}

// registerOfficerKey is registerOfficerAs with the officer's key given.
func registerOfficerKey(t *testing.T, authority *ca.CA, db *store.DB, name string, v profile.Verified, key *ecdsa.PrivateKey) identity {
	t.Helper()
	ctx := t.Context()
	cert, err := authority.Issue(ctx, ca.Request{Profile: "officer", CSR: []byte(csrPEM(t, key)), Verified: v, Actor: "ra fixture"})
	if err != nil {
		t.Fatal(err)
	}
	fp := sha256.Sum256(cert.Raw)
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		return tx.PutOfficer(ctx, store.Officer{Fingerprint: fp[:], CertificateDER: cert.Raw, Name: name,
			Roles: []string{"ra-officer"}, Active: true, CreatedAt: time.Now().UTC()})
	}); err != nil {
		t.Fatal(err)
	}
	return identity{cert: cert, key: key}
}

func selfSigned(t *testing.T) identity {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x5a17), Subject: pkix.Name{CommonName: "Not An Officer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return identity{cert: cert, key: key}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// csrPEM is a CSR of signer's key, as an applicant's software makes it.
func csrPEM(t *testing.T, signer crypto.Signer) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER(t, signer)}))
}

// csrDER is an empty-subject CSR for signer's key, DER.
func csrDER(t *testing.T, signer crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// citizen is Aigerim Sadykova of the sample registry.
func citizen() map[string]any {
	return map[string]any{"kind": "person", "country": "KZ", "national_id": "880312448217",
		"given_name": "Aigerim", "family_name": "Sadykova", "birth_date": "1988-03-12"}
}

// business is Indus Textiles of the sample registry, represented by its
// director Ayesha Khan.
func business() map[string]any {
	return map[string]any{"kind": "business", "country": "PK", "registration_number": "32778761",
		"representative": map[string]any{"kind": "person", "country": "PK", "national_id": "6110148392762",
			"given_name": "Ayesha", "family_name": "Khan", "birth_date": "1987-06-14"}}
}

func enrollBody(t *testing.T, applicant map[string]any, profileName, csr string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"profile": profileName, "applicant": applicant, "csr": csr})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// do sends one request to the RA and returns the status and body.
func (fx *raFixture) do(t *testing.T, method, path string, header http.Header, body []byte) (int, []byte) {
	t.Helper()
	code, _, raw := fx.send(t, method, path, header, body)
	return code, raw
}

func (fx *raFixture) send(t *testing.T, method, path string, header http.Header, body []byte) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, fx.url+path, r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, raw
}

// dbState is every row of every table in the store's schema: table name →
// the rows as text, sorted. Comparing two states finds inserts, deletes and
// updates alike.
type dbState map[string][]string

// tables lists the tables of the current schema from the catalog, so that
// a table added by a later migration is covered without editing this test.
func (fx *raFixture) tables(t *testing.T) []string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`
	if fx.driver == store.DriverPostgres {
		// storetest's schema is the connection's search_path.
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	rows, err := fx.raw.QueryContext(t.Context(), q)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	for _, must := range []string{"enrollments", "subjects", "audit_events", "signed_request_nonces"} {
		if !slices.Contains(names, must) {
			t.Fatalf("the catalog lists %q, without %s: not the store's schema", names, must)
		}
	}
	return names
}

func (fx *raFixture) state(t *testing.T) dbState {
	t.Helper()
	st := dbState{}
	for _, table := range fx.tables(t) {
		// The name comes from the catalog, not from a request.
		rows, err := fx.raw.QueryContext(t.Context(), `SELECT * FROM "`+table+`"`)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		lines := []string{}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("read %s: %v", table, err)
			}
			cells := make([]string, len(vals))
			for i, v := range vals {
				switch v := v.(type) {
				case []byte:
					cells[i] = hex.EncodeToString(v)
				case time.Time:
					cells[i] = v.UTC().Format(time.RFC3339Nano)
				default:
					cells[i] = fmt.Sprint(v)
				}
			}
			lines = append(lines, strings.Join(cells, "|"))
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		rows.Close()
		sort.Strings(lines)
		st[table] = lines
	}
	return st
}

// counts is the number of rows per table.
func (st dbState) counts() map[string]int {
	c := make(map[string]int, len(st))
	for table, rows := range st {
		c[table] = len(rows)
	}
	return c
}

// diff says how after differs from st, table by table; empty if not at all.
func (st dbState) diff(after dbState) []string {
	var out []string
	names := make([]string, 0, len(st)+len(after))
	for n := range st {
		names = append(names, n)
	}
	for n := range after {
		if _, ok := st[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		b, a := st[n], after[n]
		switch {
		case len(b) != len(a):
			out = append(out, fmt.Sprintf("%s: %d rows, then %d", n, len(b), len(a)))
		case !slices.Equal(b, a):
			out = append(out, fmt.Sprintf("%s: %d rows, changed", n, len(a)))
		}
	}
	return out
}

// outboxFiles lists the one-time code messages written so far.
func (fx *raFixture) outboxFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(fx.outbox)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// q writes a query's $N parameters as the fixture's database wants them.
func (fx *raFixture) q(query string) string {
	if fx.driver == store.DriverSQLite {
		return strings.ReplaceAll(query, "$", "?")
	}
	return query
}

// ownerOnlyDir is a new directory of mode 0700, as an outbox must be
// (t.TempDir's own are 0755 under umask 022).
func ownerOnlyDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "outbox")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}
