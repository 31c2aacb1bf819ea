package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
)

// TestCRLImport: after sanad dev (which stored the root's CRL number 1),
// an offline ceremony signs root CRL number 2 with the dev token's root key
// and `sanad crl import` stores it, checked against its transcript and
// audited as the operator's; the same CRL again, a CRL for another issuer,
// an unknown issuer, a file that is no CRL, another ceremony's transcript,
// none, and a CRL 3 whose ceremony carried the entries of another CRL 2
// than the stored one are refused; a ceremony refuses to sign a CRL dated
// in the future.
func TestCRLImport(t *testing.T) {
	requireSoftHSM(t)
	dir := filepath.Join(t.TempDir(), "var")
	env := sanadEnv()
	startDevEnv(t, dir, env).stop(t)
	cfg := filepath.Join(dir, "sanad.yaml")

	// The ceremony for CRL 2, which revokes a certificate the store does
	// not know (so its expiry is unknown), and for CRL 3, which leaves it
	// out.
	revokes := "revoked:\n        - serial: 0A0B0C\n          reason: superseded\n        - certificate: ../pki/issuing.pem\n          reason: cessationOfOperation"
	// (A ceremony carries the entries of the CRL it names as previous: CRL
	// 3 names another CRL 2, made beside the first without its
	// revocations, as an operator who brought the wrong file would.)
	previous := `previous: ../pki/root-1.crl`
	runDevCeremonyVariant(t, env, dir, "5-root-crl.yaml", "6-root-crl.yaml", "number: 1", "number: 2", "output: ../pki/root-1.crl", "output: ../pki/root-2.crl",
		`previous: ""`, previous, "5-root-crl.transcript", "6-root-crl.transcript", "CRL number 1", "CRL number 2", "revoked: []", revokes)
	runDevCeremonyVariant(t, env, dir, "5-root-crl.yaml", "6b-root-crl.yaml", "number: 1", "number: 2", "output: ../pki/root-1.crl", "output: ../pki/root-2b.crl",
		`previous: ""`, previous, "5-root-crl.transcript", "6b-root-crl.transcript", "CRL number 1", "CRL number 2")
	runDevCeremonyVariant(t, env, dir, "5-root-crl.yaml", "7-root-crl.yaml", "number: 1", "number: 3", "output: ../pki/root-1.crl", "output: ../pki/root-3.crl",
		`previous: ""`, `previous: ../pki/root-2b.crl`, "5-root-crl.transcript", "7-root-crl.transcript", "CRL number 1", "CRL number 3")
	// CRL 4, dated far ahead, would let any entry go as expired, and could
	// be published later in place of the CRLs made meanwhile: the
	// ceremony refuses to sign it (import refuses one made elsewhere).
	if code, out := devCeremonyVariant(t, env, dir, "5-root-crl.yaml", "8-root-crl.yaml", "number: 1", "number: 4", "output: ../pki/root-1.crl", "output: ../pki/root-4.crl",
		`previous: ""`, `previous: ../pki/root-3.crl`, "5-root-crl.transcript", "8-root-crl.transcript", "CRL number 1", "CRL number 4", `this_update: ""`, `this_update: "2100-01-01T00:00:00Z"`); code == 0 ||
		!strings.Contains(out, "crl.this_update: 2100-01-01T00:00:00Z is after the ceremony") {
		t.Errorf("a ceremony for a CRL dated in 2100: exit %d\n%s", code, out)
	}
	crl2, crl3 := filepath.Join(dir, "pki", "root-2.crl"), filepath.Join(dir, "pki", "root-3.crl")
	tr1 := filepath.Join(dir, "pki", "5-root-crl.transcript.jsonl")
	tr2, tr3 := filepath.Join(dir, "pki", "6-root-crl.transcript.jsonl"), filepath.Join(dir, "pki", "7-root-crl.transcript.jsonl")

	refused := map[string]struct {
		args []string
		want string
	}{
		"the stored CRL again":         {[]string{"--issuer", "root", filepath.Join(dir, "pki", "root-1.crl"), "--transcript", tr1}, ""},
		"another issuer's":             {[]string{"--issuer", "issuing", crl2, "--transcript", tr2}, "not signed by its certificate"},
		"an unknown issuer":            {[]string{"--issuer", "nope", crl2, "--transcript", tr2}, `issuer "nope" is not recorded: record its certificate first (sanad issuer add)`},
		"not a CRL":                    {[]string{"--issuer", "root", filepath.Join(dir, "pki", "root.pem"), "--transcript", tr2}, ""},
		"another ceremony's record":    {[]string{"--issuer", "root", crl2, "--transcript", tr3}, "the ceremony did not issue this CRL"},
		"a transcript that is no file": {[]string{"--issuer", "root", crl2, "--transcript", filepath.Join(dir, "nothing.jsonl")}, "no such file"},
	}
	events := func() int64 {
		t.Helper()
		code, out := runSanadEnv(t, env, "audit", "verify", "--config", cfg, "--json")
		var r struct {
			Events int64 `json:"events"`
		}
		if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &r); code != 0 || err != nil {
			t.Fatalf("audit verify: exit %d, %v\n%s", code, err, out)
		}
		return r.Events
	}
	before := events()
	if code, out := runSanadEnv(t, env, "crl", "import", "--config", cfg, "--issuer", "root", crl2); code != 2 || !strings.Contains(out, "--transcript are required") {
		t.Errorf("crl import without its transcript: exit %d, want 2\n%s", code, out)
	}
	for name, tt := range refused {
		if code, out := runSanadEnv(t, env, append([]string{"crl", "import", "--config", cfg}, tt.args...)...); code != 1 || !strings.Contains(out, tt.want) {
			t.Errorf("%s: exit %d, want 1 with %q\n%s", name, code, tt.want, out)
		}
	}
	if code, out := runSanadEnv(t, env, "crl", "import", "--config", cfg, "--issuer", "root", crl2, "--transcript", tr2); code != 0 || !strings.Contains(out, "stored CRL number 2 of root") {
		t.Fatalf("import CRL 2: exit %d\n%s", code, out)
	}
	// The issuing CA that CRL 2 revokes shows so, and so do the
	// certificates it certified; nothing is added under it.
	if code, out := runSanadEnv(t, env, "issuer", "list", "--config", cfg); code != 0 ||
		!regexp.MustCompile(`(?m)^issuing .*revoked by root's CRL number 2, cessationOfOperation, at \S+$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^ocsp .*under issuing CA issuing, which is revoked by root's CRL number 2`).MatchString(out) {
		t.Errorf("issuer list after CRL 2: exit %d\n%s", code, out)
	}
	// CRL 3 carries the entries of a CRL 2 that is not the stored one, and
	// so leaves out what the stored one revoked (TestKeepsEntries has the
	// entries of a CRL made elsewhere).
	if code, out := runSanadEnv(t, env, "crl", "import", "--config", cfg, "--issuer", "root", crl3, "--transcript", tr3); code != 1 ||
		!strings.Contains(out, "carries the entries of another CRL than number 2, the latest stored") {
		t.Errorf("import of CRL 3, made from another CRL 2: exit %d\n%s", code, out)
	}
	if got := events() - before; got != 1 {
		t.Errorf("%d audit events for the refused imports and the import, want 1 (crl.import)", got)
	}
	// The import is the operator's, with the transcript it was checked
	// against.
	if code, out := runSanadEnv(t, env, "audit", "list", "--config", cfg, "--action", "crl.import", "--json"); code != 0 ||
		!strings.Contains(out, `"actor":"operator:`) || !strings.Contains(out, `"transcript_sha256":"`+hexSHA256(mustRead(t, tr2))+`"`) {
		t.Errorf("the import's audit event: exit %d\n%s", code, out)
	}
	// Served by the status role, and the audit log holds the import.
	p := startDevEnv(t, dir, env)
	defer p.stop(t)
	code, body := httpGet(t, p.url+"/crl/root.crl")
	rl, err := x509.ParseRevocationList([]byte(body))
	if code != 200 || err != nil || rl.Number.Int64() != 2 {
		t.Fatalf("GET /crl/root.crl: %d, %v", code, err)
	}
}

// runDevCeremonyVariant runs, with `sanad ceremony run` on the dev token
// of dir, a copy (named to) of the dev ceremony script from with the
// replacements (old, new, …) made: the custodians' share is a one-of-one
// split of the dev PIN.
func runDevCeremonyVariant(t *testing.T, env []string, dir, from, to string, replacements ...string) {
	t.Helper()
	if code, out := devCeremonyVariant(t, env, dir, from, to, replacements...); code != 0 {
		t.Fatalf("ceremony run %s: exit %d\n%s", to, code, out)
	}
}

// devCeremonyVariant runs it, and returns how the run ended.
func devCeremonyVariant(t *testing.T, env []string, dir, from, to string, replacements ...string) (int, string) {
	t.Helper()
	shares := t.TempDir()
	ceremonyEnv := append(env[:len(env):len(env)], "SOFTHSM2_CONF="+filepath.Join(dir, "softhsm2.conf"))
	if code, out := runSanadEnv(t, ceremonyEnv, "ceremony", "split-pin", "--token-label", "sanad-dev", "--shares", "1", "--threshold", "1",
		"--custodians", "Dev", "--pin-file", filepath.Join(dir, "hsm-pin"), "--out", shares); code != 0 {
		t.Fatalf("split-pin: exit %d\n%s", code, out)
	}
	shareFiles, err := filepath.Glob(filepath.Join(shares, "*.json"))
	if err != nil || len(shareFiles) != 1 {
		t.Fatalf("share files %v, %v", shareFiles, err)
	}
	script, err := os.ReadFile(filepath.Join(dir, "ceremonies", from))
	if err != nil {
		t.Fatal(err)
	}
	scriptPath := filepath.Join(dir, "ceremonies", to)
	if err := os.WriteFile(scriptPath, []byte(strings.NewReplacer(replacements...).Replace(string(script))), 0o600); err != nil {
		t.Fatal(err)
	}
	return runSanadEnv(t, ceremonyEnv, "ceremony", "run", scriptPath, "--share", shareFiles[0])
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestKeepsEntries: sanad crl import takes a root's CRLs in the order of
// issue: one dated before the latest stored, or more than the clock skew
// ahead of now (a CRL a ceremony would not sign, made elsewhere), is
// refused; one dated between is not. It keeps every entry of the latest
// as it was: not dated later, its reason changed only to keyCompromise,
// and not left out while any certificate with its serial is unexpired.
// Both databases.
func TestKeepsEntries(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	certify := func(serial int64, notAfter time.Time, parent *x509.Certificate) *x509.Certificate {
		t.Helper()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: fmt.Sprintf("CA %d until %s", serial, notAfter.Format(time.DateOnly))},
			NotBefore: start.AddDate(-1, 0, 0), NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
		return catest.Certify(t, tmpl, parent, key.Public(), key)
	}
	root := certify(1, start.AddDate(10, 0, 0), nil)
	// Two CA certificates the root signed with one serial, 7: one expired
	// before CRL 1, one valid. CRL 1's entry for 7 revokes both.
	expired7, valid7 := certify(7, start.Add(-48*time.Hour), root), certify(7, start.AddDate(1, 0, 0), root)
	revokedAt := start.Add(-time.Hour)
	entries := []x509.RevocationListEntry{
		{SerialNumber: big.NewInt(5), RevocationTime: revokedAt, ReasonCode: 1},
		{SerialNumber: big.NewInt(6), RevocationTime: revokedAt, ReasonCode: 4},
		{SerialNumber: big.NewInt(7), RevocationTime: revokedAt, ReasonCode: 5},
	}
	crl := func(number int64, thisUpdate time.Time, entries []x509.RevocationListEntry) *x509.RevocationList {
		t.Helper()
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.AddDate(0, 6, 0),
			RevokedCertificateEntries: entries}, root, key)
		if err != nil {
			t.Fatal(err)
		}
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return rl
	}
	// with is entries with entry i changed.
	with := func(i int, change func(*x509.RevocationListEntry)) []x509.RevocationListEntry {
		out := slices.Clone(entries)
		change(&out[i])
		return out
	}
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		stored := crl(1, start, entries)
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			for id, c := range map[string]*x509.Certificate{"root": root, "old-7": expired7, "new-7": valid7} {
				if err := tx.PutIssuer(ctx, store.Issuer{ID: id, Name: c.Subject.CommonName, Role: map[bool]string{true: "root", false: "issuing"}[id == "root"],
					CertificateDER: c.Raw, KeyLabel: id, CreatedAt: start}); err != nil {
					return err
				}
			}
			return tx.PutCRL(ctx, store.CRL{IssuerID: "root", Number: 1, DER: stored.Raw, ThisUpdate: stored.ThisUpdate, NextUpdate: stored.NextUpdate, CreatedAt: start})
		}); err != nil {
			t.Fatal(err)
		}
		now := start.Add(24 * time.Hour)
		for _, c := range []struct {
			name       string
			thisUpdate time.Time
			entries    []x509.RevocationListEntry
			want       string
		}{
			{"dated before number 1", start.Add(-time.Minute), entries, "before number 1's"},
			{"dated ahead", now.Add(crlClockSkew + time.Minute), entries, "or in the future"},
			{"dated within the skew", now.Add(crlClockSkew - time.Minute), entries, ""},
			{"dated after number 1", start.Add(time.Hour), entries, ""},
			{"an entry dated later", start.Add(time.Hour), with(0, func(e *x509.RevocationListEntry) { e.RevocationTime = start }), "changes the entries of 05 on number 1"},
			{"an entry dated earlier", start.Add(time.Hour), with(0, func(e *x509.RevocationListEntry) { e.RevocationTime = revokedAt.Add(-time.Hour) }), ""},
			{"a reason raised to keyCompromise", start.Add(time.Hour), with(1, func(e *x509.RevocationListEntry) { e.ReasonCode = 1 }), ""},
			{"keyCompromise lowered", start.Add(time.Hour), with(0, func(e *x509.RevocationListEntry) { e.ReasonCode = 4 }), "changes the entries of 05"},
			{"the serial of a valid certificate left out", start.Add(time.Hour), entries[:2], "leaves out 07"},
		} {
			err := keepsEntries(ctx, db, "root", root, crl(2, c.thisUpdate, c.entries), now)
			if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Errorf("%s: %v, want %q", c.name, err, c.want)
			}
		}
	})
}
