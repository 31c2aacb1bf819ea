package store

// KeyedWrites returns the statements TestKeyedWrites explains, in db's
// dialect: each writes rows it names by key.
func (db *DB) KeyedWrites() map[string]string {
	return map[string]string{
		"SetCertificateDER":     db.d.q(setCertificateDERSQL),
		"SetCertificateDERs":    db.d.setCertificateDERsSQL(2),
		"UpdateEnrollment":      db.d.q(updateEnrollmentSQL),
		"RevokeCertificate":     db.d.q(revokeCertificateSQL),
		"RevokeIntent":          db.d.q(revokeIntentSQL),
		"RaiseRevocationReason": db.d.q(raiseRevocationReasonSQL),
		"ClaimRevocationNotice": db.d.q(claimRevocationNoticeSQL),
		"EndRevocationNotice":   db.d.q(endNoticeSQL("revocation_notices", true)),
		"ClaimExpiryNotice":     db.d.q(claimExpiryNoticeSQL),
		"EndExpiryNotice":       db.d.q(endNoticeSQL("expiry_notices", false)),
		"ClaimOutcomeNotice":    db.d.q(claimOutcomeNoticeSQL),
		"EndOutcomeNotice":      db.d.q(endOutcomeNoticeSQL),
		"EndRegistryEvent":      db.d.q(endRegistryEventSQL),
	}
}
