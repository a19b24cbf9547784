-- Version 3: turn leases. Each session row carries its lease: the last fencing token given
-- (tokens only grow; 0: never leased), and while held, the holder and when it expires.
--
-- A lease is taken by a conditional UPDATE of the row (free, expired, or the same owner),
-- so of two instances acquiring at once the row lock lets one win and the other re-reads
-- the row and finds it held. An append carrying a token bumps the version only when the
-- token is the row's, in the same statement: a holder whose lease was taken over writes
-- nothing. Expiry is read on the server's clock, the one every instance shares.

ALTER TABLE sessions
    ADD COLUMN lease_token      bigint      NOT NULL DEFAULT 0 CHECK (lease_token >= 0),
    ADD COLUMN lease_owner      text,
    ADD COLUMN lease_expires_at timestamptz;
