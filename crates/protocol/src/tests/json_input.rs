//! JSON text as it enters validation: a byte order mark is named as such, and a key given
//! twice is a warning at its repeat, the last value read.

use verbatim_model::Api;

use crate::assemble::{Severity, validate_body};
use crate::rules::Rule;

#[test]
fn validate_names_a_byte_order_mark() {
    let error = validate_body(Api::Converse, None, b"\xEF\xBB\xBF{}").unwrap_err();
    assert!(error.to_string().contains("byte order mark; remove it"), "{error}");
}

#[test]
fn validate_warns_of_a_key_given_twice_and_reads_the_last_value() {
    let body =
        br#"{"messages": [{"role": "user", "content": [{"text": "first", "text": "second"}]}]}"#;
    let report = validate_body(Api::Converse, None, body).unwrap();
    assert!(report.is_valid());
    let [warning] = &report.diagnostics[..] else { panic!("{:?}", report.diagnostics) };
    assert_eq!(warning.rule, Rule::DuplicateKey);
    assert_eq!(warning.severity, Severity::Warning);
    assert_eq!(warning.path.to_string(), "messages[0].content[0].text");
    assert!(warning.message.starts_with("the key `text` is given twice"), "{warning}");
    let request = report.request.unwrap();
    let verbatim_model::ContentBlock::Text(text) = &request.messages[0].content[0] else {
        panic!("a text block")
    };
    assert_eq!(text.text, "second");
}
