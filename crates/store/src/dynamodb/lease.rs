//! Leases: the lease attributes of a session's head (`lease_token`, `lease_owner`,
//! `lease_expires`), each taken, renewed and released by one conditional `UpdateItem`, so
//! DynamoDB decides between instances racing for it. Times are read from the store's
//! [`Clock`](crate::Clock) (see the module docs of the backend on clocks).

use std::time::Duration;

use chrono::{DateTime, Utc};
use verbatim_model::SessionId;

use super::DynamoStore;
use super::items::{get_n, get_n_opt, get_s, micros, n, s};
use crate::lease::{check_owner, check_token, ttl_micros};
use crate::{Lease, StoreError};

/// How many times an acquire that lost a race to a release tries again.
const ACQUIRE_TRIES: usize = 3;

impl DynamoStore {
    /// [`SessionStore::acquire_lease`](crate::SessionStore::acquire_lease).
    pub(super) async fn acquire(
        &self,
        id: SessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        check_owner(owner)?;
        let ttl = ttl_micros(ttl)?;
        for _ in 0..ACQUIRE_TRIES {
            let now = micros(self.clock.now());
            let expires = now + ttl;
            let values = [
                (":zero", n(0)),
                (":one", n(1)),
                (":owner", s(owner)),
                (":expires", n(expires)),
                (":now", n(now)),
            ];
            let taken = self
                .update_head(
                    id,
                    "SET lease_token = if_not_exists(lease_token, :zero) + :one, \
                         lease_owner = :owner, lease_expires = :expires",
                    "attribute_exists(pk) AND (attribute_not_exists(lease_owner) \
                         OR lease_owner = :owner OR lease_expires <= :now)",
                    values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                )
                .await?;
            if let Some(set) = taken {
                let token = get_n(id, &set, "lease_token")?;
                return Ok(Lease {
                    session: id,
                    owner: owner.to_owned(),
                    token,
                    expires_at: expiry(id, expires)?,
                });
            }
            // Held by another owner, or gone: say which (the holder may have released it
            // since, and then it is taken again).
            let head = self.head(id).await?.ok_or(StoreError::NotFound(id))?;
            let holder = head.get("lease_owner").map(|_| get_s(id, &head, "lease_owner"));
            let until: Option<i64> = get_n_opt(id, &head, "lease_expires")?;
            let now = micros(self.clock.now());
            if let (Some(holder), Some(until)) = (holder, until)
                && until > now
            {
                return Err(StoreError::Busy {
                    id,
                    owner: holder?.to_owned(),
                    expires_in: Duration::from_micros((until - now) as u64),
                });
            }
        }
        Err(StoreError::backend_detail(format!(
            "session {id}: its lease was released and taken again {ACQUIRE_TRIES} times while acquiring it"
        )))
    }

    /// [`SessionStore::renew_lease`](crate::SessionStore::renew_lease).
    pub(super) async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        let expires = micros(self.clock.now()) + ttl_micros(ttl)?;
        let values = [
            (":owner", s(lease.owner.clone())),
            (":expires", n(expires)),
            (":token", n(lease.token)),
        ];
        let renewed = self
            .update_head(
                lease.session,
                "SET lease_owner = :owner, lease_expires = :expires",
                "lease_token = :token",
                values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            )
            .await?;
        match renewed {
            Some(_) => Ok(Lease { expires_at: expiry(lease.session, expires)?, ..lease.clone() }),
            None => Err(self.fenced(lease).await),
        }
    }

    /// [`SessionStore::release_lease`](crate::SessionStore::release_lease).
    pub(super) async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        let values = [(":token".to_owned(), n(lease.token))];
        let released = self
            .update_head(
                lease.session,
                "REMOVE lease_owner, lease_expires",
                "lease_token = :token",
                values.into_iter().collect(),
            )
            .await?;
        match released {
            Some(_) => Ok(()),
            None => Err(self.fenced(lease).await),
        }
    }

    /// The error for a lease that is not the session's current one: why it is not.
    async fn fenced(&self, lease: &Lease) -> StoreError {
        let id = lease.session;
        let head = match self.head(id).await {
            Err(e) => return e,
            Ok(None) => return StoreError::NotFound(id),
            Ok(Some(head)) => head,
        };
        let current = match get_n_opt(id, &head, "lease_token") {
            Err(e) => return e,
            Ok(token) => token.unwrap_or(0),
        };
        match check_token(id, Some(lease.token), current) {
            Err(fenced) => fenced,
            // Current again by the time it was read: only a race with a takeover and its
            // release could do that.
            Ok(()) => StoreError::Fenced { id, token: lease.token, current: lease.token },
        }
    }
}

fn expiry(id: SessionId, micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| {
        StoreError::Invalid(format!("session {id}: a lease expiring at {micros} µs"))
    })
}
