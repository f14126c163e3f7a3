//! Solid bone: the cancellous interior that thresholding leaves out, recovered
//! slice by slice (2D, in the axial plane).
//!
//! Two complementary tests, both in physical units:
//! - **Enclosure** ([`enclosure_counts`]): a pixel is enclosed when rays cast
//!   from it in the 8 in-plane directions meet bone within `reach_mm` in at
//!   least `need` of them. Unlike hole filling, this survives the gaps that
//!   partial volume and the basivertebral foramen leave in a thin cortex, which
//!   connect the body's interior to the canal or to the outside.
//! - **Holes** ([`holes_2d`]): background not connected to the slice border.
//!   A hole whose median HU is cancellous is filled whole (noise leaves some of
//!   its pixels below the limit); a low-density hole (the spinal canal: CSF,
//!   fat) only gets its pixels above the limit. Holes smaller than any canal
//!   (`small_hole_mm2`) are filled whatever their HU.
//!
//! Enclosed or hole pixels are added only where the smoothed CT is at least
//! `fill_low_hu`, so the canal, fat and air stay out. Discs are not filled: in
//! an axial slice through a disc no bone surrounds it.

use crate::volume::{first_set, first_zero, last_set};

/// Per pixel, how many of the 8 in-plane directions (±u, ±v, diagonals) reach a
/// bone pixel within `reach_mm` (not counting the pixel itself).
///
/// One pass per direction: `steps[p]` = steps from `p` to the first bone pixel
/// along the direction, computed from the neighbour `p + d`, visited before
/// `p`. Rays with a `v` component run row by row (the previous row's steps are
/// all a row needs, so the inner loop is branch-free and vectorises); rays
/// along `u` run along each row.
pub fn enclosure_counts(
    bone: &[u8],
    nu: usize,
    nv: usize,
    su: f64,
    sv: f64,
    reach_mm: f64,
) -> Vec<u8> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { enclosure_counts_avx2(bone, nu, nv, su, sv, reach_mm) };
        }
    }
    enclosure_counts_impl(bone, nu, nv, su, sv, reach_mm)
}

/// [`enclosure_counts`] compiled for AVX2 (16 lanes of u16); integer only,
/// so the result is the same.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn enclosure_counts_avx2(
    bone: &[u8],
    nu: usize,
    nv: usize,
    su: f64,
    sv: f64,
    reach_mm: f64,
) -> Vec<u8> {
    enclosure_counts_impl(bone, nu, nv, su, sv, reach_mm)
}

/// Steps to bone from a pixel whose neighbour along the ray is bone (`hit`)
/// or is `s` steps from it; branch-free so that rows vectorise.
#[inline(always)]
fn step(hit: bool, s: u16) -> u16 {
    // 1 when hit, else s + 1 (saturating): min(s + 1, hit ? 1 : MAX).
    let cap = 1 | u16::from(hit).wrapping_sub(1);
    s.saturating_add(1).min(cap)
}

#[inline(always)]
fn enclosure_counts_impl(
    bone: &[u8],
    nu: usize,
    nv: usize,
    su: f64,
    sv: f64,
    reach_mm: f64,
) -> Vec<u8> {
    let mut count = vec![0u8; nu * nv];
    if nu == 0 || nv == 0 {
        return count;
    }
    let max_steps = |du: i64, dv: i64| {
        let step_mm = ((du as f64) * su).hypot((dv as f64) * sv);
        (reach_mm / step_mm).floor().min(u16::MAX as f64 - 1.0) as u16
    };
    // Along ±u: a scan of each row against the direction.
    for du in [1i64, -1] {
        let max = max_steps(du, 0);
        for (brow, crow) in bone.chunks_exact(nu).zip(count.chunks_exact_mut(nu)) {
            // The ray leaves the slice at once at the edge it points to.
            let mut s = u16::MAX;
            let mut visit = |i: usize, ni: usize| {
                s = if brow[ni] != 0 {
                    1
                } else {
                    s.saturating_add(1)
                };
                crow[i] += u8::from(s <= max);
            };
            if du > 0 {
                for i in (0..nu - 1).rev() {
                    visit(i, i + 1);
                }
            } else {
                for i in 1..nu {
                    visit(i, i - 1);
                }
            }
        }
    }
    // Along ±v and the diagonals: rows against dv.
    let mut prev = vec![u16::MAX; nu];
    let mut cur = vec![u16::MAX; nu];
    for (du, dv) in [(0i64, 1i64), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1)] {
        let max = max_steps(du, dv);
        // In-plane i whose neighbour i + du lies in the slice: [i0, i1).
        let (i0, i1) = match du {
            1 => (0, nu - 1),
            -1 => (1, nu),
            _ => (0, nu),
        };
        let (n0, n1) = ((i0 as i64 + du) as usize, (i1 as i64 + du) as usize);
        prev.fill(u16::MAX);
        for jj in 0..nv {
            let j = if dv > 0 { nv - 1 - jj } else { jj };
            let nj = j as i64 + dv;
            let crow = &mut count[j * nu..(j + 1) * nu];
            if nj < 0 || nj >= nv as i64 {
                // The ray leaves the slice at once: nothing counted.
                prev.fill(u16::MAX);
                continue;
            }
            let row = &bone[j * nu..(j + 1) * nu];
            let nrow = &bone[nj as usize * nu..(nj as usize + 1) * nu];
            cur.fill(u16::MAX);
            let next = &nrow[n0..n1];
            let steps = &prev[n0..n1];
            if du == 0 {
                for ((c, &b), &s) in cur[i0..i1].iter_mut().zip(next).zip(steps) {
                    *c = step(b != 0, s);
                }
            } else {
                // A diagonal ray does not slip between two bone pixels that
                // touch at a corner.
                let side = &row[n0..n1];
                let above = &nrow[i0..i1];
                for ((((c, &b), &s), &bs), &ba) in cur[i0..i1]
                    .iter_mut()
                    .zip(next)
                    .zip(steps)
                    .zip(side)
                    .zip(above)
                {
                    *c = step((b != 0) | ((bs != 0) & (ba != 0)), s);
                }
            }
            for (k, &c) in crow.iter_mut().zip(cur.iter()) {
                *k += u8::from(c <= max);
            }
            std::mem::swap(&mut prev, &mut cur);
        }
    }
    count
}

/// Holes of a 2D mask (background not 4-connected to the border), labelled
/// 1.. (4-connected) in raster order of their first pixel, with their pixel
/// counts (`sizes[0]` unused).
///
/// Works on runs of background along rows, joined with a union-find where
/// they overlap the previous row's: a slice is mostly long runs of
/// background, so this touches each pixel only to find the runs and to write
/// the labels.
pub fn holes_2d(m: &[u8], nu: usize, nv: usize) -> (Vec<u32>, Vec<usize>) {
    let mut lab = vec![0u32; m.len()];
    if nu == 0 || nv == 0 {
        return (lab, vec![0]);
    }
    // Runs [a, b) of background per row; node 0 is "outside".
    let mut runs: Vec<(u32, u32)> = Vec::new();
    let mut row_start = Vec::with_capacity(nv + 1);
    let mut parent: Vec<u32> = vec![0];
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let p = parent[parent[x as usize] as usize];
            parent[x as usize] = p;
            x = p;
        }
        x
    }
    fn union(parent: &mut [u32], a: u32, b: u32) {
        let (ra, rb) = (find(parent, a), find(parent, b));
        // The smaller root wins: "outside" (0) absorbs everything it touches.
        if ra < rb {
            parent[rb as usize] = ra;
        } else if rb < ra {
            parent[ra as usize] = rb;
        }
    }
    for j in 0..nv {
        row_start.push(runs.len());
        let row = &m[j * nu..(j + 1) * nu];
        let mut i = 0;
        while i < nu {
            if row[i] != 0 {
                i += 1 + first_zero(&row[i + 1..]).unwrap_or(nu - i - 1);
                continue;
            }
            let a = i;
            i += first_set(&row[i..]).unwrap_or(nu - i);
            let id = parent.len() as u32;
            parent.push(id);
            runs.push((a as u32, i as u32));
            if j == 0 || j + 1 == nv || a == 0 || i == nu {
                union(&mut parent, 0, id);
            }
        }
    }
    row_start.push(runs.len());
    // Join runs that overlap the previous row's (4-connectivity).
    for j in 1..nv {
        let (p0, p1) = (row_start[j - 1], row_start[j]);
        let (c0, c1) = (row_start[j], row_start[j + 1]);
        let (mut p, mut c) = (p0, c0);
        while p < p1 && c < c1 {
            let (pa, pb) = runs[p];
            let (ca, cb) = runs[c];
            if pa < cb && ca < pb {
                union(&mut parent, p as u32 + 1, c as u32 + 1);
            }
            if pb <= cb {
                p += 1;
            } else {
                c += 1;
            }
        }
    }
    // Labels in raster order of each hole's first run.
    let mut id_of = vec![0u32; parent.len()];
    let mut sizes = vec![0usize];
    for j in 0..nv {
        for r in row_start[j]..row_start[j + 1] {
            let root = find(&mut parent, r as u32 + 1);
            if root == 0 {
                continue;
            }
            if id_of[root as usize] == 0 {
                id_of[root as usize] = sizes.len() as u32;
                sizes.push(0);
            }
            let id = id_of[root as usize];
            let (a, b) = runs[r];
            sizes[id as usize] += (b - a) as usize;
            lab[j * nu + a as usize..j * nu + b as usize].fill(id);
        }
    }
    (lab, sizes)
}

/// Sets the pixels of `solid` (the bone of one slice, 0/1) that the bone
/// encloses in `p.need` of 8 directions within `p.reach_mm` where `hu` is
/// at least `p.fill_low_hu`.
///
/// With `in_box` and `p.need` ≥ 4 only the bone's bounding box is looked at:
/// from a pixel outside it only the (at most 3) directions pointing into the
/// box can meet bone, and a ray from a pixel inside that leaves the box meets
/// none beyond. The result is the same.
fn add_enclosed(solid: &mut [u8], hu: &[f32], nu: usize, nv: usize, p: &FillParams, in_box: bool) {
    // The bone's bounding box in the slice: [i0, i1) × [j0, j1).
    let (mut i0, mut i1, mut j0, mut j1) = (nu, 0, nv, 0);
    for (j, row) in solid.chunks_exact(nu).enumerate() {
        if let Some(a) = first_set(row) {
            i0 = i0.min(a);
            i1 = i1.max(last_set(row).unwrap_or(a) + 1);
            j0 = j0.min(j);
            j1 = j + 1;
        }
    }
    if j1 == 0 {
        return;
    }
    let (i0, i1, j0, j1) = if in_box && p.need >= 4 {
        (i0, i1, j0, j1)
    } else {
        (0, nu, 0, nv)
    };
    let w = i1 - i0;
    let mut sub = Vec::with_capacity(w * (j1 - j0));
    for row in solid[j0 * nu..j1 * nu].chunks_exact(nu) {
        sub.extend_from_slice(&row[i0..i1]);
    }
    let count = enclosure_counts(&sub, w, j1 - j0, p.su, p.sv, p.reach_mm);
    for (bj, crow) in count.chunks_exact(w).enumerate() {
        let at = (j0 + bj) * nu + i0;
        for ((s, &c), &h) in solid[at..at + w].iter_mut().zip(crow).zip(&hu[at..at + w]) {
            *s |= u8::from(c >= p.need && h >= p.fill_low_hu);
        }
    }
}

/// Calls `f(q, label)` for every non-zero label of `lab`, in order, skipping
/// zero stretches 16 labels at a time (most of a slice is unlabelled).
#[inline]
pub(crate) fn for_each_labelled(lab: &[u32], mut f: impl FnMut(usize, u32)) {
    for (c, chunk) in lab.chunks(16).enumerate() {
        if chunk.iter().fold(0u32, |a, &l| a | l) != 0 {
            for (q, &l) in chunk.iter().enumerate() {
                if l != 0 {
                    f(16 * c + q, l);
                }
            }
        }
    }
}

/// Parameters of the solid fill of one slice (physical units).
#[derive(Clone, Copy, Debug)]
pub struct FillParams {
    /// Pixel size, mm.
    pub su: f64,
    pub sv: f64,
    pub fill_low_hu: f32,
    pub fill_max_area_mm2: f64,
    pub reach_mm: f64,
    /// Directions (of 8) that must meet bone.
    pub need: u8,
    /// Holes smaller than this are filled whatever their HU, mm².
    pub small_hole_mm2: f64,
}

/// What [`solid_fill_slice`] found in one slice.
#[derive(Clone, Debug, Default)]
pub struct SliceFill {
    /// In-plane indices of the pixels to add to the bone.
    pub add: Vec<usize>,
    /// The holes left after the enclosure step, labelled as by [`holes_2d`]
    /// (empty when the slice has no bone).
    pub holes: Vec<u32>,
    pub sizes: Vec<usize>,
    /// Per hole: filled whole (cancellous median, or smaller than any canal).
    pub whole: Vec<bool>,
    /// Rows `[first, last)` holding bone or added pixels: every hole, of the
    /// bone and after the enclosure step, and every addition lies in them.
    pub rows: (usize, usize),
}

/// Rows `[first, last)` of an `nu`-wide slice holding a set pixel.
pub(crate) fn row_span(m: &[u8], nu: usize) -> (usize, usize) {
    let set = |r: &[u8]| first_set(r).is_some();
    match m.chunks_exact(nu).position(set) {
        None => (0, 0),
        Some(first) => {
            let from_end = m.chunks_exact(nu).rev().position(set).unwrap_or(0);
            (first, m.len() / nu - from_end)
        }
    }
}

/// The rows `[first, last)` of `hu` that [`solid_fill_slice`] reads for
/// `bone`: those holding bone (with `p.need` ≥ 4 an enclosed pixel has bone
/// above and below it in its rays), else all.
pub fn needed_rows(bone: &[u8], nu: usize, nv: usize, p: &FillParams) -> (usize, usize) {
    if p.need >= 4 {
        row_span(bone, nu)
    } else {
        (0, nv)
    }
}

/// The pixels of one slice to add to `bone` (in-plane indices), from the
/// smoothed HU `hu` of the same slice, and the holes that were not filled
/// whole (where the spinal canal is: the enclosure step has closed the gaps
/// of its bony ring).
pub fn solid_fill_slice(
    bone: &[u8],
    hu: &[f32],
    nu: usize,
    nv: usize,
    p: &FillParams,
) -> SliceFill {
    if first_set(bone).is_none() {
        return SliceFill::default();
    }
    let mut solid = bone.to_vec();
    add_enclosed(&mut solid, hu, nu, nv, p, true);
    let (lab, sizes) = holes_2d(&solid, nu, nv);
    // Holes are enclosed by the set pixels, and nothing is added outside
    // their rows: the per-pixel passes below look only there.
    let rows = row_span(&solid, nu);
    let span = rows.0 * nu..rows.1 * nu;
    let px_mm2 = p.su * p.sv;
    let mut values: Vec<Vec<f32>> = vec![Vec::new(); sizes.len()];
    let small: Vec<bool> = sizes
        .iter()
        .map(|&n| n as f64 * px_mm2 <= p.fill_max_area_mm2)
        .collect();
    for_each_labelled(&lab[span.clone()], |q, l| {
        if small[l as usize] {
            values[l as usize].push(hu[span.start + q]);
        }
    });
    let whole: Vec<bool> = values
        .iter_mut()
        .map(|v| {
            if v.is_empty() {
                return false;
            }
            // Smaller than any spinal canal: a noise or partial-volume gap.
            if v.len() as f64 * px_mm2 < p.small_hole_mm2 {
                return true;
            }
            let mid = v.len() / 2;
            let (_, m, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
            *m >= p.fill_low_hu
        })
        .collect();
    for_each_labelled(&lab[span.clone()], |q, l| {
        let (l, q) = (l as usize, span.start + q);
        if !values[l].is_empty() && (whole[l] || hu[q] >= p.fill_low_hu) {
            solid[q] = 1;
        }
    });
    // The pixels set in `solid` and not in `bone`, 32 at a time.
    let mut add = Vec::new();
    let (s, b) = (&solid[span.clone()], &bone[span.clone()]);
    for (c, (sc, bc)) in s.chunks(32).zip(b.chunks(32)).enumerate() {
        if sc.iter().zip(bc).fold(0u8, |a, (&x, &y)| a | (x & !y)) != 0 {
            let at = span.start + 32 * c;
            add.extend(
                sc.iter()
                    .zip(bc)
                    .enumerate()
                    .filter(|(_, (&x, &y))| x != 0 && y == 0)
                    .map(|(q, _)| at + q),
            );
        }
    }
    SliceFill {
        add,
        holes: lab,
        sizes,
        whole,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_span_is_the_rows_holding_set_pixels() {
        let mut m = vec![0u8; 4 * 6];
        assert_eq!(row_span(&m, 4), (0, 0));
        m[4 + 3] = 1;
        assert_eq!(row_span(&m, 4), (1, 2));
        m[4 * 4] = 1;
        assert_eq!(row_span(&m, 4), (1, 5));
        m[4 * 5 + 2] = 1;
        assert_eq!(row_span(&m, 4), (1, 6));
    }

    #[test]
    fn labelled_pixels_are_visited_in_order() {
        let mut lab = vec![0u32; 70];
        for (q, l) in [(0, 3), (15, 1), (16, 2), (40, 7), (69, 1)] {
            lab[q] = l;
        }
        let mut seen = Vec::new();
        for_each_labelled(&lab, |q, l| seen.push((q, l)));
        assert_eq!(seen, vec![(0, 3), (15, 1), (16, 2), (40, 7), (69, 1)]);
    }

    #[test]
    fn holes_are_enclosed_background_only() {
        // 7×5 ring with a 3×1 hole, plus a notch open to the border.
        let nu = 7;
        let mut m = vec![0u8; 7 * 5];
        for j in 1..4 {
            for i in 1..6 {
                m[i + nu * j] = 1;
            }
        }
        for i in 2..5 {
            m[i + nu * 2] = 0;
        }
        let (lab, sizes) = holes_2d(&m, 7, 5);
        assert_eq!(sizes, vec![0, 3]);
        assert_eq!(lab.iter().filter(|&&l| l == 1).count(), 3);
        m[2 + nu] = 0; // opens the hole to the border row above
        m[2] = 0;
        let (_, sizes) = holes_2d(&m, 7, 5);
        assert_eq!(sizes.len(), 1, "hole connected to the border is not a hole");
    }

    /// A ring of radius `r` pixels centred in an `n`×`n` slice, with a gap of
    /// `gap` pixels cut through its wall on the +u side.
    fn ring(n: usize, r: f64, gap: usize) -> Vec<u8> {
        let c = n as f64 / 2.0;
        let mut m = vec![0u8; n * n];
        for j in 0..n {
            for i in 0..n {
                let d = (i as f64 - c).hypot(j as f64 - c);
                let in_gap = i as f64 > c && ((j as f64 - c).abs() as usize) < gap.div_ceil(2);
                if (d - r).abs() < 1.0 && !(gap > 0 && in_gap) {
                    m[i + n * j] = 1;
                }
            }
        }
        m
    }

    #[test]
    fn enclosure_counts_directions_within_reach() {
        let n = 41;
        let m = ring(n, 10.0, 0);
        let centre = n / 2 + n * (n / 2);
        // 1 mm pixels: the wall is ~10 mm away in every direction (~14 mm on
        // diagonals, still ~10 mm of radius).
        assert_eq!(enclosure_counts(&m, n, n, 1.0, 1.0, 12.0)[centre], 8);
        assert_eq!(enclosure_counts(&m, n, n, 1.0, 1.0, 8.0)[centre], 0);
        // Anisotropic pixels: 2 mm along u puts the wall 20 mm away along ±u,
        // and about 15-22 mm along the diagonals.
        assert_eq!(enclosure_counts(&m, n, n, 2.0, 1.0, 12.0)[centre], 2);
        // Outside the ring, far away: nothing around.
        assert_eq!(enclosure_counts(&m, n, n, 1.0, 1.0, 5.0)[0], 0);
    }

    /// A deterministic pseudo-random sequence (64-bit LCG, high bits).
    fn lcg(seed: u64) -> impl FnMut() -> u32 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        }
    }

    /// `n` pixels, each set with probability `density` / 16.
    fn random_mask(next: &mut impl FnMut() -> u32, n: usize, density: u32) -> Vec<u8> {
        (0..n).map(|_| u8::from(next() % 16 < density)).collect()
    }

    /// Rays marched pixel by pixel: the definition `enclosure_counts` must meet.
    fn enclosure_brute(bone: &[u8], nu: usize, nv: usize, su: f64, sv: f64, reach: f64) -> Vec<u8> {
        let at = |i: i64, j: i64| bone[i as usize + nu * j as usize] != 0;
        let inside = |i: i64, j: i64| i >= 0 && j >= 0 && i < nu as i64 && j < nv as i64;
        let mut out = vec![0u8; nu * nv];
        for j in 0..nv as i64 {
            for i in 0..nu as i64 {
                for (du, dv) in [
                    (1, 0),
                    (-1, 0),
                    (0, 1),
                    (0, -1),
                    (1, 1),
                    (-1, -1),
                    (1, -1),
                    (-1, 1),
                ] {
                    let step = ((du as f64) * su).hypot((dv as f64) * sv);
                    let mut k = 1i64;
                    while k as f64 * step <= reach {
                        let (pi, pj) = (i + (k - 1) * du, j + (k - 1) * dv);
                        let (qi, qj) = (pi + du, pj + dv);
                        if !inside(qi, qj) {
                            break;
                        }
                        let corner = du != 0 && dv != 0 && at(qi, pj) && at(pi, qj);
                        if at(qi, qj) || corner {
                            out[i as usize + nu * j as usize] += 1;
                            break;
                        }
                        k += 1;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn enclosure_counts_equal_marched_rays_on_random_masks() {
        let mut next = lcg(7);
        for case in 0..40 {
            let (nu, nv) = (1 + next() as usize % 23, 1 + next() as usize % 19);
            let density = 1 + next() % 6;
            let bone = random_mask(&mut next, nu * nv, density);
            let (su, sv) = (
                0.3 + (next() % 10) as f64 * 0.2,
                0.3 + (next() % 10) as f64 * 0.2,
            );
            let reach = (next() % 12) as f64;
            assert_eq!(
                enclosure_counts(&bone, nu, nv, su, sv, reach),
                enclosure_brute(&bone, nu, nv, su, sv, reach),
                "case {case}: {nu}×{nv}, {su}×{sv} mm, reach {reach} mm"
            );
        }
    }

    #[test]
    fn enclosure_in_the_bone_box_equals_the_whole_slice() {
        let mut next = lcg(23);
        for case in 0..200 {
            let (nu, nv) = (1 + next() as usize % 31, 1 + next() as usize % 27);
            let density = 2 + next() % 12;
            let mut bone = random_mask(&mut next, nu * nv, density);
            // Some slices hold bone in a quarter only (all of it, or some).
            if case % 3 == 0 {
                for (q, b) in bone.iter_mut().enumerate() {
                    let inside = q % nu <= nu / 2 && q / nu <= nv / 2;
                    *b = u8::from(inside && (case % 2 == 0 || *b != 0));
                }
            }
            let hu: Vec<f32> = (0..nu * nv).map(|_| (next() % 200) as f32 - 50.0).collect();
            for need in [3u8, 4, 5, 7] {
                let p = FillParams {
                    su: 0.4 + (next() % 10) as f64 * 0.2,
                    sv: 0.4 + (next() % 10) as f64 * 0.2,
                    fill_low_hu: 40.0,
                    fill_max_area_mm2: 2500.0,
                    reach_mm: (next() % 15) as f64,
                    need,
                    small_hole_mm2: 30.0,
                };
                let (mut a, mut b) = (bone.clone(), bone.clone());
                add_enclosed(&mut a, &hu, nu, nv, &p, true);
                add_enclosed(&mut b, &hu, nu, nv, &p, false);
                assert_eq!(a, b, "case {case}, need {need}");
            }
        }
    }

    #[test]
    fn holes_equal_a_flood_fill_on_random_masks() {
        let mut next = lcg(11);
        for case in 0..60 {
            let (nu, nv) = (1 + next() as usize % 29, 1 + next() as usize % 17);
            let density = 4 + next() % 10;
            let m = random_mask(&mut next, nu * nv, density);
            // Reference: flood the background from the border, then label the
            // rest in raster order by flooding.
            let mut lab = vec![0u32; nu * nv];
            let flood = |lab: &mut Vec<u32>, start: usize, value: u32| -> usize {
                let mut stack = vec![start];
                lab[start] = value;
                let mut n = 0;
                while let Some(p) = stack.pop() {
                    n += 1;
                    let (i, j) = (p % nu, p / nu);
                    let mut nb = Vec::new();
                    if i > 0 {
                        nb.push(p - 1);
                    }
                    if i + 1 < nu {
                        nb.push(p + 1);
                    }
                    if j > 0 {
                        nb.push(p - nu);
                    }
                    if j + 1 < nv {
                        nb.push(p + nu);
                    }
                    for q in nb {
                        if m[q] == 0 && lab[q] == 0 {
                            lab[q] = value;
                            stack.push(q);
                        }
                    }
                }
                n
            };
            for p in 0..nu * nv {
                let (i, j) = (p % nu, p / nu);
                let border = i == 0 || j == 0 || i + 1 == nu || j + 1 == nv;
                if border && m[p] == 0 && lab[p] == 0 {
                    flood(&mut lab, p, u32::MAX);
                }
            }
            let mut sizes = vec![0usize];
            for p in 0..nu * nv {
                if m[p] == 0 && lab[p] == 0 {
                    let id = sizes.len() as u32;
                    sizes.push(flood(&mut lab, p, id));
                }
            }
            lab.iter_mut()
                .filter(|l| **l == u32::MAX)
                .for_each(|l| *l = 0);
            assert_eq!(holes_2d(&m, nu, nv), (lab, sizes), "case {case}: {nu}×{nv}");
        }
    }

    #[test]
    fn fill_closes_a_broken_cortex_but_not_low_density() {
        let n = 41;
        let params = FillParams {
            su: 1.0,
            sv: 1.0,
            fill_low_hu: 40.0,
            fill_max_area_mm2: 2500.0,
            reach_mm: 25.0,
            need: 7,
            small_hole_mm2: 0.0,
        };
        // A cortex with a 3-pixel gap: the interior is not a hole, yet it is
        // filled (its rays meet bone in 7 of 8 directions), except a notch
        // that sees out through the gap along two directions.
        let m = ring(n, 10.0, 3);
        let (_, sizes) = holes_2d(&m, n, n);
        assert_eq!(sizes.len(), 1, "the gap opens the interior");
        let inside = |q: usize| {
            let (i, j) = ((q % n) as f64 - 20.5, (q / n) as f64 - 20.5);
            i.hypot(j) < 8.0
        };
        let interior = (0..n * n).filter(|&q| inside(q)).count();
        let cancellous = vec![90.0f32; n * n];
        let add = solid_fill_slice(&m, &cancellous, n, n, &params).add;
        let filled_inside = add.iter().filter(|&&q| inside(q)).count();
        assert!(
            filled_inside * 100 >= interior * 90,
            "{filled_inside} of {interior}"
        );
        // Nothing far outside the ring is added.
        assert!(add.iter().all(|&q| {
            let (i, j) = ((q % n) as f64 - 20.5, (q / n) as f64 - 20.5);
            i.hypot(j) < 13.0
        }));
        // CSF-like interior (20 HU) stays empty.
        let csf = vec![20.0f32; n * n];
        assert!(solid_fill_slice(&m, &csf, n, n, &params).add.is_empty());
    }

    #[test]
    fn noisy_hole_is_filled_whole_by_its_median() {
        let n = 41;
        let params = FillParams {
            su: 1.0,
            sv: 1.0,
            fill_low_hu: 40.0,
            fill_max_area_mm2: 2500.0,
            reach_mm: 5.0, // too short: only the hole rule acts
            need: 8,
            small_hole_mm2: 0.0,
        };
        let m = ring(n, 10.0, 0);
        // Cancellous at 90 HU with every third pixel dropped to 0 HU by noise.
        let hu: Vec<f32> = (0..n * n)
            .map(|q| if q % 3 == 0 { 0.0 } else { 90.0 })
            .collect();
        let add = solid_fill_slice(&m, &hu, n, n, &params).add;
        let (lab, sizes) = holes_2d(&m, n, n);
        let hole: usize = sizes[1..].iter().sum();
        assert_eq!(add.len(), hole, "the whole hole, low pixels included");
        assert!(add.iter().all(|&q| lab[q] != 0));
    }
}
