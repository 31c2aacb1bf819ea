package endpoint

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/sanadpki/sanad/verify"
)

// fixture is a root and a signer it certified directly, with no OCSP or
// CRL: every valid signature is INDETERMINATE/TRY_LATER, which is enough
// to see the report come back whole; the passing path is tested end to
// end in cmd/sanad against a real deployment.
type fixture struct {
	srv     *httptest.Server
	h       *Handler
	sig     []byte
	content []byte
}

func newFixture(t *testing.T, maxContent int64) *fixture { return newFixtureN(t, maxContent, 4) }

// newFixtureN is a fixture verifying at most maxConcurrent requests at once.
func newFixtureN(t *testing.T, maxContent int64, maxConcurrent int) *fixture {
	t.Helper()
	return newFixtureOCSP(t, maxContent, maxConcurrent, "")
}

// newFixtureOCSP is a fixture whose signer's certificate names ocspURL
// as its OCSP responder, if any.
func newFixtureOCSP(t *testing.T, maxContent int64, maxConcurrent int, ocspURL string) *fixture {
	t.Helper()
	return newFixtureWith(t, maxContent, maxConcurrent, ocspURL, nil, nil)
}

// newFixtureWith is newFixtureOCSP with the verifier's configuration and
// the server changed by cfg and srv, when not nil.
func newFixtureWith(t *testing.T, maxContent int64, maxConcurrent int, ocspURL string, cfg func(*verify.Config), server func(*http.Server)) *fixture {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Root"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Signer", SerialNumber: "IDCKZ-880312448217"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageContentCommitment, OCSPServer: ocspServers(ocspURL)}, root, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	content := []byte("a tax filing")
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		t.Fatal(err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256) // its default is SHA-1, which verify refuses
	if err := sd.AddSigner(leaf, key, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	sd.Detach()
	sig, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	vcfg := verify.Config{Roots: []*x509.Certificate{root}}
	if cfg != nil {
		cfg(&vcfg)
	}
	v, err := verify.New(vcfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h := New(v, maxContent, maxConcurrent, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.Register(mux)
	srv := httptest.NewUnstartedServer(mux)
	if server != nil {
		server(srv.Config)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, h: h, sig: sig, content: content}
}

func ocspServers(url string) []string {
	if url == "" {
		return nil
	}
	return []string{url}
}

func (f *fixture) post(t *testing.T, contentType string, body []byte) (int, map[string]any, string) {
	t.Helper()
	resp, err := http.Post(f.srv.URL+"/api/v1/verify", contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%d %q is not JSON", resp.StatusCode, raw)
	}
	return resp.StatusCode, out, resp.Header.Get("Content-Type")
}

func multipartBody(t *testing.T, parts map[string][]byte) (string, []byte) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for name, data := range parts {
		fw, err := w.CreateFormFile(name, name+".bin")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(data)
	}
	_ = w.Close()
	return w.FormDataContentType(), b.Bytes()
}

func jsonBody(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifyEndpoint: JSON and multipart requests get the report; a
// changed content gets HASH_FAILURE; what is not a request gets its
// problem document, and a signature that is not one gets FORMAT_FAILURE.
func TestVerifyEndpoint(t *testing.T) {
	f := newFixture(t, 1024)
	b64 := base64.StdEncoding.EncodeToString
	mpType, mp := multipartBody(t, map[string][]byte{"signature": f.sig, "content": f.content})
	mpChangedType, mpChanged := multipartBody(t, map[string][]byte{"signature": f.sig, "content": []byte("another filing")})
	mpUnknownType, mpUnknown := multipartBody(t, map[string][]byte{"signature": f.sig, "file": f.content})
	mpNoSigType, mpNoSig := multipartBody(t, map[string][]byte{"content": f.content})
	mpBigType, mpBig := multipartBody(t, map[string][]byte{"signature": f.sig, "content": make([]byte, 2048)})
	cases := []struct {
		name        string
		contentType string
		body        []byte
		status      int
		want        string // indication/sub-indication, or problem type
	}{
		{"JSON", "application/json", jsonBody(t, Request{Signature: b64(f.sig), Content: b64(f.content)}), 200, "INDETERMINATE/TRY_LATER"},
		{"JSON signature text", "application/json; charset=utf-8", jsonBody(t, Request{SignatureText: "-----BEGIN CMS-----\n" + b64(f.sig) + "\n-----END CMS-----\n", Content: b64(f.content)}), 200, "INDETERMINATE/TRY_LATER"},
		{"multipart", mpType, mp, 200, "INDETERMINATE/TRY_LATER"},
		{"content changed", mpChangedType, mpChanged, 200, "TOTAL_FAILED/HASH_FAILURE"},
		{"detached without content", "application/json", jsonBody(t, Request{Signature: b64(f.sig)}), 200, "INDETERMINATE/SIGNED_DATA_NOT_FOUND"},
		{"not a signature", "application/json", jsonBody(t, Request{SignatureText: "hello"}), 200, "TOTAL_FAILED/FORMAT_FAILURE"},
		{"JSON, slashes escaped, names in capitals", "application/json", []byte(`{"SIGNATURE":"` + strings.ReplaceAll(b64(f.sig), "/", `\/`) + `\r\n", "Content": "` + b64(f.content) + `"}`), 200, "INDETERMINATE/TRY_LATER"},
		{"JSON, content null", "application/json", []byte(`{"signature":"` + b64(f.sig) + `","content":null}`), 200, "INDETERMINATE/SIGNED_DATA_NOT_FOUND"},
		{"a member twice", "application/json", []byte(`{"signature_text":"x","Signature_Text":"x"}`), 400, "invalid-request"},
		{"a member not a string", "application/json", []byte(`{"signature":["AAAA"]}`), 400, "invalid-request"},
		{"signature_text not UTF-8", "application/json", []byte("{\"signature_text\":\"\xff\"}"), 400, "invalid-request"},
		{"wrong media type", "text/plain", f.sig, 415, "unsupported-media-type"},
		{"no media type", "", f.sig, 415, "unsupported-media-type"},
		{"not JSON", "application/json", []byte("{"), 400, "invalid-request"},
		{"unknown field", "application/json", []byte(`{"sig":"AAAA"}`), 400, "invalid-request"},
		{"two JSON objects", "application/json", []byte(`{"signature_text":"x"} {}`), 400, "invalid-request"},
		{"a closing brace too many", "application/json", []byte(`{"signature_text":"x"}}`), 400, "invalid-request"},
		{"both signatures", "application/json", jsonBody(t, Request{Signature: b64(f.sig), SignatureText: "x"}), 400, "invalid-request"},
		{"no signature", "application/json", []byte(`{}`), 400, "invalid-request"},
		{"bad base64", "application/json", []byte(`{"signature":"%%%"}`), 400, "invalid-request"},
		{"content too large (JSON)", "application/json", jsonBody(t, Request{Signature: b64(f.sig), Content: b64(make([]byte, 2048))}), 413, "request-too-large"},
		{"content too large (multipart)", mpBigType, mpBig, 413, "request-too-large"},
		{"body too large", "application/json", append([]byte(`{"signature_text":"`), bytes.Repeat([]byte("A"), 23<<20)...), 413, "request-too-large"},
		{"unknown part", mpUnknownType, mpUnknown, 400, "invalid-request"},
		{"no signature part", mpNoSigType, mpNoSig, 400, "invalid-request"},
		{"broken multipart", "multipart/form-data; boundary=x", []byte("--x\r\nbroken"), 400, "invalid-request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out, ct := f.post(t, tc.contentType, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, out)
			}
			if status != 200 {
				if ct != "application/problem+json" || out["type"] != "urn:sanad:problem:"+tc.want {
					t.Errorf("problem %s %v", ct, out)
				}
				return
			}
			got := out["indication"].(string)
			if s, _ := out["sub_indication"].(string); s != "" {
				got += "/" + s
			}
			reports, _ := out["reports"].([]any)
			if got != tc.want || len(reports) != 1 || ct != "application/json" {
				t.Errorf("got %s (%s), %d reports, want %s", got, ct, len(reports), tc.want)
			}
		})
	}
	// The report names the signer.
	_, out, _ := f.post(t, "application/json", jsonBody(t, Request{Signature: b64(f.sig), Content: b64(f.content)}))
	rep := out["reports"].([]any)[0].(map[string]any)
	if signer, _ := rep["signer"].(map[string]any); signer["national_id"] != "IDCKZ-880312448217" || !strings.Contains(rep["reason"].(string), "no OCSP responder and no CRL") {
		t.Errorf("report %v", rep)
	}
}

// TestBusy: clients whose bodies are still arriving hold read slots, not
// verification slots: two such clients (a review took the whole verify API
// down with two) do not stop a third client's verification. A client
// holding its share (half the verification slots) is answered 429 at
// once; with every read slot taken (four times the verification slots),
// another client waits busyWait, then is answered 503 "busy" with a
// Retry-After; a body that takes longer than readTimeout is cut off and
// frees its slot. Clients are told apart behind a trusted proxy by
// X-Forwarded-For.
func TestBusy(t *testing.T) {
	f := newFixtureN(t, 1024, 2)
	f.h.TrustProxies([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	f.h.busyWait = 200 * time.Millisecond
	body := jsonBody(t, Request{Signature: base64.StdEncoding.EncodeToString(f.sig), Content: base64.StdEncoding.EncodeToString(f.content)})
	post := func(client string, r io.Reader) (*http.Response, []byte, error) {
		req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/api/v1/verify", r)
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		return resp, raw, err
	}
	type slow struct {
		body *io.PipeWriter
		done chan int
	}
	// trickle starts a request from each client that sends ten bytes of
	// its body and waits, and returns once all hold read slots.
	trickle := func(clients ...string) []slow {
		t.Helper()
		var slows []slow
		held := len(f.h.reads)
		for _, client := range clients {
			pr, pw := io.Pipe()
			s := slow{pw, make(chan int, 1)}
			go func() {
				resp, _, err := post(client, pr)
				if err != nil {
					s.done <- 0
					return
				}
				s.done <- resp.StatusCode
			}()
			if _, err := pw.Write(body[:10]); err != nil {
				t.Fatal(err)
			}
			slows = append(slows, s)
		}
		// The bytes written reached the client's transport, not yet the
		// handlers: wait until they hold their slots.
		for deadline := time.Now().Add(time.Minute); len(f.h.reads) < held+len(clients); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the slow requests hold %d read slots after a minute", len(f.h.reads))
			}
		}
		return slows
	}
	finish := func(slows []slow) {
		t.Helper()
		for _, s := range slows {
			if _, err := s.body.Write(body[10:]); err != nil {
				t.Fatal(err)
			}
			s.body.Close()
			if status := <-s.done; status != http.StatusOK {
				t.Fatalf("a slow request: %d", status)
			}
		}
	}

	slows := trickle("10.0.0.1", "10.0.0.2")
	if resp, raw, err := post("10.0.0.3", bytes.NewReader(body)); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("beside two slow bodies: %v %s", err, raw)
	}
	resp, raw, err := post("10.0.0.1", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusTooManyRequests || problemType(t, raw) != "urn:sanad:problem:rate-limited" {
		t.Errorf("a client holding its share of the slots: %d, %s", resp.StatusCode, raw)
	}
	slows = append(slows, trickle("10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8", "10.0.0.9")...)
	resp, raw, err = post("10.0.0.10", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || problemType(t, raw) != "urn:sanad:problem:busy" || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("with every read slot taken: %d, Retry-After %q, %s", resp.StatusCode, resp.Header.Get("Retry-After"), raw)
	}
	finish(slows)
	if resp, raw, err := post("10.0.0.10", bytes.NewReader(body)); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("after the slots came free: %v %s", err, raw)
	}

	// A body slower than readTimeout is cut off, and its slot freed.
	f.h.readTimeout = 200 * time.Millisecond
	cut := trickle("10.0.0.11")
	if status := <-cut[0].done; status == http.StatusOK {
		t.Errorf("a body that never finished was verified")
	}
	for deadline := time.Now().Add(time.Minute); len(f.h.reads) > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d read slots still held after the read timeout", len(f.h.reads))
		}
	}
	cut[0].body.Close()
}

func problemType(t *testing.T, raw []byte) string {
	t.Helper()
	var p struct{ Type string }
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("%q is not a problem document", raw)
	}
	return p.Type
}

// TestAnswerOutlastsWriteTimeout: a verification whose fetches take their
// whole time (verify.Config.Timeout: here a responder that never answers)
// is answered, TRY_LATER, even past the server's write timeout.
func TestAnswerOutlastsWriteTimeout(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	f := newFixtureWith(t, 1<<20, 4, hang.URL, func(c *verify.Config) { c.Timeout = 400 * time.Millisecond },
		func(s *http.Server) { s.WriteTimeout = 100 * time.Millisecond })
	code, out, _ := f.post(t, "application/json", jsonBody(t, map[string]any{"signature": f.sig, "content": f.content}))
	if code != http.StatusOK || out["sub_indication"] != "TRY_LATER" {
		t.Errorf("%d %v; want 200 and TRY_LATER", code, out)
	}
}
