//! On a terminal: a bar for the whole run and a spinner line per active host;
//! finished hosts scroll above the bars.

use std::collections::HashMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::{Options, Reporter, lines};
use crate::events::{Event, HostState};

pub struct Tty {
    options: Options,
    output: lines::OutputLines,
    multi: MultiProgress,
    overall: Option<ProgressBar>,
    active: HashMap<String, ProgressBar>,
    action: String,
    recap: Vec<(HostState, String)>,
}

impl Tty {
    pub fn new(options: Options) -> Self {
        Tty {
            options,
            output: lines::OutputLines::default(),
            multi: MultiProgress::new(),
            overall: None,
            active: HashMap::new(),
            action: String::new(),
            recap: Vec::new(),
        }
    }

    fn host_bar(&mut self, host: &str) -> &ProgressBar {
        let multi = &self.multi;
        self.active.entry(host.to_string()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("  {spinner} {prefix:12} {msg}")
                    .expect("static template"),
            );
            bar.set_prefix(host.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        })
    }
}

impl Reporter for Tty {
    fn event(&mut self, event: &Event) {
        if self.options.show_output
            && let Some(text) = self.output.event(event)
        {
            let _ = self.multi.println(text);
        }
        match event {
            Event::RunStarted { action, hosts, .. } => {
                self.action = action.clone();
                let bar = self.multi.add(ProgressBar::new(hosts.len() as u64));
                bar.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} hosts {elapsed}")
                        .expect("static template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(action.clone());
                self.overall = Some(bar);
            }
            Event::HostPhase { host, phase } => self.host_bar(host).set_message(phase.clone()),
            Event::HostProgress {
                host,
                done_bytes,
                total_bytes,
                wire,
            } => {
                let bar = self.host_bar(host);
                if bar.length() != Some(*total_bytes) {
                    // From spinner to a byte bar the first time a host reports bytes.
                    bar.set_length(*total_bytes);
                    bar.reset_elapsed();
                    bar.set_style(
                        ProgressStyle::with_template(
                            "  {spinner} {prefix:12} [{bar:24}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                        )
                        .expect("static template")
                        .progress_chars("=> "),
                    );
                }
                bar.set_position(*done_bytes);
                if let Some(w) = wire.as_ref().filter(|w| w.read_bytes > 0) {
                    bar.set_message(lines::wire_progress(w));
                }
            }
            Event::HostFinished {
                host,
                state,
                outcome,
                ..
            } => {
                if let Some(row) = lines::recap_row(host, *state, outcome) {
                    self.recap.push((*state, row));
                }
                if let Some(bar) = self.active.remove(host) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                if let Some(text) = lines::event(event, &self.action, self.options) {
                    let _ = self.multi.println(text);
                }
                if let Some(bar) = &self.overall {
                    bar.inc(1);
                }
            }
            Event::RunFinished { .. } => {
                if let Some(bar) = self.overall.take() {
                    bar.finish_and_clear();
                }
                if let Some(text) = lines::recap(&mut self.recap) {
                    let _ = self.multi.println(text);
                }
                if let Some(text) = lines::event(event, &self.action, self.options) {
                    let _ = self.multi.println(text);
                }
            }
            other => {
                if let Some(text) = lines::event(other, &self.action, self.options) {
                    let _ = self.multi.println(text);
                }
            }
        }
    }
}
