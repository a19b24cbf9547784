//! Writing: appends (one transaction, or staged when past a transaction's limits; see the
//! module docs), new sessions (create, put, fork, a rewind's archive), rewinds and deletes,
//! and the conditional updates of the head the leases share.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, DeleteRequest, Put, ReturnValue, TransactWriteItem, Update,
    WriteRequest,
};
use chrono::{DateTime, Utc};
use verbatim_model::SessionId;

use super::items::{
    HEAD, Item, RawRecord, get_n, get_n_opt, head_item, idempotency_sk, item_bytes, key, list_key,
    micros, n, s,
};
use super::{DynamoStore, PENDING_STALE, backend, built};
use crate::lease::check_token;
use crate::store::{archive_info, check_fork, check_numbering, check_rewind, new_info, now};
use crate::{
    Append, Appended, Entry, NewSession, Origin, Rewound, Session, SessionInfo, StoreError,
};

/// The most items of one transaction (DynamoDB's limit).
const TX_ITEMS: usize = 100;
/// The most bytes of items one transaction is given (DynamoDB's limit is 4 MB).
const TX_BYTES: usize = 3_500_000;
/// How many times a transaction cancelled only by concurrent ones is sent again.
const CONFLICT_TRIES: u32 = 8;

/// How a transaction ended.
pub(super) enum Sent {
    Done,
    /// A condition failed: nothing was written.
    Cancelled,
}

/// Why an append wrote nothing, read back after it.
enum Unwritten {
    /// Its idempotency key was used: the earlier append's result.
    Done(Appended),
    Failed(StoreError),
    /// Nothing that stops it: a concurrent transaction, or a staged append in progress.
    Retry,
}

/// A random id for the items of one write (telling a record's parts from a dead writer's).
fn writer_id() -> Result<u64, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::backend_detail(format!("random id: {e}")))?;
    Ok(u64::from_le_bytes(bytes))
}

fn values(pairs: Vec<(&str, AttributeValue)>) -> HashMap<String, AttributeValue> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

impl DynamoStore {
    fn put_item(
        &self,
        item: Item,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = built(
            Put::builder()
                .table_name(self.table.as_ref())
                .set_item(Some(item))
                .set_condition_expression(condition.map(str::to_owned))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Sends one transaction, again while only concurrent transactions cancel it.
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Sent, StoreError> {
        for attempt in 1.. {
            // The SDK sends a request again after a timeout or a 5xx: with the token, a
            // transaction that was applied the first time is not applied twice.
            let token = format!("{:016x}{:016x}", writer_id()?, writer_id()?);
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(token)
                .send()
                .await;
            let e = match sent {
                Ok(_) => return Ok(Sent::Done),
                Err(e) => e,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                e.as_service_error()
            else {
                return Err(backend(e));
            };
            let codes: Vec<&str> =
                cancelled.cancellation_reasons().iter().filter_map(|r| r.code()).collect();
            let concurrent = codes.contains(&"TransactionConflict")
                && !codes.contains(&"ConditionalCheckFailed");
            if !concurrent {
                return Ok(Sent::Cancelled);
            }
            if attempt >= CONFLICT_TRIES {
                return Err(backend(e));
            }
            tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
        }
        unreachable!("the loop returns")
    }

    /// One conditional `UpdateItem` of the head of `id`: the attributes it set (`UPDATED_NEW`),
    /// or `None` when the condition failed. Sent again while a transaction holds the item.
    pub(super) async fn update_head(
        &self,
        id: SessionId,
        update: &str,
        condition: &str,
        values: HashMap<String, AttributeValue>,
    ) -> Result<Option<Item>, StoreError> {
        for attempt in 1.. {
            let sent = self
                .client
                .update_item()
                .table_name(self.table.as_ref())
                .set_key(Some(key(id, HEAD)))
                .update_expression(update)
                .condition_expression(condition)
                .set_expression_attribute_values(Some(values.clone()))
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await;
            match sent {
                Ok(out) => return Ok(Some(out.attributes.unwrap_or_default())),
                Err(e) => match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(_)) => return Ok(None),
                    Some(UpdateItemError::TransactionConflictException(_))
                        if attempt < CONFLICT_TRIES =>
                    {
                        tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                    }
                    _ => return Err(backend(e)),
                },
            }
        }
        unreachable!("the loop returns")
    }

    /// [`SessionStore::create`](crate::SessionStore::create).
    pub(super) async fn create_session(&self, new: NewSession) -> Result<SessionInfo, StoreError> {
        let info = new_info(new, None)?;
        self.write_new(&info, &[]).await?;
        Ok(info)
    }

    /// [`SessionStore::put`](crate::SessionStore::put).
    pub(super) async fn put_session(&self, session: Session) -> Result<SessionInfo, StoreError> {
        check_numbering(&session)?;
        let records: Vec<RawRecord> =
            session.records.iter().map(|r| RawRecord::of(r.seq, r.at, &r.entry)).collect();
        self.write_new(&session.info, &records).await?;
        Ok(session.info)
    }

    /// Writes a new session: its head and records in one transaction when they fit, else the
    /// records first and the head last (readers find no session until the head is there).
    async fn write_new(&self, info: &SessionInfo, records: &[RawRecord]) -> Result<(), StoreError> {
        let writer = writer_id()?;
        let items: Vec<Item> = records.iter().flat_map(|r| r.items(info.id, writer)).collect();
        let head = head_item(info);
        let bytes: usize = items.iter().map(item_bytes).sum::<usize>() + item_bytes(&head);
        let new_head = "attribute_not_exists(pk)";
        if items.len() < TX_ITEMS && bytes <= TX_BYTES {
            let mut writes = vec![self.put_item(head, Some(new_head))?];
            for item in items {
                writes.push(self.put_item(item, None)?);
            }
            return match self.transact(writes).await? {
                Sent::Done => Ok(()),
                Sent::Cancelled => Err(StoreError::AlreadyExists(info.id)),
            };
        }
        if self.head(info.id).await?.is_some() {
            return Err(StoreError::AlreadyExists(info.id));
        }
        for batch in batches(items, TX_ITEMS) {
            let writes =
                batch.into_iter().map(|i| self.put_item(i, None)).collect::<Result<_, _>>()?;
            self.transact(writes).await?;
        }
        match self.transact(vec![self.put_item(head, Some(new_head))?]).await? {
            Sent::Done => Ok(()),
            Sent::Cancelled => Err(StoreError::AlreadyExists(info.id)),
        }
    }

    /// [`SessionStore::append`](crate::SessionStore::append).
    pub(super) async fn append_entries(
        &self,
        id: SessionId,
        append: Append,
    ) -> Result<Appended, StoreError> {
        self.append_at(id, &append).await.map(|(done, _)| done)
    }

    /// Appends, and the time its records carry.
    async fn append_at(
        &self,
        id: SessionId,
        append: &Append,
    ) -> Result<(Appended, DateTime<Utc>), StoreError> {
        let count = append.entries.len() as u64;
        let Some(version) = append.expected_version.checked_add(count) else {
            return Err(StoreError::Invalid(format!(
                "session {id}: an append of {count} entries after version {} overflows",
                append.expected_version
            )));
        };
        let done = Appended { first_seq: append.expected_version + 1, version };
        let deadline = tokio::time::Instant::now() + PENDING_STALE + Duration::from_secs(10);
        let mut pause = Duration::from_millis(5);
        loop {
            if !append.entries.is_empty() {
                let at = now();
                let records: Vec<RawRecord> = append
                    .entries
                    .iter()
                    .zip(done.first_seq..)
                    .map(|(entry, seq)| RawRecord::of(seq, at, entry))
                    .collect();
                if self.append_records(id, append, &records, at).await? {
                    return Ok((done, at));
                }
            }
            match self.unwritten(id, append).await? {
                Unwritten::Done(earlier) => return Ok((earlier, now())),
                Unwritten::Failed(e) => return Err(e),
                Unwritten::Retry if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Unwritten::Retry => {
                    return Err(StoreError::backend_detail(format!(
                        "dynamodb: session {id}: the append kept meeting other writes for {} s",
                        (PENDING_STALE + Duration::from_secs(10)).as_secs()
                    )));
                }
            }
        }
    }

    /// Writes `records` at the append's expected version: whether it did (see the module docs).
    async fn append_records(
        &self,
        id: SessionId,
        append: &Append,
        records: &[RawRecord],
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let writer = writer_id()?;
        let items: Vec<Item> = records.iter().flat_map(|r| r.items(id, writer)).collect();
        let bytes: usize = items.iter().map(item_bytes).sum();
        let version = append.expected_version + records.len() as u64;
        let clock = micros(self.clock.now());
        let stale = clock - PENDING_STALE.as_micros() as i64;
        let mut vals = vec![
            (":expected", n(append.expected_version)),
            (":version", n(version)),
            (":updated", n(micros(at))),
            (":list_key", s(list_key(at, Some(id)))),
            (":stale", n(stale)),
        ];
        let mut condition = "version = :expected \
             AND (attribute_not_exists(pending) OR pending_at < :stale)"
            .to_owned();
        if let Some(token) = append.fencing_token {
            condition.push_str(" AND lease_token = :token");
            vals.push((":token", n(token)));
        }
        let commit = "SET version = :version, updated = :updated, list_key = :list_key \
                      REMOVE pending, pending_at";
        let key_item = append.idempotency_key.as_ref().map(|k| {
            let mut item = key(id, idempotency_sk(k));
            item.insert("first_seq".into(), n(append.expected_version + 1));
            item.insert("version".into(), n(version));
            item
        });
        if items.len() + 2 <= TX_ITEMS && bytes <= TX_BYTES {
            let mut writes = vec![self.head_update(id, commit, &condition, values(vals))?];
            writes.extend(
                items.into_iter().map(|i| self.put_item(i, None)).collect::<Result<Vec<_>, _>>()?,
            );
            if let Some(item) = key_item {
                writes.push(self.put_item(item, Some("attribute_not_exists(pk)"))?);
            }
            return Ok(matches!(self.transact(writes).await?, Sent::Done));
        }
        // Staged: claim the head, write the records under the claim, then commit.
        let mut claim_values = values(vals);
        claim_values.insert(":writer".into(), n(writer));
        claim_values.insert(":now".into(), n(clock));
        for unused in [":version", ":updated", ":list_key"] {
            claim_values.remove(unused);
        }
        let claimed = self
            .update_head(id, "SET pending = :writer, pending_at = :now", &condition, claim_values)
            .await?;
        if claimed.is_none() {
            return Ok(false);
        }
        let staged = self.write_staged(id, writer, items, version, at, commit, key_item).await;
        if !matches!(staged, Ok(true)) {
            // Give the claim up at once rather than leave others waiting for it to go stale.
            let mut release = HashMap::new();
            release.insert(":writer".to_owned(), n(writer));
            let _ = self
                .update_head(id, "REMOVE pending, pending_at", "pending = :writer", release)
                .await;
        }
        staged
    }

    /// The staged part of an append whose claim `writer` holds: the records, then the commit.
    #[allow(clippy::too_many_arguments)]
    async fn write_staged(
        &self,
        id: SessionId,
        writer: u64,
        items: Vec<Item>,
        version: u64,
        at: DateTime<Utc>,
        commit: &str,
        key_item: Option<Item>,
    ) -> Result<bool, StoreError> {
        let claim = values(vec![(":writer", n(writer))]);
        for batch in batches(items, TX_ITEMS - 1) {
            let check = built(
                ConditionCheck::builder()
                    .table_name(self.table.as_ref())
                    .set_key(Some(key(id, HEAD)))
                    .condition_expression("pending = :writer")
                    .set_expression_attribute_values(Some(claim.clone()))
                    .build(),
            )?;
            let mut writes = vec![TransactWriteItem::builder().condition_check(check).build()];
            writes.extend(
                batch.into_iter().map(|i| self.put_item(i, None)).collect::<Result<Vec<_>, _>>()?,
            );
            if let Sent::Cancelled = self.transact(writes).await? {
                return Ok(false);
            }
        }
        let vals = values(vec![
            (":writer", n(writer)),
            (":version", n(version)),
            (":updated", n(micros(at))),
            (":list_key", s(list_key(at, Some(id)))),
        ]);
        let mut writes = vec![self.head_update(id, commit, "pending = :writer", vals)?];
        if let Some(item) = key_item {
            writes.push(self.put_item(item, Some("attribute_not_exists(pk)"))?);
        }
        Ok(matches!(self.transact(writes).await?, Sent::Done))
    }

    fn head_update(
        &self,
        id: SessionId,
        update: &str,
        condition: &str,
        values: HashMap<String, AttributeValue>,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = built(
            Update::builder()
                .table_name(self.table.as_ref())
                .set_key(Some(key(id, HEAD)))
                .update_expression(update)
                .condition_expression(condition)
                .set_expression_attribute_values(Some(values))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// After an append wrote nothing: the earlier result of its idempotency key, or why.
    async fn unwritten(&self, id: SessionId, append: &Append) -> Result<Unwritten, StoreError> {
        if let Some(k) = &append.idempotency_key {
            let out = self
                .client
                .get_item()
                .table_name(self.table.as_ref())
                .set_key(Some(key(id, idempotency_sk(k))))
                .consistent_read(true)
                .send()
                .await
                .map_err(backend)?;
            if let Some(item) = out.item {
                let first_seq = get_n(id, &item, "first_seq")?;
                let version = get_n(id, &item, "version")?;
                return Ok(Unwritten::Done(Appended { first_seq, version }));
            }
        }
        let Some(head) = self.head(id).await? else {
            return Ok(Unwritten::Failed(StoreError::NotFound(id)));
        };
        let token = get_n_opt(id, &head, "lease_token")?.unwrap_or(0);
        if let Err(fenced) = check_token(id, append.fencing_token, token) {
            return Ok(Unwritten::Failed(fenced));
        }
        let actual: u64 = get_n(id, &head, "version")?;
        if actual != append.expected_version {
            let expected = append.expected_version;
            return Ok(Unwritten::Failed(StoreError::Conflict { id, expected, actual }));
        }
        if append.entries.is_empty() {
            return Ok(Unwritten::Failed(StoreError::Invalid(
                "an append needs at least one entry".into(),
            )));
        }
        Ok(Unwritten::Retry)
    }

    /// [`SessionStore::fork`](crate::SessionStore::fork).
    pub(super) async fn fork_session(
        &self,
        id: SessionId,
        at: u64,
    ) -> Result<SessionInfo, StoreError> {
        let source = self.head_info(id).await?;
        check_fork(&source, at)?;
        let mut records = self.records_of(id, 1, at).await?;
        let mut info = new_info(source.start.clone(), Some(Origin::Fork { from: id, at }))?;
        info.version = at + 1;
        records.push(RawRecord::of(
            at + 1,
            info.updated_at,
            &Entry::Forked { from: id, through: at },
        ));
        self.write_new(&info, &records).await?;
        Ok(info)
    }

    /// [`SessionStore::rewind`](crate::SessionStore::rewind): the archive first, then the
    /// rewind record, appended at the version the archive copied (a write in between makes
    /// it a conflict, and the archive is deleted again).
    pub(super) async fn rewind_session(
        &self,
        id: SessionId,
        expected_version: u64,
        to: u64,
    ) -> Result<Rewound, StoreError> {
        let source = self.head_info(id).await?;
        check_rewind(&source, expected_version, to)?;
        let actual = source.version;
        let records = self.records_of(id, 1, actual).await?;
        let archive = archive_info(&source)?;
        self.write_new(&archive, &records).await?;
        let rewind = Append::new(actual, vec![Entry::Rewind { to, archive: archive.id }]);
        match self.append_at(id, &rewind).await {
            Ok((done, at)) => {
                let info = SessionInfo { version: done.version, updated_at: at, ..source };
                Ok(Rewound { info, archive })
            }
            Err(e) => {
                let _ = self.delete_session(archive.id).await;
                Err(e)
            }
        }
    }

    /// [`SessionStore::delete`](crate::SessionStore::delete): the head first (appends and
    /// reads then find no session), then every other item of the session.
    pub(super) async fn delete_session(&self, id: SessionId) -> Result<(), StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(self.table.as_ref())
            .set_key(Some(key(id, HEAD)))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match deleted {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                return Err(StoreError::NotFound(id));
            }
            Err(e) => return Err(backend(e)),
        }
        let items = self.session_items(id, None, true).await?;
        for batch in items.chunks(25) {
            let mut requests: Vec<WriteRequest> = batch
                .iter()
                .map(|k| {
                    built(DeleteRequest::builder().set_key(Some(k.clone())).build())
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                })
                .collect::<Result<_, _>>()?;
            let mut pause = Duration::from_millis(10);
            while !requests.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(self.table.as_ref(), requests)
                    .send()
                    .await
                    .map_err(backend)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut left| left.remove(self.table.as_ref()))
                    .unwrap_or_default();
                if !requests.is_empty() {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
        Ok(())
    }
}

/// `items` in groups that fit one transaction with `room` items each.
fn batches(items: Vec<Item>, room: usize) -> Vec<Vec<Item>> {
    let mut out: Vec<Vec<Item>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let size = item_bytes(&item);
        match out.last_mut() {
            Some(last) if last.len() < room && bytes + size <= TX_BYTES => {
                bytes += size;
                last.push(item);
            }
            _ => {
                bytes = size;
                out.push(vec![item]);
            }
        }
    }
    out
}
