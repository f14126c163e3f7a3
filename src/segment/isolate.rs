//! The spine alone: a marker-controlled watershed on the distance transform
//! of the bone. Bone near the canal seeds the spine, bone far from it seeds
//! "other" (ribs, ilium, femora); both flood the bone from its thick centres
//! outwards and meet at the narrowest necks, which are the joints
//! (costovertebral, sacroiliac). Where a joint is broad, the second flood of
//! [`super::spine_mask`] also takes bright bone before dark, so the floods
//! meet in the joint's dark cleft.

use super::Plane;
use crate::{edt, Mask};
use rayon::prelude::*;
use std::collections::VecDeque;

/// Labels of the watershed.
pub const SPINE: u8 = 1;
pub const OTHER: u8 = 2;
/// Bone not reached yet, during a flood.
pub(crate) const UNREACHED: u8 = u8::MAX;
/// Value of a bone voxel in the mask given to the watershed that the floods
/// enter last (whatever its depth): bone whose smoothed CT is below the
/// strong-bone level, such as the partial-volume bridge that thick slices
/// leave across a joint. Any other non-zero value is bone flooded by depth.
pub const WEAK: u8 = 2;

/// Where the two floods start.
#[derive(Clone, Copy)]
pub struct Seeds<'a> {
    /// The canal centre per axial slice (in-plane voxel coordinates).
    pub track: &'a [[f64; 2]],
    /// Slices where this is false (far beyond the ends of the canal found)
    /// get no spine seeds.
    pub spine_slices: &'a [bool],
    /// Spine seeds lie within this distance of the canal, mm …
    pub spine_radius_mm: f64,
    /// … other seeds beyond this one, mm.
    pub other_radius_mm: f64,
    /// Flood [`WEAK`] bone last (otherwise it is bone like any other).
    pub weak_last: bool,
    /// Other seeds also wherever the bone lies farther than this left or
    /// right of the canal, mm; infinite for none.
    pub other_lateral_mm: f64,
    /// Whether in-plane axis u runs left-right (else v does).
    pub lr_is_u: bool,
    /// Which in-plane sides of the mask are the field of view's (u at 0,
    /// u at the end, v at 0, v at the end): bone cut by them and farther
    /// than `edge_other_mm` left or right of the canal seeds the other
    /// flood (a small field of view cuts the ilium, so no other bone lies
    /// beyond `other_radius_mm`; no vertebra reaches that far sideways).
    pub fov_edges: [bool; 4],
    pub edge_other_mm: f64,
    /// The CT (HU) at a voxel of the mask's grid: with it the floods take
    /// bright bone before dark bone of the same depth, `hu_per_mm` HU
    /// counting as a millimetre of depth (see [`watershed_labels`]).
    pub hu: Option<&'a (dyn Fn(usize) -> f32 + Sync)>,
    pub hu_per_mm: f64,
    /// Spine seeds farther than `spine_back_mm` behind the canal's centre
    /// lie within `spine_side_mm` of it left or right: behind the canal no
    /// vertebra reaches farther to the side near it than its articular
    /// processes, while beside the sacrum the back of the ilium (the
    /// posterior iliac spines) comes within `spine_radius_mm` of the canal
    /// in a narrow pelvis, and a seed there gave the spine the whole
    /// posterior ilium.
    pub spine_back_mm: f64,
    pub spine_side_mm: f64,
    /// +1 when the in-plane axis that runs front to back (the one that is
    /// not `lr_is_u`'s) points forward, −1 when it points back.
    pub anterior_sign: f64,
}

impl Seeds<'_> {
    /// How far in-plane voxel (i, j) of slice k lies left or right of the
    /// canal, mm, for in-plane voxel sizes (su, sv).
    pub fn lateral_mm(&self, k: usize, i: usize, j: usize, [su, sv]: [f64; 2]) -> f64 {
        let t = self.track[k];
        if self.lr_is_u {
            (i as f64 - t[0]).abs() * su
        } else {
            (j as f64 - t[1]).abs() * sv
        }
    }
}

/// Labels every bone voxel of `solid` [`SPINE`], [`OTHER`] or 0 (reached by
/// neither marker), the floods starting from `seeds`. Deeper bone is flooded
/// first; [`WEAK`] voxels last, so where weak bone bridges two bones the
/// floods meet in it. With `seeds.hu`, brighter bone too: a voxel's priority
/// is its depth plus its CT / `seeds.hu_per_mm` (mm), so that where bright
/// cortical plates face each other across a joint's dark cleft the floods
/// meet in the cleft.
pub fn watershed_labels(solid: &Mask, plane: &Plane, seeds: &Seeds) -> Vec<u8> {
    let Seeds {
        track,
        spine_slices: spine_seeds,
        spine_radius_mm,
        other_radius_mm,
        weak_last,
        other_lateral_mm,
        lr_is_u,
        fov_edges,
        edge_other_mm,
        hu,
        hu_per_mm,
        spine_back_mm,
        spine_side_mm,
        anterior_sign,
    } = *seeds;
    let grid = &solid.grid;
    let (su, sv) = (grid.spacing[plane.u], grid.spacing[plane.v]);
    let d2 = edt::squared_depth(solid);
    // One byte per voxel for both questions the flood asks of a neighbour
    // (bone? labelled yet?): half the cache misses of two arrays.
    let mut label: Vec<u8> = solid
        .data
        .par_iter()
        .map(|&v| if v != 0 { UNREACHED } else { 0 })
        .collect();
    // Priority queue by depth (distance to the bone's surface), 0.1 mm
    // buckets, each taken as one wave (see [`priority_flood`]).
    const BUCKETS: usize = 1024;
    let step_mm = 0.1;
    let priority = |i: usize| -> f32 {
        if weak_last && solid.data[i] == WEAK {
            0.0
        } else {
            let bright = hu.map_or(0.0, |h| (h(i).clamp(-200.0, 3000.0) as f64) / hu_per_mm);
            (d2[i].sqrt() as f64 + bright).max(0.0) as f32
        }
    };
    let bucket_of = |i: usize| ((priority(i) as f64 / step_mm) as usize).min(BUCKETS - 1);
    let mut queue: Vec<VecDeque<u32>> = (0..BUCKETS).map(|_| VecDeque::new()).collect();
    let mut top = 0usize;
    // Seeds of each slice found in parallel (the flood does not depend on
    // the order they are queued in).
    let seeds: Vec<Vec<(u32, u8, u16)>> = track
        .par_iter()
        .enumerate()
        .take(plane.slices())
        .map(|(k, c)| {
            let mut out = Vec::new();
            // Squared radii compared (no square root per voxel).
            let (spine_r2, other_r2) = (spine_radius_mm.powi(2), other_radius_mm.powi(2));
            // Along a row the index steps by a constant (1 for x rows).
            let step = if plane.nu() > 1 {
                plane.index(k, 1, 0) - plane.index(k, 0, 0)
            } else {
                1
            };
            for j in 0..plane.nv() {
                let dv = (j as f64 - c[1]) * sv;
                let dv2 = dv * dv;
                let start = plane.index(k, 0, j);
                let bone = (0..plane.nu()).filter(|&i| solid.data[start + i * step] != 0);
                for i in bone {
                    let idx = start + i * step;
                    let du = (i as f64 - c[0]) * su;
                    let r2 = du * du + dv2;
                    let lateral = (if lr_is_u { du } else { dv }).abs();
                    let posterior = -anterior_sign * if lr_is_u { dv } else { du };
                    let on_edge = (i == 0 && fov_edges[0])
                        || (i + 1 == plane.nu() && fov_edges[1])
                        || (j == 0 && fov_edges[2])
                        || (j + 1 == plane.nv() && fov_edges[3]);
                    let l = if r2 <= spine_r2
                        && spine_seeds[k]
                        && (posterior <= spine_back_mm || lateral <= spine_side_mm)
                    {
                        SPINE
                    } else if r2 >= other_r2
                        || !spine_seeds[k]
                        || lateral > other_lateral_mm
                        || (on_edge && lateral > edge_other_mm)
                    {
                        OTHER
                    } else {
                        continue;
                    };
                    out.push((idx as u32, l, bucket_of(idx) as u16));
                }
            }
            out
        })
        .collect();
    // Buckets sized for their seeds up front (measured: the flood after it
    // 0.044 → 0.032 s on the paper grid, from fewer reallocations).
    let mut sizes = [0usize; BUCKETS];
    for &(_, _, b) in seeds.iter().flatten() {
        sizes[b as usize] += 1;
    }
    for (q, n) in queue.iter_mut().zip(sizes) {
        q.reserve(n);
    }
    for &(idx, l, b) in seeds.iter().flatten() {
        label[idx as usize] = l;
        queue[b as usize].push_back(idx);
        top = top.max(b as usize);
    }
    drop(seeds);
    priority_flood(
        &mut label,
        grid.dims,
        &mut queue,
        top,
        |i, _| bucket_of(i),
        priority,
    );
    // Bone neither flood reached.
    label.par_iter_mut().for_each(|l| {
        if *l == UNREACHED {
            *l = 0;
        }
    });
    label
}

/// Grows the labels in `label` into its [`UNREACHED`] voxels, 6-connected,
/// highest bucket of `queue` first (starting at `top`); a voxel reached takes
/// its neighbours' label and joins bucket `bucket(voxel, label)` (a label
/// may be slowed where it should not spread). `label` is a volume of `dims`
/// (x fastest).
///
/// The voxels of the highest bucket are taken as one wave: each unreached
/// neighbour of the wave is claimed by the labels of its wave neighbours and
/// takes the one most of them carry; on a tie, the one whose claimant has
/// the highest `priority` (the unbucketed value), then the lowest label.
/// Nothing depends on the order in which voxels are stored: a volume
/// flipped or transposed (a prone or feet-first scan, another slice order)
/// floods the same way. A queue taken one voxel at a time instead gave a
/// voxel that two fronts reach in the same step to the one stored first,
/// and at a neck one voxel wide that decides a whole bone beyond it.
pub(crate) fn priority_flood(
    label: &mut [u8],
    dims: [usize; 3],
    queue: &mut [VecDeque<u32>],
    mut top: usize,
    bucket: impl Fn(usize, u8) -> usize,
    priority: impl Fn(usize) -> f32,
) {
    let neighbours = |i: usize| super::face_neighbours(i, dims);
    // Bit sets over the volume: voxels of the current wave, and voxels
    // claimed in it.
    let words = label.len().div_ceil(64);
    let (mut in_wave, mut claimed_now) = (vec![0u64; words], vec![0u64; words]);
    let get = |b: &[u64], i: usize| b[i / 64] >> (i % 64) & 1 != 0;
    let flip = |b: &mut [u64], i: usize| b[i / 64] ^= 1 << (i % 64);
    let (mut wave, mut claimed, mut contested) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        while top > 0 && queue[top].is_empty() {
            top -= 1;
        }
        if queue[top].is_empty() {
            break;
        }
        wave.clear();
        wave.extend(queue[top].drain(..).map(|i| i as usize));
        for &i in &wave {
            flip(&mut in_wave, i);
        }
        for &i in &wave {
            let l = label[i];
            for q in neighbours(i).into_iter().flatten() {
                let lq = label[q];
                if lq == UNREACHED {
                    label[q] = l;
                    flip(&mut claimed_now, q);
                    claimed.push(q);
                } else if lq != l && lq != 0 && get(&claimed_now, q) {
                    contested.push(q);
                }
            }
        }
        // Contested voxels: the label most of their wave neighbours carry.
        contested.sort_unstable();
        contested.dedup();
        for &q in &contested {
            // (label, claimants, their highest priority)
            let mut votes: [(u8, u8, f32); 6] = [(0, 0, 0.0); 6];
            let mut n = 0;
            for r in neighbours(q).into_iter().flatten() {
                if get(&in_wave, r) {
                    let (l, p) = (label[r], priority(r));
                    match votes[..n].iter_mut().find(|v| v.0 == l) {
                        Some(v) => {
                            v.1 += 1;
                            v.2 = v.2.max(p);
                        }
                        None => {
                            votes[n] = (l, 1, p);
                            n += 1;
                        }
                    }
                }
            }
            if let Some(&(l, _, _)) = votes[..n]
                .iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(a.2.total_cmp(&b.2)).then(b.0.cmp(&a.0)))
            {
                label[q] = l;
            }
        }
        contested.clear();
        for &i in &wave {
            flip(&mut in_wave, i);
        }
        for &q in &claimed {
            flip(&mut claimed_now, q);
            let b = bucket(q, label[q]);
            queue[b].push_back(q as u32);
            top = top.max(b);
        }
        claimed.clear();
    }
}

/// [`watershed_labels`] on a grid coarsened 2 × 2 in-plane, and how each
/// fine voxel finds its coarse label.
pub struct Coarse {
    label: Vec<u8>,
    /// The coarse grid and how fine voxels pair into it.
    h: super::Halving,
    /// Per fine index along each axis, the coarse one (`h.coarse`, looked up).
    to_coarse: [Vec<usize>; 3],
}

impl Coarse {
    /// `None` when the in-plane voxels are at least `coarse_below_mm`.
    fn of(solid: &Mask, plane: &Plane, seeds: &Seeds, coarse_below_mm: f64) -> Option<Self> {
        let g = &solid.grid;
        let (u, v) = (plane.u, plane.v);
        if g.spacing[u].max(g.spacing[v]) >= coarse_below_mm {
            return None;
        }
        // Pairs fixed in the patient's space: the same coarse voxels
        // whichever way round the grid is stored.
        let h = super::Halving::new(g, plane);
        let dims = h.grid.dims;
        let to_coarse: [Vec<usize>; 3] =
            std::array::from_fn(|a| (0..g.dims[a]).map(|i| h.coarse(a, i)).collect());
        let [nx, ny, _] = g.dims;
        let cplane_len = dims[0] * dims[1];
        let mut coarse = Mask::filled(h.grid.clone(), 0);
        // Each coarse slice gathers its one or two fine slices (in parallel).
        // A coarse voxel is bone when any of its fine ones is, and weak when
        // most of its bone is.
        coarse
            .data
            .par_chunks_mut(cplane_len.max(1))
            .enumerate()
            .for_each_init(
                || vec![0i8; if seeds.weak_last { cplane_len } else { 0 }],
                |balance, (cz, cslice)| {
                    balance.fill(0);
                    // Slices along z are halved unless z is the slice axis.
                    for z in h.fine(2, cz) {
                        for y in 0..ny {
                            let at = dims[0] * to_coarse[1][y];
                            let crow = &mut cslice[at..][..dims[0]];
                            let mut brow = balance.get_mut(at..at + dims[0]);
                            let frow = &solid.data[(z * ny + y) * nx..][..nx];
                            for (x, &b) in frow.iter().enumerate() {
                                if b != 0 {
                                    let c = to_coarse[0][x];
                                    crow[c] = 1;
                                    if let Some(brow) = brow.as_deref_mut() {
                                        brow[c] += if b == WEAK { 1 } else { -1 };
                                    }
                                }
                            }
                        }
                    }
                    for (c, &w) in cslice.iter_mut().zip(balance.iter()) {
                        if w > 0 {
                            *c = WEAK;
                        }
                    }
                },
            );
        let ctrack: Vec<[f64; 2]> = seeds.track.iter().map(|&t| h.position(plane, t)).collect();
        let cplane = Plane::new(dims, plane.a);
        // A coarse voxel's CT: the mean of its fine voxels'.
        let hr = &h;
        let coarse_hu = seeds.hu.map(|fine_hu| {
            move |ci: usize| -> f32 {
                let c = [
                    ci % dims[0],
                    (ci / dims[0]) % dims[1],
                    ci / (dims[0] * dims[1]),
                ];
                let (mut sum, mut n) = (0f32, 0f32);
                for z in hr.fine(2, c[2]) {
                    for y in hr.fine(1, c[1]) {
                        for x in hr.fine(0, c[0]) {
                            sum += fine_hu(x + nx * (y + ny * z));
                            n += 1.0;
                        }
                    }
                }
                sum / n
            }
        });
        let label = watershed_labels(
            &coarse,
            &cplane,
            &Seeds {
                track: &ctrack,
                hu: coarse_hu
                    .as_ref()
                    .map(|f| f as &(dyn Fn(usize) -> f32 + Sync)),
                ..*seeds
            },
        );
        Some(Coarse {
            label,
            h,
            to_coarse,
        })
    }

    /// The coarse labels of fine row (y, z), indexed by `to_coarse[0][x]`.
    fn row(&self, y: usize, z: usize) -> &[u8] {
        let [cx, cy, _] = self.h.grid.dims;
        let cz = self.to_coarse[2][z];
        &self.label[cx * (self.to_coarse[1][y] + cy * cz)..][..cx]
    }
}

/// As [`watershed_labels`], computed on a grid coarsened 2 × 2 in-plane
/// (a coarse voxel is bone when any of its 4 is) when the in-plane voxels are
/// smaller than `coarse_below_mm`; every bone voxel then takes its coarse
/// voxel's label. The split falls at the joints, centimetre-scale
/// structures: 1 mm in-plane is enough to find them, at a quarter of the cost.
pub fn watershed_labels_fast(
    solid: &Mask,
    plane: &Plane,
    seeds: &Seeds,
    coarse_below_mm: f64,
) -> Vec<u8> {
    let Some(coarse) = Coarse::of(solid, plane, seeds, coarse_below_mm) else {
        return watershed_labels(solid, plane, seeds);
    };
    let [nx, ny, _] = solid.grid.dims;
    let mut out = vec![0u8; solid.data.len()];
    out.par_chunks_mut((nx * ny).max(1))
        .enumerate()
        .for_each(|(z, slice)| {
            for y in 0..ny {
                let crow = coarse.row(y, z);
                let frow = &solid.data[(z * ny + y) * nx..][..nx];
                for ((o, &b), &cx) in slice[y * nx..(y + 1) * nx]
                    .iter_mut()
                    .zip(frow)
                    .zip(&coarse.to_coarse[0])
                {
                    if b != 0 {
                        *o = crow[cx];
                    }
                }
            }
        });
    out
}

/// The watershed's labels, on the fine grid or a coarse one.
pub enum Labels {
    Coarse(Box<Coarse>),
    Fine(Vec<u8>),
}

impl Labels {
    /// [`watershed_labels_fast`]'s labels, kept coarse when computed so.
    pub fn compute(solid: &Mask, plane: &Plane, seeds: &Seeds, coarse_below_mm: f64) -> Self {
        match Coarse::of(solid, plane, seeds, coarse_below_mm) {
            Some(c) => Labels::Coarse(Box::new(c)),
            None => Labels::Fine(watershed_labels(solid, plane, seeds)),
        }
    }

    /// Volume labelled spine farther than `reach_mm` left or right of the
    /// canal (along `seeds.lr_is_u`'s axis), mm³: vertebrae do not reach
    /// that far, a bone kept beyond a joint does.
    pub fn spine_beyond_mm3(
        &self,
        grid: &crate::volume::Grid,
        plane: &Plane,
        seeds: &Seeds,
        reach_mm: f64,
    ) -> f64 {
        let (label, dims, halve, h) = match self {
            Labels::Coarse(c) => (&c.label, c.h.grid.dims, 2.0, Some(&c.h)),
            Labels::Fine(f) => (f, grid.dims, 1.0, None),
        };
        let cplane = Plane::new(dims, plane.a);
        let (su, sv) = (grid.spacing[plane.u] * halve, grid.spacing[plane.v] * halve);
        let n: usize = (0..cplane.slices())
            .into_par_iter()
            .map(|k| {
                // The track in (coarse) voxels.
                let t = seeds.track[k];
                let [cu, cv] = h.map_or(t, |h| h.position(plane, t));
                // Only the voxels beyond the reach, on either side, are read.
                let beyond = |c: f64, lim: f64, n: usize| {
                    let left = (c - lim).ceil().clamp(0.0, n as f64) as usize;
                    let right = ((c + lim).floor() + 1.0).clamp(0.0, n as f64) as usize;
                    (0..left).chain(right.max(left)..n)
                };
                let spine = |i, j| usize::from(label[cplane.index(k, i, j)] == SPINE);
                let (nu, nv) = (cplane.nu(), cplane.nv());
                if seeds.lr_is_u {
                    (0..nv)
                        .map(|j| {
                            beyond(cu, reach_mm / su, nu)
                                .map(|i| spine(i, j))
                                .sum::<usize>()
                        })
                        .sum::<usize>()
                } else {
                    beyond(cv, reach_mm / sv, nv)
                        .map(|j| (0..nu).map(|i| spine(i, j)).sum::<usize>())
                        .sum::<usize>()
                }
            })
            .sum();
        n as f64 * grid.voxel_volume_mm3() * halve * halve
    }

    /// Spine voxels with a face neighbour labelled [`OTHER`]: where the
    /// floods met (a rib's neck, a sacroiliac joint), as voxel indices of
    /// the fine grid `dims` (a coarse voxel gives its first fine one).
    pub fn spine_contacts(&self, dims: [usize; 3]) -> Vec<[usize; 3]> {
        let (label, cdims, h) = match self {
            Labels::Coarse(c) => (&c.label, c.h.grid.dims, Some(&c.h)),
            Labels::Fine(f) => (f, dims, None),
        };
        let [nx, ny, nz] = cdims;
        let fine = |a: usize, c: usize| h.map_or(c, |h| h.fine(a, c).start);
        (0..nz)
            .into_par_iter()
            .flat_map_iter(|z| {
                let mut out = Vec::new();
                for y in 0..ny {
                    for x in 0..nx {
                        let i = x + nx * (y + ny * z);
                        if label[i] != SPINE {
                            continue;
                        }
                        if super::any_face_neighbour(i, [x, y, z], cdims, |q| label[q] == OTHER) {
                            out.push([fine(0, x), fine(1, y), fine(2, z)]);
                        }
                    }
                }
                out
            })
            .collect()
    }

    /// Keeps in `solid` only the bone labelled [`SPINE`] (set to 1, no
    /// [`WEAK`] mark left), mapping coarse labels on the way (no fine label
    /// array is made). Returns the voxels removed as [`OTHER`] and those
    /// neither flood reached.
    pub fn keep_spine(&self, solid: &mut Mask) -> (usize, usize) {
        /// Clears the row's bone not labelled spine and sets the rest to 1;
        /// (other, unreached) cleared.
        fn clear_row(row: &mut [u8], label: impl Fn(usize) -> u8) -> (usize, usize) {
            let (mut other, mut unreached) = (0usize, 0usize);
            for (x, s) in row.iter_mut().enumerate() {
                if *s != 0 {
                    let l = label(x);
                    if l != SPINE {
                        other += usize::from(l == OTHER);
                        unreached += usize::from(l != OTHER);
                        *s = 0;
                    } else {
                        *s = 1;
                    }
                }
            }
            (other, unreached)
        }
        let [nx, ny, _] = solid.grid.dims;
        solid
            .data
            .par_chunks_mut((nx * ny).max(1))
            .enumerate()
            .map(|(z, slice)| {
                let mut sum = (0, 0);
                for (y, row) in slice.chunks_exact_mut(nx).enumerate() {
                    let (o, u) = match self {
                        Labels::Coarse(c) => {
                            let crow = c.row(y, z);
                            clear_row(row, |x| crow[c.to_coarse[0][x]])
                        }
                        Labels::Fine(f) => {
                            let at = (z * ny + y) * nx;
                            clear_row(row, |x| f[at + x])
                        }
                    };
                    sum = (sum.0 + o, sum.1 + u);
                }
                sum
            })
            .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    /// Seeds by the two radii alone along `track` (`u` left to right, `v`
    /// forward): no weak bone, no lateral, field-of-view or behind-the-canal
    /// rule, no CT.
    fn radii<'a>(
        track: &'a [[f64; 2]],
        slices: &'a [bool],
        spine_mm: f64,
        other_mm: f64,
    ) -> Seeds<'a> {
        Seeds {
            track,
            spine_slices: slices,
            spine_radius_mm: spine_mm,
            other_radius_mm: other_mm,
            weak_last: false,
            other_lateral_mm: f64::INFINITY,
            lr_is_u: true,
            fov_edges: [false; 4],
            edge_other_mm: f64::INFINITY,
            hu: None,
            hu_per_mm: 175.0,
            spine_back_mm: f64::INFINITY,
            spine_side_mm: f64::INFINITY,
            anterior_sign: 1.0,
        }
    }

    /// A row of 11 voxels of equal priority seeded at both ends, stored
    /// either way round: the middle voxel, reached by both fronts in the
    /// same wave, goes to the same label (the lower: nothing else tells them
    /// apart), whichever end is stored first.
    #[test]
    fn a_tie_does_not_depend_on_the_storage_order() {
        let dims = [11, 1, 1];
        for (first, last) in [(1u8, 2u8), (2, 1)] {
            let mut label = vec![UNREACHED; 11];
            let mut queue: Vec<VecDeque<u32>> = (0..4).map(|_| VecDeque::new()).collect();
            label[0] = first;
            label[10] = last;
            queue[2].extend([0, 10]);
            priority_flood(&mut label, dims, &mut queue, 2, |_, _| 2, |_| 1.0);
            assert_eq!(label[5], 1, "{first} at x = 0: {label:?}");
            assert_eq!(&label[..5], &[first; 5]);
            assert_eq!(&label[6..], &[last; 5]);
        }
    }

    /// A row of 21 voxels of equal priority seeded at both ends (x = 0 label
    /// 1, x = 20 label 2): the fronts meet in the middle. With label 2's
    /// claims below x = 15 bucketed one lower (as the vertebra split slows a
    /// label climbing above its disc plane), label 2 takes x = 14 and stops
    /// there while label 1 comes on up to x = 13.
    #[test]
    fn a_label_bucketed_lower_spreads_later() {
        let dims = [21, 1, 1];
        let run = |slow_from: usize| {
            let mut label = vec![UNREACHED; 21];
            let mut queue: Vec<VecDeque<u32>> = (0..4).map(|_| VecDeque::new()).collect();
            label[0] = 1;
            label[20] = 2;
            queue[2].extend([0, 20]);
            let bucket = |i: usize, l: u8| if l == 2 && i < slow_from { 1 } else { 2 };
            priority_flood(&mut label, dims, &mut queue, 2, bucket, |_| 1.0);
            label.iter().filter(|&&l| l == 1).count()
        };
        assert_eq!(run(0), 11);
        assert_eq!(run(15), 14);
    }

    /// A voxel claimed in one wave by two voxels of one label and one of
    /// another takes the majority's label; one claimant each, the label of
    /// the claimant with the higher priority.
    #[test]
    fn contested_voxels_go_to_the_majority_then_the_higher_priority() {
        // 3 × 3 in-plane, one slice: the centre (4) is claimed by its four
        // face neighbours, seeded 1, 1, 2 and (unless left out) 2.
        let dims = [3, 3, 1];
        let run = |seeds: &[(usize, u8)], prio: [f32; 9]| {
            let mut label = vec![UNREACHED; 9];
            let mut queue: Vec<VecDeque<u32>> = (0..2).map(|_| VecDeque::new()).collect();
            for &(i, l) in seeds {
                label[i] = l;
                queue[1].push_back(i as u32);
            }
            priority_flood(&mut label, dims, &mut queue, 1, |_, _| 1, |i| prio[i]);
            label[4]
        };
        let flat = [1.0; 9];
        assert_eq!(run(&[(1, 2), (3, 1), (5, 1)], flat), 1);
        assert_eq!(run(&[(1, 1), (3, 2), (5, 2)], flat), 2);
        let mut p = flat;
        p[5] = 3.0;
        assert_eq!(run(&[(3, 1), (5, 2)], p), 2);
        p[5] = 1.0;
        p[3] = 3.0;
        assert_eq!(run(&[(3, 2), (5, 1)], p), 2);
    }

    #[test]
    fn no_spine_seed_far_to_the_side_behind_the_canal() {
        // Three lone blocks within the 30 mm seed radius of the canal at
        // (40, 25), 1 mm voxels, +y forward: beside it (24–27 mm to the
        // side, 6–9 mm in front), behind it near the midline (18–20 mm to
        // the side, 12–15 mm back) and behind it far to the side (24–27 mm,
        // 12–15 mm back: where a narrow pelvis puts the posterior iliac
        // spines next to the sacral canal).
        let grid = Grid::new([80, 50, 3], [1.0, 1.0, 1.0], [0.0; 3]);
        let mut m = Mask::filled(grid.clone(), 0);
        let blocks = [(64..68, 31..35), (58..61, 10..14), (64..68, 10..14)];
        for z in 0..3 {
            for (xs, ys) in &blocks {
                for y in ys.clone() {
                    for x in xs.clone() {
                        m.set(x, y, z, 1);
                    }
                }
            }
        }
        let plane = Plane::new(grid.dims, 2);
        let track = vec![[40.0, 25.0]; 3];
        let seeds = |back: f64, side: f64| Seeds {
            spine_back_mm: back,
            spine_side_mm: side,
            ..radii(&track, &[true; 3], 30.0, 65.0)
        };
        let at = |lab: &[u8], x: usize, y: usize| lab[grid.index(x, y, 1)];
        let every = watershed_labels(&m, &plane, &seeds(f64::INFINITY, f64::INFINITY));
        assert_eq!(at(&every, 65, 33), SPINE);
        assert_eq!(at(&every, 59, 12), SPINE);
        assert_eq!(at(&every, 65, 12), SPINE);
        let lab = watershed_labels(&m, &plane, &seeds(5.0, 22.0));
        assert_eq!(at(&lab, 65, 33), SPINE);
        assert_eq!(at(&lab, 59, 12), SPINE);
        assert_eq!(at(&lab, 65, 12), 0, "no seed, nothing reaches it");
        // The front is the other way round when the axis points back.
        let flipped = Seeds {
            anterior_sign: -1.0,
            ..seeds(5.0, 22.0)
        };
        let lab = watershed_labels(&m, &plane, &flipped);
        assert_eq!(at(&lab, 65, 33), 0);
        assert_eq!(at(&lab, 65, 12), SPINE);
    }

    #[test]
    fn split_falls_at_the_narrow_neck() {
        // Two thick blocks (the "vertebra" near the canal at x < 20, a "rib"
        // at x >= 24) joined by a 1-voxel neck: the split is at the neck.
        let grid = Grid::new([44, 21, 5], [1.0, 1.0, 1.0], [0.0; 3]);
        let mut m = Mask::filled(grid.clone(), 0);
        for z in 0..5 {
            for y in 0..21 {
                for x in 0..44 {
                    let block = !(20..24).contains(&x) && (3..18).contains(&y);
                    let neck = (20..24).contains(&x) && y == 10 && z == 2;
                    if block || neck {
                        m.set(x, y, z, 1);
                    }
                }
            }
        }
        let plane = Plane::new(grid.dims, 2);
        let track = vec![[2.0, 10.0]; 5];
        let seeds = |track| radii(track, &[true; 5], 8.0, 30.0);
        let lab = watershed_labels(&m, &plane, &seeds(&track));
        let at = |x: usize| lab[grid.index(x, 10, 2)];
        assert_eq!(at(5), SPINE);
        assert_eq!(at(19), SPINE);
        assert_eq!(at(30), OTHER);
        assert_eq!(at(43), OTHER);
        // Every bone voxel is reached (all connected).
        assert!(m.data.iter().zip(&lab).all(|(&b, &l)| (b == 0) == (l == 0)));
        // The coarse path splits at the same neck (to within a voxel pair).
        let fast = watershed_labels_fast(&m, &plane, &seeds(&track), 1.5);
        let at = |x: usize| fast[grid.index(x, 10, 2)];
        assert_eq!(at(5), SPINE);
        assert_eq!(at(18), SPINE);
        assert_eq!(at(26), OTHER);
        assert_eq!(at(43), OTHER);
        assert!(m
            .data
            .iter()
            .zip(&fast)
            .all(|(&b, &l)| (b == 0) == (l == 0)));

        // The same blocks stacked along x (slices perpendicular to axis 0):
        // the coarse path halves y and z instead, and gives the same split.
        let tgrid = Grid::new([5, 21, 44], [1.0, 1.0, 1.0], [0.0; 3]);
        let mut t = Mask::filled(tgrid.clone(), 0);
        for z in 0..5 {
            for y in 0..21 {
                for x in 0..44 {
                    t.set(z, y, x, m.get(x, y, z));
                }
            }
        }
        let tplane = Plane::new(tgrid.dims, 0);
        let ttrack = vec![[10.0, 2.0]; 5];
        let tfast = watershed_labels_fast(&t, &tplane, &seeds(&ttrack), 1.5);
        for z in 0..5 {
            for y in 0..21 {
                for x in 0..44 {
                    let f = tfast[tgrid.index(z, y, x)];
                    assert_eq!(f != 0, m.get(x, y, z) != 0);
                }
            }
        }
        let at = |x: usize| tfast[tgrid.index(2, 10, x)];
        assert_eq!(at(5), SPINE);
        assert_eq!(at(18), SPINE);
        assert_eq!(at(26), OTHER);
        assert_eq!(at(43), OTHER);

        // keep_spine clears exactly what the labels say is not spine, on
        // the fine and the coarse path, and counts it. An island no seed
        // reaches (beyond the spine radius, inside the other one) counts
        // as unreached.
        m.set(12, 20, 2, 1);
        for (coarse_below, label) in [
            (0.5, watershed_labels(&m, &plane, &seeds(&track))),
            (1.5, watershed_labels_fast(&m, &plane, &seeds(&track), 1.5)),
        ] {
            let mut kept = m.clone();
            let (other, unreached) =
                Labels::compute(&kept, &plane, &seeds(&track), coarse_below).keep_spine(&mut kept);
            let want: Vec<u8> = m
                .data
                .iter()
                .zip(&label)
                .map(|(&b, &l)| u8::from(b != 0 && l == SPINE))
                .collect();
            assert_eq!(kept.data, want);
            let count = |f: &dyn Fn(u8) -> bool| label.iter().filter(|&&l| f(l)).count();
            assert_eq!(other, count(&|l| l == OTHER));
            let bone = m.data.iter().filter(|&&b| b != 0).count();
            assert_eq!(unreached, bone - count(&|l| l == SPINE || l == OTHER));
            assert!(
                unreached > 0 && other > 0,
                "{coarse_below}: {other} {unreached}"
            );
        }
    }

    #[test]
    fn weak_bone_last_and_other_seeds_beyond_the_spine() {
        // A "vertebra" (x < 12, near the canal), a thick bridge of weak bone
        // (x 12..16: a joint that partial volume has filled), a "rib" block
        // (x 16..28) and, through a one-voxel neck, the rest of the rib
        // (x ≥ 32, where the other seeds are). By depth the floods meet at
        // the neck, the thinnest place, and the spine keeps the rib block;
        // with the weak bone flooded last they meet in the bridge.
        let grid = Grid::new([44, 21, 9], [1.0, 1.0, 1.0], [0.0; 3]);
        let mut m = Mask::filled(grid.clone(), 0);
        for z in 0..9 {
            for y in 0..21 {
                for x in 0..44 {
                    let block =
                        !(28..32).contains(&x) && (3..18).contains(&y) && (1..8).contains(&z);
                    let neck = (28..32).contains(&x) && y == 10 && z == 4;
                    if block || neck {
                        m.set(x, y, z, if (12..16).contains(&x) { WEAK } else { 1 });
                    }
                }
            }
        }
        let plane = Plane::new(grid.dims, 2);
        let track = vec![[2.0, 10.0]; 9];
        let seeds = |weak_last| Seeds {
            weak_last,
            ..radii(&track, &[true; 9], 8.0, 30.0)
        };
        let at = |lab: &[u8], x: usize| lab[grid.index(x, 10, 4)];
        let by_depth = watershed_labels(&m, &plane, &seeds(false));
        assert_eq!(at(&by_depth, 20), SPINE);
        assert_eq!(at(&by_depth, 23), SPINE);
        assert_eq!(at(&by_depth, 27), SPINE);
        assert_eq!(at(&by_depth, 40), OTHER);
        let weak_last = watershed_labels(&m, &plane, &seeds(true));
        assert_eq!(at(&weak_last, 5), SPINE);
        assert_eq!(at(&weak_last, 17), OTHER);
        assert_eq!(at(&weak_last, 27), OTHER);
        // The bridge is shared between the two.
        assert_eq!(at(&weak_last, 12), SPINE);
        assert_eq!(at(&weak_last, 15), OTHER);
        // The spine kept beyond 13.5 mm left or right of the canal (x ≥ 16),
        // mm³: by depth the rib block and part of the neck, with the weak
        // bone last nothing.
        let beyond =
            |l: Vec<u8>| Labels::Fine(l).spine_beyond_mm3(&grid, &plane, &seeds(false), 13.5);
        let block = 15.0 * 7.0;
        let kept = beyond(by_depth);
        assert!(kept >= 12.0 * block && kept < 12.0 * block + 4.0, "{kept}");
        assert_eq!(beyond(weak_last), 0.0);
        // Bone beyond a lateral limit seeds the other flood (by depth alone
        // the spine kept x = 23, above).
        let lateral = Seeds {
            other_lateral_mm: 20.0,
            ..seeds(false)
        };
        let by_lateral = watershed_labels(&m, &plane, &lateral);
        assert_eq!(at(&by_lateral, 5), SPINE);
        assert_eq!(at(&by_lateral, 23), OTHER);
        // A field of view that cuts the rib before the other radius: no other
        // seed, all spine; bone cut by its side (x = 43) seeds the other
        // flood when farther than `edge_other_mm` from the canal.
        let no_far = Seeds {
            other_radius_mm: 100.0,
            ..seeds(false)
        };
        assert_eq!(at(&watershed_labels(&m, &plane, &no_far), 40), SPINE);
        let cut = Seeds {
            fov_edges: [false, true, false, false],
            edge_other_mm: 20.0,
            ..no_far
        };
        let by_edge = watershed_labels(&m, &plane, &cut);
        assert_eq!(at(&by_edge, 40), OTHER);
        assert_eq!(at(&by_edge, 5), SPINE);
        let near = Seeds {
            edge_other_mm: 45.0,
            ..cut
        };
        assert_eq!(at(&watershed_labels(&m, &plane, &near), 40), SPINE);
        // On the coarse grid (a coarse voxel is weak when most of its bone
        // is) the split falls in the bridge too.
        let fast = watershed_labels_fast(&m, &plane, &seeds(true), 1.5);
        assert_eq!(at(&fast, 5), SPINE);
        assert_eq!(at(&fast, 20), OTHER);
        assert_eq!(at(&fast, 27), OTHER);
    }

    #[test]
    fn with_the_ct_the_floods_meet_in_the_dark_cleft_of_a_joint() {
        // A "vertebra" (x < 12) and an "ilium" (x 14..44, the other seeds
        // beyond x = 32) joined across their whole section by a joint whose
        // cleft (x 12..14) the closing filled: bone in the mask, soft tissue
        // (60 HU) in the CT, between bright cortical plates (1000 HU at
        // x 10..12 and 14..16); cancellous bone (200 HU) elsewhere. By depth
        // alone nothing marks the joint and the floods meet halfway between
        // the seeds, inside the ilium; with the CT they meet in the cleft.
        let grid = Grid::new([44, 21, 9], [1.0, 1.0, 1.0], [0.0; 3]);
        let mut m = Mask::filled(grid.clone(), 0);
        let mut ct = vec![40f32; grid.len()];
        for z in 1..8 {
            for y in 3..18 {
                for x in 0..44 {
                    m.set(x, y, z, 1);
                    ct[grid.index(x, y, z)] = match x {
                        12..=13 => 60.0,
                        10..=11 | 14..=15 => 1000.0,
                        _ => 200.0,
                    };
                }
            }
        }
        let plane = Plane::new(grid.dims, 2);
        let track = vec![[2.0, 10.0]; 9];
        let hu = |i: usize| ct[i];
        let seeds = |with_ct: bool| Seeds {
            weak_last: true,
            hu: with_ct.then_some(&hu as &(dyn Fn(usize) -> f32 + Sync)),
            ..radii(&track, &[true; 9], 8.0, 30.0)
        };
        let at = |lab: &[u8], x: usize| lab[grid.index(x, 10, 4)];
        let by_depth = watershed_labels(&m, &plane, &seeds(false));
        assert_eq!(at(&by_depth, 16), SPINE);
        assert_eq!(at(&by_depth, 40), OTHER);
        let with_ct = watershed_labels(&m, &plane, &seeds(true));
        assert_eq!(at(&with_ct, 5), SPINE);
        assert_eq!(at(&with_ct, 11), SPINE, "the vertebra's own plate");
        assert_eq!(at(&with_ct, 14), OTHER, "the ilium's plate");
        assert_eq!(at(&with_ct, 20), OTHER);
        assert_eq!(at(&with_ct, 40), OTHER);
        // Everywhere in the section, not only on the centre line.
        for y in 3..18 {
            assert_eq!(with_ct[grid.index(11, y, 4)], SPINE, "y {y}");
            assert_eq!(with_ct[grid.index(14, y, 4)], OTHER, "y {y}");
        }
        // On the coarse grid (each coarse voxel the mean of its fine ones'
        // CT) the same.
        let fast = watershed_labels_fast(&m, &plane, &seeds(true), 1.5);
        assert_eq!(at(&fast, 5), SPINE);
        assert_eq!(at(&fast, 20), OTHER);
    }
}
