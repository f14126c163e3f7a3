//! Hausdorff distance between two triangle surfaces, mm.
//!
//! `d(A, B) = max(max_{a∈A} dist(a, B), max_{b∈B} dist(b, A))`, with
//! `dist(p, S)` the exact distance from a point to the nearest triangle of a
//! surface (not to its nearest vertex). The maxima are taken over sample
//! points of each surface: every vertex, and on every triangle the points of
//! a barycentric grid with a step of at most 1.5 × the sample spacing (by
//! default the finer mesh's mean edge length, so the coarse mesh is sampled
//! about as densely as the fine one is by its vertices). Because
//! `dist(·, S)` is 1-Lipschitz, the true distance can exceed the reported
//! one by at most about that step; in practice by far less, as the distance
//! between two nearby surfaces varies slowly (on the paper-grid phantom,
//! sampling 10 times more densely raised it by 2 %).
//!
//! Triangles are binned in a uniform grid; a query scans grid shells
//! outwards until no unseen triangle can be closer. Queries that find a
//! triangle closer than the largest distance found so far stop early (they
//! cannot raise the maximum), which makes the whole computation cost a few
//! triangle tests per sample.

use crate::surface::Mesh;
use crate::vec3::{add_scaled, dot, sub};
use rayon::prelude::*;

/// Options of [`hausdorff`].
#[derive(Clone, Copy, Debug, Default)]
pub struct HausdorffOptions {
    /// No point of a triangle is farther than this from a sample point, mm;
    /// `None`: the mean edge length of the finer of the two meshes.
    pub sample_spacing_mm: Option<f64>,
}

/// Both one-sided distances and their maximum, mm.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Hausdorff {
    /// max over A of the distance to B.
    pub a_to_b_mm: f64,
    /// max over B of the distance to A.
    pub b_to_a_mm: f64,
    /// The symmetric Hausdorff distance.
    pub hausdorff_mm: f64,
    /// Upper bound of what sampling can miss, mm.
    pub sample_spacing_mm: f64,
}

type P = [f64; 3];

/// `⌊x⌋` as an integer, without a libm call (no SSE4.1 `roundsd` in the
/// baseline x86-64 target). Saturates far outside `isize`'s range.
#[inline]
fn floor_i(x: f64) -> isize {
    let i = x as isize;
    i - isize::from((i as f64) > x)
}

/// A triangle prepared for point distance queries: corner `a`, edges
/// `ab`, `ac` and their dot products, so that a query needs two dot
/// products before it knows the nearest feature.
#[derive(Clone, Copy, Debug)]
struct Tri {
    a: [f32; 3],
    ab: [f32; 3],
    ac: [f32; 3],
    /// ab·ab, ab·ac, ac·ac.
    dots: [f32; 3],
}

impl Tri {
    /// Stored in f32 (half the memory of f64: the vertices are f32 already,
    /// and the edges and products lose about 1e-7 of their size), computed
    /// with in f64.
    fn new(a: P, b: P, c: P) -> Self {
        let f = |v: P| v.map(|x| x as f32);
        let (ab, ac) = (f(sub(b, a)), f(sub(c, a)));
        let (abd, acd) = (ab.map(f64::from), ac.map(f64::from));
        Tri {
            a: f(a),
            ab,
            ac,
            dots: [dot(abd, abd), dot(abd, acd), dot(acd, acd)].map(|x| x as f32),
        }
    }

    /// Squared distance from `p` (Ericson, Real-Time Collision Detection,
    /// 5.1.5, with the dot products against `p − b` and `p − c` derived
    /// from those against `p − a`).
    #[inline]
    fn dist2(&self, p: P) -> f64 {
        let (ab, ac) = (self.ab.map(f64::from), self.ac.map(f64::from));
        let [ab_ab, ab_ac, ac_ac] = self.dots.map(f64::from);
        let a = self.a.map(f64::from);
        let ap = sub(p, a);
        let d1 = dot(ab, ap);
        let d2 = dot(ac, ap);
        if d1 <= 0.0 && d2 <= 0.0 {
            return dot(ap, ap);
        }
        // Against p − b = ap − ab.
        let d3 = d1 - ab_ab;
        let d4 = d2 - ab_ac;
        if d3 >= 0.0 && d4 <= d3 {
            let bp = sub(ap, ab);
            return dot(bp, bp);
        }
        let vc = d1 * d4 - d3 * d2;
        if vc <= 0.0 && d1 >= 0.0 && d3 <= 0.0 {
            let v = d1 / (d1 - d3);
            let q = add_scaled(ap, ab, -v);
            return dot(q, q);
        }
        // Against p − c = ap − ac.
        let d5 = d1 - ab_ac;
        let d6 = d2 - ac_ac;
        if d6 >= 0.0 && d5 <= d6 {
            let cp = sub(ap, ac);
            return dot(cp, cp);
        }
        let vb = d5 * d2 - d1 * d6;
        if vb <= 0.0 && d2 >= 0.0 && d6 <= 0.0 {
            let w = d2 / (d2 - d6);
            let q = add_scaled(ap, ac, -w);
            return dot(q, q);
        }
        let va = d3 * d6 - d5 * d4;
        if va <= 0.0 && (d4 - d3) >= 0.0 && (d5 - d6) >= 0.0 {
            let w = (d4 - d3) / ((d4 - d3) + (d5 - d6));
            let q = add_scaled(sub(ap, ab), sub(ac, ab), -w);
            return dot(q, q);
        }
        let denom = va + vb + vc;
        if denom == 0.0 || !denom.is_finite() {
            // Degenerate triangle: nearest of its edges.
            let (b, c) = (add_scaled(a, ab, 1.0), add_scaled(a, ac, 1.0));
            let seg = |u: P, v: P| {
                let d = sub(v, u);
                let l = dot(d, d);
                let t = if l > 0.0 {
                    (dot(sub(p, u), d) / l).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let q = sub(p, add_scaled(u, d, t));
                dot(q, q)
            };
            return seg(a, b).min(seg(b, c)).min(seg(c, a));
        }
        let v = vb / denom;
        let w = vc / denom;
        let q = add_scaled(add_scaled(ap, ab, -v), ac, -w);
        dot(q, q)
    }
}

/// Squared distance from `p` to triangle `abc`.
#[cfg(test)]
fn dist2_point_triangle(p: P, a: P, b: P, c: P) -> f64 {
    Tri::new(a, b, c).dist2(p)
}

/// Mean edge length (of up to ~10 000 triangles spread over the mesh), mm.
pub fn mean_edge(mesh: &Mesh) -> f64 {
    let n = mesh.triangles.len();
    if n == 0 {
        return 0.0;
    }
    let step = (n / 10_000).max(1);
    let (mut sum, mut count) = (0.0, 0usize);
    for t in mesh.triangles.iter().step_by(step) {
        let p = t.map(|i| mesh.vertices[i as usize].map(|x| x as f64));
        for k in 0..3 {
            let d = sub(p[k], p[(k + 1) % 3]);
            sum += dot(d, d).sqrt();
            count += 1;
        }
    }
    sum / count as f64
}

/// A surface prepared for distance queries: its mesh and the mesh's
/// [`Index`].
pub struct Surface<'a> {
    mesh: &'a Mesh,
    index: Index,
}

/// What distance queries need of a mesh, owning no reference to it (so it
/// can be made while the mesh is in use elsewhere): its triangles binned in
/// a uniform grid, each with a bounding sphere for a cheap first test.
pub struct Index {
    lo: P,
    h: f64,
    dims: [usize; 3],
    offsets: Vec<u32>,
    ids: Vec<u32>,
    spheres: Vec<[f32; 4]>,
    /// Each triangle prepared for queries, f64, in one place (queries read
    /// them often).
    tris: Vec<Tri>,
    mean_edge: f64,
}

impl std::ops::Deref for Surface<'_> {
    type Target = Index;
    fn deref(&self) -> &Index {
        &self.index
    }
}

impl<'a> Surface<'a> {
    /// Bins the triangles of `mesh` (indices must be valid).
    pub fn new(mesh: &'a Mesh) -> Self {
        Surface {
            mesh,
            index: Index::new(mesh),
        }
    }

    /// `mesh` with its index made earlier; `None` if the index is not of a
    /// mesh with these triangles.
    pub(crate) fn with_index(mesh: &'a Mesh, index: Index) -> Option<Self> {
        (index.tris.len() == mesh.triangles.len()).then_some(Surface { mesh, index })
    }
}

impl Index {
    /// Bins the triangles of `mesh` (indices must be valid).
    pub fn new(mesh: &Mesh) -> Self {
        let (lo, hi) = mesh.bounds().unwrap_or(([0.0; 3], [0.0; 3]));
        let extent = sub(hi, lo);
        let mean_edge = mean_edge(mesh);
        // Cell ≈ 2 mean edge lengths, at most ~16 M cells.
        let mut h = 2.0 * mean_edge.max(1e-6);
        let cells = |h: f64| extent.map(|e| (e / h).floor() as usize + 1);
        while cells(h).iter().product::<usize>() > 16_000_000 {
            h *= 1.25;
        }
        let dims = cells(h);
        let ncell = dims[0] * dims[1] * dims[2];
        // Per triangle, in one parallel pass: its cell range, bounding
        // sphere and query form.
        type CellRange = ([u32; 3], [u32; 3]);
        let n = mesh.triangles.len();
        let mut ranges: Vec<CellRange> = vec![([0; 3], [0; 3]); n];
        let mut spheres = vec![[0f32; 4]; n];
        let mut tris = vec![Tri::new([0.0; 3], [0.0; 3], [0.0; 3]); n];
        (
            ranges.par_iter_mut(),
            spheres.par_iter_mut(),
            tris.par_iter_mut(),
            mesh.triangles.par_iter(),
        )
            .into_par_iter()
            .for_each(|(range, sphere, tri, t)| {
                let pts = t.map(|i| mesh.vertices[i as usize].map(|x| x as f64));
                let mut c0 = [u32::MAX; 3];
                let mut c1 = [0u32; 3];
                for p in pts {
                    for a in 0..3 {
                        let c =
                            (floor_i((p[a] - lo[a]) / h).max(0) as usize).min(dims[a] - 1) as u32;
                        c0[a] = c0[a].min(c);
                        c1[a] = c1[a].max(c);
                    }
                }
                let c = [0, 1, 2].map(|a| (pts[0][a] + pts[1][a] + pts[2][a]) / 3.0);
                let r = pts
                    .iter()
                    .map(|p| dot(sub(*p, c), sub(*p, c)))
                    .fold(0.0, f64::max)
                    .sqrt();
                // Rounded outwards so the sphere surely holds the triangle.
                let r = (r * (1.0 + 1e-6) + 1e-6) as f32;
                *range = (c0, c1);
                *sphere = [c[0] as f32, c[1] as f32, c[2] as f32, r];
                *tri = Tri::new(pts[0], pts[1], pts[2]);
            });
        let mut offsets = vec![0u32; ncell + 1];
        for (c0, c1) in &ranges {
            for z in c0[2]..=c1[2] {
                for y in c0[1]..=c1[1] {
                    let row = dims[0] * (y as usize + dims[1] * z as usize);
                    for x in c0[0]..=c1[0] {
                        offsets[row + x as usize + 1] += 1;
                    }
                }
            }
        }
        for i in 0..ncell {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut ids = vec![0u32; offsets[ncell] as usize];
        for (ti, (c0, c1)) in ranges.iter().enumerate() {
            for z in c0[2]..=c1[2] {
                for y in c0[1]..=c1[1] {
                    let row = dims[0] * (y as usize + dims[1] * z as usize);
                    for x in c0[0]..=c1[0] {
                        let c = row + x as usize;
                        ids[fill[c] as usize] = ti as u32;
                        fill[c] += 1;
                    }
                }
            }
        }
        Index {
            lo,
            h,
            dims,
            offsets,
            ids,
            spheres,
            tris,
            mean_edge,
        }
    }
}

impl Surface<'_> {
    #[inline]
    fn dist2(&self, t: u32, p: P) -> f64 {
        self.tris[t as usize].dist2(p)
    }

    /// Distance from p to the box of cell `c`, squared.
    fn box_dist2(&self, p: P, c: [isize; 3]) -> f64 {
        let mut d2 = 0.0;
        for a in 0..3 {
            let lo = self.lo[a] + c[a] as f64 * self.h;
            let hi = lo + self.h;
            let d = if p[a] < lo {
                lo - p[a]
            } else if p[a] > hi {
                p[a] - hi
            } else {
                0.0
            };
            d2 += d * d;
        }
        d2
    }

    /// A distance ≤ `enough` from `p` to some triangle, if there is one.
    fn within(&self, p: P, cell: [isize; 3], enough: f64, hint: &mut u32) -> Option<f64> {
        let enough2 = enough * enough;
        // Neighbour cells matter only across faces p is within `enough` of.
        let mut range = [(0isize, 0isize); 3];
        for a in 0..3 {
            let lo = self.lo[a] + cell[a] as f64 * self.h;
            let lo_n = if p[a] - lo < enough { -1 } else { 0 };
            let hi_n = if lo + self.h - p[a] < enough { 1 } else { 0 };
            range[a] = (lo_n, hi_n);
        }
        let mut scan = |c: [isize; 3]| -> Option<f64> {
            if (0..3).any(|a| c[a] < 0 || c[a] >= self.dims[a] as isize) {
                return None;
            }
            let i = c[0] as usize + self.dims[0] * (c[1] as usize + self.dims[1] * c[2] as usize);
            for &t in &self.ids[self.offsets[i] as usize..self.offsets[i + 1] as usize] {
                let sp = self.spheres[t as usize];
                let dc = sub(p, [sp[0] as f64, sp[1] as f64, sp[2] as f64]);
                let reach = sp[3] as f64 + enough;
                if dot(dc, dc) > reach * reach {
                    continue;
                }
                let d2 = self.dist2(t, p);
                if d2 <= enough2 {
                    *hint = t;
                    return Some(d2.sqrt());
                }
            }
            None
        };
        if let Some(d) = scan(cell) {
            return Some(d);
        }
        for dz in range[2].0..=range[2].1 {
            for dy in range[1].0..=range[1].1 {
                for dx in range[0].0..=range[0].1 {
                    if (dx, dy, dz) == (0, 0, 0) {
                        continue;
                    }
                    let c = [cell[0] + dx, cell[1] + dy, cell[2] + dz];
                    if self.box_dist2(p, c) > enough2 {
                        continue;
                    }
                    if let Some(d) = scan(c) {
                        return Some(d);
                    }
                }
            }
        }
        None
    }

    /// Distance from `p` to the surface, or any value ≤ `enough` as soon as
    /// one triangle is known to be that close.
    fn distance(&self, p: P, enough: f64, hint: &mut u32) -> f64 {
        // The triangle nearest to the previous (nearby) sample often settles it.
        if (*hint as usize) < self.mesh.triangles.len() {
            let d2 = self.dist2(*hint, p);
            if d2 <= enough * enough {
                return d2.sqrt();
            }
        }
        let cell: [isize; 3] = std::array::from_fn(|a| floor_i((p[a] - self.lo[a]) / self.h));
        // Most samples lie within `enough` of the surface: look only at the
        // triangles whose bounding spheres come that close, in the cells
        // that do; any hit settles the sample. Only the rare sample that is
        // farther needs the exact search below.
        if enough > 0.0 {
            if let Some(d) = self.within(p, cell, enough, hint) {
                return d;
            }
        }
        let enough2 = enough * enough;
        let mut best2 = f64::MAX;
        let max_r = self.dims.iter().copied().max().unwrap_or(1) as isize + 1;
        // Points outside the grid start at the shell that reaches the grid.
        let outside = (0..3)
            .map(|a| {
                let c = cell[a];
                if c < 0 {
                    -c
                } else if c >= self.dims[a] as isize {
                    c - self.dims[a] as isize + 1
                } else {
                    0
                }
            })
            .max()
            .unwrap_or(0);
        // Distance from p to the box of cell (x, y, z), squared.
        let box_dist2 = |x: isize, y: isize, z: isize| -> f64 {
            let mut d2 = 0.0;
            for (a, c) in [x, y, z].into_iter().enumerate() {
                let lo = self.lo[a] + c as f64 * self.h;
                let hi = lo + self.h;
                let d = if p[a] < lo {
                    lo - p[a]
                } else if p[a] > hi {
                    p[a] - hi
                } else {
                    0.0
                };
                d2 += d * d;
            }
            d2
        };
        // How far p is from the faces of its own cell: after scanning shells
        // 0..=r, every unseen triangle is at least r·h + margin away.
        let margin = (0..3)
            .map(|a| {
                let lo = self.lo[a] + cell[a] as f64 * self.h;
                (p[a] - lo).min(lo + self.h - p[a]).max(0.0)
            })
            .fold(f64::MAX, f64::min);
        let mut r = outside;
        while r <= max_r + outside {
            // Scan the shell at Chebyshev distance r, skipping cells farther
            // than the best distance so far.
            for dz in -r..=r {
                let z = cell[2] + dz;
                if z < 0 || z >= self.dims[2] as isize {
                    continue;
                }
                for dy in -r..=r {
                    let y = cell[1] + dy;
                    if y < 0 || y >= self.dims[1] as isize {
                        continue;
                    }
                    let on_face = dz.abs() == r || dy.abs() == r;
                    let step = if on_face { 1 } else { 2 * r.max(1) };
                    let mut dx = -r;
                    while dx <= r {
                        let x = cell[0] + dx;
                        if x >= 0
                            && x < self.dims[0] as isize
                            && (r == 0 || box_dist2(x, y, z) < best2)
                        {
                            let c = x as usize
                                + self.dims[0] * (y as usize + self.dims[1] * z as usize);
                            for &t in
                                &self.ids[self.offsets[c] as usize..self.offsets[c + 1] as usize]
                            {
                                // Sphere first: skip what cannot beat the best so far.
                                let sp = self.spheres[t as usize];
                                let dc = sub(p, [sp[0] as f64, sp[1] as f64, sp[2] as f64]);
                                let gap = dot(dc, dc).sqrt() - sp[3] as f64;
                                if gap > 0.0 && gap * gap >= best2 {
                                    continue;
                                }
                                let d2 = self.dist2(t, p);
                                if d2 < best2 {
                                    best2 = d2;
                                    *hint = t;
                                    if best2 <= enough2 {
                                        return best2.sqrt();
                                    }
                                }
                            }
                        }
                        if r == 0 {
                            break;
                        }
                        dx += step;
                    }
                }
            }
            let reach = r as f64 * self.h + if outside == 0 { margin } else { 0.0 };
            if best2 <= reach * reach {
                return best2.sqrt();
            }
            r += 1;
        }
        best2.sqrt()
    }
}

/// Sample points of `mesh`: its vertices and a barycentric grid on each
/// triangle with spacing at most `spacing` (interior and edge points; the
/// edge points of a shared edge are produced by both triangles).
fn for_each_sample(mesh: &Mesh, spacing: f64, f: impl Fn(P, &mut u32) + Sync + Send) {
    for_each_sample_of([mesh], spacing, |[p], hint| f(p, hint));
}

/// [`for_each_sample`] of `K` meshes with the same triangles (a surface and
/// its vertices moved) at once: `f` gets the same sample (vertex, or
/// barycentric point of the same triangle) on each, on a grid fine enough
/// for the coarsest of them.
fn for_each_sample_of<const K: usize>(
    meshes: [&Mesh; K],
    spacing: f64,
    f: impl Fn([P; K], &mut u32) + Sync + Send,
) {
    let first = meshes[0];
    let vertex = |m: &Mesh, i: u32| m.vertices[i as usize].map(|x| x as f64);
    (0..first.vertices.len()).into_par_iter().for_each_init(
        || u32::MAX,
        |hint, i| f(meshes.map(|m| vertex(m, i as u32)), hint),
    );
    first.triangles.par_iter().for_each_init(
        || u32::MAX,
        |hint, t| {
            let corners = meshes.map(|m| t.map(|i| vertex(m, i)));
            let longest = corners
                .iter()
                .map(|[a, b, c]| {
                    dot(sub(*b, *a), sub(*b, *a))
                        .max(dot(sub(*c, *b), sub(*c, *b)))
                        .max(dot(sub(*a, *c), sub(*a, *c)))
                })
                .fold(0.0, f64::max)
                .sqrt();
            // Grid step longest/n ≤ 1.5 × spacing: a mesh as fine as the
            // spacing is sampled at its vertices only.
            let n = ((longest / spacing).round() as usize).clamp(1, 64);
            if n == 1 {
                return;
            }
            let inv = 1.0 / n as f64;
            for i in 0..=n {
                for j in 0..=(n - i) {
                    let k = n - i - j;
                    if (i == n) || (j == n) || (k == n) {
                        continue; // the vertices, sampled above
                    }
                    // A point on an edge is sampled by the triangle that runs
                    // along the edge from its lower to its higher vertex (on
                    // a closed surface exactly one does); the other skips it.
                    let on_edge = if k == 0 {
                        Some((t[0], t[1]))
                    } else if i == 0 {
                        Some((t[1], t[2]))
                    } else if j == 0 {
                        Some((t[2], t[0]))
                    } else {
                        None
                    };
                    if matches!(on_edge, Some((x, y)) if x > y) {
                        continue;
                    }
                    let (u, v, w) = (i as f64 * inv, j as f64 * inv, k as f64 * inv);
                    let points = corners.map(|[a, b, c]| {
                        [
                            u * a[0] + v * b[0] + w * c[0],
                            u * a[1] + v * b[1] + w * c[1],
                            u * a[2] + v * b[2] + w * c[2],
                        ]
                    });
                    f(points, hint);
                }
            }
        },
    );
}

/// The largest distance found so far, shared by the threads (f64 bits:
/// non-negative floats order like their bits).
struct RunningMax(std::sync::atomic::AtomicU64);

impl RunningMax {
    fn new() -> Self {
        RunningMax(std::sync::atomic::AtomicU64::new(0f64.to_bits()))
    }

    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Measures `p` against `to`: exactly when it can raise the maximum.
    /// Returns the distance from `p` to some triangle of `to` (the one left
    /// in `hint`): the exact distance when above the maximum, an upper
    /// bound of it otherwise.
    fn query(&self, to: &Surface, p: P, hint: &mut u32) -> f64 {
        let cur = self.get();
        let d = to.distance(p, cur, hint);
        if d > cur {
            self.0
                .fetch_max(d.to_bits(), std::sync::atomic::Ordering::Relaxed);
        }
        d
    }
}

/// Largest distance from a sample of `from` to the surface `to`.
fn one_sided(from: &Mesh, to: &Surface, spacing: f64) -> f64 {
    let max = RunningMax::new();
    for_each_sample(from, spacing, |p, hint| {
        max.query(to, p, hint);
    });
    max.get()
}

/// Largest distances from the samples of `from` to `b` and to `c`, two
/// surfaces with the same triangles (one surface before and after its
/// vertices moved): the samples are made once, and each query of `c` starts
/// from the triangle the query of `b` found (the same triangle, moved a
/// little, usually settles it). A query of `c` that cannot raise its
/// maximum is skipped: that triangle in `c` is its place in `b` with each
/// point moved by at most the farthest its corners moved, so the distance
/// to `c` is at most the one found to `b` plus that (the maxima are the
/// same as with every query made).
fn one_sided_pair(from: &Mesh, b: &Surface, c: &Surface, spacing: f64) -> (f64, f64) {
    // Per triangle, how far its corners moved from `b` to `c` (at most).
    let moved: Vec<f32> = b
        .mesh
        .triangles
        .par_iter()
        .map(|t| {
            t.iter()
                .map(|&i| {
                    let (p, q) = (b.mesh.vertices[i as usize], c.mesh.vertices[i as usize]);
                    let d = sub(p.map(f64::from), q.map(f64::from));
                    dot(d, d)
                })
                .fold(0.0, f64::max)
                .sqrt() as f32
        })
        .collect();
    let (max_b, max_c) = (RunningMax::new(), RunningMax::new());
    for_each_sample(from, spacing, |p, hint| {
        let d = max_b.query(b, p, hint);
        let reach = moved
            .get(*hint as usize)
            .map_or(f64::INFINITY, |&m| f64::from(m));
        if d + reach > max_c.get() {
            max_c.query(c, p, &mut hint.clone());
        }
    });
    (max_b.get(), max_c.get())
}

/// Largest distances from the samples of `b` and of `c` (the same
/// triangles, vertices moved) to `to`: made together, each query for `c`'s
/// sample starting from the triangle `b`'s found, and skipped when it cannot
/// raise `c`'s maximum (the distance to `to` moves by no more than the
/// sample does, from `b` to `c`).
fn one_sided_from_pair(b: &Mesh, c: &Mesh, to: &Surface, spacing: f64) -> (f64, f64) {
    let (max_b, max_c) = (RunningMax::new(), RunningMax::new());
    for_each_sample_of([b, c], spacing, |[pb, pc], hint| {
        let d = max_b.query(to, pb, hint);
        let step = dot(sub(pb, pc), sub(pb, pc)).sqrt();
        if d + step > max_c.get() {
            max_c.query(to, pc, &mut hint.clone());
        }
    });
    (max_b.get(), max_c.get())
}

/// [`hausdorff_between`] of `a` against `b` and against `c`, where `b` and
/// `c` have the same triangles (a surface before and after its vertices
/// moved, such as the smoothed and the raw surface): `a`'s samples are made
/// once for both, `b`'s and `c`'s together (on the grid the coarser of the
/// two needs, so `b` or `c` may be sampled a little more densely than
/// alone), and each query for `c` starts from the triangle `b`'s found. Both
/// use the same sample spacing (by default the mean edge of the finest of
/// the three). Surfaces with different triangles are measured one by one.
pub fn hausdorff_between_pair(
    a: &Surface,
    b: &Surface,
    c: &Surface,
    opts: &HausdorffOptions,
) -> (Hausdorff, Hausdorff) {
    let empty_any = [a, b, c].iter().any(|s| s.mesh.triangles.is_empty());
    if empty_any || b.mesh.triangles != c.mesh.triangles {
        return (hausdorff_between(a, b, opts), hausdorff_between(a, c, opts));
    }
    let spacing = opts
        .sample_spacing_mm
        .unwrap_or_else(|| a.mean_edge.min(b.mean_edge).min(c.mean_edge))
        .max(1e-3);
    let ((ab, ac), (ba, ca)) = rayon::join(
        || one_sided_pair(a.mesh, b, c, spacing),
        || one_sided_from_pair(b.mesh, c.mesh, a, spacing),
    );
    let h = |x: f64, y: f64| Hausdorff {
        a_to_b_mm: x,
        b_to_a_mm: y,
        hausdorff_mm: x.max(y),
        sample_spacing_mm: spacing,
    };
    (h(ab, ba), h(ac, ca))
}

/// Symmetric Hausdorff distance between two surfaces (see module docs).
/// Empty meshes give 0 when both are empty and infinity otherwise.
pub fn hausdorff(a: &Mesh, b: &Mesh, opts: &HausdorffOptions) -> Hausdorff {
    if a.triangles.is_empty() || b.triangles.is_empty() {
        return empty(a, b, opts.sample_spacing_mm.unwrap_or(0.0));
    }
    let (sa, sb) = rayon::join(|| Surface::new(a), || Surface::new(b));
    hausdorff_between(&sa, &sb, opts)
}

fn empty(a: &Mesh, b: &Mesh, spacing: f64) -> Hausdorff {
    let d = if a.triangles.is_empty() && b.triangles.is_empty() {
        0.0
    } else {
        f64::INFINITY
    };
    Hausdorff {
        a_to_b_mm: d,
        b_to_a_mm: d,
        hausdorff_mm: d,
        sample_spacing_mm: spacing,
    }
}

/// As [`hausdorff`], for surfaces already prepared (to measure one surface
/// against several without binning it again).
pub fn hausdorff_between(a: &Surface, b: &Surface, opts: &HausdorffOptions) -> Hausdorff {
    let spacing = opts
        .sample_spacing_mm
        .unwrap_or_else(|| a.mean_edge.min(b.mean_edge))
        .max(1e-3);
    if a.mesh.triangles.is_empty() || b.mesh.triangles.is_empty() {
        return empty(a.mesh, b.mesh, spacing);
    }
    let (ab, ba) = rayon::join(
        || one_sided(a.mesh, b, spacing),
        || one_sided(b.mesh, a, spacing),
    );
    Hausdorff {
        a_to_b_mm: ab,
        b_to_a_mm: ba,
        hausdorff_mm: ab.max(ba),
        sample_spacing_mm: spacing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_triangle_distance_regions() {
        let (a, b, c) = ([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]);
        let d = |p: P| dist2_point_triangle(p, a, b, c).sqrt();
        assert!((d([0.2, 0.2, 3.0]) - 3.0).abs() < 1e-12); // face
        assert!((d([-1.0, -1.0, 0.0]) - 2f64.sqrt()).abs() < 1e-12); // vertex a
        assert!((d([0.5, -2.0, 0.0]) - 2.0).abs() < 1e-12); // edge ab
        assert!((d([1.0, 1.0, 0.0]) - 0.5f64.sqrt()).abs() < 1e-12); // edge bc
        assert!((d([3.0, 0.0, 4.0]) - 20f64.sqrt()).abs() < 1e-12); // vertex b
    }

    #[test]
    fn point_triangle_distance_matches_dense_sampling() {
        // Random triangles (some nearly collinear) and points all around
        // them: the exact distance never exceeds the nearest point of a dense
        // barycentric grid on the triangle and lies within that grid's
        // resolution of it.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0
        };
        for _ in 0..200 {
            let a = [rnd(), rnd(), rnd()];
            let b = [rnd(), rnd(), rnd()];
            let mut c = [rnd(), rnd(), rnd()];
            if rnd() > 1.0 {
                c = add_scaled(a, sub(b, a), 0.3 + 1e-4 * rnd());
            }
            let p = [2.0 * rnd(), 2.0 * rnd(), 2.0 * rnd()];
            let exact = dist2_point_triangle(p, a, b, c).sqrt();
            let n = 300;
            let mut best = f64::MAX;
            for i in 0..=n {
                for j in 0..=(n - i) {
                    let (u, v) = (i as f64 / n as f64, j as f64 / n as f64);
                    let q = add_scaled(add_scaled(a, sub(b, a), u), sub(c, a), v);
                    let d = sub(p, q);
                    best = best.min(dot(d, d).sqrt());
                }
            }
            let longest = dot(sub(b, a), sub(b, a))
                .max(dot(sub(c, a), sub(c, a)))
                .max(dot(sub(c, b), sub(c, b)))
                .sqrt();
            // (Triangles are stored in f32: about 1e-7 of the coordinates.)
            assert!(exact <= best + 1e-6, "{exact} > {best}");
            assert!(
                best - exact <= 2.0 * longest / n as f64,
                "{exact} vs {best}"
            );
        }
    }

    fn cube(s: f32, off: [f32; 3]) -> Mesh {
        let v = (0..8)
            .map(|i| {
                [
                    off[0] + s * (i & 1) as f32,
                    off[1] + s * ((i >> 1) & 1) as f32,
                    off[2] + s * ((i >> 2) & 1) as f32,
                ]
            })
            .collect();
        let quads = [
            [0, 2, 3, 1],
            [4, 5, 7, 6],
            [0, 1, 5, 4],
            [2, 6, 7, 3],
            [0, 4, 6, 2],
            [1, 3, 7, 5],
        ];
        let mut t = Vec::new();
        for q in quads {
            t.push([q[0], q[1], q[2]]);
            t.push([q[0], q[2], q[3]]);
        }
        Mesh {
            vertices: v,
            triangles: t,
        }
    }

    #[test]
    fn nested_cubes_are_their_gap_apart() {
        // Cube of side 10 and one of side 8 centred in it: the outer cube's
        // corners are √3 from the inner's, the inner's faces 1 from the outer's.
        let outer = cube(10.0, [0.0; 3]);
        let inner = cube(8.0, [1.0; 3]);
        let h = hausdorff(&outer, &inner, &HausdorffOptions::default());
        assert!((h.a_to_b_mm - 3f64.sqrt()).abs() < 1e-5, "{h:?}");
        assert!((h.b_to_a_mm - 1.0).abs() < 1e-5, "{h:?}");
        let same = hausdorff(&outer, &outer, &HausdorffOptions::default());
        assert!(same.hausdorff_mm < 1e-9);
    }

    #[test]
    fn a_pair_of_moved_surfaces_measures_as_each_alone() {
        // b and c: the same triangles, c's vertices moved (as smoothing does).
        let a = cube(10.0, [0.0; 3]);
        let b = cube(8.0, [1.0; 3]);
        let mut c = b.clone();
        for (k, v) in c.vertices.iter_mut().enumerate() {
            v[k % 3] += 0.05 * (k as f32 + 1.0);
        }
        let (sa, sb, sc) = (Surface::new(&a), Surface::new(&b), Surface::new(&c));
        for spacing in [None, Some(0.7)] {
            let opts = HausdorffOptions {
                sample_spacing_mm: spacing,
            };
            let (hb, hc) = hausdorff_between_pair(&sa, &sb, &sc, &opts);
            // Alone, at the spacing the pair used.
            let alone = HausdorffOptions {
                sample_spacing_mm: Some(hb.sample_spacing_mm),
            };
            assert_eq!(hb, hausdorff_between(&sa, &sb, &alone));
            assert_eq!(hc, hausdorff_between(&sa, &sc, &alone));
            assert_eq!(hb.sample_spacing_mm, hc.sample_spacing_mm);
        }
        // Different triangles: measured one by one, each at its own spacing.
        let mut d = cube(3.0, [2.0; 3]);
        d.triangles.reverse();
        let sd = Surface::new(&d);
        let opts = HausdorffOptions::default();
        let (hb, hd) = hausdorff_between_pair(&sa, &sb, &sd, &opts);
        assert_eq!(hb, hausdorff_between(&sa, &sb, &opts));
        assert_eq!(hd, hausdorff_between(&sa, &sd, &opts));
    }

    #[test]
    fn a_shifted_cube_is_the_shift_apart() {
        let a = cube(5.0, [0.0; 3]);
        let b = cube(5.0, [0.3, 0.0, 0.0]);
        let h = hausdorff(&a, &b, &HausdorffOptions::default());
        assert!((h.hausdorff_mm - 0.3).abs() < 1e-5, "{h:?}");
        // A point far outside the grid of the other mesh.
        let far = cube(1.0, [100.0, 0.0, 0.0]);
        let h = hausdorff(&a, &far, &HausdorffOptions::default());
        assert!(h.hausdorff_mm > 95.0 && h.hausdorff_mm.is_finite(), "{h:?}");
    }

    #[test]
    fn each_cell_lists_the_triangles_reaching_it_in_order() {
        // Triangles of all sizes scattered in a box: every cell lists the
        // triangles whose corners' cell range covers it, in ascending order.
        let mut seed = 11u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 40) as f32 / (1u64 << 24) as f32
        };
        let mut mesh = Mesh {
            vertices: Vec::new(),
            triangles: Vec::new(),
        };
        for t in 0..3000u32 {
            let c = [40.0 * next(), 30.0 * next(), 50.0 * next()];
            let r = if t % 50 == 0 { 15.0 } else { 1.5 };
            for _ in 0..3 {
                mesh.vertices
                    .push(std::array::from_fn(|a| c[a] + r * (next() - 0.5)));
            }
            mesh.triangles.push([3 * t, 3 * t + 1, 3 * t + 2]);
        }
        let index = Index::new(&mesh);
        let [nx, ny, _] = index.dims;
        let mut want: Vec<Vec<u32>> = vec![Vec::new(); index.offsets.len() - 1];
        for (ti, t) in mesh.triangles.iter().enumerate() {
            let cells: Vec<[usize; 3]> = t
                .iter()
                .map(|&i| {
                    std::array::from_fn(|a| {
                        let x = (mesh.vertices[i as usize][a] as f64 - index.lo[a]) / index.h;
                        (floor_i(x).max(0) as usize).min(index.dims[a] - 1)
                    })
                })
                .collect();
            let lo: [usize; 3] = std::array::from_fn(|a| cells.iter().map(|c| c[a]).min().unwrap());
            let hi: [usize; 3] = std::array::from_fn(|a| cells.iter().map(|c| c[a]).max().unwrap());
            for z in lo[2]..=hi[2] {
                for y in lo[1]..=hi[1] {
                    for x in lo[0]..=hi[0] {
                        want[x + nx * (y + ny * z)].push(ti as u32);
                    }
                }
            }
        }
        for (c, w) in want.iter().enumerate() {
            let got = &index.ids[index.offsets[c] as usize..index.offsets[c + 1] as usize];
            assert_eq!(got, &w[..], "cell {c}");
        }
        assert!(index.dims.iter().all(|&d| d > 8), "{:?}", index.dims);
    }
}
