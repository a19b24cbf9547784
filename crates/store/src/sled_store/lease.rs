//! The sled backend's leases: one sealed value per leased session (`e` + session id: the
//! token, the holder and its expiry, and the opening of the store that wrote it), written
//! under the session's writer lock, to the write-ahead log like every write (made durable by
//! the next durable append, not on its own).
//!
//! sled is opened by one process at a time, so a lease written by an earlier opening of the
//! store has no live holder: it reads as expired (its token is kept), and the turn of a
//! process that was killed is taken over at once by the next process to open the store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use verbatim_model::SessionId;

use super::{Durability, Inner, SledStore, backend, from_json, to_json};
use crate::StoreError;
use crate::lease::LeaseState;
use crate::wal::Writes;

pub(super) fn lease_key(id: SessionId) -> [u8; 17] {
    let mut key = [b'e'; 17];
    key[1..].copy_from_slice(id.as_bytes());
    key
}

/// The lease as stored.
#[derive(Debug, Serialize, Deserialize)]
struct StoredLease {
    token: u64,
    holder: Option<(String, DateTime<Utc>)>,
    /// The opening of the store that wrote it ([`Inner::opening`]).
    opening: u64,
}

impl Inner {
    /// The lease of `id` as this opening of the store sees it.
    pub(super) fn lease(&self, id: SessionId) -> Result<LeaseState, StoreError> {
        let Some(bytes) = self.tree.get(lease_key(id)).map_err(backend)? else {
            return Ok(LeaseState::default());
        };
        let stored: StoredLease = from_json(id, || "lease".into(), &bytes)?;
        // A holder of an earlier opening is gone with the process that opened it.
        let holder = stored.holder.filter(|_| stored.opening == self.opening);
        Ok(LeaseState { token: stored.token, holder })
    }
}

impl SledStore {
    /// Runs `change` on the lease of `id` under its writer lock and stores the result
    /// durably.
    pub(super) async fn leased<T>(
        &self,
        id: SessionId,
        change: impl FnOnce(&mut LeaseState, DateTime<Utc>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let inner = &self.inner;
        let now = inner.clock().now();
        let (out, committed) = {
            let _writer = inner.lock(id);
            inner.head(id)?;
            let mut state = inner.lease(id)?;
            let out = change(&mut state, now)?;
            let stored =
                StoredLease { token: state.token, holder: state.holder, opening: inner.opening };
            let mut writes = Writes::default();
            writes.insert(&lease_key(id), &to_json(&stored));
            // Written to the log without waiting for a sync: the log is one sequence, so a
            // durable append made under the lease makes the lease durable too, and a lease
            // lost with the process (with no append after it) fenced nothing, and is expired
            // for the next opening anyway. Two syncs a turn saved.
            (out, inner.wal.commit(writes, Durability::Relaxed)?)
        };
        committed.durable(&inner.wal).await?;
        Ok(out)
    }
}
