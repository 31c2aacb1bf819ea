package idnum

import (
	"fmt"
	"time"
)

// Pakistan checks the CNIC (a person's number) and the NTN (a business's).
//
// CNIC, issued by NADRA: 13 digits, written plain or exactly as
// #####-#######-# (ASCII hyphen-minus; no other dash, no spaces):
//
//	digit  1     province or region: 1 Khyber Pakhtunkhwa, 2 former FATA
//	             (merged into Khyber Pakhtunkhwa in 2018; the numbers kept
//	             their digit), 3 Punjab, 4 Sindh, 5 Balochistan, 6 Islamabad
//	             Capital Territory, 7 Gilgit-Baltistan, 8 Azad Jammu and
//	             Kashmir
//	digits 2-5   division, district, tehsil, union council
//	digits 6-12  family and serial number
//	digit  13    sex: odd male, even female
//
// NADRA publishes no check digit and no rule for digits 2-12, so only the
// form and the first digit are checked; inventing a checksum would refuse
// real citizens. Digits 1-7 are as reported by the press from NADRA (The
// News, 19 January 2020) and python-stdnum pk/cnic.py; 8 for Azad Jammu and
// Kashmir is not in those lists but is in several independent CNIC
// decoders, and refusing a real citizen costs more than letting an unissued
// prefix reach the registry, which refuses it anyway. 0 and 9 are refused.
// The sex digit is not checked: the applicant gives no sex, and sources
// disagree on whether 0 occurs. A CNIC encodes no birth date, so Person
// ignores birth.
//
// NTN, issued by FBR to companies and associations of persons: seven digits
// and a check digit, written plain (8 digits) or exactly as #######-#
// (OECD's Pakistan-TIN.pdf; org-id.guide PK-NTN). FBR does not publish the
// check digit's algorithm, so it is not verified, and the check digit is
// required: seven digits alone are refused (CodeLength) rather than given a
// second canonical form. An individual's NTN is the CNIC (Income Tax
// Ordinance 2001 and Income Tax Rules 2002), which is how a sole proprietor
// is registered, so Business also takes a CNIC, checked as Person checks
// it. The canonical forms differ in length: 8 digits for an FBR-issued NTN,
// 13 for a CNIC.
type Pakistan struct{}

// Country returns "PK".
func (Pakistan) Country() string { return "PK" }

// Person checks a CNIC; birth is not used (a CNIC encodes no date).
func (Pakistan) Person(id string, _ time.Time) (string, error) {
	canon, e := checkCNIC(KindPerson, id)
	if e != nil {
		if e.Code == CodeLength && isNTNForm(id) {
			return "", refusal("PK", KindPerson, CodeWrongKind,
				"this has the form of an NTN (seven digits and a check digit), a business's number; a person is identified by the 13-digit CNIC")
		}
		return "", e
	}
	return canon, nil
}

// Business checks an NTN: eight digits, or an individual's 13-digit CNIC.
func (Pakistan) Business(id string) (string, error) {
	if e := screen("PK", KindBusiness, "NTN", id); e != nil {
		return "", e
	}
	if what := notDigit(id, "-"); what != "" {
		return "", refusal("PK", KindBusiness, CodeFormat,
			"%s: an NTN is written as 8 digits, with a hyphen before the last or none", what)
	}
	switch n := countDigits(id); n {
	case 13:
		canon, e := checkCNIC(KindBusiness, id)
		if e != nil {
			return "", e
		}
		return canon, nil
	case 8:
		if !isNTNForm(id) {
			return "", refusal("PK", KindBusiness, CodeFormat,
				"an NTN is written as 8 digits, with one hyphen before the last digit or none")
		}
		return onlyDigits(id), nil
	case 7:
		return "", refusal("PK", KindBusiness, CodeLength,
			"an NTN has seven digits and a check digit; the check digit is missing")
	default:
		return "", refusal("PK", KindBusiness, CodeLength,
			"an NTN has 8 digits (an individual's, the 13 digits of the CNIC); this has %d", n)
	}
}

// isNTNForm reports whether id is 8 ASCII digits, or 7 and 1 joined by a
// hyphen.
func isNTNForm(id string) bool {
	switch len(id) {
	case 8:
		return countDigits(id) == 8
	case 9:
		return id[7] == '-' && countDigits(id[:7]) == 7 && countDigits(id[8:]) == 1
	}
	return false
}

// cnicProvinces names the CNIC's first digits (see Pakistan).
var cnicProvinces = [10]string{
	1: "Khyber Pakhtunkhwa",
	2: "former FATA",
	3: "Punjab",
	4: "Sindh",
	5: "Balochistan",
	6: "Islamabad Capital Territory",
	7: "Gilgit-Baltistan",
	8: "Azad Jammu and Kashmir",
}

func checkCNIC(kind, id string) (string, *Error) {
	if e := screen("PK", kind, "CNIC", id); e != nil {
		return "", e
	}
	if what := notDigit(id, "-"); what != "" {
		return "", refusal("PK", kind, CodeFormat,
			"%s: a CNIC is written as 13 digits, plain or as #####-#######-#", what)
	}
	if n := countDigits(id); n != 13 {
		return "", refusal("PK", kind, CodeLength, "a CNIC has 13 digits; this has %d", n)
	}
	if len(id) != 13 && (len(id) != 15 || id[5] != '-' || id[13] != '-') {
		return "", refusal("PK", kind, CodeFormat,
			"the hyphens are misplaced: a CNIC is written as 13 digits, plain or as #####-#######-#")
	}
	canon := onlyDigits(id)
	if p := canon[0] - '0'; cnicProvinces[p] == "" {
		return "", refusal("PK", kind, CodeRegion,
			"the 1st digit (province or region) is %d; CNICs start with 1-8", p)
	}
	return canon, nil
}

// PKCNIC returns a CNIC of the written-plain canonical form for tests and
// sample registries: locality is the first five digits (10000-89999, so the
// first digit is a province), family the next seven (0-9999999), and the
// last is 1 for a man and 2 for a woman.
func PKCNIC(locality, family int, male bool) (string, error) {
	switch {
	case locality < 10000 || locality > 89999:
		return "", fmt.Errorf("idnum: PKCNIC: locality %d is outside 10000-89999", locality)
	case family < 0 || family > 9999999:
		return "", fmt.Errorf("idnum: PKCNIC: family number %d is outside 0-9999999", family)
	}
	sex := 2
	if male {
		sex = 1
	}
	return fmt.Sprintf("%05d%07d%d", locality, family, sex), nil
}
