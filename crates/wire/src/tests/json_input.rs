//! JSON text as it enters: a byte order mark and a lone UTF-16 surrogate are named as such,
//! with their place; keys given twice are found at every depth, each at its repeat.

use crate::json_input::{duplicate_keys, syntax_error};

fn error_text(input: &[u8]) -> String {
    let error = serde_json::from_slice::<serde_json::Value>(input).unwrap_err();
    syntax_error(input, &error).to_string()
}

#[test]
fn a_byte_order_mark_is_named() {
    let text = error_text(b"\xEF\xBB\xBF{\"messages\": []}");
    assert_eq!(
        text,
        "$: not valid JSON: the input starts with a UTF-8 byte order mark; remove it at line 1, column 1"
    );
}

#[test]
fn a_lone_surrogate_is_named_with_its_place() {
    let lone = [
        (&br#"{"text":"\ud800"}"#[..], "\\ud800", 1, 10),
        (&br#"{"text":"a\uDBFFb"}"#[..], "\\uDBFF", 1, 11),
        (&b"{\n  \"text\": \"\\udc00 and more\"\n}"[..], "\\udc00", 2, 12),
        (&br#"{"text":"\ud83d\u0041"}"#[..], "\\ud83d", 1, 10),
    ];
    for (input, escape, line, column) in lone {
        let text = error_text(input);
        let want = format!(
            "not valid JSON: lone UTF-16 surrogate {escape} at line {line}, column {column}"
        );
        assert!(text.ends_with(&want), "{text}\nwanted {want}");
    }
    // A pair decodes; an escaped backslash before `u` is no escape at all.
    assert!(serde_json::from_slice::<serde_json::Value>(br#"{"t":"\ud83d\ude00"}"#).is_ok());
    let text = error_text(br#"{"t":"\\ud800" x}"#);
    assert!(!text.contains("surrogate"), "{text}");
    // Other errors keep the parser's words.
    let text = error_text(br#"{"t": }"#);
    assert!(text.contains("expected value at line 1, column 7"), "{text}");
}

#[test]
fn keys_given_twice_are_found_at_their_repeat() {
    let input =
        br#"{"messages": [{"role": "user", "content": [{"text": "first", "text": "second"}]},
        {"role": "assistant", "role": "user", "content": [{"a": {"b": 1, "b": 2, "b": 3}}]}]}"#;
    let found: Vec<String> = duplicate_keys(input).iter().map(ToString::to_string).collect();
    assert_eq!(
        found,
        [
            "messages[0].content[0].text",
            "messages[1].role",
            "messages[1].content[0].a.b",
            "messages[1].content[0].a.b",
        ]
    );
    assert!(duplicate_keys(br#"{"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]}"#).is_empty());
    assert!(duplicate_keys(b"{\"a\": 1, \"a\"").len() <= 1, "broken input ends the walk");
}
