//! Decimation to a target triangle count that keeps a closed 2-manifold.
//!
//! Quadric-error edge collapse (Garland & Heckbert), scheduled in passes the
//! way meshoptimizer's simplifier does it: each pass ranks every edge by the
//! error of collapsing it, then performs the cheapest collapses in order,
//! skipping any that would move a vertex already touched in the pass, until
//! the pass's share of the goal is met. Unlike meshoptimizer, every collapse
//! `a → b` must pass the checks that keep the surface a 2-manifold:
//!
//! - **link condition**: the vertices adjacent to both `a` and `b` are exactly
//!   the two opposite corners of the edge's triangles. Without it a collapse
//!   across a thin neck (two voxels touching at an edge, a rib's thin
//!   cortex) pinches two sheets onto one edge or one vertex;
//! - those two opposite corners keep at least three neighbours each, so no
//!   tetrahedron collapses into a doubled triangle;
//! - **no flips**: no triangle around `a` turns by more than ~75°, and none
//!   becomes a needle (quality `4√3·area / Σ edge²` below 0.05 while it was
//!   better before).
//!
//! Passes run in parallel: the mesh is cut into slabs along its longest
//! axis, and the vertices next to a cut (the band) are left alone in that
//! pass, so the slabs touch disjoint vertices and triangles; the cuts move
//! between passes so the bands are decimated too.
//!
//! Vertices that are not manifold in the input (its holes or pinches, if
//! any) are frozen: never moved and never a target, so defects of an input
//! are kept as they were but never grow. After the collapses, each vertex is
//! moved to the point that minimises its accumulated quadric when that
//! flips no triangle (optimal placement), which follows the original
//! surface more closely than keeping the vertex where it was.

use crate::surface::Mesh;
use crate::vec3::{cross, dot, sub};
use crate::{Error, Result};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, Ordering::Relaxed};

/// What decimation did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct DecimateReport {
    pub target_triangles: usize,
    pub triangles_before: usize,
    pub triangles_after: usize,
    /// Collapse passes run.
    pub passes: usize,
    /// Input vertices that were frozen because they were not manifold.
    pub frozen_vertices: usize,
    /// Collapses refused by the link condition (they would have pinched the
    /// surface).
    pub refused_link: usize,
    /// Collapses refused because a triangle would have flipped or become a needle.
    pub refused_flip: usize,
    /// Collapses refused because they would have changed the volume of
    /// their piece by more than 10 % (small pieces keep their shape).
    pub refused_volume: usize,
    /// Slabs processed in parallel per pass (1 for small meshes).
    pub slabs: usize,
    /// Times the vertex rings had to be rebuilt from the triangles instead
    /// of following the collapses (0 unless something is off).
    pub ring_rebuilds: usize,
    /// Square root of the largest quadric error of a performed collapse, mm
    /// (an RMS-like distance to the merged planes, not the Hausdorff distance).
    pub max_quadric_error_mm: f64,
}

/// A vertex's quadric error, centred on the vertex `p` it belongs to:
/// `Q(x) = dᵀAd + 2gᵀd + e` with `d = x − p`. Centred, the terms stay the
/// size of the error itself (not of the coordinates squared), so f32 holds
/// them: 40 bytes a vertex instead of 80, on the arrays every pass walks.
/// `e` is the error at the vertex itself.
#[derive(Clone, Copy, Default)]
struct Quadric {
    /// A: xx, xy, xz, yy, yz, zz.
    a: [f32; 6],
    g: [f32; 3],
    e: f32,
}

impl Quadric {
    /// The error at offset `d` from the vertex, clamped at 0.
    fn eval(&self, d: [f64; 3]) -> f64 {
        self.eval_raw(d).max(0.0)
    }
    /// The error at offset `d` from the vertex, without clamping rounding
    /// errors at 0 (computed in f64).
    #[inline]
    fn eval_raw(&self, d: [f64; 3]) -> f64 {
        let a = self.a.map(f64::from);
        let g = self.g.map(f64::from);
        let [x, y, z] = d;
        x * (a[0] * x + 2.0 * (a[1] * y + a[2] * z + g[0]))
            + y * (a[3] * y + 2.0 * (a[4] * z + g[1]))
            + z * (a[5] * z + 2.0 * g[2])
            + f64::from(self.e)
    }
    /// This quadric added to `to`'s, centred on `to`'s vertex, which lies
    /// at offset `delta` from this one's.
    fn merged_into(&self, to: &Quadric, delta: [f64; 3]) -> Quadric {
        let a = self.a.map(f64::from);
        let [x, y, z] = delta;
        // Recentring: g gains A·delta, e gains the error at the new centre.
        let ad = [
            a[0] * x + a[1] * y + a[2] * z,
            a[1] * x + a[3] * y + a[4] * z,
            a[2] * x + a[4] * y + a[5] * z,
        ];
        Quadric {
            a: std::array::from_fn(|k| (a[k] + f64::from(to.a[k])) as f32),
            g: std::array::from_fn(|k| (f64::from(self.g[k]) + ad[k] + f64::from(to.g[k])) as f32),
            e: (self.eval_raw(delta) + f64::from(to.e)) as f32,
        }
    }
    /// The offset from the vertex that minimises the error, when the 3×3
    /// system is well conditioned.
    fn minimiser(&self) -> Option<[f64; 3]> {
        let q = self.a.map(f64::from);
        let m = [[q[0], q[1], q[2]], [q[1], q[3], q[4]], [q[2], q[4], q[5]]];
        let r = self.g.map(|g| -f64::from(g));
        let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
        let scale = (q[0] + q[3] + q[5]).powi(3);
        // Also refuses NaN (a comparison with NaN is false).
        let well_posed = scale > 0.0 && det.abs() > 1e-6 * scale;
        if !well_posed {
            return None;
        }
        let solve = |col: usize| {
            let mut a = m;
            for row in 0..3 {
                a[row][col] = r[row];
            }
            (a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
                - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
                + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]))
                / det
        };
        let d = [solve(0), solve(1), solve(2)];
        d.iter().all(|v| v.is_finite()).then_some(d)
    }
}

/// 4√3·area / Σ edge²: 1 for an equilateral triangle, 0 for a degenerate one.
fn quality(a: [f64; 3], b: [f64; 3], c: [f64; 3]) -> f64 {
    let n = cross(sub(b, a), sub(c, a));
    let area2 = dot(n, n).sqrt(); // twice the area
    let s = dot(sub(b, a), sub(b, a)) + dot(sub(c, b), sub(c, b)) + dot(sub(a, c), sub(a, c));
    if s > 0.0 {
        2.0 * 3f64.sqrt() * area2 / s
    } else {
        0.0
    }
}

/// `quality(a, b, c) < MIN_QUALITY`, given `n = (b − a) × (c − a)`, without
/// a square root: 2√3·|n| < MIN_QUALITY·s ⇔ 12|n|² < MIN_QUALITY²·s².
fn below_min_quality(n: [f64; 3], a: [f64; 3], b: [f64; 3], c: [f64; 3]) -> bool {
    let s = dot(sub(b, a), sub(b, a)) + dot(sub(c, b), sub(c, b)) + dot(sub(a, c), sub(a, c));
    s.is_nan() || s <= 0.0 || 12.0 * dot(n, n) < MIN_QUALITY * MIN_QUALITY * s * s
}

/// Whether triangle (`from`, x, y) may become (`to`, x, y): its normal turns
/// by less than ~75° and it does not become a needle it was not already.
/// The normals compared squared (no square roots on this hot path).
fn keeps_shape(from: [f64; 3], to: [f64; 3], px: [f64; 3], py: [f64; 3]) -> bool {
    let n0 = cross(sub(px, from), sub(py, from));
    let n1 = cross(sub(px, to), sub(py, to));
    // n0·n1 > FLIP_COS |n0||n1|.
    let c = dot(n0, n1);
    if c <= 0.0 || c * c <= FLIP_COS * FLIP_COS * (dot(n0, n0) * dot(n1, n1)) {
        return false;
    }
    !(below_min_quality(n1, to, px, py) && quality(to, px, py) < quality(from, px, py))
}

/// Largest angle a triangle's normal may turn in one collapse: cos ≈ 0.25 (~75°).
const FLIP_COS: f64 = 0.25;
/// Needle threshold on [`quality`].
const MIN_QUALITY: f64 = 0.05;

/// Per-vertex state that survives across passes.
struct State {
    pos: Vec<[f64; 3]>,
    /// Each vertex's quadric, centred on it.
    quadrics: Vec<Quadric>,
    frozen: Vec<bool>,
    triangles: Vec<[u32; 3]>,
    /// Triangles at each vertex.
    valence: Vec<u32>,
    /// Connected piece of each vertex (collapses never merge or split pieces).
    piece: Vec<u32>,
    /// Enclosed volume of each piece, mm³ (f64 bits).
    piece_volume: Vec<AtomicU64>,
}

/// Ordered one-rings of all vertices: for a manifold vertex `v` with ring
/// `r₀ … r_{k−1}` its triangles are `(v, rᵢ, rᵢ₊₁)` in their winding. The
/// ring of `v` occupies as many slots as `v` has triangles; `ok[v]` is false
/// when those triangles do not form one closed fan (a non-manifold vertex).
pub(crate) struct Rings {
    pub(crate) offsets: Vec<u32>,
    pub(crate) ids: Vec<u32>,
    pub(crate) ok: Vec<bool>,
}

impl Rings {
    pub(crate) fn new(nv: usize, tris: &[[u32; 3]]) -> Self {
        let (offsets, corners) = super::topology::corner_rows(nv, tris);
        let mut ids = vec![0u32; corners.len()];
        let mut ok = vec![false; nv];
        // Chain each vertex's link edges (the edge opposite each of its
        // corners, in winding order), in parallel over vertex ranges.
        let chunks = split_ranges(nv, &offsets, &mut ids, &mut ok);
        chunks.into_par_iter().for_each(|(v0, ids, ok)| {
            let base = offsets[v0] as usize;
            let mut link: Vec<(u32, u32)> = Vec::with_capacity(16);
            for (k, okv) in ok.iter_mut().enumerate() {
                let v = v0 + k;
                let (s, e) = (offsets[v] as usize, offsets[v + 1] as usize);
                link.clear();
                link.extend(corners[s..e].iter().map(|&c| {
                    let (t, k) = (tris[c as usize / 3], c as usize % 3);
                    (t[(k + 1) % 3], t[(k + 2) % 3])
                }));
                *okv = chain(&link, &mut ids[s - base..e - base]);
            }
        });
        Rings { offsets, ids, ok }
    }

    /// The rings after a pass, from the rings before it: each vertex's ring
    /// remapped, and a target's ring with its source's ring spliced in.
    /// With `compact`, the rings come out already renumbered to the kept
    /// vertices (see [`Compaction`]). `None` if any ring does not come out
    /// as a simple cycle of the vertex's triangle count (then rebuild with
    /// [`Rings::new`]).
    fn update(
        &self,
        remap: &[u32],
        source: &[u32],
        st: &State,
        compact: Option<&Compaction>,
    ) -> Option<Self> {
        // Vertex k of the result is `old(k)` of the pass.
        let n = compact.map_or(remap.len(), |c| c.keep.len());
        let old = |k: usize| compact.map_or(k, |c| c.keep[k] as usize);
        let new_id = |x: u32| compact.map_or(x, |c| c.map[x as usize]);
        let keep = |v: usize| remap[v] == v as u32 && !st.frozen[v] && self.ok[v];
        let mut offsets = vec![0u32; n + 1];
        offsets[1..].par_iter_mut().enumerate().for_each(|(k, o)| {
            let v = old(k);
            *o = if keep(v) { st.valence[v] } else { 0 };
        });
        for k in 0..n {
            offsets[k + 1] += offsets[k];
        }
        let mut ids = vec![0u32; offsets[n] as usize];
        let mut ok = vec![false; n];
        let chunks = split_ranges(n, &offsets, &mut ids, &mut ok);
        let good = chunks.into_par_iter().all(|(k0, ids, ok)| {
            let base = offsets[k0] as usize;
            let mut buf: Vec<u32> = Vec::with_capacity(32);
            let mut out: Vec<u32> = Vec::with_capacity(32);
            for (i, okv) in ok.iter_mut().enumerate() {
                let k = k0 + i;
                let v = old(k);
                if !keep(v) {
                    continue;
                }
                let old_ring = self.of(v as u32);
                let a = source[v];
                let (s, e) = (offsets[k] as usize - base, offsets[k + 1] as usize - base);
                // Most rings are untouched by a pass: a valid ring stays one.
                if a == NONE && old_ring.len() == e - s {
                    let untouched = match compact {
                        // Collapsed vertices are exactly those dropped (no
                        // triangles left): one lookup per neighbour.
                        Some(c) => {
                            let mut all = true;
                            for (dst, &x) in ids[s..e].iter_mut().zip(old_ring) {
                                *dst = c.map[x as usize];
                                all &= *dst != NONE;
                            }
                            all
                        }
                        None => {
                            let all = old_ring.iter().all(|&x| remap[x as usize] == x);
                            if all {
                                ids[s..e].copy_from_slice(old_ring);
                            }
                            all
                        }
                    };
                    if untouched {
                        *okv = true;
                        continue;
                    }
                }
                buf.clear();
                if a == NONE {
                    buf.extend_from_slice(old_ring);
                } else {
                    // ring(v) = … d, a, c …; ring(a) = … c, v, d, x₁ … x_k, …:
                    // put d x₁ … x_k c in place of a.
                    let ra = self.of(a);
                    let (Some(i), Some(j)) = (
                        old_ring.iter().position(|&x| x == a),
                        ra.iter().position(|&x| x == v as u32),
                    ) else {
                        return false;
                    };
                    buf.extend_from_slice(&old_ring[..i]);
                    let n = ra.len();
                    for s in 1..n {
                        buf.push(ra[(j + s) % n]);
                    }
                    buf.extend_from_slice(&old_ring[i + 1..]);
                }
                out.clear();
                for &x in &buf {
                    let y = remap[x as usize];
                    if out.last() != Some(&y) {
                        out.push(y);
                    }
                }
                while out.len() > 1 && out.first() == out.last() {
                    out.pop();
                }
                if out.len() != e - s || (1..out.len()).any(|i| out[..i].contains(&out[i])) {
                    return false;
                }
                for (dst, &x) in ids[s..e].iter_mut().zip(&out) {
                    *dst = new_id(x);
                }
                // A kept ring names only kept vertices.
                if ids[s..e].contains(&NONE) {
                    return false;
                }
                *okv = true;
            }
            true
        });
        good.then_some(Rings { offsets, ids, ok })
    }

    #[inline]
    pub(crate) fn of(&self, v: u32) -> &[u32] {
        &self.ids[self.offsets[v as usize] as usize..self.offsets[v as usize + 1] as usize]
    }
}

/// Splits vertex ranges (about 256 of them) with their slices of `ids`
/// (laid out by `offsets`) and of `flags`, for parallel filling.
fn split_ranges<'a, T>(
    nv: usize,
    offsets: &[u32],
    ids: &'a mut [u32],
    flags: &'a mut [T],
) -> Vec<(usize, &'a mut [u32], &'a mut [T])> {
    let step = nv.div_ceil(256).max(1);
    let mut out = Vec::new();
    let (mut ids, mut flags) = (ids, flags);
    let mut v0 = 0;
    while v0 < nv {
        let v1 = (v0 + step).min(nv);
        let n_ids = (offsets[v1] - offsets[v0]) as usize;
        let (a, rest_ids) = ids.split_at_mut(n_ids);
        let (b, rest_flags) = flags.split_at_mut(v1 - v0);
        out.push((v0, a, b));
        ids = rest_ids;
        flags = rest_flags;
        v0 = v1;
    }
    out
}

/// Chains link edges `(x → y)` into one cycle written to `out`; false when
/// they do not form exactly one simple cycle.
fn chain(link: &[(u32, u32)], out: &mut [u32]) -> bool {
    let n = link.len();
    // Fewer than 3 triangles cannot close a fan; hundreds at one vertex
    // only come from broken input (and would make the searches slow).
    if !(3..=512).contains(&n) {
        return false;
    }
    let mut cur = link[0].0;
    for slot in out.iter_mut() {
        *slot = cur;
        match link.iter().find(|e| e.0 == cur) {
            Some(e) => cur = e.1,
            None => return false,
        }
    }
    if cur != link[0].0 {
        return false;
    }
    // Every vertex once (else the fan is two cycles or a repeated edge).
    (1..n).all(|i| !out[..i].contains(&out[i]))
}

const NONE: u32 = u32::MAX;

/// Shared state of one pass. Slabs run in parallel but touch disjoint
/// vertices, so relaxed atomics only make the sharing expressible.
struct Pass<'a> {
    st: &'a State,
    rings: &'a Rings,
    valence: Vec<AtomicU32>,
    remap: Vec<AtomicU32>,
    locked: Vec<AtomicBool>,
    /// Enclosed volume of each piece (f64 bits), updated during the pass by
    /// the piece's home slab only.
    piece_volume: &'a [AtomicU64],
    /// The slab each piece lies in, or [`HOME_MANY`].
    home: &'a [u16],
}

const HOME_UNSET: u16 = u16::MAX - 1;
const HOME_MANY: u16 = u16::MAX;

impl Pass<'_> {
    #[inline]
    fn remap(&self, v: u32) -> u32 {
        self.remap[v as usize].load(Relaxed)
    }
    #[inline]
    fn valence(&self, v: u32) -> u32 {
        self.valence[v as usize].load(Relaxed)
    }
    #[inline]
    fn locked(&self, v: u32) -> bool {
        self.locked[v as usize].load(Relaxed)
    }

    /// The current ring of an unlocked manifold vertex: its pass-start ring
    /// remapped (a vertex moves at most once per pass, and never onto one
    /// that moved), with repeats from a neighbour collapsed onto the next
    /// one merged. False when that is not a simple cycle of 3 or more.
    fn ring(&self, v: u32, out: &mut Vec<u32>) -> bool {
        out.clear();
        for &x in self.rings.of(v) {
            let y = self.remap(x);
            if out.last() != Some(&y) {
                out.push(y);
            }
        }
        while out.len() > 1 && out.first() == out.last() {
            out.pop();
        }
        if out.len() < 3 {
            return false;
        }
        for i in 1..out.len() {
            if out[..i].contains(&out[i]) {
                return false;
            }
        }
        true
    }
}

#[derive(Default)]
struct Scratch {
    ra: Vec<u32>,
    rb: Vec<u32>,
}

enum Refusal {
    Link,
    Flip,
    Volume,
}

/// Largest change of a piece's enclosed volume one collapse may make, as a
/// fraction of it: small closed pieces cannot be turned inside out by a
/// series of collapses that each look harmless.
const MAX_PIECE_VOLUME_CHANGE: f64 = 0.1;

/// Checks the collapse `a → b` (see module docs); returns the two opposite
/// corners.
fn can_collapse(p: &Pass, a: u32, b: u32, s: &mut Scratch) -> Result<([u32; 2], f64), Refusal> {
    if !p.ring(a, &mut s.ra) || !p.ring(b, &mut s.rb) {
        return Err(Refusal::Link);
    }
    let ra = &s.ra;
    let n = ra.len();
    let i = ra.iter().position(|&x| x == b).ok_or(Refusal::Link)?;
    let c = ra[(i + n - 1) % n];
    let d = ra[(i + 1) % n];
    // Link condition: the common neighbours are exactly c and d.
    let mut common = 0;
    for &x in ra {
        if s.rb.contains(&x) {
            if x != c && x != d {
                return Err(Refusal::Link);
            }
            common += 1;
        }
    }
    if common != 2 {
        return Err(Refusal::Link);
    }
    // c and d lose a triangle each and must keep three; so must the merged vertex.
    if p.valence(c) < 4 || p.valence(d) < 4 || p.valence(a) + p.valence(b) < 4 + 3 {
        return Err(Refusal::Link);
    }
    // No flips, no new needles: triangles (a, rⱼ, rⱼ₊₁) off the edge.
    let pos = &p.st.pos;
    let (pa, pb) = (pos[a as usize], pos[b as usize]);
    // Volume change: each (a, x, y) becomes (b, x, y), the two on the edge vanish.
    let ab = sub(pb, pa);
    let mut dv = 0.0;
    for j in 0..n {
        let (x, y) = (ra[j], ra[(j + 1) % n]);
        dv += dot(ab, cross(pos[x as usize], pos[y as usize])) / 6.0;
    }
    let piece = f64::from_bits(p.piece_volume[p.st.piece[a as usize] as usize].load(Relaxed));
    if dv.abs() > MAX_PIECE_VOLUME_CHANGE * piece.abs() {
        return Err(Refusal::Volume);
    }
    for j in 0..n {
        let (x, y) = (ra[j], ra[(j + 1) % n]);
        if x == b || y == b {
            continue;
        }
        if !keeps_shape(pa, pb, pos[x as usize], pos[y as usize]) {
            return Err(Refusal::Flip);
        }
    }
    Ok(([c, d], dv))
}

/// A candidate collapse `from → to` and its quadric error.
#[derive(Clone, Copy)]
struct Cand {
    from: u32,
    to: u32,
    cost: f32,
}

/// Stable counting sort by the top bits of the f32 cost: buckets of a
/// factor √2 (as meshoptimizer, the exact order does not matter). Inside a
/// bucket the candidates stay in vertex order, which is spatial order, so
/// the greedy pass walks memory far more locally than in exact cost order.
fn sort_by_cost(cands: Vec<Cand>) -> (Vec<Cand>, Vec<u32>) {
    let bins = 1usize << COST_BITS;
    let mut hist = vec![0u32; bins + 1];
    for c in &cands {
        hist[cost_bucket(c.cost) + 1] += 1;
    }
    let counts = hist[1..].to_vec();
    for i in 0..bins {
        hist[i + 1] += hist[i];
    }
    let mut out = vec![
        Cand {
            from: 0,
            to: 0,
            cost: 0.0
        };
        cands.len()
    ];
    for c in cands {
        let k = cost_bucket(c.cost);
        out[hist[k] as usize] = c;
        hist[k] += 1;
    }
    (out, counts)
}

/// Cost buckets: the exponent and the top mantissa bit of the (non-negative)
/// f32 cost, so each spans a factor of about √2.
const COST_BITS: u32 = 9;

#[inline]
fn cost_bucket(c: f32) -> usize {
    ((c.to_bits() << 1) >> (32 - COST_BITS)) as usize
}

/// The error goal of a pass (see [`greedy`]) from the cost histogram of all
/// slabs together: 1.5 × the cost at rank `edge_goal` (the middle of its
/// bucket). Taken over the whole mesh so every slab stops at the same error,
/// however the mesh is cut.
fn error_goal(hist: &[u32], edge_goal: usize) -> f32 {
    let mut seen = 0usize;
    for (b, &n) in hist.iter().enumerate() {
        seen += n as usize;
        if seen > edge_goal {
            let shift = 32 - COST_BITS - 1;
            let lo = f32::from_bits((b as u32) << shift);
            let hi = f32::from_bits((b as u32 + 1) << shift);
            return ERROR_GOAL_FACTOR * 0.5 * (lo + hi);
        }
    }
    f32::MAX
}

/// Result of one slab's greedy loop.
#[derive(Default)]
struct SlabResult {
    collapses: Vec<(u32, u32)>,
    /// For each collapse, the target's quadric with the source's added
    /// (computed here, in parallel).
    merged: Vec<Quadric>,
    /// Volume changes of pieces that lie in several slabs.
    shared_dv: Vec<(u32, f64)>,
    refused_link: usize,
    refused_flip: usize,
    refused_volume: usize,
    max_err: f32,
}

/// How far past the error at the goal's rank a pass may go (meshoptimizer: 1.5).
const ERROR_GOAL_FACTOR: f32 = 1.5;

/// Performs the cheapest allowed collapses of one slab, in cost order.
/// `error_goal`: as meshoptimizer, errors up to 1.5× the error at the
/// goal's rank are accepted, so a pass does not take far worse collapses
/// than it needs.
fn greedy(p: &Pass, slab: u16, cands: &[Cand], goal: usize, error_goal: f32) -> SlabResult {
    let mut r = SlabResult::default();
    if goal == 0 || cands.is_empty() {
        return r;
    }
    let mut removed = 0usize;
    let mut s = Scratch::default();
    for c in cands {
        if removed >= goal || (c.cost > error_goal && removed > goal / 6) {
            break;
        }
        let (a, b) = (c.from, c.to);
        if p.locked(a) || p.locked(b) {
            continue;
        }
        let ([x, y], dv) = match can_collapse(p, a, b, &mut s) {
            Ok(r) => r,
            Err(Refusal::Link) => {
                r.refused_link += 1;
                continue;
            }
            Err(Refusal::Flip) => {
                r.refused_flip += 1;
                continue;
            }
            Err(Refusal::Volume) => {
                r.refused_volume += 1;
                continue;
            }
        };
        let piece = p.st.piece[a as usize];
        if p.home[piece as usize] == slab {
            let pv = &p.piece_volume[piece as usize];
            let _ = pv.fetch_update(Relaxed, Relaxed, |v| {
                Some((f64::from_bits(v) + dv).to_bits())
            });
        } else {
            r.shared_dv.push((piece, dv));
        }
        p.remap[a as usize].store(b, Relaxed);
        p.locked[a as usize].store(true, Relaxed);
        p.locked[b as usize].store(true, Relaxed);
        p.valence[b as usize].store(p.valence(a) + p.valence(b) - 4, Relaxed);
        p.valence[x as usize].store(p.valence(x) - 1, Relaxed);
        p.valence[y as usize].store(p.valence(y) - 1, Relaxed);
        r.collapses.push((a, b));
        let (qa, qb) = (&p.st.quadrics[a as usize], &p.st.quadrics[b as usize]);
        r.merged
            .push(qa.merged_into(qb, sub(p.st.pos[b as usize], p.st.pos[a as usize])));
        r.max_err = r.max_err.max(c.cost);
        removed += 2;
    }
    r
}

/// One pass over `st` with pass-start `rings`; returns triangles removed.
fn run_pass(
    st: &mut State,
    rings: &Rings,
    goal: usize,
    pass_no: usize,
    report: &mut DecimateReport,
) -> (usize, Vec<u32>, Vec<u32>) {
    let nv = st.pos.len();
    // Slabs along the longest axis at quantiles of the vertices in use,
    // shifted by half a slab every other pass.
    // The slab count follows the mesh size, never the thread count, so the
    // result is the same on any machine; many slabs also balance the load.
    let k = if st.triangles.len() > 100_000 {
        (st.triangles.len() / 65_536).clamp(4, 64)
    } else {
        1
    };
    report.slabs = report.slabs.max(k);
    let slab: Vec<u16> = if k == 1 {
        vec![0; nv]
    } else {
        let used: Vec<usize> = (0..nv).filter(|&v| st.valence[v] > 0).step_by(16).collect();
        let mut lo = [f64::MAX; 3];
        let mut hi = [f64::MIN; 3];
        for &v in &used {
            for a in 0..3 {
                lo[a] = lo[a].min(st.pos[v][a]);
                hi[a] = hi[a].max(st.pos[v][a]);
            }
        }
        let axis = (0..3)
            .max_by(|&a, &b| (hi[a] - lo[a]).total_cmp(&(hi[b] - lo[b])))
            .unwrap_or(0);
        let mut xs: Vec<f64> = used.iter().map(|&v| st.pos[v][axis]).collect();
        xs.par_sort_unstable_by(f64::total_cmp);
        let shift = if pass_no % 2 == 0 { 0.0 } else { 0.5 };
        let cuts: Vec<f64> = (1..k)
            .map(|i| {
                let q = ((i as f64 + shift) / k as f64).min(1.0);
                xs[((q * xs.len() as f64) as usize).min(xs.len().saturating_sub(1))]
            })
            .collect();
        st.pos
            .par_iter()
            .map(|p| cuts.partition_point(|&c| c <= p[axis]) as u16)
            .collect()
    };
    // Band: vertices with a neighbour in another slab, and non-manifold ones.
    // Pieces whose movable vertices all lie in one slab have their volume
    // updated by that slab as it goes; pieces across cuts (large ones) are
    // checked against their volume at the pass start and updated after the
    // pass, so no decision depends on how the slabs interleave.
    // Each range of vertices lists its movable ones by slab, in order; a
    // slab's candidates (below) read its lists range after range.
    let home: Vec<AtomicU16> = (0..st.piece_volume.len())
        .map(|_| AtomicU16::new(HOME_UNSET))
        .collect();
    let mut movable = vec![false; nv];
    let span = nv.div_ceil(64).max(1);
    let slab_lists: Vec<Vec<Vec<u32>>> = movable
        .par_chunks_mut(span)
        .enumerate()
        .map(|(i, movable)| {
            let mut lists = vec![Vec::new(); k];
            // The last piece and slab recorded: a run of one piece in one
            // slab touches the shared array once.
            let mut last = (u32::MAX, 0u16);
            for (j, m) in movable.iter_mut().enumerate() {
                let v = i * span + j;
                let sv = slab[v];
                *m = rings.ok[v]
                    && !st.frozen[v]
                    && rings.of(v as u32).iter().all(|&x| slab[x as usize] == sv);
                if !*m {
                    continue;
                }
                lists[sv as usize].push(v as u32);
                let piece = st.piece[v];
                if last != (piece, sv) {
                    last = (piece, sv);
                    let _ = home[piece as usize].fetch_update(Relaxed, Relaxed, |h| match h {
                        HOME_UNSET => Some(sv),
                        h if h == sv || h == HOME_MANY => None,
                        _ => Some(HOME_MANY),
                    });
                }
            }
            lists
        })
        .collect();
    let home: Vec<u16> = home.into_iter().map(|h| h.into_inner()).collect();
    let st_ref = &*st;
    // Candidates of each slab: edges between two movable vertices, each
    // edge once (from its lower vertex), in its cheaper direction.
    let cands: Vec<(Vec<Cand>, Vec<u32>)> = (0..k)
        .into_par_iter()
        .map(|slab| {
            let n: usize = slab_lists.iter().map(|l| l[slab].len()).sum();
            let mut c = Vec::with_capacity(n * 3);
            for &a in slab_lists.iter().flat_map(|l| &l[slab]) {
                for &b in rings.of(a) {
                    if b <= a || !movable[b as usize] {
                        continue;
                    }
                    // (Qa + Qb)(p) = Qa(p) + Qb(p), each vertex's own error
                    // at its position being its quadric's `e`.
                    let (qa, qb) = (&st_ref.quadrics[a as usize], &st_ref.quadrics[b as usize]);
                    let d = sub(st_ref.pos[b as usize], st_ref.pos[a as usize]);
                    let eab = (qa.eval_raw(d) + f64::from(qb.e)).max(0.0) as f32;
                    let eba = (qb.eval_raw(d.map(|x| -x)) + f64::from(qa.e)).max(0.0) as f32;
                    c.push(if eab <= eba {
                        Cand {
                            from: a,
                            to: b,
                            cost: eab,
                        }
                    } else {
                        Cand {
                            from: b,
                            to: a,
                            cost: eba,
                        }
                    });
                }
            }
            sort_by_cost(c)
        })
        .collect();
    let mut hist = vec![0u32; 1 << COST_BITS];
    for (_, h) in &cands {
        for (a, b) in hist.iter_mut().zip(h) {
            *a += b;
        }
    }
    let cands: Vec<Vec<Cand>> = cands.into_iter().map(|c| c.0).collect();
    drop(slab_lists);
    let total: usize = cands.iter().map(|c| c.len()).sum();
    if total == 0 {
        return (0, Vec::new(), Vec::new());
    }
    let pass = Pass {
        st: st_ref,
        rings,
        valence: st.valence.par_iter().map(|&n| AtomicU32::new(n)).collect(),
        remap: (0..nv as u32).into_par_iter().map(AtomicU32::new).collect(),
        locked: (0..nv)
            .into_par_iter()
            .map(|_| AtomicBool::new(false))
            .collect(),
        piece_volume: &st_ref.piece_volume,
        home: &home,
    };
    // Near the target, take the cheapest allowed collapses without the
    // error goal: the few that remain are cheap anyway.
    let tail = goal * 10 < st_ref.triangles.len();
    let error_goal = if tail {
        f32::MAX
    } else {
        error_goal(&hist, goal / 2)
    };
    let results: Vec<SlabResult> = cands
        .par_iter()
        .enumerate()
        .map(|(i, c)| {
            let share = (goal as f64 * c.len() as f64 / total as f64).ceil() as usize;
            greedy(&pass, i as u16, c, share.min(goal), error_goal)
        })
        .collect();
    drop(cands);
    let remap: Vec<u32> = pass.remap.into_iter().map(|a| a.into_inner()).collect();
    st.valence = pass.valence.into_iter().map(|a| a.into_inner()).collect();
    let mut source = vec![NONE; nv];
    let mut collapsed = 0;
    for r in &results {
        report.refused_link += r.refused_link;
        report.refused_flip += r.refused_flip;
        report.refused_volume += r.refused_volume;
        report.max_quadric_error_mm = report.max_quadric_error_mm.max((r.max_err as f64).sqrt());
        for &(piece, dv) in &r.shared_dv {
            let pv = st.piece_volume[piece as usize].get_mut();
            *pv = (f64::from_bits(*pv) + dv).to_bits();
        }
        collapsed += r.collapses.len();
    }
    // The collapses' writes, by ranges of vertex ids in parallel (each range
    // reads every collapse and applies those in it; a vertex is collapsed,
    // or a target, at most once per pass).
    let span = nv.div_ceil(rayon::current_num_threads().max(1)).max(1);
    st.quadrics
        .par_chunks_mut(span)
        .zip(source.par_chunks_mut(span))
        .zip(st.valence.par_chunks_mut(span))
        .enumerate()
        .for_each(|(i, ((quadrics, source), valence))| {
            let range = i * span..i * span + quadrics.len();
            for r in &results {
                for (&(a, b), &q) in r.collapses.iter().zip(&r.merged) {
                    let (a, b) = (a as usize, b as usize);
                    if range.contains(&b) {
                        quadrics[b - range.start] = q;
                        source[b - range.start] = a as u32;
                    }
                    if range.contains(&a) {
                        valence[a - range.start] = 0;
                    }
                }
            }
        });
    if collapsed == 0 {
        return (0, remap, source);
    }
    let before = st.triangles.len();
    remap_and_drop_degenerate(&mut st.triangles, &remap);
    (before - st.triangles.len(), remap, source)
}

/// Renames the corners of `tris` by `remap` and drops the triangles that
/// lose a corner, in place and in order: each block is compacted in
/// parallel, then the blocks are moved together (one serial move of what
/// is kept, no fresh array).
fn remap_and_drop_degenerate(tris: &mut Vec<[u32; 3]>, remap: &[u32]) {
    const BLOCK: usize = 1 << 15;
    let kept: Vec<usize> = tris
        .par_chunks_mut(BLOCK)
        .map(|block| {
            let mut w = 0;
            for r in 0..block.len() {
                let t = block[r].map(|x| remap[x as usize]);
                if t[0] != t[1] && t[1] != t[2] && t[0] != t[2] {
                    block[w] = t;
                    w += 1;
                }
            }
            w
        })
        .collect();
    let mut end = 0;
    for (b, &n) in kept.iter().enumerate() {
        tris.copy_within(b * BLOCK..b * BLOCK + n, end);
        end += n;
    }
    tris.truncate(end);
}

/// Decimates `mesh` to about `target` triangles (see module docs). The
/// result is a closed 2-manifold whenever the input is one; a mesh already
/// at or below the target is returned unchanged. It stops short of the
/// target only where every remaining collapse would break the manifold or
/// flip a triangle (tiny closed pieces, for example).
pub fn decimate(mesh: &Mesh, target: usize) -> Result<(Mesh, DecimateReport)> {
    decimate_with(mesh, target, None)
}

/// As [`decimate`], with the mesh's rings and vertex components when the
/// caller has them already (they are shared with smoothing).
pub(crate) fn decimate_with(
    mesh: &Mesh,
    target: usize,
    pre: Option<(Rings, Vec<u32>, usize)>,
) -> Result<(Mesh, DecimateReport)> {
    if target < 4 {
        return Err(Error::Parameter(format!(
            "a target of {target} triangles is too few for a closed surface; give at least 4"
        )));
    }
    let mut report = DecimateReport {
        target_triangles: target,
        triangles_before: mesh.triangles.len(),
        triangles_after: mesh.triangles.len(),
        ..Default::default()
    };
    if mesh.triangles.len() <= target {
        return Ok((mesh.clone(), report));
    }
    let nv = mesh.vertices.len();
    if mesh.triangles.iter().flatten().any(|&v| v as usize >= nv) {
        return Err(Error::Input(
            "the mesh refers to vertices it does not have; it cannot be decimated".into(),
        ));
    }
    if mesh
        .vertices
        .iter()
        .any(|p| !p.iter().all(|x| x.is_finite()))
    {
        return Err(Error::Input(
            "the mesh has NaN or infinite coordinates; it cannot be decimated".into(),
        ));
    }
    // Work relative to the centre, in f64.
    let c = match mesh.bounds() {
        Some((lo, hi)) => [0, 1, 2].map(|a| 0.5 * (lo[a] + hi[a])),
        None => [0.0; 3],
    };
    let pos: Vec<[f64; 3]> = mesh
        .vertices
        .par_iter()
        .map(|p| [p[0] as f64 - c[0], p[1] as f64 - c[1], p[2] as f64 - c[2]])
        .collect();
    let (mut rings, piece, npieces) = match pre {
        Some(p) if p.0.ok.len() == nv && p.1.len() == nv => p,
        _ => {
            let (piece, n) = super::topology::vertex_components(mesh);
            (Rings::new(nv, &mesh.triangles), piece, n)
        }
    };
    let frozen: Vec<bool> = (0..nv)
        .into_par_iter()
        .map(|v| rings.offsets[v + 1] > rings.offsets[v] && !rings.ok[v])
        .collect();
    report.frozen_vertices = frozen.iter().filter(|&&f| f).count();
    // Area-weighted plane quadrics of each manifold vertex's fan (frozen
    // vertices never move, so they need none). Every plane passes through
    // the vertex, so centred on it the quadric is A = Σ (area / |n|²) n nᵀ
    // over the fan's triangles (n: a triangle's normal, |n| twice its
    // area), g = 0 and e = 0 (no error at the vertex itself).
    let quadrics: Vec<Quadric> = (0..nv)
        .into_par_iter()
        .map(|v| {
            if !rings.ok[v] {
                return Quadric::default();
            }
            let r = rings.of(v as u32);
            let p = pos[v];
            let mut m = [0f64; 6];
            for j in 0..r.len() {
                let (p1, p2) = (pos[r[j] as usize], pos[r[(j + 1) % r.len()] as usize]);
                let n = cross(sub(p1, p), sub(p2, p));
                let len = dot(n, n).sqrt();
                if len > 0.0 {
                    let w = 0.5 / len;
                    let wn = n.map(|x| w * x);
                    m[0] += wn[0] * n[0];
                    m[1] += wn[0] * n[1];
                    m[2] += wn[0] * n[2];
                    m[3] += wn[1] * n[1];
                    m[4] += wn[1] * n[2];
                    m[5] += wn[2] * n[2];
                }
            }
            Quadric {
                a: m.map(|x| x as f32),
                ..Quadric::default()
            }
        })
        .collect();
    let valence = (0..nv)
        .into_par_iter()
        .map(|v| rings.offsets[v + 1] - rings.offsets[v])
        .collect();
    // Piece volumes: runs of consecutive triangles of one piece, summed in
    // fixed chunks (the same sums whatever the thread count).
    let runs: Vec<Vec<(u32, f64)>> = mesh
        .triangles
        .par_chunks(1 << 15)
        .map(|ts| {
            let mut out: Vec<(u32, f64)> = Vec::new();
            for t in ts {
                let [p0, p1, p2] = t.map(|i| pos[i as usize]);
                let (k, v) = (piece[t[0] as usize], dot(p0, cross(p1, p2)) / 6.0);
                match out.last_mut() {
                    Some(last) if last.0 == k => last.1 += v,
                    _ => out.push((k, v)),
                }
            }
            out
        })
        .collect();
    let mut volumes = vec![0f64; npieces];
    for &(k, v) in runs.iter().flatten() {
        volumes[k as usize] += v;
    }
    let mut st = State {
        pos,
        quadrics,
        frozen,
        triangles: mesh.triangles.clone(),
        valence,
        piece,
        piece_volume: volumes
            .into_iter()
            .map(|v| AtomicU64::new(v.to_bits()))
            .collect(),
    };
    loop {
        let n = st.triangles.len();
        if n <= target {
            break;
        }
        let (removed, remap, source) =
            run_pass(&mut st, &rings, n - target, report.passes, &mut report);
        report.passes += 1;
        if removed == 0 {
            break;
        }
        // Drop the collapsed vertices once they are a quarter of the arrays
        // (every pass walks all vertex arrays, and most vertices die early);
        // the rings follow the collapses, renumbered as they are rebuilt.
        // They are rebuilt from the triangles only if an update does not
        // come out clean (it always should).
        let compaction = Compaction::of(&mut st);
        let updated = rings.update(&remap, &source, &st, compaction.as_ref());
        if let Some(c) = &compaction {
            compact_state(&mut st, c);
        }
        rings = match updated {
            Some(r) => r,
            None => {
                report.ring_rebuilds += 1;
                Rings::new(st.pos.len(), &st.triangles)
            }
        };
    }
    place_optimally(&mut st, &rings);
    let mut out = Mesh {
        vertices: st
            .pos
            .par_iter()
            .map(|p| {
                [
                    (p[0] + c[0]) as f32,
                    (p[1] + c[1]) as f32,
                    (p[2] + c[2]) as f32,
                ]
            })
            .collect(),
        triangles: st.triangles,
    };
    super::topology::compact(&mut out);
    report.triangles_after = out.triangles.len();
    Ok((out, report))
}

/// Renumbering that keeps only the vertices triangles still use, in order
/// (so the result is the same as without compaction).
struct Compaction {
    /// Old → new id; [`NONE`] for a dropped vertex.
    map: Vec<u32>,
    /// New → old id.
    keep: Vec<u32>,
}

impl Compaction {
    /// `None` when fewer than a quarter of the vertices would go. A vertex
    /// is in use exactly when it has triangles: the pass keeps each
    /// vertex's triangle count (`valence`) up to date. That is verified
    /// (read-only, in parallel) before relying on it; should it ever fail,
    /// the counts are recounted from the triangles.
    fn of(st: &mut State) -> Option<Self> {
        let nv = st.pos.len();
        let consistent = st
            .triangles
            .par_iter()
            .all(|t| t.iter().all(|&v| st.valence[v as usize] > 0));
        if !consistent {
            st.valence = vec![0; nv];
            for &v in st.triangles.iter().flatten() {
                st.valence[v as usize] += 1;
            }
        }
        let used = st.valence.par_iter().filter(|&&n| n > 0).count();
        if used * 4 > nv * 3 {
            return None;
        }
        // Blocks in parallel: each numbers its kept vertices from the count
        // of those before it.
        const BLOCK: usize = 1 << 16;
        let counts: Vec<u32> = st
            .valence
            .par_chunks(BLOCK)
            .map(|c| c.iter().filter(|&&n| n > 0).count() as u32)
            .collect();
        let mut first = Vec::with_capacity(counts.len());
        let mut sum = 0u32;
        for c in counts {
            first.push(sum);
            sum += c;
        }
        let mut map = vec![NONE; nv];
        let mut keep = vec![0u32; used];
        let mut keep_parts: Vec<&mut [u32]> = Vec::with_capacity(first.len());
        let mut rest: &mut [u32] = &mut keep;
        for (b, &f) in first.iter().enumerate() {
            let next = first.get(b + 1).copied().unwrap_or(used as u32);
            let (part, tail) = rest.split_at_mut((next - f) as usize);
            keep_parts.push(part);
            rest = tail;
        }
        map.par_chunks_mut(BLOCK)
            .zip(st.valence.par_chunks(BLOCK))
            .zip(keep_parts)
            .zip(first)
            .enumerate()
            .for_each(|(b, (((m, val), part), f))| {
                let mut k = 0;
                for (i, (m, &n)) in m.iter_mut().zip(val).enumerate() {
                    if n > 0 {
                        *m = f + k as u32;
                        part[k] = (b * BLOCK + i) as u32;
                        k += 1;
                    }
                }
            });
        Some(Compaction { map, keep })
    }
}

/// Renumbers the per-vertex state and the triangles by `c`, in place: the
/// kept ids are ascending, so moving each kept entry down in order never
/// overwrites one still to be moved, and no fresh memory is touched.
fn compact_state(st: &mut State, c: &Compaction) {
    fn pick<T: Copy>(v: &mut Vec<T>, keep: &[u32]) {
        for (k, &old) in keep.iter().enumerate() {
            v[k] = v[old as usize];
        }
        v.truncate(keep.len());
    }
    let keep = &c.keep;
    let map = &c.map;
    let State {
        pos,
        quadrics,
        frozen,
        triangles,
        valence,
        piece,
        ..
    } = st;
    rayon::join(
        || pick(quadrics, keep),
        || {
            pick(pos, keep);
            pick(frozen, keep);
            pick(valence, keep);
            pick(piece, keep);
            triangles
                .par_iter_mut()
                .for_each(|t| *t = t.map(|v| map[v as usize]));
        },
    );
}

/// Moves each unfrozen vertex to the minimiser of its quadric when that is
/// near (within half its shortest edge), lowers the quadric error, and
/// flips no triangle nor makes a needle.
fn place_optimally(st: &mut State, rings: &Rings) {
    let nv = st.pos.len();
    let proposals: Vec<Option<[f64; 3]>> = (0..nv)
        .into_par_iter()
        .map(|v| {
            if !rings.ok[v] || st.frozen[v] {
                return None;
            }
            let q = &st.quadrics[v];
            let mv = q.minimiser()?;
            let old = st.pos[v];
            let shortest = rings
                .of(v as u32)
                .iter()
                .map(|&x| {
                    let d = sub(st.pos[x as usize], old);
                    dot(d, d)
                })
                .fold(f64::MAX, f64::min);
            if dot(mv, mv) > 0.25 * shortest || q.eval(mv) >= q.eval([0.0; 3]) {
                return None;
            }
            Some([old[0] + mv[0], old[1] + mv[1], old[2] + mv[2]])
        })
        .collect();
    // Accepted one by one, each tested against its ring as it is now.
    for v in 0..nv {
        let Some(p) = proposals[v] else { continue };
        let old = st.pos[v];
        let r = rings.of(v as u32);
        let ok = (0..r.len()).all(|j| {
            let (px, py) = (st.pos[r[j] as usize], st.pos[r[(j + 1) % r.len()] as usize]);
            keeps_shape(old, p, px, py)
        });
        if ok {
            st.pos[v] = p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merged_quadric_is_the_sum_recentred() {
        // Two fans' quadrics, merged at the target, evaluated anywhere,
        // equal the sum of the two (to f32 rounding of the terms).
        let fan = |n: [f64; 3]| {
            let m = [
                n[0] * n[0],
                n[0] * n[1],
                n[0] * n[2],
                n[1] * n[1],
                n[1] * n[2],
                n[2] * n[2],
            ];
            Quadric {
                a: m.map(|x| x as f32),
                ..Quadric::default()
            }
        };
        let (pa, pb) = ([1.0, 2.0, -0.5], [1.3, 1.8, -0.2]);
        let qa = fan([0.6, 0.0, 0.8]);
        let qb = fan([0.0, 1.0, 0.0]);
        let merged = qa.merged_into(&qb, sub(pb, pa));
        for x in [
            [1.0, 2.0, -0.5],
            [1.3, 1.8, -0.2],
            [0.0, 0.0, 0.0],
            [2.0, -1.0, 3.0],
        ] {
            let want = qa.eval_raw(sub(x, pa)) + qb.eval_raw(sub(x, pb));
            let got = merged.eval_raw(sub(x, pb));
            assert!(
                (got - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{got} vs {want}"
            );
        }
        // Its error at the target is the source's there.
        assert!((f64::from(merged.e) - qa.eval_raw(sub(pb, pa))).abs() < 1e-7);
        // Three planes meet in one point: the minimiser, at error 0.
        let q3 = fan([0.0, 0.0, 1.0]).merged_into(&merged, [0.0; 3]);
        let d = q3.minimiser().expect("well posed");
        assert!(q3.eval(d) < 1e-9 && q3.eval(d) < q3.eval([0.0; 3]));
        // Planes through one line leave it undetermined.
        assert!(qa.merged_into(&qa, [0.0; 3]).minimiser().is_none());
    }

    #[test]
    fn remap_and_drop_degenerate_equals_a_serial_filter() {
        // Over several blocks, with blocks that lose none, some or all.
        let mut s = 7u64;
        let mut next = |n: u32| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % n as u64) as u32
        };
        let nv = 5000;
        for n in [0, 10, 40_000, 100_000] {
            let tris: Vec<[u32; 3]> = (0..n).map(|_| [next(nv), next(nv), next(nv)]).collect();
            // About a third of the vertices collapse onto another.
            let remap: Vec<u32> = (0..nv)
                .map(|v| if next(3) == 0 { next(nv) } else { v })
                .collect();
            let want: Vec<[u32; 3]> = tris
                .iter()
                .map(|t| t.map(|x| remap[x as usize]))
                .filter(|t| t[0] != t[1] && t[1] != t[2] && t[0] != t[2])
                .collect();
            let mut got = tris.clone();
            remap_and_drop_degenerate(&mut got, &remap);
            assert_eq!(got, want, "{n} triangles");
        }
    }
}
