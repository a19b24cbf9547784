//! Input the commands refuse or show safely: model ids with control characters or over
//! Bedrock's length, stored text printed with its control characters escaped, JSON errors
//! named for what they are, keys given twice, bytes that are not base64, and emulator
//! scripts whose fault rates are not probabilities.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use verbatim_store::{NewSession, SessionStore as _, SledStore};

use crate::sessions_cli::{Run, run};

fn verbatim(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    command.args(args).env_remove("VERBATIM_STORE").env_remove("VERBATIM_DATA");
    run(command, stdin)
}

#[test]
fn a_model_flag_with_a_control_character_or_too_long_is_refused() {
    let long = "m".repeat(2049);
    for model in ["anthropic.claude\nfake", "x\u{1b}[2J", long.as_str()] {
        let out = verbatim(&["validate", "--model", model, "-"], Some(b"{\"messages\": []}"));
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stderr.contains("invalid value"), "{}", out.stderr);
        assert!(!out.stderr.contains('\u{1b}'), "a raw escape reached the terminal");
    }
    let out = verbatim(&["validate", "--model", "x\u{1b}[2J", "-"], Some(b"{}"));
    assert!(out.stderr.contains("control character \\u{1b} at character 2"), "{}", out.stderr);
    let out = verbatim(&["validate", "--model", &long, "-"], Some(b"{}"));
    assert!(out.stderr.contains("2049 characters long"), "{}", out.stderr);
}

#[tokio::test]
async fn sessions_list_and_show_escape_control_characters_a_store_already_holds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let model = "evil\u{1b}[2J\nmodel";
    let id = {
        // A store written before ids were checked (the store itself takes any string).
        let store = SledStore::open(&data).unwrap();
        let mut new = NewSession::new(model);
        new.tags = vec!["tag\u{7}".to_owned()];
        store.create(new).await.unwrap().id.to_string()
    };
    let sessions = |args: &[&str]| {
        let mut all = vec!["sessions", "--data", data.to_str().unwrap()];
        all.extend_from_slice(args);
        verbatim(&all, None)
    };
    for out in [sessions(&["list"]), sessions(&["show", &id])] {
        assert_eq!(out.code, 0, "{out:?}");
        assert!(!out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{7}'), "{out:?}");
        assert!(out.stdout.contains("evil\\u{1b}[2J\\nmodel"), "{}", out.stdout);
        assert!(out.stdout.contains("tag\\u{7}"), "{}", out.stdout);
    }
    // JSON output is escaped by JSON itself and keeps the stored text.
    let out = sessions(&["list", "--json"]);
    let listed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(listed[0]["model"], model);
}

#[test]
fn validate_names_a_byte_order_mark_and_a_lone_surrogate() {
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(br#"{"messages": [{"role": "user", "content": [{"text": "hi"}]}]}"#);
    let out = verbatim(&["validate", "-"], Some(&bom));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("the input starts with a UTF-8 byte order mark; remove it"),
        "{out:?}"
    );
    let lone = br#"{"messages": [{"role": "user", "content": [{"text": "\ud800"}]}]}"#;
    for command in ["validate", "repair"] {
        let out = verbatim(&[command, "-"], Some(lone));
        assert_eq!(out.code, 2, "{out:?}");
        assert!(
            out.stderr.contains("lone UTF-16 surrogate \\ud800 at line 1, column 54"),
            "{out:?}"
        );
    }
}

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data").join(name)
}

#[test]
fn validate_warns_of_duplicate_keys_and_bytes_that_are_not_base64() {
    let file = data("duplicate_key_bad_base64.converse.json");
    let out = verbatim(&["validate", "--json", file.to_str().unwrap()], None);
    assert_eq!(out.code, 0, "warnings only: {out:?}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let found: Vec<(String, String, String)> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let field = |k: &str| d[k].as_str().unwrap().to_owned();
            (field("rule"), field("severity"), field("path"))
        })
        .collect();
    let want = |rule: &str, path: &str| (rule.to_owned(), "warning".to_owned(), path.to_owned());
    assert_eq!(
        found,
        [
            want("content.base64", "messages[0].content[1].image.source.bytes"),
            want("shape.duplicate_key", "messages[0].content[0].text"),
        ]
    );
}

#[test]
fn an_emulator_script_with_a_rate_outside_zero_to_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (rates, said) in [
        (r#"{"throttle": 5.0}"#, "fault_rates.throttle is 5; a rate is a probability from 0 to 1"),
        (r#"{"reset": -1}"#, "fault_rates.reset is -1; a rate is a probability from 0 to 1"),
        (r#"{"internal": 0.6, "unavailable": 0.6}"#, "the fault rates add up to 1.2"),
    ] {
        let script = dir.path().join("script.json");
        std::fs::write(&script, format!(r#"{{"fault_rates": {rates}}}"#)).unwrap();
        let out =
            verbatim(&["emulator", "--port", "0", "--script", script.to_str().unwrap()], None);
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stderr.contains(said), "{}", out.stderr);
    }
}
