package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"
	"unicode/utf8"

	"github.com/sanadpki/sanad/internal/store"
)

// Event is one state change to record.
type Event struct {
	// Actor is who caused it: an officer's certificate fingerprint, an
	// applicant's enrollment id, "system" for the service itself.
	Actor string
	// Action is a dotted verb, such as "hsm.key.generate" or
	// "certificate.revoke".
	Action string
	// Object is what it acted on: a key label, a serial, an enrollment id.
	Object string
	// Details is any JSON-encodable value; it is stored as canonical JSON
	// (object keys sorted, no insignificant space). Never a secret.
	Details any
}

// Log appends events to the store's hash chain.
type Log struct {
	now func() time.Time
}

// New returns a Log that stamps events with now (time.Now in production, a
// fixed clock in tests).
func New(now func() time.Time) *Log {
	return &Log{now: now}
}

// zeroHash is event 1's prev_hash.
var zeroHash = make([]byte, sha256.Size)

// Append records e inside tx, the transaction of the change it records.
// The event joins the chain when tx ends (store.Tx.RecordAudit): the head
// is locked only then, so concurrent appenders take turns for the length
// of an append and a commit, and the chain never forks.
func (l *Log) Append(tx *store.Tx, e Event) error { return l.AppendAll(tx, []Event{e}) }

// AppendAll records events, in order, inside tx, as Append does each.
func (l *Log) AppendAll(tx *store.Tx, events []Event) error {
	for _, e := range events {
		if e.Actor == "" || e.Action == "" {
			return errors.New("audit event needs an actor and an action")
		}
		details, err := canonicalJSON(e.Details)
		if err != nil {
			return fmt.Errorf("audit %s: encode details: %w", e.Action, err)
		}
		tx.RecordAudit(store.AuditRecord{Actor: e.Actor, Action: e.Action, Object: e.Object, Details: details}, l.chain)
	}
	return nil
}

// chain numbers, stamps and hashes records after head (a store.Chain).
func (l *Log) chain(head store.AuditHead, records []store.AuditRecord) []store.AuditEvent {
	prev := head.Hash
	if head.Seq == 0 {
		prev = zeroHash
	}
	now := l.now().UTC().Truncate(time.Microsecond)
	out := make([]store.AuditEvent, len(records))
	for i, r := range records {
		out[i] = store.AuditEvent{Seq: head.Seq + 1 + int64(i), Time: now, Actor: r.Actor, Action: r.Action,
			Object: r.Object, Details: r.Details, PrevHash: prev}
		out[i].Hash = Hash(out[i])
		prev = out[i].Hash
	}
	return out
}

// Hash is SHA-256 over the canonical encoding of ev (see the package doc);
// ev.Hash itself is not part of it.
func Hash(ev store.AuditEvent) []byte {
	h := sha256.New()
	h.Write([]byte("sanad-audit-event-v1\n"))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(ev.Seq))
	h.Write(n[:])
	field := func(b []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	field([]byte(ev.Time.UTC().Format(timeLayout)))
	field([]byte(ev.Actor))
	field([]byte(ev.Action))
	field([]byte(ev.Object))
	field(ev.Details)
	field(ev.PrevHash)
	return h.Sum(nil)
}

// timeLayout fixes six fractional digits: the store keeps microseconds.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// canonicalJSON encodes v with object keys sorted at every depth and no
// insignificant whitespace: encoding through map[string]any sorts keys, and
// json.Number keeps numbers exactly as written. A plain v (see plain), as
// most details are, is already encoded so by json.Marshal, and skips the
// decoding and second encoding: two thirds of the cost, paid in the
// writer's transaction.
func canonicalJSON(v any) ([]byte, error) {
	if v == nil {
		return []byte("{}"), nil
	}
	raw, err := json.Marshal(v)
	if err != nil || plain(reflect.ValueOf(v)) {
		return raw, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	return json.Marshal(generic)
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// encodesItself reports whether json.Marshal hands a value of type t (or,
// addressable, *t) to its own MarshalJSON or MarshalText.
func encodesItself(t reflect.Type) bool {
	return t.Implements(marshalerType) || t.Implements(textMarshalerType) ||
		reflect.PointerTo(t).Implements(marshalerType) || reflect.PointerTo(t).Implements(textMarshalerType)
}

// plain reports whether json.Marshal encodes v as canonicalJSON would: v
// holds no struct (its fields keep their declared order) and nothing that
// encodes itself (a Marshaler could write keys in any order), only maps
// with string keys (encoding/json sorts them), slices, arrays, pointers,
// booleans, numbers, times and strings of valid UTF-8 (an invalid byte
// becomes the escape \ufffd, which the round trip turns into the
// character itself).
func plain(v reflect.Value) bool {
	if !v.IsValid() {
		return true
	}
	t := v.Type()
	if k := t.Kind(); k == reflect.Interface || k == reflect.Pointer {
		return v.IsNil() || plain(v.Elem())
	}
	if t == timeType {
		return true
	}
	if encodesItself(t) {
		return false
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	case reflect.String:
		return utf8.ValidString(v.String())
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 && !encodesItself(t.Elem()) {
			return true // base64, as long as the octets do not encode themselves
		}
		for i := range v.Len() {
			if !plain(v.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return false
		}
		for it := v.MapRange(); it.Next(); {
			if !plain(it.Key()) || !plain(it.Value()) {
				return false
			}
		}
		return true
	}
	return false
}
