package ceremony_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/ceremony"
	"github.com/sanadpki/sanad/ca/ceremony/pinshare"
	"github.com/sanadpki/sanad/ca/ceremony/transcript"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/hsm/hsmtest"
	"github.com/sanadpki/sanad/internal/testenv"
	"github.com/sanadpki/sanad/policies"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

var hierarchy = []string{"1-root.yaml", "2-issuing-key.yaml", "3-intermediate.yaml", "4-ocsp-signer.yaml", "5-root-crl.yaml", "6-audit-key.yaml"}

func options(t *testing.T, shares []pinshare.Share) ceremony.Options {
	t.Helper()
	profiles, err := profile.LoadAll(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	linter, err := ceremony.NewLinter()
	if err != nil {
		t.Fatal(err)
	}
	return ceremony.Options{
		Profiles: profiles, Linter: linter, Now: time.Now, Version: "test",
		Shares: func(_ context.Context, need int) ([]pinshare.Share, error) { return shares[:need], nil },
	}
}

// copyScripts writes the shipped example scripts into dir, pointed at the
// test tokens: root's for the offline root HSM (sanad-root), online's for
// the online CA's (sanad-online).
func copyScripts(t *testing.T, dir, root, online string) {
	t.Helper()
	for _, name := range hierarchy {
		raw, err := fs.ReadFile(policies.FS, "ceremonies/"+name)
		if err != nil {
			t.Fatal(err)
		}
		raw = bytes.ReplaceAll(raw, []byte("token_label: sanad-root"), []byte("token_label: "+root))
		raw = bytes.ReplaceAll(raw, []byte("token_label: sanad-online"), []byte("token_label: "+online))
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// recordRequestSum writes sum, a key ceremony's request's SHA-256, into the
// certifying script at path in place of the example's placeholder.
func recordRequestSum(t *testing.T, path, sum string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if sum == "" || !bytes.Contains(raw, []byte("request_sha256: COPY-FROM-CEREMONY-2")) {
		t.Fatalf("no request SHA-256 (%q), or no place for it in %s", sum, path)
	}
	if err := os.WriteFile(path, bytes.Replace(raw, []byte("COPY-FROM-CEREMONY-2"), []byte(sum), 1), 0o600); err != nil {
		t.Fatal(err)
	}
}

// verifiedTranscript reads the transcript at path, which must verify.
func verifiedTranscript(t *testing.T, path string) transcript.Result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := transcript.Verify(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return res
}

func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "openssl"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestExampleHierarchy runs the shipped hierarchy as a country would: the
// root's ceremonies on the offline root HSM, the issuing CA's key, its OCSP
// signer and the audit key on the online CA's, each token unlocked by its
// own custodians' shares.
func TestExampleHierarchy(t *testing.T) {
	tok, onlineTok := hsmtest.NewToken(t), hsmtest.NewToken(t)
	custodians := []string{"Aigerim", "Bilal", "Chen", "Dana", "Erlan"}
	shares, err := pinshare.Split(tok.PIN, tok.Label, custodians, 3)
	if err != nil {
		t.Fatal(err)
	}
	onlineCustodians := []string{"Farida", "Gulnara", "Hamid"}
	onlineShares, err := pinshare.Split(onlineTok.PIN, onlineTok.Label, onlineCustodians, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyScripts(t, dir, tok.Label, onlineTok.Label)
	opts, onlineOpts := options(t, shares[1:4]), options(t, onlineShares[1:3])
	ctx := context.Background()

	results := map[string]ceremony.Result{}
	for _, name := range hierarchy {
		if name == "3-intermediate.yaml" {
			// The witnesses of ceremony 2 wrote down its request's SHA-256.
			recordRequestSum(t, filepath.Join(dir, name), results["2-issuing-key.yaml"].RequestSHA256)
		}
		s, err := ceremony.Load(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		o := opts
		if s.HSM.TokenLabel == onlineTok.Label {
			o = onlineOpts
		}
		res, err := ceremony.Run(ctx, s, o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		results[name] = res
	}
	out := filepath.Join(dir, "out")
	root, issuing, ocsp := filepath.Join(out, "root.pem"), filepath.Join(out, "issuing.pem"), filepath.Join(out, "ocsp.pem")

	// Independent judges: OpenSSL builds and checks the chains and the CRL.
	if got := openssl(t, "verify", "-CAfile", root, issuing); !strings.Contains(got, "issuing.pem: OK") {
		t.Errorf("openssl verify issuing: %s", got)
	}
	if got := openssl(t, "verify", "-CAfile", root, "-untrusted", issuing, "-purpose", "ocsphelper", ocsp); !strings.Contains(got, "ocsp.pem: OK") {
		t.Errorf("openssl verify ocsp: %s", got)
	}
	if got := openssl(t, "verify", "-CAfile", root, "-untrusted", issuing, filepath.Join(out, "audit.pem")); !strings.Contains(got, "OK") {
		t.Errorf("openssl verify audit: %s", got)
	}
	// The audit key is revocable on the issuing CA's CRL: its certificate
	// says where that is.
	if a := readPEM(t, filepath.Join(out, "audit.pem")); !slices.Equal(a.CRLDistributionPoints, []string{"http://pki.sanad.example/crl/issuing.crl"}) ||
		!slices.Equal(a.IssuingCertificateURL, []string{"http://pki.sanad.example/ca/issuing.crt"}) {
		t.Errorf("the audit certificate's CRL and CA issuers URLs: %v, %v", a.CRLDistributionPoints, a.IssuingCertificateURL)
	}
	if got := openssl(t, "crl", "-in", filepath.Join(out, "root-1.crl"), "-inform", "DER", "-CAfile", root, "-noout", "-verify"); !strings.Contains(got, "verify OK") {
		t.Errorf("openssl crl -verify: %s", got)
	}
	// CRL check of the intermediate against the root's CRL, as a relying party would.
	crlPEM := openssl(t, "crl", "-in", filepath.Join(out, "root-1.crl"), "-inform", "DER")
	bundle := filepath.Join(dir, "root-and-crl.pem")
	rootPEM, _ := os.ReadFile(root)
	if err := os.WriteFile(bundle, append(rootPEM, crlPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := openssl(t, "verify", "-crl_check", "-CAfile", bundle, issuing); !strings.Contains(got, "OK") {
		t.Errorf("openssl verify -crl_check: %s", got)
	}

	ocspCert := readPEM(t, ocsp)
	if len(ocspCert.ExtKeyUsage) != 1 || ocspCert.ExtKeyUsage[0] != x509.ExtKeyUsageOCSPSigning || !hasExtension(ocspCert, "1.3.6.1.5.5.7.48.1.5") {
		t.Errorf("OCSP signer lacks OCSPSigning or id-pkix-ocsp-nocheck")
	}
	if issuingCert := readPEM(t, issuing); !issuingCert.MaxPathLenZero || issuingCert.CRLDistributionPoints[0] != "http://pki.sanad.example/crl/root.crl" {
		t.Errorf("issuing CA: pathlen zero %v, CRL DP %v", issuingCert.MaxPathLenZero, issuingCert.CRLDistributionPoints)
	}
	// The operator is named as ETSI EN 319 412 names a legal person, in
	// every CA's name, so in every issuer name below it.
	for _, name := range []string{"root.pem", "issuing.pem"} {
		got := openssl(t, "x509", "-in", filepath.Join(out, name), "-noout", "-subject", "-nameopt", "oid,sep_multiline")
		if !strings.Contains(got, "2.5.4.97=NTRKZ-240140010009") {
			t.Errorf("%s subject lacks the organizationIdentifier:\n%s", name, got)
		}
	}

	// The issuing CA's key is the one ceremony 2 made on the online token,
	// which signed its request (OpenSSL checks that signature).
	if got := openssl(t, "req", "-in", filepath.Join(out, "issuing.csr"), "-noout", "-verify"); !strings.Contains(got, "verif") || !strings.Contains(got, "OK") {
		t.Errorf("openssl req -verify: %s", got)
	}
	if k := results["2-issuing-key.yaml"]; k.KeySHA256 == "" || results["3-intermediate.yaml"].KeySHA256 != k.KeySHA256 || k.KeyLabel != "sanad-issuing-g1" || k.RequestPath == "" {
		t.Errorf("key ceremony %+v, certified %+v", k, results["3-intermediate.yaml"])
	}

	// Every transcript verifies and is signed by the ceremony's key: the
	// one it made, or the root's where the root signed (the issuing CA's
	// certificate, the CRL).
	rootKey := results["1-root.yaml"].KeySHA256
	for _, name := range hierarchy {
		res := results[name]
		f, err := os.Open(res.TranscriptPath)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := transcript.Verify(f)
		f.Close()
		if err != nil {
			t.Errorf("%s transcript: %v", name, err)
			continue
		}
		want, present := res.KeySHA256, custodians[1:4]
		switch name {
		case "3-intermediate.yaml", "5-root-crl.yaml":
			want = rootKey
		case "2-issuing-key.yaml", "4-ocsp-signer.yaml", "6-audit-key.yaml":
			present = onlineCustodians[1:3]
		}
		if tr.SignerKeySHA256 != want {
			t.Errorf("%s transcript signed by %s, want %s", name, tr.SignerKeySHA256, want)
		}
		var summary strings.Builder
		tr.Summary(&summary)
		for _, c := range present {
			if !strings.Contains(summary.String(), c) {
				t.Errorf("%s transcript summary does not name custodian %s", name, c)
			}
		}
	}

	// Private keys: sensitive and never extractable, as pkcs11-tool sees
	// them, each on its own token: the root's alone on the offline one.
	for _, on := range []struct {
		tok     *hsmtest.Token
		keys    []string
		without []string
	}{
		{tok, []string{"sanad-root-g1"}, []string{"sanad-issuing-g1", "sanad-ocsp-g1-1", "sanad-audit"}},
		{onlineTok, []string{"sanad-issuing-g1", "sanad-ocsp-g1-1", "sanad-audit"}, []string{"sanad-root-g1"}},
	} {
		objects := listObjects(t, on.tok)
		for _, label := range on.keys {
			block := privateKeyBlock(objects, label)
			if !strings.Contains(block, "Access:     sensitive, always sensitive, never extractable, local") {
				t.Errorf("pkcs11-tool shows %s on %s as:\n%s", label, on.tok.Label, block)
			}
		}
		for _, label := range on.without {
			if strings.Contains(objects, "label:      "+label+"\n") {
				t.Errorf("%s holds %s", on.tok.Label, label)
			}
		}
	}

	// zlint, as an independent pass over the files written: nothing at all.
	linter, err := ceremony.NewLinter()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"root.pem", "issuing.pem", "ocsp.pem", "audit.pem"} {
		if err := linter.Certificate(readPEM(t, filepath.Join(out, name)).Raw); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	// Running the root ceremony again is refused before the HSM is touched.
	s, err := ceremony.Load(filepath.Join(dir, "1-root.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ceremony.Run(ctx, s, opts)
	var ps ceremony.Problems
	if !errors.As(err, &ps) || !strings.Contains(err.Error(), "exists: a ceremony never overwrites") {
		t.Errorf("second root ceremony: %v", err)
	}
}

// TestShares runs the root ceremony with custodian shares of a 3-of-5
// split: any three unlock the token; two, a repeated, a corrupted or a
// share of another split, or shares of another token's PIN, are refused
// with a precise message, and so is a
// key label already on the token — all before any file is written.
func TestShares(t *testing.T) {
	tok := hsmtest.NewToken(t)
	set, err := pinshare.Split(tok.PIN, tok.Label, []string{"Aigerim", "Bilal", "Chen", "Dana", "Erlan"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := set[2]
	corrupt.Value = corrupt.Value[:len(corrupt.Value)-4] + "AAAA"
	other, err := pinshare.Split(tok.PIN, tok.Label, []string{"Aigerim", "Bilal", "Chen", "Dana", "Erlan"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	otherToken, err := pinshare.Split(tok.PIN, "another-token", []string{"Aigerim", "Bilal", "Chen"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		shares []pinshare.Share
		want   error
		msg    string
	}{
		{"shares 1, 3, 5", []pinshare.Share{set[0], set[2], set[4]}, nil, ""},
		{"shares 2, 3, 4", []pinshare.Share{set[1], set[2], set[3]}, nil, ""},
		{"two shares", []pinshare.Share{set[0], set[1]}, pinshare.ErrTooFewShares, "need 1 more"},
		{"a share twice", []pinshare.Share{set[0], set[1], set[1]}, pinshare.ErrDuplicateShare, "Bilal"},
		{"a corrupted share", []pinshare.Share{set[0], set[1], corrupt}, pinshare.ErrCorruptShare, "Chen"},
		{"a share of another split", []pinshare.Share{set[0], set[1], other[2]}, pinshare.ErrMixedShares, ""},
		// Before any login: on a real HSM, a wrong PIN counts towards its lock.
		{"a whole set of another token's PIN", otherToken, pinshare.ErrMixedShares, `token "another-token"'s PIN, the script's token is`},
		{"a key label already on the token", []pinshare.Share{set[0], set[1], set[2]}, hsm.ErrKeyExists, `key "root-0"`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			raw, err := fs.ReadFile(policies.FS, "ceremonies/1-root.yaml")
			if err != nil {
				t.Fatal(err)
			}
			raw = bytes.ReplaceAll(raw, []byte("token_label: sanad-root"), []byte("token_label: "+tok.Label))
			label := fmt.Sprintf("root-%d", i)
			if errors.Is(tt.want, hsm.ErrKeyExists) {
				label = "root-0" // made by the first case
			}
			raw = bytes.ReplaceAll(raw, []byte("sanad-root-g1"), []byte(label))
			raw = bytes.ReplaceAll(raw, []byte("pin: {shares: 3}"), []byte(fmt.Sprintf("pin: {shares: %d}", len(tt.shares))))
			path := filepath.Join(dir, "root.yaml")
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := ceremony.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			opts := options(t, tt.shares)
			_, err = ceremony.Run(context.Background(), s, opts)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Run = %v, want %v mentioning %q", err, tt.want, tt.msg)
			}
			if _, err := os.Stat(filepath.Join(dir, "out")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused unlock left files behind (%v)", err)
			}
		})
	}
}

func readPEM(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func hasExtension(c *x509.Certificate, oid string) bool {
	for _, e := range c.Extensions {
		if e.Id.String() == oid {
			return true
		}
	}
	return false
}

func listObjects(t *testing.T, tok *hsmtest.Token) string {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "pkcs11-tool"), "--module", tok.ModulePath, "--token-label", tok.Label,
		"--login", "--pin", "env:SANAD_TEST_PIN", "--list-objects")
	cmd.Env = append(tok.Env(), "SANAD_TEST_PIN="+string(tok.PIN.Bytes()))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	return string(out)
}

// privateKeyBlock returns pkcs11-tool's description of the private key
// labelled label: each object starts with an unindented header line.
func privateKeyBlock(objects, label string) string {
	var blocks []string
	for _, line := range strings.Split(objects, "\n") {
		if line != "" && line[0] != ' ' && line[0] != '\t' {
			blocks = append(blocks, "")
		}
		if len(blocks) > 0 {
			blocks[len(blocks)-1] += line + "\n"
		}
	}
	for _, b := range blocks {
		if strings.HasPrefix(b, "Private Key Object") && strings.Contains(b, "label:      "+label+"\n") {
			return b
		}
	}
	return ""
}

func TestCheckReportsEveryProblemWithItsLine(t *testing.T) {
	raw := `ceremony: intermediate
witnesses: []
hsm:
  token_label: t
  pin: {file: pin, shares: 2}
issuer:
  certificate: missing.pem
  key_label: root
key:
  label: "bad label!"
  type: ecdsa-p192
certificate:
  profile: root
  subject: {common_name: X, organization: O, country: Kazakhstan, organization_identifier: "240140010009"}
  validity_days: 99999
  policy_oids: [not.an.oid]
  crl_url: https://example/crl
  output: ./t.jsonl
  not_before: "2020-01-01T00:00:00Z"
transcript: t.jsonl
`
	dir := t.TempDir()
	s, err := ceremony.Parse(filepath.Join(dir, "bad.yaml"), []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check(options(t, nil).Profiles, time.Now())
	var ps ceremony.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Check = %v", err)
	}
	for _, want := range []string{
		"line 2: witnesses: name at least one person present",
		"line 5: hsm.pin: set exactly one of file, env, shares",
		"line 7: issuer.certificate:",
		`line 10: key.label: "bad label!" is not a valid key label`,
		"line 11: key.type:",
		`line 13: certificate.profile: a intermediate ceremony uses profile "intermediate", not "root"`,
		`line 14: certificate.subject.country: "Kazakhstan" is not an ISO 3166 two-letter code`,
		`line 14: certificate.subject.organization_identifier: "240140010009" is not an ETSI EN 319 412-1 identifier`,
		`line 16: certificate.policy_oids[0]: "not.an.oid" is not a dotted OID`,
		`line 17: certificate.crl_url: "https://example/crl" is not an absolute http:// URL`,
		`line 19: certificate.not_before: 2020-01-01T00:00:00Z is more than 48 hours before the ceremony: certificates are not backdated`,
		`line 18: certificate.output: ./t.jsonl is also transcript: each output is a file of its own`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
	if _, err := ceremony.Parse("x.yaml", []byte("ceremony: root\ncolour: blue\n")); err == nil || !strings.Contains(err.Error(), "line 2: field colour not found") {
		t.Errorf("unknown field: %v", err)
	}
}

// rootOnNewToken returns a new test token, the shipped root ceremony
// script pointed at it, and three custodians' shares of its PIN.
func rootOnNewToken(t *testing.T) (*hsmtest.Token, []byte, []pinshare.Share) {
	t.Helper()
	tok := hsmtest.NewToken(t)
	set, err := pinshare.Split(tok.PIN, tok.Label, []string{"Aigerim", "Bilal", "Chen"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := fs.ReadFile(policies.FS, "ceremonies/1-root.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return tok, bytes.ReplaceAll(raw, []byte("token_label: sanad-root"), []byte("token_label: "+tok.Label)), set
}

// TestLintBeforeKey: a root whose certificate the lints refuse (a common
// name over 64 characters) is refused by check's draft and by run before
// any key is generated or transcript begun, so the corrected script runs
// with the same key label.
func TestLintBeforeKey(t *testing.T) {
	tok, raw, set := rootOnNewToken(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "root.yaml")
	long := bytes.ReplaceAll(raw, []byte("common_name: Sanad National Root CA G1"), []byte("common_name: "+strings.Repeat("Sanad National Root ", 4)))
	if bytes.Equal(long, raw) {
		t.Fatal("the example root's common name moved; the test no longer lengthens it")
	}
	if err := os.WriteFile(path, long, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ceremony.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	opts := options(t, set)
	if linted, err := s.CheckDraft(time.Now(), opts); !linted || err == nil || !strings.Contains(err.Error(), "e_subject_common_name_max_length") {
		t.Errorf("CheckDraft = %v, %v; want the common name's lint", linted, err)
	}
	if _, err := ceremony.Run(context.Background(), s, opts); err == nil || !strings.Contains(err.Error(), "e_subject_common_name_max_length") {
		t.Fatalf("Run = %v, want the common name's lint", err)
	}
	if _, err := tok.Token.FindKey(context.Background(), "sanad-root-g1"); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Errorf("the refused ceremony left a key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused ceremony left files behind (%v)", err)
	}
	// Corrected, it runs.
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err = ceremony.Load(path); err != nil {
		t.Fatal(err)
	}
	if _, err := ceremony.Run(context.Background(), s, opts); err != nil {
		t.Fatalf("the corrected ceremony: %v", err)
	}
}

// TestCheckCRLDates: an offline CRL is dated when it is signed: neither
// ahead of the ceremony (a future-dated CRL signed today could later hide
// the revocations made in between) nor more than 48 hours before it, and
// no revocation it lists is dated after it.
func TestCheckCRLDates(t *testing.T) {
	realNow := time.Now().UTC().Truncate(time.Second)
	noLeapDay := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC) // the next 12 months have 365 days
	leapDay := time.Date(2027, 6, 1, 12, 0, 0, 0, time.UTC)    // they have 366
	dir := t.TempDir()
	for _, c := range []struct {
		now                         time.Time
		thisUpdate, revokedAt, want string
		nextUpdateDays              int
	}{
		{realNow, realNow.Add(24 * time.Hour).Format(time.RFC3339), "", "is after the ceremony: a CRL is dated when it is signed", 365},
		{realNow, "2001-01-01T00:00:00Z", "", "is more than 48 hours before the ceremony: CRLs are not backdated", 365},
		{realNow, realNow.Add(-time.Hour).Format(time.RFC3339), realNow.Add(-time.Minute).Format(time.RFC3339), "crl.revoked[0].revoked_at: after the CRL's this_update", 365},
		{realNow, realNow.Add(-time.Hour).Format(time.RFC3339), realNow.Add(-2 * time.Hour).Format(time.RFC3339), "", 365},
		// Within 12 months: zlint's e_crl_next_update_invalid would refuse
		// the CRL only once signed.
		{noLeapDay, noLeapDay.Add(-time.Hour).Format(time.RFC3339), "", "crl.next_update_days: 366 is outside 1..365", 366},
		{leapDay, leapDay.Add(-time.Hour).Format(time.RFC3339), "", "", 366},
		{leapDay, leapDay.Add(-time.Hour).Format(time.RFC3339), "", "crl.next_update_days: 367 is outside 1..366", 367},
		{realNow, realNow.Add(-time.Hour).Format(time.RFC3339), "", "crl.next_update_days: 0 is outside", 0},
	} {
		now := c.now
		raw := fmt.Sprintf(`ceremony: crl
witnesses: ["A. Officer"]
hsm:
  token_label: t
  pin: {shares: 2}
issuer:
  certificate: root.pem
  key_label: root
crl:
  number: 1
  this_update: %q
  next_update_days: %d
  revoked:
    - serial: "1A2B"
      reason: keyCompromise
      revoked_at: %q
  output: root-2.crl
transcript: t.jsonl
`, c.thisUpdate, c.nextUpdateDays, cmp.Or(c.revokedAt, now.Add(-3*time.Hour).Format(time.RFC3339)))
		s, err := ceremony.Parse(filepath.Join(dir, "crl.yaml"), []byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		err = s.Check(options(t, nil).Profiles, now)
		var crlProblem bool
		var ps ceremony.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				crlProblem = crlProblem || strings.HasPrefix(p.Field, "crl.")
			}
		}
		switch {
		case c.want == "" && crlProblem:
			t.Errorf("this_update %s, revoked_at %s: %v", c.thisUpdate, c.revokedAt, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("this_update %s: %v, want %q", c.thisUpdate, err, c.want)
		}
	}
}

// TestExistingKey: a ceremony certifies a key already on the token only if
// the token says it never left it and may not do ECDH (hsm.FindProtectedKey),
// and records what the token says. The keys are made by pkcs11-tool, as an
// operator might: one generated on the token for signing, one with
// pkcs11-tool's default usages (derive among them), one imported from a
// file. The refusals come before the transcript, so nothing blocks a retry.
func TestExistingKey(t *testing.T) {
	tok, raw, set := rootOnNewToken(t)
	pkcs11Tool := func(args ...string) {
		t.Helper()
		cmd := exec.Command(testenv.Tool(t, "pkcs11-tool"), append([]string{"--module", tok.ModulePath, "--token-label", tok.Label,
			"--login", "--pin", "env:SANAD_TEST_PIN"}, args...)...)
		cmd.Env = append(tok.Env(), "SANAD_TEST_PIN="+string(tok.PIN.Bytes()))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pkcs11-tool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	pkcs11Tool("--keypairgen", "--key-type", "EC:secp384r1", "--usage-sign", "--label", "signing", "--id", "01")
	pkcs11Tool("--keypairgen", "--key-type", "EC:secp384r1", "--label", "defaults", "--id", "02")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "imported.der")
	openssl(t, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-outform", "DER", "-out", keyFile)
	pkcs11Tool("--write-object", keyFile, "--type", "privkey", "--usage-sign", "--label", "imported", "--id", "03")
	openssl(t, "pkey", "-in", keyFile, "-inform", "DER", "-pubout", "-outform", "DER", "-out", keyFile+".pub")
	pkcs11Tool("--write-object", keyFile+".pub", "--type", "pubkey", "--label", "imported", "--id", "03")

	run := func(label string) (string, error) {
		t.Helper()
		d := filepath.Join(dir, label)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		script := bytes.ReplaceAll(raw, []byte("label: sanad-root-g1\n  type: ecdsa-p384\n"), []byte("label: "+label+"\n  type: ecdsa-p384\n  existing: true\n"))
		if bytes.Equal(script, raw) {
			t.Fatal("the example root's key moved; the test no longer names an existing key")
		}
		path := filepath.Join(d, "root.yaml")
		if err := os.WriteFile(path, script, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := ceremony.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ceremony.Run(context.Background(), s, options(t, set))
		return d, err
	}

	for label, why := range map[string]string{"defaults": "CKA_DERIVE true", "imported": "CKA_ALWAYS_SENSITIVE false"} {
		d, err := run(label)
		if !errors.Is(err, hsm.ErrKeyExposed) || !strings.Contains(err.Error(), why) {
			t.Errorf("the %s key: %v, want ErrKeyExposed for %s", label, err, why)
		}
		if _, err := os.Stat(filepath.Join(d, "out")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the refused ceremony of the %s key left files behind (%v)", label, err)
		}
	}

	d, err := run("signing")
	if err != nil {
		t.Fatalf("the signing key: %v", err)
	}
	res := verifiedTranscript(t, filepath.Join(d, "out", "1-root.transcript.jsonl"))
	var recorded struct {
		Label      string
		Protection hsm.Protection
	}
	for _, ln := range res.Lines {
		if ln.Step == "key-use" {
			if err := json.Unmarshal(ln.Data, &recorded); err != nil {
				t.Fatal(err)
			}
		}
	}
	// pkcs11-tool's key may "decrypt" and "unwrap" (SoftHSM2's defaults),
	// which no EC mechanism does: recorded, as the rest.
	want := hsm.Protection{Private: true, Sensitive: true, AlwaysSensitive: true, NeverExtractable: true, Local: true, Decrypt: true, Unwrap: true}
	if recorded.Label != "signing" || recorded.Protection != want {
		t.Errorf("the transcript's key-use: %+v, want the signing key with %+v", recorded, want)
	}
}

// TestLintCRLBeforeSigning: a CRL the lints refuse (here one serial listed
// twice, which the script's check does not look for) is refused signed by
// a throw-away key, before the issuer's key signs it or a transcript
// begins; `sanad ceremony check` (CheckDraft) says so too.
func TestLintCRLBeforeSigning(t *testing.T) {
	tok, raw, set := rootOnNewToken(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "root.yaml"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := options(t, set)
	s, err := ceremony.Load(filepath.Join(dir, "root.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ceremony.Run(t.Context(), s, opts); err != nil {
		t.Fatal(err)
	}
	// entries are serial:reason.
	crlScript := func(name string, entries ...string) *ceremony.Script {
		t.Helper()
		script := fmt.Sprintf(`ceremony: crl
witnesses: ["A. Officer"]
hsm:
  token_label: %s
  pin: {shares: 3}
issuer:
  certificate: out/root.pem
  key_label: sanad-root-g1
crl:
  number: 1
  next_update_days: 365
  revoked:
`, tok.Label)
		for _, e := range entries {
			serial, reason, _ := strings.Cut(e, ":")
			script += fmt.Sprintf("    - {serial: %q, reason: %s}\n", serial, reason)
		}
		script += fmt.Sprintf("  output: out/%s.crl\ntranscript: out/%s.transcript.jsonl\n", name, name)
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := ceremony.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	twice := crlScript("twice", "1A2B:keyCompromise", "1A2B:keyCompromise")
	if linted, err := twice.CheckDraft(time.Now(), opts); !linted || err == nil || !strings.Contains(err.Error(), "e_crl_unique_revoked_certificate") {
		t.Errorf("CheckDraft = %v, %v; want the duplicate serial's lint", linted, err)
	}
	if _, err := ceremony.Run(t.Context(), twice, opts); err == nil || !strings.Contains(err.Error(), "e_crl_unique_revoked_certificate") {
		t.Fatalf("Run = %v, want the duplicate serial's lint", err)
	}
	for _, name := range []string{"twice.crl", "twice.transcript.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, "out", name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the refused CRL ceremony left %s behind (%v)", name, err)
		}
	}
	// cACompromise, which the lints refuse too, is refused by the check.
	if _, err := ceremony.Run(t.Context(), crlScript("ca", "1A2B:cACompromise"), opts); err == nil || !strings.Contains(err.Error(), "revoked for keyCompromise") {
		t.Errorf("Run with cACompromise = %v, want the check's refusal", err)
	}
	// Listed once, it is signed; unspecified is said by no reason code.
	if _, err := ceremony.Run(t.Context(), crlScript("once", "1A2B:keyCompromise", "3C4D:unspecified"), opts); err != nil {
		t.Fatalf("the corrected CRL ceremony: %v", err)
	}
	if got := openssl(t, "crl", "-in", filepath.Join(dir, "out", "once.crl"), "-inform", "DER", "-CAfile", filepath.Join(dir, "out", "root.pem"), "-noout", "-verify"); !strings.Contains(got, "verify OK") {
		t.Errorf("openssl crl -verify: %s", got)
	}
}
