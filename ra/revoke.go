package ra

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sanadpki/sanad/ca"
	"github.com/sanadpki/sanad/ca/profile"
	"github.com/sanadpki/sanad/internal/audit"
	"github.com/sanadpki/sanad/internal/store"
	"github.com/sanadpki/sanad/ra/jwsauth"
)

// Revoker is the CA's revocation, as the RA uses it.
type Revoker interface {
	// Revoke revokes serial for reason, and writes the events also in the
	// revocation's transaction (ca.CA.Revoke).
	Revoke(ctx context.Context, serial []byte, reason int, actor string, also ...audit.Event) error
}

// reasonCodes are the RFC 5280 §5.3.1 reasons a signed request may name.
var reasonCodes = map[string]int{
	"unspecified": 0, "keyCompromise": 1, "affiliationChanged": 3, "superseded": 4,
	"cessationOfOperation": 5, "privilegeWithdrawn": 9,
}

// holderReasons are the reasons a holder may give for their own
// certificate.
var holderReasons = []string{"keyCompromise", "superseded", "cessationOfOperation"}

// Revocation is the answer to a revocation request.
type Revocation struct {
	Serial string `json:"serial"`
	// Status is "revoked", or "pending" for a CA certificate that one CA
	// officer asked to revoke and a second has not yet (revokeCA).
	Status string `json:"status"`
	Reason string `json:"reason"`
	// Requests and Needed, for a CA certificate: how many CA officers'
	// requests stand, and how many it takes.
	Requests int `json:"requests,omitempty"`
	Needed   int `json:"needed,omitempty"`
	// Withdrawn are the serials of the renewals revoked with it
	// (privilegeWithdrawn): revoked for keyCompromise or
	// privilegeWithdrawn, a certificate's key may have asked for them.
	Withdrawn []string `json:"withdrawn,omitempty"`
	// SameKey are the serials of the subject's other certificates of the
	// same key, revoked with it for keyCompromise (revokeSameKey), and
	// SameKeyElsewhere the number of other subjects' certificates of it
	// revoked so.
	SameKey          []string `json:"same_key,omitempty"`
	SameKeyElsewhere int      `json:"same_key_elsewhere,omitempty"`
}

// accepted reports whether the request was taken but not yet carried out
// (HTTP 202).
func (r Revocation) accepted() bool { return r.Status == statusPending }

// statusPending is a Revocation waiting for a second CA officer.
const statusPending = "pending"

// revocation is what a signed revocation request asks for.
func revocation(p jwsauth.Parsed) (serial []byte, reason int, err error) {
	if serial, err = parseSerial(p.Action.Serial); err != nil {
		return nil, 0, err
	}
	reason, ok := reasonCodes[p.Action.Reason]
	if !ok {
		return nil, 0, refuse("invalid-request", "reason %q is not one of %s", p.Action.Reason, strings.Join(reasonNames(), ", "))
	}
	return serial, reason, nil
}

// checkRevocable refuses a revocation this node cannot carry out before
// the request's nonce is spent, so that the same signed request can be
// sent again.
func (s *Service) checkRevocable(ctx context.Context, serial []byte, serialHex string) error {
	if c, ok := s.d.Revoker.(RevocableChecker); ok {
		if err := c.CheckRevocable(ctx, serial); err != nil {
			return revokeRefusal(err, serialHex)
		}
	}
	return nil
}

// revokeAsOfficer carries out an officer's signed revocation. A
// subscriber's certificate (of a profile the RA enrolls for, officers'
// own included) one RA officer revokes at once; a CA certificate only
// two CA officers do (revokeCA).
func (s *Service) revokeAsOfficer(ctx context.Context, o officer) (Revocation, error) {
	serial, reason, err := revocation(o.req)
	if err != nil {
		return Revocation{}, err
	}
	c, err := s.d.Store.CertificateBySerial(ctx, serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Revocation{}, refuse("certificate-not-found", "no certificate %s", o.req.Action.Serial)
	case err != nil:
		return Revocation{}, err
	case s.caCertificate(c):
		return s.revokeCA(ctx, o, c, reason)
	case !o.has(roleRA):
		return Revocation{}, notOfficer(o, roleRA)
	}
	return s.revoke(ctx, o.req, "officer:"+o.Name)
}

// caCertificate reports whether c is one of the CA's own certificates, a
// ceremony's, recorded with sanad issuer add under its role (an OCSP
// signer's, the audit key's, an issuing CA's), rather than a subscriber's:
// its profile is not an end-entity profile.
func (s *Service) caCertificate(c store.Certificate) bool {
	p, ok := s.d.Profiles[c.Profile]
	return !ok || p.SubjectKind == ""
}

// caOfficersRevoke refuses to revoke the CA certificate c (serialHex) for
// anyone but a CA officer, one of two.
func caOfficersRevoke(serialHex string, c store.Certificate) error {
	return refuse("ca-officer-required", "certificate %s is a CA certificate (%s): two CA officers revoke it", serialHex, c.Profile)
}

// revokeCA records a CA officer's request to revoke the CA certificate c,
// and has the CA revoke it once Policy.CARevocationOfficers distinct CA officers,
// with distinct keys, asked for it with the same reason within
// Policy.CARevocationWithin (requesters). The request is recorded in the
// transaction that spends its nonce, and audited there; until enough
// stand, the answer is pending.
func (s *Service) revokeCA(ctx context.Context, o officer, c store.Certificate, reason int) (Revocation, error) {
	p := o.req
	serial := c.Serial
	if !o.has(roleCA) {
		return Revocation{}, caOfficersRevoke(p.Action.Serial, c)
	}
	if _, ours := s.d.Issuers[c.IssuerID]; !ours {
		// An issuing CA's own certificate: its issuer, the root, is
		// offline, and lists it on its CRL at a ceremony.
		return Revocation{}, refuse("offline-issuer", "certificate %s (%s) was signed by %s, which is not an issuing CA: it is revoked on that CA's CRL, at a CRL ceremony (sanad ceremony run, then sanad crl import)",
			p.Action.Serial, c.Profile, c.IssuerID)
	}
	if c.Status == store.StatusRevoked && (reason != reasonKeyCompromise || c.Reason == reasonKeyCompromise) {
		return Revocation{}, revokeRefusal(&store.AlreadyRevokedError{At: c.RevokedAt, Reason: c.Reason}, p.Action.Serial)
	}
	if err := s.checkRevocable(ctx, serial, p.Action.Serial); err != nil {
		return Revocation{}, err
	}
	pr, ok := s.d.Profiles[c.Profile]
	if !ok {
		return Revocation{}, refuse("invalid-request", "certificate %s: its profile %s is not loaded here, which revokes it", p.Action.Serial, c.Profile)
	}
	if !slices.Contains(pr.RevocationReasons, reason) {
		return Revocation{}, refuse("invalid-request", "profile %s does not allow revoking for %s", c.Profile, p.Action.Reason)
	}
	now := s.d.Now().UTC()
	var standing []requester
	if err := s.group.InTx(ctx, func(tx *store.Tx) error {
		if err := useNonce(ctx, tx, p, now); err != nil {
			return err
		}
		if err := tx.InsertRevocationRequest(ctx, store.RevocationRequest{IssuerID: c.IssuerID, Serial: c.Serial,
			OfficerFingerprint: o.Fingerprint, Nonce: p.Action.Nonce, Reason: reason, JWS: p.Raw, RequestedAt: now}); err != nil {
			return err
		}
		reqs, err := tx.RevocationRequests(ctx, c.IssuerID, c.Serial, now.Add(-s.d.Policy.CARevocationWithin))
		if err != nil {
			return err
		}
		if standing, err = s.requesters(ctx, reqs, reason); err != nil {
			return err
		}
		return s.d.Audit.Append(tx, revokeRequestEvent(p, "officer:"+o.Name, serial,
			map[string]any{"ca_certificate": c.Profile, "officers": requesterNames(standing), "needed": s.d.Policy.CARevocationOfficers}))
	}); err != nil {
		return Revocation{}, err
	}
	if len(standing) < s.d.Policy.CARevocationOfficers {
		s.d.Log.Info("CA certificate revocation requested", "serial", p.Action.Serial, "profile", c.Profile, "reason", p.Action.Reason,
			"by", o.Name, "requests", len(standing), "needed", s.d.Policy.CARevocationOfficers)
		return Revocation{Serial: strings.ToUpper(hex.EncodeToString(serial)), Status: statusPending, Reason: p.Action.Reason,
			Requests: len(standing), Needed: s.d.Policy.CARevocationOfficers}, nil
	}
	out, err := s.carryOut(ctx, serial, p.Action.Serial, reason, p.Action.Reason, "officers:"+strings.Join(requesterNames(standing), ", "))
	if err != nil {
		return Revocation{}, err
	}
	out.Requests, out.Needed = len(standing), s.d.Policy.CARevocationOfficers
	return out, nil
}

// requesters are the CA officers whose requests among reqs (oldest first)
// for reason stand, one per person and one per key, as approvals count
// (decider): an officer no longer an active CA officer, or whose
// certificate was revoked, counts no more.
func (s *Service) requesters(ctx context.Context, reqs []store.RevocationRequest, reason int) ([]requester, error) {
	people, keys := map[string]bool{}, map[string]bool{}
	var out []requester
	for _, r := range reqs {
		if r.Reason != reason {
			continue
		}
		dc, err := s.decider(ctx, r.OfficerFingerprint, roleCA)
		if err != nil {
			return nil, err
		}
		if dc.id == "" || people[dc.id] || keys[dc.key] {
			continue
		}
		people[dc.id], keys[dc.key] = true, true
		out = append(out, requester{name: dc.name, id: dc.id, at: r.RequestedAt})
	}
	return out, nil
}

// requester is a CA officer whose request stands: their name, officerID,
// and when they asked.
type requester struct {
	name, id string
	at       time.Time
}

// requesterNames are the requesters' names.
func requesterNames(rs []requester) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.name
	}
	return out
}

// revoke has the CA revoke a certificate for a signed request whose nonce
// is recorded first, so the request cannot be replayed.
func (s *Service) revoke(ctx context.Context, p jwsauth.Parsed, actor string) (Revocation, error) {
	serial, reason, err := revocation(p)
	if err != nil {
		return Revocation{}, err
	}
	if err := s.checkRevocable(ctx, serial, p.Action.Serial); err != nil {
		return Revocation{}, err
	}
	// The signed request is kept in the log with its nonce: the CA's
	// revocation event names the actor, this one who signed and what.
	now := s.d.Now().UTC()
	if err := s.group.InTx(ctx, func(tx *store.Tx) error {
		if err := useNonce(ctx, tx, p, now); err != nil {
			return err
		}
		return s.d.Audit.Append(tx, revokeRequestEvent(p, actor, serial, nil))
	}); err != nil {
		return Revocation{}, err
	}
	return s.carryOut(ctx, serial, p.Action.Serial, reason, p.Action.Reason, actor)
}

// revokeRequestEvent is the certificate.revoke.request event of signed
// request p, by actor, for serial: the request itself, with its nonce and
// who signed it, which the CA's revocation event does not keep; and more
// details, if any.
func revokeRequestEvent(p jwsauth.Parsed, actor string, serial []byte, more map[string]any) audit.Event {
	details := map[string]any{"reason": p.Action.Reason, "signer_fingerprint": hex.EncodeToString(p.Fingerprint[:]),
		"signer_serial": jwsauth.SerialHex(p.Certificate.SerialNumber), "nonce": p.Action.Nonce, "jws": p.Raw}
	maps.Copy(details, more)
	return audit.Event{Actor: actor, Action: "certificate.revoke.request", Object: "certificate/" + strings.ToLower(hex.EncodeToString(serial)), Details: details}
}

// carryOut has the CA revoke serial (serialHex as the request gave it)
// for reason (reasonName), a request whose nonce is spent.
func (s *Service) carryOut(ctx context.Context, serial []byte, serialHex string, reason int, reasonName, actor string) (Revocation, error) {
	// withdrawn withdraws the renewals the revoked certificate's key asked
	// for, and tells the holders of it and of them. The revocation stands
	// whatever happens to the renewals; what is not withdrawn or told now,
	// SweepWithdrawn and NoticeRevoked do within a minute.
	// For keyCompromise, it revokes too the other certificates of the key,
	// whoever's (revokeSameKey).
	withdrawn := func(reason int) (revoked [][]byte, sameKey []string, elsewhere int) {
		if withdraws(reason) {
			var err error
			if revoked, err = s.withdrawRenewals(ctx, serial, actor); err != nil {
				s.d.Log.Error("withdrawing the renewals of a revoked certificate", "serial", serialHex, "err", err)
			}
		}
		var same []store.Certificate
		if reason == reasonKeyCompromise {
			// Signed or not: an intent's key is read from its TBS.
			c, err := s.d.Store.CertificateBySerial(ctx, serial)
			if err == nil {
				same, err = s.revokeSameKey(ctx, c, actor)
			}
			if err != nil {
				s.d.Log.Error("revoking the certificates of a compromised key", "serial", serialHex, "err", err)
			}
			// The answer names the certificates of the subject whose
			// certificate this is; of other subjects' (a business's
			// seal), whose names and identifiers their serials would
			// lead to, it gives the number.
			for _, o := range same {
				if o.SubjectID == c.SubjectID {
					sameKey = append(sameKey, strings.ToUpper(hex.EncodeToString(o.Serial)))
				} else {
					elsewhere++
				}
			}
		}
		s.noticeRevoked(ctx, slices.Concat([][]byte{serial}, revoked, serialsOf(same))...)
		return revoked, sameKey, elsewhere
	}
	if err := s.d.Revoker.Revoke(ctx, serial, reason, actor); err != nil {
		if already := (*store.AlreadyRevokedError)(nil); errors.As(err, &already) {
			withdrawn(already.Reason) // again: a retry finishes what the first left
		}
		return Revocation{}, revokeRefusal(err, serialHex)
	}
	s.d.Log.Info("certificate revoked", "serial", serialHex, "reason", reasonName, "by", actor)
	out := Revocation{Serial: strings.ToUpper(hex.EncodeToString(serial)), Status: "revoked", Reason: reasonName}
	revoked, sameKey, elsewhere := withdrawn(reason)
	for _, r := range revoked {
		out.Withdrawn = append(out.Withdrawn, strings.ToUpper(hex.EncodeToString(r)))
	}
	out.SameKey, out.SameKeyElsewhere = sameKey, elsewhere
	return out, nil
}

// RevocableChecker is a Revoker that can tell, before anything is spent,
// that it cannot revoke a serial (ca.ErrIssuerUnavailable,
// ca.ErrIssuerRetired).
type RevocableChecker interface {
	CheckRevocable(ctx context.Context, serial []byte) error
}

// revokeRefusal is the problem a revocation's error gives the requester.
func revokeRefusal(err error, serialHex string) error {
	var already *store.AlreadyRevokedError
	var e *Error
	switch {
	case errors.As(err, &already):
		return refuse("already-revoked", "already revoked at %s (%s)", already.At.Format(time.RFC3339), profile.ReasonName(already.Reason))
	case errors.Is(err, ca.ErrNotIssued):
		return refuse("certificate-not-found", "no certificate %s", serialHex)
	case errors.Is(err, ca.ErrIssuerRetired):
		e = refuse("issuer-retired", "%v", err)
	case errors.Is(err, ca.ErrIssuerUnavailable):
		e = refuse("issuer-unavailable", "%v", err)
	case errors.Is(err, ca.ErrRequest):
		return refuse("invalid-request", "%v", err)
	default:
		return err
	}
	e.Err = err
	return e
}

// RevokeOwn carries out a request to revoke a certificate (POST
// /api/v1/certificates/{serial}/revoke): its holder's, signed with the
// certificate's own key, or an officer's, signed with a registered
// officer's certificate for this route's audience, as on the officers'
// route (revokeAsOfficer).
func (s *Service) RevokeOwn(ctx context.Context, serialHex, compact string) (Revocation, error) {
	if _, err := parseSerial(serialHex); err != nil {
		return Revocation{}, err
	}
	if p, err := jwsauth.Parse(compact, AudienceRevoke, s.d.Now(), MaxSkew); err == nil && !strings.EqualFold(jwsauth.SerialHex(p.Certificate.SerialNumber), serialHex) {
		_, err := s.d.Store.Officer(ctx, p.Fingerprint[:])
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return Revocation{}, err
		}
		if err == nil {
			o, err := s.authenticate(ctx, compact, AudienceRevoke, roleRA, roleCA)
			if err != nil {
				return Revocation{}, err
			}
			if o.req.Action.Action != jwsauth.ActionRevoke || !strings.EqualFold(o.req.Action.Serial, serialHex) {
				return Revocation{}, refuse("invalid-request", "the signed request is not to revoke %s", serialHex)
			}
			return s.revokeAsOfficer(ctx, o)
		}
	}
	p, err := s.holderRequest(ctx, serialHex, compact, AudienceRevoke, jwsauth.ActionRevoke, holderReasons)
	if err != nil {
		return Revocation{}, err
	}
	// A CA certificate's key is on the CA's token: whoever may use the
	// token would revoke it alone, which two CA officers do (revokeCA).
	c, err := s.d.Store.Certificate(ctx, s.issuerOf(p.Certificate), p.Certificate.SerialNumber.Bytes())
	if err != nil {
		return Revocation{}, err
	}
	if s.caCertificate(c) {
		return Revocation{}, caOfficersRevoke(p.Action.Serial, c)
	}
	return s.revoke(ctx, p, "holder:"+jwsauth.SerialHex(p.Certificate.SerialNumber))
}

// holderRequest verifies a holder's request to act on its own certificate
// serialHex: the JWS for audience, the action, the serial, one of reasons
// (when given), signed by that very certificate, which this CA issued and
// which is valid now and not revoked. Whoever holds a revoked
// certificate's key may still report it compromised (reason
// keyCompromise): the CA then raises the reason.
func (s *Service) holderRequest(ctx context.Context, serialHex, compact, audience, action string, reasons []string) (jwsauth.Parsed, error) {
	now := s.d.Now()
	p, err := jwsauth.Parse(compact, audience, now, MaxSkew)
	if err != nil {
		return p, signedRequestErr(err)
	}
	if p.Action.Action != action || !strings.EqualFold(p.Action.Serial, serialHex) {
		return p, refuse("invalid-request", "the signed request is not to %s %s", action, serialHex)
	}
	if reasons != nil && !slices.Contains(reasons, p.Action.Reason) {
		return p, refuse("invalid-request", "a holder may give the reasons %s", strings.Join(reasons, ", "))
	}
	if jwsauth.SerialHex(p.Certificate.SerialNumber) != p.Action.Serial {
		return p, refuse("unauthorized", "the request is not signed by certificate %s", serialHex)
	}
	// notOurs words checkOurs' "not-an-officer" for a holder.
	notOurs := func(err error) error {
		if e, ok := ProblemOf(err); ok && e.Type == "not-an-officer" {
			return refuse("unauthorized", "the request is not signed by a certificate of this CA")
		}
		return err
	}
	if err := s.checkOurs(ctx, p.Certificate, now); err != nil {
		e, ok := ProblemOf(err)
		switch {
		case ok && e.Type == "certificate-revoked" && p.Action.Reason == "keyCompromise":
		case ok && e.Type == "certificate-not-valid" && p.Action.Reason == "keyCompromise" && now.After(p.Certificate.NotAfter):
			// Expired, its key may still have renewed it before, and a
			// thief's renewal renews itself: the holder's keyCompromise
			// withdraws the chain (withdrawRenewals), as the renewal's
			// notice tells them to. The certificate must be this CA's
			// record of it, revoked or not.
			if err := s.checkRecorded(ctx, s.issuerOf(p.Certificate), p.Certificate); err != nil {
				if e, ok := ProblemOf(err); !ok || e.Type != "certificate-revoked" {
					return p, notOurs(err)
				}
			}
		default:
			return p, notOurs(err)
		}
	}
	return p, nil
}

// parseSerial reads a serial as openssl prints it: hex, upper or lower
// case, no colons, at most 20 octets.
func parseSerial(h string) ([]byte, error) {
	if len(h) == 0 || len(h) > 40 {
		return nil, refuse("invalid-request", "serial must be 1 to 40 hex digits")
	}
	if len(h)%2 == 1 {
		h = "0" + h
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, refuse("invalid-request", "serial is not hex")
	}
	return bytes.TrimLeft(b, "\x00"), nil
}

func reasonNames() []string {
	names := make([]string, 0, len(reasonCodes))
	for n := range reasonCodes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// PendingRevocation is a CA certificate whose revocation CA officers
// asked for, not yet enough of them (revokeCA).
type PendingRevocation struct {
	Serial  string `json:"serial"`
	Issuer  string `json:"issuer"`
	Profile string `json:"profile"`
	Subject string `json:"subject"`
	Reason  string `json:"reason"`
	// Officers are the names of the CA officers whose requests stand,
	// Requests how many, Needed how many it takes.
	Officers []string `json:"officers"`
	Requests int      `json:"requests"`
	Needed   int      `json:"needed"`
	// RequestedAt is the first standing request's time; after ExpiresAt
	// it counts no more.
	RequestedAt time.Time `json:"requested_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	// YouRequested says the officer who asked is among Officers.
	YouRequested bool `json:"you_requested,omitempty"`
}

// pendingRevocations are the CA certificates whose revocation CA officers
// asked for within Policy.CARevocationWithin, one per certificate and reason, whose
// standing requests (requesters) are not yet enough: or are, and the CA's
// revocation failed, for a CA officer to ask again.
func (s *Service) pendingRevocations(ctx context.Context, o officer) ([]PendingRevocation, error) {
	now := s.d.Now().UTC()
	reqs, err := s.d.Store.PendingRevocationRequests(ctx, now.Add(-s.d.Policy.CARevocationWithin), maxQueue*s.d.Policy.CARevocationOfficers)
	if err != nil {
		return nil, err
	}
	type key struct {
		issuer, serial string
		reason         int
	}
	var order []key
	groups := map[key][]store.RevocationRequest{}
	for _, r := range reqs {
		k := key{r.IssuerID, string(r.Serial), r.Reason}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	me := officerID(o.req.Certificate)
	out := []PendingRevocation{}
	for _, k := range order {
		group := groups[k]
		rs, err := s.requesters(ctx, group, k.reason)
		if err != nil {
			return nil, err
		}
		if len(rs) == 0 {
			continue // every request withdrawn
		}
		c, err := s.d.Store.Certificate(ctx, k.issuer, []byte(k.serial))
		if err != nil {
			return nil, err
		}
		subject := ""
		if cert, err := x509.ParseCertificate(c.DER); err == nil {
			subject = cert.Subject.String()
		}
		first := rs[0].at
		out = append(out, PendingRevocation{Serial: strings.ToUpper(hex.EncodeToString(c.Serial)), Issuer: c.IssuerID, Profile: c.Profile,
			Subject: subject, Reason: profile.ReasonName(k.reason), Officers: requesterNames(rs), Requests: len(rs), Needed: s.d.Policy.CARevocationOfficers,
			RequestedAt: first, ExpiresAt: first.Add(s.d.Policy.CARevocationWithin),
			YouRequested: slices.ContainsFunc(rs, func(r requester) bool { return r.id == me })})
		if len(out) == maxQueue {
			break
		}
	}
	return out, nil
}
