//go:build ignore

// gen_smallkeys writes smallkeys/<curve>.bin: for j = 1 … SmallKeyBound, the
// low 32 bits of the X coordinate of j·G, as little-endian uint32s in order
// of j. Run it with `go generate ./ca/csr/`; the output is deterministic and
// TestSmallKeyTables pins its digest.
package main

import (
	"crypto/elliptic"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
)

const bound = 1 << 16 // SmallKeyBound

func main() {
	for name, c := range map[string]elliptic.Curve{"p256": elliptic.P256(), "p384": elliptic.P384(), "p521": elliptic.P521()} {
		p := c.Params()
		out := make([]byte, 0, 4*bound)
		x, y := p.Gx, p.Gy
		for j := 1; j <= bound; j++ {
			out = binary.LittleEndian.AppendUint32(out, uint32(x.Uint64()))
			x, y = c.Add(x, y, p.Gx, p.Gy)
		}
		path := filepath.Join("smallkeys", name+".bin")
		if err := os.WriteFile(path, out, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
