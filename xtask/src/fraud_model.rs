//! `cargo xtask train-fraud-model`: generates a labelled data set of orders, trains a logistic
//! regression on it with linfa, and writes the weights to `functions/domain/models/`.
//!
//! The data set is synthetic and reproducible (seeded ChaCha). Orders are drawn as whole
//! [`OrderFacts`] and turned into inputs by the same [`OrderFacts::features`] the fraud-detection
//! function uses, so training and serving cannot drift apart. How each class is drawn:
//!
//! | feature | legitimate (85%) | fraudulent (15%) |
//! | --- | --- | --- |
//! | amount (EUR) | log-normal around 35, 5 to 800 | log-normal around 250, 5 to 5000 |
//! | lines × copies | 1-4 lines, mostly 1 copy each | 1-3 lines, 1-20 copies each |
//! | contact | `first.last@provider`, sometimes with a year | 45% a disposable domain, digit-heavy local parts |
//! | name in contact | 75% | 25% |
//! | express shipping | 20% | 60% |
//!
//! Then 2% of the labels are flipped, as real labels are noisy.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bookstore_domain::fraud::{FEATURES, FraudModel, OrderFacts};
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

#[derive(clap::Args)]
pub struct TrainFraudModel {
    /// Orders in the generated data set (80% train, 20% held out).
    #[arg(long, default_value_t = 20_000)]
    samples: usize,
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Probability of fraud at which an order is rejected.
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
    /// Where to write the model; by default the file the functions embed.
    #[arg(long)]
    out: Option<PathBuf>,
}

const FIRST: [&str; 10] = ["ada", "alan", "grace", "linus", "margaret", "jüri", "mari", "kadri", "tõnu", "edsger"];
const LAST: [&str; 10] =
    ["lovelace", "turing", "hopper", "torvalds", "hamilton", "tamm", "saar", "kask", "mets", "dijkstra"];
const PROVIDERS: [&str; 5] = ["gmail.com", "example.org", "ut.ee", "outlook.com", "proton.me"];
const DISPOSABLE: [&str; 3] = ["mailinator.com", "yopmail.com", "trashmail.com"];

pub fn run(options: TrainFraudModel) -> Result<()> {
    if options.samples < 100 {
        bail!("--samples must be at least 100");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let (orders, labels): (Vec<OrderFacts>, Vec<bool>) = (0..options.samples).map(|_| draw_order(&mut rng)).unzip();
    let rows: Vec<[f64; FEATURES.len()]> = orders.iter().map(OrderFacts::features).collect();
    let split = options.samples * 4 / 5;

    let train = matrix(&rows[..split]);
    let means = train.mean_axis(Axis(0)).context("empty training set")?;
    let stds = train.std_axis(Axis(0), 0.0).mapv(|s| if s > 0.0 { s } else { 1.0 });
    let standardize = |m: &Array2<f64>| (m - &means) / &stds;
    let dataset = Dataset::new(standardize(&train), Array1::from(labels[..split].to_vec()));
    let fitted = LogisticRegression::default().max_iterations(500).fit(&dataset).context("training failed")?;
    // linfa's probabilities are for its "positive" class, which is the more frequent one (here
    // legitimate orders): negate the logit to get the probability of fraud.
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };

    let model = FraudModel {
        features: FEATURES.iter().map(|f| f.to_string()).collect(),
        means: means.to_vec(),
        stds: stds.to_vec(),
        weights: fitted.params().iter().map(|w| sign * w).collect(),
        intercept: sign * fitted.intercept(),
        threshold: options.threshold,
        provenance: serde_json::Value::Null,
    };

    // Evaluate the exported model itself (not linfa's), on the held-out orders.
    let (mut tp, mut fp, mut tn, mut fn_) = (0, 0, 0, 0);
    for (row, label) in rows[split..].iter().zip(&labels[split..]) {
        match (model.probability(row) >= model.threshold, *label) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fn_ += 1,
        }
    }
    let held_out = rows.len() - split;
    let accuracy = f64::from(tp + tn) / held_out as f64;
    let precision = f64::from(tp) / f64::from((tp + fp).max(1));
    let recall = f64::from(tp) / f64::from((tp + fn_).max(1));
    let model = FraudModel {
        provenance: json!({
            "trainedBy": "cargo xtask train-fraud-model",
            "library": "linfa-logistic 0.8.1",
            "seed": options.seed,
            "samples": options.samples,
            "heldOut": held_out,
            "accuracy": round3(accuracy),
            "precision": round3(precision),
            "recall": round3(recall),
        }),
        ..model
    };

    let out = options.out.unwrap_or_else(|| crate::workspace_root().join("functions/domain/models/fraud-model.json"));
    std::fs::write(&out, serde_json::to_string_pretty(&model)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "trained on {split} orders, tested on {held_out}: accuracy {accuracy:.3}, precision {precision:.3}, recall {recall:.3}"
    );
    println!("weights ({}): {:?}", FEATURES.join(", "), model.weights.iter().map(|w| round3(*w)).collect::<Vec<_>>());
    println!("wrote {}", out.display());
    Ok(())
}

fn matrix(rows: &[[f64; FEATURES.len()]]) -> Array2<f64> {
    Array2::from_shape_fn((rows.len(), FEATURES.len()), |(i, j)| rows[i][j])
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One order and whether it is fraudulent, drawn as the module docs describe.
fn draw_order(rng: &mut ChaCha8Rng) -> (OrderFacts, bool) {
    let fraud = rng.random_bool(0.15);
    let first = FIRST[rng.random_range(0..FIRST.len())];
    let last = LAST[rng.random_range(0..LAST.len())];
    let (amount, lines, max_copies) = if fraud {
        (log_normal(rng, 250f64.ln(), 0.8).clamp(5.0, 5_000.0), rng.random_range(1..=3u32), 20)
    } else {
        (log_normal(rng, 35f64.ln(), 0.6).clamp(5.0, 800.0), rng.random_range(1..=4u32), 1)
    };
    let total_quantity = (0..lines)
        .map(|_| if max_copies > 1 || rng.random_bool(0.2) { rng.random_range(1..=max_copies.max(3)) } else { 1 })
        .sum();
    let name_in_contact = rng.random_bool(if fraud { 0.25 } else { 0.75 });
    let local = match (name_in_contact, fraud && rng.random_bool(0.6)) {
        (true, false) => format!("{first}.{last}"),
        (true, true) => format!("{first}{}", rng.random_range(10_000..99_999_999u32)),
        (false, false) => format!("reader{}", rng.random_range(1..99u32)),
        (false, true) => format!("x{}", rng.random_range(1_000_000..99_999_999u32)),
    };
    let domain = if rng.random_bool(if fraud { 0.45 } else { 0.02 }) {
        DISPOSABLE[rng.random_range(0..DISPOSABLE.len())]
    } else {
        PROVIDERS[rng.random_range(0..PROVIDERS.len())]
    };
    let express = rng.random_bool(if fraud { 0.6 } else { 0.2 });
    let order = OrderFacts {
        name: format!("{first} {last}"),
        contact: format!("{local}@{domain}"),
        amount_eur: (amount * 100.0).round() / 100.0,
        total_quantity,
        lines,
        shipping_method: if express { "Express" } else { "Standard" }.into(),
        ..OrderFacts::default()
    };
    let noisy_label = if rng.random_bool(0.02) { !fraud } else { fraud };
    (order, noisy_label)
}

/// A log-normal draw (Box-Muller), to keep to the `rand` crate alone.
fn log_normal(rng: &mut ChaCha8Rng, mu: f64, sigma: f64) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (mu + sigma * normal).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed weights are what the command produces with its defaults (to rounding: the
    /// matrix code may use other SIMD instructions on another CPU).
    #[test]
    fn the_committed_model_is_reproduced_by_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model.json");
        run(TrainFraudModel { samples: 20_000, seed: 2026, threshold: 0.5, out: Some(out.clone()) }).unwrap();
        let trained = FraudModel::from_json(&std::fs::read_to_string(out).unwrap()).unwrap();
        let committed = FraudModel::embedded().unwrap();
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(close(&trained.weights, &committed.weights), "{:?} vs {:?}", trained.weights, committed.weights);
        assert!(close(&trained.means, &committed.means) && close(&trained.stds, &committed.stds));
        assert!((trained.intercept - committed.intercept).abs() < 1e-6);
        assert_eq!(trained.provenance["accuracy"], committed.provenance["accuracy"]);
    }
}
