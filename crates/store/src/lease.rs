//! Turn leases: who may run a turn on a session, until when, and the fencing token every
//! append of that turn carries.
//!
//! A session has one lease at a time. Acquiring it gives a [`Lease`] with a fencing token
//! higher than any the session gave before; appends made under it carry the token
//! ([`crate::Append::under`]) and are refused ([`StoreError::Fenced`]) once another owner
//! took the session over, which it may only do after the lease expired. The token is kept
//! when the lease is released or expires, so tokens only ever grow.
//!
//! [`LeaseState`] is the rule every backend applies (the in-memory and sled backends call it
//! under their writer lock; PostgreSQL says the same in its statements). The time is read
//! from a [`Clock`] (the system's by default; [`ManualClock`] for tests). PostgreSQL reads
//! the database server's clock instead, the one clock every instance shares.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, Utc};
use serde::{Deserialize, Serialize};
use verbatim_model::SessionId;

use crate::StoreError;

/// A turn's hold on a session, from [`crate::SessionStore::acquire_lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The session.
    pub session: SessionId,
    /// Who holds it (an instance's name, shown to whoever meets the lease).
    pub owner: String,
    /// The fencing token: higher than any lease of the session had before.
    pub token: u64,
    /// When it expires unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// Where a store reads the time for its leases.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until moved (for tests).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock showing `now`.
    pub fn at(now: DateTime<Utc>) -> ManualClock {
        ManualClock { now: Mutex::new(now) }
    }

    /// Moves the clock on by `by`.
    pub fn advance(&self, by: Duration) {
        let by = chrono::TimeDelta::from_std(by).expect("a test's step fits");
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The lease part of a session as the in-memory and sled backends keep it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LeaseState {
    /// The last token given (0: never leased).
    pub(crate) token: u64,
    /// The holder and the expiry, while held (until released; an expired lease keeps them).
    pub(crate) holder: Option<(String, DateTime<Utc>)>,
}

impl LeaseState {
    /// Acquires the lease for `owner` (see [`crate::SessionStore::acquire_lease`]).
    pub(crate) fn acquire(
        &mut self,
        id: SessionId,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease, StoreError> {
        check_owner(owner)?;
        let expires_at = expiry(now, ttl)?;
        if let Some((holder, until)) = &self.holder
            && holder != owner
            && *until > now
        {
            let expires_in = (*until - now).to_std().unwrap_or_default();
            return Err(StoreError::Busy { id, owner: holder.clone(), expires_in });
        }
        self.token += 1;
        self.holder = Some((owner.to_owned(), expires_at));
        Ok(Lease { session: id, owner: owner.to_owned(), token: self.token, expires_at })
    }

    /// Renews `lease` (see [`crate::SessionStore::renew_lease`]).
    pub(crate) fn renew(
        &mut self,
        lease: &Lease,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease, StoreError> {
        self.check(lease.session, Some(lease.token))?;
        let expires_at = expiry(now, ttl)?;
        self.holder = Some((lease.owner.clone(), expires_at));
        Ok(Lease { expires_at, ..lease.clone() })
    }

    /// Releases `lease` (see [`crate::SessionStore::release_lease`]).
    pub(crate) fn release(&mut self, lease: &Lease) -> Result<(), StoreError> {
        self.check(lease.session, Some(lease.token))?;
        self.holder = None;
        Ok(())
    }

    /// Refuses a write carrying a token that is not the session's current one.
    pub(crate) fn check(&self, id: SessionId, token: Option<u64>) -> Result<(), StoreError> {
        check_token(id, token, self.token)
    }
}

/// Refuses a write carrying `token` when the session's current token is `current`.
pub(crate) fn check_token(
    id: SessionId,
    token: Option<u64>,
    current: u64,
) -> Result<(), StoreError> {
    match token {
        Some(token) if token != current => Err(StoreError::Fenced { id, token, current }),
        _ => Ok(()),
    }
}

/// Refuses an owner name that cannot be shown or stored as given.
pub(crate) fn check_owner(owner: &str) -> Result<(), StoreError> {
    if owner.is_empty() || owner.len() > 256 || owner.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "lease owner {owner:?}: use 1 to 256 bytes without control characters"
        )));
    }
    Ok(())
}

/// The microseconds of `ttl`, refused when zero or past a day (a lease is renewed, not long).
pub(crate) fn ttl_micros(ttl: Duration) -> Result<i64, StoreError> {
    if ttl.is_zero() || ttl > Duration::from_secs(86_400) {
        return Err(StoreError::Invalid(format!(
            "a lease's time to live must be above 0 and at most a day, not {ttl:?}"
        )));
    }
    Ok(ttl.as_micros().max(1) as i64)
}

/// `now` plus `ttl`, to the microsecond (what every backend stores exactly).
fn expiry(now: DateTime<Utc>, ttl: Duration) -> Result<DateTime<Utc>, StoreError> {
    let ttl = chrono::TimeDelta::microseconds(ttl_micros(ttl)?);
    Ok((now + ttl).trunc_subsecs(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_busy_takeover_fencing_and_release() {
        let id = SessionId::from_random_bytes([1; 16]);
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let ttl = Duration::from_secs(30);
        let mut state = LeaseState::default();
        let a = state.acquire(id, "a", ttl, t0).unwrap();
        assert_eq!((a.token, a.expires_at), (1, t0 + chrono::TimeDelta::seconds(30)));
        let t1 = t0 + chrono::TimeDelta::seconds(10);
        match state.acquire(id, "b", ttl, t1) {
            Err(StoreError::Busy { owner, expires_in, .. }) => {
                assert_eq!((owner.as_str(), expires_in), ("a", Duration::from_secs(20)));
            }
            other => panic!("{other:?}"),
        }
        let t2 = t0 + chrono::TimeDelta::seconds(31);
        let b = state.acquire(id, "b", ttl, t2).unwrap();
        assert_eq!(b.token, 2);
        assert!(matches!(state.check(id, Some(1)), Err(StoreError::Fenced { current: 2, .. })));
        assert!(matches!(state.renew(&a, ttl, t2), Err(StoreError::Fenced { token: 1, .. })));
        assert!(state.check(id, None).is_ok());
        state.release(&b).unwrap();
        assert_eq!(state.acquire(id, "c", ttl, t2).unwrap().token, 3);
        assert!(matches!(state.acquire(id, "", ttl, t2), Err(StoreError::Invalid(_))));
        assert!(matches!(state.acquire(id, "c", Duration::ZERO, t2), Err(StoreError::Invalid(_))));
    }
}
