//! The PostgreSQL backend against a real server: the conformance suite, random operations
//! against the reference, the migration runner, and what is stored as text.
//!
//! They run when `TEST_DATABASE_URL` names a server (`.ci/run` sets it to the machine's
//! `postgres://postgres@127.0.0.1:5432/test`) and say they skipped otherwise. Each test works in
//! a schema of its own, dropped afterwards, so runs do not collide.

use proptest::prelude::*;
use verbatim_model::{ContentBlock, Message, Role, ToolUse, Unmapped};

use super::conformance::{self, op};
use super::lease;
use crate::{
    Append, Entry, NewSession, POSTGRES_SCHEMA_VERSION, PostgresOptions, PostgresStore,
    SessionStore, StoreError,
};

/// A schema of its own on the test server, dropped when this is.
pub(crate) struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    /// A new schema name, or `None` (having said so) when no test server is configured.
    pub(crate) fn new(test: &str) -> Option<TestSchema> {
        let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipping {test}: TEST_DATABASE_URL is not set");
            }
            return None;
        };
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).unwrap();
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        Some(TestSchema { url, name: format!("verbatim_test_{suffix}") })
    }

    pub(crate) fn options(&self) -> PostgresOptions {
        PostgresOptions { schema: Some(self.name.clone()), pool_size: 4, ..Default::default() }
    }

    pub(crate) async fn store(&self) -> PostgresStore {
        PostgresStore::connect_with(&self.url, self.options()).await.unwrap()
    }

    /// A plain connection with this schema on its search path.
    pub(crate) async fn client(&self) -> tokio_postgres::Client {
        let mut config: tokio_postgres::Config = self.url.parse().unwrap();
        config.options(format!("-c search_path={}", self.name));
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: the cleanup gets a thread and a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .map_err(std::io::Error::other)?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
                    .map_err(std::io::Error::other)
            })
        })
        .join();
    }
}

fn user(text: &str) -> Entry {
    Entry::Message(Message::user_text(text).into())
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_store_conforms() {
    let Some(schema) = TestSchema::new("postgres_store_conforms") else { return };
    conformance::suite(&schema.store().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_store_leases_conform() {
    let Some(schema) = TestSchema::new("postgres_store_leases_conform") else { return };
    lease::suite(&schema.store().await, lease::Time::Real).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_racing_for_a_lease_get_one_winner_each_round() {
    let Some(schema) =
        TestSchema::new("two_instances_racing_for_a_lease_get_one_winner_each_round")
    else {
        return;
    };
    // Two stores, two pools: two instances of an app on one database.
    let (a, b) = (schema.store().await, schema.store().await);
    let id = a.create(NewSession::new("m")).await.unwrap().id;
    let ttl = std::time::Duration::from_secs(60);
    let mut last = 0;
    for round in 0..20 {
        let (ra, rb) = tokio::join!(
            tokio::spawn({
                let a = a.clone();
                async move { a.acquire_lease(id, "instance a", ttl).await }
            }),
            tokio::spawn({
                let b = b.clone();
                async move { b.acquire_lease(id, "instance b", ttl).await }
            }),
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let winner = match (&ra, &rb) {
            (Ok(lease), Err(StoreError::Busy { .. }))
            | (Err(StoreError::Busy { .. }), Ok(lease)) => lease.clone(),
            other => panic!("round {round}: {other:?}"),
        };
        assert_eq!(winner.token, last + 1, "round {round}: one token given");
        last = winner.token;
        // The winner appends under it; the loser's store refuses nothing it did not write.
        let version = a.info(id).await.unwrap().version;
        let append = Append::new(version, vec![user(&format!("round {round}"))]).under(&winner);
        b.append(id, append).await.unwrap();
        a.release_lease(&winner).await.unwrap();
    }
    assert_eq!(a.info(id).await.unwrap().version, 20);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn postgres_matches_the_reference_on_random_operations(ops in prop::collection::vec(op(), 1..40)) {
        let Some(schema) = TestSchema::new("postgres_matches_the_reference_on_random_operations") else { return Ok(()) };
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async {
            let store = schema.store().await;
            conformance::random_operations(&store, &ops).await;
        });
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_are_stored_as_the_json_text_serde_wrote() {
    let Some(schema) = TestSchema::new("entries_are_stored_as_the_json_text_serde_wrote") else {
        return;
    };
    let store = schema.store().await;
    let info = store.create(NewSession::new("m")).await.unwrap();
    // Keys out of order, a number jsonb would rewrite, a NUL jsonb refuses.
    let input =
        serde_json::from_str(r#"{"z":1.5e300,"a":"nul \u0000","k":{"y":[],"b":null}}"#).unwrap();
    let tricky = Entry::Message(
        Message::new(
            Role::Assistant,
            vec![ContentBlock::ToolUse(ToolUse {
                id: "tooluse_1".into(),
                name: "lookup".into(),
                input,
                kind: None,
                unmapped: Unmapped::default(),
            })],
        )
        .into(),
    );
    let written = serde_json::to_string(&tricky).unwrap();
    store.append(info.id, Append::new(0, vec![tricky.clone()])).await.unwrap();

    let client = schema.client().await;
    let row = client.query_one("SELECT entry FROM records WHERE seq = 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, &str>(0), written);
    let loaded = store.load(info.id).await.unwrap();
    assert_eq!(loaded.records[0].entry, tricky);
    assert_eq!(serde_json::to_string(&loaded.records[0].entry).unwrap(), written);
}

/// Writes `texts` as records 1.. of session `id` straight into the table, inserted in `order`
/// (`ASC` or `DESC`) of their sequence numbers, and sets the session's version to match.
async fn write_records(
    client: &tokio_postgres::Client,
    id: verbatim_model::SessionId,
    texts: &[String],
    order: &str,
) {
    let id = uuid::Uuid::from_bytes(*id.as_bytes());
    let seqs: Vec<i64> = (1..=texts.len() as i64).collect();
    let insert = format!(
        "INSERT INTO records (session_id, seq, at, entry) \
         SELECT $1, s, now(), e FROM unnest($2::bigint[], $3::text[]) AS t(s, e) ORDER BY s {order}"
    );
    client.execute(&insert, &[&id, &seqs, &texts]).await.unwrap();
    let version = texts.len() as i64;
    client
        .execute("UPDATE sessions SET version = $2 WHERE id = $1", &[&id, &version])
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn records_come_back_in_order_whatever_order_the_table_holds_them_in() {
    let Some(schema) =
        TestSchema::new("records_come_back_in_order_whatever_order_the_table_holds_them_in")
    else {
        return;
    };
    let store = schema.store().await;
    let info = store.create(NewSession::new("m")).await.unwrap();
    // 200 records (several groups of a load) written straight into the table last first, so
    // the table's pages hold them in the reverse of their order.
    let entries: Vec<Entry> = (1..=200).map(|n| user(&format!("turn {n} ").repeat(n))).collect();
    let texts: Vec<String> = entries.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    let client = schema.client().await;
    write_records(&client, info.id, &texts, "DESC").await;
    let held: Vec<i64> = client
        .query("SELECT seq FROM records ORDER BY ctid", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(held.first(), Some(&200), "the table holds the last record first");

    // With and without index scans: a bitmap scan reads the rows in the table's order.
    let plain = store;
    let without_index_scans = PostgresStore::connect_with(
        &format!("{}?options=-c%20enable_indexscan%3Doff", schema.url),
        schema.options(),
    )
    .await
    .unwrap();
    for store in [plain, without_index_scans] {
        let loaded = store.load(info.id).await.unwrap();
        let seqs: Vec<u64> = loaded.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
        let got: Vec<&Entry> = loaded.records.iter().map(|r| &r.entry).collect();
        assert_eq!(got, entries.iter().collect::<Vec<_>>());
        let range = store.load_range(info.id, 60, Some(140)).await.unwrap();
        assert_eq!(range.iter().map(|r| r.seq).collect::<Vec<_>>(), (60..=140).collect::<Vec<_>>());
        assert!(range.iter().all(|r| r.entry == entries[r.seq as usize - 1]));
        let tail = store.tail(info.id, 70).await.unwrap();
        assert_eq!(tail.iter().map(|r| r.seq).collect::<Vec<_>>(), (131..=200).collect::<Vec<_>>());
        assert!(tail.iter().all(|r| r.entry == entries[r.seq as usize - 1]));
        // Read one row per record, as a load too large for groups is: the same records.
        let by_row = store.records_one_row_each(info.id, 1, None).await.unwrap();
        assert_eq!(by_row, loaded.records);
        let by_row = store.records_one_row_each(info.id, 60, Some(140)).await.unwrap();
        assert_eq!(by_row, range);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_load_names_the_first_bad_record() {
    let Some(schema) = TestSchema::new("a_load_names_the_first_bad_record") else {
        return;
    };
    let store = schema.store().await;
    let info = store.create(NewSession::new("m")).await.unwrap();
    // 200 records, two of them not JSON, in different groups of a load.
    let texts: Vec<String> = (1..=200)
        .map(|n| match n {
            100 | 150 => format!("not json {n}"),
            n => serde_json::to_string(&user(&format!("turn {n}"))).unwrap(),
        })
        .collect();
    write_records(&schema.client().await, info.id, &texts, "ASC").await;
    for _ in 0..5 {
        let error = store.load(info.id).await.unwrap_err();
        let StoreError::Corrupt { key, .. } = &error else { panic!("{error:?}") };
        assert_eq!(key, "record 100");
        let source = std::error::Error::source(&error).expect("the JSON error underneath");
        assert!(source.downcast_ref::<serde_json::Error>().is_some(), "{source:?}");
    }
    let after = store.load_range(info.id, 101, None).await.unwrap_err();
    assert!(matches!(&after, StoreError::Corrupt { key, .. } if key == "record 150"), "{after:?}");
    assert_eq!(store.load_range(info.id, 1, Some(99)).await.unwrap().len(), 99);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_starting_at_once_migrate_once() {
    let Some(schema) = TestSchema::new("two_instances_starting_at_once_migrate_once") else {
        return;
    };
    let (a, b) = tokio::join!(
        PostgresStore::connect_with(&schema.url, schema.options()),
        PostgresStore::connect_with(&schema.url, schema.options()),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let client = schema.client().await;
    let rows = client.query("SELECT version FROM verbatim_migrations", &[]).await.unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, (1..=POSTGRES_SCHEMA_VERSION as i32).collect::<Vec<_>>());

    // Both work on the same tables; running the migrations again does nothing.
    let info = a.create(NewSession::new("m")).await.unwrap();
    b.append(info.id, Append::new(0, vec![user("from b")])).await.unwrap();
    assert_eq!(a.load(info.id).await.unwrap().records.len(), 1);
    let again = a.migrate(Some(&schema.name)).await.unwrap();
    assert_eq!((again.from, again.applied), (POSTGRES_SCHEMA_VERSION, vec![]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_1_database_is_upgraded_in_place() {
    let Some(schema) = TestSchema::new("a_version_1_database_is_upgraded_in_place") else {
        return;
    };
    // A database as version 1 left it, with a session and a record.
    let client = schema.client().await;
    client.batch_execute(&format!("CREATE SCHEMA {}", schema.name)).await.unwrap();
    client
        .batch_execute(include_str!("../../../../migrations/postgres/0001_sessions.sql"))
        .await
        .unwrap();
    client
        .batch_execute(
            "CREATE TABLE verbatim_migrations (version integer PRIMARY KEY, name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now());
             INSERT INTO verbatim_migrations (version, name) VALUES (1, 'sessions');",
        )
        .await
        .unwrap();
    let foreign_keys = "SELECT count(*) FROM pg_constraint \
                        WHERE conrelid = 'records'::regclass AND contype = 'f'";
    let count = |row: tokio_postgres::Row| row.get::<_, i64>(0);
    assert_eq!(count(client.query_one(foreign_keys, &[]).await.unwrap()), 1);
    let old = PostgresStore::connect_with(
        &schema.url,
        PostgresOptions { migrate: false, ..schema.options() },
    )
    .await;
    assert!(old.unwrap_err().to_string().contains("verbatim migrate"));
    let id = verbatim_model::SessionId::from_random_bytes([7; 16]);
    let start = serde_json::to_string(&NewSession::new("m")).unwrap();
    let entry = serde_json::to_string(&user("kept")).unwrap();
    client
        .execute(
            "INSERT INTO sessions (id, start, created_at, updated_at, version) \
             VALUES ($1::text::uuid, $2, now(), now(), 1)",
            &[&id.to_string(), &start],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO records (session_id, seq, at, entry) VALUES ($1::text::uuid, 1, now(), $2)",
            &[&id.to_string(), &entry],
        )
        .await
        .unwrap();
    let store = schema.store().await;
    // Upgraded: the key is gone, the data is there and goes on, and a delete still takes
    // the records.
    assert_eq!(store.schema_version().await.unwrap(), POSTGRES_SCHEMA_VERSION);
    assert_eq!(count(client.query_one(foreign_keys, &[]).await.unwrap()), 0);
    assert_eq!(store.load(id).await.unwrap().records[0].entry, user("kept"));
    store.append(id, Append::new(1, vec![user("more")])).await.unwrap();
    let info = store.info(id).await.unwrap();
    assert_eq!(info.version, 2);
    store.delete(info.id).await.unwrap();
    let records = count(client.query_one("SELECT count(*) FROM records", &[]).await.unwrap());
    assert_eq!(records, 0);
    assert!(matches!(store.delete(info.id).await, Err(StoreError::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_from_a_newer_version_is_refused() {
    let Some(schema) = TestSchema::new("a_database_from_a_newer_version_is_refused") else {
        return;
    };
    let store = schema.store().await;
    let info = store.create(NewSession::new("m")).await.unwrap();
    let client = schema.client().await;
    client
        .execute("INSERT INTO verbatim_migrations (version, name) VALUES (99, 'future')", &[])
        .await
        .unwrap();
    for migrate in [true, false] {
        let options = PostgresOptions { migrate, ..schema.options() };
        match PostgresStore::connect_with(&schema.url, options).await {
            Err(StoreError::NewerSchema {
                found: 99, supported: POSTGRES_SCHEMA_VERSION, ..
            }) => {}
            other => panic!("expected NewerSchema, got {other:?}"),
        }
    }
    // Nothing was touched.
    let sessions: i64 =
        client.query_one("SELECT count(*) FROM sessions", &[]).await.unwrap().get(0);
    assert_eq!(sessions, 1);
    assert_eq!(store.info(info.id).await.unwrap().version, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unmigrated_database_is_refused_when_told_not_to_migrate() {
    let Some(schema) =
        TestSchema::new("an_unmigrated_database_is_refused_when_told_not_to_migrate")
    else {
        return;
    };
    schema.client().await.batch_execute(&format!("CREATE SCHEMA {}", schema.name)).await.unwrap();
    let options = PostgresOptions { migrate: false, ..schema.options() };
    let error = PostgresStore::connect_with(&schema.url, options).await.unwrap_err();
    assert!(error.to_string().contains("verbatim migrate"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn passwords_stay_out_of_debug_and_errors() {
    let Some(schema) = TestSchema::new("passwords_stay_out_of_debug_and_errors") else { return };
    // The test server trusts loopback, so a password in the URL is accepted and ignored.
    let url = with_password(&schema.url, "hunter2-secret");
    let store = PostgresStore::connect_with(&url, schema.options()).await.unwrap();
    assert!(!format!("{store:?}").contains("hunter2"));

    let refused = with_port(&with_password(&schema.url, "hunter2-secret"), 1);
    let options =
        PostgresOptions { connect_timeout: std::time::Duration::from_secs(2), ..schema.options() };
    let error = PostgresStore::connect_with(&refused, options).await.unwrap_err();
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
    // The errors underneath are kept, down to the refused connection, and say no password.
    let display = error.to_string();
    let StoreError::Backend { detail, .. } = &error else { panic!("{error:?}") };
    assert_eq!(display, format!("store backend: {detail}"));
    let mut refused_io = false;
    let mut cause = std::error::Error::source(&error);
    while let Some(error) = cause {
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
        refused_io |= error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
        cause = error.source();
    }
    assert!(refused_io, "{error:?}");

    let malformed = "postgres://postgres:hunter2-secret@127.0.0.1:notaport/test";
    let error = PostgresStore::connect(malformed).await.unwrap_err();
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_schema_name_is_refused_before_any_sql() {
    let error = PostgresStore::connect_with(
        "postgres://postgres@127.0.0.1:1/test",
        PostgresOptions { schema: Some("x; DROP TABLE y".into()), ..Default::default() },
    )
    .await
    .unwrap_err();
    assert!(matches!(error, StoreError::Invalid(_)), "{error:?}");
    assert!(error.to_string().contains("schema name"), "{error}");
}

/// `url` (postgres://user@host...) with a password added to its user.
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (user, host) = rest.split_once('@').expect("a user in the URL");
    let user = user.split(':').next().unwrap();
    format!("{scheme}://{user}:{password}@{host}")
}

/// `url` with its port replaced.
fn with_port(url: &str, port: u16) -> String {
    let (before, after) = url.rsplit_once('@').expect("a user in the URL");
    let (host, path) = after.split_once('/').unwrap_or((after, ""));
    let host = host.split(':').next().unwrap();
    format!("{before}@{host}:{port}/{path}")
}
