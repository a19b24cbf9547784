//! The command on a DynamoDB store (`--store dynamodb://...`), on a moto server the test starts:
//! `verbatim migrate --store` creates the table once, and the session commands use it. The
//! processes sign with dummy credentials given in their environment, never the machine's.
//! Skipped, with a note, when python3 has no moto, unless `VERBATIM_REQUIRE_DYNAMODB=1`.

use std::process::{Command, Output, Stdio};

use crate::moto::Moto;

/// `verbatim ARGS` against moto: the dummy credentials, and none of the machine's AWS settings.
fn verbatim(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("VERBATIM_STORE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    text
}

#[test]
fn migrate_creates_the_table_once_and_the_session_commands_use_it() {
    let test = "migrate_creates_the_table_once_and_the_session_commands_use_it";
    let Some(moto) = Moto::start(test) else { return };
    let url = moto.new_table_url("verbatim_cli");
    let table = url.trim_start_matches("dynamodb://").split('?').next().unwrap().to_owned();
    let created = stdout(&verbatim(&["migrate", "--store", &url]));
    assert_eq!(created.trim(), format!("table {table}: created"));
    let again = stdout(&verbatim(&["migrate", "--store", &url]));
    assert_eq!(again.trim(), format!("table {table}: exists, up to date"));
    // An export stored in the table and listed from it.
    let export = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/data/sessions_export.json");
    let imported = stdout(&verbatim(&["sessions", "import", "--store", &url, export]));
    let listed = stdout(&verbatim(&["sessions", "list", "--store", &url]));
    let id = imported.split_whitespace().find(|w| w.len() == 36).expect(&imported).to_owned();
    assert!(listed.contains(&id), "{listed}");
    // A URL that names no region is refused, saying how to give one.
    let no_region = verbatim(&["sessions", "list", "--store", "dynamodb://some_table"]);
    assert!(!no_region.status.success());
    let said = String::from_utf8_lossy(&no_region.stderr);
    assert!(said.contains("region"), "{said}");
}
