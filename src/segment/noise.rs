//! Image noise in Hounsfield units, measured where the CT is soft tissue.

use super::Plane;
use crate::Volume;
use rayon::prelude::*;

/// Robust standard deviation (HU) of the noise: each voxel minus the mean of
/// its 4 in-plane neighbours, where that local mean lies in soft tissue
/// (−100 to 150 HU), scaled by the median absolute deviation (× 1.4826,
/// ÷ √1.25 for the neighbours' own noise). Every 4th axial slice is used (in parallel).
/// NaN when no voxel qualifies.
pub fn noise_hu(ct: &Volume<f32>, plane: &Plane) -> f64 {
    let (nu, nv) = (plane.nu(), plane.nv());
    if nu < 3 || nv < 3 {
        return f64::NAN;
    }
    // Median through a histogram of |residual| in 0.05 HU bins up to 1000 HU
    // (a residual beyond is an edge, not noise): no buffer of all residuals.
    const BIN: f32 = 0.05;
    const BINS: usize = 20_000;
    // One slice in four, placed symmetrically about the stack's middle (the
    // same slices whichever way the stack is ordered): with m = 2k − (n − 1),
    // twice slice k's offset from the middle, those with m ≡ 0 or 8 (mod 16)
    // for an odd count, m ≡ ±1 (mod 16) for an even one.
    let ns = plane.slices() as i64;
    let slices: Vec<usize> = (0..ns)
        .filter(|&k| matches!((2 * k - (ns - 1)).rem_euclid(16), 0 | 8 | 1 | 15))
        .map(|k| k as usize)
        .collect();
    // Per row, the bins first (branch-free, so the loop vectorises; a voxel
    // outside soft tissue goes to the uncounted bin BINS + 1), then the counts.
    const SKIP: u32 = BINS as u32 + 1;
    let mut hist = slices
        .par_iter()
        .fold(
            || vec![0u64; BINS + 2],
            |mut hist, &k| {
                let s = plane.gather(&ct.data, k);
                let mut bins = vec![SKIP; nu];
                for j in 1..nv - 1 {
                    let (up, row, down) = (&s[nu * (j - 1)..], &s[nu * j..], &s[nu * (j + 1)..]);
                    for i in 1..nu - 1 {
                        let ring = 0.25 * (row[i - 1] + row[i + 1] + up[i] + down[i]);
                        let local = (row[i] + 4.0 * ring) / 5.0;
                        let b = (((row[i] - ring).abs() / BIN) as u32).min(BINS as u32);
                        bins[i] = if (-100.0..=150.0).contains(&local) {
                            b
                        } else {
                            SKIP
                        };
                    }
                    for &b in &bins[1..nu - 1] {
                        hist[b as usize] += 1;
                    }
                }
                hist
            },
        )
        .reduce(
            || vec![0u64; BINS + 2],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(&b) {
                    *x += y;
                }
                a
            },
        );
    hist.truncate(BINS + 1); // the uncounted bin goes
    let n: u64 = hist.iter().sum();
    if n == 0 {
        return f64::NAN;
    }
    let (mut seen, half) = (0u64, n.div_ceil(2));
    let bin = hist
        .iter()
        .position(|&c| {
            seen += c;
            seen >= half
        })
        .unwrap_or(BINS);
    let median = (bin as f64 + 0.5) * BIN as f64;
    median * 1.4826 / 1.25f64.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    #[test]
    fn measures_gaussian_noise_in_soft_tissue() {
        let grid = Grid::new([64, 64, 8], [0.8, 0.8, 2.0], [0.0; 3]);
        // Deterministic pseudo-random normal noise (Box–Muller on an LCG).
        let mut state = 12345u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let data: Vec<f32> = (0..grid.len())
            .map(|_| {
                let g = (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
                (40.0 + 25.0 * g) as f32
            })
            .collect();
        let ct = Volume::new(grid.clone(), data).unwrap();
        let n = noise_hu(&ct, &Plane::new(grid.dims, 2));
        assert!((n - 25.0).abs() < 2.0, "measured {n}");
        // Air only: nothing to measure.
        let air = Volume::filled(grid.clone(), -1000.0f32);
        assert!(noise_hu(&air, &Plane::new(grid.dims, 2)).is_nan());
    }
}
