//! Step 5d: metal implants (pedicle screws, rods, cages) out of the mask.
//!
//! Metal reads above the bone range (titanium and steel saturate at the
//! scanner's maximum, 3071 HU). The bone threshold leaves it out, but its
//! blurred rim lies inside the bone range and closes around it, so the fill
//! takes the implant for cancellous bone. Implants are not bone: every
//! voxel within a margin of a metal voxel is cleared, which leaves the
//! vertebrae with channels where screws run and drops rods and screw heads.

use crate::volume::{Mask, Volume};
use crate::{morphology, Result};
use rayon::prelude::*;

/// What [`remove_metal`] found and did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetalRemoval {
    /// CT voxels above the metal limit inside the mask's box.
    pub metal_voxels: usize,
    /// Mask voxels cleared.
    pub removed: usize,
    /// The voxels within the margin of metal (`None` without metal).
    pub zone: Option<MetalZone>,
}

/// Voxels within the margin of metal: a box of the mask's box.
#[derive(Clone, Debug, PartialEq)]
pub struct MetalZone {
    /// The zone's first voxel in the mask's box.
    pub lo: [usize; 3],
    pub zone: Mask,
}

impl MetalZone {
    /// Whether voxel `c` of the mask's box is within the margin of metal.
    pub fn contains(&self, c: [usize; 3]) -> bool {
        let d = self.zone.grid.dims;
        let mut r = [0usize; 3];
        for a in 0..3 {
            if c[a] < self.lo[a] || c[a] >= self.lo[a] + d[a] {
                return false;
            }
            r[a] = c[a] - self.lo[a];
        }
        self.zone.get(r[0], r[1], r[2]) != 0
    }
}

/// Clears from `mask` (a box of `ct` whose first voxel is `lo`) every voxel
/// within `margin_mm` of a CT voxel above `above_hu`.
pub fn remove_metal(
    mask: &mut Mask,
    ct: &Volume<f32>,
    lo: [usize; 3],
    above_hu: f32,
    margin_mm: f64,
) -> Result<MetalRemoval> {
    let d = mask.grid.dims;
    // Metal voxels of the box and their bounding box, slice by slice.
    type Found = (usize, [usize; 3], [usize; 3]);
    let none: Found = (0, [usize::MAX; 3], [0; 3]);
    let merge = |a: Found, b: Found| -> Found {
        (
            a.0 + b.0,
            std::array::from_fn(|k| a.1[k].min(b.1[k])),
            std::array::from_fn(|k| a.2[k].max(b.2[k])),
        )
    };
    let (count, mlo, mhi) = (0..d[2])
        .into_par_iter()
        .map(|z| {
            let mut f = none;
            for y in 0..d[1] {
                let start = ct.grid.index(lo[0], lo[1] + y, lo[2] + z);
                for (x, &v) in ct.data[start..start + d[0]].iter().enumerate() {
                    if v > above_hu {
                        f = merge(f, (1, [x, y, z], [x + 1, y + 1, z + 1]));
                    }
                }
            }
            f
        })
        .reduce(|| none, merge);
    if count == 0 {
        return Ok(MetalRemoval::default());
    }
    // The metal's box grown by the margin, clamped to the mask's box.
    let reach: [usize; 3] =
        std::array::from_fn(|k| (margin_mm / mask.grid.spacing[k]).ceil() as usize);
    let rlo: [usize; 3] = std::array::from_fn(|k| mlo[k].saturating_sub(reach[k]));
    let rhi: [usize; 3] = std::array::from_fn(|k| (mhi[k] + reach[k]).min(d[k]));
    let abs = |r: [usize; 3]| -> [usize; 3] { std::array::from_fn(|k| lo[k] + r[k]) };
    let metal = ct.crop(abs(rlo), abs(rhi)).map(|v| u8::from(v > above_hu));
    let rd = metal.grid.dims;
    let zone = morphology::dilate(&metal, margin_mm)?;
    drop(metal);
    let mut removed = 0;
    for z in 0..rd[2] {
        for y in 0..rd[1] {
            let src = zone.grid.index(0, y, z);
            let dst = mask.grid.index(rlo[0], rlo[1] + y, rlo[2] + z);
            for x in 0..rd[0] {
                if zone.data[src + x] != 0 && mask.data[dst + x] != 0 {
                    mask.data[dst + x] = 0;
                    removed += 1;
                }
            }
        }
    }
    Ok(MetalRemoval {
        metal_voxels: count,
        removed,
        zone: Some(MetalZone { lo: rlo, zone }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grid;

    #[test]
    fn clears_metal_and_its_margin_only() {
        // A 20 mm bone block with a metal rod through it along x; the CT box
        // starts at voxel (2, 3, 1) of the CT.
        let g = Grid::new([40, 30, 20], [0.5, 0.5, 1.0], [0.0; 3]);
        let mut ct = Volume::filled(g.clone(), 40.0f32);
        let lo = [2, 3, 1];
        let box_grid = g.sub_grid([2, 3, 1], [36, 26, 18]);
        let mut mask = Mask::filled(box_grid, 1);
        for x in 0..40 {
            for (y, z) in [(15, 10), (16, 10), (15, 11), (16, 11)] {
                ct.set(x, y, z, 3071.0);
            }
        }
        let before = mask.count();
        let r = remove_metal(&mut mask, &ct, lo, 3000.0, 1.0).unwrap();
        assert_eq!(r.metal_voxels, 36 * 4);
        assert_eq!(before - mask.count(), r.removed);
        // The zone is what was cleared.
        let zone = r.zone.as_ref().unwrap();
        for (i, &m) in mask.data.iter().enumerate() {
            let d = mask.grid.dims;
            let c = [i % d[0], (i / d[0]) % d[1], i / (d[0] * d[1])];
            assert_eq!(m == 0, zone.contains(c), "{c:?}");
        }
        // In box coordinates the rod is at y 12–13, z 9–10; 1 mm is two
        // voxels in-plane, one slice.
        for (y, z, kept) in [
            (12, 9, false),
            (10, 9, false),
            (9, 9, true),
            (12, 8, false),
            (12, 7, true),
            (15, 10, false),
            (16, 10, true),
        ] {
            assert_eq!(mask.get(5, y, z) != 0, kept, "y {y} z {z}");
        }
        // No metal: nothing changes.
        let mut m2 = Mask::filled(g.sub_grid([0; 3], [40, 30, 20]), 1);
        let plain = Volume::filled(g, 500.0f32);
        assert_eq!(
            remove_metal(&mut m2, &plain, [0; 3], 3000.0, 1.0).unwrap(),
            MetalRemoval::default()
        );
        assert_eq!(m2.count(), 40 * 30 * 20);
    }
}
