//! Helpers shared by the bench binaries (each uses part of them).
#![allow(dead_code)]

use spinemesh::io::dicom::{write_series, WriteOptions};
use spinemesh::phantom::{generate, PhantomParams};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Median of the finite values (NaN when there are none).
pub fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Writes the phantom with `params` as a DICOM series under `root/name`
/// once; returns the series folder.
pub fn phantom_series(root: &Path, name: &str, params: &PhantomParams) -> PathBuf {
    let dir = root.join(name).join("dicom");
    let marker = root.join(name).join("complete");
    if !marker.exists() {
        let t = Instant::now();
        let ph = generate(params);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the series folder");
        write_series(&ph.ct, &dir, &WriteOptions::default()).expect("write the series");
        std::fs::write(&marker, b"").expect("write the marker");
        println!(
            "{name}: phantom {:?} at {:?} mm written in {:.1} s",
            params.dims,
            params.spacing_mm,
            t.elapsed().as_secs_f64()
        );
    }
    dir
}
