package jwsauth

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the signed seeds in testdata/fuzz/FuzzParse")

// fuzzSeeds are signed requests that pass Parse at testNow, one per key
// kind and action kind, and a few near misses.
func fuzzSeeds(t testing.TB) map[string]string {
	all := identities(t)
	seeds := map[string]string{}
	for _, kind := range []string{"P-256", "P-384", "RSA-3072"} {
		id := all[kind]
		for _, a := range []Action{
			validAction(),
			{Action: ActionReject, Enrollment: "q3J8yq0mTnOE2w_Zc1Vf-A", Reason: "لا يطابق السجل"},
			{Action: ActionRevoke, Serial: "0A1B2C", Reason: "keyCompromise"},
			{Action: ActionRenew, Serial: "0A1B2C", CSR: "MIIBAA"},
			{Action: ActionQueue},
			{Action: ActionShow, Enrollment: "abc"},
			{Action: ActionFind, Subject: "IDCKZ-880312448217"},
		} {
			a.Audience = testAudience
			s, err := Sign(a, id.cert, id.key, testNow)
			if err != nil {
				t.Fatal(err)
			}
			seeds[fmt.Sprintf("signed-%s-%s", strings.ToLower(kind), a.Action)] = s
		}
	}
	p256 := all["P-256"]
	seeds["signed-rs256"] = forge(t, headerFor(all["RSA-3072"].cert, "RS256"), mustJSON(validAction()), "RS256", all["RSA-3072"].key, nil)
	seeds["hs256"] = forge(t, headerFor(p256.cert, "HS256"), mustJSON(validAction()), "HS256", nil, p256.cert.RawSubjectPublicKeyInfo)
	seeds["jwk"] = forge(t, map[string]any{"alg": "ES256", "jwk": jose.JSONWebKey{Key: p256.cert.PublicKey}}, mustJSON(validAction()), "ES256", p256.key, nil)
	seeds["payload-dup"] = forge(t, headerFor(p256.cert, "ES256"), []byte(`{"action":"queue","action":"approve","enrollment":"x","nonce":"`+testNonce+`","iat":1800000000,"aud":"/api/v1/officer/actions"}`), "ES256", p256.key, nil)
	return seeds
}

// writeFuzzSeeds rewrites a few of the signed seeds in the committed
// corpus (go test -run TestCommittedSeedsStillValid ./ra/jwsauth/ -args
// -update-seeds); FuzzParse adds all of them afresh on every run anyway.
// They stay valid: the fuzz target parses at the fixed testNow.
func writeFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := fuzzSeeds(t)
	for _, name := range []string{"signed-p-256-approve", "signed-p-384-revoke", "signed-p-256-renew", "signed-rsa-3072-reject", "signed-rs256", "hs256", "jwk", "payload-dup"} {
		s := seeds[name]
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), fmt.Appendf(nil, "go test fuzz v1\nstring(%q)\n", s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzParse feeds Parse arbitrary input: it must never panic, refuse only
// with a known *Error, and whatever it accepts must verify again by other
// means.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	for _, s := range []string{"", ".", "..", "a.b.c", "{}", `{"payload":"","signatures":[]}`, "eyJhbGciOiJub25lIn0.e30."} {
		f.Add(s)
	}
	codes := map[string]bool{CodeMalformed: true, CodeAlgorithm: true, CodeHeader: true, CodeSignature: true, CodePayload: true, CodeStale: true, CodeAudience: true}
	f.Fuzz(func(t *testing.T, compact string) {
		p, err := Parse(compact, testAudience, testNow, testSkew)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !codes[e.Code] || !errors.Is(err, ErrInvalid) {
				t.Fatalf("refusal %v is not a known *Error", err)
			}
			return
		}
		// Accepted: go-jose (with every algorithm allowed) and plain crypto
		// must both verify it with the certificate's key, and Parse must
		// say the same again.
		obj, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.PS256, jose.RS256})
		if err != nil {
			t.Fatalf("accepted, but go-jose cannot parse it: %v", err)
		}
		payload, err := obj.Verify(p.Certificate.PublicKey)
		if err != nil {
			t.Fatalf("accepted, but go-jose does not verify it: %v", err)
		}
		checkIndependently(t, compact, obj.Signatures[0].Protected.Algorithm, p.Certificate)
		a, err := decodeAction(payload)
		if err != nil || a != p.Action || a.check() != nil {
			t.Fatalf("accepted payload %q reads as %+v (%v), Parse said %+v", payload, a, err, p.Action)
		}
		if p.Raw != compact || p.Fingerprint != sha256.Sum256(p.Certificate.Raw) {
			t.Fatal("Raw or Fingerprint wrong")
		}
		again, err := Parse(compact, testAudience, testNow, testSkew)
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("second Parse differs: %v", err)
		}
	})
}

// TestCommittedSeedsStillValid keeps the committed signed seeds meaningful:
// each still passes Parse at testNow, so the fuzzer starts from requests
// that reach the payload checks.
func TestCommittedSeedsStillValid(t *testing.T) {
	if *updateSeeds {
		writeFuzzSeeds(t)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParse", "seed-signed-*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no signed seeds (%v)", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		quoted, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "go test fuzz v1\nstring(")
		if !ok || !strings.HasSuffix(quoted, ")") {
			t.Fatalf("%s: not a fuzz corpus file", f)
		}
		compact, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := Parse(compact, testAudience, testNow, testSkew); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
