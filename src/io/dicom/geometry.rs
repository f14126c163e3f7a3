//! Vector helpers and slice geometry (orientation, positions along the normal).

pub(crate) use crate::vec3::{cross, dot, norm, scale, sub};

pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Row cosine, column cosine and normal of an Image Orientation (Patient).
pub(crate) fn orientation_axes(iop: &[f64; 6]) -> Option<[[f64; 3]; 3]> {
    let r = [iop[0], iop[1], iop[2]];
    let c = [iop[3], iop[4], iop[5]];
    let (nr, nc) = (norm(r), norm(c));
    if !(nr > 0.5 && nc > 0.5 && nr < 1.5 && nc < 1.5) {
        return None;
    }
    let r = scale(r, 1.0 / nr);
    let c = scale(c, 1.0 / nc);
    if dot(r, c).abs() > 1e-3 {
        return None;
    }
    let n = cross(r, c);
    // `+ 0.0` turns -0.0 into 0.0 (tidier reports).
    let tidy = |v: [f64; 3]| v.map(|x| x + 0.0);
    Some([tidy(r), tidy(c), tidy(scale(n, 1.0 / norm(n)))])
}

/// How a sorted stack of slices (distinct positions) becomes a volume.
pub(crate) struct StackPlan {
    /// Slice step of the volume, mm (before the resampling's adjustment).
    pub(crate) step: f64,
    /// Whether the slices must be resampled (tilt or uneven steps).
    pub(crate) resample: bool,
    pub(crate) span: f64,
    pub(crate) warnings: Vec<String>,
    pub(crate) notes: Vec<String>,
}

impl StackPlan {
    pub(crate) fn resampled_slices(&self) -> usize {
        (self.span / self.step).round().max(1.0) as usize + 1
    }
}

/// Most gaps listed in an error.
const MAX_GAPS_LISTED: usize = 8;

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Looks at the slice positions (`p3`, sorted along the normal, distinct):
/// gantry tilt (origins drifting within the image plane), uneven steps,
/// missing slices. Errors when more than one slice in a row is missing.
pub(crate) fn plan_stack(
    slices: &[&super::SliceHeader],
    p3: &[[f64; 3]],
    axes: [[f64; 3]; 3],
    spacing: [f64; 2],
    what: &str,
) -> crate::Result<StackPlan> {
    let n = p3.len();
    let d: Vec<f64> = p3.iter().map(|&p| dot(p, axes[2])).collect();
    let steps: Vec<f64> = d.windows(2).map(|w| w[1] - w[0]).collect();
    let m = median(&steps);
    let t = steps
        .iter()
        .copied()
        .filter(|&s| s >= 0.5 * m)
        .fold(f64::INFINITY, f64::min);
    let lo = steps.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = steps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let regular = (hi - m).max(m - lo) <= (0.01 * m).max(0.01);
    let span = d[n - 1] - d[0];
    // In-plane drift of each slice origin from the first one.
    let u: Vec<[f64; 2]> = p3
        .iter()
        .map(|&p| {
            let v = sub(p, p3[0]);
            [dot(v, axes[0]), dot(v, axes[1])]
        })
        .collect();
    let drift = u
        .iter()
        .map(|o| (o[0] * o[0] + o[1] * o[1]).sqrt())
        .fold(0.0, f64::max);
    let sheared = drift > (0.1 * spacing[0].min(spacing[1])).max(0.01);
    let last = u[n - 1];
    let angle = (last[0] * last[0] + last[1] * last[1])
        .sqrt()
        .atan2(span)
        .to_degrees();

    let mut gaps = Vec::new();
    let mut filled = Vec::new();
    for (i, &s) in steps.iter().enumerate() {
        if s <= 1.5 * t {
            continue;
        }
        let thick = match (slices[i].slice_thickness, slices[i + 1].slice_thickness) {
            (Some(a), Some(b)) => Some(0.5 * (a + b)),
            _ => None,
        };
        if thick.is_some_and(|th| s <= 1.05 * th) {
            continue; // thick slices that touch: nothing is missing
        }
        let desc = format!(
            "{s:.2} mm between the slices at {:.2} and {:.2} mm ({} and {})",
            d[i],
            d[i + 1],
            file_name(&slices[i].path),
            file_name(&slices[i + 1].path)
        );
        if s <= 2.1 * t {
            filled.push(desc);
        } else {
            gaps.push(desc);
        }
    }
    if !gaps.is_empty() {
        let more = gaps.len().saturating_sub(MAX_GAPS_LISTED);
        gaps.truncate(MAX_GAPS_LISTED);
        return Err(crate::Error::Input(format!(
            "{what} has gaps along the slice normal where more than one slice is missing: {}{}; the usual step is {t:.2} mm, so the volume cannot be filled in reliably; re-export the complete series, or choose another with --series",
            gaps.join("; "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        )));
    }
    let mut plan = StackPlan {
        step: m,
        resample: false,
        span,
        warnings: Vec::new(),
        notes: Vec::new(),
    };
    if regular && !sheared {
        return Ok(plan);
    }
    plan.resample = true;
    plan.step = t;
    let nz = plan.resampled_slices();
    let dz = span / (nz - 1) as f64;
    if sheared {
        let tag = slices[0]
            .tilt_tag
            .map(|v| format!("; the Gantry/Detector Tilt tag says {v:.1}°"))
            .unwrap_or_default();
        plan.warnings.push(format!(
            "gantry tilt of {angle:.1}° found from the slice positions against the image orientation (slice origins drift {:.1} mm sideways over {span:.1} mm): the slices were resampled onto an orthogonal grid (tilt corrected, linear interpolation){tag}",
            (last[0] * last[0] + last[1] * last[1]).sqrt()
        ));
    }
    if !regular {
        plan.warnings.push(format!(
            "uneven slice steps, from {lo:.3} to {hi:.3} mm (median {m:.3} mm): the slices were resampled onto a regular {dz:.3} mm grid ({nz} slices) by linear interpolation"
        ));
    }
    if !filled.is_empty() {
        plan.warnings.push(format!(
            "missing slice(s) filled in by linear interpolation: {}",
            filled.join("; ")
        ));
    }
    Ok(plan)
}
