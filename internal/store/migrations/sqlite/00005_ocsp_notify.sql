-- PostgreSQL's 00005 notifies responders of new OCSP responses; SQLite has
-- no notifications (responders poll), so this version changes nothing: the
-- two databases keep the same migration numbers.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
