package ra

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/ra/jwsauth"
	"github.com/sanadpki/sanad/ra/registry"
)

// Audiences bind a signed request to the endpoint it was made for.
const (
	AudienceActions = "/api/v1/officer/actions"
	AudienceQueue   = "/api/v1/officer/queue"
	AudienceShow    = "/api/v1/officer/enrollments"
	AudienceFind    = "/api/v1/officer/subjects"
	AudienceRevoke  = "/api/v1/certificates/revoke"
	// MaxSkew is how far a signed request's time may be from ours.
	MaxSkew = 5 * time.Minute
)

// officer is a verified officer request: who, and what they signed.
type officer struct {
	store.Officer
	req jwsauth.Parsed
}

// Officer roles (store.Officer.Roles) the RA acts for: an RA officer
// decides on enrollments and revokes subscribers' certificates; a CA
// officer revokes, with a second one, the CA certificates a ceremony made
// (Service.revokeCA).
const (
	roleRA = "ra-officer"
	roleCA = "ca-officer"
)

// roleNames words officer roles in a refusal.
var roleNames = map[string]string{roleRA: "RA officer", roleCA: "CA officer"}

// has reports whether the officer holds role.
func (o officer) has(role string) bool { return slices.Contains(o.Roles, role) }

// notOfficer refuses an officer who does not hold role for the action.
func notOfficer(o officer, role string) error {
	return refuse("not-an-officer", "officer %s is not an active %s", o.Name, roleNames[role])
}

// authenticate verifies a signed officer request: the JWS itself
// (jwsauth.Parse), then that its certificate is a registered, active
// officer's holding one of roles, issued by this CA, valid now and not
// revoked.
func (s *Service) authenticate(ctx context.Context, compact, audience string, roles ...string) (officer, error) {
	now := s.d.Now()
	p, err := jwsauth.Parse(compact, audience, now, MaxSkew)
	if err != nil {
		return officer{}, signedRequestErr(err)
	}
	o, err := s.d.Store.Officer(ctx, p.Fingerprint[:])
	if errors.Is(err, store.ErrNotFound) {
		return officer{}, refuse("not-an-officer", "the certificate is not a registered officer's")
	}
	if err != nil {
		return officer{}, err
	}
	out := officer{Officer: o, req: p}
	if !o.Active || !slices.ContainsFunc(roles, out.has) {
		words := make([]string, len(roles))
		for i, r := range roles {
			words[i] = roleNames[r]
		}
		return officer{}, refuse("not-an-officer", "officer %s is not an active %s", o.Name, strings.Join(words, " or "))
	}
	if err := s.checkOurs(ctx, p.Certificate, now); err != nil {
		return officer{}, err
	}
	return out, nil
}

// stillOfficer checks again, as a decision is recorded, what authenticate
// checked of o as the request came: that o is an active officer holding
// role, with a certificate of this CA valid now and not revoked.
func (s *Service) stillOfficer(ctx context.Context, o officer, role string, now time.Time) error {
	cur, err := s.d.Store.Officer(ctx, o.Fingerprint)
	if err != nil {
		return err
	}
	if !cur.Active || !slices.Contains(cur.Roles, role) {
		return notOfficer(o, role)
	}
	return s.checkOurs(ctx, o.req.Certificate, now)
}

// checkOurs refuses a certificate none of this CA's issuing CAs issued, or
// that is not valid now, or is revoked.
func (s *Service) checkOurs(ctx context.Context, c *x509.Certificate, now time.Time) error {
	issuerID := s.issuerOf(c)
	if issuerID == "" {
		return refuse("not-an-officer", "the certificate was not issued by this CA")
	}
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return refuse("certificate-not-valid", "valid from %s to %s", c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
	}
	return s.checkRecorded(ctx, issuerID, c)
}

// checkRecorded refuses a certificate of issuerID that this CA's records
// do not hold as it is, or hold revoked.
func (s *Service) checkRecorded(ctx context.Context, issuerID string, c *x509.Certificate) error {
	row, err := s.d.Store.Certificate(ctx, issuerID, c.SerialNumber.Bytes())
	if errors.Is(err, store.ErrNotFound) || (err == nil && !bytes.Equal(row.DER, c.Raw)) {
		return refuse("not-an-officer", "the certificate is not in this CA's records")
	}
	if err != nil {
		return err
	}
	if row.Status != store.StatusGood {
		return refuse("certificate-revoked", "revoked at %s", row.RevokedAt.Format(time.RFC3339))
	}
	// Good, but its key reported compromised in another certificate: a
	// thief holding the key signs as well as its owner.
	if err := ca.CheckKeyNotBlocked(ctx, s.d.Store, c.PublicKey); errors.Is(err, ca.ErrKeyCompromised) {
		return refuse("certificate-revoked", "its key was reported compromised")
	} else if err != nil {
		return err
	}
	return nil
}

// issuerOf is the id of the issuing CA that signed c, or "" when none did.
func (s *Service) issuerOf(c *x509.Certificate) string {
	for id, issuer := range s.d.Issuers {
		if bytes.Equal(c.RawIssuer, issuer.RawSubject) && c.CheckSignatureFrom(issuer) == nil {
			return id
		}
	}
	return ""
}

func signedRequestErr(err error) error {
	var je *jwsauth.Error
	if errors.As(err, &je) {
		typ := "unauthorized"
		if je.Code == "stale" {
			typ = "stale-request"
		}
		e := refuse(typ, "%s", je.Reason)
		e.Extra, e.Err = map[string]any{"code": je.Code}, err
		return e
	}
	return err
}

// useNonce records the request's nonce in tx; a replay is refused.
// nonceKeep is how long a used nonce is kept. A request is taken within
// MaxSkew of its time, which was within MaxSkew of its first use: past
// twice that, a replay is refused for its time, and an hour more covers a
// clock set back.
const nonceKeep = 2*MaxSkew + time.Hour

// PurgeNonces deletes the nonces no replay could use any more (nonceKeep)
// and returns how many: every signed request leaves one, and the table
// would only grow.
func (s *Service) PurgeNonces(ctx context.Context) (int64, error) {
	return s.d.Store.PurgeNonces(ctx, s.d.Now().Add(-nonceKeep))
}

func useNonce(ctx context.Context, tx *store.Tx, p jwsauth.Parsed, now time.Time) error {
	err := tx.UseNonce(ctx, p.Fingerprint[:], p.Action.Nonce, now)
	if errors.Is(err, store.ErrConflict) {
		return refuse("replayed-request", "this signed request was already used")
	}
	return err
}

// Act carries out a signed officer action (POST /api/v1/officer/actions):
// approve or reject an enrollment, or revoke a certificate.
func (s *Service) Act(ctx context.Context, compact string) (any, error) {
	o, err := s.authenticate(ctx, compact, AudienceActions, roleRA, roleCA)
	if err != nil {
		return nil, err
	}
	switch a := o.req.Action; a.Action {
	case "approve", "reject":
		if !o.has(roleRA) {
			return nil, notOfficer(o, roleRA)
		}
		e, err := s.decide(ctx, o)
		if err != nil {
			return nil, err
		}
		// The officer's view, as show gives it: how many approved and
		// how many are needed, which the applicant's view only words.
		return s.queueItem(ctx, e, officerID(o.req.Certificate))
	case "revoke":
		return s.revokeAsOfficer(ctx, o)
	default:
		return nil, refuse("invalid-request", "action %q is not posted to %s", a.Action, AudienceActions)
	}
}

// decide records an officer's decision. Approvals count distinct people:
// the profile's rule says how many; one officer twice is refused, also
// with a second certificate of theirs (officerID), and no officer decides
// on an enrollment that is their own or that they represent.
func (s *Service) decide(ctx context.Context, o officer) (store.Enrollment, error) {
	d := s.d
	a := o.req.Action
	now := d.Now().UTC()
	who := officerID(o.req.Certificate)
	if err := s.notOwn(ctx, a.Enrollment, who); err != nil {
		return store.Enrollment{}, err
	}
	// Once the enrollment exists, the nonce is spent in a transaction of
	// its own, before the decision can be refused: a refused request is
	// not kept for replay once the enrollment's state would let it
	// through. (A request naming no enrollment stores nothing.)
	if err := s.group.InTx(ctx, func(tx *store.Tx) error { return useNonce(ctx, tx, o.req, now) }); err != nil {
		return store.Enrollment{}, err
	}
	var (
		out     store.Enrollment
		refusal error
		told    bool // an outcome notice recorded
	)
	err := s.group.InTx(ctx, func(tx *store.Tx) error {
		refusal, told = nil, false
		e, err := tx.EnrollmentForUpdate(ctx, a.Enrollment)
		if errors.Is(err, store.ErrNotFound) {
			return refuse("not-found", "")
		}
		if err != nil {
			return err
		}
		if e.State != store.StatePendingApproval {
			return notPending(e)
		}
		if !e.ExpiresAt.IsZero() && now.After(e.ExpiresAt) {
			// Too old to decide on: what the registry said may no longer
			// hold. The lapse is recorded, and the applicant enrolls again.
			if out, err = move(ctx, tx, e, store.StateExpired, "the enrollment lapsed before the officers decided", now); err != nil {
				return err
			}
			if told, err = s.outcomeEnded(ctx, tx, out, nil); err != nil {
				return err
			}
			refusal = refuse("enrollment-expired", "")
			return d.Audit.Append(tx, audit.Event{Actor: "officer:" + o.Name, Action: "enrollment.expire", Object: "enrollment/" + e.ID,
				Details: map[string]any{"expired_at": e.ExpiresAt}})
		}
		approvals, err := tx.Approvals(ctx, e.ID)
		if err != nil {
			return err
		}
		deciders, err := s.deciders(ctx, approvals)
		if err != nil {
			return err
		}
		// One person, or one key: a key certified to two officers (one
		// lent to another, or certified twice) is one pair of eyes.
		key, err := keyID(o.req.Certificate)
		if err != nil {
			return err
		}
		for _, dc := range deciders {
			if dc.id == who || dc.key == key {
				return refuse("already-decided", "officer %s already decided on this enrollment, or with this key", o.Name)
			}
		}
		// The signer as they are now: deactivated, or their certificate
		// revoked, since authenticate (notOwn may have waited on the
		// registry), their decision does not count.
		if err := s.stillOfficer(ctx, o, roleRA, now); err != nil {
			return err
		}
		approvers := approvedBy(approvals, deciders)
		err = tx.InsertApproval(ctx, store.Approval{EnrollmentID: e.ID, OfficerFingerprint: o.Fingerprint, Decision: a.Action, JWS: o.req.Raw, DecidedAt: now})
		if errors.Is(err, store.ErrConflict) {
			return refuse("already-decided", "officer %s already decided on this enrollment", o.Name)
		}
		if err != nil {
			return err
		}
		details := map[string]any{"officer": o.Name, "officer_fingerprint": hex.EncodeToString(o.Fingerprint), "officer_id": who, "nonce": a.Nonce}
		out = e
		if a.Action == "reject" {
			details["reason"] = a.Reason
			if out, err = move(ctx, tx, e, store.StateRejected, rejectedByOfficer+a.Reason, now); err != nil {
				return err
			}
			if told, err = s.outcomeEnded(ctx, tx, out, nil); err != nil {
				return err
			}
			return d.Audit.Append(tx, audit.Event{Actor: "officer:" + o.Name, Action: "enrollment.reject", Object: "enrollment/" + e.ID, Details: details})
		}
		approvers[who] = true
		n := len(approvers)
		details["approvals"], details["needed"] = n, d.Policy.Approvals(e.Profile)
		if n >= d.Policy.Approvals(e.Profile) {
			if out, err = move(ctx, tx, e, store.StateApproved, "", now); err != nil {
				return err
			}
		}
		return d.Audit.Append(tx, audit.Event{Actor: "officer:" + o.Name, Action: "enrollment.approve", Object: "enrollment/" + e.ID, Details: details})
	})
	if err != nil {
		return store.Enrollment{}, err
	}
	if told {
		s.noticeOutcome(ctx, out, nil)
	}
	if refusal != nil {
		return out, refusal
	}
	if out.State == store.StateApproved {
		out, _, err := s.issueDetached(ctx, out, "officer:"+o.Name, nil)
		return out, err
	}
	return out, nil
}

// officerID is who an officer is, whatever certificate they sign with: the
// subject's serialNumber, the ETSI semantics identifier (IDCKZ-…) that the
// officer profile fills from the verified national identifier and that a
// renewed certificate keeps; the certificate's fingerprint if it has none.
func officerID(c *x509.Certificate) string {
	if sn := c.Subject.SerialNumber; sn != "" {
		return sn
	}
	fp := sha256.Sum256(c.Raw)
	return "sha256:" + hex.EncodeToString(fp[:])
}

// decider is who made an earlier decision: their officerID, the name
// they are registered under, and their certificate's key (keyID). A
// decision stands only while its officer does: id is "" and withdrawn
// says why once the officer is no longer an active RA officer or their
// certificate was revoked (a stolen officer key must not leave approvals
// behind that count once it is revoked).
type decider struct {
	id, name, withdrawn, key string
}

func (s *Service) decider(ctx context.Context, fingerprint []byte, role string) (decider, error) {
	o, err := s.d.Store.Officer(ctx, fingerprint)
	if err != nil {
		return decider{}, fmt.Errorf("officer %x: %w", fingerprint, err)
	}
	c, err := x509.ParseCertificate(o.CertificateDER)
	if err != nil {
		return decider{}, fmt.Errorf("officer %s certificate: %w", o.Name, err)
	}
	key, err := keyID(c)
	if err != nil {
		return decider{}, fmt.Errorf("officer %s certificate: %w", o.Name, err)
	}
	dc := decider{name: o.Name, key: key}
	if !o.Active || !slices.Contains(o.Roles, role) {
		dc.withdrawn = "the officer is no longer an active " + roleNames[role]
		return dc, nil
	}
	issuerID := s.issuerOf(c)
	if issuerID == "" {
		dc.withdrawn = "the officer's certificate is not one this CA issued"
		return dc, nil
	}
	err = s.checkRecorded(ctx, issuerID, c)
	p, refused := ProblemOf(err)
	switch {
	case refused && p.Type == "certificate-revoked":
		dc.withdrawn = "the officer's certificate was revoked"
		return dc, nil
	case refused:
		dc.withdrawn = "the officer's certificate is not in this CA's records"
		return dc, nil
	case err != nil:
		return decider{}, err
	}
	dc.id = officerID(c)
	return dc, nil
}

// deciders are who made each of approvals (decider), in order.
func (s *Service) deciders(ctx context.Context, approvals []store.Approval) ([]decider, error) {
	out := make([]decider, len(approvals))
	for i, ap := range approvals {
		var err error
		if out[i], err = s.decider(ctx, ap.OfficerFingerprint, roleRA); err != nil {
			return nil, fmt.Errorf("approval of %s: %w", ap.EnrollmentID, err)
		}
	}
	return out, nil
}

// keyID names a certificate's key as the CA blocks it (ca.KeyID),
// whatever bytes the certificate spells it in.
func keyID(c *x509.Certificate) (string, error) {
	id, err := ca.KeyID(c.PublicKey)
	return string(id), err
}

// approvedBy is the people (officerIDs) whose approvals stand.
func approvedBy(approvals []store.Approval, deciders []decider) map[string]bool {
	people := map[string]bool{}
	for i, ap := range approvals {
		if ap.Decision == "approve" && deciders[i].id != "" {
			people[deciders[i].id] = true
		}
	}
	return people
}

// notOwn refuses an officer deciding on an enrollment whose subject, or
// whose proofed person, is the officer, or for a business the registry
// lists the officer as representing.
func (s *Service) notOwn(ctx context.Context, enrollmentID, who string) error {
	e, err := s.d.Store.Enrollment(ctx, enrollmentID)
	if errors.Is(err, store.ErrNotFound) {
		return refuse("not-found", "")
	}
	if err != nil {
		return err
	}
	subj, err := s.d.Store.Subject(ctx, e.SubjectID)
	if err != nil {
		return err
	}
	var pr proofing
	if err := json.Unmarshal(e.Proofing, &pr); err != nil {
		return fmt.Errorf("enrollment %s proofing: %w", e.ID, err)
	}
	if who == subj.NationalID || who == pr.Person {
		return refuse("own-enrollment", "")
	}
	if subj.Kind != "business" {
		return nil
	}
	// Nor does anyone the registry lists for the business, with signing
	// authority or not: a director approving a seal applied for by a
	// fellow director decides on their own company's.
	_, country, reg, ok := parseSemanticsID(subj.NationalID)
	if !ok {
		return fmt.Errorf("subject %s: identifier %q", subj.ID, subj.NationalID)
	}
	biz, _, err := s.d.Registry.Business(ctx, country, reg)
	if errors.Is(err, registry.ErrNotFound) {
		return nil // the re-check before issuance refuses it
	}
	if err := registryErr(err, "business", country, reg); err != nil {
		return err
	}
	for _, r := range biz.Representatives {
		if who == semanticsID("IDC", r.Country, r.NationalID) {
			return refuse("own-enrollment", "the officer represents %s", biz.Name)
		}
	}
	return nil
}

// rejectedByOfficer begins the state reason of an enrollment officers
// rejected; their reason follows.
const rejectedByOfficer = "rejected by an RA officer: "

// OfficerQueue is what waits for the officer who asks: enrollments
// waiting for RA officers' approval, for an RA officer; CA certificates
// one CA officer asked to revoke, for a CA officer.
type OfficerQueue struct {
	Enrollments []QueueItem         `json:"enrollments"`
	Revocations []PendingRevocation `json:"revocations"`
}

// maxQueue bounds each list of the queue.
const maxQueue = 500

// Queue lists what waits for the officer (GET /api/v1/officer/queue,
// signed action "queue"): OfficerQueue.
func (s *Service) Queue(ctx context.Context, compact string) (OfficerQueue, error) {
	o, err := s.authenticate(ctx, compact, AudienceQueue, roleRA, roleCA)
	if err != nil {
		return OfficerQueue{}, err
	}
	if o.req.Action.Action != "queue" {
		return OfficerQueue{}, refuse("invalid-request", "the signed action is %q, not queue", o.req.Action.Action)
	}
	out := OfficerQueue{Enrollments: []QueueItem{}, Revocations: []PendingRevocation{}}
	ids, serials := []string{}, []string{}
	if o.has(roleRA) {
		pending, err := s.d.Store.EnrollmentsInState(ctx, store.StatePendingApproval, maxQueue)
		if err != nil {
			return OfficerQueue{}, err
		}
		for _, e := range pending {
			item, err := s.queueItem(ctx, e, officerID(o.req.Certificate))
			if err != nil {
				return OfficerQueue{}, err
			}
			out.Enrollments = append(out.Enrollments, item)
			ids = append(ids, e.ID)
		}
	}
	if o.has(roleCA) {
		if out.Revocations, err = s.pendingRevocations(ctx, o); err != nil {
			return OfficerQueue{}, err
		}
		for _, r := range out.Revocations {
			serials = append(serials, r.Issuer+"/"+r.Serial)
		}
	}
	// Who saw whose personal data is the audit log's too.
	if err := s.viewed(ctx, o, "enrollment.queue.view", "officer/"+hex.EncodeToString(o.Fingerprint),
		map[string]any{"enrollments": ids, "revocations": serials}); err != nil {
		return OfficerQueue{}, err
	}
	return out, nil
}

// viewed spends the request's nonce and records, in the same transaction,
// that the officer was shown personal data.
func (s *Service) viewed(ctx context.Context, o officer, action, object string, details map[string]any) error {
	details["officer"], details["officer_fingerprint"] = o.Name, hex.EncodeToString(o.Fingerprint)
	return s.group.InTx(ctx, func(tx *store.Tx) error {
		if err := useNonce(ctx, tx, o.req, s.d.Now().UTC()); err != nil {
			return err
		}
		return s.d.Audit.Append(tx, audit.Event{Actor: "officer:" + o.Name, Action: action, Object: object, Details: details})
	})
}

// Show is one enrollment as an officer reviews it (GET
// /api/v1/officer/enrollments/{id}, signed action "show").
func (s *Service) Show(ctx context.Context, id, compact string) (QueueItem, error) {
	o, err := s.authenticate(ctx, compact, AudienceShow, roleRA)
	if err != nil {
		return QueueItem{}, err
	}
	if o.req.Action.Action != "show" || o.req.Action.Enrollment != id {
		return QueueItem{}, refuse("invalid-request", "the signed action is not to show %s", id)
	}
	e, err := s.d.Store.Enrollment(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return QueueItem{}, refuse("not-found", "")
	}
	if err != nil {
		return QueueItem{}, err
	}
	item, err := s.queueItem(ctx, e, officerID(o.req.Certificate))
	if err != nil {
		return QueueItem{}, err
	}
	if err := s.viewed(ctx, o, "enrollment.view", "enrollment/"+id, map[string]any{}); err != nil {
		return QueueItem{}, err
	}
	return item, nil
}

// findLimit bounds the enrollments, the certificates and the registry
// events Find returns, the newest first.
const findLimit = 200

// SubjectView is what an officer finds of a person or business (Find): the
// attributes the registry verified, their enrollments, the certificates
// issued to them and the registry's events about them, the newest first
// (at most findLimit of each; Truncated says there were more).
type SubjectView struct {
	Subject      map[string]any    `json:"subject"`
	Enrollments  []View            `json:"enrollments"`
	Certificates []CertificateView `json:"certificates"`
	// RegistryEvents are what the registry reported of the subject (a
	// death, a dissolution, a change of authority) and what came of it,
	// newest first, at most findLimit.
	RegistryEvents []RegistryEventView `json:"registry_events"`
	Truncated      bool                `json:"truncated,omitempty"`
}

// RegistryEventView is a registry event as an officer (find) and an
// operator (sanad registry events) see it.
type RegistryEventView struct {
	ID         string    `json:"id"` // country and the registry's event id: KZ/1001
	Kind       string    `json:"kind"`
	Source     string    `json:"source"`
	OccurredAt time.Time `json:"occurred_at"`
	ReceivedAt time.Time `json:"received_at"`
	Outcome    string    `json:"outcome"`
	OutcomeAt  time.Time `json:"outcome_at,omitzero"`
}

// ViewRegistryEvent is ev as RegistryEventView shows it.
func ViewRegistryEvent(ev store.RegistryEvent) RegistryEventView {
	return RegistryEventView{ID: ev.EventID, Kind: ev.Kind, Source: ev.Source, OccurredAt: ev.OccurredAt,
		ReceivedAt: ev.ReceivedAt, Outcome: ev.Outcome, OutcomeAt: ev.OutcomeAt}
}

// subjectKinds are the subjects' kinds by the semantics identifier's type
// (ETSI EN 319 412-1 §5.1.3 for natural persons, §5.1.4 for legal
// persons): the RA writes IDC for persons and NTR for businesses, and
// nothing else.
var subjectKinds = map[string]string{"IDC": "person", "NTR": "business"}

// Find answers a helpdesk's question about a person or business
// (GET /api/v1/officer/subjects, signed action "find" naming its semantics
// identifier in subject: the identifier travels signed, never in a URL
// that proxies log): their enrollments, how each stands, the certificates
// issued to them, and what the registry reported of them (a death, a
// dissolution). Only the subject's own enrollments are
// listed (a representative's are the business's). Every search is audited
// (subject.view) with what it showed, also one that finds nobody: who
// looked up whom is the audit log's.
func (s *Service) Find(ctx context.Context, compact string) (SubjectView, error) {
	o, err := s.authenticate(ctx, compact, AudienceFind, roleRA)
	if err != nil {
		return SubjectView{}, err
	}
	if o.req.Action.Action != jwsauth.ActionFind {
		return SubjectView{}, refuse("invalid-request", "the signed action is %q, not find", o.req.Action.Action)
	}
	subjectID := o.req.Action.Subject
	typ, _, _, _ := parseSemanticsID(subjectID)
	kind, ok := subjectKinds[typ]
	if !ok {
		return SubjectView{}, refuse("invalid-request", "subjects are named by IDC (persons) or NTR (businesses) semantics identifiers")
	}
	object := "subject/" + subjectID
	subj, err := s.d.Store.SubjectByNationalID(ctx, kind, subjectID)
	if errors.Is(err, store.ErrNotFound) {
		if err := s.viewed(ctx, o, "subject.view", object, map[string]any{"found": false}); err != nil {
			return SubjectView{}, err
		}
		return SubjectView{}, refuse("subject-not-found", "no enrollment has %s as its subject (a representative's enrollments are their business's: find it by its NTR identifier)", subjectID)
	}
	if err != nil {
		return SubjectView{}, err
	}
	out := SubjectView{Enrollments: []View{}, Certificates: []CertificateView{}, RegistryEvents: []RegistryEventView{}}
	if err := json.Unmarshal(subj.Attributes, &out.Subject); err != nil {
		return SubjectView{}, fmt.Errorf("subject %s: %w", subj.ID, err)
	}
	out.Subject["id"], out.Subject["kind"] = subj.NationalID, subj.Kind
	enrollments, err := s.d.Store.EnrollmentsOfSubject(ctx, subj.ID, findLimit+1)
	if err != nil {
		return SubjectView{}, err
	}
	certs, err := s.d.Store.CertificatesOfSubject(ctx, subj.ID, findLimit+1)
	if err != nil {
		return SubjectView{}, err
	}
	events, err := s.d.Store.RegistryEventsOfSubject(ctx, subj.ID, findLimit+1)
	if err != nil {
		return SubjectView{}, err
	}
	out.Truncated = len(enrollments) > findLimit || len(certs) > findLimit || len(events) > findLimit
	// An issued enrollment's view shows its newest certificate: the first
	// of certs (newest first) that is the enrollment's, else the store's.
	newest := map[string]*issuedCertificate{}
	for _, c := range certs {
		if _, seen := newest[c.EnrollmentID]; !seen {
			newest[c.EnrollmentID] = storedCertificate(c)
		}
	}
	ids, serials := []string{}, []string{}
	for _, e := range enrollments[:min(len(enrollments), findLimit)] {
		v, err := s.viewIssued(ctx, e, newest[e.ID])
		if err != nil {
			return SubjectView{}, err
		}
		out.Enrollments = append(out.Enrollments, v)
		ids = append(ids, e.ID)
	}
	for _, c := range certs[:min(len(certs), findLimit)] {
		out.Certificates = append(out.Certificates, certificateView(c))
		serials = append(serials, ca.SerialObject(c.IssuerID, c.Serial))
	}
	eventIDs := []string{}
	for _, ev := range events[:min(len(events), findLimit)] {
		out.RegistryEvents = append(out.RegistryEvents, ViewRegistryEvent(ev))
		eventIDs = append(eventIDs, ev.EventID)
	}
	if err := s.viewed(ctx, o, "subject.view", object, map[string]any{"found": true, "enrollments": ids, "certificates": serials,
		"registry_events": eventIDs, "truncated": out.Truncated}); err != nil {
		return SubjectView{}, err
	}
	return out, nil
}

// QueueItem is what an officer sees of an enrollment: the verified
// attributes, what the registry answered, and the decisions so far.
type QueueItem struct {
	View
	Subject   map[string]any      `json:"subject"`
	Evidence  []EvidenceView      `json:"registry_evidence"`
	Approvals int                 `json:"approvals"`
	Needed    int                 `json:"approvals_needed"`
	Decisions []map[string]string `json:"decisions,omitempty"`
	// YouApproved says the officer who asked (whichever of their
	// certificates they signed with) approved it already: it waits for
	// the others.
	YouApproved bool `json:"you_approved,omitempty"`
	// Representative is, for a business, the semantics identifier
	// (IDCPK-…) of the representative who applied and proved with the
	// code: the person whose signing authority the officers approve.
	Representative string `json:"representative,omitempty"`
}

// EvidenceView is one registry lookup.
type EvidenceView struct {
	Source     string    `json:"source"`
	Record     string    `json:"record"`
	Version    string    `json:"version,omitempty"`
	Hash       string    `json:"sha256"`
	LookedUpAt time.Time `json:"looked_up_at"`
}

// queueItem is e as officer who (officerID) sees it.
func (s *Service) queueItem(ctx context.Context, e store.Enrollment, who string) (QueueItem, error) {
	v, err := s.view(ctx, e)
	if err != nil {
		return QueueItem{}, err
	}
	item := QueueItem{View: v, Needed: s.d.Policy.Approvals(e.Profile)}
	subj, err := s.d.Store.Subject(ctx, e.SubjectID)
	if err != nil {
		return QueueItem{}, err
	}
	if err := json.Unmarshal(subj.Attributes, &item.Subject); err != nil {
		return QueueItem{}, fmt.Errorf("subject %s: %w", subj.ID, err)
	}
	item.Subject["id"] = subj.NationalID
	var pr proofing
	if subj.Kind == "business" && json.Unmarshal(e.Proofing, &pr) == nil {
		item.Representative = pr.Person
	}
	evs, err := s.d.Store.RegistryEvidence(ctx, e.ID)
	if err != nil {
		return QueueItem{}, err
	}
	for _, ev := range evs {
		item.Evidence = append(item.Evidence, EvidenceView{Source: ev.Source, Record: ev.Record, Version: ev.Version,
			Hash: hex.EncodeToString(ev.Hash), LookedUpAt: ev.LookedUpAt})
	}
	approvals, err := s.d.Store.Approvals(ctx, e.ID)
	if err != nil {
		return QueueItem{}, err
	}
	deciders, err := s.deciders(ctx, approvals)
	if err != nil {
		return QueueItem{}, err
	}
	for i, a := range approvals {
		// Named, not identified: officers need not read each other's
		// national identifiers.
		decision := map[string]string{"decision": a.Decision, "officer": deciders[i].name,
			"officer_fingerprint": hex.EncodeToString(a.OfficerFingerprint), "at": a.DecidedAt.Format(time.RFC3339)}
		if deciders[i].withdrawn != "" {
			decision["withdrawn"] = deciders[i].withdrawn
		}
		item.Decisions = append(item.Decisions, decision)
	}
	approvers := approvedBy(approvals, deciders)
	item.Approvals, item.YouApproved = len(approvers), approvers[who]
	return item, nil
}
