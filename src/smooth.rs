//! Gaussian smoothing with σ in millimetres (paper step 3: σ = 0.6 mm).
//!
//! The 3D Gaussian is separable: one 1D convolution per axis, each with
//! σ_voxels = σ_mm / spacing along that axis, so anisotropic voxels get the same
//! physical blur in every direction.
//!
//! Conventions follow `scipy.ndimage.gaussian_filter`, so results can be
//! cross-checked against it: the kernel is truncated at 4 σ (radius
//! `floor(4 σ_vox + 0.5)` voxels), normalised to sum 1, and the volume is
//! extended beyond its border by mirror reflection (`d c b a | a b c d`).
//! An axis whose σ is below 0.01 voxel is left alone.

use crate::{Error, Mask, Result, Volume};
use rayon::prelude::*;

/// Kernel truncation, in standard deviations.
pub const TRUNCATE_SIGMAS: f64 = 4.0;

/// The normalised 1D kernel for σ in voxels, from `-r` to `r`.
pub fn kernel_1d(sigma_vox: f64) -> Vec<f32> {
    let radius = (TRUNCATE_SIGMAS * sigma_vox + 0.5) as usize;
    let w: Vec<f64> = (-(radius as i64)..=radius as i64)
        .map(|i| (-0.5 * (i as f64 / sigma_vox).powi(2)).exp())
        .collect();
    let sum: f64 = w.iter().sum();
    w.iter().map(|v| (v / sum) as f32).collect()
}

/// Mirror index into `0..n` (scipy "reflect": the edge sample is repeated).
#[inline]
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let period = 2 * n;
    let mut m = i.rem_euclid(period);
    if m >= n {
        m = period - 1 - m;
    }
    m as usize
}

fn check_sigma(sigma_mm: [f64; 3]) -> Result<()> {
    for (a, &s) in sigma_mm.iter().enumerate() {
        if !(s.is_finite() && s >= 0.0) {
            return Err(Error::Parameter(format!(
                "Gaussian σ along axis {a} is {s} mm; give a value ≥ 0"
            )));
        }
    }
    Ok(())
}

/// The three 1D kernels (`None` for an axis left alone).
fn kernels(volume: &Volume<f32>, sigma_mm: [f64; 3]) -> [Option<Vec<f32>>; 3] {
    std::array::from_fn(|a| {
        let sv = sigma_mm[a] / volume.grid.spacing[a];
        (sv >= 0.01).then(|| kernel_1d(sv))
    })
}

/// Per-thread buffers for [`smooth_slice`].
struct Scratch {
    plane: Vec<f32>,
    line: Vec<f32>,
}

impl Scratch {
    fn new(nx: usize, ny: usize) -> Self {
        Scratch {
            plane: vec![0.0; nx * ny],
            line: vec![0.0; nx.max(ny)],
        }
    }
}

/// Smoothed slice `z` of `volume` into `dst` (one plane): the z pass reads the
/// neighbouring input slices, then the y and x passes run in place.
fn smooth_slice(
    volume: &Volume<f32>,
    k: &[Option<Vec<f32>>; 3],
    z: usize,
    dst: &mut [f32],
    s: &mut Scratch,
) {
    smooth_slice_rows(volume, k, z, dst, s, None);
}

/// Which rows of a slice [`smooth_slice_rows`] computes: `out[y]` the rows
/// wanted, `z_pass[y]` the rows whose z pass they read (within the y radius).
struct RowSet<'a> {
    out: &'a [bool],
    z_pass: &'a [bool],
    /// The columns (index x) computed, `[start, end)`: all, or a range whose
    /// wanted part lies at least the x radius inside it and inside the
    /// volume, so that it is convolved as the interior of the full row is
    /// (same values).
    cols: (usize, usize),
}

/// As [`smooth_slice`], computing only the rows `rows.out` (all when `None`);
/// the other rows of `dst` are left undefined.
///
/// On x86-64 CPUs with AVX2 the same code is compiled a second time for
/// 8-wide vectors and chosen at run time. No fused multiply-add is enabled,
/// so both give bit-identical results.
fn smooth_slice_rows(
    volume: &Volume<f32>,
    k: &[Option<Vec<f32>>; 3],
    z: usize,
    dst: &mut [f32],
    s: &mut Scratch,
    rows: Option<&RowSet>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { smooth_slice_rows_avx2(volume, k, z, dst, s, rows) };
        }
    }
    smooth_slice_rows_impl(volume, k, z, dst, s, rows)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn smooth_slice_rows_avx2(
    volume: &Volume<f32>,
    k: &[Option<Vec<f32>>; 3],
    z: usize,
    dst: &mut [f32],
    s: &mut Scratch,
    rows: Option<&RowSet>,
) {
    smooth_slice_rows_impl(volume, k, z, dst, s, rows)
}

#[inline(always)]
fn smooth_slice_rows_impl(
    volume: &Volume<f32>,
    k: &[Option<Vec<f32>>; 3],
    z: usize,
    dst: &mut [f32],
    s: &mut Scratch,
    rows: Option<&RowSet>,
) {
    let [nx, ny, nz] = volume.grid.dims;
    let plane = nx * ny;
    let wanted = |set: Option<&[bool]>, y: usize| set.is_none_or(|r| r[y]);
    let z_rows = rows.map(|r| r.z_pass);
    let out_rows = rows.map(|r| r.out);
    let (x0, x1) = rows.map_or((0, nx), |r| r.cols);
    let w = x1 - x0;
    let base = z * plane;
    match &k[2] {
        Some(k) => {
            let r = (k.len() / 2) as isize;
            for y in (0..ny).filter(|&y| wanted(z_rows, y)) {
                let d = &mut dst[y * nx + x0..][..w];
                d.fill(0.0);
                for (t, &wt) in k.iter().enumerate() {
                    let zz = reflect(z as isize + t as isize - r, nz);
                    let src = &volume.data[zz * plane + y * nx + x0..][..w];
                    for (d, &v) in d.iter_mut().zip(src) {
                        *d += wt * v;
                    }
                }
            }
        }
        None => {
            for y in (0..ny).filter(|&y| wanted(z_rows, y)) {
                dst[y * nx + x0..][..w].copy_from_slice(&volume.data[base + y * nx + x0..][..w]);
            }
        }
    }
    if let Some(k) = &k[1] {
        let r = (k.len() / 2) as isize;
        for y in (0..ny).filter(|&y| wanted(out_rows, y)) {
            let out = &mut s.plane[y * nx + x0..][..w];
            out.fill(0.0);
            for (t, &wt) in k.iter().enumerate() {
                let yy = reflect(y as isize + t as isize - r, ny);
                for (d, &v) in out.iter_mut().zip(&dst[yy * nx + x0..][..w]) {
                    *d += wt * v;
                }
            }
        }
        for y in (0..ny).filter(|&y| wanted(out_rows, y)) {
            dst[y * nx + x0..][..w].copy_from_slice(&s.plane[y * nx + x0..][..w]);
        }
    }
    if let Some(k) = &k[0] {
        let r = k.len() / 2;
        for (y, row) in dst.chunks_exact_mut(nx).enumerate() {
            if wanted(out_rows, y) {
                convolve_row(&mut row[x0..x1], k, r, &mut s.line[..w]);
            }
        }
    }
}

/// `out[i]` = any `src[j]` with `|i − j| ≤ r`.
fn grow(src: &[bool], r: usize, out: &mut [bool]) {
    let n = src.len();
    for (i, o) in out.iter_mut().enumerate() {
        *o = src[i.saturating_sub(r)..(i + r + 1).min(n)]
            .iter()
            .any(|&b| b);
    }
}

/// 3D Gaussian smoothing with σ in mm along each index axis of the grid
/// (`sigma_mm[a]` applies along axis `a`). Returns a new volume.
pub fn gaussian(volume: &Volume<f32>, sigma_mm: [f64; 3]) -> Result<Volume<f32>> {
    check_sigma(sigma_mm)?;
    let k = kernels(volume, sigma_mm);
    let [nx, ny, _] = volume.grid.dims;
    let plane = nx * ny;
    let mut out = vec![0f32; volume.data.len()];
    if plane > 0 {
        out.par_chunks_mut(plane).enumerate().for_each_init(
            || Scratch::new(nx, ny),
            |s, (z, dst)| smooth_slice(volume, &k, z, dst, s),
        );
    }
    Volume::new(volume.grid.clone(), out)
}

/// [`gaussian`] computed only inside the box `[lo, hi)` (voxel indices) and
/// returned on that sub-grid: equal to `gaussian(volume, σ)?.crop(lo, hi)`
/// (the kernel still reads the voxels around the box, and mirrors at the
/// volume's own edges), without a full-size result.
pub fn gaussian_box(
    volume: &Volume<f32>,
    sigma_mm: [f64; 3],
    lo: [usize; 3],
    hi: [usize; 3],
) -> Result<Volume<f32>> {
    let b = BoxSlices::new(volume, sigma_mm, lo, hi)?;
    let grid = b.grid();
    let mut out = vec![0f32; grid.len()];
    let box_plane = grid.dims[0] * grid.dims[1];
    if box_plane > 0 {
        out.par_chunks_mut(box_plane)
            .enumerate()
            .for_each_init(|| b.scratch(), |s, (dz, dst)| b.slice(dz, s, dst));
    }
    Volume::new(grid, out)
}

/// The smoothed box of [`gaussian_box`], one axial (index z) slice at a time,
/// for callers that use each slice as soon as it is made and need no
/// box-sized result. Every value equals [`gaussian_box`]'s (and
/// [`gaussian`]'s): the same rows are computed the same way.
pub struct BoxSlices<'a> {
    volume: &'a Volume<f32>,
    k: [Option<Vec<f32>>; 3],
    lo: [usize; 3],
    hi: [usize; 3],
    /// Rows (index y) of a slice inside the box, and those their y pass reads.
    out_rows: Vec<bool>,
    z_rows: Vec<bool>,
    /// Columns (index x) computed.
    cols: (usize, usize),
}

/// Per-thread buffers of [`BoxSlices::slice`].
pub struct BoxScratch {
    s: Scratch,
    buf: Vec<f32>,
    /// The rows of one call (see [`BoxSlices::slice_rows`]).
    out_rows: Vec<bool>,
    z_rows: Vec<bool>,
}

impl<'a> BoxSlices<'a> {
    /// The box `[lo, hi)` of `volume` (voxel indices) smoothed with σ in mm.
    pub fn new(
        volume: &'a Volume<f32>,
        sigma_mm: [f64; 3],
        lo: [usize; 3],
        hi: [usize; 3],
    ) -> Result<Self> {
        check_sigma(sigma_mm)?;
        let d = volume.grid.dims;
        if (0..3).any(|a| lo[a] > hi[a] || hi[a] > d[a]) {
            return Err(crate::Error::Parameter(format!(
                "box {lo:?}–{hi:?} does not lie in a volume of {d:?} voxels"
            )));
        }
        let k = kernels(volume, sigma_mm);
        let ny = d[1];
        let ry = k[1].as_ref().map_or(0, |k| k.len() / 2);
        // The y pass of the box's rows reads the z pass of rows within ry.
        let out_rows = (0..ny).map(|y| (lo[1]..hi[1]).contains(&y)).collect();
        let z_rows = (0..ny).map(|y| y + ry >= lo[1] && y < hi[1] + ry).collect();
        // Only the box's columns and those its x pass reads, when that span
        // stays inside the volume (else the whole rows, mirrored at its edges).
        let rx = k[0].as_ref().map_or(0, |k| k.len() / 2);
        let cols = if lo[0] >= rx && hi[0] + rx <= d[0] && lo[0] < hi[0] {
            (lo[0] - rx, hi[0] + rx)
        } else {
            (0, d[0])
        };
        Ok(BoxSlices {
            volume,
            k,
            lo,
            hi,
            out_rows,
            z_rows,
            cols,
        })
    }

    /// The box's grid (placed in patient space).
    pub fn grid(&self) -> crate::volume::Grid {
        let (lo, hi) = (self.lo, self.hi);
        let dims = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
        self.volume
            .grid
            .sub_grid([lo[0] as isize, lo[1] as isize, lo[2] as isize], dims)
    }

    /// Buffers for [`BoxSlices::slice`] (one per thread).
    pub fn scratch(&self) -> BoxScratch {
        let [nx, ny, _] = self.volume.grid.dims;
        BoxScratch {
            s: Scratch::new(nx, ny),
            buf: vec![0f32; nx * ny],
            out_rows: vec![false; ny],
            z_rows: vec![false; ny],
        }
    }

    /// Slice `dz` of the box (index z = `lo[2] + dz`) into `dst`, x fastest
    /// (`dst.len()` = the box's width × height).
    pub fn slice(&self, dz: usize, s: &mut BoxScratch, dst: &mut [f32]) {
        self.slice_rows(dz, (0, self.hi[1] - self.lo[1]), s, dst);
    }

    /// As [`BoxSlices::slice`], computing only the box's rows
    /// `[rows.0, rows.1)` (its index y less `lo[1]`); the other rows of
    /// `dst` are left as they were. The values are those of the whole slice.
    pub fn slice_rows(&self, dz: usize, rows: (usize, usize), s: &mut BoxScratch, dst: &mut [f32]) {
        let (lo, hi) = (self.lo, self.hi);
        let nx = self.volume.grid.dims[0];
        let width = hi[0] - lo[0];
        debug_assert_eq!(dst.len(), width * (hi[1] - lo[1]));
        let (y0, y1) = (lo[1] + rows.0, (lo[1] + rows.1).min(hi[1]));
        if width == 0 || y0 >= y1 {
            return;
        }
        // The y pass of rows [y0, y1) reads the z pass of rows within ry.
        let ry = self.k[1].as_ref().map_or(0, |k| k.len() / 2);
        for (y, (o, z)) in s.out_rows.iter_mut().zip(s.z_rows.iter_mut()).enumerate() {
            *o = self.out_rows[y] && (y0..y1).contains(&y);
            *z = self.z_rows[y] && y + ry >= y0 && y < y1 + ry;
        }
        let set = RowSet {
            out: &s.out_rows,
            z_pass: &s.z_rows,
            cols: self.cols,
        };
        smooth_slice_rows(
            self.volume,
            &self.k,
            lo[2] + dz,
            &mut s.buf,
            &mut s.s,
            Some(&set),
        );
        for y in y0..y1 {
            let by = y - lo[1];
            dst[by * width..(by + 1) * width]
                .copy_from_slice(&s.buf[y * nx + lo[0]..y * nx + hi[0]]);
        }
    }
}

/// Gaussian smoothing followed by the threshold `[low, high]`, fused: each
/// smoothed slice is thresholded as soon as it is computed, so no full-size
/// smoothed volume is ever held. Equal to
/// `threshold(&gaussian(volume, σ)?, low, high)`.
///
/// Rows that cannot reach `low` are not smoothed at all: the Gaussian is a
/// weighted mean (positive weights summing to 1), so a voxel whose kernel
/// support holds only values below `low` (less a rounding margin) smooths to
/// below `low`. A first pass finds the rows holding a value near or above
/// `low`; a row of the output is computed only when such a row lies within
/// the kernel's reach in y and z. In a CT at a bone threshold that skips most
/// of the volume (air, fat, soft tissue).
pub fn gaussian_threshold(
    volume: &Volume<f32>,
    sigma_mm: [f64; 3],
    low: f32,
    high: f32,
) -> Result<Mask> {
    check_sigma(sigma_mm)?;
    crate::threshold::check_range(low, high)?;
    let k = kernels(volume, sigma_mm);
    let [nx, ny, nz] = volume.grid.dims;
    let plane = nx * ny;
    let mut out = vec![0u8; volume.data.len()];
    if plane == 0 {
        return Mask::new(volume.grid.clone(), out);
    }
    // Row maxima and the largest magnitude (for the rounding margin).
    let stats: Vec<(f32, f32)> = volume
        .data
        .par_chunks(nx)
        .map(|row| {
            row.iter().fold((f32::NEG_INFINITY, 0f32), |(m, a), &v| {
                (m.max(v), a.max(v.abs()))
            })
        })
        .collect();
    let max_abs = stats.iter().fold(0f32, |a, s| a.max(s.1));
    // Float rounding of ≤ 27 products and sums, and the kernels' sums
    // (1 ± a few 1e-7 each), move a mean by far less than this.
    let margin = 1e-4 * (low.abs() + max_abs) + 1e-3;
    let cut = low - margin;
    // (Row maxima are never NaN: `f32::max` ignores NaN.)
    let hot: Vec<bool> = stats.iter().map(|s| s.0 >= cut).collect();
    drop(stats);
    let radius = |a: usize| k[a].as_ref().map_or(0, |k| k.len() / 2);
    let (ry, rz) = (radius(1), radius(2));
    out.par_chunks_mut(plane).enumerate().for_each_init(
        || {
            (
                Scratch::new(nx, ny),
                vec![0f32; plane],
                [vec![false; ny], vec![false; ny], vec![false; ny]],
            )
        },
        |(s, buf, [near_z, out_rows, z_rows]), (z, dst)| {
            // Rows of this slice with a hot row within rz slices, then within ry rows.
            near_z.fill(false);
            for zz in z.saturating_sub(rz)..(z + rz + 1).min(nz) {
                for (n, &h) in near_z.iter_mut().zip(&hot[zz * ny..(zz + 1) * ny]) {
                    *n |= h;
                }
            }
            grow(near_z, ry, out_rows);
            if !out_rows.iter().any(|&b| b) {
                return; // `dst` stays 0
            }
            grow(out_rows, ry, z_rows);
            let rows = RowSet {
                out: out_rows,
                z_pass: z_rows,
                cols: (0, nx),
            };
            smooth_slice_rows(volume, &k, z, buf, s, Some(&rows));
            for (y, (m, b)) in dst
                .chunks_exact_mut(nx)
                .zip(buf.chunks_exact(nx))
                .enumerate()
            {
                if out_rows[y] {
                    for (m, &v) in m.iter_mut().zip(b) {
                        *m = (v >= low && v <= high) as u8;
                    }
                }
            }
        },
    );
    Mask::new(volume.grid.clone(), out)
}

/// In-place 1D convolution of one row with mirror boundaries.
#[inline(always)]
fn convolve_row(row: &mut [f32], k: &[f32], r: usize, tmp: &mut [f32]) {
    let n = row.len();
    tmp.copy_from_slice(row);
    if n > 2 * r {
        // Interior: accumulate shifted copies of the row (vectorises over x).
        let interior = &mut row[r..n - r];
        interior.fill(0.0);
        for (t, &w) in k.iter().enumerate() {
            for (d, &s) in interior.iter_mut().zip(&tmp[t..t + n - 2 * r]) {
                *d += w * s;
            }
        }
        for x in (0..r).chain(n - r..n) {
            row[x] = edge_value(tmp, k, r, x);
        }
    } else {
        for (x, v) in row.iter_mut().enumerate() {
            *v = edge_value(tmp, k, r, x);
        }
    }
}

#[inline]
fn edge_value(src: &[f32], k: &[f32], r: usize, x: usize) -> f32 {
    k.iter()
        .enumerate()
        .map(|(t, &w)| w * src[reflect(x as isize + t as isize - r as isize, src.len())])
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grid;

    #[test]
    fn reflect_matches_scipy_convention() {
        let idx: Vec<usize> = (-4..8).map(|i| reflect(i, 4)).collect();
        assert_eq!(idx, vec![3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]);
    }

    #[test]
    fn kernel_radius_and_sum() {
        let k = kernel_1d(1.2);
        assert_eq!(k.len(), 2 * 5 + 1);
        let s: f32 = k.iter().sum();
        assert!((s - 1.0).abs() < 1e-6);
    }

    /// The blurred impulse is a sampled Gaussian with the physical σ on each axis:
    /// its second moments along x, y, z equal σ² in mm² (anisotropic voxels).
    #[test]
    fn impulse_response_has_the_physical_sigma() {
        let g = Grid::new([41, 41, 31], [0.5, 0.4, 1.0], [0.0; 3]);
        let mut v = Volume::filled(g, 0f32);
        v.set(20, 20, 15, 1000.0);
        let sigma = 1.5;
        let s = gaussian(&v, [sigma; 3]).unwrap();
        let total: f64 = s.data.iter().map(|&x| x as f64).sum();
        assert!((total - 1000.0).abs() < 0.01, "mass {total}");
        let mut m2 = [0f64; 3];
        for z in 0..31 {
            for y in 0..41 {
                for x in 0..41 {
                    let w = s.get(x, y, z) as f64 / total;
                    let d = [
                        (x as f64 - 20.0) * 0.5,
                        (y as f64 - 20.0) * 0.4,
                        (z as f64 - 15.0) * 1.0,
                    ];
                    for a in 0..3 {
                        m2[a] += w * d[a] * d[a];
                    }
                }
            }
        }
        for (a, m) in m2.iter().enumerate() {
            // Truncation at 4σ removes ~0.03 % of the second moment.
            assert!((m.sqrt() - sigma).abs() < 0.01, "axis {a}: σ {}", m.sqrt());
        }
        // Peak value: product of three sampled 1D Gaussians at their centres.
        let centre = |sv: f64| {
            let k = kernel_1d(sv);
            k[k.len() / 2]
        };
        let peak = 1000.0 * centre(sigma / 0.5) * centre(sigma / 0.4) * centre(sigma / 1.0);
        assert!((s.get(20, 20, 15) - peak).abs() < 1e-3);
    }

    #[test]
    fn fused_threshold_equals_smooth_then_threshold() {
        let g = Grid::new([23, 17, 9], [0.5, 0.7, 1.5], [0.0; 3]);
        let mut seed = 3u64;
        let data: Vec<f32> = (0..g.len())
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((seed >> 40) % 600) as f32 - 100.0
            })
            .collect();
        let v = Volume::new(g, data).unwrap();
        let a = gaussian_threshold(&v, [0.6; 3], 150.0, 3000.0).unwrap();
        let b =
            crate::threshold::threshold(&gaussian(&v, [0.6; 3]).unwrap(), 150.0, 3000.0).unwrap();
        assert_eq!(a, b);
        assert!(a.count() > 0 && a.count() < a.data.len());
    }

    /// Skipping the rows that cannot reach the threshold changes nothing:
    /// sparse bright spots (one voxel, a short run, a block at the borders)
    /// in a dark volume, thresholds just above and below their smoothed values.
    #[test]
    fn skipped_rows_equal_the_full_smoothing() {
        let g = Grid::new([40, 37, 21], [0.5, 0.5, 1.0], [0.0; 3]);
        let mut v = Volume::filled(g.clone(), -800f32);
        let mut seed = 5u64;
        for i in 0..g.len() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            v.data[i] += ((seed >> 40) % 200) as f32;
        }
        v.set(20, 18, 10, 3000.0);
        for x in 3..9 {
            v.set(x, 0, 0, 900.0);
        }
        for z in 18..21 {
            for y in 33..37 {
                v.set(39, y, z, 2000.0);
            }
        }
        let full = gaussian(&v, [0.6; 3]).unwrap();
        for low in [-700.0, -500.0, 0.0, 40.0, 150.0, 400.0] {
            for high in [300.0, 3000.0] {
                if low > high {
                    continue;
                }
                let a = gaussian_threshold(&v, [0.6; 3], low, high).unwrap();
                let b = crate::threshold::threshold(&full, low, high).unwrap();
                assert_eq!(a, b, "{low}..{high}");
            }
        }
        // Thresholds at the smoothed values themselves.
        for i in [g.index(20, 18, 10), g.index(5, 0, 0), g.index(39, 35, 20)] {
            let t = full.data[i];
            for low in [
                t,
                f32::from_bits(t.to_bits() - 1),
                f32::from_bits(t.to_bits() + 1),
            ] {
                let a = gaussian_threshold(&v, [0.6; 3], low, 5000.0).unwrap();
                let b = crate::threshold::threshold(&full, low, 5000.0).unwrap();
                assert_eq!(a, b, "low {low}");
            }
        }
    }

    #[test]
    fn box_equals_crop_of_the_full_smoothing() {
        // x radius 6 voxels: boxes far enough from the x edges compute only
        // their columns and the 6 on each side (the first two), the others
        // whole rows.
        let grid = Grid::new([40, 11, 9], [0.5, 0.7, 1.5], [0.0; 3]);
        let data: Vec<f32> = (0..grid.len())
            .map(|i| ((i * 7919) % 1013) as f32 - 300.0)
            .collect();
        let v = Volume::new(grid, data).unwrap();
        let sigma = [0.8, 1.1, 1.6];
        let full = gaussian(&v, sigma).unwrap();
        for (lo, hi) in [
            ([10, 2, 1], [25, 9, 7]),
            ([6, 0, 0], [34, 11, 9]),
            ([5, 0, 0], [34, 11, 9]),
            ([2, 1, 3], [11, 7, 5]),
            ([0, 0, 0], [40, 11, 9]),
            ([0, 4, 0], [5, 11, 2]),
            ([30, 3, 3], [38, 5, 6]),
            ([3, 3, 3], [3, 5, 6]),
        ] {
            let b = gaussian_box(&v, sigma, lo, hi).unwrap();
            let c = full.crop(lo, hi);
            assert_eq!(b.grid.dims, c.grid.dims);
            assert_eq!(b.grid.origin, c.grid.origin);
            assert_eq!(b.data, c.data, "box {lo:?}–{hi:?}");
        }
        assert!(gaussian_box(&v, sigma, [0, 0, 0], [41, 11, 9]).is_err());
        // Some rows of a box's slice: those rows as the whole slice has
        // them, the others left alone.
        let (lo, hi) = ([6, 1, 2], [34, 10, 8]);
        let b = gaussian_box(&v, sigma, lo, hi).unwrap();
        let slices = BoxSlices::new(&v, sigma, lo, hi).unwrap();
        let mut scratch = slices.scratch();
        let (w, h) = (hi[0] - lo[0], hi[1] - lo[1]);
        for dz in 0..hi[2] - lo[2] {
            let whole = &b.data[dz * w * h..(dz + 1) * w * h];
            for rows in [(0, h), (0, 1), (2, 5), (8, 9), (4, 4), (3, 20)] {
                let mut dst = vec![f32::NAN; w * h];
                slices.slice_rows(dz, rows, &mut scratch, &mut dst);
                for y in 0..h {
                    let (got, want) = (&dst[y * w..(y + 1) * w], &whole[y * w..(y + 1) * w]);
                    if (rows.0..rows.1).contains(&y) {
                        assert_eq!(got, want, "slice {dz}, rows {rows:?}, row {y}");
                    } else {
                        assert!(got.iter().all(|x| x.is_nan()), "row {y} outside {rows:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn constant_volume_is_unchanged_and_zero_sigma_is_identity() {
        let g = Grid::new([7, 3, 2], [0.5, 0.5, 3.0], [0.0; 3]);
        let v = Volume::filled(g.clone(), 100f32);
        let s = gaussian(&v, [2.0; 3]).unwrap();
        assert!(s.data.iter().all(|&x| (x - 100.0).abs() < 1e-3));
        let data: Vec<f32> = (0..g.len()).map(|i| i as f32).collect();
        let v = Volume::new(g, data).unwrap();
        assert_eq!(gaussian(&v, [0.0; 3]).unwrap(), v);
        assert!(gaussian(&v, [f64::NAN, 0.0, 0.0]).is_err());
    }
}
