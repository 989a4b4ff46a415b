//! Feedback on stderr: progress bars for the commands that can run for more than a second
//! (`population`, `cascade`, `replay`, `journal`), and notes about what a command is doing.
//!
//! Stdout carries results only, so a progress bar never mixes with them: it is drawn on stderr,
//! and only when stderr is a terminal (pipes, tests and CI logs stay clean). `--quiet` silences
//! bars and notes alike, and the service's information logs; errors and warnings (a ledger
//! that does not balance, a torn journal tail) still print.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether the command may talk on stderr (`--quiet` says not).
#[derive(Clone, Copy, Debug)]
pub struct Feedback {
    quiet: bool,
}

impl Feedback {
    /// Feedback as `--quiet` asks.
    #[must_use]
    pub fn new(quiet: bool) -> Self {
        Self { quiet }
    }

    /// Whether `--quiet` was given.
    #[must_use]
    pub fn quiet(self) -> bool {
        self.quiet
    }

    /// Whether a bar would be drawn: not quiet, and stderr a terminal.
    fn draws(self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }

    /// A bar that fills as its position reaches `length` (accounts, events, bytes: the
    /// template's `{pos}`, `{len}`, `{bytes}` show which). Hidden when it would not be drawn.
    #[must_use]
    pub fn bar(self, length: u64, template: &str) -> ProgressBar {
        if !self.draws() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar
    }

    /// A spinner for work of unknown length (the rounds of a cascade), with a message.
    #[must_use]
    pub fn spinner(self, template: &str) -> ProgressBar {
        if !self.draws() {
            return ProgressBar::hidden();
        }
        let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            spinner.set_style(style);
        }
        // Redrawn on a timer, so a long round still shows the command is alive.
        spinner.enable_steady_tick(std::time::Duration::from_millis(200));
        spinner
    }

    /// A note on stderr (what a long-running command is doing), unless quiet.
    pub fn note(self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }
}

/// A count with thousands separators, for bar messages.
#[must_use]
pub fn count(value: usize) -> String {
    crate::render::grouped(&value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_feedback_draws_nothing() {
        let quiet = Feedback::new(true);
        assert!(!quiet.draws());
        assert!(quiet.bar(10, "{pos}/{len}").is_hidden());
        assert!(quiet.spinner("{msg}").is_hidden());
    }

    #[test]
    fn counts_are_grouped() {
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(count(999), "999");
    }
}
