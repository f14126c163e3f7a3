//! Mutation fuzzing of the DICOM series reader and the NIfTI reader (stable
//! Rust: no `cargo fuzz`). Each execution mutates one seed file, writes it
//! beside two intact slices of the same series (or alone, for NIfTI) and
//! reads the folder under `catch_unwind`. A panic that escapes, or an execution slower than 1 s,
//! is a crash: its input is saved under
//! `target/fuzz-crashes/` and the test fails.
//!
//! ```text
//! FUZZ_ITERS=1000000 FUZZ_SEED=1 cargo test --lib fuzz_ -- --ignored --nocapture
//! FUZZ_SEED=7 FUZZ_ITERS=198031 FUZZ_ONLY=198030 cargo test --lib fuzz_dicom -- --ignored --nocapture
//! ```
//!
//! Seeds: explicit and implicit VR little endian, deflated, RLE lossless,
//! JPEG lossless, enhanced multi-frame CT, a 12-bit JPEG Extended stream fed
//! straight to the own DCT decoder; NIfTI int16 `.nii`, float32 `.nii` and
//! `.nii.gz`.

use super::tests::*;
use super::write::*;
use super::*;
use crate::io::nifti;
use std::time::{Duration, Instant};

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING32: [u32; 10] = [
    0,
    1,
    0x7F,
    0xFF,
    0x7FFF,
    0xFFFF,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFE,
];

/// One random mutation (or a few) of `data`; positions favour the first
/// `hot` bytes (headers), where the parsing happens.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, hot: usize) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        if data.is_empty() {
            data.push(rng.next() as u8);
            continue;
        }
        let span = if rng.below(5) < 4 {
            hot.min(data.len())
        } else {
            data.len()
        };
        let at = rng.below(span);
        match rng.below(9) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = rng.next() as u8,
            2 => data[at] = [0, 0xFF, 0x7F, 0x80, b'\\', b' '][rng.below(6)],
            3 => {
                let v = INTERESTING32[rng.below(INTERESTING32.len())].to_le_bytes();
                let w = if rng.below(2) == 0 { 2 } else { 4 };
                for (k, b) in v.iter().take(w).enumerate() {
                    if let Some(d) = data.get_mut(at + k) {
                        *d = *b;
                    }
                }
            }
            4 => data.truncate(at),
            5 => {
                let n = 1 + rng.below(64);
                data.drain(at..(at + n).min(data.len()));
            }
            6 => {
                let n = 1 + rng.below(64);
                let from = rng.below(data.len());
                let chunk: Vec<u8> = data[from..(from + n).min(data.len())].to_vec();
                data.splice(at..at, chunk);
            }
            7 => {
                // A decimal string value somewhere: write an absurd number.
                let s: &[u8] = [
                    &b"1e308"[..],
                    b"-0",
                    b"nan",
                    b"99999999",
                    b"-3024",
                    b"0.0001",
                ][rng.below(6)];
                for (k, b) in s.iter().enumerate() {
                    if let Some(d) = data.get_mut(at + k) {
                        *d = *b;
                    }
                }
            }
            _ => {
                let n = rng.below(8);
                for _ in 0..n {
                    let i = rng.below(data.len());
                    data[i] = rng.next() as u8;
                }
            }
        }
    }
}

/// Quiet panics while fuzzing (they are counted, not printed).
fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

fn iterations() -> u64 {
    std::env::var("FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn report_every() -> u64 {
    std::env::var("FUZZ_REPORT_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn crash_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A DICOM seed: three files of one series (the first is mutated).
fn dicom_seeds() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout {
        slope: 1.0,
        intercept: -1024.0,
        ..SIGNED16
    };
    let slices: Vec<Vec<i16>> = (0..3).map(samples16).collect();
    let mut seeds = Vec::new();
    let mut add = |name: &'static str, ts: &str, explicit: bool, px: &dyn Fn(usize) -> Vec<u8>| {
        let files = (0..3)
            .map(|k| {
                let f = format!("{name}{k}");
                write_file(tmp.path(), &f, ts, k, &test_dataset(explicit, k, l), &px(k));
                std::fs::read(tmp.path().join(&f)).unwrap()
            })
            .collect();
        seeds.push((name, files));
    };
    let raw = |k: usize| -> Vec<u8> { slices[k].iter().flat_map(|v| v.to_le_bytes()).collect() };
    let stored = |k: usize| -> Vec<u16> { slices[k].iter().map(|&v| v as u16).collect() };
    add("explicit", EXPLICIT_VR_LE, true, &|k| {
        native_pixels(true, &raw(k))
    });
    add("implicit", "1.2.840.10008.1.2", false, &|k| {
        native_pixels(false, &raw(k))
    });
    add("deflate", "1.2.840.10008.1.2.1.99", true, &|k| {
        native_pixels(true, &raw(k))
    });
    add("rle", "1.2.840.10008.1.2.5", true, &|k| {
        encapsulated(&rle_frame(&stored(k)))
    });
    add("jpegll", "1.2.840.10008.1.2.4.70", true, &|k| {
        encapsulated(&jpeg_lossless(&stored(k)))
    });
    // Enhanced multi-frame: one file of three frames (mutated alone).
    let pos: Vec<[f64; 3]> = (0..3).map(|k| [-5.0, 7.0, 2.0 * k as f64]).collect();
    let bytes: Vec<u8> = (0..3).flat_map(raw).collect();
    write_file(
        tmp.path(),
        "enh",
        EXPLICIT_VR_LE,
        0,
        &enhanced_dataset(&pos, &[(1.0, -1024.0); 3]),
        &native_pixels(true, &bytes),
    );
    seeds.push((
        "enhanced",
        vec![std::fs::read(tmp.path().join("enh")).unwrap()],
    ));
    seeds
}

#[derive(Default)]
struct Tally {
    execs: u64,
    ok: u64,
    errors: u64,
    crashes: u64,
    /// Panics inside the parsing/decoding libraries that the readers' safety
    /// net turned into clean errors (saved, not failing the run).
    caught: u64,
    slowest: Duration,
}

impl Tally {
    fn report(&self, what: &str, start: Instant) {
        eprintln!(
            "fuzz {what}: {} executions ({} read, {} clean errors), {} crashes, {} library panics caught by the safety net, {:.1} s, slowest execution {:.1} ms",
            self.execs,
            self.ok,
            self.errors,
            self.crashes,
            self.caught,
            start.elapsed().as_secs_f64(),
            self.slowest.as_secs_f64() * 1e3
        );
    }
}

fn save_crash(name: &str, bytes: &[u8]) {
    let p = crash_dir().join(name);
    std::fs::write(&p, bytes).unwrap();
    eprintln!("CRASH saved to {}", p.display());
}

#[test]
#[ignore]
fn fuzz_dicom_series() {
    quiet_panics();
    let seeds = dicom_seeds();
    let jpeg12 = jpeg12_blocks(&[0, 4095, 2048, 1000, 3000, 17]);
    let tmp = tempfile::tempdir().unwrap();
    // One folder per seed with the intact slices 1 and 2.
    for (name, files) in &seeds {
        let d = tmp.path().join(name);
        std::fs::create_dir(&d).unwrap();
        for (k, f) in files.iter().enumerate().skip(1) {
            std::fs::write(d.join(format!("s{k}")), f).unwrap();
        }
    }
    let (iters, seed) = (iterations(), seed());
    let mut rng = Rng(seed);
    let mut t = Tally::default();
    let start = Instant::now();
    let opts = LoadOptions::default();
    // FUZZ_ONLY=N replays execution N of this seed alone (and saves its input).
    let only: Option<u64> = std::env::var("FUZZ_ONLY").ok().and_then(|v| v.parse().ok());
    for i in 0..iters {
        let t0 = Instant::now();
        let before = SAFETY_NET_PANICS.load(Ordering::Relaxed);
        let (label, input, result) = if i % 8 == 7 {
            let mut s = jpeg12.clone();
            mutate(&mut rng, &mut s, 200);
            if only.is_some_and(|o| o != i) {
                continue;
            }
            let r = std::panic::catch_unwind(|| jpeg_dct::decode(&s, 24 * 16).is_ok());
            ("jpeg12", s, r)
        } else {
            let (name, files) = &seeds[rng.below(seeds.len())];
            let mut m = files[0].clone();
            mutate(&mut rng, &mut m, 900);
            if only.is_some_and(|o| o != i) {
                continue; // replaying one execution: only advance the generator
            }
            let d = tmp.path().join(name);
            std::fs::write(d.join("s0"), &m).unwrap();
            let r = std::panic::catch_unwind(|| {
                let a = read_series_with(&d, &opts, &|_, _| {}).is_ok();
                let _ = inspect(&d, &opts);
                a
            });
            (*name, m, r)
        };
        let dt = t0.elapsed();
        t.slowest = t.slowest.max(dt);
        t.execs += 1;
        let caught = SAFETY_NET_PANICS.load(Ordering::Relaxed) > before;
        match result {
            Ok(_) if caught => {
                t.caught += 1;
                if t.caught <= 10 {
                    save_crash(&format!("dicom-{label}-seed{seed}-{i}-caught.dcm"), &input);
                }
            }
            Ok(true) => t.ok += 1,
            Ok(false) => t.errors += 1,
            Err(_) => {
                t.crashes += 1;
                save_crash(&format!("dicom-{label}-seed{seed}-{i}.dcm"), &input);
            }
        }
        if only.is_some() {
            save_crash(&format!("dicom-{label}-seed{seed}-{i}-replay.dcm"), &input);
        }
        if dt > Duration::from_secs(1) {
            t.crashes += 1;
            save_crash(&format!("dicom-{label}-seed{seed}-{i}-slow.dcm"), &input);
        }
        if (i + 1) % report_every() == 0 {
            t.report("DICOM (progress)", start);
        }
    }
    t.report("DICOM", start);
    assert_eq!(t.crashes, 0, "crashes were saved under target/fuzz-crashes");
}

#[test]
#[ignore]
fn fuzz_nifti() {
    quiet_panics();
    let tmp = tempfile::tempdir().unwrap();
    let grid = Grid {
        dims: [6, 5, 4],
        spacing: [0.8, 0.9, 2.5],
        origin: [1.0, -2.0, 3.0],
        direction: [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]],
    };
    let data = (0..grid.len())
        .map(|i| (i as f32 * 37.0) % 3000.0 - 1024.0)
        .collect();
    let v = Volume::new(grid, data).unwrap();
    let mut seeds: Vec<(&str, Vec<u8>)> = Vec::new();
    for name in ["a.nii", "a.nii.gz"] {
        let p = tmp.path().join(name);
        nifti::write_volume_i16(&p, &v).unwrap();
        seeds.push((name, std::fs::read(&p).unwrap()));
    }
    // float32 with scaling: datatype 16, bitpix 32, scl_slope 2.
    let mut f = seeds[0].1[..352].to_vec();
    f[70..72].copy_from_slice(&16i16.to_le_bytes());
    f[72..74].copy_from_slice(&32i16.to_le_bytes());
    f[112..116].copy_from_slice(&2f32.to_le_bytes());
    for k in 0..v.data.len() {
        f.extend((k as f32 * 0.5).to_le_bytes());
    }
    seeds.push(("f.nii", f));
    let (iters, seed) = (iterations(), seed());
    let mut rng = Rng(seed ^ 0xA5A5);
    let mut t = Tally::default();
    let start = Instant::now();
    for i in 0..iters {
        let (name, bytes) = &seeds[rng.below(seeds.len())];
        let mut m = bytes.clone();
        let gz = name.ends_with(".gz");
        if gz && rng.below(2) == 0 {
            // Mutate the decompressed stream, then compress again (reaches the parser).
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(&m[..])
                .read_to_end(&mut raw)
                .unwrap();
            mutate(&mut rng, &mut raw, 352);
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut z, &raw).unwrap();
            m = z.finish().unwrap();
        } else {
            mutate(&mut rng, &mut m, 352);
        }
        let p = tmp.path().join(format!("m-{name}"));
        std::fs::write(&p, &m).unwrap();
        let t0 = Instant::now();
        let r = std::panic::catch_unwind(|| {
            let a = nifti::read_ct(&p).is_ok();
            let _ = nifti::read_nifti(&p);
            a
        });
        let dt = t0.elapsed();
        t.slowest = t.slowest.max(dt);
        t.execs += 1;
        match r {
            Ok(true) => t.ok += 1,
            Ok(false) => t.errors += 1,
            Err(_) => {
                t.crashes += 1;
                save_crash(&format!("nifti-seed{seed}-{i}-{name}"), &m);
            }
        }
        if dt > Duration::from_secs(1) {
            t.crashes += 1;
            save_crash(&format!("nifti-seed{seed}-{i}-slow-{name}"), &m);
        }
        if (i + 1) % report_every() == 0 {
            t.report("NIfTI (progress)", start);
        }
    }
    t.report("NIfTI", start);
    assert_eq!(t.crashes, 0, "crashes were saved under target/fuzz-crashes");
}

// ---------------------------------------------------------------------------
// Regressions: every crash the fuzzer found, as a test that runs by default.
// ---------------------------------------------------------------------------

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz-regressions")
}

/// Files the fuzzer found (allocations of gigabytes from a claimed length, a
/// panic in the RLE decoder, a JPEG frame of 65534×65535): each gives a clean
/// error, without a panic or a hang.
#[test]
fn fuzz_regressions_give_clean_errors_fast() {
    let mut n = 0;
    for entry in std::fs::read_dir(regressions_dir()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let t = Instant::now();
        if path.extension().is_some_and(|e| e == "jpg") {
            assert!(
                jpeg_dct::decode(&bytes, 24 * 16).is_err(),
                "{}",
                path.display()
            );
        } else {
            let tmp = tempfile::tempdir().unwrap();
            std::fs::write(tmp.path().join("x.dcm"), &bytes).unwrap();
            let r = std::panic::catch_unwind(|| read_series(tmp.path(), &|_, _| {}));
            let r = r.unwrap_or_else(|_| panic!("{} panicked", path.display()));
            assert!(r.is_err(), "{}", path.display());
        }
        // A hang guard, not a speed measurement: the originals allocated
        // gigabytes or looped; a clean error comes back in milliseconds.
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{} hangs",
            path.display()
        );
        n += 1;
    }
    assert!(n >= 5);
}

/// An item delimiter whose tag was damaged reads, for a parser, as an element
/// of unknown VR with a 4-byte length taken from the next bytes (3.7 GB):
/// the structure check refuses it before any parser allocates.
#[test]
fn damaged_tag_with_unknown_vr_is_refused_before_parsing() {
    let tmp = tempfile::tempdir().unwrap();
    let pos: Vec<[f64; 3]> = (0..2).map(|k| [0.0, 0.0, k as f64]).collect();
    let mut ds = enhanced_dataset(&pos, &[(1.0, 0.0); 2]);
    let at = ds
        .windows(4)
        .position(|w| w == [0xFE, 0xFF, 0x0D, 0xE0])
        .unwrap();
    ds[at + 1] = 0x93;
    write_file(
        tmp.path(),
        "a",
        EXPLICIT_VR_LE,
        0,
        &ds,
        &native_pixels(true, &vec![0u8; 2 * NPIX * 2]),
    );
    match scan(&tmp.path().join("a")) {
        Scanned::Unreadable(_, e) => assert!(e.contains("damaged"), "{e}"),
        _ => panic!("the damaged file was accepted"),
    }
}

/// NIfTI headers that declare far more voxels than the file holds.
#[test]
fn nifti_huge_declared_sizes_fail_without_allocating() {
    let tmp = tempfile::tempdir().unwrap();
    let grid = Grid::new([4, 4, 2], [1.0; 3], [0.0; 3]);
    let v = Volume::new(grid, vec![0.0; 32]).unwrap();
    for name in ["a.nii", "a.nii.gz"] {
        let p = tmp.path().join(name);
        nifti::write_volume_i16(&p, &v).unwrap();
        let mut raw = std::fs::read(&p).unwrap();
        if name.ends_with(".gz") {
            let mut d = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut d)
                .unwrap();
            raw = d;
        }
        // dim[1..3] = 30000 × 30000 × 30000 (27e12 voxels) → and 3000³.
        for (k, d) in [3000i16, 3000, 3000].iter().enumerate() {
            raw[42 + 2 * k..44 + 2 * k].copy_from_slice(&d.to_le_bytes());
        }
        if name.ends_with(".gz") {
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut z, &raw).unwrap();
            raw = z.finish().unwrap();
        }
        std::fs::write(&p, &raw).unwrap();
        let t = Instant::now();
        let e = nifti::read_ct(&p).err().unwrap().to_string();
        assert!(e.contains("truncated"), "{name}: {e}");
        assert!(t.elapsed() < Duration::from_secs(1), "{name}");
    }
}

/// Broken JPEG 2000 codestreams: mutations of a real JPEG 2000 slice
/// (`../shared/data/totalseg-jpeg2000-slab`), decoded alone. Slower per
/// execution (512 × 512), so fewer: `FUZZ_ITERS` (default 2000).
#[test]
#[ignore]
fn fuzz_jpeg2000_real_slice() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/totalseg-jpeg2000-slab/dicom");
    let Some(first) = std::fs::read_dir(&dir)
        .ok()
        .and_then(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).min())
    else {
        eprintln!("SKIPPED: {} not found", dir.display());
        return;
    };
    quiet_panics();
    let bytes = std::fs::read(&first).unwrap();
    let pixel_at = bytes
        .windows(4)
        .position(|w| w == [0xE0, 0x7F, 0x10, 0x00])
        .unwrap();
    let (iters, seed) = (iterations().min(1_000_000), seed());
    let mut rng = Rng(seed ^ 0x2000);
    let mut t = Tally::default();
    let tmp = tempfile::tempdir().unwrap();
    let start = Instant::now();
    for i in 0..iters {
        // Mutate the codestream only (the header stays valid), mostly its
        // main header (the first 200 bytes after the pixel data element).
        let mut code = bytes[pixel_at..].to_vec();
        mutate(&mut rng, &mut code, 260);
        let mut m = bytes[..pixel_at].to_vec();
        m.extend(code);
        let p = tmp.path().join("j2k.dcm");
        std::fs::write(&p, &m).unwrap();
        let before = SAFETY_NET_PANICS.load(Ordering::Relaxed);
        let t0 = Instant::now();
        let r = std::panic::catch_unwind(|| read_series(tmp.path(), &|_, _| {}).is_ok());
        let dt = t0.elapsed();
        t.slowest = t.slowest.max(dt);
        t.execs += 1;
        let caught = SAFETY_NET_PANICS.load(Ordering::Relaxed) > before;
        match r {
            Ok(_) if caught => t.caught += 1,
            Ok(true) => t.ok += 1,
            Ok(false) => t.errors += 1,
            Err(_) => {
                t.crashes += 1;
                save_crash(&format!("j2k-seed{seed}-{i}.dcm"), &m);
            }
        }
        if dt > Duration::from_secs(5) {
            t.crashes += 1;
            save_crash(&format!("j2k-seed{seed}-{i}-slow.dcm"), &m);
        }
    }
    t.report("JPEG 2000 (real slice)", start);
    assert_eq!(t.crashes, 0, "crashes were saved under target/fuzz-crashes");
}

/// The fuzzer's damaged JPEG 2000 slice (a real slice, not kept here): its SIZ
/// segment declared a 2753024 × 512 image and the decoder allocated 5.6 GB
/// before it panicked. The main header is now checked against the DICOM header.
#[test]
fn jpeg2000_siz_is_checked_against_the_image_size() {
    let siz = |xsiz: u32, ysiz: u32, tiles: u32, comps: u16| -> Vec<u8> {
        let mut b = vec![0xFF, 0x4F, 0xFF, 0x51, 0, 41, 0, 0];
        for v in [xsiz, ysiz, 0, 0, tiles, tiles, 0, 0] {
            b.extend(v.to_be_bytes());
        }
        b.extend(comps.to_be_bytes());
        b.extend([15, 1, 1]);
        b
    };
    assert!(decode::check_j2k_header(&siz(512, 512, 512, 1), 512, 512).is_ok());
    let e = decode::check_j2k_header(&siz(2_753_024, 512, 512, 1), 512, 512).unwrap_err();
    assert!(e.contains("2753024×512"), "{e}");
    assert!(decode::check_j2k_header(&siz(512, 512, 1, 1), 512, 512)
        .unwrap_err()
        .contains("tiles"));
    assert!(decode::check_j2k_header(&siz(512, 512, 512, 3), 512, 512).is_err());
    assert!(decode::check_j2k_header(&siz(512, 512, 512, 1)[..20], 512, 512).is_err());
    assert!(decode::check_j2k_header(b"not a codestream", 512, 512).is_err());
}
