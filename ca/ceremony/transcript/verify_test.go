package transcript

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// splitLines splits a transcript into lines without their "\n"; the file
// must end in "\n".
func splitLines(t testing.TB, b []byte) [][]byte {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\n")) {
		t.Fatal("transcript does not end in a newline")
	}
	return bytes.Split(b[:len(b)-1], []byte("\n"))
}

func joinLines(lines [][]byte) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// setField rewrites one top-level member of a line, keeping member order.
func setField(t testing.TB, line []byte, field, rawValue string) []byte {
	t.Helper()
	var w wireLine
	if err := json.Unmarshal(line, &w); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{
		"seq": strconv.Itoa(w.Seq), "time": strconv.Quote(w.Time), "step": strconv.Quote(w.Step),
		"data": string(w.Data), "prev": strconv.Quote(w.Prev),
	}
	m[field] = rawValue
	return []byte(`{"seq":` + m["seq"] + `,"time":` + m["time"] + `,"step":` + m["step"] +
		`,"data":` + m["data"] + `,"prev":` + m["prev"] + `}`)
}

// rechain recomputes prev from line i on, as a forger who edits a line and
// fixes up the chain after it would.
func rechain(t testing.TB, lines [][]byte, from int) [][]byte {
	t.Helper()
	for i := max(from, 1); i < len(lines); i++ {
		lines[i] = setField(t, lines[i], "prev", strconv.Quote(sha256Hex(lines[i-1])))
	}
	return lines
}

// sigData returns the signature line's data.
func sigData(t testing.TB, line []byte) signatureData {
	t.Helper()
	var w wireLine
	if err := json.Unmarshal(line, &w); err != nil {
		t.Fatal(err)
	}
	var sd signatureData
	if err := json.Unmarshal(w.Data, &sd); err != nil {
		t.Fatal(err)
	}
	return sd
}

func setSigData(t testing.TB, line []byte, sd signatureData) []byte {
	t.Helper()
	data, err := json.Marshal(sd)
	if err != nil {
		t.Fatal(err)
	}
	return setField(t, line, "data", string(data))
}

func TestVerifyDetectsTampering(t *testing.T) {
	signer := newECDSA(t, elliptic.P256())
	orig, err := os.ReadFile(writeCeremony(t, signer))
	if err != nil {
		t.Fatal(err)
	}
	// The transcript has 5 steps (lines 1-5) and the signature (line 6).
	lines := func(f func([][]byte) [][]byte) func(*testing.T, []byte) []byte {
		return func(t *testing.T, b []byte) []byte { return joinLines(f(splitLines(t, b))) }
	}
	tests := []struct {
		name    string
		tamper  func(*testing.T, []byte) []byte
		wantErr error
		wantMsg string
	}{
		{
			name: "edit a value inside a line",
			tamper: lines(func(l [][]byte) [][]byte {
				l[1] = bytes.Replace(l[1], []byte(`"2 of 3"`), []byte(`"1 of 3"`), 1)
				return l
			}),
			wantErr: ErrBroken, wantMsg: "line 3: prev does not match line 2",
		},
		{
			name: "edit the last step",
			tamper: lines(func(l [][]byte) [][]byte {
				l[4] = bytes.Replace(l[4], []byte(`"crl_number":1`), []byte(`"crl_number":2`), 1)
				return l
			}),
			wantErr: ErrBroken, wantMsg: "line 6: prev does not match line 5",
		},
		{
			name: "edit a line and recompute the chain after it",
			tamper: lines(func(l [][]byte) [][]byte {
				l[2] = bytes.Replace(l[2], []byte(`root-2026`), []byte(`root-2099`), 1)
				return rechain(t, l, 3)
			}),
			wantErr: ErrBadSignature, wantMsg: "line 6: ECDSA signature does not verify",
		},
		{
			name:    "drop a middle line",
			tamper:  lines(func(l [][]byte) [][]byte { return slices.Delete(l, 2, 3) }),
			wantErr: ErrBroken, wantMsg: "line 3: seq is 4, want 3",
		},
		{
			name: "drop a middle line and renumber",
			tamper: lines(func(l [][]byte) [][]byte {
				l = slices.Delete(l, 2, 3)
				for i := 2; i < len(l); i++ {
					l[i] = setField(t, l[i], "seq", strconv.Itoa(i+1))
				}
				return l
			}),
			wantErr: ErrBroken, wantMsg: "line 3: prev does not match line 2",
		},
		{
			name:    "drop the first line",
			tamper:  lines(func(l [][]byte) [][]byte { return l[1:] }),
			wantErr: ErrBroken, wantMsg: "line 1: seq is 2, want 1",
		},
		{
			name:    "drop the signature line",
			tamper:  lines(func(l [][]byte) [][]byte { return l[:5] }),
			wantErr: ErrUnsigned, wantMsg: "line 5 is the last line",
		},
		{
			name:    "drop the signature and the last step",
			tamper:  lines(func(l [][]byte) [][]byte { return l[:4] }),
			wantErr: ErrUnsigned, wantMsg: "line 4 is the last line",
		},
		{
			name: "swap two lines",
			tamper: lines(func(l [][]byte) [][]byte {
				l[1], l[2] = l[2], l[1]
				return l
			}),
			wantErr: ErrBroken, wantMsg: "line 2: seq is 3, want 2",
		},
		{
			name: "swap two lines and renumber",
			tamper: lines(func(l [][]byte) [][]byte {
				l[1], l[2] = setField(t, l[2], "seq", "2"), setField(t, l[1], "seq", "3")
				return l
			}),
			wantErr: ErrBroken, wantMsg: "line 2: prev does not match line 1",
		},
		{
			name: "change the signature bytes",
			tamper: lines(func(l [][]byte) [][]byte {
				sd := sigData(t, l[5])
				sig, _ := base64.StdEncoding.DecodeString(sd.Signature)
				sig[len(sig)-1] ^= 0x01
				sd.Signature = base64.StdEncoding.EncodeToString(sig)
				l[5] = setSigData(t, l[5], sd)
				return l
			}),
			wantErr: ErrBadSignature, wantMsg: "line 6: ECDSA signature does not verify",
		},
		{
			name: "signature is not base64",
			tamper: lines(func(l [][]byte) [][]byte {
				sd := sigData(t, l[5])
				sd.Signature = "%%%"
				l[5] = setSigData(t, l[5], sd)
				return l
			}),
			wantErr: ErrBadSignature, wantMsg: "line 6: signature is not base64",
		},
		{
			name:    "change the signature time",
			tamper:  lines(func(l [][]byte) [][]byte { l[5] = setField(t, l[5], "time", `"2031-01-01T00:00:00Z"`); return l }),
			wantErr: ErrBadSignature, wantMsg: "line 6: ECDSA signature does not verify",
		},
		{
			name: "swap in another public key",
			tamper: lines(func(l [][]byte) [][]byte {
				sd := sigData(t, l[5])
				spki := mustSPKI(t, newECDSA(t, elliptic.P256()).Public())
				sd.PublicKey = base64.StdEncoding.EncodeToString(spki)
				sd.PublicKeySHA256 = sha256Hex(spki)
				l[5] = setSigData(t, l[5], sd)
				return l
			}),
			wantErr: ErrBadSignature, wantMsg: "line 6: ECDSA signature does not verify",
		},
		{
			name: "public key hash does not match the key",
			tamper: lines(func(l [][]byte) [][]byte {
				sd := sigData(t, l[5])
				sd.PublicKeySHA256 = strings.Repeat("0", 64)
				l[5] = setSigData(t, l[5], sd)
				return l
			}),
			wantErr: ErrBadSignature, wantMsg: "line 6: public_key_sha256 is not the SHA-256 of public_key",
		},
		{
			name: "algorithm does not match the key",
			tamper: lines(func(l [][]byte) [][]byte {
				sd := sigData(t, l[5])
				sd.Algorithm = AlgECDSAP384SHA384
				l[5] = setSigData(t, l[5], sd)
				return l
			}),
			wantErr: ErrBadSignature, wantMsg: "line 6: algorithm ECDSA-SHA384 does not match the key",
		},
		{
			name: "unknown algorithm",
			tamper: lines(func(l [][]byte) [][]byte {
				sd := sigData(t, l[5])
				sd.Algorithm = "ECDSA-SHA1"
				l[5] = setSigData(t, l[5], sd)
				return l
			}),
			wantErr: ErrBadSignature, wantMsg: `line 6: unknown algorithm "ECDSA-SHA1"`,
		},
		{
			name: "unknown field in signature data",
			tamper: lines(func(l [][]byte) [][]byte {
				l[5] = bytes.Replace(l[5], []byte(`"data":{`), []byte(`"data":{"comment":"x",`), 1)
				return l
			}),
			wantErr: ErrBadSignature, wantMsg: `unknown field "comment"`,
		},
		{
			name: "signature line reformatted",
			tamper: lines(func(l [][]byte) [][]byte {
				l[5] = bytes.Replace(l[5], []byte(`"data":{`), []byte(`"data": {`), 1)
				return l
			}),
			wantErr: ErrBadSignature, wantMsg: "line 6: signature line is not in its exact form",
		},
		{
			name: "append a line after the signature",
			tamper: lines(func(l [][]byte) [][]byte {
				extra := setField(t, l[4], "seq", "7")
				extra = setField(t, extra, "prev", strconv.Quote(sha256Hex(l[5])))
				return append(l, extra)
			}),
			wantErr: ErrBroken, wantMsg: "line 7: follows the signature line",
		},
		{
			name:    "a second signature line",
			tamper:  lines(func(l [][]byte) [][]byte { return append(l, l[5]) }),
			wantErr: ErrBroken, wantMsg: "line 7: follows the signature line",
		},
		{
			name:    "trailing garbage",
			tamper:  func(_ *testing.T, b []byte) []byte { return append(b, "garbage"...) },
			wantErr: ErrBroken, wantMsg: "line 7: not terminated by a newline",
		},
		{
			name:    "trailing blank line",
			tamper:  func(_ *testing.T, b []byte) []byte { return append(b, '\n') },
			wantErr: ErrBroken, wantMsg: "line 7: follows the signature line",
		},
		{
			name:    "no final newline",
			tamper:  func(_ *testing.T, b []byte) []byte { return b[:len(b)-1] },
			wantErr: ErrBroken, wantMsg: "line 6: not terminated by a newline",
		},
		{
			name:    "CRLF line endings",
			tamper:  func(_ *testing.T, b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) },
			wantErr: ErrBroken, wantMsg: "line 1: not one JSON object alone on its line",
		},
		{
			name:    "blank line inserted",
			tamper:  lines(func(l [][]byte) [][]byte { return slices.Insert(l, 2, []byte{}) }),
			wantErr: ErrBroken, wantMsg: "line 3: empty line",
		},
		{
			name: "a line with an unknown field",
			tamper: lines(func(l [][]byte) [][]byte {
				l[1] = append(l[1][:len(l[1])-1], `,"note":"added later"}`...)
				return l
			}),
			wantErr: ErrBroken, wantMsg: `line 2: unknown field "note"`,
		},
		{
			name: "a field in another case",
			tamper: lines(func(l [][]byte) [][]byte {
				l[1] = bytes.Replace(l[1], []byte(`"step":`), []byte(`"Step":`), 1)
				return l
			}),
			wantErr: ErrBroken, wantMsg: `line 2: unknown field "Step"`,
		},
		{
			name: "fields out of order",
			tamper: lines(func(l [][]byte) [][]byte {
				var w wireLine
				_ = json.Unmarshal(l[0], &w)
				l[0] = []byte(`{"time":"` + w.Time + `","seq":1,"step":"` + w.Step + `","data":` + string(w.Data) + `,"prev":"` + w.Prev + `"}`)
				return l
			}),
			wantErr: ErrBroken, wantMsg: `line 1: field "time" where "seq" is required`,
		},
		{
			name: "missing field",
			tamper: lines(func(l [][]byte) [][]byte {
				l[0] = bytes.Replace(l[0], []byte(`,"prev":"`+zeroHash+`"`), nil, 1)
				return l
			}),
			wantErr: ErrBroken, wantMsg: `line 1: missing field "prev"`,
		},
		{
			name: "repeated member inside data",
			tamper: lines(func(l [][]byte) [][]byte {
				l[1] = bytes.Replace(l[1], []byte(`"threshold":"2 of 3"`), []byte(`"threshold":"2 of 3","threshold":"1 of 3"`), 1)
				return l
			}),
			wantErr: ErrBroken, wantMsg: `line 2: member "threshold" repeated in one object`,
		},
		{
			name:    "seq as a string",
			tamper:  lines(func(l [][]byte) [][]byte { l[0] = setField(t, l[0], "seq", `"1"`); return l }),
			wantErr: ErrBroken, wantMsg: "line 1: seq \"1\" is not a positive integer",
		},
		{
			name:    "seq with an exponent",
			tamper:  lines(func(l [][]byte) [][]byte { l[0] = setField(t, l[0], "seq", `1e0`); return l }),
			wantErr: ErrBroken, wantMsg: "line 1: seq 1e0 is not a positive integer",
		},
		{
			name:    "time not in UTC",
			tamper:  lines(func(l [][]byte) [][]byte { l[0] = setField(t, l[0], "time", `"2026-03-01T09:00:00+03:00"`); return l }),
			wantErr: ErrBroken, wantMsg: "line 1: time \"2026-03-01T09:00:00+03:00\" is not RFC 3339 UTC",
		},
		{
			name:    "data not an object",
			tamper:  lines(func(l [][]byte) [][]byte { l[0] = setField(t, l[0], "data", `null`); return l }),
			wantErr: ErrBroken, wantMsg: "line 1: data is not a JSON object",
		},
		{
			name:    "step not allowed",
			tamper:  lines(func(l [][]byte) [][]byte { l[0] = setField(t, l[0], "step", `"Opened!"`); return l }),
			wantErr: ErrBroken, wantMsg: `line 1: step "Opened!" is not`,
		},
		{
			name: "prev in upper case",
			tamper: lines(func(l [][]byte) [][]byte {
				l[1] = setField(t, l[1], "prev", strconv.Quote(strings.ToUpper(sha256Hex(l[0]))))
				return l
			}),
			wantErr: ErrBroken, wantMsg: "line 2: prev is not 64 lowercase hex digits",
		},
		{
			name: "malformed public_key_sha256 in data",
			tamper: lines(func(l [][]byte) [][]byte {
				l[2] = setField(t, l[2], "data", `{"label":"root-2026","public_key_sha256":"not hex"}`)
				return l
			}),
			wantErr: ErrBroken, wantMsg: "line 3: data member public_key_sha256 is not 64 lowercase hex digits",
		},
		{
			name: "invalid UTF-8",
			tamper: lines(func(l [][]byte) [][]byte {
				l[1] = bytes.Replace(l[1], []byte("sanad-root"), []byte("sanad-\xffroot"), 1)
				return l
			}),
			wantErr: ErrBroken, wantMsg: "line 2: not valid UTF-8",
		},
		{
			name: "first prev not zeros",
			tamper: lines(func(l [][]byte) [][]byte {
				l[0] = setField(t, l[0], "prev", strconv.Quote(strings.Repeat("1", 64)))
				return l
			}),
			wantErr: ErrBroken, wantMsg: "line 1: prev is not 64 zeros",
		},
		{
			name: "signature line alone",
			tamper: lines(func(l [][]byte) [][]byte {
				s := setField(t, l[5], "seq", "1")
				return [][]byte{setField(t, s, "prev", strconv.Quote(zeroHash))}
			}),
			wantErr: ErrBroken, wantMsg: "line 1: signature line with no steps before it",
		},
		{
			name:    "line too long",
			tamper:  lines(func(l [][]byte) [][]byte { return slices.Insert(l, 1, bytes.Repeat([]byte("x"), maxLineBytes+1)) }),
			wantErr: ErrBroken, wantMsg: "line 2: longer than 1048576 bytes",
		},
		{
			name:    "empty file",
			tamper:  func(*testing.T, []byte) []byte { return nil },
			wantErr: ErrUnsigned, wantMsg: "empty transcript",
		},
		{
			name:    "only a newline",
			tamper:  func(*testing.T, []byte) []byte { return []byte("\n") },
			wantErr: ErrBroken, wantMsg: "line 1: empty line",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tampered := tt.tamper(t, bytes.Clone(orig))
			res, err := Verify(bytes.NewReader(tampered))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify: %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Verify: %q, want it to contain %q", err, tt.wantMsg)
			}
			if !errors.Is(tt.wantErr, ErrUnsigned) && len(res.Lines) != 0 {
				t.Errorf("Verify returned %d lines with %v", len(res.Lines), err)
			}
			if res.SignerPublicKey != nil {
				t.Error("Verify returned a signer with an error")
			}
		})
	}
}

func mustSPKI(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return spki
}

// TestSignedBy: a signature by another key over the same content is a valid
// signature, so Verify passes; only the caller's trust check catches it.
func TestSignedBy(t *testing.T) {
	root := newECDSA(t, elliptic.P256())
	other := newECDSA(t, elliptic.P256())
	orig, err := os.ReadFile(writeCeremony(t, root))
	if err != nil {
		t.Fatal(err)
	}
	resign := func(t *testing.T, by crypto.Signer) []byte {
		l := splitLines(t, orig)
		var w wireLine
		if err := json.Unmarshal(l[5], &w); err != nil {
			t.Fatal(err)
		}
		res, err := Verify(bytes.NewReader(orig))
		if err != nil {
			t.Fatal(err)
		}
		l[5], err = signatureLine(by, rand.Reader, 6, res.SignedAt, w.Prev)
		if err != nil {
			t.Fatal(err)
		}
		return joinLines(l)
	}
	tests := []struct {
		name      string
		file      func(*testing.T) []byte
		checkKey  crypto.PublicKey
		wantErr   error
		wantInFPs bool
	}{
		{"original, checked against the root", func(*testing.T) []byte { return orig }, root.Public(), nil, true},
		{"original, checked against another key", func(*testing.T) []byte { return orig }, other.Public(), ErrWrongSigner, true},
		{"re-signed by another key, checked against the root", func(t *testing.T) []byte { return resign(t, other) }, root.Public(), ErrWrongSigner, false},
		{"re-signed by another key, checked against that key", func(t *testing.T) []byte { return resign(t, other) }, other.Public(), nil, false},
		{"re-signed by an RSA key, checked against the root", func(t *testing.T) []byte { return resign(t, newRSA(t, 2048)) }, root.Public(), ErrWrongSigner, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Verify(bytes.NewReader(tt.file(t)))
			if err != nil {
				t.Fatalf("Verify: %v (the signature itself is valid)", err)
			}
			if err := res.SignedBy(tt.checkKey); !errors.Is(err, tt.wantErr) {
				t.Errorf("SignedBy: %v, want %v", err, tt.wantErr)
			}
			if got := slices.Contains(res.KeyFingerprints(), res.SignerKeySHA256); got != tt.wantInFPs {
				t.Errorf("signer among KeyFingerprints: %v, want %v", got, tt.wantInFPs)
			}
		})
	}
}
