//! `--json`: one event per line on stdout, for machines.

use super::Reporter;
use crate::engine::events::Event;

pub struct Json;

impl Reporter for Json {
    fn event(&mut self, event: &Event) {
        match serde_json::to_string(event) {
            Ok(line) => println!("{line}"),
            Err(e) => tracing::error!("cannot encode event: {e}"),
        }
    }
}
