//! `verbatim chat` (and `demo`) run as a person runs it: against an emulator on 127.0.0.1:0,
//! each test with its own sled store, its input piped in.

use std::process::Command;

use verbatim_emulator::{Emulator, EmulatorConfig};

use crate::sessions_cli::{Run, run};

/// An emulator that takes only `key` as its API key.
async fn emulator_with_key(key: &str) -> Emulator {
    let config = EmulatorConfig { api_key: Some(key.to_owned()), ..EmulatorConfig::default() };
    Emulator::start(config).await.unwrap()
}

/// `verbatim chat --data DIR --emulator-url URL ARGS...` with `input` typed, and the
/// environment variables `env` (none of the machine's verbatim or AWS settings).
async fn chat(
    data: &std::path::Path,
    url: &str,
    args: &[&str],
    env: &[(&str, &str)],
    input: &str,
) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    command.arg("chat").arg("--data").arg(data).args(["--emulator-url", url]).args(args);
    for variable in ["VERBATIM_EMULATOR_API_KEY", "VERBATIM_STORE", "VERBATIM_DATA", "RUST_LOG"] {
        command.env_remove(variable);
    }
    command.envs(env.iter().copied());
    let input = input.as_bytes().to_vec();
    // The emulator runs on this test's runtime: the child is waited for off it.
    tokio::task::spawn_blocking(move || run(command, Some(&input))).await.unwrap()
}

#[tokio::test]
async fn chat_reaches_an_emulator_started_with_its_own_key() {
    let emulator = emulator_with_key("my-key").await;
    let dir = tempfile::tempdir().unwrap();
    let url = emulator.url();

    let by_flag =
        chat(&dir.path().join("a"), &url, &["--api-key", "my-key"], &[], "Hello\n/quit\n").await;
    assert_eq!(by_flag.code, 0, "{by_flag:?}");
    assert!(by_flag.stdout.contains("Hello! You said: Hello"), "{by_flag:?}");

    let by_env = chat(
        &dir.path().join("b"),
        &url,
        &[],
        &[("VERBATIM_EMULATOR_API_KEY", "my-key")],
        "Again\n/quit\n",
    )
    .await;
    assert_eq!(by_env.code, 0, "{by_env:?}");
    assert!(by_env.stdout.contains("Hello! You said: Again"), "{by_env:?}");

    // A wrong key: the refusal says which key is wrong and how to give the right one, and
    // never shows the key sent.
    let wrong =
        chat(&dir.path().join("c"), &url, &["--api-key", "not-my-key"], &[], "Hi\n/quit\n").await;
    let said = format!("{}{}", wrong.stdout, wrong.stderr);
    assert!(said.contains("the emulator refused the API key"), "{wrong:?}");
    assert!(said.contains("--api-key KEY or VERBATIM_EMULATOR_API_KEY"), "{wrong:?}");
    assert!(!said.contains("not-my-key") && !said.contains("my-key"), "a key was printed: {said}");
}

#[tokio::test]
async fn the_demo_reaches_an_emulator_started_with_its_own_key() {
    let emulator = emulator_with_key("my-key").await;
    let dir = tempfile::tempdir().unwrap();
    let demo = |key: &'static str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
        command.arg("demo").arg("--data").arg(dir.path().join(key));
        command.args(["--endpoint-url", &emulator.url()]);
        command.env("VERBATIM_EMULATOR_API_KEY", key);
        tokio::task::spawn_blocking(move || run(command, None))
    };
    let done = demo("my-key").await.unwrap();
    assert_eq!(done.code, 0, "{done:?}");
    assert!(done.stdout.contains("-- Finished after"), "{done:?}");
    let refused = demo("another-key").await.unwrap();
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("HTTP 403"), "{refused:?}");
}
