//! Prompt caching against the emulator: the planner's points on the requests, the cache's
//! writes and reads in each call's usage, the ledger adding them up, and a trim that moves
//! the cached prefix explained.

use verbatim_model::Usage;
use verbatim_protocol::assemble::{AutoCaching, CacheTtl, Caching};
use verbatim_protocol::cache_diff::{Cause, compare};
use verbatim_protocol::pricing::PriceTable;

use crate::ContextPolicy;

use super::*;

/// The number of cache points in a Converse body.
fn points(body: &Value) -> usize {
    body.to_string().matches("\"cachePoint\"").count()
}

#[tokio::test]
async fn planned_cache_points_make_each_call_read_what_the_last_one_wrote_and_the_ledger_adds_up() {
    let rig = Rig::new(Behaviour::Steps(3)).await;
    let engine = rig
        .builder()
        .tool(Probe::new("lookup"))
        .thinking(thinking())
        .system("You are a careful assistant. Follow the house rules. ".repeat(120))
        .configure(|d| d.caching = Caching::Auto(AutoCaching::default()))
        .build()
        .unwrap();
    let session = engine.create().await.unwrap();
    let mut replies = Usage::default();
    for question in ["First task.", "Second task."] {
        let reply = session.send(question).await.unwrap();
        assert!(reply.complete);
        replies.add(&reply.usage);
    }
    let bodies = rig.bodies();
    assert_eq!(bodies.len(), 8, "two turns of three tool steps and an answer");
    for body in &bodies {
        assert!((2..=4).contains(&points(body)), "{body}");
    }
    // The stored history holds no planned point.
    let stored = session.history().await.unwrap();
    assert!(!serde_json::to_string(&stored).unwrap().contains("cache_point"));

    let ledger = session.ledger(&PriceTable::new()).await.unwrap();
    let lines = &ledger.lines;
    assert_eq!(lines.len(), 8);
    let n = |v: Option<u64>| v.unwrap_or(0);
    let first = &lines[0].usage;
    assert_eq!(n(first.cache_read_input_tokens), 0);
    assert!(n(first.cache_write_input_tokens) > 1000, "{first:?}");
    for line in &lines[1..] {
        let usage = &line.usage;
        // Each later call reads at least the system prompt and everything the call before
        // it sent, and writes only what is new.
        assert!(n(usage.cache_read_input_tokens) > 1000, "{usage:?}");
        assert!(n(usage.cache_write_input_tokens) < n(usage.cache_read_input_tokens), "{usage:?}");
    }
    // The ledger's totals are the sum of the replies' usage.
    let total = &ledger.usage;
    assert_eq!(n(total.input_tokens), n(replies.input_tokens));
    assert_eq!(n(total.output_tokens), n(replies.output_tokens));
    assert_eq!(n(total.cache_read_input_tokens), n(replies.cache_read_input_tokens));
    assert_eq!(n(total.cache_write_input_tokens), n(replies.cache_write_input_tokens));
    let sum = |f: fn(&Usage) -> Option<u64>| lines.iter().map(|l| n(f(&l.usage))).sum::<u64>();
    assert_eq!(n(total.cache_read_input_tokens), sum(|u| u.cache_read_input_tokens));
    assert!(ledger.cache_hit_rate().unwrap() > 0.8, "{:?}", ledger.cache_hit_rate());
}

#[tokio::test]
async fn without_the_planner_no_point_is_sent_and_nothing_is_cached() {
    let rig = Rig::new(Behaviour::Steps(1)).await;
    let engine = rig
        .builder()
        .tool(Probe::new("lookup"))
        .system("You are a careful assistant. ".repeat(300))
        .configure(|d| d.caching = Caching::Off)
        .build()
        .unwrap();
    let session = engine.create().await.unwrap();
    session.send("A task.").await.unwrap();
    assert!(rig.bodies().iter().all(|b| points(b) == 0));
    let ledger = session.ledger(&PriceTable::new()).await.unwrap();
    assert!(ledger.lines.iter().all(|l| l.usage.cache_read_input_tokens.unwrap_or(0) == 0));
}

/// A session's own caching mode is recorded with it: it wins over the engine's default, and
/// the session keeps it after a restart, under an engine whose default says otherwise.
#[tokio::test]
async fn a_sessions_caching_mode_is_recorded_and_outlives_a_restart() {
    let mut rig = Rig::new(Behaviour::Text).await;
    let system = "You are a careful assistant. Follow the house rules. ".repeat(120);
    let build = |rig: &Rig| {
        rig.builder()
            .system(system.clone())
            .configure(|d| d.caching = Caching::Off)
            .build()
            .unwrap()
    };
    let engine = build(&rig);
    let session = engine.create().await.unwrap();
    let id = session.id();
    session.send("Before.").await.unwrap();
    let auto = Caching::Auto(AutoCaching { prefix_ttl: CacheTtl::OneHour });
    session.set_caching(auto).await.unwrap();
    session.send("After.").await.unwrap();
    let bodies = rig.bodies();
    assert_eq!(points(&bodies[0]), 0, "the engine's default, off: {}", bodies[0]);
    assert!(points(&bodies[1]) >= 1, "the session's own mode, planned: {}", bodies[1]);
    assert!(bodies[1]["system"].to_string().contains(r#""ttl":"1h""#), "{}", bodies[1]);
    drop(session);
    drop(engine);

    rig.restart().await;
    let session = build(&rig).open(id).await.unwrap();
    session.send("After the restart.").await.unwrap();
    let last = rig.bodies().pop().unwrap();
    assert!(points(&last) >= 1, "kept over the restart: {last}");
    assert!(
        session
            .history()
            .await
            .unwrap()
            .iter()
            .all(|m| !serde_json::to_string(m).unwrap().contains("cache_point")),
        "planned points stay out of the stored history"
    );
}

/// The causes `explain-cache` gives between each request the emulator received and the next.
fn causes(rig: &Rig) -> Vec<Option<Cause>> {
    let requests: Vec<_> = rig
        .emulator
        .received()
        .iter()
        .map(|r| verbatim_protocol::converse::decode_request(&r.body).unwrap())
        .collect();
    requests.windows(2).map(|w| compare(&w[0], &w[1]).divergence.map(|d| d.cause)).collect()
}

#[tokio::test]
async fn a_trim_that_moves_the_prefix_is_explained_and_a_chunked_one_moves_it_seldom() {
    let mut moved = Vec::new();
    for chunk in [false, true] {
        let rig = Rig::new(Behaviour::Text).await;
        let budget = 1600;
        let context = if chunk {
            ContextPolicy { chunk_tokens: budget / 2, ..ContextPolicy::trimming(budget) }
        } else {
            ContextPolicy {
                budget_tokens: budget,
                trim: true,
                chunk_tokens: 0,
                headroom_tokens: 0,
                count_tokens: false,
            }
        };
        let engine = rig
            .builder()
            .configure(|d| {
                d.context = Some(context);
                d.caching = Caching::Auto(AutoCaching::default());
            })
            .build()
            .unwrap();
        let session = engine.create().await.unwrap();
        for turn in 0..24 {
            session.send(format!("Turn {turn}: {}", "words ".repeat(40))).await.unwrap();
        }
        let causes = causes(&rig);
        let trims =
            causes.iter().filter(|c| matches!(c, Some(Cause::TrimmedAtTheFront { .. }))).count();
        // Nothing else ever moves the prefix.
        assert!(causes.iter().flatten().all(|c| matches!(c, Cause::TrimmedAtTheFront { .. })));
        moved.push(trims);
    }
    let (fewest, chunked) = (moved[0], moved[1]);
    assert!(fewest >= 8, "the fewest-turns cut moves at nearly every turn once over: {fewest}");
    assert!(chunked * 3 <= fewest, "chunked {chunked}, fewest {fewest}");
}
