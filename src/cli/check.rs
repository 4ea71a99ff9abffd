//! `chatd check --data DIR`: verifies a stopped server's data dir offline (`store/check.rs`)
//! and prints a line per chat (pretty on a terminal), then a summary. Exits 1 on damage (0 if
//! there is none: warnings, such as a torn write at the end of the log, what a crash leaves, are
//! not damage), 2 with a micro error on stderr if DIR is no data dir or cannot be read.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use super::output::{client_error, print_answer, Failure};
use crate::store::check::{check, Report};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The data dir (`storage.data_dir`) of a stopped server, or a backup.
    #[arg(long)]
    pub data: PathBuf,
}

/// Checks and prints; answers whether anything is damaged.
pub fn run(args: &CheckArgs) -> Result<bool, Failure> {
    let report = check(&args.data).map_err(|e| client_error("Failed", &e.to_string()))?;
    for line in lines(&report) {
        print_answer(&line);
    }
    Ok(report.damaged())
}

/// One line per chat, one per finding of no one chat, then the summary.
fn lines(report: &Report) -> Vec<Value> {
    let mut lines = Vec::new();
    for (no, chat) in &report.chats {
        let status = if !chat.damage.is_empty() { "damaged" } else { "ok" };
        let mut line = json!({
            "chat": chat.id, "namespace": chat.namespace, "number": no, "status": status, "records": chat.records,
        });
        if chat.deleted {
            line["deleted"] = json!(true);
        }
        if !chat.damage.is_empty() {
            line["damage"] = json!(chat.damage);
        }
        if !chat.warnings.is_empty() {
            line["warnings"] = json!(chat.warnings);
        }
        lines.push(line);
    }
    lines.extend(report.damage.iter().map(|why| json!({ "status": "damaged", "damage": why })));
    lines.extend(report.warnings.iter().map(|why| json!({ "status": "warning", "warning": why })));
    let damaged_chats = report.chats.values().filter(|c| !c.damage.is_empty()).count();
    let warnings = report.warnings.len() + report.chats.values().map(|c| c.warnings.len()).sum::<usize>();
    lines.push(json!({
        "summary": if report.damaged() { "damaged" } else { "clean" },
        "chats": report.chats.len(),
        "damaged_chats": damaged_chats,
        "segments": report.segments,
        "records": report.records,
        "warnings": warnings,
    }));
    lines
}
