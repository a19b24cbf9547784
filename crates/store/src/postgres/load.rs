//! Reading: a session's row, its records (in groups of rows parsed on threads, or one row per
//! record when a group is too large), loads, ranges, tails and the list of sessions.
//!
//! Readers take no lock: a load reads the session row, then its records up to that row's
//! version, which are never rewritten.

use std::sync::mpsc;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use futures_util::TryStreamExt;
use tokio::task::JoinHandle;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use verbatim_model::SessionId;

use super::rows::{corrupt, entry, session_info, uuid, version};
use super::{PostgresStore, backend};
use crate::{ListQuery, Page, Record, Session, SessionInfo, StoreError};

impl PostgresStore {
    /// [`SessionStore::load`](crate::SessionStore::load): the session row and its records.
    pub(super) async fn load_session(&self, id: SessionId) -> Result<Session, StoreError> {
        let client = self.client().await?;
        // Both statements go out at once (one round trip). The session row is read first;
        // the records statement, run after it, sees that version or a later one, so the
        // records are cut to the row's version (records are never rewritten).
        let (info, mut records) = futures_util::future::try_join(
            Self::info_with(&client, id, Lock::None),
            Self::records(&client, id, 1, None),
        )
        .await?;
        records.truncate(info.version as usize);
        if records.len() as u64 != info.version {
            // Deleted between the two reads.
            return Err(StoreError::NotFound(id));
        }
        Ok(Session { info, records })
    }

    /// [`SessionStore::load_range`](crate::SessionStore::load_range).
    pub(super) async fn load_records(
        &self,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        let client = self.client().await?;
        let info = Self::info_with(&client, id, Lock::None).await?;
        let to = to.map_or(info.version, |to| to.min(info.version));
        Self::records(&client, id, from.max(1), Some(to)).await
    }

    /// [`SessionStore::tail`](crate::SessionStore::tail).
    pub(super) async fn tail_records(
        &self,
        id: SessionId,
        n: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let client = self.client().await?;
        let info = Self::info_with(&client, id, Lock::None).await?;
        let from = info.version.saturating_sub(n as u64) + 1;
        Self::records(&client, id, from, Some(info.version)).await
    }

    /// [`SessionStore::list`](crate::SessionStore::list): a page, newest first.
    pub(super) async fn list_sessions(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let limit = if query.limit == 0 { 100 } else { query.limit };
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, start, created_at, updated_at, version, origin FROM sessions \
                 WHERE ($1::text IS NULL OR tags @> ARRAY[$1::text]) \
                   AND ($2::timestamptz IS NULL OR updated_at >= $2) \
                   AND ($3::timestamptz IS NULL OR (updated_at, id) < ($3, $4::uuid)) \
                 ORDER BY updated_at DESC, id DESC LIMIT $5",
            )
            .await
            .map_err(backend)?;
        let after_time = query.after.map(|c| c.updated_at);
        let after_id = query.after.map(|c| uuid(c.id));
        let rows = client
            .query(
                &statement,
                &[&query.tag, &query.updated_since, &after_time, &after_id, &(limit as i64 + 1)],
            )
            .await
            .map_err(backend)?;
        let mut sessions = rows.iter().map(session_info).collect::<Result<Vec<_>, _>>()?;
        let next = if sessions.len() > limit {
            sessions.truncate(limit);
            sessions.last().map(|s| crate::Cursor { updated_at: s.updated_at, id: s.id })
        } else {
            None
        };
        Ok(Page { sessions, next })
    }

    /// The session row of `id`, read with `lock`.
    pub(super) async fn info_with(
        client: &impl GenericClient,
        id: SessionId,
        lock: Lock,
    ) -> Result<SessionInfo, StoreError> {
        let sql = match lock {
            Lock::None => {
                "SELECT id, start, created_at, updated_at, version, origin FROM sessions \
                 WHERE id = $1"
            }
            Lock::KeepRow => {
                "SELECT id, start, created_at, updated_at, version, origin FROM sessions \
                 WHERE id = $1 FOR KEY SHARE"
            }
            Lock::Write => {
                "SELECT id, start, created_at, updated_at, version, origin FROM sessions \
                 WHERE id = $1 FOR UPDATE"
            }
        };
        let statement = client.prepare_cached(sql).await.map_err(backend)?;
        let row = client.query_opt(&statement, &[&uuid(id)]).await.map_err(backend)?;
        row.map(|row| session_info(&row)).ok_or(StoreError::NotFound(id))?
    }

    /// Records `from..=to` of a session (to its version as this statement sees it when `to`
    /// is `None`), in order.
    async fn records(
        client: &impl GenericClient,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        if to.is_some_and(|to| from > to) {
            return Ok(Vec::new());
        }
        let mut records = match Self::records_in_groups(client, id, from, to).await {
            Ok(records) => records,
            // A group's row is one message, which PostgreSQL caps at 1 GB: a run of entries
            // averaging more than 16 MB is read one row per record instead.
            Err(Grouped::TooLarge) => Self::records_by_row(client, id, from, to).await?,
            Err(Grouped::Failed(e)) => return Err(e),
        };
        // Within a group, records come as the server read them: in `seq` order unless it
        // read the table's pages in their own order.
        if !records.is_sorted_by_key(|r| r.seq) {
            records.sort_unstable_by_key(|r| r.seq);
        }
        Ok(records)
    }

    /// [`PostgresStore::records`] one row per record.
    async fn records_by_row(
        client: &impl GenericClient,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        let statement = client
            .prepare_cached(
                "SELECT seq, at, entry FROM records \
                 WHERE session_id = $1 AND seq >= $2 \
                   AND seq <= coalesce($3, (SELECT version FROM sessions WHERE id = $1)) \
                 ORDER BY seq",
            )
            .await
            .map_err(backend)?;
        let to = to.map(version);
        let rows =
            client.query(&statement, &[&uuid(id), &version(from), &to]).await.map_err(backend)?;
        rows.iter()
            .map(|row| {
                let seq = row.get::<_, i64>(0) as u64;
                Ok(Record { seq, at: row.get(1), entry: entry(id, seq, row.get(2))? })
            })
            .collect()
    }

    /// The records `from..=to` read one row per record, as a load over the size limit of a
    /// group reads them.
    #[cfg(test)]
    pub(crate) async fn records_one_row_each(
        &self,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        Self::records_by_row(&self.client().await?, id, from, to).await
    }

    /// [`PostgresStore::records`] in groups, not yet sorted.
    async fn records_in_groups(
        client: &impl GenericClient,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, Grouped> {
        // Records come in groups of `GROUP_RECORDS`, one row per group holding three arrays
        // (sequence numbers, times, entry texts) that list the same records in the same order.
        // One row per record costs the client a protocol message, a channel send and often a
        // thread wake-up each: on a long session that, more than the server, bounded a plain
        // SELECT. Each group is aggregated on its own, so the server sends it once it is read
        // and goes on with the next while the client parses it.
        let statement = client
            .prepare_cached(
                "SELECT g.seqs, g.ats, g.entries \
                 FROM generate_series( \
                     0, (coalesce($3, (SELECT version FROM sessions WHERE id = $1)) - $2) / $4 \
                 ) AS b(n) \
                 CROSS JOIN LATERAL ( \
                     SELECT array_agg(seq) AS seqs, array_agg(at) AS ats, \
                            array_agg(entry) AS entries \
                     FROM records \
                     WHERE session_id = $1 AND seq >= $2 + b.n * $4 AND seq < $2 + (b.n + 1) * $4 \
                       AND seq <= coalesce($3, (SELECT version FROM sessions WHERE id = $1)) \
                 ) g \
                 WHERE g.seqs IS NOT NULL",
            )
            .await
            .map_err(backend)?;
        let to = to.map(version);
        let params: [&(dyn ToSql + Sync); 4] = [&uuid(id), &version(from), &to, &GROUP_RECORDS];
        let groups = client.query_raw(&statement, params).await.map_err(Grouped::from)?;
        let mut groups = std::pin::pin!(groups);
        // A short first group (a short session, a tail) is parsed here. Otherwise groups are
        // handed in turn to parsing threads, one per core, as they come: parsing is most of a
        // long load's own work. A parser stops at its first bad group, and the load with it.
        let mut parts: Vec<Vec<Record>> = Vec::new();
        let mut parsers: Vec<(mpsc::Sender<(usize, Row)>, JoinHandle<_>)> = Vec::new();
        while let Some(group) = groups.try_next().await.map_err(Grouped::from)? {
            if parsers.is_empty() && group_len(&group) < PARSE_APART {
                parts.push(parse_group(id, &group)?);
                continue;
            }
            if parsers.len() < parse_threads() {
                let (send, receive) = mpsc::channel::<(usize, Row)>();
                let parser = tokio::task::spawn_blocking(move || {
                    let mut parsed = Vec::new();
                    for (n, group) in receive {
                        parsed.push((n, parse_group(id, &group).map_err(|e| (n, e))?));
                    }
                    Ok::<_, (usize, StoreError)>(parsed)
                });
                parsers.push((send, parser));
            }
            let n = parts.len();
            parts.push(Vec::new());
            if parsers[n % parsers.len()].0.send((n, group)).is_err() {
                break;
            }
        }
        // Each parser took its groups in order and stopped at its first bad one: the first
        // bad group of all is the first of theirs.
        let mut failed: Option<(usize, StoreError)> = None;
        for (send, parser) in parsers {
            drop(send);
            match parser.await.map_err(|e| Grouped::Failed(backend(e)))? {
                Ok(parsed) => parsed.into_iter().for_each(|(n, part)| parts[n] = part),
                Err((n, e)) => {
                    if failed.as_ref().is_none_or(|(first, _)| n < *first) {
                        failed = Some((n, e));
                    }
                }
            }
        }
        if let Some((_, e)) = failed {
            return Err(Grouped::Failed(e));
        }
        Ok(parts.into_iter().flatten().collect())
    }
}

/// The row lock a read of a session row takes.
#[derive(Clone, Copy)]
pub(super) enum Lock {
    /// None: a plain read.
    None,
    /// The row cannot be deleted until the transaction ends (`FOR KEY SHARE`).
    KeepRow,
    /// No other writer until the transaction ends (`FOR UPDATE`).
    Write,
}

/// Records per group read at once (see `records_in_groups`). A group's arrays are built in the
/// server's memory and sent as one row, which PostgreSQL caps at 1 GB: 64 entries stay under
/// it unless they average 16 MB (a whole InvokeModel request body may hold 25 MB); beyond, the
/// records are read one row each.
const GROUP_RECORDS: i64 = 64;

/// Why records could not be read in groups.
enum Grouped {
    /// A group was over PostgreSQL's limit for one value or one row.
    TooLarge,
    /// Any other failure.
    Failed(StoreError),
}

impl From<StoreError> for Grouped {
    fn from(e: StoreError) -> Grouped {
        Grouped::Failed(e)
    }
}

impl From<tokio_postgres::Error> for Grouped {
    fn from(e: tokio_postgres::Error) -> Grouped {
        // `array size exceeds the maximum allowed`; `Cannot enlarge string buffer` (the row).
        match e.code() {
            Some(code)
                if *code == SqlState::PROGRAM_LIMIT_EXCEEDED
                    || *code == SqlState::OUT_OF_MEMORY =>
            {
                Grouped::TooLarge
            }
            _ => Grouped::Failed(backend(e)),
        }
    }
}

/// A first group of fewer records than this is parsed in place, not on a parsing thread.
const PARSE_APART: usize = 32;

/// Threads that parse the groups of one load: one per core, up to four.
fn parse_threads() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4))
}

/// The number of records in a group row.
fn group_len(group: &Row) -> usize {
    group.try_get::<_, Vec<i64>>(0).map_or(0, |seqs| seqs.len())
}

/// Parses a group row: arrays of sequence numbers, times and entry texts.
fn parse_group(id: SessionId, group: &Row) -> Result<Vec<Record>, StoreError> {
    let seqs: Vec<i64> = group.try_get(0).map_err(|e| corrupt(id, "records", e))?;
    let times: Vec<DateTime<Utc>> = group.try_get(1).map_err(|e| corrupt(id, "records", e))?;
    let entries: Vec<&str> = group.try_get(2).map_err(|e| corrupt(id, "records", e))?;
    if times.len() != seqs.len() || entries.len() != seqs.len() {
        return Err(StoreError::corrupt(
            id.to_string(),
            "records",
            "a group's arrays differ in length",
        ));
    }
    seqs.into_iter()
        .zip(times)
        .zip(entries)
        .map(|((seq, at), text)| {
            let seq = seq as u64;
            Ok(Record { seq, at, entry: entry(id, seq, text)? })
        })
        .collect()
}
