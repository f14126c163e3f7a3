//! The spinal canal's centre line: the low-density tube the vertebral arches
//! surround, found in the axial slices where bone encloses it and carried
//! through the others.

/// The canal centre (in-plane voxel coordinates) for every slice, from the
/// slices where one was found: outliers dropped, gaps interpolated, ends held.
pub fn canal_track(
    found: &[(usize, [f64; 2])],
    slices: usize,
    sp: [f64; 2],
) -> Option<Vec<[f64; 2]>> {
    if found.len() < 3 || found.len() * 10 < slices {
        return None;
    }
    let kept: Vec<(usize, [f64; 2])> = (0..found.len())
        .filter(|&i| {
            let lo = i.saturating_sub(3);
            let hi = (i + 4).min(found.len());
            // The windows at the ends hold an even count: the mean of the
            // two middle values, so that a mirrored image keeps the same
            // candidates (the upper middle one would be the lower there).
            let med = |a: usize| {
                let mut v: Vec<f64> = found[lo..hi].iter().map(|f| f.1[a]).collect();
                v.sort_by(f64::total_cmp);
                let n = v.len();
                if n % 2 == 1 {
                    v[n / 2]
                } else {
                    0.5 * (v[n / 2 - 1] + v[n / 2])
                }
            };
            let c = found[i].1;
            ((c[0] - med(0)) * sp[0]).hypot((c[1] - med(1)) * sp[1]) < 15.0
        })
        .map(|i| found[i])
        .collect();
    if kept.len() < 3 {
        return None;
    }
    let mut track = Vec::with_capacity(slices);
    let mut seg = 0;
    for k in 0..slices {
        while seg + 1 < kept.len() && kept[seg + 1].0 <= k {
            seg += 1;
        }
        let (k0, c0) = kept[seg];
        let c = if k <= k0 || seg + 1 == kept.len() {
            c0
        } else {
            let (k1, c1) = kept[seg + 1];
            let t = (k - k0) as f64 / (k1 - k0) as f64;
            [c0[0] + t * (c1[0] - c0[0]), c0[1] + t * (c1[1] - c0[1])]
        };
        track.push(c);
    }
    Some(track)
}

/// Where dark vertebral bodies sit in a slice's canal candidates: front and
/// back, left-right, in mm.
pub struct BodyTest {
    /// In-plane axis (0: u, 1: v) that runs front-back, and +1 when its
    /// index grows toward the front, −1 when toward the back.
    pub ap_axis: usize,
    pub anterior_sign: f64,
    /// A candidate this far in front of another one (centre to centre, mm)…
    pub behind_mm: [f64; 2],
    /// …and at most this far from it left-right, mm…
    pub lr_mm: f64,
    /// …is a body when the one behind is at least this large (a canal's
    /// smallest cross-section, mm²; smaller holes behind the canal lie
    /// in the posterior elements).
    pub canal_min_mm2: f64,
    /// The same body's hole in the next slices: centres this close, mm.
    pub follow_mm: f64,
}

impl Default for BodyTest {
    /// A body's centre lies 15–35 mm in front of the canal's in adults
    /// (half a body's depth, its posterior wall, half the canal); a
    /// lumbar canal is 150–350 mm² in cross-section, 100 mm² in severe
    /// stenosis. Axes: v front-back, growing toward the front.
    fn default() -> Self {
        BodyTest {
            ap_axis: 1,
            anterior_sign: 1.0,
            behind_mm: [10.0, 45.0],
            lr_mm: 10.0,
            canal_min_mm2: 100.0,
            follow_mm: 8.0,
        }
    }
}

/// Drops the candidates that are vertebral bodies, not the canal: cancellous
/// bone darker than the canal's limit (osteoporosis, fatty marrow) makes a
/// body's interior a low-density hole near the midline too, 15–35 mm in
/// front of the canal, and over the slices where the arch is open (no
/// canal candidate) the longest chain runs through the bodies. A candidate
/// with a canal-sized one behind it in the same slice is a body; a
/// candidate in an adjacent slice whose centre lies within `follow_mm` of a
/// body's is the same body. Candidates are (slice, pixel count, centre in
/// voxels), `sp` the in-plane spacing; returns how many were dropped.
pub fn drop_bodies(
    cands: &mut Vec<(usize, usize, [f64; 2])>,
    sp: [f64; 2],
    test: &BodyTest,
) -> usize {
    let n = cands.len();
    let (ap, lr) = (test.ap_axis, 1 - test.ap_axis);
    let mut body = vec![false; n];
    for (i, a) in cands.iter().enumerate() {
        body[i] = cands.iter().any(|b| {
            let front = (a.2[ap] - b.2[ap]) * sp[ap] * test.anterior_sign;
            b.0 == a.0
                && b.1 as f64 * sp[0] * sp[1] >= test.canal_min_mm2
                && front >= test.behind_mm[0]
                && front <= test.behind_mm[1]
                && ((a.2[lr] - b.2[lr]) * sp[lr]).abs() <= test.lr_mm
        });
    }
    // Follow each body through the adjacent slices until no more is found.
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..n {
            if body[i] {
                continue;
            }
            let a = cands[i];
            let near_body = (0..n).any(|j| {
                body[j]
                    && cands[j].0.abs_diff(a.0) == 1
                    && ((a.2[0] - cands[j].2[0]) * sp[0]).hypot((a.2[1] - cands[j].2[1]) * sp[1])
                        <= test.follow_mm
            });
            if near_body {
                body[i] = true;
                changed = true;
            }
        }
    }
    let mut k = 0;
    cands.retain(|_| {
        k += 1;
        !body[k - 1]
    });
    n - cands.len()
}

/// The longest chain of canal candidates that is continuous through the
/// slices: from slice to slice (with gaps of at most `max_gap_mm`) the centre
/// moves at most `max_shift_mm` plus `shift_per_mm` per mm of slice distance.
/// False candidates (enclosed fat in the pelvis, gaps between ribs) do not
/// line up with the canal over many slices and are left out. Candidates are
/// (slice, pixel count, centre in voxels); returns (slice, centre) in slice
/// order, at most one per slice.
pub fn continuous_chain(
    cands: &[(usize, usize, [f64; 2])],
    sp: [f64; 2],
    slice_mm: f64,
    max_gap_mm: f64,
    max_shift_mm: f64,
    shift_per_mm: f64,
) -> Vec<(usize, [f64; 2])> {
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by_key(|&i| cands[i].0);
    let c: Vec<(usize, usize, [f64; 2])> = order.iter().map(|&i| cands[i]).collect();
    // best[i]: slices on the longest chain ending at candidate i (ties: the
    // larger total area), prev[i]: its predecessor.
    let mut best = vec![(0usize, 0usize); c.len()];
    let mut prev = vec![usize::MAX; c.len()];
    for i in 0..c.len() {
        best[i] = (1, c[i].1);
        for j in (0..i).rev() {
            if c[j].0 == c[i].0 {
                continue;
            }
            let dz = (c[i].0 - c[j].0) as f64 * slice_mm;
            if dz > max_gap_mm {
                break;
            }
            let d = ((c[i].2[0] - c[j].2[0]) * sp[0]).hypot((c[i].2[1] - c[j].2[1]) * sp[1]);
            if d <= max_shift_mm + shift_per_mm * dz {
                let cand = (best[j].0 + 1, best[j].1 + c[i].1);
                if cand > best[i] {
                    best[i] = cand;
                    prev[i] = j;
                }
            }
        }
    }
    let Some(end) = (0..c.len()).max_by_key(|&i| (best[i], usize::MAX - i)) else {
        return Vec::new();
    };
    let mut chain = Vec::new();
    let mut i = end;
    loop {
        chain.push((c[i].0, c[i].2));
        if prev[i] == usize::MAX {
            break;
        }
        i = prev[i];
    }
    chain.reverse();
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dark body 20 mm in front of the canal in slices 2–4 (v grows
    /// toward the front), alone in slices 5–6 where the arch is open, and a
    /// small hole behind the canal in slice 1 (the posterior elements).
    #[test]
    fn bodies_in_front_of_the_canal_are_dropped_and_followed() {
        let test = BodyTest::default();
        let canal = |k: usize| (k, 300, [50.0, 40.0]);
        let body = |k: usize| (k, 900, [50.5, 60.0]);
        let mut c = vec![canal(0), canal(1), (1, 60, [50.0, 25.0])];
        c.extend((2..5).flat_map(|k| [canal(k), body(k)]));
        c.extend([body(5), body(6), canal(9)]);
        let dropped = drop_bodies(&mut c, [1.0, 1.0], &test);
        assert_eq!(dropped, 5);
        assert!(c.iter().all(|x| x.2[1] <= 40.0), "{c:?}");
        // Stored front-back the other way round (v toward the back): the
        // same candidates dropped.
        let mut c = vec![canal(0), canal(1), (1, 60, [50.0, 25.0])];
        c.extend((2..5).flat_map(|k| [canal(k), body(k)]));
        c.extend([body(5), body(6), canal(9)]);
        for x in &mut c {
            x.2[1] = 100.0 - x.2[1];
        }
        let test = BodyTest {
            anterior_sign: -1.0,
            ..BodyTest::default()
        };
        assert_eq!(drop_bodies(&mut c, [1.0, 1.0], &test), 5);
        assert!(c.iter().all(|x| x.2[1] >= 60.0), "{c:?}");
    }

    #[test]
    fn track_interpolates_and_drops_outliers() {
        let found = vec![
            (0, [10.0, 10.0]),
            (2, [10.0, 12.0]),
            (3, [60.0, 60.0]),
            (4, [10.0, 14.0]),
            (6, [10.0, 16.0]),
        ];
        let t = canal_track(&found, 8, [1.0, 1.0]).unwrap();
        assert_eq!(t.len(), 8);
        assert_eq!(t[3], [10.0, 13.0]);
        assert_eq!(t[1], [10.0, 11.0]);
        assert_eq!(t[7], [10.0, 16.0]);
        assert!(canal_track(&found[..2], 8, [1.0, 1.0]).is_none());
    }

    /// totalseg's first canal centres (the sacral canal, 8 voxels behind
    /// the lumbar one) with the image mirrored front-back: the same track,
    /// mirrored. The upper middle of the end windows' four values kept them
    /// in one order and dropped them in the other.
    #[test]
    fn mirrored_centres_give_the_mirrored_track() {
        let ys = [20.9, 21.4, 28.9, 27.6, 27.4, 29.5, 22.6, 29.1];
        let found: Vec<(usize, [f64; 2])> = ys
            .iter()
            .enumerate()
            .map(|(k, &y)| (k, [55.0, y]))
            .collect();
        let mirrored: Vec<(usize, [f64; 2])> = found
            .iter()
            .map(|&(k, [x, y])| (k, [x, 82.0 - y]))
            .collect();
        let (a, b) = (
            canal_track(&found, 8, [3.0, 3.0]).unwrap(),
            canal_track(&mirrored, 8, [3.0, 3.0]).unwrap(),
        );
        for (p, q) in a.iter().zip(&b) {
            assert!((p[1] - (82.0 - q[1])).abs() < 1e-9, "{a:?} vs {b:?}");
        }
        assert!(
            (a[0][1] - 20.9).abs() < 1e-9,
            "the first centre kept: {a:?}"
        );
    }

    #[test]
    fn chain_follows_the_canal_not_the_strays() {
        // A canal drifting 0.5 mm per slice over 20 slices (one missing), and
        // stray candidates 40 mm away in a few slices, one of them larger.
        let mut c = Vec::new();
        for k in 0..20 {
            if k != 7 {
                c.push((k, 50, [20.0 + 0.5 * k as f64, 30.0]));
            }
        }
        c.push((3, 80, [60.0, 30.0]));
        c.push((4, 80, [60.0, 31.0]));
        c.push((25, 80, [60.0, 30.0]));
        let chain = continuous_chain(&c, [1.0, 1.0], 1.0, 20.0, 5.0, 0.5);
        assert_eq!(chain.len(), 19);
        assert!(chain
            .iter()
            .all(|&(k, p)| k < 20 && (p[0] - (20.0 + 0.5 * k as f64)).abs() < 1e-9));
        assert!(continuous_chain(&[], [1.0, 1.0], 1.0, 20.0, 5.0, 0.5).is_empty());
    }
}
