//! Values to and from columns: session ids as UUIDs, versions as `bigint`, entries and session
//! settings as the JSON text serde wrote, and the errors for stored values that do not parse.

use tokio_postgres::Row;
use uuid::Uuid;
use verbatim_model::SessionId;

use crate::{Entry, NewSession, Origin, SessionInfo, StoreError};

/// The `uuid` column value of session `id`.
pub(super) fn uuid(id: SessionId) -> Uuid {
    Uuid::from_bytes(*id.as_bytes())
}

fn session_id(uuid: Uuid) -> SessionId {
    // Stored ids are version 4 UUIDs: setting the version and variant bits changes nothing.
    SessionId::from_random_bytes(uuid.into_bytes())
}

/// The JSON text stored for `value`.
pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("store values serialize")
}

/// A version or sequence number as a `bigint` (`i64::MAX` beyond it).
pub(super) fn version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) use crate::store::corrupt_by as corrupt;

pub(super) fn session_info(row: &Row) -> Result<SessionInfo, StoreError> {
    let id = session_id(row.get(0));
    let start: NewSession =
        serde_json::from_str(row.get(1)).map_err(|e| corrupt(id, "sessions.start", e))?;
    let origin = row
        .get::<_, Option<&str>>(5)
        .map(serde_json::from_str::<Origin>)
        .transpose()
        .map_err(|e| corrupt(id, "sessions.origin", e))?;
    Ok(SessionInfo {
        id,
        start,
        created_at: row.get(2),
        updated_at: row.get(3),
        version: row.get::<_, i64>(4) as u64,
        origin,
    })
}

/// The entry of record `seq` from its stored text.
pub(super) fn entry(id: SessionId, seq: u64, text: &str) -> Result<Entry, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(id, format!("record {seq}"), e))
}
