package endpoint

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"testing"
)

// referenceRequest reads body as the endpoint read it before it streamed:
// encoding/json with DisallowUnknownFields into Request, then base64.
// ok is false for what it refused.
func referenceRequest(body []byte, maxContent int64) (sig, content []byte, ok bool) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(&req) != nil {
		return nil, nil, false
	}
	if rest, _ := io.ReadAll(dec.Buffered()); len(bytes.TrimSpace(rest)) > 0 {
		return nil, nil, false
	}
	var err error
	switch {
	case req.Signature != "" && req.SignatureText != "":
		return nil, nil, false
	case req.Signature != "":
		if sig, err = base64.StdEncoding.DecodeString(req.Signature); err != nil {
			return nil, nil, false
		}
	case req.SignatureText != "":
		sig = []byte(req.SignatureText)
	default:
		return nil, nil, false
	}
	if req.Content != "" {
		if content, err = base64.StdEncoding.DecodeString(req.Content); err != nil || int64(len(content)) > maxContent {
			return nil, nil, false
		}
	}
	return sig, content, true
}

// FuzzRequest feeds JSON bodies to decodeRequest (seeds in
// testdata/fuzz/FuzzRequest and below): what it accepts, encoding/json
// read alike, and what encoding/json refused it refuses. It refuses more:
// a member given twice, a string that is not UTF-8, an unpaired
// surrogate, a base64 member of only line breaks.
func FuzzRequest(f *testing.F) {
	for _, seed := range []string{
		`{"signature":"AAEC","content":"aGVsbG8="}`,
		`{"signature_text":"-----BEGIN CMS-----\nAAEC\n-----END CMS-----\n"}`,
		` { "Signature" : "AA\/EC" , "content" : null } `,
		`{"signature":"AAEC\r\nAAEC","content":"aGVsbG8=\n"}`,
		`{"signature_text":"\u00e9\ud83d\ude00\t\"\\"}`,
		`{"signature":"AA==AA=="}`,
		`{"signAture":"0000","Content":"\n"}`, // found by fuzzing: "\n" is a content of no bytes
		`{"signature":"AAE"}`,
		`{"signature":"AAEC","signature":"AAEC"}`,
		`{"signature":"AAEC",}`,
		`{"signature":"AAEC"}{}`,
		`{"signature":1}`,
		`{"sig":"AAEC"}`,
		`{"signature_text":"\ud800"}`,
		"{\"signature_text\":\"\xff\"}",
		`{"signature":"AAEC","content":"` + base64.StdEncoding.EncodeToString(make([]byte, 100)) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	const maxContent = 64
	f.Fuzz(func(t *testing.T, body []byte) {
		sig, content, err := decodeRequest(bytes.NewReader(body), func() int64 { return -1 }, maxContent)
		refSig, refContent, ok := referenceRequest(body, maxContent)
		switch {
		case err == nil && !ok:
			t.Fatalf("accepted what encoding/json refused: %q", body)
		case err == nil && (!bytes.Equal(sig, refSig) || !bytes.Equal(content, refContent) || (content == nil) != (refContent == nil)):
			t.Fatalf("%q read as %q, %q; encoding/json read %q, %q", body, sig, content, refSig, refContent)
		}
		// With the body's length known, the same.
		left := int64(len(body))
		sig2, content2, err2 := decodeRequest(&counting{r: bytes.NewReader(body), left: &left}, func() int64 { return left }, maxContent)
		if (err == nil) != (err2 == nil) || !bytes.Equal(sig, sig2) || !bytes.Equal(content, content2) {
			t.Fatalf("%q read otherwise with its length known: %v, %v", body, err, err2)
		}
	})
}

// counting counts down left as r is read.
type counting struct {
	r    io.Reader
	left *int64
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.left -= int64(n)
	return n, err
}
