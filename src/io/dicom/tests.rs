//! Unit tests of the DICOM reader and writer (private functions).

use super::write::*;
use super::*;
use std::io::Write;

pub(crate) fn no_progress(_: usize, _: usize) {}

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

fn skip(reason: &str) {
    assert!(!in_ci(), "CI=true but {reason}");
    eprintln!("SKIPPED: {reason}");
}

#[test]
fn decimal_strings_fit_16_characters_and_keep_precision() {
    for v in [
        0.0,
        -0.0,
        1.0,
        -1024.0,
        0.976_562_5,
        0.866_025_403_784_438_6,
        -0.866_025_403_784_438_6,
        6.123_233_995_736_766e-17,
        -123_456.789_012_345_67,
        1e-7,
        -3.3e-12,
        12_345_678_901_234_567.0,
    ] {
        let s = ds(v);
        assert!(s.len() <= 16, "{v} → {s}");
        let back: f64 = s.parse().unwrap();
        assert!((back - v).abs() <= 1e-9 * v.abs().max(1e-3), "{v} → {s}");
    }
    assert_eq!(ds(2.5), "2.5");
    assert_eq!(ds(-0.0), "0");
    assert_eq!(ds_multi(&[1.0, 0.0, -0.5]), "1\\0\\-0.5");
}

#[test]
fn uids_are_valid_and_deterministic() {
    let h = Hash128::new(5);
    let u = h.uid(4, 17);
    assert!(u.starts_with("2.25.") && u.len() <= 64, "{u}");
    assert!(u[5..].bytes().all(|b| b.is_ascii_digit()) && !u[5..].starts_with('0'));
    assert_eq!(u, Hash128::new(5).uid(4, 17));
    assert_ne!(u, h.uid(4, 18));
    assert_ne!(u, Hash128::new(6).uid(4, 17));
    let p = permutation(50, 3);
    let mut q = p.clone();
    q.sort();
    assert_eq!(q, (0..50).collect::<Vec<_>>());
    assert_ne!(p, q);
}

#[test]
fn stored_values_are_masked_sign_extended_and_rescaled() {
    let mut out = [0f32; 3];
    // 12 bits stored in 16, unsigned, garbage in the top 4 bits.
    let raw: Vec<u8> = [0xF000u16 | 4095, 0x3000, 0x7000 | 1024]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    samples_to_hu(&raw, 16, 12, false, (1.0, -1024.0), &mut out).unwrap();
    assert_eq!(out, [3071.0, -1024.0, 0.0]);
    // Same bits, signed: 4095 → -1, 1024 stays.
    samples_to_hu(&raw, 16, 12, true, (1.0, 0.0), &mut out).unwrap();
    assert_eq!(out, [-1.0, 0.0, 1024.0]);
    // 16-bit signed, fractional rescale.
    let raw: Vec<u8> = [-2000i16, 0, 3000]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    samples_to_hu(&raw, 16, 16, true, (0.5, -10.25), &mut out).unwrap();
    assert_eq!(out, [-1010.25, -10.25, 1489.75]);
    // 8 and 32 bits.
    samples_to_hu(&[0, 128, 255], 8, 8, true, (1.0, 0.0), &mut out).unwrap();
    assert_eq!(out, [0.0, -128.0, -1.0]);
    let raw: Vec<u8> = [-70000i32, 5, 100000]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    samples_to_hu(&raw, 32, 32, true, (1.0, 0.0), &mut out).unwrap();
    assert_eq!(out, [-70000.0, 5.0, 100000.0]);
    // Too few bytes or odd sizes: errors, no panic.
    assert!(samples_to_hu(&[0; 5], 16, 16, true, (1.0, 0.0), &mut out).is_err());
    assert!(samples_to_hu(&[0; 12], 12, 12, true, (1.0, 0.0), &mut out).is_err());
}

// --- Test files in other encodings -----------------------------------

pub(crate) const ROWS: usize = 16;
pub(crate) const COLS: usize = 20;
pub(crate) const NPIX: usize = ROWS * COLS;

/// How stored samples are laid out in a test slice.
#[derive(Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) bits_allocated: u16,
    pub(crate) bits_stored: u16,
    pub(crate) signed: bool,
    pub(crate) slope: f64,
    pub(crate) intercept: f64,
}

pub(crate) const SIGNED16: Layout = Layout {
    bits_allocated: 16,
    bits_stored: 16,
    signed: true,
    slope: 1.0,
    intercept: 0.0,
};

/// A minimal CT data set (explicit or implicit VR), without pixel data.
pub(crate) fn test_dataset(explicit: bool, k: usize, l: Layout) -> Vec<u8> {
    let mut e = Encoder::new(explicit, 1024);
    e.text(0x0008_0016, *b"UI", CT_IMAGE_STORAGE);
    e.text(0x0008_0018, *b"UI", &format!("2.25.{}", 1000 + k));
    e.text(0x0008_0060, *b"CS", "CT");
    e.text(0x0020_000E, *b"UI", "2.25.42");
    e.text(0x0020_0013, *b"IS", &(k + 1).to_string());
    e.text(0x0020_0032, *b"DS", &ds_multi(&[-5.0, 7.0, 2.0 * k as f64]));
    e.text(0x0020_0037, *b"DS", "1\\0\\0\\0\\1\\0");
    e.us(0x0028_0002, 1);
    e.text(0x0028_0004, *b"CS", "MONOCHROME2");
    e.us(0x0028_0010, ROWS as u16);
    e.us(0x0028_0011, COLS as u16);
    e.text(0x0028_0030, *b"DS", "0.5\\0.75");
    e.us(0x0028_0100, l.bits_allocated);
    e.us(0x0028_0101, l.bits_stored);
    e.us(0x0028_0102, l.bits_stored - 1);
    e.us(0x0028_0103, u16::from(l.signed));
    e.text(0x0028_1052, *b"DS", &ds(l.intercept));
    e.text(0x0028_1053, *b"DS", &ds(l.slope));
    e.buf
}

/// Native pixel data element.
pub(crate) fn native_pixels(explicit: bool, bytes: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new(explicit, bytes.len() + 12);
    e.put(0x7FE0_0010, *b"OW", bytes);
    e.buf
}

/// Encapsulated pixel data element: empty offset table, one fragment.
pub(crate) fn encapsulated(frame: &[u8]) -> Vec<u8> {
    let mut b = vec![
        0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    b.extend([0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
    let len = frame.len() + frame.len() % 2;
    b.extend([0xFE, 0xFF, 0x00, 0xE0]);
    b.extend((len as u32).to_le_bytes());
    b.extend(frame);
    if frame.len() % 2 == 1 {
        b.push(0);
    }
    b.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    b
}

/// PackBits for one row into `out`.
pub(crate) fn packbits(b: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < b.len() {
        let mut run = 1;
        while i + run < b.len() && b[i + run] == b[i] && run < 128 {
            run += 1;
        }
        if run >= 3 {
            out.push((257 - run) as u8);
            out.push(b[i]);
            i += run;
            continue;
        }
        let start = i;
        while i < b.len()
            && i - start < 128
            && !(i + 2 < b.len() && b[i] == b[i + 1] && b[i] == b[i + 2])
        {
            i += 1;
        }
        out.push((i - start - 1) as u8);
        out.extend_from_slice(&b[start..i]);
    }
}

/// RLE Lossless frame of 16-bit samples (high-byte segment first).
pub(crate) fn rle_frame(samples: &[u16]) -> Vec<u8> {
    let mut segments = Vec::new();
    for shift in [8, 0] {
        let mut seg = Vec::new();
        for row in samples.chunks(COLS) {
            let bytes: Vec<u8> = row.iter().map(|v| (v >> shift) as u8).collect();
            packbits(&bytes, &mut seg);
        }
        if seg.len() % 2 == 1 {
            seg.push(0);
        }
        segments.push(seg);
    }
    let mut header = [0u32; 16];
    header[0] = 2;
    header[1] = 64;
    header[2] = 64 + segments[0].len() as u32;
    let mut out: Vec<u8> = header.iter().flat_map(|v| v.to_le_bytes()).collect();
    for s in segments {
        out.extend(s);
    }
    out
}

/// Bits written MSB first with JPEG byte stuffing.
pub(crate) struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, bits: u32, len: u32) {
        for i in (0..len).rev() {
            self.acc = (self.acc << 1) | ((bits >> i) & 1);
            self.n += 1;
            if self.n == 8 {
                let byte = self.acc as u8;
                self.out.push(byte);
                if byte == 0xFF {
                    self.out.push(0);
                }
                self.acc = 0;
                self.n = 0;
            }
        }
    }
    fn finish(mut self) -> Vec<u8> {
        while self.n != 0 {
            self.put(1, 1);
        }
        self.out
    }
}

/// JPEG lossless (process 14, predictor 1) of 16-bit samples, one
/// Huffman table with all 17 difference categories coded in 5 bits.
pub(crate) fn jpeg_lossless(samples: &[u16]) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xC3, 0, 11, 16];
    out.extend((ROWS as u16).to_be_bytes());
    out.extend((COLS as u16).to_be_bytes());
    out.extend([1, 1, 0x11, 0]);
    let mut bits = [0u8; 16];
    bits[4] = 17;
    out.extend([0xFF, 0xC4, 0, 36, 0x00]);
    out.extend(bits);
    out.extend(0..=16u8);
    out.extend([0xFF, 0xDA, 0, 8, 1, 1, 0x00, 1, 0, 0]);
    let mut w = BitWriter { out, acc: 0, n: 0 };
    for y in 0..ROWS {
        for x in 0..COLS {
            let at = |x: usize, y: usize| i32::from(samples[y * COLS + x]);
            let pred = match (x, y) {
                (0, 0) => 1 << 15,
                (_, 0) => at(x - 1, 0),
                (0, _) => at(0, y - 1),
                _ => at(x - 1, y),
            };
            let mut d = (at(x, y) - pred) & 0xFFFF;
            if d >= 0x8000 {
                d -= 0x10000;
            }
            let ssss = 32 - d.unsigned_abs().leading_zeros();
            w.put(ssss, 5);
            if ssss > 0 && ssss < 16 {
                let extra = if d < 0 { (d - 1) as u32 } else { d as u32 };
                w.put(extra & ((1 << ssss) - 1), ssss);
            }
        }
    }
    let mut out = w.finish();
    out.extend([0xFF, 0xD9]);
    out
}

/// Stored 16-bit samples of test slice `k` (wide range, some runs).
pub(crate) fn samples16(k: usize) -> Vec<i16> {
    (0..NPIX)
        .map(|i| {
            if i % 7 < 3 {
                -1024
            } else {
                ((i * 7919 + k * 104_729) % 6000) as i16 - 2000
            }
        })
        .collect()
}

pub(crate) fn write_file(
    dir: &Path,
    name: &str,
    ts: &str,
    k: usize,
    dataset: &[u8],
    pixels: &[u8],
) {
    let mut bytes = file_meta(CT_IMAGE_STORAGE, &format!("2.25.{}", 1000 + k), ts);
    if ts == "1.2.840.10008.1.2.1.99" {
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(dataset).unwrap();
        z.write_all(pixels).unwrap();
        bytes.extend(z.finish().unwrap());
    } else {
        bytes.extend_from_slice(dataset);
        bytes.extend_from_slice(pixels);
    }
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// Reads with values kept as stored (no padding or outside-field clean-up).
fn read_dir(dir: &Path) -> LoadedCt {
    let raw = LoadOptions {
        keep_raw_values: true,
        ..Default::default()
    };
    read_series_with(dir, &raw, &no_progress).unwrap()
}

fn expected16(l: Layout, slices: &[Vec<i16>]) -> Vec<f32> {
    slices
        .iter()
        .flatten()
        .map(|&v| (f64::from(v) * l.slope + l.intercept) as f32)
        .collect()
}

fn check_volume(ct: &LoadedCt, ts: &str) {
    let g = &ct.volume.grid;
    assert_eq!(g.dims, [COLS, ROWS, 3]);
    assert_eq!(g.spacing, [0.75, 0.5, 2.0]);
    assert_eq!(g.origin, [-5.0, 7.0, 0.0]);
    assert!(ct.info.transfer_syntax.as_deref().unwrap().starts_with(ts));
    assert!(ct.info.warnings.is_empty(), "{:?}", ct.info.warnings);
}

#[test]
fn reads_implicit_explicit_and_deflated_little_endian() {
    let l = Layout {
        slope: 0.5,
        intercept: -10.25,
        ..SIGNED16
    };
    let slices: Vec<Vec<i16>> = (0..3).map(samples16).collect();
    for (ts, explicit) in [
        ("1.2.840.10008.1.2", false),
        ("1.2.840.10008.1.2.1", true),
        ("1.2.840.10008.1.2.1.99", true),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        for (k, s) in slices.iter().enumerate() {
            let bytes: Vec<u8> = s.iter().flat_map(|v| v.to_le_bytes()).collect();
            let ds = test_dataset(explicit, k, l);
            write_file(
                tmp.path(),
                &format!("s{k}"),
                ts,
                k,
                &ds,
                &native_pixels(explicit, &bytes),
            );
        }
        let ct = read_dir(tmp.path());
        check_volume(&ct, ts);
        assert_eq!(ct.volume.data, expected16(l, &slices), "{ts}");
    }
}

#[test]
fn fast_native_path_equals_full_parse_and_falls_back_on_other_layouts() {
    let l = Layout {
        bits_stored: 12,
        signed: false,
        intercept: -1024.0,
        ..SIGNED16
    };
    let tmp = tempfile::tempdir().unwrap();
    let stored: Vec<u16> = (0..NPIX)
        .map(|i| ((i * 37) % 4096) as u16 | 0xA000)
        .collect();
    let bytes: Vec<u8> = stored.iter().flat_map(|v| v.to_le_bytes()).collect();
    for (k, explicit) in [(0, false), (1, true)] {
        let ts = if explicit {
            EXPLICIT_VR_LE
        } else {
            "1.2.840.10008.1.2"
        };
        let ds = test_dataset(explicit, k, l);
        write_file(
            tmp.path(),
            &format!("s{k}"),
            ts,
            k,
            &ds,
            &native_pixels(explicit, &bytes),
        );
    }
    // Slice 2 has an element after its pixel data: the fast path must not apply.
    let mut px = native_pixels(true, &bytes);
    px.extend([
        0xFC, 0xFF, 0xFC, 0xFF, b'O', b'B', 0, 0, 4, 0, 0, 0, 1, 2, 3, 4,
    ]);
    write_file(
        tmp.path(),
        "s2",
        EXPLICIT_VR_LE,
        2,
        &test_dataset(true, 2, l),
        &px,
    );
    let expected: Vec<f32> = stored
        .iter()
        .map(|&v| f32::from(v & 0x0FFF) - 1024.0)
        .collect();
    for k in 0..3 {
        let path = tmp.path().join(format!("s{k}"));
        let Scanned::Header(h) = scan(&path) else {
            panic!("not read")
        };
        let h = &h[0];
        let (mut fast, mut full) = (vec![0f32; NPIX], vec![0f32; NPIX]);
        assert_eq!(read_native_tail(h, &mut fast).unwrap(), k < 2);
        decode_parsed(h, &mut full).unwrap();
        assert_eq!(full, expected);
        if k < 2 {
            assert_eq!(fast, expected);
        }
    }
    let ct = read_dir(tmp.path());
    assert_eq!(
        ct.volume.data,
        [&expected[..], &expected, &expected].concat()
    );
}

#[test]
fn reads_rle_and_jpeg_lossless() {
    let l = Layout {
        intercept: -1024.0,
        ..SIGNED16
    };
    let slices: Vec<Vec<i16>> = (0..3).map(samples16).collect();
    for ts in [
        "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.57",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        for (k, s) in slices.iter().enumerate() {
            let stored: Vec<u16> = s.iter().map(|&v| v as u16).collect();
            let frame = if ts.ends_with(".5") {
                rle_frame(&stored)
            } else {
                jpeg_lossless(&stored)
            };
            let ds = test_dataset(true, k, l);
            write_file(
                tmp.path(),
                &format!("s{k}.dcm"),
                ts,
                k,
                &ds,
                &encapsulated(&frame),
            );
        }
        let ct = read_dir(tmp.path());
        check_volume(&ct, ts);
        assert_eq!(ct.volume.data, expected16(l, &slices), "{ts}");
    }
}

#[test]
fn reads_jpeg_baseline_within_lossy_tolerance() {
    use dicom_pixeldata::Transcode;
    let l = Layout {
        bits_allocated: 8,
        bits_stored: 8,
        signed: false,
        slope: 4.0,
        intercept: -1024.0,
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    for k in 0..3 {
        // A smooth 8-bit image: baseline JPEG keeps it close.
        let stored: Vec<u8> = (0..NPIX)
            .map(|i| (40 + (i % COLS) * 6 + (i / COLS) * 3 + k * 10) as u8)
            .collect();
        expected.extend(stored.iter().map(|&v| f32::from(v) * 4.0 - 1024.0));
        let path = tmp.path().join(format!("s{k}"));
        write_file(
            tmp.path(),
            &format!("s{k}"),
            EXPLICIT_VR_LE,
            k,
            &test_dataset(true, k, l),
            &native_pixels(true, &stored),
        );
        let mut obj = dicom_object::open_file(&path).unwrap();
        obj.transcode(&dicom_transfer_syntax_registry::entries::JPEG_BASELINE.erased())
            .unwrap();
        obj.write_to_file(&path).unwrap();
    }
    let ct = read_dir(tmp.path());
    check_volume(&ct, "1.2.840.10008.1.2.4.50");
    // Our own DCT decoder (used for 12-bit) agrees with jpeg-decoder on these.
    for k in 0..3 {
        let obj = dicom_object::open_file(tmp.path().join(format!("s{k}"))).unwrap();
        let value = obj.get(tags::PIXEL_DATA).unwrap().value();
        let DicomValue::PixelSequence(seq) = value else {
            panic!("not encapsulated")
        };
        let stream: Vec<u8> = seq.fragments().iter().flatten().copied().collect();
        let (w, h, ours) = jpeg_dct::decode(&stream, NPIX).unwrap();
        assert_eq!((w as usize, h as usize), (COLS, ROWS));
        let theirs = &ct.volume.data[k * NPIX..(k + 1) * NPIX];
        for (a, b) in ours.iter().zip(theirs) {
            assert!(
                (f32::from(*a) * 4.0 - 1024.0 - b).abs() <= 4.0,
                "{a} vs {b}"
            );
        }
    }
    let worst = ct
        .volume
        .data
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst <= 4.0 * 6.0, "JPEG baseline off by {worst} HU");
}

#[test]
fn reads_monochrome1_and_refuses_short_multiframe() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = vec![0u8; NPIX * 2];
    for (k, (tag, vr, value)) in [
        (0x0028_0004u32, *b"CS", "MONOCHROME1"),
        (0x0028_0008, *b"IS", "2"),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tmp.path().join(k.to_string());
        std::fs::create_dir(&dir).unwrap();
        // Rebuild the data set with one element replaced or added.
        let mut ds = test_dataset(true, 0, SIGNED16);
        if tag == 0x0028_0004 {
            let at = ds.windows(11).position(|w| w == b"MONOCHROME2").unwrap();
            ds[at + 10] = b'1';
        } else {
            let mut e = Encoder::new(true, 16);
            e.text(tag, vr, value);
            // (0028,0008) sorts before Rows (0028,0010).
            let at = ds.windows(4).position(|w| w == [0x28, 0, 0x10, 0]).unwrap();
            ds.splice(at..at, e.buf);
        }
        write_file(
            &dir,
            "a",
            EXPLICIT_VR_LE,
            0,
            &ds,
            &native_pixels(true, &bytes),
        );
        if k == 0 {
            // MONOCHROME1 inverts the display only: HU come from the rescale.
            let ct = read_series(&dir, &no_progress).unwrap();
            assert!(ct.volume.data.iter().all(|&v| v == 0.0));
            assert!(ct.info.notes.iter().any(|n| n.contains("MONOCHROME1")));
        } else {
            // Two frames claimed, one frame of pixel data: a clear error.
            let e = read_series(&dir, &no_progress).err().unwrap().to_string();
            assert!(e.contains("cannot read the slice's pixels"), "{e}");
        }
    }
}

/// A 12-bit JPEG Extended stream of blocks with constant values (DC
/// only, quantiser 8, so each block decodes exactly to its value), with
/// a restart marker every 2 blocks. Image 24×16 (3×2 blocks).
pub(crate) fn jpeg12_blocks(values: &[u16; 6]) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    out.extend([0xFF, 0xDB, 0, 131, 0x10]);
    for _ in 0..64 {
        out.extend(8u16.to_be_bytes());
    }
    out.extend([0xFF, 0xC1, 0, 11, 12, 0, 16, 0, 24, 1, 1, 0x11, 0]);
    let mut dc_counts = [0u8; 16];
    dc_counts[3] = 13;
    out.extend([0xFF, 0xC4, 0, 32, 0x00]);
    out.extend(dc_counts);
    out.extend(0..=12u8);
    let mut ac_counts = [0u8; 16];
    ac_counts[0] = 1;
    out.extend([0xFF, 0xC4, 0, 20, 0x10]);
    out.extend(ac_counts);
    out.push(0x00);
    out.extend([0xFF, 0xDD, 0, 4, 0, 2]);
    out.extend([0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0]);
    let mut w = BitWriter { out, acc: 0, n: 0 };
    let mut pred = 0i32;
    for (b, &v) in values.iter().enumerate() {
        if b > 0 && b % 2 == 0 {
            let mut bytes = std::mem::replace(
                &mut w,
                BitWriter {
                    out: Vec::new(),
                    acc: 0,
                    n: 0,
                },
            )
            .finish();
            bytes.extend([0xFF, 0xD0 + (b / 2 - 1) as u8]);
            w.out = bytes;
            pred = 0;
        }
        let dc = i32::from(v) - 2048;
        let d = dc - pred;
        pred = dc;
        let size = 32 - d.unsigned_abs().leading_zeros();
        w.put(size, 4);
        if size > 0 {
            let extra = if d < 0 { (d - 1) as u32 } else { d as u32 };
            w.put(extra & ((1 << size) - 1), size);
        }
        w.put(0, 1); // end of block
    }
    let mut out = w.finish();
    out.extend([0xFF, 0xD9]);
    out
}

#[test]
fn reads_12_bit_jpeg_extended_with_restart_markers() {
    let values = [
        [0u16, 4095, 2048, 1000, 3000, 17],
        [5, 2500, 4000, 1, 2047, 2049],
    ];
    let (w, h, samples) = jpeg_dct::decode(&jpeg12_blocks(&values[0]), 24 * 16).unwrap();
    assert_eq!((w, h), (24, 16));
    for (i, &s) in samples.iter().enumerate() {
        let block = (i / 24 / 8) * 3 + (i % 24) / 8;
        assert_eq!(s, values[0][block], "pixel {i}");
    }
    // Through a DICOM series: bits stored 12, intercept -1024.
    let tmp = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    for (k, v) in values.iter().enumerate() {
        let mut ds = test_dataset(true, k, SIGNED16);
        // 24 columns, 16 rows, 12 bits unsigned, intercept -1024.
        let mut e = Encoder::new(true, 0);
        e.us(0x0028_0011, 24);
        let at = ds.windows(4).position(|w| w == [0x28, 0, 0x11, 0]).unwrap();
        ds.splice(at..at + 10, e.buf);
        for (tag, val) in [
            ([0x28, 0, 0x01, 1], 12u16),
            ([0x28, 0, 0x02, 1], 11),
            ([0x28, 0, 0x03, 1], 0),
        ] {
            let at = ds.windows(4).position(|w| w == tag).unwrap();
            ds[at + 8..at + 10].copy_from_slice(&val.to_le_bytes());
        }
        let at = ds
            .windows(4)
            .position(|w| w == [0x28, 0, 0x52, 0x10])
            .unwrap();
        let mut e = Encoder::new(true, 0);
        e.text(0x0028_1052, *b"DS", "-1024");
        ds.splice(at..at + 10, e.buf);
        write_file(
            tmp.path(),
            &format!("j{k}"),
            "1.2.840.10008.1.2.4.51",
            k,
            &ds,
            &encapsulated(&jpeg12_blocks(v)),
        );
        expected
            .extend((0..24 * 16).map(|i| f32::from(v[(i / 24 / 8) * 3 + (i % 24) / 8]) - 1024.0));
    }
    let ct = read_dir(tmp.path());
    assert_eq!(ct.volume.grid.dims, [24, 16, 2]);
    assert_eq!(ct.volume.data, expected);
}

/// Decodes one file the way `read_series` decodes a slice.
fn decode_file(path: &Path) -> Result<(SliceHeader, Vec<f32>)> {
    let h = match scan(path) {
        Scanned::Header(h) => h,
        Scanned::Unreadable(_, e) => return Err(Error::Input(e)),
        Scanned::NotDicom => return Err(Error::Input("not DICOM".into())),
    };
    let h = h.into_iter().next().unwrap();
    let mut out = vec![0f32; h.rows as usize * h.cols as usize];
    decode_slice(&h, &mut out)?;
    Ok((h, out))
}

/// pydicom's bundled test files, decoded by pydicom and by us.
#[test]
fn matches_pydicom_on_its_test_files() {
    let found = std::process::Command::new("python3")
        .args(["-c", "import os, pydicom, pylibjpeg, openjpeg; print(os.path.join(os.path.dirname(pydicom.__file__), 'data', 'test_files'))"])
        .output();
    let dir = match found {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => {
            return skip("python3 with pydicom, pylibjpeg and pylibjpeg-openjpeg is not available")
        }
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/decode_dicom.py");
    let out = tempfile::NamedTempFile::new().unwrap();
    for name in [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "image_dfl.dcm",
        "MR_small_jp2klossless.dcm",
        "693_J2KI.dcm",
        "J2K_pixelrep_mismatch.dcm",
    ] {
        let path = dir.join(name);
        if !path.exists() {
            skip(&format!("pydicom test file {name} is missing"));
            continue;
        }
        let run = std::process::Command::new("python3")
            .arg(&script)
            .arg(&path)
            .arg(out.path())
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let reference: Vec<f32> = std::fs::read(out.path())
            .unwrap()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let (_, ours) = decode_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ours.len(), reference.len(), "{name}");
        let differing = ours.iter().zip(&reference).filter(|(a, b)| a != b).count();
        assert_eq!(
            differing, 0,
            "{name}: {differing} pixels differ from pydicom"
        );
    }
    // 12-bit JPEG Extended: jpeg-decoder lacks it, so does pydicom here (no
    // libjpeg plug-in); pydicom's own reference values for these files.
    for name in ["JPGExtended.dcm", "JPEG-lossy.dcm"] {
        let (h, v) = decode_file(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((h.cols, h.rows), (256, 1024));
        assert_eq!(
            (v[420 * 256 + 140], v[230 * 256 + 120]),
            (244.0, 95.0),
            "{name}"
        );
    }
    let e = decode_file(&dir.join("MR_truncated.dcm"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("truncated"), "{e}");
    // A data set without the DICOM file header is not read.
    assert!(matches!(scan(&dir.join("no_meta.dcm")), Scanned::NotDicom));
}

/// A sequence of undefined length with items of undefined length.
pub(crate) fn sequence(e: &mut Encoder, tag: u32, items: &[Vec<u8>]) {
    e.header(tag, *b"SQ", u32::MAX);
    for it in items {
        e.buf
            .extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        e.buf.extend(it);
        e.buf.extend([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
    }
    e.buf.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
}

/// An enhanced (multi-frame) CT data set without pixel data: frame `k` at
/// `positions[k]` with rescale `rescale[k]`; axial, 0.5 × 0.75 mm pixels.
pub(crate) fn enhanced_dataset(positions: &[[f64; 3]], rescale: &[(f64, f64)]) -> Vec<u8> {
    let mut out = test_dataset(true, 0, SIGNED16);
    let mut e = Encoder::new(true, 16);
    e.text(0x0028_0008, *b"IS", &positions.len().to_string());
    let at = out
        .windows(4)
        .position(|w| w == [0x28, 0, 0x10, 0])
        .unwrap();
    out.splice(at..at, e.buf);
    let item = |f: &dyn Fn(&mut Encoder)| {
        let mut e = Encoder::new(true, 64);
        f(&mut e);
        e.buf
    };
    let shared = item(&|e| {
        sequence(
            e,
            0x0020_9116,
            &[item(&|e| e.text(0x0020_0037, *b"DS", "1\\0\\0\\0\\1\\0"))],
        );
        sequence(
            e,
            0x0028_9110,
            &[item(&|e| {
                e.text(0x0018_0050, *b"DS", "2");
                e.text(0x0028_0030, *b"DS", "0.5\\0.75");
            })],
        );
    });
    let frames: Vec<Vec<u8>> = positions
        .iter()
        .zip(rescale)
        .map(|(p, &(slope, intercept))| {
            item(&|e| {
                sequence(
                    e,
                    0x0020_9113,
                    &[item(&|e| e.text(0x0020_0032, *b"DS", &ds_multi(p)))],
                );
                sequence(
                    e,
                    0x0028_9145,
                    &[item(&|e| {
                        e.text(0x0028_1052, *b"DS", &ds(intercept));
                        e.text(0x0028_1053, *b"DS", &ds(slope));
                    })],
                );
            })
        })
        .collect();
    let mut e = Encoder::new(true, 1024);
    sequence(&mut e, 0x5200_9229, &[shared]);
    sequence(&mut e, 0x5200_9230, &frames);
    out.extend(e.buf);
    out
}

#[test]
fn reads_enhanced_multiframe_ct_from_functional_groups() {
    let tmp = tempfile::tempdir().unwrap();
    // Frames stored out of order, each with its own rescale.
    let z = [4.0, 0.0, 2.0];
    let positions: Vec<[f64; 3]> = z.iter().map(|&z| [-5.0, 7.0, z]).collect();
    let rescale = [(1.0, -1024.0), (2.0, 0.0), (1.0, 10.0)];
    let frames: Vec<Vec<i16>> = (0..3).map(samples16).collect();
    let bytes: Vec<u8> = frames
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    write_file(
        tmp.path(),
        "enhanced",
        EXPLICIT_VR_LE,
        0,
        &enhanced_dataset(&positions, &rescale),
        &native_pixels(true, &bytes),
    );
    let ct = read_dir(tmp.path());
    assert_eq!(ct.volume.grid.dims, [COLS, ROWS, 3]);
    assert_eq!(ct.volume.grid.spacing, [0.75, 0.5, 2.0]);
    assert_eq!(ct.volume.grid.origin, [-5.0, 7.0, 0.0]);
    assert_eq!(ct.info.files_read, 1);
    // Sorted by position: frames 1 (z 0), 2 (z 2), 0 (z 4).
    for (slot, k) in [1usize, 2, 0].into_iter().enumerate() {
        let (slope, icpt) = rescale[k];
        let expected: Vec<f32> = frames[k]
            .iter()
            .map(|&v| (f64::from(v) * slope + icpt) as f32)
            .collect();
        assert_eq!(
            &ct.volume.data[slot * NPIX..(slot + 1) * NPIX],
            &expected[..],
            "frame {k}"
        );
    }
}

#[test]
fn pixel_padding_value_and_outside_field_become_air() {
    let tmp = tempfile::tempdir().unwrap();
    // Padding -1050 (a value inside the normal range, so only the tag can tell).
    let stored: Vec<i16> = (0..NPIX as i16)
        .map(|i| match i % 5 {
            0 => -1050,
            1 => -1049,
            2 => -3024,
            3 => 3500,
            _ => 40,
        })
        .collect();
    let bytes: Vec<u8> = stored.iter().flat_map(|v| v.to_le_bytes()).collect();
    for k in 0..2 {
        let mut ds = test_dataset(true, k, SIGNED16);
        let mut e = Encoder::new(true, 16);
        // (0028,0120) US holding the bits of -1050 (as scanners write SS values).
        e.put(0x0028_0120, *b"US", &(-1050i16).to_le_bytes());
        let at = ds
            .windows(4)
            .position(|w| w == [0x28, 0, 0x52, 0x10])
            .unwrap();
        ds.splice(at..at, e.buf);
        write_file(
            tmp.path(),
            &format!("p{k}"),
            EXPLICIT_VR_LE,
            k,
            &ds,
            &native_pixels(true, &bytes),
        );
    }
    let ct = read_series(tmp.path(), &no_progress).unwrap();
    let expected: Vec<f32> = stored
        .iter()
        .map(|&v| match v {
            -1050 | -3024 => -1000.0,
            v => f32::from(v),
        })
        .collect();
    assert_eq!(&ct.volume.data[..NPIX], &expected[..]);
    let notes = ct.info.notes.join("\n");
    assert!(notes.contains("Pixel Padding Value"), "{notes}");
    assert!(notes.contains("outside the scan field"), "{notes}");
    assert!(notes.contains("above 3000 HU"), "{notes}");
    // Raw values on request.
    let raw = read_dir(tmp.path());
    assert_eq!(
        &raw.volume.data[..5],
        &[-1050.0, -1049.0, -3024.0, 3500.0, 40.0]
    );
}
