//! Scores the default miner on Loghub-2k and, with `--errors SYSTEM`, lists
//! the ground-truth groups it split or merged.
//!
//!     cargo run --release -p warden-logmine --example loghub_eval -- DIR [--errors SYSTEM]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use warden_logmine::eval::{average, evaluate, load_system};
use warden_logmine::{Miner, MinerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "../shared/datasets/loghub2k".into()),
    );
    let mut config = MinerConfig::default();
    if let Ok(v) = std::env::var("KEYWORD_VARIETY") {
        config.keyword_variety = v.parse()?;
    }
    if let Ok(v) = std::env::var("SIMILARITY") {
        config.similarity = v.parse()?;
    }
    if args.next().as_deref() == Some("--errors") {
        let system = args.next().unwrap_or_default();
        let rows = load_system(&dir, &system)?;
        let mut miner = Miner::new(config);
        let ids: Vec<usize> = rows.iter().map(|(_, l)| miner.add(&l.content)).collect();
        let mut by_truth: BTreeMap<&str, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
        let mut by_pred: BTreeMap<usize, BTreeSet<&str>> = BTreeMap::new();
        for (i, ((t, _), &id)) in rows.iter().zip(&ids).enumerate() {
            let tpl = miner.template_of(id).ok_or("no template")?;
            by_truth
                .entry(t.as_str())
                .or_default()
                .entry(format!("{} #{}", tpl.text, tpl.id))
                .or_default()
                .push(i);
            by_pred.entry(tpl.id).or_default().insert(t.as_str());
        }
        for (truth, preds) in &by_truth {
            let merged = preds.keys().any(|p| {
                let id: usize = p
                    .rsplit('#')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                by_pred.get(&id).is_some_and(|s| s.len() > 1)
            });
            if preds.len() > 1 || merged {
                let n: usize = preds.values().map(Vec::len).sum();
                println!("TRUTH ({n}) {truth}");
                for (p, lines) in preds {
                    let ex = lines
                        .first()
                        .and_then(|&i| rows.get(i))
                        .map(|r| r.1.content.as_str())
                        .unwrap_or("");
                    println!("   {:4} {p}\n          e.g. {ex}", lines.len());
                }
            }
        }
        return Ok(());
    }
    let reports = evaluate(&dir, &[], &config)?;
    for r in &reports {
        println!(
            "{:10} GA {:.3} PA {:.3} FGA {:.3} FTA {:.3}",
            r.system, r.scores.ga, r.scores.pa, r.scores.fga, r.scores.fta
        );
    }
    let (a, _) = average(&reports);
    println!(
        "{:10} GA {:.3} PA {:.3} FGA {:.3} FTA {:.3}",
        "average", a.ga, a.pa, a.fga, a.fta
    );
    Ok(())
}
