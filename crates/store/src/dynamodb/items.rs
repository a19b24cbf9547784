//! Values to and from attributes: the keys, the head item and a session's info, records and
//! their parts, and the errors for stored values that do not read back.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use verbatim_model::SessionId;

use super::PART_BYTES;
use crate::{Entry, NewSession, Origin, Record, SessionInfo, StoreError};

/// An item as the SDK gives and takes it.
pub(super) type Item = HashMap<String, AttributeValue>;

/// The partition key's attribute.
pub(super) const PK: &str = "pk";
/// The sort key's attribute.
pub(super) const SK: &str = "sk";
/// The head's sort key.
pub(super) const HEAD: &str = "h";
/// The listing index.
pub(super) const INDEX: &str = "by_update";
/// How many partitions the listing index spreads heads over.
pub(super) const SHARDS: u8 = 16;

pub(super) fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

pub(super) fn n(number: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

/// The partition key of session `id`.
pub(super) fn pk(id: SessionId) -> AttributeValue {
    s(id.to_string())
}

/// The key of an item of session `id`.
pub(super) fn key(id: SessionId, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_owned(), pk(id)), (SK.to_owned(), s(sk))])
}

/// The sort key of record `seq`'s part `part` (0: the record's own item).
pub(super) fn record_sk(seq: u64, part: usize) -> String {
    if part == 0 { format!("r#{seq:020}") } else { format!("r#{seq:020}#{part:06}") }
}

/// The sort key just past every part of record `seq`.
pub(super) fn record_sk_end(seq: u64) -> String {
    format!("r#{seq:020}$")
}

/// The sort key of an idempotency key (long keys by their hash: a sort key is at most 1 KB).
pub(super) fn idempotency_sk(key: &str) -> String {
    if key.len() <= 512 {
        format!("k#{key}")
    } else {
        use sha2::Digest as _;
        let hash = sha2::Sha256::digest(key.as_bytes());
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        format!("k#sha256:{hex}")
    }
}

/// Microseconds since the epoch.
pub(super) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn time(id: SessionId, name: &str, micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::corrupt(id.to_string(), name, format!("time {micros}")))
}

/// The listing index's partition of session `id`.
pub(super) fn list_shard(id: SessionId) -> String {
    format!("s{:02}", id.as_bytes()[15] % SHARDS)
}

/// The listing index's sort key: update time (offset so that it is never negative), then id,
/// so that the string order is the listing order.
pub(super) fn list_key(updated_at: DateTime<Utc>, id: Option<SessionId>) -> String {
    let offset = (i128::from(micros(updated_at)) - i128::from(i64::MIN)) as u128;
    match id {
        Some(id) => format!("{offset:020}#{id}"),
        None => format!("{offset:020}"),
    }
}

/// The JSON text stored for `value`.
pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("store values serialize")
}

/// The head item of a new session.
pub(super) fn head_item(info: &SessionInfo) -> Item {
    let mut item = key(info.id, HEAD);
    item.insert("start".into(), s(to_json(&info.start)));
    if !info.start.tags.is_empty() {
        item.insert("tags".into(), AttributeValue::Ss(info.start.tags.clone()));
    }
    item.insert("created".into(), n(micros(info.created_at)));
    item.insert("updated".into(), n(micros(info.updated_at)));
    item.insert("version".into(), n(info.version));
    if let Some(origin) = &info.origin {
        item.insert("origin".into(), s(to_json(origin)));
    }
    item.insert("list_shard".into(), s(list_shard(info.id)));
    item.insert("list_key".into(), s(list_key(info.updated_at, Some(info.id))));
    item
}

pub(super) use crate::store::corrupt_by as corrupt;

/// The string attribute `name` of `item`.
pub(super) fn get_s<'a>(id: SessionId, item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(text)) => Ok(text),
        other => Err(StoreError::corrupt(
            id.to_string(),
            name,
            format!("expected a string, found {other:?}"),
        )),
    }
}

/// The number attribute `name` of `item`, or `None` when absent.
pub(super) fn get_n_opt<T: std::str::FromStr>(
    id: SessionId,
    item: &Item,
    name: &str,
) -> Result<Option<T>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(text)) => text.parse().map(Some).map_err(|_| {
            StoreError::corrupt(id.to_string(), name, format!("number {text:?} out of range"))
        }),
        Some(other) => Err(StoreError::corrupt(
            id.to_string(),
            name,
            format!("expected a number, found {other:?}"),
        )),
    }
}

/// The number attribute `name` of `item`.
pub(super) fn get_n<T: std::str::FromStr>(
    id: SessionId,
    item: &Item,
    name: &str,
) -> Result<T, StoreError> {
    get_n_opt(id, item, name)?.ok_or_else(|| StoreError::corrupt(id.to_string(), name, "missing"))
}

/// The session's info from its head item.
pub(super) fn session_info(id: SessionId, item: &Item) -> Result<SessionInfo, StoreError> {
    let start: NewSession =
        serde_json::from_str(get_s(id, item, "start")?).map_err(|e| corrupt(id, "start", e))?;
    let origin = match item.get("origin") {
        None => None,
        Some(_) => Some(
            serde_json::from_str::<Origin>(get_s(id, item, "origin")?)
                .map_err(|e| corrupt(id, "origin", e))?,
        ),
    };
    Ok(SessionInfo {
        id,
        start,
        created_at: time(id, "created", get_n(id, item, "created")?)?,
        updated_at: time(id, "updated", get_n(id, item, "updated")?)?,
        version: get_n(id, item, "version")?,
        origin,
    })
}

/// The session id of an item's partition key.
pub(super) fn item_session(item: &Item) -> Result<SessionId, StoreError> {
    let text = match item.get(PK) {
        Some(AttributeValue::S(text)) => text,
        other => return Err(StoreError::corrupt("?", PK, format!("{other:?}"))),
    };
    SessionId::parse(text).map_err(|e| StoreError::corrupt(text.clone(), PK, e.to_string()))
}

/// A record as stored: its entry's JSON bytes, not yet parsed.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RawRecord {
    pub(super) seq: u64,
    pub(super) at: DateTime<Utc>,
    pub(super) bytes: Vec<u8>,
}

impl RawRecord {
    /// The record of `entry`.
    pub(super) fn of(seq: u64, at: DateTime<Utc>, entry: &Entry) -> RawRecord {
        RawRecord { seq, at, bytes: to_json(entry).into_bytes() }
    }

    /// The record with its entry parsed.
    pub(super) fn parse(self, id: SessionId) -> Result<Record, StoreError> {
        let entry = serde_json::from_slice(&self.bytes)
            .map_err(|e| corrupt(id, format!("record {}", self.seq), e))?;
        Ok(Record { seq: self.seq, at: self.at, entry })
    }

    /// The items of this record in session `id`, written by `writer`: one, or one per part.
    pub(super) fn items(&self, id: SessionId, writer: u64) -> Vec<Item> {
        let parts: Vec<&[u8]> =
            if self.bytes.is_empty() { vec![&[]] } else { self.bytes.chunks(PART_BYTES).collect() };
        let count = parts.len();
        parts
            .into_iter()
            .enumerate()
            .map(|(part, bytes)| {
                let mut item = key(id, record_sk(self.seq, part));
                item.insert("writer".into(), n(writer));
                item.insert("entry".into(), AttributeValue::B(Blob::new(bytes)));
                if part == 0 {
                    item.insert("at".into(), n(micros(self.at)));
                    item.insert("parts".into(), n(count));
                }
                item
            })
            .collect()
    }
}

/// The size an item counts for in a transaction's 4 MB, near enough (attribute names and
/// the small values included).
pub(super) fn item_bytes(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::B(blob) => blob.as_ref().len(),
                    AttributeValue::S(text) | AttributeValue::N(text) => text.len(),
                    AttributeValue::Ss(set) => set.iter().map(|t| t.len() + 1).sum(),
                    _ => 16,
                }
        })
        .sum()
}

/// Reads records from the items of a `Query` in sort-key order: each record's item, then its
/// parts. Parts another writer left (an append that died staged, whose record was written
/// again) are passed over.
#[derive(Default)]
pub(super) struct Assembler {
    records: Vec<RawRecord>,
    /// The record being read: its parts' count and writer.
    open: Option<(RawRecord, usize, u64, usize)>,
}

impl Assembler {
    /// Takes the next item.
    pub(super) fn push(&mut self, id: SessionId, item: &Item) -> Result<(), StoreError> {
        let sk = get_s(id, item, SK)?;
        let Some(rest) = sk.strip_prefix("r#") else { return Ok(()) };
        let bad = || StoreError::corrupt(id.to_string(), sk, "not a record key");
        let (seq, part) = match rest.split_once('#') {
            Some((seq, part)) => (seq, part.parse::<usize>().map_err(|_| bad())?),
            None => (rest, 0),
        };
        let seq: u64 = seq.parse().map_err(|_| bad())?;
        let writer: u64 = get_n(id, item, "writer")?;
        let bytes = match item.get("entry") {
            Some(AttributeValue::B(blob)) => blob.as_ref(),
            other => {
                return Err(StoreError::corrupt(
                    id.to_string(),
                    format!("record {seq}"),
                    format!("entry: expected bytes, found {other:?}"),
                ));
            }
        };
        if part == 0 {
            self.close(id)?;
            let at = time(id, "at", get_n(id, item, "at")?)?;
            let parts: usize = get_n(id, item, "parts")?;
            let record = RawRecord { seq, at, bytes: bytes.to_vec() };
            self.open = Some((record, parts, writer, 1));
        } else if let Some((record, parts, by, read)) = &mut self.open
            && record.seq == seq
            && *by == writer
            && part == *read
            && *read < *parts
        {
            record.bytes.extend_from_slice(bytes);
            *read += 1;
        }
        Ok(())
    }

    fn close(&mut self, id: SessionId) -> Result<(), StoreError> {
        if let Some((record, parts, _, read)) = self.open.take() {
            if read != parts {
                return Err(StoreError::corrupt(
                    id.to_string(),
                    format!("record {}", record.seq),
                    format!("{read} of its {parts} parts are stored"),
                ));
            }
            self.records.push(record);
        }
        Ok(())
    }

    /// The records read.
    pub(super) fn finish(mut self, id: SessionId) -> Result<Vec<RawRecord>, StoreError> {
        self.close(id)?;
        Ok(self.records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_into_parts_and_join_byte_for_byte() {
        let id = SessionId::from_random_bytes([3; 16]);
        let at = DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap();
        // Cut anywhere, a multi-byte character included: the bytes are joined, not the text.
        let big = RawRecord { seq: 2, at, bytes: "é".repeat(PART_BYTES + 1).into_bytes() };
        let small = RawRecord { seq: 3, at, bytes: b"{}".to_vec() };
        let mut items = RawRecord { seq: 1, at, bytes: b"[1]".to_vec() }.items(id, 7);
        items.extend(big.items(id, 8));
        // A part a dead writer left behind record 3, which was written again.
        let mut stale = RawRecord { seq: 3, at, bytes: vec![b'x'; PART_BYTES + 1] }.items(id, 9);
        items.extend(small.items(id, 10));
        items.push(stale.remove(1));
        assert_eq!(big.items(id, 8).len(), 3);
        items.sort_by(|a, b| get_s(id, a, SK).unwrap().cmp(get_s(id, b, SK).unwrap()));
        let mut assembler = Assembler::default();
        for item in &items {
            assembler.push(id, item).unwrap();
        }
        let records = assembler.finish(id).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[1], big);
        assert_eq!(records[2], small);
        assert!(items.iter().all(|i| item_bytes(i) < 400 * 1000));
        // A missing part is an error that names the record.
        let mut assembler = Assembler::default();
        for item in big.items(id, 8).iter().take(2) {
            assembler.push(id, item).unwrap();
        }
        let error = assembler.finish(id).unwrap_err().to_string();
        assert!(error.contains("record 2") && error.contains("2 of its 3 parts"), "{error}");
    }

    #[test]
    fn listing_keys_sort_as_the_listing_does() {
        let id = SessionId::from_random_bytes([1; 16]);
        let times = [-5_000_000i64, 0, 1, 1_800_000_000_000_000];
        let keys: Vec<String> = times
            .iter()
            .map(|&t| list_key(DateTime::from_timestamp_micros(t).unwrap(), Some(id)))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(record_sk(9, 0) < record_sk(9, 1) && record_sk(9, 999) < record_sk_end(9));
        assert!(record_sk_end(9) < record_sk(10, 0));
        assert_eq!(idempotency_sk(&"k".repeat(2000)).len(), 2 + 7 + 64);
    }
}
