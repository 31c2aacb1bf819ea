package policies

import "embed"

// FS holds every policy file, embedded into the binary so a deployment runs
// exactly the policies it was built with: profiles/*.yaml (certificate
// profiles) and ceremonies/*.yaml (example ceremony scripts for a complete
// hierarchy, used by the tests and by `sanad dev`) and ra.yaml (the RA's
// approval rule per end-entity profile).
//
//go:embed profiles/*.yaml ceremonies/*.yaml ra.yaml
var FS embed.FS
