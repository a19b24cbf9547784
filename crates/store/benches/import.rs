//! Import figures, printed in one run (`cargo bench -p verbatim-store --bench import`): for
//! each input shape, the peak memory (VmHWM) and time of importing it into a fresh sled store
//! the way `verbatim sessions import` does (both passes, durable writes), per byte of input,
//! next to two references measured in the same run:
//!
//! - the peak of a process that merely reads the file into memory (what holding the input
//!   costs: the old import's floor, which then built a tree of values of it);
//! - the peak of the same import into a store that keeps nothing (the importer's own share;
//!   the rest is the store's: sled's page cache).
//!
//! Each figure comes from a child process of its own (this executable run again), since a
//! process's peak only grows. Shapes:
//!
//! - `one body`: one Converse body of 700,000 short messages (~36 MB), one session;
//! - `tool data`: JSON lines of 600 sessions of tool-using turns whose input and result carry
//!   arrays of small numbers, with a 10 KB question each (~105 MB).
//!
//! `VERBATIM_BENCH_ONLY=one` or `=tool` measures one shape.

#![allow(clippy::print_stdout)]

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use async_trait::async_trait;
use verbatim_model::SessionId;
use verbatim_store::import::{ImportOptions, Importer};
use verbatim_store::{
    Append, Appended, ListQuery, NewSession, Page, Record, Rewound, Session, SessionInfo,
    SessionStore, SledStore, StoreError,
};

fn one_body(path: &Path) {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    out.write_all(br#"{"modelId":"m","messages":["#).unwrap();
    for i in 0..700_000 {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        let comma = if i > 0 { "," } else { "" };
        write!(out, r#"{comma}{{"role":"{role}","content":[{{"text":"m{i}"}}]}}"#).unwrap();
    }
    out.write_all(b"]}\n").unwrap();
    out.flush().unwrap();
}

fn tool_data(path: &Path) {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut digit = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        char::from(b'0' + (state % 10) as u8)
    };
    let question = "Compare the readings of this week with the previous one. ".repeat(180);
    for s in 0..600 {
        let mut turns = Vec::new();
        for t in 0..10 {
            let id = format!("tooluse_{s}_{t}");
            let values: Vec<String> = (0..1600).map(|_| digit().to_string()).collect();
            let rows: Vec<String> = (0..400)
                .map(|_| format!("[{},{},{},{}]", digit(), digit(), digit(), digit()))
                .collect();
            turns.push(format!(
                concat!(
                    r#"{{"role":"user","content":[{{"text":"Session {s}, turn {t}. {q}"}}]}},"#,
                    r#"{{"role":"assistant","content":[{{"text":"Reading."}},{{"toolUse":{{"toolUseId":"{id}","name":"readings","input":{{"values":[{v}]}}}}}}]}},"#,
                    r#"{{"role":"user","content":[{{"toolResult":{{"toolUseId":"{id}","status":"success","content":[{{"json":{{"rows":[{r}]}}}}]}}}}]}},"#,
                    r#"{{"role":"assistant","content":[{{"text":"Within range."}}]}}"#
                ),
                s = s,
                t = t,
                q = question,
                id = id,
                v = values.join(","),
                r = rows.join(","),
            ));
        }
        writeln!(out, r#"{{"modelId":"m","messages":[{}]}}"#, turns.join(",")).unwrap();
    }
    out.flush().unwrap();
}

/// This process's peak resident memory, in bytes.
fn peak() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

/// A store that keeps nothing: what the importer itself takes.
struct Discard;

#[async_trait]
impl SessionStore for Discard {
    async fn create(&self, _: NewSession) -> Result<SessionInfo, StoreError> {
        Err(StoreError::Invalid("not here".into()))
    }
    async fn append(&self, _: SessionId, append: Append) -> Result<Appended, StoreError> {
        let first_seq = append.expected_version + 1;
        Ok(Appended { first_seq, version: append.expected_version + append.entries.len() as u64 })
    }
    async fn info(&self, id: SessionId) -> Result<SessionInfo, StoreError> {
        Err(StoreError::NotFound(id))
    }
    async fn load(&self, id: SessionId) -> Result<Session, StoreError> {
        Err(StoreError::NotFound(id))
    }
    async fn load_range(
        &self,
        id: SessionId,
        _: u64,
        _: Option<u64>,
    ) -> Result<Vec<Record>, StoreError> {
        Err(StoreError::NotFound(id))
    }
    async fn tail(&self, id: SessionId, _: usize) -> Result<Vec<Record>, StoreError> {
        Err(StoreError::NotFound(id))
    }
    async fn list(&self, _: &ListQuery) -> Result<Page, StoreError> {
        Ok(Page { sessions: Vec::new(), next: None })
    }
    async fn fork(&self, id: SessionId, _: u64) -> Result<SessionInfo, StoreError> {
        Err(StoreError::NotFound(id))
    }
    async fn rewind(&self, id: SessionId, _: u64, _: u64) -> Result<Rewound, StoreError> {
        Err(StoreError::NotFound(id))
    }
    async fn delete(&self, id: SessionId) -> Result<(), StoreError> {
        Err(StoreError::NotFound(id))
    }
    async fn put(&self, session: Session) -> Result<SessionInfo, StoreError> {
        Ok(session.info)
    }
    async fn acquire_lease(
        &self,
        id: SessionId,
        _: &str,
        _: std::time::Duration,
    ) -> Result<verbatim_store::Lease, StoreError> {
        Err(StoreError::NotFound(id))
    }
    async fn renew_lease(
        &self,
        lease: &verbatim_store::Lease,
        _: std::time::Duration,
    ) -> Result<verbatim_store::Lease, StoreError> {
        Err(StoreError::NotFound(lease.session))
    }
    async fn release_lease(&self, lease: &verbatim_store::Lease) -> Result<(), StoreError> {
        Err(StoreError::NotFound(lease.session))
    }
}

/// A child's work: `read FILE`, or `import FILE (STORE_DIR | -)`; prints `peak SECONDS`.
fn child(args: &[String]) {
    let file = Path::new(&args[1]);
    let started = Instant::now();
    if args[0] == "read" {
        let bytes = std::fs::read(file).unwrap();
        assert!(!bytes.is_empty());
        println!("{} {}", peak(), started.elapsed().as_secs_f64());
        return;
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let importer = Importer::new("input", ImportOptions::default());
    let checked = importer.check(std::fs::File::open(file).unwrap()).unwrap();
    let store: Box<dyn SessionStore> = match args[2].as_str() {
        "-" => Box::new(Discard),
        dir => Box::new(SledStore::open(dir).unwrap()),
    };
    let input = std::fs::File::open(file).unwrap();
    let stored = runtime.block_on(importer.store(&*store, input, |_| {})).unwrap();
    assert_eq!(stored, checked.documents);
    println!("{} {}", peak(), started.elapsed().as_secs_f64());
}

/// Runs this executable as a child doing `args`: its peak memory and time.
fn measure(args: &[&str]) -> (u64, f64) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--child")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.split_whitespace();
    (parts.next().unwrap().parse().unwrap(), parts.next().unwrap().parse().unwrap())
}

/// An input shape: its key for `VERBATIM_BENCH_ONLY`, its label, and how to write it.
type Shape = (&'static str, &'static str, fn(&Path));

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        child(&args[at + 1..]);
        return;
    }
    let only = std::env::var("VERBATIM_BENCH_ONLY").unwrap_or_default();
    let root = tempfile::tempdir().unwrap();
    let shapes: [Shape; 2] = [
        ("one", "one body, 700,000 short messages", one_body),
        ("tool", "tool data, 600 sessions", tool_data),
    ];
    println!("import into sled, both passes, durable writes; peaks are VmHWM of a child process");
    for (key, label, write) in shapes {
        if !only.is_empty() && only != key {
            continue;
        }
        let file = root.path().join(format!("{key}.json"));
        write(&file);
        let size = std::fs::metadata(&file).unwrap().len();
        let path = file.to_str().unwrap();
        let (read, _) = measure(&["read", path]);
        let (discard, discard_time) = measure(&["import", path, "-"]);
        let dir = root.path().join(format!("{key}-store"));
        let (sled, sled_time) = measure(&["import", path, dir.to_str().unwrap()]);
        println!("  {label}: {:.1} MB of input", mb(size));
        println!(
            "    reading the file only:          peak {:>7.1} MB = {:>5.2} bytes per input byte",
            mb(read),
            read as f64 / size as f64
        );
        println!(
            "    import, store keeping nothing:  peak {:>7.1} MB = {:>5.2} bytes per input byte, {:.1} s",
            mb(discard),
            discard as f64 / size as f64,
            discard_time
        );
        println!(
            "    import into sled:               peak {:>7.1} MB = {:>5.2} bytes per input byte, {:.1} s",
            mb(sled),
            sled as f64 / size as f64,
            sled_time
        );
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_file(&file).unwrap();
    }
}
