//! Vector helpers and slice geometry (orientation, positions along the normal).

pub(crate) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(crate) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub(crate) fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

pub(crate) fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}

pub(crate) fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Row cosine, column cosine and normal of an Image Orientation (Patient).
pub(crate) fn orientation_axes(iop: &[f64; 6]) -> Option<[[f64; 3]; 3]> {
    let r = [iop[0], iop[1], iop[2]];
    let c = [iop[3], iop[4], iop[5]];
    let (nr, nc) = (norm(r), norm(c));
    if !(nr > 0.5 && nc > 0.5 && nr < 1.5 && nc < 1.5) {
        return None;
    }
    let r = scale(r, 1.0 / nr);
    let c = scale(c, 1.0 / nc);
    if dot(r, c).abs() > 1e-3 {
        return None;
    }
    let n = cross(r, c);
    // `+ 0.0` turns -0.0 into 0.0 (tidier reports).
    let tidy = |v: [f64; 3]| v.map(|x| x + 0.0);
    Some([tidy(r), tidy(c), tidy(scale(n, 1.0 / norm(n)))])
}
