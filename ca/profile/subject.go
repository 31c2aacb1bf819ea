package profile

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Verified holds the identity attributes the RA verified against the
// national registry. A certificate subject is built from these only, never
// from what a CSR asked for.
type Verified struct {
	// Country is the ISO 3166 code of the identifier's issuing country.
	Country string
	// NationalID is a person's national identifier (IIN, CNIC, …), already
	// validated by ra/idnum.
	NationalID string
	GivenName  string
	FamilyName string
	// OrganizationName and RegistrationNumber describe a business.
	OrganizationName   string
	RegistrationNumber string
}

// X.520 attribute types Go's pkix.Name has no field for.
var (
	oidGivenName = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidSurname   = asn1.ObjectIdentifier{2, 5, 4, 4}
	// OIDOrganizationIdentifier is organizationIdentifier, which names a
	// legal person (ETSI EN 319 412-1 §5.1.4): a business's subject, and a
	// CA's (package ceremony).
	OIDOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}
)

var (
	countryCode = regexp.MustCompile(`^[A-Z]{2}$`)
	// Identifiers are digits and letters (a CNIC's dashes are removed by
	// ra/idnum before they get here).
	identifier = regexp.MustCompile(`^[A-Za-z0-9]{1,40}$`)
)

// ErrSubject is wrapped by every refusal of Subject.
var ErrSubject = errors.New("subject")

// Subject builds the distinguished name of an end-entity certificate.
//
// Natural persons (ETSI EN 319 412-2 §4.2.4): countryName, givenName,
// surname, commonName "Given Family", and serialNumber carrying the
// semantics identifier of EN 319 412-1 §5.1.3, "IDC" + country + "-" +
// national identifier (e.g. IDCKZ-…, IDCPK-…).
//
// Legal persons (ETSI EN 319 412-3 §4.2.1): countryName, organizationName,
// organizationIdentifier "NTR" + country + "-" + registration number (e.g.
// NTRKZ-…, NTRPK-…), and commonName the organization's name.
func (p Profile) Subject(v Verified) (pkix.Name, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrSubject, fmt.Sprintf(format, args...)))
	}
	text := func(field, s string) string {
		// NFC: one name, one encoding, whichever form the registry
		// answered in (Ә + й and Ә + й read alike and must compare alike).
		s = norm.NFC.String(strings.TrimSpace(s))
		// X.520 upper bound ub-name and RFC 5280's ub-common-name are 64.
		switch {
		case s == "":
			bad("%s is missing", field)
		case !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl):
			bad("%s has control characters", field)
		case strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Cf, r) }):
			// A right-to-left override or a zero-width space makes a name
			// read otherwise than its bytes say.
			bad("%s has format characters (bidirectional or zero-width)", field)
		case utf8.RuneCountInString(s) > 64:
			bad("%s is longer than 64 characters", field)
		}
		return s
	}
	if !countryCode.MatchString(v.Country) {
		bad("country %q is not an ISO 3166 two-letter code", v.Country)
	}
	var name pkix.Name
	switch p.SubjectKind {
	case "person":
		given, family := text("given name", v.GivenName), text("family name", v.FamilyName)
		if !identifier.MatchString(v.NationalID) {
			bad("national identifier is missing or malformed")
		}
		cn := given + " " + family
		if utf8.RuneCountInString(cn) > 64 {
			bad("given and family name are longer than 64 characters together")
		}
		name = pkix.Name{
			Country:      []string{v.Country},
			CommonName:   cn,
			SerialNumber: "IDC" + v.Country + "-" + v.NationalID,
			ExtraNames: []pkix.AttributeTypeAndValue{
				{Type: oidSurname, Value: family},
				{Type: oidGivenName, Value: given},
			},
		}
	case "business":
		org := text("organization name", v.OrganizationName)
		if !identifier.MatchString(v.RegistrationNumber) {
			bad("registration number is missing or malformed")
		}
		name = pkix.Name{
			Country:      []string{v.Country},
			Organization: []string{org},
			CommonName:   org,
			ExtraNames: []pkix.AttributeTypeAndValue{
				{Type: OIDOrganizationIdentifier, Value: "NTR" + v.Country + "-" + v.RegistrationNumber},
			},
		}
	default:
		return pkix.Name{}, fmt.Errorf("%w: profile %s certifies no end entity", ErrSubject, p.Name)
	}
	if err := errors.Join(errs...); err != nil {
		return pkix.Name{}, fmt.Errorf("profile %s: %w", p.Name, err)
	}
	return name, nil
}
