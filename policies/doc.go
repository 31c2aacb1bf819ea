// Package policies holds Sanad's policy data: certificate profiles, RA
// approval rules and ceremony scripts, as YAML files embedded into the binary
// and validated at start-up. Code never hard-codes a profile; it reads one
// from here.
//
// The files arrive with issues 4 (ceremony scripts and CA profiles) and 5
// (end-entity profiles).
package policies
