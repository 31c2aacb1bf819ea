package pinshare

// Hooks for the external tests (package pinshare_test), which play a
// malicious custodian: one who edits a share file and recomputes what a
// custodian can recompute.

// ChecksumForTest computes s's checksum over its other fields.
func (s Share) ChecksumForTest() string { return s.checksum() }

// CommitmentForTest computes the commitment to part as share s's.
func (s Share) CommitmentForTest(part []byte) string { return s.commitment(part) }
