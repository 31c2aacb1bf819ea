package store

// The statements TestKeyedWrites explains, in db's dialect: each writes one
// row it names by key.
func (db *DB) KeyedWrites() map[string]string {
	return map[string]string{
		"SetCertificateDER":     db.d.q(setCertificateDERSQL),
		"UpdateEnrollment":      db.d.q(updateEnrollmentSQL),
		"RevokeCertificate":     db.d.q(revokeCertificateSQL),
		"ClaimRevocationNotice": db.d.q(claimRevocationNoticeSQL),
		"EndRevocationNotice":   db.d.q(endNoticeSQL("revocation_notices", true)),
		"EndExpiryNotice":       db.d.q(endNoticeSQL("expiry_notices", false)),
		"ClaimOutcomeNotice":    db.d.q(claimOutcomeNoticeSQL),
		"EndOutcomeNotice":      db.d.q(endOutcomeNoticeSQL),
	}
}
