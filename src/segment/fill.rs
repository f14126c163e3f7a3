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

/// Per pixel, how many of the 8 in-plane directions (±u, ±v, diagonals) reach a
/// bone pixel within `reach_mm` (not counting the pixel itself).
///
/// One pass per direction: `steps[p]` = steps from `p` to the first bone pixel
/// along the direction, computed from the neighbour `p + d`, visited before `p`.
pub fn enclosure_counts(
    bone: &[u8],
    nu: usize,
    nv: usize,
    su: f64,
    sv: f64,
    reach_mm: f64,
) -> Vec<u8> {
    let mut count = vec![0u8; nu * nv];
    let mut steps = vec![u16::MAX; nu * nv];
    for (du, dv) in [
        (1i64, 0i64),
        (-1, 0),
        (0, 1),
        (0, -1),
        (1, 1),
        (-1, -1),
        (1, -1),
        (-1, 1),
    ] {
        let step_mm = ((du as f64) * su).hypot((dv as f64) * sv);
        let max_steps = (reach_mm / step_mm).floor().min(u16::MAX as f64 - 1.0) as u16;
        // Visit p + d before p: rows against dv, columns against du.
        for jj in 0..nv {
            let j = if dv > 0 { nv - 1 - jj } else { jj };
            let nj = j as i64 + dv;
            let row = j * nu;
            if nj < 0 || nj >= nv as i64 {
                // The ray leaves the slice at once.
                steps[row..row + nu].fill(u16::MAX);
                continue;
            }
            let nrow = nj as usize * nu;
            for ii in 0..nu {
                let i = if du > 0 { nu - 1 - ii } else { ii };
                let ni = i as i64 + du;
                let p = row + i;
                let s = if ni < 0 || ni >= nu as i64 {
                    u16::MAX
                } else {
                    let ni = ni as usize;
                    // A diagonal ray does not slip between two bone pixels
                    // that touch at a corner.
                    let hit = bone[nrow + ni] != 0
                        || (du != 0 && dv != 0 && bone[row + ni] != 0 && bone[nrow + i] != 0);
                    if hit {
                        1
                    } else {
                        steps[nrow + ni].saturating_add(1)
                    }
                };
                steps[p] = s;
                count[p] += u8::from(s <= max_steps);
            }
        }
    }
    count
}

/// Holes of a 2D mask (background not 4-connected to the border), labelled
/// 1.. (4-connected), with their pixel counts (`sizes[0]` unused).
pub fn holes_2d(m: &[u8], nu: usize, nv: usize) -> (Vec<u32>, Vec<usize>) {
    const OUT: u32 = u32::MAX;
    let mut lab = vec![0u32; m.len()];
    let mut stack = Vec::new();
    // Mark background connected to the border.
    for j in 0..nv {
        for i in 0..nu {
            if (i == 0 || j == 0 || i + 1 == nu || j + 1 == nv) && m[i + nu * j] == 0 {
                lab[i + nu * j] = OUT;
                stack.push(i + nu * j);
            }
        }
    }
    let flood = |lab: &mut Vec<u32>, stack: &mut Vec<usize>, value: u32| -> usize {
        let mut n = 0;
        while let Some(p) = stack.pop() {
            n += 1;
            let (i, j) = (p % nu, p / nu);
            let mut visit = |q: usize| {
                if m[q] == 0 && lab[q] == 0 {
                    lab[q] = value;
                    stack.push(q);
                }
            };
            if i > 0 {
                visit(p - 1);
            }
            if i + 1 < nu {
                visit(p + 1);
            }
            if j > 0 {
                visit(p - nu);
            }
            if j + 1 < nv {
                visit(p + nu);
            }
        }
        n
    };
    flood(&mut lab, &mut stack, OUT);
    let mut sizes = vec![0usize];
    for p in 0..m.len() {
        if m[p] == 0 && lab[p] == 0 {
            let id = sizes.len() as u32;
            lab[p] = id;
            stack.push(p);
            sizes.push(flood(&mut lab, &mut stack, id));
        }
    }
    for l in lab.iter_mut() {
        if *l == OUT {
            *l = 0;
        }
    }
    (lab, sizes)
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

/// The pixels of one slice to add to `bone` (in-plane indices), from the
/// smoothed HU `hu` of the same slice.
pub fn solid_fill_slice(
    bone: &[u8],
    hu: &[f32],
    nu: usize,
    nv: usize,
    p: &FillParams,
) -> Vec<usize> {
    if !bone.iter().any(|&b| b != 0) {
        return Vec::new();
    }
    let count = enclosure_counts(bone, nu, nv, p.su, p.sv, p.reach_mm);
    let mut solid = bone.to_vec();
    for q in 0..solid.len() {
        if solid[q] == 0 && count[q] >= p.need && hu[q] >= p.fill_low_hu {
            solid[q] = 1;
        }
    }
    let (lab, sizes) = holes_2d(&solid, nu, nv);
    let px_mm2 = p.su * p.sv;
    let mut values: Vec<Vec<f32>> = vec![Vec::new(); sizes.len()];
    for (q, &l) in lab.iter().enumerate() {
        if l != 0 && sizes[l as usize] as f64 * px_mm2 <= p.fill_max_area_mm2 {
            values[l as usize].push(hu[q]);
        }
    }
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
    for (q, &l) in lab.iter().enumerate() {
        let l = l as usize;
        if l != 0 && !values[l].is_empty() && (whole[l] || hu[q] >= p.fill_low_hu) {
            solid[q] = 1;
        }
    }
    solid
        .iter()
        .zip(bone)
        .enumerate()
        .filter(|(_, (&s, &b))| s != 0 && b == 0)
        .map(|(q, _)| q)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let add = solid_fill_slice(&m, &cancellous, n, n, &params);
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
        assert!(solid_fill_slice(&m, &csf, n, n, &params).is_empty());
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
        let add = solid_fill_slice(&m, &hu, n, n, &params);
        let (lab, sizes) = holes_2d(&m, n, n);
        let hole: usize = sizes[1..].iter().sum();
        assert_eq!(add.len(), hole, "the whole hole, low pixels included");
        assert!(add.iter().all(|&q| lab[q] != 0));
    }
}
