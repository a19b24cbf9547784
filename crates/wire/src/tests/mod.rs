//! Tests of the codecs and stream decoders: recorded traffic, the project's own fixture files,
//! malformed input and random conversations.

mod cross_dialect;
mod decode_errors;
mod eventstream;
mod fixture_files;
mod golden_conversion;
mod json_input;
mod messages_api;
mod real_fixtures;
mod recordings;
mod round_trip_props;
mod sse;
mod sse_fold;
mod strategies;
mod stream;
mod support;
