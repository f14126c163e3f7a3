//! Benchmark of `spinemesh reconstruct` on the paper's grid: a synthetic
//! lumbar phantom of 320 slices of 512 × 512 at 0.5 × 0.5 × 1.0 mm, written as
//! an uncompressed DICOM series, reconstructed by the release binary several
//! times. Prints the median time of each stage and in total, and the peak
//! memory of the process.
//!
//! `cargo bench --bench pipeline` (runs: `SPINEMESH_BENCH_RUNS`, default 5;
//! preset: `SPINEMESH_BENCH_PRESET`, default `paper`; with
//! `SPINEMESH_BENCH_METAL=1` the phantom has L4–L5 pedicle screws and rods
//! with 300 HU streaks).

mod common;

use common::{median, phantom_series};
use spinemesh::phantom::PhantomParams;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn main() {
    let runs: usize = std::env::var("SPINEMESH_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let preset = std::env::var("SPINEMESH_BENCH_PRESET").unwrap_or_else(|_| "paper".into());
    let metal = std::env::var("SPINEMESH_BENCH_METAL").is_ok_and(|v| v == "1");
    let mut params = PhantomParams::paper_grid();
    if metal {
        params.pedicle_screws = true;
        params.metal_streaks_hu = 300.0;
    }
    let name = if metal {
        "paper-grid-metal"
    } else {
        "paper-grid"
    };
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dicom = phantom_series(&tmp, name, &params);
    let root = tmp.join(name);
    let exe = env!("CARGO_BIN_EXE_spinemesh");
    let out = root.join("out");
    let mut stages: Vec<(String, Vec<f64>)> = Vec::new();
    let mut totals = Vec::new();
    let mut walls = Vec::new();
    let mut peaks = Vec::new();
    let mut triangles = 0;
    for run in 0..runs {
        let t = Instant::now();
        let o = Command::new(exe)
            .args(["reconstruct", "-q", "--json", "--preset", &preset, "-o"])
            .arg(&out)
            .arg(&dicom)
            .output()
            .expect("run spinemesh");
        let wall = t.elapsed().as_secs_f64();
        assert!(
            o.status.success(),
            "spinemesh failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("report JSON");
        for s in r["stages"].as_array().expect("stages") {
            let name = s["name"].as_str().unwrap_or("?").to_string();
            let secs = s["seconds"].as_f64().unwrap_or(f64::NAN);
            match stages.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(secs),
                None => stages.push((name, vec![secs])),
            }
        }
        totals.push(r["seconds_total"].as_f64().unwrap_or(f64::NAN));
        walls.push(wall);
        peaks.push(r["peak_memory_mb"].as_f64().unwrap_or(f64::NAN));
        triangles = r["mesh"]["triangles"].as_u64().unwrap_or(0);
        eprintln!("run {}/{runs}: {wall:.3} s", run + 1);
    }
    println!("spinemesh reconstruct --preset {preset}, 512 × 512 × 320 at 0.5 × 0.5 × 1.0 mm, {runs} runs, {} threads", rayon::current_num_threads());
    println!("{:<18} {:>10}", "stage", "median s");
    for (name, v) in &mut stages {
        println!("{:<18} {:>10.3}", name, median(v));
    }
    println!("{:<18} {:>10.3}", "total", median(&totals));
    println!("{:<18} {:>10.3}", "wall", median(&walls));
    println!(
        "peak memory {:.0} MB (median), triangles {triangles}",
        median(&peaks)
    );
}
