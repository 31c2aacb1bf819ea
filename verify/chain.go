package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
)

// Certificate sources in a report's chain.
const (
	sourceSignature   = "signature"
	sourceConfigured  = "configured"
	sourceAIA         = "aia"
	sourceTrustAnchor = "trust-anchor"
)

// chain is a certification path, signer first, trust anchor last.
type chain struct {
	certs   []*x509.Certificate
	sources []string
	urls    []string
}

// chainOutcome is what buildChain found: a path, or why there is none,
// as the report's chain check says it.
type chainOutcome struct {
	c      *chain
	ind    Indication // when c is nil
	sub    SubIndication
	detail string
}

func noChain(ind Indication, sub SubIndication, format string, args ...any) chainOutcome {
	return chainOutcome{ind: ind, sub: sub, detail: fmt.Sprintf(format, args...)}
}

// chainFor records in rep the chain check of leaf with the certificates
// carried, as of times (buildChain), and returns the path, nil if none.
// A verification builds it once: signers that share their certificate,
// what they carry and the times share the outcome, and the path search,
// the costly part of a verification, is not the sender's to repeat.
func (v *Verifier) chainFor(ctx context.Context, call *call, rep *Report, leaf *x509.Certificate, carried []*x509.Certificate, times ...time.Time) *chain {
	h := sha256.New()
	for _, c := range append([]*x509.Certificate{leaf}, carried...) {
		h.Write(c.Raw) // DER: each certificate says where it ends
	}
	for _, t := range times {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())))
	}
	key := [sha256.Size]byte(h.Sum(nil))
	o, built := call.chains[key]
	if !built {
		o = v.buildChain(ctx, call, rep, leaf, carried, times...)
		call.chains[key] = o
	}
	if o.c == nil {
		rep.fail("chain", o.ind, o.sub, "%s", o.detail)
	} else {
		rep.pass("chain", "%s", o.detail)
	}
	return o.c
}

// buildChain builds a path from leaf to a configured root as of the first
// of times that has one (the last is the one a failure is reported at), with
// the certificates the signature carried, the configured intermediates
// and, when one is missing, the caIssuers URLs of the path (RFC 5280
// §4.2.2.1). rep only names the certificates.
//
// Each x509.Verify checks up to 100 signatures (x509's own bound), each
// with a key the sender may have chosen: a verification makes at most
// maxChainBuilds of them, and the certificates it tries as issuers are
// few (maxCertificates), one per subject and key (distinctIssuers), and
// not RSA above maxCARSABits.
func (v *Verifier) buildChain(ctx context.Context, call *call, rep *Report, leaf *x509.Certificate, carried []*x509.Certificate, times ...time.Time) chainOutcome {
	at := times[len(times)-1]
	// A CA certificate with an RSA key above maxCARSABits joins no path
	// and is asked nothing: checking a signature with its key would cost
	// what the sender chose.
	carried = distinctIssuers(withoutOversizedRSA(carried), times)
	source := map[string]string{}
	fetchedFrom := map[string]string{}
	pool := x509.NewCertPool()
	for _, c := range v.cfg.Intermediates {
		pool.AddCert(c)
		source[string(c.Raw)] = sourceConfigured
	}
	for _, c := range carried {
		pool.AddCert(c)
		if _, ok := source[string(c.Raw)]; !ok {
			source[string(c.Raw)] = sourceSignature
		}
	}
	var fetchNotes []string
	for fetched := 0; ; fetched++ {
		var (
			chains [][]*x509.Certificate
			err    error
		)
		for _, t := range times {
			if call.chainBuilds == maxChainBuilds {
				return noChain(Indeterminate, CertificateChainGeneralFail, "path not searched: this verification has searched %d paths, as many as one may (each up to 100 signature checks)", maxChainBuilds)
			}
			call.chainBuilds++
			chains, err = leaf.Verify(x509.VerifyOptions{
				Roots: v.roots, Intermediates: pool, CurrentTime: t,
				// The signer's extended key usage is checked against the
				// signing purpose in checkConstraints, with its own report.
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			})
			if err == nil {
				break
			}
		}
		if err == nil {
			c := &chain{certs: v.preferNational(chains)}
			// Every key of the path as the signer's: a CA or root with a
			// short RSA key makes the path no stronger than it.
			for _, cert := range c.certs[1:] {
				if p := rsaSizeProblem(cert.PublicKey); p != "" {
					return noChain(Indeterminate, CryptoConstraintsFailure, "%q of the path: %s", rep.subject(cert), p)
				}
			}
			for i, cert := range c.certs {
				src, url := source[string(cert.Raw)], fetchedFrom[string(cert.Raw)]
				switch {
				case i == len(c.certs)-1:
					src = sourceTrustAnchor
				case i == 0:
					src = sourceSignature
				}
				c.sources, c.urls = append(c.sources, src), append(c.urls, url)
			}
			detail := fmt.Sprintf("path of %d certificates to trust anchor %q", len(c.certs), rep.subject(c.certs[len(c.certs)-1]))
			if len(fetchNotes) > 0 {
				detail += "; " + strings.Join(fetchNotes, "; ")
			}
			return chainOutcome{c: c, detail: detail}
		}
		var unknown x509.UnknownAuthorityError
		var invalid x509.CertificateInvalidError
		switch {
		case errors.As(err, &unknown):
			if unknown.Cert != nil {
				if insecure := v.insecureIssuer(unknown.Cert, carried); insecure != nil {
					// The issuer is at hand but signed with an algorithm
					// x509 no longer accepts (SHA-1): not a missing chain.
					return noChain(Indeterminate, CryptoConstraintsFailure, "%q: %v", rep.subject(unknown.Cert), insecure)
				}
			}
			if fetched >= maxAIADepth || unknown.Cert == nil {
				return noChain(Indeterminate, NoCertificateChainFound, "no path to a trust anchor: %v%s", err, notes(fetchNotes))
			}
			// The certificate whose issuer is missing says where to get it:
			// its first two caIssuers URLs, within the verification's budget. It is
			// not trusted yet, so neither is what it names.
			missing := unknown.Cert
			got := false
			for i, url := range missing.IssuingCertificateURL {
				if i == maxAIAURLs {
					fetchNotes = append(fetchNotes, fmt.Sprintf("%d more caIssuers URLs not tried", len(missing.IssuingCertificateURL)-i))
					break
				}
				if !v.aiaAllowed(url) {
					fetchNotes = append(fetchNotes, fmt.Sprintf("caIssuers %s: not fetched (%s)", url, v.aiaPolicy()))
					continue
				}
				if call.aiaFetches == maxAIAFetches {
					fetchNotes = append(fetchNotes, fmt.Sprintf("caIssuers %s: not fetched (%d fetches for this verification already)", url, maxAIAFetches))
					break
				}
				call.aiaFetches++
				certs, ferr := v.fetchIssuer(ctx, url)
				if ferr == nil {
					certs = withoutOversizedRSA(certs)
					if len(certs) == 0 {
						ferr = fmt.Errorf("no certificate with an RSA key of at most %d bits", maxCARSABits)
					}
				}
				if ferr != nil {
					fetchNotes = append(fetchNotes, fmt.Sprintf("caIssuers %s: %v", url, ferr))
					continue
				}
				for _, c := range certs {
					pool.AddCert(c)
					if _, ok := source[string(c.Raw)]; !ok {
						source[string(c.Raw)], fetchedFrom[string(c.Raw)] = sourceAIA, url
					}
				}
				fetchNotes = append(fetchNotes, fmt.Sprintf("issuer of %q fetched from caIssuers %s", rep.subject(missing), url))
				got = true
				break
			}
			if !got {
				if len(missing.IssuingCertificateURL) == 0 {
					fetchNotes = append(fetchNotes, fmt.Sprintf("%q names no caIssuers URL", rep.subject(missing)))
				}
				if ctx.Err() != nil {
					// The verification's time for fetches ran out
					// (Config.Timeout): the issuer may well be there.
					return noChain(Indeterminate, TryLater, "no path to a trust anchor yet: issuer of %q not fetched in time%s", rep.subject(missing), notes(fetchNotes))
				}
				return noChain(Indeterminate, NoCertificateChainFound, "no path to a trust anchor: issuer of %q unavailable%s", rep.subject(missing), notes(fetchNotes))
			}
		case errors.As(err, &invalid) && (invalid.Reason == x509.Expired):
			return noChain(Indeterminate, OutOfBoundsNoPOE, "a certificate of the path is not valid at %s: %v", at.UTC().Format(time.RFC3339), err)
		default:
			return noChain(Indeterminate, ChainConstraintsFailure, "path to a trust anchor refused: %v", err)
		}
	}
}

// preferNational is the first of chains that ends at a national root, or
// the first of them: a national signer is held to the national rules
// (signerConstraints) whatever copy of its issuing CA it carries, such as
// one a foreign root cross-certified.
func (v *Verifier) preferNational(chains [][]*x509.Certificate) []*x509.Certificate {
	for _, c := range chains {
		if v.national[string(c[len(c)-1].Raw)] {
			return c
		}
	}
	return chains[0]
}

// insecureIssuer returns the error of a known issuer of c (configured,
// trusted or carried) whose signature on c uses an algorithm x509 refuses
// as insecure, or nil. x509 refuses those before any arithmetic; for any
// other algorithm nothing is checked, as checking would cost a signature
// check per issuer of c's name.
func (v *Verifier) insecureIssuer(c *x509.Certificate, carried []*x509.Certificate) error {
	if !slices.Contains(insecureAlgorithms, c.SignatureAlgorithm) {
		return nil
	}
	for _, set := range [][]*x509.Certificate{v.cfg.Roots, v.cfg.ForeignRoots, v.cfg.Intermediates, carried} {
		for _, issuer := range set {
			if !bytes.Equal(issuer.RawSubject, c.RawIssuer) {
				continue
			}
			var insecure x509.InsecureAlgorithmError
			if err := c.CheckSignatureFrom(issuer); errors.As(err, &insecure) {
				return err
			}
		}
	}
	return nil
}

// insecureAlgorithms are the signature algorithms x509 refuses with an
// InsecureAlgorithmError.
var insecureAlgorithms = []x509.SignatureAlgorithm{x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1}

// distinctIssuers keeps one of the certificates with the same subject and
// key: x509 checks a signature with each, and the same key gives the same
// answer. Kept is the first valid at the first of times, else at a later
// one, else the first: a CA certificate renewed with its key may come with
// the one it replaced. The order of certs is kept; certs is not modified.
func distinctIssuers(certs []*x509.Certificate, times []time.Time) []*x509.Certificate {
	rank := func(c *x509.Certificate) int {
		for i, t := range times {
			if !t.Before(c.NotBefore) && !t.After(c.NotAfter) {
				return len(times) - i
			}
		}
		return 0
	}
	id := func(c *x509.Certificate) string { return string(c.RawSubject) + string(c.RawSubjectPublicKeyInfo) }
	kept := map[string]*x509.Certificate{}
	for _, c := range certs {
		if k, ok := kept[id(c)]; !ok || rank(c) > rank(k) {
			kept[id(c)] = c
		}
	}
	return slices.DeleteFunc(slices.Clone(certs), func(c *x509.Certificate) bool { return kept[id(c)] != c })
}

func notes(n []string) string {
	if len(n) == 0 {
		return ""
	}
	return " (" + strings.Join(n, "; ") + ")"
}

// aiaAllowed says whether a caIssuers URL may be fetched: any http(s) URL
// with Config.AnyAIA, else one under Config.AIAPrefixes, its path free of
// dot segments (which would leave the prefix) and of user information.
func (v *Verifier) aiaAllowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return false
	}
	if v.cfg.AnyAIA {
		return true
	}
	if u.Path != "" && path.Clean(u.Path) != u.Path && path.Clean(u.Path)+"/" != u.Path {
		return false
	}
	for _, p := range v.cfg.AIAPrefixes {
		if strings.HasPrefix(raw, p) {
			return true
		}
	}
	return false
}

func (v *Verifier) aiaPolicy() string {
	if len(v.cfg.AIAPrefixes) == 0 {
		return "fetching caIssuers is not enabled"
	}
	return "not under an allowed prefix"
}

// fetchIssuer gets the certificates at a caIssuers URL: DER, PEM, or a
// certs-only CMS ("application/pkcs7-mime", RFC 5280 §4.2.2.1).
func (v *Verifier) fetchIssuer(ctx context.Context, url string) ([]*x509.Certificate, error) {
	if certs, ok := v.aiaCache.get(url); ok {
		return certs, nil
	}
	if err, ok := v.aiaFailures.get(url); ok {
		return nil, fmt.Errorf("%w (a minute ago; not asked again yet)", err)
	}
	body, err := v.fetch(ctx, http.MethodGet, url, "", nil, v.aiaAllowed)
	var certs []*x509.Certificate
	if err == nil {
		// Not quoted: crypto/x509's errors quote what they cannot parse
		// (a name, a URI), which the far side chose.
		if certs, err = parseCertificates(body); err != nil {
			err = errors.New("the answer is neither a certificate, a PEM of certificates nor a certs-only CMS that can be parsed")
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			v.aiaFailures.put(url, err, time.Time{})
		}
		return nil, err
	}
	v.aiaCache.put(url, certs, time.Time{})
	return certs, nil
}

func parseCertificates(b []byte) ([]*x509.Certificate, error) {
	if block, _ := pem.Decode(b); block != nil {
		var certs []*x509.Certificate
		for rest := b; ; {
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type == "CERTIFICATE" {
				c, err := x509.ParseCertificate(block.Bytes)
				if err != nil {
					return nil, err
				}
				certs = append(certs, c)
			}
		}
		if len(certs) == 0 {
			return nil, errors.New("no certificate in PEM")
		}
		return certs, nil
	}
	if c, err := x509.ParseCertificate(b); err == nil {
		return []*x509.Certificate{c}, nil
	}
	sd, err := parseSignedData(b, x509.ParseCertificate)
	if err != nil {
		return nil, fmt.Errorf("neither a certificate nor a certs-only CMS: %w", err)
	}
	if len(sd.certs) == 0 {
		return nil, errors.New("certs-only CMS without certificates")
	}
	return sd.certs, nil
}

// fetch makes one HTTP request (http and https URLs only) and returns a
// body of at most maxFetchSize bytes from a 200 answer. It follows at most
// three redirects, each to a URL allowed says may be fetched.
func (v *Verifier) fetch(ctx context.Context, method, url, contentType string, body []byte, allowed func(string) bool) ([]byte, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, fmt.Errorf("not an http(s) URL")
	}
	var r io.Reader
	if body != nil {
		r = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	client := *v.cfg.HTTPClient
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		switch {
		case len(via) > 3:
			return errTooManyRedirects
		case r.URL.Scheme != "http" && r.URL.Scheme != "https", !allowed(r.URL.String()):
			return errRedirectRefused
		}
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, networkError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchSize+1))
	if err != nil {
		return nil, networkError(err)
	}
	if len(b) > maxFetchSize {
		return nil, fmt.Errorf("answer larger than %d bytes", maxFetchSize)
	}
	return b, nil
}

// Refusals of a redirect (fetch). Neither names the URL redirected to,
// which a configured, internal responder may have chosen.
var (
	errTooManyRedirects = errors.New("more than 3 redirects")
	errRedirectRefused  = errors.New("redirect to a URL the verifier may not fetch refused")
)

// networkError is what a report says of a fetch that failed on the way:
// the kind of failure, without the addresses, resolvers, host names and
// answer bytes the error names (a report goes to whoever asked the verify
// API, and a configured responder may be an internal host). Of a failure
// of no kind known here, it says only that no HTTP answer was read.
func networkError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var dns *net.DNSError
	var op *net.OpError
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return errors.New("no answer in time")
	case errors.Is(err, context.Canceled):
		return err
	case tlsFailure(err):
		return errors.New("TLS handshake failed")
	case errors.As(err, &dns):
		return errors.New("the host name did not resolve")
	case errors.As(err, &op):
		return fmt.Errorf("could not be reached (%s failed)", op.Op)
	case errors.Is(err, errTooManyRedirects), errors.Is(err, errRedirectRefused):
		return err
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the connection closed before a whole answer")
	}
	// A malformed answer, for one: net/http quotes its bytes.
	return errors.New("no well-formed HTTP answer")
}

// tlsFailure says whether err is a failed TLS handshake, whose text names
// the server's certificate names ("x509: certificate is valid for
// ocsp.internal, not …"): the certificate refused, a record that is not
// TLS, an alert either side sent (crypto/tls reports those as a "remote
// error" or "local error" net.OpError), or another of crypto/tls's
// handshake errors, which are plain "tls: …" errors.
func tlsFailure(err error) bool {
	var verification *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	var op *net.OpError
	return errors.As(err, &verification) || errors.As(err, &record) ||
		errors.As(err, &op) && (op.Op == "remote error" || op.Op == "local error") ||
		strings.HasPrefix(err.Error(), "tls: ")
}
