package profile

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sanadpki/sanad/ca/lint"
	"github.com/sanadpki/sanad/policies"
)

var (
	aigerim = Verified{Country: "KZ", NationalID: "900101300123", GivenName: "Aigerim", FamilyName: "Nurlanovna"}
	bilal   = Verified{Country: "PK", NationalID: "3520112345671", GivenName: "Bilal", FamilyName: "Ahmed"}
	kazCo   = Verified{Country: "KZ", OrganizationName: "Dala Logistics LLP", RegistrationNumber: "080540001234"}
)

func loadProfiles(t *testing.T) map[string]Profile {
	t.Helper()
	all, err := LoadAll(policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func attr(n pkix.Name, oid string) string {
	for _, a := range n.ExtraNames {
		if a.Type.String() == oid {
			s, _ := a.Value.(string)
			return s
		}
	}
	return ""
}

func TestSubjectFollowsETSI(t *testing.T) {
	all := loadProfiles(t)
	person, err := all["citizen-sign"].Subject(bilal)
	if err != nil {
		t.Fatal(err)
	}
	if person.SerialNumber != "IDCPK-3520112345671" || person.CommonName != "Bilal Ahmed" ||
		attr(person, "2.5.4.42") != "Bilal" || attr(person, "2.5.4.4") != "Ahmed" || person.Country[0] != "PK" {
		t.Errorf("person subject = %+v", person)
	}
	org, err := all["business-seal"].Subject(kazCo)
	if err != nil {
		t.Fatal(err)
	}
	if attr(org, "2.5.4.97") != "NTRKZ-080540001234" || org.Organization[0] != "Dala Logistics LLP" || org.CommonName != "Dala Logistics LLP" {
		t.Errorf("business subject = %+v", org)
	}
}

// TestSubjectNFC: a name is certified in one encoding (NFC), whichever
// form the registry answered in: "Әйгерім" with й decomposed (и and a
// combining breve) reads the same and must compare the same.
func TestSubjectNFC(t *testing.T) {
	all := loadProfiles(t)
	v := aigerim
	v.GivenName = "\u04d8\u0438\u0306\u0433\u0435\u0440\u0456\u043c" // NFD
	s, err := all["citizen-sign"].Subject(v)
	if err != nil {
		t.Fatal(err)
	}
	const nfc = "\u04d8\u0439\u0433\u0435\u0440\u0456\u043c"
	if attr(s, "2.5.4.42") != nfc || s.CommonName != nfc+" Nurlanovna" {
		t.Errorf("given name %+q, common name %+q; want NFC %+q", attr(s, "2.5.4.42"), s.CommonName, nfc)
	}
}

func TestSubjectRefuses(t *testing.T) {
	all := loadProfiles(t)
	tests := []struct {
		name    string
		profile string
		v       Verified
		want    string
	}{
		{"no national id", "citizen-auth", Verified{Country: "KZ", GivenName: "A", FamilyName: "B"}, "national identifier"},
		{"identifier with a separator", "citizen-auth", Verified{Country: "KZ", NationalID: "9001,CN=Evil", GivenName: "A", FamilyName: "B"}, "national identifier"},
		{"lower-case country", "citizen-auth", Verified{Country: "kz", NationalID: "1", GivenName: "A", FamilyName: "B"}, "ISO 3166"},
		{"control character in a name", "citizen-sign", Verified{Country: "KZ", NationalID: "1", GivenName: "A\nB", FamilyName: "C"}, "control characters"},
		{"C1 control character in a name", "citizen-sign", Verified{Country: "KZ", NationalID: "1", GivenName: "A\u0085B", FamilyName: "C"}, "control characters"},
		{"right-to-left override in a business name", "business-auth", Verified{Country: "PK", RegistrationNumber: "32778761", OrganizationName: "Indus \u202eTextiles"}, "format characters"},
		{"zero-width space in a name", "citizen-sign", Verified{Country: "KZ", NationalID: "1", GivenName: "A\u200bB", FamilyName: "C"}, "format characters"},
		{"name too long", "citizen-sign", Verified{Country: "KZ", NationalID: "1", GivenName: strings.Repeat("a", 40), FamilyName: strings.Repeat("b", 30)}, "longer than 64"},
		{"business without registration", "business-auth", Verified{Country: "PK", OrganizationName: "X"}, "registration number"},
		{"CA profile", "root", aigerim, "certifies no end entity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := all[tt.profile].Subject(tt.v)
			if !errors.Is(err, ErrSubject) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Subject = %v, want ErrSubject mentioning %q", err, tt.want)
			}
		})
	}
}

// TestEndEntityProfilesLintClean builds one certificate per end-entity
// profile under an in-memory CA, the way issuance will (CRL DP, AIA, SKI,
// AKI, policies), and runs zlint over it.
func TestEndEntityProfilesLintClean(t *testing.T) {
	all := loadProfiles(t)
	linter, err := lint.New("")
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Issuing CA", Organization: []string{"Sanad"}, Country: []string{"KZ"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature, SubjectKeyId: []byte{1, 2, 3, 4},
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	subjects := map[string]Verified{"person": aigerim, "business": kazCo}
	for name, p := range all {
		if p.SubjectKind == "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			subject, err := p.Subject(subjects[p.SubjectKind])
			if err != nil {
				t.Fatal(err)
			}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			// RFC 5280 §4.2.1.2 recommends an SKI in end-entity
			// certificates; issuance derives it from the key.
			ski := sha256.Sum256(elliptic.MarshalCompressed(elliptic.P256(), key.X, key.Y))
			tmpl := &x509.Certificate{
				SerialNumber: new(big.Int).Lsh(big.NewInt(1), 120), Subject: subject, SubjectKeyId: ski[:20],
				NotBefore: now, NotAfter: now.AddDate(0, 0, p.ValidityDays).Add(-time.Second),
				KeyUsage: p.KeyUsage, ExtKeyUsage: p.ExtKeyUsage, UnknownExtKeyUsage: p.OtherExtKeyUsage,
				BasicConstraintsValid: true, Policies: p.PolicyOIDs,
				CRLDistributionPoints: []string{"http://pki.sanad.example/crl/issuing.crl"},
				OCSPServer:            []string{"http://pki.sanad.example/ocsp"},
				IssuingCertificateURL: []string{"http://pki.sanad.example/ca/issuing.crt"},
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
			if err != nil {
				t.Fatal(err)
			}
			if err := linter.Certificate(der); err != nil {
				t.Error(err)
			}
		})
	}
}
