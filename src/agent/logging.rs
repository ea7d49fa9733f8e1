//! The agent's diagnostic log (`tracing` to stderr, which systemd puts in the journal) and its
//! level, `xConfiguration Logging Level`: one filter behind a reload handle, so every generation
//! swap applies the configured level to the running process without a restart. The level also
//! decides whether Debug and Trace detail lines reach the event log; events at Info and above
//! always go there, since status and the audit trail are read from it.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Registry;

use crate::schema::values::ErrorWarnInfoDebugTrace as Level;

/// The filter of the installed subscriber; cloned into the agent, which sets it per generation.
#[derive(Clone, Debug)]
pub struct LogControl {
    handle: reload::Handle<LevelFilter, Registry>,
}

/// The tracing filter for a configured `Logging Level`.
pub fn filter_of(level: Level) -> LevelFilter {
    match level {
        Level::Error => LevelFilter::ERROR,
        Level::Warn => LevelFilter::WARN,
        Level::Info => LevelFilter::INFO,
        Level::Debug => LevelFilter::DEBUG,
        Level::Trace => LevelFilter::TRACE,
    }
}

/// Installs the process-wide subscriber: plain lines on stderr, filtered at `initial` until the
/// first generation says otherwise. `None` when a subscriber is already installed.
pub fn install_stderr(initial: LevelFilter) -> Option<LogControl> {
    let (filter, handle) = reload::Layer::new(initial);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .ok()?;
    Some(LogControl { handle })
}

impl LogControl {
    /// The filter in force.
    pub fn current(&self) -> Option<LevelFilter> {
        self.handle.clone_current()
    }

    /// Applies `level`; returns the previous filter when it changed.
    pub fn set(&self, level: LevelFilter) -> Option<LevelFilter> {
        let before = self.current()?;
        if before == level {
            return None;
        }
        self.handle.reload(level).ok()?;
        Some(before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_configured_level_has_its_filter() {
        let got: Vec<String> = Level::ALL
            .iter()
            .map(|l| filter_of(*l).to_string())
            .collect();
        assert_eq!(got, ["error", "warn", "info", "debug", "trace"]);
    }
}
