//! Side by side: `spinemesh reconstruct --preset paper` against the paper's
//! pipeline in the paper's Python stack (bench/compare/paper_pipeline.py:
//! pydicom, NumPy, SciPy, OpenCV, scikit-image, numpy-stl), on the same DICOM
//! files, runs alternating (spinemesh, Python, spinemesh, …) so both see the
//! same machine load. Prints per case the median wall time of each, the ratio
//! of each pair, the median of each stage, and the peak memory (maximum
//! resident set size from `/usr/bin/time -v`) of each.
//!
//! ```sh
//! cargo bench --bench compare
//! SPINEMESH_COMPARE_RUNS=5 SPINEMESH_COMPARE_CASES=paper,j2k,double cargo bench --bench compare
//! ```
//!
//! Cases (`SPINEMESH_COMPARE_CASES`, comma-separated; default `paper,j2k`):
//! - `paper`: the synthetic lumbar phantom on the paper's grid, 320 slices of
//!   512 × 512 at 0.5 × 0.5 × 1.0 mm, uncompressed (explicit VR little endian);
//! - `j2k`: the same slices as JPEG 2000 lossless (encoded once with
//!   pydicom + pylibjpeg-openjpeg, bench/compare/encode_j2k.py);
//! - `double`: 640 slices of 512 × 512 on the same spacing (twice the voxels;
//!   spinemesh only, for the scaling figure);
//! - `big`: 640 slices of 1024 × 1024 at 0.25 × 0.25 × 0.5 mm (671 M voxels;
//!   spinemesh only; several minutes to generate);
//! - `real-j2k`: the 20 real JPEG 2000 slices of
//!   `../shared/data/totalseg-jpeg2000-slab` when present (read stage).
//!
//! Series are generated into the target folder once and reused. Python cases
//! need `python3` with `numpy scipy scikit-image pydicom pylibjpeg
//! pylibjpeg-openjpeg opencv-python-headless numpy-stl`.

mod common;

use common::{median, phantom_series};
use spinemesh::phantom::PhantomParams;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// One timed run: wall seconds, peak RSS in MB, stdout.
struct Run {
    wall: f64,
    peak_mb: f64,
    stdout: Vec<u8>,
}

fn timed(cmd: &[&str], args: &[&Path]) -> Run {
    let have_time = Path::new("/usr/bin/time").exists();
    let mut c = if have_time {
        let mut c = Command::new("/usr/bin/time");
        c.arg("-v").args(cmd);
        c
    } else {
        let mut c = Command::new(cmd[0]);
        c.args(&cmd[1..]);
        c
    };
    c.args(args);
    let t = Instant::now();
    let o = c.output().expect("start the command");
    let wall = t.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{cmd:?} failed:\n{err}");
    let peak_mb = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0);
    Run {
        wall,
        peak_mb,
        stdout: o.stdout,
    }
}

/// The JPEG 2000 lossless copy of `src` (encoded once by Python).
fn j2k_series(root: &Path, src: &Path) -> PathBuf {
    let dir = root.join("paper-grid-j2k").join("dicom");
    let marker = root.join("paper-grid-j2k").join("complete");
    if !marker.exists() {
        let t = Instant::now();
        let _ = std::fs::remove_dir_all(&dir);
        let st = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/compare/encode_j2k.py"))
            .arg(src)
            .arg(&dir)
            .status()
            .expect("run python3");
        assert!(st.success(), "encode_j2k.py failed");
        std::fs::write(&marker, b"").expect("write the marker");
        println!(
            "paper-grid-j2k: encoded in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    dir
}

#[derive(Default)]
struct Side {
    walls: Vec<f64>,
    peaks: Vec<f64>,
    stages: Vec<(String, Vec<f64>)>,
    info: String,
}

impl Side {
    fn push_stage(&mut self, name: &str, secs: f64) {
        match self.stages.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(secs),
            None => self.stages.push((name.to_string(), vec![secs])),
        }
    }
    fn stage(&self, name: &str) -> f64 {
        self.stages
            .iter()
            .find(|(n, _)| n == name)
            .map_or(f64::NAN, |(_, v)| median(v))
    }
}

fn run_case(name: &str, dicom: &Path, runs: usize, python: bool, out_root: &Path) {
    let exe = env!("CARGO_BIN_EXE_spinemesh");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/compare/paper_pipeline.py");
    let script = script.to_str().expect("UTF-8 path");
    let rust_out = out_root.join("out-spinemesh");
    let py_out = out_root.join("out-python");
    let mut rs = Side::default();
    let mut py = Side::default();
    let mut ratios = Vec::new();
    for i in 0..runs {
        let r = timed(
            &[
                exe,
                "reconstruct",
                "-q",
                "--json",
                "--preset",
                "paper",
                "-o",
            ],
            &[&rust_out, dicom],
        );
        let rep: serde_json::Value = serde_json::from_slice(&r.stdout).expect("report JSON");
        for s in rep["stages"].as_array().expect("stages") {
            rs.push_stage(
                s["name"].as_str().unwrap_or("?"),
                s["seconds"].as_f64().unwrap_or(f64::NAN),
            );
        }
        rs.walls.push(r.wall);
        rs.peaks.push(r.peak_mb);
        rs.info = format!(
            "{} mask voxels, {} triangles",
            rep["mask"]["voxels"], rep["mesh"]["triangles"]
        );
        let mut line = format!("{name} run {}/{runs}: spinemesh {:.3} s", i + 1, r.wall);
        if python {
            let p = timed(&["python3", script], &[dicom, &py_out]);
            let rep: serde_json::Value = serde_json::from_slice(&p.stdout).expect("Python JSON");
            if let Some(st) = rep["stages"].as_object() {
                for (k, v) in st {
                    py.push_stage(k, v.as_f64().unwrap_or(f64::NAN));
                }
            }
            py.walls.push(p.wall);
            py.peaks.push(p.peak_mb);
            py.info = format!(
                "{} mask voxels, {} triangles",
                rep["mask_voxels"], rep["triangles"]
            );
            ratios.push(r.wall / p.wall);
            line += &format!(", Python {:.3} s, ratio {:.3}", p.wall, r.wall / p.wall);
        }
        eprintln!("{line}");
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "== {name}: {} ({runs} runs, {} threads; load average now {})",
        dicom.display(),
        rayon::current_num_threads(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut names: Vec<String> = rs.stages.iter().map(|(n, _)| n.clone()).collect();
    for (n, _) in &py.stages {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    println!(
        "{:<18} {:>11} {:>11}",
        "stage (median s)", "spinemesh", "Python"
    );
    for n in &names {
        println!("{:<18} {:>11.3} {:>11.3}", n, rs.stage(n), py.stage(n));
    }
    println!(
        "{:<18} {:>11.3} {:>11.3}",
        "wall",
        median(&rs.walls),
        median(&py.walls)
    );
    println!(
        "{:<18} {:>11.0} {:>11.0}",
        "peak memory MB",
        median(&rs.peaks),
        median(&py.peaks)
    );
    println!("spinemesh: {}", rs.info);
    if python {
        println!("Python:    {}", py.info);
        let pairs: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
        println!(
            "wall ratio spinemesh / Python, pair by pair: {} (median {:.3}; Python / spinemesh {:.1}×)",
            pairs.join(" "),
            median(&ratios),
            1.0 / median(&ratios)
        );
        println!(
            "read ratio spinemesh / Python (median stages): {:.3} ({:.1}× faster)",
            rs.stage("read") / py.stage("read"),
            py.stage("read") / rs.stage("read")
        );
    }
}

fn main() {
    let runs: usize = std::env::var("SPINEMESH_COMPARE_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let cases = std::env::var("SPINEMESH_COMPARE_CASES").unwrap_or_else(|_| "paper,j2k".into());
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let out_root = root.join("compare-out");
    let paper = || phantom_series(&root, "paper-grid", &PhantomParams::paper_grid());
    for case in cases.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        match case {
            "paper" => run_case("paper", &paper(), runs, true, &out_root),
            "j2k" => {
                let src = paper();
                run_case("j2k", &j2k_series(&root, &src), runs, true, &out_root)
            }
            "double" => {
                let p = PhantomParams::paper_grid();
                let p = PhantomParams {
                    dims: [p.dims[0], p.dims[1], 2 * p.dims[2]],
                    ..p
                };
                let dir = phantom_series(&root, "paper-grid-640", &p);
                run_case("paper", &paper(), runs, false, &out_root);
                run_case("double", &dir, runs, false, &out_root);
            }
            "big" => {
                let p = PhantomParams::paper_grid();
                let p = PhantomParams {
                    dims: [1024, 1024, 640],
                    spacing_mm: [0.25, 0.25, 0.5],
                    ..p
                };
                let dir = phantom_series(&root, "big-1024", &p);
                run_case("big", &dir, runs, false, &out_root);
            }
            "real-j2k" => {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../shared/data/totalseg-jpeg2000-slab/dicom");
                if dir.exists() {
                    run_case("real-j2k", &dir, runs, true, &out_root);
                } else {
                    println!("real-j2k: {} not found, skipped", dir.display());
                }
            }
            other => panic!("unknown case {other}; use paper, j2k, double, big, real-j2k"),
        }
    }
}
