//! A turn's lease on its session, across engines and processes: taken before the turn
//! starts (waiting up to [`Defaults::lease_wait`] while another instance holds it), renewed
//! at a third of [`Defaults::lease_ttl`] while the turn runs, given up when it ends, and
//! given up on a best-effort basis when the turn is dropped. Every append of the turn
//! carries the lease's fencing token, so once the lease was taken over (its engine stalled
//! past its expiry), nothing more of the turn is stored.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use verbatim_model::SessionId;
use verbatim_store::{Lease, SessionStore, StoreError};

use crate::{Defaults, Engine, EngineError};

/// How often a turn waiting for another instance's lease asks for it again (it may be
/// released before it expires).
const POLL: Duration = Duration::from_millis(100);

/// A turn's hold on its session's lease.
pub(crate) struct LeaseGuard {
    store: Weak<dyn SessionStore>,
    pub(crate) lease: Lease,
    released: bool,
}

impl Engine {
    /// The lease of `id` for a turn of this engine: at once, or after waiting up to
    /// [`Defaults::lease_wait`] for the instance holding it; then [`EngineError::Busy`].
    pub(crate) async fn lease(&self, id: SessionId) -> Result<LeaseGuard, EngineError> {
        let Defaults { lease_ttl, lease_wait, .. } = self.inner.defaults;
        let store = &self.inner.store;
        let deadline = tokio::time::Instant::now() + lease_wait;
        loop {
            match store.acquire_lease(id, &self.inner.owner, lease_ttl).await {
                Ok(lease) => {
                    tracing::debug!(token = lease.token, "took the session's lease");
                    let store = Arc::downgrade(store);
                    return Ok(LeaseGuard { store, lease, released: false });
                }
                Err(StoreError::Busy { owner, expires_in, .. }) => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        return Err(EngineError::Busy {
                            id,
                            holder: Some(owner),
                            expires_in: Some(expires_in),
                        });
                    }
                    tracing::debug!(%owner, ?expires_in, "the session's lease is held: waiting");
                    tokio::time::sleep(
                        POLL.min(left).min(expires_in.max(Duration::from_millis(1))),
                    )
                    .await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Runs `work` while renewing `guard`'s lease every third of its time to live.
    pub(crate) async fn renewing<F: Future>(&self, guard: &LeaseGuard, work: F) -> F::Output {
        let ttl = self.inner.defaults.lease_ttl;
        let store = &self.inner.store;
        let renew = async {
            let mut lease = guard.lease.clone();
            loop {
                tokio::time::sleep(ttl / 3).await;
                match store.renew_lease(&lease, ttl).await {
                    Ok(renewed) => lease = renewed,
                    Err(error @ (StoreError::Fenced { .. } | StoreError::NotFound(_))) => {
                        // The turn's next append is refused the same way: it stops there.
                        tracing::warn!(%error, "the session's lease was lost");
                        std::future::pending::<()>().await;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "renewing the session's lease failed; trying again")
                    }
                }
            }
        };
        let (mut work, mut renew) = (pin!(work), pin!(renew));
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = work.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            let _ = renew.as_mut().poll(cx);
            Poll::Pending
        })
        .await
    }
}

impl LeaseGuard {
    /// Gives the lease up (a lease already taken over has nothing to give up).
    pub(crate) async fn release(mut self) {
        self.released = true;
        let Some(store) = self.store.upgrade() else { return };
        if let Err(error) = store.release_lease(&self.lease).await {
            tracing::debug!(%error, "the session's lease was not released");
        }
    }
}

impl Drop for LeaseGuard {
    /// A turn dropped before its end (cancelled) gives its lease up in a task of its own,
    /// when there is a runtime and the store is still open; otherwise it expires.
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (store, lease) = (self.store.clone(), self.lease.clone());
        // The store is held only while the release runs, never while the task waits.
        runtime.spawn(async move {
            if let Some(store) = store.upgrade() {
                let _ = store.release_lease(&lease).await;
            }
        });
    }
}
