//! Grouping images into stacks (one series, one geometry) and choosing the
//! stack to read; the listing behind `spinemesh info`.

use super::*;

/// SOP Class UID prefix of Secondary Capture images (screenshots, dose sheets).
const SECONDARY_CAPTURE: &str = "1.2.840.10008.5.1.4.1.1.7";

/// One stack: images of one series with one size, orientation and pixel
/// spacing (localizers apart). A candidate volume unless `excluded`.
pub(crate) struct Candidate {
    /// 1-based number in the listing (`spinemesh info`, `--series`).
    pub(crate) index: usize,
    pub(crate) series_uid: String,
    pub(crate) series_number: Option<i64>,
    pub(crate) description: Option<String>,
    pub(crate) modality: String,
    pub(crate) slices: Vec<SliceHeader>,
    /// Number of distinct slice positions (the number of images when unknown).
    pub(crate) distinct: usize,
    /// Median step along the normal, when positions are known.
    pub(crate) step: Option<f64>,
    /// Smallest and largest step between distinct positions.
    pub(crate) step_range: Option<(f64, f64)>,
    /// Extent along the normal, mm (0 for one slice or unknown positions).
    pub(crate) coverage: f64,
    /// Range and mean of LPS z of the slice positions, when known.
    pub(crate) z_range: Option<(f64, f64, f64)>,
    /// Gantry tilt seen in the positions (origins drifting sideways), degrees.
    pub(crate) tilt_deg: Option<f64>,
    /// Why this stack is not a volume to read by default.
    pub(crate) excluded: Option<String>,
    /// Modality other than CT (read only with `force`).
    pub(crate) non_ct: bool,
    /// Reconstructed with a lung kernel (sharp, noisy bone edges).
    pub(crate) lung: bool,
}

impl Candidate {
    pub(crate) fn first(&self) -> &SliceHeader {
        &self.slices[0]
    }

    pub(crate) fn describe(&self) -> String {
        let mut s = format!("#{} ", self.index);
        s.push_str(&match self.series_number {
            Some(n) => format!("series {n}"),
            None => "a series without number".to_string(),
        });
        if let Some(d) = &self.description {
            s.push_str(&format!(" '{d}'"));
        }
        s.push_str(&format!(" ({} slices", self.distinct));
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

/// Sorted distinct positions.
pub(crate) fn distinct_sorted(positions: &[f64]) -> Vec<f64> {
    let mut p = positions.to_vec();
    p.sort_by(f64::total_cmp);
    p.dedup_by(|b, a| *b - *a <= SAME_POSITION_MM);
    p
}

fn is_ct(h: &SliceHeader) -> bool {
    h.modality == "CT" || (h.modality.is_empty() && h.sop_class.starts_with(CT_IMAGE_STORAGE))
}

fn upper(s: &Option<String>) -> String {
    s.as_deref().unwrap_or("").to_uppercase()
}

/// Why images of this kind are not a CT volume, if they are not.
fn kind_exclusion(h: &SliceHeader) -> Option<String> {
    let (it, desc) = (upper(&h.image_type), upper(&h.series_description));
    if h.localizer {
        Some("localizer (scout) image(s)".into())
    } else if it.contains("DOSE") || desc.contains("DOSE REPORT") || desc.contains("DOSE INFO") {
        Some("dose report".into())
    } else if h.sop_class.starts_with(SECONDARY_CAPTURE) || it.contains("SCREEN SAVE") {
        Some("secondary capture (a screenshot, not a volume)".into())
    } else if desc.contains("PATIENT PROTOCOL")
        || desc.contains("TOPOGRAM")
        || desc.contains("SCOUT")
    {
        Some(format!(
            "{} (not a volume)",
            h.series_description.as_deref().unwrap_or("")
        ))
    } else {
        None
    }
}

fn stats(c: &mut Candidate) {
    match normal_positions(&c.slices) {
        Some((axes, pos)) => {
            let d = distinct_sorted(&pos);
            c.distinct = d.len();
            c.coverage = d[d.len() - 1] - d[0];
            let steps: Vec<f64> = d.windows(2).map(|w| w[1] - w[0]).collect();
            if !steps.is_empty() {
                c.step = Some(median(&steps));
                let lo = steps.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = steps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                c.step_range = Some((lo, hi));
            }
            let zs: Vec<f64> = c
                .slices
                .iter()
                .filter_map(|s| s.position.map(|p| p[2]))
                .collect();
            let lo = zs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = zs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            c.z_range = Some((lo, hi, zs.iter().sum::<f64>() / zs.len() as f64));
            // Tilt: the line through the lowest and highest slice origin against the normal.
            let by_pos = |f: fn(f64, f64) -> bool| {
                let mut best = 0;
                for i in 1..pos.len() {
                    if f(pos[i], pos[best]) {
                        best = i;
                    }
                }
                c.slices[best].position.unwrap_or_default()
            };
            let (a, b) = (by_pos(|x, y| x < y), by_pos(|x, y| x > y));
            let v = sub(b, a);
            let along = dot(v, axes[2]);
            let sideways = norm(sub(v, scale(axes[2], along)));
            if along > SAME_POSITION_MM {
                c.tilt_deg = Some(sideways.atan2(along).to_degrees());
            }
        }
        None => c.distinct = c.slices.len(),
    }
}

/// Splits the images into stacks, in listing order (series number, series
/// UID, larger stacks first), each with its statistics and exclusion.
pub(crate) fn group(headers: Vec<SliceHeader>) -> Vec<Candidate> {
    type Key = (bool, u32, u32, Option<[i64; 6]>, Option<[i64; 2]>);
    let key = |s: &SliceHeader| -> Key {
        (
            s.localizer,
            s.rows,
            s.cols,
            s.orientation.map(|o| o.map(|v| (v * 1e3).round() as i64)),
            s.pixel_spacing.map(|p| p.map(|v| (v * 1e4).round() as i64)),
        )
    };
    let mut series: BTreeMap<String, BTreeMap<Key, Vec<SliceHeader>>> = BTreeMap::new();
    for h in headers {
        series
            .entry(h.series_uid.clone())
            .or_default()
            .entry(key(&h))
            .or_default()
            .push(h);
    }
    let mut out = Vec::new();
    for (uid, stacks) in series {
        let mut stacks: Vec<Vec<SliceHeader>> = stacks.into_values().collect();
        stacks.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let largest = stacks
            .iter()
            .filter(|s| !s[0].localizer)
            .map(Vec::len)
            .max()
            .unwrap_or(0);
        for slices in stacks {
            let h = &slices[0];
            let mut excluded = kind_exclusion(h);
            let one_place = normal_positions(&slices)
                .map(|(_, p)| slices.len() > 1 && distinct_sorted(&p).len() == 1)
                .unwrap_or(false);
            if excluded.is_none() && one_place {
                excluded = Some(format!(
                    "all {} images lie at one position, so they do not form a volume (e.g. repeated scans of one slice)",
                    slices.len()
                ));
            }
            if excluded.is_none() && slices.len() == 1 && largest > 1 {
                excluded = Some(
                    "a single image of another size or orientation than the rest of its series (probably a localizer)"
                        .into(),
                );
            }
            let non_ct = !is_ct(h);
            let lung =
                upper(&h.kernel).contains("LUNG") || upper(&h.series_description).contains("LUNG");
            let mut c = Candidate {
                index: 0,
                series_uid: uid.clone(),
                series_number: h.series_number,
                description: h.series_description.clone(),
                modality: if h.modality.is_empty() {
                    "unknown".into()
                } else {
                    h.modality.clone()
                },
                distinct: 0,
                step: None,
                step_range: None,
                coverage: 0.0,
                z_range: None,
                tilt_deg: None,
                excluded,
                non_ct,
                lung,
                slices,
            };
            stats(&mut c);
            out.push(c);
        }
    }
    out.sort_by(|a, b| {
        a.series_number
            .unwrap_or(i64::MAX)
            .cmp(&b.series_number.unwrap_or(i64::MAX))
            .then(a.series_uid.cmp(&b.series_uid))
            .then(b.slices.len().cmp(&a.slices.len()))
    });
    for (i, c) in out.iter_mut().enumerate() {
        c.index = i + 1;
    }
    out
}

/// Which candidate to read (its position in `cands`) and why.
pub(crate) fn choose(
    cands: &[Candidate],
    opts: &LoadOptions,
    input: &Path,
) -> Result<(usize, Option<String>)> {
    if let Some(want) = opts.series.as_deref().map(str::trim) {
        let pos = match want.parse::<usize>() {
            Ok(i) => cands.iter().position(|c| c.index == i),
            Err(_) => {
                // A UID names a series; its best stack (largest first in the listing).
                cands
                    .iter()
                    .position(|c| c.series_uid == want && c.excluded.is_none())
                    .or_else(|| cands.iter().position(|c| c.series_uid == want))
            }
        };
        let Some(pos) = pos else {
            return Err(Error::Input(format!(
                "--series {want}: no such series in {}; it holds {} (see `spinemesh info`), give one of the numbers 1 to {} or a Series Instance UID",
                input.display(),
                if cands.len() == 1 { "one series".to_string() } else { format!("{} series", cands.len()) },
                cands.len()
            )));
        };
        let c = &cands[pos];
        if c.non_ct && !opts.force {
            return Err(Error::Input(format!(
                "--series {want} is {}, of modality {}, not CT: its values are not Hounsfield units; add --force to read it anyway",
                c.describe(),
                c.modality
            )));
        }
        let mut why = format!("took {} as asked with --series", c.describe());
        if let Some(e) = &c.excluded {
            why.push_str(&format!(" (it would not be taken by default: {e})"));
        }
        return Ok((pos, Some(why)));
    }
    let ct: Vec<usize> = (0..cands.len())
        .filter(|&i| cands[i].excluded.is_none() && !cands[i].non_ct)
        .collect();
    let pool = if !ct.is_empty() {
        ct
    } else if opts.force {
        (0..cands.len())
            .filter(|&i| cands[i].excluded.is_none())
            .collect()
    } else {
        Vec::new()
    };
    if pool.is_empty() {
        let mut kinds: Vec<String> = cands
            .iter()
            .map(|c| match &c.excluded {
                Some(e) => e.clone(),
                None => format!("modality {}", c.modality),
            })
            .collect();
        kinds.sort();
        kinds.dedup();
        let any_other = cands.iter().any(|c| c.excluded.is_none() && c.non_ct);
        return Err(Error::Input(format!(
            "no CT volume in {}: found {} image stack(s): {}; spinemesh needs a CT series (values in Hounsfield units){}",
            input.display(),
            cands.len(),
            kinds.join(", "),
            if any_other { "; add --force to read another modality anyway" } else { "; give the folder that holds the CT slices, or pick a stack with --series" }
        )));
    }
    let skipped: Vec<String> = cands
        .iter()
        .enumerate()
        .filter(|(i, _)| !pool.contains(i))
        .map(|(_, c)| {
            format!(
                "{}: {}",
                c.describe(),
                c.excluded
                    .clone()
                    .unwrap_or_else(|| format!("modality {}", c.modality))
            )
        })
        .collect();
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!("; left out: {}", skipped.join("; "))
    };
    if pool.len() == 1 {
        let why = (!skipped.is_empty()).then(|| {
            format!(
                "took {}, the only CT volume{skipped}",
                cands[pool[0]].describe()
            )
        });
        return Ok((pool[0], why));
    }
    // A cascade of filters; each records why the stacks it drops lost.
    let mut alive = pool.clone();
    let mut lost: Vec<(usize, String)> = Vec::new();
    let mut stage =
        |alive: &mut Vec<usize>, keep: &dyn Fn(usize) -> bool, why: &dyn Fn(usize) -> String| {
            if alive.iter().any(|&i| keep(i)) {
                for &i in alive.iter().filter(|&&i| !keep(i)) {
                    lost.push((i, why(i)));
                }
                alive.retain(|&i| keep(i));
            }
        };
    let cmax = alive.iter().map(|&i| cands[i].coverage).fold(0.0, f64::max);
    stage(&mut alive, &|i| cands[i].coverage >= 0.9 * cmax, &|i| {
        format!(
            "it covers less ({:.1} mm along the slice normal, against {cmax:.1} mm)",
            cands[i].coverage
        )
    });
    let smin = alive
        .iter()
        .filter_map(|&i| cands[i].step)
        .fold(f64::INFINITY, f64::min);
    stage(
        &mut alive,
        &|i| cands[i].step.is_some_and(|s| s <= 1.1 * smin),
        &|i| match cands[i].step {
            Some(s) => {
                format!("similar coverage, thicker slices ({s:.2} mm step, against {smin:.2} mm)")
            }
            None => "similar coverage, unknown slice step".into(),
        },
    );
    stage(&mut alive, &|i| !cands[i].lung, &|_| {
        "similar coverage and step, but a lung kernel (a bone or standard kernel shows bone better)"
            .into()
    });
    stage(&mut alive, &|i| !cands[i].non_ct, &|i| {
        format!("modality {}, not CT", cands[i].modality)
    });
    let zmean = |i: usize| cands[i].z_range.map(|z| z.2).unwrap_or(f64::INFINITY);
    let zmin = alive
        .iter()
        .map(|&i| zmean(i))
        .fold(f64::INFINITY, f64::min);
    stage(&mut alive, &|i| zmean(i) <= zmin + 1.0, &|_| {
        "similar coverage and step, and the chosen one lies lower in the body (the lumbar spine lies below the chest)".into()
    });
    let dmax = alive.iter().map(|&i| cands[i].distinct).max().unwrap_or(0);
    stage(&mut alive, &|i| cands[i].distinct == dmax, &|_| {
        "fewer slices".into()
    });
    let nmin = alive
        .iter()
        .map(|&i| cands[i].series_number.unwrap_or(i64::MAX))
        .min()
        .unwrap_or(i64::MAX);
    stage(
        &mut alive,
        &|i| cands[i].series_number.unwrap_or(i64::MAX) == nmin,
        &|_| "the stacks are alike, and the chosen one has the lower series number".into(),
    );
    let best = alive[0];
    for &i in &alive[1..] {
        lost.push((
            i,
            "the stacks are alike; the first in the listing was taken".into(),
        ));
    }
    let over: Vec<String> = lost
        .iter()
        .map(|(i, why)| format!("{} ({why})", cands[*i].describe()))
        .collect();
    Ok((
        best,
        Some(format!(
            "{} CT volumes found; took {} over {}{skipped}; another can be chosen with --series",
            pool.len(),
            cands[best].describe(),
            over.join(", ")
        )),
    ))
}

pub(crate) fn ts_label(uid: &str) -> String {
    match TransferSyntaxRegistry.get(uid) {
        Some(ts) => format!("{uid} ({})", ts.name()),
        None => uid.to_string(),
    }
}

/// Plane of an orientation: axial, sagittal or coronal, with the angle off
/// that plane when it is oblique.
pub(crate) fn plane_label(axes: &[[f64; 3]; 3]) -> String {
    let n = axes[2];
    let (k, big) = (0..3)
        .map(|k| (k, n[k].abs()))
        .fold((2, 0.0), |a, b| if b.1 > a.1 { b } else { a });
    let name = ["sagittal", "coronal", "axial"][k];
    let off = big.clamp(0.0, 1.0).acos().to_degrees();
    if off > 0.5 {
        format!("{name} (oblique, {off:.1}° off)")
    } else {
        name.into()
    }
}

/// One stack as `spinemesh info` lists it. No patient identifiers.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SeriesSummary {
    /// Number to give to `--series`.
    pub index: usize,
    pub series_instance_uid: String,
    pub series_number: Option<i64>,
    pub modality: String,
    pub description: Option<String>,
    pub image_type: Option<String>,
    pub convolution_kernel: Option<String>,
    /// Images (files, or frames of multi-frame files).
    pub images: usize,
    /// Distinct slice positions.
    pub slices: usize,
    pub rows: u32,
    pub columns: u32,
    /// Pixel spacing as DICOM gives it: [between rows, between columns], mm.
    pub pixel_spacing_mm: Option<[f64; 2]>,
    /// Median step between slice positions, mm.
    pub slice_step_mm: Option<f64>,
    /// Smallest and largest step, mm.
    pub slice_step_range_mm: Option<[f64; 2]>,
    /// Whether every step is within 1 % (or 0.01 mm) of the median.
    pub slice_step_uniform: Option<bool>,
    /// Extent along the slice normal, mm.
    pub coverage_mm: f64,
    pub orientation: String,
    pub image_orientation_patient: Option<[f64; 6]>,
    /// Gantry tilt measured from the slice positions, degrees.
    pub gantry_tilt_deg: Option<f64>,
    /// Gantry/Detector Tilt as the header states it (informative only).
    pub gantry_tilt_tag_deg: Option<f64>,
    pub z_range_mm: Option<[f64; 2]>,
    pub transfer_syntax: String,
    pub multi_frame: bool,
    /// Why this stack is not read by default (`None`: a candidate volume).
    pub left_out_because: Option<String>,
    /// The stack `reconstruct` reads with the same options.
    pub selected: bool,
}

/// What `spinemesh info` reports about an input.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InputSummary {
    pub files_searched: usize,
    pub dicom_files: usize,
    pub files_not_dicom: usize,
    pub files_unreadable: usize,
    /// DICOM files without an image (DICOMDIR, SR, SEG without pixels, ...).
    pub files_without_image: usize,
    pub series: Vec<SeriesSummary>,
    /// Index of the stack `reconstruct` would read.
    pub selected: Option<usize>,
    /// Why that one (or why none can be read).
    pub selection: Option<String>,
    /// Memory the selected volume needs as 32-bit values, MiB.
    pub memory_needed_mib: Option<f64>,
    /// Memory available now (MemAvailable of /proc/meminfo), MiB.
    pub memory_available_mib: Option<f64>,
    pub warnings: Vec<String>,
}

pub(crate) fn summarize(c: &Candidate, selected: bool) -> SeriesSummary {
    let h = c.first();
    let axes = h.orientation.as_ref().and_then(orientation_axes);
    let uniform = match (c.step, c.step_range) {
        (Some(s), Some((lo, hi))) => Some((hi - s).max(s - lo) <= (0.01 * s).max(0.01)),
        _ => None,
    };
    let mut ts: Vec<String> = c.slices.iter().map(|s| s.transfer_syntax.clone()).collect();
    ts.sort();
    ts.dedup();
    SeriesSummary {
        index: c.index,
        series_instance_uid: c.series_uid.clone(),
        series_number: c.series_number,
        modality: c.modality.clone(),
        description: c.description.clone(),
        image_type: h.image_type.clone(),
        convolution_kernel: h.kernel.clone(),
        images: c.slices.len(),
        slices: c.distinct,
        rows: h.rows,
        columns: h.cols,
        pixel_spacing_mm: h.pixel_spacing,
        slice_step_mm: c.step,
        slice_step_range_mm: c.step_range.map(|(a, b)| [a, b]),
        slice_step_uniform: uniform,
        coverage_mm: c.coverage,
        orientation: axes
            .as_ref()
            .map(plane_label)
            .unwrap_or_else(|| "unknown".into()),
        image_orientation_patient: h.orientation,
        gantry_tilt_deg: c.tilt_deg,
        gantry_tilt_tag_deg: h.tilt_tag,
        z_range_mm: c.z_range.map(|z| [z.0, z.1]),
        transfer_syntax: ts
            .iter()
            .map(|t| ts_label(t))
            .collect::<Vec<_>>()
            .join(", "),
        multi_frame: h.frames > 1,
        left_out_because: c.excluded.clone().or_else(|| {
            c.non_ct
                .then(|| format!("modality {}, not CT (--force reads it)", c.modality))
        }),
        selected,
    }
}
