//! The rules the validator checks, as data: a stable id, the section of the rule set it comes
//! from, the text Bedrock answers when it is broken, its cause and what verbatim does about it.
//! [`explain`] maps an error message back to its rules ([`crate::explain`] to its causes).

/// What one rule is about.
#[derive(Debug)]
pub struct RuleInfo {
    /// The stable id, e.g. `tool.result_missing`.
    pub id: &'static str,
    /// The section of the Bedrock rule set, e.g. `R3.1`.
    pub spec: &'static str,
    /// What Bedrock answers when the rule is broken. `{at}` stands for the place
    /// (`messages.2.content.0`), `{detail}` for specifics such as ids or counts.
    pub bedrock: &'static str,
    /// Why it happens.
    pub cause: &'static str,
    /// What verbatim does: what strict validation reports and what repair changes.
    pub action: &'static str,
    /// Lower-case fragments of Bedrock or Anthropic error messages that identify the rule.
    patterns: &'static [&'static str],
}

impl RuleInfo {
    /// The lower-case fragments of error messages that identify the rule.
    pub(crate) fn patterns(&self) -> &'static [&'static str] {
        self.patterns
    }
}

macro_rules! rules {
    ($(
        $(#[$doc:meta])*
        $variant:ident {
            id: $id:literal,
            spec: $spec:literal,
            bedrock: $bedrock:literal,
            cause: $cause:literal,
            action: $action:literal,
            patterns: [$($pattern:literal),* $(,)?] $(,)?
        }
    ),* $(,)?) => {
        /// A rule of the Bedrock request rule set. Its [`id`](Rule::id) is stable: stored
        /// repairs and scripts refer to rules by it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Rule {
            $($(#[$doc])* $variant,)*
        }

        impl Rule {
            /// Every rule, in the order of the rule set.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant,)*];

            /// What the rule is about.
            pub fn info(self) -> &'static RuleInfo {
                match self {
                    $(Rule::$variant => &RuleInfo {
                        id: $id,
                        spec: $spec,
                        bedrock: $bedrock,
                        cause: $cause,
                        action: $action,
                        patterns: &[$($pattern),*],
                    },)*
                }
            }
        }
    };
}

rules! {
    /// A tagged union (content block, source, tool, tool choice, …) with other than one member.
    Union {
        id: "shape.union",
        spec: "R1.1",
        bedrock: "Invalid number of parameters set for tagged union structure {at}. {detail}",
        cause: "A block carries two members (or none), e.g. reasoningText and redactedContent together, or text and image in one content block.",
        action: "Reported with the members found and allowed. Not repaired: which member was meant cannot be known.",
        patterns: ["tagged union", "unionstructure", "does not match any of the expected tags"],
    },
    /// A key the API does not define.
    UnknownKey {
        id: "shape.unknown_key",
        spec: "R1.1",
        bedrock: "Malformed input request: #/{at}: extraneous key [{detail}] is not permitted, please reformat your input and try again.",
        cause: "Bedrock accepts a strict subset of fields per block; keys from another dialect or a newer SDK are rejected.",
        action: "Repair removes the key, except inside thinking blocks, which are never changed.",
        patterns: ["extraneous key", "is not permitted", "unknown parameter", "extra inputs are not permitted"],
    },
    /// A body the codec cannot read: wrong types, missing required fields, unknown roles.
    Malformed {
        id: "shape.malformed",
        spec: "R1",
        bedrock: "Malformed input request: {detail}, please reformat your input and try again.",
        cause: "A field has the wrong type or a required field is missing.",
        action: "Reported with its path. Not repaired.",
        patterns: ["malformed input request", "field required", "required key", "failed to satisfy constraint"],
    },
    /// A key given twice in one JSON object.
    DuplicateKey {
        id: "shape.duplicate_key",
        spec: "R1",
        bedrock: "",
        cause: "A body built by joining text or merging objects writes a key twice, e.g. {\"text\": \"first\", \"text\": \"second\"}. JSON parsers differ: serde_json (and so verbatim) keeps the last value, others keep the first or refuse the body.",
        action: "A warning naming the path of the repeat. Which value Bedrock's parser keeps, or whether it refuses the body, is not known (no recording shows it), so it is not an error. Not repaired: the body is read as verbatim reads it.",
        patterns: [],
    },
    /// The history holds something the chosen API cannot express.
    Unrepresentable {
        id: "shape.unrepresentable",
        spec: "R5",
        bedrock: "{detail}",
        cause: "A block or setting exists in one dialect only (Converse guardContent or video on InvokeModel, tool choice none on Converse, redacted thinking recorded on the other API).",
        action: "Reported; never dropped silently. Send on the API the history came from.",
        patterns: [],
    },
    /// A text block that is empty or only whitespace.
    BlankText {
        id: "text.blank",
        spec: "R1.2",
        bedrock: "The text field in the ContentBlock object at {at} is blank. Add text to the text field, and try again.",
        cause: "Empty or whitespace-only text, often a model's own \"\\n\" reply replayed, or an emptied message.",
        action: "Repair drops the block (an emptied message is dropped and pairing re-checked); blank system text is dropped too.",
        patterns: ["is blank", "text content blocks must be non-empty", "text content blocks must contain non-whitespace text", "valid min length: 1"],
    },
    /// A message with no content blocks.
    EmptyMessage {
        id: "message.empty",
        spec: "R2.4",
        bedrock: "The content field in the Message object at {at} is empty. Add a ContentBlock object to the content field and try again.",
        cause: "A message emptied by filtering, or an assistant turn stored with no blocks.",
        action: "Repair drops the message and re-checks alternation and tool pairing.",
        patterns: ["is empty. add a contentblock", "all messages must have non-empty content"],
    },
    /// No messages at all.
    NoMessages {
        id: "messages.none",
        spec: "R2.2",
        bedrock: "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
        cause: "The request has an empty messages array.",
        action: "Reported. Not repaired.",
        patterns: [],
    },
    /// Too many messages.
    TooManyMessages {
        id: "messages.too_many",
        spec: "§8",
        bedrock: "messages: {detail}",
        cause: "More than 100,000 messages in one request.",
        action: "Reported. Trim whole turns before sending.",
        patterns: [],
    },
    /// A role the model does not take in `messages`.
    Role {
        id: "roles.unknown",
        spec: "R2.1",
        bedrock: "Malformed input request: {at}.role: {detail}",
        cause: "A `system` (or other) role inside messages; Claude takes instructions in the top-level system field.",
        action: "Reported. Not repaired.",
        patterns: ["unknown role"],
    },
    /// The first message is not a user message.
    FirstUser {
        id: "roles.first_user",
        spec: "R2.2",
        bedrock: "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
        cause: "History trimmed or compacted so that an assistant turn comes first. On Converse, Claude Sonnet 4.5 answered 200 to such a history (recorded), and the reports of the refusal name no model.",
        action: "On Converse a warning, left in place. On InvokeModel an error (the Anthropic text), which repair fixes by dropping the leading assistant message.",
        patterns: ["must start with a user message", "first message must use the \"user\" role"],
    },
    /// Two neighbouring messages with the same role.
    Alternation {
        id: "roles.alternate",
        spec: "R2.3",
        bedrock: "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.",
        cause: "Two user messages in a row (a tool result followed by injected text) or two assistant messages (reasoning and tool use stored apart). Bedrock accepted consecutive assistant messages in 2026 recordings; on InvokeModel the Anthropic Messages API merges consecutive turns, and on Converse some non-Claude models accept two user messages.",
        action: "An error for two user messages on Converse to Claude (the reported refusal), which repair fixes by merging them with tool results first; a warning, left in place, for two user messages on InvokeModel or to a model that is not Claude; a warning for two assistant messages (repair merges them), except an error when the second carries thinking (merging would put thinking after other blocks).",
        patterns: ["must alternate between user and assistant", "roles must alternate"],
    },
    /// A final assistant message on a model that forbids prefill.
    Prefill {
        id: "prefill.unsupported",
        spec: "R2.5",
        bedrock: "This model does not support assistant message prefill. The conversation must end with a user message.",
        cause: "The request ends with an assistant message (a prefill, or a reasoning-only reply stored as a turn) and the model is Opus/Sonnet 4.6 or newer.",
        action: "Repair drops a final assistant message that holds only thinking (a reasoning-only turn); any other prefill stays an error.",
        patterns: ["does not support assistant message prefill"],
    },
    /// A final assistant message ending in whitespace.
    PrefillWhitespace {
        id: "prefill.trailing_whitespace",
        spec: "R2.5",
        bedrock: "final assistant content cannot end with trailing whitespace",
        cause: "The prefill text ends with a space or newline.",
        action: "Repair trims the trailing whitespace of that text block (never of thinking).",
        patterns: ["cannot end with trailing whitespace"],
    },
    /// A block in a message whose role may not carry it.
    BlockRole {
        id: "content.role",
        spec: "R2.6",
        bedrock: "{detail}",
        cause: "Images and documents belong in user messages, tool use in assistant messages, tool results in user messages, reasoning in assistant messages.",
        action: "Repair drops reasoning found in a user message; the other cases stay errors.",
        patterns: ["user messages cannot contain reasoning content", "you can only include images and documents if the role is user"],
    },
    /// A tool use without its result in the next message.
    ResultMissing {
        id: "tool.result_missing",
        spec: "R3.1",
        bedrock: "The model returned the following errors: {at}: `tool_use` ids were found without `tool_result` blocks immediately after: {detail}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
        cause: "A crash or cancellation between a tool call and its result, or parallel results split across turns.",
        action: "Repair adds an error result (\"interrupted before completion\") first in the next user message, or as a new user message.",
        patterns: ["ids were found without `tool_result`", "ids were found without tool_result", "expected toolresult blocks at", "did not find"],
    },
    /// A tool result whose id no tool use in the previous message has.
    ResultUnexpected {
        id: "tool.result_unexpected",
        spec: "R3.2",
        bedrock: "The model returned the following errors: {at}: unexpected `tool_use_id` found in `tool_result` blocks: {detail}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
        cause: "A stale result from a retried turn, or a result whose tool use was trimmed away.",
        action: "Repair drops the result.",
        patterns: ["unexpected `tool_use_id`", "unexpected tool_use_id"],
    },
    /// More results than uses, or the same result twice.
    ResultCount {
        id: "tool.result_count",
        spec: "R3.3",
        bedrock: "The number of toolResult blocks at {at} exceeds the number of toolUse blocks of previous turn.",
        cause: "A result stored twice (a retried append) or a stale result beside a fresh one.",
        action: "Repair keeps the first result for each id and drops the others.",
        patterns: ["exceeds the number of tooluse blocks"],
    },
    /// Tool results after other blocks in their message.
    ResultsFirst {
        id: "tool.results_first",
        spec: "R3.4",
        bedrock: "Did not find {detail} tool_result block(s) at the beginning of this message. Messages following tool_use blocks must begin with a matching number of tool_result blocks.",
        cause: "Text written before the tool results in the same user message.",
        action: "Repair moves the results to the front, keeping their order and the order of the rest.",
        patterns: ["at the beginning of this message", "must begin with a matching number of tool_result blocks"],
    },
    /// Tool results beside other blocks in one user message, to a model that takes them alone.
    ResultsAlone {
        id: "tool.results_alone",
        spec: "R3.4",
        bedrock: "{at}: Conversation blocks and tool result blocks cannot be provided in the same turn.",
        cause: "Text, an image or a document in the user message that carries tool results, sent on Converse to a model that takes the results alone: a framework that merged the next user message into the results' turn.",
        action: "Reported: an error on the models recorded refusing it (Llama 4, Claude 3 Opus), a warning where it is not known. Not repaired.",
        patterns: ["conversation blocks and tool result blocks cannot be provided in the same turn"],
    },
    /// A tool use id used twice in the request.
    DuplicateToolUseId {
        id: "tool.use_id_duplicate",
        spec: "R3.5",
        bedrock: "The toolUse blocks at {at} contain duplicate Ids: {detail}",
        cause: "A provider that reuses ids across turns, or the same call stored twice.",
        action: "Reported. Not repaired: tool ids sit in signed turns.",
        patterns: ["contain duplicate ids", "ids must be unique"],
    },
    /// History holds tool blocks but the request declares no tools.
    ToolConfigMissing {
        id: "tool.config_missing",
        spec: "R3.6",
        bedrock: "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
        cause: "Tools were removed for this call (a summary, tool choice none) while the history holds tool use.",
        action: "Repair declares the session's recorded tool specs, or minimal specs named after the tools in the history.",
        patterns: ["toolconfig field must be defined"],
    },
    /// Forced tool choice where the model or the thinking setting forbids it.
    ForcedToolChoice {
        id: "tool.choice_forced",
        spec: "R3.7",
        bedrock: "The model returned the following errors: Thinking may not be enabled when tool_choice forces tool use.",
        cause: "tool_choice any/tool with manual thinking (or on models that reject forced tool use).",
        action: "Repair turns thinking off for this request at a turn boundary when the model allows; otherwise it sets tool choice to auto.",
        patterns: ["tool_choice forces tool use", "forced tool use"],
    },
    /// Tool choice naming a tool that is not declared.
    ToolChoiceUnknown {
        id: "tool.choice_unknown",
        spec: "R1.14",
        bedrock: "{detail}",
        cause: "tool choice names a tool that toolConfig does not declare.",
        action: "Reported. Not repaired.",
        patterns: [],
    },
    /// A tool name that breaks the length or pattern limit.
    ToolName {
        id: "tool.name_invalid",
        spec: "R1.6",
        bedrock: "1 validation error detected: Value '{detail}' at '{at}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+",
        cause: "Names with spaces, dots or more than 64 characters, often from another provider or an MCP server.",
        action: "Reported. Not repaired: names in history must match the declared tools.",
        patterns: ["tooluse.name", "toolspec.name"],
    },
    /// A tool use id that breaks the length or pattern limit.
    ToolUseId {
        id: "tool.use_id_invalid",
        spec: "R1.6",
        bedrock: "1 validation error detected: Value '{detail}' at '{at}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.:-]+",
        cause: "Ids from other providers: OpenAI call ids of about 90 characters, ids with `|`, empty ids.",
        action: "Reported. Not repaired.",
        patterns: ["tooluseid"],
    },
    /// Tool input that is not a JSON object.
    ToolInput {
        id: "tool.input_not_object",
        spec: "R1.6",
        bedrock: "The format of the value at {at} is invalid. Provide a json object for the field and try again.",
        cause: "Tool input stored as a JSON string or array instead of an object.",
        action: "Reported. Not repaired: tool inputs are never rebuilt.",
        patterns: [],
    },
    /// A tool specification Bedrock rejects.
    ToolSpec {
        id: "tool.spec_invalid",
        spec: "R1.13",
        bedrock: "{detail}",
        cause: "An empty tools list, an input schema that is not a JSON object with type object, or an empty description.",
        action: "Repair removes an empty description; other cases are reported.",
        patterns: ["inputschema.json is invalid", "toolconfig.tools, value: 0", "tools, value: 0"],
    },
    /// A tool result Bedrock rejects.
    ToolResultContent {
        id: "tool_result.content",
        spec: "R1.7",
        bedrock: "{detail}",
        cause: "An error result with no content, an empty content array, empty text, or json that is not an object.",
        action: "Repair puts \"(no output)\" in empty results and turns non-object json into text holding the same JSON.",
        patterns: ["cannot be empty when status value is error", "toolresult.content", "provide a json object"],
    },
    /// `toolResult.status` on a model that does not take it.
    ToolResultStatus {
        id: "tool_result.status",
        spec: "R1.7",
        bedrock: "This model doesn't support the status field. Remove status and try again.",
        cause: "status is only documented for Claude 3/4 and Nova; models the capability table does not know may or may not take it (Llama 4 Maverick, Pixtral Large and Kimi K2 answered 200).",
        action: "An error, which repair fixes by removing the field, only where the capability table knows the model refuses it; on an unknown model a warning, and the field is left in place.",
        patterns: ["status field"],
    },
    /// A thinking mode the model does not accept.
    ThinkingMode {
        id: "thinking.mode",
        spec: "R4.1",
        bedrock: "The model returned the following errors: thinking: {detail}",
        cause: "Manual thinking on adaptive-only models, adaptive on older ones, disabling thinking where it is always on, or thinking on a model without it.",
        action: "Repair picks the mode the model accepts: adaptive for enabled on adaptive-only models, enabled with the minimum budget for adaptive on manual-only models, no thinking on models without it.",
        patterns: ["adaptive thinking", "thinking.type", "does not support thinking"],
    },
    /// budget_tokens below 1024 or not below max_tokens.
    ThinkingBudget {
        id: "thinking.budget",
        spec: "R4.2",
        bedrock: "The model returned the following errors: {detail}",
        cause: "budget_tokens under 1024, or max_tokens not greater than budget_tokens without interleaved thinking.",
        action: "Repair raises the budget to 1024 and lowers it below max_tokens when max_tokens allows; otherwise an error remains.",
        patterns: ["budget_tokens: input should be greater than or equal to 1024", "must be greater than `thinking.budget_tokens`", "must be greater than thinking.budget_tokens"],
    },
    /// max_tokens missing, below 1 or above the model maximum.
    MaxTokens {
        id: "inference.max_tokens",
        spec: "R4.2",
        bedrock: "{detail}",
        cause: "maxTokens missing, below 1, or above the model's output maximum.",
        action: "Repair lowers max_tokens to the model maximum; a missing value is a warning on Converse and an error on InvokeModel.",
        patterns: ["maxtokens", "max_tokens: field required", "valid min value: 1"],
    },
    /// temperature, top_p or top_k set with thinking on.
    ThinkingSampling {
        id: "thinking.sampling",
        spec: "R4.4",
        bedrock: "The model returned the following errors: {detail}",
        cause: "Sampling parameters kept from a call without thinking.",
        action: "Repair removes them (temperature 1 is allowed and kept).",
        patterns: ["may only be set to 1 when thinking is enabled", "must be unset when thinking is enabled"],
    },
    /// Sampling parameters a model no longer takes.
    SamplingDeprecated {
        id: "inference.deprecated",
        spec: "R4.4",
        bedrock: "The model returned the following errors: {detail} is deprecated for this model.",
        cause: "temperature, top_p or top_k kept from an older model's settings; Opus 4.7 and 4.8 refuse them with 400 (the Anthropic SDK 2.x no longer types them).",
        action: "An error, repaired by removing the parameter, for the models Bedrock was recorded refusing them (Opus 4.7, 4.8); a warning for the rest of that generation, where nothing is recorded.",
        patterns: ["is deprecated for this model"],
    },
    /// Sampling parameters out of range.
    Sampling {
        id: "inference.range",
        spec: "R1.15",
        bedrock: "{detail}",
        cause: "temperature or top_p outside [0, 1], or an empty stop sequence.",
        action: "Repair clamps into range and drops empty stop sequences.",
        patterns: ["inferenceconfig.temperature", "inferenceconfig.topp", "stopsequences"],
    },
    /// A Converse request member outside the API model's constraints.
    RequestField {
        id: "request.field",
        spec: "R1.15",
        bedrock: "{detail}",
        cause: "A performanceConfig latency or service tier that does not exist (a typo, another provider's name), request metadata with too many entries or characters outside its pattern (user e-mails, JSON), too many response field paths.",
        action: "An error on every model: the constraints are the API's. Not repaired.",
        patterns: ["at 'performanceconfig", "at 'servicetier", "at 'requestmetadata", "at 'additionalmodelresponsefieldpaths"],
    },
    /// A structured-output JSON Schema outside the subset the model compiles.
    OutputSchema {
        id: "output.schema",
        spec: "R1.15",
        bedrock: "The model returned the following errors: output_config.format.schema: {detail}",
        cause: "A schema generated from a type with bounds (Pydantic, Zod: `maxItems`, `minItems` above 1, `minimum`/`maximum`) sent as structured output; Claude compiles only a subset of JSON Schema.",
        action: "An error on Claude for the bounds Bedrock was recorded refusing (maxItems, minItems other than 0 or 1, number bounds); a warning for the rest of the documented limits and on other models. Not repaired: dropping a bound changes what was asked.",
        patterns: ["format.schema: for '", "values other than 0 or 1 are not supported", "too many parameters with union types"],
    },
    /// An assistant message with thinking that does not start with it.
    ThinkingFirst {
        id: "thinking.first_block",
        spec: "R4.5",
        bedrock: "{at}: If an assistant message contains any thinking blocks, the first block must be thinking or redacted_thinking. Found {detail}.",
        cause: "A converter rebuilt the message with text or tool use before the reasoning.",
        action: "Never reordered. Repair drops the thinking of such a message when it is not the message the request continues from; otherwise an error remains.",
        patterns: ["the first block must be thinking"],
    },
    /// An assistant message whose last block is thinking.
    ThinkingLast {
        id: "thinking.last_block",
        spec: "R4.5",
        bedrock: "The model returned the following errors: {at}: The final block in an assistant message cannot be `thinking`.",
        cause: "A reasoning-only reply (stopped at max_tokens or by a cancelled stream) stored as a turn.",
        action: "Repair drops a reasoning-only assistant message; in other messages it drops the thinking when the message is not the one the request continues from.",
        patterns: ["final block in an assistant message cannot be"],
    },
    /// Thinking on, and the assistant message the request continues from does not start with thinking.
    ThinkingFinalAssistant {
        id: "thinking.final_assistant",
        spec: "R4.6",
        bedrock: "The model returned the following errors: {at}.type: Expected `thinking` or `redacted_thinking`, but found `{detail}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking",
        cause: "Thinking switched on in the middle of a tool loop, thinking dropped from the turn, or a text prefill with thinking on.",
        action: "Repair keeps the loop's thinking setting until the next user turn (thinking off for this request) when the model allows it; otherwise an error remains.",
        patterns: ["expected `thinking` or `redacted_thinking`", "expected thinking or redacted_thinking", "must start with a thinking block"],
    },
    /// Thinking off, and the final assistant message carries thinking.
    ThinkingWhileDisabled {
        id: "thinking.final_while_disabled",
        spec: "R4.6",
        bedrock: "The model returned the following errors: {at}: When thinking is disabled, an `assistant` message in the final position cannot contain `thinking`. To use thinking blocks, enable `thinking` in your request.",
        cause: "A prefill that carries thinking sent with thinking off.",
        action: "Repair drops the thinking blocks of that final message.",
        patterns: ["when thinking is disabled"],
    },
    /// The thinking setting changed inside a tool loop.
    ThinkingToggle {
        id: "thinking.toggle_in_tool_loop",
        spec: "R4.7",
        bedrock: "The model returned the following errors: {at}: When thinking is disabled, an `assistant` message in the final position cannot contain `thinking`. To use thinking blocks, enable `thinking` in your request.",
        cause: "Thinking turned off (or its budget changed) while the request continues an unfinished tool loop; a tool loop is one assistant turn.",
        action: "Repair keeps the setting the loop started with until the next user turn, when that setting is known.",
        patterns: ["one thinking configuration per assistant turn"],
    },
    /// Thinking without a signature.
    ThinkingUnsigned {
        id: "thinking.unsigned",
        spec: "R1.8",
        bedrock: "The model returned the following errors: {at}.thinking.signature: Field required",
        cause: "A stream aborted before the signature delta, or reasoning from a model that does not sign it (DeepSeek, tag-extracted).",
        action: "Repair drops the block and the other thinking of its message (never turned into text).",
        patterns: ["signature: field required", "thinking.signature"],
    },
    /// Thinking produced by another model.
    ThinkingForeign {
        id: "thinking.foreign_model",
        spec: "R4.9",
        bedrock: "The model returned the following errors: {at}: Invalid signature in thinking block",
        cause: "The model changed between turns; signatures are bound to the model that produced them.",
        action: "Repair drops thinking produced by another model (never turned into text).",
        patterns: ["invalid signature in thinking block", "invalid `signature` in `thinking` block"],
    },
    /// A signature sent back to a model whose reasoning is unsigned.
    ThinkingSignatureField {
        id: "thinking.signature_field",
        spec: "families",
        bedrock: "This model doesn't support the reasoningContent.reasoningText.signature field. Remove reasoningContent.reasoningText.signature and try again.",
        cause: "A client that writes `signature` on every reasoning block (empty when it has none) replays gpt-oss's or Nova's unsigned reasoning, or another model's signed reasoning (strands-agents/harness-sdk#682, earendil-works/pi#686; maximhq/bifrost#6624 for Nova).",
        action: "An error where recorded (gpt-oss, and an empty signature on Nova), a warning where not; repair drops the reasoning of that message (never turned into text, never unsigned).",
        patterns: ["reasoningtext.signature field"],
    },
    /// Reasoning sent back to a model that takes none in its history.
    ThinkingNotReplayable {
        id: "thinking.not_replayable",
        spec: "families",
        bedrock: "User messages cannot contain reasoning content. Please remove the reasoning content and try again.",
        cause: "DeepSeek R1's own reasoning (unsigned) replayed in an assistant message of the next request (langchain-ai/langchain-aws#401, aws-samples/bedrock-chat#845, zed-industries/zed#32341). The same text answers reasoning in a user message on any model (content.role).",
        action: "Repair drops the reasoning of that message (never turned into text).",
        patterns: ["cannot contain reasoning content"],
    },
    /// Thinking replayed after a changed prefix on a prefix-binding model.
    ThinkingPrefix {
        id: "thinking.prefix_changed",
        spec: "R4.8",
        bedrock: "{at}: Invalid `signature` in `thinking` block. The block is bound to a different conversation. Remove the block, or set `thinking.block_binding.prefix_mismatch_behavior` to \"drop_block\".",
        cause: "System, tools or an earlier message changed after the block was produced (a date in the system prompt, an edited message, compaction).",
        action: "Repair drops the thinking produced after the change (never turned into text); on the Messages API, for a model that takes the binding controls, it sends `thinking.block_binding.prefix_mismatch_behavior: \"drop_block\"` with its beta instead, and the API drops only the blocks that no longer bind.",
        patterns: ["bound to a different conversation", "prefix_mismatch_behavior", "cannot be modified"],
    },
    /// More than four cache points.
    CacheCount {
        id: "cache.count",
        spec: "R1.9",
        bedrock: "A maximum of 4 blocks with cache_control may be provided. Found {detail}.",
        cause: "Cache points added per turn without removing older ones.",
        action: "Repair keeps the cache points in tools and system and the latest ones in messages, dropping the earliest message cache points.",
        patterns: ["blocks with cache_control may be provided"],
    },
    /// A cache point TTL that is unknown or longer than an earlier one.
    CacheTtl {
        id: "cache.ttl",
        spec: "R1.9",
        bedrock: "{detail}",
        cause: "ttl other than 5m or 1h, or a 1h point after a 5m point (order tools, system, messages).",
        action: "Repair removes an unknown ttl and shortens an out-of-order 1h ttl to 5m.",
        patterns: ["cachepoint.ttl"],
    },
    /// A cache point where nothing can be cached.
    CachePlacement {
        id: "cache.placement",
        spec: "R1.9",
        bedrock: "{detail}",
        cause: "A cache point first in its list, after a reasoning block, after a non-PDF document, or in tools of a model that cannot cache them.",
        action: "Repair drops the cache point.",
        patterns: ["cache point cannot be inserted after reasoning block", "nothing available to cache"],
    },
    /// An image Bedrock rejects.
    Image {
        id: "content.image",
        spec: "R1.3",
        bedrock: "{detail}",
        cause: "A format other than png, jpeg, gif or webp, or more than 5 MB of base64.",
        action: "Reported. Not repaired.",
        patterns: ["image exceeds 5 mb maximum", "image exceed"],
    },
    /// A document Bedrock rejects.
    Document {
        id: "content.document",
        spec: "R1.4",
        bedrock: "{detail}",
        cause: "A name with characters outside letters, digits, whitespace, hyphens, parentheses and brackets (a file extension's dot), a duplicate name, a missing text block beside it, or an unknown format.",
        action: "Reported. Not repaired.",
        patterns: ["document file name", "duplicate document names", "a text block must be included when using documents"],
    },
    /// Too many images or documents.
    MediaCount {
        id: "content.count",
        spec: "§8",
        bedrock: "too many images and documents: {detail}",
        cause: "More than 20 images or 5 documents in one request.",
        action: "Reported. Not repaired.",
        patterns: ["too many images and documents"],
    },
    /// Video or audio on a model that does not take it.
    Media {
        id: "content.media",
        spec: "R1.5",
        bedrock: "{detail}",
        cause: "Video or audio sent to Claude (\"This model doesn't support the video content block that you provided. Update the content block and try again.\", recorded), or video inside a tool result: Claude answers the same, Nova's schema refuses the toolResult key (\"Malformed input request: #/messages/N/content/M: extraneous key [toolResult] is not permitted\"). Or an image, document, video or audio block sent to a model that takes text only (gpt-oss, DeepSeek R1, on their AWS model pages; the text Bedrock gives them is not recorded).",
        action: "An error for a model the capability table knows, and for a text-only model; a warning on an unknown model. Not repaired.",
        patterns: ["content block that you provided", "extraneous key [toolresult]"],
    },
    /// An image, video or document named by `s3Location` on a model that does not take it.
    MediaSource {
        id: "content.s3",
        spec: "R1.3",
        bedrock: "{detail}",
        cause: "An image or video whose source is s3Location sent to Claude on Converse (\"This model doesn't support the s3Uri field. Remove s3Uri and try again.\", recorded for an image inside a tool result, Claude Sonnet 4.5), or a document from s3Location in a user message (\"The model returned the following errors: messages.N.content.M.document.source.type: Field required\", recorded, Sonnet 4.5).",
        action: "An error for a model the capability table knows; a warning on an unknown model. Not repaired: the bytes are not at hand; send them inline.",
        patterns: ["s3uri field", "document.source.type: field required"],
    },
    /// Inline bytes that are not standard base64.
    Base64 {
        id: "content.base64",
        spec: "R1.3",
        bedrock: "",
        cause: "Image or document bytes (Converse `source.bytes`, Anthropic `source.data`), Converse `redactedContent` or Anthropic `redacted_thinking.data` that is not standard base64: URL-safe characters, line breaks, missing padding, or raw text. These members are blobs: the service base64-decodes them before the model sees them.",
        action: "A warning naming the path. A blob that does not decode is expected to be refused by the service's serialization layer with a ValidationException, but no recording or rule in the rule set shows Bedrock's answer, so it is not an error. Not repaired: inline bytes are never re-encoded.",
        patterns: [],
    },
    /// The InvokeModel body's version or fields.
    InvokeBody {
        id: "invoke.body",
        spec: "R5.1",
        bedrock: "{detail}",
        cause: "anthropic_version missing or not a string, or `model` or `stream` in the body.",
        action: "The assembler always writes an anthropic_version and never model or stream; a raw body is reported.",
        patterns: ["extraneous key [stream]", "extraneous key [model]", "anthropic_version"],
    },
    /// An `anthropic_version` the model does not take on InvokeModel.
    InvokeVersion {
        id: "invoke.version",
        spec: "R5.1",
        bedrock: "Invalid API version: {detail}",
        cause: "anthropic-python 2.x writes its own API version, 2026-10-21, into every InvokeModel body; only Opus 4.7 and later take it, older models take only bedrock-2023-05-31. Or the field holds something else, such as a model id.",
        action: "An error when the capability table knows the model and its row does not list the version; a warning when the model is unknown. Not repaired: the version decides how the rest of the body is read, so rewriting it could change what the request means without an error. Send bedrock-2023-05-31, or a model that takes the version.",
        patterns: ["invalid api version"],
    },
    /// An `anthropic-version` header the model does not take on the Messages API, or none.
    MessagesVersion {
        id: "messages.version",
        spec: "messages-api V1-V2",
        bedrock: "Invalid API version: {detail}",
        cause: "The current Anthropic SDK sends 2026-10-21 to every model; only Opus 4.7 and later take it (ARN-versioned legacy models \"can return a 400\"), older ones take 2023-06-01. Or the header is missing. The wording on these hosts is not recorded; InvokeModel's is quoted.",
        action: "An error when the capability table knows the model and its row does not list the version; a warning when the model is unknown or the header is absent (the first-party API requires it; nothing records what Bedrock answers). Not repaired: the engine and transport send the newest version the model takes.",
        patterns: ["invalid api version", "anthropic-version"],
    },
    /// A version or betas written in a Messages API body, where they belong in headers.
    HeaderInBody {
        id: "messages.header_in_body",
        spec: "messages-api B1, V4",
        bedrock: "{detail}",
        cause: "A body built for InvokeModel (which carries anthropic_version and anthropic_beta in the body) sent to /anthropic/v1/messages. One gateway documents the body form for mantle; no recording shows what these hosts do with it.",
        action: "A warning; the body is left as it is. Send the version as the anthropic-version header and the betas as the anthropic-beta header.",
        patterns: [],
    },
    /// A beta flag Bedrock refuses for the model, or one it is not known to take.
    BetaFlag {
        id: "beta.flag",
        spec: "messages-api B2",
        bedrock: "invalid beta flag",
        cause: "A client sends the betas it uses against the first-party API (Claude Code sends claude-code-20250219, effort-2025-11-24, tool-search-tool-2025-10-19); Bedrock takes a narrower set per model and refuses the rest with 400.",
        action: "An error, repaired by dropping the flag, for a flag Bedrock was recorded refusing for the model on that surface; a warning, left alone, for a flag the table does not know. Never retried.",
        patterns: ["invalid beta flag"],
    },
    /// A thinking binding control sent without its beta, or where it is not documented.
    BindingControl {
        id: "thinking.binding_control",
        spec: "R4.8",
        bedrock: "{at}: This setting requires the value `thinking-binding-controls-2026-08-01` in the `anthropic-beta` header.",
        cause: "`thinking.block_binding.prefix_mismatch_behavior` set (as current Strands and LiteLLM set it to \"drop_block\") without the beta that enables it, or on a surface or model the control is not documented for.",
        action: "An error without the beta, repaired by adding it; a warning on InvokeModel, Converse or a model that does not bind thinking to the prefix. Repair of a changed prefix on the Messages API sends the control instead of dropping the thinking itself.",
        patterns: ["thinking-binding-controls", "block_binding"],
    },
    /// A family's own reasoning setting, sent where it is not taken or with a value it does
    /// not take.
    ReasoningSetting {
        id: "reasoning.setting",
        spec: "families",
        bedrock: "{detail}",
        cause: "Each family asks for reasoning in its own field of additionalModelRequestFields: Nova 2 `reasoningConfig`, gpt-oss `reasoning_effort`, Claude `thinking`; DeepSeek R1 always reasons and takes none. A setting written for one family and sent to another, or an effort the family does not take.",
        action: "An error where Bedrock was recorded refusing it: Anthropic `thinking` on gpt-oss, repaired by leaving it out (the model reasons at its default effort); `reasoningConfig` on Nova 1, reported. A warning, left in place, where not recorded. The engine writes each family's own setting from its thinking setting, and refuses one for DeepSeek R1, which always reasons.",
        patterns: ["reasoning config value is invalid", "unknown field thinking", "reasoningconfig"],
    },
    /// A request body larger than Bedrock takes.
    BodySize {
        id: "request.size",
        spec: "R5.1",
        bedrock: "{detail}",
        cause: "The body exceeds 25,000,000 bytes (20 MB per the AWS Messages page).",
        action: "Reported. Not repaired.",
        patterns: ["input is too long", "too many total text bytes"],
    },
    /// A model id Bedrock cannot route.
    ModelId {
        id: "model.id",
        spec: "R5.2",
        bedrock: "The provided model identifier is invalid.",
        cause: "An empty id or one longer than 2048 characters; an unencoded `/` in the URL path gives UnknownOperationException.",
        action: "Reported. The transport encodes the id as one path segment.",
        patterns: ["model identifier is invalid"],
    },
}

/// The rules an error message points to, best match first ([`crate::explain::rules`]).
pub use crate::explain::rules as explain;

mod ids;
mod texts;
