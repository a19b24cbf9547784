//! Model ids are checked where they enter the engine: the default of new sessions, a session
//! created with its own model, and a model switch. A refused id leaves the store unchanged.

use verbatim_emulator::Behaviour;
use verbatim_model::ModelIdError;
use verbatim_store::{NewSession, SessionStore as _};

use super::{MODEL, Rig};
use crate::EngineError;

#[tokio::test]
async fn a_model_id_with_a_control_character_or_too_long_is_refused_where_it_enters() {
    let rig = Rig::new(Behaviour::Text).await;
    let error = rig.builder().model("anthropic.claude\nfake").build().unwrap_err();
    assert!(
        matches!(error, EngineError::ModelId(ModelIdError::Control { found: '\n', at: 17 })),
        "{error}"
    );

    let engine = rig.builder().build().unwrap();
    let long = "m".repeat(2049);
    let error = engine.create_with(NewSession::new(long.as_str())).await.err().unwrap();
    assert!(matches!(error, EngineError::ModelId(ModelIdError::TooLong { chars: 2049 })));

    let session = engine.create().await.unwrap();
    let before = rig.store().load(session.id()).await.unwrap().info.version;
    let error = session.set_model("x\u{1b}[2J").await.unwrap_err();
    assert!(matches!(error, EngineError::ModelId(ModelIdError::Control { .. })), "{error}");
    assert_eq!(error.to_string(), ModelIdError::Control { found: '\u{1b}', at: 2 }.to_string());
    let error = session.set_model("").await.unwrap_err();
    assert!(matches!(error, EngineError::ModelId(ModelIdError::Empty)), "{error}");
    let after = rig.store().load(session.id()).await.unwrap();
    assert_eq!(after.info.version, before, "nothing was appended");
    assert_eq!(after.config().model, MODEL);
    session.set_model("us.anthropic.claude-opus-4-5-20251101-v1:0").await.unwrap();
}
