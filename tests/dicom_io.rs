//! DICOM series reading and writing through the public API.
//!
//! Real-data tests read `../shared/data` beside the crate: they skip with a
//! printed reason when it is absent, and fail when it is absent and CI=true.
//! The JPEG 2000 cross-check runs `tests/python/decode_dicom.py` (pydicom +
//! pylibjpeg-openjpeg): it skips when python3 or those modules are missing,
//! and fails then when CI=true.

use spinemesh::io::dicom::{read_series_with, write_series, WriteOptions};
use spinemesh::io::{LoadOptions, LoadedCt};
use spinemesh::{Error, Grid, Volume};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

fn no_progress(_: usize, _: usize) {}

/// Reads with values kept as stored (exact round trips; no padding clean-up).
fn read(dir: &Path) -> spinemesh::Result<LoadedCt> {
    let raw = LoadOptions {
        keep_raw_values: true,
        ..Default::default()
    };
    read_series_with(dir, &raw, &no_progress)
}

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// Skips (prints why) or, under CI=true, fails.
fn skip(reason: &str) {
    assert!(!in_ci(), "CI=true but {reason}");
    eprintln!("SKIPPED: {reason}");
}

fn data_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if d.is_dir() {
        Some(d)
    } else {
        skip(&format!("real test data not found at {}", d.display()));
        None
    }
}

/// A rotation (oblique orientation) from three angles, as direction vectors.
fn oblique_directions() -> [[f64; 3]; 3] {
    let (a, b, c) = (0.3f64, -0.4f64, 0.25f64);
    let rz = [
        [a.cos(), -a.sin(), 0.0],
        [a.sin(), a.cos(), 0.0],
        [0.0, 0.0, 1.0],
    ];
    let ry = [
        [b.cos(), 0.0, b.sin()],
        [0.0, 1.0, 0.0],
        [-b.sin(), 0.0, b.cos()],
    ];
    let rx = [
        [1.0, 0.0, 0.0],
        [0.0, c.cos(), -c.sin()],
        [0.0, c.sin(), c.cos()],
    ];
    let mul = |p: [[f64; 3]; 3], q: [[f64; 3]; 3]| {
        let mut m = [[0.0; 3]; 3];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (0..3).map(|k| p[i][k] * q[k][j]).sum();
            }
        }
        m
    };
    let m = mul(mul(rz, ry), rx);
    // Columns of the rotation matrix are the axis directions.
    [0, 1, 2].map(|a| [m[0][a], m[1][a], m[2][a]])
}

/// A small anisotropic volume with integer HU (full int16-ish range).
fn test_volume(
    dims: [usize; 3],
    direction: [[f64; 3]; 3],
    origin: [f64; 3],
    salt: i64,
) -> Volume<f32> {
    let grid = Grid {
        dims,
        spacing: [0.7, 0.9, 2.5],
        origin,
        direction,
    };
    let data = (0..grid.len())
        .map(|i| {
            let [x, y, z] = grid.coords(i);
            let v = (x as i64 * 37 + y as i64 * 11 + z as i64 * 1013 + salt * 7919) % 5000 - 1500;
            v as f32
        })
        .collect();
    Volume::new(grid, data).unwrap()
}

fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol, "{what}: {a:?} vs {b:?}");
    }
}

fn assert_same_geometry(read: &Grid, expected: &Grid) {
    assert_eq!(read.dims, expected.dims);
    assert_close(&read.spacing, &expected.spacing, 1e-9, "spacing");
    assert_close(&read.origin, &expected.origin, 1e-9, "origin");
    for a in 0..3 {
        assert_close(
            &read.direction[a],
            &expected.direction[a],
            1e-9,
            "direction",
        );
    }
}

#[test]
fn round_trip_oblique_anisotropic() {
    let tmp = tempfile::tempdir().unwrap();
    let v = test_volume([7, 5, 6], oblique_directions(), [-12.5, 30.25, 100.0], 0);
    let files = write_series(&v, tmp.path(), &WriteOptions::default()).unwrap();
    assert_eq!(files.len(), 6);
    assert_eq!(files[0].file_name().unwrap(), "IM00001.dcm");
    let calls = AtomicUsize::new(0);
    let last = AtomicUsize::new(0);
    let raw = LoadOptions {
        keep_raw_values: true,
        ..Default::default()
    };
    let ct = read_series_with(tmp.path(), &raw, &|done, total| {
        assert_eq!(total, 6);
        calls.fetch_add(1, Ordering::Relaxed);
        last.fetch_max(done, Ordering::Relaxed);
    })
    .unwrap();
    assert!(calls.load(Ordering::Relaxed) >= 6);
    assert_eq!(last.load(Ordering::Relaxed), 6);
    assert_same_geometry(&ct.volume.grid, &v.grid);
    assert_eq!(
        ct.volume.data, v.data,
        "HU values must be preserved exactly"
    );
    let info = &ct.info;
    assert_eq!(info.kind, "dicom");
    assert_eq!(
        (info.files_read, info.files_skipped, info.series_found),
        (6, 0, 1)
    );
    assert_eq!(info.dims, [7, 5, 6]);
    assert_close(&info.spacing_mm, &[0.7, 0.9, 2.5], 1e-9, "info spacing");
    assert_eq!(info.series_description.as_deref(), Some("spinemesh CT"));
    assert_eq!(info.series_number, Some(1));
    assert!(info.selection.is_none());
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
    let ts = info.transfer_syntax.as_deref().unwrap();
    assert!(
        ts.starts_with("1.2.840.10008.1.2.1 ") && ts.contains("Explicit VR Little Endian"),
        "{ts}"
    );
}

#[test]
fn reversed_slice_order_and_shuffled_names_sort_by_position() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = oblique_directions();
    // Slices stacked against the normal (row × column): a reversed series.
    dir[2] = dir[2].map(|c| -c);
    let v = test_volume([6, 4, 9], dir, [5.0, -7.0, 33.0], 1);
    let opts = WriteOptions {
        shuffle_names: true,
        seed: 7,
        ..Default::default()
    };
    let files = write_series(&v, tmp.path(), &opts).unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_ne!(
        names, sorted,
        "shuffled names must not follow the slice order"
    );
    let ct = read(tmp.path()).unwrap();
    let g = &ct.volume.grid;
    // The reader stacks along +normal: the same voxels, z flipped.
    let nz = 9;
    let mut expected = v.grid.clone();
    expected.direction[2] = v.grid.direction[2].map(|c| -c);
    expected.origin = v.grid.index_to_lps([0.0, 0.0, (nz - 1) as f64]);
    assert_same_geometry(g, &expected);
    for z in 0..nz {
        for y in 0..4 {
            for x in 0..6 {
                assert_eq!(ct.volume.get(x, y, z), v.get(x, y, nz - 1 - z));
                let p = g.index_to_lps([x as f64, y as f64, z as f64]);
                let q = v
                    .grid
                    .index_to_lps([x as f64, y as f64, (nz - 1 - z) as f64]);
                assert_close(&p, &q, 1e-9, "voxel position");
            }
        }
    }
    assert!(ct.info.warnings.is_empty(), "{:?}", ct.info.warnings);
}

#[test]
fn shuffled_names_in_normal_order_round_trip_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let v = test_volume(
        [5, 5, 12],
        Grid::new([1; 3], [1.0; 3], [0.0; 3]).direction,
        [0.0; 3],
        2,
    );
    let opts = WriteOptions {
        shuffle_names: true,
        ..Default::default()
    };
    write_series(&v, tmp.path(), &opts).unwrap();
    let ct = read(tmp.path()).unwrap();
    assert_same_geometry(&ct.volume.grid, &v.grid);
    assert_eq!(ct.volume.data, v.data);
}

#[test]
fn writing_is_deterministic_and_keeps_identifiers_out_of_reports() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let v = test_volume([8, 6, 4], oblique_directions(), [1.0, 2.0, 3.0], 3);
    let opts = WriteOptions {
        patient_name: "DOE^JANE".into(),
        patient_id: "ID-9876543".into(),
        series_description: "bench phantom".into(),
        ..Default::default()
    };
    let fa = write_series(&v, a.path(), &opts).unwrap();
    let fb = write_series(&v, b.path(), &opts).unwrap();
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(y).unwrap(),
            "files must be byte-identical"
        );
    }
    // The planted identifiers are in the files (they are the patient module) ...
    let bytes = std::fs::read(&fa[0]).unwrap();
    assert!(bytes.windows(8).any(|w| w == b"DOE^JANE"));
    // ... but never in what the reader reports.
    let ct = read(a.path()).unwrap();
    let report = format!("{:?} {}", ct.info, serde_json::to_string(&ct.info).unwrap());
    assert!(
        !report.contains("DOE") && !report.contains("9876543"),
        "{report}"
    );
    // A different seed gives different UIDs.
    let c = tempfile::tempdir().unwrap();
    let fc = write_series(
        &v,
        c.path(),
        &WriteOptions {
            seed: 1,
            ..opts.clone()
        },
    )
    .unwrap();
    assert_ne!(
        std::fs::read(&fa[0]).unwrap(),
        std::fs::read(&fc[0]).unwrap()
    );
    // Errors about these files do not carry them either.
    std::fs::write(&fa[1], &bytes[..bytes.len() - 10]).unwrap();
    let msg = read(a.path()).err().unwrap().to_string();
    assert!(!msg.contains("DOE") && !msg.contains("9876543"), "{msg}");
}

#[test]
fn skips_non_dicom_files_and_searches_subfolders() {
    let tmp = tempfile::tempdir().unwrap();
    let nested = tmp.path().join("patient/study/series");
    let v = test_volume([4, 3, 5], oblique_directions(), [0.0; 3], 4);
    write_series(&v, &nested, &WriteOptions::default()).unwrap();
    std::fs::write(tmp.path().join("README.txt"), "not a DICOM file").unwrap();
    std::fs::write(tmp.path().join("patient/blob.dcm"), vec![0u8; 300]).unwrap();
    std::fs::write(
        tmp.path().join("patient/study/mask.nii.gz"),
        [0x1f, 0x8b, 8, 0],
    )
    .unwrap();
    std::fs::write(tmp.path().join("patient/empty"), []).unwrap();
    let ct = read(tmp.path()).unwrap();
    assert_eq!(ct.volume.data, v.data);
    assert_eq!((ct.info.files_read, ct.info.files_skipped), (5, 4));
}

/// Writes `v` into `dir` with file names prefixed by `prefix` (several series in one flat folder).
fn write_flat(v: &Volume<f32>, dir: &Path, prefix: &str, opts: &WriteOptions) {
    let tmp = tempfile::tempdir().unwrap();
    for f in write_series(v, tmp.path(), opts).unwrap() {
        let name = format!("{prefix}{}", f.file_name().unwrap().to_string_lossy());
        std::fs::copy(&f, dir.join(name)).unwrap();
    }
}

#[test]
fn two_series_are_never_mixed_and_the_larger_is_taken() {
    let tmp = tempfile::tempdir().unwrap();
    let axial = Grid::new([1; 3], [1.0; 3], [0.0; 3]).direction;
    let head = test_volume([6, 5, 8], axial, [0.0, 0.0, 100.0], 5);
    let abd = test_volume([6, 5, 12], axial, [0.0, 0.0, 0.0], 6);
    let o = |n: i32, d: &str| WriteOptions {
        series_number: n,
        series_description: d.into(),
        ..Default::default()
    };
    write_flat(&head, tmp.path(), "1-", &o(2, "HEAD"));
    write_flat(&abd, tmp.path(), "2-", &o(3, "ABD"));
    let ct = read(tmp.path()).unwrap();
    assert_eq!(ct.volume.data, abd.data);
    assert_same_geometry(&ct.volume.grid, &abd.grid);
    let info = &ct.info;
    assert_eq!(
        (info.series_found, info.files_read, info.files_skipped),
        (2, 12, 8)
    );
    assert_eq!(info.series_number, Some(3));
    let sel = info.selection.as_deref().unwrap();
    assert!(
        sel.starts_with("2 CT volumes found; took #2 series 3 'ABD' (12 slices"),
        "{sel}"
    );
    assert!(
        sel.contains("#1 series 2 'HEAD' (8 slices") && sel.contains("covers less"),
        "{sel}"
    );
}

#[test]
fn equal_series_tie_breaks_to_the_lower_one() {
    let tmp = tempfile::tempdir().unwrap();
    let axial = Grid::new([1; 3], [1.0; 3], [0.0; 3]).direction;
    let upper = test_volume([5, 4, 6], axial, [0.0, 0.0, 50.0], 7);
    let lower = test_volume([5, 4, 6], axial, [0.0, 0.0, -400.0], 8);
    let same = WriteOptions {
        series_number: 2,
        series_description: "PET-CT SERIES".into(),
        ..Default::default()
    };
    // Name the lower series' files first and last alike: order must not matter.
    write_flat(&upper, tmp.path(), "a-", &same);
    write_flat(&lower, tmp.path(), "b-", &same);
    let ct = read(tmp.path()).unwrap();
    assert_eq!(ct.volume.data, lower.data);
    let sel = ct.info.selection.unwrap();
    assert!(sel.contains("lower in the body"), "{sel}");
}

#[test]
fn empty_or_non_dicom_folders_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let e = read(tmp.path()).err().unwrap();
    assert!(
        matches!(e, Error::Input(_)) && e.to_string().contains("holds no files"),
        "{e}"
    );
    std::fs::write(tmp.path().join("a.txt"), "hello").unwrap();
    std::fs::create_dir(tmp.path().join("sub")).unwrap();
    std::fs::write(tmp.path().join("sub/b.bin"), vec![7u8; 1000]).unwrap();
    let e = read(tmp.path()).err().unwrap();
    assert!(
        e.to_string().contains("no DICOM files") && e.to_string().contains("2 file(s)"),
        "{e}"
    );
    let e = read(&tmp.path().join("does-not-exist")).err().unwrap();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

/// Replaces the Modality value "CT" in a written file (explicit VR LE).
fn set_modality(path: &Path, modality: &[u8; 2]) {
    let mut bytes = std::fs::read(path).unwrap();
    let pat = b"\x08\x00\x60\x00CS\x02\x00CT";
    let at = bytes.windows(pat.len()).position(|w| w == pat).unwrap();
    bytes[at + 8..at + 10].copy_from_slice(modality);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn image_series_without_ct_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let v = test_volume([4, 4, 3], oblique_directions(), [0.0; 3], 9);
    for f in write_series(&v, tmp.path(), &WriteOptions::default()).unwrap() {
        set_modality(&f, b"MR");
    }
    let e = read(tmp.path()).err().unwrap().to_string();
    assert!(
        e.contains("no CT volume") && e.contains("modality MR") && e.contains("--force"),
        "{e}"
    );
    // --force reads it, with a warning.
    let forced = LoadOptions {
        force: true,
        keep_raw_values: true,
        ..Default::default()
    };
    let ct = read_series_with(tmp.path(), &forced, &no_progress).unwrap();
    assert_eq!(ct.volume.data, v.data);
    assert!(ct.info.warnings.iter().any(|w| w.contains("not CT")));
}

#[test]
fn truncated_files_header_skipped_with_warning_pixels_error() {
    let tmp = tempfile::tempdir().unwrap();
    let axial = Grid::new([1; 3], [1.0; 3], [0.0; 3]).direction;
    let v = test_volume([16, 16, 6], axial, [0.0; 3], 10);
    let files = write_series(&v, tmp.path(), &WriteOptions::default()).unwrap();
    // Cut inside the header: not readable as DICOM, skipped with a warning.
    let bytes = std::fs::read(&files[2]).unwrap();
    std::fs::write(&files[2], &bytes[..300]).unwrap();
    let ct = read(tmp.path()).unwrap();
    assert_eq!((ct.info.files_read, ct.info.files_skipped), (5, 1));
    let w = ct.info.warnings.join("\n");
    assert!(
        w.contains("could not be read") && w.contains("IM00003.dcm"),
        "{w}"
    );
    assert!(
        w.contains("uneven slice steps"),
        "the hole must be reported: {w}"
    );
    // Cut inside the pixel data: the slice is in the series, so reading fails.
    let bytes = std::fs::read(&files[4]).unwrap();
    std::fs::write(&files[4], &bytes[..bytes.len() - 100]).unwrap();
    let e = read(tmp.path()).err().unwrap();
    let msg = e.to_string();
    assert!(
        matches!(e, Error::Format { .. })
            && msg.contains("IM00005.dcm")
            && msg.contains("truncated"),
        "{msg}"
    );
}

#[test]
fn duplicate_slices_identical_are_dropped_different_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let v = test_volume([8, 8, 5], oblique_directions(), [0.0; 3], 11);
    let files = write_series(&v, tmp.path(), &WriteOptions::default()).unwrap();
    let copy = tmp.path().join("copy-of-3.dcm");
    std::fs::copy(&files[2], &copy).unwrap();
    let ct = read(tmp.path()).unwrap();
    assert_eq!(ct.volume.data, v.data);
    assert_eq!((ct.info.files_read, ct.info.files_skipped), (5, 1));
    assert!(
        ct.info.warnings.iter().any(|w| w.contains("duplicate")),
        "{:?}",
        ct.info.warnings
    );
    // Same position, other pixels: refuse.
    let mut bytes = std::fs::read(&copy).unwrap();
    let n = bytes.len();
    bytes[n - 2..].copy_from_slice(&1234i16.to_le_bytes());
    std::fs::write(&copy, bytes).unwrap();
    let e = read(tmp.path()).err().unwrap().to_string();
    assert!(e.contains("different pixels"), "{e}");
}

#[test]
fn single_slice_and_single_file_input() {
    let tmp = tempfile::tempdir().unwrap();
    let v = test_volume([6, 5, 1], oblique_directions(), [3.0, 2.0, 1.0], 13);
    let files = write_series(&v, tmp.path(), &WriteOptions::default()).unwrap();
    // The slice step of a single slice is its Slice Thickness (written as spacing z).
    let ct = read(tmp.path()).unwrap();
    assert_same_geometry(&ct.volume.grid, &v.grid);
    assert_eq!(ct.volume.data, v.data);
    let one = read(&files[0]).unwrap();
    assert_eq!(one.volume.data, v.data);
    assert_eq!(one.info.files_read, 1);
}

#[test]
fn write_rejects_bad_volumes_and_options() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v = test_volume([3, 3, 2], oblique_directions(), [0.0; 3], 12);
    let bad = WriteOptions {
        patient_name: "A".repeat(65),
        ..Default::default()
    };
    assert!(matches!(
        write_series(&v, tmp.path(), &bad),
        Err(Error::Parameter(_))
    ));
    v.grid.direction[1] = v.grid.direction[0];
    assert!(matches!(
        write_series(&v, tmp.path(), &WriteOptions::default()),
        Err(Error::Parameter(_))
    ));
    // HU beyond int16 are clamped, fractions rounded.
    let grid = Grid::new([3, 1, 1], [1.0; 3], [0.0; 3]);
    let v = Volume::new(grid, vec![-40000.0, 1.6, 50000.0]).unwrap();
    write_series(&v, tmp.path(), &WriteOptions::default()).unwrap();
    assert_eq!(
        read(tmp.path()).unwrap().volume.data,
        vec![-32768.0, 2.0, 32767.0]
    );
}

// ---------------------------------------------------------------------------
// Real data
// ---------------------------------------------------------------------------

#[test]
fn real_jpeg2000_slab() {
    let Some(data) = data_dir() else { return };
    let ct = read(&data.join("totalseg-jpeg2000-slab/dicom")).unwrap();
    let g = &ct.volume.grid;
    assert_eq!(g.dims, [512, 512, 20]);
    assert_close(&g.spacing, &[0.9765625, 0.9765625, 2.0], 1e-6, "spacing");
    // Sorted ascending along +z: the first slice is the lowest (IPP z = -804.5).
    assert_close(
        &g.origin,
        &[-249.51171875, -437.51171875, -804.5],
        1e-6,
        "origin",
    );
    assert_eq!(
        g.direction,
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    );
    let ts = ct.info.transfer_syntax.as_deref().unwrap();
    assert!(ts.contains("1.2.840.10008.1.2.4.90"), "{ts}");
    assert_eq!((ct.info.files_read, ct.info.files_skipped), (20, 0));
    assert!(ct.info.warnings.is_empty(), "{:?}", ct.info.warnings);
    let (lo, hi) = ct
        .volume
        .data
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(lo >= -1100.0 && hi > 700.0, "HU range {lo}..{hi}");
}

#[test]
fn real_two_series_takes_the_lumbar_one() {
    let Some(data) = data_dir() else { return };
    let ct = read(&data.join("acrin-petct-two-series")).unwrap();
    let g = &ct.volume.grid;
    assert_eq!(g.dims, [512, 512, 99]);
    assert_close(&g.spacing, &[0.976562, 0.976562, 4.25], 1e-6, "spacing");
    // The lumbar series spans z -846.25 .. -429.75 (the other 41.5 .. -375).
    assert!((g.origin[2] + 846.25).abs() < 1e-6, "origin {:?}", g.origin);
    let info = &ct.info;
    assert_eq!(
        (info.series_found, info.files_read, info.files_skipped),
        (2, 99, 99)
    );
    let sel = info.selection.as_deref().unwrap();
    assert!(
        sel.contains("lower in the body") && sel.contains("z -846.2 to -429.8"),
        "{sel}"
    );
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
}

#[test]
fn real_header_edge_cases_give_a_volume_or_a_clear_error() {
    let Some(data) = data_dir() else { return };
    let base = data.join("header-edge-cases");
    let e = read(&base.join("notavolume/001"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("one position"), "{e}");
    let tilt = read(&base.join("gantrytilting/001")).unwrap();
    // Tilt corrected: resampled onto an orthogonal grid, wider along y.
    assert_eq!(tilt.volume.grid.dims, [512, 521, 4]);
    assert!(
        tilt.info
            .warnings
            .iter()
            .any(|w| w.contains("gantry tilt of 14.0°") && w.contains("orthogonal grid")),
        "{:?}",
        tilt.info.warnings
    );
    let gap = read(&base.join("sliceincrement/001")).unwrap();
    // One missing slice (a 10 mm step among 5 mm ones) is filled in.
    assert_eq!(gap.volume.grid.dims[2], 5);
    assert!(
        gap.info
            .warnings
            .iter()
            .any(|w| w.contains("missing slice")),
        "{:?}",
        gap.info.warnings
    );
    // 002 sits beside two NIfTI files: they are skipped.
    let r = read(&base.join("sliceincrement")).unwrap();
    assert!(r.info.files_skipped >= 2);
    // All four cases in one folder: the stack at one position is never preferred.
    let all = read(&base).unwrap();
    assert_eq!((all.info.series_found, all.volume.grid.dims[2]), (4, 5));
    for case in ["gantrytilting", "notavolume", "sliceincrement"] {
        // Whole folders: a volume or an error, never a panic.
        let _ = read(&base.join(case));
    }
}

#[test]
fn real_tilted_head_reads_with_warnings() {
    let Some(data) = data_dir() else { return };
    let ct = read(&data.join("ge-tilted-head")).unwrap();
    // Tilt corrected onto an orthogonal grid; steps of 4 and 7 mm made regular.
    assert_eq!(ct.volume.grid.dims, [512, 611, 37]);
    let w = ct.info.warnings.join("\n");
    assert!(w.contains("gantry tilt of 18.5°"), "{w}");
    assert!(w.contains("uneven slice steps"), "{w}");
}

#[test]
fn real_three_slices_beside_seg_and_nrrd() {
    let Some(data) = data_dir() else { return };
    let ct = read(&data.join("ct3slice-spine-seg")).unwrap();
    assert_eq!(ct.volume.grid.dims, [512, 512, 3]);
    assert_eq!(ct.info.series_found, 2);
    assert_eq!((ct.info.files_read, ct.info.files_skipped), (3, 4));
    assert!(ct.info.selection.as_deref().unwrap().contains("SEG"));
    assert!((ct.volume.grid.spacing[2] - 1.0).abs() < 1e-6);
}

/// Runs tests/python/decode_dicom.py on one file: (JSON line, values).
fn python_decode(file: &Path) -> Option<(serde_json::Value, Vec<f32>)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/decode_dicom.py");
    let out = tempfile::NamedTempFile::new().unwrap();
    let run = std::process::Command::new("python3")
        .arg(&script)
        .arg(file)
        .arg(out.path())
        .output();
    let run = match run {
        Ok(r) => r,
        Err(e) => {
            skip(&format!("python3 cannot be run ({e})"));
            return None;
        }
    };
    if run.status.code() == Some(3) {
        skip(&format!(
            "pydicom/pylibjpeg-openjpeg missing: {}",
            String::from_utf8_lossy(&run.stderr).trim()
        ));
        return None;
    }
    assert!(
        run.status.success(),
        "decode_dicom.py failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let raw = std::fs::read(out.path()).unwrap();
    let values = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Some((json, values))
}

#[test]
fn real_jpeg2000_matches_pydicom_pixel_for_pixel() {
    let Some(data) = data_dir() else { return };
    let dir = data.join("totalseg-jpeg2000-slab/dicom");
    let ct = read(&dir).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in [&files[0], &files[13]] {
        let Some((json, reference)) = python_decode(file) else {
            return;
        };
        assert_eq!(json["transfer_syntax"], "1.2.840.10008.1.2.4.90");
        let p: Vec<f64> = json["position"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let idx = ct.volume.grid.lps_to_index([p[0], p[1], p[2]]).unwrap();
        let z = idx[2].round() as usize;
        assert!((idx[2] - z as f64).abs() < 1e-6 && idx[0].abs() < 1e-6 && idx[1].abs() < 1e-6);
        let npix = 512 * 512;
        let ours = &ct.volume.data[z * npix..(z + 1) * npix];
        assert_eq!(reference.len(), npix);
        let differing = ours.iter().zip(&reference).filter(|(a, b)| a != b).count();
        assert_eq!(
            differing,
            0,
            "{differing} pixels differ from pydicom in {}",
            file.display()
        );
    }
}
