//! Request settings as session configuration: set through the engine and recorded like a
//! model change, or kept from an imported body, and sent with every request after.

use verbatim_emulator::Behaviour;
use verbatim_model::{
    Dialect, InferenceConfig, JsonMap, Settings, ToolChoice, ToolChoiceKind, Unmapped,
};
use verbatim_store::import::{ImportOptions, Importer};
use verbatim_store::{ConfigChange, Entry, SessionStore as _};

use super::*;

fn number(text: &str) -> serde_json::Number {
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn settings_are_recorded_and_sent_with_every_request_after() {
    let mut rig = Rig::new(Behaviour::Text).await;
    let engine = rig.builder().build().unwrap();
    let session = engine.create().await.unwrap();
    session.send("Before").await.unwrap();

    let mut unmapped = JsonMap::new();
    unmapped.insert("serviceTier".into(), serde_json::json!({"type": "priority"}));
    unmapped.insert("requestMetadata".into(), serde_json::json!({"team": "search"}));
    let settings = Settings {
        inference: Some(InferenceConfig {
            temperature: Some(number("0.250")),
            stop_sequences: Some(vec!["END".into()]),
            ..InferenceConfig::default()
        }),
        tool_choice: None,
        unmapped: Unmapped::only(Dialect::Converse, unmapped),
        ..Settings::default()
    };
    session.set_settings(settings.clone()).await.unwrap();
    session.send("After").await.unwrap();

    let bodies = rig.bodies();
    assert!(bodies[0]["inferenceConfig"].get("temperature").is_none(), "{}", bodies[0]);
    let after = &bodies[1];
    assert_eq!(after["inferenceConfig"]["temperature"].to_string(), "0.250", "{after}");
    assert_eq!(after["inferenceConfig"]["stopSequences"], serde_json::json!(["END"]));
    assert!(after["inferenceConfig"]["maxTokens"].is_u64(), "the engine's max_tokens: {after}");
    assert_eq!(after["serviceTier"], serde_json::json!({"type": "priority"}));
    assert_eq!(after["requestMetadata"], serde_json::json!({"team": "search"}));

    // Recorded in the log, and in force after a restart.
    let stored = rig.store().load(session.id()).await.unwrap();
    let recorded = stored
        .records
        .iter()
        .any(|r| matches!(&r.entry, Entry::Config(ConfigChange::Settings(s)) if **s == settings));
    assert!(recorded, "a settings record");
    let id = session.id();
    drop((session, engine));
    rig.restart().await;
    let engine = rig.builder().build().unwrap();
    engine.open(id).await.unwrap().send("Again").await.unwrap();
    let again = rig.bodies().last().unwrap().clone();
    assert_eq!(again["inferenceConfig"]["temperature"].to_string(), "0.250", "{again}");

    // New settings replace those in force: what they leave out is no longer sent.
    let session = engine.open(id).await.unwrap();
    let any = ToolChoice::new(ToolChoiceKind::Any);
    session.set_settings(Settings { tool_choice: Some(any), ..Settings::default() }).await.unwrap();
    session.send("Cleared").await.unwrap();
    let cleared = rig.bodies().last().unwrap().clone();
    assert!(cleared["inferenceConfig"].get("temperature").is_none(), "replaced: {cleared}");
    assert!(cleared.get("serviceTier").is_none(), "{cleared}");
}

#[tokio::test]
async fn an_imported_body_s_settings_are_used_when_the_session_continues() {
    let rig = Rig::new(Behaviour::Text).await;
    let body = br#"{"modelId": "us.anthropic.claude-sonnet-4-20250514-v1:0",
        "messages": [{"role": "user", "content": [{"text": "Hi"}]},
                     {"role": "assistant", "content": [{"text": "Hello"}]}],
        "inferenceConfig": {"maxTokens": 300, "topP": 0.9},
        "performanceConfig": {"latency": "optimized"}}"#;
    let importer = Importer::new("body", ImportOptions::default());
    let mut ids = Vec::new();
    importer.store(&*rig.store(), &body[..], |done| ids.push(done.id)).await.unwrap();
    let engine = rig.builder().build().unwrap();
    engine.open(ids[0]).await.unwrap().send("Next").await.unwrap();
    let sent = rig.bodies().last().unwrap().clone();
    assert_eq!(sent["inferenceConfig"]["maxTokens"], 300, "{sent}");
    assert_eq!(sent["inferenceConfig"]["topP"].to_string(), "0.9");
    assert_eq!(sent["performanceConfig"], serde_json::json!({"latency": "optimized"}));
}

/// Kept request keys of one surface are not sent to another: a session imported from an
/// InvokeModel body (its `metadata`, a newer `anthropic_version`) goes on over Converse.
#[tokio::test]
async fn an_imported_body_s_keys_of_another_surface_stay_behind() {
    let rig = Rig::new(Behaviour::Text).await;
    let body = br#"{"anthropic_version": "2026-10-21", "max_tokens": 200,
        "metadata": {"user_id": "u-1"}, "temperature": 0.5,
        "messages": [{"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]}]}"#;
    let options = ImportOptions {
        model: Some("us.anthropic.claude-sonnet-4-20250514-v1:0".into()),
        ..ImportOptions::default()
    };
    let mut ids = Vec::new();
    Importer::new("body", options)
        .store(&*rig.store(), &body[..], |d| ids.push(d.id))
        .await
        .unwrap();
    let engine = rig.builder().build().unwrap();
    engine.open(ids[0]).await.unwrap().send("Next").await.unwrap();
    let sent = rig.bodies().last().unwrap().clone();
    assert_eq!(sent["inferenceConfig"]["maxTokens"], 200, "{sent}");
    assert_eq!(sent["inferenceConfig"]["temperature"].to_string(), "0.5");
    assert!(sent.get("metadata").is_none() && sent.get("anthropic_version").is_none(), "{sent}");
}
