//! One document of an import: what it is (a request body, a messages array or an export
//! document), the session it starts, and its messages or records, decoded one at a time from
//! the document's bytes by the protocol crate's decoders.
//!
//! Only the small parts of a document are parsed whole (a body's settings, an export's
//! `session`); its messages or records are found by [`scan`](super::scan) and each is parsed
//! and decoded when asked for, so no tree of the whole document is ever built.

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};
use verbatim_model::{Dialect, JsonMap, Message, Request, SessionId};
use verbatim_protocol::{DecodeError, JsonPath, Segment, anthropic, converse};

use super::scan::{Elements, is_array, is_object, members};
use super::{IMPORT_KEY, ImportOptions, body_key, export_key, hex, key_id};
use crate::export::{ExportError, dialect_name, export_head, import_record, malformed};
use crate::{NewSession, Origin, Record, SessionInfo};

/// What is wrong with a document (the caller adds where the document is).
#[derive(Debug)]
pub(crate) enum Problem {
    /// A shape or option problem, described (starting with the JSON path where there is one).
    Detail(String),
    /// A body or message the protocol crate does not decode.
    Decode(DecodeError),
    /// An export document that does not read back.
    Export(ExportError),
}

impl From<DecodeError> for Problem {
    fn from(error: DecodeError) -> Problem {
        Problem::Decode(error)
    }
}

impl From<ExportError> for Problem {
    fn from(error: ExportError) -> Problem {
        Problem::Export(error)
    }
}

/// A document, read up to its messages or records.
pub(crate) enum Plan<'a> {
    /// A request body or a messages array: a new session and its messages.
    Body(Body<'a>),
    /// A verbatim export document: a session stored whole, keeping its id.
    Export(Export<'a>),
}

/// A request body or messages array.
pub(crate) struct Body<'a> {
    /// What the session starts with (model, system, tools, thinking, tags, and in the
    /// metadata the import's format and kept settings; [`Body::key`] adds the key).
    pub(crate) new: NewSession,
    /// The dialect its messages are in.
    pub(crate) dialect: Dialect,
    /// The messages array's bytes.
    messages: &'a [u8],
    /// Whether the document is the messages array itself (paths start at `$`), not a body.
    bare: bool,
    /// The whole document.
    document: &'a [u8],
}

impl<'a> Body<'a> {
    /// Computes the import key (only the storing pass needs it), records it in the session's
    /// metadata, and returns it (in hex) with the session id it gives.
    pub(crate) fn key(&mut self, options: &ImportOptions) -> (SessionId, String) {
        let key = body_key(self.document, self.dialect, options);
        let (id, key) = (key_id(&key), hex(&key));
        if let Some(Value::Object(import)) = self.new.metadata.get_mut(IMPORT_KEY) {
            import.insert("key".into(), key.clone().into());
        }
        (id, key)
    }

    /// The messages, each as its bytes, in order.
    pub(crate) fn messages(&self) -> Elements<'a> {
        Elements::of(self.messages)
    }

    /// Decodes message `i` (its bytes from [`Body::messages`]); errors name its place in the
    /// document.
    pub(crate) fn decode(&self, i: usize, bytes: &[u8]) -> Result<Message, DecodeError> {
        let at = if self.bare { JsonPath::root() } else { JsonPath::root().key("messages") };
        decode_message(self.dialect, at.index(i), bytes)
    }
}

/// Decodes the message `bytes` found at `at`.
fn decode_message(dialect: Dialect, at: JsonPath, bytes: &[u8]) -> Result<Message, DecodeError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| DecodeError {
        path: at.clone(),
        kind: verbatim_protocol::DecodeErrorKind::InvalidValue { message: e.to_string() },
    })?;
    match dialect {
        Dialect::Converse => converse::decode_message_value(value),
        Dialect::Anthropic => anthropic::decode_message_value(value),
    }
    .map_err(|mut error| {
        error.path = at.join(&error.path);
        error
    })
}

/// The error decoding the whole body at once would give when its settings (decoded without
/// the messages) fail with `error`: the decoders read the messages first (Converse), or right
/// after the version and `max_tokens` (Anthropic), so a bad message there is named first.
fn first_error(dialect: Dialect, messages: &[u8], error: DecodeError) -> DecodeError {
    let before_messages = match error.path.segments().first() {
        None => dialect == Dialect::Anthropic,
        Some(Segment::Key(key)) => {
            dialect == Dialect::Anthropic && (key == "anthropic_version" || key == "max_tokens")
        }
        Some(Segment::Index(_)) => false,
    };
    if before_messages {
        return error;
    }
    let at = JsonPath::root().key("messages");
    Elements::of(messages)
        .enumerate()
        .find_map(|(i, bytes)| decode_message(dialect, at.clone().index(i), bytes).err())
        .unwrap_or(error)
}

/// A verbatim export document.
pub(crate) struct Export<'a> {
    /// The session as the document describes it, marked as an import ([`Export::key`] adds
    /// the key to its metadata).
    pub(crate) info: SessionInfo,
    /// The dialect its messages are in.
    pub(crate) dialect: Dialect,
    records: &'a [u8],
    /// The whole document.
    document: &'a [u8],
}

impl<'a> Export<'a> {
    /// Computes the import key and records it in the session's metadata (`import` was found
    /// to be absent or an object); with [`ImportOptions::new_id`], the session's id is the
    /// key's.
    pub(crate) fn key(&mut self, options: &ImportOptions) {
        let key = export_key(self.document, options);
        if options.new_id {
            self.info.id = key_id(&key);
        }
        let key = Value::from(hex(&key));
        let metadata = &mut self.info.start.metadata;
        match metadata.get_mut(IMPORT_KEY) {
            Some(Value::Object(import)) => {
                import.insert("key".into(), key);
            }
            _ => {
                let import = JsonMap::from_iter([("key".to_owned(), key)]);
                metadata.insert(IMPORT_KEY.into(), Value::Object(import));
            }
        }
    }

    /// The records, each as its bytes, in order.
    pub(crate) fn records(&self) -> Elements<'a> {
        Elements::of(self.records)
    }

    /// Decodes record `i` (its bytes from [`Export::records`]).
    pub(crate) fn decode(&self, i: usize, bytes: &[u8]) -> Result<Record, ExportError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| malformed("", &JsonPath::root().key("records").index(i), e.to_string()))?;
        import_record(value, self.dialect, "", i)
    }
}

fn parse(bytes: &[u8]) -> Result<Value, Problem> {
    // The document was parsed once already: this cannot fail but for running out of memory.
    serde_json::from_slice(bytes).map_err(|e| Problem::Detail(format!("$: {e}")))
}

/// Reads `bytes`, a whole JSON document serde accepted, up to its messages or records.
pub(crate) fn plan<'a>(bytes: &'a [u8], options: &ImportOptions) -> Result<Plan<'a>, Problem> {
    if is_array(bytes) {
        let dialect = options.format.unwrap_or_else(|| detect(None, bytes));
        let model = options.model.clone().unwrap_or_default();
        return Ok(Plan::Body(body(bytes, model, dialect, None, options, bytes, true)));
    }
    if !is_object(bytes) {
        return Err(Problem::Detail(
            "$: expected a request body, a messages array, or a verbatim export document".into(),
        ));
    }
    let members = members(bytes);
    if members.iter().any(|(key, _)| key == "verbatim_export") {
        return plan_export(bytes, &members, options).map(Plan::Export);
    }
    let Some(list) = members.iter().rposition(|(key, _)| key == "messages") else {
        return Err(Problem::Detail("$: expected a request body (an object with `messages`), a messages array, or a verbatim export document (`verbatim_export`)".into()));
    };
    let messages = &bytes[members[list].1.clone()];
    let array = is_array(messages);
    // Everything but the messages, in document order (a repeated key keeps its first place and
    // its last value, as a parser does); the messages are left for later when they are an
    // array, else the decoder says what they are.
    let mut head = JsonMap::new();
    for (key, range) in &members {
        let value = if key == "messages" { Value::Null } else { parse(&bytes[range.clone()])? };
        head.insert(key.clone(), value);
    }
    let placeholder = if array { Value::Array(Vec::new()) } else { parse(messages)? };
    head.insert("messages".into(), placeholder);
    let body_model = take_model(&mut head).map_err(Problem::Detail)?;
    let dialect = options.format.unwrap_or_else(|| detect(Some(&head), messages));
    let request = match dialect {
        Dialect::Converse => converse::decode_request_value(Value::Object(head)),
        Dialect::Anthropic => anthropic::decode_request_value(Value::Object(head)),
    }
    .map_err(|error| if array { first_error(dialect, messages, error) } else { error })?;
    let model = match (options.model.clone().or(body_model), dialect) {
        (Some(model), _) => {
            verbatim_model::check_model_id(&model)
                .map_err(|e| Problem::Detail(format!("$.modelId: {e}")))?;
            model
        }
        (None, Dialect::Converse) => String::new(),
        (None, Dialect::Anthropic) => {
            return Err(Problem::Detail(
                "no model: an Anthropic Messages body names none (InvokeModel takes it from the URL); pass --model MODEL_ID".into(),
            ));
        }
    };
    let messages = if array { messages } else { b"[]" };
    Ok(Plan::Body(body(bytes, model, dialect, Some(request), options, messages, false)))
}

/// A body or messages array (the document `bytes`) read up to its messages: the session it
/// starts has the body's system prompt, tools and thinking, and in the metadata (`import`) the
/// dialect and the settings the session has no field for.
fn body<'a>(
    bytes: &'a [u8],
    model: String,
    dialect: Dialect,
    request: Option<Request>,
    options: &ImportOptions,
    messages: &'a [u8],
    bare: bool,
) -> Body<'a> {
    let mut new = NewSession::new(model);
    new.tags = options.tags.clone();
    let mut import = JsonMap::new();
    import.insert("format".into(), dialect_name(dialect).into());
    if let Some(mut request) = request {
        new.system = request.system.take();
        new.tools = request.tools.take();
        new.thinking = request.thinking.take();
        if request != Request::default() {
            let mut settings = json!(request);
            if let Value::Object(map) = &mut settings {
                map.shift_remove("messages");
            }
            import.insert("settings".into(), settings);
        }
    }
    new.metadata.insert(IMPORT_KEY.into(), Value::Object(import));
    Body { new, dialect, messages, bare, document: bytes }
}

fn plan_export<'a>(
    bytes: &'a [u8],
    members: &[(String, std::ops::Range<usize>)],
    options: &ImportOptions,
) -> Result<Export<'a>, Problem> {
    let mut head = JsonMap::new();
    let mut records: &[u8] = b"";
    for (key, range) in members {
        if key == "records" {
            records = &bytes[range.clone()];
            head.insert(key.clone(), Value::Null);
        } else {
            head.insert(key.clone(), parse(&bytes[range.clone()])?);
        }
    }
    if options.model.is_some() {
        return Err(Problem::Detail("--model does not apply to a verbatim export document (it names its model in `session.model`)".into()));
    }
    if let Some(format) = options.format {
        let wanted = dialect_name(format);
        let found = head.get("dialect").and_then(Value::as_str).unwrap_or("");
        if found != wanted {
            return Err(Problem::Detail(format!(
                "dialect: the export document is in {found:?}, not {wanted} as --format says"
            )));
        }
    }
    let (dialect, mut info) = export_head(&mut head, "")?;
    if !is_array(records) {
        let records = JsonPath::root().key("records");
        return Err(malformed("", &records, "expected an array").into());
    }
    info.origin.get_or_insert(Origin::Import);
    for tag in &options.tags {
        if !info.start.tags.contains(tag) {
            info.start.tags.push(tag.clone());
        }
    }
    if info.start.metadata.get(IMPORT_KEY).is_some_and(|import| !import.is_object()) {
        return Err(Problem::Detail(format!(
            "session.metadata.{IMPORT_KEY}: expected an object (an import records its key there)"
        )));
    }
    Ok(Export { info, dialect, records, document: bytes })
}

/// Takes the model a body names (`modelId`, as boto3's `converse` keywords do, or `model`)
/// out of it: neither dialect's request body carries one.
fn take_model(map: &mut JsonMap) -> Result<Option<String>, String> {
    let mut model: Option<String> = None;
    for key in ["modelId", "model"] {
        let Some(value) = map.shift_remove(key) else { continue };
        let Value::String(name) = value else {
            return Err(format!("{key}: expected a string (a model id)"));
        };
        if let Some(first) = &model
            && *first != name
        {
            return Err(format!("{key}: names {name:?} but `modelId` names {first:?}"));
        }
        model = Some(name);
    }
    Ok(model)
}

/// The dialect of a body or messages array with no format given: Anthropic when the body has
/// an `anthropic_version` or a top-level `max_tokens`, or a message's content is a string or
/// holds typed blocks (`{"type": "..."}`); Converse otherwise. `messages` is the messages
/// array's bytes (each message is looked at without being parsed into a tree).
fn detect(head: Option<&JsonMap>, messages: &[u8]) -> Dialect {
    if head.is_some_and(|h| h.contains_key("anthropic_version") || h.contains_key("max_tokens")) {
        return Dialect::Anthropic;
    }
    let anthropic = |message: &[u8]| {
        let mut de = serde_json::Deserializer::from_slice(message);
        MessageProbe.deserialize(&mut de).unwrap_or(false)
    };
    if Elements::of(messages).any(anthropic) { Dialect::Anthropic } else { Dialect::Converse }
}

/// Reads a message and says whether it looks like Anthropic's: `content` a string, or an
/// array holding an object whose `type` is a string. Anything else is skipped unread.
struct MessageProbe;
/// Reads `content`.
struct ContentProbe;
/// Reads one content block.
struct BlockProbe;
/// Reads a value: whether it is a string.
struct IsString;
/// Reads a key: whether it is this one.
struct IsKey(&'static str);

/// The visitor methods of a probe that answers `false` for every other kind of value.
macro_rules! otherwise_false {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
    };
}

fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<bool, A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(false)
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<bool, A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(false)
}

impl<'de> DeserializeSeed<'de> for MessageProbe {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MessageProbe {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a message")
    }
    otherwise_false!();
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        skip_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(content) = map.next_key_seed(IsKey("content"))? {
            if content {
                found |= map.next_value_seed(ContentProbe)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

impl<'de> DeserializeSeed<'de> for ContentProbe {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ContentProbe {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("message content")
    }
    otherwise_false!();
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(typed) = seq.next_element_seed(BlockProbe)? {
            found |= typed;
        }
        Ok(found)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        skip_map(map)
    }
}

impl<'de> DeserializeSeed<'de> for BlockProbe {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BlockProbe {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a content block")
    }
    otherwise_false!();
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        skip_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(is_type) = map.next_key_seed(IsKey("type"))? {
            if is_type {
                found |= map.next_value_seed(IsString)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

impl<'de> DeserializeSeed<'de> for IsString {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IsString {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }
    otherwise_false!();
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(true)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        skip_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        skip_map(map)
    }
}

impl<'de> DeserializeSeed<'de> for IsKey {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for IsKey {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}
