//! Binary morphology with ellipsoidal structuring elements in mm (paper step 5:
//! closing with radius 1.2 mm).
//!
//! The structuring element of radius `r` mm is the set of voxel offsets
//! `(dx, dy, dz)` with `(dx·sx)² + (dy·sy)² + (dz·sz)² ≤ r²`: a ball in patient
//! space, an ellipsoid in voxels when the spacing is anisotropic.
//!
//! Each operation works row by row: for every offset of the element, a whole
//! source row shifted by `dx` is OR-ed (dilation) or AND-ed (erosion) into the
//! output row, which the compiler vectorises; slices run in parallel.

use crate::{Error, Mask, Result};
use rayon::prelude::*;

/// Offsets of the ellipsoid of radius `radius_mm` on a grid of `spacing` mm.
pub fn ellipsoid(radius_mm: f64, spacing: [f64; 3]) -> Vec<[isize; 3]> {
    let ext: Vec<isize> = (0..3)
        .map(|a| (radius_mm / spacing[a] + 1e-9).floor() as isize)
        .collect();
    let r2 = radius_mm * radius_mm * (1.0 + 1e-12);
    let mut se = Vec::new();
    for dz in -ext[2]..=ext[2] {
        for dy in -ext[1]..=ext[1] {
            for dx in -ext[0]..=ext[0] {
                let d2 = (dx as f64 * spacing[0]).powi(2)
                    + (dy as f64 * spacing[1]).powi(2)
                    + (dz as f64 * spacing[2]).powi(2);
                if d2 <= r2 {
                    se.push([dx, dy, dz]);
                }
            }
        }
    }
    se
}

/// How far the element reaches along each axis, in voxels.
fn reach(se: &[[isize; 3]]) -> [usize; 3] {
    let mut r = [0usize; 3];
    for o in se {
        for a in 0..3 {
            r[a] = r[a].max(o[a].unsigned_abs());
        }
    }
    r
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Dilate,
    Erode,
}

/// Applies a (symmetric) structuring element. Outside the volume counts as 0
/// for both operations, like `scipy.ndimage` with `border_value=0`.
fn apply(mask: &Mask, se: &[[isize; 3]], op: Op) -> Mask {
    let [nx, ny, nz] = mask.grid.dims;
    let plane = nx * ny;
    let mut out = vec![0u8; mask.data.len()];
    out.par_chunks_mut(plane.max(1))
        .enumerate()
        .for_each(|(z, slice)| {
            if op == Op::Erode {
                slice.fill(1);
            }
            for y in 0..ny {
                let dst = &mut slice[y * nx..(y + 1) * nx];
                for o in se {
                    let (sy, sz) = (y as isize + o[1], z as isize + o[2]);
                    if sy < 0 || sz < 0 || sy >= ny as isize || sz >= nz as isize {
                        if op == Op::Erode {
                            dst.fill(0);
                            break;
                        }
                        continue;
                    }
                    let start = (sz as usize * ny + sy as usize) * nx;
                    let src = &mask.data[start..start + nx];
                    shift_combine(dst, src, o[0], op);
                }
            }
        });
    Mask {
        grid: mask.grid.clone(),
        data: out,
    }
}

/// `dst[x] op= src[x + dx]`, with out-of-row source positions counting as 0.
#[inline]
fn shift_combine(dst: &mut [u8], src: &[u8], dx: isize, op: Op) {
    let n = dst.len();
    let k = dx.unsigned_abs().min(n);
    let (d, s, edge) = if dx >= 0 {
        (&mut dst[..n - k], &src[k..], n - k..n)
    } else {
        (&mut dst[k..], &src[..n - k], 0..k)
    };
    match op {
        Op::Dilate => d.iter_mut().zip(s).for_each(|(a, b)| *a |= b),
        Op::Erode => {
            d.iter_mut().zip(s).for_each(|(a, b)| *a &= b);
            dst[edge].fill(0);
        }
    }
}

fn check_radius(radius_mm: f64) -> Result<()> {
    if radius_mm.is_finite() && radius_mm >= 0.0 {
        Ok(())
    } else {
        Err(Error::Parameter(format!(
            "morphology radius {radius_mm} mm must be ≥ 0"
        )))
    }
}

/// Dilation by a ball of `radius_mm` (outside the volume is background).
pub fn dilate(mask: &Mask, radius_mm: f64) -> Result<Mask> {
    check_radius(radius_mm)?;
    Ok(apply(
        mask,
        &ellipsoid(radius_mm, mask.grid.spacing),
        Op::Dilate,
    ))
}

/// Erosion by a ball of `radius_mm` (outside the volume is background, so
/// objects touching the border are eroded from it).
pub fn erode(mask: &Mask, radius_mm: f64) -> Result<Mask> {
    check_radius(radius_mm)?;
    Ok(apply(
        mask,
        &ellipsoid(radius_mm, mask.grid.spacing),
        Op::Erode,
    ))
}

/// Morphological closing (dilation then erosion) by a ball of `radius_mm`.
///
/// The mask is first padded with background by the element's reach, so the
/// result equals the closing of the mask extended with background to infinity:
/// objects touching the volume border are not eroded there, and closing never
/// removes a voxel (`mask ⊆ closing(mask)`). Only the bounding box of the set
/// voxels plus the reach is processed.
///
/// The work is done on a bit-packed copy of that box (64 voxels per word):
/// the ellipsoid is a union of runs `dx ∈ [−a, a]` along x, one per `(dy, dz)`,
/// so each row is first spread along x by every run length `a` (word shifts),
/// then the spread rows of the neighbouring `(dy, dz)` are OR-ed (dilation)
/// or AND-ed (erosion): about a dozen word operations per 64 voxels.
pub fn closing(mask: &Mask, radius_mm: f64) -> Result<Mask> {
    check_radius(radius_mm)?;
    closing_into(mask.clone(), radius_mm)
}

/// [`closing`] of a mask the caller no longer needs: the closing's voxels
/// are added to it in place (the closing contains the mask), which saves a
/// full-size copy.
pub fn closing_into(mask: Mask, radius_mm: f64) -> Result<Mask> {
    Ok(closing_into_counted(mask, radius_mm)?.0)
}

/// [`closing_into`], with the number of set voxels before and after the
/// closing: counted on the way (from the bit-packed copy and the voxels
/// added), not by passes of their own over the mask.
pub fn closing_into_counted(mut mask: Mask, radius_mm: f64) -> Result<(Mask, usize, usize)> {
    check_radius(radius_mm)?;
    let se = ellipsoid(radius_mm, mask.grid.spacing);
    let Some((lo, hi)) = mask.bounding_box() else {
        return Ok((mask, 0, 0));
    };
    if se.len() <= 1 {
        let n = mask.count();
        return Ok((mask, n, n));
    }
    let r = reach(&se);
    let (before, added) = match Runs::of(&se) {
        Some(runs) if r[0] < 64 => closing_packed(&mut mask, &runs, lo, hi, r),
        _ => {
            let before = mask.count();
            closing_bytes(&mut mask, &se, lo, hi, r);
            (before, mask.count() - before)
        }
    };
    Ok((mask, before, before + added))
}

/// The byte-per-voxel closing (any structuring element), in place.
fn closing_bytes(
    mask: &mut Mask,
    se: &[[isize; 3]],
    lo: [usize; 3],
    hi: [usize; 3],
    r: [usize; 3],
) {
    // Work on the bounding box padded by twice the reach: the dilation needs
    // `r` of room, and the erosion of those voxels reads `r` further.
    let roi = mask.crop(lo, hi).pad([2 * r[0], 2 * r[1], 2 * r[2]], 0);
    let closed = apply(&apply(&roi, se, Op::Dilate), se, Op::Erode);
    // Paste back the part that lies inside the original volume.
    let out = mask;
    let d = out.grid.dims;
    for z in 0..closed.grid.dims[2] {
        let gz = z as isize + lo[2] as isize - 2 * r[2] as isize;
        if gz < 0 || gz >= d[2] as isize {
            continue;
        }
        for y in 0..closed.grid.dims[1] {
            let gy = y as isize + lo[1] as isize - 2 * r[1] as isize;
            if gy < 0 || gy >= d[1] as isize {
                continue;
            }
            let x0 = lo[0] as isize - 2 * r[0] as isize;
            let src = &closed.data[closed.grid.index(0, y, z)..][..closed.grid.dims[0]];
            let dst_row = out.grid.index(0, gy as usize, gz as usize);
            for (x, &v) in src.iter().enumerate() {
                let gx = x0 + x as isize;
                if gx >= 0 && gx < d[0] as isize {
                    out.data[dst_row + gx as usize] = v;
                }
            }
        }
    }
}

/// A symmetric structuring element as runs along x: `(dy, dz, a)` stands for
/// the offsets `(dx, dy, dz)` with `dx ∈ [−a, a]`.
struct Runs {
    runs: Vec<(isize, isize, usize)>,
    /// The distinct run half-lengths `a`, ascending.
    lengths: Vec<usize>,
}

impl Runs {
    /// `None` when some `(dy, dz)` line of the element is not one run centred
    /// on `dx = 0`.
    fn of(se: &[[isize; 3]]) -> Option<Runs> {
        let mut lines: Vec<(isize, isize)> = se.iter().map(|o| (o[1], o[2])).collect();
        lines.sort_unstable();
        lines.dedup();
        let mut runs = Vec::with_capacity(lines.len());
        for (dy, dz) in lines {
            let mut dxs: Vec<isize> = se
                .iter()
                .filter(|o| o[1] == dy && o[2] == dz)
                .map(|o| o[0])
                .collect();
            dxs.sort_unstable();
            dxs.dedup();
            let a = dxs[dxs.len() - 1];
            if a < 0 || dxs[0] != -a || dxs.len() != 2 * a as usize + 1 {
                return None;
            }
            runs.push((dy, dz, a as usize));
        }
        let mut lengths: Vec<usize> = runs.iter().map(|r| r.2).collect();
        lengths.sort_unstable();
        lengths.dedup();
        Some(Runs { runs, lengths })
    }
}

/// A bit-packed box: rows of `words` u64 along x (bit `x % 64` of word
/// `x / 64`), `ny` rows per plane, `nz` planes.
struct Packed {
    words: usize,
    ny: usize,
    nz: usize,
    data: Vec<u64>,
}

impl Packed {
    fn zeros(words: usize, ny: usize, nz: usize) -> Packed {
        Packed {
            words,
            ny,
            nz,
            data: vec![0; words * ny * nz],
        }
    }

    fn plane(&self) -> usize {
        self.words * self.ny
    }

    /// Row `(y, z)`, or `None` outside the box.
    #[inline]
    fn row(&self, y: isize, z: isize) -> Option<&[u64]> {
        if y < 0 || z < 0 || y >= self.ny as isize || z >= self.nz as isize {
            return None;
        }
        let start = (z as usize * self.ny + y as usize) * self.words;
        Some(&self.data[start..start + self.words])
    }
}

/// `out[x] = OR (dilate) or AND (erode) of src[x + s], |s| ≤ a`, with
/// positions outside the row counting as 0.
#[inline]
fn spread_row(src: &[u64], a: usize, op: Op, out: &mut [u64]) {
    out.copy_from_slice(src);
    let n = src.len();
    for s in 1..=a {
        let back = 64 - s as u32;
        let s = s as u32;
        for i in 0..n {
            // Bit x of `right` is src[x + s]; of `left`, src[x − s].
            let right = (src[i] >> s) | src.get(i + 1).map_or(0, |w| w << back);
            let left = (src[i] << s) | if i > 0 { src[i - 1] >> back } else { 0 };
            match op {
                Op::Dilate => out[i] |= right | left,
                Op::Erode => out[i] &= right & left,
            }
        }
    }
}

/// One dilation or erosion of a packed box by `runs` (outside the box is 0).
fn apply_packed(src: &Packed, runs: &Runs, op: Op) -> Packed {
    let (w, ny, nz) = (src.words, src.ny, src.nz);
    let plane = src.plane();
    // Every row spread along x by each run length.
    let spread: Vec<Packed> = runs
        .lengths
        .iter()
        .map(|&a| {
            let mut s = Packed::zeros(w, ny, nz);
            if plane > 0 {
                s.data
                    .par_chunks_mut(plane)
                    .zip(src.data.par_chunks(plane))
                    .for_each(|(dst, sp)| {
                        for (d, r) in dst.chunks_exact_mut(w).zip(sp.chunks_exact(w)) {
                            spread_row(r, a, op, d);
                        }
                    });
            }
            s
        })
        .collect();
    let by_len = |a: usize| &spread[runs.lengths.binary_search(&a).unwrap_or(0)];
    let mut out = Packed::zeros(w, ny, nz);
    if plane == 0 {
        return out;
    }
    out.data
        .par_chunks_mut(plane)
        .enumerate()
        .for_each(|(z, dst)| {
            for (y, d) in dst.chunks_exact_mut(w).enumerate() {
                if op == Op::Erode {
                    d.fill(u64::MAX);
                }
                for &(dy, dz, a) in &runs.runs {
                    match by_len(a).row(y as isize + dy, z as isize + dz) {
                        Some(s) => match op {
                            Op::Dilate => d.iter_mut().zip(s).for_each(|(o, v)| *o |= v),
                            Op::Erode => d.iter_mut().zip(s).for_each(|(o, v)| *o &= v),
                        },
                        None if op == Op::Erode => {
                            d.fill(0);
                            break;
                        }
                        None => {}
                    }
                }
            }
        });
    out
}

/// The closing on a bit-packed copy of the bounding box `[lo, hi)` padded by
/// at least twice the reach `r` (as [`closing_bytes`]). Along x the box
/// starts on a multiple of 64 voxels (possibly before the volume), so whole
/// words pack from 64 bytes at a time.
/// Returns the set voxels before and the voxels added.
fn closing_packed(
    mask: &mut Mask,
    runs: &Runs,
    lo: [usize; 3],
    hi: [usize; 3],
    r: [usize; 3],
) -> (usize, usize) {
    let [nx, ny, _] = mask.grid.dims;
    // Box origin (may lie outside the volume) and size.
    let mut o: [isize; 3] = std::array::from_fn(|a| lo[a] as isize - 2 * r[a] as isize);
    o[0] = o[0].div_euclid(64) * 64;
    let n: [usize; 3] = std::array::from_fn(|a| ((hi[a] + 2 * r[a]) as isize - o[a]) as usize);
    let words = n[0].div_ceil(64);
    // Pack the mask's bounding box (the padding stays 0; outside the
    // bounding box the mask is 0).
    let mut packed = Packed::zeros(words, n[1], n[2]);
    let plane = packed.plane();
    packed
        .data
        .par_chunks_mut(plane)
        .enumerate()
        .for_each(|(bz, dst)| {
            let z = bz as isize + o[2];
            if z < lo[2] as isize || z >= hi[2] as isize {
                return;
            }
            for y in lo[1]..hi[1] {
                let by = (y as isize - o[1]) as usize;
                let row = &mut dst[by * words..(by + 1) * words];
                let start = (z as usize * ny + y) * nx;
                let src = &mask.data[start..start + nx];
                for (i, w) in row.iter_mut().enumerate() {
                    let x0 = o[0] + 64 * i as isize;
                    if x0 + 64 <= lo[0] as isize || x0 >= hi[0] as isize {
                        continue;
                    }
                    *w = if x0 >= 0 && x0 as usize + 64 <= nx {
                        pack_word(&src[x0 as usize..x0 as usize + 64])
                    } else {
                        let mut v = 0u64;
                        for b in 0..64 {
                            let x = x0 + b;
                            if x >= 0 && (x as usize) < nx && src[x as usize] != 0 {
                                v |= 1 << b;
                            }
                        }
                        v
                    };
                }
            }
        });
    // (Every set voxel lies in the packed box, and only there.)
    let before: usize = packed
        .data
        .par_chunks(1 << 16)
        .map(|c| c.iter().map(|w| w.count_ones() as usize).sum::<usize>())
        .sum();
    let closed = apply_packed(&apply_packed(&packed, runs, Op::Dilate), runs, Op::Erode);
    drop(packed);
    // The closing's voxels inside the volume set to 1 (the closing contains
    // the mask, so only voxels are added).
    let added = mask
        .data
        .par_chunks_mut(nx * ny)
        .enumerate()
        .map(|(z, dst)| {
            let mut added = 0;
            for y in 0..ny {
                let Some(row) = closed.row(y as isize - o[1], z as isize - o[2]) else {
                    continue;
                };
                let out_row = &mut dst[y * nx..(y + 1) * nx];
                for (i, &w) in row.iter().enumerate() {
                    let mut bits = w;
                    while bits != 0 {
                        let b = bits.trailing_zeros() as isize;
                        bits &= bits - 1;
                        let x = o[0] + 64 * i as isize + b;
                        if x >= 0 && (x as usize) < nx {
                            let v = &mut out_row[x as usize];
                            let new = u8::from(*v == 0);
                            added += new as usize;
                            *v |= new;
                        }
                    }
                }
            }
            added
        })
        .sum();
    (before, added)
}

/// Bit `b` set where byte `b` of the 64 is non-zero.
#[inline]
fn pack_word(bytes: &[u8]) -> u64 {
    let mut v = 0u64;
    for (k, c) in bytes.chunks_exact(8).enumerate() {
        let mut t = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        if t == 0 {
            continue;
        }
        // Bit 0 of each byte := OR of its 8 bits (shifts bring down only
        // bits of the same byte into bit 0), then gather the 8 bit-0s.
        t |= t >> 4;
        t |= t >> 2;
        t |= t >> 1;
        t &= 0x0101_0101_0101_0101;
        v |= (t.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * k);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Grid;

    fn brute(mask: &Mask, se: &[[isize; 3]], dilate: bool) -> Mask {
        let d = mask.grid.dims;
        let mut out = mask.clone();
        for z in 0..d[2] {
            for y in 0..d[1] {
                for x in 0..d[0] {
                    let vals = se.iter().map(|o| {
                        let p = [x as isize + o[0], y as isize + o[1], z as isize + o[2]];
                        if (0..3).all(|a| p[a] >= 0 && p[a] < d[a] as isize) {
                            mask.get(p[0] as usize, p[1] as usize, p[2] as usize) != 0
                        } else {
                            false
                        }
                    });
                    let v = if dilate {
                        vals.into_iter().any(|b| b)
                    } else {
                        vals.into_iter().all(|b| b)
                    };
                    out.set(x, y, z, v as u8);
                }
            }
        }
        out
    }

    fn random_mask(dims: [usize; 3], spacing: [f64; 3], seed: u64, density: u64) -> Mask {
        let mut s = seed;
        let g = Grid::new(dims, spacing, [0.0; 3]);
        let data = (0..g.len())
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) % 100 < density) as u8
            })
            .collect();
        Mask::new(g, data).unwrap()
    }

    #[test]
    fn ellipsoid_is_a_ball_in_mm() {
        let se = ellipsoid(1.2, [0.5, 0.5, 1.0]);
        assert!(se.contains(&[2, 0, 0]) && se.contains(&[0, 0, 1]));
        assert!(!se.contains(&[3, 0, 0]) && !se.contains(&[0, 0, 2]));
        assert!(!se.contains(&[2, 0, 1])); // √(1² + 1²) = 1.41 mm > 1.2 mm
        assert!(se.contains(&[1, 1, 0]));
        assert_eq!(ellipsoid(0.4, [0.5, 0.5, 1.0]), vec![[0, 0, 0]]);
    }

    #[test]
    fn dilation_and_erosion_match_brute_force() {
        for seed in 0..4 {
            let m = random_mask([13, 9, 7], [0.5, 0.7, 1.3], seed, 30 + 10 * seed);
            let se = ellipsoid(1.4, m.grid.spacing);
            assert_eq!(dilate(&m, 1.4).unwrap(), brute(&m, &se, true));
            assert_eq!(erode(&m, 1.4).unwrap(), brute(&m, &se, false));
        }
    }

    #[test]
    fn counted_closing_counts_what_it_closes() {
        // Packed path (small reach), byte path (a reach of 64+ voxels along
        // x), an element of one voxel, an empty mask; values other than 1.
        for (k, (dims, spacing, radius)) in [
            ([70, 9, 7], [0.5, 0.7, 1.3], 1.4),
            ([140, 5, 3], [0.02, 3.0, 3.0], 1.3),
            ([9, 9, 9], [1.0, 1.0, 1.0], 0.3),
        ]
        .into_iter()
        .enumerate()
        {
            for density in [0, 3, 40] {
                let mut m = random_mask(dims, spacing, k as u64 + density, density);
                m.data.iter_mut().step_by(7).for_each(|v| *v *= 200);
                let want_before = m.count();
                let want = closing(&m, radius).unwrap();
                let (got, before, after) = closing_into_counted(m, radius).unwrap();
                assert_eq!(got, want, "case {k}, {density} %");
                assert_eq!((before, after), (want_before, want.count()), "case {k}");
            }
        }
    }

    /// Closing equals the brute-force closing of the mask embedded in a large
    /// background, and is extensive.
    #[test]
    fn closing_matches_zero_extended_brute_force() {
        for seed in 0..4 {
            let m = random_mask([11, 10, 6], [0.5, 0.6, 1.0], seed, 40);
            let c = closing(&m, 1.2).unwrap();
            let se = ellipsoid(1.2, m.grid.spacing);
            let p = m.pad([6, 6, 6], 0);
            let bc = brute(&brute(&p, &se, true), &se, false).crop([6, 6, 6], [17, 16, 12]);
            assert_eq!(c.data, bc.data, "seed {seed}");
            assert!(m.data.iter().zip(&c.data).all(|(&a, &b)| a <= b));
        }
    }

    /// A 1 mm gap between two slabs is bridged by a 1.2 mm closing whichever
    /// axis it lies along (anisotropic voxels); a 3 mm gap is not.
    #[test]
    fn closing_bridges_known_gap_in_mm() {
        let spacing = [0.5, 0.5, 1.0];
        for axis in 0..3 {
            for (gap_mm, bridged) in [(1.0, true), (3.0, false)] {
                let mut dims = [24, 24, 24];
                dims[axis] = (40.0 / spacing[axis]) as usize;
                let g = Grid::new(dims, spacing, [0.0; 3]);
                let mut m = Mask::filled(g, 0);
                let gap_vox = (gap_mm / spacing[axis]).round() as usize;
                let mid = dims[axis] / 2;
                for z in 4..dims[2] - 4 {
                    for y in 4..dims[1] - 4 {
                        for x in 4..dims[0] - 4 {
                            let c = [x, y, z][axis];
                            if c < mid || c >= mid + gap_vox {
                                m.set(x, y, z, 1);
                            }
                        }
                    }
                }
                let c = closing(&m, 1.2).unwrap();
                let mut centre = [12, 12, 12];
                centre[axis] = mid;
                let v = c.get(centre[0], centre[1], centre[2]);
                assert_eq!(v == 1, bridged, "axis {axis} gap {gap_mm} mm");
            }
        }
    }

    /// The bit-packed closing equals the byte-wise one on boxes wider than a
    /// word, with objects on every border, for several elements.
    #[test]
    fn packed_closing_equals_bytewise() {
        for (seed, (dims, spacing, radius)) in [
            ([150, 23, 9], [0.5, 0.5, 1.0], 1.2),
            ([70, 31, 12], [0.5, 0.7, 1.3], 1.4),
            ([200, 9, 7], [0.3, 0.9, 1.0], 2.5),
            ([64, 16, 5], [0.5, 0.5, 1.0], 1.2),
            ([129, 12, 6], [1.0, 1.0, 1.0], 3.1),
        ]
        .into_iter()
        .enumerate()
        {
            let m = random_mask(dims, spacing, seed as u64 + 11, 35);
            let se = ellipsoid(radius, spacing);
            let (lo, hi) = m.bounding_box().unwrap();
            let r = reach(&se);
            let runs = Runs::of(&se).unwrap();
            let (mut a, mut b) = (m.clone(), m.clone());
            closing_packed(&mut a, &runs, lo, hi, r);
            closing_bytes(&mut b, &se, lo, hi, r);
            assert_eq!(a, b, "case {seed}");
            // A sparse mask, bounding box away from the borders.
            let mut s = Mask::filled(m.grid.clone(), 0);
            for (i, &v) in m.data.iter().enumerate() {
                let [x, y, z] = m.grid.coords(i);
                if x > 20 && x < dims[0] - 9 && y > 2 && z > 1 && i % 3 == 0 {
                    s.data[i] = v;
                }
            }
            if let Some((lo, hi)) = s.bounding_box() {
                let (mut a, mut b) = (s.clone(), s.clone());
                closing_packed(&mut a, &runs, lo, hi, r);
                closing_bytes(&mut b, &se, lo, hi, r);
                assert_eq!(a, b, "sparse case {seed}");
            }
        }
    }

    #[test]
    fn pack_word_sets_the_non_zero_bytes() {
        let mut seed = 9u64;
        for _ in 0..200 {
            let bytes: Vec<u8> = (0..64)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(7);
                    let r = (seed >> 33) as u8;
                    if r % 3 == 0 {
                        r | 1
                    } else if r % 3 == 1 {
                        0
                    } else {
                        (r % 8).pow(2) & 0x80
                    }
                })
                .collect();
            let want = bytes
                .iter()
                .enumerate()
                .fold(0u64, |v, (b, &x)| v | (u64::from(x != 0) << b));
            assert_eq!(pack_word(&bytes), want);
        }
        let mut one = [0u8; 64];
        for b in 0..64 {
            for v in [1u8, 0x80, 0x10, 0xff] {
                one.fill(0);
                one[b] = v;
                assert_eq!(pack_word(&one), 1 << b);
            }
        }
    }

    #[test]
    fn border_touching_object_is_not_eroded() {
        let g = Grid::new([10, 10, 10], [0.5, 0.5, 1.0], [0.0; 3]);
        let mut m = Mask::filled(g, 0);
        for z in 0..10 {
            for y in 0..10 {
                for x in 0..4 {
                    m.set(x, y, z, 1);
                }
            }
        }
        assert_eq!(closing(&m, 1.2).unwrap(), m);
    }
}
