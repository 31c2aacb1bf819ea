package ceremony

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"time"
)

// carried reads the issuer's previous CRL (crl.previous), the one numbered
// just before this one, and returns it with the entries this CRL carries
// over from it: all of them, with their dates, reasons and other entry
// extensions, but those crl.drop names and those crl.revoked restates
// (MayRestate). A CRL is cumulative: an entry stays until it has been on a
// CRL issued after its certificate expired (RFC 5280 §3.3), so a drop
// names the certificate, which must have expired before the previous CRL's
// thisUpdate. Everything wrong is a problem of its field; with no
// crl.previous, carried returns nothing.
func (s *Script) carried(issuer *x509.Certificate, thisUpdate time.Time) (carriedEntries, []Problem) {
	c := s.CRL
	if c.Previous == "" {
		return carriedEntries{}, nil
	}
	prev, err := readCRL(s.Resolve(c.Previous))
	if err == nil {
		err = prev.CheckSignatureFrom(issuer)
	}
	switch {
	case err != nil:
		return carriedEntries{}, []Problem{{Field: "crl.previous", Msg: fmt.Sprintf("%s: %v", c.Previous, err)}}
	case prev.Number == nil || prev.Number.Cmp(big.NewInt(c.Number-1)) != 0:
		// An earlier one would leave out what the CRLs since revoked.
		return carriedEntries{}, []Problem{{Field: "crl.previous", Msg: fmt.Sprintf("%s is CRL number %v, not number %d: a CRL carries the entries of the one just before it", c.Previous, prev.Number, c.Number-1)}}
	case thisUpdate.Before(prev.ThisUpdate):
		return carriedEntries{}, []Problem{{Field: "crl.previous", Msg: fmt.Sprintf("%s is dated %s, after this CRL's this_update", c.Previous, prev.ThisUpdate.UTC().Format(time.RFC3339))}}
	}
	var ps []Problem
	// A serial listed twice (by a CRL signed elsewhere) is carried once,
	// at its earliest date.
	on := map[string]x509.RevocationListEntry{}
	var order []string
	for _, e := range prev.RevokedCertificateEntries {
		k := e.SerialNumber.String()
		if first, ok := on[k]; !ok {
			order = append(order, k)
		} else if !e.RevocationTime.Before(first.RevocationTime) {
			continue
		}
		on[k] = e
	}
	dropped := map[string]bool{}
	for i, d := range c.Drop {
		f := fmt.Sprintf("crl.drop[%d]", i)
		cert, err := readCertificate(s.Resolve(d))
		switch {
		case err != nil:
			ps = append(ps, Problem{Field: f, Msg: err.Error()})
		case cert.CheckSignatureFrom(issuer) != nil:
			ps = append(ps, Problem{Field: f, Msg: fmt.Sprintf("%s was not issued by this CA", d)})
		case !hasEntry(on, cert.SerialNumber):
			ps = append(ps, Problem{Field: f, Msg: fmt.Sprintf("%s (serial %s) is not on CRL %v", d, hexSerial(cert.SerialNumber), prev.Number)})
		case !cert.NotAfter.Before(prev.ThisUpdate):
			ps = append(ps, Problem{Field: f, Msg: fmt.Sprintf("%s expires %s: its entry stays until it has been on a CRL issued after that (RFC 5280 §3.3), and CRL %v was issued %s",
				d, cert.NotAfter.UTC().Format(time.RFC3339), prev.Number, prev.ThisUpdate.UTC().Format(time.RFC3339))})
		default:
			dropped[cert.SerialNumber.String()] = true
		}
	}
	restated := map[string]bool{}
	for i, r := range c.Revoked {
		serial, err := s.revokedSerial(r)
		if err != nil {
			continue // Check reports it; crlTemplate fails on it
		}
		e, ok := on[serial.String()]
		if !ok {
			continue
		}
		f := fmt.Sprintf("crl.revoked[%d]", i)
		switch at, err := time.Parse(time.RFC3339, r.RevokedAt); {
		case !MayRestate(e.ReasonCode, reasonCodes[r.Reason]):
			ps = append(ps, Problem{Field: f, Msg: fmt.Sprintf("serial %s is on CRL %v already (revoked %s, reason %d), and stays: remove it here, or restate it only as keyCompromise",
				hexSerial(serial), prev.Number, e.RevocationTime.UTC().Format(time.RFC3339), e.ReasonCode)})
		case r.RevokedAt != "" && err == nil && at.After(e.RevocationTime):
			ps = append(ps, Problem{Field: f + ".revoked_at", Msg: fmt.Sprintf("after serial %s's revocation on CRL %v (%s): a revocation is never moved later",
				hexSerial(serial), prev.Number, e.RevocationTime.UTC().Format(time.RFC3339))})
		default:
			restated[serial.String()] = true
		}
	}
	ce := carriedEntries{prev: prev, revokedAt: map[string]time.Time{}}
	for _, k := range order {
		e := on[k]
		ce.revokedAt[k] = e.RevocationTime
		if dropped[k] || restated[k] {
			continue
		}
		ce.keep = append(ce.keep, x509.RevocationListEntry{SerialNumber: e.SerialNumber, RevocationTime: e.RevocationTime, ReasonCode: e.ReasonCode,
			ExtraExtensions: entryExtensions(e)})
	}
	return ce, ps
}

// carriedEntries is what a CRL takes from its predecessor (prev): the
// entries it keeps, and when each serial on it was revoked (the date a
// restated entry keeps).
type carriedEntries struct {
	prev      *x509.RevocationList
	keep      []x509.RevocationListEntry
	revokedAt map[string]time.Time
}

// oidReasonCode is the CRL entry extension reasonCode (RFC 5280 §5.3.1),
// which x509.RevocationListEntry.ReasonCode encodes.
var oidReasonCode = asn1.ObjectIdentifier{2, 5, 29, 21}

// entryExtensions are e's extensions but its reason code: an invalidity
// date, a certificate issuer, or any other, carried as they were.
func entryExtensions(e x509.RevocationListEntry) []pkix.Extension {
	var out []pkix.Extension
	for _, x := range e.Extensions {
		if !x.Id.Equal(oidReasonCode) {
			out = append(out, x)
		}
	}
	return out
}

// MayRestate reports whether a CRL may restate an entry of its predecessor
// that has reason code old with reason code new: only to say the key was
// compromised (CA/B Forum BR §4.9.1, once it is known), or to replace a
// reason no longer offered (one a CRL signed elsewhere carried, which the
// lints refuse). Its date is kept, or moved earlier, never later.
func MayRestate(old, new int) bool {
	if new == reasonCodes["keyCompromise"] && old != new {
		return true
	}
	for _, code := range reasonCodes {
		if code == old {
			return false
		}
	}
	return true
}

func hasEntry(on map[string]x509.RevocationListEntry, serial *big.Int) bool {
	_, ok := on[serial.String()]
	return ok
}

func hexSerial(n *big.Int) string { return hex.EncodeToString(n.Bytes()) }

// revokedSerial is the serial number an entry of crl.revoked names: its
// certificate's, or the hex it gives.
func (s *Script) revokedSerial(r Revoked) (*big.Int, error) {
	if r.Certificate == "" {
		return parseSerial(r.Serial)
	}
	cert, err := readCertificate(s.Resolve(r.Certificate))
	if err != nil {
		return nil, err
	}
	return cert.SerialNumber, nil
}

// readCRL reads a CRL file, DER (as a ceremony writes it) or PEM.
func readCRL(path string) (*x509.RevocationList, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if block, _ := pem.Decode(raw); block != nil {
		if block.Type != "X509 CRL" {
			return nil, fmt.Errorf("a PEM %s, not an X509 CRL", block.Type)
		}
		raw = block.Bytes
	}
	return x509.ParseRevocationList(raw)
}
