// Package idnum validates national identifiers before the RA looks anyone
// up: a natural person's number (Kazakhstan IIN, Pakistan CNIC) and a
// business's number (Kazakhstan BIN, Pakistan NTN). Each country is a
// Checker; For finds one by ISO 3166-1 alpha-2 code and Register (or a
// Registry of one's own) plugs in another country.
//
// A check here only says that a string can be an identifier: it is written
// the one accepted way, its structure is possible and its check digit, where
// the issuer defines one, is right. Whether anyone holds the number is the
// registry's question (ra/registry), never this package's.
//
// Every refusal is an *Error with a stable Code (the RA maps it to a problem
// type and shows Reason to the applicant) and every *Error is ErrInvalid.
//
// This package must never:
//   - accept a number it cannot read unambiguously: surrounding white space,
//     digits of other scripts (Arabic-Indic, Extended Arabic-Indic as used
//     for Urdu, fullwidth, …), separators other than the one documented form
//     are refused, not repaired, so one identifier has one canonical form;
//   - put the identifier it was given into an error (errors get logged, and
//     logs never hold a full national identifier); a Reason names positions
//     and single characters only;
//   - invent a check digit an issuer does not publish (Pakistan's NADRA and
//     FBR publish none), or consult anything but the string and the birth
//     date it was given: no registry, no clock, no network;
//   - panic, whatever the input.
//
// # Kazakhstan
//
// IIN and BIN are defined by the Law of the Republic of Kazakhstan of
// 12 January 2007 No. 223 "On national registers of identification numbers"
// (art. 1: the IIN identifies an individual, including an individual
// entrepreneur in personal entrepreneurship; the BIN a legal entity, its
// branches and representative offices, and an individual entrepreneur in
// joint entrepreneurship) and laid out by Government Decree No. 565 of
// 11 June 2003 (adilet.zan.kz/rus/docs/P030000565_), as summarised in the
// OECD's "Kazakhstan – Information on Tax Identification Numbers"
// (Kazakhstan-TIN.pdf). See kz.go for the digit-by-digit rules.
//
// # Pakistan
//
// The CNIC is NADRA's 13-digit number; the NTN is FBR's National Tax Number,
// seven digits and a check digit, and for an individual (Income Tax
// Ordinance 2001, Income Tax Rules 2002) the CNIC itself serves as NTN. See
// pk.go for what is accepted and why.
package idnum
