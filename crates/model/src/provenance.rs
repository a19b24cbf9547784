//! Where an assistant message came from, recorded beside it in the history.

use serde::{Deserialize, Serialize};

use crate::{Message, StopReason, ThinkingConfig, Usage};

/// The Bedrock Runtime API a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `Converse` / `ConverseStream`: Bedrock's own JSON.
    Converse,
    /// `InvokeModel` / `InvokeModelWithResponseStream` with an Anthropic Messages body.
    InvokeModel,
    /// The Anthropic Messages API at `/anthropic/v1/messages` (on `bedrock-runtime` or
    /// `bedrock-mantle`): the model in the body, the version and betas in headers, streams
    /// as server-sent events.
    Messages,
}

impl Api {
    /// Every surface, in the order they are named on the command line.
    pub const ALL: [Api; 3] = [Api::Converse, Api::InvokeModel, Api::Messages];

    /// The name used on the command line and in stored records: `converse`, `invoke` or
    /// `messages`.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Converse => "converse",
            Api::InvokeModel => "invoke",
            Api::Messages => "messages",
        }
    }

    /// The JSON dialect the surface's bodies are written in: Converse's own, or Anthropic
    /// Messages (InvokeModel's body and the Messages API's are the same conversation JSON).
    pub fn dialect(self) -> crate::Dialect {
        match self {
            Api::Converse => crate::Dialect::Converse,
            Api::InvokeModel | Api::Messages => crate::Dialect::Anthropic,
        }
    }
}

/// What produced an assistant message: the model, the API surface and the settings it was
/// called with. Thinking blocks are bound to the model (and on newer models to the
/// conversation prefix) that produced them, so the assembler reads this to decide which
/// earlier thinking may be sent back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The model id or inference-profile id/ARN the request named.
    pub model_id: String,
    /// The API surface the message came back from.
    pub api: Api,
    /// The thinking setting of the request, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingConfig>,
    /// The region or inference profile the request went to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The hash of the request prefix (system, tools, earlier messages) the message was
    /// produced after, as computed by the assembler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_hash: Option<String>,
    /// Why the model stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    /// Token usage of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// What the reply carried that this version does not read, kept raw in the message or
    /// here (see [`Response::notes`](crate::Response::notes)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The reply's `context_management` as received (its `applied_edits`: what server
    /// compaction and context editing did to the request), when it carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_management: Option<serde_json::Value>,
}

impl Provenance {
    /// Provenance naming only the model and API.
    pub fn new(model_id: impl Into<String>, api: Api) -> Provenance {
        Provenance {
            model_id: model_id.into(),
            api,
            thinking: None,
            region: None,
            prefix_hash: None,
            stop_reason: None,
            usage: None,
            notes: Vec::new(),
            context_management: None,
        }
    }
}

/// A message of a stored conversation with what is known about where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryMessage {
    /// The message exactly as stored.
    pub message: Message,
    /// For assistant messages: the model and settings that produced it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

impl From<Message> for HistoryMessage {
    fn from(message: Message) -> HistoryMessage {
        HistoryMessage { message, provenance: None }
    }
}
