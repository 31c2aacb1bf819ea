package idnum

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// screen applies the input rules every identifier shares, before any
// country looks at it: not empty, at most MaxLen bytes, valid UTF-8, no
// white space around it, no digit of another script. Whatever passes may
// still hold letters or separators; the country's written form decides.
func screen(country, kind, name, id string) *Error {
	switch {
	case id == "":
		return refusal(country, kind, CodeEmpty, "the %s is empty", name)
	case len(id) > MaxLen:
		return refusal(country, kind, CodeTooLong, "the %s is %d bytes long; no identifier is longer than %d", name, len(id), MaxLen)
	case !utf8.ValidString(id):
		return refusal(country, kind, CodeFormat, "the %s is not valid UTF-8 text", name)
	}
	if r, _ := utf8.DecodeRuneInString(id); unicode.IsSpace(r) {
		return refusal(country, kind, CodeWhitespace, "the %s starts with white space; send the digits only", name)
	}
	if r, _ := utf8.DecodeLastRuneInString(id); unicode.IsSpace(r) {
		return refusal(country, kind, CodeWhitespace, "the %s ends with white space; send the digits only", name)
	}
	pos := 0
	for _, r := range id {
		pos++
		if r > unicode.MaxASCII && unicode.IsDigit(r) {
			return refusal(country, kind, CodeNonASCIIDigit,
				"character %d of the %s is %U, a digit of another script; write the digits 0-9", pos, name, r)
		}
	}
	return nil
}

// notDigit reports the first character of id that is neither an ASCII digit
// nor in allowed, as a phrase for a Reason, or "" if there is none. id has
// passed screen.
func notDigit(id, allowed string) string {
	pos := 0
	for _, r := range id {
		pos++
		if '0' <= r && r <= '9' {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || r == a
		}
		if !ok {
			return fmt.Sprintf("character %d (%s) is not a digit", pos, describe(r))
		}
	}
	return ""
}

// describe names a character for a Reason: printable ASCII quoted, anything
// else by code point, so an invisible character is visible in the error.
func describe(r rune) string {
	if r > ' ' && r < unicode.MaxASCII {
		return fmt.Sprintf("%q", r)
	}
	return fmt.Sprintf("%U", r)
}

// countDigits returns how many ASCII digits s holds.
func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if '0' <= s[i] && s[i] <= '9' {
			n++
		}
	}
	return n
}

// onlyDigits returns s without its non-digit bytes; s has passed notDigit.
func onlyDigits(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if '0' <= s[i] && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}
