-- Token buckets that every node of a cluster spends from (the RA's
-- per-identifier limit), so that N nodes do not allow N times the limit.
-- The key is what the caller chose (the RA: a keyed hash of the national
-- identifier, never the identifier). full_at is when the bucket has
-- refilled: from then on the row says nothing a new bucket would not, and
-- is pruned. migrations/postgres/00007_rate_limits.sql is the same table.

-- +goose Up

CREATE TABLE rate_limits (
    bucket  BLOB    PRIMARY KEY CHECK (length(bucket) BETWEEN 1 AND 64),
    tokens  REAL    NOT NULL,
    at      INTEGER NOT NULL,
    full_at INTEGER NOT NULL
) STRICT;

CREATE INDEX rate_limits_full ON rate_limits (full_at);

-- +goose Down

DROP TABLE rate_limits;
