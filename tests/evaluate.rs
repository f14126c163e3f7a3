//! Cross-checks of `spinemesh::evaluate` against an independent SciPy
//! implementation (tests/python/evaluate_ref.py), of our NIfTI writer against
//! nibabel, and evaluation on real reference masks.

mod common;

use spinemesh::evaluate::{compare, evaluate_files, parse_labels, EvaluateOptions, Metrics};
use spinemesh::io::nifti::{read_nifti, write_mask};
use spinemesh::{Grid, Mask, Volume};
use std::path::Path;

/// Runs the SciPy reference on two files and returns its JSON output.
fn scipy_reference(pred: &Path, reference: &Path, extra: &[&str]) -> Option<serde_json::Value> {
    let mut cmd = common::python(&["numpy", "scipy", "nibabel"])?;
    cmd.arg("tests/python/evaluate_ref.py")
        .arg(pred)
        .arg(reference)
        .args(extra);
    let out = cmd.output().expect("python3 could not be started");
    assert!(
        out.status.success(),
        "evaluate_ref.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("evaluate_ref.py printed no JSON"))
}

fn assert_agrees(ours: &Metrics, py: &serde_json::Value, what: &str) {
    let num = |k: &str| py[k].as_f64();
    let pairs = [
        ("dice", Some(ours.dice), num("dice")),
        ("iou", Some(ours.iou), num("iou")),
        ("hd95", ours.hd95_mm, num("hd95")),
        ("hd", ours.hd_mm, num("hd")),
        ("assd", ours.assd_mm, num("assd")),
        (
            "asd_pred_to_ref",
            ours.asd_pred_to_ref_mm,
            num("asd_pred_to_ref"),
        ),
        (
            "asd_ref_to_pred",
            ours.asd_ref_to_pred_mm,
            num("asd_ref_to_pred"),
        ),
    ];
    for (name, a, b) in pairs {
        match (a, b) {
            (Some(a), Some(b)) => assert!(
                (a - b).abs() <= 0.005,
                "{what}: {name} ours {a} vs SciPy {b}"
            ),
            (None, None) => {}
            _ => panic!("{what}: {name} ours {a:?} vs SciPy {b:?}"),
        }
        eprintln!("{what}: {name:16} ours {a:?}  scipy {b:?}");
    }
    assert_eq!(Some(ours.pred_voxels), py["pred_voxels"].as_u64(), "{what}");
    assert_eq!(Some(ours.ref_voxels), py["ref_voxels"].as_u64(), "{what}");
    if let Some(n) = py["pred_surface_voxels"].as_u64() {
        assert_eq!(ours.pred_surface_voxels, n, "{what}: pred surface voxels");
        assert_eq!(
            Some(ours.ref_surface_voxels),
            py["ref_surface_voxels"].as_u64(),
            "{what}"
        );
    }
}

fn matrix(v: &serde_json::Value) -> [[f64; 4]; 4] {
    let mut m = [[0.0; 4]; 4];
    for (r, row) in m.iter_mut().enumerate() {
        for (c, x) in row.iter_mut().enumerate() {
            *x = v[r][c].as_f64().expect("affine entry");
        }
    }
    m
}

fn assert_affine(got: &serde_json::Value, want: &[[f64; 4]; 4], what: &str) {
    let got = matrix(got);
    for r in 0..4 {
        for c in 0..4 {
            assert!(
                (got[r][c] - want[r][c]).abs() < 1e-4,
                "{what}: nibabel {got:?} vs ours {want:?}"
            );
        }
    }
}

/// A smooth random "blob" mask: threshold of a sum of Gaussian bumps.
fn blobs(grid: &Grid, seed: u64, shift_mm: [f64; 3]) -> Mask {
    let mut s = seed;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 10_000) as f64 / 10_000.0
    };
    let ext: [f64; 3] = std::array::from_fn(|a| grid.dims[a] as f64 * grid.spacing[a]);
    let bumps: Vec<([f64; 3], f64)> = (0..7)
        .map(|_| {
            let c = std::array::from_fn(|a| ext[a] * (0.3 + 0.4 * rnd()) + shift_mm[a]);
            (c, 3.0 + 5.0 * rnd())
        })
        .collect();
    let mut m = Mask::filled(grid.clone(), 0);
    for i in 0..grid.len() {
        let [x, y, z] = grid.coords(i);
        let p = [
            x as f64 * grid.spacing[0],
            y as f64 * grid.spacing[1],
            z as f64 * grid.spacing[2],
        ];
        let f: f64 = bumps
            .iter()
            .map(|(c, sigma)| {
                let d2: f64 = (0..3).map(|a| (p[a] - c[a]).powi(2)).sum();
                (-d2 / (2.0 * sigma * sigma)).exp()
            })
            .sum();
        m.data[i] = u8::from(f > 0.5);
    }
    m
}

fn oblique_anisotropic_grid() -> Grid {
    let (c, s) = (15f64.to_radians().cos(), 15f64.to_radians().sin());
    Grid {
        dims: [64, 52, 26],
        spacing: [0.7, 0.9, 2.5],
        origin: [-20.0, 35.5, -110.0],
        // Rotated about the patient's z axis, slices stacked feet-ward (mirrored).
        direction: [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, -1.0]],
    }
}

#[test]
fn blobs_agree_with_scipy_and_nibabel_reads_our_affine() {
    let dir = tempfile::tempdir().unwrap();
    let g = oblique_anisotropic_grid();
    let pred = blobs(&g, 0x9e3779b97f4a7c15, [1.3, -0.8, 2.0]);
    let reference = blobs(&g, 0x9e3779b97f4a7c15, [0.0, 0.0, 0.0]);
    let other = blobs(&g, 0x2545f4914f6cdd1d, [0.0, 0.0, 0.0]);
    assert!(pred.count() > 1000 && reference.count() > 1000);
    let (pp, rp, op) = (
        dir.path().join("pred.nii.gz"),
        dir.path().join("ref.nii.gz"),
        dir.path().join("other.nii.gz"),
    );
    write_mask(&pp, &pred).unwrap();
    write_mask(&rp, &reference).unwrap();
    write_mask(&op, &other).unwrap();

    // Our own round trip keeps the grid.
    let back = read_nifti(&pp).unwrap().volume;
    assert!(back.grid.same_as(&g), "{:?}", back.grid);

    let ours = compare(&pred, &reference).unwrap();
    assert!(ours.dice > 0.5 && ours.dice < 0.99, "{ours:?}");
    let Some(py) = scipy_reference(&pp, &rp, &[]) else {
        return;
    };
    assert_agrees(&ours, &py, "shifted blobs");
    let want = g.ras_affine();
    for key in ["pred_affine", "pred_sform", "pred_qform"] {
        assert_affine(&py[key], &want, key);
    }
    assert_eq!(py["pred_sform_code"].as_i64(), Some(1));
    assert_eq!(py["pred_qform_code"].as_i64(), Some(1));

    // Unrelated blobs (low overlap, larger distances), through the file path.
    let ours = evaluate_files(&op, &rp, &EvaluateOptions::default()).unwrap();
    assert!(!ours.pred_resampled);
    let py = scipy_reference(&op, &rp, &[]).unwrap();
    assert_agrees(&ours, &py, "unrelated blobs");
}

#[test]
fn prediction_on_another_grid_is_resampled_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let g = oblique_anisotropic_grid();
    let reference = blobs(&g, 77, [0.0; 3]);
    // The same voxels on a padded grid with a different origin: resampling
    // back must be exact, so the scores are perfect.
    let padded = reference.pad([3, 2, 4], 0);
    let (pp, rp) = (dir.path().join("p.nii.gz"), dir.path().join("r.nii.gz"));
    write_mask(&pp, &padded).unwrap();
    write_mask(&rp, &reference).unwrap();
    let m = evaluate_files(&pp, &rp, &EvaluateOptions::default()).unwrap();
    assert!(m.pred_resampled);
    assert_eq!(m.dice, 1.0, "{m:?}");
    assert_eq!(m.hd95_mm, Some(0.0));
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn real_vertebrae_agree_with_scipy() {
    let Some(case) = common::shared_case("totalseg-abdomen-3mm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ref_path = case.join("vertebrae.nii.gz");
    let labels = parse_labels("26-31").unwrap();
    let vol = read_nifti(&ref_path).unwrap().volume;
    let l1_s1 = spinemesh::evaluate::labels_to_mask(&vol, &labels);
    assert!(l1_s1.count() > 1000);

    // Prediction 1: L4 (label 28) missing.
    let no_l4 = vol.map(|v| u8::from((26.0..=31.0).contains(&v) && v != 28.0));
    // Prediction 2: L1-S1 shifted by one voxel along x and two along z.
    let mut shifted = Mask::filled(vol.grid.clone(), 0);
    let [nx, ny, nz] = vol.grid.dims;
    for z in 2..nz {
        for y in 0..ny {
            for x in 1..nx {
                shifted.set(x, y, z, l1_s1.get(x - 1, y, z - 2));
            }
        }
    }
    let opts = EvaluateOptions {
        ref_labels: labels.clone(),
        ..Default::default()
    };
    for (name, pred) in [("no_l4", no_l4), ("shifted", shifted)] {
        let pp = dir.path().join(format!("{name}.nii.gz"));
        write_mask(&pp, &pred).unwrap();
        let ours = evaluate_files(&pp, &ref_path, &opts).unwrap();
        assert!(ours.dice < 1.0 && ours.dice > 0.3, "{name}: {ours:?}");
        let Some(py) = scipy_reference(&pp, &ref_path, &["--ref-labels", "26-31"]) else {
            return;
        };
        assert_agrees(&ours, &py, name);
        // nibabel and we read the reference with the same affine.
        assert_affine(
            &py["ref_affine"],
            &vol.grid.ras_affine(),
            "reference affine",
        );
    }
}

#[test]
fn real_verse_within_reference_slices() {
    let Some(case) = common::shared_case("verse012-thoracolumbar") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ref_path = case.join("vertebrae.nii.gz");
    // Prediction: every vertebra (17-22) against a reference of L1-L3 (20-22)
    // only; within the reference's axial slices the extra thoracic levels
    // mostly drop out.
    let vol = read_nifti(&ref_path).unwrap().volume;
    let all = vol.map(|v| u8::from(v != 0.0));
    let pp = dir.path().join("all.nii.gz");
    write_mask(&pp, &all).unwrap();
    let mut opts = EvaluateOptions {
        ref_labels: parse_labels("20-22").unwrap(),
        ..Default::default()
    };
    let whole = evaluate_files(&pp, &ref_path, &opts).unwrap();
    opts.within_ref_slices = true;
    let within = evaluate_files(&pp, &ref_path, &opts).unwrap();
    assert_eq!(within.axial_axis, Some(vol.grid.axial_axis()));
    let [first, last] = within.ref_slice_range.unwrap();
    assert!(first <= last && last < vol.grid.dims[vol.grid.axial_axis()]);
    assert!(
        within.dice > whole.dice,
        "{} vs {}",
        within.dice,
        whole.dice
    );
    assert!(within.pred_voxels < whole.pred_voxels);
    let json = serde_json::to_value(&within).unwrap();
    for key in [
        "dice",
        "iou",
        "hd95_mm",
        "assd_mm",
        "pred_volume_mm3",
        "ref_volume_mm3",
    ] {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
}

#[test]
fn nrrd_reference_against_itself() {
    let Some(case) = common::shared_case("ct3slice-spine-seg") else {
        return;
    };
    let p = case.join("spine_seg.nrrd");
    let m = evaluate_files(&p, &p, &EvaluateOptions::default()).unwrap();
    assert_eq!(m.dice, 1.0);
    assert_eq!(m.hd95_mm, Some(0.0));
    // A NIfTI copy of the NRRD label map is on the same grid.
    let dir = tempfile::tempdir().unwrap();
    let v = spinemesh::io::read_label_volume(&p).unwrap();
    let nii = dir.path().join("spine.nii.gz");
    write_mask(&nii, &v.map(|x| u8::from(x != 0.0))).unwrap();
    let m = evaluate_files(&nii, &p, &EvaluateOptions::default()).unwrap();
    assert!(!m.pred_resampled);
    assert_eq!(m.dice, 1.0);
}

#[test]
fn empty_reference_selection_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let g = Grid::new([8, 8, 8], [1.0; 3], [0.0; 3]);
    let v: Volume<u8> = Mask::filled(g, 1);
    let p = dir.path().join("m.nii.gz");
    write_mask(&p, &v).unwrap();
    let opts = EvaluateOptions {
        ref_labels: vec![5],
        ..Default::default()
    };
    let e = evaluate_files(&p, &p, &opts).unwrap_err().to_string();
    assert!(e.contains("--ref-labels"), "{e}");
}

#[test]
fn real_niftis_read_like_nibabel() {
    let cases = [
        "totalseg-abdomen-3mm/ct.nii.gz",
        "totalseg-abdomen-3mm/vertebrae.nii.gz",
        "verse012-thoracolumbar/ct.nii.gz",
        "verse012-thoracolumbar/vertebrae.nii.gz",
        "header-edge-cases/sliceincrement/002_ground_truth.nii.gz",
        "header-edge-cases/sliceincrement/002_ground_truth_reoriented.nii.gz",
    ];
    let Some(root) = common::shared_case("") else {
        return;
    };
    let script = "import sys, json, nibabel as nib, numpy as np\n\
                  i = nib.load(sys.argv[1]); d = np.asanyarray(i.get_fdata(dtype=np.float64))\n\
                  print(json.dumps({'affine': i.affine.tolist(), 'shape': list(d.shape[:3]),\n\
                  'sum': float(d.sum()), 'min': float(d.min()), 'max': float(d.max())}))";
    for case in cases {
        let path = root.join(case);
        let ours = read_nifti(&path).unwrap().volume;
        let Some(mut cmd) = common::python(&["numpy", "nibabel"]) else {
            return;
        };
        let out = cmd.args(["-c", script]).arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let py: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_affine(&py["affine"], &ours.grid.ras_affine(), case);
        let shape: Vec<usize> = py["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(shape, ours.grid.dims.to_vec(), "{case}");
        let sum: f64 = ours.data.iter().map(|&v| v as f64).sum();
        let want = py["sum"].as_f64().unwrap();
        assert!(
            (sum - want).abs() <= 1e-6 * want.abs().max(1.0),
            "{case}: sum {sum} vs {want}"
        );
        let min = ours.data.iter().copied().fold(f32::INFINITY, f32::min) as f64;
        let max = ours.data.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        assert_eq!(min, py["min"].as_f64().unwrap(), "{case}");
        assert_eq!(max, py["max"].as_f64().unwrap(), "{case}");
    }
}
