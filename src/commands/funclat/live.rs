//! `gotrace funclat`'s outputs that follow the histograms while tracing: the Prometheus
//! exporter (`--listen`) and the heatmap (`--heatmap`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::cli::FunclatArgs;
use crate::gobin::GoBinary;
use crate::output::heatmap::Heatmap;
use crate::output::histogram::{Log2Hist, Unit};
use crate::output::metrics::{Exporter, FunclatMetrics, TargetInfo};
use crate::plan::ProbePlan;
use crate::session::target::Target;

use super::by::Key;

/// The outputs fed with every reading of the maps while tracing, besides the printed tables:
/// the `--listen` metrics endpoint and the `--heatmap` columns.
pub struct LiveOutputs {
    exporter: Option<Exporter<FunclatMetrics>>,
    heatmap: Option<Heatmap>,
    started: Instant,
}

impl LiveOutputs {
    /// Binds the metrics address and creates the heatmap file (so that bad values fail before
    /// tracing starts).
    pub fn open(
        args: &FunclatArgs,
        target: &Target,
        bin: &GoBinary<'_>,
        plan: &ProbePlan,
        unit: Unit,
    ) -> Result<LiveOutputs> {
        let names: Vec<String> = plan.funcs.iter().map(|f| f.name.clone()).collect();
        let exporter = match &args.listen {
            Some(listen) => {
                let metrics = FunclatMetrics::new(names.clone(), unit);
                Some(Exporter::serve(
                    listen,
                    metrics,
                    TargetInfo::of(&target.binary, target.pid, bin),
                )?)
            }
            None => None,
        };
        let heatmap = match &args.heatmap {
            Some(path) => Some(Heatmap::new(path.clone(), args.heatmap_step, unit, names)?),
            None => None,
        };
        Ok(LiveOutputs {
            exporter,
            heatmap,
            started: Instant::now(),
        })
    }

    /// Marks the start of tracing; returns how often the maps must be read: every `interval`
    /// (-i), every second for the metrics, every step for the heatmap, whichever is shortest.
    pub fn start(&mut self, interval: Option<Duration>) -> Option<Duration> {
        self.started = Instant::now();
        let metrics = self.exporter.as_ref().map(|_| Duration::from_secs(1));
        let heatmap = self.heatmap.as_ref().map(|h| h.step());
        [interval, metrics, heatmap].into_iter().flatten().min()
    }

    /// Hands a fresh cumulative snapshot to every output: each function's histogram, with
    /// --by each key's, and the functions the overload guard has detached.
    pub fn update(
        &mut self,
        hists: &[Log2Hist],
        keyed: Option<&BTreeMap<Key, Log2Hist>>,
        detached: &[String],
    ) {
        if let Some(exporter) = &self.exporter {
            exporter.update(|metrics| {
                metrics.set(hists, detached);
                if let Some(keyed) = keyed {
                    let rows = keyed
                        .iter()
                        .map(|(key, hist)| (key.func_id as usize, key.label(), hist));
                    metrics.set_keyed(rows);
                }
            });
        }
        if let Some(heatmap) = &mut self.heatmap {
            heatmap.record(self.started.elapsed(), hists);
        }
    }

    /// Writes the heatmap.
    pub fn finish(&self) -> Result<()> {
        self.heatmap.as_ref().map_or(Ok(()), Heatmap::write)
    }
}
