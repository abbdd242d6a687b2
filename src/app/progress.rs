//! Progress bars on a terminal: the engine's events rendered with
//! indicatif, one bar per blob in flight and a total with bytes, rate and
//! ETA; and a log writer that keeps log lines from tearing the bars.
//!
//! Owns when bars are drawn (`--progress auto|always|never`) and how they
//! look. Never affects what is copied or printed as a report.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::ProgressArg;
use crate::digest::Digest;
use crate::progress::{BlobOutcome, Event, Progress};

/// The bars being drawn, if any: log lines go around them.
static DRAWING: OnceLock<MultiProgress> = OnceLock::new();

/// Whether bars are drawn, given the flag and what else goes to the terminal.
pub fn wanted(flag: ProgressArg, quiet: bool, json: bool) -> bool {
    match flag {
        ProgressArg::Never => false,
        ProgressArg::Always => true,
        ProgressArg::Auto => !quiet && !json && std::io::stderr().is_terminal(),
    }
}

/// Bars for a run of `images` images.
pub struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    blobs: Mutex<HashMap<Digest, (ProgressBar, u64)>>,
    images: u64,
    done: Mutex<(u64, u64)>,
}

impl Bars {
    pub fn new(images: u64) -> Bars {
        // `term_like` draws whatever stderr is (`--progress always`); the
        // caller decided that bars are wanted.
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(console::Term::stderr()), 10);
        let multi = MultiProgress::with_draw_target(target);
        let total = multi.add(ProgressBar::new(0));
        total.set_style(style(
            "{msg:<24} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        ));
        let _ = DRAWING.set(multi.clone());
        let bars = Bars {
            multi,
            total,
            blobs: Mutex::default(),
            images,
            done: Mutex::new((0, 0)),
        };
        bars.update_message();
        bars
    }

    /// Prints a line above the bars.
    pub fn println(&self, line: &str) {
        self.multi.suspend(|| eprintln!("{line}"));
    }

    pub fn finish(&self) {
        for (_, (bar, _)) in self
            .blobs
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
        {
            bar.finish_and_clear();
        }
        self.total.finish_and_clear();
    }

    fn update_message(&self) {
        if let Ok(done) = self.done.lock() {
            let failed = if done.1 > 0 {
                format!(", {} failed", done.1)
            } else {
                String::new()
            };
            self.total
                .set_message(format!("images {}/{}{failed}", done.0, self.images));
        }
    }

    fn blob_started(&self, digest: &Digest, size: u64) {
        let Ok(mut blobs) = self.blobs.lock() else {
            return;
        };
        if let Some((bar, seen)) = blobs.get_mut(digest) {
            // A retry starts the blob over: its earlier bytes no longer count.
            self.total
                .set_position(self.total.position().saturating_sub(*seen));
            bar.set_position(0);
            *seen = 0;
            return;
        }
        let bar = self
            .multi
            .insert_before(&self.total, ProgressBar::new(size));
        bar.set_style(style("  {msg:<19} [{bar:30}] {bytes}/{total_bytes}"));
        bar.set_message(digest.short());
        self.total.inc_length(size);
        blobs.insert(digest.clone(), (bar, 0));
    }

    fn blob_bytes(&self, digest: &Digest, n: u64) {
        if let Ok(mut blobs) = self.blobs.lock()
            && let Some((bar, seen)) = blobs.get_mut(digest)
        {
            bar.inc(n);
            *seen += n;
            self.total.inc(n);
        }
    }

    fn blob_done(&self, digest: &Digest, outcome: BlobOutcome) {
        let Ok(mut blobs) = self.blobs.lock() else {
            return;
        };
        if let Some((bar, seen)) = blobs.remove(digest) {
            if outcome == BlobOutcome::Failed {
                self.total
                    .set_position(self.total.position().saturating_sub(seen));
                self.total.set_length(
                    self.total
                        .length()
                        .unwrap_or(0)
                        .saturating_sub(bar.length().unwrap_or(0)),
                );
            }
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Progress for Bars {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::ImageStarted { .. } => {}
            Event::BlobStarted { digest, size } => self.blob_started(digest, size),
            Event::BlobBytes { digest, bytes } => self.blob_bytes(digest, bytes),
            Event::BlobDone { digest, outcome } => self.blob_done(digest, outcome),
            Event::ImageDone { report } => {
                if let Ok(mut done) = self.done.lock() {
                    match report.failed() {
                        true => done.1 += 1,
                        false => done.0 += 1,
                    }
                }
                self.update_message();
            }
        }
    }
}

/// A `tracing` writer for stderr that suspends the bars while a log line
/// is written, so neither tears the other.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match DRAWING.get() {
            Some(multi) => multi.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
