// Package ra is the registration authority: the enrollment workflow for
// citizens and businesses, identity proofing against the national registry,
// officer approvals, and requests to the CA.
//
// Nothing lives here yet; issue 6 builds it. The RA never touches keys and
// never builds a certificate subject from anything but attributes it verified.
package ra
