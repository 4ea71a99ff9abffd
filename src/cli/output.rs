//! How the client prints: JSON pretty-printed for a person at a terminal, one line for a
//! pipe or a file (so `| jq` and `| while read` both work); errors as micro errors on stderr.

use std::io::IsTerminal;

use serde_json::{json, Value};

/// A failed command: the micro error to print on stderr (the server's own when it answered).
#[derive(Debug)]
pub struct Failure(pub Value);

/// A micro error made by the client itself (`chatd.Client.{reason}`), e.g. when the server
/// cannot be reached; code 503 for those, 400 for a request it refuses itself, 500 for anything else.
pub fn client_error(reason: &str, detail: &str) -> Failure {
    let (code, status) = match reason {
        "Unreachable" => (503, "Service Unavailable"),
        "BadRequest" => (400, "Bad Request"),
        _ => (500, "Internal Server Error"),
    };
    Failure(json!({ "id": format!("chatd.Client.{reason}"), "code": code, "detail": detail, "status": status }))
}

/// `value` as the stream at hand prints it: pretty on a terminal, one line otherwise.
fn render(value: &Value, terminal: bool) -> String {
    let text = if terminal { serde_json::to_string_pretty(value) } else { serde_json::to_string(value) };
    text.unwrap_or_else(|_| value.to_string())
}

/// Prints a command's answer on stdout.
pub fn print_answer(value: &Value) {
    println!("{}", render(value, std::io::stdout().is_terminal()));
}

impl Failure {
    /// Prints the error on stderr.
    pub fn print(&self) {
        eprintln!("{}", render(&self.0, std::io::stderr().is_terminal()));
    }
}
