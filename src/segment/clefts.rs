//! Clefts between vertebrae out of the mask: the discs (and joint spaces)
//! that smoothing and the closing took in.
//!
//! On a noisy scan the σ that keeps bone speckle out blurs two bright
//! endplates into the thin disc between them, which then reads above the
//! bone threshold (verse012: its thoracic and upper lumbar discs). The
//! split knows where two vertebrae meet; near there, a voxel is a cleft when
//! the CT (lightly smoothed) is dark and darker than the brightest value
//! both above and below it along the spine's axis, within an endplate's
//! reach: a valley between two plates. Cancellous bone next to an endplate
//! has the plate on one side only. What this opens inside one vertebra
//! (a dark spot of its cancellous bone) is a hole of that vertebra, which
//! [`super::holes`] fills again afterwards.

use super::{face_neighbours, Plane};
use crate::components::{self, Connectivity};
use crate::{edt, smooth, Mask, Result, Volume};
use rayon::prelude::*;

/// Parameters of [`clear_clefts`] (physical units).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CleftParams {
    /// Only voxels this close to another vertebra's voxel, mm.
    pub near_mm: f64,
    /// Gaussian σ of the CT looked at, mm.
    pub sigma_mm: f64,
    /// A cleft is darker than this, HU …
    pub max_hu: f32,
    /// … and this much darker than the brightest CT both above and below
    /// it, HU …
    pub depth_hu: f32,
    /// … looked for from this far to this far along the axial axis, mm.
    pub reach_mm: [f64; 2],
    /// Pieces the clearing cuts off that are smaller than this go too, mm³
    /// (specks of a disc's rim or an endplate's edge; the smallest process
    /// of a vertebra is far larger).
    pub min_piece_mm3: f64,
}

impl Default for CleftParams {
    fn default() -> Self {
        CleftParams {
            near_mm: 4.0,
            sigma_mm: 1.0,
            max_hu: 250.0,
            depth_hu: 60.0,
            reach_mm: [2.0, 8.0],
            min_piece_mm3: 100.0,
        }
    }
}

/// Clears the clefts from `labels` (a box of `ct` whose first voxel is
/// `lo`; `axial`: its slices): labelled voxels within `near_mm` of a voxel
/// of another label where the CT smoothed by `sigma_mm` is below `max_hu`
/// and `depth_hu` below the brightest value both above and below along the
/// axial axis, `reach_mm` away, and the pieces smaller than `min_piece_mm3`
/// that this cuts off. Returns the number of voxels cleared.
pub fn clear_clefts(
    labels: &mut Volume<u8>,
    ct: &Volume<f32>,
    lo: [usize; 3],
    axial: Plane,
    p: &CleftParams,
) -> Result<usize> {
    let g = &labels.grid;
    let dims = g.dims;
    let [nx, ny, _] = dims;
    // Where two vertebrae meet: a voxel with a face neighbour of another label.
    let mut meet = Mask::filled(g.clone(), 0);
    meet.data
        .par_chunks_mut(nx * ny)
        .enumerate()
        .for_each(|(z, slice)| {
            for (j, m) in slice.iter_mut().enumerate() {
                let i = z * nx * ny + j;
                let l = labels.data[i];
                *m = u8::from(
                    l != 0
                        && face_neighbours(i, dims)
                            .into_iter()
                            .flatten()
                            .any(|q| labels.data[q] != 0 && labels.data[q] != l),
                );
            }
        });
    if !meet.data.contains(&1) {
        return Ok(0);
    }
    let near = edt::squared_distance_to_set(&meet);
    drop(meet);
    let hi: [usize; 3] = std::array::from_fn(|a| lo[a] + dims[a]);
    let sm = smooth::gaussian_box(ct, [p.sigma_mm; 3], lo, hi)?;
    let a = axial.a;
    let stride = [1, nx, nx * ny][a];
    let step = g.spacing[a];
    let k0 = ((p.reach_mm[0] / step).ceil() as usize).max(1);
    let k1 = (p.reach_mm[1] / step).floor() as usize;
    let near2 = (p.near_mm * p.near_mm) as f32;
    let cleft = |i: usize| -> bool {
        let s = sm.data[i];
        if labels.data[i] == 0 || near[i] > near2 || s >= p.max_hu {
            return false;
        }
        let c = [i % nx, (i / nx) % ny, i / (nx * ny)][a];
        let brightest = |up: bool| {
            (k0..=k1)
                .filter(|&k| if up { c + k < dims[a] } else { k <= c })
                .map(|k| sm.data[if up { i + k * stride } else { i - k * stride }])
                .fold(f32::NEG_INFINITY, f32::max)
        };
        s < brightest(true).min(brightest(false)) - p.depth_hu
    };
    let clear: Vec<usize> = (0..labels.data.len())
        .into_par_iter()
        .filter(|&i| cleft(i))
        .collect();
    for &i in &clear {
        labels.data[i] = 0;
    }
    if clear.is_empty() {
        return Ok(0);
    }
    // Specks cut off: 6-connected pieces below the limit, never the
    // largest (the fragments step ran before, so any such piece is new).
    let pieces = components::label(&labels.map(|l| u8::from(l != 0)), Connectivity::Six);
    let min_vox = (p.min_piece_mm3 / g.voxel_volume_mm3()).ceil() as u64;
    let specks = pieces.mask_of(|c| c > 0 && pieces.sizes[c] < min_vox);
    let mut n = clear.len();
    for (l, &s) in labels.data.iter_mut().zip(&specks.data) {
        if s != 0 {
            *l = 0;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    /// Two bodies (labels 1 and 2, 150 HU cancellous bone under 700 HU
    /// endplates) with a 4 mm, 100 HU disc between them that the mask
    /// holds, half in each label; 1 × 1 × 1 mm voxels, axial slices along z.
    fn two_bodies() -> (Volume<u8>, Volume<f32>) {
        let g = Grid::new([20, 20, 60], [1.0; 3], [0.0; 3]);
        let mut ct = Volume::filled(g.clone(), 0f32);
        let mut labels = Volume::filled(g, 0u8);
        for z in 5..55 {
            for y in 4..16 {
                for x in 4..16 {
                    let hu = match z {
                        28..=31 => 100.0,
                        26 | 27 | 32 | 33 => 700.0,
                        _ => 150.0,
                    };
                    ct.set(x, y, z, hu);
                    labels.set(x, y, z, if z < 30 { 1 } else { 2 });
                }
            }
        }
        (labels, ct)
    }

    #[test]
    fn the_disc_between_two_vertebrae_goes_their_cancellous_bone_stays() {
        let (mut labels, ct) = two_bodies();
        let axial = Plane::new(labels.grid.dims, 2);
        let n = clear_clefts(&mut labels, &ct, [0; 3], axial, &CleftParams::default()).unwrap();
        // The disc's middle slices go (its outer slices, next to the
        // blurred endplates, need not); the bodies stay whole.
        for z in 0..60 {
            let l = labels.get(10, 10, z);
            if (29..=30).contains(&z) {
                assert_eq!(l, 0, "z {z}");
            }
            if (5..=26).contains(&z) || (33..55).contains(&z) {
                assert_ne!(l, 0, "z {z}");
            }
        }
        assert!(n >= 2 * 12 * 12, "{n}");
        // Pieces the clearing cuts off below `min_piece_mm3` go, never the
        // largest: with a limit above each body's volume (~3.4 cm³), one
        // body is left.
        let (mut cut, _) = two_bodies();
        let big = CleftParams {
            min_piece_mm3: 4000.0,
            ..Default::default()
        };
        clear_clefts(&mut cut, &ct, [0; 3], axial, &big).unwrap();
        let left: std::collections::BTreeSet<u8> =
            cut.data.iter().copied().filter(|&l| l != 0).collect();
        assert_eq!(left.len(), 1, "{left:?}");
        // One vertebra (a body with a dark band across it, as dark and as
        // thin as a disc): no other vertebra near, nothing cleared.
        let (mut one, ct) = two_bodies();
        for v in one.data.iter_mut() {
            *v = u8::from(*v != 0);
        }
        let before = one.clone();
        assert_eq!(
            clear_clefts(&mut one, &ct, [0; 3], axial, &CleftParams::default()).unwrap(),
            0
        );
        assert_eq!(one.data, before.data);
    }
}
