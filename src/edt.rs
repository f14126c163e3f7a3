//! Exact Euclidean distance transform on an anisotropic grid.
//!
//! Separable algorithm of Felzenszwalb & Huttenlocher ("Distance Transforms
//! of Sampled Functions", 2012): first the 1D distance along z to the
//! nearest set voxel (two sweeps over the slices), then the lower envelope of
//! parabolas along x and along y within each slice. Slices are processed in
//! parallel with rayon. Values are stored as f32; the envelope arithmetic is
//! done in f64 so the result is the exact squared distance rounded once.
//!
//! Distances are in millimetres, measured between voxel centres with the
//! grid's spacing (direction cosines do not matter: they rotate, not stretch).

use crate::Mask;
use rayon::prelude::*;

/// Squared distance (mm²) from every voxel centre to the centre of the
/// nearest set (non-zero) voxel of `mask`; 0 on set voxels.
///
/// When the mask has no set voxel every value is `f32::INFINITY`.
pub fn squared_distance_to_set(mask: &Mask) -> Vec<f32> {
    squared_distance_to(mask, |v| v != 0)
}

/// Squared distance (mm²) from every voxel centre to the centre of the
/// nearest voxel outside `mask` (value 0): the depth of each mask voxel, 0
/// outside. The same as [`squared_distance_to_set`] of the complement,
/// without making it.
pub fn squared_depth(mask: &Mask) -> Vec<f32> {
    squared_distance_to(mask, |v| v == 0)
}

/// Columns (consecutive voxels of a slice) per parallel block of the pass
/// along z: the block's whole column stack (4 bytes × slices each) stays in
/// cache across its three sweeps.
const Z_BLOCK: usize = 1024;

fn squared_distance_to(mask: &Mask, is_set: impl Fn(u8) -> bool + Sync) -> Vec<f32> {
    let [nx, ny, nz] = mask.grid.dims;
    let n = nx * ny * nz;
    // Every value is written by the forward sweep below (in parallel, so the
    // fresh pages are faulted in by both threads rather than by one fill).
    let mut out = vec![0f32; n];
    if n == 0 {
        return out;
    }
    let plane = nx * ny;
    let [sx, sy, sz] = mask.grid.spacing;

    // Pass 1, along z: distance in slices to the nearest set voxel of the
    // same (x, y) column; forward sweep (which also marks the set voxels),
    // then backward sweep. In parallel over blocks of columns.
    // Each block: its column range's row of every slice.
    let mut blocks: Vec<Vec<&mut [f32]>> = (0..plane.div_ceil(Z_BLOCK))
        .map(|_| Vec::with_capacity(nz))
        .collect();
    for slice in out.chunks_mut(plane) {
        for (block, row) in blocks.iter_mut().zip(slice.chunks_mut(Z_BLOCK)) {
            block.push(row);
        }
    }
    blocks
        .into_par_iter()
        .enumerate()
        .for_each(|(b, mut rows)| {
            let c0 = b * Z_BLOCK;
            for z in 0..nz {
                let m = &mask.data[z * plane + c0..][..rows[z].len()];
                if z == 0 {
                    for (c, &m) in rows[0].iter_mut().zip(m) {
                        *c = if is_set(m) { 0.0 } else { f32::INFINITY };
                    }
                } else {
                    let (before, after) = rows.split_at_mut(z);
                    let prev = &before[z - 1];
                    for ((c, &m), &p) in after[0].iter_mut().zip(m).zip(prev.iter()) {
                        *c = if is_set(m) { 0.0 } else { p + 1.0 };
                    }
                }
            }
            for z in (0..nz.saturating_sub(1)).rev() {
                let (before, after) = rows.split_at_mut(z + 1);
                for (c, &p) in before[z].iter_mut().zip(after[0].iter()) {
                    *c = c.min(p + 1.0);
                }
            }
        });

    // Passes 2 and 3, along x then y, per slice.
    let sz2 = sz * sz;
    out.par_chunks_mut(plane).for_each_init(
        || Scratch::new(nx.max(ny)),
        |scratch, slice| {
            for v in slice.iter_mut() {
                if v.is_finite() {
                    *v = ((*v as f64) * (*v as f64) * sz2) as f32;
                }
            }
            for row in slice.chunks_mut(nx) {
                scratch.transform_line(row, sx);
            }
            scratch.nonzero.clear();
            scratch.nonzero.resize(nx, false);
            for row in slice.chunks(nx) {
                for (c, &v) in scratch.nonzero.iter_mut().zip(row) {
                    *c |= v != 0.0;
                }
            }
            // (Taken out of the scratch while the scratch transforms it.)
            let mut column = std::mem::take(&mut scratch.column);
            column.resize(ny, 0.0);
            for x in 0..nx {
                if !scratch.nonzero[x] {
                    continue;
                }
                for (y, c) in column.iter_mut().enumerate() {
                    *c = slice[x + nx * y];
                }
                scratch.transform_line(&mut column, sy);
                for (y, &c) in column.iter().enumerate() {
                    slice[x + nx * y] = c;
                }
            }
            scratch.column = column;
        },
    );
    out
}

/// Buffers for the 1D transform of one line.
struct Scratch {
    f: Vec<f64>,
    d: Vec<f64>,
    v: Vec<usize>,
    z: Vec<f64>,
    /// Per column of a slice: any non-zero value.
    nonzero: Vec<bool>,
    /// One column of a slice, gathered for the pass along y.
    column: Vec<f32>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Scratch {
            f: Vec::with_capacity(n),
            d: vec![0.0; n],
            v: vec![0; n],
            z: vec![0.0; n + 1],
            nonzero: Vec::new(),
            column: Vec::new(),
        }
    }

    /// [`Scratch::transform`] of one line in place, run by run: the nearest
    /// zero (set voxel) of a voxel along the line lies within its run of
    /// non-zero values or is one of the zeros that bound it, and anything
    /// beyond those zeros is farther and no smaller. So each run is
    /// transformed alone with its bounding zeros, and zeros stay zeros:
    /// where the set is most of the volume (the distance inside a
    /// structure), most of a line is skipped.
    fn transform_line(&mut self, line: &mut [f32], s: f64) {
        let n = line.len();
        let mut i = 0;
        while i < n {
            if line[i] == 0.0 {
                i += 1;
                continue;
            }
            let start = i;
            while i < n && line[i] != 0.0 {
                i += 1;
            }
            let (zero_before, zero_after) = (start > 0, i < n);
            self.f.clear();
            if zero_before {
                self.f.push(0.0);
            }
            self.f.extend(line[start..i].iter().map(|&v| v as f64));
            if zero_after {
                self.f.push(0.0);
            }
            self.transform(s);
            let d = &self.d[usize::from(zero_before)..];
            for (o, &d) in line[start..i].iter_mut().zip(d) {
                *o = d as f32;
            }
        }
    }

    /// `d[p] = min_q (s·(p − q))² + f[q]` over the finite `f[q]`.
    fn transform(&mut self, s: f64) {
        let n = self.f.len();
        let s2 = s * s;
        let f = &self.f;
        let (v, z, d) = (&mut self.v, &mut self.z, &mut self.d);
        // Lower envelope of the parabolas rooted at finite samples.
        let mut k: isize = -1;
        for q in 0..n {
            let fq = f[q];
            if !fq.is_finite() {
                continue;
            }
            let qf = q as f64;
            loop {
                if k < 0 {
                    k = 0;
                    v[0] = q;
                    z[0] = f64::NEG_INFINITY;
                    z[1] = f64::INFINITY;
                    break;
                }
                let vk = v[k as usize];
                let vf = vk as f64;
                let sct = ((fq + s2 * qf * qf) - (f[vk] + s2 * vf * vf)) / (2.0 * s2 * (qf - vf));
                if sct <= z[k as usize] {
                    k -= 1;
                    continue;
                }
                k += 1;
                v[k as usize] = q;
                z[k as usize] = sct;
                z[k as usize + 1] = f64::INFINITY;
                break;
            }
        }
        if k < 0 {
            d[..n].fill(f64::INFINITY);
            return;
        }
        let mut j = 0usize;
        for (p, dp) in d[..n].iter_mut().enumerate() {
            let pf = p as f64;
            while z[j + 1] < pf {
                j += 1;
            }
            let vj = v[j] as f64;
            let t = s * (pf - vj);
            *dp = t * t + f[v[j]];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Grid, Volume};

    /// xorshift for reproducible pseudo-random masks without extra crates.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed.max(1);
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    fn brute(mask: &Mask) -> Vec<f64> {
        let g = &mask.grid;
        let set: Vec<[usize; 3]> = (0..g.len())
            .filter(|&i| mask.data[i] != 0)
            .map(|i| g.coords(i))
            .collect();
        (0..g.len())
            .map(|i| {
                let c = g.coords(i);
                set.iter()
                    .map(|s| {
                        (0..3)
                            .map(|a| ((c[a] as f64 - s[a] as f64) * g.spacing[a]).powi(2))
                            .sum::<f64>()
                    })
                    .fold(f64::INFINITY, f64::min)
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_on_random_anisotropic_masks() {
        let mut r = rng(12345);
        for case in 0..60 {
            let dims = [
                1 + (r() % 9) as usize,
                1 + (r() % 8) as usize,
                1 + (r() % 7) as usize,
            ];
            let spacing = [
                0.3 + (r() % 100) as f64 / 40.0,
                0.3 + (r() % 100) as f64 / 40.0,
                0.3 + (r() % 100) as f64 / 20.0,
            ];
            let density = 1 + r() % 99; // percent
            let g = Grid::new(dims, spacing, [0.0; 3]);
            let data = (0..g.len())
                .map(|_| u8::from(r() % 100 < density))
                .collect();
            let m = Volume::new(g, data).unwrap();
            let got = squared_distance_to_set(&m);
            let want = brute(&m);
            for (i, (&a, &b)) in got.iter().zip(&want).enumerate() {
                if b.is_infinite() {
                    assert!(a.is_infinite(), "case {case} voxel {i}");
                } else {
                    assert!(
                        ((a as f64) - b).abs() <= 1e-6 * b.max(1.0),
                        "case {case} {dims:?} {spacing:?} voxel {i}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn empty_mask_is_infinite_and_single_voxel_is_exact() {
        let g = Grid::new([5, 4, 3], [0.5, 1.0, 3.0], [0.0; 3]);
        let mut m = Mask::filled(g, 0);
        assert!(squared_distance_to_set(&m).iter().all(|v| v.is_infinite()));
        m.set(4, 0, 2, 1);
        let d = squared_distance_to_set(&m);
        let i = m.grid.index(0, 3, 0);
        let want = (4.0 * 0.5f64).powi(2) + 9.0 + 36.0;
        assert!((d[i] as f64 - want).abs() < 1e-5);
        assert_eq!(d[m.grid.index(4, 0, 2)], 0.0);
    }
    #[test]
    fn depth_is_the_distance_to_the_complement_over_several_column_blocks() {
        // Slices of 1 480 and 2 048 columns: two blocks of the pass along z,
        // the second partial or full.
        let mut r = rng(777);
        for (case, dims) in [[40, 37, 6], [64, 32, 5]].into_iter().enumerate() {
            let g = Grid::new(dims, [0.7, 0.6, 1.9], [0.0; 3]);
            let density = [70, 95][case];
            let data: Vec<u8> = (0..g.len())
                .map(|_| u8::from(r() % 100 < density))
                .collect();
            let m = Volume::new(g.clone(), data).unwrap();
            let complement = m.map(|v| u8::from(v == 0));
            let depth = squared_depth(&m);
            assert_eq!(depth, squared_distance_to_set(&complement));
            let want = brute(&complement);
            for (i, (&a, &b)) in depth.iter().zip(&want).enumerate() {
                assert!(
                    ((a as f64) - b).abs() <= 1e-6 * b.max(1.0),
                    "case {case} voxel {i}: {a} vs {b}"
                );
                assert_eq!(a == 0.0, m.data[i] == 0);
            }
        }
    }
}
