//! The FE mesh of the lumbar phantom on the paper's grid (512 × 512 × 320
//! voxels of 0.5 × 0.5 × 1 mm): closed 2-manifold, 250 000 triangles ± 5 %,
//! volume within 2 % of the mask's, inside the mask's LPS bounds ± 1.5 mm,
//! decimation within 0.3 mm (Hausdorff) of the undecimated surface,
//! smoothing keeping the volume within 1 %.

use spinemesh::mesh::{self, MeshParams};
use spinemesh::phantom::{generate, PhantomParams};
use spinemesh::surface::{mask_surface, Mesh};
use spinemesh::Mask;

/// LPS box (min, max) of the voxel boxes of the set voxels (axis-aligned grid).
fn mask_lps_bounds(m: &Mask) -> ([f64; 3], [f64; 3]) {
    let (lo, hi) = m.bounding_box().expect("mask is not empty");
    let a = m.grid.index_to_lps(lo.map(|v| v as f64 - 0.5));
    let b = m.grid.index_to_lps(hi.map(|v| v as f64 - 0.5));
    (
        [0, 1, 2].map(|k| a[k].min(b[k])),
        [0, 1, 2].map(|k| a[k].max(b[k])),
    )
}

/// Issue 4's targets for an FE mesh of `mask`: closed 2-manifold, 250 000
/// triangles ± 5 %, volume within 2 % of the mask's, decimation Hausdorff
/// ≤ 0.3 mm, inside the mask's LPS bounds ± 1.5 mm.
fn assert_fe_targets(out: &Mesh, c: &mesh::MeshCheck, h: &mesh::Hausdorff, mask: &Mask) {
    assert!(c.is_valid_solid(), "{}", c.summary());
    assert_eq!(c.edges_not_shared_by_two, 0);
    let target = mesh::FE_TARGET_TRIANGLES as f64;
    assert!(
        (c.triangles as f64 / target - 1.0).abs() <= 0.05,
        "{} triangles",
        c.triangles
    );
    let mask_mm3 = mask.volume_mm3();
    assert!(
        (c.volume_mm3 / mask_mm3 - 1.0).abs() <= 0.02,
        "mesh {} mm³ vs mask {mask_mm3} mm³",
        c.volume_mm3
    );
    assert!(h.hausdorff_mm <= 0.3, "{h:?}");
    let (lo, hi) = mask_lps_bounds(mask);
    let (mlo, mhi) = out.bounds().unwrap();
    for a in 0..3 {
        assert!(
            mlo[a] >= lo[a] - 1.5 && mhi[a] <= hi[a] + 1.5,
            "axis {a}: mesh [{}, {}] vs mask [{}, {}]",
            mlo[a],
            mhi[a],
            lo[a],
            hi[a]
        );
    }
}

#[test]
fn fe_mesh_of_the_paper_grid_phantom_meets_the_targets() {
    let ph = generate(&PhantomParams::paper_grid());
    let truth = ph.spine_truth();
    drop(ph);
    let mask_mm3 = truth.volume_mm3();
    let raw = mask_surface(&truth);
    let raw_triangles = raw.triangles.len();
    assert!(raw_triangles > 300_000, "{raw_triangles}");
    let p = mesh::process(raw, &MeshParams::fe(), &|_| {}).unwrap();
    let c = &p.report.check;
    eprintln!(
        "raw {raw_triangles} → {} triangles; {}; volume {:.0} mm³ vs mask {:.0} mm³; {:?}; \
         Hausdorff to raw {:?}, decimation {:?}; stages {:?}",
        c.triangles,
        c.summary(),
        c.volume_mm3,
        mask_mm3,
        p.report.smoothing,
        p.report.hausdorff_to_raw,
        p.report.hausdorff_decimation,
        p.stages
    );
    let s = p.report.smoothing.expect("smoothing ran");
    assert!(s.volume_change_percent.abs() <= 1.0, "{s:?}");
    let h = p.report.hausdorff_decimation.expect("measured");
    assert_fe_targets(&p.mesh, c, &h, &truth);
    // Components and tunnels as the raw surface had them.
    let raw_check = mesh::check(&mask_surface(&truth));
    assert_eq!(c.components, raw_check.components);
    assert_eq!(c.euler_characteristic, raw_check.euler_characteristic);
}

/// The same targets through the whole default (spine) pipeline on the paper
/// grid's CT: segmentation, surface, smoothing, decimation.
#[test]
fn default_preset_mesh_of_the_paper_grid_phantom_meets_the_targets() {
    use spinemesh::pipeline::{self, Params};
    let ph = generate(&PhantomParams::paper_grid());
    let out = pipeline::run(&ph.ct, &Params::spine(), &|_| {}).unwrap();
    drop(ph);
    let c = &out.mesh_report.check;
    let h = out.mesh_report.hausdorff_decimation.expect("measured");
    eprintln!(
        "default preset: {} triangles; {}; volume {:.0} mm³ vs mask {:.0} mm³; decimation {h:?}",
        c.triangles,
        c.summary(),
        c.volume_mm3,
        out.mask.volume_mm3()
    );
    assert_fe_targets(&out.mesh, c, &h, &out.mask);
}
