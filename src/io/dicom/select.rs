//! Grouping images into candidate stacks and choosing the series to read.

use super::*;

/// A consistent stack of slices from one series: a candidate volume.
pub(crate) struct Candidate {
    pub(crate) series_uid: String,
    pub(crate) series_number: Option<i64>,
    pub(crate) description: Option<String>,
    pub(crate) slices: Vec<SliceHeader>,
    /// Slices left out of this series' stack (localizers, other geometry).
    pub(crate) left_out: Vec<String>,
    /// Number of distinct slice positions (the number of slices when unknown).
    pub(crate) distinct: usize,
    /// Median step along the normal, when positions are known.
    pub(crate) step: Option<f64>,
    /// Range and mean of LPS z of the slice positions, when known.
    pub(crate) z_range: Option<(f64, f64, f64)>,
}

impl Candidate {
    pub(crate) fn describe(&self) -> String {
        let mut s = match self.series_number {
            Some(n) => format!("series {n}"),
            None => "a series without number".to_string(),
        };
        if let Some(d) = &self.description {
            s.push_str(&format!(" '{d}'"));
        }
        s.push_str(&format!(" ({} slices", self.slices.len()));
        if let Some(step) = self.step {
            s.push_str(&format!(", step {step:.2} mm"));
        }
        if let Some((lo, hi, _)) = self.z_range {
            s.push_str(&format!(", z {lo:.1} to {hi:.1} mm"));
        }
        s.push(')');
        s
    }
}

/// Positions along the normal of slices that all have IPP and share one orientation.
pub(crate) fn normal_positions(slices: &[SliceHeader]) -> Option<([[f64; 3]; 3], Vec<f64>)> {
    let axes = orientation_axes(slices.first()?.orientation.as_ref()?)?;
    let pos = slices
        .iter()
        .map(|s| s.position.map(|p| dot(p, axes[2])))
        .collect::<Option<Vec<f64>>>()?;
    Some((axes, pos))
}

/// Number of distinct positions.
pub(crate) fn distinct_positions(positions: &[f64]) -> usize {
    let mut p = positions.to_vec();
    p.sort_by(f64::total_cmp);
    1 + p
        .windows(2)
        .filter(|w| w[1] - w[0] > SAME_POSITION_MM)
        .count()
}

/// Median of the steps between distinct sorted positions.
pub(crate) fn median_step(positions: &[f64]) -> Option<f64> {
    let mut p = positions.to_vec();
    p.sort_by(f64::total_cmp);
    let steps: Vec<f64> = p
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|&d| d > SAME_POSITION_MM)
        .collect();
    (!steps.is_empty()).then(|| median(&steps))
}

/// Builds the candidate stack of one CT series.
pub(crate) fn candidate(series_uid: String, mut slices: Vec<SliceHeader>) -> Option<Candidate> {
    let mut left_out = Vec::new();
    let localizers = slices.iter().filter(|s| s.localizer).count();
    if localizers > 0 && localizers < slices.len() {
        slices.retain(|s| !s.localizer);
        left_out.push(format!("{localizers} localizer image(s)"));
    }
    // Split by geometry; keep the largest consistent stack.
    type Key = (u32, u32, Option<[i64; 6]>, Option<[i64; 2]>);
    let key = |s: &SliceHeader| -> Key {
        (
            s.rows,
            s.cols,
            s.orientation.map(|o| o.map(|v| (v * 1e3).round() as i64)),
            s.pixel_spacing.map(|p| p.map(|v| (v * 1e4).round() as i64)),
        )
    };
    let mut by_key: BTreeMap<Key, Vec<SliceHeader>> = BTreeMap::new();
    for s in slices {
        by_key.entry(key(&s)).or_default().push(s);
    }
    let total: usize = by_key.values().map(Vec::len).sum();
    let slices = by_key
        .into_values()
        .reduce(|a, b| if b.len() > a.len() { b } else { a })?;
    if slices.len() < total {
        left_out.push(format!(
            "{} image(s) of another size, orientation or pixel spacing",
            total - slices.len()
        ));
    }
    let first = &slices[0];
    let (distinct, step, z_range) = match normal_positions(&slices) {
        Some((_, pos)) => {
            let zs: Vec<f64> = slices
                .iter()
                .filter_map(|s| s.position.map(|p| p[2]))
                .collect();
            let lo = zs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = zs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = zs.iter().sum::<f64>() / zs.len() as f64;
            (
                distinct_positions(&pos),
                median_step(&pos),
                Some((lo, hi, mean)),
            )
        }
        None => (slices.len(), None, None),
    };
    Some(Candidate {
        series_uid,
        series_number: first.series_number,
        description: first.series_description.clone(),
        left_out,
        distinct,
        step,
        z_range,
        slices,
    })
}

/// Orders candidates best first (see the module documentation).
pub(crate) fn rank(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    let opt = |x: Option<f64>| x.unwrap_or(f64::INFINITY);
    b.distinct
        .cmp(&a.distinct)
        .then(b.slices.len().cmp(&a.slices.len()))
        .then(opt(a.step).total_cmp(&opt(b.step)))
        .then(opt(a.z_range.map(|z| z.2)).total_cmp(&opt(b.z_range.map(|z| z.2))))
        .then(
            a.series_number
                .unwrap_or(i64::MAX)
                .cmp(&b.series_number.unwrap_or(i64::MAX)),
        )
        .then(a.series_uid.cmp(&b.series_uid))
}

/// Why `best` was preferred over `next`.
pub(crate) fn reason(best: &Candidate, next: &Candidate) -> &'static str {
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6,
        (None, None) => true,
        _ => false,
    };
    if best.distinct != next.distinct {
        "it has the most slice positions"
    } else if best.slices.len() != next.slices.len() {
        "it has the most slices"
    } else if !close(best.step, next.step) {
        "same number of slices, and it has the thinner slice step"
    } else if !close(best.z_range.map(|z| z.2), next.z_range.map(|z| z.2)) {
        "same number of slices and step, and it lies lower in the body (the lumbar spine lies below the chest)"
    } else if best.series_number != next.series_number {
        "same number of slices, step and position, and it has the lower series number"
    } else {
        "the series are alike, so the first by Series Instance UID was taken"
    }
}

pub(crate) fn ts_label(uid: &str) -> String {
    match TransferSyntaxRegistry.get(uid) {
        Some(ts) => format!("{uid} ({})", ts.name()),
        None => uid.to_string(),
    }
}
