package ra

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"

	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/ra/idnum"
	"github.com/sanadpki/sanad/ra/registry"
)

// A national registry tells the RA, as they happen, of what ends the
// identities it vouched for (DESIGN §4, POST /api/v1/registry/events): a
// person's death, a business's dissolution, a representative losing the
// authority to sign for a business. Each event is a compact JWS (RFC 7515)
// signed by one of the registry's keys (Deps.RegistryKeys, config
// ra.registry_event_keys_file), whose payload is one JSON object:
//
//	{"event_id": "…", "kind": "death", "country": "KZ", "national_id": "…",
//	 "occurred_at": "2026-11-30T09:00:00Z"}
//	{"event_id": "…", "kind": "dissolution", "country": "PK", "registration_number": "…", …}
//	{"event_id": "…", "kind": "authority_change", "country": "KZ", "registration_number": "…",
//	 "representative": {"country": "KZ", "national_id": "…"}, …}
//
// A key may be limited to the countries whose registry holds it (a
// Countries header in its PEM block); event ids are the registry's, so
// they are scoped by country: KZ's event 1001 is not PK's.
//
// What the RA does, in this order, each step audited:
//   - records the event as received (registry_events, the JWS as sent;
//     audit registry.event);
//   - rejects the open enrollments (pending_proof, pending_approval) the
//     event ends: for a death, the person's own; for a dissolution, the
//     business's; for an authority change, the business's that the
//     representative proved (audit enrollment.reject, with the event's id).
//     A business enrollment a person now dead proved is refused when the
//     officers approve it, by the registry's answer then (issue's recheck);
//   - for a death or a dissolution, revokes every certificate issued to the
//     subject that is still good and was asked for before the event came,
//     reason cessationOfOperation (RFC 5280 §5.3.1: the subject no longer
//     exists; nothing suggests a compromised key), and tells the registry's
//     contact as every revocation is told (audit certificate.revoke by the
//     CA, its actor naming the event);
//   - records the outcome (audit registry.event.applied, or .ignored when
//     no subject of this RA has the identifier).
//
// An authority change revokes nothing: business certificates name the
// business, which still exists, and its remaining representatives decide
// on them.
//
// Issuance and events meet in two places. An enrollment left approved when
// the event arrives (the CA was down) is not issued: Resume's issue asks,
// before the CA signs, whether the subject's death or dissolution, or the
// death of the person who proved it, was reported since the enrollment was
// made, and fails it. Any other issuance asks in the transaction that
// records it; a certificate the CA signed as the event came is then
// revoked at once, and the event, if it was already applied, reopened, so
// that RetryRegistryEvents revokes it should that fail.
//
// An event counts only against what was asked for before it came: an
// enrollment made after it found the subject in the registry again, so the
// report was a mistake the registry has corrected.
//
// Events are idempotent by country and event_id: a second delivery of an
// event that was applied answers what the first did, unless a certificate
// it revokes is still good (it is then reopened and carried on); one whose
// first delivery did not finish (a revocation the CA could not make)
// carries on from where it stopped, since every step skips what is done, as
// does RetryRegistryEvents, every minute, for the events left pending; one
// that failed (no key verified it any more) is carried on by a delivery
// that verifies. The same id with another event is refused.

// RegistryEvent is the payload of a signed registry event.
type RegistryEvent struct {
	EventID            string       `json:"event_id"`
	Kind               string       `json:"kind"`
	Country            string       `json:"country"`
	NationalID         string       `json:"national_id,omitempty"`
	RegistrationNumber string       `json:"registration_number,omitempty"`
	Representative     *EventPerson `json:"representative,omitempty"`
	OccurredAt         time.Time    `json:"occurred_at"`
}

// EventPerson names a person in a registry event.
type EventPerson struct {
	Country    string `json:"country"`
	NationalID string `json:"national_id"`
}

// same reports whether two events say the same thing, however their JSON
// was spelled.
func (ev RegistryEvent) same(o RegistryEvent) bool {
	a, b := ev, o
	a.OccurredAt, b.OccurredAt = time.Time{}, time.Time{}
	if (a.Representative == nil) != (b.Representative == nil) || (a.Representative != nil && *a.Representative != *b.Representative) {
		return false
	}
	a.Representative, b.Representative = nil, nil
	return a == b && ev.OccurredAt.Equal(o.OccurredAt)
}

// storedID is the event's key in registry_events: its id is the
// registry's, so it is scoped by country.
func (ev RegistryEvent) storedID() string { return ev.Country + "/" + ev.EventID }

// RegistryEventResult is what the RA did about an event, the answer to
// POST /api/v1/registry/events.
type RegistryEventResult struct {
	EventID string `json:"event_id"`
	Country string `json:"country"`
	Kind    string `json:"kind"`
	// Outcome is applied, or ignored when no subject here has the
	// identifier.
	Outcome string `json:"outcome"`
	// Subject is the semantics identifier of the person or business the
	// event concerns (IDCKZ-…, NTRPK-…).
	Subject string `json:"subject"`
	// Revoked are the serials (hex, as openssl prints them) this event
	// revoked; Ended the enrollments it rejected.
	Revoked    []string  `json:"revoked"`
	Ended      []string  `json:"ended_enrollments"`
	ReceivedAt time.Time `json:"received_at"`
	DecidedAt  time.Time `json:"decided_at"`
	// Repeated is set when the event had been received before: this is
	// what the first delivery did.
	Repeated bool `json:"repeated,omitempty"`
}

// RegistryKey is a public key registry events are signed with.
type RegistryKey struct {
	// Name is how events signed with this key name their source:
	// "registry:" and the first 16 hex digits of the key's SPKI SHA-256.
	Name string
	Key  crypto.PublicKey
	// Countries are those whose events the key may sign; none: any.
	Countries []string
	// NotBefore and NotAfter bound, for a key given as a certificate, the
	// events it may sign: those received within its validity (checked at
	// every event, not only when the keys are read at start). Zero for a
	// bare public key.
	NotBefore, NotAfter time.Time
}

// eventIDPattern is what an event id may look like: what registries use
// (UUIDs, sequence numbers, URNs), nothing that needs escaping anywhere.
var eventIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// eventSkew is how far in the future an event may say it occurred: the
// registry's clock and ours disagree a little.
const eventSkew = 5 * time.Minute

// eventAlgorithms are the signature algorithms a registry event may use.
var eventAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.PS256, jose.EdDSA}

// ParseRegistryKeys reads the PEM public keys (PUBLIC KEY) and
// certificates (CERTIFICATE, whose key is taken; it must be valid at now)
// of a registry's event signers. A block may carry a header
// "Countries: KZ" (or "KZ, PK") limiting the key to those countries'
// events. Anything else in the file is an error, as is no key at all, or
// a key no accepted algorithm signs with.
func ParseRegistryKeys(pemData []byte, now time.Time) ([]RegistryKey, error) {
	var keys []RegistryKey
	rest := pemData
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n := len(keys) + 1
		var der []byte
		var notBefore, notAfter time.Time
		switch block.Type {
		case "PUBLIC KEY":
			der = block.Bytes
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("registry key %d: %w", n, err)
			}
			if now.Before(c.NotBefore) || now.After(c.NotAfter) {
				return nil, fmt.Errorf("registry key %d: the certificate is valid from %s to %s, not now", n, c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
			}
			der, notBefore, notAfter = c.RawSubjectPublicKeyInfo, c.NotBefore, c.NotAfter
		default:
			return nil, fmt.Errorf("registry key %d: a %s block, not PUBLIC KEY or CERTIFICATE", n, block.Type)
		}
		k, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("registry key %d: %w", n, err)
		}
		if rk, ok := k.(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
			return nil, fmt.Errorf("registry key %d: RSA key of %d bits, fewer than 2048", n, rk.N.BitLen())
		}
		if eventAlgorithm(k) == "" {
			return nil, fmt.Errorf("registry key %d: no accepted algorithm signs with a %T key of this kind", n, k)
		}
		var countries []string
		for h, v := range block.Headers {
			if h != "Countries" {
				return nil, fmt.Errorf("registry key %d: header %q (only Countries is read)", n, h)
			}
			for c := range strings.SplitSeq(v, ",") {
				c = strings.TrimSpace(c)
				if !countryCode.MatchString(c) {
					return nil, fmt.Errorf("registry key %d: Countries: %q is not an ISO 3166-1 alpha-2 code", n, c)
				}
				countries = append(countries, c)
			}
		}
		sum := sha256.Sum256(der)
		keys = append(keys, RegistryKey{Name: "registry:" + hex.EncodeToString(sum[:8]), Key: k, Countries: countries, NotBefore: notBefore, NotAfter: notAfter})
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("registry keys: text that is not a PEM block")
	}
	if len(keys) == 0 {
		return nil, errors.New("registry keys: no PUBLIC KEY or CERTIFICATE block")
	}
	return keys, nil
}

// ParseRegistryEvent verifies a compact JWS with keys and reads its
// payload as a RegistryEvent. It returns the key's name with the event.
// Refusals are *Error: invalid-event for what the registry got wrong,
// unauthorized for a signature none of keys made, or a key that does not
// speak for the event's country.
func ParseRegistryEvent(compact string, keys []RegistryKey, now time.Time) (RegistryEvent, string, error) {
	compact = strings.TrimSpace(compact)
	if len(compact) > MaxJWSBytes {
		return RegistryEvent{}, "", refuse("invalid-event", "the event is %d bytes; at most %d", len(compact), MaxJWSBytes)
	}
	obj, err := jose.ParseSignedCompact(compact, eventAlgorithms)
	if err != nil {
		return RegistryEvent{}, "", refuse("invalid-event", "not a compact JWS with an accepted algorithm: %v", err)
	}
	if len(obj.Signatures) != 1 {
		return RegistryEvent{}, "", refuse("invalid-event", "exactly one signature is accepted")
	}
	var (
		payload []byte
		signer  *RegistryKey
	)
	expired := false
	for i, k := range keys {
		if p, err := obj.Verify(k.Key); err == nil {
			if (!k.NotBefore.IsZero() && now.Before(k.NotBefore)) || (!k.NotAfter.IsZero() && now.After(k.NotAfter)) {
				expired = true // a key's certificate out of its validity signs nothing now
				continue
			}
			payload, signer = p, &keys[i]
			break
		}
	}
	if signer == nil && expired {
		return RegistryEvent{}, "", refuse("unauthorized", "the event is signed by a registry key whose certificate is not valid at %s", now.Format(time.RFC3339))
	}
	if signer == nil {
		return RegistryEvent{}, "", refuse("unauthorized", "the event is not signed by a registry key this RA trusts")
	}
	ev, err := decodeRegistryEvent(payload, now)
	if err != nil {
		return RegistryEvent{}, "", err
	}
	if len(signer.Countries) > 0 && !slices.Contains(signer.Countries, ev.Country) {
		return RegistryEvent{}, "", refuse("unauthorized", "the key that signed the event speaks for %s, not %s", strings.Join(signer.Countries, ", "), ev.Country)
	}
	return ev, signer.Name, nil
}

// SignRegistryEvent signs ev as a national registry would, with the
// algorithm signer's key calls for (ES256, ES384 or ES512 by curve, PS256
// for RSA, EdDSA for Ed25519), and checks the result as the RA would at now.
func SignRegistryEvent(ev RegistryEvent, signer crypto.Signer, now time.Time) (string, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return "", err
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: eventAlgorithm(signer.Public()), Key: cryptosigner.Opaque(signer)}, nil)
	if err != nil {
		return "", fmt.Errorf("sign registry event: %w", err)
	}
	obj, err := js.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign registry event: %w", err)
	}
	compact, err := obj.CompactSerialize()
	if err != nil {
		return "", err
	}
	if _, _, err := ParseRegistryEvent(compact, []RegistryKey{{Name: "self", Key: signer.Public()}}, now); err != nil {
		return "", fmt.Errorf("sign registry event: %w", err)
	}
	return compact, nil
}

// eventAlgorithm is the JWS algorithm for a key; "" for a key no event
// may be signed with.
func eventAlgorithm(pub crypto.PublicKey) jose.SignatureAlgorithm {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return map[int]jose.SignatureAlgorithm{256: jose.ES256, 384: jose.ES384, 521: jose.ES512}[k.Curve.Params().BitSize]
	case *rsa.PublicKey:
		return jose.PS256
	case ed25519.PublicKey:
		return jose.EdDSA
	}
	return ""
}

// subjectKind is the kind of subject (store.Subject.Kind) an event is
// about: a death a person's, the others a business's.
func (ev RegistryEvent) subjectKind() string {
	if ev.Kind == store.EventDeath {
		return "person"
	}
	return "business"
}

// endKind is the kind of event that ends a subject of kind (store.Subject.
// Kind): a person's death, a business's dissolution; subjectKind's inverse
// for the events that end a subject.
func endKind(subjectKind string) string {
	if subjectKind == "person" {
		return store.EventDeath
	}
	return store.EventDissolution
}

// subjectKeys are the semantics identifiers an event concerns: its
// subject's, and for an authority change the representative's. The
// identifiers are checked and put in canonical form as at enrollment.
func (ev RegistryEvent) subjectKeys() (subject, representative string, err error) {
	checker, err := idnum.For(ev.Country)
	if err != nil {
		return "", "", identifierErr(err)
	}
	if ev.Kind == store.EventDeath {
		id, err := checker.Person(ev.NationalID, time.Time{})
		if err != nil {
			return "", "", identifierErr(err)
		}
		return semanticsID("IDC", ev.Country, id), "", nil
	}
	reg, err := checker.Business(ev.RegistrationNumber)
	if err != nil {
		return "", "", identifierErr(err)
	}
	subject = semanticsID("NTR", ev.Country, reg)
	if r := ev.Representative; r != nil {
		rc, err := idnum.For(r.Country)
		if err != nil {
			return "", "", identifierErr(err)
		}
		id, err := rc.Person(r.NationalID, time.Time{})
		if err != nil {
			return "", "", identifierErr(err)
		}
		representative = semanticsID("IDC", r.Country, id)
	}
	return subject, representative, nil
}

// reasonCessationOfOperation is RFC 5280's cessationOfOperation.
const reasonCessationOfOperation = 5

// decodeRegistryEvent reads and checks a verified payload, as strictly as
// any request to the RA (decodeStrict: one object, UTF-8, no member twice
// or in another case, no unknown member).
func decodeRegistryEvent(payload []byte, now time.Time) (RegistryEvent, error) {
	bad := func(format string, args ...any) (RegistryEvent, error) {
		return RegistryEvent{}, refuse("invalid-event", format, args...)
	}
	var ev RegistryEvent
	if err := decodeStrict(payload, &ev); err != nil {
		if e, ok := ProblemOf(err); ok {
			return bad("%s", e.Detail)
		}
		return RegistryEvent{}, err
	}
	if !eventIDPattern.MatchString(ev.EventID) {
		return bad("event_id must be 1 to 128 letters, digits and . _ : - (starting with a letter or digit)")
	}
	if strings.HasPrefix(ev.EventID, recheckPrefix) {
		return bad("event ids starting %q are the RA's own (sanad registry recheck)", recheckPrefix)
	}
	if ev.OccurredAt.IsZero() {
		return bad("occurred_at is required")
	}
	if ev.OccurredAt.After(now.Add(eventSkew)) {
		return bad("occurred_at %s is in the future", ev.OccurredAt.Format(time.RFC3339))
	}
	want := map[string][3]bool{ // national_id, registration_number, representative
		store.EventDeath:           {true, false, false},
		store.EventDissolution:     {false, true, false},
		store.EventAuthorityChange: {false, true, true},
	}
	w, ok := want[ev.Kind]
	if !ok {
		return bad("kind %q is not death, dissolution or authority_change", ev.Kind)
	}
	if got := [3]bool{ev.NationalID != "", ev.RegistrationNumber != "", ev.Representative != nil}; got != w {
		names := []string{"national_id", "registration_number", "representative"}
		var need []string
		for i, b := range w {
			if b {
				need = append(need, names[i])
			}
		}
		return bad("a %s event names exactly %s", ev.Kind, strings.Join(need, " and "))
	}
	return ev, nil
}

// eventTimeout bounds the work one event makes: once recorded, the event is
// carried through even if the registry hangs up.
const eventTimeout = 2 * time.Minute

// ApplyRegistryEvent verifies a signed registry event and acts on it (see
// the top of this file). A second delivery answers what the first did.
func (s *Service) ApplyRegistryEvent(ctx context.Context, compact string) (RegistryEventResult, error) {
	d := s.d
	if len(d.RegistryKeys) == 0 {
		return RegistryEventResult{}, refuse("registry-events-off", "")
	}
	ev, source, err := ParseRegistryEvent(compact, d.RegistryKeys, d.Now().UTC())
	if err != nil {
		return RegistryEventResult{}, err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
	defer cancel()
	return s.applyEvent(ctx, ev, source, strings.TrimSpace(compact))
}

// RetryRegistryEvents carries on the events left pending for more than a
// minute (a revocation the CA could not make, a node stopped midway), from
// their recorded JWS (or a recheck's record), and returns how many it
// finished. An event whose JWS no key verifies any more (the registry's key
// was withdrawn since) is ended as failed, for an operator to look at, and
// carried on by a delivery that verifies; a node with no registry keys
// leaves the signed ones to a node that has some.
func (s *Service) RetryRegistryEvents(ctx context.Context) (int, error) {
	d := s.d
	now := d.Now().UTC()
	s.retryMu.Lock()
	defer s.retryMu.Unlock()
	pending, err := d.Store.RegistryEvents(ctx, s.retryFrom, true, retryPage)
	if err != nil {
		return 0, err
	}
	// The next call takes the page after this one (from its last receipt,
	// which it may carry on once more), or starts again from the oldest.
	s.retryFrom = time.Time{}
	if len(pending) == retryPage && pending[len(pending)-1].ReceivedAt.After(pending[0].ReceivedAt) {
		s.retryFrom = pending[len(pending)-1].ReceivedAt
	}
	n := 0
	var errs []error
	for _, rec := range pending {
		if rec.ReceivedAt.After(now.Add(-time.Minute)) {
			continue // a delivery may still be at work on it
		}
		var (
			ev       RegistryEvent
			source   = rec.Source
			parseErr error
		)
		if strings.HasPrefix(rec.Payload, "{") {
			// A recheck's: the registry's answer, checked when it came.
			var ok bool
			if ev, ok = recordedEvent(rec.Payload); !ok {
				parseErr = errors.New("the recheck's record does not read")
			}
		} else if len(d.RegistryKeys) == 0 {
			continue // a node that takes no events leaves them to one that does
		} else {
			ev, source, parseErr = ParseRegistryEvent(rec.Payload, d.RegistryKeys, rec.ReceivedAt)
		}
		if parseErr != nil {
			detail, _ := json.Marshal(map[string]string{"error": parseErr.Error()})
			err := s.group.InTx(ctx, func(tx *store.Tx) error {
				if err := tx.EndRegistryEvent(ctx, rec.EventID, store.OutcomeFailed, string(detail), now); err != nil {
					return err
				}
				return d.Audit.Append(tx, audit.Event{Actor: "system:registry", Action: "registry.event.failed", Object: "registry-event/" + rec.EventID,
					Details: map[string]any{"error": parseErr.Error()}})
			})
			errs = append(errs, fmt.Errorf("registry event %s no longer verifies, ended as failed: %w", rec.EventID, errors.Join(parseErr, err)))
			continue
		}
		if _, err := s.applyEvent(ctx, ev, source, rec.Payload); err != nil {
			errs = append(errs, fmt.Errorf("registry event %s: %w", rec.EventID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// retryPage is how many pending events one RetryRegistryEvents call takes.
const retryPage = 100

// applyEvent records ev (signed by source, as payload) and does what it
// says, or carries on an earlier delivery that did not finish.
func (s *Service) applyEvent(ctx context.Context, ev RegistryEvent, source, payload string) (RegistryEventResult, error) {
	d := s.d
	now := d.Now().UTC()
	subjectKey, repKey, err := ev.subjectKeys()
	if err != nil {
		return RegistryEventResult{}, err
	}
	var subjectID string
	id := ev.storedID()
	actor := source
	res := RegistryEventResult{EventID: ev.EventID, Country: ev.Country, Kind: ev.Kind, Subject: subjectKey, Revoked: []string{}, Ended: []string{}, ReceivedAt: now}
	details := func(more map[string]any) map[string]any {
		m := map[string]any{"event_id": ev.EventID, "country": ev.Country, "kind": ev.Kind, "subject": subjectKey, "source": source}
		if repKey != "" {
			m["representative"] = repKey
		}
		for k, v := range more {
			m[k] = v
		}
		return m
	}

	// Record the event, or find the first delivery's record. Whether the
	// subject exists is read under the subject's lock (see
	// store.Tx.LockSubject), which a certificate's issuance takes too:
	// either it sees this event, or this event sees its subject and its
	// certificate.
	err = s.group.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.LockSubject(ctx, ev.subjectKind(), subjectKey); err != nil {
			return err
		}
		switch subj, err := tx.SubjectByNationalID(ctx, ev.subjectKind(), subjectKey); {
		case err == nil:
			subjectID = subj.ID
		case errors.Is(err, store.ErrNotFound):
			subjectID = ""
		default:
			return err
		}
		err := tx.InsertRegistryEvent(ctx, store.RegistryEvent{EventID: id, Source: source, SubjectID: subjectID, SubjectKey: subjectKey,
			Kind: ev.Kind, OccurredAt: ev.OccurredAt, ReceivedAt: now, Payload: payload, Outcome: store.OutcomePending})
		if err != nil {
			return err // ErrConflict: received before, read below
		}
		return d.Audit.Append(tx, audit.Event{Actor: actor, Action: "registry.event", Object: "registry-event/" + id,
			Details: details(map[string]any{"occurred_at": ev.OccurredAt, "known_subject": subjectID != ""})})
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return RegistryEventResult{}, err
	}
	if err != nil {
		first, err := d.Store.RegistryEvent(ctx, id)
		if err != nil {
			return RegistryEventResult{}, err
		}
		if !sameEvent(first.Payload, ev) {
			return RegistryEventResult{}, refuse("event-conflict", "event %s of %s was received before with another content", ev.EventID, ev.Country)
		}
		if first.SubjectID != "" {
			subjectID = first.SubjectID
		}
		// An event that failed (no key verified it any more) is carried on
		// now that a delivery verifies; one applied, if a certificate it
		// should have revoked is still good (issued as it came, and not
		// revoked then: see issue).
		reopen := ""
		switch {
		case first.Outcome == store.OutcomeFailed:
			reopen = "a delivery verifies again"
		case first.Outcome == store.OutcomeApplied && ev.Kind != store.EventAuthorityChange && subjectID != "":
			left, err := s.stillGood(ctx, subjectID, first.ReceivedAt, d.Store)
			if err != nil {
				return RegistryEventResult{}, err
			}
			if left > 0 {
				reopen = fmt.Sprintf("%d certificates it revokes are still good", left)
			}
		}
		if reopen != "" {
			err := s.group.InTx(ctx, func(tx *store.Tx) error {
				if err := tx.ReopenRegistryEvent(ctx, id, payload, source); err != nil {
					return err
				}
				return d.Audit.Append(tx, audit.Event{Actor: actor, Action: "registry.event.reopen", Object: "registry-event/" + id,
					Details: details(map[string]any{"why": reopen, "was": first.Outcome})})
			})
			if err != nil && !errors.Is(err, store.ErrConflict) { // ErrConflict: reopened meanwhile
				return RegistryEventResult{}, err
			}
			first.Outcome = store.OutcomePending
		}
		if first.Outcome != store.OutcomePending {
			return decided(first)
		}
		res.ReceivedAt = first.ReceivedAt // a retry carries on
	}

	var incomplete error
	if subjectID != "" {
		enrollments, err := d.Store.EnrollmentsOfSubject(ctx, subjectID, maxEventEnrollments)
		if err != nil {
			return RegistryEventResult{}, err
		}
		if res.Ended, err = s.endEnrollmentsFor(ctx, ev, enrollments, repKey, actor, res.ReceivedAt); err != nil {
			return RegistryEventResult{}, err
		}
		if ev.Kind != store.EventAuthorityChange {
			res.Revoked, incomplete = s.revokeAllOf(ctx, ev, subjectID, enrolledAt(enrollments), actor, res.ReceivedAt)
		}
	}
	if incomplete != nil {
		// Recorded and partly done: the registry's next delivery, or
		// RetryRegistryEvents, carries it on.
		e := refuse("event-incomplete", "%v", incomplete)
		e.Err = incomplete
		return RegistryEventResult{}, e
	}
	res.Outcome = store.OutcomeApplied
	if subjectID == "" {
		res.Outcome = store.OutcomeIgnored
	}
	res.DecidedAt = d.Now().UTC()
	body, err := json.Marshal(res)
	if err != nil {
		return RegistryEventResult{}, err
	}
	var left int
	err = s.group.InTx(ctx, func(tx *store.Tx) error {
		left = 0
		// Under the subject's lock, which an issuance's record takes too:
		// a certificate stored after the revocation pass read the
		// subject's certificates, whose own revocation (issue's
		// revokeEnded) has not gone through, is seen here, and the event
		// stays pending for RetryRegistryEvents; one stored after this
		// finds the event applied and reopens it.
		if res.Outcome == store.OutcomeApplied && ev.Kind != store.EventAuthorityChange {
			if err := tx.LockSubject(ctx, ev.subjectKind(), subjectKey); err != nil {
				return err
			}
			// Read in tx: an issuance's record may share this group
			// commit, and what it wrote is not committed yet.
			n, err := s.stillGood(ctx, subjectID, res.ReceivedAt, tx)
			if err != nil {
				return err
			}
			if left = n; left > 0 {
				return nil
			}
		}
		if err := tx.EndRegistryEvent(ctx, id, res.Outcome, string(body), res.DecidedAt); err != nil {
			return err
		}
		return d.Audit.Append(tx, audit.Event{Actor: actor, Action: "registry.event." + res.Outcome, Object: "registry-event/" + id,
			Details: details(map[string]any{"revoked": res.Revoked, "ended_enrollments": res.Ended})})
	})
	if errors.Is(err, store.ErrConflict) {
		// Another delivery (another RA node) finished it first: its answer.
		first, err := d.Store.RegistryEvent(ctx, id)
		if err != nil {
			return RegistryEventResult{}, err
		}
		return decided(first)
	}
	if err != nil {
		return RegistryEventResult{}, err
	}
	if left > 0 {
		e := refuse("event-incomplete", "%d certificates it revokes were issued as it came and are still good; it is carried on", left)
		e.Err = fmt.Errorf("registry event %s: %d certificates issued meanwhile still good", id, left)
		return RegistryEventResult{}, e
	}
	d.Log.Info("registry event applied", "event", id, "kind", ev.Kind, "outcome", res.Outcome,
		"revoked", len(res.Revoked), "ended_enrollments", len(res.Ended))
	return res, nil
}

// decided is the answer recorded for an event whose outcome is decided,
// marked as a repetition.
func decided(rec store.RegistryEvent) (RegistryEventResult, error) {
	if rec.Outcome != store.OutcomeApplied && rec.Outcome != store.OutcomeIgnored {
		return RegistryEventResult{}, fmt.Errorf("registry event %s is %s, not decided", rec.EventID, rec.Outcome)
	}
	var done RegistryEventResult
	if err := json.Unmarshal([]byte(rec.OutcomeDetail), &done); err != nil {
		return RegistryEventResult{}, fmt.Errorf("registry event %s: outcome: %w", rec.EventID, err)
	}
	done.Repeated = true
	return done, nil
}

// sameEvent reports whether a recorded event (its JWS, or a recheck's
// record) says what ev says: a registry may sign and spell a redelivery
// anew.
func sameEvent(recorded string, ev RegistryEvent) bool {
	first, ok := recordedEvent(recorded)
	return ok && first.same(ev)
}

// eventEnds is the reason an enrollment ended by an event is given.
var eventEnds = map[string]string{
	store.EventDeath:           "the national registry reported the person's death",
	store.EventDissolution:     "the national registry reported the business's dissolution",
	store.EventAuthorityChange: "the national registry reported that the representative may no longer sign for the business",
}

// maxEventEnrollments and maxEventCertificates bound what one event reads:
// far more than any person or business holds, or than enrollments wait.
const (
	maxEventEnrollments  = 10000
	maxEventCertificates = 10000
)

// endEnrollmentsFor rejects those of the subject's enrollments (candidates)
// that ev ends (see the top of this file), each in its own transaction,
// and returns their ids with those an earlier delivery of ev, received at
// since, ended. An enrollment made since is not ended, as a certificate of
// one is not revoked (revocable): the registry answered for the subject
// after it reported the event, so it corrected the report. (A delivery
// carried on later, by RetryRegistryEvents or a reopening, rejected them.)
func (s *Service) endEnrollmentsFor(ctx context.Context, ev RegistryEvent, candidates []store.Enrollment, representative, actor string, since time.Time) ([]string, error) {
	d := s.d
	ended := []string{}
	for _, e := range candidates {
		if !e.CreatedAt.Before(since) {
			continue
		}
		if representative != "" {
			var pr proofing
			if err := json.Unmarshal(e.Proofing, &pr); err != nil {
				return nil, fmt.Errorf("enrollment %s proofing: %w", e.ID, err)
			}
			if pr.Person != representative {
				continue
			}
		}
		if endedBy(e, ev, since) {
			ended = append(ended, e.ID) // by an earlier delivery
			continue
		}
		if e.State != store.StatePendingProof && e.State != store.StatePendingApproval {
			continue
		}
		var (
			out  store.Enrollment
			told bool
			done bool
		)
		err := s.group.InTx(ctx, func(tx *store.Tx) error {
			done, told = false, false
			cur, err := tx.EnrollmentForUpdate(ctx, e.ID)
			if err != nil {
				return err
			}
			if endedBy(cur, ev, since) {
				done = true // by another delivery, meanwhile
				return nil
			}
			if cur.State != store.StatePendingProof && cur.State != store.StatePendingApproval {
				return nil // moved on meanwhile
			}
			if out, err = move(ctx, tx, cur, store.StateRejected, eventEnds[ev.Kind], d.Now().UTC()); err != nil {
				return err
			}
			if cur.State == store.StatePendingApproval {
				if told, err = s.outcomeEnded(ctx, tx, out, nil); err != nil {
					return err
				}
			}
			done = true
			return d.Audit.Append(tx, audit.Event{Actor: actor, Action: "enrollment.reject", Object: "enrollment/" + e.ID,
				Details: map[string]any{"reason": eventEnds[ev.Kind], "event_id": ev.EventID, "country": ev.Country}})
		})
		if err != nil {
			return nil, err
		}
		if done {
			ended = append(ended, e.ID)
		}
		if told {
			s.noticeOutcome(ctx, out, nil)
		}
	}
	return ended, nil
}

// endedBy reports whether a delivery of ev, received at since, rejected e.
func endedBy(e store.Enrollment, ev RegistryEvent, since time.Time) bool {
	return e.State == store.StateRejected && e.StateReason == eventEnds[ev.Kind] && !e.UpdatedAt.Before(since)
}

// revokeAllOf revokes the subject's certificates that are still good
// (signed, not revoked, not expired), cessationOfOperation, and returns
// their serials with those a delivery of ev, received at since, revoked
// (this one, an earlier one, or another node's at the same time). A
// certificate the CA cannot revoke now does not stop the others: the error
// names every one, for the next delivery or RetryRegistryEvents.
func (s *Service) revokeAllOf(ctx context.Context, ev RegistryEvent, subjectID string, enrolledAt map[string]time.Time, actor string, since time.Time) ([]string, error) {
	d := s.d
	certs, err := d.Store.CertificatesOfSubject(ctx, subjectID, maxEventCertificates)
	if err != nil {
		return nil, err
	}
	now := d.Now()
	// The CA records revocation times in whole seconds.
	sinceSecond := since.Truncate(time.Second)
	revoked := []string{}
	var (
		serials [][]byte
		errs    []error
	)
	for _, c := range certs {
		if c.Status == store.StatusRevoked && c.Reason == reasonCessationOfOperation && !c.RevokedAt.Before(sinceSecond) {
			revoked = append(revoked, fmt.Sprintf("%X", c.Serial)) // by a delivery of this event
			continue
		}
		if !revocable(c, now, since, enrolledAt) {
			continue
		}
		err := d.Revoker.Revoke(ctx, c.Serial, reasonCessationOfOperation, actor+" event "+ev.storedID())
		if already := (*store.AlreadyRevokedError)(nil); errors.As(err, &already) {
			if already.Reason == reasonCessationOfOperation {
				revoked = append(revoked, fmt.Sprintf("%X", c.Serial)) // another delivery, meanwhile
			}
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("revoke %X: %w", c.Serial, err))
			continue
		}
		revoked = append(revoked, fmt.Sprintf("%X", c.Serial))
		serials = append(serials, c.Serial)
	}
	if len(serials) > 0 {
		s.noticeRevoked(ctx, serials...)
	}
	return revoked, errors.Join(errs...)
}

// resumeActor is who finishes, with Resume, an enrollment left approved.
const resumeActor = "system:resume"

// revocable reports whether an event received at since revokes c: good,
// signed, unexpired, and asked for before the event came. An enrollment
// made after it found the subject in the registry again: the report was a
// mistake, corrected. Enrollments are timed by the RA to the microsecond;
// a certificate with none (the CA's own issuance) by the CA, to the second,
// counts when made in the event's second.
func revocable(c store.Certificate, now, since time.Time, enrolledAt map[string]time.Time) bool {
	if c.Status != store.StatusGood || c.DER == nil || !now.Before(c.NotAfter) {
		return false
	}
	if at, ok := enrolledAt[c.EnrollmentID]; ok {
		return at.Before(since)
	}
	return !c.CreatedAt.After(since)
}

// enrolledAt is when each of enrollments was made, by id: what revocable
// times a certificate's request by.
func enrolledAt(enrollments []store.Enrollment) map[string]time.Time {
	at := make(map[string]time.Time, len(enrollments))
	for _, e := range enrollments {
		at[e.ID] = e.CreatedAt
	}
	return at
}

// stillGood counts the subject's certificates an event received at since
// revokes that are still good, read with certs and enrollments (the
// store's, or a transaction's).
func (s *Service) stillGood(ctx context.Context, subjectID string, since time.Time, src subjectReader) (int, error) {
	certs, err := src.CertificatesOfSubject(ctx, subjectID, maxEventCertificates)
	if err != nil {
		return 0, err
	}
	enrollments, err := src.EnrollmentsOfSubject(ctx, subjectID, maxEventEnrollments)
	if err != nil {
		return 0, err
	}
	at := enrolledAt(enrollments)
	n, now := 0, s.d.Now()
	for _, c := range certs {
		if revocable(c, now, since, at) {
			n++
		}
	}
	return n, nil
}

// subjectReader reads a subject's certificates and enrollments: the store,
// or a transaction.
type subjectReader interface {
	CertificatesOfSubject(ctx context.Context, subjectID string, limit int) ([]store.Certificate, error)
	EnrollmentsOfSubject(ctx context.Context, subjectID string, limit int) ([]store.Enrollment, error)
}

// checkNotEnded refuses, before the CA signs, an issuance for an
// enrollment made before the registry reported the death or dissolution of
// its subject, or the death of the person who proved it (a business's
// representative).
func (s *Service) checkNotEnded(ctx context.Context, e store.Enrollment, subjectID string) error {
	d := s.d
	ev, err := d.Store.SubjectEndedBy(ctx, subjectID, e.CreatedAt)
	if errors.Is(err, store.ErrNotFound) {
		var pr proofing
		if err := json.Unmarshal(e.Proofing, &pr); err != nil {
			return fmt.Errorf("enrollment %s proofing: %w", e.ID, err)
		}
		person, err := d.Store.SubjectByNationalID(ctx, "person", pr.Person)
		if errors.Is(err, store.ErrNotFound) || err == nil && person.ID == subjectID {
			return nil // nobody else proved it, or nobody the RA knows
		}
		if err != nil {
			return err // not known: Resume tries again
		}
		if ev, err = d.Store.SubjectEndedBy(ctx, person.ID, e.CreatedAt); errors.Is(err, store.ErrNotFound) {
			return nil
		}
	}
	if err != nil {
		return err
	}
	problem := "subject-deceased"
	if ev.Kind == store.EventDissolution {
		problem = "business-inactive"
	}
	return &registryChangedError{problem: problem, detail: eventEnds[ev.Kind] + " (event " + ev.EventID + ")"}
}

// revokeEnded revokes a certificate just issued to a subject whose death
// or dissolution the registry reported (endedBy) while the CA signed it.
func (s *Service) revokeEnded(ctx context.Context, endedBy store.RegistryEvent, serial []byte) error {
	err := s.d.Revoker.Revoke(ctx, serial, reasonCessationOfOperation, endedBy.Source+" event "+endedBy.EventID)
	if already := (*store.AlreadyRevokedError)(nil); errors.As(err, &already) {
		return nil
	}
	if err != nil {
		return err
	}
	s.noticeRevoked(ctx, serial)
	return nil
}

// adoptUnmatched finds, in tx, the first death or dissolution event of
// subj received since enrollment e began (e.CreatedAt, before it asked
// the registry) that matched no subject when it came, since subj had no
// row yet: a first enrollment whose registry lookup the event overtook.
// It gives the event subj and puts it back to pending, audited, and
// returns it; the zero event when there is none.
func (s *Service) adoptUnmatched(ctx context.Context, tx *store.Tx, subj store.Subject, e store.Enrollment, actor string) (store.RegistryEvent, error) {
	unmatched, err := tx.UnmatchedRegistryEvents(ctx, subj.NationalID, endKind(subj.Kind), e.CreatedAt, maxUnmatchedEvents)
	if err != nil {
		return store.RegistryEvent{}, err
	}
	for _, rec := range unmatched {
		ev, ok := recordedEvent(rec.Payload)
		if !ok {
			continue
		}
		key, _, err := ev.subjectKeys()
		if err != nil || key != subj.NationalID || ev.subjectKind() != subj.Kind {
			continue
		}
		if err := tx.AdoptRegistryEvent(ctx, rec.EventID, subj.ID); err != nil {
			return store.RegistryEvent{}, err
		}
		rec.SubjectID, rec.Outcome = subj.ID, store.OutcomePending
		return rec, s.d.Audit.Append(tx, audit.Event{Actor: actor, Action: "registry.event.reopen", Object: "registry-event/" + rec.EventID,
			Details: map[string]any{"why": "it came while its subject's first enrollment asked the registry", "enrollment": e.ID, "subject": subj.NationalID}})
	}
	return store.RegistryEvent{}, nil
}

// maxUnmatchedEvents bounds the events adoptUnmatched reads: those that
// came for its subject since the enrollment was made (few), and those
// received before events recorded their subject's key, whomever they name
// (none, once the enrollments made before that have ended).
const maxUnmatchedEvents = 100

// recheckPrefix starts the ids of the events rechecks record; a registry's
// own event may not.
const recheckPrefix = "recheck."

// RecheckResult is what a recheck of one subject found and did.
type RecheckResult struct {
	// Subject is the semantics identifier asked about.
	Subject string `json:"subject"`
	// Registry is what the registry says now: alive or deceased for a
	// person, active or inactive for a business, not-in-registry when it
	// has no record (an officer looks: nothing is done).
	Registry string `json:"registry"`
	// Event is what was done, as for a registry event, when the registry
	// records a death or a dissolution; nil otherwise.
	Event *RegistryEventResult `json:"event,omitempty"`
}

// recheckRecord is the payload of an event a recheck made (in
// registry_events): the registry's answer, instead of a signed event.
type recheckRecord struct {
	Recheck store.RegistryEvidence `json:"recheck"`
	Event   RegistryEvent          `json:"event"`
}

// Recheck asks the registry about the person or business with this
// semantics identifier (IDCKZ-…, NTRPK-…) and, when it records a death or
// a dissolution, does what the registry's event would have done
// (ApplyRegistryEvent): for an event that never came (a registry down, one
// that sends no events). The event it records is named after the
// registry's record (recheck. and the first 16 hex digits of its SHA-256),
// so that rechecking again does
// nothing more; its source is "recheck:" and the registry's. Unless act is
// set, it only reports what the registry says (a dry run). The event's
// occurred_at is when the recheck found it: the registry does not say when
// the death or the dissolution happened.
func (s *Service) Recheck(ctx context.Context, subjectKey string, act bool) (RecheckResult, error) {
	d := s.d
	out := RecheckResult{Subject: subjectKey}
	typ, country, id, ok := parseSemanticsID(subjectKey)
	kind, known := subjectKinds[typ]
	if !ok || !known {
		return out, refuse("invalid-request", "subjects are named by IDC (persons) or NTR (businesses) semantics identifiers")
	}
	if _, err := d.Store.SubjectByNationalID(ctx, kind, subjectKey); errors.Is(err, store.ErrNotFound) {
		return out, refuse("subject-not-found", "the RA has no enrollment of %s: recheck asks the registry again about those it has", subjectKey)
	} else if err != nil {
		return out, err
	}
	ev := RegistryEvent{Country: country}
	var (
		ended bool
		proof registry.Evidence
		err   error
	)
	if kind == "person" {
		var p registry.Person
		p, proof, err = d.Registry.Person(ctx, country, id)
		ended, out.Registry = err == nil && !p.Alive, map[bool]string{true: "alive", false: "deceased"}[p.Alive]
		ev.Kind, ev.NationalID = store.EventDeath, id
	} else {
		var b registry.Business
		b, proof, err = d.Registry.Business(ctx, country, id)
		ended, out.Registry = err == nil && !b.Active, map[bool]string{true: "active", false: "inactive"}[b.Active]
		ev.Kind, ev.RegistrationNumber = store.EventDissolution, id
	}
	switch {
	case errors.Is(err, registry.ErrNotFound):
		out.Registry = "not-in-registry"
		return out, nil
	case err != nil:
		return RecheckResult{}, registryErr(err, kind, country, id)
	case !ended:
		return out, nil
	}
	if !act {
		return out, nil
	}
	ev.EventID = recheckPrefix + hex.EncodeToString(proof.Hash[:8])
	ev.OccurredAt = proof.LookedUpAt.UTC()
	payload, err := json.Marshal(recheckRecord{Recheck: evidence("", kind, proof), Event: ev})
	if err != nil {
		return RecheckResult{}, err
	}
	// Rechecked before, with the same record: that event, as recorded
	// (when it was first looked up), is carried on or answered again.
	if first, err := d.Store.RegistryEvent(ctx, ev.storedID()); err == nil {
		if recorded, ok := recordedEvent(first.Payload); ok {
			ev, payload = recorded, []byte(first.Payload)
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return RecheckResult{}, err
	}
	res, err := s.applyEvent(ctx, ev, "recheck:"+proof.Source, string(payload))
	if err != nil {
		return RecheckResult{}, err
	}
	out.Event = &res
	return out, nil
}

// recordedEvent reads the event a registry_events payload holds: a signed
// event (its JWS, not verified here) or a recheck's record.
func recordedEvent(payload string) (RegistryEvent, bool) {
	var ev RegistryEvent
	if strings.HasPrefix(payload, "{") {
		var rec recheckRecord
		if err := json.Unmarshal([]byte(payload), &rec); err != nil {
			return ev, false
		}
		return rec.Event, true
	}
	obj, err := jose.ParseSignedCompact(payload, eventAlgorithms)
	if err != nil {
		return ev, false
	}
	if err := json.Unmarshal(obj.UnsafePayloadWithoutVerification(), &ev); err != nil {
		return ev, false
	}
	return ev, true
}
