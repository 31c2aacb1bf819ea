package csr

import (
	"crypto/ecdh"
	"embed"
	"encoding/binary"
	"math/big"
	"slices"
	"sync"
)

//go:generate go run gen_smallkeys.go

// SmallKeyBound: an EC key whose private scalar d, or n − d, is in
// 1 … SmallKeyBound is refused, as zlint's e_ecdsa_small_private_key
// (default Bits 16) refuses it. Such a key is one anyone can compute from the
// public key, as happened to eight eMudhra intermediate CAs (Mozilla bug
// 2083449).
const SmallKeyBound = 1 << 16

// smallKeyFiles hold, per curve, the low 32 bits of the X coordinate of j·G
// for j = 1 … SmallKeyBound (gen_smallkeys.go). d·G and (n − d)·G share an
// X coordinate, so one lookup answers for both. zlint walks 32 baby-step
// giant-step additions per certificate instead (about a tenth of the CPU of
// an issuance); here a key costs a binary search, and a hit is confirmed by
// computing j·G.
//
//go:embed smallkeys/*.bin
var smallKeyFiles embed.FS

// smallKeyTable is one curve's table sorted by X: each entry is the low 32
// bits of X(j·G) above j.
type smallKeyTable []uint64

// smallKeyTables are read on first use, one curve at a time.
var smallKeyTables = map[string]func() smallKeyTable{
	KeyECDSAP256: sync.OnceValue(func() smallKeyTable { return loadSmallKeys("p256") }),
	KeyECDSAP384: sync.OnceValue(func() smallKeyTable { return loadSmallKeys("p384") }),
	KeyECDSAP521: sync.OnceValue(func() smallKeyTable { return loadSmallKeys("p521") }),
}

func loadSmallKeys(name string) smallKeyTable {
	raw, err := smallKeyFiles.ReadFile("smallkeys/" + name + ".bin")
	if err != nil || len(raw) != 4*SmallKeyBound {
		// The files are compiled in; TestSmallKeyTables checks each.
		panic("csr: small-key table " + name + " is missing or truncated")
	}
	t := make(smallKeyTable, SmallKeyBound)
	for i := range t {
		t[i] = uint64(binary.LittleEndian.Uint32(raw[4*i:]))<<32 | uint64(i+1)
	}
	slices.Sort(t)
	return t
}

// smallScalar reports whether the uncompressed point (0x04 ‖ X ‖ Y, already
// checked to be on the curve) is ±j·G for some j in 1 … SmallKeyBound.
func smallScalar(keyType string, curve ecdh.Curve, point []byte) bool {
	table, ok := smallKeyTables[keyType]
	if !ok {
		return false
	}
	size := (len(point) - 1) / 2
	x := point[1 : 1+size]
	low := uint64(binary.BigEndian.Uint32(x[size-4:]))
	t := table()
	i, _ := slices.BinarySearch(t, low<<32)
	for ; i < len(t) && t[i]>>32 == low; i++ {
		if sameX(curve, t[i]&0xffffffff, x) {
			return true
		}
	}
	return false
}

// sameX reports whether X(j·G) is x: the confirmation of a table hit (one
// random key in 65 536 has the same low 32 bits as some entry).
func sameX(curve ecdh.Curve, j uint64, x []byte) bool {
	// A scalar is as long as a coordinate on the NIST curves.
	scalar := new(big.Int).SetUint64(j).FillBytes(make([]byte, len(x)))
	k, err := curve.NewPrivateKey(scalar)
	if err != nil {
		return false
	}
	pub := k.PublicKey().Bytes()
	return string(pub[1:1+len(x)]) == string(x)
}
