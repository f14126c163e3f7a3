//! Validation: overlap and surface-distance metrics of a predicted mask against
//! a reference mask (the paper's evaluation step).
//!
//! Conventions (those of medpy / the usual SciPy recipe, so numbers can be
//! compared with published ones):
//! - **Dice** = 2|P∩R| / (|P| + |R|), **IoU** = |P∩R| / |P∪R|; both are 1 when
//!   both masks are empty.
//! - **Surface (border) voxels** of a mask M: `M AND NOT erode(M)`, where the
//!   erosion uses the 6-connected cross and treats everything outside the
//!   image as background (SciPy `binary_erosion(M, generate_binary_structure(3, 1),
//!   border_value=0)`), so mask voxels on the image edge are border voxels.
//! - **Directed distances** d(P→R): for each border voxel of P, the Euclidean
//!   distance (mm, voxel centres, grid spacing) to the nearest border voxel of
//!   R — SciPy's `distance_transform_edt(~border_R, sampling=spacing)[border_P]`.
//! - **HD95** = max(95th percentile of d(P→R), 95th percentile of d(R→P)),
//!   percentiles with NumPy's default linear interpolation; **HD** = the
//!   largest distance in either direction.
//! - **ASSD** = mean of the concatenation of d(P→R) and d(R→P) (each surface
//!   voxel weighs the same). medpy's `assd` is instead the mean of the two
//!   directed means; it equals (`asd_pred_to_ref_mm` + `asd_ref_to_pred_mm`) / 2.
//! - Distances are `None` (JSON `null`) when either mask is empty.

use crate::edt::squared_distance_to_set;
use crate::{Error, Grid, Mask, Result, Volume};
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;

/// Scores of a prediction against a reference on one grid.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Metrics {
    /// 2|P∩R| / (|P| + |R|).
    pub dice: f64,
    /// |P∩R| / |P∪R| (Jaccard).
    pub iou: f64,
    /// Symmetric 95th-percentile Hausdorff distance, mm.
    pub hd95_mm: Option<f64>,
    /// Symmetric (100 %) Hausdorff distance, mm.
    pub hd_mm: Option<f64>,
    /// Average symmetric surface distance (mean over both surfaces' voxels), mm.
    pub assd_mm: Option<f64>,
    /// Mean distance from the prediction's surface to the reference's, mm.
    pub asd_pred_to_ref_mm: Option<f64>,
    /// Mean distance from the reference's surface to the prediction's, mm.
    pub asd_ref_to_pred_mm: Option<f64>,
    pub pred_volume_mm3: f64,
    pub ref_volume_mm3: f64,
    /// 100 · (pred − ref) / ref; `None` for an empty reference.
    pub volume_difference_percent: Option<f64>,
    pub pred_voxels: u64,
    pub ref_voxels: u64,
    pub intersection_voxels: u64,
    /// Border voxels of the prediction / reference (see the module docs).
    pub pred_surface_voxels: u64,
    pub ref_surface_voxels: u64,
    /// Grid the masks were compared on (the reference's).
    pub dims: [usize; 3],
    pub spacing_mm: [f64; 3],
    /// Labels taken from each file (empty: any non-zero value).
    pub pred_labels: Vec<i64>,
    pub ref_labels: Vec<i64>,
    /// True when the prediction was resampled (nearest neighbour) onto the reference grid.
    pub pred_resampled: bool,
    /// With `--within-ref-slices`: the index axis treated as axial and the
    /// first and last slice (inclusive) kept.
    pub axial_axis: Option<usize>,
    pub ref_slice_range: Option<[usize; 2]>,
    /// Things worth knowing about this comparison.
    pub warnings: Vec<String>,
}

/// How [`evaluate_files`] selects and aligns the masks.
#[derive(Clone, Debug, Default)]
pub struct EvaluateOptions {
    /// Reference labels to take (empty: any non-zero).
    pub ref_labels: Vec<i64>,
    /// Prediction labels to take (empty: any non-zero).
    pub pred_labels: Vec<i64>,
    /// Compare only the axial slices from the first to the last one holding
    /// reference voxels (for references that cover part of the scan).
    pub within_ref_slices: bool,
}

/// Parses a label selection: numbers and inclusive ranges separated by commas,
/// e.g. `"26-31"`, `"1"`, `"20,21,22"`, `"1,3-5"`. An empty string, `"any"`,
/// `"all"` or `"nonzero"` gives an empty list, meaning "any non-zero value".
/// The result is sorted without duplicates.
pub fn parse_labels(s: &str) -> Result<Vec<i64>> {
    let t = s.trim();
    if t.is_empty()
        || ["any", "all", "nonzero", "non-zero"]
            .iter()
            .any(|w| t.eq_ignore_ascii_case(w))
    {
        return Ok(Vec::new());
    }
    let bad = |why: &str| {
        Error::Parameter(format!(
            "label selection \"{s}\" {why}; give labels like \"1\", \"26-31\" or \"20,21,22\""
        ))
    };
    let num = |x: &str| -> Result<i64> {
        x.trim().parse::<i64>().map_err(|_| {
            bad(&format!(
                "has \"{}\", which is not a whole number",
                x.trim()
            ))
        })
    };
    let mut out = Vec::new();
    for part in t.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(bad("has an empty item"));
        }
        if let Some((a, b)) = part.split_once('-') {
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(bad(&format!(
                    "has the range {a}-{b}, whose start is after its end"
                )));
            }
            if b - a > 100_000 {
                return Err(bad(&format!("has the range {a}-{b}, which is too long")));
            }
            out.extend(a..=b);
        } else {
            out.push(num(part)?);
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Voxels whose value, rounded to the nearest integer, is in `selected`; with
/// an empty selection, every non-zero voxel (NaN counts as background).
pub fn labels_to_mask(labels: &Volume<f32>, selected: &[i64]) -> Mask {
    if selected.is_empty() {
        return labels.map(|v| u8::from(v != 0.0 && !v.is_nan()));
    }
    let mut sel = selected.to_vec();
    sel.sort_unstable();
    sel.dedup();
    labels.map(|v| {
        let r = v.round();
        u8::from(r.is_finite() && sel.binary_search(&(r as i64)).is_ok())
    })
}

/// Resamples `src` onto `target` by nearest neighbour through patient
/// coordinates: each target voxel centre is mapped to `src`'s continuous index
/// and takes the value of the nearest `src` voxel; voxels outside `src` get
/// `T::default()` (0). Fails only when `src`'s grid is degenerate.
pub fn resample_nearest<T: Copy + Default + Send + Sync>(
    src: &Volume<T>,
    target: &Grid,
) -> Result<Volume<T>> {
    let inv = crate::volume::invert3(&src.grid.index_matrix()).ok_or_else(|| {
        Error::Input(
            "cannot resample: the source grid is degenerate (its axes are not independent)".into(),
        )
    })?;
    let mt = target.index_matrix();
    // src_index = A · target_index + b.
    let mut a = [[0.0; 3]; 3];
    for r in 0..3 {
        for c in 0..3 {
            a[r][c] = (0..3).map(|k| inv[r][k] * mt[k][c]).sum();
        }
    }
    let d = [
        target.origin[0] - src.grid.origin[0],
        target.origin[1] - src.grid.origin[1],
        target.origin[2] - src.grid.origin[2],
    ];
    let b: [f64; 3] = std::array::from_fn(|r| (0..3).map(|k| inv[r][k] * d[k]).sum());
    let [nx, ny, _] = target.dims;
    let sd = src.grid.dims;
    let mut data = vec![T::default(); target.len()];
    if nx == 0 || ny == 0 {
        return Volume::new(target.clone(), data);
    }
    data.par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(z, slice)| {
            for (y, row) in slice.chunks_mut(nx).enumerate() {
                let base: [f64; 3] =
                    std::array::from_fn(|r| b[r] + a[r][1] * y as f64 + a[r][2] * z as f64);
                for (x, o) in row.iter_mut().enumerate() {
                    let mut idx = [0usize; 3];
                    let mut inside = true;
                    for r in 0..3 {
                        let v = (base[r] + a[r][0] * x as f64 + 0.5).floor();
                        if v >= 0.0 && v < sd[r] as f64 {
                            idx[r] = v as usize;
                        } else {
                            inside = false;
                            break;
                        }
                    }
                    if inside {
                        *o = src.data[idx[0] + sd[0] * (idx[1] + sd[1] * idx[2])];
                    }
                }
            }
        });
    Volume::new(target.clone(), data)
}

/// Zeroes the prediction outside the axial extent of the reference: along
/// `reference.grid.axial_axis()`, slices before the first or after the last
/// slice holding reference voxels. Returns that axis and the inclusive slice
/// range, or `None` (nothing changed) when the reference is empty. The
/// reference itself has nothing outside its own extent, so it is unchanged.
pub fn restrict_to_ref_slices(
    pred: &mut Mask,
    reference: &Mask,
) -> Result<Option<(usize, [usize; 2])>> {
    if !pred.grid.same_as(&reference.grid) {
        return Err(Error::Input(
            "cannot restrict to the reference's slices: the masks are on different grids; resample first".into(),
        ));
    }
    let axis = reference.grid.axial_axis();
    let Some((lo, hi)) = reference.bounding_box() else {
        return Ok(None);
    };
    let (first, last) = (lo[axis], hi[axis] - 1);
    let [nx, ny, _] = pred.grid.dims;
    if nx == 0 {
        return Ok(Some((axis, [first, last])));
    }
    pred.data
        .par_chunks_mut(nx)
        .enumerate()
        .for_each(|(r, row)| {
            let (y, z) = (r % ny, r / ny);
            match axis {
                0 => {
                    row[..first].fill(0);
                    row[last + 1..].fill(0);
                }
                1 if y < first || y > last => row.fill(0),
                2 if z < first || z > last => row.fill(0),
                _ => {}
            }
        });
    Ok(Some((axis, [first, last])))
}

/// Border voxels: set voxels with an unset 6-neighbour or on the volume's edge.
fn border(mask: &Mask) -> Mask {
    let [nx, ny, nz] = mask.grid.dims;
    let plane = nx * ny;
    let mut out = vec![0u8; mask.data.len()];
    if plane == 0 {
        return Volume {
            grid: mask.grid.clone(),
            data: out,
        };
    }
    let m = &mask.data;
    out.par_chunks_mut(plane)
        .enumerate()
        .for_each(|(z, slice)| {
            for y in 0..ny {
                for x in 0..nx {
                    let i = x + nx * y + plane * z;
                    if m[i] == 0 {
                        continue;
                    }
                    let edge =
                        x == 0 || y == 0 || z == 0 || x + 1 == nx || y + 1 == ny || z + 1 == nz;
                    let b = edge
                        || m[i - 1] == 0
                        || m[i + 1] == 0
                        || m[i - nx] == 0
                        || m[i + nx] == 0
                        || m[i - plane] == 0
                        || m[i + plane] == 0;
                    slice[x + nx * y] = u8::from(b);
                }
            }
        });
    Volume {
        grid: mask.grid.clone(),
        data: out,
    }
}

/// Distances (mm) from each set voxel of `from` to the nearest set voxel of `to`.
fn directed(from: &Mask, to: &Mask) -> Vec<f64> {
    let d2 = squared_distance_to_set(to);
    from.data
        .par_iter()
        .zip(d2.par_iter())
        .filter(|(&f, _)| f != 0)
        .map(|(_, &d)| (d as f64).sqrt())
        .collect()
}

/// NumPy's default (linear) percentile; `v` must be non-empty. Reorders `v`.
fn percentile(v: &mut [f64], q: f64) -> f64 {
    let n = v.len();
    let h = (n - 1) as f64 * q / 100.0;
    let lo = (h.floor() as usize).min(n - 1);
    let frac = h - lo as f64;
    let (_, &mut a, right) = v.select_nth_unstable_by(lo, f64::total_cmp);
    if frac == 0.0 || right.is_empty() {
        return a;
    }
    let b = right.iter().copied().fold(f64::INFINITY, f64::min);
    a + (b - a) * frac
}

fn count_set(data: &[u8]) -> u64 {
    data.par_chunks(1 << 16)
        .map(|c| c.iter().filter(|&&v| v != 0).count() as u64)
        .sum()
}

/// Dice of label `pred_label` in `pred` against label `ref_label` in
/// `reference`, voxel by voxel (label maps of the same length, e.g. one
/// vertebra against its truth); 0 when neither holds the label.
pub fn label_dice(pred: &[u8], pred_label: u8, reference: &[u8], ref_label: u8) -> f64 {
    let (mut both, mut a, mut b) = (0usize, 0usize, 0usize);
    for (&x, &y) in pred.iter().zip(reference) {
        let (p, q) = (x == pred_label, y == ref_label);
        both += usize::from(p && q);
        a += usize::from(p);
        b += usize::from(q);
    }
    2.0 * both as f64 / (a + b).max(1) as f64
}

/// Compares two masks on the same grid (see the module docs for definitions).
///
/// The distance work is confined to the bounding box of both masks plus one
/// voxel (clamped to the image), which gives exactly the full-image result.
pub fn compare(pred: &Mask, reference: &Mask) -> Result<Metrics> {
    if !pred.grid.same_as(&reference.grid) {
        return Err(Error::Input(format!(
            "the prediction (grid {:?}, spacing {:?}) and the reference (grid {:?}, spacing {:?}) are on different grids; resample the prediction onto the reference first",
            pred.grid.dims, pred.grid.spacing, reference.grid.dims, reference.grid.spacing
        )));
    }
    if pred.data.len() != pred.grid.len() || reference.data.len() != reference.grid.len() {
        return Err(Error::Input(
            "a mask's data length does not match its grid".into(),
        ));
    }
    let (pred_voxels, ref_voxels, inter) = pred
        .data
        .par_chunks(1 << 16)
        .zip(reference.data.par_chunks(1 << 16))
        .map(|(p, r)| {
            let mut c = (0u64, 0u64, 0u64);
            for (&p, &r) in p.iter().zip(r) {
                let (p, r) = (p != 0, r != 0);
                c.0 += p as u64;
                c.1 += r as u64;
                c.2 += (p && r) as u64;
            }
            c
        })
        .reduce(|| (0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
    let union = pred_voxels + ref_voxels - inter;
    let (dice, iou) = if union == 0 {
        (1.0, 1.0)
    } else {
        (
            2.0 * inter as f64 / (pred_voxels + ref_voxels) as f64,
            inter as f64 / union as f64,
        )
    };
    let vv = reference.grid.voxel_volume_mm3();
    let mut m = Metrics {
        dice,
        iou,
        hd95_mm: None,
        hd_mm: None,
        assd_mm: None,
        asd_pred_to_ref_mm: None,
        asd_ref_to_pred_mm: None,
        pred_volume_mm3: pred_voxels as f64 * vv,
        ref_volume_mm3: ref_voxels as f64 * vv,
        volume_difference_percent: (ref_voxels > 0)
            .then(|| 100.0 * (pred_voxels as f64 - ref_voxels as f64) / ref_voxels as f64),
        pred_voxels,
        ref_voxels,
        intersection_voxels: inter,
        pred_surface_voxels: 0,
        ref_surface_voxels: 0,
        dims: reference.grid.dims,
        spacing_mm: reference.grid.spacing,
        pred_labels: Vec::new(),
        ref_labels: Vec::new(),
        pred_resampled: false,
        axial_axis: None,
        ref_slice_range: None,
        warnings: Vec::new(),
    };
    let (Some(bp), Some(br)) = (pred.bounding_box(), reference.bounding_box()) else {
        return Ok(m);
    };
    let dims = reference.grid.dims;
    let lo: [usize; 3] = std::array::from_fn(|a| bp.0[a].min(br.0[a]).saturating_sub(1));
    let hi: [usize; 3] = std::array::from_fn(|a| (bp.1[a].max(br.1[a]) + 1).min(dims[a]));
    let full = lo == [0; 3] && hi == dims;
    let (pb, rb) = if full {
        (border(pred), border(reference))
    } else {
        // Inside the box (one voxel of margin) the box edge is the image edge
        // or background, so the border is the same as on the full image.
        (border(&pred.crop(lo, hi)), border(&reference.crop(lo, hi)))
    };
    m.pred_surface_voxels = count_set(&pb.data);
    m.ref_surface_voxels = count_set(&rb.data);
    let mut d_pr = directed(&pb, &rb);
    let mut d_rp = directed(&rb, &pb);
    drop((pb, rb));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    m.asd_pred_to_ref_mm = Some(mean(&d_pr));
    m.asd_ref_to_pred_mm = Some(mean(&d_rp));
    m.assd_mm = Some(
        (d_pr.iter().sum::<f64>() + d_rp.iter().sum::<f64>()) / (d_pr.len() + d_rp.len()) as f64,
    );
    m.hd_mm = Some(max(&d_pr).max(max(&d_rp)));
    m.hd95_mm = Some(percentile(&mut d_pr, 95.0).max(percentile(&mut d_rp, 95.0)));
    Ok(m)
}

fn describe_labels(l: &[i64]) -> String {
    if l.is_empty() {
        "any non-zero label".into()
    } else if l.len() > 1 && l.windows(2).all(|w| w[1] == w[0] + 1) {
        format!("labels {}-{}", l[0], l[l.len() - 1])
    } else {
        format!(
            "labels {}",
            l.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    }
}

/// Reads a prediction and a reference (`.nii`, `.nii.gz`, `.nrrd`, `.nhdr`),
/// selects labels, resamples the prediction onto the reference grid (nearest
/// neighbour, through patient coordinates) when the grids differ, optionally
/// keeps only the reference's axial slice range, and compares.
pub fn evaluate_files(pred: &Path, reference: &Path, opts: &EvaluateOptions) -> Result<Metrics> {
    let ref_mask = {
        let v = crate::io::read_label_volume(reference)?;
        labels_to_mask(&v, &opts.ref_labels)
    };
    let ref_count = ref_mask.count();
    if ref_count == 0 {
        return Err(Error::Empty(format!(
            "the reference {} holds no voxels with {}; check --ref-labels",
            reference.display(),
            describe_labels(&opts.ref_labels)
        )));
    }
    let mut warnings = Vec::new();
    let mut pred_mask = {
        let v = crate::io::read_label_volume(pred)?;
        labels_to_mask(&v, &opts.pred_labels)
    };
    let pred_volume_before = pred_mask.volume_mm3();
    if pred_volume_before == 0.0 {
        warnings.push(format!(
            "the prediction holds no voxels with {}",
            describe_labels(&opts.pred_labels)
        ));
    }
    let mut resampled = false;
    if pred_mask.grid.same_as(&ref_mask.grid) {
        pred_mask.grid = ref_mask.grid.clone();
    } else {
        pred_mask = resample_nearest(&pred_mask, &ref_mask.grid)?;
        resampled = true;
        let after = pred_mask.volume_mm3();
        if pred_volume_before > 0.0
            && (after - pred_volume_before).abs() > 0.05 * pred_volume_before
        {
            warnings.push(format!(
                "resampling the prediction onto the reference grid changed its volume from {pred_volume_before:.0} to {after:.0} mm³ (it lies partly outside the reference image, or the voxel sizes differ a lot)"
            ));
        }
    }
    let mut slices = None;
    if opts.within_ref_slices {
        slices = restrict_to_ref_slices(&mut pred_mask, &ref_mask)?;
    }
    let mut m = compare(&pred_mask, &ref_mask)?;
    m.pred_labels = opts.pred_labels.clone();
    m.ref_labels = opts.ref_labels.clone();
    m.pred_resampled = resampled;
    if let Some((axis, range)) = slices {
        m.axial_axis = Some(axis);
        m.ref_slice_range = Some(range);
    }
    m.warnings = warnings;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_dice_compares_one_label_with_another() {
        let pred = [0u8, 20, 20, 21, 21, 0];
        let truth = [0u8, 1, 1, 1, 2, 2];
        // Label 20 against 1: 2 shared of 2 + 3.
        assert!((label_dice(&pred, 20, &truth, 1) - 0.8).abs() < 1e-12);
        assert!((label_dice(&pred, 21, &truth, 2) - 0.5).abs() < 1e-12);
        assert_eq!(label_dice(&pred, 7, &truth, 7), 0.0);
    }

    fn boxed(grid: &Grid, lo: [usize; 3], hi: [usize; 3]) -> Mask {
        let mut m = Mask::filled(grid.clone(), 0);
        for z in lo[2]..hi[2] {
            for y in lo[1]..hi[1] {
                for x in lo[0]..hi[0] {
                    m.set(x, y, z, 1);
                }
            }
        }
        m
    }

    #[test]
    fn identical_masks() {
        let g = Grid::new([10, 9, 8], [0.7, 0.8, 2.5], [0.0; 3]);
        let a = boxed(&g, [2, 2, 2], [7, 6, 5]);
        let m = compare(&a, &a).unwrap();
        assert_eq!(m.dice, 1.0);
        assert_eq!(m.iou, 1.0);
        assert_eq!(m.hd95_mm, Some(0.0));
        assert_eq!(m.hd_mm, Some(0.0));
        assert_eq!(m.assd_mm, Some(0.0));
        assert_eq!(m.pred_voxels, 60);
        assert!((m.pred_volume_mm3 - 60.0 * 0.7 * 0.8 * 2.5).abs() < 1e-9);
        assert_eq!(m.volume_difference_percent, Some(0.0));
    }

    #[test]
    fn offset_boxes() {
        // 4×4×4 boxes shifted by 2 along x: overlap 2×4×4.
        let g = Grid::new([12, 8, 8], [1.0, 1.0, 1.0], [0.0; 3]);
        let a = boxed(&g, [2, 2, 2], [6, 6, 6]);
        let b = boxed(&g, [4, 2, 2], [8, 6, 6]);
        let m = compare(&a, &b).unwrap();
        assert!((m.dice - 0.5).abs() < 1e-12);
        assert!((m.iou - 32.0 / 96.0).abs() < 1e-12);
        // Shift along x with spacing 3 mm: the x-facing faces are 2 voxels = 6 mm apart.
        let g3 = Grid::new([12, 8, 8], [3.0, 1.0, 1.0], [0.0; 3]);
        let a = boxed(&g3, [2, 2, 2], [6, 6, 6]);
        let b = boxed(&g3, [4, 2, 2], [8, 6, 6]);
        let m = compare(&a, &b).unwrap();
        assert!((m.hd_mm.unwrap() - 6.0).abs() < 1e-6, "{m:?}");
        assert!(m.hd95_mm.unwrap() <= 6.0 + 1e-6);
        assert!(m.assd_mm.unwrap() > 0.0);
    }

    #[test]
    fn empty_masks() {
        let g = Grid::new([5, 5, 5], [1.0; 3], [0.0; 3]);
        let e = Mask::filled(g.clone(), 0);
        let a = boxed(&g, [1, 1, 1], [3, 3, 3]);
        let m = compare(&e, &a).unwrap();
        assert_eq!(m.dice, 0.0);
        assert_eq!(m.hd95_mm, None);
        let m = compare(&e, &e).unwrap();
        assert_eq!(m.dice, 1.0);
        assert_eq!(m.volume_difference_percent, None);
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"hd95_mm\":null"), "{json}");
        let other = Mask::filled(Grid::new([5, 5, 6], [1.0; 3], [0.0; 3]), 0);
        assert!(compare(&e, &other).is_err());
    }

    #[test]
    fn image_edge_voxels_are_border() {
        // A full mask: every voxel on the image edge is border; inner ones not.
        let g = Grid::new([4, 4, 4], [1.0; 3], [0.0; 3]);
        let full = Mask::filled(g, 1);
        let b = border(&full);
        assert_eq!(count_set(&b.data), 64 - 8);
    }

    fn sphere(g: &Grid, c: [f64; 3], r: f64) -> Mask {
        let mut m = Mask::filled(g.clone(), 0);
        let [nx, ny, nz] = g.dims;
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let p = [
                        x as f64 * g.spacing[0],
                        y as f64 * g.spacing[1],
                        z as f64 * g.spacing[2],
                    ];
                    let d2: f64 = (0..3).map(|a| (p[a] - c[a]).powi(2)).sum();
                    if d2 <= r * r {
                        m.set(x, y, z, 1);
                    }
                }
            }
        }
        m
    }

    #[test]
    fn concentric_spheres_on_anisotropic_grid() {
        let g = Grid::new([81, 81, 41], [0.5, 0.5, 1.0], [0.0; 3]);
        let c = [20.0, 20.0, 20.0];
        let a = sphere(&g, c, 15.0);
        let b = sphere(&g, c, 12.0);
        let m = compare(&a, &b).unwrap();
        let hd95 = m.hd95_mm.unwrap();
        assert!((hd95 - 3.0).abs() < 0.6, "hd95 {hd95}");
        let assd = m.assd_mm.unwrap();
        assert!((assd - 3.0).abs() < 0.6, "assd {assd}");
        // Volumes near the analytic ones.
        let v = 4.0 / 3.0 * std::f64::consts::PI * 15f64.powi(3);
        assert!((m.pred_volume_mm3 - v).abs() < 0.03 * v);
    }

    #[test]
    fn percentile_matches_numpy() {
        // numpy.percentile([1, 2, 3, 4, 10], 95) == 8.8
        let mut v = vec![10.0, 1.0, 3.0, 2.0, 4.0];
        assert!((percentile(&mut v, 95.0) - 8.8).abs() < 1e-12);
        let mut v = vec![5.0];
        assert_eq!(percentile(&mut v, 95.0), 5.0);
        // numpy.percentile(range(101), 95) == 95
        let mut v: Vec<f64> = (0..=100).rev().map(|i| i as f64).collect();
        assert!((percentile(&mut v, 95.0) - 95.0).abs() < 1e-12);
    }

    #[test]
    fn label_parsing() {
        assert_eq!(parse_labels("26-31").unwrap(), vec![26, 27, 28, 29, 30, 31]);
        assert_eq!(parse_labels("1").unwrap(), vec![1]);
        assert_eq!(parse_labels(" 22, 20,21 ,21").unwrap(), vec![20, 21, 22]);
        assert_eq!(parse_labels("1,3-5").unwrap(), vec![1, 3, 4, 5]);
        assert!(parse_labels("").unwrap().is_empty());
        assert!(parse_labels("any").unwrap().is_empty());
        for bad in ["a", "5-3", "1,,2", "1-", "0-99999999", "2.5"] {
            let e = parse_labels(bad).unwrap_err().to_string();
            assert!(e.contains("label selection"), "{bad}: {e}");
        }
        let g = Grid::new([4, 1, 1], [1.0; 3], [0.0; 3]);
        let v = Volume::new(g, vec![0.0, 26.0, 31.0, 40.0]).unwrap();
        assert_eq!(labels_to_mask(&v, &[26, 27]).data, vec![0, 1, 0, 0]);
        assert_eq!(labels_to_mask(&v, &[]).data, vec![0, 1, 1, 1]);
    }

    #[test]
    fn resampling_same_voxels_on_shifted_and_flipped_grids_is_exact() {
        let (c, s) = (20f64.to_radians().cos(), 20f64.to_radians().sin());
        let g = Grid {
            dims: [6, 5, 4],
            spacing: [0.8, 1.2, 3.0],
            origin: [5.0, -7.0, 11.0],
            direction: [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]],
        };
        let src = Volume::new(g.clone(), (0..g.len()).map(|i| i as f32 + 1.0).collect()).unwrap();
        // Flipped x and z: same voxel centres, opposite order.
        let mut f = g.clone();
        f.origin = g.index_to_lps([5.0, 0.0, 3.0]);
        f.direction[0] = [-c, -s, 0.0];
        f.direction[2] = [0.0, 0.0, -1.0];
        let r = resample_nearest(&src, &f).unwrap();
        for z in 0..4 {
            for y in 0..5 {
                for x in 0..6 {
                    assert_eq!(r.get(x, y, z), src.get(5 - x, y, 3 - z));
                }
            }
        }
        // Shifted by (2, -1, 1) voxels: overlapping part copied, rest 0.
        let sh = g.sub_grid([2, -1, 1], g.dims);
        let r = resample_nearest(&src, &sh).unwrap();
        for z in 0..4 {
            for y in 0..5 {
                for x in 0..6 {
                    let (sx, sy, sz) = (x as isize + 2, y as isize - 1, z as isize + 1);
                    let want =
                        if (0..6).contains(&sx) && (0..5).contains(&sy) && (0..4).contains(&sz) {
                            src.get(sx as usize, sy as usize, sz as usize)
                        } else {
                            0.0
                        };
                    assert_eq!(r.get(x, y, z), want);
                }
            }
        }
        // Round trip back onto the original grid.
        let back = resample_nearest(&resample_nearest(&src, &f).unwrap(), &g).unwrap();
        assert_eq!(back.data, src.data);
    }

    #[test]
    fn restricting_to_reference_slices() {
        let g = Grid::new([4, 4, 10], [1.0; 3], [0.0; 3]);
        let mut p = Mask::filled(g.clone(), 1);
        let r = boxed(&g, [1, 1, 3], [3, 3, 6]);
        let got = restrict_to_ref_slices(&mut p, &r).unwrap();
        assert_eq!(got, Some((2, [3, 5])));
        assert_eq!(p.count(), 16 * 3);
        // A grid whose axial axis is y (coronal-like stacking).
        let mut gy = Grid::new([4, 6, 4], [1.0; 3], [0.0; 3]);
        gy.direction = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]];
        let mut p = Mask::filled(gy.clone(), 1);
        let r = boxed(&gy, [0, 2, 0], [1, 4, 1]);
        let got = restrict_to_ref_slices(&mut p, &r).unwrap();
        assert_eq!(got, Some((1, [2, 3])));
        assert_eq!(p.count(), 4 * 2 * 4);
    }

    #[test]
    fn crop_gives_the_same_distances_as_the_full_image() {
        // Masks touching the image edge and masks in the middle.
        let g = Grid::new([20, 18, 12], [0.6, 0.9, 2.0], [0.0; 3]);
        for (lo, hi) in [([0, 0, 0], [7, 9, 5]), ([5, 5, 3], [12, 11, 8])] {
            let a = boxed(&g, lo, hi);
            let b = sphere(&g, [6.0, 8.0, 10.0], 5.0);
            let m = compare(&a, &b).unwrap();
            // Full-image reference computation.
            let (pb, rb) = (border(&a), border(&b));
            let mut d1 = directed(&pb, &rb);
            let mut d2 = directed(&rb, &pb);
            let want = percentile(&mut d1, 95.0).max(percentile(&mut d2, 95.0));
            assert!((m.hd95_mm.unwrap() - want).abs() < 1e-9);
            assert_eq!(m.pred_surface_voxels, count_set(&pb.data));
        }
    }
}
