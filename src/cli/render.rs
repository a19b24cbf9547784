//! Showing a turn as it happens: streamed text as it comes, thinking dimmed on a terminal,
//! tool calls and their results on their own lines.

use std::io::{IsTerminal as _, Write as _};

use verbatim_engine::{Event, Settled};
use verbatim_model::Usage;

/// Prints the events of a turn to standard output.
pub(crate) struct Printer {
    dim: bool,
    /// Whether each model call's end is shown (`[step N] stop reason: ...`).
    steps: bool,
    /// What the last fragment printed was: nothing, text or thinking.
    open: Open,
    /// Whether any text or thinking of the reply was printed.
    printed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Nothing,
    Text,
    Thinking,
}

impl Printer {
    /// A printer that shows every step: the demo's, which shows the tool loop at work.
    pub(crate) fn new() -> Printer {
        Printer::showing_steps(true)
    }

    /// A printer that shows the steps of a turn only when asked (the chat's `--verbose`).
    /// Thinking is dimmed on a terminal unless `NO_COLOR` is set (no-color.org).
    pub(crate) fn showing_steps(steps: bool) -> Printer {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Printer {
            dim: std::io::stdout().is_terminal() && !no_color,
            steps,
            open: Open::Nothing,
            printed: false,
        }
    }

    fn write(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    fn switch(&mut self, to: Open) {
        if self.open == to {
            return;
        }
        if self.open != Open::Nothing {
            self.write(if self.dim && self.open == Open::Thinking { "\x1b[0m\n" } else { "\n" });
        }
        match to {
            Open::Thinking if self.dim => self.write("\x1b[2m"),
            Open::Thinking => self.write("thinking: "),
            _ => {}
        }
        self.open = to;
    }

    /// Whether any of the reply's text or thinking was shown.
    pub(crate) fn printed(&self) -> bool {
        self.printed
    }

    /// Ends the line in progress, if any.
    pub(crate) fn finish(&mut self) {
        self.switch(Open::Nothing);
    }

    /// Shows one event.
    pub(crate) fn event(&mut self, event: Event) {
        match event {
            Event::Text(text) => {
                self.switch(Open::Text);
                self.write(&text);
                self.printed = true;
            }
            Event::Thinking(text) => {
                self.switch(Open::Thinking);
                self.write(&text);
                self.printed = true;
            }
            Event::ToolCall { name, input, .. } => {
                self.finish();
                self.write(&format!("[tool call] {name} {input}\n"));
            }
            Event::ToolResult { name, is_error, settled, .. } => {
                self.finish();
                let how = match settled {
                    Settled::Ran => "ran",
                    Settled::FromLog => "already completed before the restart: not run again",
                    Settled::Interrupted => "interrupted by the restart: answered as interrupted",
                    Settled::Unknown => "no such tool",
                };
                let outcome = if is_error { "error" } else { "ok" };
                self.write(&format!("[tool result] {name}: {outcome} ({how})\n"));
            }
            Event::Step { step, stop_reason, .. } => {
                if !self.steps {
                    return;
                }
                self.finish();
                let reason = stop_reason.as_ref().map_or("unknown", |r| r.as_str());
                self.write(&format!("[step {step}] stop reason: {reason}\n"));
            }
        }
    }
}

/// The cost of a session's calls at list prices and its cache hit rate, as one line.
pub(crate) fn cost_line(ledger: &verbatim_engine::Ledger) -> String {
    if ledger.lines.is_empty() {
        return "nothing billed yet".to_owned();
    }
    let mut line = format!("${:.4} at list prices", ledger.cost);
    if let Some(rate) = ledger.cache_hit_rate() {
        line.push_str(&format!(", cache hit rate {:.0}%", rate * 100.0));
    }
    match ledger.unpriced {
        0 => {}
        1 => line.push_str("; 1 call of a model without a price is not counted"),
        n => line.push_str(&format!("; {n} calls of models without a price are not counted")),
    }
    line
}

/// Token usage on one line.
pub(crate) fn usage_line(usage: &Usage) -> String {
    let n = |v: Option<u64>| v.unwrap_or(0);
    format!(
        "input {} tokens, output {} tokens, cache read {}, cache write {}",
        n(usage.input_tokens),
        n(usage.output_tokens),
        n(usage.cache_read_input_tokens),
        n(usage.cache_write_input_tokens)
    )
}
