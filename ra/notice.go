package ra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/ra/registry"
)

// A holder is told when their certificate is revoked, whoever revoked it
// (they, an officer, the RA withdrawing a renewal, or the CA alone), and
// again when the reason is raised to keyCompromise: ETSI EN 319 411-1
// (§6.2.4) has the subject informed of a change of its certificate's
// status, and a holder who did not ask learns that somebody did. The notice
// goes to the registry's contact, as the one-time code did. Only
// certificates the holder received are told of: not an intent that
// recovery revoked because it may have been signed but was never recorded.
//
// Each notice is claimed in the store before it is sent and ended with what
// came of it, audited as certificate.revoke.notice, so that RA nodes side
// by side do not each send it (their clocks must agree within noticeClaim).
// A notice that cannot be sent now (registry, gateway or database down)
// keeps its claim until noticeClaim has passed, and is tried again by the
// next sweep after that, however long that takes; one with nobody to tell
// (the registry no longer has the person, or no phone or e-mail for them)
// is ended as no-contact and audited, never retried. Delivery is at least
// once: a node that stops between sending and recording sends again when
// its claim has gone stale.

// noticeClaim is how long a claimed notice waits before another sweep,
// on any node, may try it again.
const noticeClaim = 5 * time.Minute

// noticeSweep is how far back NoticeRevoked looks, as SweepWithdrawn: a day
// of revocations covers a node stopped for hours, and a notice of a
// revocation older than that is no longer news.
const noticeSweep = 24 * time.Hour

// noticeBatch bounds the notices one sweep sends per issuing CA.
const noticeBatch = 500

// noticeActor is who tells holders of revocations, in the audit log.
const noticeActor = "system:notice"

// NoticeRevoked tells the holders of certificates revoked in the last day
// who have not been told (noticeRevocation), then tries again the notices
// that could not be sent, the longest waiting first. An issuing CA's
// notices stop at the first that cannot be sent: with the gateway or the
// registry down, the next would only wait out the same timeout. That one's
// claim keeps it out of the following sweeps' way until it is stale, and
// puts it last among the retries then, so a notice that fails every time
// holds up neither new ones nor other retries for long. Run it
// periodically.
func (s *Service) NoticeRevoked(ctx context.Context) (told int, err error) {
	now := s.d.Now().UTC()
	var errs []error
	for issuerID := range s.d.Issuers {
		revoked, err := s.d.Store.RevocationsToNotice(ctx, issuerID, now.Add(-noticeSweep), now.Add(-noticeClaim), noticeBatch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n, err := noticeAll(ctx, revoked, s.noticeRevocation)
		told += n
		errs = append(errs, err)
	}
	return told, errors.Join(errs...)
}

// noticeAll sends the notice of each of items in order (notice: claim,
// send, record; false when another node has it), and stops at the first
// that cannot be sent.
func noticeAll[T any](ctx context.Context, items []T, notice func(context.Context, T) (bool, error)) (told int, _ error) {
	for _, c := range items {
		ok, err := notice(ctx, c)
		if err != nil {
			return told, err
		}
		if ok {
			told++
		}
	}
	return told, nil
}

// noticeTimeout bounds what telling the holders adds to a revocation the
// RA makes; the request's own cancellation does not stop it.
const noticeTimeout = 10 * time.Second

// noticeRevoked tells the holders of serials, which the RA has just had the
// CA revoke, at once rather than at the next sweep. A failure is logged:
// the revocations stand, and NoticeRevoked tries again; for quietFor
// after one, the request does not wait on the gateway again (noticeQuiet)
// and leaves its notices to the sweep.
func (s *Service) noticeRevoked(ctx context.Context, serials ...[]byte) {
	if s.noticeQuiet() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), noticeTimeout)
	defer cancel()
	var certs []store.Certificate
	for _, serial := range serials {
		for issuerID := range s.d.Issuers {
			c, err := s.d.Store.Certificate(ctx, issuerID, serial)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				s.d.Log.Warn("telling the holder of a revocation; the sweep tries again", "serial", fmt.Sprintf("%X", serial), "err", err)
				return
			}
			certs = append(certs, c)
		}
	}
	if _, err := noticeAll(ctx, certs, s.noticeRevocation); err != nil {
		s.quietNotices()
		s.d.Log.Warn("telling the holder of a revocation; the sweep tries again", "err", err)
	}
}

// noticeQuiet says whether a notice could not be sent less than
// quietFor ago: notices a request or a loop would wait for are not
// tried until then.
func (s *Service) noticeQuiet() bool { return s.d.Now().UnixNano() < s.quietUntil.Load() }

// quietNotices starts a quietFor of no notices sent while waiting.
func (s *Service) quietNotices() { s.quietUntil.Store(s.d.Now().Add(quietFor).UnixNano()) }

// noticeRevocation claims, sends and records the notice of c's revocation
// for its present reason, and reports whether it did, unless c is not to
// be told of (see above) or another node has the notice. An error leaves
// the claim, for a sweep to take over once stale.
func (s *Service) noticeRevocation(ctx context.Context, c store.Certificate) (bool, error) {
	d := s.d
	if c.Status != store.StatusRevoked || c.EnrollmentID == "" || c.DER == nil {
		return false, nil
	}
	claimedAt := d.Now().UTC().Truncate(time.Microsecond)
	ok, err := d.Store.ClaimRevocationNotice(ctx, c.IssuerID, c.Serial, c.Reason, claimedAt, claimedAt.Add(-noticeClaim))
	if err != nil || !ok {
		return false, err
	}
	serialHex := fmt.Sprintf("%X", c.Serial)
	reason := profile.ReasonName(c.Reason)
	details := map[string]any{"enrollment": c.EnrollmentID, "reason": reason, "revoked_at": c.RevokedAt}
	m := Message{EnrollmentID: c.EnrollmentID, Event: EventRevoked, Serial: serialHex, Reason: reason,
		Notice: fmt.Sprintf("Sanad: your certificate %s was revoked on %s (%s). Relying parties no longer accept it.",
			serialHex, c.RevokedAt.UTC().Format(time.RFC3339), reason)}
	outcome, err := s.tell(ctx, m, details)
	if err != nil {
		return false, fmt.Errorf("notice of the revocation of %s: %w", serialHex, err)
	}
	err = s.recordNotice(ctx, func(ctx context.Context, tx *store.Tx, at time.Time) error {
		return tx.EndRevocationNotice(ctx, c.IssuerID, c.Serial, c.Reason, claimedAt, outcome, at)
	}, "certificate.revoke.notice", ca.SerialObject(c.IssuerID, c.Serial), details)
	if err != nil {
		return false, fmt.Errorf("notice of the revocation of %s: %w", serialHex, err)
	}
	d.Log.Info("holder told of a revocation", "serial", serialHex, "reason", reason, "outcome", outcome)
	return true, nil
}

// tell sends m to the registry's contact of the person m's enrollment was
// for (holderContact), and says what came of it: sent, with the channel and
// the masked address in details, or no-contact, with why. An error is one
// to try again after.
func (s *Service) tell(ctx context.Context, m Message, details map[string]any) (outcome string, _ error) {
	contact, nobody, err := s.holderContact(ctx, m.EnrollmentID)
	if err != nil {
		return "", err
	}
	if nobody == "" {
		if m.To, m.Channel, err = contactOf(contact); err != nil {
			nobody = "the registry holds no phone or e-mail for the holder"
		}
	}
	if nobody != "" {
		details["outcome"], details["why"] = store.NoticeNoContact, nobody
		return store.NoticeNoContact, nil
	}
	if err := s.d.Notifier.Send(ctx, m); err != nil {
		return "", fmt.Errorf("send by %s: %w", m.Channel, err)
	}
	details["outcome"], details["channel"], details["to"] = store.NoticeSent, m.Channel, maskContact(m.To)
	return store.NoticeSent, nil
}

// recordNotice ends a claimed notice (end) and audits it as action on
// object, in one transaction. A notice sent is recorded even if the caller
// has given up: else it would be sent again.
func (s *Service) recordNotice(ctx context.Context, end func(ctx context.Context, tx *store.Tx, at time.Time) error, action, object string, details map[string]any) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), noticeTimeout)
	defer cancel()
	return s.group.InTx(ctx, func(tx *store.Tx) error {
		if err := end(ctx, tx, s.d.Now().UTC()); err != nil {
			return err
		}
		return s.d.Audit.Append(tx, audit.Event{Actor: noticeActor, Action: action, Object: object, Details: details})
	})
}

// holderContact is the registry's record of the person an enrollment's
// certificate was issued to: the applicant, or the business's
// representative who proved it. When there is nobody to tell, nobody says
// why; an error is one to try again after (the registry or the store
// could not answer).
func (s *Service) holderContact(ctx context.Context, enrollmentID string) (_ registry.Person, nobody string, _ error) {
	e, err := s.d.Store.Enrollment(ctx, enrollmentID)
	if err != nil {
		return registry.Person{}, "", err
	}
	var pr proofing
	if err := json.Unmarshal(e.Proofing, &pr); err != nil {
		return registry.Person{}, "the enrollment's proofing record cannot be read", nil
	}
	person, err := provedPerson(pr, func() (store.Subject, error) { return s.d.Store.Subject(ctx, e.SubjectID) })
	if err != nil {
		return registry.Person{}, "", err
	}
	if person == "" {
		return registry.Person{}, "the enrollment names no person", nil
	}
	_, country, pid, ok := parseSemanticsID(person)
	if !ok {
		return registry.Person{}, fmt.Sprintf("the enrollment names no person the registry knows (%s)", maskID(person)), nil
	}
	rec, _, err := s.d.Registry.Person(ctx, country, pid)
	if errors.Is(err, registry.ErrNotFound) {
		return registry.Person{}, "the registry no longer has the holder", nil
	}
	return rec, "", err
}

// enrollmentLink is where an applicant reads enrollment id: the URL under
// Deps.PublicURL, or the request's path when there is none.
func (s *Service) enrollmentLink(id string) string {
	if s.d.PublicURL == "" {
		return "GET /api/v1/enrollments/" + id
	}
	return s.d.PublicURL + "/api/v1/enrollments/" + id
}

// outcomeTimeout bounds an outcome notice (noticeOutcome); quietFor is
// how long no notice a request or a loop would wait for is sent after one
// could not be (noticeQuiet).
const (
	outcomeTimeout = 3 * time.Second
	quietFor       = time.Minute
)

// The events a notice tells of (Message.Event).
const (
	EventRevoked = "revoked"
	// How an enrollment that waited for officers ended.
	EventIssued   = "issued"
	EventRejected = "rejected"
	EventFailed   = "failed"
	EventExpired  = "expired"
	// A certificate that expires within Policy.ExpiryNotice.
	EventExpiring = "expiring"
)

// NoticeExpiring reminds the holders of certificates that expire within
// Policy.ExpiryNotice, once each, at the registry's contact, so that they
// renew in time: a certificate lapsing unnoticed stops its holder signing
// or logging in. A certificate already renewed is not reminded of; its
// reminder is ended as renewed. One whose renewal waits for officers is
// looked at again every noticeClaim until the renewal ends.
// Reminders are claimed, sent and recorded as revocation notices are (see
// above; audited as certificate.expiry.notice), the soonest expiry first,
// an issuing CA's stopping at the first that cannot be sent. Run it
// periodically.
func (s *Service) NoticeExpiring(ctx context.Context) (told int, err error) {
	d := s.d
	if d.Policy.ExpiryNotice <= 0 {
		return 0, nil
	}
	now := d.Now().UTC()
	var errs []error
	for issuerID := range d.Issuers {
		certs, err := d.Store.ExpiringToNotice(ctx, issuerID, now, now.Add(d.Policy.ExpiryNotice), now.Add(-noticeClaim), noticeBatch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n, err := noticeAll(ctx, certs, s.remindExpiry)
		told += n
		errs = append(errs, err)
	}
	return told, errors.Join(errs...)
}

// remindExpiry claims, sends and records the reminder of c's expiry, and
// reports whether it did, unless another node has it.
func (s *Service) remindExpiry(ctx context.Context, c store.Certificate) (bool, error) {
	d := s.d
	claimedAt := d.Now().UTC().Truncate(time.Microsecond)
	ok, err := d.Store.ClaimExpiryNotice(ctx, c.IssuerID, c.Serial, claimedAt, claimedAt.Add(-noticeClaim))
	if err != nil || !ok {
		return false, err
	}
	serialHex := fmt.Sprintf("%X", c.Serial)
	details := map[string]any{"enrollment": c.EnrollmentID, "not_after": c.NotAfter}
	outcome := store.NoticeRenewed
	renewal, err := d.Store.EnrollmentByIdempotencyKey(ctx, renewalKey(renewsName(c.IssuerID, c.Serial)))
	switch {
	case err == nil && renewal.State == store.StateIssued:
		details["outcome"], details["renewal"] = outcome, renewal.ID
	case err == nil && !endedUncertified(renewal.State):
		// A renewal still under way: its claim goes stale, and the
		// reminder is looked at again then, until the renewal is issued
		// (no reminder) or ends without a certificate (a reminder).
		return false, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return false, fmt.Errorf("reminder of the expiry of %s: %w", serialHex, err)
	default:
		notice := fmt.Sprintf("Sanad: your certificate %s expires on %s UTC. Enroll again before then.", serialHex, c.NotAfter.UTC().Format("2006-01-02"))
		if d.Policy.RenewalIdentityAge > 0 {
			notice = fmt.Sprintf("Sanad: your certificate %s expires on %s UTC. Renew it before then with a request signed by its key (POST /api/v1/certificates/%s/renew), or enroll again.",
				serialHex, c.NotAfter.UTC().Format("2006-01-02"), serialHex)
		}
		m := Message{EnrollmentID: c.EnrollmentID, Event: EventExpiring, Serial: serialHex, Notice: notice}
		if outcome, err = s.tell(ctx, m, details); err != nil {
			return false, fmt.Errorf("reminder of the expiry of %s: %w", serialHex, err)
		}
	}
	err = s.recordNotice(ctx, func(ctx context.Context, tx *store.Tx, at time.Time) error {
		return tx.EndExpiryNotice(ctx, c.IssuerID, c.Serial, claimedAt, outcome, at)
	}, "certificate.expiry.notice", ca.SerialObject(c.IssuerID, c.Serial), details)
	if err != nil {
		return false, fmt.Errorf("reminder of the expiry of %s: %w", serialHex, err)
	}
	d.Log.Info("holder reminded of an expiry", "serial", serialHex, "not_after", c.NotAfter, "outcome", outcome)
	return true, nil
}

// An applicant whose enrollment waited for officers is told how it ended,
// at the registry's contact: issued (with the certificate's serial),
// rejected (with the officers' reason), failed or expired. Officers may
// decide days after the applicant proved their code; without it, the
// applicant would have to keep asking. An enrollment issued at once (auto)
// is answered in the request, and is not told.
//
// The notice is recorded (outcomeEnded) in the transaction that moves the
// enrollment to its end, so none is lost with the gateway down or the node
// stopped; it is tried at once after (noticeOutcome), and then by
// NoticeOutcomes until it is sent. It is claimed, sent and recorded as a
// revocation notice is (audited as enrollment.notice).

// outcomeEnded records, in tx, the notice that tells the applicant of e,
// just moved to its end, how it ended, if it waited for officers (the
// profile's approval policy asks for any), and reports whether it did, for
// the caller to try it at once (noticeOutcome) once tx commits; serial is
// the certificate's when it was issued.
func (s *Service) outcomeEnded(ctx context.Context, tx *store.Tx, e store.Enrollment, serial []byte) (bool, error) {
	if s.d.Policy.Approvals(e.Profile) == 0 {
		return false, nil
	}
	return true, tx.AddOutcomeNotice(ctx, store.OutcomeNotice{EnrollmentID: e.ID, Event: e.State, Serial: serial, CreatedAt: e.UpdatedAt})
}

// noticeOutcome tries at once the outcome notice outcomeEnded recorded
// for e. It runs in the officer's request and in the RA's minute loop, so
// it is short (outcomeTimeout), and for quietFor after a notice that could
// not be sent none is tried: NoticeOutcomes sends it later.
func (s *Service) noticeOutcome(ctx context.Context, e store.Enrollment, serial []byte) {
	d := s.d
	if s.noticeQuiet() {
		d.Log.Info("not telling the applicant now how their enrollment ended: a notice could not be sent just before; the sweep tells them", "enrollment", e.ID, "state", e.State)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer cancel()
	if _, err := s.tellOutcome(ctx, store.OutcomeNotice{EnrollmentID: e.ID, Event: e.State, Serial: serial}); err != nil {
		s.quietNotices()
		d.Log.Warn("telling the applicant how their enrollment ended; the sweep tries again", "enrollment", e.ID, "state", e.State, "err", err)
	}
}

// NoticeOutcomes sends the outcome notices not sent yet: first those never
// tried, the oldest first, then those whose claim went stale, the oldest
// claim first; it stops at the first that cannot be sent. Run it
// periodically.
func (s *Service) NoticeOutcomes(ctx context.Context) (told int, err error) {
	now := s.d.Now().UTC()
	due, err := s.d.Store.OutcomeNoticesToSend(ctx, now.Add(-noticeClaim), noticeBatch)
	if err != nil {
		return 0, err
	}
	return noticeAll(ctx, due, s.tellOutcome)
}

// tellOutcome claims, sends and records the outcome notice n, and reports
// whether it did, unless another node has it. An error leaves the claim,
// for a sweep to take over once stale.
func (s *Service) tellOutcome(ctx context.Context, n store.OutcomeNotice) (bool, error) {
	d := s.d
	claimedAt := d.Now().UTC().Truncate(time.Microsecond)
	ok, err := d.Store.ClaimOutcomeNotice(ctx, n.EnrollmentID, claimedAt, claimedAt.Add(-noticeClaim))
	if err != nil || !ok {
		return false, err
	}
	e, err := d.Store.Enrollment(ctx, n.EnrollmentID)
	if err != nil {
		return false, fmt.Errorf("outcome notice of enrollment %s: %w", n.EnrollmentID, err)
	}
	m := Message{EnrollmentID: e.ID, Event: n.Event}
	switch n.Event {
	case store.StateIssued:
		m.Serial = fmt.Sprintf("%X", n.Serial)
		m.Notice = fmt.Sprintf("Sanad: your certificate request %s was approved. Certificate %s is issued: %s", e.ID, m.Serial, s.enrollmentLink(e.ID))
	case store.StateRejected:
		m.Notice = fmt.Sprintf("Sanad: your certificate request %s was rejected: %s", e.ID, strings.TrimPrefix(e.StateReason, rejectedByOfficer))
	case store.StateFailed:
		m.Notice = fmt.Sprintf("Sanad: your certificate request %s was approved but no certificate could be issued: %s says why.", e.ID, s.enrollmentLink(e.ID))
	default: // store.StateExpired: the table allows no other
		m.Notice = fmt.Sprintf("Sanad: your certificate request %s lapsed before the officers decided. You may enroll again.", e.ID)
	}
	details := map[string]any{"event": m.Event}
	outcome, err := s.tell(ctx, m, details)
	if err != nil {
		return false, fmt.Errorf("outcome notice of enrollment %s: %w", e.ID, err)
	}
	err = s.recordNotice(ctx, func(ctx context.Context, tx *store.Tx, at time.Time) error {
		return tx.EndOutcomeNotice(ctx, e.ID, claimedAt, outcome, at)
	}, "enrollment.notice", "enrollment/"+e.ID, details)
	if err != nil {
		return false, fmt.Errorf("outcome notice of enrollment %s: %w", e.ID, err)
	}
	d.Log.Info("applicant told how their enrollment ended", "enrollment", e.ID, "event", n.Event, "outcome", outcome)
	return true, nil
}
