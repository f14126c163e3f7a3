//! Benchmark of the mesh steps: Taubin smoothing and decimation to 250 000
//! triangles, as `spinemesh reconstruct --preset fe` runs them.
//!
//! Inputs, generated once into the target folder:
//! - all bone of the paper-grid phantom on a 0.5 mm isotropic grid
//!   (512 × 512 × 640), ~2.2 M raw marching-cubes triangles: the
//!   "~2.5 M-triangle raw mesh" of issue 4's target (≤ 1 s);
//! - the paper-grid phantom's spine (512 × 512 × 320 at 0.5 × 0.5 × 1 mm),
//!   ~0.6 M raw triangles.
//!
//! `cargo bench --bench mesh` (runs: `SPINEMESH_BENCH_RUNS`, default 5).
//! Prints the medians of smoothing, decimation and both, wall and CPU
//! seconds, then the quality of one more run: triangle counts, Hausdorff
//! distance of the decimated to the undecimated surface and to the raw one,
//! and the volume changes.

mod common;

use common::median;
use spinemesh::mesh::{self, MeshParams};
use spinemesh::phantom::{generate, PhantomParams};
use spinemesh::surface::{mask_surface, Mesh};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// The mesh from the cache in the target folder, made and stored on first use.
fn cache(name: &str, make: impl FnOnce() -> Mesh) -> Mesh {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("mesh-bench-{name}.ply"));
    if let Ok((m, _)) = spinemesh::io::mesh::read_mesh(&p) {
        return m;
    }
    let t = Instant::now();
    let m = make();
    spinemesh::io::mesh::save_mesh(&m, &p, mesh::MeshFormat::Ply, mesh::Frame::Lps)
        .expect("write the cached bench mesh");
    eprintln!(
        "{name}: raw mesh made in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    m
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

fn paper_grid_spine() -> Mesh {
    cache("spine-paper-grid", || {
        mask_surface(&generate(&PhantomParams::paper_grid()).spine_truth())
    })
}

/// CPU seconds (user + system, all threads) of this process so far.
fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

/// Wall and CPU seconds of smoothing and decimation in one `process` run,
/// taken at the stage boundaries `process` announces.
fn timed_run(raw: &Mesh, params: &MeshParams) -> [(f64, f64); 2] {
    let marks: Mutex<Vec<(String, Instant, f64)>> = Mutex::new(Vec::new());
    let mark = |name: &str| {
        marks
            .lock()
            .expect("marks")
            .push((name.to_string(), Instant::now(), cpu()))
    };
    let input = raw.clone();
    mesh::process(input, params, &mark).expect("mesh processing");
    mark("end");
    let m = marks.into_inner().expect("marks");
    let span = |name: &str| {
        let i = m.iter().position(|x| x.0 == name)?;
        let (a, b) = (&m[i], m.get(i + 1)?);
        Some(((b.1 - a.1).as_secs_f64(), b.2 - a.2))
    };
    [
        span("mesh smooth").unwrap_or((0.0, 0.0)),
        span("mesh decimate").unwrap_or((0.0, 0.0)),
    ]
}

fn bench(name: &str, raw: &Mesh, runs: usize) {
    // As the FE preset runs it; the Hausdorff measurement is timed apart.
    let params = MeshParams {
        hausdorff: false,
        ..MeshParams::fe()
    };
    let (mut sw, mut sc, mut dw, mut dc, mut tw, mut tc) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let [s, d] = timed_run(raw, &params);
        sw.push(s.0);
        sc.push(s.1);
        dw.push(d.0);
        dc.push(d.1);
        tw.push(s.0 + d.0);
        tc.push(s.1 + d.1);
    }
    println!(
        "{name}: {} raw triangles, {runs} runs, {} threads",
        raw.triangles.len(),
        rayon::current_num_threads()
    );
    println!("  {:<10} {:>8} {:>8}", "median", "wall s", "CPU s");
    for (n, w, c) in [
        ("smooth", &mut sw, &mut sc),
        ("decimate", &mut dw, &mut dc),
        ("total", &mut tw, &mut tc),
    ] {
        println!("  {n:<10} {:>8.3} {:>8.3}", median(w), median(c));
    }
    // Quality, from one more run with the measurements on.
    let t = Instant::now();
    let p = mesh::process(raw.clone(), &MeshParams::fe(), &|_| {}).expect("mesh processing");
    let secs = t.elapsed().as_secs_f64();
    let raw_volume = mesh::smooth::volume_and_area(raw).0;
    let r = &p.report;
    let c = &r.check;
    println!(
        "  triangles {} → {}; {}",
        r.raw_triangles,
        c.triangles,
        c.summary()
    );
    if let (Some(s), Some(d)) = (&r.smoothing, &r.decimation) {
        println!(
            "  volume change: smoothing {:+.2e} %, final vs raw {:+.3} %; \
             decimation passes {}, slabs {}",
            s.volume_change_percent,
            100.0 * (c.volume_mm3 - raw_volume) / raw_volume,
            d.passes,
            d.slabs
        );
    }
    // FNV-1a of the output: equal across runs and thread counts
    // (RAYON_NUM_THREADS) when the processing is deterministic.
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |x: u32| {
        for b in x.to_le_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    };
    for v in &p.mesh.vertices {
        v.iter().for_each(|c| eat(c.to_bits()));
    }
    for t in &p.mesh.triangles {
        t.iter().for_each(|&i| eat(i));
    }
    println!("  output hash {h:016x}");
    let mm = |h: &Option<mesh::Hausdorff>| h.map_or(f64::NAN, |h| h.hausdorff_mm);
    println!(
        "  Hausdorff: decimated vs undecimated {:.3} mm, final vs raw {:.3} mm \
         (whole run with measurements {secs:.2} s)",
        mm(&r.hausdorff_decimation),
        mm(&r.hausdorff_to_raw)
    );
}

fn main() {
    // As the binary does.
    spinemesh::alloc::retain_freed_memory();
    let runs: usize = std::env::var("SPINEMESH_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5);
    // `cargo bench` passes `--bench`; a name filter picks one mesh.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |n: &str| filter.is_empty() || filter.iter().any(|f| n.contains(f.as_str()));
    if wanted("bone") {
        bench("bone, 0.5 mm isotropic", &iso_bone(), runs);
    }
    if wanted("spine") {
        bench("spine, paper grid", &paper_grid_spine(), runs);
    }
}
