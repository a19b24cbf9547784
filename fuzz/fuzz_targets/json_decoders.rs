//! Fuzzes the Converse and Anthropic JSON decoders with arbitrary bytes.
//!
//! Decoding must never panic. What decodes must encode in the same dialect (or fail to with an
//! error, never a panic), and what was encoded must decode again to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use verbatim_protocol::{anthropic, converse};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = converse::decode_request(data) {
        if let Ok(value) = converse::encode_request(&request) {
            let again = converse::decode_request_value(value).expect("an encoded request decodes");
            assert_eq!(again, request, "Converse request changed in a round trip");
        }
    }
    if let Ok(request) = anthropic::decode_request(data) {
        if let Ok(value) = anthropic::encode_request(&request) {
            let again = anthropic::decode_request_value(value).expect("an encoded request decodes");
            assert_eq!(again, request, "Anthropic request changed in a round trip");
        }
    }
    if let Ok(response) = converse::decode_response(data) {
        if let Ok(value) = converse::encode_response(&response) {
            let again = converse::decode_response_value(value).expect("an encoded response decodes");
            assert_eq!(again, response, "Converse response changed in a round trip");
        }
    }
    if let Ok(response) = anthropic::decode_response(data) {
        if let Ok(value) = anthropic::encode_response(&response) {
            let again = anthropic::decode_response_value(value).expect("an encoded response decodes");
            assert_eq!(again, response, "Anthropic response changed in a round trip");
        }
    }
});
