//! Crop to the bounding box of a mask plus a margin in mm (paper step 6: 2 mm).

use crate::{Error, Mask, Result};

/// A crop box `[lo, hi)` in voxel indices of the uncropped grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropBox {
    pub lo: [usize; 3],
    pub hi: [usize; 3],
}

/// The bounding box of the set voxels grown by `margin_mm` on every side
/// (rounded up to whole voxels per axis, clipped to the volume).
/// Errors if the mask is empty.
pub fn bounding_box_with_margin(mask: &Mask, margin_mm: f64) -> Result<CropBox> {
    bounding_box_with_margin_in(mask, margin_mm, ([0; 3], mask.grid.dims))
}

/// [`bounding_box_with_margin`] of a mask known to be empty outside the box
/// `within` (`[lo, hi)`): only that box is read.
pub fn bounding_box_with_margin_in(
    mask: &Mask,
    margin_mm: f64,
    within: ([usize; 3], [usize; 3]),
) -> Result<CropBox> {
    if !(margin_mm.is_finite() && margin_mm >= 0.0) {
        return Err(Error::Parameter(format!(
            "crop margin {margin_mm} mm must be ≥ 0"
        )));
    }
    let (lo, hi) = mask
        .bounding_box_in(within.0, within.1)
        .ok_or_else(|| Error::Empty("the mask is empty, there is nothing to crop".into()))?;
    let mut b = CropBox { lo, hi };
    for a in 0..3 {
        let m = (margin_mm / mask.grid.spacing[a] - 1e-9).ceil().max(0.0) as usize;
        b.lo[a] = lo[a].saturating_sub(m);
        b.hi[a] = (hi[a] + m).min(mask.grid.dims[a]);
    }
    Ok(b)
}

/// Crops the mask to its bounding box + margin; the result keeps its place in
/// patient space (its grid origin moves with the box).
pub fn crop_to_mask(mask: &Mask, margin_mm: f64) -> Result<(Mask, CropBox)> {
    crop_to_mask_in(mask, margin_mm, ([0; 3], mask.grid.dims))
}

/// [`crop_to_mask`] of a mask known to be empty outside the box `within`.
pub fn crop_to_mask_in(
    mask: &Mask,
    margin_mm: f64,
    within: ([usize; 3], [usize; 3]),
) -> Result<(Mask, CropBox)> {
    let b = bounding_box_with_margin_in(mask, margin_mm, within)?;
    Ok((mask.crop(b.lo, b.hi), b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grid;

    #[test]
    fn margin_in_mm_on_anisotropic_voxels() {
        let mut m = Mask::filled(Grid::new([20, 20, 20], [0.5, 1.0, 3.0], [0.0; 3]), 0);
        m.set(10, 10, 10, 1);
        let (c, b) = crop_to_mask(&m, 2.0).unwrap();
        // 2 mm = 4 voxels of 0.5 mm, 2 of 1 mm, 1 of 3 mm (rounded up).
        assert_eq!(b.lo, [6, 8, 9]);
        assert_eq!(b.hi, [15, 13, 12]);
        assert_eq!(c.count(), 1);
        assert_eq!(c.grid.origin, [3.0, 8.0, 27.0]);
        // Clipped at the border.
        let mut m2 = Mask::filled(m.grid.clone(), 0);
        m2.set(0, 19, 0, 1);
        let b2 = bounding_box_with_margin(&m2, 2.0).unwrap();
        assert_eq!((b2.lo, b2.hi), ([0, 17, 0], [5, 20, 2]));
        assert!(crop_to_mask(&Mask::filled(m.grid.clone(), 0), 1.0).is_err());
        // Told where the mask lies: the same box, the margin reaching beyond it.
        let (c3, b3) = crop_to_mask_in(&m, 2.0, ([10, 10, 10], [11, 11, 11])).unwrap();
        assert_eq!((b3, c3.data), (b, c.data));
    }
}
