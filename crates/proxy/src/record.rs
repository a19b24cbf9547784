//! Sessions: which session a call belongs to, and its exchange appended.
//!
//! A call names its session with `x-verbatim-session`; otherwise the proxy finds the session
//! whose stored conversation the request continues by the prefix hash the engine keeps
//! ([`assemble::prefix_hash`]): each assistant message is recorded with the hash of the
//! prefix it answered (system prompt, tools, the messages before it), so a request whose
//! messages up to its last assistant message hash the same continues that session. A second
//! key, the same hash over the messages without their thinking, finds the session of a client
//! that strips thinking (which is then restored). The proxy keeps both keys of every message it
//! records in memory; after a restart, or for sessions another process wrote, it reads the
//! recent sessions tagged `proxy` again (at most [`SCAN_LIMIT`], once per [`SCAN_INTERVAL`]).
//! Where several proxies share a store and another one recorded the latest exchanges, the
//! request's earlier assistant messages (up to [`EARLIER_KEYS`]) find the session, which is
//! then read as it stands in the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{SubsecRound as _, Utc};
use verbatim_model::{Api, HistoryMessage, Message, Provenance, Request, Role, SessionId};
use verbatim_protocol::assemble::prefix_hash;
use verbatim_store::{
    Append, ConfigChange, Entry, History, ListQuery, NewSession, Record, Session, SessionInfo,
    SessionStore, StoreError, new_session_id,
};

use crate::restore::{Continues, restore, without_thinking};

/// The tag every session the proxy starts carries.
pub(crate) const TAG: &str = "proxy";
/// The most sessions one scan reads.
const SCAN_LIMIT: usize = 1000;
/// The least time between two scans.
const SCAN_INTERVAL: Duration = Duration::from_secs(2);

/// The sessions, and the index of their prefixes.
pub(crate) struct Sessions {
    store: Arc<dyn SessionStore>,
    index: Mutex<Index>,
}

#[derive(Default)]
struct Index {
    /// Prefix key (exact or without thinking) to the sessions holding an assistant message
    /// that answered it, newest first (conversations that start alike share their first keys).
    by_key: HashMap<String, Vec<SessionId>>,
    last_scan: Option<Instant>,
}

/// The most sessions kept under one key.
const PER_KEY: usize = 16;

/// How many assistant messages before the last a request's session is looked up by when the
/// last one is not indexed here (another proxy on the same store recorded it).
const EARLIER_KEYS: usize = 8;

impl Index {
    fn insert(&mut self, key: String, id: SessionId) {
        let ids = self.by_key.entry(key).or_default();
        ids.retain(|known| *known != id);
        ids.insert(0, id);
        ids.truncate(PER_KEY);
    }
}

/// The session a call continues, as it stands.
pub(crate) struct Located {
    pub(crate) id: SessionId,
    pub(crate) history: History,
    /// The assistant messages whose stored thinking was put back, by index.
    pub(crate) restored: Vec<usize>,
    /// A session not stored yet: it is stored whole with the exchange's records (one write,
    /// after the model answered, so a new conversation's first byte waits for no disk).
    pub(crate) new: Option<NewSession>,
}

/// The key of the prefix before message `upto`, exact.
fn exact_key(request: &Request, upto: usize) -> String {
    prefix_hash(request, upto)
}

/// The key of the prefix before message `upto`, its messages without thinking.
fn stripped_key(request: &Request, upto: usize) -> String {
    let stripped = Request {
        messages: request.messages.iter().take(upto).map(without_thinking).collect(),
        system: request.system.clone(),
        tools: request.tools.clone(),
        ..Request::default()
    };
    format!("stripped:{}", prefix_hash(&stripped, upto))
}

/// The keys under which the conversation `request` continues may be found: those of its last
/// assistant message.
fn lookup_keys(request: &Request) -> Vec<String> {
    let Some(last) = request.messages.iter().rposition(|m| m.role == Role::Assistant) else {
        return Vec::new();
    };
    vec![exact_key(request, last), stripped_key(request, last)]
}

impl Sessions {
    pub(crate) fn new(store: Arc<dyn SessionStore>) -> Sessions {
        Sessions { store, index: Mutex::new(Index::default()) }
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session `request` belongs to, its thinking restored from it: the one `named`, else
    /// the one whose prefix it continues, else a new one.
    pub(crate) async fn locate(
        &self,
        named: Option<SessionId>,
        api: Api,
        model_id: &str,
        request: &mut Request,
    ) -> Result<Located, StoreError> {
        if let Some(id) = named {
            match self.store.load(id).await {
                Ok(session) => {
                    let history = session.history();
                    let mut candidate = request.messages.clone();
                    let continues = restore(history.messages(), &mut candidate);
                    if let Some(located) = self.continued(id, history, continues).await? {
                        request.messages = candidate;
                        return Ok(located);
                    }
                    tracing::info!(session = %id, "the request does not continue the session it names: it is looked up by its prefix");
                }
                Err(StoreError::NotFound(_)) => {
                    tracing::info!(session = %id, "no such session: it is looked up by its prefix");
                }
                Err(error) => return Err(error),
            }
        }
        let keys = lookup_keys(request);
        if !keys.is_empty() {
            if let Some(found) = self.find(&keys, model_id, request).await? {
                return Ok(found);
            }
            if self.scan().await?
                && let Some(found) = self.find(&keys, model_id, request).await?
            {
                return Ok(found);
            }
            // Another instance on the same store may have recorded the latest exchanges
            // (several proxies on one database, calls spread between them): the keys of the
            // request's earlier assistant messages, which this one may have indexed. The
            // session is read from the store, so it is found as it stands, those exchanges
            // included.
            let earlier: Vec<usize> = (0..request.messages.len())
                .rev()
                .filter(|&i| request.messages[i].role == Role::Assistant)
                .skip(1)
                .take(EARLIER_KEYS)
                .collect();
            for upto in earlier {
                let keys = [exact_key(request, upto), stripped_key(request, upto)];
                if let Some(found) = self.find(&keys, model_id, request).await? {
                    return Ok(found);
                }
            }
        }
        self.create(api, model_id, request).await
    }

    async fn find(
        &self,
        keys: &[String],
        model_id: &str,
        request: &mut Request,
    ) -> Result<Option<Located>, StoreError> {
        let ids: Vec<SessionId> = {
            let index = self.index();
            let mut ids: Vec<SessionId> = Vec::new();
            for id in keys.iter().filter_map(|key| index.by_key.get(key)).flatten() {
                if !ids.contains(id) {
                    ids.push(*id);
                }
            }
            ids
        };
        // The first candidate the request continues, one on the same model first: thinking is
        // bound to the model that wrote it, and conversations that start alike on two models
        // share their first keys.
        let mut fallback = None;
        for id in ids {
            let history = match self.store.load(id).await {
                Ok(session) => session.history(),
                Err(StoreError::NotFound(_)) => continue,
                Err(error) => return Err(error),
            };
            let mut candidate = request.messages.clone();
            let continues = restore(history.messages(), &mut candidate);
            if continues == Continues::No {
                continue;
            }
            if history.config().model == model_id {
                let located = self.continued(id, history, continues).await?;
                request.messages = candidate;
                return Ok(located);
            }
            if fallback.is_none() {
                fallback = Some((id, history, continues, candidate));
            }
        }
        if let Some((id, history, continues, candidate)) = fallback {
            let located = self.continued(id, history, continues).await?;
            request.messages = candidate;
            return Ok(located);
        }
        Ok(None)
    }

    /// The session a request continues, given how it stands against session `id`: the session
    /// itself, or a fork of it where the request goes back to an earlier point.
    async fn continued(
        &self,
        id: SessionId,
        history: History,
        continues: Continues,
    ) -> Result<Option<Located>, StoreError> {
        match continues {
            Continues::Yes { restored } => Ok(Some(Located { id, history, restored, new: None })),
            Continues::Earlier { at, restored } => {
                let through = history.seqs()[at - 1];
                let fork = self.store.fork(id, through).await?;
                tracing::info!(session = %id, fork = %fork.id, "the request goes back to an earlier point: it continues a fork");
                let history = self.store.load(fork.id).await?.history();
                self.add(fork.id, &history);
                Ok(Some(Located { id: fork.id, history, restored, new: None }))
            }
            Continues::No => Ok(None),
        }
    }

    /// Reads the recent proxy sessions into the index; false when one was read too recently.
    async fn scan(&self) -> Result<bool, StoreError> {
        {
            let mut index = self.index();
            if index.last_scan.is_some_and(|at| at.elapsed() < SCAN_INTERVAL) {
                return Ok(false);
            }
            index.last_scan = Some(Instant::now());
        }
        let mut query = ListQuery { tag: Some(TAG.to_owned()), limit: 100, ..ListQuery::default() };
        let mut read = 0;
        loop {
            let page = self.store.list(&query).await?;
            for info in &page.sessions {
                match self.store.load(info.id).await {
                    Ok(session) => self.add(info.id, &session.history()),
                    Err(StoreError::NotFound(_)) => {}
                    Err(error) => return Err(error),
                }
            }
            read += page.sessions.len();
            match page.next {
                Some(next) if read < SCAN_LIMIT => query.after = Some(next),
                _ => break,
            }
        }
        Ok(true)
    }

    /// Indexes the assistant messages of `history`.
    fn add(&self, id: SessionId, history: &History) {
        let config = history.config();
        let request = Request {
            messages: history.messages().iter().map(|m| m.message.clone()).collect(),
            system: config.system.clone(),
            tools: config.tools.clone(),
            ..Request::default()
        };
        let mut index = self.index();
        for (i, kept) in history.messages().iter().enumerate() {
            if kept.message.role != Role::Assistant {
                continue;
            }
            let exact = kept
                .provenance
                .as_ref()
                .and_then(|p| p.prefix_hash.clone())
                .unwrap_or_else(|| exact_key(&request, i));
            index.insert(exact, id);
            index.insert(stripped_key(&request, i), id);
        }
    }

    /// A new session, stored with the exchange's first records.
    async fn create(
        &self,
        api: Api,
        model_id: &str,
        request: &Request,
    ) -> Result<Located, StoreError> {
        let mut new = NewSession::new(model_id);
        new.system = request.system.clone();
        new.tools = request.tools.clone();
        new.thinking = request.thinking.clone();
        new.tags = vec![TAG.to_owned()];
        new.metadata.insert("surface".to_owned(), api.as_str().into());
        let id = new_session_id()?;
        let history = Session { info: info(id, new.clone(), 0), records: Vec::new() }.history();
        Ok(Located { id, history, restored: Vec::new(), new: Some(new) })
    }

    /// Appends the exchange: configuration changes, the request's new messages and, when the
    /// model answered, its message with `provenance`. Returns the session it went into: the
    /// located one, or, when another call continuing the same session was recorded first (two
    /// calls at once on one session), a fork of it at the point both continued, so neither
    /// exchange is lost; the fork is indexed, so the next call continuing this answer finds it.
    pub(crate) async fn record(
        &self,
        located: &Located,
        model_id: &str,
        request: &Request,
        reply: Option<(Message, Provenance)>,
    ) -> Result<SessionId, StoreError> {
        let config = located.history.config();
        let mut entries = Vec::new();
        if config.model != model_id {
            entries.push(Entry::Config(ConfigChange::Model(model_id.to_owned())));
        }
        if config.system != request.system {
            entries.push(Entry::Config(ConfigChange::System(request.system.clone())));
        }
        if config.tools != request.tools {
            entries.push(Entry::Config(ConfigChange::Tools(request.tools.clone())));
        }
        if config.thinking != request.thinking {
            entries.push(Entry::Config(ConfigChange::Thinking(request.thinking.clone())));
        }
        let stored = located.history.messages().len();
        for message in request.messages.iter().skip(stored) {
            entries.push(Entry::Message(HistoryMessage::from(message.clone())));
        }
        let answered = reply.as_ref().map(|(_, provenance)| provenance.prefix_hash.clone());
        if let Some((message, provenance)) = reply {
            entries.push(Entry::Message(HistoryMessage { message, provenance: Some(provenance) }));
        }
        if entries.is_empty() {
            return Ok(located.id);
        }
        let id = match &located.new {
            None => {
                let version = located.history.version();
                match self.store.append(located.id, Append::new(version, entries.clone())).await {
                    Ok(_) => located.id,
                    Err(StoreError::Conflict { .. }) => {
                        let fork = self.store.fork(located.id, version).await?;
                        self.store.append(fork.id, Append::new(fork.version, entries)).await?;
                        tracing::info!(session = %located.id, fork = %fork.id, "another call on the session was recorded first: this exchange went into a fork");
                        fork.id
                    }
                    Err(error) => return Err(error),
                }
            }
            Some(new) => {
                let at = Utc::now();
                let records: Vec<Record> = entries
                    .into_iter()
                    .zip(1..)
                    .map(|(entry, seq)| Record { seq, at, entry })
                    .collect();
                let info = info(located.id, new.clone(), records.len() as u64);
                self.store.put(Session { info, records }).await?;
                located.id
            }
        };
        if let Some(exact) = answered {
            let upto = request.messages.len();
            let exact = exact.unwrap_or_else(|| exact_key(request, upto));
            let stripped = stripped_key(request, upto);
            let mut index = self.index();
            index.insert(exact, id);
            index.insert(stripped, id);
        }
        Ok(id)
    }
}

/// The info of session `id`, new now, at `version`.
fn info(id: SessionId, start: NewSession, version: u64) -> SessionInfo {
    let now = Utc::now().trunc_subsecs(6);
    SessionInfo { id, start, created_at: now, updated_at: now, version, origin: None }
}

/// The provenance of a reply to `request` on `api`.
pub(crate) fn provenance(
    api: Api,
    model_id: &str,
    request: &Request,
    response: &verbatim_model::Response,
    notes: Vec<String>,
) -> Provenance {
    let mut provenance = Provenance::new(model_id, api);
    provenance.thinking = request.thinking.clone();
    provenance.prefix_hash = Some(exact_key(request, request.messages.len()));
    provenance.stop_reason = response.stop_reason.clone();
    provenance.usage = response.usage.clone();
    provenance.notes = response.notes.iter().cloned().chain(notes).collect();
    provenance
}
