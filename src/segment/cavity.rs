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
use rayon::prelude::*;

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

/// What [`fill_slice_pockets`] fills.
pub struct SlicePockets<'a> {
    /// The canal centre per slice (in-plane voxel coordinates).
    pub track: &'a [[f64; 2]],
    /// Holes with a pixel this close to the canal centre are the canal, mm.
    pub canal_radius_mm: f64,
    /// The in-plane axis (0: u, 1: v) that runs front-back, and +1 when
    /// its index grows toward the front, −1 when toward the back.
    pub ap_axis: usize,
    pub anterior_sign: f64,
    /// The hole's centre lies at least this far in front of the canal's
    /// centre, mm, and at most `lateral_mm` left or right of it: in the
    /// vertebral body (not the canal, the sacral foramina or the ala).
    pub front_mm: f64,
    pub lateral_mm: f64,
    /// Smallest and largest hole filled, mm² (the mid-level step leaves
    /// thin gaps of soft tissue between two bones enclosed).
    pub area_mm2: [f64; 2],
    /// The hole's median CT lies in [low, high), HU.
    pub hu: [f32; 2],
}

/// Fills the holes of `mask` in each slice of `plane` (background
/// 4-connected within the slice and enclosed by the mask there) that `p`
/// selects: of the size, in the vertebral body, clear of the canal, their
/// median CT (`hu` of a voxel index of `mask`) in the range. Returns the
/// number of voxels added.
///
/// For marrow darker than the solid fill's limit (osteoporosis, fatty
/// marrow): the fill leaves such holes, as the canal is one too, and a gap
/// in the cortex opens their pocket in 3D, so that [`fill_cavities`] cannot
/// take it. Run on the spine alone with the canal known, the enclosed holes
/// of an axial slice away from the canal are the bone's own interior.
pub fn fill_slice_pockets(
    mask: &mut Mask,
    plane: &Plane,
    p: &SlicePockets,
    hu: &(dyn Fn(usize) -> f32 + Sync),
) -> usize {
    let grid = &mask.grid;
    let (su, sv) = (grid.spacing[plane.u], grid.spacing[plane.v]);
    let px_mm2 = su * sv;
    let fits = |n: usize| (p.area_mm2[0]..=p.area_mm2[1]).contains(&(n as f64 * px_mm2));
    let (nu, nv) = (plane.nu(), plane.nv());
    let add: Vec<Vec<usize>> = (0..plane.slices())
        .into_par_iter()
        .map(|k| {
            let Some(&c) = p.track.get(k) else {
                return Vec::new();
            };
            let m = plane.gather(&mask.data, k);
            let (lab, sizes) = super::fill::holes_2d(&m, nu, nv);
            if sizes.len() < 2 {
                return Vec::new();
            }
            let mut pixels: Vec<Vec<usize>> = vec![Vec::new(); sizes.len()];
            super::fill::for_each_labelled(&lab, |q, l| {
                if fits(sizes[l as usize]) {
                    pixels[l as usize].push(q);
                }
            });
            // Offset (mm) of in-plane (i, j) from the canal centre.
            let offset = |i: f64, j: f64| [(i - c[0]) * su, (j - c[1]) * sv];
            let from_canal = |i: f64, j: f64| {
                let [du, dv] = offset(i, j);
                du.hypot(dv)
            };
            let (ap, lr) = (p.ap_axis, 1 - p.ap_axis);
            let in_body = |i: f64, j: f64| {
                let o = offset(i, j);
                o[ap] * p.anterior_sign >= p.front_mm && o[lr].abs() <= p.lateral_mm
            };
            let mut out = Vec::new();
            let mut values = Vec::new();
            for px in pixels.iter().filter(|px| !px.is_empty()) {
                let n = px.len() as f64;
                let ci = px.iter().map(|&q| (q % nu) as f64).sum::<f64>() / n;
                let cj = px.iter().map(|&q| (q / nu) as f64).sum::<f64>() / n;
                if !in_body(ci, cj)
                    || px
                        .iter()
                        .any(|&q| from_canal((q % nu) as f64, (q / nu) as f64) <= p.canal_radius_mm)
                {
                    continue;
                }
                values.clear();
                values.extend(px.iter().map(|&q| hu(plane.index(k, q % nu, q / nu))));
                let mid = values.len() / 2;
                let (_, m, _) = values.select_nth_unstable_by(mid, f32::total_cmp);
                if *m >= p.hu[0] && *m < p.hu[1] {
                    out.extend(px.iter().map(|&q| plane.index(k, q % nu, q / nu)));
                }
            }
            out
        })
        .collect();
    let mut n = 0;
    for i in add.into_iter().flatten() {
        mask.data[i] = 1;
        n += 1;
    }
    n
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

    /// One slice (1 mm pixels) with three rings: a body 20 mm in front of
    /// the canal (v grows toward the front), the canal, and a foramen 25 mm
    /// to the side; all hold 20 HU. Only the body's hole is filled, and only
    /// while its HU lies in the range.
    #[test]
    fn dark_pocket_in_the_body_is_filled_canal_and_foramen_are_not() {
        let grid = Grid::new([80, 80, 1], [1.0, 1.0, 3.0], [0.0; 3]);
        let ring = |m: &mut Mask, c: [usize; 2], r: usize| {
            for y in c[1] - r..=c[1] + r {
                for x in c[0] - r..=c[0] + r {
                    if x.abs_diff(c[0]) == r || y.abs_diff(c[1]) == r {
                        m.set(x, y, 0, 1);
                    }
                }
            }
        };
        let mut m = Mask::filled(grid, 0);
        ring(&mut m, [40, 20], 6); // canal
        ring(&mut m, [40, 40], 8); // body: 15 × 15 = 225 mm² inside
        ring(&mut m, [65, 20], 4); // foramen
        let plane = Plane::new([80, 80, 1], 2);
        let track = [[40.0, 20.0]];
        let p = |hu: [f32; 2]| SlicePockets {
            track: &track,
            canal_radius_mm: 3.0,
            ap_axis: 1,
            anterior_sign: 1.0,
            front_mm: 12.0,
            lateral_mm: 15.0,
            area_mm2: [30.0, 2500.0],
            hu,
        };
        let dark = |_: usize| 20.0f32;
        let mut a = m.clone();
        assert_eq!(
            fill_slice_pockets(&mut a, &plane, &p([0.0, 40.0]), &dark),
            225
        );
        assert_eq!(
            (a.get(40, 40, 0), a.get(40, 20, 0), a.get(65, 20, 0)),
            (1, 0, 0)
        );
        // Fat (below the range) or brighter than the fill's limit: left.
        let mut a = m.clone();
        assert_eq!(
            fill_slice_pockets(&mut a, &plane, &p([30.0, 40.0]), &dark),
            0
        );
        assert_eq!(
            fill_slice_pockets(&mut a, &plane, &p([0.0, 20.0]), &dark),
            0
        );
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
