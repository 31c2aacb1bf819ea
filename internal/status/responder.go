package status

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sanadpki/sanad/internal/api"
	"github.com/sanadpki/sanad/internal/store"
)

// ErrNoNonceSigner is what a NonceSigner wraps when the node has no signer
// for the response's issuer (an issuing CA left out, its keys retired):
// the pre-signed answer is sent, without a warning per request.
var ErrNoNonceSigner = errors.New("no nonce signer for this issuer")

// errNotFound is the store's "no such row".
var errNotFound = store.ErrNotFound

// Store is what a Responder reads; *store.DB provides it.
type Store interface {
	Issuers(ctx context.Context) ([]store.Issuer, error)
	OCSPResponse(ctx context.Context, issuerID string, serial []byte) (store.OCSPResponse, error)
	OCSPResponsesAfter(ctx context.Context, c store.OCSPCursor, limit int) ([]store.OCSPResponse, error)
	LatestOCSPUpdate(ctx context.Context) (time.Time, error)
	LatestCRL(ctx context.Context, issuerID string) (store.CRL, error)
	LatestCRLSummary(ctx context.Context, issuerID string) (store.CRL, error)
	// ListenOCSPChanges calls changed when responses were stored, or
	// returns store.ErrNoNotifications when the database cannot tell.
	ListenOCSPChanges(ctx context.Context, changed func()) error
}

// Config is a Responder's configuration; zero values take the defaults.
type Config struct {
	// CacheSize bounds the cached responses (default 1 000 000: about 1.5
	// GB of 1.5 KB responses), to within one entry a shard (64). Past it,
	// a random entry makes room. "Not in the store" answers are kept apart,
	// up to an eighth as many: requests for serials never issued, which
	// anyone can send by the million, make room among themselves only,
	// never among the responses.
	CacheSize int
	// SyncInterval is how often the store is read for new and re-signed
	// responses (default 1 s): with Overlap, the bound on how late a
	// responder answers a revocation.
	SyncInterval time.Duration
	// Overlap is how far behind its newest row each sync reads again
	// (default 10 s), so that a transaction that commits later than rows
	// stamped after it is still seen. Longer than any write transaction.
	Overlap time.Duration
	// ResyncWindow and ResyncInterval: every ResyncInterval (default 5
	// min) a sync reads again every row stamped within ResyncWindow
	// (default 1 h) of this node's clock, whatever its cursor says. Rows
	// are stamped by the clock of the CA node that wrote them: one whose
	// clock ran ahead moves every cursor ahead with its rows, and a
	// revocation stamped by an accurate node just after would fall behind
	// Overlap, never read, its certificate answered good until the cached
	// answer's nextUpdate. This bounds that to ResyncInterval, for clocks
	// within ResyncWindow of each other.
	ResyncWindow   time.Duration
	ResyncInterval time.Duration
	// MaxStoreReads bounds the requests reading the store at once on a
	// cache miss (default 4), and MissWait how long one waits for its
	// turn (default 50 ms) before it is answered tryLater: requests for
	// random serials, which no cache keeps, must not take every database
	// connection from the sync that brings revocations in.
	MaxStoreReads int
	MissWait      time.Duration
	// NegativeTTL is how long "this serial is not in the store" is
	// remembered before the store is asked again (default 5 s). A
	// certificate issued meanwhile is seen by the sync at once.
	NegativeTTL time.Duration
	// PageSize is the sync's page (default 5000 rows).
	PageSize int
	// LogRequests logs each request's serial and outcome, for debugging
	// only: by default nothing per request is logged (see the package doc).
	LogRequests bool
	// NonceSigner, when set, answers a request that carries a nonce with a
	// response signed now that echoes it (RFC 8954), saying what the
	// pre-signed response says; nil ignores nonces (RFC 5019 §4). Only a
	// node that holds the OCSP signer's key can set it.
	// An error wrapping ErrNoNonceSigner (this node signs no nonces for
	// that issuer) is expected and not logged as a failure.
	NonceSigner func(presigned, nonce []byte) ([]byte, error)
	// NoncePerSecond bounds the responses NonceSigner signs, across every
	// client (default 100 a second, and as many at once; at least one at
	// once): anyone may send nonces, and each is a signature on the HSM
	// that issuance and revocation also sign with. Past it, the pre-signed
	// response answers, without the nonce.
	NoncePerSecond float64
	// Preload fills the cache at the first sync with the stored responses,
	// up to CacheSize, so that the first request for each is not a store
	// read; the first sync (and readiness) waits for it.
	Preload bool
}

func (c Config) withDefaults() Config {
	if c.CacheSize <= 0 {
		c.CacheSize = 1_000_000
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = time.Second
	}
	if c.Overlap <= 0 {
		c.Overlap = 10 * time.Second
	}
	if c.ResyncWindow <= 0 {
		c.ResyncWindow = time.Hour
	}
	if c.ResyncInterval <= 0 {
		c.ResyncInterval = 5 * time.Minute
	}
	if c.NegativeTTL <= 0 {
		c.NegativeTTL = 5 * time.Second
	}
	if c.MaxStoreReads <= 0 {
		c.MaxStoreReads = 4
	}
	if c.MissWait <= 0 {
		c.MissWait = 50 * time.Millisecond
	}
	if c.PageSize <= 0 {
		c.PageSize = 5000
	}
	if c.NoncePerSecond <= 0 {
		c.NoncePerSecond = 100
	}
	return c
}

// Responder answers OCSP requests from pre-signed responses.
type Responder struct {
	cfg   Config
	store Store
	log   *slog.Logger
	now   func() time.Time

	// nonces is the budget of Config.NoncePerSecond, one bucket for all.
	nonces *api.Limiter

	// issuers are the CAs answered for, read from the store at New and
	// again at each sync when the store holds others (an issuing CA added
	// at a rollover): swapped whole, read without a lock.
	issuers atomic.Pointer[issuerSet]

	cache *cache
	// unknown keeps the "not in the store" answers (Config.CacheSize).
	unknown *cache
	// gets keeps GET requests parsed, by their encoded form: relying
	// parties ask about the same certificates again and again.
	gets *getCache
	crls *crlCache
	// syncMu serializes syncs; cursor is where the next one starts, and
	// synced says the first (which may preload) is done.
	syncMu sync.Mutex
	cursor store.OCSPCursor
	synced bool
	// ready is set once the first sync has completed.
	ready atomic.Bool
	// lag is the age of the newest response seen by the last sync, in
	// nanoseconds (a metric).
	lag atomic.Int64
	// resynced is when the last sync that read ResyncWindow again began,
	// in Unix nanoseconds.
	resynced atomic.Int64
	// lastSync is when the last sync that succeeded ended, in Unix
	// nanoseconds (a metric): lag stays as it was while syncs fail.
	lastSync atomic.Int64

	metrics *metrics
	// reads holds a place for each request reading the store on a miss
	// (Config.MaxStoreReads).
	reads chan struct{}
}

// issuerSet is the issuers by CertID key (hash, name hash, key hash), and
// by ID; ids names the store's rows it was made from.
type issuerSet struct {
	byCertID map[string]*issuer
	byID     map[string]*issuer
	ids      string
}

// issuer is an issuing CA the responder answers for.
type issuer struct {
	id string
	// certEntry serves GET /ca/{id}.crt.
	certEntry *entry
}

// New returns a Responder for the store's issuing CAs. Call Sync (or Run)
// before serving: Ready is false until the first sync.
func New(ctx context.Context, st Store, cfg Config, log *slog.Logger, now func() time.Time) (*Responder, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	perNonce := time.Duration(float64(time.Second) / cfg.NoncePerSecond)
	r := &Responder{cfg: cfg, store: st, log: log, now: now,
		nonces: api.NewLimiter(1, perNonce, max(1, int(cfg.NoncePerSecond)), 1, now),
		cache:  newCache(cfg.CacheSize), unknown: newCache(max(1, cfg.CacheSize/8)), gets: newGetCache(min(cfg.CacheSize, maxGetCache)), metrics: newMetrics(),
		crls:  &crlCache{every: cfg.SyncInterval, now: now, m: map[string]*cachedCRL{}},
		reads: make(chan struct{}, cfg.MaxStoreReads)}
	if _, err := r.loadIssuers(ctx); err != nil {
		return nil, err
	}
	if len(r.issuers.Load().byCertID) == 0 {
		return nil, errors.New("status: the store has no issuing CA")
	}
	return r, nil
}

// loadIssuers reads the store's roots and issuing CAs and, when they are
// not those the responder has, makes them the ones it answers for. It
// reports whether they changed.
func (r *Responder) loadIssuers(ctx context.Context) (bool, error) {
	all, err := r.store.Issuers(ctx)
	if err != nil {
		return false, fmt.Errorf("status: issuers: %w", err)
	}
	var ids strings.Builder
	for _, is := range all {
		if is.Role == "root" || is.Role == "issuing" {
			fmt.Fprintf(&ids, "%s/%s/%x\n", is.Role, is.ID, sha256.Sum256(is.CertificateDER))
		}
	}
	if cur := r.issuers.Load(); cur != nil && cur.ids == ids.String() {
		return false, nil
	}
	set := &issuerSet{byCertID: map[string]*issuer{}, byID: map[string]*issuer{}, ids: ids.String()}
	for _, is := range all {
		if is.Role != "root" && is.Role != "issuing" {
			continue
		}
		cert, err := x509.ParseCertificate(is.CertificateDER)
		if err != nil {
			return false, fmt.Errorf("status: issuer %s certificate: %w", is.ID, err)
		}
		i := &issuer{id: is.ID,
			certEntry: staticEntry(is.CertificateDER, "application/pkix-cert", is.CreatedAt, time.Time{})}
		set.byID[is.ID] = i
		// Only issuing CAs have pre-signed responses; a root's
		// certificates (the issuing CAs) are covered by its CRL.
		if is.Role != "issuing" {
			continue
		}
		keyHashInput, err := subjectPublicKeyBits(cert)
		if err != nil {
			return false, fmt.Errorf("status: issuer %s: %w", is.ID, err)
		}
		// By SHA-1 CertIDs only, the ones the pre-signed responses carry
		// (ocspsign, RFC 5019 §2.1.1): a request by another hash is
		// answered unauthorized, since the answer must name the
		// certificate as the request did (RFC 6960 §4.1.1), and a client
		// cannot match a SHA-1 CertID to its SHA-256 one.
		h := crypto.SHA1
		set.byCertID[string(appendCertIDKey(nil, h, digest(h, cert.RawSubject), digest(h, keyHashInput)))] = i
	}
	r.issuers.Store(set)
	return true, nil
}

// Ready reports whether the first sync has completed (for /readyz). A
// sync that fails later does not make the node unready: the answers it
// serves are signed and valid until their nextUpdate, and every node of
// the tier would go at once with the store, leaving relying parties none.
// sanad_ocsp_last_sync_timestamp_seconds says how long syncs have failed.
func (r *Responder) Ready(context.Context) error {
	if !r.ready.Load() {
		return errors.New("the first sync of OCSP responses has not completed")
	}
	return nil
}

// outcome is what a request was answered, for metrics and debug logs.
type outcome string

const (
	outcomeGood         outcome = "good"
	outcomeRevoked      outcome = "revoked"
	outcomeUnknown      outcome = "unknown"
	outcomeUnauthorized outcome = "unauthorized"
	outcomeMalformed    outcome = "malformed"
	outcomeTryLater     outcome = "try_later"
)

// RFC 6960 §4.2.1 error answers: an OCSPResponse with only a status.
var (
	respMalformed    = []byte{0x30, 0x03, 0x0a, 0x01, 0x01}
	respTryLater     = []byte{0x30, 0x03, 0x0a, 0x01, 0x03}
	respUnauthorized = []byte{0x30, 0x03, 0x0a, 0x01, 0x06}
)

// answer finds the response for a parsed request: a cached or stored
// pre-signed response, or nil with the error outcome to send.
func (r *Responder) answer(ctx context.Context, req Request, now time.Time) (*entry, outcome) {
	// Keys are built in stack buffers and looked up as string(bytes),
	// which the compiler does without allocating.
	var idBuf [1 + 2*64]byte
	is := r.issuers.Load().byCertID[string(appendCertIDKey(idBuf[:0], req.HashAlgorithm, req.IssuerNameHash, req.IssuerKeyHash))]
	if is == nil {
		return nil, outcomeUnauthorized
	}
	var keyBuf [64 + 1 + 20]byte
	keyBytes := appendCacheKey(keyBuf[:0], is.id, req.Serial)
	e, hit := r.cache.get(keyBytes)
	if !hit {
		e, hit = r.unknown.get(keyBytes)
	}
	if hit && e.fresh(now) {
		r.metrics.cacheHits.Inc()
	} else {
		r.metrics.cacheMisses.Inc()
		if !r.takeRead(ctx) {
			r.metrics.missesRefused.Inc()
			return nil, outcomeTryLater
		}
		var err error
		e, err = r.load(ctx, is.id, req.Serial, now)
		<-r.reads
		if err != nil {
			r.log.Error("OCSP response from the store", "issuer", is.id, "err", err)
			return nil, outcomeTryLater
		}
		r.keep(string(keyBytes), e)
		// A sync may have cached a newer answer (a revocation) than the
		// replica this read found: that one is served.
		if cur, ok := r.cache.get(keyBytes); ok && cur.updatedAt.After(e.updatedAt) {
			e = cur
		}
	}
	if e.der == nil {
		return nil, outcomeUnauthorized
	}
	if !now.Before(e.nextUpdate) {
		// Never serve a response past its nextUpdate: the CA's publisher
		// re-signs long before; if it has not, say so.
		return nil, outcomeTryLater
	}
	return e, e.outcome
}

// takeRead takes a place to read the store (Config.MaxStoreReads),
// waiting at most MissWait for one.
func (r *Responder) takeRead(ctx context.Context) bool {
	select {
	case r.reads <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(r.cfg.MissWait)
	defer t.Stop()
	select {
	case r.reads <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// load reads one response from the store: an entry for it, or a negative
// entry when the store has none.
func (r *Responder) load(ctx context.Context, issuerID string, serial []byte, now time.Time) (*entry, error) {
	resp, err := r.store.OCSPResponse(ctx, issuerID, serial)
	if errors.Is(err, store.ErrNotFound) {
		return &entry{checkedAt: now, negativeTTL: r.cfg.NegativeTTL}, nil
	}
	if err != nil {
		return nil, err
	}
	e, err := responseEntry(resp)
	if err != nil {
		return nil, err
	}
	// Past its nextUpdate, it is asked for again only after NegativeTTL
	// (fresh): a publisher that stopped re-signing must not turn every
	// request for a hot serial into a store read.
	e.checkedAt, e.negativeTTL = now, r.cfg.NegativeTTL
	return e, nil
}

// responseEntry prepares a stored response for serving: its status, and
// the caching headers of RFC 5019 §6.2 computed once.
func responseEntry(resp store.OCSPResponse) (*entry, error) {
	sr, err := readStored(resp)
	if err != nil {
		return nil, err
	}
	return storedEntry(resp, sr), nil
}

// readStored reads a stored response's single answer, which must be about
// its row's serial.
func readStored(resp store.OCSPResponse) (single, error) {
	sr, err := readSingle(resp.DER)
	if err != nil {
		return single{}, fmt.Errorf("stored OCSP response %s/%x: %w", resp.IssuerID, resp.Serial, err)
	}
	if string(sr.serial) != string(resp.Serial) {
		return single{}, fmt.Errorf("stored OCSP response %s/%x answers for serial %x", resp.IssuerID, resp.Serial, sr.serial)
	}
	return sr, nil
}

// storedEntry is the entry of a stored response whose answer is sr.
func storedEntry(resp store.OCSPResponse, sr single) *entry {
	e := staticEntry(resp.DER, "application/ocsp-response", sr.thisUpdate, sr.nextUpdate)
	e.updatedAt = resp.UpdatedAt
	e.outcome = sr.outcome
	if e.cacheUntil = sr.thisUpdate.Add(maxCacheAge); sr.nextUpdate.Before(e.cacheUntil) {
		e.cacheUntil = sr.nextUpdate
	}
	e.maxAge = ocspMaxAge
	return e
}

// ocspMaxAge caps max-age whatever the response's dates, as crlMaxAge
// does a CRL's. A revocation re-signs the certificate's response at once,
// but an HTTP cache (a CDN in front of the responders, a proxy) that holds
// the "good" one serves it until its max-age runs out: a max-age up to
// nextUpdate would have the responders' own front say "good" for up to 4
// days after a revocation, where ETSI EN 319 411-1 has the status
// published within 24 hours. Capped, HTTP caches learn within the hour
// (a client that keeps answers itself may still keep one to nextUpdate);
// an hour of a CDN's caching still spares the responders nearly all
// requests.
const ocspMaxAge = time.Hour

// maxCacheAge bounds how long after its thisUpdate an OCSP response may be
// kept by HTTP caches (a CDN, a relying party): the CA re-signs every
// response by then (ocspsign.MaxRefreshAge, CA/B Forum BR §4.9.10). A
// response valid longer (an expired certificate's lasts 10 days) is not
// kept past the time its successor is due (RFC 5019 §6.2 asks max-age to
// end before nextUpdate, not at it); ocspMaxAge bounds it further.
const maxCacheAge = 4 * 24 * time.Hour

// Run syncs every SyncInterval until ctx ends, and at once when the store
// notifies that responses were stored (PostgreSQL LISTEN/NOTIFY).
func (r *Responder) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.SyncInterval)
	defer t.Stop()
	wake := make(chan struct{}, 1)
	var listening sync.WaitGroup
	listening.Go(func() { r.listen(ctx, wake) })
	defer listening.Wait()
	for {
		if err := r.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.metrics.syncErrors.Inc()
			r.log.Warn("OCSP sync", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
	}
}

// listen passes the store's change notifications to wake, coalesced, and
// listens again after a failure; it returns when ctx ends or when the
// store cannot notify (polling alone then).
func (r *Responder) listen(ctx context.Context, wake chan<- struct{}) {
	for ctx.Err() == nil {
		err := r.store.ListenOCSPChanges(ctx, func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
		if errors.Is(err, store.ErrNoNotifications) || ctx.Err() != nil {
			return
		}
		r.log.Warn("OCSP change notifications", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(10 * r.cfg.SyncInterval):
		}
	}
}

// Sync reads what changed since the last sync: the first sync before
// serving (with the preload), then Run's. A sync that fails leaves the
// cursor where it was.
func (r *Responder) Sync(ctx context.Context) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	c, err := r.sync(ctx, r.cursor, !r.synced)
	if err != nil {
		return err
	}
	r.cursor, r.synced = c, true
	return nil
}

// sync reads the responses stored after cursor, less Overlap, and replaces
// the cached ones they are newer than. The first sync starts Overlap
// before the newest row: the cache fills from misses, not from a scan of
// the whole table. It returns the cursor for the next sync.
func (r *Responder) sync(ctx context.Context, cursor store.OCSPCursor, first bool) (_ store.OCSPCursor, err error) {
	if changed, err := r.loadIssuers(ctx); err != nil {
		return cursor, err
	} else if changed && !first {
		r.log.Info("the store's issuers changed: answering for them", "issuers", len(r.issuers.Load().byID))
	}
	if first {
		latest, err := r.store.LatestOCSPUpdate(ctx)
		if err != nil {
			return cursor, err
		}
		if r.cfg.Preload {
			if err := r.preload(ctx); err != nil {
				return cursor, err
			}
		}
		cursor = store.OCSPCursor{UpdatedAt: latest}
		r.resynced.Store(r.now().UnixNano()) // nothing cached is older than the cache
	}
	// Read again from Overlap before the cursor: rows a slow transaction
	// committed after newer ones were read; and, every ResyncInterval,
	// from ResyncWindow before this node's clock: rows stamped by a CA
	// node whose clock is behind the one that moved the cursor.
	from := store.OCSPCursor{UpdatedAt: cursor.UpdatedAt.Add(-r.cfg.Overlap)}
	if now := r.now(); !first && now.Sub(time.Unix(0, r.resynced.Load())) >= r.cfg.ResyncInterval {
		if wide := now.Add(-r.cfg.ResyncWindow); wide.Before(from.UpdatedAt) {
			from = store.OCSPCursor{UpdatedAt: wide}
		}
		defer func() {
			if err == nil {
				r.resynced.Store(now.UnixNano())
			}
		}()
	}
	newest := cursor
	for {
		page, err := r.store.OCSPResponsesAfter(ctx, from, r.cfg.PageSize)
		if err != nil {
			return cursor, err
		}
		for _, resp := range page {
			r.replace(resp)
			from = resp.After()
			if resp.UpdatedAt.After(newest.UpdatedAt) {
				newest = resp.After()
			}
		}
		if len(page) < r.cfg.PageSize {
			break
		}
	}
	if !newest.UpdatedAt.IsZero() {
		r.lag.Store(int64(r.now().Sub(newest.UpdatedAt)))
	}
	r.metrics.syncs.Inc()
	r.lastSync.Store(r.now().UnixNano())
	r.ready.Store(true)
	return newest, nil
}

// preload reads the stored responses, oldest first, into the cache until
// it holds CacheSize of them (or the table ends).
func (r *Responder) preload(ctx context.Context) error {
	var from store.OCSPCursor
	for n := 0; n < r.cfg.CacheSize; {
		page, err := r.store.OCSPResponsesAfter(ctx, from, min(r.cfg.PageSize, r.cfg.CacheSize-n))
		if err != nil {
			return fmt.Errorf("preload: %w", err)
		}
		for _, resp := range page {
			// Past it, readable or not: a page of rows that cannot be
			// read would otherwise be read again for ever.
			from = resp.After()
			e, err := responseEntry(resp)
			if err != nil {
				r.log.Error("OCSP preload", "err", err)
				continue
			}
			r.cache.put(cacheKey(resp.IssuerID, resp.Serial), e)
			n++
		}
		if len(page) < r.cfg.PageSize {
			break
		}
	}
	return nil
}

// replace puts a synced response in the cache if it has the serial (as a
// response or as "not in the store") and this one is newer. Other serials
// are left to the next miss, which reads the store anyway, but for a
// revocation: a miss may read a replica that has not applied it yet, and
// would keep the good answer it still holds for as long as the sync has
// passed the revocation by (until the resync), so it is cached now, and no
// older answer replaces it (cache.put).
func (r *Responder) replace(resp store.OCSPResponse) {
	key := cacheKey(resp.IssuerID, resp.Serial)
	old, ok := r.cache.get([]byte(key))
	if !ok {
		old, ok = r.unknown.get([]byte(key))
	}
	if ok && old.der != nil && !resp.UpdatedAt.After(old.updatedAt) {
		return
	}
	sr, err := readStored(resp)
	if err != nil {
		r.log.Error("OCSP sync", "err", err)
		return
	}
	if ok || sr.outcome == outcomeRevoked {
		r.keep(key, storedEntry(resp, sr))
	}
}

// keep caches an entry read from the store: a response among the
// responses, in place of any "not in the store" for its serial; "not in
// the store" apart (see Config.CacheSize).
func (r *Responder) keep(key string, e *entry) {
	if e.der == nil {
		r.unknown.put(key, e)
		return
	}
	r.cache.put(key, e)
	r.unknown.delete(key)
}

// appendCertIDKey appends what identifies an issuer in a CertID: the hash
// and the two digests (whose length the hash fixes).
func appendCertIDKey(b []byte, h crypto.Hash, nameHash, keyHash []byte) []byte {
	b = append(b, byte(h))
	b = append(b, nameHash...)
	return append(b, keyHash...)
}

func appendCacheKey(b []byte, issuerID string, serial []byte) []byte {
	b = append(b, issuerID...)
	b = append(b, 0)
	return append(b, serial...)
}

func cacheKey(issuerID string, serial []byte) string {
	return string(appendCacheKey(nil, issuerID, serial))
}

func digest(h crypto.Hash, b []byte) []byte {
	d := h.New()
	d.Write(b)
	return d.Sum(nil)
}

// subjectPublicKeyBits is the issuer key CertID hashes: the BIT STRING of
// subjectPublicKey, without tag, length and unused-bits octet (RFC 6960
// §4.1.1).
func subjectPublicKeyBits(cert *x509.Certificate) ([]byte, error) {
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, err
	}
	return spki.PublicKey.RightAlign(), nil
}

// entry is a body ready to serve with its caching headers: a pre-signed
// OCSP response, a CRL or a CA certificate; or, with der nil, the memory
// that the store had no response for a serial.
//
// A responder may hold millions, so an entry keeps only what serving needs,
// and the header values of a time are shared by every entry of that
// second (responses are signed in bursts).
type entry struct {
	der         []byte
	contentType string
	outcome     outcome
	nextUpdate  time.Time // zero: no expiry (a CA certificate)
	// cacheUntil, when set, is how long HTTP caches may keep it
	// (max-age), before nextUpdate: see responseEntry. maxAge, when set,
	// caps max-age whatever the dates (a CRL's: see crlMaxAge).
	cacheUntil time.Time
	maxAge     time.Duration
	updatedAt  time.Time
	// Headers computed once: the strong ETag is a hash of der; the
	// Last-Modified and Expires values are shared (httpDate).
	etag                                          string
	etagHeader, lastModifiedHeader, expiresHeader []string
	// cc is the Cache-Control value of the current second.
	cc atomic.Pointer[cacheControlValue]

	// When the store was asked, by a request (zero for an entry a sync
	// read): a negative entry, or one past its nextUpdate, is fresh for
	// negativeTTL after.
	checkedAt   time.Time
	negativeTTL time.Duration
}

func staticEntry(der []byte, contentType string, lastModified, nextUpdate time.Time) *entry {
	sum := sha256.Sum256(der)
	e := &entry{der: der, contentType: contentType, nextUpdate: nextUpdate,
		etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`}
	e.etagHeader = []string{e.etag}
	if !lastModified.IsZero() {
		e.lastModifiedHeader = httpDate(lastModified)
	}
	if !nextUpdate.IsZero() {
		e.expiresHeader = httpDate(nextUpdate)
	}
	return e
}

// httpDates interns header values of HTTP dates by second; it starts
// over past maxHTTPDates seconds (days of signing), so it stays small
// however long the responder runs.
var httpDates struct {
	sync.Mutex
	m map[int64][]string
}

const maxHTTPDates = 100_000

// httpDate is t as an HTTP date header value (RFC 9110 §5.6.7), one
// shared slice per second.
func httpDate(t time.Time) []string {
	sec := t.Unix()
	httpDates.Lock()
	defer httpDates.Unlock()
	if v, ok := httpDates.m[sec]; ok {
		return v
	}
	if httpDates.m == nil || len(httpDates.m) >= maxHTTPDates {
		httpDates.m = make(map[int64][]string)
	}
	v := []string{t.UTC().Format(http.TimeFormat)}
	httpDates.m[sec] = v
	return v
}

// fresh reports whether a cached entry may be used without the store: a
// response until its nextUpdate, a negative entry for its TTL.
func (e *entry) fresh(now time.Time) bool {
	if e.der != nil && (e.nextUpdate.IsZero() || now.Before(e.nextUpdate)) {
		return true
	}
	return !e.checkedAt.IsZero() && now.Sub(e.checkedAt) < e.negativeTTL
}

// shardedMap is a bounded map from string keys, in shards so that lookups
// on many cores do not contend on one lock. Past its size a random entry
// of the shard is dropped (Go's map iteration order is random): no
// bookkeeping on the hot path.
//
// Values are found by a 64-bit hash of their key and the key is checked
// on the way out: a map of integers is cheaper to probe than one of
// strings, and two keys of one hash (one in 2^64) only take turns in the
// map, never answer for each other.
type shardedMap[V any] struct {
	seed   maphash.Seed
	shards [cacheShards]shard[V]
	per    int
}

const cacheShards = 64

type shard[V any] struct {
	mu sync.RWMutex
	m  map[uint64]slot[V]
}

type slot[V any] struct {
	key string
	v   V
}

func newShardedMap[V any](size int) *shardedMap[V] {
	c := &shardedMap[V]{seed: maphash.MakeSeed(), per: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]slot[V])
	}
	return c
}

func (c *shardedMap[V]) slot(h uint64) (slot[V], bool) {
	s := &c.shards[h%cacheShards]
	s.mu.RLock()
	sl, ok := s.m[h]
	s.mu.RUnlock()
	return sl, ok
}

// get finds the value of key, given as bytes (built in a stack buffer on
// the hot path) or, with getString, as a string.
func (c *shardedMap[V]) get(key []byte) (V, bool) {
	sl, ok := c.slot(maphash.Bytes(c.seed, key))
	if !ok || sl.key != string(key) {
		var zero V
		return zero, false
	}
	return sl.v, true
}

func (c *shardedMap[V]) getString(key string) (V, bool) {
	sl, ok := c.slot(maphash.String(c.seed, key))
	if !ok || sl.key != key {
		var zero V
		return zero, false
	}
	return sl.v, true
}

// put stores v under key, unless keep says the value already there under
// that key must stay.
func (c *shardedMap[V]) put(key string, v V, keep func(old V) bool) {
	h := maphash.String(c.seed, key)
	s := &c.shards[h%cacheShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[h]
	if ok && old.key == key && keep != nil && keep(old.v) {
		return
	}
	if !ok && len(s.m) >= c.per {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[h] = slot[V]{key: key, v: v}
}

// delete removes key's value, if it holds one.
func (c *shardedMap[V]) delete(key string) {
	h := maphash.String(c.seed, key)
	s := &c.shards[h%cacheShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[h]; ok && old.key == key {
		delete(s.m, h)
	}
}

func (c *shardedMap[V]) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}

// cache holds the responses: a cached one is only a store read away.
type cache struct{ *shardedMap[*entry] }

func newCache(size int) *cache { return &cache{newShardedMap[*entry](size)} }

// put stores e under key, unless the cached entry is a response at least
// as new as e (a sync and a miss may race to store the same serial).
func (c *cache) put(key string, e *entry) {
	// An older response never replaces a newer one; the same one, asked
	// for again (load), replaces itself, to say when.
	c.shardedMap.put(key, e, func(old *entry) bool {
		return old.der != nil && (e.updatedAt.Before(old.updatedAt) || e.updatedAt.Equal(old.updatedAt) && !e.checkedAt.After(old.checkedAt))
	})
}

// getCache keeps parsed GET requests by their encoded path segment. The
// parse of a given string never changes, so nothing expires.
type getCache struct{ *shardedMap[Request] }

// maxGetCache bounds the parsed GET requests kept (each ~300 bytes).
const maxGetCache = 1 << 16

func newGetCache(size int) *getCache { return &getCache{newShardedMap[Request](size)} }

func (c *getCache) put(raw string, req Request) {
	c.shardedMap.put(strings.Clone(raw), req, nil)
}
