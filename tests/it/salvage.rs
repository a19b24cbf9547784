//! A damaged sled store as a user meets it: every command refuses it and says what is damaged
//! and what to do; `verbatim salvage` opens it with what can be read and keeps the damage.

use std::path::Path;
use std::process::Command;

use verbatim_model::Message;
use verbatim_store::{Append, Entry, NewSession, SessionStore, SledStore};

use crate::sessions_cli::{Run, run};

fn verbatim(args: &[&str], data: &Path) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    command.args(args).arg("--data").arg(data).env_remove("VERBATIM_STORE");
    run(command, None)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_without_its_database_is_refused_then_salvaged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    {
        let store = SledStore::open(&data).unwrap();
        let id = store.create(NewSession::new("m")).await.unwrap().id;
        for turn in 0..10 {
            let entry = Entry::Message(Message::user_text(format!("turn {turn}")).into());
            store.append(id, Append::new(turn, vec![entry])).await.unwrap();
        }
    }
    let listed = verbatim(&["sessions", "list"], &data);
    assert_eq!(listed.code, 0, "{listed:?}");
    assert!(listed.stdout.contains("10"), "{listed:?}");
    std::fs::remove_file(data.join("db")).unwrap();

    // Not an empty store with exit 0: a refusal that names the damage and the way out.
    let refused = verbatim(&["sessions", "list"], &data);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused.stderr.contains("is damaged: sled's database file `db` is missing"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("verbatim salvage --data"), "{refused:?}");
    // Refusing changed nothing: the log is where it was, and no database was made.
    assert!(!data.join("db").exists());
    assert!(data.join("wal/control").exists());

    let salvaged = verbatim(&["salvage"], &data);
    assert_eq!(salvaged.code, 0, "{salvaged:?}");
    assert!(salvaged.stdout.starts_with("Salvaged the store at"), "{salvaged:?}");
    assert!(salvaged.stdout.contains("damaged-"), "{salvaged:?}");
    let kept = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("damaged-"))
        .expect("a damaged-<time> folder");
    assert!(kept.join("wal/control").exists(), "the log's files are kept");
    let listed = verbatim(&["sessions", "list"], &data);
    assert_eq!(listed.code, 0, "{listed:?}");
    let again = verbatim(&["salvage"], &data);
    assert!(again.stdout.contains("is not damaged"), "{again:?}");
}
