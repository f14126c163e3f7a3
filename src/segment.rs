//! Spine segmentation beyond the paper's recipe (the experimental `spine`
//! preset; work in progress on issue 3, not yet the default):
//! solid vertebral bodies and the spine isolated from ribs and pelvis,
//! training-free, every parameter in mm, mm² or HU.
//!
//! 1. **Bone**: Gaussian σ mm, then `[bone_low, high]` HU, then closing (as the
//!    paper, with a lower threshold that keeps more cancellous bone).
//! 2. **Solid fill**: in every axial slice, background regions enclosed by bone
//!    (holes, 4-connected) are added where the smoothed CT is at least
//!    `fill_low_hu` and the hole is at most `fill_max_area_mm2`: cancellous bone
//!    inside a cortical ring is filled, the spinal canal (CSF, fat: low HU) and
//!    large enclosed regions (the pelvic cavity) are not.
//! 3. **Spinal canal**: in each axial slice, the largest low-density hole
//!    (`canal_max_hu`) of `canal_area_mm2` is a canal candidate; outliers (more
//!    than 15 mm from the median of their neighbours) are dropped and the centre
//!    line is interpolated through the slices without one (disc levels).
//! 4. **Isolation**: a marker-controlled watershed on the distance transform of
//!    the bone. Bone within `spine_radius_mm` (in-plane) of the canal seeds the
//!    spine, bone beyond `other_radius_mm` seeds "other bone" (ribs, ilium,
//!    femora); both flood the bone from its thick centres outwards and meet at
//!    the narrowest necks, which are the joints (costovertebral, sacroiliac).
//!    The spine's label is kept.
//!
//! Without a canal (too few slices show one) the isolation is skipped, the
//! largest component is kept as in the paper, and a warning says so.
//!
//! Measured (Dice within the reference slices; paper preset in brackets):
//! totalseg-abdomen-3mm L1–S1 0.809 (0.551), verse012 L1–L3 0.675 (0.700),
//! realistic phantom 0.910 (0.837), dense phantom 0.910 (0.925); on
//! acrin-petct-two-series the ribs and most of the pelvis are removed.

use crate::components::{self, Connectivity};
use crate::{edt, morphology, smooth, Error, Mask, Result, Volume};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::VecDeque;

/// Parameters of the spine segmentation (physical units).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpineParams {
    pub sigma_mm: f64,
    pub bone_low_hu: f32,
    pub bone_high_hu: f32,
    pub closing_mm: f64,
    pub fill_low_hu: f32,
    pub fill_max_area_mm2: f64,
    pub canal_max_hu: f32,
    pub canal_area_mm2: [f64; 2],
    pub spine_radius_mm: f64,
    pub other_radius_mm: f64,
    pub min_component_mm3: f64,
}

impl Default for SpineParams {
    fn default() -> Self {
        SpineParams {
            sigma_mm: 0.6,
            bone_low_hu: 120.0,
            bone_high_hu: 3000.0,
            closing_mm: 1.2,
            fill_low_hu: 40.0,
            fill_max_area_mm2: 2500.0,
            canal_max_hu: 60.0,
            canal_area_mm2: [30.0, 800.0],
            spine_radius_mm: 30.0,
            other_radius_mm: 65.0,
            min_component_mm3: 5000.0,
        }
    }
}

/// What each step did, mm³ (for report.json).
#[derive(Clone, Debug, Default, Serialize)]
pub struct SpineReport {
    pub bone_mm3: f64,
    pub closing_added_mm3: f64,
    pub fill_added_mm3: f64,
    /// Axial slices with a canal found / total.
    pub canal_slices_found: usize,
    pub slices: usize,
    /// Bone assigned to other structures (ribs, pelvis, …) by the watershed.
    pub isolation_removed_mm3: f64,
    /// Bone reached by neither marker (not connected to the spine).
    pub unconnected_removed_mm3: f64,
    pub kept_mm3: f64,
    pub warnings: Vec<String>,
}

/// Index helper for slices perpendicular to axis `a`.
#[derive(Clone, Copy)]
struct Plane {
    /// In-plane axes (u, v) and the slice axis.
    u: usize,
    v: usize,
    a: usize,
    dims: [usize; 3],
}

impl Plane {
    fn new(dims: [usize; 3], a: usize) -> Self {
        let (u, v) = match a {
            0 => (1, 2),
            1 => (0, 2),
            _ => (0, 1),
        };
        Plane { u, v, a, dims }
    }
    fn nu(&self) -> usize {
        self.dims[self.u]
    }
    fn nv(&self) -> usize {
        self.dims[self.v]
    }
    fn slices(&self) -> usize {
        self.dims[self.a]
    }
    /// Linear volume index of in-plane (i, j) on slice k.
    #[inline]
    fn index(&self, k: usize, i: usize, j: usize) -> usize {
        let mut c = [0usize; 3];
        c[self.a] = k;
        c[self.u] = i;
        c[self.v] = j;
        c[0] + self.dims[0] * (c[1] + self.dims[1] * c[2])
    }
}

/// Holes of a 2D mask (background not 4-connected to the border), labelled
/// 1.. (4-connected), with their pixel counts.
fn holes_2d(m: &[u8], nu: usize, nv: usize) -> (Vec<u32>, Vec<usize>) {
    const OUT: u32 = u32::MAX;
    let mut lab = vec![0u32; m.len()];
    let mut stack = Vec::new();
    // Mark background connected to the border.
    for j in 0..nv {
        for i in 0..nu {
            if (i == 0 || j == 0 || i + 1 == nu || j + 1 == nv) && m[i + nu * j] == 0 {
                lab[i + nu * j] = OUT;
                stack.push(i + nu * j);
            }
        }
    }
    let flood = |lab: &mut Vec<u32>, stack: &mut Vec<usize>, value: u32| -> usize {
        let mut n = 0;
        while let Some(p) = stack.pop() {
            n += 1;
            let (i, j) = (p % nu, p / nu);
            let mut visit = |q: usize| {
                if m[q] == 0 && lab[q] == 0 {
                    lab[q] = value;
                    stack.push(q);
                }
            };
            if i > 0 {
                visit(p - 1);
            }
            if i + 1 < nu {
                visit(p + 1);
            }
            if j > 0 {
                visit(p - nu);
            }
            if j + 1 < nv {
                visit(p + nu);
            }
        }
        n
    };
    flood(&mut lab, &mut stack, OUT);
    let mut sizes = vec![0usize];
    for p in 0..m.len() {
        if m[p] == 0 && lab[p] == 0 {
            let id = sizes.len() as u32;
            lab[p] = id;
            stack.push(p);
            sizes.push(flood(&mut lab, &mut stack, id));
        }
    }
    for l in lab.iter_mut() {
        if *l == OUT {
            *l = 0;
        }
    }
    (lab, sizes)
}

/// Per axial slice: voxels to fill, and canal candidates (area in pixels, centre).
type SliceFindings = (Vec<usize>, Vec<(usize, [f64; 2])>);

/// Steps 1–4. Returns the spine mask on the CT's grid.
pub fn spine_mask(ct: &Volume<f32>, p: &SpineParams) -> Result<(Mask, SpineReport)> {
    let grid = &ct.grid;
    let vox = grid.voxel_volume_mm3();
    let mut rep = SpineReport::default();

    // 1. Bone.
    let smoothed = smooth::gaussian(ct, [p.sigma_mm; 3])?;
    let bone = crate::threshold::threshold(&smoothed, p.bone_low_hu, p.bone_high_hu)?;
    let bone_n = bone.count();
    rep.bone_mm3 = bone_n as f64 * vox;
    if bone_n == 0 {
        return Err(Error::Empty(format!(
            "no voxel lies in {}–{} HU after smoothing; is this a CT in Hounsfield units?",
            p.bone_low_hu, p.bone_high_hu
        )));
    }
    let closed = morphology::closing(&bone, p.closing_mm)?;
    drop(bone);
    let closed_n = closed.count();
    rep.closing_added_mm3 = (closed_n - bone_n) as f64 * vox;

    // 2–3. Slice-wise fill and canal candidates, slices in parallel.
    let plane = Plane::new(grid.dims, grid.axial_axis());
    let (su, sv) = (grid.spacing[plane.u], grid.spacing[plane.v]);
    let px_mm2 = su * sv;
    let per_slice: Vec<SliceFindings> = (0..plane.slices())
        .into_par_iter()
        .map(|k| {
            let (nu, nv) = (plane.nu(), plane.nv());
            let mut m = vec![0u8; nu * nv];
            for j in 0..nv {
                for i in 0..nu {
                    m[i + nu * j] = closed.data[plane.index(k, i, j)];
                }
            }
            let (lab, sizes) = holes_2d(&m, nu, nv);
            let mut sum = vec![0f64; sizes.len()];
            let mut cen = vec![[0f64; 2]; sizes.len()];
            for (q, &l) in lab.iter().enumerate() {
                if l != 0 {
                    let (i, j) = (q % nu, q / nu);
                    sum[l as usize] += smoothed.data[plane.index(k, i, j)] as f64;
                    cen[l as usize][0] += i as f64;
                    cen[l as usize][1] += j as f64;
                }
            }
            let mut add = Vec::new();
            let mut canal = Vec::new();
            for l in 1..sizes.len() {
                let area = sizes[l] as f64 * px_mm2;
                let mean = sum[l] / sizes[l] as f64;
                if area >= p.canal_area_mm2[0]
                    && area <= p.canal_area_mm2[1]
                    && mean <= p.canal_max_hu as f64
                {
                    canal.push((
                        sizes[l],
                        [cen[l][0] / sizes[l] as f64, cen[l][1] / sizes[l] as f64],
                    ));
                }
            }
            // Holes of cancellous density are filled; the canal (CSF, fat) is not.
            for (q, &l) in lab.iter().enumerate() {
                if l != 0 && sizes[l as usize] as f64 * px_mm2 <= p.fill_max_area_mm2 {
                    let idx = plane.index(k, q % nu, q / nu);
                    if smoothed.data[idx] >= p.fill_low_hu {
                        add.push(idx);
                    }
                }
            }
            (add, canal)
        })
        .collect();
    drop(smoothed);
    let mut solid = closed;
    let mut added = 0usize;
    for (add, _) in &per_slice {
        for &i in add {
            solid.data[i] = 1;
        }
        added += add.len();
    }
    rep.fill_added_mm3 = added as f64 * vox;
    rep.slices = plane.slices();
    let candidates: Vec<(usize, usize, [f64; 2])> = per_slice
        .iter()
        .enumerate()
        .flat_map(|(k, (_, c))| c.iter().map(move |&(n, c)| (k, n, c)))
        .collect();
    let found = largest_per_slice(&candidates);
    rep.canal_slices_found = found.len();

    let Some(track) = canal_track(&found, plane.slices(), [su, sv]) else {
        rep.warnings.push(format!(
            "the spinal canal was found in only {} of {} axial slices: the spine was not \
             isolated from other bones; the largest component is kept instead",
            found.len(),
            plane.slices()
        ));
        let (mask, sel) = components::select(&solid, p.min_component_mm3, true, Connectivity::Six)?;
        rep.isolation_removed_mm3 = sel.removed_small_mm3 + sel.removed_other_mm3;
        rep.kept_mm3 = sel.kept_mm3;
        return Ok((mask, rep));
    };

    // 4. Watershed isolation.
    let inside = solid.map(|v| (v == 0) as u8);
    let d2 = edt::squared_distance_to_set(&inside);
    drop(inside);
    let n = solid.data.len();
    let mut label = vec![0u8; n];
    const BUCKETS: usize = 1024;
    let step_mm = 0.1;
    let bucket_of =
        |i: usize| -> usize { ((d2[i].sqrt() as f64 / step_mm) as usize).min(BUCKETS - 1) };
    let mut queue: Vec<VecDeque<u32>> = (0..BUCKETS).map(|_| VecDeque::new()).collect();
    let mut top = 0usize;
    for k in 0..plane.slices() {
        let c = track[k];
        for j in 0..plane.nv() {
            for i in 0..plane.nu() {
                let idx = plane.index(k, i, j);
                if solid.data[idx] == 0 {
                    continue;
                }
                let r = ((i as f64 - c[0]) * su).hypot((j as f64 - c[1]) * sv);
                let l = if r <= p.spine_radius_mm {
                    1
                } else if r >= p.other_radius_mm {
                    2
                } else {
                    continue;
                };
                label[idx] = l;
                let b = bucket_of(idx);
                queue[b].push_back(idx as u32);
                top = top.max(b);
            }
        }
    }
    let [nx, ny, nz] = grid.dims;
    loop {
        while top > 0 && queue[top].is_empty() {
            top -= 1;
        }
        let Some(i) = queue[top].pop_front() else {
            break;
        };
        let i = i as usize;
        let l = label[i];
        let (x, y, z) = (i % nx, (i / nx) % ny, i / (nx * ny));
        let mut visit = |q: usize| {
            if solid.data[q] != 0 && label[q] == 0 {
                label[q] = l;
                let b = bucket_of(q);
                queue[b].push_back(q as u32);
                top = top.max(b);
            }
        };
        if x > 0 {
            visit(i - 1);
        }
        if x + 1 < nx {
            visit(i + 1);
        }
        if y > 0 {
            visit(i - nx);
        }
        if y + 1 < ny {
            visit(i + nx);
        }
        if z > 0 {
            visit(i - nx * ny);
        }
        if z + 1 < nz {
            visit(i + nx * ny);
        }
    }
    let (mut other, mut unreached) = (0usize, 0usize);
    for (s, &l) in solid.data.iter_mut().zip(&label) {
        if *s != 0 {
            match l {
                1 => {}
                2 => {
                    other += 1;
                    *s = 0;
                }
                _ => {
                    unreached += 1;
                    *s = 0;
                }
            }
        }
    }
    rep.isolation_removed_mm3 = other as f64 * vox;
    rep.unconnected_removed_mm3 = unreached as f64 * vox;
    rep.kept_mm3 = solid.count() as f64 * vox;
    if rep.kept_mm3 == 0.0 {
        return Err(Error::Empty(
            "no bone was found around the spinal canal; is the spine in the field of view?".into(),
        ));
    }
    Ok((solid, rep))
}

/// Per slice, the largest canal candidate (slice, area in pixels, centre).
fn largest_per_slice(cands: &[(usize, usize, [f64; 2])]) -> Vec<(usize, [f64; 2])> {
    let mut out: Vec<(usize, usize, [f64; 2])> = Vec::new();
    for &(k, n, c) in cands {
        match out.last_mut() {
            Some(last) if last.0 == k => {
                if n > last.1 {
                    *last = (k, n, c);
                }
            }
            _ => out.push((k, n, c)),
        }
    }
    out.into_iter().map(|(k, _, c)| (k, c)).collect()
}

/// The canal centre (in-plane voxel coordinates) for every slice, from the
/// slices where one was found: outliers dropped, gaps interpolated, ends held.
fn canal_track(found: &[(usize, [f64; 2])], slices: usize, sp: [f64; 2]) -> Option<Vec<[f64; 2]>> {
    if found.len() < 3 || found.len() * 10 < slices {
        return None;
    }
    let kept: Vec<(usize, [f64; 2])> = (0..found.len())
        .filter(|&i| {
            let lo = i.saturating_sub(3);
            let hi = (i + 4).min(found.len());
            let med = |a: usize| {
                let mut v: Vec<f64> = found[lo..hi].iter().map(|f| f.1[a]).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let c = found[i].1;
            ((c[0] - med(0)) * sp[0]).hypot((c[1] - med(1)) * sp[1]) < 15.0
        })
        .map(|i| found[i])
        .collect();
    if kept.len() < 3 {
        return None;
    }
    let mut track = Vec::with_capacity(slices);
    let mut seg = 0;
    for k in 0..slices {
        while seg + 1 < kept.len() && kept[seg + 1].0 <= k {
            seg += 1;
        }
        let (k0, c0) = kept[seg];
        let c = if k <= k0 || seg + 1 == kept.len() {
            c0
        } else {
            let (k1, c1) = kept[seg + 1];
            let t = (k - k0) as f64 / (k1 - k0) as f64;
            [c0[0] + t * (c1[0] - c0[0]), c0[1] + t * (c1[1] - c0[1])]
        };
        track.push(c);
    }
    Some(track)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_are_enclosed_background_only() {
        // 7×5 ring with a 3×1 hole, plus a notch open to the border.
        let nu = 7;
        let mut m = vec![0u8; 7 * 5];
        for j in 1..4 {
            for i in 1..6 {
                m[i + nu * j] = 1;
            }
        }
        for i in 2..5 {
            m[i + nu * 2] = 0;
        }
        let (lab, sizes) = holes_2d(&m, 7, 5);
        assert_eq!(sizes, vec![0, 3]);
        assert_eq!(lab.iter().filter(|&&l| l == 1).count(), 3);
        m[2 + nu] = 0; // opens the hole to the border row above
        m[2] = 0;
        let (_, sizes) = holes_2d(&m, 7, 5);
        assert_eq!(sizes.len(), 1, "hole connected to the border is not a hole");
    }

    #[test]
    fn track_interpolates_and_drops_outliers() {
        let found = vec![
            (0, [10.0, 10.0]),
            (2, [10.0, 12.0]),
            (3, [60.0, 60.0]),
            (4, [10.0, 14.0]),
            (6, [10.0, 16.0]),
        ];
        let t = canal_track(&found, 8, [1.0, 1.0]).unwrap();
        assert_eq!(t.len(), 8);
        assert_eq!(t[3], [10.0, 13.0]);
        assert_eq!(t[1], [10.0, 11.0]);
        assert_eq!(t[7], [10.0, 16.0]);
        assert!(canal_track(&found[..2], 8, [1.0, 1.0]).is_none());
    }
}
