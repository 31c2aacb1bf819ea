// Package registry is the RA's source of truth for who exists: natural
// persons from a national identity register, businesses and their
// authorised representatives from a business register.
//
// A Registry answers two questions, Person and Business, each by exact
// country (ISO 3166-1 alpha-2) and canonical identifier (digits or
// upper-case letters, no separators: the RA strips and checks the
// identifier with ra/idnum before it asks). With every answer comes the
// Evidence the enrollment keeps (registry_evidence): the source, the
// record's version when the registry has one, a SHA-256 of the record as
// received, and the time of the lookup.
//
// What this package must never do:
//   - answer ErrNotFound unless the registry itself said "no such record".
//     A timeout, a 5xx after retries, a 404 that is not the registry's
//     JSON, a response that breaks the contract: all are ErrUnavailable,
//     and the RA tells the applicant "try later", never "you do not exist";
//   - decide eligibility. It reports alive, active and can_sign as the
//     registry does; refusing the dead, the inactive and those without
//     signing authority is the RA's rule;
//   - log, or put in an error, a full national identifier (they are
//     masked to the last four characters) or the HTTP bearer token.
//
// Two backends: File, for development and tests, and HTTP, for a national
// registry. The sample registry shipped in the repository
// (sample/registry.json, see Sample) is what `sanad dev` loads.
//
// # File backend: JSON
//
// One document:
//
//	{
//	  "source":  "sanad-sample",   // optional; Evidence.Source is "file:" + this, else "file:" + the file name
//	  "version": "2026-01-15",     // optional; Evidence.Version of every record
//	  "persons": [
//	    {"country": "KZ", "national_id": "880312448217", "given_name": "Aigerim",
//	     "family_name": "Sadykova", "birth_date": "1988-03-12", "alive": true,
//	     "phone": "+77017431862", "email": "aigerim.sadykova@example.kz"}
//	  ],
//	  "businesses": [
//	    {"country": "KZ", "registration_number": "150340219487", "name": "Dala Logistics LLP",
//	     "active": true, "phone": "+77172695140", "email": "dala.logistics@example.kz",
//	     "representatives": [
//	       {"country": "KZ", "national_id": "850721313761", "role": "director", "can_sign": true}
//	     ]}
//	  ]
//	}
//
// (The comments above are for this page only; JSON has none.) Unknown
// fields are an error, at every level. Required: a person's country,
// national_id, given_name, family_name, birth_date (YYYY-MM-DD, not in the
// future) and alive; a business's country, registration_number, name,
// active and representatives (an empty list when there are none); a
// representative's country, national_id, role and can_sign. Optional:
// phone (E.164, "+" and 7–15 digits) and email (a bare address). Names are
// non-blank UTF-8 without surrounding white space or control characters.
//
// # File backend: CSV
//
// A directory holding persons.csv and, optionally, businesses.csv and
// representatives.csv (any other .csv file there is an error). Each starts
// with a header row naming its columns, in any order; a leading UTF-8 BOM is
// ignored; unknown, repeated or missing required columns are errors. An empty
// cell is an absent value. Booleans are true or false (any case).
//
//	persons.csv:          country,national_id,given_name,family_name,birth_date,alive[,phone][,email]
//	businesses.csv:       country,registration_number,name,active[,phone][,email]
//	representatives.csv:  business_country,registration_number,country,national_id,role,can_sign
//
// A representatives.csv row lists one person (country, national_id) for the
// business (business_country, registration_number) of businesses.csv. CSV
// carries no version: Evidence.Version is empty, Evidence.Hash is set.
//
// Both layouts are checked on load with every problem reported at once in
// a *LoadError, each with its place ("persons[3]",
// "businesses[1].representatives[0]", "persons.csv:7"): missing or
// malformed fields, duplicate identifiers, a representative listed twice
// for one business, and a representative who is not a person of the same
// file. A file record's Evidence.Hash is CanonicalHash of the Person or
// Business returned, so it is the same whichever layout the record came
// from, and across loads.
//
// # HTTP backend: the contract a national registry implements
//
//	GET {base}/v1/persons/{country}/{national_id}
//	GET {base}/v1/businesses/{country}/{registration_number}
//	Accept: application/json
//	Authorization: Bearer <token>          (when a token file is configured)
//
// Path segments are percent-escaped (RFC 3986 §3.3). Answers:
//
//   - 200 with Content-Type application/json, a JSON object: the Person
//     or Business as in the file layout above, with the same required
//     fields, plus "version" (a string, the record's version; recommended,
//     kept as Evidence.Version). Unknown fields are ignored, since a
//     national registry adds fields over time; a member given twice, a
//     known member spelled otherwise ("ALIVE"), and invalid UTF-8 are not,
//     since another reader of the same bytes would read them otherwise.
//     The record must be the one asked for (same country and identifier).
//     Evidence.Hash is the SHA-256 of the body bytes exactly as received.
//   - 404 with Content-Type application/json or application/problem+json:
//     no such record (ErrNotFound). A 404 of any other type (a proxy's HTML
//     page after a wrong base URL) is ErrUnavailable.
//   - 429 or 5xx: retried (with the attempt timeout, exponential backoff
//     with jitter, at most Retries more attempts). Retry-After, in seconds
//     or as an HTTP date, is honoured up to MaxRetryAfter; a longer one ends
//     the lookup at once with ErrUnavailable.
//   - anything else (3xx, 400, 401, 403, …): ErrUnavailable, not retried.
//
// For example:
//
//	GET /v1/persons/PK/6110148392762 HTTP/1.1
//
//	HTTP/1.1 200 OK
//	Content-Type: application/json
//
//	{"country": "PK", "national_id": "6110148392762", "given_name": "Ayesha",
//	 "family_name": "Khan", "birth_date": "1987-06-14", "alive": true,
//	 "phone": "+923005417826", "email": "ayesha.khan@example.pk", "version": "v41"}
//
// Bodies larger than MaxBody (64 KiB by default), bodies that are not one
// JSON object, that lack a required field or answer for another record are
// ErrUnavailable and ErrBadResponse, not retried. Network errors and
// attempt timeouts are retried; when the caller's context ends, the lookup
// ends with its error (a deadline also counts as ErrUnavailable). The base
// URL must be https except on a loopback host.
package registry
