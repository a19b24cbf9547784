//! Reading: the head, records by `Query` in sort-key order (a page at a time), loads, ranges,
//! tails, and the listing from the `by_update` index.
//!
//! A load reads the head, then the records up to its version, which are never rewritten;
//! both reads are strongly consistent. The listing's index is not (DynamoDB's global
//! secondary indexes never are).

use aws_sdk_dynamodb::types::AttributeValue;
use verbatim_model::SessionId;

use super::items::{
    Assembler, HEAD, INDEX, Item, RawRecord, SHARDS, item_session, key, list_key, pk, record_sk,
    record_sk_end, s, session_info,
};
use super::{DynamoStore, backend};
use crate::store::{listing_order, page};
use crate::{Cursor, ListQuery, Page, Record, Session, SessionInfo, StoreError};

impl DynamoStore {
    /// The head item of `id`, read strongly consistently.
    pub(super) async fn head(&self, id: SessionId) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table.as_ref())
            .set_key(Some(key(id, HEAD)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(out.item)
    }

    /// [`SessionStore::info`](crate::SessionStore::info).
    pub(super) async fn head_info(&self, id: SessionId) -> Result<SessionInfo, StoreError> {
        let item = self.head(id).await?.ok_or(StoreError::NotFound(id))?;
        session_info(id, &item)
    }

    /// [`SessionStore::load`](crate::SessionStore::load).
    pub(super) async fn load_session(&self, id: SessionId) -> Result<Session, StoreError> {
        let info = self.head_info(id).await?;
        let records = self.records_of(id, 1, info.version).await?;
        let records = records.into_iter().map(|r| r.parse(id)).collect::<Result<_, _>>()?;
        Ok(Session { info, records })
    }

    /// [`SessionStore::load_range`](crate::SessionStore::load_range).
    pub(super) async fn load_records(
        &self,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        let info = self.head_info(id).await?;
        let to = to.map_or(info.version, |to| to.min(info.version));
        let records = self.records_of(id, from.max(1), to).await?;
        records.into_iter().map(|r| r.parse(id)).collect()
    }

    /// [`SessionStore::tail`](crate::SessionStore::tail).
    pub(super) async fn tail_records(
        &self,
        id: SessionId,
        n: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let info = self.head_info(id).await?;
        let from = info.version.saturating_sub(n as u64) + 1;
        let records = self.records_of(id, from, info.version).await?;
        records.into_iter().map(|r| r.parse(id)).collect()
    }

    /// Records `from..=to` of a session whose version is at least `to`, as stored: every one
    /// must be there (a session deleted meanwhile is `NotFound`).
    pub(super) async fn records_of(
        &self,
        id: SessionId,
        from: u64,
        to: u64,
    ) -> Result<Vec<RawRecord>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let mut assembler = Assembler::default();
        let range = (record_sk(from, 0), record_sk_end(to));
        for item in self.session_items(id, Some(range), false).await? {
            assembler.push(id, &item)?;
        }
        let records = assembler.finish(id)?;
        let numbered = records.iter().zip(from..).all(|(r, seq)| r.seq == seq);
        if !numbered || records.len() as u64 != to - from + 1 {
            if self.head(id).await?.is_none() {
                return Err(StoreError::NotFound(id));
            }
            let missing =
                (from..=to).find(|seq| !records.iter().any(|r| r.seq == *seq)).unwrap_or(from);
            return Err(StoreError::corrupt(
                id.to_string(),
                format!("record {missing}"),
                "missing",
            ));
        }
        Ok(records)
    }

    /// The items of session `id` in sort-key order (those with sort keys in `range`, both
    /// ends included, when given; only their keys when `keys_only`), read strongly
    /// consistently a page at a time.
    pub(super) async fn session_items(
        &self,
        id: SessionId,
        range: Option<(String, String)>,
        keys_only: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(self.table.as_ref())
                .expression_attribute_values(":pk", pk(id))
                .consistent_read(true)
                .set_exclusive_start_key(start);
            request = match &range {
                Some((from, to)) => request
                    .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":from", s(from.clone()))
                    .expression_attribute_values(":to", s(to.clone())),
                None => request.key_condition_expression("pk = :pk"),
            };
            if keys_only {
                request = request.projection_expression("pk, sk");
            }
            let out = request.send().await.map_err(backend)?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// [`SessionStore::list`](crate::SessionStore::list): each partition of the index newest
    /// first, as far as the page needs, merged.
    pub(super) async fn list_sessions(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let limit = if query.limit == 0 { 100 } else { query.limit };
        let shards =
            (0..SHARDS).map(|shard| self.list_shard(query, format!("s{shard:02}"), limit + 1));
        let found = futures_util::future::try_join_all(shards).await?;
        let mut all: Vec<SessionInfo> = found.into_iter().flatten().collect();
        all.sort_by(listing_order);
        Ok(page(all.into_iter(), query))
    }

    /// Up to `want` sessions of one index partition that the query takes, newest first.
    async fn list_shard(
        &self,
        query: &ListQuery,
        shard: String,
        want: usize,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let low = query.updated_since.map_or_else(|| "0".to_owned(), |t| list_key(t, None));
        // Past every key of the cursor's time; those at or after the cursor are dropped below.
        let high = query
            .after
            .map_or_else(|| "~".to_owned(), |c: Cursor| list_key(c.updated_at, Some(c.id)));
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(self.table.as_ref())
                .index_name(INDEX)
                .key_condition_expression("list_shard = :shard AND list_key BETWEEN :low AND :high")
                .expression_attribute_values(":shard", s(shard.clone()))
                .expression_attribute_values(":low", s(low.clone()))
                .expression_attribute_values(":high", s(high.clone()))
                .scan_index_forward(false)
                .set_exclusive_start_key(start);
            if let Some(tag) = &query.tag {
                request = request
                    .filter_expression("contains(tags, :tag)")
                    .expression_attribute_values(":tag", AttributeValue::S(tag.clone()));
            }
            let out = request.send().await.map_err(backend)?;
            for item in out.items() {
                let info = session_info(item_session(item)?, item)?;
                if query.after.is_none_or(|c| crate::store::after_cursor(&info, &c)) {
                    found.push(info);
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() || found.len() >= want {
                return Ok(found);
            }
        }
    }
}
