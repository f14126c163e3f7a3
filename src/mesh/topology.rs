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

/// Union-find with path halving.
struct Dsu(Vec<u32>);
impl Dsu {
    fn find(&mut self, mut x: u32) -> u32 {
        while self.0[x as usize] != x {
            let p = self.0[self.0[x as usize] as usize];
            self.0[x as usize] = p;
            x = p;
        }
        x
    }
    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.0[hi as usize] = lo;
        }
    }
}

impl Dsu {
    /// Vertices joined through the triangles.
    fn of_mesh(mesh: &Mesh) -> Self {
        let mut dsu = Dsu((0..mesh.vertices.len() as u32).collect());
        for t in &mesh.triangles {
            dsu.union(t[0], t[1]);
            dsu.union(t[0], t[2]);
        }
        dsu
    }
}

/// Component id (0..n) of every vertex (unused vertices get their own), and n.
pub fn vertex_components(mesh: &Mesh) -> (Vec<u32>, usize) {
    let mut dsu = Dsu::of_mesh(mesh);
    let mut id = vec![u32::MAX; mesh.vertices.len()];
    let mut n = 0u32;
    let comp = (0..mesh.vertices.len() as u32)
        .map(|v| {
            let r = dsu.find(v) as usize;
            if id[r] == u32::MAX {
                id[r] = n;
                n += 1;
            }
            id[r]
        })
        .collect();
    (comp, n as usize)
}

/// Component id (0..n) of every triangle, and n.
pub fn triangle_components(mesh: &Mesh) -> (Vec<u32>, usize) {
    let mut dsu = Dsu::of_mesh(mesh);
    let mut id = vec![u32::MAX; mesh.vertices.len()];
    let mut n = 0u32;
    let comp = mesh
        .triangles
        .iter()
        .map(|t| {
            let r = dsu.find(t[0]) as usize;
            if id[r] == u32::MAX {
                id[r] = n;
                n += 1;
            }
            id[r]
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
        .iter()
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
    let mut used = vec![false; nv];
    for t in &mesh.triangles {
        for &v in t {
            used[v as usize] = true;
        }
    }
    c.vertices = used.iter().filter(|&&u| u).count();
    c.unused_vertices = nv - c.vertices;
    c.non_finite_vertices = mesh
        .vertices
        .iter()
        .zip(&used)
        .filter(|(p, &u)| u && !p.iter().all(|x| x.is_finite()))
        .count();

    let s = mesh.edge_stats();
    c.edges = s.edges;
    c.boundary_edges = s.boundary;
    c.non_manifold_edges = s.non_manifold;
    c.misoriented_edges = s.misoriented;
    c.edges_not_shared_by_two = s.boundary + s.non_manifold;

    c.non_manifold_vertices = non_manifold_vertices(mesh).len();
    c.degenerate_triangles = bad_index
        + mesh
            .triangles
            .par_iter()
            .filter(|t| is_degenerate(mesh, t))
            .count();
    c.duplicate_triangles = duplicate_triangle_list(mesh).len();
    c.components = triangle_components(mesh).1;
    c.euler_characteristic = c.vertices as i64 - c.edges as i64 + mesh.triangles.len() as i64;
    c.volume_mm3 = mesh.volume_mm3();
    c.area_mm2 = mesh.area_mm2();
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
