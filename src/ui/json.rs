//! `--json`: one event per line on stdout, for machines.

use std::io::Write;

use super::Reporter;
use crate::engine::events::Event;

pub struct Json;

impl Reporter for Json {
    fn event(&mut self, event: &Event) {
        match serde_json::to_string(event) {
            // A reader that went away (`| head`) must not crash the run.
            Ok(line) => {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
            Err(e) => tracing::error!("cannot encode event: {e}"),
        }
    }
}
