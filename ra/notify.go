package ra

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sanadpki/sanad/ra/registry"
)

// Message is a one-time code on its way to the registry's contact, or,
// with Code empty, a notice: the text to send (a renewal asked for with the
// holder's key, which the holder should know of in case it was not them; a
// certificate revoked, with Serial naming it).
type Message struct {
	EnrollmentID string `json:"enrollment"`
	To           string `json:"to"`      // E.164 phone number or e-mail address
	Channel      string `json:"channel"` // sms | email
	Code         string `json:"code"`
	Notice       string `json:"notice,omitempty"`
	// Event is what a notice tells of: "revoked" a certificate, "expiring"
	// soon, or how an enrollment that waited for officers ended ("issued",
	// "rejected", "failed", "expired"). Serial is the certificate revoked,
	// expiring or issued, in hex as openssl prints it; Reason is a
	// revocation's (RFC 5280 name).
	Event  string `json:"event,omitempty"`
	Serial string `json:"serial,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// outboxName is the file Outbox writes m to: <enrollment id>.json for a
// code (and a renewal's notice); beside it, <enrollment id>.<serial>.<reason>.json
// for a revocation notice, and <enrollment id>.<event>.json for how the
// enrollment ended, which replace neither the code nor each other.
func outboxName(m Message) string {
	switch {
	case m.Event == EventRevoked:
		return m.EnrollmentID + "." + m.Serial + "." + m.Reason + ".json"
	case m.Event != "":
		return m.EnrollmentID + "." + m.Event + ".json"
	}
	return m.EnrollmentID + ".json"
}

// Notifier delivers one-time codes and notices.
type Notifier interface {
	Send(ctx context.Context, m Message) error
}

// Outbox is the development notifier: each message is logged with its
// enrollment id and written to Dir/<enrollment id>.json (to, channel, code;
// other notices beside it, see outboxName),
// where a newcomer or a test picks the code up. Never for production: the
// code is the proof that the applicant controls the contact.
type Outbox struct {
	Dir string
	Log *slog.Logger
}

// Send writes the message file (0600, replaced whole) and logs it. The
// directory must be the owner's alone: MkdirAll leaves an existing one as
// it is, and the codes in it are proofs of identity.
func (o Outbox) Send(_ context.Context, m Message) error {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return err
	}
	if fi, err := os.Stat(o.Dir); err != nil {
		return err
	} else if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("outbox %s has mode %04o: group and others must have no access (chmod 700 %s)", o.Dir, perm, o.Dir)
	}
	name := outboxName(m)
	if filepath.Base(name) != name || strings.HasPrefix(name, ".") {
		return fmt.Errorf("outbox: %q is not a file name", name)
	}
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(o.Dir, name)
	tmp, err := os.CreateTemp(o.Dir, ".msg-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(append(body, '\n'))
	if err := errors.Join(werr, tmp.Chmod(0o600), tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	switch {
	case o.Log == nil:
	case m.Code == "":
		o.Log.Info("notice (dev outbox)", "enrollment", m.EnrollmentID, "channel", m.Channel, "notice", m.Notice, "file", path)
	default:
		o.Log.Info("one-time code (dev outbox)", "enrollment", m.EnrollmentID, "channel", m.Channel, "code", m.Code, "file", path)
	}
	return nil
}

// idempotencyKey is the Idempotency-Key of a message whose JSON is body:
// the same for the same message however often it is sent (a retry after a
// timeout, another node's sweep), so that a gateway keeping the keys it
// has seen delivers it once; another message (a new code, another event,
// serial or reason) has another. It is keyed with secret (an HMAC): a
// plain hash of a code's message would give the six-digit code away to
// whoever reads the gateway's logs and knows the enrollment and contact.
func idempotencyKey(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("sanad webhook idempotency key\x00"))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

// Webhook posts each message as JSON to an SMS or e-mail gateway; any
// answer but 2xx within Timeout is a failure. It follows no redirect: one
// would carry the code, and the applicant's contact, to a host nobody
// configured. The gateway's credential is a bearer token read from
// TokenFile at every message (rotated in place), never part of URL. Errors
// name the gateway's host only: they reach the logs and the audit log.
// Each message carries an Idempotency-Key (idempotencyKey) when
// IdempotencySecret is set: the same secret on every RA node (the code
// key), so that they give one message one key.
type Webhook struct {
	URL               string
	TokenFile         string
	Client            *http.Client
	Timeout           time.Duration
	IdempotencySecret []byte
}

// Send posts m.
func (w Webhook) Send(ctx context.Context, m Message) error {
	timeout := w.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("notification gateway: the configured URL does not parse")
	}
	gateway := "notification gateway " + req.URL.Host
	req.Header.Set("Content-Type", "application/json")
	if len(w.IdempotencySecret) > 0 {
		req.Header.Set("Idempotency-Key", idempotencyKey(w.IdempotencySecret, body))
	}
	if w.TokenFile != "" {
		token, err := registry.ReadBearerToken(w.TokenFile)
		if err != nil {
			return fmt.Errorf("%s: token: %w", gateway, err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := http.Client{}
	if w.Client != nil {
		client = *w.Client
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error quotes the URL, and a query there may hold a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s: %w", gateway, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", gateway, resp.Status)
	}
	return nil
}
