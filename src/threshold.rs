//! Intensity thresholding (paper step 4: bone is 150–3000 HU).

use crate::{Error, Mask, Result, Volume};

/// Mask of the voxels whose value lies in `[low, high]` (inclusive, HU).
pub fn threshold(volume: &Volume<f32>, low: f32, high: f32) -> Result<Mask> {
    check_range(low, high)?;
    Ok(volume.map(|v| (v >= low && v <= high) as u8))
}

/// Refuses a range that is not `low ≤ high` with finite bounds.
pub fn check_range(low: f32, high: f32) -> Result<()> {
    if low.is_finite() && high.is_finite() && low <= high {
        Ok(())
    } else {
        Err(Error::Parameter(format!(
            "threshold {low}:{high} HU is not a range; give LOW:HIGH with LOW ≤ HIGH"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grid;

    #[test]
    fn inclusive_bounds() {
        let g = Grid::new([5, 1, 1], [1.0; 3], [0.0; 3]);
        let v = Volume::new(g, vec![149.9, 150.0, 1000.0, 3000.0, 3000.1]).unwrap();
        assert_eq!(
            threshold(&v, 150.0, 3000.0).unwrap().data,
            vec![0, 1, 1, 1, 0]
        );
        assert!(threshold(&v, 10.0, 5.0).is_err());
    }
}
