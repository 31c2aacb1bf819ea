package verify

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"mime"
	"net/textproto"
	"strings"
)

// unwrapCMS returns the DER of a CMS given as DER, PEM ("CMS", "PKCS7",
// "PKCS #7 SIGNED DATA") or S/MIME (RFC 8551): multipart/signed, whose
// first part is the signed content, or application/pkcs7-mime. content
// is the first part of a multipart/signed message, in canonical form.
func unwrapCMS(in []byte) (der, content []byte, err error) {
	trimmed := bytes.TrimLeft(in, " \t\r\n")
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		block, _ := pem.Decode(trimmed)
		if block == nil {
			return nil, nil, errors.New("malformed PEM")
		}
		switch block.Type {
		case "CMS", "PKCS7", "PKCS #7 SIGNED DATA":
			return block.Bytes, nil, nil
		}
		return nil, nil, fmt.Errorf("PEM block %q is not a CMS", block.Type)
	case len(trimmed) > 0 && trimmed[0] == 0x30:
		return in, nil, nil
	case looksLikeMIME(trimmed):
		return unwrapSMIME(trimmed)
	}
	return nil, nil, errors.New("neither DER, PEM nor S/MIME")
}

func looksLikeMIME(b []byte) bool {
	head := strings.ToLower(string(b[:min(len(b), 256)]))
	return strings.HasPrefix(head, "mime-version:") || strings.HasPrefix(head, "content-type:")
}

// canonical turns bare LF line ends into CRLF (RFC 8551 §3.1.1: the
// signature covers the canonical form).
func canonical(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

func unwrapSMIME(in []byte) (der, content []byte, err error) {
	msg := canonical(in)
	header, body, err := readMIMEPart(msg)
	if err != nil {
		return nil, nil, err
	}
	mediaType, params, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil {
		return nil, nil, fmt.Errorf("S/MIME Content-Type: %w", err)
	}
	switch mediaType {
	case "application/pkcs7-mime", "application/x-pkcs7-mime":
		der, err := decodeBody(header, body)
		return der, nil, err
	case "multipart/signed":
	default:
		return nil, nil, fmt.Errorf("S/MIME type %q is not a signature", mediaType)
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, nil, errors.New("multipart/signed without a boundary")
	}
	// RFC 2046 §5.1.1: parts are separated by CRLF "--" boundary; the
	// CRLF before a delimiter belongs to the delimiter, not the part.
	segs := bytes.Split(append([]byte("\r\n"), body...), []byte("\r\n--"+boundary))
	// segs[0] is the preamble; then the content part and the signature
	// part, each after the rest of its delimiter line; then "--", the
	// close delimiter.
	if len(segs) < 4 || !bytes.HasPrefix(segs[3], []byte("--")) {
		return nil, nil, errors.New("multipart/signed needs exactly a content part and a signature part")
	}
	part := func(seg []byte) []byte {
		if eol := bytes.Index(seg, []byte("\r\n")); eol >= 0 {
			return seg[eol+2:]
		}
		return nil
	}
	content = part(segs[1])
	sigHeader, sigBody, err := readMIMEPart(part(segs[2]))
	if err != nil {
		return nil, nil, err
	}
	st, _, _ := mime.ParseMediaType(sigHeader.Get("Content-Type"))
	if st != "application/pkcs7-signature" && st != "application/x-pkcs7-signature" {
		return nil, nil, fmt.Errorf("second part of multipart/signed is %q, not a signature", st)
	}
	der, err = decodeBody(sigHeader, sigBody)
	return der, content, err
}

func readMIMEPart(b []byte) (textproto.MIMEHeader, []byte, error) {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(b)))
	h, err := r.ReadMIMEHeader()
	if err != nil {
		return nil, nil, fmt.Errorf("S/MIME header: %w", err)
	}
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		return h, nil, nil
	}
	return h, b[i+4:], nil
}

func decodeBody(h textproto.MIMEHeader, body []byte) ([]byte, error) {
	if !strings.EqualFold(strings.TrimSpace(h.Get("Content-Transfer-Encoding")), "base64") {
		return body, nil
	}
	clean := bytes.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, body)
	der, err := base64.StdEncoding.DecodeString(string(clean))
	if err != nil {
		return nil, fmt.Errorf("S/MIME base64: %w", err)
	}
	return der, nil
}
