//! Off-TTY output: one line per finished host, then a summary. Stable for logs.

use super::{Options, Reporter, lines};
use crate::engine::events::Event;

pub struct Plain {
    options: Options,
    action: String,
}

impl Plain {
    pub fn new(options: Options) -> Self {
        Plain {
            options,
            action: String::new(),
        }
    }
}

impl Reporter for Plain {
    fn event(&mut self, event: &Event) {
        if let Event::RunStarted { action, .. } = event {
            self.action = action.clone();
        }
        if let Some(text) = lines::event(event, &self.action, self.options.show_output) {
            // Command output is the product of `parc run`: stdout. Otherwise
            // lines are progress, and stdout stays for the result (tables).
            if self.options.show_output && matches!(event, Event::HostFinished { .. }) {
                println!("{text}");
            } else {
                eprintln!("{text}");
            }
        }
    }
}
