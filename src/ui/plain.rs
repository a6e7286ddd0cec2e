//! Off-TTY output: one line per finished host, then a summary. Stable for logs.

use super::{Options, Reporter, lines};
use crate::events::{Event, HostState};

pub struct Plain {
    options: Options,
    output: lines::OutputLines,
    action: String,
    recap: Vec<(HostState, String)>,
}

impl Plain {
    pub fn new(options: Options) -> Self {
        Plain {
            options,
            output: lines::OutputLines::default(),
            action: String::new(),
            recap: Vec::new(),
        }
    }
}

impl Reporter for Plain {
    fn event(&mut self, event: &Event) {
        if self.options.show_output
            && let Some(text) = self.output.event(event)
        {
            println!("{text}");
        }
        match event {
            Event::RunStarted { action, .. } => self.action = action.clone(),
            Event::HostFinished {
                host,
                state,
                outcome,
                ..
            } => {
                if let Some(row) = lines::recap_row(host, *state, outcome) {
                    self.recap.push((*state, row));
                }
            }
            Event::RunFinished { .. } => {
                if let Some(text) = lines::recap(&mut self.recap) {
                    eprintln!("{text}");
                }
            }
            _ => {}
        }
        if let Some(text) = lines::event(event, &self.action, self.options) {
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
