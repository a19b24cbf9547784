//! Malformed input gives an error naming the JSON path and what is wrong.
//!
//! Each `test_data/decode_errors/<case>.<dialect>.<kind>.json` holds input that must not
//! decode, and `<case>.<dialect>.<kind>.expected` the exact error message. Run with
//! `UPDATE_EXPECT=1` to rewrite the expectations after a deliberate change.

use super::support::{case_files, decode_bytes, test_data};
use crate::{DecodeError, DecodeErrorKind, JsonPath, Segment, anthropic, converse};

fn decode_case(name: &str) -> DecodeError {
    let file = case_files("decode_errors")
        .into_iter()
        .find(|f| f.path.file_name().unwrap() == name)
        .unwrap_or_else(|| panic!("no case file {name}"));
    let bytes = std::fs::read(&file.path).unwrap();
    decode_bytes(file.wire, file.kind, &bytes).expect_err(name)
}

#[test]
fn every_malformed_case_gives_its_expected_error() {
    let files = case_files("decode_errors");
    assert!(files.len() >= 20, "decode_errors fixtures missing");
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    for file in files {
        let bytes = std::fs::read(&file.path).unwrap();
        let error = decode_bytes(file.wire, file.kind, &bytes)
            .expect_err(&format!("{} decoded but must not", file.case));
        let expected_path = file.path.with_extension("expected");
        let actual = format!("{error}\n");
        if update {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} has no .expected file", file.case));
        assert_eq!(actual, expected, "{}", file.case);
    }
}

#[test]
fn text_that_is_not_json_is_a_syntax_error_at_the_root() {
    let error = decode_case("not_json.converse.request.json");
    assert_eq!(error.path, JsonPath::root());
    assert!(matches!(error.kind, DecodeErrorKind::Syntax { line: 2, .. }), "{error}");
    let error = decode_case("not_json.anthropic.response.json");
    assert!(matches!(error.kind, DecodeErrorKind::Syntax { line: 1, column: 1, .. }), "{error}");
}

#[test]
fn a_wrong_type_names_its_path() {
    let error = decode_case("text_not_string.converse.request.json");
    assert_eq!(error.path.to_string(), "messages[0].content[0].text");
    assert_eq!(error.kind, DecodeErrorKind::WrongType { expected: "a string", found: "a number" });
    let error = decode_case("content_not_array.anthropic.messages.json");
    assert_eq!(error.path.to_string(), "$[0].content");
}

#[test]
fn two_members_in_one_block_lists_what_was_found_and_allowed() {
    let error = decode_case("two_members_in_block.converse.request.json");
    assert_eq!(
        error.path.segments(),
        [
            Segment::Key("messages".into()),
            Segment::Index(3),
            Segment::Key("content".into()),
            Segment::Index(0)
        ]
    );
    let DecodeErrorKind::UnionMembers { union, found, allowed } = &error.kind else {
        panic!("{error}")
    };
    assert_eq!(*union, "ContentBlock");
    assert_eq!(found, &["text", "image"]);
    assert_eq!(*allowed, converse::CONTENT_BLOCK_MEMBERS);

    let error = decode_case("two_reasoning_members.converse.response.json");
    assert_eq!(error.path.to_string(), "output.message.content[0].reasoningContent");
    assert!(matches!(&error.kind, DecodeErrorKind::UnionMembers { found, .. } if found.len() == 2));
}

#[test]
fn an_unknown_role_is_refused_with_the_roles_allowed() {
    let error = decode_case("unknown_role.converse.request.json");
    assert_eq!(error.path.to_string(), "messages[1].role");
    assert_eq!(
        error.kind,
        DecodeErrorKind::UnknownRole { role: "tool".into(), allowed: converse::ROLES }
    );
    let error = decode_case("system_role.anthropic.request.json");
    assert_eq!(error.path.to_string(), "messages[0].role");
    assert_eq!(
        error.kind,
        DecodeErrorKind::UnknownRole { role: "system".into(), allowed: anthropic::ROLES }
    );
}

#[test]
fn invoke_model_bodies_must_name_a_version_and_no_model() {
    // Which version a model takes is a validation rule (`invoke.version`), not a decode
    // error; a version that is not a string is.
    let error = decode_case("version_not_string.anthropic.request.json");
    assert_eq!(error.path.to_string(), "anthropic_version");
    assert_eq!(error.kind, DecodeErrorKind::WrongType { expected: "a string", found: "a number" });
    let error = decode_case("missing_version.anthropic.request.json");
    assert_eq!(error.kind, DecodeErrorKind::MissingField { field: "anthropic_version" });
    let error = decode_case("model_in_body.anthropic.request.json");
    assert!(matches!(error.kind, DecodeErrorKind::Forbidden { field: "model", .. }));
}

#[test]
fn expectation_files_exist_only_for_cases() {
    // A stale .expected without its input would hide a deleted case.
    for entry in std::fs::read_dir(test_data("decode_errors")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "expected") {
            assert!(path.with_extension("json").exists(), "{} has no input", path.display());
        }
    }
}
