package transcript

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func BenchmarkVerify(b *testing.B) {
	for _, name := range goldenNames() {
		b.Run(name, func(b *testing.B) {
			file, err := os.ReadFile(filepath.Join("testdata", "ceremony-"+name+".jsonl"))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(file)))
			for b.Loop() {
				if _, err := Verify(bytes.NewReader(file)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
