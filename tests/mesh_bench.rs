//! Timings of the mesh steps (ignored by default; run with
//! `cargo test --release --test mesh_bench -- --ignored --nocapture`).
//!
//! Inputs, generated once into the target folder:
//! - the paper-grid phantom's spine (512 × 512 × 320 at 0.5 × 0.5 × 1 mm),
//!   ~0.6 M raw triangles;
//! - all bone of the same phantom on a 0.5 mm isotropic grid (512 × 512 × 640),
//!   ~2.2 M raw triangles: the "~2.5 M-triangle raw mesh" of the benchmark.
//!
//! Prints the median of `SPINEMESH_BENCH_RUNS` runs (default 5) of smoothing
//! and decimation to 250 000 triangles, wall and CPU seconds, and the
//! Hausdorff distances.

use spinemesh::mesh::{self, MeshParams};
use spinemesh::phantom::{generate, PhantomParams};
use spinemesh::surface::{mask_surface, Mesh};
use std::path::PathBuf;
use std::time::Instant;

fn cache(name: &str, make: impl FnOnce() -> Mesh) -> Mesh {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("mesh-bench-{name}.ply"));
    if let Ok((m, _)) = spinemesh::io::mesh::read_mesh(&p) {
        return m;
    }
    let m = make();
    spinemesh::io::mesh::save_mesh(&m, &p, mesh::MeshFormat::Ply, mesh::Frame::Lps).unwrap();
    m
}

fn paper_grid_spine() -> Mesh {
    cache("spine-paper-grid", || {
        mask_surface(&generate(&PhantomParams::paper_grid()).spine_truth())
    })
}

fn iso_bone() -> Mesh {
    cache("bone-iso-0.5", || {
        let pp = PhantomParams {
            dims: [512, 512, 640],
            spacing_mm: [0.5, 0.5, 0.5],
            ..PhantomParams::paper_grid()
        };
        mask_surface(&generate(&pp).bone())
    })
}

/// CPU seconds (user + system) of this process so far, from /proc/self/stat.
fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn bench(name: &str, raw: &Mesh) {
    let runs: usize = std::env::var("SPINEMESH_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // As the pipeline runs it, without the Hausdorff measurement.
    let params = MeshParams {
        hausdorff: false,
        ..MeshParams::fe()
    };
    let (mut ws, mut wd, mut cpus) = (vec![], vec![], vec![]);
    let mut last = None;
    for _ in 0..runs {
        let c = cpu();
        let p = mesh::process(raw.clone(), &params, &|_| {}).unwrap();
        cpus.push(cpu() - c);
        let stage = |n: &str| p.stages.iter().find(|s| s.0 == n).map_or(0.0, |s| s.1);
        ws.push(stage("mesh smooth"));
        wd.push(stage("mesh decimate"));
        last = Some(p);
    }
    let p = last.unwrap();
    let (sw, dw) = (median(ws), median(wd));
    let (sr, dr) = (p.report.smoothing.unwrap(), p.report.decimation.unwrap());
    println!(
        "{name}: {} → {} triangles ({} threads)\n  smooth   {sw:.3} s\n  decimate {dw:.3} s\n  \
         total    {:.3} s (medians of {runs}; CPU of smooth + decimate + check {:.2} s)",
        raw.triangles.len(),
        p.mesh.triangles.len(),
        rayon::current_num_threads(),
        sw + dw,
        median(cpus)
    );
    println!(
        "  smoothing volume change {:.2e} %, decimation passes {}, refusals link/flip/volume {}/{}/{}",
        sr.volume_change_percent, dr.passes, dr.refused_link, dr.refused_flip, dr.refused_volume
    );
    println!("  result: {}", p.report.check.summary());
    // Hausdorff to the smoothed (undecimated) and to the raw surface.
    let mut smoothed = raw.clone();
    mesh::taubin(&mut smoothed, &params.smooth.unwrap()).unwrap();
    let opts = mesh::HausdorffOptions::default();
    let t = Instant::now();
    let fin = mesh::hausdorff::Surface::new(&p.mesh);
    let h =
        mesh::hausdorff::hausdorff_between(&fin, &mesh::hausdorff::Surface::new(&smoothed), &opts);
    let hr = mesh::hausdorff::hausdorff_between(&fin, &mesh::hausdorff::Surface::new(raw), &opts);
    println!(
        "  Hausdorff: decimation {:.3} mm, to raw {:.3} mm ({:.2} s for both)",
        h.hausdorff_mm,
        hr.hausdorff_mm,
        t.elapsed().as_secs_f64()
    );
}

#[test]
#[ignore]
fn smooth_and_decimate_2m_bone_mesh() {
    bench("bone, 0.5 mm isotropic", &iso_bone());
}

#[test]
#[ignore]
fn smooth_and_decimate_paper_grid_spine() {
    bench("spine, paper grid", &paper_grid_spine());
}
