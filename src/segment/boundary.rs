//! The mask's surface placed at mid-level between bone and what surrounds it.
//!
//! A fixed threshold low enough to keep cancellous bone (120 HU) also keeps
//! the partial-volume voxels just outside the cortex (a voxel one tenth
//! cortex already reaches it), so the surface sits about a voxel outside the
//! bone. The edge of an object blurred by the scanner lies where the signal
//! is halfway between inside and outside: a surface voxel whose smoothed HU is
//! below the mean of its inner and outer neighbours along some axis lies
//! outside that edge and is removed. One pass: only the outer shell moves.

use crate::{Mask, Volume};
use rayon::prelude::*;

/// Removes the surface voxels of `mask` that lie outside the mid-level edge
/// of `hu` (see the module docs). Returns the new mask and the number of
/// voxels removed.
pub fn peel_to_mid_level(mask: &Mask, hu: &Volume<f32>) -> (Mask, usize) {
    let [nx, ny, nz] = mask.grid.dims;
    let strides = [1usize, nx, nx * ny];
    let m = &mask.data;
    let s = &hu.data;
    let plane = nx * ny;
    let mut out = mask.clone();
    let removed: usize = out
        .data
        .par_chunks_mut(plane.max(1))
        .enumerate()
        .map(|(z, slice)| {
            let mut n = 0;
            for y in 0..ny {
                for x in 0..nx {
                    let v = x + nx * y + plane * z;
                    if m[v] == 0 {
                        continue;
                    }
                    let c = [x, y, z];
                    let dims = [nx, ny, nz];
                    let outside = (0..3).any(|a| {
                        let st = strides[a];
                        // (outer, inner) neighbour pairs along axis a.
                        let pairs = [
                            (c[a] + 1 < dims[a] && c[a] > 0).then(|| (v + st, v - st)),
                            (c[a] > 0 && c[a] + 1 < dims[a]).then(|| (v - st, v + st)),
                        ];
                        pairs
                            .into_iter()
                            .flatten()
                            .any(|(o, i)| m[o] == 0 && m[i] != 0 && s[v] < 0.5 * (s[o] + s[i]))
                    });
                    if outside {
                        slice[x + nx * y] = 0;
                        n += 1;
                    }
                }
            }
            n
        })
        .sum();
    (out, removed)
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
        let (p, n) = peel_to_mid_level(&mask, &hu);
        let row: Vec<u8> = (0..8).map(|x| p.get(x, 1, 1)).collect();
        assert_eq!(row, vec![0, 0, 0, 1, 1, 1, 1, 0], "removed {n}");
        // The cancellous interior is never a surface voxel: untouched.
        assert_eq!(p.get(4, 1, 1), 1);
    }
}
