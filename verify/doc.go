// Package verify checks CMS and JWS signatures made with Sanad certificates
// against the national roots and produces an ETSI EN 319 102-1 style
// validation report.
//
// It is the public package that government applications import, so it must
// never import Sanad's server code (store, hsm, audit, api). Nothing lives
// here yet; issue 8 builds it.
package verify
