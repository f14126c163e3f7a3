//! The mesh is a closed, outward 2-manifold at every step — marching cubes,
//! smoothing, decimation — on the masks that break naive implementations:
//! single voxels, voxels touching only at an edge or a corner, checkerboards,
//! diagonal voxel chains, one-voxel plates and rods, blobs cut by the volume
//! border, cavities and tunnels; and on many random masks (seeds in a loop).

use spinemesh::mesh::{self, check, decimate, taubin, MeshCheck, SmoothParams};
use spinemesh::surface::{mask_surface, Mesh};
use spinemesh::{Grid, Mask};

/// A small deterministic generator (SplitMix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn grid(dims: [usize; 3]) -> Grid {
    Grid::new(dims, [0.7, 0.6, 1.3], [-10.0, 20.0, 5.0])
}

fn mask_from(dims: [usize; 3], f: impl Fn(usize, usize, usize) -> bool) -> Mask {
    let mut m = Mask::filled(grid(dims), 0);
    for z in 0..dims[2] {
        for y in 0..dims[1] {
            for x in 0..dims[0] {
                if f(x, y, z) {
                    m.set(x, y, z, 1);
                }
            }
        }
    }
    m
}

#[track_caller]
fn assert_solid(mesh: &Mesh, what: &str) -> MeshCheck {
    let c = check(mesh);
    assert!(
        c.is_valid_solid(),
        "{what}: {} ({} triangles)",
        c.summary(),
        c.triangles
    );
    assert_eq!(c.edges_not_shared_by_two, 0, "{what}");
    assert_eq!(c.non_manifold_vertices, 0, "{what}");
    assert_eq!(c.misoriented_edges, 0, "{what}");
    assert_eq!(c.degenerate_triangles, 0, "{what}");
    assert_eq!(c.duplicate_triangles, 0, "{what}");
    // Every closed orientable piece has an even Euler characteristic.
    assert_eq!(c.euler_characteristic % 2, 0, "{what}");
    // The check reads closure off the vertex fans; sorting the edges and
    // testing each vertex's triangles must agree.
    let s = mesh.edge_stats();
    assert_eq!(
        (s.edges, s.boundary, s.non_manifold, s.misoriented),
        (c.edges, 0, 0, 0),
        "{what}"
    );
    assert!(
        mesh::topology::non_manifold_vertices(mesh).is_empty(),
        "{what}"
    );
    c
}

#[test]
fn check_counts_defects_the_way_an_edge_sort_does() {
    // A closed surface made defective in each way the check counts: the
    // fans no longer close, and the edge-sorting path must give the counts.
    let mut box_mask = Mask::filled(grid([5, 5, 5]), 0);
    for (x, y, z) in [(1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2), (3, 3, 3)] {
        box_mask.set(x, y, z, 1);
    }
    let closed = mask_surface(&box_mask);
    let base = check(&closed);
    assert!(base.is_valid_solid(), "{}", base.summary());
    let mut open = closed.clone();
    open.triangles.pop();
    let mut doubled = closed.clone();
    doubled.triangles.push(closed.triangles[0]);
    let mut flipped = closed.clone();
    flipped.triangles[0].swap(1, 2);
    for (name, m) in [("open", open), ("doubled", doubled), ("flipped", flipped)] {
        let c = check(&m);
        let s = m.edge_stats();
        assert_eq!(
            (
                c.edges,
                c.boundary_edges,
                c.non_manifold_edges,
                c.misoriented_edges
            ),
            (s.edges, s.boundary, s.non_manifold, s.misoriented),
            "{name}"
        );
        assert!(!c.is_valid_solid(), "{name}: {}", c.summary());
    }
    let c = check(&{
        let mut m = closed.clone();
        m.triangles.push(closed.triangles[0]);
        m
    });
    assert_eq!((c.duplicate_triangles, c.non_manifold_edges), (1, 3));
    let c = check(&{
        let mut m = closed;
        m.triangles.pop();
        m
    });
    assert_eq!(c.boundary_edges, 3);
}

/// Raw surface, smoothed surface and a decimated one: all solid; smoothing
/// keeps the volume within 1 %.
#[track_caller]
fn assert_all_steps(mask: &Mask, what: &str) -> MeshCheck {
    let raw = mask_surface(mask);
    let c = assert_solid(&raw, &format!("{what}, raw"));
    let mut s = raw.clone();
    let r = taubin(&mut s, &SmoothParams::default()).unwrap();
    assert_solid(&s, &format!("{what}, smoothed"));
    assert!(
        r.volume_change_percent.abs() <= 1.0,
        "{what}: smoothing changed the volume by {} %",
        r.volume_change_percent
    );
    for target in [raw.triangles.len() / 2, raw.triangles.len() / 5, 4] {
        let (d, r) = decimate(&s, target.max(4)).unwrap();
        assert_eq!(r.ring_rebuilds, 0, "{what} → {target}: {r:?}");
        let cd = assert_solid(&d, &format!("{what}, decimated to {target}"));
        // Collapses keep the topology: same pieces, same tunnels.
        assert_eq!(cd.components, c.components, "{what} → {target}");
        assert_eq!(
            cd.euler_characteristic, c.euler_characteristic,
            "{what} → {target}"
        );
    }
    c
}

#[test]
fn single_voxel_is_an_octahedron() {
    let m = mask_from([3, 3, 3], |x, y, z| (x, y, z) == (1, 1, 1));
    let c = assert_all_steps(&m, "single voxel");
    assert_eq!((c.triangles, c.vertices, c.components), (8, 6, 1));
    assert_eq!(c.euler_characteristic, 2);
}

#[test]
fn voxels_touching_at_an_edge_or_a_corner_stay_apart() {
    // Sharing only an edge.
    let m = mask_from([4, 4, 3], |x, y, z| {
        z == 1 && ((x, y) == (1, 1) || (x, y) == (2, 2))
    });
    let c = assert_all_steps(&m, "edge contact");
    assert_eq!(c.components, 2);
    // Sharing only a corner.
    let m = mask_from([4, 4, 4], |x, y, z| {
        (x, y, z) == (1, 1, 1) || (x, y, z) == (2, 2, 2)
    });
    let c = assert_all_steps(&m, "corner contact");
    assert_eq!(c.components, 2);
    // Four voxels around one edge, diagonal pairs inside and outside.
    let m = mask_from([4, 4, 4], |x, y, z| {
        (1..=2).contains(&z) && ((x, y) == (1, 1) || (x, y) == (2, 2))
    });
    assert_all_steps(&m, "diagonal columns");
}

#[test]
fn checkerboards() {
    for n in [2, 3, 4, 7] {
        let m = mask_from([n, n, n], |x, y, z| (x + y + z) % 2 == 0);
        let c = assert_all_steps(&m, &format!("checkerboard {n}³"));
        // Each set voxel touches the others only at edges: one piece each.
        assert_eq!(c.components, m.count(), "checkerboard {n}³");
    }
    // The other colour: again voxels that meet only at edges.
    let m = mask_from([5, 5, 5], |x, y, z| (x + y + z) % 2 == 1);
    let c = assert_all_steps(&m, "inverse checkerboard");
    assert_eq!(c.components, m.count());
}

#[test]
fn diagonal_voxel_chains() {
    let m = mask_from([8, 8, 8], |x, y, z| x == y && y == z);
    let c = assert_all_steps(&m, "space diagonal");
    assert_eq!(c.components, 8);
    let m = mask_from([9, 9, 3], |x, y, z| z == 1 && x == y);
    let c = assert_all_steps(&m, "plane diagonal");
    assert_eq!(c.components, 9);
    // A staircase: each step shares an edge with the next.
    let m = mask_from([9, 3, 9], |x, y, z| y == 1 && (z == x || z == x + 1));
    assert_all_steps(&m, "staircase");
}

#[test]
fn thin_plates_rods_and_rings_are_not_pinched() {
    let m = mask_from([12, 12, 5], |x, y, z| {
        z == 2 && (1..11).contains(&x) && (1..11).contains(&y)
    });
    let c = assert_all_steps(&m, "one-voxel plate");
    assert_eq!((c.components, c.euler_characteristic), (1, 2));
    let m = mask_from([3, 3, 20], |x, y, z| {
        x == 1 && y == 1 && (1..19).contains(&z)
    });
    assert_all_steps(&m, "one-voxel rod");
    let m = mask_from([10, 10, 3], |x, y, z| {
        z == 1
            && (1..9).contains(&x)
            && (1..9).contains(&y)
            && !((2..7).contains(&x) && (2..7).contains(&y))
    });
    let c = assert_all_steps(&m, "one-voxel ring");
    assert_eq!(c.euler_characteristic, 0, "a ring is a torus");
}

#[test]
fn blobs_at_the_volume_border_are_capped() {
    // The whole volume set: a box capped on all six sides.
    let m = mask_from([6, 5, 4], |_, _, _| true);
    let c = assert_all_steps(&m, "full volume");
    assert_eq!((c.components, c.euler_characteristic), (1, 2));
    // A ball cut by three faces of the volume.
    let m = mask_from([12, 12, 12], |x, y, z| {
        let d2 = |v: usize| (v as f64 - 2.0).powi(2);
        d2(x) + d2(y) + d2(z) <= 36.0
    });
    assert_all_steps(&m, "ball in a corner");
    // A slab touching two opposite faces.
    let m = mask_from([8, 8, 6], |x, _, _| (2..5).contains(&x));
    assert_all_steps(&m, "slab across the volume");
}

#[test]
fn cavities_and_tunnels_have_the_right_topology() {
    // Hollow ball: outer and inner surface, the inner one facing the cavity.
    let m = mask_from([16, 16, 16], |x, y, z| {
        let r2 = [x, y, z]
            .iter()
            .map(|&v| (v as f64 - 7.5).powi(2))
            .sum::<f64>();
        (9.0..=42.0).contains(&r2)
    });
    let c = assert_all_steps(&m, "hollow ball");
    assert_eq!((c.components, c.euler_characteristic), (2, 4));
    // Torus.
    let m = mask_from([20, 20, 8], |x, y, z| {
        let (dx, dy, dz) = (x as f64 - 9.5, y as f64 - 9.5, z as f64 - 3.5);
        let ring = (dx * dx + dy * dy).sqrt() - 6.0;
        ring * ring + dz * dz <= 6.0
    });
    let c = assert_all_steps(&m, "torus");
    assert_eq!((c.components, c.euler_characteristic), (1, 0));
}

#[test]
fn random_masks_stay_closed_manifolds_through_every_step() {
    let mut rng = Rng(0x5EED);
    for case in 0..400 {
        let dims = [
            2 + rng.below(9) as usize,
            2 + rng.below(9) as usize,
            2 + rng.below(7) as usize,
        ];
        let density = 5 + rng.below(90);
        let mut m = Mask::filled(grid(dims), 0);
        for v in m.data.iter_mut() {
            *v = (rng.below(100) < density) as u8;
        }
        if m.count() == 0 {
            continue;
        }
        assert_all_steps(&m, &format!("random mask {case} {dims:?} {density} %"));
    }
}

#[test]
fn random_blobs_keep_their_volume_when_smoothed() {
    // Smooth random blobs (a few overlapping balls): volume within 1 % of
    // the raw surface after smoothing, and the raw surface within 2 % of the
    // mask's voxel volume.
    let mut rng = Rng(7);
    for case in 0..12 {
        let balls: Vec<([f64; 3], f64)> = (0..1 + rng.below(4))
            .map(|_| {
                (
                    [
                        6.0 + rng.below(14) as f64,
                        6.0 + rng.below(14) as f64,
                        4.0 + rng.below(6) as f64,
                    ],
                    3.0 + rng.below(4) as f64,
                )
            })
            .collect();
        let m = mask_from([26, 26, 14], |x, y, z| {
            balls.iter().any(|(c, r)| {
                let (dx, dy, dz) = (x as f64 - c[0], y as f64 - c[1], (z as f64 - c[2]) * 2.0);
                dx * dx + dy * dy + dz * dz <= r * r
            })
        });
        let raw = mask_surface(&m);
        let v_mask = m.volume_mm3();
        let v_raw = raw.volume_mm3();
        eprintln!("case {case}: raw/mask {:.4} {balls:?}", v_raw / v_mask);
        let mut s = raw.clone();
        let r = taubin(&mut s, &SmoothParams::default()).unwrap();
        assert!(r.volume_change_percent.abs() < 1.0, "case {case}: {r:?}");
        // Without the volume correction Taubin alone stays within a few %.
        let mut s2 = raw.clone();
        let r2 = taubin(
            &mut s2,
            &SmoothParams {
                preserve_volume: false,
                ..SmoothParams::default()
            },
        )
        .unwrap();
        assert!(r2.volume_change_percent.abs() < 3.0, "case {case}: {r2:?}");
    }
}

#[test]
fn decimation_reaches_the_target_and_stays_close() {
    // A smooth ellipsoid: decimate to a tenth, count within 5 %, Hausdorff
    // to the original small against the voxel size.
    let m = mask_from([40, 36, 22], |x, y, z| {
        let (dx, dy, dz) = (
            (x as f64 - 19.5) / 17.0,
            (y as f64 - 17.5) / 15.0,
            (z as f64 - 10.5) / 9.0,
        );
        dx * dx + dy * dy + dz * dz <= 1.0
    });
    let mut s = mask_surface(&m);
    taubin(&mut s, &SmoothParams::default()).unwrap();
    let target = s.triangles.len() / 10;
    let (d, r) = decimate(&s, target).unwrap();
    assert_solid(&d, "ellipsoid decimated");
    let n = d.triangles.len() as f64;
    assert!(
        (n / target as f64 - 1.0).abs() <= 0.05,
        "{n} triangles for a target of {target}: {r:?}"
    );
    let h = mesh::hausdorff(&d, &s, &mesh::HausdorffOptions::default());
    assert!(h.hausdorff_mm < 0.3, "{h:?}");
    assert!((d.volume_mm3() / s.volume_mm3() - 1.0).abs() < 0.01);
}

#[test]
fn decimation_keeps_input_defects_as_they_are() {
    // An open mesh (a ball with one triangle removed): the hole's vertices
    // are frozen, the rest is decimated, and nothing new breaks.
    let m = mask_from([14, 14, 14], |x, y, z| {
        let r2 = [x, y, z]
            .iter()
            .map(|&v| (v as f64 - 6.5).powi(2))
            .sum::<f64>();
        r2 <= 30.0
    });
    let mut s = mask_surface(&m);
    s.triangles.remove(0);
    let before = check(&s);
    assert_eq!(before.boundary_edges, 3);
    let (d, r) = decimate(&s, s.triangles.len() / 3).unwrap();
    let after = check(&d);
    assert_eq!(after.boundary_edges, 3, "{r:?}");
    assert_eq!(after.non_manifold_edges, 0);
    assert_eq!(after.duplicate_triangles, 0);
    assert!(r.frozen_vertices >= 3);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let mut m = Mesh {
        vertices: vec![[0.0; 3], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        triangles: vec![[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]],
    };
    assert!(decimate(&m, 2).is_err());
    let mut bad = m.clone();
    bad.triangles.push([0, 1, 9]);
    assert!(decimate(&bad, 4).is_err(), "index out of range");
    let c = check(&bad);
    assert!(c.degenerate_triangles >= 1 && !c.manifold);
    m.vertices[0] = [f32::NAN, 0.0, 0.0];
    m.triangles.extend(m.triangles.clone());
    assert!(decimate(&m, 4).is_err());
    let p = SmoothParams {
        lambda: 1.5,
        ..SmoothParams::default()
    };
    assert!(taubin(&mut m.clone(), &p).is_err());
    // A single voxel (an octahedron) keeps its shape: any collapse would
    // change its volume by far more than 10 %.
    let m = mask_from([3, 3, 3], |x, y, z| (x, y, z) == (1, 1, 1));
    let (d, r) = decimate(&mask_surface(&m), 4).unwrap();
    assert_eq!(d.triangles.len(), 8);
    assert!(r.refused_volume > 0);
    assert_solid(&d, "octahedron");
}

#[test]
fn large_noisy_masks_decimate_in_parallel_slabs_without_defects() {
    // Big enough (> 100 000 triangles) for the parallel slab passes, with
    // isolated voxels, thin bridges and cavities all over.
    let mut rng = Rng(42);
    let balls: Vec<([f64; 3], f64)> = (0..40)
        .map(|_| {
            (
                [
                    rng.below(96) as f64,
                    rng.below(96) as f64,
                    rng.below(48) as f64,
                ],
                2.0 + rng.below(9) as f64,
            )
        })
        .collect();
    let noise: Vec<u64> = (0..96 * 96 * 48).map(|_| rng.below(1000)).collect();
    let m = mask_from([96, 96, 48], |x, y, z| {
        let i = x + 96 * (y + 96 * z);
        let inside = balls.iter().any(|(c, r)| {
            let (dx, dy, dz) = (x as f64 - c[0], y as f64 - c[1], z as f64 - c[2]);
            dx * dx + dy * dy + dz * dz <= r * r
        });
        // Flip a few voxels everywhere: holes in the balls, dust outside.
        inside ^ (noise[i] < 40)
    });
    let raw = mask_surface(&m);
    assert!(raw.triangles.len() > 120_000, "{}", raw.triangles.len());
    let c = assert_solid(&raw, "noisy blobs, raw");
    let mut s = raw.clone();
    taubin(&mut s, &SmoothParams::default()).unwrap();
    assert_solid(&s, "noisy blobs, smoothed");
    for div in [3, 10] {
        let (d, r) = decimate(&s, raw.triangles.len() / div).unwrap();
        assert!(r.slabs > 1, "{r:?}");
        assert_eq!(r.ring_rebuilds, 0, "{r:?}");
        let cd = assert_solid(&d, &format!("noisy blobs / {div}"));
        assert_eq!(cd.components, c.components);
        assert_eq!(cd.euler_characteristic, c.euler_characteristic);
    }
}

#[test]
fn smoothing_and_decimation_give_the_same_bytes_on_any_thread_count() {
    // Many pieces, some across the slab cuts, > 100 000 triangles so the
    // decimation runs in slabs.
    let mut rng = Rng(7);
    let noise: Vec<u64> = (0..96 * 96 * 48).map(|_| rng.below(1000)).collect();
    let m = mask_from([96, 96, 48], |x, y, z| {
        let (dx, dy, dz) = (x as f64 - 48.0, y as f64 - 48.0, z as f64 - 24.0);
        let inside = dx * dx + dy * dy + 4.0 * dz * dz <= 42.0 * 42.0;
        inside ^ (noise[x + 96 * (y + 96 * z)] < 40)
    });
    let raw = mask_surface(&m);
    assert!(raw.triangles.len() > 100_000, "{}", raw.triangles.len());
    let params = mesh::MeshParams {
        target_triangles: Some(raw.triangles.len() / 5),
        hausdorff: false,
        ..mesh::MeshParams::fe()
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let p = pool
            .install(|| mesh::process(raw.clone(), &params, &|_| {}))
            .unwrap();
        let bits: Vec<u32> = p
            .mesh
            .vertices
            .iter()
            .flatten()
            .map(|x| x.to_bits())
            .collect();
        (bits, p.mesh.triangles, p.report.smoothing.unwrap())
    };
    let one = run(1);
    for threads in [2, 3] {
        let other = run(threads);
        assert!(one.0 == other.0, "vertices differ with {threads} threads");
        assert!(one.1 == other.1, "triangles differ with {threads} threads");
        assert_eq!(
            one.2, other.2,
            "smoothing report differs with {threads} threads"
        );
    }
}
