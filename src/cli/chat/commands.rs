//! The chat's `/commands`: settings, attachments, usage, the stored session, a retry.

use verbatim_engine::Session;
use verbatim_protocol::pricing::PriceTable;
use verbatim_store::SessionStore;

use super::{
    Chat, Current, Printer, cost_line, parse_thinking, report, say_thinking, thinking_line,
    transcript, usage_line,
};

/// What `/help` says.
const HELP: &str = "/thinking off|BUDGET|adaptive  the thinking setting, from the next turn
/attach [FILE]                  send an image or a document with the next message (lists them)
/detach                         drop what /attach attached
/model [ID]                     the model (shown without ID, switched with one)
/retry                          send the input a failed turn stored again
/usage                          tokens, cache hit rate and cost so far
/show                           the whole session as stored
/help                           this list
/quit                           end the chat (also at the end of the input)";

/// Runs a `/command`; false to quit.
pub(super) async fn command_line(
    current: &mut Current<'_>,
    store: &dyn SessionStore,
    chat: &Chat,
    command: &str,
) -> bool {
    let (name, value) = command.split_once(' ').unwrap_or((command, ""));
    if matches!(name, "quit" | "exit") {
        return false;
    }
    if name == "help" {
        say!("{HELP}");
        return true;
    }
    if name == "attach" {
        match current.attached.add(value) {
            Ok(text) => say!("{text}"),
            Err(error) => say!("error: {error}"),
        }
        return true;
    }
    if name == "detach" {
        say!("{} attachment(s) dropped", current.attached.clear());
        return true;
    }
    if name == "model" && value.is_empty() && current.session.is_none() {
        say!("model: {}", chat.model);
        return true;
    }
    if matches!(name, "usage" | "show") && current.session.is_none() {
        say!("No session yet: it starts with your first message.");
        return true;
    }
    let session = match current.get().await {
        Ok(session) => session,
        Err(error) => {
            say!("error: {error}");
            return true;
        }
    };
    let outcome = match name {
        "usage" => match session.ledger(&PriceTable::new()).await {
            Ok(ledger) => Ok(format!("{}; {}", usage_line(&ledger.usage), cost_line(&ledger))),
            Err(error) => Err(error.to_string()),
        },
        "show" => match store.load(session.id()).await {
            Ok(stored) => Ok(transcript(&stored).trim_end().to_owned()),
            Err(error) => Err(error.to_string()),
        },
        "model" if !value.is_empty() => {
            let set = session.set_model(value).await;
            if set.is_ok() {
                say!("model: {value}");
                say_thinking(session, chat).await;
                return true;
            }
            set.map(|()| String::new()).map_err(|e| e.to_string())
        }
        "model" => match session.load().await {
            Ok(stored) => Ok(format!("model: {}", stored.config().model)),
            Err(error) => Err(error.to_string()),
        },
        "thinking" => set_thinking(session, chat, value).await,
        "retry" => {
            retry(session, chat).await;
            return true;
        }
        _ => Err(format!("unknown command /{command} (/help lists them)")),
    };
    match outcome {
        Ok(text) => say!("{text}"),
        Err(error) => say!("error: {error}"),
    }
    true
}

/// `/thinking VALUE`: sets the setting when it can be sent, saying what is sent and why when
/// that is not the setting itself; refuses it (changing nothing) when it cannot.
async fn set_thinking(session: &Session, chat: &Chat, value: &str) -> Result<String, String> {
    let thinking = parse_thinking(value)?;
    let model = session.load().await.map_err(|e| e.to_string())?.config().model;
    let (line, _) = thinking_line(&model, chat.api, thinking.as_ref())
        .map_err(|e| format!("{e}; thinking unchanged"))?;
    session.set_thinking(thinking).await.map_err(|e| e.to_string())?;
    Ok(format!("{line} (from the next turn)"))
}

/// `/retry`: answers the stored input a failed turn left without an answer (or finishes a
/// tool loop left open), as a new turn would; says so when there is nothing to answer.
async fn retry(session: &Session, chat: &Chat) {
    let mut printer = Printer::showing_steps(chat.verbose);
    let result = session.resume_with(|event| printer.event(event)).await;
    printer.finish();
    match result {
        Ok(None) => say!("nothing to retry: the last message has its answer"),
        Ok(Some(reply)) => {
            let _ = report(session, chat, Ok(reply));
        }
        Err(error) => {
            let _ = report(session, chat, Err(error));
        }
    }
}
