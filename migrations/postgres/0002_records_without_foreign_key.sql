-- Version 2: records no longer reference sessions by a foreign key.
--
-- The key's check ran a locking lookup of the session row for every record appended, about
-- 40 us of server time per append measured here, while an append can only insert records
-- after its own update of that row succeeded (one statement). A delete now removes the
-- session row first and then its records, in one transaction: an append waiting on the row
-- finds it gone and writes nothing, and one that committed before is seen by the second
-- statement.

ALTER TABLE records DROP CONSTRAINT IF EXISTS records_session_id_fkey;
