//! The lease conformance suite: what every [`SessionStore`] does with turn leases. Each
//! backend's tests call [`suite`] with a way to let time pass: a [`ManualClock`] moved on
//! (memory, sled), or real time with short leases (PostgreSQL, whose leases run on the
//! server's clock).

use std::time::Duration;

use super::conformance::futures_join;
use crate::{Append, Entry, ManualClock, NewSession, SessionStore, StoreError};

/// How time passes for a store's leases.
pub(crate) enum Time<'a> {
    /// The store reads this clock: moved on at once.
    Manual(&'a ManualClock),
    /// The store reads a real clock: slept through (keep leases short).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Real,
}

impl Time<'_> {
    /// The lease length the cases use.
    fn ttl(&self) -> Duration {
        match self {
            Time::Manual(_) => Duration::from_secs(30),
            Time::Real => Duration::from_secs(2),
        }
    }

    async fn pass(&self, by: Duration) {
        match self {
            Time::Manual(clock) => clock.advance(by),
            Time::Real => tokio::time::sleep(by).await,
        }
    }
}

/// Runs every case on `store`.
pub(crate) async fn suite(store: &dyn SessionStore, time: Time<'_>) {
    acquire_renew_release(store, &time).await;
    a_live_lease_is_busy_for_another_owner(store, &time).await;
    an_expired_lease_is_taken_over_and_its_holder_fenced(store, &time).await;
    an_expired_lease_no_one_took_is_renewed(store, &time).await;
    racing_acquirers_get_one_winner(store, &time).await;
    a_lease_is_refused_for_a_missing_session_or_a_bad_owner(store, &time).await;
}

fn user(text: &str) -> Entry {
    Entry::Message(verbatim_model::Message::user_text(text).into())
}

async fn session(store: &dyn SessionStore) -> verbatim_model::SessionId {
    store.create(NewSession::new("us.anthropic.claude-sonnet-4-20250514-v1:0")).await.unwrap().id
}

async fn acquire_renew_release(store: &dyn SessionStore, time: &Time<'_>) {
    let id = session(store).await;
    let ttl = time.ttl();
    let a = store.acquire_lease(id, "instance a", ttl).await.unwrap();
    assert_eq!((a.session, a.owner.as_str()), (id, "instance a"));
    assert!(a.token >= 1);
    let done = store.append(id, Append::new(0, vec![user("under a")]).under(&a)).await.unwrap();
    assert_eq!(done.version, 1);
    time.pass(ttl / 3).await;
    let renewed = store.renew_lease(&a, ttl).await.unwrap();
    assert_eq!(renewed.token, a.token, "renewing keeps the token");
    assert!(renewed.expires_at > a.expires_at, "{renewed:?} after {a:?}");
    store.release_lease(&renewed).await.unwrap();
    // Released: another owner takes it at once, with a higher token.
    let b = store.acquire_lease(id, "instance b", ttl).await.unwrap();
    assert_eq!(b.token, a.token + 1);
    assert!(matches!(
        store.append(id, Append::new(1, vec![user("late a")]).under(&a)).await,
        Err(StoreError::Fenced { .. })
    ));
    store.append(id, Append::new(1, vec![user("under b")]).under(&b)).await.unwrap();
    store.release_lease(&b).await.unwrap();
}

async fn a_live_lease_is_busy_for_another_owner(store: &dyn SessionStore, time: &Time<'_>) {
    let id = session(store).await;
    let ttl = time.ttl();
    let a = store.acquire_lease(id, "instance a", ttl).await.unwrap();
    match store.acquire_lease(id, "instance b", ttl).await {
        Err(StoreError::Busy { id: busy, owner, expires_in }) => {
            assert_eq!((busy, owner.as_str()), (id, "instance a"));
            assert!(expires_in > Duration::ZERO && expires_in <= ttl, "{expires_in:?}");
        }
        other => panic!("another owner got {other:?}"),
    }
    let error = store.acquire_lease(id, "instance b", ttl).await.unwrap_err().to_string();
    assert!(error.contains(&id.to_string()) && error.contains("instance a"), "{error}");
    // The owner itself gets a new lease, which fences the old one.
    let again = store.acquire_lease(id, "instance a", ttl).await.unwrap();
    assert_eq!(again.token, a.token + 1);
    assert!(matches!(
        store.append(id, Append::new(0, vec![user("old")]).under(&a)).await,
        Err(StoreError::Fenced { token, current, .. }) if token == a.token && current == again.token
    ));
    store.release_lease(&again).await.unwrap();
}

async fn an_expired_lease_is_taken_over_and_its_holder_fenced(
    store: &dyn SessionStore,
    time: &Time<'_>,
) {
    let id = session(store).await;
    let ttl = time.ttl();
    let a = store.acquire_lease(id, "instance a", ttl).await.unwrap();
    let keyed = Append::new(0, vec![user("a's first")]).idempotent("a-1").under(&a);
    store.append(id, keyed.clone()).await.unwrap();
    time.pass(ttl + ttl / 5).await;
    let b = store.acquire_lease(id, "instance b", ttl).await.unwrap();
    assert!(b.token > a.token);
    // Whatever a still tries writes nothing.
    let fenced = store.append(id, Append::new(1, vec![user("a's second")]).under(&a)).await;
    assert!(
        matches!(fenced, Err(StoreError::Fenced { token, current, .. }) if token == a.token && current == b.token),
        "{fenced:?}"
    );
    assert!(fenced.unwrap_err().to_string().contains("nothing was written"));
    assert!(matches!(store.renew_lease(&a, ttl).await, Err(StoreError::Fenced { .. })));
    assert!(matches!(store.release_lease(&a).await, Err(StoreError::Fenced { .. })));
    // A's retry of an append that was stored still answers as it did: nothing is written.
    assert_eq!(store.append(id, keyed).await.unwrap().version, 1);
    assert_eq!(store.info(id).await.unwrap().version, 1, "nothing of a's after the takeover");
    // b is not disturbed: its lease holds, and appends without a lease still go in order.
    store.append(id, Append::new(1, vec![user("b's")]).under(&b)).await.unwrap();
    store.append(id, Append::new(2, vec![user("unleased")])).await.unwrap();
    let busy = store.acquire_lease(id, "instance a", ttl).await;
    assert!(matches!(busy, Err(StoreError::Busy { ref owner, .. }) if owner == "instance b"));
    store.release_lease(&b).await.unwrap();
}

async fn an_expired_lease_no_one_took_is_renewed(store: &dyn SessionStore, time: &Time<'_>) {
    let id = session(store).await;
    let ttl = time.ttl();
    let a = store.acquire_lease(id, "instance a", ttl).await.unwrap();
    time.pass(ttl + ttl / 5).await;
    let renewed = store.renew_lease(&a, ttl).await.unwrap();
    assert_eq!(renewed.token, a.token);
    assert!(matches!(
        store.acquire_lease(id, "instance b", ttl).await,
        Err(StoreError::Busy { .. })
    ));
    store.append(id, Append::new(0, vec![user("still a's")]).under(&renewed)).await.unwrap();
    store.release_lease(&renewed).await.unwrap();
}

async fn racing_acquirers_get_one_winner(store: &dyn SessionStore, time: &Time<'_>) {
    let id = session(store).await;
    let ttl = time.ttl();
    let owners: Vec<String> = (0..8).map(|n| format!("racer {n}")).collect();
    let results = futures_join(owners.iter().map(|o| store.acquire_lease(id, o, ttl))).await;
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let busy = results.iter().filter(|r| matches!(r, Err(StoreError::Busy { .. }))).count();
    assert_eq!((won.len(), busy), (1, 7), "{results:?}");
    store.release_lease(won[0]).await.unwrap();
}

async fn a_lease_is_refused_for_a_missing_session_or_a_bad_owner(
    store: &dyn SessionStore,
    time: &Time<'_>,
) {
    let missing = verbatim_model::SessionId::from_random_bytes([9; 16]);
    let ttl = time.ttl();
    assert!(matches!(
        store.acquire_lease(missing, "a", ttl).await,
        Err(StoreError::NotFound(id)) if id == missing
    ));
    let id = session(store).await;
    assert!(matches!(store.acquire_lease(id, "", ttl).await, Err(StoreError::Invalid(_))));
    assert!(matches!(
        store.acquire_lease(id, "a", Duration::ZERO).await,
        Err(StoreError::Invalid(_))
    ));
    // A deleted session takes its lease with it.
    let lease = store.acquire_lease(id, "a", ttl).await.unwrap();
    store.delete(id).await.unwrap();
    assert!(matches!(store.renew_lease(&lease, ttl).await, Err(StoreError::NotFound(_))));
}
