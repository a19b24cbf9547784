//! Rules of the workspace's shape that a reviewer should not have to check by hand.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `verbatim-*` packages a crate's manifest depends on, outside its tests.
fn workspace_deps(krate: &str) -> Vec<String> {
    deps_in(krate, false)
}

/// The `verbatim-*` packages in `[dev-dependencies]` (`dev`) or in every other section.
fn deps_in(krate: &str, dev: bool) -> Vec<String> {
    let manifest =
        fs::read_to_string(root().join("crates").join(krate).join("Cargo.toml")).unwrap();
    let mut in_dev = false;
    // `name = "verbatim-model"` starts with `name`, so the package's own name is not counted.
    manifest
        .lines()
        .filter(|line| {
            if line.starts_with('[') {
                in_dev = line.trim() == "[dev-dependencies]";
            }
            in_dev == dev
        })
        .filter_map(|line| line.trim().split(['.', ' ', '=']).next())
        .filter(|name| name.starts_with("verbatim-"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn dependencies_point_inward() {
    assert_eq!(
        workspace_deps("model"),
        Vec::<String>::new(),
        "model depends on no workspace crate"
    );
    assert_eq!(workspace_deps("wire"), ["verbatim-model"], "the wire depends only on model");
    assert_eq!(
        workspace_deps("protocol"),
        ["verbatim-model", "verbatim-wire"],
        "the rules depend only on model and the wire"
    );
    assert_eq!(
        workspace_deps("store"),
        ["verbatim-model", "verbatim-protocol"],
        "the store depends only on the pure core"
    );
    assert_eq!(
        workspace_deps("transport"),
        ["verbatim-model", "verbatim-protocol"],
        "the transport depends only on the pure core"
    );
    assert_eq!(deps_in("transport", true), ["verbatim-emulator"], "its tests run on the emulator");
    assert_eq!(
        workspace_deps("engine"),
        ["verbatim-model", "verbatim-protocol", "verbatim-store", "verbatim-transport"],
        "the engine puts the store, the assembler and the transport to work"
    );
    assert_eq!(deps_in("engine", true), ["verbatim-emulator"], "its tests run on the emulator");
    assert_eq!(
        workspace_deps("proxy"),
        ["verbatim-model", "verbatim-protocol", "verbatim-store", "verbatim-transport"],
        "the proxy puts the store, the rules and the transport between a client and Bedrock"
    );
    assert_eq!(deps_in("proxy", true), ["verbatim-emulator"], "its bench runs on the emulator");
    assert_eq!(
        workspace_deps("emulator"),
        Vec::<String>::new(),
        "the emulator is a second implementation of the wire and shares no code with ours"
    );
}

#[test]
fn the_pure_core_does_no_io() {
    let mut files = Vec::new();
    rust_files(&root().join("crates/model/src"), &mut files);
    rust_files(&root().join("crates/wire/src"), &mut files);
    rust_files(&root().join("crates/protocol/src"), &mut files);
    for file in files {
        if file.components().any(|c| c.as_os_str() == "tests") {
            continue; // tests may read fixture files
        }
        let text = fs::read_to_string(&file).unwrap();
        for forbidden in
            ["std::fs", "std::net", "std::env", "SystemTime::now", "Instant::now", "tokio"]
        {
            assert!(!text.contains(forbidden), "{} uses {forbidden}", file.display());
        }
    }
}

#[test]
fn every_source_file_says_what_it_is_and_nothing_is_skipped() {
    let mut files = Vec::new();
    for dir in ["crates", "src", "tests", "examples"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 20);
    let ignore = ["#[", "ignore]"].concat();
    let should_panic = ["#[", "should_panic"].concat();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("//!"), "{} does not start with a //! comment", file.display());
        assert!(!text.contains(&ignore), "{} ignores a test", file.display());
        assert!(!text.contains(&should_panic), "{} uses should_panic", file.display());
    }
}
