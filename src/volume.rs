//! A typed 3D grid with physical spacing and its place in patient space.
//!
//! Memory order: x (columns) fastest, then y (rows), then z (slices); index
//! `x + nx * (y + ny * z)`. A [`Grid`] maps a voxel index `(i, j, k)` to DICOM
//! patient coordinates (LPS, millimetres):
//!
//! `p = origin + i·sx·d₀ + j·sy·d₁ + k·sz·d₂`
//!
//! where `dₐ = direction[a]` is the unit LPS vector of index axis `a`. For a
//! DICOM series, `d₀`/`d₁` are the Image Orientation (Patient) row/column
//! cosines and `d₂` the slice normal in the order the slices are stacked.

use crate::{Error, Result};

/// Geometry of a voxel grid in patient space (LPS, mm).
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// Number of voxels along x, y, z (index axes 0, 1, 2).
    pub dims: [usize; 3],
    /// Voxel size along each index axis, mm.
    pub spacing: [f64; 3],
    /// LPS position of the centre of voxel (0, 0, 0), mm.
    pub origin: [f64; 3],
    /// `direction[a]`: unit LPS vector of index axis `a`.
    pub direction: [[f64; 3]; 3],
}

impl Grid {
    /// An axis-aligned grid (identity direction cosines).
    pub fn new(dims: [usize; 3], spacing: [f64; 3], origin: [f64; 3]) -> Self {
        Grid {
            dims,
            spacing,
            origin,
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        }
    }

    /// Number of voxels.
    pub fn len(&self) -> usize {
        self.dims[0] * self.dims[1] * self.dims[2]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Linear index of voxel (x, y, z).
    #[inline]
    pub fn index(&self, x: usize, y: usize, z: usize) -> usize {
        x + self.dims[0] * (y + self.dims[1] * z)
    }

    /// Voxel (x, y, z) of a linear index.
    #[inline]
    pub fn coords(&self, i: usize) -> [usize; 3] {
        let nx = self.dims[0];
        let ny = self.dims[1];
        [i % nx, (i / nx) % ny, i / (nx * ny)]
    }

    /// Volume of one voxel, mm³.
    pub fn voxel_volume_mm3(&self) -> f64 {
        self.spacing[0] * self.spacing[1] * self.spacing[2]
    }

    /// LPS position (mm) of a continuous voxel index.
    pub fn index_to_lps(&self, idx: [f64; 3]) -> [f64; 3] {
        let mut p = self.origin;
        for (a, &v) in idx.iter().enumerate() {
            let s = v * self.spacing[a];
            for (c, pc) in p.iter_mut().enumerate() {
                *pc += s * self.direction[a][c];
            }
        }
        p
    }

    /// The 3×3 matrix M with `p = origin + M · idx` (columns = spacing × direction).
    pub fn index_matrix(&self) -> [[f64; 3]; 3] {
        let mut m = [[0.0; 3]; 3];
        for (a, dir) in self.direction.iter().enumerate() {
            for c in 0..3 {
                m[c][a] = dir[c] * self.spacing[a];
            }
        }
        m
    }

    /// Continuous voxel index of an LPS position (mm). `None` if the grid is degenerate.
    pub fn lps_to_index(&self, p: [f64; 3]) -> Option<[f64; 3]> {
        let inv = invert3(&self.index_matrix())?;
        let d = [
            p[0] - self.origin[0],
            p[1] - self.origin[1],
            p[2] - self.origin[2],
        ];
        Some([
            inv[0][0] * d[0] + inv[0][1] * d[1] + inv[0][2] * d[2],
            inv[1][0] * d[0] + inv[1][1] * d[1] + inv[1][2] * d[2],
            inv[2][0] * d[0] + inv[2][1] * d[1] + inv[2][2] * d[2],
        ])
    }

    /// True when index space maps to LPS with a mirror (negative determinant);
    /// surfaces then flip their winding to stay outward-facing.
    pub fn is_mirrored(&self) -> bool {
        det3(&self.index_matrix()) < 0.0
    }

    /// The 4×4 voxel-to-RAS affine that NIfTI stores (sform / qform).
    pub fn ras_affine(&self) -> [[f64; 4]; 4] {
        let m = self.index_matrix();
        let mut a = [[0.0; 4]; 4];
        for r in 0..3 {
            // LPS → RAS flips the first two axes.
            let sign = if r < 2 { -1.0 } else { 1.0 };
            for c in 0..3 {
                a[r][c] = sign * m[r][c];
            }
            a[r][3] = sign * self.origin[r];
        }
        a[3][3] = 1.0;
        a
    }

    /// A grid from a voxel-to-RAS affine (as NIfTI stores it).
    pub fn from_ras_affine(dims: [usize; 3], affine: &[[f64; 4]; 4]) -> Result<Grid> {
        let mut spacing = [0.0; 3];
        let mut direction = [[0.0; 3]; 3];
        for a in 0..3 {
            let col = [-affine[0][a], -affine[1][a], affine[2][a]];
            let n = (col[0] * col[0] + col[1] * col[1] + col[2] * col[2]).sqrt();
            if !(n.is_finite() && n > 0.0) {
                return Err(Error::Input(format!(
                    "the image affine has a zero or invalid column {a}; the file's geometry is broken"
                )));
            }
            spacing[a] = n;
            direction[a] = [col[0] / n, col[1] / n, col[2] / n];
        }
        Ok(Grid {
            dims,
            spacing,
            origin: [-affine[0][3], -affine[1][3], affine[2][3]],
            direction,
        })
    }

    /// The grid of the box `[lo, lo + dims)` of this grid (same spacing and
    /// directions, origin moved). `lo` may be negative (padding).
    pub fn sub_grid(&self, lo: [isize; 3], dims: [usize; 3]) -> Grid {
        let origin = self.index_to_lps([lo[0] as f64, lo[1] as f64, lo[2] as f64]);
        Grid {
            dims,
            spacing: self.spacing,
            origin,
            direction: self.direction,
        }
    }

    /// How to pair the voxels along index axis `a` two by two the same way
    /// whichever way round the axis is stored: voxel `i` goes to pair
    /// `(i + offset) / 2`. The pairs are fixed in the patient's space (by
    /// the voxel's place along the axis, counted in voxels from the patient
    /// origin, sign chosen by the direction's largest component), so a
    /// flipped, transposed or shifted grid over the same voxels pairs them
    /// alike.
    pub fn pair_offset(&self, a: usize) -> usize {
        let d = self.direction[a];
        let sign = if self.pair_pick(a) == 1 { -1.0 } else { 1.0 };
        let along: f64 = (0..3).map(|i| self.origin[i] * d[i] * sign).sum();
        // The first voxel's place, in voxels (rounded away from the
        // half-voxel, where storage orders would round apart).
        let first = (along / self.spacing[a] + 0.25).floor() as i64;
        usize::from((first.rem_euclid(2) == 0) != (sign > 0.0))
    }

    /// Which voxel of each pair of [`Grid::pair_offset`] along axis `a` is
    /// the same one whichever way round the axis is stored: 0 the first in
    /// index order, 1 the second (the axis runs against the patient axis
    /// it is closest to).
    pub fn pair_pick(&self, a: usize) -> usize {
        let d = self.direction[a];
        let k = (0..3)
            .max_by(|&i, &j| d[i].abs().total_cmp(&d[j].abs()))
            .unwrap_or(a);
        usize::from(d[k] < 0.0)
    }

    /// Index axis most aligned with the patient's superior–inferior axis (the
    /// "axial" slice axis).
    pub fn axial_axis(&self) -> usize {
        (0..3)
            .max_by(|&a, &b| {
                self.direction[a][2]
                    .abs()
                    .total_cmp(&self.direction[b][2].abs())
            })
            .unwrap_or(2)
    }

    /// True when two grids describe the same voxels (within 1e-3 mm / 1e-4).
    pub fn same_as(&self, other: &Grid) -> bool {
        let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol;
        self.dims == other.dims
            && (0..3).all(|a| {
                close(self.spacing[a], other.spacing[a], 1e-4)
                    && close(self.origin[a], other.origin[a], 1e-3)
                    && (0..3).all(|c| close(self.direction[a][c], other.direction[a][c], 1e-4))
            })
    }
}

pub(crate) fn det3(m: &[[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

pub(crate) fn invert3(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let d = det3(m);
    if !(d.is_finite() && d.abs() > 1e-12) {
        return None;
    }
    let mut inv = [[0.0; 3]; 3];
    for r in 0..3 {
        for c in 0..3 {
            // Cofactor of (c, r), transposed.
            let (r1, r2) = ((c + 1) % 3, (c + 2) % 3);
            let (c1, c2) = ((r + 1) % 3, (r + 2) % 3);
            inv[r][c] = (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / d;
        }
    }
    Some(inv)
}

/// A 3D array of voxels on a [`Grid`].
#[derive(Clone, Debug, PartialEq)]
pub struct Volume<T> {
    pub grid: Grid,
    pub data: Vec<T>,
}

/// A binary mask: 0 outside, 1 inside.
pub type Mask = Volume<u8>;

impl<T: Copy + Send + Sync> Volume<T> {
    /// Wraps data on a grid; fails if the length does not match.
    pub fn new(grid: Grid, data: Vec<T>) -> Result<Self> {
        if data.len() != grid.len() {
            return Err(Error::Input(format!(
                "volume data has {} values but its grid {:?} needs {}",
                data.len(),
                grid.dims,
                grid.len()
            )));
        }
        Ok(Volume { grid, data })
    }

    /// A volume with every voxel set to `value`.
    pub fn filled(grid: Grid, value: T) -> Self {
        let data = vec![value; grid.len()];
        Volume { grid, data }
    }

    pub fn dims(&self) -> [usize; 3] {
        self.grid.dims
    }

    #[inline]
    pub fn get(&self, x: usize, y: usize, z: usize) -> T {
        self.data[self.grid.index(x, y, z)]
    }

    #[inline]
    pub fn set(&mut self, x: usize, y: usize, z: usize, v: T) {
        let i = self.grid.index(x, y, z);
        self.data[i] = v;
    }

    /// The box `[lo, hi)` as a new volume (placed correctly in patient space).
    pub fn crop(&self, lo: [usize; 3], hi: [usize; 3]) -> Volume<T> {
        let dims = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
        let grid = self
            .grid
            .sub_grid([lo[0] as isize, lo[1] as isize, lo[2] as isize], dims);
        let mut data = Vec::with_capacity(grid.len());
        for z in lo[2]..hi[2] {
            for y in lo[1]..hi[1] {
                let start = self.grid.index(lo[0], y, z);
                data.extend_from_slice(&self.data[start..start + dims[0]]);
            }
        }
        Volume { grid, data }
    }

    /// [`crop`](Self::crop) in this volume's own buffer: the box's rows are
    /// moved to its front in order and the rest released, so no new memory
    /// is mapped (on the machines measured, faulting fresh pages in costs ten
    /// times rewriting mapped ones).
    pub fn into_crop(mut self, lo: [usize; 3], hi: [usize; 3]) -> Volume<T> {
        let dims = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
        let grid = self
            .grid
            .sub_grid([lo[0] as isize, lo[1] as isize, lo[2] as isize], dims);
        let mut dst = 0;
        for z in lo[2]..hi[2] {
            for y in lo[1]..hi[1] {
                // Never behind the rows already moved: `dst` ≤ `start`.
                let start = self.grid.index(lo[0], y, z);
                self.data.copy_within(start..start + dims[0], dst);
                dst += dims[0];
            }
        }
        self.data.truncate(dst);
        self.data.shrink_to_fit();
        Volume {
            grid,
            data: self.data,
        }
    }

    /// Pads each side of axis `a` with `pad[a]` voxels of `value`.
    pub fn pad(&self, pad: [usize; 3], value: T) -> Volume<T> {
        let d = self.grid.dims;
        let dims = [d[0] + 2 * pad[0], d[1] + 2 * pad[1], d[2] + 2 * pad[2]];
        let grid = self.grid.sub_grid(
            [-(pad[0] as isize), -(pad[1] as isize), -(pad[2] as isize)],
            dims,
        );
        let mut data = vec![value; grid.len()];
        for z in 0..d[2] {
            for y in 0..d[1] {
                let src = self.grid.index(0, y, z);
                let dst = grid.index(pad[0], y + pad[1], z + pad[2]);
                data[dst..dst + d[0]].copy_from_slice(&self.data[src..src + d[0]]);
            }
        }
        Volume { grid, data }
    }

    /// Writes `inner` (whose grid is a sub-box of this one's starting at
    /// voxel `lo`) into this volume.
    pub fn paste(&mut self, inner: &Volume<T>, lo: [usize; 3]) {
        use rayon::prelude::*;
        let d = inner.grid.dims;
        let [nx, ny, _] = self.grid.dims;
        let (plane, inner_plane) = (nx * ny, d[0] * d[1]);
        if inner_plane == 0 || d[2] == 0 {
            return;
        }
        // Slices in parallel (a fresh zero volume is faulted in as it is
        // written).
        self.data[lo[2] * plane..(lo[2] + d[2]) * plane]
            .par_chunks_mut(plane)
            .zip(inner.data.par_chunks(inner_plane))
            .for_each(|(dst, src)| {
                for (y, row) in src.chunks_exact(d[0]).enumerate() {
                    let at = (y + lo[1]) * nx + lo[0];
                    dst[at..at + d[0]].copy_from_slice(row);
                }
            });
    }

    /// A volume of the same grid with `f` applied to every voxel (in parallel).
    pub fn map<U: Copy + Send + Sync>(&self, f: impl Fn(T) -> U + Sync) -> Volume<U> {
        use rayon::prelude::*;
        let data = self.data.par_iter().map(|&v| f(v)).collect();
        Volume {
            grid: self.grid.clone(),
            data,
        }
    }
}

impl Mask {
    /// Number of voxels set.
    pub fn count(&self) -> usize {
        use rayon::prelude::*;
        self.data
            .par_chunks(1 << 16)
            .map(|c| c.iter().filter(|&&v| v != 0).count())
            .sum()
    }

    /// Volume of the set voxels, mm³.
    pub fn volume_mm3(&self) -> f64 {
        self.count() as f64 * self.grid.voxel_volume_mm3()
    }

    /// Inclusive-exclusive bounding box `[lo, hi)` of the set voxels, or `None` if empty.
    pub fn bounding_box(&self) -> Option<([usize; 3], [usize; 3])> {
        self.bounding_box_in([0; 3], self.grid.dims)
    }

    /// [`Volume::bounding_box`] of the set voxels within the box
    /// `[within_lo, within_hi)` (clipped to the grid), reading only that box:
    /// the whole bounding box when nothing is set outside it.
    pub fn bounding_box_in(
        &self,
        within_lo: [usize; 3],
        within_hi: [usize; 3],
    ) -> Option<([usize; 3], [usize; 3])> {
        use rayon::prelude::*;
        let [nx, ny, nz] = self.grid.dims;
        let hi: [usize; 3] = std::array::from_fn(|a| within_hi[a].min(self.grid.dims[a]));
        let lo = within_lo;
        if (0..3).any(|a| lo[a] >= hi[a]) || nz == 0 {
            return None;
        }
        // Per slice (in parallel): [x_lo, x_hi, y_lo, y_hi] of its set voxels.
        let per_slice = |z: usize| {
            let plane = &self.data[z * nx * ny..(z + 1) * nx * ny];
            let mut b: Option<([usize; 3], [usize; 3])> = None;
            for y in lo[1]..hi[1] {
                let row = &plane[y * nx + lo[0]..y * nx + hi[0]];
                let Some(first) = first_set(row) else {
                    continue;
                };
                let (first, last) = (lo[0] + first, lo[0] + last_set(row).unwrap_or(first));
                let (l, h) = b.get_or_insert(([first, y, z], [last + 1, y + 1, z + 1]));
                l[0] = l[0].min(first);
                h[0] = h[0].max(last + 1);
                h[1] = y + 1;
            }
            b
        };
        (lo[2]..hi[2]).into_par_iter().map(per_slice).reduce(
            || None,
            |a, b| match (a, b) {
                (Some((l1, h1)), Some((l2, h2))) => Some((
                    std::array::from_fn(|i| l1[i].min(l2[i])),
                    std::array::from_fn(|i| h1[i].max(h2[i])),
                )),
                (a, None) => a,
                (None, b) => b,
            },
        )
    }
}

/// `n` zeros in a buffer that Linux is asked to back with transparent huge
/// pages (2 MiB) where it allows them (`madvise`; a hint, no effect where
/// huge pages are off). For the CT volume, written once front to back right
/// after allocation: 512× fewer page faults than with 4 KiB pages.
pub(crate) fn zeroed_f32_huge(n: usize) -> Vec<f32> {
    let v = vec![0f32; n];
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = (v.as_ptr() as usize).next_multiple_of(HUGE);
        let end = (v.as_ptr() as usize + n * 4) / HUGE * HUGE;
        if end > start {
            // SAFETY: the range lies inside `v`'s allocation; the advice
            // changes no contents, and a failure is harmless.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    v
}

/// Index of the first non-zero byte (32 at a time, vectorised).
pub(crate) fn first_set(row: &[u8]) -> Option<usize> {
    let mut at = 0;
    for c in row.chunks(32) {
        if c.iter().fold(0u8, |a, &v| a | v) != 0 {
            return c.iter().position(|&v| v != 0).map(|i| at + i);
        }
        at += c.len();
    }
    None
}

/// Index of the first zero byte (32 at a time, vectorised).
pub(crate) fn first_zero(row: &[u8]) -> Option<usize> {
    let mut at = 0;
    for c in row.chunks(32) {
        if c.iter().fold(u8::MAX, |a, &v| a.min(v)) == 0 {
            return c.iter().position(|&v| v == 0).map(|i| at + i);
        }
        at += c.len();
    }
    None
}

/// Index of the last non-zero byte.
pub(crate) fn last_set(row: &[u8]) -> Option<usize> {
    let mut end = row.len();
    for c in row.rchunks(32) {
        end -= c.len();
        if c.iter().fold(0u8, |a, &v| a | v) != 0 {
            return c.iter().rposition(|&v| v != 0).map(|i| end + i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oblique_grid() -> Grid {
        let c = (30f64).to_radians().cos();
        let s = (30f64).to_radians().sin();
        Grid {
            dims: [4, 5, 6],
            spacing: [0.5, 0.7, 2.0],
            origin: [10.0, -20.0, 30.0],
            direction: [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]],
        }
    }

    #[test]
    fn index_to_lps_and_back() {
        let g = oblique_grid();
        let p = g.index_to_lps([1.0, 2.0, 3.0]);
        let i = g.lps_to_index(p).unwrap();
        for a in 0..3 {
            assert!((i[a] - [1.0, 2.0, 3.0][a]).abs() < 1e-9);
        }
        // Known point: along z only.
        let p = g.index_to_lps([0.0, 0.0, 2.0]);
        assert!((p[2] - 34.0).abs() < 1e-12 && (p[0] - 10.0).abs() < 1e-12);
    }

    #[test]
    fn ras_affine_round_trip() {
        let g = oblique_grid();
        let a = g.ras_affine();
        // RAS x of origin is -L.
        assert_eq!(a[0][3], -10.0);
        assert_eq!(a[1][3], 20.0);
        let back = Grid::from_ras_affine(g.dims, &a).unwrap();
        assert!(back.same_as(&g));
    }

    /// A row of voxels stored either way round (and shifted by one voxel in
    /// the patient) pairs the same voxels and picks the same one of each
    /// pair, for odd and even lengths.
    #[test]
    fn pairs_are_the_same_whichever_way_round() {
        for (n, x0) in [(5usize, 0.0), (5, 0.5), (6, -12.5), (7, 3.0)] {
            let g = Grid::new([n, 1, 1], [0.5, 1.0, 1.0], [x0, 0.0, 0.0]);
            let mut f = g.clone();
            f.origin[0] = x0 + 0.5 * (n - 1) as f64;
            f.direction[0] = [-1.0, 0.0, 0.0];
            // Per voxel (in g's order): its pair's voxels and the picked one.
            let pairs = |g: &Grid, to_g: &dyn Fn(usize) -> usize| {
                let (off, pick) = (g.pair_offset(0), g.pair_pick(0));
                let mut out = vec![(Vec::new(), usize::MAX); n];
                for i in 0..n {
                    let c = (i + off) / 2;
                    let mut members: Vec<usize> =
                        (0..n).filter(|&j| (j + off) / 2 == c).map(to_g).collect();
                    members.sort_unstable();
                    let first = (2 * c).saturating_sub(off);
                    let picked = if (2 * c + pick).checked_sub(off).is_some_and(|k| k < n) {
                        2 * c + pick - off
                    } else {
                        first
                    };
                    out[to_g(i)] = (members, to_g(picked));
                }
                out
            };
            assert_eq!(
                pairs(&g, &|i| i),
                pairs(&f, &|i| n - 1 - i),
                "{n} voxels from {x0} mm"
            );
        }
    }

    #[test]
    fn crop_pad_paste_keep_world_positions() {
        let g = oblique_grid();
        let data: Vec<u16> = (0..g.len() as u16).collect();
        let v = Volume::new(g.clone(), data).unwrap();
        let c = v.crop([1, 2, 3], [3, 5, 6]);
        assert_eq!(c.get(0, 0, 0), v.get(1, 2, 3));
        // In place, the same volume; every box, including empty and whole ones.
        let d = g.dims;
        for (lo, hi) in [
            ([1, 2, 3], [3, 5, 6]),
            ([0, 0, 0], d),
            ([0, 1, 0], [d[0], d[1], 1]),
            ([2, 2, 2], [2, 4, 4]),
            ([d[0] - 1, d[1] - 1, d[2] - 1], d),
        ] {
            assert_eq!(v.clone().into_crop(lo, hi), v.crop(lo, hi), "{lo:?}–{hi:?}");
        }
        let w = c.grid.index_to_lps([0.0; 3]);
        let w0 = g.index_to_lps([1.0, 2.0, 3.0]);
        for a in 0..3 {
            assert!((w[a] - w0[a]).abs() < 1e-9);
        }
        let p = c.pad([1, 1, 1], 0);
        assert_eq!(p.get(1, 1, 1), v.get(1, 2, 3));
        assert_eq!(p.get(0, 0, 0), 0);
        let mut z = Volume::filled(g, 0u16);
        z.paste(&c, [1, 2, 3]);
        assert_eq!(z.get(2, 4, 5), v.get(2, 4, 5));
        assert_eq!(z.get(0, 0, 0), 0);
        // The box holds the pasted volume, and nothing else was written.
        assert_eq!(z.crop([1, 2, 3], [3, 5, 6]).data, c.data);
        let nonzero = |d: &[u16]| d.iter().filter(|&&x| x != 0).count();
        assert_eq!(nonzero(&z.data), nonzero(&c.data));
    }

    #[test]
    fn bounding_box_and_mirroring() {
        let mut m = Mask::filled(Grid::new([5, 5, 5], [1.0; 3], [0.0; 3]), 0);
        assert!(m.bounding_box().is_none());
        m.set(1, 2, 3, 1);
        m.set(3, 2, 4, 1);
        assert_eq!(m.bounding_box(), Some(([1, 2, 3], [4, 3, 5])));
        assert_eq!(m.count(), 2);
        assert!(!m.grid.is_mirrored());
        m.grid.direction[2] = [0.0, 0.0, -1.0];
        assert!(m.grid.is_mirrored());
    }

    #[test]
    fn bounding_box_matches_brute_force() {
        let g = Grid::new([77, 9, 6], [1.0; 3], [0.0; 3]);
        for (i, pts) in [
            vec![[0, 0, 0]],
            vec![[76, 8, 5]],
            vec![[40, 3, 2], [33, 7, 4], [70, 1, 4]],
            vec![[31, 4, 1], [32, 4, 1], [64, 5, 3]],
        ]
        .into_iter()
        .enumerate()
        {
            let mut m = Mask::filled(g.clone(), 0);
            for p in &pts {
                m.set(p[0], p[1], p[2], 1);
            }
            let lo = std::array::from_fn(|a| pts.iter().map(|p| p[a]).min().unwrap());
            let hi = std::array::from_fn(|a| pts.iter().map(|p| p[a] + 1).max().unwrap());
            assert_eq!(m.bounding_box(), Some((lo, hi)), "case {i}");
            // Within a box holding every set voxel: the same; within one
            // that cuts some off: the box of those inside.
            assert_eq!(m.bounding_box_in(lo, hi), Some((lo, hi)), "case {i}");
            let cut = [lo[0], lo[1], lo[2] + 1];
            let inside: Vec<&[usize; 3]> = pts.iter().filter(|p| p[2] > lo[2]).collect();
            let expect = (!inside.is_empty()).then(|| {
                let l: [usize; 3] =
                    std::array::from_fn(|a| inside.iter().map(|p| p[a]).min().unwrap());
                let h: [usize; 3] =
                    std::array::from_fn(|a| inside.iter().map(|p| p[a] + 1).max().unwrap());
                (l, h)
            });
            assert_eq!(m.bounding_box_in(cut, hi), expect, "case {i}, cut");
        }
    }

    #[test]
    fn chunked_byte_scans_equal_plain_ones() {
        // Lengths around the 32-byte chunks, sparse and dense rows.
        let mut state = 11u64;
        for n in [0usize, 1, 31, 32, 33, 64, 95, 200] {
            for density in [0u64, 1, 8, 15, 16] {
                let row: Vec<u8> = (0..n)
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                        u8::from((state >> 60) < density)
                    })
                    .collect();
                let case = format!("n {n}, density {density}/16");
                assert_eq!(first_set(&row), row.iter().position(|&v| v != 0), "{case}");
                assert_eq!(last_set(&row), row.iter().rposition(|&v| v != 0), "{case}");
                assert_eq!(first_zero(&row), row.iter().position(|&v| v == 0), "{case}");
            }
        }
    }
}
