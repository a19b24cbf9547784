//! Random conversations survive Converse -> model -> Anthropic -> model -> Converse unchanged,
//! for everything both dialects can express.

use proptest::prelude::*;
use serde_json::Value;
use verbatim_model::Request;

use super::strategies::request;
use super::support::verbatim_strings;
use crate::{anthropic, converse};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn conversations_survive_converse_anthropic_converse(request in request()) {
        let converse_body = converse::request_to_vec(&request).unwrap();
        let from_converse = converse::decode_request(&converse_body).unwrap();
        prop_assert_eq!(&from_converse, &request);

        let anthropic_body = anthropic::request_to_vec(&from_converse).unwrap();
        let from_anthropic = anthropic::decode_request(&anthropic_body).unwrap();

        let again = converse::request_to_vec(&from_anthropic).unwrap();
        // Same bytes: same values, same key order (tool inputs included).
        prop_assert_eq!(
            String::from_utf8(again.clone()).unwrap(),
            String::from_utf8(converse_body.clone()).unwrap()
        );
        let first: Value = serde_json::from_slice(&converse_body).unwrap();
        let second: Value = serde_json::from_slice(&again).unwrap();
        prop_assert_eq!(verbatim_strings(&second), verbatim_strings(&first));
    }

    #[test]
    fn the_canonical_form_round_trips(request in request()) {
        let stored = serde_json::to_string(&request).unwrap();
        let back: Request = serde_json::from_str(&stored).unwrap();
        prop_assert_eq!(back, request);
    }
}
