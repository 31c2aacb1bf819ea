package store

// SetCertificateDERQuery and UpdateEnrollmentQuery are the statements
// SetCertificateDER and UpdateEnrollment run, in db's dialect:
// TestKeyedWrites explains them.
func (db *DB) SetCertificateDERQuery() string { return db.d.q(setCertificateDERSQL) }

func (db *DB) UpdateEnrollmentQuery() string { return db.d.q(updateEnrollmentSQL) }
