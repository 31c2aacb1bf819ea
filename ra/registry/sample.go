package registry

import (
	_ "embed"
	"time"
)

//go:embed sample/registry.json
var sampleJSON []byte

// SampleName is the name the sample registry loads under.
const SampleName = "sample/registry.json"

// SampleJSON returns a copy of the sample registry shipped in the
// repository (ra/registry/sample/registry.json): persons and businesses of
// Kazakhstan and Pakistan with valid identifiers, for `sanad dev` and tests.
// Its data are invented; the README lists a few records to try.
func SampleJSON() []byte {
	return append([]byte(nil), sampleJSON...)
}

// Sample loads the sample registry.
func Sample(now func() time.Time) (*File, error) {
	return FromBytes(SampleName, sampleJSON, now)
}
