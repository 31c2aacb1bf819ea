package ra

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sync/singleflight"
	"golang.org/x/text/unicode/norm"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/csr"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/internal/api"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/ra/idnum"
	"github.com/sanadpki/sanad/ra/registry"
)

// Issuer is the CA as the RA uses it.
type Issuer interface {
	Issue(ctx context.Context, req ca.Request) (*x509.Certificate, error)
}

// preparer is an Issuer whose intents the RA can record in its own
// transactions (ca.CA.Prepare, ca.Intent.Record): an enrollment approved by
// its proof has its certificate's intent recorded with the proof (see
// proof).
type preparer interface {
	Prepare(ctx context.Context, req ca.Request) (*ca.Intent, error)
}

// Deps are what the RA is built from; cmd/sanad wires them.
type Deps struct {
	Store   *store.DB
	Audit   *audit.Log
	CA      Issuer
	Revoker Revoker
	// Issuers are the issuing CAs, by issuer id, whose certificates sign
	// officer and holder requests: every issuing CA recorded, so that a
	// certificate an earlier issuing CA signed still works after a
	// rollover.
	Issuers  map[string]*x509.Certificate
	Registry registry.Registry
	Notifier Notifier
	Profiles map[string]profile.Profile
	Policy   Policy
	// Forbidden are the keys never certified (the CA's own), as the CA
	// has them now: an OCSP signer it took since it started is among them
	// (ca.CA.ForbiddenKeys). Nil: none here (the CA refuses its own).
	Forbidden func() []crypto.PublicKey
	// Proofs, if set, remembers the requests whose proof of possession
	// verified. Shared with a CA in the same process (ca.Deps.Proofs), it
	// spares the CA verifying again the request the RA verified.
	Proofs *csr.Proofs
	// RegistryKeys are the keys a national registry signs its events
	// with (POST /api/v1/registry/events); none: events are refused.
	RegistryKeys []RegistryKey
	// CodeKey is the key one-time codes are stored under (HMAC-SHA256,
	// config ra.code_key_file). Without it they are stored as plain
	// SHA-256, which anyone reading the database can reverse: six digits
	// are a million guesses.
	CodeKey []byte
	Now     func() time.Time
	Log     *slog.Logger
	// ClientLimit bounds requests per client address (enrollments, codes),
	// in each node's memory: it bounds what one client makes a node do.
	// IdentifierLimit bounds enrollments, wrong codes and codes sent again
	// per national identifier, in the database (store.TakeToken), so that
	// every RA node spends from the person's one bucket: it protects the
	// person (their phone, their codes), whichever node is asked. Nil is
	// no limit on enrollments and codes sent (benchmarks), and ten wrong
	// codes an hour (defaultWrongCodes).
	ClientLimit *api.Limiter
	// SiteLimit bounds the requests of an IPv6 client's whole /48
	// (api.ClientKeys) beside its /64's ClientLimit, so that a site's 65 536
	// /64s are not that many clients' allowances. Nil is no limit.
	SiteLimit *api.Limiter
	// PublicURL is where applicants reach this API (config ra.public_url),
	// for the links notices carry; empty: notices name the path only.
	PublicURL string
	// TrustedProxies are the load balancers whose X-Forwarded-For names
	// the client (api.ClientKey).
	TrustedProxies  []netip.Prefix
	IdentifierLimit *store.Bucket
	// IntentWithProof records the certificate's intent in the proof's
	// transaction when the proof approves an enrollment (a profile without
	// officers; see prepareAuto), so that the enrollment waits for one
	// commit fewer. It pays where the RA's and the CA's writes queue for
	// one writer, as on SQLite (p16 +5-13 %, 3 alternating rounds). On
	// PostgreSQL, whose transactions run side by side and where every
	// statement is a round trip, it cost 1-22 % (the enrollment's reads
	// before the transaction, the intent's single-row statements in place
	// of the CA's multi-row batch): cmd/sanad sets it on SQLite only.
	IntentWithProof bool
}

// Service is the registration authority.
type Service struct {
	d Deps
	// group commits the RA's audited writes of concurrent requests
	// together (store.Group).
	group *store.Group
	// copies runs one of concurrent copies of an enrollment request (one
	// Idempotency-Key, one body) at a time (Enroll).
	copies singleflight.Group
	// inflight counts the requests between their forecast of the lookup
	// limits and their spending (limitsLeft).
	inflight inflight
	// quietUntil is when, in Unix nanoseconds by Deps.Now, notices sent
	// while a request or a loop waits (outcome notices, and revocation
	// notices sent at once) are tried again after one could not be sent:
	// until then none waits on a gateway or registry that is down
	// (noticeQuiet).
	quietUntil atomic.Int64
	// preparing holds the ids of the enrollments whose certificate
	// prepareAuto is preparing now.
	preparing sync.Map
	// retryFrom is where RetryRegistryEvents takes up the pending events,
	// by receipt: each call takes the next page, so that events failing
	// for ever do not keep those behind them from being carried out.
	retryMu   sync.Mutex
	retryFrom time.Time
}

// New checks the dependencies fit together.
func New(d Deps) (*Service, error) {
	if d.Store == nil || d.Audit == nil || d.CA == nil || d.Revoker == nil || d.Registry == nil || d.Notifier == nil || d.Now == nil {
		return nil, errors.New("ra: store, audit log, CA, revoker, registry, notifier and clock are required")
	}
	if len(d.Issuers) == 0 {
		return nil, errors.New("ra: the issuing CAs' ids and certificates are required")
	}
	for id, c := range d.Issuers {
		if id == "" || c == nil {
			return nil, fmt.Errorf("ra: issuing CA %q has no id or no certificate", id)
		}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	for name := range d.Policy.Approval {
		if _, ok := d.Profiles[name]; !ok {
			return nil, fmt.Errorf("ra: policy names profile %s, which is not loaded", name)
		}
	}
	// A policy made in code without the CA revocation rule gets
	// LoadPolicy's default; one CA officer alone never revokes a CA
	// certificate.
	if d.Policy.CARevocationOfficers == 0 && d.Policy.CARevocationWithin == 0 {
		d.Policy.CARevocationOfficers, d.Policy.CARevocationWithin = defaultCARevocationOfficers, defaultCARevocationWithin
	}
	if d.Policy.CARevocationOfficers < 2 || d.Policy.CARevocationWithin <= 0 {
		return nil, fmt.Errorf("ra: a CA certificate is revoked by at least 2 CA officers within a positive time, not %d within %s", d.Policy.CARevocationOfficers, d.Policy.CARevocationWithin)
	}
	return &Service{d: d, group: d.Store.Group()}, nil
}

// SetNotifier replaces the notifier (benchmarks keep codes in memory).
func (s *Service) SetNotifier(n Notifier) { s.d.Notifier = n }

// transitions are the only state changes an enrollment may make (DESIGN
// §3); move refuses any other. An enrollment pending its proof fails when
// its code could not be sent (codeNotSent); an approved one when the CA
// refuses it.
var transitions = map[string][]string{
	store.StatePendingProof:    {store.StatePendingApproval, store.StateApproved, store.StateRejected, store.StateExpired, store.StateFailed},
	store.StatePendingApproval: {store.StateApproved, store.StateRejected, store.StateExpired},
	store.StateApproved:        {store.StateIssued, store.StateFailed},
}

// move changes e's state in tx, from the state it was read in.
func move(ctx context.Context, tx *store.Tx, e store.Enrollment, to, reason string, now time.Time) (store.Enrollment, error) {
	from := e.State
	allowed := false
	for _, s := range transitions[from] {
		allowed = allowed || s == to
	}
	if !allowed {
		return e, fmt.Errorf("enrollment %s: %s → %s is not a transition", e.ID, from, to)
	}
	e.State, e.StateReason, e.UpdatedAt = to, reason, now
	return e, tx.UpdateEnrollment(ctx, from, e)
}

// proofing is the enrollment's proofing record (enrollments.proofing).
type proofing struct {
	CodeHash  string    `json:"code_hash,omitempty"` // Service.codeHash of the code; empty once used
	CodeUntil time.Time `json:"code_until,omitzero"`
	Attempts  int       `json:"attempts"`
	Channel   string    `json:"channel"`
	To        string    `json:"to"` // masked
	ProvedAt  time.Time `json:"proved_at,omitzero"`
	// Person is the semantics identifier (IDCKZ-…) of the person the
	// registry matched and the code went to: the applicant, or the
	// business's representative. No officer may decide on their own
	// enrollment (decide).
	Person string `json:"person,omitempty"`
	// Codes is how many codes were sent (Resend), SentAt when the last one
	// was; an enrollment from before Resend has neither (one code, sent
	// CodeTTL before CodeUntil).
	Codes  int       `json:"codes,omitempty"`
	SentAt time.Time `json:"sent_at,omitzero"`
	// Renews is the certificate a renewal enrollment replaces (issuer id
	// and serial, "issuing/0A1B…"); IdentityAt is when the identity it
	// relies on was proven, by the enrollment the first certificate of the
	// chain of renewals came from. Neither is set on an enrollment, whose
	// identity was proven at ProvedAt.
	Renews     string    `json:"renews,omitempty"`
	IdentityAt time.Time `json:"identity_at,omitzero"`
	// Verified is what the registry answered for this enrollment, as the
	// profile reads it (profile.Verified): what its certificate carries.
	// The subject's row holds the latest of its enrollments', which a later
	// enrollment may have refreshed (a name changed since); this one's
	// evidence covers only its own. A renewal's is the subject's as its
	// re-check confirmed it. Empty on an enrollment from before it, which
	// takes the subject's row.
	Verified json.RawMessage `json:"verified,omitempty"`
}

// identityAt is when the identity the enrollment relies on was proven;
// zero if it never was.
func (pr proofing) identityAt() time.Time {
	if !pr.IdentityAt.IsZero() {
		return pr.IdentityAt
	}
	return pr.ProvedAt
}

// Limits on sending codes again (Resend): how many codes one enrollment
// gets in all, and how long after one the next may be asked for.
const (
	maxCodes       = 4
	resendInterval = time.Minute
)

// Enroll validates an application, checks it against the registry, records
// it with what the registry answered, and sends the one-time code to the
// registry's contact. body is the request as received (for idempotency);
// key is the Idempotency-Key header, or empty. The second result is true
// when the enrollment already existed for key.
func (s *Service) Enroll(ctx context.Context, body []byte, key string) (store.Enrollment, bool, error) {
	d := s.d
	req, err := ParseEnrollRequest(body)
	if err != nil {
		return store.Enrollment{}, false, err
	}
	requestHash := sha256.Sum256(body)
	if key != "" {
		if err := checkIdempotencyKey(key); err != nil {
			return store.Enrollment{}, false, err
		}
		if e, err := d.Store.EnrollmentByIdempotencyKey(ctx, key); err == nil {
			if !bytes.Equal(e.RequestHash, requestHash[:]) {
				// The enrollment is not named: the key may be a guess at
				// someone else's, and its id is what proofing asks for.
				return store.Enrollment{}, false, refuse("idempotency-conflict", "key %q was used for another request", key)
			}
			return e, true, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return store.Enrollment{}, false, err
		}
		// Copies of one request racing on this node wait for the first's
		// answer: one registry lookup, one code, one enrollment, and none
		// refused for the limits the first one spent. (On other nodes,
		// the key's unique index and replayed answer them.)
		leader := false
		ch := s.copies.DoChan(key+"\x00"+string(requestHash[:]), func() (any, error) {
			leader = true
			e, replay, err := s.enroll(context.WithoutCancel(ctx), req, key, requestHash[:])
			return enrolled{e, replay}, err
		})
		select {
		case res := <-ch:
			r, _ := res.Val.(enrolled)
			return r.e, r.replay || !leader, res.Err
		case <-ctx.Done():
			// The copy running goes on; this one's client is gone.
			return store.Enrollment{}, false, context.Cause(ctx)
		}
	}
	return s.enroll(ctx, req, key, requestHash[:])
}

// enrolled is an answer of enroll.
type enrolled struct {
	e      store.Enrollment
	replay bool
}

// enroll is Enroll past its Idempotency-Key's lookup.
func (s *Service) enroll(ctx context.Context, req EnrollRequest, key string, requestHash []byte) (store.Enrollment, bool, error) {
	d := s.d
	p, ok := d.Profiles[req.Profile]
	if _, offered := d.Policy.Approval[p.Name]; !ok || p.SubjectKind == "" || !offered {
		return store.Enrollment{}, false, refuse("unknown-profile", "%q is not a profile the RA offers (offered: %s)", req.Profile, strings.Join(s.offered(), ", "))
	}
	if p.SubjectKind != req.Applicant.Kind {
		return store.Enrollment{}, false, refuse("profile-mismatch", "profile %s is for a %s, the applicant is a %s", p.Name, p.SubjectKind, req.Applicant.Kind)
	}
	checked, err := s.checkCSR(req.CSR, p)
	if err != nil {
		return store.Enrollment{}, false, err
	}
	if err := s.checkKeyNotBlocked(ctx, checked); err != nil {
		return store.Enrollment{}, false, err
	}
	now := d.Now().UTC()
	id, err := newID(now)
	if err != nil {
		return store.Enrollment{}, false, err
	}
	// Per identifier: the registry is not asked when its lookups, or the
	// enrollments, are used up. This is a forecast; the enrollment's own
	// transaction spends both, strictly (racing requests pass the
	// forecast, and all but those the limits allow are refused there,
	// before any code goes out). A request the registry's answer refuses
	// spends a lookup (lookupsSpent). A transaction of its own for the
	// limits, before the registry is asked, made one more commit to wait
	// for in every enrollment: about a tenth of the throughput on SQLite.
	limits := s.identifierBuckets(req.Applicant)
	release, err := s.limitsLeft(ctx, limits)
	if err != nil {
		return s.replayed(ctx, key, requestHash, err)
	}
	defer release()
	a, err := s.application(ctx, req, p, checked, id, now)
	if err != nil {
		err = s.lookupsSpent(ctx, limits, err)
		release()
		return store.Enrollment{}, false, err
	}
	e := store.Enrollment{ID: id, Profile: p.Name, CSR: checked.Raw, State: store.StatePendingProof, Proofing: a.proofing,
		IdempotencyKey: key, RequestHash: requestHash, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(d.Policy.EnrollmentTTL)}
	m := a.matched
	err = s.group.InTx(ctx, func(tx *store.Tx) error {
		subj, err := tx.PutSubject(ctx, store.Subject{ID: "subj_" + id, Kind: p.SubjectKind, NationalID: m.subjectKey,
			Attributes: a.attributes, RegistryRef: m.registryRef, CreatedAt: now})
		if err != nil {
			return err
		}
		e.SubjectID = subj.ID
		// The enrollment before the limits: the same request sent twice
		// at once meets its own idempotency key, and is answered as the
		// first, rather than refused for the token the first one took.
		if err := tx.InsertEnrollment(ctx, e); err != nil {
			return err
		}
		if err := s.spendLimits(ctx, tx, limits); err != nil {
			return err
		}
		evidence, err := putEvidence(ctx, tx, m.evidence)
		if err != nil {
			return err
		}
		return d.Audit.Append(tx, audit.Event{Actor: "applicant", Action: "enrollment.create", Object: "enrollment/" + id,
			Details: map[string]any{"profile": p.Name, "subject": m.subjectKey, "representative": m.representativeKey,
				"state": e.State, "code_channel": a.channel, "code_to": maskContact(a.to), "evidence": evidence}})
	})
	if errors.Is(err, store.ErrConflict) && key != "" {
		// The same key raced us (on another node: copies on this one wait
		// for the first). Its enrollment spent the limits and this
		// transaction's spending was rolled back, but the registry was
		// asked all the same. Answer as the winner did if it was this
		// request; otherwise the conflict, within the lookups.
		spent := s.lookupsSpent(ctx, limits, nil)
		if existing, err := d.Store.EnrollmentByIdempotencyKey(ctx, key); err == nil && bytes.Equal(existing.RequestHash, requestHash) {
			return existing, true, nil
		}
		if spent != nil {
			return store.Enrollment{}, false, spent
		}
		return store.Enrollment{}, false, refuse("idempotency-conflict", "key %q is taken", key)
	}
	if err != nil {
		// Refused at the limits (racing requests took them), or failed:
		// the registry was asked all the same.
		return store.Enrollment{}, false, s.lookupsSpent(ctx, limits, err)
	}
	release()

	// The code goes out once the enrollment is committed, so that no code
	// is sent past the limits, nor for an enrollment that then failed to
	// commit; an applicant gone by now does not stop it. Should this node
	// stop before sending it, the applicant's retry with its
	// Idempotency-Key finds the enrollment, and asks for a code again
	// (Resend).
	if err := d.Notifier.Send(context.WithoutCancel(ctx), Message{EnrollmentID: id, To: a.to, Channel: a.channel, Code: a.code}); err != nil {
		err = fmt.Errorf("enrollment %s: send the one-time code by %s: %w", id, a.channel, err)
		out, err := s.codeNotSent(ctx, e, err)
		return out, false, err
	}
	d.Log.Info("enrollment created", "enrollment", id, "profile", p.Name, "subject", maskID(m.subjectKey))
	return e, false, nil
}

// application is what an enrollment records, from the registry's answer:
// who matched, the proofing record with the code's hash, and the code to
// send and where.
type application struct {
	matched
	attributes, proofing []byte // JSON
	code, to, channel    string
}

// application checks the applicant against the registry and the request
// against the profile's subject, and makes the one-time code.
func (s *Service) application(ctx context.Context, req EnrollRequest, p profile.Profile, checked *x509.CertificateRequest, id string, now time.Time) (application, error) {
	m, err := s.match(ctx, req.Applicant, id)
	if err != nil {
		return application{}, err
	}
	// The CA would refuse a CSR asking for another subject or for names
	// the profile decides; the applicant hears it now, not after the
	// officers approved.
	subject, err := p.Subject(m.verified)
	if err != nil {
		return application{}, fmt.Errorf("enrollment %s: the verified attributes do not fit profile %s: %w", id, p.Name, err)
	}
	if err := requestMatches(checked, subject); err != nil {
		return application{}, err
	}
	a := application{matched: m}
	if a.code, err = newCode(); err != nil {
		return application{}, err
	}
	if a.to, a.channel, err = contactOf(m.contact); err != nil {
		return application{}, err
	}
	if a.attributes, err = json.Marshal(m.verified); err != nil {
		return application{}, err
	}
	pr := proofing{CodeHash: s.codeHash(id, a.code), CodeUntil: now.Add(s.d.Policy.CodeTTL), Channel: a.channel, To: maskContact(a.to),
		Person: m.personKey, Codes: 1, SentAt: now, Verified: a.attributes}
	if a.proofing, err = json.Marshal(pr); err != nil {
		return application{}, err
	}
	return a, nil
}

// codeNotSent ends enrollment e, committed but its code not sent (sendErr
// says why), as failed, and frees its idempotency key for the applicant's
// retry. The send may yet have reached the person (a gateway that answers
// late), so its enrollment stays spent; should it have moved on meanwhile
// (proven, or rejected), it stands and is answered. Should it not be
// ended, the request fails (not notification-failed, which says the key
// is free).
func (s *Service) codeNotSent(ctx context.Context, e store.Enrollment, sendErr error) (store.Enrollment, error) {
	ctx = context.WithoutCancel(ctx) // a client gone does not leave it waiting for a code
	d := s.d
	var out store.Enrollment
	err := s.group.InTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.EnrollmentForUpdate(ctx, e.ID)
		if err != nil {
			return err
		}
		if out = cur; cur.State != store.StatePendingProof {
			return nil
		}
		if out, err = move(ctx, tx, cur, store.StateFailed, "the one-time code could not be sent", d.Now().UTC()); err != nil {
			return err
		}
		if cur.IdempotencyKey != "" {
			if err := tx.ReleaseIdempotencyKey(ctx, cur.ID); err != nil {
				return err
			}
		}
		return d.Audit.Append(tx, audit.Event{Actor: "system:notifier", Action: "enrollment.fail", Object: "enrollment/" + e.ID,
			Details: map[string]any{"error": sendErr.Error()}})
	})
	switch {
	case err != nil:
		// Left pending its proof: a retry with the key finds it, and may
		// ask for a code again (Resend).
		return store.Enrollment{}, fmt.Errorf("%w; ending the enrollment failed too: %w", sendErr, err)
	case out.State != store.StateFailed:
		// Proven (the code did arrive), or ended otherwise (rejected on a
		// registry event, say): the applicant hears where it stands, and
		// its key still names it.
		d.Log.Warn("the code was reported unsent, but the enrollment had moved on", "enrollment", e.ID, "state", out.State, "err", sendErr)
		return out, nil
	}
	r := refuse("notification-failed", "")
	r.Err = sendErr // logged by fail
	return store.Enrollment{}, r
}

// identifierLimits are the buckets of the identifiers an enrollment names
// (a person's; a business's and its representative's): lookups bound the
// registry lookups, enrollments the codes sent.
type identifierLimits struct{ lookups, enrollments [][]byte }

// lookupsPerEnrollment is how many registry lookups an identifier may have
// for each enrollment it may have: room for the applicant's typing mistakes.
const lookupsPerEnrollment = 3

// identifierBuckets are the limits of a's identifiers; none without a
// limit.
func (s *Service) identifierBuckets(a Applicant) identifierLimits {
	if s.d.IdentifierLimit == nil {
		return identifierLimits{}
	}
	keys := []string{a.Country + ":" + digits(a.NationalID)}
	if a.Kind == "business" && a.Representative != nil {
		keys = []string{a.Country + ":" + digits(a.RegistrationNumber), a.Representative.Country + ":" + digits(a.Representative.NationalID)}
	}
	var l identifierLimits
	for _, k := range keys {
		l.lookups = append(l.lookups, s.limitBucket("registry lookup", k))
		l.enrollments = append(l.enrollments, s.identifierBucket(k))
	}
	return l
}

func (s *Service) lookupLimit() store.Bucket {
	b := *s.d.IdentifierLimit
	return store.Bucket{Rate: b.Rate * lookupsPerEnrollment, Burst: b.Burst * lookupsPerEnrollment}
}

// limitsLeft refuses (rate-limited) when an identifier has no lookup or
// no enrollment left, spending nothing: a forecast, read outside any
// transaction, that spendLimits then decides. Every request it lets
// through spends a lookup (spendLimits or lookupsSpent), so it counts
// this node's requests between their forecast and that spending (release
// ends this one's, and may be called again): each asks its bucket for a
// lookup more for every one before it still in flight (inflight.ahead),
// and racing requests do not ask the registry more often than the limit
// allows.
// (Requests on other nodes are not counted: with several nodes the
// registry may be asked that many times more; what it answered is still
// heard only within the limit.)
func (s *Service) limitsLeft(ctx context.Context, l identifierLimits) (release func(), err error) {
	if len(l.lookups) == 0 {
		return func() {}, nil
	}
	ticket := s.inflight.add(l.lookups)
	release = sync.OnceFunc(func() { s.inflight.done(l.lookups, ticket) })
	now := s.d.Now()
	left := func(b []byte, limit store.Bucket, n int, refusal func(time.Duration) error) error {
		wait, err := s.d.Store.TokensWait(ctx, b, limit, now, n)
		if err == nil && wait > 0 {
			err = refusal(wait)
		}
		return err
	}
	for _, b := range l.lookups {
		if err := left(b, s.lookupLimit(), s.inflight.ahead(b, ticket), tooManyLookups); err != nil {
			release()
			return nil, err
		}
	}
	for _, b := range l.enrollments {
		if err := left(b, *s.d.IdentifierLimit, 1, tooManyEnrollments); err != nil {
			release()
			return nil, err
		}
	}
	return release, nil
}

// inflight counts, per lookup bucket, this node's requests between their
// forecast and their spending (limitsLeft).
type inflight struct {
	mu   sync.Mutex
	last uint64
	// tickets are, per bucket, those of the requests in flight, in the
	// order they came.
	tickets map[string][]uint64
}

// add counts a request for each of keys, and returns its ticket.
func (f *inflight) add(keys [][]byte) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tickets == nil {
		f.tickets = map[string][]uint64{}
	}
	f.last++
	for _, k := range keys {
		f.tickets[string(k)] = append(f.tickets[string(k)], f.last)
	}
	return f.last
}

// ahead is how many tokens the request with ticket must find in bucket
// key: one, and one for each request that came before it and is still in
// flight. One that has left spent its token first, which a read after
// this sees. (One that leaves between this and the read is counted
// twice: a refusal that could have been spared, never one too few.)
func (f *inflight) ahead(key []byte, ticket uint64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 1
	for _, t := range f.tickets[string(key)] {
		if t < ticket {
			n++
		}
	}
	return n
}

func (f *inflight) done(keys [][]byte, ticket uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		ts := slices.DeleteFunc(f.tickets[string(k)], func(t uint64) bool { return t == ticket })
		if len(ts) == 0 {
			delete(f.tickets, string(k))
		} else {
			f.tickets[string(k)] = ts
		}
	}
}

// replayed answers a request refused (err) past the rate limits with the
// enrollment its Idempotency-Key made meanwhile, if the same request made
// it: a retry racing the first attempt, which took the last token.
func (s *Service) replayed(ctx context.Context, key string, requestHash []byte, err error) (store.Enrollment, bool, error) {
	var refusal *Error
	if key != "" && errors.As(err, &refusal) && refusal.Type == "rate-limited" {
		if e, findErr := s.d.Store.EnrollmentByIdempotencyKey(ctx, key); findErr == nil && bytes.Equal(e.RequestHash, requestHash) {
			return e, true, nil
		}
	}
	return store.Enrollment{}, false, err
}

// spendLimits spends, in tx, a lookup and an enrollment of each
// identifier, refusing (rate-limited) when one has none left.
func (s *Service) spendLimits(ctx context.Context, tx *store.Tx, l identifierLimits) error {
	if len(l.enrollments) == 0 { // no limit
		return nil
	}
	if err := s.spendLookups(ctx, tx, l); err != nil {
		return err
	}
	return s.spend(ctx, tx, l.enrollments, *s.d.IdentifierLimit, tooManyEnrollments)
}

func (s *Service) spendLookups(ctx context.Context, tx *store.Tx, l identifierLimits) error {
	if len(l.lookups) == 0 { // no limit
		return nil
	}
	return s.spend(ctx, tx, l.lookups, s.lookupLimit(), tooManyLookups)
}

// spend takes a token of each of buckets in tx, refusing at the first
// empty one.
func (s *Service) spend(ctx context.Context, tx *store.Tx, buckets [][]byte, limit store.Bucket, refusal func(time.Duration) error) error {
	now := s.d.Now()
	for _, b := range buckets {
		if ok, wait, err := tx.TakeToken(ctx, b, limit, now); err != nil {
			return err
		} else if !ok {
			return refusal(wait)
		}
	}
	return nil
}

// lookupsSpent spends a lookup of each identifier for a request that the
// registry's answer refused (or that failed once it was asked, or lost
// its Idempotency-Key to another request), and returns refusal (nil for
// the last); rate-limited instead if racing requests used the lookups up
// first, so that no request past the limit hears what the registry said.
// Should the spending fail, so does the request.
func (s *Service) lookupsSpent(ctx context.Context, l identifierLimits, refusal error) error {
	if len(l.lookups) == 0 {
		return refusal
	}
	ctx = context.WithoutCancel(ctx) // a client gone still spent its lookup
	err := s.group.InTx(ctx, func(tx *store.Tx) error { return s.spendLookups(ctx, tx, l) })
	var limited *Error
	switch {
	case errors.As(err, &limited):
		return err
	case err != nil && refusal != nil:
		return fmt.Errorf("spend the registry lookups of a refused enrollment (%v): %w", refusal, err)
	case err != nil:
		return fmt.Errorf("spend the registry lookups of an enrollment request: %w", err)
	}
	return refusal
}

func tooManyLookups(wait time.Duration) error {
	return rateLimited(wait, "too many registry lookups for this identifier")
}

func tooManyEnrollments(wait time.Duration) error {
	return rateLimited(wait, "too many enrollments for this identifier")
}

// rateLimited is a rate-limited refusal saying when to try again.
func rateLimited(wait time.Duration, detail string) *Error {
	e := refuse("rate-limited", "%s", detail)
	e.Extra = map[string]any{"retry_after_seconds": int(wait.Seconds()) + 1}
	return e
}

// limitKeys spends one request from the limit of each identifier key
// (limitKey's form), refusing (rate-limited) at the first one spent.
func (s *Service) limitKeys(ctx context.Context, keys ...string) error {
	for _, k := range keys {
		if ok, wait, err := s.allowIdentifier(ctx, k); err != nil {
			return err
		} else if !ok {
			return tooManyEnrollments(wait)
		}
	}
	return nil
}

// allowIdentifier spends one request of the identifier key (limitKey's
// form) from its bucket (identifierBucket) in the database, in a
// transaction of its own.
func (s *Service) allowIdentifier(ctx context.Context, key string) (bool, time.Duration, error) {
	if s.d.IdentifierLimit == nil || key == "" {
		return true, 0, nil
	}
	return s.d.Store.TakeToken(ctx, s.identifierBucket(key), *s.d.IdentifierLimit, s.d.Now())
}

// identifierBucket names the bucket of the identifier key (limitKey's
// form) by a keyed hash (HMAC-SHA256 under CodeKey; SHA-256 without one),
// so the table of buckets is not a list of who enrolled.
func (s *Service) identifierBucket(key string) []byte { return s.limitBucket("identifier", key) }

// limitBucket names the bucket of a limit ("identifier", "registry
// lookup", "wrong code") for key (limitKey's form), as identifierBucket
// says.
func (s *Service) limitBucket(limit, key string) []byte {
	return s.keyedSum([]byte("sanad " + limit + " limit\x00" + key))
}

// wrongCodeBucket names the bucket of wrong codes of person (a semantics
// identifier), keyed as allowIdentifier's are; nil without a person.
func (s *Service) wrongCodeBucket(person string) []byte {
	key := limitKey(person)
	if key == "" {
		return nil
	}
	return s.limitBucket("wrong code", key)
}

// defaultWrongCodes bounds a person's wrong codes when no identifier limit
// is set: turning off the bounds on enrollments (benchmarks, a pilot) must
// not leave a person's codes open to guesses spread over many enrollments.
var defaultWrongCodes = store.Bucket{Rate: 10 / time.Hour.Seconds(), Burst: 10}

// wrongCodeLimit is the bucket of a person's wrong codes: the identifier
// limit, or defaultWrongCodes without one.
func (s *Service) wrongCodeLimit() store.Bucket {
	if s.d.IdentifierLimit != nil {
		return *s.d.IdentifierLimit
	}
	return defaultWrongCodes
}

// limitKey is identifierBucket's key for an ETSI semantics identifier
// (IDCKZ-880312448217 → KZ:880312448217). An enrollment from before
// proofing recorded the person has none, and charges no one.
func limitKey(semanticsID string) string {
	_, country, id, ok := parseSemanticsID(semanticsID)
	if !ok {
		return ""
	}
	return country + ":" + digits(id)
}

// semanticsID is the ETSI EN 319 412-1 semantics identifier of a national
// identifier: IDC (a person's) or NTR (a business's), the country, the id.
func semanticsID(kind, country, id string) string { return kind + country + "-" + id }

// parseSemanticsID splits an ETSI EN 319 412-1 semantics identifier as the
// RA writes them: IDCKZ-880312448217 is ("IDC", "KZ", "880312448217"),
// NTRPK-32778761 is ("NTR", "PK", "32778761").
func parseSemanticsID(s string) (kind, country, id string, ok bool) {
	prefix, id, found := strings.Cut(s, "-")
	if !found || len(prefix) != 5 || id == "" {
		return "", "", "", false
	}
	return prefix[:3], prefix[3:], id, true
}

// digits keeps the digits and letters of an identifier, so that written
// forms (42101-1234567-1) share one limit with the plain one.
func digits(id string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' {
			return r
		}
		return -1
	}, id)
}

// checkKeyNotBlocked refuses (invalid-csr, code key-compromised) a key
// whose certificate was revoked for keyCompromise.
func (s *Service) checkKeyNotBlocked(ctx context.Context, checked *x509.CertificateRequest) error {
	err := ca.CheckKeyNotBlocked(ctx, s.d.Store, checked.PublicKey)
	if errors.Is(err, ca.ErrKeyCompromised) {
		e := refuse("invalid-csr", "%v", err)
		e.Extra, e.Err = map[string]any{"code": "key-compromised"}, err
		return e
	}
	return err
}

// requestMatches refuses (invalid-csr, code request-mismatch) a CSR that
// asks for something other than subject (ca.RequestMatches).
func requestMatches(checked *x509.CertificateRequest, subject pkix.Name) error {
	if err := ca.RequestMatches(checked, subject); err != nil {
		e := refuse("invalid-csr", "%v", err)
		e.Extra, e.Err = map[string]any{"code": "request-mismatch"}, err
		return e
	}
	return nil
}

// checkCSR parses the CSR (PEM), checks its signature (proof of
// possession) and that its key is one the profile allows.
func (s *Service) checkCSR(pemCSR string, p profile.Profile) (*x509.CertificateRequest, error) {
	keyTypes := make([]string, len(p.KeyTypes))
	for i, kt := range p.KeyTypes {
		keyTypes[i] = string(kt)
	}
	var forbidden []crypto.PublicKey
	if s.d.Forbidden != nil {
		forbidden = s.d.Forbidden()
	}
	cr, _, err := csr.ParseAndCheck([]byte(pemCSR), csr.Policy{KeyTypes: keyTypes, Forbidden: forbidden, Proofs: s.d.Proofs})
	if err != nil {
		return nil, invalidCSR(err)
	}
	return cr, nil
}

func invalidCSR(err error) error {
	e := refuse("invalid-csr", "%v", err)
	var ke *csr.KeyError
	if errors.As(err, &ke) {
		e.Extra = map[string]any{"code": ke.Code}
	}
	e.Err = err
	return e
}

// matched is what the registry confirmed.
type matched struct {
	verified          profile.Verified
	subjectKey        string // ETSI semantics identifier: IDCKZ-…, NTRPK-…
	representativeKey string
	personKey         string // the person matched: the applicant or the representative
	registryRef       string
	contact           registry.Person // whose phone/e-mail gets the code
	evidence          []store.RegistryEvidence
}

// match checks the applicant against the registry: a person must exist,
// be alive, and have the names and birth date given; a business must be
// active and list the representative (a person matched the same way) with
// signing authority.
func (s *Service) match(ctx context.Context, a Applicant, enrollmentID string) (matched, error) {
	var m matched
	person := a
	if a.Kind == "business" {
		person = *a.Representative
	}
	pid, birth, err := checkPersonID(person)
	if err != nil {
		return m, err
	}
	rec, ev, err := s.d.Registry.Person(ctx, person.Country, pid)
	if err := registryErr(err, "person", person.Country, pid); err != nil {
		return m, err
	}
	m.evidence = append(m.evidence, evidence(enrollmentID, "person", ev))
	switch {
	case !sameName(rec.GivenName, person.GivenName) || !sameName(rec.FamilyName, person.FamilyName) || rec.BirthDate != birth:
		// One answer for either: which one differs would tell a stranger
		// who knows the identifier that the other is right.
		return m, refuse("registry-mismatch", "the name or the birth date differs from the registry's record of this identifier")
	case !rec.Alive:
		return m, refuse("subject-deceased", "no certificate is issued for a person the registry records as deceased; a mistaken record is corrected at the registry first")
	}
	m.contact = rec
	personKey := semanticsID("IDC", person.Country, pid)
	m.personKey = personKey
	if a.Kind == "person" {
		m.verified = profile.Verified{Country: person.Country, NationalID: pid, GivenName: rec.GivenName, FamilyName: rec.FamilyName}
		m.subjectKey, m.registryRef = personKey, ev.Version
		return m, nil
	}

	checker, err := idnum.For(a.Country)
	if err != nil {
		return m, identifierErr(err)
	}
	reg, err := checker.Business(a.RegistrationNumber)
	if err != nil {
		return m, identifierErr(err)
	}
	biz, bev, err := s.d.Registry.Business(ctx, a.Country, reg)
	if err := registryErr(err, "business", a.Country, reg); err != nil {
		return m, err
	}
	m.evidence = append(m.evidence, evidence(enrollmentID, "business", bev))
	if !biz.Active {
		return m, refuse("business-inactive", "a certificate is issued only for a business the registry records as active (not dissolved, suspended or in liquidation)")
	}
	signs := false
	for _, r := range biz.Representatives {
		if r.Country == person.Country && r.NationalID == pid && r.CanSign {
			signs = true
		}
	}
	if !signs {
		return m, refuse("not-a-representative", "the registry does not list the applicant with signing authority for %s", biz.Name)
	}
	m.verified = profile.Verified{Country: a.Country, OrganizationName: biz.Name, RegistrationNumber: reg}
	m.subjectKey, m.representativeKey, m.registryRef = semanticsID("NTR", a.Country, reg), personKey, bev.Version
	return m, nil
}

// checkPersonID validates a person's identifier with the birth date given
// and returns its canonical form and the date as YYYY-MM-DD.
func checkPersonID(p Applicant) (string, string, error) {
	birth, err := time.Parse(time.DateOnly, p.BirthDate)
	if err != nil {
		return "", "", refuse("invalid-request", "birth_date %q is not YYYY-MM-DD", p.BirthDate)
	}
	checker, err := idnum.For(p.Country)
	if err != nil {
		return "", "", identifierErr(err)
	}
	id, err := checker.Person(p.NationalID, birth)
	if err != nil {
		return "", "", identifierErr(err)
	}
	return id, birth.Format(time.DateOnly), nil
}

func identifierErr(err error) error {
	var ie *idnum.Error
	if errors.As(err, &ie) {
		typ := "invalid-identifier"
		if ie.Code == idnum.CodeUnsupportedCountry {
			typ = "unsupported-country"
		}
		e := refuse(typ, "%s", ie.Reason)
		e.Extra, e.Err = map[string]any{"code": ie.Code}, err
		return e
	}
	return err
}

func registryErr(err error, record, country, id string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, registry.ErrNotFound):
		return refuse("not-in-registry", "no %s %s in the %s registry", record, maskID(id), country)
	case errors.Is(err, registry.ErrUnavailable):
		return &Error{Status: problems["registry-unavailable"].status, Type: "registry-unavailable", Title: problems["registry-unavailable"].title, Err: err}
	}
	return err
}

func evidence(enrollmentID, record string, ev registry.Evidence) store.RegistryEvidence {
	return store.RegistryEvidence{EnrollmentID: enrollmentID, Source: ev.Source, Record: record, Version: ev.Version, Hash: ev.Hash, LookedUpAt: ev.LookedUpAt}
}

// putEvidence stores an enrollment's registry evidence and returns it for
// the details of the audit event the caller appends in the same
// transaction: the hash-chained log then fixes what the registry answered,
// which the registry_evidence rows alone would not.
func putEvidence(ctx context.Context, tx *store.Tx, evs []store.RegistryEvidence) ([]map[string]any, error) {
	out := make([]map[string]any, 0, len(evs))
	for _, ev := range evs {
		if err := tx.InsertRegistryEvidence(ctx, ev); err != nil {
			return nil, err
		}
		d := map[string]any{"record": ev.Record, "source": ev.Source, "sha256": hex.EncodeToString(ev.Hash), "looked_up_at": ev.LookedUpAt}
		if ev.Version != "" {
			d["version"] = ev.Version
		}
		out = append(out, d)
	}
	return out, nil
}

// contactOf is where a person's one-time code goes: the registry's phone,
// else its e-mail address.
func contactOf(p registry.Person) (to, channel string, err error) {
	switch {
	case p.Phone != "":
		return p.Phone, "sms", nil
	case p.Email != "":
		return p.Email, "email", nil
	}
	return "", "", refuse("registry-mismatch", "the registry holds no phone or e-mail to send the one-time code to")
}

// awaitingCode refuses an enrollment that no longer waits for its code:
// locked by wrong codes, lapsed, or in any other state.
func awaitingCode(e store.Enrollment) error {
	switch {
	case e.State == store.StatePendingProof:
		return nil
	case e.State == store.StateRejected && strings.HasPrefix(e.StateReason, "locked"):
		return refuse("enrollment-locked", "")
	}
	return notPending(e)
}

// notPending refuses an action on e, which is past the state that allows
// it: lapsed (the applicant enrolls again, whoever noticed the lapse
// first), or any other state.
func notPending(e store.Enrollment) error {
	if e.State == store.StateExpired {
		return refuse("enrollment-expired", "")
	}
	return refuse("wrong-state", "the enrollment is %s", e.State)
}

// sameName compares names as a registry clerk would: case, surrounding
// space and Unicode composition aside (an applicant's keyboard may send
// "Й" as И and a combining breve, NFD, where the registry holds the one
// precomposed letter, NFC).
func sameName(a, b string) bool {
	return strings.EqualFold(norm.NFC.String(strings.TrimSpace(a)), norm.NFC.String(strings.TrimSpace(b)))
}

// Proof checks a one-time code. A right code moves the enrollment on
// (pending_approval, or approved and issued at once for an auto profile);
// a wrong one counts, and the policy's last wrong one locks the enrollment.
// Codes are single-use and expire.
func (s *Service) Proof(ctx context.Context, id, code string) (store.Enrollment, error) {
	e, _, err := s.proof(ctx, id, code)
	return e, err
}

// proof is Proof, with the certificate it got when it issued one (its
// answer shows it without reading it back).
func (s *Service) proof(ctx context.Context, id, code string) (store.Enrollment, *x509.Certificate, error) {
	d := s.d
	// The RA sends six digits (newCode); anything else cannot be the code
	// and is refused before it costs the applicant an attempt.
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return store.Enrollment{}, nil, refuse("invalid-request", "code must be the 6 digits sent to you")
	}
	pre := s.prepareAuto(ctx, id)
	now := d.Now().UTC()
	var (
		out     store.Enrollment
		refusal error
		// recorded: pre's intent was recorded with the proof.
		recorded bool
	)
	err := s.group.InTx(ctx, func(tx *store.Tx) error {
		refusal, recorded = nil, false
		e, err := tx.EnrollmentForUpdate(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			refusal = refuse("not-found", "")
			return nil
		}
		if err != nil {
			return err
		}
		if refusal = awaitingCode(e); refusal != nil {
			return nil
		}
		var pr proofing
		if err := json.Unmarshal(e.Proofing, &pr); err != nil {
			return fmt.Errorf("enrollment %s proofing: %w", id, err)
		}
		event := func(action string, details map[string]any) error {
			return d.Audit.Append(tx, audit.Event{Actor: "applicant", Action: action, Object: "enrollment/" + id, Details: details})
		}
		if !e.ExpiresAt.IsZero() && now.After(e.ExpiresAt) {
			if out, err = move(ctx, tx, e, store.StateExpired, "the enrollment lapsed before the code was given", now); err != nil {
				return err
			}
			refusal = refuse("enrollment-expired", "")
			return event("enrollment.expire", map[string]any{"expired_at": e.ExpiresAt})
		}
		if now.After(pr.CodeUntil) {
			refusal = refuse("code-expired", "the code was valid until %s", pr.CodeUntil.Format(time.RFC3339))
			return event("enrollment.proof.fail", map[string]any{"why": "code expired"})
		}
		// Wrong codes are bounded per person as well as per enrollment
		// (the lock): across all of one person's enrollments, a code is
		// checked only while the person's bucket of wrong codes has one
		// left, so guesses at one person's codes stay at the identifier
		// limit an hour however many enrollments are made for them.
		guesses := s.wrongCodeBucket(pr.Person)
		if guesses != nil {
			wait, err := tx.TokenWait(ctx, guesses, s.wrongCodeLimit(), now)
			if err != nil {
				return err
			}
			if wait > 0 {
				refusal = rateLimited(wait, "too many wrong codes for this person lately; the code was not checked")
				return nil
			}
		}
		given, err := s.codeHashAs(pr.CodeHash, id, code)
		if err != nil {
			return err // this node cannot check the code: not the applicant's attempt
		}
		if subtle.ConstantTimeCompare([]byte(given), []byte(pr.CodeHash)) != 1 {
			if guesses != nil {
				if _, _, err := tx.TakeToken(ctx, guesses, s.wrongCodeLimit(), now); err != nil {
					return err
				}
			}
			pr.Attempts++
			e.Proofing, _ = json.Marshal(pr)
			left := d.Policy.MaxCodeAttempts - pr.Attempts
			if left <= 0 {
				if out, err = move(ctx, tx, e, store.StateRejected, "locked after too many wrong codes", now); err != nil {
					return err
				}
				refusal = refuse("enrollment-locked", "")
				return event("enrollment.lock", map[string]any{"attempts": pr.Attempts})
			}
			e.UpdatedAt = now
			if err := tx.UpdateEnrollment(ctx, e.State, e); err != nil {
				return err
			}
			out = e
			tries := "tries"
			if left == 1 {
				tries = "try"
			}
			r := refuse("wrong-code", "%d %s left", left, tries)
			r.Extra = map[string]any{"attempts_left": left}
			refusal = r
			return event("enrollment.proof.fail", map[string]any{"attempts": pr.Attempts})
		}
		pr.CodeHash, pr.ProvedAt = "", now // single use
		e.Proofing, _ = json.Marshal(pr)
		next := store.StatePendingApproval
		if d.Policy.Approvals(e.Profile) == 0 {
			next = store.StateApproved
		}
		if out, err = move(ctx, tx, e, next, "", now); err != nil {
			return err
		}
		if err := event("enrollment.proof", map[string]any{"state": next, "channel": pr.Channel}); err != nil {
			return err
		}
		if next == store.StateApproved && pre.isFor(e) {
			// An intent the CA refuses now (a key blocked since) is
			// left out, with nothing written: issue then asks the CA
			// again, which refuses again, and records why.
			switch err := pre.intent.Record(ctx, tx); {
			case errors.Is(err, ca.ErrKeyCompromised):
			case err != nil:
				return err
			default:
				recorded = true
			}
		}
		return nil
	})
	if err != nil {
		return store.Enrollment{}, nil, err
	}
	if refusal != nil {
		return out, nil, refusal
	}
	if out.State == store.StateApproved {
		if !recorded {
			pre = nil
		}
		return s.issueDetached(ctx, out, autoApproval, pre)
	}
	return out, nil, nil
}

// autoApproval is the actor of an issuance no officer approved.
const autoApproval = "system:auto-approval"

// prepared is an auto-approved enrollment's issuance, prepared by the CA
// before the proof's transaction (prepareAuto): its subject, read once, and
// its certificate's intent, to be recorded in that transaction.
type prepared struct {
	enrollment store.Enrollment
	subject    store.Subject
	verified   profile.Verified
	intent     *ca.Intent
}

// isFor says whether p was prepared for e, as e is in the proof's
// transaction: the same enrollment, profile, subject and request.
func (p *prepared) isFor(e store.Enrollment) bool {
	return p != nil && p.enrollment.ID == e.ID && p.enrollment.Profile == e.Profile &&
		p.enrollment.SubjectID == e.SubjectID && bytes.Equal(p.enrollment.CSR, e.CSR)
}

// prepareAuto has the CA prepare the certificate of an enrollment the
// proof may approve (a profile without officers, its code still valid), so
// that its intent commits with the proof: an enrollment then waits for one
// commit fewer (the CA's intent, its own transaction otherwise). Its
// checks are a forecast, not a decision: the proof's transaction makes
// them all again, and records the intent only if it approves the
// enrollment. So it answers nil on anything else, the CA's refusals
// included: issue then takes the usual way, which asks the CA again and
// records its answer.
//
// The CA's work does not depend on the code given: a guesser whose code is
// not checked (the person's wrong-code bucket is empty) must not learn from
// the time of the answer that it was right. It is spent only while the
// bucket has a token, as read before the transaction, and for one proof of
// an enrollment at a time (a later one while it runs prepares nothing): a
// flood of codes for one enrollment costs the CA about one preparation for
// each that the bucket and the lock let through, none once it is refused.
func (s *Service) prepareAuto(ctx context.Context, id string) *prepared {
	d := s.d
	issuer, ok := d.CA.(preparer)
	if !ok || !d.IntentWithProof {
		return nil
	}
	if _, busy := s.preparing.LoadOrStore(id, struct{}{}); busy {
		return nil
	}
	defer s.preparing.Delete(id)
	e, err := d.Store.Enrollment(ctx, id)
	if err != nil || awaitingCode(e) != nil || d.Policy.Approvals(e.Profile) != 0 || renewsOf(e).serial != nil {
		return nil
	}
	var pr proofing
	now := d.Now()
	if json.Unmarshal(e.Proofing, &pr) != nil || now.After(pr.CodeUntil) || (!e.ExpiresAt.IsZero() && now.After(e.ExpiresAt)) {
		return nil
	}
	if guesses := s.wrongCodeBucket(pr.Person); guesses != nil {
		if wait, err := d.Store.TokenWait(ctx, guesses, s.wrongCodeLimit(), now); err != nil || wait > 0 {
			return nil
		}
	}
	subj, v, err := s.verifiedSubject(ctx, e)
	if err != nil {
		return nil
	}
	in, err := issuer.Prepare(ctx, caRequest(e, subj, v, autoApproval))
	if err != nil {
		return nil
	}
	return &prepared{enrollment: e, subject: subj, verified: v, intent: in}
}

// verifiedSubject reads e's subject and the attributes the RA verified for
// e (proofing.Verified), or for an enrollment that kept none, the
// subject's.
func (s *Service) verifiedSubject(ctx context.Context, e store.Enrollment) (store.Subject, profile.Verified, error) {
	subj, err := s.d.Store.Subject(ctx, e.SubjectID)
	if err != nil {
		return store.Subject{}, profile.Verified{}, err
	}
	var pr proofing
	if err := json.Unmarshal(e.Proofing, &pr); err != nil {
		return store.Subject{}, profile.Verified{}, fmt.Errorf("enrollment %s proofing: %w", e.ID, err)
	}
	attributes, whose := pr.Verified, "enrollment "+e.ID
	if len(attributes) == 0 {
		attributes, whose = subj.Attributes, "subject "+subj.ID
	}
	var v profile.Verified
	if err := json.Unmarshal(attributes, &v); err != nil {
		return store.Subject{}, profile.Verified{}, fmt.Errorf("%s attributes: %w", whose, err)
	}
	return subj, v, nil
}

// caRequest is the CA's request for enrollment e of subj.
func caRequest(e store.Enrollment, subj store.Subject, v profile.Verified, actor string) ca.Request {
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: e.CSR})
	return ca.Request{Profile: e.Profile, CSR: csrPEM, Verified: v, SubjectID: subj.ID, EnrollmentID: e.ID, Actor: actor}
}

// ExpireLapsed moves enrollments still waiting, for their code or for
// officers, past their expiry to expired, each with its audit event, up to
// limit per state: the applicant sees that it lapsed, and the officers'
// queue keeps only what they may still decide. Proof and decide expire an
// enrollment they find lapsed themselves; this finds the ones nobody
// touches. Run it periodically.
func (s *Service) ExpireLapsed(ctx context.Context, limit int) (int, error) {
	d := s.d
	n := 0
	for _, state := range []string{store.StatePendingProof, store.StatePendingApproval} {
		now := d.Now().UTC()
		lapsed, err := d.Store.LapsedEnrollments(ctx, state, now, limit)
		if err != nil {
			return n, err
		}
		for _, e := range lapsed {
			var moved *store.Enrollment
			told := false // an outcome notice recorded
			err := s.group.InTx(ctx, func(tx *store.Tx) error {
				moved, told = nil, false
				cur, err := tx.EnrollmentForUpdate(ctx, e.ID)
				if err != nil {
					return err
				}
				if cur.State != state {
					return nil // moved on meanwhile
				}
				out, err := move(ctx, tx, cur, store.StateExpired, "the enrollment lapsed while "+strings.ReplaceAll(state, "_", " "), now)
				if err != nil {
					return err
				}
				moved = &out
				if state == store.StatePendingApproval {
					if told, err = s.outcomeEnded(ctx, tx, out, nil); err != nil {
						return err
					}
				}
				return d.Audit.Append(tx, audit.Event{Actor: "system:expiry", Action: "enrollment.expire", Object: "enrollment/" + e.ID,
					Details: map[string]any{"expired_at": e.ExpiresAt, "state": state}})
			})
			if err != nil {
				return n, err
			}
			if moved != nil {
				n++
			}
			if told {
				s.noticeOutcome(ctx, *moved, nil)
			}
		}
	}
	return n, nil
}

// Resend sends a new one-time code for an enrollment still waiting for one
// (POST /api/v1/enrollments/{id}/code), to the contact the registry holds
// now: the code before it no longer proves. Wrong attempts still count
// toward the lock. At most maxCodes codes per enrollment, one per
// resendInterval, each spending one of the person's enrollments
// (identifierBucket), so that no one is bombarded with messages.
//
// The new code is committed before it is sent, in the transaction that
// re-checks those limits and spends the person's token: of concurrent
// requests one sends and spends, and a code is never sent that was not
// stored. A send that fails has spent its turn.
func (s *Service) Resend(ctx context.Context, id string) (store.Enrollment, error) {
	d := s.d
	e, err := d.Store.Enrollment(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Enrollment{}, refuse("not-found", "")
	}
	if err != nil {
		return store.Enrollment{}, err
	}
	now := d.Now().UTC()
	pr, err := s.resendable(e, now)
	if err != nil {
		return store.Enrollment{}, err
	}
	_, country, pid, ok := parseSemanticsID(pr.Person)
	if !ok {
		return store.Enrollment{}, refuse("wrong-state", "the enrollment predates sending codes again; enroll again")
	}
	// The person's limit, forecast here (so that no one asks the registry
	// past it) and spent with the new code (so that a refused request
	// spends nothing).
	var bucket []byte
	if key := limitKey(pr.Person); d.IdentifierLimit != nil && key != "" {
		bucket = s.identifierBucket(key)
		if wait, err := d.Store.TokensWait(ctx, bucket, *d.IdentifierLimit, now, 1); err != nil {
			return store.Enrollment{}, err
		} else if wait > 0 {
			return store.Enrollment{}, rateLimited(wait, "too many codes for this person")
		}
	}
	rec, ev, err := d.Registry.Person(ctx, country, pid)
	if err := registryErr(err, "person", country, pid); err != nil {
		return store.Enrollment{}, err
	}
	if !rec.Alive {
		return store.Enrollment{}, refuse("subject-deceased", "")
	}
	to, channel, err := contactOf(rec)
	if err != nil {
		return store.Enrollment{}, err
	}
	code, err := newCode()
	if err != nil {
		return store.Enrollment{}, err
	}
	var out store.Enrollment
	err = s.group.InTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.EnrollmentForUpdate(ctx, id)
		if err != nil {
			return err
		}
		pr, err := s.resendable(cur, now) // as it is now, not as it was read
		if err != nil {
			return err
		}
		if bucket != nil {
			if ok, wait, err := tx.TakeToken(ctx, bucket, *d.IdentifierLimit, now); err != nil {
				return err
			} else if !ok {
				return rateLimited(wait, "too many codes for this person")
			}
		}
		pr.CodeHash, pr.CodeUntil, pr.Codes, pr.SentAt = s.codeHash(id, code), now.Add(d.Policy.CodeTTL), max(pr.Codes, 1)+1, now
		pr.Channel, pr.To = channel, maskContact(to)
		if cur.Proofing, err = json.Marshal(pr); err != nil {
			return err
		}
		cur.UpdatedAt = now
		if err := tx.UpdateEnrollment(ctx, cur.State, cur); err != nil {
			return err
		}
		recorded, err := putEvidence(ctx, tx, []store.RegistryEvidence{evidence(id, "person", ev)})
		if err != nil {
			return err
		}
		out = cur
		return d.Audit.Append(tx, audit.Event{Actor: "applicant", Action: "enrollment.code.resend", Object: "enrollment/" + id,
			Details: map[string]any{"code_channel": channel, "code_to": pr.To, "codes": pr.Codes, "evidence": recorded}})
	})
	if err != nil {
		return store.Enrollment{}, err
	}
	// The code is committed: a client that goes away does not stop it.
	if err := d.Notifier.Send(context.WithoutCancel(ctx), Message{EnrollmentID: id, To: to, Channel: channel, Code: code}); err != nil {
		r := refuse("notification-failed", "")
		r.Err = fmt.Errorf("enrollment %s: send a new one-time code by %s: %w", id, channel, err) // logged by fail
		return store.Enrollment{}, r
	}
	return out, nil
}

// resendable is e's proofing record if a new code may be sent for it now.
func (s *Service) resendable(e store.Enrollment, now time.Time) (proofing, error) {
	var pr proofing
	if err := awaitingCode(e); err != nil {
		return pr, err
	}
	if !e.ExpiresAt.IsZero() && now.After(e.ExpiresAt) {
		return pr, refuse("enrollment-expired", "")
	}
	if err := json.Unmarshal(e.Proofing, &pr); err != nil {
		return pr, fmt.Errorf("enrollment %s proofing: %w", e.ID, err)
	}
	if max(pr.Codes, 1) >= maxCodes {
		return pr, refuse("codes-exhausted", "%d codes were sent for this enrollment; enroll again", maxCodes)
	}
	last := pr.SentAt
	if last.IsZero() {
		last = pr.CodeUntil.Add(-s.d.Policy.CodeTTL)
	}
	if wait := last.Add(resendInterval).Sub(now); wait > 0 {
		return pr, rateLimited(wait, "a new code may be asked for a minute after the last")
	}
	return pr, nil
}

// issueTimeout bounds an issuance that its request no longer waits for.
// It is well inside the grace Resume leaves an approved enrollment.
const issueTimeout = 30 * time.Second

// issueDetached issues for a request that may go away: an applicant who
// disconnects, or an officer's client that times out, must not leave the
// enrollment approved with its outcome unrecorded, so the issuance keeps
// going without the request's cancellation, bounded by issueTimeout.
func (s *Service) issueDetached(ctx context.Context, e store.Enrollment, actor string, pre *prepared) (store.Enrollment, *x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), issueTimeout)
	defer cancel()
	return s.issue(ctx, e, actor, pre)
}

// Resume finishes enrollments left approved for longer than grace:
// approved and certified (a stop came between the CA's commit and the
// RA's) become issued with that certificate; approved and not certified (a
// stop, or a failure of the CA's own) are issued now. Run it at start-up
// and then periodically; grace leaves alone what another RA node is still
// issuing. It returns how many it finished.
func (s *Service) Resume(ctx context.Context, grace time.Duration) (int, error) {
	d := s.d
	approved, err := d.Store.EnrollmentsInState(ctx, store.StateApproved, 10_000)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	cutoff := d.Now().Add(-grace)
	for _, e := range approved {
		if e.UpdatedAt.After(cutoff) {
			continue
		}
		// One enrollment that cannot be finished does not hold up the
		// others: its error is reported and the next round tries again.
		finished, err := s.resumeOne(ctx, e, cutoff)
		if err != nil {
			errs = append(errs, fmt.Errorf("enrollment %s: %w", e.ID, err))
		}
		if finished {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// resumeOne finishes one enrollment Resume found approved, once this node
// has claimed it (claim), and reports whether it reached issued or failed.
func (s *Service) resumeOne(ctx context.Context, e store.Enrollment, cutoff time.Time) (bool, error) {
	d := s.d
	if claimed, err := s.claim(ctx, e.ID, cutoff); err != nil || !claimed {
		return false, err
	}
	c, err := d.Store.CertificateOfEnrollment(ctx, e.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// An intent still unsigned is an issuance that may yet finish (an
		// HSM slower than the grace, on another node perhaps): issuing
		// again would make a second certificate. The CA's recovery
		// revokes it once it is RecoverGrace old, and the store then
		// refuses to complete it; a later round issues.
		switch inFlight, err := d.Store.IssuanceInFlight(ctx, e.ID); {
		case err != nil:
			return false, err
		case inFlight:
			return false, nil
		}
		out, _, err := s.issueDetached(ctx, e, resumeActor, nil)
		if _, refused := ProblemOf(err); err != nil && !refused {
			return false, err
		}
		return out.State != store.StateApproved, nil // approved: the CA failed again, the next round retries
	case err != nil:
		return false, err
	}
	now := d.Now().UTC()
	renews := renewsOf(e)
	var withdraw, told bool // as in issue
	var out store.Enrollment
	err = s.group.InTx(ctx, func(tx *store.Tx) error {
		withdraw, told = false, false
		cur, err := tx.EnrollmentForUpdate(ctx, e.ID)
		if err != nil {
			return err
		}
		if withdraw, err = renews.withdrawnMeanwhile(ctx, tx); err != nil {
			return err
		}
		// The certificate as it is now: one revoked meanwhile is told of
		// by its revocation notice, not as issued.
		stored, err := tx.Certificate(ctx, c.IssuerID, c.Serial)
		if err != nil {
			return err
		}
		if out, err = move(ctx, tx, cur, store.StateIssued, "", now); err != nil {
			return err
		}
		if !withdraw && stored.Status == store.StatusGood {
			if told, err = s.outcomeEnded(ctx, tx, out, c.Serial); err != nil {
				return err
			}
		}
		return d.Audit.Append(tx, audit.Event{Actor: resumeActor, Action: "enrollment.issue", Object: "enrollment/" + e.ID,
			Details: map[string]any{"serial": hex.EncodeToString(c.Serial), "profile": e.Profile, "resumed": true}})
	})
	if err != nil {
		return false, err
	}
	if withdraw {
		// Should this fail or the node stop, SweepWithdrawn does it.
		if err := s.withdraw(ctx, e.ID, renews, c.Serial); err != nil {
			d.Log.Error("revoking a renewal whose old certificate was revoked meanwhile", "enrollment", e.ID, "err", err)
		}
	}
	if told {
		s.noticeOutcome(ctx, out, c.Serial)
	}
	return true, nil
}

// claim marks an approved enrollment as being finished by this node (its
// updated_at becomes now) unless another node did since it was listed: with
// several RA nodes resuming every minute, one of them issues, never two.
func (s *Service) claim(ctx context.Context, id string, cutoff time.Time) (bool, error) {
	claimed := false
	err := s.group.InTx(ctx, func(tx *store.Tx) error {
		claimed = false
		cur, err := tx.EnrollmentForUpdate(ctx, id)
		if err != nil {
			return err
		}
		if cur.State != store.StateApproved || cur.UpdatedAt.After(cutoff) {
			return nil
		}
		cur.UpdatedAt = s.d.Now().UTC()
		if err := tx.UpdateEnrollment(ctx, cur.State, cur); err != nil {
			return err
		}
		claimed = true
		return nil
	})
	return claimed, err
}

// issue has the CA certify an approved enrollment and records the outcome:
// the enrollment, and its certificate when it was issued. pre, when not
// nil, is the enrollment's issuance whose intent was recorded with its
// approval (proof).
func (s *Service) issue(ctx context.Context, e store.Enrollment, actor string, pre *prepared) (store.Enrollment, *x509.Certificate, error) {
	d := s.d
	var (
		subj store.Subject
		v    profile.Verified
		err  error
	)
	if pre != nil {
		subj, v = pre.subject, pre.verified
	} else if subj, v, err = s.verifiedSubject(ctx, e); err != nil {
		return e, nil, err
	}
	var (
		cert     *x509.Certificate
		issueErr error
		recheck  []store.RegistryEvidence
	)
	// Officers may approve days after the registry was asked: it is asked
	// again, and a subject that died, a business that closed or a
	// representative who lost signing authority since is not certified.
	if d.Policy.Approvals(e.Profile) > 0 {
		recheck, issueErr = s.recheck(ctx, e, subj, v)
	}
	// An enrollment Resume finishes was approved a while ago: the registry
	// may have reported the subject's death or dissolution since. (One
	// issued at its approval is checked once stored, below: a read here
	// would cost every issuance a tenth of a millisecond on SQLite.)
	var endedBy store.RegistryEvent
	if issueErr == nil && actor == resumeActor {
		issueErr = s.checkNotEnded(ctx, e, subj.ID)
	}
	// And an officer who approved it may have been deactivated, or their
	// certificate revoked (a stolen key), since: their approval no longer
	// counts, and without enough that do, the enrollment is not issued.
	if issueErr == nil && actor == resumeActor && d.Policy.Approvals(e.Profile) > 0 {
		issueErr = s.approvalsStand(ctx, e)
	}
	renews := renewsOf(e)
	if issueErr == nil && renews.serial != nil {
		issueErr = renews.check(ctx, d.Store.Certificate)
	}
	var (
		out store.Enrollment
		// withdraw: the certificate a renewal replaces was revoked while
		// the CA signed the new one, which must follow it.
		withdraw bool
		// told: an outcome notice was recorded, to try at once.
		told    bool
		refused bool
		now     time.Time
	)
	// record records the outcome in tx: for a certificate issued, in the
	// CA's own transaction that stores it (ca.Request.Then), so that the
	// enrollment is issued in the same commit; otherwise, and should that
	// fail, in one of the RA's. It may run more than once.
	record := func(ctx context.Context, tx *store.Tx) error {
		withdraw, told, endedBy = false, false, store.RegistryEvent{}
		cur, err := tx.EnrollmentForUpdate(ctx, e.ID)
		if err != nil {
			return err
		}
		if issueErr == nil {
			if withdraw, err = renews.withdrawnMeanwhile(ctx, tx); err != nil {
				return err
			}
		}
		rechecked, err := putEvidence(ctx, tx, recheck)
		if err != nil {
			return err
		}
		withEvidence := func(details map[string]any) map[string]any {
			if len(rechecked) > 0 {
				details["evidence"] = rechecked
			}
			return details
		}
		switch {
		case refused:
			reason := "the CA refused the request: " + issueErr.Error()
			if errors.Is(issueErr, errRegistryChanged) || errors.Is(issueErr, errApprovalsWithdrawn) {
				reason = issueErr.Error()
			}
			if out, err = move(ctx, tx, cur, store.StateFailed, reason, now); err != nil {
				return err
			}
			if told, err = s.outcomeEnded(ctx, tx, out, nil); err != nil {
				return err
			}
			return d.Audit.Append(tx, audit.Event{Actor: actor, Action: "enrollment.fail", Object: "enrollment/" + e.ID,
				Details: withEvidence(map[string]any{"error": issueErr.Error()})})
		case issueErr != nil:
			// A failure of the CA's own (HSM, database, timeout) is not the
			// applicant's: the enrollment stays approved and Resume tries
			// again once a minute has passed, instead of the applicant
			// enrolling again and the officers approving again.
			if cur.State != store.StateApproved {
				return fmt.Errorf("enrollment %s is %s, not approved", e.ID, cur.State)
			}
			cur.StateReason, cur.UpdatedAt = issueRetryReason, now
			if err := tx.UpdateEnrollment(ctx, cur.State, cur); err != nil {
				return err
			}
			out = cur
			return d.Audit.Append(tx, audit.Event{Actor: actor, Action: "enrollment.issue.retry", Object: "enrollment/" + e.ID,
				Details: withEvidence(map[string]any{"error": issueErr.Error()})})
		}
		if out, err = move(ctx, tx, cur, store.StateIssued, "", now); err != nil {
			return err
		}
		// The registry may have reported the subject's death or
		// dissolution while the CA signed: the event's own revocations
		// may have missed a certificate not stored yet. Under the
		// subject's lock, which the event's record takes too (see
		// store.Tx.LockSubject): either this sees the event, or the event
		// sees this certificate.
		if err := tx.LockSubject(ctx, subj.Kind, subj.NationalID); err != nil {
			return err
		}
		switch endedBy, err = tx.SubjectEndedBy(ctx, subj.ID, e.CreatedAt); {
		case errors.Is(err, store.ErrNotFound):
			// Or it came while this enrollment asked the registry, before
			// the subject had a row: it matched no subject then, and is
			// adopted now (pending, for RetryRegistryEvents to carry out).
			if endedBy, err = s.adoptUnmatched(ctx, tx, subj, e, actor); err != nil {
				return err
			}
		case err != nil:
			return err
		case endedBy.Outcome == store.OutcomeApplied:
			// The event was carried through without this certificate:
			// reopened, it is carried on (RetryRegistryEvents) should the
			// revocation below fail or this node stop before it.
			if err := tx.ReopenRegistryEvent(ctx, endedBy.EventID, "", ""); err != nil {
				return err
			}
			if err := d.Audit.Append(tx, audit.Event{Actor: actor, Action: "registry.event.reopen", Object: "registry-event/" + endedBy.EventID,
				Details: map[string]any{"why": "a certificate was issued as it came", "enrollment": e.ID, "serial": hex.EncodeToString(cert.SerialNumber.Bytes())}}); err != nil {
				return err
			}
		}
		// A withdrawn renewal's holder is told of its revocation, not that
		// it was issued. (A revocation at the CA alone in the moments since
		// the CA committed the certificate is told as issued, then by its
		// own notice; resumeOne, which may run hours later, looks.)
		if !withdraw {
			if told, err = s.outcomeEnded(ctx, tx, out, cert.SerialNumber.Bytes()); err != nil {
				return err
			}
		}
		return d.Audit.Append(tx, audit.Event{Actor: actor, Action: "enrollment.issue", Object: "enrollment/" + e.ID,
			Details: withEvidence(map[string]any{"serial": hex.EncodeToString(cert.SerialNumber.Bytes()), "profile": e.Profile})})
	}
	recorded := false
	if issueErr == nil {
		now = d.Now().UTC()
		ran := false // record's last run, in the CA's transaction, succeeded
		req := caRequest(e, subj, v, actor)
		if pre != nil {
			req.Recorded = pre.intent
		}
		req.Then = func(ctx context.Context, tx *store.Tx, issued *x509.Certificate) error {
			cert = issued
			err := record(ctx, tx)
			ran = err == nil
			return err
		}
		cert, issueErr = d.CA.Issue(ctx, req)
		recorded = issueErr == nil && ran
		if errors.Is(issueErr, ca.ErrThen) {
			d.Log.Error("recording an issued certificate with it failed; recording it apart", "enrollment", e.ID, "err", issueErr)
			issueErr = nil
		}
	}
	refused = errors.Is(issueErr, ca.ErrRequest) || errors.Is(issueErr, errRegistryChanged) || errors.Is(issueErr, errRenewsRevoked) || errors.Is(issueErr, errApprovalsWithdrawn)
	if !recorded {
		now = d.Now().UTC()
		if err := s.group.InTx(ctx, func(tx *store.Tx) error { return record(ctx, tx) }); err != nil {
			return e, nil, err
		}
	}
	if withdraw {
		// Should this fail or the node stop, SweepWithdrawn does it.
		if err := s.withdraw(ctx, e.ID, renews, cert.SerialNumber.Bytes()); err != nil {
			d.Log.Error("revoking a renewal whose old certificate was revoked meanwhile", "enrollment", e.ID, "err", err)
		}
	}
	if issueErr == nil && !withdraw && endedBy.EventID != "" {
		if err := s.revokeEnded(ctx, endedBy, cert.SerialNumber.Bytes()); err != nil {
			d.Log.Error("revoking a certificate issued as the registry reported its subject's end", "enrollment", e.ID, "err", err)
		} else {
			d.Log.Warn("certificate revoked at once: the registry reported its subject's end while the CA signed it", "enrollment", e.ID)
		}
	}
	switch {
	case refused:
		// The CA's reason names the verified subject, which is the
		// applicant's to read and the audit record's to keep, not the log's.
		d.Log.Warn("the CA refused an approved enrollment", "enrollment", e.ID)
		if told {
			s.noticeOutcome(ctx, out, nil)
		}
		return out, nil, refuse("issuance-failed", "%s", out.StateReason)
	case issueErr == nil && told:
		s.noticeOutcome(ctx, out, cert.SerialNumber.Bytes())
	case issueErr != nil:
		d.Log.Error("issuance failed; it will be retried", "enrollment", e.ID, "err", issueErr)
		return out, nil, nil
	}
	if withdraw || endedBy.EventID != "" {
		// Revoked (or being revoked) at once: the view reads the
		// certificate's status from the store, not from what was signed.
		return out, nil, nil
	}
	return out, cert, nil
}

// errRegistryChanged is wrapped by a re-check (recheck) that the registry
// no longer confirms.
var errRegistryChanged = errors.New("the registry no longer confirms the enrollment")

// errApprovalsWithdrawn refuses an enrollment whose approvals no longer
// count as many as its profile needs (approvalsStand).
var errApprovalsWithdrawn = errors.New("approvals withdrawn")

// approvalsStand refuses (errApprovalsWithdrawn) an approved enrollment
// whose standing approvals (approvedBy) are fewer than its profile needs.
func (s *Service) approvalsStand(ctx context.Context, e store.Enrollment) error {
	approvals, err := s.d.Store.Approvals(ctx, e.ID)
	if err != nil {
		return err
	}
	deciders, err := s.deciders(ctx, approvals)
	if err != nil {
		return err
	}
	if n, need := len(approvedBy(approvals, deciders)), s.d.Policy.Approvals(e.Profile); n < need {
		var why []string
		for _, dc := range deciders {
			if dc.withdrawn != "" {
				why = append(why, dc.name+": "+dc.withdrawn)
			}
		}
		return fmt.Errorf("%w: %d of the %d approvals needed stand (%s); enroll again", errApprovalsWithdrawn, n, need, strings.Join(why, "; "))
	}
	return nil
}

// registryChangedError is a refusal because the registry no longer
// confirms the enrollment (errRegistryChanged): by a re-check's answer, or
// by its event (checkNotEnded), with the problem type an applicant asking
// now would get for it.
type registryChangedError struct{ problem, detail string }

func (e *registryChangedError) Error() string     { return errRegistryChanged.Error() + ": " + e.detail }
func (e *registryChangedError) Is(err error) bool { return err == errRegistryChanged }

// recheck asks the registry again about an enrollment's subject and the
// person who proved it, and refuses (errRegistryChanged) a person no longer
// alive, a business no longer active, or a representative no longer listed
// with signing authority. The registry's answers are returned as evidence
// for the enrollment; a registry that does not answer is not a refusal
// (the enrollment stays approved and Resume retries).
func (s *Service) recheck(ctx context.Context, e store.Enrollment, subj store.Subject, v profile.Verified) ([]store.RegistryEvidence, error) {
	evidence, _, err := s.recheckPerson(ctx, e, subj, v)
	return evidence, err
}

// provedPerson is the semantics identifier (IDCKZ-…) of the person an
// enrollment proved: the one its code went to (proofing.Person), or, for
// an enrollment from before proofing named them, its subject when that is
// a person (subject reads it only then); "" when it names no person.
func provedPerson(pr proofing, subject func() (store.Subject, error)) (string, error) {
	if pr.Person != "" {
		return pr.Person, nil
	}
	subj, err := subject()
	if err != nil || subj.Kind != "person" {
		return "", err
	}
	return subj.NationalID, nil
}

// recheckPerson is recheck, which also returns the registry's record of the
// person who proved the enrollment (the applicant, or the business's
// representative), with its contact; zero for an enrollment that named no
// person.
func (s *Service) recheckPerson(ctx context.Context, e store.Enrollment, subj store.Subject, v profile.Verified) ([]store.RegistryEvidence, registry.Person, error) {
	var (
		pr      proofing
		out     []store.RegistryEvidence
		contact registry.Person
	)
	if err := json.Unmarshal(e.Proofing, &pr); err != nil {
		return nil, contact, fmt.Errorf("enrollment %s proofing: %w", e.ID, err)
	}
	record := func(kind string, ev registry.Evidence) { out = append(out, evidence(e.ID, kind, ev)) }
	changed := func(problem, format string, args ...any) error {
		return &registryChangedError{problem: problem, detail: fmt.Sprintf(format, args...)}
	}
	person, _ := provedPerson(pr, func() (store.Subject, error) { return subj, nil })
	if _, country, pid, ok := parseSemanticsID(person); ok {
		rec, ev, err := s.d.Registry.Person(ctx, country, pid)
		if errors.Is(err, registry.ErrNotFound) {
			return out, contact, changed("not-in-registry", "the registry no longer has the person")
		}
		if err != nil {
			return nil, contact, fmt.Errorf("registry re-check of %s: %w", e.ID, err)
		}
		record("person", ev)
		contact = rec
		if !rec.Alive {
			return out, contact, changed("subject-deceased", "the registry records the person as deceased")
		}
		if subj.Kind == "person" && (!sameName(rec.GivenName, v.GivenName) || !sameName(rec.FamilyName, v.FamilyName)) {
			return out, contact, changed("registry-mismatch", "the registry's name for the person changed since the enrollment")
		}
	}
	if subj.Kind == "business" {
		_, country, reg, ok := parseSemanticsID(subj.NationalID)
		if !ok {
			return nil, contact, fmt.Errorf("subject %s: identifier %q", subj.ID, subj.NationalID)
		}
		biz, ev, err := s.d.Registry.Business(ctx, country, reg)
		if errors.Is(err, registry.ErrNotFound) {
			return out, contact, changed("not-in-registry", "the registry no longer has the business")
		}
		if err != nil {
			return nil, contact, fmt.Errorf("registry re-check of %s: %w", e.ID, err)
		}
		record("business", ev)
		if !biz.Active {
			return out, contact, changed("business-inactive", "the registry records the business as inactive")
		}
		if v.OrganizationName != "" && !sameName(biz.Name, v.OrganizationName) {
			return out, contact, changed("registry-mismatch", "the registry's name for the business changed since the enrollment")
		}
		if _, pc, pid, ok := parseSemanticsID(pr.Person); ok {
			signs := false
			for _, r := range biz.Representatives {
				signs = signs || r.Country == pc && r.NationalID == pid && r.CanSign
			}
			if !signs {
				return out, contact, changed("not-a-representative", "the registry no longer lists the representative with signing authority")
			}
		}
	}
	return out, contact, nil
}

// issueRetryReason is what an approved enrollment whose issuance failed on
// the CA's side, or whose re-check found no registry, tells its applicant.
const issueRetryReason = "the certificate could not be issued yet (the CA or the national registry did not answer); the RA will try again"

// View is an enrollment as its applicant sees it.
type View struct {
	ID          string   `json:"id"`
	State       string   `json:"state"`
	Profile     string   `json:"profile"`
	Reasons     []string `json:"reasons,omitempty"`
	Certificate string   `json:"certificate,omitempty"` // PEM, once issued
	Serial      string   `json:"serial,omitempty"`      // hex, as openssl x509 -serial prints it
	// Chain is the certificate of the issuing CA that signed Certificate
	// (PEM), for the holder to send with it: signing software and TLS
	// clients need it, and relying parties trust the root.
	Chain string `json:"chain,omitempty"`
	// Renews is the certificate a renewal replaces: its issuing CA's id and
	// serial, "issuing/0A1B…" (Service.Renew).
	Renews string `json:"renews,omitempty"`
	// CertificateStatus is the issued certificate's status in the CA's
	// records, good or revoked; a revoked one's RevokedAt and
	// RevocationReason (RFC 5280's name) say when and why. The enrollment
	// stays issued.
	CertificateStatus string            `json:"certificate_status,omitempty"`
	RevokedAt         time.Time         `json:"revoked_at,omitzero"`
	RevocationReason  string            `json:"revocation_reason,omitempty"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
	ExpiresAt         time.Time         `json:"expires_at,omitzero"`
	Links             map[string]string `json:"links"`
}

// offered are the end-entity profiles the RA's policy enrolls for, sorted.
func (s *Service) offered() []string {
	var names []string
	for name := range s.d.Policy.Approval {
		if p, ok := s.d.Profiles[name]; ok && p.SubjectKind != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Get returns the applicant's view of an enrollment.
func (s *Service) Get(ctx context.Context, id string) (View, error) {
	e, err := s.d.Store.Enrollment(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return View{}, refuse("not-found", "")
	}
	if err != nil {
		return View{}, err
	}
	return s.view(ctx, e)
}

func (s *Service) view(ctx context.Context, e store.Enrollment) (View, error) {
	return s.viewIssued(ctx, e, nil)
}

// viewIssued is view with the certificate of an issued enrollment when the
// caller has it in hand, or nil to read it.
func (s *Service) viewIssued(ctx context.Context, e store.Enrollment, in *issuedCertificate) (View, error) {
	v := View{ID: e.ID, State: e.State, Profile: e.Profile, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt,
		Links: map[string]string{"self": "/api/v1/enrollments/" + e.ID}}
	if e.StateReason != "" {
		v.Reasons = append(v.Reasons, e.StateReason)
	}
	var pr proofing
	proofed := json.Unmarshal(e.Proofing, &pr) == nil
	v.Renews = pr.Renews
	switch e.State {
	case store.StatePendingProof:
		v.ExpiresAt = e.ExpiresAt
		v.Links["proof"] = "/api/v1/enrollments/" + e.ID + "/proof"
		v.Links["code"] = "/api/v1/enrollments/" + e.ID + "/code"
		if proofed {
			v.Reasons = append(v.Reasons, fmt.Sprintf("waiting for the one-time code sent by %s to %s", pr.Channel, pr.To))
		}
	case store.StatePendingApproval:
		v.ExpiresAt = e.ExpiresAt
		need := s.d.Policy.Approvals(e.Profile)
		reason := fmt.Sprintf("waiting for approval by %d RA officer(s)", need)
		if need > 1 {
			// Once some have approved, how many more: a business seal's
			// applicant (and its second officer) should not read that
			// nothing happened yet.
			approvals, err := s.d.Store.Approvals(ctx, e.ID)
			if err != nil {
				return View{}, err
			}
			deciders, err := s.deciders(ctx, approvals)
			if err != nil {
				return View{}, err
			}
			if n := len(approvedBy(approvals, deciders)); n > 0 {
				reason = fmt.Sprintf("waiting for approval by %d more RA officer(s): %d of %d approved", need-n, n, need)
			}
		}
		v.Reasons = append(v.Reasons, reason)
	case store.StateIssued:
		if in == nil {
			c, err := s.d.Store.CertificateOfEnrollment(ctx, e.ID)
			if err != nil {
				return View{}, err
			}
			in = storedCertificate(c)
		}
		v.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: in.der}))
		v.Serial = strings.ToUpper(hex.EncodeToString(in.serial))
		if issuer, ok := s.d.Issuers[in.issuerID]; ok {
			v.Chain = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuer.Raw}))
		}
		v.Links["certificate"] = "/api/v1/certificates/" + v.Serial
		v.CertificateStatus = in.status
		if in.status == store.StatusRevoked {
			v.RevokedAt, v.RevocationReason = in.revokedAt, profile.ReasonName(in.reason)
		}
	}
	return v, nil
}

// issuedCertificate is what an issued enrollment's view shows of its
// certificate: the DER, the serial, the issuing CA's id, and its status
// (store.StatusGood or StatusRevoked, with when and why).
type issuedCertificate struct {
	der, serial []byte
	issuerID    string
	status      string
	revokedAt   time.Time
	reason      int
}

// storedCertificate is c, as the store holds it, for a view.
func storedCertificate(c store.Certificate) *issuedCertificate {
	return &issuedCertificate{der: c.DER, serial: c.Serial, issuerID: c.IssuerID, status: c.Status, revokedAt: c.RevokedAt, reason: c.Reason}
}

// justIssued is cert, which the CA just returned, for a view; nil for none.
func (s *Service) justIssued(cert *x509.Certificate) *issuedCertificate {
	if cert == nil {
		return nil
	}
	return &issuedCertificate{der: cert.Raw, serial: cert.SerialNumber.Bytes(), issuerID: s.signedBy(cert), status: store.StatusGood}
}

// signedBy is the id of the issuing CA that signed cert, a certificate
// this CA just returned: the one whose subject and key identifier cert
// names as its issuer's, or, should several (or none with a key
// identifier) match, the one issuerOf finds by the signature; "" when none
// of this RA's issuing CAs did.
func (s *Service) signedBy(cert *x509.Certificate) string {
	match := ""
	for id, issuer := range s.d.Issuers {
		if bytes.Equal(cert.RawIssuer, issuer.RawSubject) && len(cert.AuthorityKeyId) > 0 && bytes.Equal(cert.AuthorityKeyId, issuer.SubjectKeyId) {
			if match != "" {
				return s.issuerOf(cert)
			}
			match = id
		}
	}
	if match == "" {
		return s.issuerOf(cert)
	}
	return match
}

// newID makes an enrollment ID made at now: 16 bytes, URL-safe base64 (22
// characters). The first 6 bytes are now in Unix milliseconds, the other
// 10 random: 80 bits, beyond guessing even for someone who knows when the
// enrollment was made.
//
// The time comes first so that IDs made together share their first
// characters and sort next to each other (base64's alphabet is not in
// ASCII order, so the order is not the time's, only nearly): an
// enrollment's rows keyed by its ID (the enrollments, registry_evidence and
// certificates indexes, and audit_events_object for its events) go into
// the index pages of the enrollments made just before it, instead of one
// random page each. With random IDs those five indexes took about a third
// of the pages each commit wrote to the SQLite WAL; on PostgreSQL, random
// keys cost a full-page image per index page touched after a checkpoint.
//
// An ID never starts with "-" (a CLI would read it as flags): the first
// character holds the top 6 bits of the time, which are 0 ("A") until 2109
// and reach "-" (62) only in the year 10 600.
func newID(now time.Time) (string, error) {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(max(now.UnixMilli(), 0))<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// newCode is a uniformly random 6-digit code.
func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// codeHash is how a new code is stored: HMAC-SHA256 under CodeKey,
// prefixed with its scheme, or without a key the plain SHA-256 of before.
func (s *Service) codeHash(enrollmentID, code string) string {
	sum := hex.EncodeToString(s.keyedSum(codeMessage(enrollmentID, code)))
	if s.d.CodeKey == nil {
		return sum
	}
	return codeSchemeHMAC + sum
}

// keyedSum is the HMAC-SHA256 of msg under CodeKey, or its plain SHA-256
// without one: how the RA keeps what names a person (a code, a rate-limit
// bucket) in the database.
func (s *Service) keyedSum(msg []byte) []byte {
	if s.d.CodeKey == nil {
		sum := sha256.Sum256(msg)
		return sum[:]
	}
	m := hmac.New(sha256.New, s.d.CodeKey)
	m.Write(msg)
	return m.Sum(nil)
}

// codeSchemeHMAC prefixes a code stored under CodeKey.
const codeSchemeHMAC = "hmac-sha256:"

// codeHashAs hashes a code given for checking by the scheme of the stored
// hash, so that codes sent before a key was configured still work. A node
// without the key a code was stored under cannot check it: that is the
// deployment's fault (ra.code_key_file missing on one node), never a wrong
// attempt of the applicant's.
func (s *Service) codeHashAs(stored, enrollmentID, code string) (string, error) {
	switch {
	case !strings.HasPrefix(stored, codeSchemeHMAC):
		return plainCodeHash(enrollmentID, code), nil
	case s.d.CodeKey == nil:
		return "", errors.New("the code was stored under ra.code_key_file, which this RA node does not have")
	}
	return s.codeHash(enrollmentID, code), nil
}

func plainCodeHash(enrollmentID, code string) string {
	sum := sha256.Sum256(codeMessage(enrollmentID, code))
	return hex.EncodeToString(sum[:])
}

func codeMessage(enrollmentID, code string) []byte {
	return []byte("sanad-otp-v1\x00" + enrollmentID + "\x00" + code)
}

// checkIdempotencyKey: 1 to 128 printable ASCII characters.
func checkIdempotencyKey(k string) error {
	if len(k) > 128 {
		return refuse("invalid-request", "Idempotency-Key is longer than 128 characters")
	}
	for _, r := range k {
		if r < 0x21 || r > 0x7e {
			return refuse("invalid-request", "Idempotency-Key must be printable ASCII")
		}
	}
	return nil
}

// maskID keeps the first four and last two characters of an identifier
// for logs; the audit record keeps it whole.
func maskID(id string) string {
	if utf8.RuneCountInString(id) <= 6 {
		return strings.Repeat("*", len(id))
	}
	return id[:4] + strings.Repeat("*", len(id)-6) + id[len(id)-2:]
}

// maskContact shows an applicant where the code went without revealing
// the whole contact: +7 *** ** 45, a***@example.kz.
func maskContact(to string) string {
	if at := strings.IndexByte(to, '@'); at > 0 {
		return to[:1] + "***" + to[at:]
	}
	digits := 0
	out := []rune(to)
	for i := len(out) - 1; i >= 0; i-- {
		if unicode.IsDigit(out[i]) {
			digits++
			if digits > 2 && i > 2 {
				out[i] = '*'
			}
		}
	}
	return string(out)
}
