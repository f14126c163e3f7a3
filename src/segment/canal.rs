//! The spinal canal's centre line: the low-density tube the vertebral arches
//! surround, found in the axial slices where bone encloses it and carried
//! through the others.

/// Per slice, the largest canal candidate (slice, area in pixels, centre).
pub fn largest_per_slice(cands: &[(usize, usize, [f64; 2])]) -> Vec<(usize, [f64; 2])> {
    let mut out: Vec<(usize, usize, [f64; 2])> = Vec::new();
    for &(k, n, c) in cands {
        match out.last_mut() {
            Some(last) if last.0 == k => {
                if n > last.1 {
                    *last = (k, n, c);
                }
            }
            _ => out.push((k, n, c)),
        }
    }
    out.into_iter().map(|(k, _, c)| (k, c)).collect()
}

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
            let med = |a: usize| {
                let mut v: Vec<f64> = found[lo..hi].iter().map(|f| f.1[a]).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn largest_candidate_per_slice() {
        let c = vec![(0, 5, [1.0, 1.0]), (0, 9, [2.0, 2.0]), (3, 4, [3.0, 3.0])];
        assert_eq!(
            largest_per_slice(&c),
            vec![(0, [2.0, 2.0]), (3, [3.0, 3.0])]
        );
    }
}
