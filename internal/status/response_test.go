package status

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/sanadpki/sanad/internal/store"
)

// TestReadSingle: the light reader agrees with x/crypto/ocsp's full parse
// on good, revoked and unknown responses, signed by a delegated responder
// (which the response carries) and by the CA itself; it refuses what is
// not a successful basic response with nextUpdate.
func TestReadSingle(t *testing.T) {
	issuer, key := responderCA(t)
	now := time.Now().UTC().Truncate(time.Second)
	serial, _ := new(big.Int).SetString("80aa01020304050607080910111213", 16)
	for _, tc := range []struct {
		name      string
		status    int
		want      outcome
		delegated bool
	}{
		{"good", ocsp.Good, outcomeGood, true},
		{"revoked", ocsp.Revoked, outcomeRevoked, true},
		{"unknown", ocsp.Unknown, outcomeUnknown, false},
		{"good, signed by the CA", ocsp.Good, outcomeGood, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ocsp.Response{SerialNumber: serial, Status: tc.status, ThisUpdate: now, NextUpdate: now.Add(96 * time.Hour),
				RevokedAt: now.Add(-time.Minute), RevocationReason: ocsp.KeyCompromise}
			if tc.delegated {
				r.Certificate = issuer // any certificate: it is carried, and must be skipped
			}
			resp, err := ocsp.CreateResponse(issuer, issuer, r, key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := readSingle(resp)
			if err != nil {
				t.Fatal(err)
			}
			if got.outcome != tc.want || !bytes.Equal(got.serial, serial.Bytes()) || !got.thisUpdate.Equal(now) || !got.nextUpdate.Equal(r.NextUpdate) {
				t.Errorf("readSingle = %+v", got)
			}
		})
	}
	noNext, err := ocsp.CreateResponse(issuer, issuer, ocsp.Response{SerialNumber: serial, Status: ocsp.Good, ThisUpdate: now}, key)
	if err != nil {
		t.Fatal(err)
	}
	for name, der := range map[string][]byte{
		"no nextUpdate": noNext, "unauthorized": respUnauthorized, "empty": nil, "truncated": noNext[:len(noNext)/2],
	} {
		if _, err := readSingle(der); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestHTTPDate: one shared header value per second, in HTTP's format, and
// the interning table starts over rather than grow past its bound.
func TestHTTPDate(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 0, 0, 500, time.UTC)
	a, b := httpDate(at), httpDate(at.Add(400*time.Millisecond))
	if len(a) != 1 || a[0] != "Mon, 30 Nov 2026 10:00:00 GMT" || &a[0] != &b[0] {
		t.Errorf("httpDate = %q, %q (shared: %v)", a, b, &a[0] == &b[0])
	}
	for i := range maxHTTPDates + 10 {
		httpDate(at.Add(time.Duration(i) * time.Second))
	}
	httpDates.Lock()
	n := len(httpDates.m)
	httpDates.Unlock()
	if n > maxHTTPDates {
		t.Errorf("%d interned dates, more than %d", n, maxHTTPDates)
	}
}

// TestCacheAgeBounded: HTTP caches may keep a response an hour at most
// (ocspMaxAge: a revocation reaches every cache within it), never past its
// nextUpdate, and never past maxCacheAge after its thisUpdate (an expired
// certificate's 10-day response, re-signed after 4 days).
func TestCacheAgeBounded(t *testing.T) {
	issuer, key := responderCA(t)
	signed := time.Now().UTC().Truncate(time.Minute)
	serial := big.NewInt(0x1234)
	for _, tc := range []struct {
		validity time.Duration
		at       time.Duration // after thisUpdate
		maxAge   int64
	}{
		{4 * 24 * time.Hour, 0, 3600},
		{4 * 24 * time.Hour, 2 * 24 * time.Hour, 3600},
		{4 * 24 * time.Hour, 4*24*time.Hour - 30*time.Minute, 29 * 60},
		{2 * 24 * time.Hour, 2*24*time.Hour - 10*time.Minute, 9 * 60},
		{10 * 24 * time.Hour, 4*24*time.Hour - 10*time.Minute, 9 * 60},
		{10 * 24 * time.Hour, 5 * 24 * time.Hour, 0},
	} {
		resp, err := ocsp.CreateResponse(issuer, issuer, ocsp.Response{SerialNumber: serial, Status: ocsp.Good, ThisUpdate: signed,
			NextUpdate: signed.Add(tc.validity)}, key)
		if err != nil {
			t.Fatal(err)
		}
		e, err := responseEntry(store.OCSPResponse{IssuerID: "issuing", Serial: serial.Bytes(), DER: resp, ThisUpdate: signed, NextUpdate: signed.Add(tc.validity)})
		if err != nil {
			t.Fatal(err)
		}
		var maxAge int64
		if _, err := fmt.Sscanf(e.cacheControl(signed.Add(tc.at))[0], "max-age=%d,", &maxAge); err != nil {
			t.Fatal(err)
		}
		if maxAge != tc.maxAge {
			t.Errorf("a response valid %s, served %s after its thisUpdate: max-age %d, want %d", tc.validity, tc.at, maxAge, tc.maxAge)
		}
	}
}

// responderCA is a self-signed CA that signs its own OCSP responses.
func responderCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return issuer, key
}
