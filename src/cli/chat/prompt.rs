//! Where the chat's input comes from: a line editor on a terminal (a prompt, editing, history
//! with Up and Down, Ctrl-C to clear the line, Ctrl-D to leave), plain lines otherwise (a pipe
//! or a file is read as it is, and no prompt is printed into it).

use std::io::{BufRead as _, IsTerminal as _};

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

/// The prompt shown before each line on a terminal.
const PROMPT: &str = "> ";

/// The lines the chat reads: from the line editor when standard input and output are a
/// terminal, else from standard input as plain lines.
pub(super) fn input_lines() -> Box<dyn Iterator<Item = std::io::Result<String>>> {
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    match terminal.then(DefaultEditor::new) {
        Some(Ok(editor)) => Box::new(Prompted { editor }),
        // No terminal, or one the editor cannot drive: plain lines.
        _ => Box::new(std::io::stdin().lock().lines()),
    }
}

/// Lines typed at the line editor's prompt.
struct Prompted {
    editor: DefaultEditor,
}

impl Iterator for Prompted {
    type Item = std::io::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.editor.readline(PROMPT) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        // History only for this chat; a failure to keep it loses nothing typed.
                        let _ = self.editor.add_history_entry(line.as_str());
                    }
                    return Some(Ok(line));
                }
                // Ctrl-C clears the line, as in a shell; nothing typed on it is sent.
                Err(ReadlineError::Interrupted) => {
                    say!("(line cleared; Ctrl-D or /quit leaves)");
                }
                Err(ReadlineError::Eof) => return None,
                Err(ReadlineError::Io(e)) => return Some(Err(e)),
                Err(e) => return Some(Err(std::io::Error::other(e))),
            }
        }
    }
}
