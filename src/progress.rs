//! Progress of a copy, for people watching: a bar redrawn in place on a
//! terminal, or a log line every few seconds in CI (where `\r` redraws
//! would fill the log). Writes to stderr only; stdout stays the report.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::copy::ProgressEvent;

/// How often a CI log line is written.
const LOG_EVERY: Duration = Duration::from_secs(5);
/// How often the terminal bar is redrawn (10 times a second is smooth
/// enough and costs nothing).
const DRAW_EVERY: Duration = Duration::from_millis(100);
const BAR_WIDTH: usize = 30;

#[derive(Default)]
struct State {
    targets: usize,
    targets_done: usize,
    failed: usize,
    bytes_total: u64,
    bytes_done: u64,
    last: Option<Instant>,
}

/// Receives [`ProgressEvent`]s from the copy executor (from any task).
pub struct Progress {
    terminal: bool,
    started: Instant,
    state: Mutex<State>,
}

impl Progress {
    /// A reporter for `targets` (image, destination) pairs; draws a bar when
    /// stderr is a terminal.
    pub fn new(targets: usize) -> Self {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            state: Mutex::new(State {
                targets,
                ..State::default()
            }),
        }
    }

    /// Takes one event.
    pub fn on(&self, event: ProgressEvent) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            ProgressEvent::Started { targets, bytes, .. } => {
                state.targets = targets;
                state.bytes_total = bytes;
            }
            ProgressEvent::BlobDone { bytes, .. } => state.bytes_done += bytes,
            ProgressEvent::TargetDone { ok, .. } => {
                state.targets_done += 1;
                state.failed += usize::from(!ok);
            }
        }
        let finished = state.targets_done >= state.targets;
        let every = if self.terminal { DRAW_EVERY } else { LOG_EVERY };
        if !finished && state.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        state.last = Some(Instant::now());
        let line = self.line(&state);
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r{line}\x1b[K{}", if finished { "\n" } else { "" })
        } else {
            writeln!(err, "promoter: {line}")
        };
    }

    fn line(&self, s: &State) -> String {
        let fraction = if s.bytes_total > 0 {
            s.bytes_done.min(s.bytes_total) as f64 / s.bytes_total as f64
        } else if s.targets > 0 {
            s.targets_done as f64 / s.targets as f64
        } else {
            1.0
        };
        let filled = ((fraction * BAR_WIDTH as f64) as usize).min(BAR_WIDTH);
        let bar = format!("[{}{}]", "#".repeat(filled), " ".repeat(BAR_WIDTH - filled));
        let failed = if s.failed > 0 {
            format!(", {} failed", s.failed)
        } else {
            String::new()
        };
        format!(
            "{bar} {}/{} images to destinations{failed}, {} of {} MiB, {:.0}s",
            s.targets_done,
            s.targets,
            s.bytes_done / (1 << 20),
            s.bytes_total / (1 << 20),
            self.started.elapsed().as_secs_f64()
        )
    }
}
