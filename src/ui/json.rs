//! `--json`: one event per line on stdout, for machines.

use std::io::Write;

use super::Reporter;
use crate::events::Event;

pub struct Json;

impl Reporter for Json {
    fn event(&mut self, event: &Event) {
        match serde_json::to_string(event) {
            // A closed pipe (`parc --json ... | head`) is the reader's choice,
            // not an error worth dying for: the run itself goes on.
            Ok(line) => {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
            Err(e) => tracing::error!("cannot encode event: {e}"),
        }
    }
}
