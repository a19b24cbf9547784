//! Writing: creating, appending, forking, rewinding, deleting and putting sessions, and the
//! inserts they share.
//!
//! An append is one statement, so one round trip and one transaction: it bumps the session's
//! version only if it still is the version the caller expected, and inserts the records and
//! the idempotency key only if it did. An append made under a lease bumps it only if its
//! fencing token is still the session's, in the same statement. Under PostgreSQL's row lock a second writer expecting
//! the same version finds the row changed and writes nothing ([`StoreError::Conflict`]). With
//! the server's default `synchronous_commit = on`, an append returns once its commit is on
//! stable storage.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use verbatim_model::SessionId;

use super::load::Lock;
use super::rows::{to_json, uuid, version};
use super::{PostgresStore, backend, violates};
use crate::lease::check_token;
use crate::store::{archive_info, check_fork, check_numbering, check_rewind, new_info, now};
use crate::{
    Append, Appended, Entry, NewSession, Origin, Record, Rewound, Session, SessionInfo, StoreError,
};

impl PostgresStore {
    /// [`SessionStore::create`](crate::SessionStore::create).
    pub(super) async fn create_session(&self, new: NewSession) -> Result<SessionInfo, StoreError> {
        let info = new_info(new, None)?;
        let client = self.client().await?;
        Self::insert_session(&client, &info, &[]).await?;
        Ok(info)
    }

    /// [`SessionStore::append`](crate::SessionStore::append): one statement (see the module docs).
    pub(super) async fn append_entries(
        &self,
        id: SessionId,
        append: Append,
    ) -> Result<Appended, StoreError> {
        let client = self.client().await?;
        if append.entries.is_empty() {
            return Self::unwritten(&client, id, &append).await;
        }
        let statement = client
            .prepare_cached(
                "WITH bumped AS ( \
                     UPDATE sessions SET version = $3, updated_at = $4 \
                     WHERE id = $1 AND version = $2 \
                         AND ($7::bigint IS NULL OR lease_token = $7) RETURNING id \
                 ), written AS ( \
                     INSERT INTO records (session_id, seq, at, entry) \
                     SELECT b.id, $2 + e.n, $4, e.entry \
                     FROM bumped b, unnest($5::text[]) WITH ORDINALITY AS e(entry, n) \
                 ), keyed AS ( \
                     INSERT INTO idempotency_keys (session_id, key, first_seq, version) \
                     SELECT b.id, $6, $2 + 1, $3 FROM bumped b WHERE $6::text IS NOT NULL \
                 ) \
                 SELECT count(*) FROM bumped",
            )
            .await
            .map_err(backend)?;
        let expected = version(append.expected_version);
        let count = append.entries.len() as u64;
        let Some(new_version) = append.expected_version.checked_add(count) else {
            return Self::unwritten(&client, id, &append).await;
        };
        let entries: Vec<String> = append.entries.iter().map(to_json).collect();
        let written = client
            .query_one(
                &statement,
                &[
                    &uuid(id),
                    &expected,
                    &version(new_version),
                    &now(),
                    &entries,
                    &append.idempotency_key,
                    &append.fencing_token.map(version),
                ],
            )
            .await;
        match written {
            Ok(row) if row.get::<_, i64>(0) == 1 => {
                Ok(Appended { first_seq: append.expected_version + 1, version: new_version })
            }
            Ok(_) => Self::unwritten(&client, id, &append).await,
            // The key was used by an earlier append (which then moved the version on).
            Err(e) if violates(&e, "idempotency_keys_pkey") => {
                Self::unwritten(&client, id, &append).await
            }
            Err(e) => Err(backend(e)),
        }
    }

    /// [`SessionStore::fork`](crate::SessionStore::fork).
    pub(super) async fn fork_session(
        &self,
        id: SessionId,
        at: u64,
    ) -> Result<SessionInfo, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The key-share lock keeps a delete out until the fork commits (appends may go on).
        let source = Self::info_with(&tx, id, Lock::KeepRow).await?;
        check_fork(&source, at)?;
        let mut info = new_info(source.start.clone(), Some(Origin::Fork { from: id, at }))?;
        info.version = at + 1;
        Self::insert_session(&tx, &info, &[]).await?;
        let copied = Self::copy_records(&tx, id, info.id, at).await?;
        if copied != at {
            return Err(StoreError::corrupt(
                id.to_string(),
                "records",
                format!("{copied} records up to {at}"),
            ));
        }
        let forked = Record {
            seq: at + 1,
            at: info.updated_at,
            entry: Entry::Forked { from: id, through: at },
        };
        Self::insert_records(&tx, info.id, &[forked]).await?;
        tx.commit().await.map_err(backend)?;
        Ok(info)
    }

    /// [`SessionStore::rewind`](crate::SessionStore::rewind).
    pub(super) async fn rewind_session(
        &self,
        id: SessionId,
        expected_version: u64,
        to: u64,
    ) -> Result<Rewound, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The row lock keeps appends out until the rewind commits.
        let source = Self::info_with(&tx, id, Lock::Write).await?;
        check_rewind(&source, expected_version, to)?;
        let actual = source.version;
        let archive = archive_info(&source)?;
        Self::insert_session(&tx, &archive, &[]).await?;
        Self::copy_records(&tx, id, archive.id, actual).await?;
        let now = now();
        let rewind =
            Record { seq: actual + 1, at: now, entry: Entry::Rewind { to, archive: archive.id } };
        Self::insert_records(&tx, id, std::slice::from_ref(&rewind)).await?;
        tx.execute(
            "UPDATE sessions SET version = $2, updated_at = $3 WHERE id = $1",
            &[&uuid(id), &version(actual + 1), &now],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        let info = SessionInfo { version: actual + 1, updated_at: now, ..source };
        Ok(Rewound { info, archive })
    }

    /// [`SessionStore::delete`](crate::SessionStore::delete).
    pub(super) async fn delete_session(&self, id: SessionId) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // The row first: an append waiting for it then finds it gone and writes nothing. The
        // records after, in a statement of their own, which sees every record of an append
        // that committed before the row was taken (records hold no foreign key; see
        // migrations/postgres/0002).
        let row = tx.prepare_cached("DELETE FROM sessions WHERE id = $1").await.map_err(backend)?;
        if tx.execute(&row, &[&uuid(id)]).await.map_err(backend)? == 0 {
            return Err(StoreError::NotFound(id));
        }
        let records = tx
            .prepare_cached("DELETE FROM records WHERE session_id = $1")
            .await
            .map_err(backend)?;
        tx.execute(&records, &[&uuid(id)]).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    /// [`SessionStore::put`](crate::SessionStore::put).
    pub(super) async fn put_session(&self, session: Session) -> Result<SessionInfo, StoreError> {
        check_numbering(&session)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        Self::insert_session(&tx, &session.info, &session.records).await?;
        tx.commit().await.map_err(backend)?;
        Ok(session.info)
    }

    /// Inserts a session row and its records in `client`'s transaction.
    async fn insert_session(
        client: &impl GenericClient,
        info: &SessionInfo,
        records: &[Record],
    ) -> Result<(), StoreError> {
        let statement = client
            .prepare_cached(
                "INSERT INTO sessions (id, start, tags, created_at, updated_at, version, origin) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .await
            .map_err(backend)?;
        let origin = info.origin.as_ref().map(to_json);
        let inserted = client
            .execute(
                &statement,
                &[
                    &uuid(info.id),
                    &to_json(&info.start),
                    &info.start.tags,
                    &info.created_at,
                    &info.updated_at,
                    &version(info.version),
                    &origin,
                ],
            )
            .await;
        match inserted {
            Err(e) if violates(&e, "sessions_pkey") => {
                return Err(StoreError::AlreadyExists(info.id));
            }
            other => other.map_err(backend)?,
        };
        Self::insert_records(client, info.id, records).await
    }

    /// Copies the records of session `from` up to `through` into session `to` (a fork, a
    /// rewind's archive), as stored; the number copied.
    async fn copy_records(
        client: &impl GenericClient,
        from: SessionId,
        to: SessionId,
        through: u64,
    ) -> Result<u64, StoreError> {
        let copy = client
            .prepare_cached(
                "INSERT INTO records (session_id, seq, at, entry) \
                 SELECT $1, seq, at, entry FROM records WHERE session_id = $2 AND seq <= $3",
            )
            .await
            .map_err(backend)?;
        client.execute(&copy, &[&uuid(to), &uuid(from), &version(through)]).await.map_err(backend)
    }

    async fn insert_records(
        client: &impl GenericClient,
        id: SessionId,
        records: &[Record],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let statement = client
            .prepare_cached(
                "INSERT INTO records (session_id, seq, at, entry) \
                 SELECT $1, r.seq, r.at, r.entry \
                 FROM unnest($2::bigint[], $3::timestamptz[], $4::text[]) AS r(seq, at, entry)",
            )
            .await
            .map_err(backend)?;
        let seqs: Vec<i64> = records.iter().map(|r| version(r.seq)).collect();
        let times: Vec<DateTime<Utc>> = records.iter().map(|r| r.at).collect();
        let entries: Vec<String> = records.iter().map(|r| to_json(&r.entry)).collect();
        client.execute(&statement, &[&uuid(id), &seqs, &times, &entries]).await.map_err(backend)?;
        Ok(())
    }

    /// After an append wrote nothing: the earlier result of its idempotency key, or why.
    async fn unwritten(
        client: &impl GenericClient,
        id: SessionId,
        append: &Append,
    ) -> Result<Appended, StoreError> {
        let statement = client
            .prepare_cached(
                "SELECT s.version, k.first_seq, k.version, s.lease_token FROM sessions s \
                 LEFT JOIN idempotency_keys k ON k.session_id = s.id AND k.key = $2 \
                 WHERE s.id = $1",
            )
            .await
            .map_err(backend)?;
        let row = client
            .query_opt(&statement, &[&uuid(id), &append.idempotency_key])
            .await
            .map_err(backend)?
            .ok_or(StoreError::NotFound(id))?;
        if let (Some(first_seq), Some(version)) =
            (row.get::<_, Option<i64>>(1), row.get::<_, Option<i64>>(2))
        {
            return Ok(Appended { first_seq: first_seq as u64, version: version as u64 });
        }
        check_token(id, append.fencing_token, row.get::<_, i64>(3) as u64)?;
        let actual = row.get::<_, i64>(0) as u64;
        if actual != append.expected_version {
            return Err(StoreError::Conflict { id, expected: append.expected_version, actual });
        }
        if append.entries.is_empty() {
            return Err(StoreError::Invalid("an append needs at least one entry".into()));
        }
        Err(StoreError::corrupt(
            id.to_string(),
            "idempotency_keys",
            "a key was refused that is not stored",
        ))
    }
}
