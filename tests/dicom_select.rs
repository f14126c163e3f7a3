//! Series selection, geometry correction and folder layouts on generated
//! series, and the real cases in `../shared/data` (skipped with a printed
//! reason when absent, failing under CI=true).

mod common;

use spinemesh::io::dicom::{inspect, read_series_with, write_series, WriteOptions};
use spinemesh::io::{LoadOptions, LoadedCt};
use spinemesh::{Grid, Volume};
use std::path::{Path, PathBuf};

const AXIAL: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

fn read(dir: &Path, opts: &LoadOptions) -> spinemesh::Result<LoadedCt> {
    read_series_with(dir, opts, &|_, _| {})
}

fn default() -> LoadOptions {
    LoadOptions::default()
}

fn volume(
    dims: [usize; 3],
    spacing: [f64; 3],
    direction: [[f64; 3]; 3],
    origin: [f64; 3],
    salt: i64,
) -> Volume<f32> {
    let grid = Grid {
        dims,
        spacing,
        origin,
        direction,
    };
    let data = (0..grid.len())
        .map(|i| {
            let [x, y, z] = grid.coords(i);
            ((x as i64 * 37 + y as i64 * 11 + z as i64 * 101 + salt * 7919) % 2000 - 900) as f32
        })
        .collect();
    Volume::new(grid, data).unwrap()
}

/// Writes `v` into `dir` with file names prefixed by `prefix`.
fn write_into(v: &Volume<f32>, dir: &Path, prefix: &str, opts: &WriteOptions) -> Vec<PathBuf> {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    write_series(v, tmp.path(), opts)
        .unwrap()
        .iter()
        .map(|f| {
            let to = dir.join(format!(
                "{prefix}{}",
                f.file_name().unwrap().to_string_lossy()
            ));
            std::fs::copy(f, &to).unwrap();
            to
        })
        .collect()
}

/// Value of a short explicit-VR element `tag` in a written file.
fn get_text(bytes: &[u8], tag: (u16, u16)) -> String {
    let pat: Vec<u8> = [tag.0.to_le_bytes(), tag.1.to_le_bytes()].concat();
    let at = bytes.windows(4).position(|w| w == pat).unwrap();
    let len = u16::from_le_bytes([bytes[at + 6], bytes[at + 7]]) as usize;
    String::from_utf8_lossy(&bytes[at + 8..at + 8 + len])
        .trim_end_matches(['\0', ' '])
        .to_string()
}

/// Replaces a short explicit-VR element's value (written files: explicit VR LE).
fn set_text(path: &Path, tag: (u16, u16), value: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    let pat: Vec<u8> = [tag.0.to_le_bytes(), tag.1.to_le_bytes()].concat();
    // Skip the file meta group (tags there are (0002,xxxx)).
    let at = bytes.windows(4).position(|w| w == pat).unwrap();
    let len = u16::from_le_bytes([bytes[at + 6], bytes[at + 7]]) as usize;
    let mut v = value.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(if &bytes[at + 4..at + 6] == b"UI" {
            0
        } else {
            b' '
        });
    }
    bytes.splice(at + 8..at + 8 + len, v.iter().copied());
    bytes[at + 6..at + 8].copy_from_slice(&(v.len() as u16).to_le_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn localizers_secondary_captures_and_dose_reports_are_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let main = volume([12, 10, 15], [0.8, 0.8, 2.0], AXIAL, [0.0, 0.0, -300.0], 1);
    let files = write_into(
        &main,
        dir,
        "ct-",
        &WriteOptions {
            series_number: 3,
            ..Default::default()
        },
    );
    let uid = get_text(&std::fs::read(&files[0]).unwrap(), (0x0020, 0x000E));
    // A localizer in the same series (coronal, Image Type LOCALIZER) ...
    let coronal = [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]];
    let loc = write_into(
        &volume([30, 20, 1], [1.0; 3], coronal, [0.0; 3], 2),
        dir,
        "loc-",
        &WriteOptions::default(),
    );
    set_text(&loc[0], (0x0008, 0x0008), "ORIGINAL\\PRIMARY\\LOCALIZER");
    set_text(&loc[0], (0x0020, 0x000E), &uid);
    // ... a single image at another orientation in the same series, not flagged ...
    let sag = [[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]];
    let odd = write_into(
        &volume([12, 10, 1], [0.8, 0.8, 2.0], sag, [0.0; 3], 3),
        dir,
        "odd-",
        &WriteOptions::default(),
    );
    set_text(&odd[0], (0x0020, 0x000E), &uid);
    // ... a secondary capture and a dose report of their own series (many images).
    let sc = write_into(
        &volume([12, 10, 30], [0.8, 0.8, 2.0], AXIAL, [0.0; 3], 4),
        dir,
        "sc-",
        &WriteOptions {
            series_number: 501,
            ..Default::default()
        },
    );
    for f in &sc {
        set_text(f, (0x0008, 0x0016), "1.2.840.10008.5.1.4.1.1.7");
    }
    let dose = write_into(
        &volume([12, 10, 40], [0.8, 0.8, 2.0], AXIAL, [0.0; 3], 5),
        dir,
        "dose-",
        &WriteOptions {
            series_number: 999,
            series_description: "Dose Report".into(),
            ..Default::default()
        },
    );
    assert_eq!(dose.len(), 40);
    let ct = read(dir, &default()).unwrap();
    assert_eq!(
        ct.volume.data,
        main.data
            .iter()
            .map(|&v| v.max(-1000.0))
            .collect::<Vec<_>>()
    );
    let s = inspect(dir, &default()).unwrap();
    let why: Vec<String> = s
        .series
        .iter()
        .map(|x| x.left_out_because.clone().unwrap_or_default())
        .collect();
    let all = why.join(" | ");
    assert!(all.contains("localizer"), "{all}");
    assert!(all.contains("single image"), "{all}");
    assert!(all.contains("secondary capture"), "{all}");
    assert!(all.contains("dose report"), "{all}");
    assert_eq!(s.series.iter().filter(|x| x.selected).count(), 1);
    assert_eq!(
        s.series.iter().find(|x| x.selected).unwrap().series_number,
        Some(3)
    );
}

#[test]
fn coverage_then_thinner_slices_then_bone_kernel_then_lower() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = |n: i32, d: &str| WriteOptions {
        series_number: n,
        series_description: d.into(),
        ..Default::default()
    };
    // Same coverage (60 mm): 2 mm and 1 mm steps; the thinner wins.
    let thick = volume([8, 8, 31], [1.0, 1.0, 2.0], AXIAL, [0.0, 0.0, 0.0], 1);
    let thin = volume([8, 8, 61], [1.0, 1.0, 1.0], AXIAL, [0.0, 0.0, 0.0], 2);
    write_into(&thick, dir, "a-", &o(2, "ABD 2mm"));
    write_into(&thin, dir, "b-", &o(3, "ABD 1mm"));
    let ct = read(dir, &default()).unwrap();
    assert_eq!(ct.info.series_number, Some(3));
    assert!(ct.info.selection.unwrap().contains("thicker slices"));
    // A lung-kernel twin lying lower loses to the standard one.
    let lung = volume([8, 8, 61], [1.0, 1.0, 1.0], AXIAL, [0.0, 0.0, -20.0], 3);
    write_into(&lung, dir, "c-", &o(4, "ABD 1mm LUNG"));
    let ct = read(dir, &default()).unwrap();
    assert_eq!(ct.info.series_number, Some(3));
    assert!(ct.info.selection.unwrap().contains("lung kernel"));
    // --series by index and by UID; a wrong one is a clear error.
    let s = inspect(dir, &default()).unwrap();
    let lung_entry = s
        .series
        .iter()
        .find(|x| x.series_number == Some(4))
        .unwrap();
    for choice in [
        lung_entry.index.to_string(),
        lung_entry.series_instance_uid.clone(),
    ] {
        let opts = LoadOptions {
            series: Some(choice),
            ..Default::default()
        };
        let ct = read(dir, &opts).unwrap();
        assert_eq!(ct.info.series_number, Some(4));
        assert!(ct.info.selection.unwrap().contains("--series"));
        assert!(
            inspect(dir, &opts)
                .unwrap()
                .series
                .iter()
                .find(|x| x.selected)
                .unwrap()
                .series_number
                == Some(4)
        );
    }
    let e = read(
        dir,
        &LoadOptions {
            series: Some("17".into()),
            ..Default::default()
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("no such series") && e.contains("1 to 3"), "{e}");
}

#[test]
fn dicomdir_and_nested_tree_without_extensions_among_other_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("CD");
    let v = volume([10, 9, 7], [0.7, 0.7, 1.5], AXIAL, [1.0, 2.0, 3.0], 6);
    // A Philips-like tree: DICOM/<patient>/<study>/<series>/IMnnnnn, no extensions.
    let series = root.join("DICOM/PAT00000/STD00000/SER00001");
    for (k, f) in write_into(&v, &series, "", &WriteOptions::default())
        .iter()
        .enumerate()
    {
        std::fs::rename(f, series.join(format!("IM{k:05}"))).unwrap();
    }
    // A DICOMDIR (a DICOM file without an image), a proprietary DIRFILE,
    // a viewer and a text file.
    let mut dicomdir = vec![0u8; 128];
    dicomdir.extend(b"DICM");
    let meta = |tag: u16, vr: &[u8; 2], val: &[u8]| -> Vec<u8> {
        let mut e = vec![2, 0];
        e.extend(tag.to_le_bytes());
        e.extend(vr);
        e.extend((val.len() as u16).to_le_bytes());
        e.extend(val);
        e
    };
    let mut group = meta(0x0002, b"UI", b"1.2.840.10008.1.3.10");
    group.extend(meta(0x0010, b"UI", b"1.2.840.10008.1.2.1\0"));
    dicomdir.extend([2, 0, 0, 0, b'U', b'L', 4, 0]);
    dicomdir.extend((group.len() as u32).to_le_bytes());
    dicomdir.extend(group);
    dicomdir.extend([4, 0, 0x30, 0x11, b'C', b'S', 2, 0, b'I', b'D']);
    std::fs::write(root.join("DICOMDIR"), &dicomdir).unwrap();
    std::fs::write(root.join("DIRFILE"), [0x50u8; 700]).unwrap();
    std::fs::write(root.join("viewer.exe"), [0x4Du8, 0x5A, 0, 0]).unwrap();
    std::fs::write(root.join("README.TXT"), "burnt with some viewer").unwrap();
    for input in [root.clone(), root.join("DICOMDIR")] {
        let ct = read(&input, &default()).unwrap();
        assert_eq!(ct.volume.data, v.data);
        assert_eq!((ct.info.files_read, ct.info.files_skipped), (7, 4));
    }
    let s = inspect(&root.join("DICOMDIR"), &default()).unwrap();
    assert_eq!(
        (s.dicom_files, s.files_without_image, s.files_not_dicom),
        (8, 1, 3)
    );
}

/// A series acquired with a tilted gantry: the image plane is tilted by
/// `tilt` about the x axis and the slices advance along the table (z), as GE
/// and Siemens write them. A vertical rod of 600 HU at LPS (x0, y0).
fn tilted_series(dir: &Path, tilt_deg: f64, steps: &[f64]) -> (f64, f64) {
    let t = tilt_deg.to_radians();
    let (x0, y0) = (4.0, 1.5);
    let mut z = 0.0;
    for (k, &dz) in std::iter::once(&0.0).chain(steps).enumerate() {
        z += dz;
        let grid = Grid {
            dims: [40, 40, 1],
            spacing: [0.5, 0.5, 1.0],
            origin: [-10.0, -10.0 * t.cos(), z + 10.0 * t.sin()],
            direction: [
                [1.0, 0.0, 0.0],
                [0.0, t.cos(), -t.sin()],
                [0.0, t.sin(), t.cos()],
            ],
        };
        let data = (0..grid.len())
            .map(|i| {
                let [x, y, _] = grid.coords(i);
                let p = grid.index_to_lps([x as f64, y as f64, 0.0]);
                let r2 = (p[0] - x0).powi(2) + (p[1] - y0).powi(2);
                if r2 < 2.0 * 2.0 {
                    600.0
                } else {
                    0.0
                }
            })
            .collect();
        let v = Volume::new(grid, data).unwrap();
        for f in write_into(&v, dir, &format!("s{k:03}-"), &WriteOptions::default()) {
            set_text(&f, (0x0020, 0x000E), "2.25.4242");
        }
    }
    (x0, y0)
}

/// LPS centroid (x, y) of the voxels above 300 HU in each z slice of `v`.
fn rod_centres(v: &Volume<f32>) -> Vec<[f64; 2]> {
    let [nx, ny, nz] = v.grid.dims;
    (0..nz)
        .filter_map(|z| {
            let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
            for y in 0..ny {
                for x in 0..nx {
                    if v.get(x, y, z) > 300.0 {
                        let p = v.grid.index_to_lps([x as f64, y as f64, z as f64]);
                        sx += p[0];
                        sy += p[1];
                        n += 1.0;
                    }
                }
            }
            (n > 10.0).then(|| [sx / n, sy / n])
        })
        .collect()
}

#[test]
fn gantry_tilt_is_found_from_positions_and_corrected() {
    let tmp = tempfile::tempdir().unwrap();
    let (x0, y0) = tilted_series(tmp.path(), 20.0, &[2.0; 11]);
    let ct = read(tmp.path(), &default()).unwrap();
    let w = ct.info.warnings.join("\n");
    assert!(
        w.contains("gantry tilt of 20.0°") && w.contains("orthogonal grid"),
        "{w}"
    );
    // The grid is orthogonal (axes r, c, n) and the rod is straight in LPS:
    // every slice's rod centre sits on the rod's axis.
    let d = ct.volume.grid.direction;
    let dotp = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    assert!(dotp(d[0], d[2]).abs() < 1e-9 && dotp(d[1], d[2]).abs() < 1e-9);
    let centres = rod_centres(&ct.volume);
    assert!(centres.len() >= 8, "{}", centres.len());
    for c in &centres {
        assert!(
            (c[0] - x0).abs() < 0.3 && (c[1] - y0).abs() < 0.3,
            "rod centre {c:?}, axis ({x0}, {y0})"
        );
    }
}

#[test]
fn uneven_steps_are_resampled_and_gaps_are_refused_with_a_list() {
    // One slice missing (a 4 mm step among 2 mm ones): filled in.
    let tmp = tempfile::tempdir().unwrap();
    tilted_series(tmp.path(), 0.0, &[2.0, 2.0, 4.0, 2.0, 2.0]);
    let ct = read(tmp.path(), &default()).unwrap();
    assert_eq!(ct.volume.grid.dims[2], 7);
    assert!((ct.volume.grid.spacing[2] - 2.0).abs() < 1e-9);
    assert!(
        ct.info.warnings.iter().any(|w| w.contains("missing slice")),
        "{:?}",
        ct.info.warnings
    );
    // Small jitter: resampled onto a regular grid.
    let tmp = tempfile::tempdir().unwrap();
    tilted_series(tmp.path(), 0.0, &[2.0, 2.1, 1.9, 2.05, 1.95]);
    let ct = read(tmp.path(), &default()).unwrap();
    assert_eq!(ct.volume.grid.dims[2], 6);
    assert!(ct
        .info
        .warnings
        .iter()
        .any(|w| w.contains("uneven slice steps")));
    // Two slices missing in a row, twice: an error listing both gaps.
    let tmp = tempfile::tempdir().unwrap();
    tilted_series(tmp.path(), 0.0, &[2.0, 6.0, 2.0, 2.0, 8.0, 2.0]);
    let e = read(tmp.path(), &default()).err().unwrap().to_string();
    assert!(
        e.contains("gaps") && e.contains("6.00 mm between") && e.contains("8.00 mm between"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// Real data
// ---------------------------------------------------------------------------

#[test]
fn real_two_series_info_default_and_series_choice() {
    let Some(dir) = common::shared_case("acrin-petct-two-series") else {
        return;
    };
    let s = inspect(&dir, &default()).unwrap();
    assert_eq!(s.series.len(), 2);
    let lumbar = s.series.iter().find(|x| x.selected).unwrap();
    assert!(lumbar.z_range_mm.unwrap()[0] < -800.0);
    let why = s.selection.clone().unwrap();
    assert!(why.contains("lower in the body"), "{why}");
    let other = s.series.iter().find(|x| !x.selected).unwrap();
    let ct = read(
        &dir,
        &LoadOptions {
            series: Some(other.index.to_string()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        (ct.volume.grid.origin[2] + 375.0).abs() < 1e-6,
        "{:?}",
        ct.volume.grid.origin
    );
    assert_eq!(ct.volume.grid.dims, [512, 512, 99]);
}

#[test]
fn real_header_edge_cases_each_give_a_volume_or_a_clear_error() {
    let Some(base) = common::shared_case("header-edge-cases") else {
        return;
    };
    for case in [
        "gantrytilting/001",
        "notavolume/001",
        "sliceincrement/001",
        "sliceincrement/002",
    ] {
        let r = std::panic::catch_unwind(|| read(&base.join(case), &default()));
        match r.unwrap_or_else(|_| panic!("{case} panicked")) {
            Ok(ct) => eprintln!(
                "{case}: volume {:?}, warnings {:?}",
                ct.volume.grid.dims, ct.info.warnings
            ),
            Err(e) => {
                eprintln!("{case}: {e}");
                assert_eq!(case, "notavolume/001");
                assert!(e.to_string().contains("one position"), "{e}");
            }
        }
    }
}

/// Trilinear value of `v` at LPS `p` (None outside).
fn sample(v: &Volume<f32>, p: [f64; 3]) -> Option<f64> {
    let q = v.grid.lps_to_index(p)?;
    let d = v.grid.dims;
    let mut i0 = [0usize; 3];
    let mut f = [0f64; 3];
    for a in 0..3 {
        let hi = (d[a] - 1) as f64;
        if q[a] < -1e-6 || q[a] > hi + 1e-6 {
            return None;
        }
        let c = q[a].clamp(0.0, hi);
        i0[a] = (c.floor() as usize).min(d[a].saturating_sub(2));
        f[a] = c - i0[a] as f64;
        if d[a] == 1 {
            i0[a] = 0;
            f[a] = 0.0;
        }
    }
    let mut acc = 0.0;
    for k in 0..2 {
        for j in 0..2 {
            for i in 0..2 {
                let w = (if i == 1 { f[0] } else { 1.0 - f[0] })
                    * (if j == 1 { f[1] } else { 1.0 - f[1] })
                    * (if k == 1 { f[2] } else { 1.0 - f[2] });
                if w > 0.0 {
                    let x = (i0[0] + i).min(d[0] - 1);
                    let y = (i0[1] + j).min(d[1] - 1);
                    let z = (i0[2] + k).min(d[2] - 1);
                    acc += w * f64::from(v.get(x, y, z));
                }
            }
        }
    }
    Some(acc)
}

/// Mean |difference| between each acquired slice (read alone, at its own
/// LPS positions) and `v` sampled there; every 5th pixel.
fn acquired_slices_error(files: &[PathBuf], v: &Volume<f32>) -> (f64, usize) {
    let (mut err, mut n) = (0.0, 0usize);
    for f in files {
        let s = read(
            f,
            &LoadOptions {
                keep_raw_values: true,
                ..Default::default()
            },
        )
        .unwrap()
        .volume;
        let [nx, ny, _] = s.grid.dims;
        for y in (0..ny).step_by(5) {
            for x in (0..nx).step_by(5) {
                let p = s.grid.index_to_lps([x as f64, y as f64, 0.0]);
                if let Some(o) = sample(v, p) {
                    err += (o - f64::from(s.get(x, y, 0))).abs();
                    n += 1;
                }
            }
        }
    }
    (err / n.max(1) as f64, n)
}

/// 002 has a missing slice (steps 0.75, 0.75, 1.50 mm along a 15.5° tilted
/// normal): it is tilt-corrected and filled in. Compared with the volume
/// dicom2nifti made (its ground truth) at the voxels' LPS positions.
#[test]
fn real_sliceincrement_002_matches_the_reference_converter() {
    let Some(base) = common::shared_case("header-edge-cases/sliceincrement") else {
        return;
    };
    let raw = LoadOptions {
        keep_raw_values: true,
        ..Default::default()
    };
    let ct = read(&base.join("002"), &raw).unwrap();
    let truth = spinemesh::io::nifti::read_nifti(&base.join("002_ground_truth.nii.gz"))
        .unwrap()
        .volume;
    eprintln!(
        "ours {:?} {:?}; reference {:?} {:?}",
        ct.volume.grid.dims, ct.volume.grid.spacing, truth.grid.dims, truth.grid.spacing
    );
    // The acquired slices, looked up at their own LPS positions: our volume
    // holds them (random-noise pixels: any misplacement shows at once).
    let mut files: Vec<PathBuf> = std::fs::read_dir(base.join("002"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let (ours, n) = acquired_slices_error(&files, &ct.volume);
    let (theirs, m) = acquired_slices_error(&files, &truth);
    eprintln!("002: mean |acquired − volume| at the acquired positions: ours {ours:.2} HU ({n} samples), dicom2nifti's {theirs:.2} HU ({m} samples)");
    // Not zero: the tilt correction samples each noise slice between pixels.
    assert!(
        n > 10_000 && ours < 50.0 && ours < theirs / 4.0,
        "ours {ours}, reference {theirs}"
    );
}

/// The GE head: 18.5° tilt, steps of 4 and 7 mm. After correction the skull
/// is upright in LPS: the centre of the bone in each 10 mm band of LPS z has
/// a front-back (y) position that does not drift with z the way the shear
/// would make it (tan 18.5° = 0.33 mm per mm). Writes mid-sagittal PNGs
/// (corrected, and the slices stacked without correction) to
/// `target/tilt-check/`.
#[test]
fn real_tilted_head_is_not_sheared_after_correction() {
    let Some(dir) = common::shared_case("ge-tilted-head") else {
        return;
    };
    let ct = read(&dir, &default()).unwrap();
    // The uncorrected stack: each slice read alone, placed along the normal.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let slices: Vec<LoadedCt> = files.iter().map(|f| read(f, &default()).unwrap()).collect();
    let g0 = &slices[0].volume.grid;
    let n = g0.direction[2];
    let d = |p: [f64; 3]| p[0] * n[0] + p[1] * n[1] + p[2] * n[2];
    let span = d(slices[slices.len() - 1].volume.grid.origin) - d(g0.origin);
    let naive = Volume::new(
        Grid {
            dims: [512, 512, slices.len()],
            spacing: [
                g0.spacing[0],
                g0.spacing[1],
                span / (slices.len() - 1) as f64,
            ],
            origin: g0.origin,
            direction: g0.direction,
        },
        slices
            .iter()
            .flat_map(|s| s.volume.data.iter().copied())
            .collect(),
    )
    .unwrap();
    let slope = |v: &Volume<f32>| -> f64 {
        // Bone voxels (> 300 HU) binned by LPS z.
        let mut bins: std::collections::BTreeMap<i64, (f64, f64)> = Default::default();
        let [nx, ny, nz] = v.grid.dims;
        for z in 0..nz {
            for y in (0..ny).step_by(2) {
                for x in (0..nx).step_by(2) {
                    if v.get(x, y, z) > 300.0 {
                        let p = v.grid.index_to_lps([x as f64, y as f64, z as f64]);
                        let b = bins.entry((p[2] / 10.0).floor() as i64).or_default();
                        b.0 += p[1];
                        b.1 += 1.0;
                    }
                }
            }
        }
        let pts: Vec<(f64, f64)> = bins
            .iter()
            .filter(|(_, b)| b.1 > 200.0)
            .map(|(&k, b)| (k as f64 * 10.0, b.0 / b.1))
            .collect();
        let m = pts.len() as f64;
        let (mx, my) = (
            pts.iter().map(|p| p.0).sum::<f64>() / m,
            pts.iter().map(|p| p.1).sum::<f64>() / m,
        );
        let num: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let den: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        num / den
    };
    let (s_corr, s_naive) = (slope(&ct.volume), slope(&naive));
    eprintln!(
        "skull centre dy/dz (LPS, 10 mm bands): corrected {s_corr:.3}, uncorrected {s_naive:.3}"
    );
    // Every acquired slice, looked up at its own LPS positions, is found in
    // the corrected volume; in the uncorrected stack it is displaced.
    let raw = LoadOptions {
        keep_raw_values: true,
        ..Default::default()
    };
    let ct_raw = read(&dir, &raw).unwrap();
    let (e_corr, n) = acquired_slices_error(&files, &ct_raw.volume);
    let (e_naive, m) = acquired_slices_error(&files, &naive);
    eprintln!("GE head: mean |acquired − volume| at the acquired positions: corrected {e_corr:.1} HU ({n} samples), uncorrected {e_naive:.1} HU ({m} samples)");
    assert!(
        e_corr < 40.0 && e_naive > 3.0 * e_corr,
        "corrected {e_corr}, uncorrected {e_naive}"
    );
    // Mid-sagittal images in LPS (y across, z up), 0.5 mm pixels.
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tilt-check");
    std::fs::create_dir_all(&out).unwrap();
    for (name, v) in [("corrected", &ct.volume), ("uncorrected", &naive)] {
        let (w, h) = (560u32, 360u32);
        let img = image::GrayImage::from_fn(w, h, |i, j| {
            let p = [0.0, -140.0 + i as f64 * 0.5, 175.0 - j as f64 * 0.5];
            let Some(q) = v.grid.lps_to_index(p) else {
                return image::Luma([0]);
            };
            let r = q.map(|c| c.round());
            let dims = v.grid.dims;
            if r.iter().zip(dims).any(|(&c, n)| c < 0.0 || c >= n as f64) {
                return image::Luma([0]);
            }
            let hu = v.get(r[0] as usize, r[1] as usize, r[2] as usize);
            image::Luma([((hu + 100.0) / 600.0 * 255.0).clamp(0.0, 255.0) as u8])
        });
        img.save(out.join(format!("ge-head-mid-sagittal-{name}.png")))
            .unwrap();
    }
}
