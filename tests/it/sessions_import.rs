//! `verbatim sessions import` at scale and after a kill, run as a user runs it: a file over
//! 100 MB imported under a memory limit, a killed import run again (nothing stored twice, the
//! same ids printed), and bodies that name no model.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;
use verbatim::SessionStore as _;
use verbatim::store::import::import_key;
use verbatim::store::{Session, SledStore};

use super::sessions_cli::{Run, run};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data").join(name)
}

/// A fixture as one line of JSON.
fn one_line(name: &str) -> String {
    let value: Value = serde_json::from_slice(&std::fs::read(data(name)).unwrap()).unwrap();
    serde_json::to_string(&value).unwrap()
}

/// `verbatim sessions --data DIR ...`, with no store from the environment.
fn sessions(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    command.arg("sessions").arg("--data").arg(dir).args(args);
    command.env_remove("VERBATIM_STORE").env_remove("VERBATIM_DATA");
    command
}

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "{run:?}");
    run
}

fn listed(dir: &Path) -> Vec<Value> {
    let out = ok(run(sessions(dir, &["list", "--json"]), None)).stdout;
    serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
}

/// The bodies of the large file: sessions of tool-using turns whose tool input and result
/// carry arrays of small numbers (the JSON that costs a tree of values the most per byte),
/// with a long user question each (text, which costs little).
const SESSIONS: usize = 600;
const TURNS: usize = 10;
const VALUES: usize = 1600;

fn write_large_file(path: &Path) -> u64 {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut digit = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        b'0' + (state % 10) as u8
    };
    let question =
        "Compare the readings of this week with the previous one, sensor by sensor. ".repeat(134);
    for s in 0..SESSIONS {
        write!(out, "{{\"modelId\":\"m\",\"messages\":[").unwrap();
        for t in 0..TURNS {
            let id = format!("tooluse_{s}_{t}");
            if t > 0 {
                out.write_all(b",").unwrap();
            }
            write!(
                out,
                "{{\"role\":\"user\",\"content\":[{{\"text\":\"Session {s}, turn {t}. {question}\"}}]}},"
            )
            .unwrap();
            write!(out, "{{\"role\":\"assistant\",\"content\":[{{\"text\":\"Reading.\"}},{{\"toolUse\":{{\"toolUseId\":\"{id}\",\"name\":\"readings\",\"input\":{{\"values\":[").unwrap();
            for v in 0..VALUES {
                if v > 0 {
                    out.write_all(b",").unwrap();
                }
                out.write_all(&[digit()]).unwrap();
            }
            write!(out, "]}}}}}}]}},{{\"role\":\"user\",\"content\":[{{\"toolResult\":{{\"toolUseId\":\"{id}\",\"status\":\"success\",\"content\":[{{\"json\":{{\"rows\":[").unwrap();
            for r in 0..VALUES / 4 {
                let row = [digit(), b',', digit(), b',', digit(), b',', digit()];
                out.write_all(if r > 0 { b",[" } else { b"[" }).unwrap();
                out.write_all(&row).unwrap();
                out.write_all(b"]").unwrap();
            }
            write!(out, "]}}}}]}}}}]}},{{\"role\":\"assistant\",\"content\":[{{\"text\":\"Within range.\"}}]}}").unwrap();
        }
        out.write_all(b"]}\n").unwrap();
    }
    out.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// The address-space limit of the import below: the old import needed 1.8 GB of memory for
/// such a file (a tree of values for the whole input, then every message decoded), this one
/// about 200 MB. glibc's per-thread arenas are kept to two, so that the limit counts memory
/// used rather than address space reserved by each thread's arena.
const LIMIT_KIB: u64 = 512 << 10;

#[test]
fn a_file_over_100_mb_imports_under_a_memory_limit_one_document_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("large.jsonl");
    let bytes = write_large_file(&file);
    assert!(bytes >= 100 << 20, "{bytes} bytes");

    let limited = |verbatim: &mut Command| {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -v {LIMIT_KIB} && exec \"$0\" \"$@\""))
            .arg(verbatim.get_program())
            .args(verbatim.get_args())
            .env("MALLOC_ARENA_MAX", "2")
            .env_remove("VERBATIM_STORE")
            .env_remove("VERBATIM_DATA");
        command
    };
    let mut check = Command::new("sh");
    check.arg("-c").arg(format!("ulimit -v {LIMIT_KIB} && ulimit -v"));
    assert_eq!(ok(run(check, None)).stdout.trim(), LIMIT_KIB.to_string());

    let store = dir.path().join("data");
    let started = Instant::now();
    let import = limited(&mut sessions(&store, &["import", file.to_str().unwrap()]));
    let out = ok(run(import, None)).stdout;
    let took = started.elapsed();
    let ids: Vec<&str> = out.lines().collect();
    assert_eq!(ids.len(), SESSIONS, "{took:?}");
    let distinct: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), SESSIONS);

    // Every session arrived whole.
    let list = listed(&store);
    let stored: BTreeSet<&str> = list.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(stored, distinct);
    assert!(list.iter().all(|s| s["version"] == 4 * TURNS), "a session is not whole");
    let last = ok(run(sessions(&store, &["show", ids[SESSIONS - 1], "--json"]), None)).stdout;
    let last: Value = serde_json::from_str(&last).unwrap();
    let messages = last["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4 * TURNS);
    let input = &messages[4 * TURNS - 3]["message"]["content"][1]["input"]["values"];
    assert_eq!(input.as_array().unwrap().len(), VALUES);
    let question = messages[0]["message"]["content"][0]["text"].as_str().unwrap();
    assert!(question.starts_with(&format!("Session {}, turn 0.", SESSIONS - 1)));
}

/// Writes `count` small Converse bodies, then the export fixture and a bare messages array
/// (which names no model), one per line.
fn write_small_file(path: &Path, count: usize) -> usize {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..count {
        writeln!(
            out,
            r#"{{"modelId":"m","messages":[{{"role":"user","content":[{{"text":"question {i}"}}]}},{{"role":"assistant","content":[{{"text":"answer {i}"}}]}},{{"role":"user","content":[{{"text":"thanks {i}"}}]}}]}}"#
        )
        .unwrap();
    }
    writeln!(out, "{}", one_line("sessions_export.json")).unwrap();
    writeln!(out, "{}", one_line("sessions_messages.converse.json")).unwrap();
    out.flush().unwrap();
    count + 2
}

/// Makes the session `id` look as a killed run could leave it: its records cut to `keep`.
async fn cut(store: &Path, id: &str, keep: usize) {
    let store = SledStore::open(store).unwrap();
    let id = verbatim::model::SessionId::parse(id).unwrap();
    let mut session: Session = store.load(id).await.unwrap();
    assert!(import_key(&session.info).is_some(), "no import key: {:?}", session.info);
    session.records.truncate(keep);
    session.info.version = keep as u64;
    store.delete(id).await.unwrap();
    store.put(session).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_of_a_killed_import_stores_nothing_twice_and_prints_the_same_ids() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sessions.jsonl");
    let documents = write_small_file(&file, 1500);
    let store = dir.path().join("data");
    let path = file.to_str().unwrap();

    // Killed once it printed a few ids: those sessions are whole, and nothing else is listed
    // but at most the one it was writing.
    let mut child = sessions(&store, &["import", path])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let printed: Vec<String> = (0..5).map(|_| lines.next().unwrap().unwrap()).collect();
    child.kill().unwrap();
    child.wait().unwrap();
    let after_kill = listed(&store);
    assert!(after_kill.len() >= 5 && after_kill.len() < documents, "{}", after_kill.len());
    for id in &printed {
        let info = after_kill.iter().find(|s| s["id"] == id.as_str()).unwrap();
        assert_eq!(info["version"], 3, "{info}");
    }
    // A session and its records are stored in one put, or not at all: no session the kill
    // left behind is empty.
    for info in &after_kill {
        assert!(info["version"].as_u64().unwrap() > 0, "a session without records: {info}");
    }

    // Run again: every id, in order, the first ones the same; those stored before are said so.
    let again = ok(run(sessions(&store, &["import", path]), None));
    let ids: Vec<&str> = again.stdout.lines().collect();
    assert_eq!(ids.len(), documents);
    assert_eq!(ids[..5], printed.iter().map(String::as_str).collect::<Vec<_>>()[..]);
    let already = again.stderr.lines().filter(|l| l.contains("already stored as")).count();
    assert!(already >= 5 && already == after_kill.len(), "{}", again.stderr);
    let list = listed(&store);
    assert_eq!(list.len(), documents);
    assert!(list.iter().all(|s| s["version"].as_u64().unwrap() > 0));
    let bare = list.iter().find(|s| s["id"] == ids[documents - 1]).unwrap();
    assert_eq!(bare["model"], "");

    // With --json: progress as JSON lines on standard error, the infos on standard output.
    let json = ok(run(sessions(&store, &["import", "--json", path]), None));
    let infos: Value = serde_json::from_str(&json.stdout).unwrap();
    let info_ids: Vec<&str> =
        infos.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(info_ids, ids);
    let progress: Vec<Value> =
        json.stderr.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(progress.len(), documents);
    assert!(progress.iter().all(|p| p["outcome"] == "already_stored"), "{}", json.stderr);
    assert_eq!(progress[3]["id"], ids[3]);
    assert_eq!(progress[3]["line"], 4);

    // A session created without its records (a body's), and one stored in part (the export
    // document's): completed and replaced, not duplicated.
    cut(&store, ids[3], 0).await;
    cut(&store, ids[documents - 2], 2).await;
    let resumed = ok(run(sessions(&store, &["import", path]), None));
    assert_eq!(resumed.stdout.lines().collect::<Vec<_>>(), ids);
    assert!(resumed.stderr.contains(&format!("line 4: session {} was stored in part", ids[3])));
    assert!(resumed.stderr.contains("stored again whole"), "{}", resumed.stderr);
    let list = listed(&store);
    assert_eq!(list.len(), documents);
    let completed = list.iter().find(|s| s["id"] == ids[3]).unwrap();
    assert_eq!(completed["version"], 3);
    let exported = list.iter().find(|s| s["id"] == ids[documents - 2]).unwrap();
    assert_eq!(exported["version"], 5);
}

#[test]
fn a_converse_body_naming_no_model_makes_a_session_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut body: Value =
        serde_json::from_slice(&std::fs::read(data("sessions_weather.converse.json")).unwrap())
            .unwrap();
    body.as_object_mut().unwrap().shift_remove("modelId");
    let file = dir.path().join("no_model.json");
    std::fs::write(&file, serde_json::to_vec(&body).unwrap()).unwrap();
    let store = dir.path().join("data");
    let id = ok(run(sessions(&store, &["import", file.to_str().unwrap()]), None)).stdout;
    let id = id.trim();
    let shown = ok(run(sessions(&store, &["show", id, "--json"]), None)).stdout;
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["config"]["model"], "");
    assert_eq!(shown["messages"].as_array().unwrap().len(), 4);
    let text = ok(run(sessions(&store, &["show", id]), None)).stdout;
    assert!(text.contains("model: none"), "{text}");
    let table = ok(run(sessions(&store, &["list"]), None)).stdout;
    assert!(table.lines().nth(1).unwrap().starts_with(&format!("{id}  -  ")), "{table}");

    // With --model it has that one; the same body with other options is another session.
    let args = ["import", "--model", "m", file.to_str().unwrap()];
    let other = ok(run(sessions(&store, &args), None)).stdout;
    assert_ne!(other.trim(), id);
    let shown = ok(run(sessions(&store, &["show", other.trim(), "--json"]), None)).stdout;
    assert_eq!(serde_json::from_str::<Value>(&shown).unwrap()["config"]["model"], "m");
}
