//! Arithmetic on 3-vectors `[f64; 3]` (positions and directions in mm, in
//! patient or index space), shared by the geometry of the DICOM reader, the
//! phantom, the mesh steps and the vertebra split.

pub type V3 = [f64; 3];

#[inline]
pub fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

#[inline]
pub fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

#[inline]
pub fn scale(a: V3, s: f64) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}

/// `a + s·b`.
#[inline]
pub fn add_scaled(a: V3, b: V3, s: f64) -> V3 {
    [a[0] + s * b[0], a[1] + s * b[1], a[2] + s * b[2]]
}

#[inline]
pub fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[inline]
pub fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

#[inline]
pub fn norm(a: V3) -> f64 {
    dot(a, a).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_handed_and_consistent() {
        let (x, y) = ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]);
        assert_eq!(cross(x, y), [0.0, 0.0, 1.0]);
        assert_eq!(dot(x, y), 0.0);
        assert_eq!(norm([3.0, 4.0, 0.0]), 5.0);
        assert_eq!(add_scaled(x, y, 2.0), add(x, scale(y, 2.0)));
        assert_eq!(sub(add(x, y), y), x);
    }
}
