package verify

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"strings"
	"time"
)

// attributeNames are the short names of RFC 4514 §3 and RFC 4519, and
// those of the ETSI EN 319 412 attributes Sanad's subjects carry, which
// pkix.Name.String would print as an OID and hex.
var attributeNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.5": "SERIALNUMBER", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST",
	"2.5.4.9": "STREET", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.17": "postalCode",
	"2.5.4.4": "surname", "2.5.4.42": "givenName", "2.5.4.12": "title",
	"2.5.4.97": "organizationIdentifier", "0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1": "UID", "1.2.840.113549.1.9.1": "emailAddress",
}

// dn is a distinguished name as RFC 4514 writes it (most significant RDN
// last), with the attribute names above.
func dn(raw []byte) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil || len(rest) > 0 {
		return "#" + hex.EncodeToString(raw) // x509 parsed it: does not happen
	}
	var b strings.Builder
	for i := len(rdns) - 1; i >= 0; i-- {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		for j, atv := range rdns[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			name, known := attributeNames[atv.Type.String()]
			value, isString := atv.Value.(string)
			if !known || !isString {
				b.WriteString(pkix.RDNSequence{{atv}}.String())
				continue
			}
			b.WriteString(name)
			b.WriteByte('=')
			escapeDN(&b, value)
		}
	}
	return b.String()
}

// escapeDN writes an attribute value with RFC 4514 §2.4's escapes.
func escapeDN(b *strings.Builder, v string) {
	for i, r := range v {
		switch {
		case strings.ContainsRune(`,+"\<>;`, r),
			i == 0 && (r == ' ' || r == '#'),
			i == len(v)-1 && r == ' ':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
}

// subject is c's subject as dn writes it, once per certificate of the
// report.
func (r *Report) subject(c *x509.Certificate) string {
	if r.subjects == nil {
		r.subjects = map[*x509.Certificate]string{}
	}
	s, ok := r.subjects[c]
	if !ok {
		s = r.dn(c.RawSubject)
		r.subjects[c] = s
	}
	return s
}

// maxCachedName bounds the names the Verifier keeps written.
const maxCachedName = 1 << 10

// dn is dn(raw) through the Verifier's cache of written names: the
// issuing CAs' names are written again for every report otherwise.
func (r *Report) dn(raw []byte) string {
	if r.names == nil || len(raw) > maxCachedName {
		return dn(raw) // anyone can send a certificate: keep only small names
	}
	if s, ok := r.names.get(string(raw)); ok {
		return s
	}
	s := dn(raw)
	r.names.put(string(raw), s, time.Time{})
	return s
}
