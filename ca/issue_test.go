package ca_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io/fs"
	"maps"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/catest"
	"github.com/sanadpki/sanad/ca/crl"
	"github.com/sanadpki/sanad/ca/lint"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/hsm"
	"github.com/sanadpki/sanad/hsm/hsmtest"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/internal/store/storetest"
	"github.com/sanadpki/sanad/internal/testenv"
	"github.com/sanadpki/sanad/policies"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

// newCSR is a plain CSR for a fresh P-256 key: any applicant.
func newCSR(t testing.TB) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return csrFor(t, key, nil)
}

func csrFor(t testing.TB, signer crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	if tmpl == nil {
		tmpl = &x509.CertificateRequest{}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, signer)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

var (
	person   = profile.Verified{Country: "KZ", NationalID: "900101300123", GivenName: "Aigerim", FamilyName: "Nurlanovna"}
	business = profile.Verified{Country: "PK", OrganizationName: "Indus Textiles Ltd", RegistrationNumber: "1234567"}
)

// TestIssueEveryProfile issues one certificate per end-entity profile,
// with an ECDSA and an RSA issuing CA (the HSM signs ECDSA, then PKCS#1
// v1.5) and P-256, P-384 and RSA-3072 subject keys, on each database; every
// certificate and CRL passes the whole of zlint (issuance leaves two lints
// to other checks, lintExclusions), and OpenSSL and GnuTLS check every
// certificate against the CA's current CRL on the path leaf, issuing CA,
// root; revoked through ca.Revoke, the next CRL makes both refuse it.
func TestIssueEveryProfile(t *testing.T) {
	openssl, certtool := testenv.Tool(t, "openssl"), testenv.Tool(t, "certtool")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	keys := []crypto.Signer{newKey(t, elliptic.P256()), newKey(t, elliptic.P384()), rsaKey}
	for _, kt := range []hsm.KeyType{hsm.ECDSAP256, hsm.RSA3072} {
		t.Run(string(kt), func(t *testing.T) {
			f := catest.NewWith(t, time.Now().UTC().Truncate(time.Second), catest.Options{IssuerKey: kt})
			storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
				issueEveryProfile(t, f, db, keys, judges{openssl: openssl, certtool: certtool})
			})
		})
	}
}

func newKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func issueEveryProfile(t *testing.T, f catest.Fixture, db *store.DB, keys []crypto.Signer, j judges) {
	ctx := context.Background()
	log := audit.New(time.Now)
	authority := f.CA(t, db, log)
	zlint, err := lint.New("")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var issued []string
	for _, name := range slices.Sorted(maps.Keys(f.Profiles)) {
		p := f.Profiles[name]
		if p.SubjectKind == "" {
			continue
		}
		v := person
		if p.SubjectKind == "business" {
			v = business
		}
		key := keys[len(issued)%len(keys)]
		cert, err := authority.Issue(ctx, ca.Request{Profile: name, CSR: csrFor(t, key, nil), Verified: v, Actor: "test"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := zlint.Certificate(cert.Raw); err != nil {
			t.Errorf("%s with a %T subject key: %v", name, key.Public(), err)
		}
		path := filepath.Join(dir, name+".pem")
		writePEM(t, path, "CERTIFICATE", cert.Raw)
		issued = append(issued, path)
		if resp, err := db.OCSPResponse(ctx, "issuing", cert.SerialNumber.Bytes()); err != nil || len(resp.DER) == 0 {
			t.Errorf("%s: no pre-signed OCSP response (%v)", name, err)
		}
	}
	if len(issued) != 5 {
		t.Fatalf("issued %d certificates, want one per end-entity profile (5)", len(issued))
	}

	// The CA's current CRL, then OpenSSL and GnuTLS check each certificate with it.
	builder, err := crl.New(db, log, f.Linter, crl.Config{}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	crlIssuer := crl.Issuer{ID: "issuing", Certificate: f.Issuer.Certificate, Signer: f.CAKey}
	current, err := builder.Build(ctx, crlIssuer)
	if err != nil {
		t.Fatal(err)
	}
	if err := zlint.RevocationList(current.DER); err != nil {
		t.Errorf("CRL: %v", err)
	}
	crlPEM := filepath.Join(dir, "issuing.crl.pem")
	writePEM(t, crlPEM, "X509 CRL", current.DER)
	j.gnuTLSCRL(t, f, crlPEM)
	for _, path := range issued {
		if out, err := j.openSSL(f, crlPEM, path); err != nil || !strings.Contains(out, ": OK") || strings.Contains(out, "error") {
			t.Errorf("openssl verify -crl_check %s: %v\n%s", filepath.Base(path), err, out)
		}
		if out, err := j.gnuTLS(f, crlPEM, path); err != nil || !strings.Contains(out, "Chain verification output: Verified. The certificate is trusted.") {
			t.Errorf("certtool --verify %s: %v\n%s", filepath.Base(path), err, out)
		}
	}

	// Negative control: once revoked and on the next CRL, both refuse it.
	revokedPEM, _ := os.ReadFile(issued[0])
	block, _ := pem.Decode(revokedPEM)
	victim, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := authority.Revoke(ctx, victim.SerialNumber.Bytes(), 1, "test"); err != nil {
		t.Fatal(err)
	}
	next, err := builder.Build(ctx, crlIssuer)
	if err != nil {
		t.Fatal(err)
	}
	if err := zlint.RevocationList(next.DER); err != nil {
		t.Errorf("CRL with an entry: %v", err)
	}
	writePEM(t, crlPEM, "X509 CRL", next.DER)
	j.gnuTLSCRL(t, f, crlPEM)
	if out, err := j.openSSL(f, crlPEM, issued[0]); err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl accepted a revoked certificate: %v\n%s", err, out)
	}
	if out, err := j.gnuTLS(f, crlPEM, issued[0]); err == nil || !strings.Contains(out, "The certificate is NOT trusted. The certificate chain is revoked.") {
		t.Errorf("certtool accepted a revoked certificate: %v\n%s", err, out)
	}
	if r, err := audit.Verify(ctx, db, "test", nil); err != nil || !r.OK() || r.Events != 5*2+1+2 {
		t.Errorf("audit log: %+v %v (want intent + issue per certificate, a revocation, two CRLs)", r, err)
	}
}

// judges are the external verifiers of issued certificates. Each is given
// the root as the only trust anchor and the issuing CA as an untrusted
// intermediate, so it checks the whole path, and the issuing CA's CRL.
type judges struct{ openssl, certtool string }

// openSSL runs openssl verify; -crl_check checks the leaf's status on crl.
func (j judges) openSSL(f catest.Fixture, crl, leaf string) (string, error) {
	out, err := exec.Command(j.openssl, "verify", "-x509_strict", "-crl_check",
		"-CAfile", f.RootPEM, "-untrusted", f.CAPEM, "-CRLfile", crl, leaf).CombinedOutput()
	return string(out), err
}

// gnuTLS runs certtool --verify on the chain leaf, issuing CA; --verify
// with --load-crl checks revocation (--verify-chain would ignore the CRL).
func (j judges) gnuTLS(f catest.Fixture, crl, leaf string) (string, error) {
	chain := leaf + ".chain"
	leafPEM, err := os.ReadFile(leaf)
	if err != nil {
		return "", err
	}
	caPEM, err := os.ReadFile(f.CAPEM)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(chain, append(leafPEM, caPEM...), 0o600); err != nil {
		return "", err
	}
	out, err := exec.Command(j.certtool, "--verify", "--load-ca-certificate", f.RootPEM,
		"--load-crl", crl, "--infile", chain).CombinedOutput()
	return string(out), err
}

// gnuTLSCRL checks the CRL's signature with the issuing CA: certtool
// --verify matches a CRL to a certificate by issuer name only when the
// CRL's issuer is not a trust anchor, so it would take a forged CRL.
func (j judges) gnuTLSCRL(t *testing.T, f catest.Fixture, crl string) {
	t.Helper()
	out, err := exec.Command(j.certtool, "--verify-crl", "--load-ca-certificate", f.CAPEM, "--infile", crl).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verification output: Verified.") {
		t.Errorf("certtool --verify-crl: %v\n%s", err, out)
	}
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestIssueRefuses(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, "sqlite")
	authority, err := ca.New(f.Deps(db, audit.New(time.Now)))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		profile string
		csr     []byte
		want    string
	}{
		{"extra SANs", "citizen-auth", csrFor(t, key, &x509.CertificateRequest{DNSNames: []string{"evil.example"}}), "subject alternative names"},
		{"another subject", "citizen-auth", csrFor(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Somebody Else"}}), `asks for subject "Somebody Else"`},
		{"CA rights", "citizen-auth", csrFor(t, key, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: []byte{0x30, 0x03, 0x01, 0x01, 0xff}}}}), "basic constraints"},
		{"the CA's own key", "citizen-auth", csrFor(t, f.CAKey, nil), "key-is-ca-key"},
		{"a private key of 7", "citizen-auth", csrFor(t, smallKey(t, 7), nil), "ec-small-private-key"},
		{"not an end-entity profile", "root", newCSR(t), "not an end-entity profile"},
		{"garbage", "citizen-auth", []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := ca.Request{Profile: tt.profile, CSR: tt.csr, Verified: person, Actor: "test"}
			_, err := authority.Issue(context.Background(), req)
			if !errors.Is(err, ca.ErrRequest) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Issue = %v, want ErrRequest mentioning %q", err, tt.want)
			}
			if err := authority.Check(req); !errors.Is(err, ca.ErrRequest) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check = %v, want ErrRequest mentioning %q", err, tt.want)
			}
		})
	}
	// Check passes what Issue would sign, and writes nothing either.
	if err := authority.Check(ca.Request{Profile: "citizen-auth", CSR: newCSR(t), Verified: person, Actor: "test"}); err != nil {
		t.Errorf("Check of a good request = %v", err)
	}
	if head, err := db.AuditHead(context.Background()); err != nil || head.Seq != 0 {
		t.Errorf("refused or checked requests wrote audit events or intents: head %+v (%v)", head, err)
	}
}

// smallKey is the P-256 key pair whose private scalar is d: a key anyone
// can compute, which the CA must refuse now that issuance leaves the zlint
// lint for it to csr (lintExclusions).
func smallKey(t *testing.T, d byte) *ecdsa.PrivateKey {
	t.Helper()
	scalar := make([]byte, 32)
	scalar[31] = d
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issueSign is a citizen-sign certificate authority issues to person.
func issueSign(t *testing.T, authority *ca.CA) *x509.Certificate {
	t.Helper()
	cert, err := authority.Issue(t.Context(), ca.Request{Profile: "citizen-sign", CSR: newCSR(t), Verified: person, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestInValidity: a CA whose issuing certificate is not valid yet (or any
// more) says so for readiness, and issues nothing.
func TestInValidity(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	f.PutIssuer(t, db)
	for _, c := range []struct {
		name string
		at   time.Time
		want string
	}{
		{"before its notBefore", f.Issuer.Certificate.NotBefore.Add(-time.Minute), "valid only from"},
		{"within its validity", f.Issuer.Certificate.NotBefore.Add(time.Minute), ""},
		{"after its notAfter", f.Issuer.Certificate.NotAfter.Add(time.Minute), "expired at"},
	} {
		t.Run(c.name, func(t *testing.T) {
			deps := f.Deps(db, audit.New(time.Now))
			deps.Now = func() time.Time { return c.at }
			authority, err := ca.New(deps)
			if err != nil {
				t.Fatal(err)
			}
			err = authority.InValidity(t.Context())
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("InValidity: %v, want %q", err, c.want)
			}
			if c.want != "" {
				if _, err := authority.Issue(t.Context(), ca.Request{Profile: "citizen-sign", CSR: newCSR(t), Verified: person, Actor: "test"}); err == nil {
					t.Error("issued")
				}
			}
		})
	}
}

// TestRevokeWritesAlso: the events a caller gives Revoke are in the
// revocation's transaction: written after its own, and, should one of them
// fail, the certificate is not revoked.
func TestRevokeWritesAlso(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		authority := f.CA(t, db, audit.New(time.Now))
		cert := issueSign(t, authority)
		serial := cert.SerialNumber.Bytes()
		if err := authority.Revoke(ctx, serial, 4, "ra:test", audit.Event{Action: "enrollment.withdraw", Object: "enrollment/e1"}); err == nil {
			t.Fatal("a revocation whose other event cannot be written succeeded")
		}
		if c, err := db.Certificate(ctx, "issuing", serial); err != nil || c.Status != store.StatusGood {
			t.Fatalf("after the failed revocation: %s, %v; want good", c.Status, err)
		}
		if err := authority.Revoke(ctx, serial, 4, "ra:test", audit.Event{Actor: "ra:test", Action: "enrollment.withdraw", Object: "enrollment/e1"}); err != nil {
			t.Fatal(err)
		}
		events, err := db.ListAuditEvents(ctx, store.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		n := len(events)
		if n < 2 || events[n-2].Action != "certificate.revoke" || events[n-1].Action != "enrollment.withdraw" || events[n-1].Object != "enrollment/e1" {
			t.Errorf("the last events: %+v", events[max(0, n-2):])
		}
	})
}

func TestRevoke(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := context.Background()
		authority := f.CA(t, db, audit.New(time.Now))
		cert := issueSign(t, authority)
		serial := cert.SerialNumber.Bytes()

		// Reasons the profile does not offer, and unknown serials, are refused.
		for reason, name := range map[int]string{6: "reason 6", 2: "cACompromise"} { // certificateHold is not offered
			if err := authority.Revoke(ctx, serial, reason, "officer:test"); !errors.Is(err, ca.ErrRequest) || !strings.Contains(err.Error(), name+" is not a reason") {
				t.Errorf("reason %d: %v", reason, err)
			}
		}
		if err := authority.Revoke(ctx, []byte{0x7f, 0x01}, 1, "officer:test"); !errors.Is(err, ca.ErrNotIssued) {
			t.Errorf("unknown serial: %v", err)
		}

		// superseded first; then the key is reported compromised: the
		// reason is raised to keyCompromise, the revocation time kept.
		if err := authority.Revoke(ctx, serial, 4, "holder:test"); err != nil {
			t.Fatal(err)
		}
		first, err := db.Certificate(ctx, "issuing", serial)
		if err != nil {
			t.Fatal(err)
		}
		if err := ca.CheckKeyNotBlocked(ctx, db, cert.PublicKey); err != nil {
			t.Errorf("the key after superseded: %v, want not blocked", err)
		}
		if err := authority.Revoke(ctx, serial, 1, "officer:test"); err != nil {
			t.Fatal(err)
		}
		if raised, err := db.Certificate(ctx, "issuing", serial); err != nil || raised.Reason != 1 || !raised.RevokedAt.Equal(first.RevokedAt) {
			t.Errorf("after keyCompromise: reason %d at %s (%v); want 1 at %s", raised.Reason, raised.RevokedAt, err, first.RevokedAt)
		}

		if err := ca.CheckKeyNotBlocked(ctx, db, cert.PublicKey); !errors.Is(err, ca.ErrKeyCompromised) {
			t.Errorf("the key after keyCompromise: %v, want blocked", err)
		}
		// The audit log names the reasons beside their codes.
		events, err := db.ListAuditEvents(ctx, store.AuditFilter{Objects: []string{ca.SerialObject("issuing", serial)}})
		if err != nil {
			t.Fatal(err)
		}
		var named []string
		for _, ev := range events {
			switch ev.Action {
			case "certificate.revoke", "certificate.revoke.reason":
				named = append(named, ev.Action+" "+string(ev.Details))
			}
		}
		if len(named) != 2 || !strings.Contains(named[0], `"reason":4,"reason_name":"superseded"`) ||
			!strings.Contains(named[1], `"reason":1,"reason_name":"keyCompromise"`) || !strings.Contains(named[1], `"was":4,"was_name":"superseded"`) {
			t.Errorf("audited revocations: %q", named)
		}
		for _, again := range []int{1, 4} {
			err = authority.Revoke(ctx, serial, again, "officer:test")
			var already *store.AlreadyRevokedError
			if !errors.As(err, &already) || already.Reason != 1 || !strings.Contains(err.Error(), "already revoked at") {
				t.Errorf("revocation for %d after keyCompromise: %v", again, err)
			}
		}
		err = authority.Revoke(ctx, serial, 4, "officer:test")
		var already *store.AlreadyRevokedError
		if !errors.As(err, &already) || already.Reason != 1 || !strings.Contains(err.Error(), "already revoked at") {
			t.Errorf("second revocation: %v", err)
		}

		// The stored OCSP response now says revoked, with the reason.
		resp, err := db.OCSPResponse(ctx, "issuing", serial)
		if err != nil {
			t.Fatal(err)
		}
		respPath := filepath.Join(t.TempDir(), "resp.der")
		if err := os.WriteFile(respPath, resp.DER, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(openssl, "ocsp", "-respin", respPath, "-issuer", f.CAPEM, "-CAfile", f.RootPEM,
			"-verify_other", f.CAPEM, "-serial", "0x"+cert.SerialNumber.Text(16)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Response verify OK") || !strings.Contains(string(out), ": revoked") || !strings.Contains(string(out), "Reason: keyCompromise") {
			t.Errorf("openssl ocsp: %v\n%s", err, out)
		}
		if r, err := audit.Verify(ctx, db, "test", nil); err != nil || !r.OK() || r.Events != 4 {
			t.Errorf("audit log: %+v %v (want intent, issue, revoke, reason raised)", r, err)
		}
	})
}

// TestCrashRecovery stops an issuance at each fault point, as a crash
// would, then starts a fresh CA over the same store and recovers: every
// assigned serial has an authoritative OCSP answer, nothing unrecorded is
// good, the CRL number never goes back, and the audit log verifies.
func TestCrashRecovery(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	errCrash := errors.New("simulated crash")
	for _, point := range []string{ca.FaultAfterIntent, ca.FaultAfterSign, ca.FaultAfterCommit} {
		t.Run(point, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
				ctx := context.Background()
				log := audit.New(time.Now)
				f.PutIssuer(t, db)
				deps := f.Deps(db, log)
				builder, err := crl.New(db, log, f.Linter, crl.Config{}, time.Now)
				if err != nil {
					t.Fatal(err)
				}
				crlIssuer := crl.Issuer{ID: "issuing", Certificate: f.Issuer.Certificate, Signer: f.CAKey}
				before, err := builder.Build(ctx, crlIssuer)
				if err != nil {
					t.Fatal(err)
				}

				crashing := deps
				crashing.Fault = func(p string) error {
					if p == point {
						return errCrash
					}
					return nil
				}
				first, err := ca.New(crashing)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := first.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: newCSR(t), Verified: person, Actor: "test"}); !errors.Is(err, errCrash) {
					t.Fatalf("Issue = %v, want the crash", err)
				}

				// Fresh start, two hours on.
				late := deps
				late.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
				second, err := ca.New(late)
				if err != nil {
					t.Fatal(err)
				}
				recovered, err := second.Recover(ctx, 0)
				if err != nil {
					t.Fatal(err)
				}
				if want := map[string]int{ca.FaultAfterIntent: 1, ca.FaultAfterSign: 1, ca.FaultAfterCommit: 0}[point]; recovered != want {
					t.Errorf("recovered %d intents, want %d", recovered, want)
				}
				if left, err := db.UnsignedCertificates(ctx); err != nil || len(left) != 0 {
					t.Errorf("unresolved intents after recovery: %d (%v)", len(left), err)
				}
				// A second start finds nothing more to do.
				if again, err := second.Recover(ctx, 0); err != nil || again != 0 {
					t.Errorf("second recovery: %d, %v", again, err)
				}

				// Every assigned serial answers, and only recorded certificates are good.
				assigned := assignedSerials(t, db)
				if len(assigned) != 1 {
					t.Fatalf("%d serials assigned, want 1", len(assigned))
				}
				for _, c := range assigned {
					resp, err := db.OCSPResponse(ctx, "issuing", c.Serial)
					if err != nil {
						t.Fatalf("serial %x has no OCSP answer: %v", c.Serial, err)
					}
					parsed, err := ocsp.ParseResponse(resp.DER, f.Issuer.Certificate)
					if err != nil {
						t.Fatal(err)
					}
					switch {
					case c.DER == nil && parsed.Status != ocsp.Revoked:
						t.Errorf("unrecorded serial %x answers %d, want revoked", c.Serial, parsed.Status)
					case c.DER == nil && parsed.RevocationReason != ca.ReasonCessationOfOperation:
						t.Errorf("unrecorded serial %x revoked with reason %d", c.Serial, parsed.RevocationReason)
					case c.DER == nil && !parsed.RevokedAt.Equal(c.NotBefore.Truncate(time.Second)):
						// Never valid for a moment: not from the recovery,
						// two hours later.
						t.Errorf("unrecorded serial %x revoked at %s, want its notBefore %s", c.Serial, parsed.RevokedAt, c.NotBefore)
					case c.DER != nil && parsed.Status != ocsp.Good:
						t.Errorf("recorded serial %x answers %d, want good", c.Serial, parsed.Status)
					}
				}

				after, err := builder.Build(ctx, crlIssuer)
				if err != nil {
					t.Fatal(err)
				}
				if after.Number <= before.Number {
					t.Errorf("CRL number went from %d to %d", before.Number, after.Number)
				}
				// The CRL agrees: an unrecorded serial is on it, for
				// cessationOfOperation; a recorded one is not.
				rl, err := x509.ParseRevocationList(after.DER)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range assigned {
					listed := slices.ContainsFunc(rl.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
						return e.SerialNumber.Cmp(new(big.Int).SetBytes(c.Serial)) == 0 && e.ReasonCode == ca.ReasonCessationOfOperation
					})
					if listed != (c.DER == nil) {
						t.Errorf("serial %x (recorded: %v) on the CRL after recovery: %v", c.Serial, c.DER != nil, listed)
					}
				}
				if r, err := audit.Verify(ctx, db, "test", nil); err != nil || !r.OK() {
					t.Errorf("audit log after recovery: %+v %v", r, err)
				}
			})
		})
	}
}

// assignedSerials returns every certificate row, signed or not.
func assignedSerials(t *testing.T, db *store.DB) []store.Certificate {
	t.Helper()
	var out []store.Certificate
	revoked, err := db.RevokedCertificates(context.Background(), "issuing", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, revoked...)
	good, err := db.GoodCertificates(context.Background(), "issuing")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, good...)
}

// TestCRLAndOCSPAgree: for every serial the CA assigned — good, revoked for
// several reasons, and intents an HSM failure left that recovery revoked —
// the stored OCSP answer and the CRL the Publisher publishes agree on
// whether it is revoked, when and why.
func TestCRLAndOCSPAgree(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := context.Background()
		var failing atomic.Bool
		p := newPublishing(t, f, db, newClock(time.Now().UTC().Truncate(time.Second)), ca.PublishConfig{}, func(point string) error {
			if point == ca.FaultAfterSign && failing.Load() {
				return errors.New("injected: the HSM signed, the process died")
			}
			return nil
		})
		var serials [][]byte
		for i := range 12 {
			cert, err := p.authority.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: newCSR(t), Verified: person, Actor: "test"})
			if err != nil {
				t.Fatal(err)
			}
			serials = append(serials, cert.SerialNumber.Bytes())
			if reason := []int{-1, 1, -1, 4, 5, -1}[i%6]; reason >= 0 {
				if err := p.authority.Revoke(ctx, cert.SerialNumber.Bytes(), reason, "test"); err != nil {
					t.Fatal(err)
				}
			}
		}
		failing.Store(true)
		for range 3 {
			if _, err := p.authority.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: newCSR(t), Verified: person, Actor: "test"}); err == nil {
				t.Fatal("an issuance survived the injected failure")
			}
		}
		left, err := db.UnsignedCertificates(ctx)
		if err != nil || len(left) != 3 {
			t.Fatalf("intents left: %d, %v", len(left), err)
		}
		for _, c := range left {
			serials = append(serials, c.Serial)
		}
		if n, err := p.authority.Recover(ctx, 0); err != nil || n != 3 {
			t.Fatalf("Recover = %d, %v", n, err)
		}
		current, err := p.pub.PublishCRL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		list, err := x509.ParseRevocationList(current.DER)
		if err != nil {
			t.Fatal(err)
		}
		onCRL := map[string]x509.RevocationListEntry{}
		for _, e := range list.RevokedCertificateEntries {
			onCRL[string(e.SerialNumber.Bytes())] = e
		}
		revoked := 0
		for _, serial := range serials {
			stored, err := db.OCSPResponse(ctx, "issuing", serial)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ocsp.ParseResponse(stored.DER, f.Issuer.Certificate)
			if err != nil {
				t.Fatal(err)
			}
			entry, listed := onCRL[string(serial)]
			switch {
			case resp.Status == ocsp.Good && listed:
				t.Errorf("serial %x: OCSP good, but on the CRL", serial)
			case resp.Status == ocsp.Revoked && !listed:
				t.Errorf("serial %x: OCSP revoked, but not on the CRL", serial)
			case resp.Status == ocsp.Revoked && (entry.ReasonCode != resp.RevocationReason || !entry.RevocationTime.Equal(resp.RevokedAt)):
				t.Errorf("serial %x: CRL says reason %d at %s, OCSP reason %d at %s", serial, entry.ReasonCode, entry.RevocationTime, resp.RevocationReason, resp.RevokedAt)
			case resp.Status != ocsp.Good && resp.Status != ocsp.Revoked:
				t.Errorf("serial %x: OCSP status %d", serial, resp.Status)
			}
			if listed {
				revoked++
			}
		}
		if revoked != 9 || len(onCRL) != 9 {
			t.Errorf("%d of the assigned serials on a CRL of %d entries, want 9 and 9 (6 revoked, 3 recovered)", revoked, len(onCRL))
		}
	})
}

// TestLateIssuanceStaysRevoked races a recovery (another node's start-up)
// against an issuance that has signed but not yet stored: recovery with no
// grace revokes the intent, the late issuance is refused, and the serial
// answers revoked. With a grace, recovery leaves a young intent alone.
// TestRaisedReasonMissingFromCRL: a CA that starts after a reason was
// raised to keyCompromise, an hour after the revocation, knows its last
// CRL may still say the old reason (store.RevokedSince), though the
// revocation's time is older than that CRL.
func TestRaisedReasonMissingFromCRL(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		f.PutIssuer(t, db)
		var mu sync.Mutex
		now := time.Now().UTC()
		deps := f.Deps(db, audit.New(time.Now))
		deps.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		authority, err := ca.New(deps)
		if err != nil {
			t.Fatal(err)
		}
		cert := issueSign(t, authority)
		if err := authority.Revoke(ctx, cert.SerialNumber.Bytes(), 4, "test"); err != nil {
			t.Fatal(err)
		}
		revokedAt := now.Truncate(time.Second)
		crlAt := now.Add(30 * time.Minute) // a CRL built after the revocation
		mu.Lock()
		now = now.Add(time.Hour)
		mu.Unlock()
		if missing, err := db.RevokedSince(ctx, "issuing", crlAt); err != nil || missing {
			t.Fatalf("before the raise: %v %v, want nothing missing", missing, err)
		}
		if err := authority.Revoke(ctx, cert.SerialNumber.Bytes(), 1, "test"); err != nil {
			t.Fatal(err)
		}
		if missing, err := db.RevokedSince(ctx, "issuing", crlAt); err != nil || !missing {
			t.Errorf("after the raise: %v %v, want the CRL of before it missing a change", missing, err)
		}
		// The RA's sweep of keyCompromise revocations finds it too.
		if found, err := db.RevokedFor(ctx, "issuing", crlAt, 1); err != nil || len(found) != 1 || found[0].Reason != 1 {
			t.Errorf("RevokedFor keyCompromise after the raise: %d certificates (%v), want this one", len(found), err)
		}
		// The answer says keyCompromise, at the revocation's own time.
		row, err := db.Certificate(ctx, "issuing", cert.SerialNumber.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		stored, err := db.OCSPResponse(ctx, "issuing", cert.SerialNumber.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		r, err := ocsp.ParseResponse(stored.DER, nil)
		if err != nil || r.Status != ocsp.Revoked || r.RevocationReason != ocsp.KeyCompromise || !r.RevokedAt.Equal(row.RevokedAt) || !row.RevokedAt.Equal(revokedAt) {
			t.Errorf("the answer after the raise: %+v (%v); want revoked for keyCompromise at %s", r, err, revokedAt)
		}
	})
}

// TestRevokeRaceRaises: a keyCompromise revocation racing another
// reason's never answers "already revoked for that other reason": it
// raises it, and the certificate ends revoked for keyCompromise.
// TestRevokeProfileRetired: a certificate whose profile a later release no
// longer loads is still revoked, for keyCompromise or any reason a profile
// may allow; a profile cannot leave keyCompromise out.
func TestRevokeProfileRetired(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := context.Background()
		log := audit.New(time.Now)
		authority := f.CA(t, db, log)
		cert := issueSign(t, authority)
		deps := f.Deps(db, log)
		deps.Profiles = maps.Clone(f.Profiles)
		delete(deps.Profiles, "citizen-sign")
		later, err := ca.New(deps)
		if err != nil {
			t.Fatal(err)
		}
		if err := later.Revoke(ctx, cert.SerialNumber.Bytes(), 6, "officer:test"); !errors.Is(err, ca.ErrRequest) {
			t.Errorf("certificateHold for a retired profile's certificate: %v, want refused", err)
		}
		if err := later.Revoke(ctx, cert.SerialNumber.Bytes(), 1, "officer:test"); err != nil {
			t.Fatalf("keyCompromise of a retired profile's certificate: %v", err)
		}
		if c, err := db.Certificate(ctx, "issuing", cert.SerialNumber.Bytes()); err != nil || c.Status != store.StatusRevoked || c.Reason != 1 {
			t.Errorf("the certificate: %s reason %d (%v), want revoked for keyCompromise", c.Status, c.Reason, err)
		}
	})
	raw, err := fs.ReadFile(policies.FS, "profiles/citizen-sign.yaml")
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(raw), "keyCompromise, ", "", 1)
	if edited == string(raw) {
		t.Fatal("citizen-sign's reasons moved; the test no longer drops keyCompromise")
	}
	if _, err := profile.Parse("citizen-sign.yaml", []byte(edited)); err == nil || !strings.Contains(err.Error(), "must include keyCompromise") {
		t.Errorf("a profile without keyCompromise: %v", err)
	}
}

func TestRevokeRaceRaises(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		ctx := t.Context()
		authority := f.CA(t, db, audit.New(time.Now))
		for range 3 {
			cert := issueSign(t, authority)
			var wg sync.WaitGroup
			for i := range 16 {
				reason := []int{4, 1}[i%2]
				wg.Go(func() {
					err := authority.Revoke(ctx, cert.SerialNumber.Bytes(), reason, "test")
					var already *store.AlreadyRevokedError
					if err != nil && (!errors.As(err, &already) || (reason == 1 && already.Reason != 1)) {
						t.Errorf("keyCompromise racing superseded: %v", err)
					}
				})
			}
			wg.Wait()
			if row, err := db.Certificate(ctx, "issuing", cert.SerialNumber.Bytes()); err != nil || row.Reason != 1 {
				t.Errorf("after the race: reason %d (%v), want keyCompromise", row.Reason, err)
			}
		}
	})
}

func TestLateIssuanceStaysRevoked(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, "sqlite")
	ctx := context.Background()
	log := audit.New(time.Now)
	other := f.CA(t, db, log)
	deps := f.Deps(db, log)
	var skipped, recovered int
	deps.Fault = func(point string) error {
		if point != ca.FaultAfterSign {
			return nil
		}
		var err error
		if skipped, err = other.Recover(ctx, time.Hour); err != nil {
			return err
		}
		recovered, err = other.Recover(ctx, 0)
		return err
	}
	racing, err := ca.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	_, err = racing.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: newCSR(t), Verified: person, Actor: "test"})
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "intent was revoked") {
		t.Fatalf("late issuance: %v", err)
	}
	if skipped != 0 || recovered != 1 {
		t.Errorf("recovery with a grace resolved %d, without %d; want 0 and 1", skipped, recovered)
	}
	serials := assignedSerials(t, db)
	if len(serials) != 1 || serials[0].Status != store.StatusRevoked || serials[0].DER != nil {
		t.Fatalf("serials = %+v", serials)
	}
	resp, err := db.OCSPResponse(ctx, "issuing", serials[0].Serial)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ocsp.ParseResponse(resp.DER, f.Issuer.Certificate)
	if err != nil || parsed.Status != ocsp.Revoked {
		t.Errorf("OCSP after the race: %+v %v", parsed, err)
	}
}

// TestCompromisedKeyNotReissued: after a revocation for keyCompromise the
// CA refuses the key (ErrKeyCompromised) whoever asks; after one for
// superseded it certifies it again.
func TestCompromisedKeyNotReissued(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, _ *sql.DB) {
		authority := f.CA(t, db, audit.New(time.Now))
		ctx := t.Context()
		for _, tt := range []struct {
			reason  int
			refused bool
		}{{4, false}, {1, true}} {
			csr := newCSR(t)
			c, err := authority.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: csr, Verified: person, Actor: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if err := authority.Revoke(ctx, c.SerialNumber.Bytes(), tt.reason, "test"); err != nil {
				t.Fatal(err)
			}
			// Among concurrent issuances, whose intents commit as a group,
			// only the blocked key's fails.
			errs := make([]error, 16)
			var wg sync.WaitGroup
			for i := range errs {
				wg.Go(func() {
					c := csr
					if i > 0 {
						c = newCSR(t)
					}
					_, errs[i] = authority.Issue(ctx, ca.Request{Profile: "citizen-sign", CSR: c, Verified: person, Actor: "test"})
				})
			}
			wg.Wait()
			if got := errors.Is(errs[0], ca.ErrKeyCompromised) && errors.Is(errs[0], ca.ErrRequest); got != tt.refused || (!tt.refused && errs[0] != nil) {
				t.Errorf("the key of a certificate revoked for reason %d: %v", tt.reason, errs[0])
			}
			for _, err := range errs[1:] {
				if err != nil {
					t.Errorf("another key issued beside it: %v", err)
				}
			}
		}
	})
}

// TestIssueRecordedIntent: an intent the caller prepares writes nothing
// until the caller records it in its own transaction; rolled back with
// that transaction, it leaves nothing; committed, Issue signs exactly the
// TBS it holds and stores the certificate as it would have. An intent is
// signed only for its own request, only once, and only once committed;
// one for a key revoked for keyCompromise since it was prepared is refused
// when recorded.
func TestIssueRecordedIntent(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	storetest.Each(t, func(t *testing.T, db *store.DB, raw *sql.DB) {
		log := audit.New(time.Now)
		authority := f.CA(t, db, log)
		ctx := t.Context()
		rows := func() (certs, events int) {
			t.Helper()
			if err := raw.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM certificates), (SELECT count(*) FROM audit_events)`).Scan(&certs, &events); err != nil {
				t.Fatal(err)
			}
			return certs, events
		}
		req := ca.Request{Profile: "citizen-auth", CSR: newCSR(t), Verified: person, Actor: "test"}
		certs0, events0 := rows()
		in, err := authority.Prepare(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if c, e := rows(); c != certs0 || e != events0 {
			t.Fatalf("Prepare wrote %d certificates and %d events", c-certs0, e-events0)
		}
		errRollback := errors.New("the caller's own write failed")
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := in.Record(ctx, tx); err != nil {
				return err
			}
			return errRollback
		}); !errors.Is(err, errRollback) {
			t.Fatalf("a transaction that failed after recording: %v", err)
		}
		if c, e := rows(); c != certs0 || e != events0 {
			t.Fatalf("an intent rolled back with its transaction left %d certificates and %d events", c-certs0, e-events0)
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return in.Record(ctx, tx) }); err != nil {
			t.Fatal(err)
		}
		unsigned, err := db.UnsignedCertificates(ctx)
		if err != nil || len(unsigned) != 1 || unsigned[0].Profile != "citizen-auth" {
			t.Fatalf("intents after recording: %+v (%v)", unsigned, err)
		}
		intent := unsigned[0]

		other := req
		other.Profile, other.Recorded = "citizen-sign", in
		if _, err := authority.Issue(ctx, other); err == nil {
			t.Fatal("the intent of a citizen-auth request was signed for a citizen-sign one")
		}
		other = req
		other.CSR, other.Recorded = newCSR(t), in
		if _, err := authority.Issue(ctx, other); err == nil {
			t.Fatal("the intent of one request was signed for another key's")
		}
		// An intent prepared and never recorded is not signed: the
		// certificate would be one the store does not know about.
		unrecorded, err := authority.Prepare(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		never := req
		never.Recorded = unrecorded
		if _, err := authority.Issue(ctx, never); err == nil || !strings.Contains(err.Error(), "not recorded") {
			t.Errorf("an intent never recorded: %v", err)
		}
		certs1, _ := rows()
		recorded := req
		recorded.Recorded = in
		cert, err := authority.Issue(ctx, recorded)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := authority.Issue(ctx, recorded); err == nil || !strings.Contains(err.Error(), "taken to sign before") {
			t.Errorf("an intent signed twice: %v", err)
		}
		if !bytes.Equal(cert.SerialNumber.Bytes(), intent.Serial) || !bytes.Equal(cert.RawTBSCertificate, intent.TBS) {
			t.Errorf("signed serial %x, TBS %x…; the intent's %x, %x…", cert.SerialNumber.Bytes(), cert.RawTBSCertificate[:8], intent.Serial, intent.TBS[:8])
		}
		if c, _ := rows(); c != certs1 {
			t.Errorf("Issue of a recorded intent made %d more certificate rows", c-certs1)
		}
		stored, err := db.Certificate(ctx, "issuing", intent.Serial)
		if err != nil || !bytes.Equal(stored.DER, cert.Raw) {
			t.Errorf("stored: %x… (%v)", stored.DER, err)
		}
		if _, err := db.OCSPResponse(ctx, "issuing", intent.Serial); err != nil {
			t.Errorf("no OCSP response stored: %v", err)
		}
		if left, err := db.UnsignedCertificates(ctx); err != nil || len(left) != 0 {
			t.Errorf("intents left: %d (%v)", len(left), err)
		}
		var actions []string
		q := `SELECT action FROM audit_events WHERE object = $1 ORDER BY seq`
		if db.Driver() == store.DriverSQLite {
			q = strings.ReplaceAll(q, "$1", "?")
		}
		r, err := raw.QueryContext(ctx, q, ca.SerialObject("issuing", intent.Serial))
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var a string
			r.Scan(&a)
			actions = append(actions, a)
		}
		r.Close()
		if !slices.Equal(actions, []string{"certificate.intent", "certificate.issue"}) {
			t.Errorf("audit events of the certificate: %v", actions)
		}

		// A key revoked for keyCompromise between Prepare and Record.
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		first, err := authority.Issue(ctx, ca.Request{Profile: "citizen-auth", CSR: csrFor(t, key, nil), Verified: person, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		late, err := authority.Prepare(ctx, ca.Request{Profile: "citizen-sign", CSR: csrFor(t, key, nil), Verified: person, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if err := authority.Revoke(ctx, first.SerialNumber.Bytes(), 1, "test"); err != nil {
			t.Fatal(err)
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return late.Record(ctx, tx) }); !errors.Is(err, ca.ErrKeyCompromised) || !errors.Is(err, ca.ErrRequest) {
			t.Errorf("recording the intent of a compromised key: %v", err)
		}

		// An intent recovery revoked (its caller took too long) is not
		// signed.
		slow, err := authority.Prepare(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return slow.Record(ctx, tx) }); err != nil {
			t.Fatal(err)
		}
		if n, err := authority.Recover(ctx, 0); err != nil || n != 1 {
			t.Fatalf("recovery: %d, %v", n, err)
		}
		revoked := req
		revoked.Recorded = slow
		if _, err := authority.Issue(ctx, revoked); err == nil || !strings.Contains(err.Error(), "revoked since") {
			t.Errorf("an intent recovery revoked: %v", err)
		}
		if rep, err := audit.Verify(ctx, db, "test", nil); err != nil || !rep.OK() {
			t.Errorf("audit log: %+v, %v", rep, err)
		}
	})
}

// TestIssuanceEnds: IssuanceEnds names the profile that first outlives the
// issuer and the last time Issue accepts it: then, the certificate ends
// with its issuer; a second later, Issue refuses.
func TestIssuanceEnds(t *testing.T) {
	f := catest.New(t, time.Now().UTC().Truncate(time.Second))
	db, _ := storetest.Open(t, store.DriverSQLite)
	d := f.Deps(db, audit.New(time.Now))
	d.Profiles = maps.Clone(d.Profiles)
	longest := d.Profiles["citizen-sign"]
	longest.ValidityDays = d.Profiles["citizen-auth"].ValidityDays + 30
	d.Profiles["citizen-sign"] = longest
	var clock time.Time
	d.Now = func() time.Time { return clock }
	f.PutIssuer(t, db)
	authority, err := ca.New(d)
	if err != nil {
		t.Fatal(err)
	}
	ends, name := authority.IssuanceEnds()
	if name != "citizen-sign" || !ends.Equal(f.Issuer.Certificate.NotAfter.AddDate(0, 0, -longest.ValidityDays).Add(time.Second)) {
		t.Fatalf("IssuanceEnds = %s, %q; want citizen-sign %d days before the issuer's %s", ends, name, longest.ValidityDays, f.Issuer.Certificate.NotAfter)
	}
	issue := func() (*x509.Certificate, error) {
		return authority.Issue(t.Context(), ca.Request{Profile: "citizen-sign", CSR: newCSR(t), Verified: person, Actor: "test"})
	}
	clock = ends
	if c, err := issue(); err != nil || !c.NotAfter.Equal(f.Issuer.Certificate.NotAfter) {
		t.Fatalf("at IssuanceEnds: %v, %v; want a certificate ending with its issuer", c, err)
	}
	clock = ends.Add(time.Second)
	if _, err := issue(); err == nil || !strings.Contains(err.Error(), "before a") {
		t.Fatalf("a second later: %v, want a refusal", err)
	}
	// The shorter profile still issues.
	if _, err := authority.Issue(t.Context(), ca.Request{Profile: "citizen-auth", CSR: newCSR(t), Verified: person, Actor: "test"}); err != nil {
		t.Errorf("citizen-auth at citizen-sign's end: %v", err)
	}
}
