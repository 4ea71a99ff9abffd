//! The log lines: readable text by default, one JSON object per line with `log.format = "json"`.
//! Each request's lines carry its request id (the `request` span of `http/observe.rs`). What is
//! logged never holds a secret (settings print keys redacted) or a message's text.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the process's log subscriber; `RUST_LOG` wins over `log.level` when set.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let installed = match settings.format {
        LogFormat::Text => builder.try_init(),
        // The current span's fields (the request id) on each line, not the whole span stack.
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
    if let Err(err) = installed {
        eprintln!("chatd: could not install the logger: {err}");
    }
}
