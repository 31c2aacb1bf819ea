package store

// SetCertificateDERQuery is the statement SetCertificateDER runs, in db's
// dialect: TestIntentLookupIsKeyed explains it.
func (db *DB) SetCertificateDERQuery() string { return db.d.q(setCertificateDERSQL) }
