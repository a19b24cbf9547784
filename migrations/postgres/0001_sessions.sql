-- verbatim PostgreSQL schema, version 1: sessions, their records, idempotency keys.
--
-- Applied by the migration runner (`PostgresStore::connect`, `verbatim migrate`) inside one
-- transaction holding an advisory lock, and recorded in `verbatim_migrations`.
--
-- Records keep the verbatim JSON text of each entry (`text`, not `jsonb`): jsonb would reorder
-- object keys, drop duplicate keys, normalise numbers and refuse \u0000, and a thinking block's
-- signature is bound to the exact bytes. Only what is queried is broken out into columns.

CREATE TABLE sessions (
    id          uuid        PRIMARY KEY,
    -- What the session was created with (`NewSession` as JSON text).
    start       text        NOT NULL,
    -- The tags of `start`, to list sessions by tag.
    tags        text[]      NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    -- The sequence number of the last record: the version an append names.
    version     bigint      NOT NULL CHECK (version >= 0),
    -- Where the session came from (`Origin` as JSON text), when not created fresh.
    origin      text
);

CREATE INDEX sessions_by_update ON sessions (updated_at DESC, id DESC);
CREATE INDEX sessions_by_tag ON sessions USING gin (tags);

CREATE TABLE records (
    session_id  uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq         bigint      NOT NULL CHECK (seq >= 1),
    at          timestamptz NOT NULL,
    -- The entry's JSON text, byte for byte as serialised.
    entry       text        NOT NULL,
    PRIMARY KEY (session_id, seq)
);

-- Entries of a few kilobytes are compressed when stored; lz4 compresses and decompresses
-- several times faster than the default pglz, for about the same size. Servers built
-- without lz4 keep pglz.
DO $$
BEGIN
    ALTER TABLE records ALTER COLUMN entry SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    NULL;
END
$$;

CREATE TABLE idempotency_keys (
    session_id  uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    key         text        NOT NULL,
    first_seq   bigint      NOT NULL,
    version     bigint      NOT NULL,
    PRIMARY KEY (session_id, key)
);
