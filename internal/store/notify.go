package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"
)

// ErrNoNotifications is returned by ListenOCSPChanges on a database that
// cannot notify (SQLite): callers poll.
var ErrNoNotifications = errors.New("the database sends no change notifications")

// ListenOCSPChanges calls changed each time a transaction that stored OCSP
// responses in this deployment's schema commits (PostgreSQL LISTEN/NOTIFY,
// from the trigger of migration 00005), until ctx ends or the connection
// fails; it holds one pooled connection meanwhile. changed is also called
// once as soon as the connection listens, for what committed before.
// Notifications coalesce and may be lost with a connection: they hurry a
// poll, never replace it.
func (db *DB) ListenOCSPChanges(ctx context.Context, changed func()) error {
	if db.d.sqlite {
		return ErrNoNotifications
	}
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return fmt.Errorf("listen for OCSP changes: %w", err)
	}
	defer conn.Close()
	var schema string
	if err := conn.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("listen for OCSP changes: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `LISTEN sanad_ocsp`); err != nil {
		return fmt.Errorf("listen for OCSP changes: %w", err)
	}
	// What committed before LISTEN took effect sent its notification to
	// nobody: one call now has the caller read it.
	changed()
	var waitErr error
	_ = conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			waitErr = fmt.Errorf("driver connection %T is not pgx's", driverConn)
			return driver.ErrBadConn
		}
		for {
			n, err := c.Conn().WaitForNotification(ctx)
			if err != nil {
				waitErr = err
				// A connection that LISTENs never goes back to the pool:
				// ErrBadConn has database/sql close it.
				return driver.ErrBadConn
			}
			if n.Payload == schema {
				changed()
			}
		}
	})
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("listen for OCSP changes: %w", waitErr)
}
