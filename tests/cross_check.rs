//! The `paper` preset against an independent SciPy implementation of the
//! paper's steps (tests/python/paper_pipeline.py), on a real abdominal CT.

mod common;

use spinemesh::pipeline::{self, Params};

#[test]
fn paper_preset_matches_scipy_on_real_ct() {
    let Some(case) = common::shared_case("totalseg-abdomen-3mm") else {
        return;
    };
    let Some(mut py) = common::python(&["numpy", "scipy", "nibabel"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ct_path = case.join("ct.nii.gz");
    let ref_path = dir.path().join("scipy.nii.gz");
    let status = py
        .arg("tests/python/paper_pipeline.py")
        .arg(&ct_path)
        .arg(&ref_path)
        .status()
        .unwrap();
    assert!(status.success(), "paper_pipeline.py failed");

    let ct = spinemesh::io::nifti::read_ct(&ct_path).unwrap();
    let out = pipeline::run(&ct.volume, &Params::paper(), &|_| {}).unwrap();
    let scipy = spinemesh::io::nifti::read_nifti(&ref_path).unwrap().volume;
    assert!(scipy.grid.same_as(&out.mask.grid), "grids differ");
    let scipy = scipy.map(|v| (v != 0.0) as u8);
    let m = spinemesh::evaluate::compare(&out.mask, &scipy).unwrap();
    eprintln!(
        "paper preset vs SciPy: Dice {:.5}, ours {} voxels, SciPy {} voxels",
        m.dice, m.pred_voxels, m.ref_voxels
    );
    assert!(m.dice >= 0.99, "Dice {} < 0.99", m.dice);
}
