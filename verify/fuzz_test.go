package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"testing"
	"time"
)

// fuzzVerifier trusts a root no input can chain to, offline, so that any
// TOTAL_PASSED a fuzzer finds is a bug.
func fuzzVerifier(f *testing.F) *Verifier {
	key := newKey(f)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Fuzz Root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	return offlineVerifier(f, mustCert(f, tmpl, tmpl, key.Public(), key))
}

// checkResult holds what every result must satisfy, whatever the input.
func checkResult(t *testing.T, res *Result, err error) {
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return
		}
		t.Fatalf("error for hostile input: %v", err)
	}
	if len(res.Reports) == 0 {
		t.Fatal("result without reports")
	}
	for _, r := range res.Reports {
		switch r.Indication {
		case TotalFailed, Indeterminate:
		case TotalPassed:
			t.Fatalf("passed against a root nothing chains to: %+v", r)
		default:
			t.Fatalf("indication %q", r.Indication)
		}
		if r.SubIndication == "" || len(r.Checks) == 0 {
			t.Fatalf("report without sub-indication or checks: %+v", r)
		}
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatal(err)
	}
	if err := res.WriteText(&bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
}

// FuzzCMS feeds CMS, PEM and S/MIME input (seeds made by openssl in
// testdata/fuzz/FuzzCMS) and detached content to VerifyCMS.
func FuzzCMS(f *testing.F) {
	v := fuzzVerifier(f)
	f.Fuzz(func(t *testing.T, sig, content []byte) {
		res, err := v.VerifyCMS(context.Background(), sig, content)
		checkResult(t, res, err)
	})
}

// FuzzJWS feeds JWS in compact and JSON serialization (seeds in
// testdata/fuzz/FuzzJWS) and detached payloads to VerifyJWS.
func FuzzJWS(f *testing.F) {
	v := fuzzVerifier(f)
	f.Fuzz(func(t *testing.T, sig, payload []byte) {
		res, err := v.VerifyJWS(context.Background(), sig, payload)
		checkResult(t, res, err)
	})
}
