package ra

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/ra/jwsauth"
	"github.com/sanadpki/sanad/ra/registry"
)

// AudienceRenew binds a holder's renewal to its endpoint.
const AudienceRenew = "/api/v1/certificates/renew"

// Renew carries out a holder's request, signed with the key of a valid
// certificate this CA issued them, for a certificate of the same profile
// and subject on a new key (POST /api/v1/certificates/{serial}/renew).
//
// The signature stands in for the one-time code: it proves the requester
// holds the old certificate's key, as the code proved they held the
// registry's contact. The identity behind it must have been proven by an
// enrollment less than Policy.RenewalIdentityAge ago (renewals pass that
// time on; they never extend it), and the registry is asked again, as
// before any issuance an officer approved: a person who died, a business
// that closed or a representative who lost signing authority renews
// nothing. The new key must be a new key; the profile's approval rule
// applies as to an enrollment (auto: issued at once).
//
// A certificate is renewed once. The same signed request sent again
// answers with the enrollment it made (the second result true), so a
// holder whose answer was lost can ask again; any other request to renew
// it is refused.
func (s *Service) Renew(ctx context.Context, serialHex, compact string) (store.Enrollment, bool, error) {
	d := s.d
	serial, err := parseSerial(serialHex)
	if err != nil {
		return store.Enrollment{}, false, err
	}
	p, err := s.holderRequest(ctx, serialHex, compact, AudienceRenew, jwsauth.ActionRenew, nil)
	if err != nil {
		return store.Enrollment{}, false, err
	}
	now := d.Now().UTC()
	issuerID := s.issuerOf(p.Certificate)
	renews := issuerID + "/" + p.Action.Serial

	// The renewal's idempotency key is the old certificate's: one renewal
	// each, unless it ended without a certificate (rejected, lapsed,
	// failed), which releases the key to the next.
	key := renewalKey(renews)
	requestHash := sha256.Sum256([]byte(compact))
	var release string
	if e, err := d.Store.EnrollmentByIdempotencyKey(ctx, key); err == nil {
		if bytes.Equal(e.RequestHash, requestHash[:]) {
			return e, true, nil
		}
		if !endedUncertified(e.State) {
			return store.Enrollment{}, false, alreadyRenewed(p.Action.Serial, e)
		}
		release = e.ID
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Enrollment{}, false, err
	}

	old, err := d.Store.Certificate(ctx, issuerID, serial)
	if err != nil {
		return store.Enrollment{}, false, err
	}
	prof, ok := d.Profiles[old.Profile]
	if _, offered := d.Policy.Approval[old.Profile]; !ok || !offered || old.EnrollmentID == "" {
		return store.Enrollment{}, false, refuse("not-renewable", "certificate %s was not issued to an enrollment the RA offers; enroll", p.Action.Serial)
	}
	if d.Policy.RenewalIdentityAge == 0 {
		return store.Enrollment{}, false, refuse("not-renewable", "this RA renews no certificate; enroll")
	}
	prev, err := d.Store.Enrollment(ctx, old.EnrollmentID)
	if err != nil {
		return store.Enrollment{}, false, err
	}
	var prevPr proofing
	if err := json.Unmarshal(prev.Proofing, &prevPr); err != nil {
		return store.Enrollment{}, false, fmt.Errorf("enrollment %s proofing: %w", prev.ID, err)
	}
	identityAt := prevPr.identityAt()
	if identityAt.IsZero() || now.Sub(identityAt) > d.Policy.RenewalIdentityAge {
		e := refuse("identity-too-old", "the identity behind certificate %s was proven on %s; renewal needs one proven within %d days: enroll",
			p.Action.Serial, identityAt.Format(time.DateOnly), int(d.Policy.RenewalIdentityAge.Hours()/24))
		e.Extra = map[string]any{"identity_proven_at": identityAt}
		return store.Enrollment{}, false, e
	}

	der, err := p.Action.RequestDER()
	if err != nil {
		return store.Enrollment{}, false, refuse("invalid-request", "%v", err)
	}
	checked, err := s.checkCSR(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), prof)
	if err != nil {
		return store.Enrollment{}, false, err
	}
	// The same key in other bytes (a trailing element the parser skips, an
	// RSA modulus with another exponent) is the same key.
	newKey, err := ca.KeyID(checked.PublicKey)
	if err != nil {
		return store.Enrollment{}, false, err
	}
	oldKey, err := ca.KeyID(p.Certificate.PublicKey)
	if err != nil {
		return store.Enrollment{}, false, err
	}
	if bytes.Equal(newKey, oldKey) {
		e := refuse("invalid-csr", "a renewal certifies a new key; the CSR's key is the old certificate's")
		e.Extra = map[string]any{"code": "same-key"}
		return store.Enrollment{}, false, e
	}
	if err := s.checkKeyNotBlocked(ctx, checked); err != nil {
		return store.Enrollment{}, false, err
	}
	subj, err := d.Store.Subject(ctx, old.SubjectID)
	if err != nil {
		return store.Enrollment{}, false, err
	}
	var v profile.Verified
	if err := json.Unmarshal(subj.Attributes, &v); err != nil {
		return store.Enrollment{}, false, fmt.Errorf("subject %s attributes: %w", subj.ID, err)
	}
	subject, err := prof.Subject(v)
	if err != nil {
		r := refuse("not-renewable", "the certificate's subject no longer fits profile %s; enroll", prof.Name)
		r.Err = err
		return store.Enrollment{}, false, r
	}
	if err := requestMatches(checked, subject); err != nil {
		return store.Enrollment{}, false, err
	}
	// A renewal counts against the enrollments of the subject and of the
	// business's representative: a stolen key cannot be turned into
	// certificates faster than enrollments could.
	keys := []string{limitKey(subj.NationalID)}
	if subj.Kind == "business" {
		keys = append(keys, limitKey(prevPr.Person))
	}
	if err := s.limitKeys(ctx, keys...); err != nil {
		return store.Enrollment{}, false, err
	}

	id, err := newID(now)
	if err != nil {
		return store.Enrollment{}, false, err
	}
	// The renewal certifies the subject as its registry re-check below
	// confirms it now: those attributes are the renewal's, whatever a
	// later enrollment of the subject finds.
	pr := proofing{Channel: "renewal", Person: prevPr.Person, ProvedAt: now, Renews: renews, IdentityAt: identityAt, Verified: subj.Attributes}
	prJSON, err := json.Marshal(pr)
	if err != nil {
		return store.Enrollment{}, false, err
	}
	e := store.Enrollment{ID: id, SubjectID: subj.ID, Profile: prof.Name, CSR: checked.Raw, State: store.StateApproved, Proofing: prJSON,
		IdempotencyKey: key, RequestHash: requestHash[:], CreatedAt: now, UpdatedAt: now}
	if d.Policy.Approvals(prof.Name) > 0 {
		e.State, e.ExpiresAt = store.StatePendingApproval, now.Add(d.Policy.EnrollmentTTL)
	}
	evidence, contact, err := s.recheckPerson(ctx, e, subj, v)
	var changed *registryChangedError
	if errors.As(err, &changed) {
		return store.Enrollment{}, false, refuse(changed.problem, "%s", changed.detail)
	}
	if errors.Is(err, registry.ErrUnavailable) {
		r := refuse("registry-unavailable", "")
		r.Err = err
		return store.Enrollment{}, false, r
	}
	if err != nil {
		return store.Enrollment{}, false, err
	}

	// The holder hears of the renewal at the registry's contact, as they
	// heard their code: if the key was stolen, they learn it, and revoking
	// for keyCompromise withdraws the thief's renewal (withdrawRenewals). A
	// renewal they cannot be told of is not made.
	to, channel, err := contactOf(contact)
	if err != nil {
		return store.Enrollment{}, false, err
	}
	pr.To = maskContact(to)
	if e.Proofing, err = json.Marshal(pr); err != nil {
		return store.Enrollment{}, false, err
	}
	notice := fmt.Sprintf("Sanad: renewal of your certificate %s was requested (enrollment %s). If not by you, revoke it for keyCompromise.", p.Action.Serial, id)
	if err := d.Notifier.Send(ctx, Message{EnrollmentID: id, To: to, Channel: channel, Notice: notice}); err != nil {
		r := refuse("notification-failed", "the renewal's notice could not be sent to the registry's contact")
		r.Err = fmt.Errorf("renewal %s: send the notice by %s: %w", id, channel, err)
		return store.Enrollment{}, false, r
	}

	actor := "holder:" + p.Action.Serial
	err = s.group.InTx(ctx, func(tx *store.Tx) error {
		if release != "" {
			if err := tx.ReleaseIdempotencyKey(ctx, release); err != nil {
				return err
			}
		}
		// The enrollment first: the same request sent twice at once meets
		// its own idempotency key, and is answered below as the first.
		if err := tx.InsertEnrollment(ctx, e); err != nil {
			return err
		}
		if err := useNonce(ctx, tx, p, now); err != nil {
			return err
		}
		recorded, err := putEvidence(ctx, tx, evidence)
		if err != nil {
			return err
		}
		return d.Audit.Append(tx, audit.Event{Actor: actor, Action: "enrollment.renew", Object: "enrollment/" + id,
			Details: map[string]any{"profile": prof.Name, "renews": renews, "subject": subj.NationalID, "person": pr.Person,
				"identity_proven_at": identityAt, "state": e.State, "signed_request": compact, "notice_channel": channel, "notice_to": pr.To,
				"evidence": recorded}})
	})
	if errors.Is(err, store.ErrConflict) {
		// Another request renewed it first; if it was this one, answer as
		// it did.
		if existing, err := d.Store.EnrollmentByIdempotencyKey(ctx, key); err == nil {
			if bytes.Equal(existing.RequestHash, requestHash[:]) {
				return existing, true, nil
			}
			return store.Enrollment{}, false, alreadyRenewed(p.Action.Serial, existing)
		}
	}
	if err != nil {
		return store.Enrollment{}, false, err
	}
	d.Log.Info("renewal requested", "enrollment", id, "renews", renews, "profile", prof.Name, "state", e.State)
	if e.State == store.StateApproved {
		out, _, err := s.issueDetached(ctx, e, actor, nil)
		return out, false, err
	}
	return e, false, nil
}

// renewalKey is the idempotency key of the renewal of renews (an issuing
// CA's id and a serial, "issuing/0A1B…"). A space never appears in a
// client's Idempotency-Key (checkIdempotencyKey), so no enrollment can take
// it first.
func renewalKey(renews string) string { return "renewal " + renews }

// renewsName names certificate serial of issuerID as a renewal names the
// certificate it renews (proofing.Renews, renewalKey): "issuing/0A1B…",
// the serial in hex as openssl prints it.
func renewsName(issuerID string, serial []byte) string { return fmt.Sprintf("%s/%X", issuerID, serial) }

// endedUncertified says whether an enrollment in state ended without a
// certificate.
func endedUncertified(state string) bool {
	return state == store.StateRejected || state == store.StateExpired || state == store.StateFailed
}

func alreadyRenewed(serialHex string, by store.Enrollment) error {
	e := refuse("already-renewed", "certificate %s is being renewed by enrollment %s (%s)", serialHex, by.ID, by.State)
	if by.State == store.StateIssued {
		e = refuse("already-renewed", "certificate %s was renewed by enrollment %s", serialHex, by.ID)
	}
	// The renewal's id, for a client that asked again to fetch its
	// outcome (sanad holder renew does).
	e.Extra = map[string]any{"enrollment": by.ID}
	return e
}

// errRenewsRevoked fails a renewal whose old certificate was revoked, for a
// reason that withdraws it, before the new one was issued.
var errRenewsRevoked = errors.New("the certificate this renewal replaces was revoked for keyCompromise or privilegeWithdrawn")

// renewal is the certificate a renewal enrollment replaces; serial is nil
// for an enrollment that renews nothing.
type renewal struct {
	name     string // proofing.Renews
	issuerID string
	serial   []byte
}

// renewsOf reads proofing.Renews.
func renewsOf(e store.Enrollment) renewal {
	var pr proofing
	if json.Unmarshal(e.Proofing, &pr) != nil || pr.Renews == "" {
		return renewal{}
	}
	issuerID, serialHex, _ := strings.Cut(pr.Renews, "/")
	serial, err := hex.DecodeString(serialHex)
	if err != nil || len(serial) == 0 {
		return renewal{}
	}
	return renewal{name: pr.Renews, issuerID: issuerID, serial: serial}
}

// check refuses (errRenewsRevoked) a renewal, not issued yet or being
// issued, whose old certificate, read with get, is no longer good: its
// only proof of who asked was that certificate. Revoked as superseded or
// given up (cessationOfOperation), as its holder does once renewed, is not
// held against it, whoever revoked it.
func (r renewal) check(ctx context.Context, get func(context.Context, string, []byte) (store.Certificate, error)) error {
	c, err := get(ctx, r.issuerID, r.serial)
	if err != nil {
		return err
	}
	if c.Status != store.StatusGood && c.Reason != reasonSuperseded && c.Reason != reasonCessationOfOperation {
		return fmt.Errorf("%w (%s, at %s)", errRenewsRevoked, r.name, c.RevokedAt.Format(time.RFC3339))
	}
	return nil
}

// withdrawnMeanwhile says, read in tx with the renewal's enrollment
// locked, whether the certificate r renews was revoked in a way that
// withdraws its renewals (check): the certificate this renewal got must
// follow it (withdraw, once tx commits). A revocation that committed before
// is seen here, and one after finds the enrollment issued
// (withdrawRenewals); none slips between. Not a renewal: false.
func (r renewal) withdrawnMeanwhile(ctx context.Context, tx *store.Tx) (bool, error) {
	if r.serial == nil {
		return false, nil
	}
	err := r.check(ctx, tx.Certificate)
	if errors.Is(err, errRenewsRevoked) {
		return true, nil
	}
	return false, err
}

// withdraws says whether a revocation for reason withdraws the renewals
// the certificate's key asked for: keyCompromise (the thief may have asked)
// and privilegeWithdrawn (the subject is no longer entitled; also the
// reason withdrawRenewals gives, so a chain follows). A holder's
// superseded or cessationOfOperation does not.
func withdraws(reason int) bool {
	return reason == reasonKeyCompromise || reason == reasonPrivilegeWithdrawn
}

// RFC 5280 §5.3.1 reasons. A renewal revoked because the key that asked
// for it was compromised is revoked for privilegeWithdrawn: its own key is
// not known to be compromised.
const (
	reasonKeyCompromise      = 1
	reasonSuperseded         = 4
	reasonPrivilegeWithdrawn = 9
)

// withdrawRenewals follows the renewals made with the key of a
// certificate revoked for a reason that withdraws them (withdraws): for
// keyCompromise, the thief's may be among them. A renewal waiting for
// officers is rejected; every certificate a renewal got is revoked for
// privilegeWithdrawn, with an audit event naming the enrollment; and so on
// down the chain. The enrollment is read locked, so a renewal being issued
// is either seen with its certificate or, finishing after, sees the
// revocation in its own last transaction and withdraws itself (issue).
//
// It is idempotent, and the RA runs it again every minute for the
// revocations of the last day (SweepWithdrawn): that finishes what a stop
// or a failure left half done, and follows revocations made at the CA
// without the RA. It returns the serials it revoked.
func (s *Service) withdrawRenewals(ctx context.Context, serial []byte, actor string) (revoked [][]byte, _ error) {
	d := s.d
	var errs []error
	next := [][]byte{serial}
	for n := 0; len(next) > 0; n++ {
		if n == maxRenewalChain {
			return revoked, errors.Join(append(errs, fmt.Errorf("the renewals of %X: a chain longer than %d", serial, maxRenewalChain))...)
		}
		serial, next = next[0], next[1:]
		for issuerID := range d.Issuers {
			renews := renewsName(issuerID, serial)
			e, err := d.Store.EnrollmentByIdempotencyKey(ctx, renewalKey(renews))
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			var (
				rejected store.Enrollment
				told     bool // its applicant is to be told (outcomeEnded)
			)
			err = s.group.InTx(ctx, func(tx *store.Tx) error {
				told = false
				cur, err := tx.EnrollmentForUpdate(ctx, e.ID)
				if err != nil || cur.State != store.StatePendingApproval {
					return err
				}
				if rejected, err = move(ctx, tx, cur, store.StateRejected, "the certificate it renews was revoked for keyCompromise or privilegeWithdrawn", d.Now().UTC()); err != nil {
					return err
				}
				if told, err = s.outcomeEnded(ctx, tx, rejected, nil); err != nil {
					return err
				}
				return d.Audit.Append(tx, withdrawEvent(actor, e.ID, renews, nil))
			})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if told {
				s.noticeOutcome(ctx, rejected, nil)
			}
			certs, err := d.Store.CertificatesOfEnrollment(ctx, e.ID)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, c := range certs {
				next = append(next, c.Serial) // followed whatever happens to it here
				if c.Status == store.StatusGood {
					if err := s.withdrawCertificate(ctx, e.ID, renews, c.Serial, actor); err != nil {
						errs = append(errs, err)
					} else {
						revoked = append(revoked, c.Serial)
					}
				}
			}
		}
	}
	return revoked, errors.Join(errs...)
}

// revokeSameKey revokes for keyCompromise every other certificate that
// certifies the key of c, revoked for keyCompromise: a key reported
// compromised is compromised in each of them, whoever's they are (one key
// may be certified for signing and for authentication, for a person and
// for the business they represent), intents the HSM may be signing
// included. A certificate of the key already revoked for another reason
// has its reason raised (ca.CA.Revoke); an expired one is left.
// Idempotent; SweepWithdrawn runs it again for the revocations of the last
// day, SweepBlockedKeys for every key ever blocked. It returns the
// certificates it revoked or raised.
func (s *Service) revokeSameKey(ctx context.Context, c store.Certificate, actor string) ([]store.Certificate, error) {
	key, err := ca.StoredKeyID(c)
	if err != nil {
		return nil, err
	}
	// What cannot be read is reported, and the rest revoked.
	same, err := s.sameKey(ctx, c, key)
	revoked, rerr := s.revokeKey(ctx, key, c.IssuerID, c.Serial, same, actor)
	return revoked, errors.Join(err, rerr)
}

// revokeKey revokes for keyCompromise (or raises to it) those of same that
// certify key and that its compromise has still to revoke, but the
// certificate (issuerID, serial) it was reported in. Each revocation's
// transaction records why (certificate.revoke.same_key, naming that
// certificate); a certificate is revoked only if the key read from it is
// key, whatever its row records.
func (s *Service) revokeKey(ctx context.Context, key []byte, issuerID string, serial []byte, same []store.Certificate, actor string) (revoked []store.Certificate, _ error) {
	now := s.d.Now()
	compromised := ca.SerialObject(issuerID, serial)
	var errs []error
	for _, sib := range same {
		if sib.IssuerID == issuerID && bytes.Equal(sib.Serial, serial) || !now.Before(sib.NotAfter) ||
			sib.Status == store.StatusRevoked && sib.Reason == reasonKeyCompromise {
			continue
		}
		if other, err := ca.StoredKeyID(sib); err != nil || !bytes.Equal(other, key) {
			errs = append(errs, fmt.Errorf("certificate %X records the key %x, and certifies another (%v): not revoked", sib.Serial, key, err))
			continue
		}
		object := ca.SerialObject(sib.IssuerID, sib.Serial)
		err := s.d.Revoker.Revoke(ctx, sib.Serial, reasonKeyCompromise, actor, audit.Event{Actor: actor, Action: "certificate.revoke.same_key", Object: object,
			Details: map[string]any{"compromised": compromised, "spki_sha256": hex.EncodeToString(key),
				"why": "its key was reported compromised in another certificate"}})
		switch {
		case errors.As(err, new(*store.AlreadyRevokedError)):
		case err != nil:
			errs = append(errs, fmt.Errorf("revoke %X, of the same key as %X: %w", sib.Serial, serial, err))
		default:
			s.d.Log.Warn("certificate revoked: its key was reported compromised in another certificate", "serial", fmt.Sprintf("%X", sib.Serial), "compromised", fmt.Sprintf("%X", serial))
			revoked = append(revoked, sib)
		}
	}
	return revoked, errors.Join(errs...)
}

// sameKey returns the certificates of subjects that certify key (ca.KeyID),
// c's, that its compromise has still to revoke: those that record it
// (store.DB.CertificatesOfKey), and those of c's subject whose key is read
// to be it, since a certificate stored before certificates recorded their
// key has none until ca.FillKeyIDs has filled it.
func (s *Service) sameKey(ctx context.Context, c store.Certificate, key []byte) ([]store.Certificate, error) {
	same, err := s.d.Store.CertificatesOfKey(ctx, key, s.d.Now(), maxEventCertificates)
	if err != nil || c.SubjectID == "" {
		return same, err
	}
	siblings, err := s.d.Store.CertificatesOfSubject(ctx, c.SubjectID, maxEventCertificates)
	if err != nil {
		return same, err // what was found is still revoked
	}
	var errs []error
	for _, sib := range siblings {
		if sib.SPKISHA256 != nil {
			continue // recorded: CertificatesOfKey found it if it is key's
		}
		other, err := ca.StoredKeyID(sib)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if bytes.Equal(other, key) {
			same = append(same, sib)
		}
	}
	return same, errors.Join(errs...)
}

// blockedKeysPage is how many blocked keys SweepBlockedKeys reads at a
// time.
const blockedKeysPage = 500

// SweepBlockedKeys revokes (revokeKey) the certificates of every key ever
// revoked for keyCompromise (blocked_keys) that its compromise has still
// to revoke: those stored before certificates recorded their key, which
// ca.FillKeyIDs has filled since, the revocation being older than
// SweepWithdrawn's day. Run it after FillKeyIDs, and periodically. It
// returns how many it revoked.
func (s *Service) SweepBlockedKeys(ctx context.Context) (int, error) {
	var (
		after []byte
		n     int
		errs  []error
	)
	for {
		keys, err := s.d.Store.ListBlockedKeys(ctx, after, blockedKeysPage)
		if err != nil || len(keys) == 0 {
			return n, errors.Join(append(errs, err)...)
		}
		for _, b := range keys {
			same, err := s.d.Store.CertificatesOfKey(ctx, b.SPKISHA256, s.d.Now(), maxEventCertificates)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			revoked, err := s.revokeKey(ctx, b.SPKISHA256, b.IssuerID, b.Serial, same, withdrawActor)
			errs = append(errs, err)
			n += len(revoked)
			s.noticeRevoked(ctx, serialsOf(revoked)...)
		}
		after = keys[len(keys)-1].SPKISHA256
	}
}

// serialsOf are the serials of cs.
func serialsOf(cs []store.Certificate) [][]byte {
	out := make([][]byte, len(cs))
	for i, c := range cs {
		out[i] = c.Serial
	}
	return out
}

// withdrawCertificate revokes the certificate serial of renewal enrollment
// for privilegeWithdrawn (the CA audits the revocation) and records in the
// RA's audit log which renewal it was and why.
func (s *Service) withdrawCertificate(ctx context.Context, enrollment, renews string, serial []byte, actor string) error {
	err := s.d.Revoker.Revoke(ctx, serial, reasonPrivilegeWithdrawn, actor, withdrawEvent(actor, enrollment, renews, serial))
	if errors.As(err, new(*store.AlreadyRevokedError)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("withdraw the renewal %s: %w", enrollment, err)
	}
	s.d.Log.Warn("renewal revoked: the certificate it renews was revoked for keyCompromise or privilegeWithdrawn", "enrollment", enrollment, "serial", fmt.Sprintf("%X", serial))
	return nil
}

// withdrawEvent is the audit event of a renewal withdrawn: rejected while
// waiting (serial nil), or its certificate serial revoked.
func withdrawEvent(actor, enrollment, renews string, serial []byte) audit.Event {
	details := map[string]any{"renews": renews, "why": "the certificate it renews was revoked for keyCompromise or privilegeWithdrawn"}
	if serial != nil {
		details["revoked"] = fmt.Sprintf("%X", serial)
	}
	return audit.Event{Actor: actor, Action: "enrollment.withdraw", Object: "enrollment/" + enrollment, Details: details}
}

// withdraw withdraws a renewal whose old certificate was revoked while the
// CA signed its new one (issue): that certificate, and whatever was
// renewed from it.
func (s *Service) withdraw(ctx context.Context, enrollment string, r renewal, serial []byte) error {
	err := s.withdrawCertificate(ctx, enrollment, r.name, serial, withdrawActor)
	_, rerr := s.withdrawRenewals(ctx, serial, withdrawActor)
	return errors.Join(err, rerr)
}

// withdrawActor is who withdraws renewals on the RA's own initiative.
const withdrawActor = "system:withdraw"

// withdrawSweep is how far back SweepWithdrawn looks: a day of
// revocations covers a node stopped for hours.
const withdrawSweep = 24 * time.Hour

// SweepWithdrawn withdraws again (withdrawRenewals) the renewals of every
// certificate revoked for keyCompromise or privilegeWithdrawn in the last
// day, revokes again the certificates of a key compromised
// (revokeSameKey), and reports the first errors. Run it periodically.
func (s *Service) SweepWithdrawn(ctx context.Context) error {
	since := s.d.Now().Add(-withdrawSweep)
	var errs []error
	for issuerID := range s.d.Issuers {
		revoked, err := s.d.Store.RevokedFor(ctx, issuerID, since, reasonKeyCompromise, reasonPrivilegeWithdrawn)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, c := range revoked {
			_, err := s.withdrawRenewals(ctx, c.Serial, withdrawActor)
			errs = append(errs, err)
			if c.Reason == reasonKeyCompromise {
				_, err := s.revokeSameKey(ctx, c, withdrawActor)
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// maxRenewalChain bounds withdrawRenewals' walk; a chain is one renewal
// per certificate, each within the identity's age.
const maxRenewalChain = 1000
