//! What `pack`, `push` and `mirror` share: the flags that shape a transfer, running the jobs with
//! a progress display, and the final summary with the exit code (3 when any image failed).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::exit::Exit;
use crate::output::count;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct TransferArgs {
    /// Copy only this platform of multi-platform images (os/arch[/variant]); repeatable.
    /// Without it every platform is copied and the index digest is preserved.
    #[arg(long = "platform", value_name = "OS/ARCH", value_parser = parse_platform)]
    pub platforms: Vec<oci::Platform>,

    /// Do not copy referrers (signatures, SBOMs).
    #[arg(long)]
    pub no_referrers: bool,

    /// How the run reports.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,
}

/// `os/arch[/variant]`, checked when the flags are parsed (a usage error, exit 2).
fn parse_platform(text: &str) -> Result<oci::Platform, String> {
    oci::Platform::parse(text).ok_or_else(|| format!("{text:?}: write it as os/arch[/variant]"))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    /// A live line on a terminal, the summary otherwise.
    #[default]
    Auto,
    /// Only failures and the summary.
    Quiet,
    /// One JSON object a line: each image, then the summary.
    Json,
}

impl TransferArgs {
    pub fn transfer(&self, concurrency: usize) -> anyhow::Result<oci_transfer::Transfer> {
        Ok(oci_transfer::Transfer::new(oci_transfer::TransferOptions {
            platforms: self.platforms.clone(),
            concurrency: concurrency.max(1),
            referrers: !self.no_referrers,
            ..oci_transfer::TransferOptions::default()
        }))
    }
}

#[derive(Serialize)]
struct ImageLine<'a> {
    source: &'a str,
    target: &'a str,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index_preserved: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct Summary {
    summary: oci_transfer::Stats,
    seconds: f64,
}

/// Run the jobs and report; one failing image does not stop the others.
pub async fn run(
    transfer: &oci_transfer::Transfer,
    jobs: Vec<(oci_transfer::Endpoint, oci_transfer::Endpoint)>,
    progress: Progress,
) -> anyhow::Result<(Exit, Vec<oci_transfer::ImageResult>)> {
    let total = jobs.len();
    let started = Instant::now();
    let live = progress == Progress::Auto && std::io::stderr().is_terminal();
    let results = if live {
        let work = transfer.copy_many(jobs);
        tokio::pin!(work);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                results = &mut work => break results,
                _ = tick.tick() => show_live(&transfer.stats(), total, started),
            }
        }
    } else {
        transfer.copy_many(jobs).await
    };
    if live {
        eprint!("\r\x1b[2K");
    }
    let stats = transfer.stats();
    let seconds = started.elapsed().as_secs_f64();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for r in &results {
        match progress {
            Progress::Json => {
                let (digest, preserved, error) = match &r.outcome {
                    Ok(c) => (
                        Some(
                            c.target_digest
                                .as_ref()
                                .unwrap_or(&c.source_digest)
                                .to_string(),
                        ),
                        Some(c.index_preserved),
                        None,
                    ),
                    Err(e) => (None, None, Some(e.to_string())),
                };
                let line = ImageLine {
                    source: &r.source,
                    target: &r.target,
                    ok: r.outcome.is_ok(),
                    digest,
                    index_preserved: preserved,
                    error,
                };
                writeln!(out, "{}", serde_json::to_string(&line)?)?;
            }
            _ => match &r.outcome {
                Ok(c) if progress == Progress::Auto => writeln!(
                    out,
                    "ok      {} -> {} ({})",
                    r.source, r.target, c.source_digest
                )?,
                Ok(_) => {}
                Err(e) => eprintln!(
                    "airlock: failed: {} -> {}: {}",
                    r.source,
                    r.target,
                    crate::output::escape(&e.to_string())
                ),
            },
        }
    }
    if progress == Progress::Json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&Summary {
                summary: stats,
                seconds
            })?
        )?;
    } else {
        eprintln!(
            "airlock: {} ok, {} failed; {} sent, {} skipped, {} mounted; {} sent in {seconds:.1}s",
            count(stats.images_ok, "image", "images"),
            stats.images_failed,
            count(stats.blobs_sent, "blob", "blobs"),
            stats.blobs_skipped,
            stats.blobs_mounted,
            human_bytes(stats.bytes_sent),
        );
    }
    let exit = if results.iter().any(|r| r.outcome.is_err()) {
        Exit::Registry
    } else {
        Exit::Ok
    };
    Ok((exit, results))
}

fn show_live(stats: &oci_transfer::Stats, total: usize, started: Instant) {
    let done = stats.images_ok + stats.images_failed;
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let rate = stats.bytes_moved as f64 / secs;
    // What is left of the work known so far; grows as more manifests are read.
    let left = stats
        .bytes_known
        .saturating_sub(stats.bytes_sent + stats.bytes_skipped);
    let eta = if rate > 0.0 && left > 0 {
        format!("  ~{:.0}s left", left as f64 / rate)
    } else {
        String::new()
    };
    eprint!(
        "\r\x1b[2K{done}/{}  {} of {}  {}/s{eta}  {} sent, {} skipped",
        count(total as u64, "image", "images"),
        human_bytes(stats.bytes_moved),
        human_bytes(stats.bytes_known),
        human_bytes(rate as u64),
        count(stats.blobs_sent, "blob", "blobs"),
        stats.blobs_skipped
    );
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
