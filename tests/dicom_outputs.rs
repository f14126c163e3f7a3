//! Safe outputs end to end (through the `spinemesh` binary): no patient
//! identifiers anywhere, byte-identical reruns, no half-written files, the
//! input never written to, padding outside the scan field turned into air.

use spinemesh::io::dicom::{write_series, WriteOptions};
use spinemesh::{Grid, Volume};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small CT: a body of soft tissue inside the scan circle, −3024 HU outside
/// it (as Siemens writes), and a 20 mm bone cube (8000 mm³) in the middle.
fn body_with_bone(direction: [[f64; 3]; 3], origin: [f64; 3]) -> Volume<f32> {
    let grid = Grid {
        dims: [48, 48, 30],
        spacing: [1.0, 1.0, 1.0],
        origin,
        direction,
    };
    let data = (0..grid.len())
        .map(|i| {
            let [x, y, z] = grid.coords(i);
            let (dx, dy) = (x as f64 - 23.5, y as f64 - 23.5);
            if dx * dx + dy * dy > 23.0 * 23.0 {
                -3024.0
            } else if (14..34).contains(&x) && (14..34).contains(&y) && (5..25).contains(&z) {
                700.0
            } else {
                30.0
            }
        })
        .collect();
    Volume::new(grid, data).unwrap()
}

const AXIAL: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

fn planted() -> WriteOptions {
    WriteOptions {
        patient_name: "ZYXWVU^QWERTYJANE".into(),
        patient_id: "PID-55501234".into(),
        patient_birth_date: "19230417".into(),
        accession_number: "ACC7788991".into(),
        institution_name: "SAINT EXAMPLE HOSPITAL".into(),
        referring_physician: "DRWHOLOVELACE^ADA".into(),
        ..Default::default()
    }
}

const IDENTIFIERS: [&str; 8] = [
    "ZYXWVU",
    "QWERTYJANE",
    "PID-55501234",
    "55501234",
    "19230417",
    "ACC7788991",
    "SAINT EXAMPLE",
    "DRWHOLOVELACE",
];

fn spinemesh(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_spinemesh"))
        .args(args)
        .output()
        .unwrap()
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()),
        &mut out,
    )
    .unwrap();
    out
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn planted_identifiers_never_reach_any_output_or_log() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    write_series(
        &body_with_bone(AXIAL, [-20.0, -30.0, -400.0]),
        &input,
        &planted(),
    )
    .unwrap();
    // They are in the input files ...
    let first = std::fs::read(input.join("IM00001.dcm")).unwrap();
    for id in IDENTIFIERS {
        assert!(
            first.windows(id.len()).any(|w| w == id.as_bytes()),
            "{id} not planted"
        );
    }
    let out = tmp.path().join("out");
    let mut logs = Vec::new();
    for args in [
        vec![
            "reconstruct",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--json",
        ],
        vec!["info", input.to_str().unwrap()],
        vec!["info", input.to_str().unwrap(), "--json"],
    ] {
        let o = spinemesh(&args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        logs.push((format!("{args:?} stdout"), o.stdout));
        logs.push((format!("{args:?} stderr"), o.stderr));
    }
    // A failing run's messages too (a truncated slice).
    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    for f in files_in(&input) {
        std::fs::copy(&f, broken.join(f.file_name().unwrap())).unwrap();
    }
    let cut = broken.join("IM00010.dcm");
    std::fs::write(&cut, &first[..first.len() / 2]).unwrap();
    let o = spinemesh(&[
        "reconstruct",
        broken.to_str().unwrap(),
        "-o",
        tmp.path().join("o2").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    logs.push(("failing run stderr".into(), o.stderr));
    let outputs = [
        (
            "spine.stl".to_string(),
            std::fs::read(out.join("spine.stl")).unwrap(),
        ),
        (
            "mask.nii (decompressed)".to_string(),
            gunzip(&out.join("mask.nii.gz")),
        ),
        (
            "report.json".to_string(),
            std::fs::read(out.join("report.json")).unwrap(),
        ),
    ];
    for (what, bytes) in outputs.iter().chain(&logs) {
        for id in IDENTIFIERS {
            assert!(
                !bytes.windows(id.len()).any(|w| w == id.as_bytes()),
                "{id} found in {what}"
            );
        }
    }
    // The run worked and said what it did to the outside-field values.
    let report: serde_json::Value = serde_json::from_slice(&outputs[2].1).unwrap();
    let notes = report["input"]["notes"].to_string();
    assert!(notes.contains("outside the scan field"), "{notes}");
    assert!(report["mesh"]["triangles"].as_u64().unwrap() > 0);
}

/// The report without what legitimately differs between runs (timings, memory).
fn report_without_timings(path: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("stages");
    o.remove("seconds_total");
    o.remove("peak_memory_mb");
    if let Some(spine) = v.pointer_mut("/segmentation/spine") {
        spine.as_object_mut().unwrap().remove("step_seconds");
    }
    v
}

#[test]
fn same_input_and_options_give_byte_identical_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    write_series(
        &body_with_bone(AXIAL, [0.0; 3]),
        &input,
        &WriteOptions::default(),
    )
    .unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for out in [&a, &b] {
        let o = spinemesh(&[
            "reconstruct",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-q",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for f in ["spine.stl", "mask.nii.gz", "overview.png"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs between two runs"
        );
    }
    // report.json differs only in timings and peak memory.
    assert_eq!(
        report_without_timings(&a.join("report.json")),
        report_without_timings(&b.join("report.json"))
    );
    // Only the four outputs, no temporary files left behind.
    let names: Vec<_> = files_in(&a)
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["mask.nii.gz", "overview.png", "report.json", "spine.stl"]
    );
}

#[test]
fn failed_runs_leave_no_files_and_the_input_is_never_written() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    let mut v = body_with_bone(AXIAL, [0.0; 3]);
    // No bone at all: the pipeline finds nothing and fails.
    for x in v.data.iter_mut() {
        *x = x.min(30.0);
    }
    write_series(&v, &input, &WriteOptions::default()).unwrap();
    let before = files_in(&input);
    let out = tmp.path().join("out");
    let o = spinemesh(&[
        "reconstruct",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));
    // An output folder inside the input folder is refused before anything runs.
    let inside = input.join("results");
    let o = spinemesh(&[
        "reconstruct",
        input.to_str().unwrap(),
        "-o",
        inside.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("never writes into its input"),
        "{err}"
    );
    assert!(!inside.exists());
    assert_eq!(files_in(&input), before);
}

#[test]
#[allow(clippy::needless_range_loop)]
fn sagittal_acquisition_lands_where_the_bone_is() {
    // Rows along P (y), columns along −S (down), slices along −L.
    let sag = [[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]];
    let origin = [60.0, -40.0, 200.0];
    let v = body_with_bone(sag, origin);
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    write_series(&v, &input, &WriteOptions::default()).unwrap();
    let params = spinemesh::pipeline::Params::from_preset(spinemesh::pipeline::Preset::Paper);
    let r = spinemesh::run::reconstruct(
        &input,
        &tmp.path().join("out"),
        &params,
        &spinemesh::run::Silent,
    )
    .unwrap();
    // The bone cube's LPS box, from the volume's own grid.
    let corners: Vec<[f64; 3]> = [[14.0, 14.0, 5.0], [33.0, 33.0, 24.0]]
        .iter()
        .map(|&c| v.grid.index_to_lps(c))
        .collect();
    for a in 0..3 {
        let lo = corners[0][a].min(corners[1][a]);
        let hi = corners[0][a].max(corners[1][a]);
        assert!(
            (r.mesh.bounds_min[a] - lo).abs() < 1.5 && (r.mesh.bounds_max[a] - hi).abs() < 1.5,
            "axis {a}: mesh {:?}..{:?}, bone {lo}..{hi}",
            r.mesh.bounds_min,
            r.mesh.bounds_max
        );
    }
}
