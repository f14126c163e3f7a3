//! Taubin λ/μ smoothing without shrinkage, with edge-length (mm) weights and
//! a final volume correction.
//!
//! Each iteration moves every vertex by a fraction `f` of its Laplacian
//! `Δp = Σ wⱼ (pⱼ − p) / Σ wⱼ`, alternating `f = λ > 0` (smooth, shrinks) and
//! `f = μ < −λ` (un-shrink). This is a low-pass filter with pass-band
//! frequency `k_pb = 1/λ + 1/μ`: wiggles of a few edges (the voxel
//! staircase of marching cubes) are removed, shapes larger than that are
//! kept. The weights are `wⱼ = 1 / |pⱼ − p|` (Fujiwara), computed once on the
//! input in mm, so on anisotropic grids (0.5 × 0.5 × 1 mm) the filter acts on
//! distances rather than on vertex counts, and being fixed the filter stays
//! linear and stable.
//!
//! The connectivity never changes: a closed 2-manifold stays one. What is
//! left of the volume change (Taubin keeps it to a fraction of a percent) is
//! removed at the end by moving every vertex of a piece along its unit
//! normal by the same offset `d`. A piece's volume after such a move is a
//! cubic in `d` (each triangle's volume term is trilinear in its corners),
//! summed in one pass over the triangles; its root gives back the piece's
//! volume exactly, up to the f32 rounding of the moved vertices.

use super::decimate::Rings;
use crate::surface::Mesh;
use crate::vec3::{cross, dot, sub};
use crate::{Error, Result};
use rayon::prelude::*;
use std::borrow::Cow;

/// Parameters of [`taubin`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct SmoothParams {
    /// Number of λ/μ pairs (each is two passes over the mesh).
    pub iterations: usize,
    /// Smoothing factor λ (0 < λ < 1).
    pub lambda: f64,
    /// Pass-band frequency k_pb = 1/λ + 1/μ (0 < k_pb < 1, usually 0.05–0.1);
    /// μ is derived from it.
    pub pass_band: f64,
    /// Restore each piece's enclosed volume at the end (a normal offset, the
    /// root of the volume's cubic in it).
    pub preserve_volume: bool,
}

impl Default for SmoothParams {
    fn default() -> Self {
        SmoothParams {
            iterations: 10,
            lambda: 0.5,
            pass_band: 0.1,
            preserve_volume: true,
        }
    }
}

impl SmoothParams {
    /// μ from λ and the pass band: 1/μ = k_pb − 1/λ.
    pub fn mu(&self) -> f64 {
        1.0 / (self.pass_band - 1.0 / self.lambda)
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.lambda > 0.0 && self.lambda < 1.0) {
            return Err(Error::Parameter(format!(
                "smoothing λ {} must lie between 0 and 1; 0.5 is usual",
                self.lambda
            )));
        }
        if !(self.pass_band > 0.0 && self.pass_band < 1.0) {
            return Err(Error::Parameter(format!(
                "smoothing pass band {} must lie between 0 and 1; 0.1 is usual",
                self.pass_band
            )));
        }
        if self.iterations > 10_000 {
            return Err(Error::Parameter(format!(
                "{} smoothing iterations is far too many; use 5–50",
                self.iterations
            )));
        }
        Ok(())
    }
}

/// What smoothing did.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct SmoothReport {
    pub iterations: usize,
    pub lambda: f64,
    pub mu: f64,
    /// Enclosed volume before, mm³.
    pub volume_before_mm3: f64,
    /// Enclosed volume after, mm³. Where a component's volume was restored,
    /// its volume is the restoring cubic's value at the offset applied: the
    /// measured volume to the rounding of the vertices to f32 (~1e-8 of it).
    pub volume_after_mm3: f64,
    /// (after − before) / before, percent.
    pub volume_change_percent: f64,
    /// Largest normal offset applied to restore a component's volume, mm.
    pub volume_offset_mm: f64,
    /// Components left unsmoothed: the filter would have changed their
    /// volume by more than 10 % (pieces of a few voxels, one-voxel rods).
    pub components_left_raw: usize,
    /// Largest distance any vertex moved, mm.
    pub max_displacement_mm: f64,
}

/// Vertex → neighbour vertices with normalised weights, compressed rows.
struct Neighbours<'a> {
    offsets: Cow<'a, [u32]>,
    ids: Cow<'a, [u32]>,
    weights: Vec<f32>,
}

impl<'a> Neighbours<'a> {
    /// From the ordered one-rings, when every used vertex has one (a closed
    /// 2-manifold): the ring is exactly the neighbour list.
    fn from_rings(mesh: &Mesh, rings: &'a Rings) -> Option<Self> {
        let all = (0..mesh.vertices.len())
            .into_par_iter()
            .all(|v| rings.ok[v] || rings.offsets[v + 1] == rings.offsets[v]);
        all.then(|| {
            Self::weighted(
                mesh,
                Cow::Borrowed(&rings.offsets[..]),
                Cow::Borrowed(&rings.ids[..]),
            )
        })
    }

    fn new(mesh: &Mesh) -> Self {
        let n = mesh.vertices.len();
        // Outgoing half-edges a → b. On a closed, consistently oriented
        // surface they list every neighbour exactly once; a fingerprint of
        // the incoming ones (sum and xor) tells whether that holds at every
        // vertex, and otherwise both directions are merged and deduplicated.
        let mut offsets = vec![0u32; n + 1];
        let mut fp_out = vec![(0u64, 0u32); n];
        let mut fp_in = vec![(0u64, 0u32); n];
        for t in &mesh.triangles {
            for k in 0..3 {
                let (a, b) = (t[k] as usize, t[(k + 1) % 3] as usize);
                offsets[a + 1] += 1;
                fp_out[a].0 += b as u64;
                fp_out[a].1 ^= b as u32;
                fp_in[b].0 += a as u64;
                fp_in[b].1 ^= a as u32;
            }
        }
        let closed = fp_out == fp_in;
        drop((fp_out, fp_in));
        if !closed {
            return Self::general(mesh);
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut ids = vec![0u32; offsets[n] as usize];
        for t in &mesh.triangles {
            for k in 0..3 {
                let a = t[k] as usize;
                ids[fill[a] as usize] = t[(k + 1) % 3];
                fill[a] += 1;
            }
        }
        drop(fill);
        Self::weighted(mesh, Cow::Owned(offsets), Cow::Owned(ids))
    }

    /// Both directions of every edge, deduplicated per vertex: correct for
    /// open or non-manifold meshes too.
    fn general(mesh: &Mesh) -> Self {
        let n = mesh.vertices.len();
        let mut offsets = vec![0u32; n + 1];
        for t in &mesh.triangles {
            for k in 0..3 {
                offsets[t[k] as usize + 1] += 2;
            }
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut ids = vec![u32::MAX; offsets[n] as usize];
        for t in &mesh.triangles {
            for k in 0..3 {
                let (a, b) = (t[k], t[(k + 1) % 3]);
                ids[fill[a as usize] as usize] = b;
                fill[a as usize] += 1;
                ids[fill[b as usize] as usize] = a;
                fill[b as usize] += 1;
            }
        }
        let mut squeezed = Vec::with_capacity(ids.len() / 2 + 1);
        let mut new_off = vec![0u32; n + 1];
        for i in 0..n {
            let row = &mut ids[offsets[i] as usize..offsets[i + 1] as usize];
            row.sort_unstable();
            for r in 0..row.len() {
                if r == 0 || row[r] != row[r - 1] {
                    squeezed.push(row[r]);
                }
            }
            new_off[i + 1] = squeezed.len() as u32;
        }
        Self::weighted(mesh, Cow::Owned(new_off), Cow::Owned(squeezed))
    }

    /// Normalised inverse-distance weights for the rows.
    fn weighted(mesh: &Mesh, offsets: Cow<'a, [u32]>, ids: Cow<'a, [u32]>) -> Self {
        let v = &mesh.vertices;
        let n = v.len();
        let mut weights = vec![0f32; ids.len()];
        let chunk = n.div_ceil(64).max(1);
        // Rows in parallel, over disjoint slices of the weight array.
        let mut parts: Vec<(usize, &mut [f32])> = Vec::new();
        let mut rest: &mut [f32] = &mut weights;
        let mut v0 = 0;
        while v0 < n {
            let v1 = (v0 + chunk).min(n);
            let (a, b) = rest.split_at_mut((offsets[v1] - offsets[v0]) as usize);
            parts.push((v0, a));
            rest = b;
            v0 = v1;
        }
        parts.into_par_iter().for_each(|(v0, w)| {
            let base = offsets[v0] as usize;
            let mut i = v0;
            while i < n && (offsets[i] as usize) < base + w.len() {
                let (s, e) = (offsets[i] as usize, offsets[i + 1] as usize);
                let p = v[i];
                let mut sum = 0f32;
                for k in s..e {
                    let q = v[ids[k] as usize];
                    let d = ((q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2) + (q[2] - p[2]).powi(2))
                        .sqrt();
                    // Coincident vertices: weight as a very short edge.
                    let wk = 1.0 / d.max(1e-6);
                    w[k - base] = wk;
                    sum += wk;
                }
                if sum > 0.0 {
                    for k in s..e {
                        w[k - base] /= sum;
                    }
                }
                i += 1;
            }
        });
        Neighbours {
            offsets,
            ids,
            weights,
        }
    }
}

fn step(nb: &Neighbours<'_>, src: &[[f32; 4]], dst: &mut [[f32; 4]], f: f32) {
    dst.par_iter_mut().enumerate().for_each(|(i, out)| {
        let (s, e) = (nb.offsets[i] as usize, nb.offsets[i + 1] as usize);
        let p = src[i];
        if s == e {
            *out = p;
            return;
        }
        // Two independent sums (even and odd neighbours): the loop is bound
        // by the latency of the additions, not by the loads.
        let mut m = [0f32; 4];
        let mut m2 = [0f32; 4];
        let ids = &nb.ids[s..e];
        let ws = &nb.weights[s..e];
        let pairs = ids.chunks_exact(2).zip(ws.chunks_exact(2));
        for (id, w) in pairs {
            let (q, q2) = (src[id[0] as usize], src[id[1] as usize]);
            for a in 0..4 {
                m[a] += w[0] * q[a];
                m2[a] += w[1] * q2[a];
            }
        }
        if ids.len() % 2 == 1 {
            let (q, w) = (src[ids[ids.len() - 1] as usize], ws[ids.len() - 1]);
            for a in 0..4 {
                m[a] += w * q[a];
            }
        }
        for a in 0..4 {
            m[a] += m2[a];
        }
        for a in 0..4 {
            out[a] = p[a] + f * (m[a] - p[a]);
        }
    });
}

/// Unit area-weighted vertex normals (zero where the fan has no area).
fn unit_vertex_normals(mesh: &Mesh, rings: Option<&Rings>) -> Vec<[f64; 3]> {
    let at = |i: u32| mesh.vertices[i as usize].map(|x| x as f64);
    // From the fans, in parallel, when every vertex has one.
    let fans = rings
        .filter(|r| r.ok.len() == mesh.vertices.len())
        .filter(|r| {
            (0..mesh.vertices.len())
                .into_par_iter()
                .all(|v| r.ok[v] || r.offsets[v + 1] == r.offsets[v])
        });
    let mut n: Vec<[f64; 3]> = match fans {
        Some(r) => (0..mesh.vertices.len())
            .into_par_iter()
            .map(|v| {
                let ring = r.of(v as u32);
                let p = at(v as u32);
                let mut n = [0f64; 3];
                for j in 0..ring.len() {
                    let (a, b) = (at(ring[j]), at(ring[(j + 1) % ring.len()]));
                    let f = cross(sub(a, p), sub(b, p));
                    for k in 0..3 {
                        n[k] += f[k];
                    }
                }
                n
            })
            .collect(),
        None => {
            let mut n = vec![[0f64; 3]; mesh.vertices.len()];
            for t in &mesh.triangles {
                let [a, b, c] = t.map(at);
                let f = cross(sub(b, a), sub(c, a));
                for &i in t {
                    for k in 0..3 {
                        n[i as usize][k] += f[k];
                    }
                }
            }
            n
        }
    };
    n.par_iter_mut().for_each(|v| {
        let len = dot(*v, *v).sqrt();
        *v = if len > 0.0 {
            v.map(|x| x / len)
        } else {
            [0.0; 3]
        };
    });
    n
}

/// Triangles per parallel chunk of the volume sums. A fixed size rather than
/// rayon's adaptive splits, so the floating-point sums (and the offsets made
/// from them) do not depend on the thread count.
const SUM_CHUNK: usize = 1 << 15;

/// Centre of the bounding box: volumes are summed relative to it, which keeps
/// the terms small.
fn centre(mesh: &Mesh) -> [f64; 3] {
    match mesh.bounds() {
        Some((lo, hi)) => [0, 1, 2].map(|a| 0.5 * (lo[a] + hi[a])),
        None => [0.0; 3],
    }
}

/// The corners of triangle `t`, relative to `c`.
#[inline]
fn corners(mesh: &Mesh, t: &[u32; 3], c: [f64; 3]) -> [[f64; 3]; 3] {
    t.map(|i| {
        let p = mesh.vertices[i as usize];
        [p[0] as f64 - c[0], p[1] as f64 - c[1], p[2] as f64 - c[2]]
    })
}

/// Six times the signed volume (of the tetrahedron with `c`) and the area of
/// one triangle (sums divide by 6 once).
#[inline]
fn triangle_volume_area(mesh: &Mesh, t: &[u32; 3], c: [f64; 3]) -> (f64, f64) {
    let [a, b, d] = corners(mesh, t, c);
    let m = cross(sub(b, a), sub(d, a));
    (dot(a, cross(b, d)), 0.5 * dot(m, m).sqrt())
}

/// Six times the signed volume of the tetrahedron of one triangle with `c`.
#[inline]
fn triangle_volume6(mesh: &Mesh, t: &[u32; 3], c: [f64; 3]) -> f64 {
    let [a, b, d] = corners(mesh, t, c);
    dot(a, cross(b, d))
}

/// Enclosed volume (mm³) and area (mm²), in parallel; the same to the bit
/// whatever the thread count.
pub fn volume_and_area(mesh: &Mesh) -> (f64, f64) {
    let c = centre(mesh);
    let parts: Vec<(f64, f64)> = mesh
        .triangles
        .par_chunks(SUM_CHUNK)
        .map(|ts| {
            ts.iter().fold((0.0, 0.0), |s, t| {
                let (v, a) = triangle_volume_area(mesh, t, c);
                (s.0 + v, s.1 + a)
            })
        })
        .collect();
    let (v6, a) = parts.iter().fold((0.0, 0.0), |s, p| (s.0 + p.0, s.1 + p.1));
    (v6 / 6.0, a)
}

/// Per-component sums of a per-triangle quantity (the component of its first
/// vertex), in parallel and the same to the bit whatever the thread count.
fn component_sums<const N: usize>(
    mesh: &Mesh,
    comp: &[u32],
    n: usize,
    f: impl Fn(&[u32; 3]) -> [f64; N] + Sync,
) -> Vec<[f64; N]> {
    // Consecutive triangles mostly belong to one piece, so each chunk sums
    // into a few (piece, sums) runs, merged in chunk order.
    let runs: Vec<Vec<(u32, [f64; N])>> = mesh
        .triangles
        .par_chunks(SUM_CHUNK)
        .map(|ts| {
            let mut out = Vec::new();
            let mut cur = (u32::MAX, [0.0; N]);
            for t in ts {
                let k = comp.get(t[0] as usize).copied().unwrap_or(u32::MAX);
                if k != cur.0 {
                    if cur.0 != u32::MAX {
                        out.push(cur);
                    }
                    cur = (k, [0.0; N]);
                }
                let v = f(t);
                for i in 0..N {
                    cur.1[i] += v[i];
                }
            }
            if cur.0 != u32::MAX {
                out.push(cur);
            }
            out
        })
        .collect();
    let mut out = vec![[0.0; N]; n];
    for (k, v) in runs.iter().flatten() {
        if let Some(o) = out.get_mut(*k as usize) {
            for i in 0..N {
                o[i] += v[i];
            }
        }
    }
    out
}

/// Signed volume of each component, mm³.
fn component_volumes(mesh: &Mesh, comp: &[u32], n: usize) -> Vec<f64> {
    let c = centre(mesh);
    component_sums(mesh, comp, n, |t| [triangle_volume6(mesh, t, c)])
        .into_iter()
        .map(|[v6]| v6 / 6.0)
        .collect()
}

/// Six times each component's volume after every vertex moves by `d` along
/// its unit normal, as the cubic `c₀ + c₁d + c₂d² + c₃d³` (exact: a
/// triangle's volume term is trilinear in its three corners).
fn component_offset_cubics(
    mesh: &Mesh,
    comp: &[u32],
    n: usize,
    normals: &[[f64; 3]],
) -> Vec<[f64; 4]> {
    let c = centre(mesh);
    component_sums(mesh, comp, n, |t| {
        let [a, b, d] = corners(mesh, t, c);
        let [na, nb, nd] = t.map(|i| normals[i as usize]);
        let bd = cross(b, d);
        let nb_d = cross(nb, d);
        let b_nd = cross(b, nd);
        let nb_nd = cross(nb, nd);
        [
            dot(a, bd),
            dot(na, bd) + dot(a, nb_d) + dot(a, b_nd),
            dot(na, nb_d) + dot(na, b_nd) + dot(a, nb_nd),
            dot(na, nb_nd),
        ]
    })
}

/// The offset `d` nearest 0 with `cubic(d) = target` (Newton from the
/// linear estimate; the cubic is monotone near 0 for a closed surface with
/// outward normals), or 0 when there is none nearby.
fn solve_offset(cubic: [f64; 4], target: f64) -> f64 {
    let [c0, c1, c2, c3] = cubic;
    if c1 <= 0.0 || !c1.is_finite() {
        return 0.0;
    }
    let mut d = (target - c0) / c1;
    for _ in 0..8 {
        let f = c0 + d * (c1 + d * (c2 + d * c3)) - target;
        let df = c1 + d * (2.0 * c2 + 3.0 * d * c3);
        if df <= 0.0 {
            return 0.0;
        }
        let step = f / df;
        d -= step;
        if step.abs() <= 1e-12 * (1.0 + d.abs()) {
            break;
        }
    }
    if d.is_finite() {
        d
    } else {
        0.0
    }
}

/// Moves each vertex along its unit normal by the offset of its component, mm.
fn offset_along_normals(mesh: &mut Mesh, comp: &[u32], offset: &[f64], normals: &[[f64; 3]]) {
    mesh.vertices
        .par_iter_mut()
        .zip(normals.par_iter())
        .zip(comp.par_iter())
        .for_each(|((p, n), &c)| {
            let d = offset.get(c as usize).copied().unwrap_or(0.0);
            if d != 0.0 {
                for a in 0..3 {
                    p[a] = (p[a] as f64 + d * n[a]) as f32;
                }
            }
        });
}

/// A component whose volume smoothing changed by more than this fraction is
/// too small or too thin for the filter (it is made of the wiggles the
/// filter removes) and keeps its raw shape.
const MAX_COMPONENT_CHANGE: f64 = 0.10;

/// Smooths `mesh` in place (see module docs). Connectivity is unchanged.
pub fn taubin(mesh: &mut Mesh, params: &SmoothParams) -> Result<SmoothReport> {
    taubin_with(mesh, params, None)
}

/// As [`taubin`], with the mesh's rings and vertex components when the
/// caller has them already (they are shared with decimation).
pub(crate) fn taubin_with(
    mesh: &mut Mesh,
    params: &SmoothParams,
    pre: Option<(&Rings, &[u32], usize)>,
) -> Result<SmoothReport> {
    params.validate()?;
    let mu = params.mu();
    let mut report = SmoothReport {
        iterations: params.iterations,
        lambda: params.lambda,
        mu,
        ..Default::default()
    };
    if mesh.triangles.is_empty() || params.iterations == 0 {
        let v = volume_and_area(mesh).0;
        report.volume_before_mm3 = v;
        report.volume_after_mm3 = v;
        return Ok(report);
    }
    let own_comp;
    let (nb, comp, ncomp) = match pre {
        Some((rings, comp, ncomp)) => (
            Neighbours::from_rings(mesh, rings).unwrap_or_else(|| Neighbours::new(mesh)),
            comp,
            ncomp,
        ),
        None => {
            own_comp = super::topology::vertex_components(mesh);
            (Neighbours::new(mesh), &own_comp.0[..], own_comp.1)
        }
    };
    let before = component_volumes(mesh, comp, ncomp);
    let volume_before: f64 = before.iter().sum();
    report.volume_before_mm3 = volume_before;
    let original = mesh.vertices.clone();
    // Padded to four lanes: one aligned load per neighbour, one vector
    // multiply-add (the lanes compute exactly what three scalars would).
    let mut cur: Vec<[f32; 4]> = mesh
        .vertices
        .par_iter()
        .map(|p| [p[0], p[1], p[2], 0.0])
        .collect();
    let mut tmp = cur.clone();
    for _ in 0..params.iterations {
        step(&nb, &cur, &mut tmp, params.lambda as f32);
        step(&nb, &tmp, &mut cur, mu as f32);
    }
    drop(tmp);
    mesh.vertices
        .par_iter_mut()
        .zip(cur.par_iter())
        .for_each(|(p, q)| *p = [q[0], q[1], q[2]]);
    drop(cur);
    // Six times each component's volume as a cubic in the normal offset;
    // its constant term is the smoothed volume.
    let cubics = params.preserve_volume.then(|| {
        let normals = unit_vertex_normals(mesh, pre.map(|p| p.0));
        let cubics = component_offset_cubics(mesh, comp, ncomp, &normals);
        (normals, cubics)
    });
    let mut after: Vec<f64> = match &cubics {
        Some((_, c)) => c.iter().map(|c| c[0] / 6.0).collect(),
        None => component_volumes(mesh, comp, ncomp),
    };
    // Components the filter would shrink away keep their raw shape (and so
    // their raw volume).
    let revert: Vec<bool> = before
        .iter()
        .zip(&after)
        .map(|(&b, &a)| b == 0.0 || ((a - b) / b).abs() > MAX_COMPONENT_CHANGE)
        .collect();
    if revert.iter().any(|&r| r) {
        mesh.vertices
            .par_iter_mut()
            .zip(original.par_iter())
            .zip(comp.par_iter())
            .for_each(|((p, o), &c)| {
                if revert[c as usize] {
                    *p = *o;
                }
            });
        report.components_left_raw = revert.iter().filter(|&&r| r).count();
        for ((a, &b), &r) in after.iter_mut().zip(&before).zip(&revert) {
            if r {
                *a = b;
            }
        }
    }
    if let Some((normals, cubics)) = &cubics {
        // Restore each component's volume by the normal offset that gives
        // it back exactly (to rounding), from the cubic.
        let offset: Vec<f64> = before
            .iter()
            .zip(&after)
            .zip(&revert)
            .zip(cubics)
            .map(|(((&b, &a), &r), &cubic)| {
                // Within a millionth already: leave it.
                if r || (b - a).abs() <= 1e-6 * b.abs() {
                    0.0
                } else {
                    solve_offset(cubic, 6.0 * b)
                }
            })
            .collect();
        if offset.iter().any(|&d| d != 0.0) {
            offset_along_normals(mesh, comp, &offset, normals);
            // The volumes after the offsets, from the cubics (exact but for
            // the rounding of the moved vertices to f32: no re-measuring pass).
            for (((a, &d), c), &r) in after.iter_mut().zip(&offset).zip(cubics).zip(&revert) {
                if !r && d != 0.0 {
                    *a = (c[0] + d * (c[1] + d * (c[2] + d * c[3]))) / 6.0;
                }
            }
        }
        report.volume_offset_mm = offset
            .iter()
            .fold(0f64, |m, &d| if d.abs() > m.abs() { d } else { m });
    }
    report.volume_after_mm3 = after.iter().sum();
    report.volume_change_percent = if volume_before != 0.0 {
        100.0 * (report.volume_after_mm3 - volume_before) / volume_before
    } else {
        0.0
    };
    report.max_displacement_mm = original
        .par_iter()
        .zip(mesh.vertices.par_iter())
        .map(|(a, b)| {
            let d = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
            ((d[0] * d[0] + d[1] * d[1] + d[2] * d[2]) as f64).sqrt()
        })
        .reduce(|| 0.0, f64::max);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::{Grid, Mask};

    /// Two overlapping anisotropic balls and a separate small one, as
    /// marching cubes surfaces them (three closed pieces with two components).
    fn blobs() -> Mesh {
        let mut m = Mask::filled(
            Grid::new([30, 26, 16], [0.7, 0.6, 1.3], [-10.0, 20.0, 5.0]),
            0,
        );
        for z in 0..16 {
            for y in 0..26 {
                for x in 0..30 {
                    let d = |c: [f64; 3], r: f64| {
                        let (dx, dy, dz) = (x as f64 - c[0], y as f64 - c[1], z as f64 - c[2]);
                        dx * dx + dy * dy + 4.0 * dz * dz <= r * r
                    };
                    if d([10.0, 12.0, 7.0], 7.0)
                        || d([15.0, 12.0, 8.0], 6.0)
                        || d([25.0, 5.0, 8.0], 3.0)
                    {
                        m.set(x, y, z, 1);
                    }
                }
            }
        }
        crate::surface::mask_surface(&m)
    }

    #[test]
    fn offset_cubic_is_the_volume_after_the_offset() {
        let mesh = blobs();
        let (comp, n) = super::super::topology::vertex_components(&mesh);
        assert!(n >= 2);
        let normals = unit_vertex_normals(&mesh, None);
        let cubics = component_offset_cubics(&mesh, &comp, n, &normals);
        let v0 = component_volumes(&mesh, &comp, n);
        for k in 0..n {
            assert!((cubics[k][0] / 6.0 - v0[k]).abs() <= 1e-9 * v0[k].abs());
        }
        for d in [-0.4, -0.05, 0.02, 0.3] {
            let mut moved = mesh.clone();
            offset_along_normals(&mut moved, &comp, &vec![d; n], &normals);
            let v = component_volumes(&moved, &comp, n);
            for k in 0..n {
                let c = cubics[k];
                let predicted = (c[0] + d * (c[1] + d * (c[2] + d * c[3]))) / 6.0;
                // Only the f32 rounding of the moved vertices differs.
                assert!(
                    (v[k] - predicted).abs() <= 1e-5 * v[k].abs(),
                    "offset {d}, piece {k}: measured {} predicted {predicted}",
                    v[k]
                );
                // And an outward offset grows the piece.
                assert_eq!(v[k] > v0[k], d > 0.0);
            }
        }
    }

    #[test]
    fn solve_offset_finds_the_root_nearest_zero() {
        // 6V(d) = (1 + d)³ (a cube of side 1 + d): volume 2 at d = 2^(1/3) − 1.
        let c = [1.0, 3.0, 3.0, 1.0];
        let d = solve_offset(c, 2.0);
        assert!((d - (2f64.cbrt() - 1.0)).abs() < 1e-12, "{d}");
        assert!((solve_offset(c, 0.5) - (0.5f64.cbrt() - 1.0)).abs() < 1e-12);
        // No growth with the offset (inward normals, a broken piece): no move.
        assert_eq!(solve_offset([1.0, -3.0, 0.0, 0.0], 2.0), 0.0);
        assert_eq!(solve_offset([1.0, f64::NAN, 0.0, 0.0], 2.0), 0.0);
    }

    #[test]
    fn smoothing_restores_each_piece_volume() {
        let mut mesh = blobs();
        let (comp, n) = super::super::topology::vertex_components(&mesh);
        let before = component_volumes(&mesh, &comp, n);
        let r = taubin(&mut mesh, &SmoothParams::default()).unwrap();
        assert_eq!(r.components_left_raw, 0);
        assert!(r.volume_offset_mm != 0.0);
        let after = component_volumes(&mesh, &comp, n);
        for k in 0..n {
            assert!(
                (after[k] - before[k]).abs() <= 1e-5 * before[k],
                "piece {k}: {} → {}",
                before[k],
                after[k]
            );
        }
        // The reported volume (from the cubics) is the measured one, to the
        // rounding of the vertices to f32.
        let measured: f64 = after.iter().sum();
        assert!(
            (r.volume_after_mm3 - measured).abs() < 1e-8 * measured,
            "{} vs {measured}",
            r.volume_after_mm3
        );
    }
}
