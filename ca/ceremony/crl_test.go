package ceremony_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/ca/ceremony"
)

// TestCRLCarriesEntries: after the first, a CRL ceremony names the
// issuer's previous CRL and carries every entry of it, with its time and
// reason, beside the new ones; it drops only the entry of a certificate
// that expired before the previous CRL was issued (RFC 5280 §3.3), and
// says so in its transcript. A later CRL without its predecessor, one that
// revokes again what is revoked, drops an entry too soon or one not there,
// or names another CA's CRL or a later one, is refused before the root's
// key signs anything.
func TestCRLCarriesEntries(t *testing.T) {
	tok, raw, set := rootOnNewToken(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "root.yaml"), raw)
	opts := options(t, set)
	s, err := ceremony.Load(filepath.Join(dir, "root.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rootRes, err := ceremony.Run(t.Context(), s, opts)
	if err != nil {
		t.Fatal(err)
	}
	rootKey, err := tok.Token.FindKey(t.Context(), "sanad-root-g1")
	if err != nil {
		t.Fatal(err)
	}
	// Two CA certificates the root signed: one expired a week ago, one valid.
	now := time.Now()
	certify := func(name string, serial int64, notAfter time.Time) {
		t.Helper()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, NotBefore: now.AddDate(-1, 0, 0), NotAfter: notAfter,
			BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}
		c := catest.Certify(t, tmpl, rootRes.Certificate, rootKey.Public(), rootKey)
		writeFile(t, filepath.Join(dir, "out", name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	certify("expired", 0x0E, now.AddDate(0, 0, -7))
	certify("valid", 0x0F, now.AddDate(1, 0, 0))

	crl := func(name, body string) (*ceremony.Script, error) {
		t.Helper()
		script := fmt.Sprintf("ceremony: crl\nwitnesses: [\"A. Officer\"]\nhsm:\n  token_label: %s\n  pin: {shares: 3}\nissuer:\n  certificate: out/root.pem\n  key_label: sanad-root-g1\ncrl:\n%s  next_update_days: 365\n  output: out/%s.crl\ntranscript: out/%s.transcript.jsonl\n",
			tok.Label, body, name, name)
		writeFile(t, filepath.Join(dir, name+".yaml"), []byte(script))
		s, err := ceremony.Load(filepath.Join(dir, name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = ceremony.Run(t.Context(), s, opts)
		return s, err
	}
	read := func(name string) *x509.RevocationList {
		t.Helper()
		der, err := os.ReadFile(filepath.Join(dir, "out", name+".crl"))
		if err != nil {
			t.Fatal(err)
		}
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return rl
	}
	entries := func(rl *x509.RevocationList) map[string]x509.RevocationListEntry {
		m := map[string]x509.RevocationListEntry{}
		for _, e := range rl.RevokedCertificateEntries {
			m[fmt.Sprintf("%X", e.SerialNumber)] = e
		}
		return m
	}

	revokedAt := now.Add(-time.Hour).UTC().Truncate(time.Second)
	if _, err := crl("root-1", fmt.Sprintf("  number: 1\n  revoked:\n    - {serial: \"1A2B\", reason: keyCompromise, revoked_at: %q}\n    - {certificate: out/expired.pem, reason: superseded}\n", revokedAt.Format(time.RFC3339))); err != nil {
		t.Fatalf("CRL 1: %v", err)
	}
	if _, err := crl("root-2", fmt.Sprintf("  number: 2\n  previous: out/root-1.crl\n  revoked:\n    - {certificate: out/valid.pem, reason: cessationOfOperation, revoked_at: %q}\n",
		now.Add(-2*time.Hour).UTC().Format(time.RFC3339))); err != nil {
		t.Fatalf("CRL 2: %v", err)
	}
	two := entries(read("root-2"))
	if len(two) != 3 || !two["1A2B"].RevocationTime.Equal(revokedAt) || two["1A2B"].ReasonCode != 1 || two["E"].ReasonCode != 4 || two["F"].ReasonCode != 5 {
		t.Errorf("CRL 2's entries: %+v", two)
	}
	if got := openssl(t, "crl", "-in", filepath.Join(dir, "out", "root-2.crl"), "-inform", "DER", "-CAfile", filepath.Join(dir, "out", "root.pem"), "-noout", "-verify"); !strings.Contains(got, "verify OK") {
		t.Errorf("openssl crl -verify: %s", got)
	}

	for _, c := range []struct{ name, body, want string }{
		{"without its predecessor", "  number: 3\n", "crl.previous: required after CRL number 1"},
		{"a drop without its predecessor", "  number: 1\n  drop: [out/expired.pem]\n", "crl.drop: only with crl.previous"},
		{"revoked again", "  number: 3\n  previous: out/root-2.crl\n  revoked:\n    - {serial: \"1a2b\", reason: superseded}\n",
			"crl.revoked[0]: serial 1a2b is on CRL 2 already (revoked " + revokedAt.Format(time.RFC3339) + ", reason 1), and stays"},
		{"restated later", fmt.Sprintf("  number: 3\n  previous: out/root-2.crl\n  revoked:\n    - {certificate: out/valid.pem, reason: keyCompromise, revoked_at: %q}\n", now.Add(-time.Hour).UTC().Format(time.RFC3339)),
			"crl.revoked[0].revoked_at: after serial 0f's revocation on CRL 2"},
		{"an older predecessor", "  number: 3\n  previous: out/root-1.crl\n", "crl.previous: out/root-1.crl is CRL number 1, not number 2"},
		{"a drop too soon", "  number: 3\n  previous: out/root-2.crl\n  drop: [out/valid.pem]\n", "crl.drop[0]: out/valid.pem expires "},
		{"a drop of what is not there", "  number: 2\n  previous: out/root-1.crl\n  drop: [out/valid.pem]\n", "crl.drop[0]: out/valid.pem (serial 0f) is not on CRL 1"},
		{"a predecessor numbered as high", "  number: 2\n  previous: out/root-2.crl\n", "crl.previous: out/root-2.crl is CRL number 2, not number 1"},
		{"another CA's CRL", "  number: 3\n  previous: out/foreign.crl\n", "crl.previous: out/foreign.crl: x509: ECDSA verification failure"},
		{"dated before its predecessor", fmt.Sprintf("  number: 3\n  previous: out/root-2.crl\n  this_update: %q\n", now.Add(-2*time.Hour).UTC().Format(time.RFC3339)),
			"after this CRL's this_update"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "another CA's CRL" {
				// CRL 2's contents under another key: a CRL the root never signed.
				foreign := read("root-2")
				key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				fakeRoot := *rootRes.Certificate
				fakeRoot.PublicKey = key.Public()
				der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(2), ThisUpdate: foreign.ThisUpdate, NextUpdate: foreign.NextUpdate,
					RevokedCertificateEntries: foreign.RevokedCertificateEntries[:1]}, &fakeRoot, key)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "out", "foreign.crl"), der)
			}
			name := "refused-" + strings.ReplaceAll(c.name, " ", "-")
			_, err := crl(name, c.body)
			var ps ceremony.Problems
			if !errors.As(err, &ps) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("run = %v; want problems with %q", err, c.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "out", name+".transcript.jsonl")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("transcript begun: %v", err)
			}
		})
	}

	// CRL 3 drops the entry of the certificate that expired before CRL 2
	// was issued, and its transcript says so; it restates the valid one's
	// as keyCompromise, which keeps its date.
	if _, err := crl("root-3", "  number: 3\n  previous: out/root-2.crl\n  drop: [out/expired.pem]\n  revoked:\n    - {certificate: out/valid.pem, reason: keyCompromise}\n"); err != nil {
		t.Fatalf("CRL 3: %v", err)
	}
	if three := entries(read("root-3")); len(three) != 2 || three["E"].SerialNumber != nil || three["1A2B"].SerialNumber == nil ||
		three["F"].ReasonCode != 1 || !three["F"].RevocationTime.Equal(two["F"].RevocationTime) {
		t.Errorf("CRL 3's entries: %+v", three)
	}
	tr := verifiedTranscript(t, filepath.Join(dir, "out", "root-3.transcript.jsonl"))
	var issued struct {
		Previous string   `json:"previous_crl_number"`
		Dropped  []string `json:"dropped_serials"`
		Serials  []string `json:"revoked_serials"`
	}
	for _, l := range tr.Lines {
		if l.Step == "crl-issue" {
			if err := json.Unmarshal(l.Data, &issued); err != nil {
				t.Fatal(err)
			}
		}
	}
	if issued.Previous != "2" || !slices.Equal(issued.Dropped, []string{"0e"}) || len(issued.Serials) != 2 {
		t.Errorf("CRL 3's transcript: %+v", issued)
	}

	// A CRL the root signed before Sanad (number 10): an entry on hold,
	// which Sanad does not offer and the lints refuse; one with an
	// invalidity date; one listed twice. The next carries the invalidity
	// date and the earlier of the two, and cannot be signed until it
	// restates the held entry, whose date it keeps.
	held, twiceAt := now.Add(-48*time.Hour).UTC().Truncate(time.Second), now.Add(-72*time.Hour).UTC().Truncate(time.Second)
	invalidity, err := asn1.MarshalWithParams(now.Add(-96*time.Hour).UTC().Truncate(time.Second), "generalized")
	if err != nil {
		t.Fatal(err)
	}
	oidInvalidityDate := asn1.ObjectIdentifier{2, 5, 29, 24}
	legacy, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(10), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.AddDate(0, 6, 0),
		RevokedCertificateEntries: []x509.RevocationListEntry{
			{SerialNumber: big.NewInt(0xAA), RevocationTime: held, ReasonCode: 6},
			{SerialNumber: big.NewInt(0xBB), RevocationTime: held, ReasonCode: 1, ExtraExtensions: []pkix.Extension{{Id: oidInvalidityDate, Value: invalidity}}},
			{SerialNumber: big.NewInt(0xCC), RevocationTime: twiceAt, ReasonCode: 4},
			{SerialNumber: big.NewInt(0xCC), RevocationTime: held, ReasonCode: 4},
		}}, rootRes.Certificate, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "out", "legacy-10.crl"), legacy)
	if _, err := crl("refused-held", "  number: 11\n  previous: out/legacy-10.crl\n"); err == nil || !strings.Contains(err.Error(), "e_cab_crl_has_valid_reason_code") {
		t.Errorf("a CRL carrying an entry on hold: %v", err)
	}
	if _, err := crl("root-11", "  number: 11\n  previous: out/legacy-10.crl\n  revoked:\n    - {serial: \"AA\", reason: cessationOfOperation}\n"); err != nil {
		t.Fatalf("CRL 11: %v", err)
	}
	eleven := read("root-11")
	byOID := func(e x509.RevocationListEntry, oid asn1.ObjectIdentifier) []byte {
		for _, x := range e.Extensions {
			if x.Id.Equal(oid) {
				return x.Value
			}
		}
		return nil
	}
	got := entries(eleven)
	if len(eleven.RevokedCertificateEntries) != 3 || got["AA"].ReasonCode != 5 || !got["AA"].RevocationTime.Equal(held) ||
		!bytes.Equal(byOID(got["BB"], oidInvalidityDate), invalidity) || got["BB"].ReasonCode != 1 || !got["CC"].RevocationTime.Equal(twiceAt) {
		t.Errorf("CRL 11's entries: %+v", eleven.RevokedCertificateEntries)
	}
}
