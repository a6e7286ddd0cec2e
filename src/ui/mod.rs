//! Presentation: the one place that turns engine events into output.
//!
//! Like colmena's monitor, a single task owns the display. On a TTY it draws
//! indicatif bars; off a TTY it prints plain lines (logs, CI); with `--json` it
//! prints one JSON object per event for machines.

mod json;
pub(crate) mod lines;
mod plain;
mod tty;

use std::io::IsTerminal;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::events::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Tty,
    Plain,
    Json,
}

impl Mode {
    /// `--json` wins; otherwise bars only when stderr is a terminal.
    pub fn detect(json: bool) -> Mode {
        if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Tty
        } else {
            Mode::Plain
        }
    }
}

/// What the human reporters show besides host states.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Print each host's command output (`parc run`), not just its state.
    pub show_output: bool,
    /// Print each host's resource changes and diffs (`parc plan`, `--diff`,
    /// `-v`). Failed resources are always shown.
    pub show_changes: bool,
}

/// Consume events until the engine drops its sender.
pub fn spawn(mode: Mode, options: Options, mut rx: UnboundedReceiver<Event>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reporter: Box<dyn Reporter> = match mode {
            Mode::Json => Box::new(json::Json),
            Mode::Plain => Box::new(plain::Plain::new(options)),
            Mode::Tty => Box::new(tty::Tty::new(options)),
        };
        while let Some(event) = rx.recv().await {
            reporter.event(&event);
        }
    })
}

trait Reporter: Send {
    fn event(&mut self, event: &Event);
}
