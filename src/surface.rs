//! Surface extraction: marching cubes in patient coordinates (paper step 7).
//!
//! The case table is not copied from the literature; it is derived at start-up
//! from one rule applied to each face of the cube: the surface crosses an edge
//! whose two corners disagree, and on a face whose inside corners are diagonal
//! (the ambiguous face) it cuts each inside corner off separately. Because the
//! two cubes sharing a face apply the same rule to that face, they agree on the
//! segments the surface leaves on it, and every segment is a mesh edge used by
//! exactly one triangle on each side. Chaining a cube's face segments gives
//! closed polygons, which are fan-triangulated. The result, for a field padded
//! with "outside" at its borders, is a closed, consistently oriented surface
//! with shared vertices: every edge in exactly two triangles.
//!
//! Inside is `value > level`. Triangles wind counter-clockwise seen from
//! outside (normals point out of the object), also when the grid's directions
//! mirror the index space. Vertices are in LPS mm via the [`Grid`].
//!
//! For a binary mask ([`mask_surface`]) the level is 0.5, so vertices sit at
//! the midpoints of voxel-centre edges: the surface lies half a voxel outside
//! the centres of the boundary voxels, as scikit-image's `marching_cubes(mask,
//! 0.5)` would give.

use crate::vec3;
use crate::{Grid, Mask, Volume};
use std::sync::OnceLock;

/// A triangle mesh with shared vertices, in LPS mm.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mesh {
    pub vertices: Vec<[f32; 3]>,
    pub triangles: Vec<[u32; 3]>,
}

/// Edge statistics of a mesh: the counts that decide if it is closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EdgeStats {
    /// Distinct undirected edges.
    pub edges: usize,
    /// Edges used by one triangle only (holes).
    pub boundary: usize,
    /// Edges used by more than two triangles.
    pub non_manifold: usize,
    /// Edges whose two triangles traverse them in the same direction
    /// (inconsistent orientation).
    pub misoriented: usize,
}

impl Mesh {
    /// Enclosed volume (mm³) by the divergence theorem; positive for an
    /// outward-oriented closed surface.
    pub fn volume_mm3(&self) -> f64 {
        let c = self.reference_point();
        self.triangles
            .iter()
            .map(|t| {
                let [a, b, d] = t.map(|i| sub(self.vertices[i as usize], c));
                vec3::dot(a, vec3::cross(b, d)) / 6.0
            })
            .sum()
    }

    /// Surface area, mm².
    pub fn area_mm2(&self) -> f64 {
        self.triangles
            .iter()
            .map(|t| {
                let [a, b, d] = t.map(|i| sub(self.vertices[i as usize], [0.0; 3]));
                0.5 * vec3::norm(vec3::cross(vec3::sub(b, a), vec3::sub(d, a)))
            })
            .sum()
    }

    /// Axis-aligned bounds (min, max) in LPS mm, or `None` if empty.
    pub fn bounds(&self) -> Option<([f64; 3], [f64; 3])> {
        let mut it = self.vertices.iter();
        let first = it.next()?;
        let mut lo = first.map(|v| v as f64);
        let mut hi = lo;
        for v in it {
            for a in 0..3 {
                lo[a] = lo[a].min(v[a] as f64);
                hi[a] = hi[a].max(v[a] as f64);
            }
        }
        Some((lo, hi))
    }

    fn reference_point(&self) -> [f64; 3] {
        match self.bounds() {
            Some((lo, hi)) => [
                (lo[0] + hi[0]) / 2.0,
                (lo[1] + hi[1]) / 2.0,
                (lo[2] + hi[2]) / 2.0,
            ],
            None => [0.0; 3],
        }
    }

    /// Counts edges that are not shared by exactly two oppositely oriented triangles.
    pub fn edge_stats(&self) -> EdgeStats {
        // Key: (min, max); value: (uses, uses in min→max direction).
        use rayon::prelude::*;
        let mut edges: Vec<(u64, bool)> = self
            .triangles
            .par_iter()
            .flat_map_iter(|t| {
                (0..3).map(move |k| {
                    let (a, b) = (t[k], t[(k + 1) % 3]);
                    let forward = a < b;
                    let (lo, hi) = if forward { (a, b) } else { (b, a) };
                    (((lo as u64) << 32) | hi as u64, forward)
                })
            })
            .collect();
        edges.par_sort_unstable();
        let mut s = EdgeStats::default();
        let mut i = 0;
        while i < edges.len() {
            let mut j = i;
            let mut fwd = 0;
            while j < edges.len() && edges[j].0 == edges[i].0 {
                fwd += edges[j].1 as usize;
                j += 1;
            }
            let n = j - i;
            s.edges += 1;
            match n {
                1 => s.boundary += 1,
                2 if fwd != 1 => s.misoriented += 1,
                2 => {}
                _ => s.non_manifold += 1,
            }
            i = j;
        }
        s
    }

    /// True when every edge is shared by exactly two triangles with opposite
    /// orientation (a closed, consistently oriented surface).
    pub fn is_watertight(&self) -> bool {
        let s = self.edge_stats();
        !self.triangles.is_empty() && s.boundary == 0 && s.non_manifold == 0 && s.misoriented == 0
    }
}

/// A vertex (f32) minus a point, in f64.
fn sub(a: [f32; 3], b: [f64; 3]) -> [f64; 3] {
    crate::vec3::sub(a.map(f64::from), b)
}

// ---------------------------------------------------------------------------
// The case table, derived from the face rule.

/// Corner `c` of a cube sits at offset `(c & 1, (c >> 1) & 1, (c >> 2) & 1)`.
fn corner_offset(c: usize) -> [usize; 3] {
    [c & 1, (c >> 1) & 1, (c >> 2) & 1]
}

/// The 12 cube edges as (corner, axis): from `corner` one step along `axis`.
/// Edge id = index in this list.
fn cube_edges() -> Vec<(usize, usize)> {
    let mut e = Vec::with_capacity(12);
    for axis in 0..3 {
        for c in 0..8 {
            if c & (1 << axis) == 0 {
                e.push((c, axis));
            }
        }
    }
    e
}

fn edge_id(edges: &[(usize, usize)], a: usize, b: usize) -> usize {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let axis = (hi ^ lo).trailing_zeros() as usize;
    edges
        .iter()
        .position(|&(c, ax)| c == lo && ax == axis)
        .expect("corners of a cube edge")
}

/// True when cube edges `a` and `b` lie on a common face of the cube.
fn share_face(edges: &[(usize, usize)], a: usize, b: usize) -> bool {
    // A face is (axis, side); an edge from corner c along `ax` lies on the faces
    // of the two other axes at c's sides.
    let faces = |e: usize| {
        let (c, ax) = edges[e];
        (0..3)
            .filter(move |&f| f != ax)
            .map(move |f| (f, (c >> f) & 1))
    };
    faces(a).any(|fa| faces(b).any(|fb| fa == fb))
}

/// Triangles (as triples of edge ids) for each of the 256 cases.
fn case_table() -> &'static [Vec<[u8; 3]>; 256] {
    static TABLE: OnceLock<[Vec<[u8; 3]>; 256]> = OnceLock::new();
    TABLE.get_or_init(build_case_table)
}

fn build_case_table() -> [Vec<[u8; 3]>; 256] {
    let edges = cube_edges();
    let pos = |c: usize| corner_offset(c).map(|v| v as f64);
    let edge_mid = |e: usize| {
        let (c, axis) = edges[e];
        let mut p = pos(c);
        p[axis] += 0.5;
        p
    };
    // Faces as 4 corners in cyclic order, with their outward normals.
    let mut faces: Vec<([usize; 4], [f64; 3])> = Vec::new();
    for axis in 0..3 {
        let (u, v) = ((axis + 1) % 3, (axis + 2) % 3);
        for side in 0..2 {
            let base = side << axis;
            let cyc = [base, base | 1 << u, base | 1 << u | 1 << v, base | 1 << v];
            let mut n = [0.0; 3];
            n[axis] = if side == 1 { 1.0 } else { -1.0 };
            faces.push((cyc, n));
        }
    }
    std::array::from_fn(|case| {
        let inside = |c: usize| case & (1 << c) != 0;
        // Directed segments (from edge, to edge), inside corners on the right
        // when the face is seen from outside the cube.
        let mut next = [usize::MAX; 12];
        for (cyc, n) in &faces {
            let crossing: Vec<usize> = (0..4)
                .filter(|&k| inside(cyc[k]) != inside(cyc[(k + 1) % 4]))
                .collect();
            let mut pairs: Vec<(usize, usize, usize)> = Vec::new(); // (edge k, edge k', inside corner)
            match crossing.len() {
                0 => {}
                2 => {
                    let (k0, k1) = (crossing[0], crossing[1]);
                    let ins = (0..4).find(|&k| inside(cyc[k])).unwrap_or(0);
                    pairs.push((k0, k1, cyc[ins]));
                }
                4 => {
                    // Ambiguous face: cut each inside corner off on its own.
                    for k in 0..4 {
                        if inside(cyc[k]) {
                            pairs.push(((k + 3) % 4, k, cyc[k]));
                        }
                    }
                }
                _ => unreachable!("a face has 0, 2 or 4 crossings"),
            }
            for (k0, k1, ins) in pairs {
                let e0 = edge_id(&edges, cyc[k0], cyc[(k0 + 1) % 4]);
                let e1 = edge_id(&edges, cyc[k1], cyc[(k1 + 1) % 4]);
                let (a, b) = (edge_mid(e0), edge_mid(e1));
                let t = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
                let ip = pos(ins);
                let r = [ip[0] - a[0], ip[1] - a[1], ip[2] - a[2]];
                let (from, to) = if vec3::dot(vec3::cross(t, r), *n) < 0.0 {
                    (e0, e1)
                } else {
                    (e1, e0)
                };
                next[from] = to;
            }
        }
        // Chain segments into polygons and fan-triangulate each.
        let mut tris = Vec::new();
        let mut used = [false; 12];
        for start in 0..12 {
            if next[start] == usize::MAX || used[start] {
                continue;
            }
            let mut poly = vec![start];
            used[start] = true;
            let mut e = next[start];
            while e != start {
                poly.push(e);
                used[e] = true;
                e = next[e];
            }
            // Fan from an apex whose chords do not lie on a cube face: a chord
            // on an (ambiguous) face could be chosen by the neighbouring cube
            // too, and its edge would then carry four triangles.
            let n = poly.len();
            let apex = (0..n)
                .find(|&a| (2..n - 1).all(|k| !share_face(&edges, poly[a], poly[(a + k) % n])))
                .expect("every marching-cubes polygon has a chord-safe apex");
            for k in 1..n - 1 {
                let (b, c) = (poly[(apex + k) % n], poly[(apex + k + 1) % n]);
                tris.push([poly[apex] as u8, b as u8, c as u8]);
            }
        }
        tris
    })
}

// ---------------------------------------------------------------------------
// Extraction.

/// Marching cubes of `field` at `level` (inside = value > level), vertices in
/// LPS mm. The surface is closed wherever the object does not touch the
/// volume's border; pad the field with an outside value to close it there
/// ([`mask_surface`] does).
///
/// Slabs of cube layers run in parallel; the result is the same, to the
/// byte, as one pass over all layers (each slab maps its first plane's
/// vertices to those the previous slab made).
pub fn marching_cubes<T: Copy + Into<f32> + Send + Sync>(field: &Volume<T>, level: f32) -> Mesh {
    // A fixed slab size (never the thread count), so the work split is the
    // same on every machine; each slab repeats one plane of vertices.
    let layers = field.grid.dims[2].saturating_sub(1);
    marching_cubes_in_slabs(field, level, layers.div_ceil(32).max(8))
}

/// One slab's surface: its vertices in creation order, its triangles in
/// slab-local ids, and the vertices on its first and last planes' x- and
/// y-edges as (edge slot, local id), by slot.
struct SlabSurface {
    vertices: Vec<[f32; 3]>,
    triangles: Vec<[u32; 3]>,
    first: Vec<(u32, u32)>,
    last: Vec<(u32, u32)>,
}

/// [`marching_cubes`] with `per_slab` cube layers per slab. Each slab is
/// extracted as the serial scan does it (z, then y, then x; edge vertices
/// created when first needed), except that the x- and y-edge vertices on
/// its first plane were, in the serial scan, created by the previous slab's
/// last layer: the merge maps them to those, and numbers every other vertex
/// in slab order. Vertices, their order and the triangles come out as from
/// one pass over all layers.
pub(crate) fn marching_cubes_in_slabs<T: Copy + Into<f32> + Send + Sync>(
    field: &Volume<T>,
    level: f32,
    per_slab: usize,
) -> Mesh {
    use rayon::prelude::*;
    let [nx, ny, nz] = field.grid.dims;
    if nx < 2 || ny < 2 || nz < 2 {
        return Mesh::default();
    }
    let per_slab = per_slab.max(1);
    let starts: Vec<usize> = (0..nz - 1).step_by(per_slab).collect();
    let slabs: Vec<SlabSurface> = starts
        .par_iter()
        .map(|&z0| slab_surface(field, level, z0, (z0 + per_slab).min(nz - 1)))
        .collect();
    let mut mesh = Mesh {
        vertices: Vec::with_capacity(slabs.iter().map(|s| s.vertices.len()).sum()),
        triangles: Vec::with_capacity(slabs.iter().map(|s| s.triangles.len()).sum()),
    };
    const NONE: u32 = u32::MAX;
    // Global ids of the previous slab's last-plane vertices, by slot.
    let mut prev_last: Vec<(u32, u32)> = Vec::new();
    for s in slabs {
        let mut remap = vec![NONE; s.vertices.len()];
        // Both lists are sorted by slot: a merge join.
        let mut j = 0;
        for &(slot, id) in &s.first {
            while j < prev_last.len() && prev_last[j].0 < slot {
                j += 1;
            }
            if j < prev_last.len() && prev_last[j].0 == slot {
                remap[id as usize] = prev_last[j].1;
            }
        }
        for (local, v) in s.vertices.iter().enumerate() {
            if remap[local] == NONE {
                remap[local] = mesh.vertices.len() as u32;
                mesh.vertices.push(*v);
            }
        }
        mesh.triangles
            .extend(s.triangles.iter().map(|t| t.map(|v| remap[v as usize])));
        prev_last = s
            .last
            .iter()
            .map(|&(slot, id)| (slot, remap[id as usize]))
            .collect();
    }
    mesh
}

/// The serial scan over cube layers `z0..z1` (see [`marching_cubes_in_slabs`]).
fn slab_surface<T: Copy + Into<f32>>(
    field: &Volume<T>,
    level: f32,
    z0: usize,
    z1: usize,
) -> SlabSurface {
    let table = case_table();
    let edges = cube_edges();
    let [nx, ny, _] = field.grid.dims;
    let mut out = SlabSurface {
        vertices: Vec::new(),
        triangles: Vec::new(),
        first: Vec::new(),
        last: Vec::new(),
    };
    let plane = nx * ny;
    let val = |i: usize| -> f32 { field.data[i].into() };
    // Vertex ids of the edges of the current pair of slices: x- and y-edges on
    // slices z and z+1, z-edges between them. u32::MAX = not created yet.
    const NONE: u32 = u32::MAX;
    let mut xy_lo = vec![NONE; 2 * plane];
    let mut xy_hi = vec![NONE; 2 * plane];
    let mut zed = vec![NONE; plane];
    let m = field.grid.index_matrix();
    let o = field.grid.origin;
    let to_lps = |p: [f32; 3]| -> [f32; 3] {
        let p = p.map(|v| v as f64);
        std::array::from_fn(|r| (o[r] + m[r][0] * p[0] + m[r][1] * p[1] + m[r][2] * p[2]) as f32)
    };
    let flip = field.grid.is_mirrored();
    let corner_index: [usize; 8] = std::array::from_fn(|c| {
        let [dx, dy, dz] = corner_offset(c);
        dx + nx * (dy + ny * dz)
    });
    let listed = |layer: &[u32]| -> Vec<(u32, u32)> {
        (0..layer.len() as u32)
            .zip(layer.iter().copied())
            .filter(|&(_, id)| id != NONE)
            .collect()
    };

    for z in z0..z1 {
        zed.fill(NONE);
        for y in 0..ny - 1 {
            let row = (y + ny * z) * nx;
            for x in 0..nx - 1 {
                let base = row + x;
                let mut case = 0usize;
                let mut vals = [0f32; 8];
                for c in 0..8 {
                    let v = val(base + corner_index[c]);
                    vals[c] = v;
                    case |= ((v > level) as usize) << c;
                }
                if case == 0 || case == 255 {
                    continue;
                }
                let mut ids = [NONE; 12];
                for tri in &table[case] {
                    for &e in tri {
                        let e = e as usize;
                        if ids[e] != NONE {
                            continue;
                        }
                        let (c, axis) = edges[e];
                        let [dx, dy, dz] = corner_offset(c);
                        let (gx, gy) = (x + dx, y + dy);
                        let slot = match axis {
                            0 | 1 => {
                                let layer = if dz == 0 { &mut xy_lo } else { &mut xy_hi };
                                &mut layer[axis * plane + gx + nx * gy]
                            }
                            _ => &mut zed[gx + nx * gy],
                        };
                        if *slot == NONE {
                            let (va, vb) = (vals[c], vals[c | 1 << axis]);
                            let t = ((level - va) / (vb - va)).clamp(0.0, 1.0);
                            let mut p = [gx as f32, gy as f32, (z + dz) as f32];
                            p[axis] += t;
                            *slot = out.vertices.len() as u32;
                            out.vertices.push(to_lps(p));
                        }
                        ids[e] = *slot;
                    }
                }
                for tri in &table[case] {
                    let [a, b, c] = tri.map(|e| ids[e as usize]);
                    out.triangles.push(if flip { [a, c, b] } else { [a, b, c] });
                }
            }
        }
        if z == z0 {
            out.first = listed(&xy_lo);
        }
        if z + 1 == z1 {
            out.last = listed(&xy_hi);
        }
        std::mem::swap(&mut xy_lo, &mut xy_hi);
        xy_hi.fill(NONE);
    }
    out
}

/// The closed surface of a binary mask (level 0.5), in LPS mm. The mask is
/// padded by one background voxel on every side so objects touching the
/// border are capped.
pub fn mask_surface(mask: &Mask) -> Mesh {
    marching_cubes(&mask.pad([1, 1, 1], 0), 0.5)
}

/// A field sampled from a function of LPS position (for tests and phantoms).
pub fn sample_field(grid: &Grid, f: impl Fn([f64; 3]) -> f32 + Sync) -> Volume<f32> {
    use rayon::prelude::*;
    let data = (0..grid.len())
        .into_par_iter()
        .map(|i| {
            let c = grid.coords(i);
            f(grid.index_to_lps([c[0] as f64, c[1] as f64, c[2] as f64]))
        })
        .collect();
    Volume {
        grid: grid.clone(),
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_is_closed_and_oriented() {
        // One cube per case, padded: the surface of each configuration alone.
        for case in 0..256usize {
            let g = Grid::new([2, 2, 2], [1.0; 3], [0.0; 3]);
            let data = (0..8).map(|c| ((case >> c) & 1) as u8).collect();
            let m = Mask::new(g, data).unwrap();
            let mesh = mask_surface(&m);
            let s = mesh.edge_stats();
            assert_eq!(
                (s.boundary, s.non_manifold, s.misoriented),
                (0, 0, 0),
                "case {case}"
            );
            let n = (case as u32).count_ones() as f64;
            if n > 0.0 {
                assert!(
                    mesh.volume_mm3() > 0.0,
                    "case {case} volume {}",
                    mesh.volume_mm3()
                );
            }
            let _ = n;
        }
    }

    #[test]
    fn sphere_volume_and_area_within_one_percent() {
        let r = 20.0;
        let g = Grid::new([40, 36, 24], [1.3, 1.45, 2.1], [-26.0, -25.4, -24.1]);
        let f = sample_field(&g, |p| {
            (r - (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt()) as f32
        });
        let mesh = marching_cubes(&f, 0.0);
        assert!(mesh.is_watertight());
        let v = mesh.volume_mm3();
        let a = mesh.area_mm2();
        let v0 = 4.0 / 3.0 * std::f64::consts::PI * r * r * r;
        let a0 = 4.0 * std::f64::consts::PI * r * r;
        assert!((v / v0 - 1.0).abs() < 0.01, "volume {v} vs {v0}");
        assert!((a / a0 - 1.0).abs() < 0.01, "area {a} vs {a0}");
    }

    #[test]
    fn vertices_land_at_known_lps_positions() {
        // One voxel set in an oblique, mirrored grid: the surface is the box of
        // half-voxel extent around its centre, mapped through the grid.
        let c = (25f64).to_radians().cos();
        let s = (25f64).to_radians().sin();
        let g = Grid {
            dims: [5, 5, 5],
            spacing: [0.5, 0.8, 2.0],
            origin: [100.0, -50.0, 20.0],
            direction: [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, -1.0]],
        };
        let mut m = Mask::filled(g.clone(), 0);
        m.set(2, 3, 1, 1);
        let mesh = mask_surface(&m);
        assert!(mesh.is_watertight());
        // Volume: the octahedron of the face-midpoints ... with level 0.5 on a
        // single voxel the surface is the octahedron through the 6 edge
        // midpoints, volume = (4/3)·(a/2)(b/2)(c/2) of the voxel box.
        let expect = 4.0 / 3.0 * 0.25 * 0.4 * 1.0;
        assert!(
            (mesh.volume_mm3() - expect).abs() < 1e-4,
            "{}",
            mesh.volume_mm3()
        );
        // Vertices: the voxel centre ± half a voxel along each axis.
        let centre = g.index_to_lps([2.0, 3.0, 1.0]);
        for v in &mesh.vertices {
            let i = g.lps_to_index(v.map(|x| x as f64)).unwrap();
            let d: Vec<f64> = (0..3).map(|a| (i[a] - [2.0, 3.0, 1.0][a]).abs()).collect();
            assert!((d.iter().sum::<f64>() - 0.5).abs() < 1e-4, "{v:?} {d:?}");
        }
        let (lo, hi) = mesh.bounds().unwrap();
        for a in 0..3 {
            assert!(lo[a] < centre[a] && centre[a] < hi[a]);
        }
    }

    #[test]
    fn random_masks_give_closed_surfaces_with_the_right_volume_sign() {
        let mut s = 1u64;
        for density in [10u64, 30, 50, 70, 90] {
            let g = Grid::new([9, 8, 7], [0.7, 0.5, 1.5], [0.0; 3]);
            let data = (0..g.len())
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((s >> 33) % 100 < density) as u8
                })
                .collect();
            let m = Mask::new(g, data).unwrap();
            let mesh = mask_surface(&m);
            let st = mesh.edge_stats();
            assert_eq!((st.boundary, st.non_manifold, st.misoriented), (0, 0, 0));
            assert!(mesh.volume_mm3() > 0.0);
        }
    }

    #[test]
    fn slabs_give_the_same_bytes_as_one_pass() {
        // Random fields (open surfaces at the border too) on a mirrored,
        // anisotropic grid, cut into slabs of every size.
        let mut s = 7u64;
        let mut grid = Grid::new([11, 9, 13], [0.7, 0.5, 1.5], [3.0, -2.0, 1.0]);
        grid.direction[0] = [-1.0, 0.0, 0.0];
        for density in [5u64, 40, 60, 95] {
            let data: Vec<f32> = (0..grid.len())
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((s >> 33) % 100) as f32 - (100 - density) as f32
                })
                .collect();
            let field = Volume {
                grid: grid.clone(),
                data,
            };
            let one = marching_cubes_in_slabs(&field, 0.0, 100);
            assert!(!one.triangles.is_empty());
            for per_slab in 1..=12 {
                let m = marching_cubes_in_slabs(&field, 0.0, per_slab);
                assert_eq!(m.vertices, one.vertices, "{density} %, {per_slab} per slab");
                assert_eq!(
                    m.triangles, one.triangles,
                    "{density} %, {per_slab} per slab"
                );
            }
            let m = marching_cubes(&field, 0.0);
            assert_eq!((m.vertices, m.triangles), (one.vertices, one.triangles));
        }
    }
}
