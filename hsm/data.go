package hsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// dataApplication is the CKA_APPLICATION of the data objects Sanad keeps.
const dataApplication = "sanad"

// maxData bounds the data objects of one label read: WriteData leaves one,
// or two when it stopped half way.
const maxData = 8

// ReadData returns the values of the token's private data objects
// (CKO_DATA) labelled label, which Sanad keeps beside its keys: small
// values that only someone logged in to the token can read or change, so
// that access to the database alone cannot. None: an empty list. WriteData
// leaves one; two when it stopped between writing the new one and
// destroying the old, which the caller tells apart by their content.
func (t *Token) ReadData(ctx context.Context, label string) ([][]byte, error) {
	var values [][]byte
	err := t.do(ctx, 0, nil, func(sh pkcs11.SessionHandle) error {
		values = nil
		found, err := t.findData(sh, label)
		if err != nil {
			return err
		}
		for _, h := range found {
			attrs, err := t.p11.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
			if err != nil {
				return err
			}
			values = append(values, bytes.Clone(attrs[0].Value))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hsm: read data %q on token %q: %w", label, t.label, err)
	}
	return values, nil
}

// WriteData makes value the value of the private data object labelled
// label: it creates a token object (private, of application "sanad") and
// then destroys the ones the label had, since a token need not let a data
// object's value change (SoftHSM2 does not). Stopped half way, it leaves
// the old and the new (see ReadData), never neither.
func (t *Token) WriteData(ctx context.Context, label string, value []byte) error {
	if label == "" {
		return errors.New("hsm: write data: empty label")
	}
	err := t.do(ctx, 0, nil, func(sh pkcs11.SessionHandle) error {
		old, err := t.findData(sh, label)
		if err != nil {
			return err
		}
		if _, err := t.p11.CreateObject(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, dataApplication),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, value),
		}); err != nil {
			return err
		}
		for _, h := range old {
			if err := t.p11.DestroyObject(sh, h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("hsm: write data %q on token %q: %w", label, t.label, err)
	}
	return nil
}

// findData finds the private data objects labelled label.
func (t *Token) findData(sh pkcs11.SessionHandle, label string) ([]pkcs11.ObjectHandle, error) {
	return t.findObjects(sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}, maxData)
}

// Data is the data objects of one label on a token, read and written as a
// whole (an audit.Memory: the audit log's last checkpoint signed).
type Data struct {
	Token *Token
	Label string
}

// Recall reads the values (ReadData).
func (d Data) Recall(ctx context.Context) ([][]byte, error) { return d.Token.ReadData(ctx, d.Label) }

// Keep writes value (WriteData).
func (d Data) Keep(ctx context.Context, value []byte) error {
	return d.Token.WriteData(ctx, d.Label, value)
}
