package ceremony

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"time"
)

// carried reads the issuer's previous CRL (crl.previous) and returns it
// with the entries this CRL carries over from it: all of them but those
// crl.drop names. A CRL is cumulative: an entry stays until it has been on
// a CRL issued after its certificate expired (RFC 5280 §3.3), so a drop
// names the certificate, which must have expired before the previous
// CRL's thisUpdate; and a certificate already revoked is not revoked again
// (its time and reason stay the first CRL's). Everything wrong is a
// problem of its field; with no crl.previous, carried returns nothing.
func (s *Script) carried(issuer *x509.Certificate, thisUpdate time.Time) (*x509.RevocationList, []x509.RevocationListEntry, []Problem) {
	c := s.CRL
	if c.Previous == "" {
		return nil, nil, nil
	}
	prev, err := readCRL(s.Resolve(c.Previous))
	if err == nil {
		err = prev.CheckSignatureFrom(issuer)
	}
	switch {
	case err != nil:
		return nil, nil, []Problem{{Field: "crl.previous", Msg: fmt.Sprintf("%s: %v", c.Previous, err)}}
	case prev.Number == nil || prev.Number.Cmp(big.NewInt(c.Number)) >= 0:
		return nil, nil, []Problem{{Field: "crl.previous", Msg: fmt.Sprintf("%s is CRL number %v: this one's number must be greater", c.Previous, prev.Number)}}
	case thisUpdate.Before(prev.ThisUpdate):
		return nil, nil, []Problem{{Field: "crl.previous", Msg: fmt.Sprintf("%s is dated %s, after this CRL's this_update", c.Previous, prev.ThisUpdate.UTC().Format(time.RFC3339))}}
	}
	var ps []Problem
	on := map[string]x509.RevocationListEntry{}
	for _, e := range prev.RevokedCertificateEntries {
		on[e.SerialNumber.String()] = e
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
	for i, r := range c.Revoked {
		serial, err := s.revokedSerial(r)
		if err != nil {
			continue // Check reports it; crlTemplate fails on it
		}
		if e, ok := on[serial.String()]; ok {
			ps = append(ps, Problem{Field: fmt.Sprintf("crl.revoked[%d]", i), Msg: fmt.Sprintf("serial %s is on CRL %v already (revoked %s), and stays: remove it here",
				hexSerial(serial), prev.Number, e.RevocationTime.UTC().Format(time.RFC3339))})
		}
	}
	var keep []x509.RevocationListEntry
	for _, e := range prev.RevokedCertificateEntries {
		if !dropped[e.SerialNumber.String()] {
			keep = append(keep, x509.RevocationListEntry{SerialNumber: e.SerialNumber, RevocationTime: e.RevocationTime, ReasonCode: e.ReasonCode})
		}
	}
	return prev, keep, ps
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
