//! The copy of a stream the proxy keeps: the bytes passed to the client, decoded as they pass
//! (event-stream frames, or server-sent events on the Messages API) and folded into the
//! response a whole call returns, by the protocol's accumulators.

use verbatim_model::{Api, Response};
use verbatim_protocol::eventstream::{Frame, FrameDecoder};
use verbatim_protocol::sse::MessagesFold;
use verbatim_protocol::stream::{AnthropicAccumulator, ConverseAccumulator};

/// A stream being folded.
pub(crate) enum Fold {
    /// ConverseStream's frames.
    Converse(FrameDecoder, ConverseAccumulator),
    /// InvokeModelWithResponseStream's `chunk` frames, each an Anthropic event in base64.
    Invoke(FrameDecoder, AnthropicAccumulator),
    /// The Messages API's server-sent events.
    Messages(Box<MessagesFold>),
    /// The fold failed: the stream still passes, nothing will be recorded.
    Failed(String),
}

impl Fold {
    pub(crate) fn new(api: Api) -> Fold {
        match api {
            Api::Converse => Fold::Converse(FrameDecoder::new(), ConverseAccumulator::new()),
            Api::InvokeModel => Fold::Invoke(FrameDecoder::new(), AnthropicAccumulator::new()),
            Api::Messages => Fold::Messages(Box::default()),
        }
    }

    /// Takes in the next bytes of the body.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        let failed = match self {
            Fold::Converse(decoder, folded) => {
                decoder.push(bytes);
                frames(decoder, |event_type, payload| {
                    folded.push(event_type, payload).map(drop).map_err(|e| e.to_string())
                })
            }
            Fold::Invoke(decoder, folded) => {
                decoder.push(bytes);
                frames(decoder, |_, payload| {
                    folded.push_chunk(payload).map(drop).map_err(|e| e.to_string())
                })
            }
            Fold::Messages(folded) => folded.push(bytes).map(drop).err().map(|e| e.to_string()),
            Fold::Failed(_) => None,
        };
        if let Some(why) = failed {
            *self = Fold::Failed(why);
        }
    }

    /// The response the stream held; an error saying why when it broke off or did not fold.
    pub(crate) fn finish(self) -> Result<Response, String> {
        match self {
            Fold::Converse(decoder, folded) => {
                decoder.finish().map_err(|e| e.to_string())?;
                folded.finish().map_err(|e| e.to_string())
            }
            Fold::Invoke(decoder, folded) => {
                decoder.finish().map_err(|e| e.to_string())?;
                folded.finish().map_err(|e| e.to_string())
            }
            Fold::Messages(folded) => (*folded).finish().map_err(|e| e.to_string()),
            Fold::Failed(why) => Err(why),
        }
    }
}

/// Feeds every whole frame buffered to `event`; an exception or error frame ends the fold.
fn frames(
    decoder: &mut FrameDecoder,
    mut event: impl FnMut(&str, &[u8]) -> Result<(), String>,
) -> Option<String> {
    loop {
        match decoder.next_frame() {
            Ok(None) => return None,
            Ok(Some(Frame::Event { event_type, payload })) => {
                if let Err(why) = event(&event_type, &payload) {
                    return Some(why);
                }
            }
            Ok(Some(Frame::Exception { exception_type, .. })) => {
                return Some(format!("the stream carried {exception_type}"));
            }
            Ok(Some(Frame::Error { code, .. })) => {
                return Some(format!("the stream carried {code}"));
            }
            Err(error) => return Some(error.to_string()),
        }
    }
}
