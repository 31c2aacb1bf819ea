package hsm

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
)

func TestECDSADER(t *testing.T) {
	type ecdsaSig struct{ R, S *big.Int }
	cases := []struct {
		name string
		raw  []byte
	}{
		{"p256 high bits", append(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0x80}, 32)...)},
		{"p256 low bits", append(bytes.Repeat([]byte{0x7f}, 32), bytes.Repeat([]byte{0x01}, 32)...)},
		{"p256 leading zeros", append(append(make([]byte, 31), 5), append([]byte{0, 0, 0x80}, bytes.Repeat([]byte{1}, 29)...)...)},
		{"p384 high bits", bytes.Repeat([]byte{0xc0}, 96)},
		{"p521 long form length", bytes.Repeat([]byte{0x81}, 132)},
	}
	for i := range 200 {
		raw := make([]byte, 64+32*(i%2))
		rand.Read(raw)
		cases = append(cases, struct {
			name string
			raw  []byte
		}{"random", raw})
	}
	for _, tc := range cases {
		der, err := ecdsaDER(tc.raw)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		n := len(tc.raw) / 2
		want, err := asn1.Marshal(ecdsaSig{new(big.Int).SetBytes(tc.raw[:n]), new(big.Int).SetBytes(tc.raw[n:])})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(der, want) {
			t.Fatalf("%s: ecdsaDER(%x)\n = %x\nwant %x", tc.name, tc.raw, der, want)
		}
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, make([]byte, 64)} {
		if _, err := ecdsaDER(bad); err == nil {
			t.Errorf("ecdsaDER(%x) accepted", bad)
		}
	}
}

func TestSignInputRejects(t *testing.T) {
	ec := &Key{label: "ec"}
	rsa2048 := &Key{label: "rsa", bits: 2048}
	sha256 := make([]byte, 32)
	cases := []struct {
		name   string
		key    *Key
		digest []byte
		opts   crypto.SignerOpts
		errHas string
	}{
		{"nil opts", ec, sha256, nil, "no hash"},
		{"unhashed", ec, sha256, crypto.Hash(0), "unhashed"},
		{"SHA-1", rsa2048, make([]byte, 20), crypto.SHA1, "not supported"},
		{"short digest", ec, sha256[:31], crypto.SHA256, "digest is 31 bytes"},
		{"digest of another hash", rsa2048, sha256, crypto.SHA384, "digest is 32 bytes"},
		{"PSS on ECDSA", ec, sha256, &rsa.PSSOptions{Hash: crypto.SHA256}, "PSS options for an ECDSA key"},
		{"PSS negative salt", rsa2048, sha256, &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: -7}, "invalid PSS salt"},
		{"PSS salt too long", rsa2048, sha256, &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: 256 - 32 - 1}, "too long"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.key.signInput(tc.digest, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v, want one saying %q", err, tc.errHas)
			}
		})
	}
	// The longest salt RFC 8017 allows for the key is accepted.
	if _, _, err := rsa2048.signInput(sha256, &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: 256 - 32 - 2}); err != nil {
		t.Fatalf("maximal PSS salt refused: %v", err)
	}
}

func TestDigestInfoPrefixes(t *testing.T) {
	// RFC 8017 §9.2 note 1: DigestInfo = SEQUENCE { SEQUENCE { OID, NULL }, OCTET STRING digest }.
	oids := map[crypto.Hash]asn1.ObjectIdentifier{
		crypto.SHA224: {2, 16, 840, 1, 101, 3, 4, 2, 4},
		crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
		crypto.SHA384: {2, 16, 840, 1, 101, 3, 4, 2, 2},
		crypto.SHA512: {2, 16, 840, 1, 101, 3, 4, 2, 3},
	}
	type algID struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.RawValue
	}
	type digestInfo struct {
		Alg    algID
		Digest []byte
	}
	for h, oid := range oids {
		t.Run(h.String(), func(t *testing.T) {
			hp, ok := hashParamsOf(h)
			if !ok {
				t.Fatal("hash not supported")
			}
			want, err := asn1.Marshal(digestInfo{algID{oid, asn1.NullRawValue}, make([]byte, h.Size())})
			if err != nil {
				t.Fatal(err)
			}
			if got := append([]byte(hp.digestInfo), make([]byte, h.Size())...); !bytes.Equal(got, want) {
				t.Fatalf("prefix %x, want %x", hp.digestInfo, want[:len(want)-h.Size()])
			}
		})
	}
}
