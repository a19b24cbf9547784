//! Fuzzes the store's import of a session document (Converse or Anthropic JSON, as
//! `verbatim sessions import` reads it) with arbitrary bytes: it must never panic, and what
//! it accepts must export again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use verbatim_model::Dialect;
use verbatim_store::export::{export_session, import_session};

fuzz_target!(|data: &[u8]| {
    let Ok(document) = serde_json::from_slice(data) else { return };
    if let Ok(session) = import_session(document, "fuzz input") {
        let _ = export_session(&session, Dialect::Converse);
        let _ = export_session(&session, Dialect::Anthropic);
    }
});
