package ocspsign

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/internal/store"
)

// TestResponderValidity: a response is signed only when the responder
// certificate is valid from its thisUpdate to its nextUpdate; otherwise
// Sign and CheckResponder refuse with ErrResponderValidity and say why.
// SigningEnds is the last time Sign succeeds.
func TestResponderValidity(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	const backdate = 5 * time.Minute
	thisUpdate := now.Add(-backdate)
	s, err := New(0, backdate, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	_, responder := responderMaker(t, now)
	cert := store.Certificate{IssuerID: "ca", Serial: []byte{0x01, 0x02}, Status: store.StatusGood}
	nextUpdate := thisUpdate.Add(DefaultValidity)
	for _, tc := range []struct {
		name                string
		notBefore, notAfter time.Time
		want                string // in the refusal; "" signs
	}{
		{"valid throughout", now.AddDate(0, 0, -1), now.AddDate(0, 0, 60), ""},
		{"expires at nextUpdate", now.AddDate(0, 0, -1), nextUpdate, ""},
		{"valid from thisUpdate", thisUpdate, now.AddDate(0, 0, 60), ""},
		{"expires a second before nextUpdate", now.AddDate(0, 0, -1), nextUpdate.Add(-time.Second), "before nextUpdate"},
		{"expires within the validity", now.AddDate(0, 0, -60), now.Add(9 * time.Hour), "before nextUpdate"},
		{"expired", now.AddDate(0, 0, -90), now.AddDate(0, 0, -1), "expired at"},
		{"expires at thisUpdate", now.AddDate(0, 0, -90), thisUpdate, "expired at"},
		{"not yet valid at thisUpdate", thisUpdate.Add(time.Second), now.AddDate(0, 0, 60), "after thisUpdate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := responder(tc.notBefore, tc.notAfter)
			resp, signErr := s.Sign(r, cert)
			checkErr := s.CheckResponder(r)
			if tc.want == "" {
				if signErr != nil || checkErr != nil {
					t.Fatalf("Sign: %v; CheckResponder: %v", signErr, checkErr)
				}
				if resp.NextUpdate.After(tc.notAfter) || resp.ThisUpdate.Before(tc.notBefore) {
					t.Errorf("response %s..%s outside the responder's %s..%s", resp.ThisUpdate, resp.NextUpdate, tc.notBefore, tc.notAfter)
				}
				if ends := s.SigningEnds(r); now.After(ends) {
					t.Errorf("signed at %s, after SigningEnds %s", now, ends)
				}
				return
			}
			for name, err := range map[string]error{"Sign": signErr, "CheckResponder": checkErr} {
				if !errors.Is(err, ErrResponderValidity) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: %v, want ErrResponderValidity saying %q", name, err, tc.want)
				}
			}
			if resp.DER != nil {
				t.Error("a refused response has DER")
			}
			if !tc.notBefore.After(thisUpdate) && !now.After(s.SigningEnds(r)) {
				t.Errorf("refused for its notAfter at %s, before SigningEnds %s", now, s.SigningEnds(r))
			}
		})
	}
}

// TestWithNonceResponderValidity: a nonce response ends with the responder
// certificate when the pre-signed one would outlive it, and none is signed
// by an expired responder.
func TestWithNonceResponderValidity(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	ca, responderFrom := responderMaker(t, now)
	responder := func(notAfter time.Time) Responder { return responderFrom(now.AddDate(0, 0, -60), notAfter) }
	// A pre-signed response valid four days, from a responder valid longer.
	serial := []byte{0x01, 0x02}
	presigned, err := Encode(responder(now.AddDate(0, 0, 30)), Template{Serial: serial, Status: ocsp.Good, Reason: -1,
		ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(DefaultValidity - time.Hour), ProducedAt: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(0, 0, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	nonce := []byte("0123456789abcdef")

	ending := now.Add(2 * time.Hour)
	der, err := s.WithNonce(responder(ending), presigned, nonce)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ocsp.ParseResponse(der, ca)
	if err != nil {
		t.Fatal(err)
	}
	if !p.NextUpdate.Equal(ending) || !p.ThisUpdate.Equal(now.Add(-time.Hour)) || !p.ProducedAt.Equal(now) {
		t.Errorf("nonce response %s..%s, produced %s; want the pre-signed one's thisUpdate (an hour ago), produced now, ending with the responder at %s",
			p.ThisUpdate, p.NextUpdate, p.ProducedAt, ending)
	}

	// A revocation for an unspecified reason says none, in the pre-signed
	// response and in the nonce response.
	revoked, err := Encode(responder(now.AddDate(0, 0, 30)), Template{Serial: serial, Status: ocsp.Revoked, RevokedAt: now.Add(-2 * time.Hour), Reason: -1,
		ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(DefaultValidity - time.Hour), ProducedAt: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if der, err := s.WithNonce(responder(now.AddDate(0, 0, 30)), revoked, nonce); err != nil || bytes.Contains(der, []byte{0xa0, 0x03, 0x0a, 0x01, 0x00}) {
		t.Errorf("a nonce response to a revocation without a reason: %v; want no reasonCode 0 in it", err)
	}

	if _, err := s.WithNonce(responder(now.Add(-time.Second)), presigned, nonce); !errors.Is(err, ErrResponderValidity) ||
		!strings.Contains(err.Error(), "expired at") {
		t.Errorf("an expired responder: %v", err)
	}
}

// responderMaker is a test CA valid a year either side of now, and a maker
// of its OCSP responders (one key) valid as asked.
func responderMaker(t *testing.T, now time.Time) (*x509.Certificate, func(notBefore, notAfter time.Time) Responder) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := certify(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, NotBefore: now.AddDate(-1, 0, 0),
		NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, caKey.Public(), caKey)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return ca, func(notBefore, notAfter time.Time) Responder {
		c := certify(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "OCSP"}, NotBefore: notBefore,
			NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}, ca, key.Public(), caKey)
		return Responder{IssuerID: "ca", Issuer: ca, Certificate: c, Signer: key}
	}
}

// TestExpiredValidity: a response for an expired certificate lasts
// MaxValidity, or until the responder certificate ends when that is
// sooner, never less than Validity (then it is refused, as any response);
// DueBeforeExpired makes it due by its own refresh point, and a shorter,
// capped response is not due again at the next pass.
func TestExpiredValidity(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	s, err := New(0, 0, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	_, responder := responderMaker(t, now)
	expired := store.Certificate{IssuerID: "ca", Serial: []byte{0x01, 0x02}, Status: store.StatusGood,
		NotBefore: now.AddDate(-3, 0, 0), NotAfter: now.AddDate(0, 0, -1)}
	const lookahead = time.Minute
	for _, tc := range []struct {
		name     string
		ends     time.Time     // the responder certificate's notAfter
		validity time.Duration // of the response; 0: refused
	}{
		{"responder valid long", now.AddDate(0, 0, 60), MaxValidity},
		{"responder ends in 6 days", now.AddDate(0, 0, 6), 6 * 24 * time.Hour},
		{"responder ends in exactly the validity", now.Add(DefaultValidity), DefaultValidity},
		{"responder ends sooner", now.Add(DefaultValidity - time.Second), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := responder(now.AddDate(0, 0, -1), tc.ends)
			resp, err := s.Sign(r, expired)
			if tc.validity == 0 {
				if !errors.Is(err, ErrResponderValidity) {
					t.Fatalf("Sign = %v, want ErrResponderValidity", err)
				}
				return
			}
			if err != nil || resp.NextUpdate.Sub(resp.ThisUpdate) != tc.validity {
				t.Fatalf("Sign: %s..%s, %v; want a validity of %s", resp.ThisUpdate, resp.NextUpdate, err, tc.validity)
			}
			// Not due at the next pass, and due by its refresh point (the
			// lookahead early) at the latest.
			refresh := resp.ThisUpdate.Add(RefreshAge(tc.validity))
			due := func(at time.Time) bool {
				tu, nu := s.DueBeforeExpired(r, at, lookahead)
				return !resp.ThisUpdate.After(tu) || !resp.NextUpdate.After(nu)
			}
			if due(now.Add(lookahead)) {
				t.Error("due again at the next pass")
			}
			if !due(refresh.Add(-lookahead)) {
				t.Errorf("not due at its refresh point %s", refresh)
			}
		})
	}
}
