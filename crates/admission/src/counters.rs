//! Admission counters by endpoint and outcome, rendered in the Prometheus text format next to
//! the HTTP metrics of `serving::metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Outcome;

/// The outcome labels, in exposition order.
const OUTCOMES: [&str; 7] = [
    "patched",
    "would_patch",
    "unchanged",
    "skipped",
    "denied",
    "warned",
    "error",
];

/// `[endpoint][outcome]`: 0 is `/mutate`, 1 is `/validate`.
#[derive(Debug, Default)]
pub struct Counters {
    counts: [[AtomicU64; OUTCOMES.len()]; 2],
    images: AtomicU64,
    pull_secrets: AtomicU64,
}

fn slot(o: &Outcome) -> usize {
    match o {
        Outcome::Patched { .. } => 0,
        Outcome::WouldPatch { .. } => 1,
        Outcome::Unchanged => 2,
        Outcome::Skipped(_) => 3,
        Outcome::Denied => 4,
        Outcome::Warned => 5,
        Outcome::Invalid => 6,
    }
}

impl Counters {
    /// Counts one review; `mutate` tells the endpoint.
    pub fn record(&self, mutate: bool, o: &Outcome) {
        let endpoint = usize::from(!mutate);
        self.counts[endpoint][slot(o)].fetch_add(1, Ordering::Relaxed);
        if let Outcome::Patched {
            images,
            pull_secret,
        } = o
        {
            self.images.fetch_add(*images as u64, Ordering::Relaxed);
            self.pull_secrets
                .fetch_add(u64::from(*pull_secret), Ordering::Relaxed);
        }
    }

    /// How many reviews of an endpoint ended in `outcome` (one of the exposition labels).
    pub fn get(&self, mutate: bool, outcome: &str) -> u64 {
        OUTCOMES.iter().position(|o| *o == outcome).map_or(0, |i| {
            self.counts[usize::from(!mutate)][i].load(Ordering::Relaxed)
        })
    }

    /// The exposition text of these counters.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP airlock_admission_reviews_total Admission reviews answered, by endpoint and outcome."
        );
        let _ = writeln!(out, "# TYPE airlock_admission_reviews_total counter");
        for (e, endpoint) in ["mutate", "validate"].iter().enumerate() {
            for (i, outcome) in OUTCOMES.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "airlock_admission_reviews_total{{endpoint=\"{endpoint}\",outcome=\"{outcome}\"}} {}",
                    self.counts[e][i].load(Ordering::Relaxed)
                );
            }
        }
        for (name, help, v) in [
            (
                "airlock_admission_images_rewritten_total",
                "Container images pointed at the private registry.",
                &self.images,
            ),
            (
                "airlock_admission_pull_secrets_added_total",
                "Pods given the configured imagePullSecret.",
                &self.pull_secrets,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
        out
    }
}
