//! Which operation a request path names.

use verbatim_model::Api;
use verbatim_protocol::model_id;

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// A model call answered whole (Converse, InvokeModel, the Messages API without `stream`).
    Whole,
    /// A model call answered as a stream (ConverseStream, InvokeModelWithResponseStream; the
    /// Messages API decides by its body's `stream`).
    Stream,
    /// CountTokens: forwarded, not recorded.
    CountTokens,
}

/// A routed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// The surface.
    pub(crate) api: Api,
    /// The model id from the path, decoded (`None` on the Messages API, whose body names it).
    pub(crate) model_id: Option<String>,
    /// The operation.
    pub(crate) op: Op,
}

impl Route {
    /// The route of a POST to `path` (as it arrived, percent-encoded); `None` for a path no
    /// operation serves.
    pub(crate) fn parse(path: &str) -> Option<Route> {
        match path {
            "/anthropic/v1/messages" => {
                return Some(Route { api: Api::Messages, model_id: None, op: Op::Whole });
            }
            "/anthropic/v1/messages/count_tokens" => {
                return Some(Route { api: Api::Messages, model_id: None, op: Op::CountTokens });
            }
            _ => {}
        }
        let rest = path.strip_prefix("/model/")?;
        let (segment, operation) = rest.split_once('/')?;
        let (api, op) = match operation {
            "converse" => (Api::Converse, Op::Whole),
            "converse-stream" => (Api::Converse, Op::Stream),
            "invoke" => (Api::InvokeModel, Op::Whole),
            "invoke-with-response-stream" => (Api::InvokeModel, Op::Stream),
            "count-tokens" => (Api::Converse, Op::CountTokens),
            _ => return None,
        };
        Some(Route { api, model_id: Some(model_id::from_path_segment(segment)?), op })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_operation_and_the_model_is_decoded() {
        let route = Route::parse("/model/us.anthropic.claude-v1%3A0/converse-stream").unwrap();
        assert_eq!(route.api, Api::Converse);
        assert_eq!(route.op, Op::Stream);
        assert_eq!(route.model_id.as_deref(), Some("us.anthropic.claude-v1:0"));
        let route = Route::parse("/model/m/invoke").unwrap();
        assert_eq!((route.api, route.op), (Api::InvokeModel, Op::Whole));
        assert_eq!(Route::parse("/anthropic/v1/messages").unwrap().api, Api::Messages);
        assert_eq!(Route::parse("/model/m/count-tokens").unwrap().op, Op::CountTokens);
        assert_eq!(Route::parse("/model/arn:aws/x/converse"), None, "an unencoded `/`");
        assert_eq!(Route::parse("/model/m/other"), None);
        assert_eq!(Route::parse("/model/%zz/converse"), None);
        assert_eq!(Route::parse("/anthropic/v1/models"), None);
    }
}
