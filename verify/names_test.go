package verify

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
)

// TestDN: subjects read as RFC 4514 writes them, with names for the
// attributes of ETSI EN 319 412 subjects instead of OIDs and hex, and the
// RFC's escapes.
func TestDN(t *testing.T) {
	for _, tc := range []struct {
		name pkix.Name
		want string
	}{
		{pkix.Name{Country: []string{"KZ"}, CommonName: "Aigerim Sadykova", SerialNumber: "IDCKZ-880312448217",
			ExtraNames: []pkix.AttributeTypeAndValue{
				{Type: asn1.ObjectIdentifier{2, 5, 4, 42}, Value: "Aigerim"},
				{Type: asn1.ObjectIdentifier{2, 5, 4, 4}, Value: "Sadykova"}}},
			"surname=Sadykova,givenName=Aigerim,SERIALNUMBER=IDCKZ-880312448217,CN=Aigerim Sadykova,C=KZ"},
		{pkix.Name{Organization: []string{`Dala Logistics, "LLP"`}, ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oidOrganizationIdentifier, Value: "NTRKZ-150340219487"}}},
			`organizationIdentifier=NTRKZ-150340219487,O=Dala Logistics\, \"LLP\"`},
		{pkix.Name{CommonName: " lead and trail "}, `CN=\ lead and trail\ `},
		{pkix.Name{CommonName: "#hash"}, `CN=\#hash`},
		{pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{1, 2, 3}, Value: "x"}}}, "1.2.3=#130178"},
	} {
		raw, err := asn1.Marshal(tc.name.ToRDNSequence())
		if err != nil {
			t.Fatal(err)
		}
		if got := dn(raw); got != tc.want {
			t.Errorf("dn = %s, want %s", got, tc.want)
		}
	}
}
