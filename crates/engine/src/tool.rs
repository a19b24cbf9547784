//! Tools the model may call: a name, a description, a JSON schema and an async `call`.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;
use verbatim_model::{ToolResultBlock, ToolResultContent, ToolSpec};

/// What a tool returns.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolOutput {
    /// Text.
    Text(String),
    /// A JSON value, sent as its JSON text: every API and model reads that, and a session
    /// stored on one API can be continued on the other (Anthropic Messages has no JSON block).
    Json(Value),
}

impl From<String> for ToolOutput {
    fn from(text: String) -> ToolOutput {
        ToolOutput::Text(text)
    }
}

impl From<&str> for ToolOutput {
    fn from(text: &str) -> ToolOutput {
        ToolOutput::Text(text.to_owned())
    }
}

impl From<Value> for ToolOutput {
    fn from(value: Value) -> ToolOutput {
        ToolOutput::Json(value)
    }
}

/// What the model reads when a tool returns nothing: Bedrock refuses blank tool-result text.
pub const EMPTY_OUTPUT: &str = "(no output)";

impl ToolOutput {
    /// The tool result content this output becomes.
    pub fn into_content(self) -> ToolResultContent {
        let block = match self {
            ToolOutput::Json(json) => ToolResultBlock::Text { text: json.to_string() },
            ToolOutput::Text(text) if text.trim().is_empty() => {
                ToolResultBlock::Text { text: EMPTY_OUTPUT.to_owned() }
            }
            ToolOutput::Text(text) => ToolResultBlock::Text { text },
        };
        ToolResultContent::Blocks(vec![block])
    }
}

/// A tool's failure, sent to the model as an error result with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToolError(pub String);

impl ToolError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> ToolError {
        ToolError(message.into())
    }
}

/// A tool the engine runs when the model asks for it.
#[async_trait]
pub trait Tool: Send + Sync {
    /// The name the model calls it by.
    fn name(&self) -> &str;
    /// What it does, for the model.
    fn description(&self) -> &str;
    /// The JSON schema of its input.
    fn input_schema(&self) -> Value;
    /// Whether running it twice with the same input does no harm. A call that started but
    /// never finished (a crash while it ran) is run again on resume only when this is true;
    /// otherwise the model is told it was interrupted.
    fn idempotent(&self) -> bool {
        false
    }
    /// Runs it.
    async fn call(&self, input: Value) -> Result<ToolOutput, ToolError>;
}

/// The spec of a tool, as sent in the request.
pub(crate) fn spec(tool: &dyn Tool) -> ToolSpec {
    ToolSpec {
        name: tool.name().to_owned(),
        description: Some(tool.description().to_owned()),
        input_schema: tool.input_schema(),
        strict: None,
        unmapped: Default::default(),
    }
}

/// A tool made of a closure over typed input: the model's JSON input is deserialized into
/// `I` (a failure is reported to the model as an error result).
pub struct FnTool<I, F> {
    name: String,
    description: String,
    schema: Value,
    idempotent: bool,
    run: F,
    input: PhantomData<fn(I)>,
}

impl<I, F> fmt::Debug for FnTool<I, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnTool").field("name", &self.name).finish_non_exhaustive()
    }
}

impl<I, F, Fut, O> FnTool<I, F>
where
    I: DeserializeOwned + Send + 'static,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, ToolError>> + Send + 'static,
    O: Into<ToolOutput>,
{
    /// A tool named `name` that runs `run` on its typed input.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        schema: Value,
        run: F,
    ) -> FnTool<I, F> {
        FnTool {
            name: name.into(),
            description: description.into(),
            schema,
            idempotent: false,
            run,
            input: PhantomData,
        }
    }

    /// Declares the tool idempotent (see [`Tool::idempotent`]).
    pub fn idempotent(mut self) -> FnTool<I, F> {
        self.idempotent = true;
        self
    }

    /// The tool, shareable.
    pub fn shared(self) -> Arc<dyn Tool> {
        Arc::new(self)
    }
}

#[async_trait]
impl<I, F, Fut, O> Tool for FnTool<I, F>
where
    I: DeserializeOwned + Send + 'static,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, ToolError>> + Send + 'static,
    O: Into<ToolOutput>,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn input_schema(&self) -> Value {
        self.schema.clone()
    }

    fn idempotent(&self) -> bool {
        self.idempotent
    }

    async fn call(&self, input: Value) -> Result<ToolOutput, ToolError> {
        let input: I = serde_json::from_value(input)
            .map_err(|e| ToolError::new(format!("invalid input for {}: {e}", self.name)))?;
        (self.run)(input).await.map(Into::into)
    }
}
