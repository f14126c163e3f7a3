//! Topology checks of a triangle mesh: is it a closed, consistently oriented
//! 2-manifold? Counts every kind of defect separately so a report can say
//! what is wrong, not only that something is.
//!
//! Definitions (for a mesh with shared vertices):
//!
//! - an edge is *shared by two* when exactly two triangles use it; it is
//!   *misoriented* when those two traverse it in the same direction;
//! - a vertex is *manifold* when its triangles form one closed fan: the
//!   opposite edges of its triangles chain into a single cycle. Two surface
//!   sheets that touch only at a vertex (voxels meeting at a corner) make it
//!   non-manifold even though every edge is shared by two;
//! - a triangle is *degenerate* when it repeats a vertex or has zero area, a
//!   *duplicate* when another triangle uses the same three vertices;
//! - components are the connected pieces (through shared vertices), and the
//!   Euler characteristic is χ = V − E + F over the vertices in use (2 per
//!   sphere-like closed piece, 2 − 2g for a piece with g tunnels).

use crate::surface::Mesh;
use rayon::prelude::*;

/// Everything [`check`] found, serialised into report.json and printed by
/// `spinemesh check`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MeshCheck {
    pub triangles: usize,
    /// Vertices used by at least one triangle.
    pub vertices: usize,
    /// Vertices stored but used by no triangle (harmless; counted for completeness).
    pub unused_vertices: usize,
    /// Distinct undirected edges.
    pub edges: usize,
    /// Edges used by one triangle only (holes).
    pub boundary_edges: usize,
    /// Edges used by three or more triangles.
    pub non_manifold_edges: usize,
    /// Edges whose two triangles run along them in the same direction.
    pub misoriented_edges: usize,
    /// Boundary plus non-manifold edges: 0 for a closed surface.
    pub edges_not_shared_by_two: usize,
    /// Vertices whose triangles do not form a single closed fan.
    pub non_manifold_vertices: usize,
    /// Triangles that repeat a vertex index or have zero area.
    pub degenerate_triangles: usize,
    /// Triangles beyond the first with the same three vertices.
    pub duplicate_triangles: usize,
    /// Connected pieces.
    pub components: usize,
    /// χ = V − E + F (vertices in use).
    pub euler_characteristic: i64,
    /// Enclosed volume, mm³ (divergence theorem; positive when outward).
    pub volume_mm3: f64,
    /// Surface area, mm².
    pub area_mm2: f64,
    /// Every edge is shared by exactly two triangles (no holes, no fins).
    pub closed: bool,
    /// Closed, every vertex a single fan, no degenerate or duplicate triangles.
    pub manifold: bool,
    /// Neighbouring triangles agree on orientation and the enclosed volume is
    /// positive (normals point out).
    pub outward: bool,
    /// Coordinates that are NaN or infinite.
    pub non_finite_vertices: usize,
}

impl MeshCheck {
    /// True when the mesh is a closed, outward-oriented 2-manifold with
    /// finite coordinates: what a finite-element mesher needs.
    pub fn is_valid_solid(&self) -> bool {
        self.closed && self.manifold && self.outward && self.non_finite_vertices == 0
    }

    /// One line listing what is wrong, or "closed 2-manifold, outward" when
    /// nothing is.
    pub fn summary(&self) -> String {
        let mut bad = Vec::new();
        let mut say = |n: usize, what: &str| {
            if n > 0 {
                bad.push(format!("{n} {what}"));
            }
        };
        say(self.boundary_edges, "boundary edges");
        say(self.non_manifold_edges, "edges in 3+ triangles");
        say(self.misoriented_edges, "misoriented edges");
        say(self.non_manifold_vertices, "non-manifold vertices");
        say(self.degenerate_triangles, "degenerate triangles");
        say(self.duplicate_triangles, "duplicate triangles");
        say(self.non_finite_vertices, "non-finite vertices");
        if self.triangles == 0 {
            bad.push("no triangles".into());
        } else if self.misoriented_edges == 0 && self.volume_mm3 <= 0.0 {
            bad.push("normals point inwards (negative volume)".into());
        }
        if bad.is_empty() {
            "closed 2-manifold, outward".into()
        } else {
            bad.join(", ")
        }
    }
}

/// Triangle corners at each vertex, in compressed rows: row `v` lists
/// `3 t + k` for every triangle `t` whose corner `k` is `v`, in triangle
/// order (the same order a serial fill gives, whatever the thread count).
///
/// Filled in parallel over fixed chunks of triangles: each chunk counts the
/// corners in the window of vertex ids it touches, the counts become each
/// chunk's first slot per vertex, and the chunks then write disjoint slots.
/// Meshes from marching cubes, decimation or a file reference nearby
/// vertices from nearby triangles, so the windows are narrow; when they are
/// not (their sizes add up to many times the vertex count), one chunk does
/// it all.
pub(crate) fn corner_rows(nv: usize, tris: &[[u32; 3]]) -> (Vec<u32>, Vec<u32>) {
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
    const CHUNK: usize = 1 << 15;
    let window = |ts: &[[u32; 3]]| {
        let (lo, hi) = ts
            .iter()
            .flatten()
            .fold((u32::MAX, 0), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        (lo as usize, hi as usize + 1)
    };
    let mut windows: Vec<(usize, usize)> = tris.par_chunks(CHUNK).map(window).collect();
    let total: usize = windows.iter().map(|w| w.1.saturating_sub(w.0)).sum();
    let chunk = if total > 4 * nv + CHUNK {
        windows = vec![window(tris)];
        tris.len().max(1)
    } else {
        CHUNK
    };
    // Corners of each vertex in each chunk's window.
    let mut counts: Vec<Vec<u32>> = tris
        .par_chunks(chunk)
        .zip(windows.par_iter())
        .map(|(ts, &(lo, hi))| {
            let mut c = vec![0u32; hi.saturating_sub(lo)];
            for &v in ts.iter().flatten() {
                c[v as usize - lo] += 1;
            }
            c
        })
        .collect();
    let mut offsets = vec![0u32; nv + 1];
    for (c, &(lo, _)) in counts.iter().zip(&windows) {
        for (o, &n) in offsets[lo + 1..].iter_mut().zip(c) {
            *o += n;
        }
    }
    for i in 0..nv {
        offsets[i + 1] += offsets[i];
    }
    // Counts → each chunk's first slot per vertex, chunks in order.
    let mut cursor = offsets.clone();
    for (c, &(lo, _)) in counts.iter_mut().zip(&windows) {
        for (n, cur) in c.iter_mut().zip(&mut cursor[lo..]) {
            let k = *n;
            *n = *cur;
            *cur += k;
        }
    }
    drop(cursor);
    let rows: Vec<AtomicU32> = (0..offsets[nv])
        .into_par_iter()
        .map(|_| AtomicU32::new(0))
        .collect();
    tris.par_chunks(chunk)
        .zip(counts.par_iter_mut())
        .zip(windows.par_iter())
        .enumerate()
        .for_each(|(ci, ((ts, next), &(lo, _)))| {
            for (i, t) in ts.iter().enumerate() {
                let corner = 3 * (ci * chunk + i) as u32;
                for (k, &v) in t.iter().enumerate() {
                    let slot = &mut next[v as usize - lo];
                    rows[*slot as usize].store(corner + k as u32, Relaxed);
                    *slot += 1;
                }
            }
        });
    (
        offsets,
        rows.into_iter().map(AtomicU32::into_inner).collect(),
    )
}

/// Vertex → incident triangles, in compressed rows.
pub struct VertexTriangles {
    pub offsets: Vec<u32>,
    pub triangles: Vec<u32>,
}

impl VertexTriangles {
    pub fn new(mesh: &Mesh) -> Self {
        Self::from_triangles(mesh.vertices.len(), &mesh.triangles)
    }

    /// For `n` vertices and these triangles (indices must be below `n`).
    pub fn from_triangles(n: usize, tris: &[[u32; 3]]) -> Self {
        let mut offsets = vec![0u32; n + 1];
        for t in tris {
            for &v in t {
                offsets[v as usize + 1] += 1;
            }
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut triangles = vec![0u32; offsets[n] as usize];
        for (ti, t) in tris.iter().enumerate() {
            for &v in t {
                let slot = &mut fill[v as usize];
                triangles[*slot as usize] = ti as u32;
                *slot += 1;
            }
        }
        VertexTriangles { offsets, triangles }
    }

    #[inline]
    pub fn of(&self, v: usize) -> &[u32] {
        &self.triangles[self.offsets[v] as usize..self.offsets[v + 1] as usize]
    }
}

/// True when the triangles around `v` form exactly one closed fan.
/// `tris` are the triangles incident to `v`.
pub fn vertex_is_manifold(mesh: &Mesh, v: u32, tris: &[u32]) -> bool {
    if tris.is_empty() {
        return true;
    }
    // Link edges a→b: the edge opposite v, in the triangle's winding.
    let mut link: Vec<(u32, u32)> = Vec::with_capacity(tris.len());
    for &t in tris {
        let t = mesh.triangles[t as usize];
        let k = match t.iter().position(|&x| x == v) {
            Some(k) => k,
            None => return false,
        };
        let (a, b) = (t[(k + 1) % 3], t[(k + 2) % 3]);
        if a == v || b == v || a == b {
            return false;
        }
        link.push((a, b));
    }
    link.sort_unstable();
    // Each link vertex must start exactly one link edge ...
    if link.windows(2).any(|w| w[0].0 == w[1].0) {
        return false;
    }
    // ... and following them from the first must visit all before returning.
    let start = link[0].0;
    let mut cur = link[0].1;
    let mut steps = 1;
    while cur != start {
        match link.binary_search_by_key(&cur, |e| e.0) {
            Ok(i) => cur = link[i].1,
            Err(_) => return false,
        }
        steps += 1;
        if steps > link.len() {
            return false;
        }
    }
    steps == link.len()
}

/// The indices of vertices that are not manifold (see module docs).
pub fn non_manifold_vertices(mesh: &Mesh) -> Vec<u32> {
    let vt = VertexTriangles::new(mesh);
    (0..mesh.vertices.len() as u32)
        .into_par_iter()
        .filter(|&v| !vertex_is_manifold(mesh, v, vt.of(v as usize)))
        .collect()
}

/// Undirected edge key.
#[inline]
fn edge_key(a: u32, b: u32) -> u64 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    ((lo as u64) << 32) | hi as u64
}

/// Vertices of every edge that is not shared by exactly two oppositely
/// oriented triangles, and of every vertex that is not manifold, and of
/// degenerate or duplicate triangles: where a mesh needs repair.
pub fn defect_vertices(mesh: &Mesh) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    let mut edges: Vec<(u64, bool)> = Vec::with_capacity(mesh.triangles.len() * 3);
    for t in &mesh.triangles {
        for k in 0..3 {
            let (a, b) = (t[k], t[(k + 1) % 3]);
            edges.push((edge_key(a, b), a < b));
        }
    }
    edges.par_sort_unstable();
    let mut i = 0;
    while i < edges.len() {
        let mut j = i;
        let mut fwd = 0;
        while j < edges.len() && edges[j].0 == edges[i].0 {
            fwd += edges[j].1 as usize;
            j += 1;
        }
        if j - i != 2 || fwd != 1 {
            let k = edges[i].0;
            out.push((k >> 32) as u32);
            out.push(k as u32);
        }
        i = j;
    }
    out.extend(non_manifold_vertices(mesh));
    for (i, t) in mesh.triangles.iter().enumerate() {
        if is_degenerate(mesh, t) {
            out.extend_from_slice(t);
        }
        let _ = i;
    }
    for t in duplicate_triangle_list(mesh) {
        out.extend_from_slice(&mesh.triangles[t as usize]);
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn is_degenerate(mesh: &Mesh, t: &[u32; 3]) -> bool {
    if t[0] == t[1] || t[1] == t[2] || t[0] == t[2] {
        return true;
    }
    triangle_area(mesh, t) <= 0.0
}

/// Area of one triangle, mm² (f64).
pub fn triangle_area(mesh: &Mesh, t: &[u32; 3]) -> f64 {
    let [a, b, c] = t.map(|i| mesh.vertices[i as usize].map(|x| x as f64));
    let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    let w = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
    let n = [
        u[1] * w[2] - u[2] * w[1],
        u[2] * w[0] - u[0] * w[2],
        u[0] * w[1] - u[1] * w[0],
    ];
    0.5 * (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt()
}

/// Triangles (beyond the first of each group) that use the same three
/// vertices as an earlier one, in either winding.
fn duplicate_triangle_list(mesh: &Mesh) -> Vec<u32> {
    let mut keys: Vec<([u32; 3], u32)> = mesh
        .triangles
        .par_iter()
        .enumerate()
        .map(|(i, t)| {
            let mut s = *t;
            s.sort_unstable();
            (s, i as u32)
        })
        .collect();
    keys.par_sort_unstable();
    keys.windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| w[1].1)
        .collect()
}

/// Union-find over the vertices, joined through the triangles, built in
/// parallel. A root is only ever linked under a smaller root and paths only
/// shorten towards smaller ids, so every vertex's parent is at most itself
/// and each component's root ends as its smallest vertex: the same forest
/// roots whatever the thread count or the order of the unions.
struct Dsu(Vec<std::sync::atomic::AtomicU32>);

impl Dsu {
    fn find(&self, mut x: u32) -> u32 {
        use std::sync::atomic::Ordering::Relaxed;
        loop {
            let p = self.0[x as usize].load(Relaxed);
            if p == x {
                return x;
            }
            let g = self.0[p as usize].load(Relaxed);
            if g != p {
                // Path halving; losing the race to another update is fine.
                let _ = self.0[x as usize].compare_exchange(p, g, Relaxed, Relaxed);
            }
            x = g;
        }
    }

    fn union(&self, a: u32, b: u32) {
        use std::sync::atomic::Ordering::Relaxed;
        loop {
            let (ra, rb) = (self.find(a), self.find(b));
            if ra == rb {
                return;
            }
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            if self.0[hi as usize]
                .compare_exchange(hi, lo, Relaxed, Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Vertices joined through the triangles (indices must be in range).
    fn of_mesh(mesh: &Mesh) -> Self {
        let dsu = Dsu((0..mesh.vertices.len() as u32)
            .into_par_iter()
            .map(std::sync::atomic::AtomicU32::new)
            .collect());
        mesh.triangles.par_iter().for_each(|t| {
            dsu.union(t[0], t[1]);
            dsu.union(t[0], t[2]);
        });
        dsu
    }

    /// Component id of each vertex's root: components numbered in the order
    /// of their smallest vertex.
    fn numbering(&self) -> (Vec<u32>, Vec<u32>, usize) {
        // A root is its component's smallest vertex, so numbering the roots
        // in vertex order numbers the components by first appearance.
        let n = self.0.len();
        let roots: Vec<u32> = (0..n as u32)
            .into_par_iter()
            .map(|v| self.find(v))
            .collect();
        let mut id = vec![u32::MAX; n];
        let mut k = 0u32;
        for v in 0..n {
            if roots[v] == v as u32 {
                id[v] = k;
                k += 1;
            }
        }
        (roots, id, k as usize)
    }
}

/// Component id (0..n) of every vertex (unused vertices get their own), and n.
pub fn vertex_components(mesh: &Mesh) -> (Vec<u32>, usize) {
    let (roots, id, n) = Dsu::of_mesh(mesh).numbering();
    (roots.par_iter().map(|&r| id[r as usize]).collect(), n)
}

/// Component id (0..n) of every triangle, numbered in the order of their
/// first triangle, and n.
pub fn triangle_components(mesh: &Mesh) -> (Vec<u32>, usize) {
    let dsu = Dsu::of_mesh(mesh);
    let roots: Vec<u32> = mesh.triangles.par_iter().map(|t| dsu.find(t[0])).collect();
    let mut id = vec![u32::MAX; mesh.vertices.len()];
    let mut n = 0u32;
    let comp = roots
        .iter()
        .map(|&r| {
            let slot = &mut id[r as usize];
            if *slot == u32::MAX {
                *slot = n;
                n += 1;
            }
            *slot
        })
        .collect();
    (comp, n as usize)
}

/// Checks a mesh (any mesh: indices out of range count as degenerate
/// triangles rather than panicking).
pub fn check(mesh: &Mesh) -> MeshCheck {
    let nv = mesh.vertices.len();
    // Indices out of range: treat the mesh as if those triangles were absent
    // and count them as degenerate.
    let bad_index = mesh
        .triangles
        .par_iter()
        .filter(|t| t.iter().any(|&i| i as usize >= nv))
        .count();
    let sanitized;
    let mesh = if bad_index > 0 {
        sanitized = Mesh {
            vertices: mesh.vertices.clone(),
            triangles: mesh
                .triangles
                .iter()
                .filter(|t| t.iter().all(|&i| (i as usize) < nv))
                .copied()
                .collect(),
        };
        &sanitized
    } else {
        mesh
    };

    let mut c = MeshCheck {
        triangles: mesh.triangles.len() + bad_index,
        ..Default::default()
    };
    // The ordered fan of every vertex. When each used vertex's triangles
    // chain into one simple cycle, every edge v–x lies in exactly the two
    // triangles before and after x in v's cycle, once in each direction: the
    // surface is closed, consistently oriented, without non-manifold edges,
    // vertices or duplicate triangles, and has Σ valence / 2 edges. Only
    // when some fan does not close are the edges sorted and counted.
    let rings = super::decimate::Rings::new(nv, &mesh.triangles);
    let valence = |v: usize| rings.offsets[v + 1] - rings.offsets[v];
    c.vertices = (0..nv).into_par_iter().filter(|&v| valence(v) > 0).count();
    c.unused_vertices = nv - c.vertices;
    c.non_finite_vertices = (0..nv)
        .into_par_iter()
        .filter(|&v| valence(v) > 0 && !mesh.vertices[v].iter().all(|x| x.is_finite()))
        .count();
    let all_fans_close = (0..nv)
        .into_par_iter()
        .all(|v| rings.ok[v] || valence(v) == 0);
    if all_fans_close {
        c.edges = rings.offsets[nv] as usize / 2;
    } else {
        let s = mesh.edge_stats();
        c.edges = s.edges;
        c.boundary_edges = s.boundary;
        c.non_manifold_edges = s.non_manifold;
        c.misoriented_edges = s.misoriented;
        c.edges_not_shared_by_two = s.boundary + s.non_manifold;
        c.non_manifold_vertices = non_manifold_vertices(mesh).len();
        c.duplicate_triangles = duplicate_triangle_list(mesh).len();
    }
    drop(rings);
    c.degenerate_triangles = bad_index
        + mesh
            .triangles
            .par_iter()
            .filter(|t| is_degenerate(mesh, t))
            .count();
    c.components = triangle_components(mesh).1;
    c.euler_characteristic = c.vertices as i64 - c.edges as i64 + mesh.triangles.len() as i64;
    (c.volume_mm3, c.area_mm2) = super::smooth::volume_and_area(mesh);
    c.closed = c.triangles > 0 && c.edges_not_shared_by_two == 0;
    c.manifold = c.closed
        && c.non_manifold_vertices == 0
        && c.degenerate_triangles == 0
        && c.duplicate_triangles == 0;
    c.outward = c.triangles > 0 && c.misoriented_edges == 0 && c.volume_mm3 > 0.0;
    c
}

/// Drops vertices no triangle uses and renumbers the rest (order kept).
pub fn compact(mesh: &mut Mesh) {
    let mut map = vec![u32::MAX; mesh.vertices.len()];
    for t in &mesh.triangles {
        for &v in t {
            map[v as usize] = 0;
        }
    }
    let mut n = 0u32;
    let mut vertices = Vec::with_capacity(mesh.vertices.len());
    for (i, m) in map.iter_mut().enumerate() {
        if *m == 0 {
            *m = n;
            n += 1;
            vertices.push(mesh.vertices[i]);
        }
    }
    for t in &mut mesh.triangles {
        *t = t.map(|v| map[v as usize]);
    }
    mesh.vertices = vertices;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random triangles over `nv` vertices (a fixed generator).
    fn random_triangles(nv: u32, n: usize, seed: u64) -> Vec<[u32; 3]> {
        let mut s = seed;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % nv as u64) as u32
        };
        (0..n).map(|_| [next(), next(), next()]).collect()
    }

    /// The rows a serial fill gives.
    fn serial_rows(nv: usize, tris: &[[u32; 3]]) -> Vec<Vec<u32>> {
        let mut rows = vec![Vec::new(); nv];
        for (t, tri) in tris.iter().enumerate() {
            for (k, &v) in tri.iter().enumerate() {
                rows[v as usize].push(3 * t as u32 + k as u32);
            }
        }
        rows
    }

    #[test]
    fn corner_rows_match_a_serial_fill() {
        // Scattered ids (one chunk does it all) and local ids over many
        // chunks (each triangle near its index, as marching cubes makes them).
        let scattered = random_triangles(1000, 200_000, 1);
        let local: Vec<[u32; 3]> = random_triangles(64, 200_000, 2)
            .into_iter()
            .enumerate()
            .map(|(t, tri)| tri.map(|v| (t / 4) as u32 + v))
            .collect();
        for (tris, nv) in [(scattered, 1000), (local, 50_064)] {
            let (offsets, corners) = corner_rows(nv, &tris);
            let rows = serial_rows(nv, &tris);
            for v in 0..nv {
                let row = &corners[offsets[v] as usize..offsets[v + 1] as usize];
                assert_eq!(row, &rows[v][..], "vertex {v}");
            }
        }
        let (offsets, corners) = corner_rows(5, &[]);
        assert_eq!((offsets, corners), (vec![0; 6], vec![]));
    }

    #[test]
    fn components_match_a_breadth_first_search() {
        // Sparse random triangles: many components of all sizes.
        let nv = 30_000;
        let tris = random_triangles(nv, 9_000, 3);
        let mesh = Mesh {
            vertices: vec![[0.0; 3]; nv as usize],
            triangles: tris.clone(),
        };
        let (comp, n) = vertex_components(&mesh);
        let mut adj = vec![Vec::new(); nv as usize];
        for t in &tris {
            for k in 0..3 {
                adj[t[k] as usize].push(t[(k + 1) % 3]);
                adj[t[(k + 1) % 3] as usize].push(t[k]);
            }
        }
        // Numbered by first appearance in vertex order.
        let mut want = vec![u32::MAX; nv as usize];
        let mut next = 0;
        for s in 0..nv as usize {
            if want[s] != u32::MAX {
                continue;
            }
            want[s] = next;
            let mut stack = vec![s];
            while let Some(v) = stack.pop() {
                for &w in &adj[v] {
                    if want[w as usize] == u32::MAX {
                        want[w as usize] = next;
                        stack.push(w as usize);
                    }
                }
            }
            next += 1;
        }
        assert_eq!(n, next as usize);
        assert_eq!(comp, want);
        // Triangle components: the same partition, numbered by first triangle.
        let (tc, tn) = triangle_components(&mesh);
        let mut first = std::collections::HashMap::new();
        for (i, t) in tris.iter().enumerate() {
            let k = first.len() as u32;
            assert_eq!(tc[i], *first.entry(want[t[0] as usize]).or_insert(k));
        }
        assert_eq!(tn, first.len());
    }
}
