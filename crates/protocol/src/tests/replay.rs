//! The turn a store would build from a repair: what the assembler and repair tests replay.

use crate::assemble::{Action, Assembly, TurnConfig};

/// The turn configuration a store would build for the next request after `repaired`: every
/// fix recorded (history changes are replayed from there), and the settings fixes taken as
/// the settings of the turn (they are decided per request).
pub(crate) fn replay_turn(turn: &TurnConfig, repaired: &Assembly) -> TurnConfig {
    let mut replay = turn.clone();
    replay.recorded_fixes = repaired.fixes.clone();
    for fix in &repaired.fixes {
        match &fix.action {
            Action::SetThinking { thinking } => replay.thinking = thinking.clone(),
            Action::SetTools { tools } => replay.tools = tools.clone(),
            Action::SetInference { inference } => replay.inference = inference.clone(),
            Action::SetTopK { top_k } => replay.top_k = *top_k,
            Action::SetToolChoice { tool_choice } => replay.tool_choice = tool_choice.clone(),
            Action::SetSystem { system } => replay.system = system.clone(),
            _ => {}
        }
    }
    replay
}
