//! The mask's surface placed at mid-level between bone and what surrounds it.
//!
//! A fixed threshold low enough to keep cancellous bone (120 HU) also keeps
//! the partial-volume voxels just outside the cortex (a voxel one tenth
//! cortex already reaches it), so the surface sits about a voxel outside the
//! bone. The edge of an object blurred by the scanner lies where the signal
//! is halfway between inside and outside: a surface voxel whose smoothed HU is
//! below the mean of its inner and outer neighbours along some axis lies
//! outside that edge and is removed. Each pass moves only the outer shell;
//! passes repeat over the width of the blurred edge. The module also removes
//! spurs ([`remove_spurs`]), voxel-thin bumps a simplified surface cannot
//! follow.

use crate::{Mask, Volume};
use rayon::prelude::*;

/// Calls `f(x)` for every non-zero byte of `row`, skipping zero stretches
/// 32 bytes at a time (a mask is mostly empty).
#[inline]
fn for_each_set(row: &[u8], mut f: impl FnMut(usize)) {
    let mut x = 0;
    while let Some(i) = crate::volume::first_set(&row[x..]) {
        f(x + i);
        x += i + 1;
    }
}

/// Indices of the set voxels `v` (at `[x, y, z]`) of `mask` for which
/// `pred(data, v, [x, y, z])` holds, in index order; slices in parallel.
fn set_voxels_where(
    mask: &Mask,
    pred: impl Fn(&[u8], usize, [usize; 3]) -> bool + Sync,
) -> Vec<usize> {
    let [nx, ny, nz] = mask.grid.dims;
    let m = &mask.data;
    (0..nz)
        .into_par_iter()
        .flat_map_iter(|z| {
            let mut out = Vec::new();
            for y in 0..ny {
                let row = nx * (y + ny * z);
                for_each_set(&m[row..row + nx], |x| {
                    if pred(m, row + x, [x, y, z]) {
                        out.push(row + x);
                    }
                });
            }
            out
        })
        .collect()
}

/// Removes the surface voxels of `mask` that lie outside the mid-level edge
/// of `hu` (see the module docs), in up to `passes` passes (each sees the
/// mask the previous one left; stops early when a pass removes nothing).
/// Returns the new mask and the number of voxels removed.
///
/// The first pass scans the mask; a later pass only looks at the neighbours
/// of what the pass before removed, the only voxels whose answer can change.
pub fn peel_to_mid_level(mut mask: Mask, hu: &Volume<f32>, passes: usize) -> (Mask, usize) {
    let [nx, ny, nz] = mask.grid.dims;
    let dims = [nx, ny, nz];
    let strides = [1usize, nx, nx * ny];
    let plane = nx * ny;
    let s = &hu.data;
    // Whether voxel v (at x, y, z) of mask m lies outside the mid-level edge
    // along some axis: one neighbour in the mask, the other not, and v below
    // their mean.
    let outside = |m: &[u8], v: usize, c: [usize; 3]| {
        (0..3).any(|a| {
            if c[a] == 0 || c[a] + 1 >= dims[a] {
                return false;
            }
            let st = strides[a];
            let (hi, lo) = (m[v + st] != 0, m[v - st] != 0);
            hi != lo && s[v] < 0.5 * (s[v + st] + s[v - st])
        })
    };
    let mut total = 0;
    let mut removed = set_voxels_where(&mask, |m, v, c| outside(m, v, c));
    for pass in 0..passes {
        if pass > 0 {
            // Candidates: mask voxels 6-adjacent to the last pass's removals.
            let m = &mask.data;
            let mut cand: Vec<usize> = Vec::with_capacity(removed.len() * 2);
            for &v in &removed {
                let c = [v % nx, (v / nx) % ny, v / plane];
                for a in 0..3 {
                    if c[a] > 0 && m[v - strides[a]] != 0 {
                        cand.push(v - strides[a]);
                    }
                    if c[a] + 1 < dims[a] && m[v + strides[a]] != 0 {
                        cand.push(v + strides[a]);
                    }
                }
            }
            cand.sort_unstable();
            cand.dedup();
            removed = cand
                .into_par_iter()
                .filter(|&v| outside(m, v, [v % nx, (v / nx) % ny, v / plane]))
                .collect();
        }
        if removed.is_empty() {
            break;
        }
        for &v in &removed {
            mask.data[v] = 0;
        }
        total += removed.len();
    }
    (mask, total)
}

/// Removes spurs: voxels of `mask` with at most one of their 6 face
/// neighbours in the mask (a one-voxel bump or a voxel-thin spike), until
/// none is left. They are below the scanner's resolution, and a surface
/// cannot follow them once simplified. Returns the number removed.
pub fn remove_spurs(mask: &mut Mask) -> usize {
    let [nx, ny, nz] = mask.grid.dims;
    let dims = [nx, ny, nz];
    let strides = [1usize, nx, nx * ny];
    let plane = nx * ny;
    let neighbours = |m: &[u8], v: usize| -> Vec<usize> {
        let c = [v % nx, (v / nx) % ny, v / plane];
        let mut out = Vec::with_capacity(6);
        for a in 0..3 {
            if c[a] > 0 && m[v - strides[a]] != 0 {
                out.push(v - strides[a]);
            }
            if c[a] + 1 < dims[a] && m[v + strides[a]] != 0 {
                out.push(v + strides[a]);
            }
        }
        out
    };
    let is_spur = |m: &[u8], v: usize| {
        if m[v] == 0 {
            return false;
        }
        let c = [v % nx, (v / nx) % ny, v / plane];
        let mut n = 0;
        for a in 0..3 {
            n += usize::from(c[a] > 0 && m[v - strides[a]] != 0);
            n += usize::from(c[a] + 1 < dims[a] && m[v + strides[a]] != 0);
        }
        n <= 1
    };
    let mut spurs = set_voxels_where(mask, |m, v, _| is_spur(m, v));
    let mut total = 0;
    while !spurs.is_empty() {
        // Removing a spur can leave its one neighbour a spur: look there next.
        let mut next = Vec::new();
        for &v in &spurs {
            if mask.data[v] != 0 {
                mask.data[v] = 0;
                total += 1;
                next.extend(neighbours(&mask.data, v));
            }
        }
        next.sort_unstable();
        next.dedup();
        next.retain(|&v| is_spur(&mask.data, v));
        spurs = next;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    #[test]
    fn partial_volume_shell_is_removed_solid_core_kept() {
        // A 1D edge along x: soft tissue 40 HU, one partial-volume voxel at
        // 136 HU (10 % cortex), then cortex 1000 HU and cancellous 150 HU.
        let grid = Grid::new([8, 3, 3], [1.0; 3], [0.0; 3]);
        let profile = [40.0f32, 40.0, 136.0, 1000.0, 150.0, 150.0, 1000.0, 40.0];
        let hu = Volume::new(
            grid.clone(),
            (0..grid.len()).map(|i| profile[i % 8]).collect(),
        )
        .unwrap();
        // Mask: everything from the partial voxel to the far cortex.
        let mask = Mask::new(
            grid.clone(),
            (0..grid.len())
                .map(|i| (2..7).contains(&(i % 8)) as u8)
                .collect(),
        )
        .unwrap();
        let (p, n) = peel_to_mid_level(mask, &hu, 1);
        let row: Vec<u8> = (0..8).map(|x| p.get(x, 1, 1)).collect();
        assert_eq!(row, vec![0, 0, 0, 1, 1, 1, 1, 0], "removed {n}");
        // The cancellous interior is never a surface voxel: untouched.
        assert_eq!(p.get(4, 1, 1), 1);
    }

    #[test]
    fn spurs_are_removed_down_to_the_body() {
        // A 4×4×4 block with a 3-voxel spike on top and a lone voxel.
        let grid = Grid::new([8, 8, 10], [1.0; 3], [0.0; 3]);
        let mut m = Mask::filled(grid, 0);
        for z in 1..5 {
            for y in 2..6 {
                for x in 2..6 {
                    m.set(x, y, z, 1);
                }
            }
        }
        let block = m.count();
        for z in 5..8 {
            m.set(3, 3, z, 1);
        }
        m.set(7, 7, 9, 1);
        assert_eq!(remove_spurs(&mut m), 4);
        assert_eq!(m.count(), block, "the block itself is untouched");
    }
}
