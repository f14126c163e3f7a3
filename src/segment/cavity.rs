//! Cavities: background that the mask encloses in 3D.
//!
//! A vertebral body whose cancellous bone is darker than the fill's limit
//! (fatty marrow, osteoporosis, noise) can keep a pocket that no axial slice
//! sees as enclosed (the cortex is open in-plane) but that the bone above and
//! below closes off. Such a pocket is filled, unless it reaches the spinal
//! canal's centre line (the canal shut off by bridged discs is not bone) or
//! exceeds a volume no vertebral pocket reaches.

use super::Plane;
use crate::components::{self, Connectivity};
use crate::Mask;

/// Fills the 6-connected background components of `mask` that touch no face
/// of the volume, hold no voxel within `canal_radius_mm` of the canal centre
/// `track` (per slice of `plane`, in-plane voxel coordinates) and are at
/// most `max_mm3`. Returns the number of voxels added.
pub fn fill_cavities(
    mask: &mut Mask,
    plane: &Plane,
    track: &[[f64; 2]],
    canal_radius_mm: f64,
    max_mm3: f64,
) -> usize {
    let grid = mask.grid.clone();
    let bg = mask.map(|v| u8::from(v == 0));
    let lab = components::label(&bg, Connectivity::Six);
    drop(bg);
    let mut excluded = lab.touches_border();
    let (su, sv) = (grid.spacing[plane.u], grid.spacing[plane.v]);
    let (ru, rv) = (
        (canal_radius_mm / su).ceil() as i64,
        (canal_radius_mm / sv).ceil() as i64,
    );
    let [nx, ny, _] = grid.dims;
    for (k, c) in track.iter().enumerate().take(plane.slices()) {
        for dj in -rv..=rv {
            for di in -ru..=ru {
                let (i, j) = (c[0].round() as i64 + di, c[1].round() as i64 + dj);
                let off_mm = ((i as f64 - c[0]) * su).hypot((j as f64 - c[1]) * sv);
                if i < 0
                    || j < 0
                    || i >= plane.nu() as i64
                    || j >= plane.nv() as i64
                    || off_mm > canal_radius_mm
                {
                    continue;
                }
                let v = plane.index(k, i as usize, j as usize);
                if let Some(id) = lab.component_at(v % nx, (v / nx) % ny, v / (nx * ny)) {
                    excluded[id] = true;
                }
            }
        }
    }
    let max_vox = (max_mm3 / grid.voxel_volume_mm3()).floor() as u64;
    lab.set_in(mask, |c| !excluded[c] && lab.sizes[c] <= max_vox)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    /// A hollow box (wall 1 voxel) around [lo, hi) in a 20³ volume.
    fn shell(lo: usize, hi: usize) -> Mask {
        let grid = Grid::new([20, 20, 20], [1.0, 1.0, 2.0], [0.0; 3]);
        let mut m = Mask::filled(grid, 0);
        for z in lo - 1..=hi {
            for y in lo - 1..=hi {
                for x in lo - 1..=hi {
                    let inside =
                        (lo..hi).contains(&x) && (lo..hi).contains(&y) && (lo..hi).contains(&z);
                    if !inside {
                        m.set(x, y, z, 1);
                    }
                }
            }
        }
        m
    }

    #[test]
    fn enclosed_pocket_is_filled_open_canal_and_large_pockets_are_not() {
        let plane = Plane::new([20, 20, 20], 2);
        let far = vec![[0.0, 0.0]; 20];
        // A closed pocket of 4³ voxels (2 mm³ each): filled.
        let mut m = shell(5, 9);
        assert_eq!(fill_cavities(&mut m, &plane, &far, 1.5, 1000.0), 64);
        assert_eq!(m.get(7, 7, 7), 1);
        // Too large for the limit: left.
        let mut m = shell(5, 9);
        assert_eq!(fill_cavities(&mut m, &plane, &far, 1.5, 100.0), 0);
        // On the canal's centre line: left.
        let mut m = shell(5, 9);
        let canal = vec![[7.0, 7.0]; 20];
        assert_eq!(fill_cavities(&mut m, &plane, &canal, 1.5, 1000.0), 0);
        // A tube open at both ends (no cap): nothing enclosed.
        let mut m = shell(5, 9);
        for z in 0..20 {
            m.set(7, 7, z, 0);
        }
        for z in 4..=9 {
            for y in 5..9 {
                for x in 5..9 {
                    m.set(x, y, z, 1);
                }
            }
        }
        for z in 0..20 {
            m.set(7, 7, z, 0);
        }
        let before = m.count();
        assert_eq!(fill_cavities(&mut m, &plane, &far, 1.5, 1000.0), 0);
        assert_eq!(m.count(), before);
    }
}
