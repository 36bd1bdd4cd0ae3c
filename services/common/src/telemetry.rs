//! Logging set up in one place. `RUST_LOG` filters (default `info`); `ALTDATA_LOG_FORMAT=json`
//! switches to one JSON object per line for log shippers.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber. Safe to call more than once: later calls do nothing, which
/// lets tests and `altdata demo` share one process.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("ALTDATA_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.compact().try_init()
    };
}

/// For tests: silent unless `RUST_LOG` asks for output.
pub fn init_for_tests() {
    if std::env::var("RUST_LOG").is_ok() {
        init();
    }
}
