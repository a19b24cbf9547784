//! A request body written with the text of an earlier body's messages reused is the body the
//! request encodes to, byte for byte, for random conversations.

use proptest::prelude::*;
use verbatim_model::Api;

use super::strategies::{message, request};
use crate::assemble;
use crate::assemble::body::Body;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_body_written_with_reuse_is_the_encoded_request(
        request in request(),
        more in prop::collection::vec(message(), 0..3),
        edit in proptest::option::of((0usize..8, message())),
    ) {
        let mut next = request.clone();
        next.messages.extend(more);
        if let Some((at, message)) = edit && at < next.messages.len() {
            next.messages[at] = message;
        }
        for api in [Api::Converse, Api::InvokeModel] {
            let first = Body::write(api, &request, None);
            let expected = assemble::encode(api, &request).map(|v| v.to_string());
            prop_assert_eq!(first.clone().map(|b| b.as_str().to_owned()), expected);
            let Ok(first) = first else { continue };
            let second = Body::write(api, &next, Some((&first, &request.messages)));
            let expected = assemble::encode(api, &next).map(|v| v.to_string());
            prop_assert_eq!(second.map(|b| b.as_str().to_owned()), expected.clone());
            // Told how many leading messages are the earlier ones, without comparing.
            let same = next.messages.iter().zip(&request.messages).take_while(|(a, b)| a == b);
            let after = Body::write_after(api, &next, &first, same.count());
            prop_assert_eq!(after.map(|b| b.as_str().to_owned()), expected);
        }
    }
}
