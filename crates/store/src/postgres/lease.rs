//! Leases: the lease columns of a session's row (`migrations/postgres/0003`), each taken,
//! renewed and released by one conditional UPDATE, so the row lock decides between
//! instances racing for it. Times are the server's (`clock_timestamp()`): instances whose
//! clocks disagree still agree on when a lease expires.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use verbatim_model::SessionId;

use super::rows::{uuid, version};
use super::{PostgresStore, backend};
use crate::lease::{check_owner, check_token, ttl_micros};
use crate::{Lease, StoreError};

/// How many times an acquire that lost a race to a release tries again.
const ACQUIRE_TRIES: usize = 3;

impl PostgresStore {
    /// [`SessionStore::acquire_lease`](crate::SessionStore::acquire_lease).
    pub(super) async fn acquire(
        &self,
        id: SessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        check_owner(owner)?;
        let micros = ttl_micros(ttl)?;
        let client = self.client().await?;
        let take = client
            .prepare_cached(
                "UPDATE sessions SET lease_token = lease_token + 1, lease_owner = $2, \
                     lease_expires_at = clock_timestamp() + $3::float8 * interval '1 microsecond' \
                 WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2 \
                     OR lease_expires_at <= clock_timestamp()) \
                 RETURNING lease_token, lease_expires_at",
            )
            .await
            .map_err(backend)?;
        for _ in 0..ACQUIRE_TRIES {
            if let Some(row) = client
                .query_opt(&take, &[&uuid(id), &owner, &(micros as f64)])
                .await
                .map_err(backend)?
            {
                let token = row.get::<_, i64>(0) as u64;
                let expires_at = row.get::<_, DateTime<Utc>>(1);
                return Ok(Lease { session: id, owner: owner.to_owned(), token, expires_at });
            }
            // Held by another owner, or gone: say which (the holder may have released it
            // since, and then it is taken again).
            if let Some(busy) = Self::holder(&client, id).await? {
                return Err(busy);
            }
        }
        Err(StoreError::backend_detail(format!(
            "session {id}: its lease was released and taken again {ACQUIRE_TRIES} times while acquiring it"
        )))
    }

    /// [`SessionStore::renew_lease`](crate::SessionStore::renew_lease).
    pub(super) async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        let micros = ttl_micros(ttl)?;
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "UPDATE sessions SET lease_owner = $3, \
                     lease_expires_at = clock_timestamp() + $4::float8 * interval '1 microsecond' \
                 WHERE id = $1 AND lease_token = $2 RETURNING lease_expires_at",
            )
            .await
            .map_err(backend)?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&uuid(lease.session), &version(lease.token), &lease.owner, &(micros as f64)];
        match client.query_opt(&statement, &params).await.map_err(backend)? {
            Some(row) => Ok(Lease { expires_at: row.get(0), ..lease.clone() }),
            None => Err(Self::fenced(&client, lease).await),
        }
    }

    /// [`SessionStore::release_lease`](crate::SessionStore::release_lease).
    pub(super) async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "UPDATE sessions SET lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $1 AND lease_token = $2",
            )
            .await
            .map_err(backend)?;
        let released = client
            .execute(&statement, &[&uuid(lease.session), &version(lease.token)])
            .await
            .map_err(backend)?;
        if released == 1 { Ok(()) } else { Err(Self::fenced(&client, lease).await) }
    }

    /// The error for a lease that is not the session's current one: why it is not.
    async fn fenced(client: &impl GenericClient, lease: &Lease) -> StoreError {
        let id = lease.session;
        let row =
            client.query_opt("SELECT lease_token FROM sessions WHERE id = $1", &[&uuid(id)]).await;
        match row {
            Err(e) => backend(e),
            Ok(None) => StoreError::NotFound(id),
            Ok(Some(row)) => {
                match check_token(id, Some(lease.token), row.get::<_, i64>(0) as u64) {
                    Err(fenced) => fenced,
                    // Current again by the time it was read: only a race with a takeover and
                    // its release could do that.
                    Ok(()) => StoreError::Fenced { id, token: lease.token, current: lease.token },
                }
            }
        }
    }

    /// [`StoreError::Busy`] when another owner holds a live lease of `id`; `None` when it
    /// is free (released since).
    async fn holder(
        client: &impl GenericClient,
        id: SessionId,
    ) -> Result<Option<StoreError>, StoreError> {
        let row = client
            .query_opt(
                "SELECT lease_owner, \
                     (extract(epoch FROM lease_expires_at - clock_timestamp()) * 1000000)::bigint \
                 FROM sessions WHERE id = $1",
                &[&uuid(id)],
            )
            .await
            .map_err(backend)?
            .ok_or(StoreError::NotFound(id))?;
        let (owner, micros) = (row.get::<_, Option<String>>(0), row.get::<_, Option<i64>>(1));
        Ok(match (owner, micros) {
            (Some(owner), Some(micros)) if micros > 0 => Some(StoreError::Busy {
                id,
                owner,
                expires_in: Duration::from_micros(micros as u64),
            }),
            _ => None,
        })
    }
}
