package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// offlineVerifier trusts root and reaches no network: every request fails
// at once.
func offlineVerifier(t testing.TB, root *x509.Certificate) *Verifier {
	t.Helper()
	v, err := New(Config{Roots: []*x509.Certificate{root}, RevocationCacheTTL: -1,
		HTTPClient: &http.Client{Transport: failingTransport{}}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("offline")
}

// nest wraps inner in n SEQUENCEs.
func nest(inner []byte, n int) []byte {
	for i := 0; i < n; i++ {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(inner) })
		inner = b.BytesOrPanic()
	}
	return inner
}

// withSignerInfos rebuilds a one-signer CMS with its SignerInfo n times.
func withSignerInfos(t testing.TB, der []byte, n int) []byte {
	t.Helper()
	in := cryptobyte.String(der)
	var ci, content, sd cryptobyte.String
	var oid cryptobyte.String
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.ReadASN1Element(&oid, cbasn1.OBJECT_IDENTIFIER) || !ci.ReadASN1(&content, tagContext0) || !content.ReadASN1(&sd, cbasn1.SEQUENCE) {
		t.Fatal("not a CMS")
	}
	var fields [][]byte
	for !sd.Empty() {
		var f cryptobyte.String
		var tag cbasn1.Tag
		if !sd.ReadAnyASN1Element(&f, &tag) {
			t.Fatal("bad field")
		}
		fields = append(fields, f)
	}
	sis := cryptobyte.String(fields[len(fields)-1])
	var set, si cryptobyte.String
	if !sis.ReadASN1(&set, cbasn1.SET) || !set.ReadASN1Element(&si, cbasn1.SEQUENCE) {
		t.Fatal("bad signerInfos")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(oid)
		b.AddASN1(tagContext0, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, f := range fields[:len(fields)-1] {
					b.AddBytes(f)
				}
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					for i := 0; i < n; i++ {
						b.AddBytes(si)
					}
				})
			})
		})
	})
	return b.BytesOrPanic()
}

// TestHostileInput: what is not a well-formed signature is a
// FORMAT_FAILURE report, never a panic, an error or a hang.
func TestHostileInput(t *testing.T) {
	p := newTestPKI(t)
	key := newKey(t)
	leaf := p.leaf(t, key, citizenSign())
	good := buildCMS(t, document, false, []*x509.Certificate{leaf, p.ca}, cmsSigner{cert: leaf, key: key, signingTime: time.Now()})
	goodJWS := signJWS(t, &cmsSigner{cert: leaf, key: key}, []*x509.Certificate{leaf, p.ca}, document, false, nil)
	hugeAttr := buildCMS(t, document, false, []*x509.Certificate{leaf, p.ca}, cmsSigner{cert: leaf, key: key, extraAttr: func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier([]int{1, 2, 3, 4})
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddASN1OctetString(make([]byte, 1<<20)) })
		})
	}})
	manyAttrs := buildCMS(t, document, false, []*x509.Certificate{leaf, p.ca}, cmsSigner{cert: leaf, key: key, extraAttr: func(b *cryptobyte.Builder) {
		for i := 0; i < 100; i++ {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier([]int{1, 2, 3, 4, i})
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddASN1NULL() })
			})
		}
	}})
	// A length in long form where short form fits: BER, not DER.
	longForm := append([]byte{0x30, 0x84, 0, 0, byte(len(good[4:]) >> 8), byte(len(good[4:]))}, good[4:]...)
	indefinite := append(append([]byte{0x30, 0x80}, good[4:]...), 0, 0)
	parts := strings.Split(goodJWS, ".")
	es256 := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256"}`))
	manySigs := `{"payload":"` + parts[1] + `","signatures":[` + strings.Repeat(`{"protected":"`+es256+`","signature":"`+parts[2]+`"},`, 9999) + `{"protected":"` + es256 + `","signature":"` + parts[2] + `"}]}`
	if good[1] != 0x82 {
		t.Fatalf("test CMS length form %x", good[:4])
	}

	cases := []struct {
		name string
		sig  []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0x30}},
		{"truncated DER", good[:len(good)/2]},
		{"truncated by one byte", good[:len(good)-1]},
		{"trailing data", append(append([]byte{}, good...), 0)},
		{"deep nesting", nest([]byte{0x05, 0x00}, 10000)},
		{"indefinite length (BER)", indefinite},
		{"non-minimal length", longForm},
		{"10 000 signer infos", withSignerInfos(t, good, 10000)},
		{"1 MB signed attribute", hugeAttr},
		{"100 signed attributes", manyAttrs},
		{"PEM of something else", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})},
		{"broken PEM", []byte("-----BEGIN CMS-----\n!!!\n-----END CMS-----\n")},
		{"S/MIME without boundary", []byte("MIME-Version: 1.0\r\nContent-Type: multipart/signed\r\n\r\nx")},
		{"S/MIME with one part", []byte("MIME-Version: 1.0\r\nContent-Type: multipart/signed; boundary=\"b\"\r\n\r\n--b\r\n\r\nhello\r\n--b--\r\n")},
		{"S/MIME bad base64", []byte("Content-Type: application/pkcs7-mime\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n")},
		{"random text", []byte("hello, I am a signature")},
		{"JWS two parts", []byte("eyJhbGciOiJFUzI1NiJ9.e30")},
		{"JWS header not base64", []byte("!!.e30.AAAA")},
		{"JWS header not JSON", []byte(base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".e30.AAAA")},
		{"JWS unknown alg", []byte(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`)) + ".e30.AAAA")},
		{"JWS x5c not base64", []byte(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","x5c":["%%%"]}`)) + "." + parts[1] + "." + parts[2])},
		{"JWS x5c not a certificate", []byte(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","x5c":["AAAA"]}`)) + "." + parts[1] + "." + parts[2])},
		{"JWS JSON with a closing brace too many", []byte(`{"payload":"e30","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}}`)},
		{"JWS JSON with trailing data", []byte(`{"payload":"e30","protected":"` + parts[0] + `","signature":"` + parts[2] + `"} {}`)},
		{"JWS JSON 10 000 signatures", []byte(manySigs)},
		{"JWS JSON not an object", []byte(`{"signatures": 7}`)},
		{"JWS JSON empty signatures", []byte(`{"payload":"e30","signatures":[]}`)},
	}
	v := offlineVerifier(t, p.root)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := v.Verify(context.Background(), tc.sig, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Indication != TotalFailed || res.SubIndication != FormatFailure || len(res.Reports) != 1 {
				var text bytes.Buffer
				_ = res.WriteText(&text)
				t.Fatalf("got %s/%s\n%s", res.Indication, res.SubIndication, text.String())
			}
		})
	}
	// Many signatures over a large payload: refused by count before the
	// payload is decoded even once.
	payload := base64.RawURLEncoding.EncodeToString(make([]byte, 4<<20))
	many := `{"payload":"` + payload + `","signatures":[` + strings.Repeat(`{"protected":"`+es256+`","signature":"AA"},`, 999) + `{"protected":"` + es256 + `","signature":"AA"}]}`
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := v.Verify(context.Background(), []byte(many), nil)
	runtime.ReadMemStats(&after)
	if err != nil || res.SubIndication != FormatFailure {
		t.Errorf("1000 signatures over 4 MB: %+v %v", res, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("1000 signatures over 4 MB allocated %d MB", alloc>>20)
	}
	if _, err := v.Verify(context.Background(), make([]byte, MaxSignatureSize+1), nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized input: %v", err)
	}
}

// TestCertCacheHoldsNoRequest: a CA certificate kept for later signatures
// is parsed from a copy of its bytes, not from the request they came in;
// an end entity's is not kept.
func TestCertCacheHoldsNoRequest(t *testing.T) {
	p := newTestPKI(t)
	v := offlineVerifier(t, p.root)
	request := append([]byte{}, p.ca.Raw...)
	c, err := v.parseCert(request)
	if err != nil {
		t.Fatal(err)
	}
	clear(request)
	cached, ok := v.certCache.get(string(p.ca.Raw))
	if !ok || cached != c || !bytes.Equal(cached.Raw, p.ca.Raw) {
		t.Fatalf("cached CA certificate: %v, raw still intact %v", ok, ok && bytes.Equal(cached.Raw, p.ca.Raw))
	}
	leaf := p.leaf(t, newKey(t), citizenSign())
	if _, err := v.parseCert(leaf.Raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.certCache.get(string(leaf.Raw)); ok {
		t.Error("an end-entity certificate was cached")
	}
}

// TestAIABounded: caIssuers is fetched only when enabled, under the
// allowed prefixes (no dot segments leaving them), from at most two URLs
// of one certificate and eight in one verification, and a URL that failed
// is not asked again for a minute; revocation is asked once per
// certificate in one verification, however many signer infos name it.
func TestAIABounded(t *testing.T) {
	p := newTestPKI(t)
	v, err := New(Config{Roots: []*x509.Certificate{p.root}, AIAPrefixes: []string{p.srv.URL + "/ca/"}})
	if err != nil {
		t.Fatal(err)
	}
	for url, want := range map[string]bool{
		p.srv.URL + "/ca/issuing.crt":                                        true,
		p.srv.URL + "/ca/../dead/1.crt":                                      false,
		p.srv.URL + "/ca/./issuing.crt":                                      false,
		p.srv.URL + "/ca//issuing.crt":                                       false,
		p.srv.URL + "/dead/1.crt":                                            false,
		strings.Replace(p.srv.URL, "://", "://user@", 1) + "/ca/issuing.crt": false,
		"ftp://" + strings.TrimPrefix(p.srv.URL, "http://") + "/ca/x":        false,
	} {
		if got := v.aiaAllowed(url); got != want {
			t.Errorf("aiaAllowed(%s) = %v", url, got)
		}
	}
	off, err := New(Config{Roots: []*x509.Certificate{p.root}})
	if err != nil {
		t.Fatal(err)
	}
	if off.aiaAllowed(p.srv.URL + "/ca/issuing.crt") {
		t.Error("caIssuers fetched with neither AnyAIA nor prefixes")
	}

	// Five signers whose certificates list 50 dead caIssuers URLs first:
	// two tried for each of the first four, then the budget is spent.
	any, err := New(Config{Roots: []*x509.Certificate{p.root}, AnyAIA: true, RevocationCacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	o := citizenSign()
	o.deadCAIssuers = 50
	var signers []cmsSigner
	var certs []*x509.Certificate
	for range 5 {
		k := newKey(t)
		c := p.leaf(t, k, o)
		signers, certs = append(signers, cmsSigner{cert: c, key: k, signingTime: time.Now()}), append(certs, c)
	}
	sig := buildCMS(t, document, true, certs, signers...)
	res, err := any.Verify(context.Background(), sig, document)
	if err != nil || res.SubIndication != NoCertificateChainFound {
		t.Fatalf("dead caIssuers: %+v %v", res, err)
	}
	if n := p.deadRequests.Load(); n != 8 {
		t.Errorf("%d caIssuers requests for one verification, want 8", n)
	}
	if _, err := any.Verify(context.Background(), sig, document); err != nil {
		t.Fatal(err)
	}
	if n := p.deadRequests.Load(); n != 8 {
		t.Errorf("failed caIssuers URLs asked again at once: %d requests", n)
	}

	// One certificate in three signer infos, no revocation cache: one
	// OCSP request.
	k := newKey(t)
	c := p.leaf(t, k, citizenSign())
	s := cmsSigner{cert: c, key: k, signingTime: time.Now()}
	before := p.ocspRequests.Load()
	res, err = any.Verify(context.Background(), buildCMS(t, document, true, []*x509.Certificate{c, p.ca}, s, s, s), document)
	if err != nil || res.Indication != TotalPassed || len(res.Reports) != 3 {
		t.Fatalf("three signer infos: %+v %v", res, err)
	}
	if n := p.ocspRequests.Load() - before; n != 1 {
		t.Errorf("%d OCSP requests for one certificate in one verification", n)
	}
}

// madeUpRSA is a "key" of any size whose private half nobody has: a random
// odd modulus, as an attacker writes into a certificate to make checking
// its signatures expensive. Its signatures are random bytes.
type madeUpRSA struct{ pub *rsa.PublicKey }

func newMadeUpRSA(t testing.TB, bits int) madeUpRSA {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
	if err != nil {
		t.Fatal(err)
	}
	n.SetBit(n, bits-1, 1)
	n.SetBit(n, 0, 1)
	return madeUpRSA{&rsa.PublicKey{N: n, E: 1<<31 - 1}}
}

func (k madeUpRSA) Public() crypto.PublicKey { return k.pub }

func (k madeUpRSA) Sign(_ io.Reader, _ []byte, _ crypto.SignerOpts) ([]byte, error) {
	sig := make([]byte, (k.pub.N.BitLen()+7)/8)
	_, err := rand.Read(sig[1:])
	return sig, err
}

// TestOversizedRSA: a signer certificate (from the trusted CA, so nothing
// else stops it) whose RSA key is above maxRSABits is refused as
// CRYPTO_CONSTRAINTS_FAILURE, in CMS and in JWS, before its signature is
// computed; one within bounds gets as far as the arithmetic, which fails.
func TestOversizedRSA(t *testing.T) {
	p := newTestPKI(t)
	v := offlineVerifier(t, p.root)
	for _, tc := range []struct {
		bits int
		want SubIndication
	}{
		{4096, SigCryptoFailure},
		{maxRSABits + 1, CryptoConstraintsFailure},
		{65536, CryptoConstraintsFailure},
	} {
		key := newMadeUpRSA(t, tc.bits)
		leaf := p.leaf(t, key, citizenSign())
		cms := buildCMS(t, document, false, []*x509.Certificate{leaf, p.ca}, cmsSigner{cert: leaf, key: key, signingTime: time.Now()})
		header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","x5c":["` +
			base64.StdEncoding.EncodeToString(leaf.Raw) + `","` + base64.StdEncoding.EncodeToString(p.ca.Raw) + `"]}`))
		payload := base64.RawURLEncoding.EncodeToString(document)
		sig, _ := key.Sign(nil, nil, nil)
		jws := header + "." + payload + "." + base64.RawURLEncoding.EncodeToString(sig)
		for name, in := range map[string][]byte{"CMS": cms, "JWS": []byte(jws)} {
			res, err := v.Verify(context.Background(), in, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Reports[0].SubIndication; got != tc.want {
				t.Errorf("%s, RSA-%d signer: %s (%s), want %s", name, tc.bits, got, res.Reports[0].Reason, tc.want)
			}
		}
	}

	// An issuer sent with the signer's certificate whose RSA key is above
	// maxCARSABits is asked nothing either: not to build a path, not to
	// say the signer's certificate was signed with an insecure algorithm
	// (here SHA-1, which x509 refuses before any arithmetic, so that
	// asking shows in the report; with SHA-256 it would cost the key's
	// modular exponentiation). One of 4096 bits is asked.
	issuerKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	evil := pkix.Name{CommonName: "Evil CA", Country: []string{"KZ"}}
	key := newKey(t)
	leaf := mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(4242), Subject: pkix.Name{CommonName: "Signer", SerialNumber: "IDCKZ-880312448217"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageContentCommitment,
		SignatureAlgorithm: x509.SHA1WithRSA}, &x509.Certificate{Subject: evil}, key.Public(), issuerKey)
	for _, tc := range []struct {
		bits int
		want SubIndication
	}{
		{maxCARSABits, CryptoConstraintsFailure},
		{maxCARSABits + 1, NoCertificateChainFound},
		{maxRSABits, NoCertificateChainFound},
		{65536, NoCertificateChainFound},
	} {
		bigIssuer := mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(4243), Subject: evil, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign},
			&x509.Certificate{Subject: evil}, newMadeUpRSA(t, tc.bits).pub, newKey(t))
		res, err := v.Verify(context.Background(), buildCMS(t, document, false, []*x509.Certificate{leaf, bigIssuer},
			cmsSigner{cert: leaf, key: key, signingTime: time.Now()}), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Reports[0].SubIndication; got != tc.want {
			t.Errorf("a carried issuer with an RSA-%d key: %s (%s), want %s", tc.bits, got, res.Reports[0].Reason, tc.want)
		}
	}
}

// TestChainBuildingBounded: what a signature may make the path search do
// is bounded by counts: the certificates it carries (32), the path
// searches of one verification (maxChainBuilds x509.Verify calls, each of
// at most 100 signature checks), one search for signers that share their
// certificate, and one candidate issuer per subject and key.
func TestChainBuildingBounded(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	cfg := p.config()
	cfg.AnyAIA, cfg.MaxSigners = false, 64
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	leaf := p.leaf(t, key, citizenSign())

	// More certificates than a path needs are refused, in CMS and in x5c.
	for _, n := range []int{32, 33} {
		certs := []*x509.Certificate{leaf}
		var x5c []string
		for len(certs) < n {
			certs = append(certs, p.ca)
		}
		for _, c := range certs {
			x5c = append(x5c, `"`+base64.StdEncoding.EncodeToString(c.Raw)+`"`)
		}
		cms := buildCMS(t, document, true, certs, cmsSigner{cert: leaf, key: key})
		h, sig := signES256(t, key, `{"alg":"ES256","x5c":[`+strings.Join(x5c, ",")+`]}`, document)
		for name, in := range map[string][]byte{"CMS": cms, "JWS": []byte(h + ".." + sig)} {
			res, err := v.Verify(context.Background(), in, document)
			if err != nil {
				t.Fatal(err)
			}
			refused := res.SubIndication == FormatFailure && strings.Contains(res.Reports[0].Reason, "more than 32 certificates") ||
				strings.Contains(res.Reports[0].Reason, fmt.Sprintf("x5c holds %d certificates, more than the 32 accepted", n))
			if refused != (n > 32) || res.Indication == TotalPassed != (n <= 32) {
				t.Errorf("%s with %d certificates: %s/%s %s", name, n, res.Indication, res.SubIndication, res.Reports[0].Reason)
			}
		}
	}

	// Signers sharing their certificate, the certificates carried and the
	// claimed signing time cost one path search, past the budget.
	signer := cmsSigner{cert: leaf, key: key, signingTime: now.Add(-time.Minute)}
	many := make([]cmsSigner, maxChainBuilds+4)
	for i := range many {
		many[i] = signer
	}
	res, err := v.Verify(context.Background(), buildCMS(t, document, true, []*x509.Certificate{leaf, p.ca}, many...), document)
	if err != nil || res.Indication != TotalPassed || len(res.Reports) != len(many) {
		t.Fatalf("%d signer infos of one certificate: %+v %v", len(many), res, err)
	}
	call := v.newCall()
	for range 3 {
		rep := v.newReport(FormatCMS, 0, call.now)
		rep.SigningTime = signer.signingTime
		v.validateSigner(context.Background(), call, rep, leaf, []*x509.Certificate{leaf, p.ca})
		if rep.Indication != "" {
			t.Fatalf("signer: %s %s", rep.Indication, rep.Reason)
		}
	}
	if call.chainBuilds != 1 {
		t.Errorf("three signers of one certificate: %d path searches", call.chainBuilds)
	}

	// Signers from a CA nobody trusts, each with a certificate of its
	// own: the first maxChainBuilds are searched, the others are not.
	other := newTestPKI(t)
	var signers []cmsSigner
	certs := []*x509.Certificate{other.ca}
	for range maxChainBuilds + 4 {
		k := newKey(t)
		c := other.leaf(t, k, citizenSign())
		signers, certs = append(signers, cmsSigner{cert: c, key: k}), append(certs, c)
	}
	res, err = v.Verify(context.Background(), buildCMS(t, document, true, certs, signers...), document)
	if err != nil {
		t.Fatal(err)
	}
	subs := map[SubIndication]int{}
	for _, r := range res.Reports {
		subs[r.SubIndication]++
	}
	if subs[NoCertificateChainFound] != maxChainBuilds || subs[CertificateChainGeneralFail] != 4 || res.SubIndication != NoCertificateChainFound {
		t.Errorf("%d signers from an unknown CA: %v", len(signers), subs)
	}
}

// TestDistinctIssuers: of the certificates with the same subject and key,
// one is a candidate issuer, the one valid at the first time tried.
func TestDistinctIssuers(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	renewed := func(serial int64, notAfter time.Time) *x509.Certificate {
		return mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: p.ca.Subject,
			NotBefore: now.AddDate(-3, 0, 0), NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign}, p.root, p.caKey.Public(), p.rootKey)
	}
	expired, current, again := renewed(30, now.Add(-time.Hour)), renewed(31, now.AddDate(1, 0, 0)), renewed(32, now.AddDate(2, 0, 0))
	otherKey := mustCert(t, &x509.Certificate{SerialNumber: big.NewInt(33), Subject: p.ca.Subject,
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, p.root, newKey(t).Public(), p.rootKey)
	got := distinctIssuers([]*x509.Certificate{expired, p.root, current, otherKey, again}, []time.Time{now})
	if want := []*x509.Certificate{p.root, current, otherKey}; !slices.Equal(got, want) {
		t.Errorf("kept %d certificates: %v", len(got), got)
	}
	if got := distinctIssuers([]*x509.Certificate{expired}, []time.Time{now}); len(got) != 1 {
		t.Errorf("the only certificate of its key was dropped")
	}
}

// TestJWSSignerBound: a JWS JSON document carries at most 32 signatures,
// go-jose's own bound, whatever Config.MaxSigners allows: 32 copies of one
// good signature verify, each reported; 33 are refused as a format failure
// in this package's words, where go-jose's own error was quoted.
func TestJWSSignerBound(t *testing.T) {
	p := newTestPKI(t)
	cfg := p.config()
	cfg.MaxSigners = 64
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	leaf := p.leaf(t, key, citizenSign())
	parts := strings.Split(signJWS(t, &cmsSigner{cert: leaf, key: key}, []*x509.Certificate{leaf, p.ca}, document, false, nil), ".")
	one := `{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`
	for _, n := range []int{32, 33} {
		doc := `{"payload":"` + parts[1] + `","signatures":[` + strings.Repeat(one+",", n-1) + one + `]}`
		res, err := v.Verify(context.Background(), []byte(doc), nil)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case n <= 32 && (res.Indication != TotalPassed || len(res.Reports) != n):
			t.Errorf("%d signatures: %s/%s, %d reports; want TOTAL_PASSED, each reported", n, res.Indication, res.SubIndication, len(res.Reports))
		case n > 32 && (res.SubIndication != FormatFailure || !strings.Contains(res.Reports[0].Reason, "33 signatures, more than the 32 accepted")):
			t.Errorf("%d signatures: %s/%s %q; want a format failure saying 32 are accepted", n, res.Indication, res.SubIndication, res.Reports[0].Reason)
		}
	}
}
