//! The DynamoDB backend (feature `dynamodb`): sessions in one DynamoDB table, shared by every
//! app instance (or Lambda invocation) that reaches it.
//!
//! # Table layout
//!
//! One table, `pk` (string) the partition key and `sk` (string) the sort key, so that every
//! item of a session is in one partition and comes back in order from a `Query`:
//!
//! | `pk`       | `sk`                         | what                                           |
//! |------------|------------------------------|------------------------------------------------|
//! | session id | `h`                          | the head: `start` (the `NewSession` JSON text), `tags` (string set), `created`, `updated` (microseconds), `version`, `origin` (JSON text), the lease (`lease_token`, `lease_owner`, `lease_expires`), a staged append's claim (`pending`, `pending_at`), and the listing keys `list_shard`, `list_key` |
//! | session id | `r#` + seq (20 digits)       | a record: `at` (microseconds), `writer` (the append that wrote it), `parts`, `entry` (binary: the entry's JSON bytes, or their first part) |
//! | session id | `r#` + seq + `#` + part (6 digits) | the further parts of a record over one item's size |
//! | session id | `k#` + key                   | an idempotency key: `first_seq`, `version` of the append that used it (keys over 512 bytes as `k#sha256:` + their hash) |
//!
//! The sequence number is written with 20 digits so that the string order is the numeric
//! order; a record's parts sort right after it and before the next record. The global
//! secondary index `by_update` (partition key `list_shard`, one of 16 `s00`..`s15` picked by
//! the session id, sort key `list_key`: the update time, offset to be positive, as 20 digits,
//! `#`, the id) holds the heads only; a listing queries its 16 partitions newest first and
//! merges them. Sixteen partitions keep a busy table's head updates from meeting one index
//! partition's write limit. The index is eventually consistent on DynamoDB: a session appears
//! in (or moves up) a listing a moment after its write. Everything else reads strongly
//! consistently.
//!
//! Entries are stored as the JSON bytes serde wrote, in a binary attribute, so every string,
//! key order and number comes back byte for byte.
//!
//! # Appends
//!
//! An append is one `TransactWriteItems`: an update of the head conditioned on its `version`
//! being the one expected (and on `lease_token` being the append's fencing token, when it
//! carries one), the record items, and the idempotency key item conditioned on not existing.
//! DynamoDB applies all or none; a cancelled transaction is then read back to say why
//! (`Conflict`, `Fenced`, `NotFound`, or the earlier result of the idempotency key), and a
//! transaction cancelled by a concurrent one on the same items is tried again.
//!
//! A transaction holds at most 100 items and 4 MB. An append past that (hundreds of entries,
//! or megabytes of tool results) is staged: the head is claimed first (`pending` set to the
//! append's writer id, under the same conditions as above), then the records are written in
//! transactions that each check the claim is still held, and a last transaction moves the
//! version on, drops the claim and writes the idempotency key. Readers never see the staged
//! records: they read records up to the head's version. Other appends wait while a claim is
//! held; a claim left by a writer that died is taken over after [`PENDING_STALE`], and the
//! dead writer's later writes then fail their check. Its records beyond the version are
//! overwritten by the next append (a record's `writer` tells its parts from a dead writer's).
//!
//! # Records over the item limit
//!
//! An item is at most 400 KB. A record whose JSON is longer is split into parts of
//! [`PART_BYTES`], in items that sort together, and joined on reading; the bytes are cut, not
//! the text, so nothing is re-encoded. The trade-off against keeping large records elsewhere
//! (an S3 object named by the item): everything stays in one table, under one transaction and
//! one set of permissions, and a load is one `Query`; but a large record costs DynamoDB's
//! write units per kilobyte (a 5 MB tool result is about 5,000 write units, and a staged
//! append), where S3 would cost one request. Agent sessions are mostly small records, so the
//! table alone is the default.
//!
//! # Leases
//!
//! The lease is in the head: acquire, renew and release are each one conditional
//! `UpdateItem`. DynamoDB has no server clock a condition can read, so expiry is judged on the
//! instances' clocks ([`DynamoOptions::clock`]): instances whose clocks disagree by more than a
//! lease's margin could take over a live lease (keep them synchronised, as EC2 and Lambda do).
//! The fencing token makes such a takeover safe for the history: the earlier holder's appends
//! are refused.
//!
//! # Retention
//!
//! No item carries a DynamoDB TTL: a per-item expiry would remove a live session's early
//! records before its head, leaving a session that no longer loads. Remove old sessions with
//! `verbatim sessions rm` (or [`crate::SessionStore::delete`]), which deletes every item.
//!
//! # The table
//!
//! [`DynamoStore::connect`] creates the table when it is missing (on-demand capacity), unless
//! told not to ([`DynamoOptions::create_table`]), and then says that it is missing;
//! `verbatim migrate --store dynamodb://TABLE?region=...` creates it ahead of time. A table
//! with another key schema, or without the index, is refused.
//!
//! The backend by concern: `url.rs` (the `dynamodb://` URL), `table.rs` (creating and checking
//! the table), `items.rs` (values to and from attributes), `write.rs` (appends and the other
//! writes), `load.rs` (reads), `lease.rs` (turn leases). This file holds the store, its
//! options and the [`SessionStore`] implementation.

mod items;
mod lease;
mod load;
#[cfg(test)]
mod probe;
mod table;
mod url;
mod write;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use verbatim_model::SessionId;

use crate::{
    Append, Appended, Clock, Lease, ListQuery, NewSession, Page, Record, Rewound, Session,
    SessionInfo, SessionStore, StoreError, SystemClock,
};
pub use url::DynamoUrl;

/// The most bytes of a record's JSON one item holds (DynamoDB's item limit is 400 KB, keys and
/// attribute names included).
pub const PART_BYTES: usize = 350 * 1024;

/// How long a staged append's claim on a session holds before another append may take it
/// over (its writer is taken to have died).
pub const PENDING_STALE: Duration = Duration::from_secs(60);

/// How a [`DynamoStore`] connects.
#[derive(Clone)]
pub struct DynamoOptions {
    /// Create the table when it is missing (the default); otherwise a missing table is an
    /// error that says how to create it.
    pub create_table: bool,
    /// The credentials to sign with, instead of the standard AWS chain (environment,
    /// profiles, SSO, container and instance roles).
    pub credentials: Option<SharedCredentialsProvider>,
    /// Where leases read the time (the system's clock by default).
    pub clock: Arc<dyn Clock>,
}

impl Default for DynamoOptions {
    fn default() -> DynamoOptions {
        DynamoOptions { create_table: true, credentials: None, clock: Arc::new(SystemClock) }
    }
}

impl DynamoOptions {
    /// The same options, signing with these credentials instead of the standard chain (a
    /// local server's dummy credentials, say).
    pub fn with_static_credentials(
        mut self,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> DynamoOptions {
        let credentials = aws_credential_types::Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "verbatim-static",
        );
        self.credentials = Some(SharedCredentialsProvider::new(credentials));
        self
    }
}

impl std::fmt::Debug for DynamoOptions {
    // Credentials are never shown, only whether some were given.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoOptions")
            .field("create_table", &self.create_table)
            .field("credentials", &self.credentials.as_ref().map(|_| "[given]"))
            .field("clock", &self.clock)
            .finish()
    }
}

/// Sessions in a DynamoDB table (see the module docs for its layout). Cheap to clone.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: Arc<str>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore").field("table", &self.table).finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// Connects to the table a `dynamodb://TABLE?region=REGION&endpoint=URL` URL names, with
    /// the standard AWS credential chain, creating the table when it is missing.
    pub async fn connect(url: &str) -> Result<DynamoStore, StoreError> {
        DynamoStore::connect_with(url, DynamoOptions::default()).await
    }

    /// [`DynamoStore::connect`] with options.
    pub async fn connect_with(
        url: &str,
        options: DynamoOptions,
    ) -> Result<DynamoStore, StoreError> {
        let create = options.create_table;
        let store = DynamoStore::unchecked(url, options).await?;
        store.ensure_table(create).await?;
        Ok(store)
    }

    /// A store on the table the URL names, neither checked nor created (that is
    /// [`DynamoStore::create_table`]'s).
    pub async fn unchecked(url: &str, options: DynamoOptions) -> Result<DynamoStore, StoreError> {
        let url = DynamoUrl::parse(url)?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &url.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &url.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        if let Some(credentials) = options.credentials {
            loader = loader.credentials_provider(credentials);
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(StoreError::Invalid(format!(
                "dynamodb://{}: no AWS region: add ?region=REGION to the URL or set AWS_REGION",
                url.table
            )));
        }
        Ok(DynamoStore::from_client(Client::new(&config), &url.table, options.clock))
    }

    /// A store on `table` through a client configured by the caller (its own `SdkConfig`):
    /// nothing is checked or created (see [`DynamoStore::create_table`]).
    pub fn from_client(client: Client, table: &str, clock: Arc<dyn Clock>) -> DynamoStore {
        DynamoStore { client, table: table.into(), clock }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }
}

/// A backend error: the SDK's error with its causes (`dispatch failure: io error: Connection
/// refused`), which never hold credentials.
fn backend<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::backend_with(format!("dynamodb: {}", DisplayErrorContext(&e)), e)
}

/// A request the SDK could not build (a missing required field: a bug here).
fn built<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::backend_with(format!("dynamodb: building a request: {e}"), e))
}

#[async_trait]
impl SessionStore for DynamoStore {
    async fn create(&self, new: NewSession) -> Result<SessionInfo, StoreError> {
        self.create_session(new).await
    }

    async fn append(&self, id: SessionId, append: Append) -> Result<Appended, StoreError> {
        self.append_entries(id, append).await
    }

    async fn info(&self, id: SessionId) -> Result<SessionInfo, StoreError> {
        self.head_info(id).await
    }

    async fn load(&self, id: SessionId) -> Result<Session, StoreError> {
        self.load_session(id).await
    }

    async fn load_range(
        &self,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        self.load_records(id, from, to).await
    }

    async fn tail(&self, id: SessionId, n: usize) -> Result<Vec<Record>, StoreError> {
        self.tail_records(id, n).await
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.list_sessions(query).await
    }

    async fn fork(&self, id: SessionId, at: u64) -> Result<SessionInfo, StoreError> {
        self.fork_session(id, at).await
    }

    async fn rewind(
        &self,
        id: SessionId,
        expected_version: u64,
        to: u64,
    ) -> Result<Rewound, StoreError> {
        self.rewind_session(id, expected_version, to).await
    }

    async fn delete(&self, id: SessionId) -> Result<(), StoreError> {
        self.delete_session(id).await
    }

    async fn put(&self, session: Session) -> Result<SessionInfo, StoreError> {
        self.put_session(session).await
    }

    async fn acquire_lease(
        &self,
        id: SessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        self.acquire(id, owner, ttl).await
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        self.renew(lease, ttl).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        self.release(lease).await
    }
}
