package endpoint

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// budgetClient posts to f from clients told apart by X-Forwarded-For.
type budgetClient struct {
	t    *testing.T
	f    *fixture
	body []byte
}

// post sends r as client's body, with a Content-Length of size unless it
// is negative (chunked), and returns the answer: its status (0 if none,
// problem then saying why), its problem type and its Retry-After.
func (c *budgetClient) post(client string, r io.Reader, size int64) (status int, problem, retryAfter string) {
	req, err := http.NewRequest(http.MethodPost, c.f.srv.URL+"/api/v1/verify", r)
	if err != nil {
		return 0, err.Error(), ""
	}
	if size >= 0 {
		req.ContentLength = size
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", client)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error(), "" // status 0: no answer
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		problem = problemType(c.t, raw)
	}
	return resp.StatusCode, problem, resp.Header.Get("Retry-After")
}

// start sends the first bytes of a body of the full size (or chunked)
// from client, and returns the rest to send and where the status comes.
func (c *budgetClient) start(client string, size int64) (*io.PipeWriter, chan int) {
	pr, pw := io.Pipe()
	c.t.Cleanup(func() { pw.CloseWithError(io.ErrClosedPipe) }) // a test that failed leaves no request behind
	done := make(chan int, 1)
	go func() {
		status, _, _ := c.post(client, pr, size)
		done <- status
	}()
	if _, err := pw.Write(c.body[:10]); err != nil {
		c.t.Fatal(err)
	}
	return pw, done
}

// until waits for what the handler holds to be so, and fails after a
// minute: the bytes and requests sent reach the handler in their time.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute, not yet: %s", what)
		}
	}
}

// TestByteBudget: the bytes of the bodies read and held at once are
// bounded (MaxHeld), not only their count. A request with a
// Content-Length holds that many bytes from the start of its read; while
// two hold two bodies' worth of a budget of two and a half, a third body
// is answered 503 busy, with Retry-After, and a body larger than the whole
// budget 413 at once. A chunked body takes the budget as its bytes arrive:
// it gets half a body's worth, then is answered busy, and what it took is
// given back. A request holds its bytes until its verification ends:
// verifying (its OCSP request answered only when the test says), and
// waiting for a verification slot after its read. Before, a request held
// a read token (sixteen of them) and nothing else, and gave it back after
// its read, whatever its size.
func TestByteBudget(t *testing.T) {
	trust := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	f := newFixtureN(t, 1024, 4)
	f.h.TrustProxies(trust)
	f.h.busyWait = 50 * time.Millisecond
	c := &budgetClient{t: t, f: f, body: jsonBody(t, Request{Signature: base64.StdEncoding.EncodeToString(f.sig), Content: base64.StdEncoding.EncodeToString(f.content)})}
	size := int64(len(c.body))
	f.h.MaxHeld(2*size + size/2)

	// Two bodies arriving hold two bodies' worth.
	w1, done1 := c.start("10.0.0.1", size)
	w2, done2 := c.start("10.0.0.2", size)
	until(t, "two bodies held", func() bool { return f.h.bytes.held.Load() == 2*size })
	if status, problem, retry := c.post("10.0.0.3", bytes.NewReader(c.body), size); status != http.StatusServiceUnavailable || problem != "urn:sanad:problem:busy" || retry != "1" {
		t.Errorf("a third body beside two held: %d %s, Retry-After %q", status, problem, retry)
	}
	if status, problem, _ := c.post("10.0.0.4", bytes.NewReader(make([]byte, 3*size)), 3*size); status != http.StatusRequestEntityTooLarge || problem != "urn:sanad:problem:request-too-large" {
		t.Errorf("a body larger than the budget: %d %s", status, problem)
	}
	// A chunked body gets what is left, half a body, and no more.
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(c.body)
		pw.Close()
	}()
	if status, problem, _ := c.post("10.0.0.5", pr, -1); status != http.StatusServiceUnavailable || problem != "urn:sanad:problem:busy" {
		t.Errorf("a chunked body beside two held: %d %s", status, problem)
	}
	pr.CloseWithError(io.ErrClosedPipe)
	until(t, "the chunked body's bytes given back", func() bool { return f.h.bytes.held.Load() == 2*size })
	for _, s := range []struct {
		w    *io.PipeWriter
		done chan int
	}{{w1, done1}, {w2, done2}} {
		if _, err := s.w.Write(c.body[10:]); err != nil {
			t.Fatal(err)
		}
		s.w.Close()
		if status := <-s.done; status != http.StatusOK {
			t.Errorf("a held body, sent in full: %d", status)
		}
	}
	until(t, "every byte given back", func() bool { return f.h.bytes.held.Load() == 0 })
	if status, _, _ := c.post("10.0.0.3", bytes.NewReader(c.body), -1); status != http.StatusOK {
		t.Errorf("a chunked body alone: %d", status)
	}

	// Through the verification: one request verifying, its OCSP request
	// unanswered, and one waiting for the only verification slot, each
	// hold their body.
	answer := make(chan struct{})
	var answered sync.Once
	ocsp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-answer
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(ocsp.Close)
	g := newFixtureOCSP(t, 1024, 2, ocsp.URL+"/ocsp")
	t.Cleanup(func() { answered.Do(func() { close(answer) }) })
	g.h.TrustProxies(trust)
	g.h.slots = make(chan struct{}, 1)
	g.h.busyWait = time.Minute
	c = &budgetClient{t: t, f: g, body: jsonBody(t, Request{Signature: base64.StdEncoding.EncodeToString(g.sig), Content: base64.StdEncoding.EncodeToString(g.content)})}
	size = int64(len(c.body))
	var dones []chan int
	for i, client := range []string{"10.0.1.1", "10.0.1.2"} {
		done := make(chan int, 1)
		go func() {
			status, _, _ := c.post(client, bytes.NewReader(c.body), size)
			done <- status
		}()
		dones = append(dones, done)
		until(t, strconv.Itoa(i+1)+" bodies read and held", func() bool {
			return g.h.bytes.held.Load() == int64(i+1)*size && len(g.h.reads) == 0 && len(g.h.slots) == 1
		})
	}
	answered.Do(func() { close(answer) })
	for _, done := range dones {
		if status := <-done; status != http.StatusOK {
			t.Errorf("a request that waited its turn: %d", status)
		}
	}
	until(t, "every byte given back", func() bool { return g.h.bytes.held.Load() == 0 })
}

// TestRequestMemory: reading a request allocates less than its body's
// size, JSON or multipart: what it decodes to, once, and small buffers.
// encoding/json allocated 5.75 times the size of a JSON body (the body,
// each member as a string, the decoded bytes, and their growth), and
// io.ReadAll 5 times a part's.
func TestRequestMemory(t *testing.T) {
	const maxContent = 8 << 20
	content := make([]byte, maxContent)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	sig := bytes.Repeat([]byte{0x30}, 4000)
	h := New(nil, maxContent, 4, nil)
	allocated := func(read func()) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		read()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}

	body := jsonBody(t, Request{Signature: base64.StdEncoding.EncodeToString(sig), Content: base64.StdEncoding.EncodeToString(content)})
	left := int64(len(body))
	var gotSig, gotContent []byte
	var err error
	n := allocated(func() {
		gotSig, gotContent, err = decodeRequest(&counting{r: bytes.NewReader(body), left: &left}, func() int64 { return left }, maxContent)
	})
	if err != nil || !bytes.Equal(gotSig, sig) || !bytes.Equal(gotContent, content) {
		t.Fatalf("JSON: %v", err)
	}
	t.Logf("a JSON body of %d bytes took %d bytes to read", len(body), n)
	if n > uint64(len(body)) {
		t.Errorf("a JSON body of %d bytes took %d bytes to read", len(body), n)
	}

	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	for _, part := range []struct {
		name string
		data []byte
	}{{"signature", sig}, {"content", content}} {
		fw, err := mw.CreateFormFile(part.name, part.name+".bin")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(part.data)
	}
	_ = mw.Close()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/verify", nil)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	left = int64(mp.Len())
	req.Body = io.NopCloser(&counting{r: bytes.NewReader(mp.Bytes()), left: &left})
	n = allocated(func() { gotSig, gotContent, err = h.readMultipart(req, func() int64 { return left }) })
	if err != nil || !bytes.Equal(gotSig, sig) || !bytes.Equal(gotContent, content) {
		t.Fatalf("multipart: %v", err)
	}
	t.Logf("a multipart body of %d bytes took %d bytes to read", mp.Len(), n)
	if n > uint64(mp.Len())*5/4 {
		t.Errorf("a multipart body of %d bytes took %d bytes to read", mp.Len(), n)
	}
}
