package transcript

import (
	"bytes"
	"crypto/elliptic"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzVerify: Verify reads files that may have been tampered with by anyone;
// it must never panic, and whatever it accepts must be self-consistent.
// Seeds are the golden transcripts, a fresh one, an unsigned one and
// testdata/fuzz/FuzzVerify.
func FuzzVerify(f *testing.F) {
	for _, name := range goldenNames() {
		b, err := os.ReadFile(filepath.Join("testdata", "ceremony-"+name+".jsonl"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	fresh, err := os.ReadFile(writeCeremony(f, newECDSA(f, elliptic.P256())))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fresh)
	f.Add(fresh[:bytes.LastIndexByte(fresh[:len(fresh)-1], '\n')+1])
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := Verify(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrBroken) && !errors.Is(err, ErrUnsigned) && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify error wraps no sentinel: %v", err)
			}
			if res.SignerPublicKey != nil {
				t.Fatal("signer returned with an error")
			}
			if errors.Is(err, ErrUnsigned) {
				_ = res.Summary(io.Discard)
				_ = res.KeyFingerprints()
			}
			return
		}
		n := len(res.Lines)
		if n < 2 || res.Lines[n-1].Step != "signature" {
			t.Fatalf("accepted a transcript of %d lines without a final signature", n)
		}
		for i, ln := range res.Lines {
			if ln.Seq != i+1 || (i < n-1) == (ln.Step == "signature") {
				t.Fatalf("accepted line %d with seq %d step %q", i+1, ln.Seq, ln.Step)
			}
		}
		if err := res.SignedBy(res.SignerPublicKey); err != nil {
			t.Fatalf("SignedBy(own signer): %v", err)
		}
		for _, fp := range res.KeyFingerprints() {
			if !validHex256(fp) {
				t.Fatalf("KeyFingerprints returned %q", fp)
			}
		}
		if err := res.Summary(io.Discard); err != nil {
			t.Fatal(err)
		}
	})
}
