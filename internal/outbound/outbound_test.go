package outbound

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, ok := range []string{"https://registry.gov.kz/api/", "http://127.0.0.1:8080", "http://localhost:9000/send", "http://[::1]:8080"} {
		if u, err := Parse(ok); err != nil || u.String() != ok {
			t.Errorf("Parse(%q) = %v, %v", ok, u, err)
		}
	}
	for _, c := range []struct{ raw, want string }{
		{"", "missing"},
		{"registry.gov.kz/api", "is not an http(s) URL"},
		{"ftp://registry.gov.kz", "is not an http(s) URL"},
		{"mailto:s3cret@sms.example", "is not an http(s) URL"},
		{"https://%zz", "is not an http(s) URL"},
		{"https://ra:s3cret@registry.gov.kz", "carries credentials"},
		{"https://sms.example/send?api_key=s3cret", "carries credentials"},
		{"https://sms.example/send?", "carries credentials"},
		{"https://sms.example/send#s3cret", "carries credentials"},
		{"http://sms.example/s3cret", "http://sms.example: plain http is allowed only on a loopback host"},
		{"http://10.0.0.1/s3cret", "http://10.0.0.1: plain http"},
		{"http://localhost.example/s3cret", "plain http"},
	} {
		_, err := Parse(c.raw)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want %q", c.raw, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Parse(%q): the error quotes the URL: %v", c.raw, err)
		}
	}
}
