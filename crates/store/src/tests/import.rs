//! The importer ([`crate::import`]): [`suite`] runs on every backend (from the conformance
//! suite): a re-run stores nothing twice and completes what a killed run left; the tests below
//! run on the in-memory store, with a store that counts writes and fails one on purpose.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use serde_json::{Value, json};
use verbatim_model::{Dialect, Message, SessionId};

use crate::export::export_session;
use crate::import::{
    ImportError, ImportOptions, Imported, Importer, Outcome, import_key, imported_settings,
};
use crate::{
    Append, Appended, Entry, ListQuery, MemoryStore, NewSession, Page, Record, Rewound, Session,
    SessionInfo, SessionStore, StoreError, new_session_id,
};

/// A Converse body of `n` messages (user and assistant in turn) naming its model.
fn body(label: &str, n: usize) -> Vec<u8> {
    let messages: Vec<Value> = (0..n)
        .map(|i| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            json!({"role": role, "content": [{"text": format!("{label} {i}")}]})
        })
        .collect();
    let body = json!({"modelId": "m", "messages": messages, "inferenceConfig": {"maxTokens": 9}});
    serde_json::to_vec(&body).unwrap()
}

/// An export document of a session with `n` messages (and a configuration record).
fn export_document(tag: &str, n: usize) -> (Session, Vec<u8>) {
    let mut new = NewSession::new("m");
    new.tags.push(tag.to_owned());
    new.metadata.insert("project".into(), json!("weather"));
    let now = crate::store::now();
    let mut entries: Vec<Entry> =
        (0..n).map(|i| Entry::Message(Message::user_text(format!("{tag} {i}")).into())).collect();
    entries.push(Entry::Config(crate::ConfigChange::Model("m2".into())));
    let records: Vec<Record> =
        entries.into_iter().zip(1..).map(|(entry, seq)| Record { seq, at: now, entry }).collect();
    let info = SessionInfo {
        id: new_session_id().unwrap(),
        start: new,
        created_at: now,
        updated_at: now,
        version: records.len() as u64,
        origin: None,
    };
    let session = Session { info, records };
    let bytes = serde_json::to_vec(&export_session(&session, Dialect::Converse).unwrap()).unwrap();
    (session, bytes)
}

fn lines(documents: &[&[u8]]) -> Vec<u8> {
    documents.join(&b"\n"[..])
}

/// Both passes over `input`, as the CLI runs them.
async fn import(
    store: &dyn SessionStore,
    importer: &Importer,
    input: &[u8],
) -> Result<Vec<Imported>, ImportError> {
    importer.check(input)?;
    let mut done = Vec::new();
    importer.store(store, input, |imported| done.push(imported.clone())).await?;
    Ok(done)
}

fn tagged(tag: &str) -> Importer {
    let options = ImportOptions { tags: vec![tag.into()], ..ImportOptions::default() };
    Importer::new("input", options).with_chunks(2, 1 << 20)
}

fn outcomes(done: &[Imported]) -> Vec<Outcome> {
    done.iter().map(|d| d.outcome).collect()
}

fn texts(session: &Session) -> Vec<String> {
    session.messages().iter().map(|m| m.message.text()).collect()
}

/// The number of sessions in the store.
async fn listed(store: &dyn SessionStore) -> usize {
    let mut query = ListQuery { limit: 1000, ..ListQuery::default() };
    let mut count = 0;
    loop {
        let page = store.list(&query).await.unwrap();
        count += page.sessions.len();
        match page.next {
            Some(cursor) => query.after = Some(cursor),
            None => return count,
        }
    }
}

/// What every backend must do for an import.
pub(crate) async fn suite(store: &dyn SessionStore) {
    let importer = Importer::new("input", ImportOptions::default()).with_chunks(2, 1 << 20);
    let before = listed(store).await;
    let (exported, document) = export_document("import-suite", 3);
    let input = lines(&[&body("first", 5), &document, &body("second", 0)]);
    let first = import(store, &importer, &input).await.unwrap();
    assert_eq!(outcomes(&first), [Outcome::Stored; 3]);
    let ids: Vec<SessionId> = first.iter().map(|d| d.id).collect();
    assert_eq!(ids[1], exported.info.id);
    let body = store.load(ids[0]).await.unwrap();
    assert_eq!(texts(&body), (0..5).map(|i| format!("first {i}")).collect::<Vec<_>>());
    assert_eq!(body.info.start.model, "m");
    assert_eq!(body.info.origin, Some(crate::Origin::Import));
    assert_eq!(imported_settings(&body).unwrap().unwrap().inference.unwrap().max_tokens, Some(9));
    let key = import_key(&body.info).unwrap().to_owned();
    assert_eq!(key.len(), 64);
    let stored = store.load(ids[1]).await.unwrap();
    assert_eq!(stored.records, exported.records);
    assert_eq!(store.info(ids[2]).await.unwrap().version, 0);
    assert_eq!(listed(store).await, before + 3);

    // Run again: the same ids, nothing written.
    let again = import(store, &importer, &input).await.unwrap();
    assert_eq!(outcomes(&again), [Outcome::AlreadyStored; 3]);
    assert_eq!(again.iter().map(|d| d.id).collect::<Vec<_>>(), ids);
    assert_eq!(store.load(ids[0]).await.unwrap(), body);
    assert_eq!(listed(store).await, before + 3);

    // As a killed run leaves them: the body's session created without its records (then with
    // some), the export's stored in part. Each is completed or replaced, never duplicated.
    for kept in [0, 3] {
        let mut partial = body.clone();
        partial.records.truncate(kept);
        partial.info.version = kept as u64;
        store.delete(ids[0]).await.unwrap();
        store.put(partial).await.unwrap();
        let mut cut = stored.clone();
        cut.records.truncate(1);
        cut.info.version = 1;
        store.delete(ids[1]).await.unwrap();
        store.put(cut).await.unwrap();
        let resumed = import(store, &importer, &input).await.unwrap();
        let from = kept as u64;
        let expected = [Outcome::Completed { from }, Outcome::Replaced, Outcome::AlreadyStored];
        assert_eq!(outcomes(&resumed), expected);
        assert_eq!(texts(&store.load(ids[0]).await.unwrap()), texts(&body));
        assert_eq!(store.load(ids[0]).await.unwrap().info.version, 5);
        assert_eq!(store.load(ids[1]).await.unwrap().records, exported.records);
        assert_eq!(listed(store).await, before + 3);
    }

    // Another session under the export's id (not imported from it) is refused.
    store.delete(ids[1]).await.unwrap();
    let mut other = exported.clone();
    other.info.start.metadata.clear();
    store.put(other).await.unwrap();
    let refused = import(store, &importer, &document).await;
    assert!(matches!(refused, Err(ImportError::Exists { id, .. }) if id == ids[1]), "{refused:?}");
    for id in ids {
        store.delete(id).await.unwrap();
    }
}

/// A store that counts puts and appends, and fails the append numbered `fail_append`.
struct Counting {
    inner: MemoryStore,
    puts: AtomicUsize,
    appends: AtomicUsize,
    fail_append: usize,
}

impl Counting {
    fn new(fail_append: usize) -> Counting {
        Counting {
            inner: MemoryStore::new(),
            puts: AtomicUsize::new(0),
            appends: AtomicUsize::new(0),
            fail_append,
        }
    }
}

#[async_trait]
impl SessionStore for Counting {
    async fn create(&self, new: NewSession) -> Result<SessionInfo, StoreError> {
        self.inner.create(new).await
    }
    async fn append(&self, id: SessionId, append: Append) -> Result<Appended, StoreError> {
        if self.appends.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_append {
            return Err(StoreError::backend_detail("the process was killed"));
        }
        self.inner.append(id, append).await
    }
    async fn info(&self, id: SessionId) -> Result<SessionInfo, StoreError> {
        self.inner.info(id).await
    }
    async fn load(&self, id: SessionId) -> Result<Session, StoreError> {
        self.inner.load(id).await
    }
    async fn load_range(
        &self,
        id: SessionId,
        from: u64,
        to: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        self.inner.load_range(id, from, to).await
    }
    async fn tail(&self, id: SessionId, n: usize) -> Result<Vec<Record>, StoreError> {
        self.inner.tail(id, n).await
    }
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.inner.list(query).await
    }
    async fn fork(&self, id: SessionId, at: u64) -> Result<SessionInfo, StoreError> {
        self.inner.fork(id, at).await
    }
    async fn rewind(&self, id: SessionId, version: u64, to: u64) -> Result<Rewound, StoreError> {
        self.inner.rewind(id, version, to).await
    }
    async fn delete(&self, id: SessionId) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }
    async fn put(&self, session: Session) -> Result<SessionInfo, StoreError> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put(session).await
    }
    async fn acquire_lease(
        &self,
        id: SessionId,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<crate::Lease, StoreError> {
        self.inner.acquire_lease(id, owner, ttl).await
    }
    async fn renew_lease(
        &self,
        lease: &crate::Lease,
        ttl: std::time::Duration,
    ) -> Result<crate::Lease, StoreError> {
        self.inner.renew_lease(lease, ttl).await
    }
    async fn release_lease(&self, lease: &crate::Lease) -> Result<(), StoreError> {
        self.inner.release_lease(lease).await
    }
}

#[tokio::test]
async fn a_long_body_is_a_few_writes_and_a_killed_run_is_completed() {
    let input = body("long", 10);
    let importer = Importer::new("input", ImportOptions::default()).with_chunks(3, 1 << 20);
    let clean = Counting::new(0);
    let done = import(&clean, &importer, &input).await.unwrap();
    // One put with the session and its first 3 messages, then appends of 3, 3 and 1.
    assert_eq!(clean.puts.load(Ordering::SeqCst), 1);
    assert_eq!(clean.appends.load(Ordering::SeqCst), 3);
    let whole = clean.load(done[0].id).await.unwrap();
    assert_eq!(whole.info.version, 10);

    // Killed at the second append: 6 messages stored, nothing printed for the document.
    let killed = Counting::new(2);
    let mut reported = Vec::new();
    let failed = importer.store(&killed, &input[..], |d| reported.push(d.id)).await;
    assert!(matches!(failed, Err(ImportError::Store { .. })), "{failed:?}");
    assert!(reported.is_empty());
    assert_eq!(killed.info(done[0].id).await.unwrap().version, 6);
    let resumed = import(&killed, &importer, &input).await.unwrap();
    assert_eq!(resumed[0].id, done[0].id);
    assert_eq!(resumed[0].outcome, Outcome::Completed { from: 6 });
    let completed = killed.load(done[0].id).await.unwrap();
    assert_eq!(texts(&completed), texts(&whole));
    assert_eq!(killed.list(&ListQuery::default()).await.unwrap().sessions.len(), 1);

    // A message larger than the byte bound is a write of its own.
    let bytes = Importer::new("input", ImportOptions::default()).with_chunks(100, 10);
    let small = Counting::new(0);
    import(&small, &bytes, &input).await.unwrap();
    assert_eq!(small.puts.load(Ordering::SeqCst) + small.appends.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn one_document_is_one_session_whatever_the_input_repeats() {
    let store = MemoryStore::new();
    let one = body("same", 2);
    let done = import(&store, &tagged("t"), &lines(&[&one, &one])).await.unwrap();
    assert_eq!(outcomes(&done), [Outcome::Stored, Outcome::AlreadyStored]);
    assert_eq!(done[0].id, done[1].id);
    assert_eq!(
        (done[0].location.as_str(), done[1].location.as_str()),
        ("input: line 1", "input: line 2")
    );
    // The options that shape a session are part of its key.
    let other = import(&store, &tagged("u"), &one).await.unwrap();
    assert_ne!(other[0].id, done[0].id);
    assert_eq!(other[0].location, "input");
    // Formatting is not content: the same body pretty printed is another document.
    let value: Value = serde_json::from_slice(&one).unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    let reformatted = import(&store, &tagged("t"), &pretty).await.unwrap();
    assert_ne!(reformatted[0].id, done[0].id);
}

#[tokio::test]
async fn a_body_or_array_without_a_model_makes_a_session_without_one() {
    let store = MemoryStore::new();
    let plain = Importer::new("input", ImportOptions::default());
    let converse = br#"{"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}"#;
    let done = import(&store, &plain, converse).await.unwrap();
    let info = store.info(done[0].id).await.unwrap();
    assert_eq!(info.start.model, "");
    assert_eq!(info.start.metadata["import"]["format"], "converse");
    let array = br#"[{"role": "user", "content": "Hi"}]"#;
    let done = import(&store, &plain, array).await.unwrap();
    let info = store.info(done[0].id).await.unwrap();
    assert_eq!(info.start.model, "");
    assert_eq!(info.start.metadata["import"]["format"], "anthropic");
    // An Anthropic Messages body still needs one.
    let anthropic = br#"{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5,
        "messages": [{"role": "user", "content": "Hi"}]}"#;
    let refused = import(&store, &plain, anthropic).await;
    assert!(refused.as_ref().is_err_and(|e| e.to_string().contains("--model")), "{refused:?}");
    let options = ImportOptions { model: Some("m".into()), ..ImportOptions::default() };
    let done = import(&store, &Importer::new("input", options), anthropic).await.unwrap();
    assert_eq!(store.info(done[0].id).await.unwrap().start.model, "m");
}

#[tokio::test]
async fn the_dialect_is_detected_from_the_body_or_its_messages() {
    let store = MemoryStore::new();
    let model = ImportOptions { model: Some("m".into()), ..ImportOptions::default() };
    let importer = Importer::new("input", model);
    let cases: [(&[u8], &str); 4] = [
        (br#"[{"role": "user", "content": [{"text": "a"}]}]"#, "converse"),
        (br#"[{"role": "user", "content": [{"type": "text", "text": "a"}]}]"#, "anthropic"),
        (br#"[{"content": "a", "role": "user"}]"#, "anthropic"),
        (br#"{"max_tokens": 3, "anthropic_version": "bedrock-2023-05-31", "messages": [{"role": "user", "content": [{"text": "a", "type": "text"}]}]}"#, "anthropic"),
    ];
    for (input, format) in cases {
        let done = import(&store, &importer, input).await.unwrap();
        let info = store.info(done[0].id).await.unwrap();
        assert_eq!(
            info.start.metadata["import"]["format"],
            format,
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[tokio::test]
async fn the_check_names_the_line_and_path_of_bad_input() {
    let importer = Importer::new("in.jsonl", ImportOptions::default());
    let bad = br#"{"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"toolUse": {"input": {}}}]}]}"#;
    let input = lines(&[&body("fine", 2), bad]);
    let error = importer.check(&input[..]).unwrap_err();
    assert!(error.is_input());
    assert_eq!(
        error.to_string(),
        "in.jsonl: line 2: messages[1].content[0].toolUse: missing required field `toolUseId`"
    );
    // Syntax errors give the position in the input, not in the document.
    let error = importer.check(&b"\n\n  {\"messages\": [}"[..]).unwrap_err();
    assert_eq!(error.to_string(), "in.jsonl: not valid JSON: expected value at line 3 column 17");
    let error = importer.check(&b" \n "[..]).unwrap_err();
    assert_eq!(error.to_string(), "in.jsonl: no JSON document to import");
    // An export document's records must be numbered 1, 2, 3, ...
    let (_, document) = export_document("t", 2);
    let mut value: Value = serde_json::from_slice(&document).unwrap();
    value["records"][1]["seq"] = json!(7);
    let error = importer.check(&serde_json::to_vec(&value).unwrap()[..]).unwrap_err();
    assert!(error.to_string().contains("records[1]"), "{error}");
    // The copy for a second reading is the input, byte for byte.
    let mut copy = Vec::new();
    importer.check_copying(&input[..input.len() - bad.len() - 1], &mut copy).unwrap();
    assert_eq!(copy, body("fine", 2));
}

#[tokio::test]
async fn an_export_leaves_out_the_import_key_and_keeps_the_rest() {
    let store = MemoryStore::new();
    let (session, document) = export_document("t", 2);
    import(&store, &Importer::new("input", ImportOptions::default()), &document).await.unwrap();
    let loaded = store.load(session.info.id).await.unwrap();
    assert!(import_key(&loaded.info).is_some());
    let exported = export_session(&loaded, Dialect::Converse).unwrap();
    assert_eq!(exported["session"]["metadata"], json!({"project": "weather"}));
    assert_eq!(exported["records"], serde_json::from_slice::<Value>(&document).unwrap()["records"]);
}

/// A document of one of the shapes import reads, with `texts` as its messages' texts.
fn document(shape: u8, texts: &[String]) -> Value {
    let converse: Vec<Value> =
        texts.iter().map(|t| json!({"role": "user", "content": [{"text": t}]})).collect();
    let anthropic: Vec<Value> =
        texts.iter().map(|t| json!({"content": t, "role": "user"})).collect();
    match shape % 5 {
        0 => json!({"modelId": "m", "messages": converse, "system": [{"text": "s"}]}),
        1 => json!(converse),
        2 => json!(anthropic),
        3 => json!({"messages": anthropic, "max_tokens": 5,
                    "anthropic_version": "bedrock-2023-05-31", "model": "m"}),
        _ => {
            let (_, bytes) = export_document("p", texts.len());
            serde_json::from_slice(&bytes).unwrap()
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

    /// The check never panics, and what it accepts the storing pass stores, document for
    /// document: on documents of every shape, one byte changed or taken out or not.
    #[test]
    fn what_the_check_accepts_is_stored(
        documents in proptest::collection::vec(
            (0..5u8, proptest::collection::vec("[a-z\\\\\"{}\\[\\] ]{0,6}", 0..4)),
            1..4,
        ),
        pretty in proptest::prelude::any::<bool>(),
        change in proptest::option::of((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>(), proptest::prelude::any::<bool>())),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let importer = Importer::new("input", ImportOptions::default());
        let mut input = Vec::new();
        for (shape, texts) in &documents {
            let value = document(*shape, texts);
            let bytes = if pretty { serde_json::to_vec_pretty(&value) } else { serde_json::to_vec(&value) };
            input.extend(bytes.unwrap());
            input.push(b'\n');
        }
        if let Some((at, byte, remove)) = change {
            let at = at % input.len();
            if remove { input.remove(at); } else { input[at] = byte; }
        }
        if let Ok(checked) = importer.check(&input[..]) {
            let store = MemoryStore::new();
            let stored = runtime.block_on(importer.store(&store, &input[..], |_| {}));
            let shown = String::from_utf8_lossy(&input);
            proptest::prop_assert_eq!(stored.ok(), Some(checked.documents), "{}", shown);
        }
    }
}
