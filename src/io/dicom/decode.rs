//! Decoding one slice's pixel data into Hounsfield units.

use super::*;

/// Error for a slice whose pixels cannot be read.
pub(crate) fn pixel_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::format(
        path,
        format!("cannot read the slice's pixels ({what}); the file may be truncated or damaged: remove or replace it"),
    )
}

/// An error and its sources, joined by ": ".
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut cause = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        cause.push_str(": ");
        cause.push_str(&s.to_string());
        source = s.source();
    }
    cause
}

/// JPEG Baseline (Process 1) or JPEG Extended (Process 2 & 4).
pub(crate) fn is_jpeg_dct(ts: &str) -> bool {
    ts == "1.2.840.10008.1.2.4.50" || ts == "1.2.840.10008.1.2.4.51"
}

/// Error for compressed pixel data that the decoders cannot decode.
pub(crate) fn decode_error(h: &SliceHeader, cause: &str) -> Error {
    Error::format(
        &h.path,
        format!(
            "cannot decode the pixel data in {} ({cause}); the file may be damaged or its compression unsupported: decompress the series first (e.g. with `dcmdjpeg` or `gdcmconv --raw`)",
            ts_label(&h.transfer_syntax)
        ),
    )
}

/// Decodes one slice into `out` (Hounsfield units).
pub(crate) fn decode_slice(h: &SliceHeader, out: &mut [f32]) -> Result<()> {
    if h.samples_per_pixel != 1 || !h.photometric.starts_with("MONOCHROME") {
        return Err(Error::format(
            &h.path,
            format!(
                "the image is in colour ({}, {} samples per pixel), not a CT grey-scale image; give a CT series",
                h.photometric, h.samples_per_pixel
            ),
        ));
    }
    if let Some(why) = &h.broken_pixels {
        return Err(pixel_error(&h.path, why));
    }
    if read_native_tail(h, out)? {
        return Ok(());
    }
    // Third-party decoders must not bring the program down on hostile data.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_parsed(h, out))).unwrap_or_else(
        |_| {
            SAFETY_NET_PANICS.fetch_add(1, Ordering::Relaxed);
            Err(decode_error(h, "the decoder failed on this data"))
        },
    )
}

/// Decodes one slice by parsing the whole file (any transfer syntax).
pub(crate) fn decode_parsed(h: &SliceHeader, out: &mut [f32]) -> Result<()> {
    let obj = OpenFileOptions::new()
        .read_preamble(h.preamble)
        .open_file(&h.path)
        .map_err(|e| pixel_error(&h.path, e))?;
    let elem = obj.get(tags::PIXEL_DATA).ok_or_else(|| {
        Error::format(
            &h.path,
            "the file has no pixel data although its header describes an image; remove it or re-export the series",
        )
    })?;
    let rescale = (h.slope, h.intercept);
    match elem.value() {
        DicomValue::Primitive(p) => {
            let bytes = p.to_bytes();
            let width = usize::from(h.bits_allocated.div_ceil(8));
            let at = (h.frame as usize)
                .saturating_mul(out.len())
                .saturating_mul(width);
            samples_to_hu(
                bytes.get(at..).unwrap_or_default(),
                h.bits_allocated,
                h.bits_stored,
                h.signed,
                rescale,
                out,
            )
            .map_err(|e| pixel_error(&h.path, e))
        }
        DicomValue::PixelSequence(seq) => {
            if is_jpeg2000(&h.transfer_syntax) {
                let first = seq.fragments().iter().find(|f| !f.is_empty());
                if let Err(why) = first.map_or(Ok(()), |f| check_j2k_header(f, h.cols, h.rows)) {
                    return Err(decode_error(h, &why));
                }
                #[cfg(feature = "openjpeg-c")]
                if h.frames <= 1 {
                    let stream: Vec<u8> = seq.fragments().iter().flatten().copied().collect();
                    return decode_j2k_c(h, &stream, out);
                }
            }
            let decoded = if h.frames > 1 {
                obj.decode_pixel_data_frame(h.frame)
            } else {
                obj.decode_pixel_data()
            };
            let decoded = match decoded {
                Ok(d) => d,
                Err(e) if is_jpeg_dct(&h.transfer_syntax) => {
                    // jpeg-decoder has no 12-bit DCT: our own sequential decoder.
                    let fragments = seq.fragments();
                    let stream: Vec<u8> = if h.frames > 1 && fragments.len() == h.frames as usize {
                        fragments[h.frame as usize].to_vec()
                    } else if h.frames > 1 {
                        return Err(decode_error(
                            h,
                            "the frames of this multi-frame JPEG cannot be told apart",
                        ));
                    } else {
                        fragments.iter().flatten().copied().collect()
                    };
                    let (w, ht, samples) = jpeg_dct::decode(&stream, out.len())
                        .map_err(|own| decode_error(h, &format!("{}; {own}", error_chain(&e))))?;
                    if w as usize * ht as usize != out.len() {
                        return Err(pixel_error(
                            &h.path,
                            format!("the JPEG image is {w}×{ht}, expected {}×{}", h.cols, h.rows),
                        ));
                    }
                    let bytes: Vec<u8> = samples.iter().flat_map(|v| v.to_le_bytes()).collect();
                    return samples_to_hu(&bytes, 16, h.bits_stored, h.signed, rescale, out)
                        .map_err(|e| pixel_error(&h.path, e));
                }
                Err(e) => return Err(decode_error(h, &error_chain(&e))),
            };
            if decoded.rows() as usize * decoded.columns() as usize != out.len()
                || decoded.samples_per_pixel() != 1
            {
                return Err(pixel_error(
                    &h.path,
                    format!(
                        "decoded {}×{}×{} samples, expected {}×{}×1",
                        decoded.columns(),
                        decoded.rows(),
                        decoded.samples_per_pixel(),
                        h.cols,
                        h.rows
                    ),
                ));
            }
            samples_to_hu(
                decoded.data(),
                decoded.bits_allocated(),
                h.bits_stored,
                h.signed,
                rescale,
                out,
            )
            .map_err(|e| pixel_error(&h.path, e))
        }
        DicomValue::Sequence(_) => Err(pixel_error(&h.path, "pixel data is a sequence")),
    }
}

/// One JPEG 2000 image through OpenJPEG (C), then to HU like any other
/// decoded samples (masked to Bits Stored, sign per Pixel Representation).
#[cfg(feature = "openjpeg-c")]
fn decode_j2k_c(h: &SliceHeader, stream: &[u8], out: &mut [f32]) -> Result<()> {
    let d = super::j2k_c::decode(stream).map_err(|why| decode_error(h, &why))?;
    if d.width != h.cols || d.height != h.rows || d.samples.len() != out.len() {
        return Err(pixel_error(
            &h.path,
            format!(
                "the JPEG 2000 image is {}×{}, expected {}×{}",
                d.width, d.height, h.cols, h.rows
            ),
        ));
    }
    let bits: u16 = if d.precision > 16 || h.bits_allocated > 16 {
        32
    } else if d.precision > 8 || h.bits_allocated > 8 {
        16
    } else {
        8
    };
    let bytes: Vec<u8> = match bits {
        8 => d.samples.iter().map(|&v| v as u8).collect(),
        16 => d
            .samples
            .iter()
            .flat_map(|&v| (v as u16).to_le_bytes())
            .collect(),
        _ => d
            .samples
            .iter()
            .flat_map(|&v| (v as u32).to_le_bytes())
            .collect(),
    };
    samples_to_hu(
        &bytes,
        bits,
        h.bits_stored.min(bits),
        h.signed,
        (h.slope, h.intercept),
        out,
    )
    .map_err(|e| pixel_error(&h.path, e))
}

thread_local! {
    /// Per-thread buffer for the raw pixel bytes of one slice.
    static RAW: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Fast path for uncompressed little-endian pixel data that ends the file
/// (the usual layout): checks the Pixel Data element header just before the
/// expected number of bytes at the end of the file and converts those bytes
/// directly, without parsing the file again. Returns `Ok(false)` when the
/// file is laid out otherwise (the caller then parses it in full).
pub(crate) fn read_native_tail(h: &SliceHeader, out: &mut [f32]) -> Result<bool> {
    let header_len: usize = match h.transfer_syntax.as_str() {
        "1.2.840.10008.1.2" => 8,
        "1.2.840.10008.1.2.1" => 12,
        _ => return Ok(false),
    };
    let width = match h.bits_allocated {
        8 => 1,
        16 => 2,
        32 => 4,
        _ => return Ok(false),
    };
    let expected = out.len() * width;
    let Some(all) = expected.checked_mul(h.frames as usize) else {
        return Ok(false);
    };
    let padded = all + all % 2;
    let skip = expected * h.frame as usize;
    let Ok(value_len) = u32::try_from(padded) else {
        return Ok(false);
    };
    let io_err = |e: std::io::Error| pixel_error(&h.path, e);
    let mut f = std::fs::File::open(&h.path).map_err(io_err)?;
    let len = f.metadata().map_err(io_err)?.len();
    let Some(start) = len.checked_sub((header_len + padded) as u64) else {
        return Ok(false);
    };
    RAW.with(|raw| {
        let mut buf = raw.borrow_mut();
        buf.resize(header_len + expected, 0);
        f.seek(SeekFrom::Start(start)).map_err(io_err)?;
        f.read_exact(&mut buf[..header_len]).map_err(io_err)?;
        let tag_ok = buf[..4] == [0xE0, 0x7F, 0x10, 0x00];
        let len_ok = if header_len == 12 {
            matches!(&buf[4..8], b"OW\0\0" | b"OB\0\0") && buf[8..12] == value_len.to_le_bytes()
        } else {
            buf[4..8] == value_len.to_le_bytes()
        };
        if !(tag_ok && len_ok) {
            return Ok(false);
        }
        if skip > 0 {
            f.seek(SeekFrom::Current(skip as i64)).map_err(io_err)?;
        }
        f.read_exact(&mut buf[header_len..]).map_err(io_err)?;
        samples_to_hu(
            &buf[header_len..header_len + expected],
            h.bits_allocated,
            h.bits_stored,
            h.signed,
            (h.slope, h.intercept),
            out,
        )
        .map_err(|e| pixel_error(&h.path, e))?;
        Ok(true)
    })
}

/// Converts little-endian stored samples to rescaled values: masks to
/// `bits_stored`, sign-extends when `signed`, then `v × slope + intercept`.
pub(crate) fn samples_to_hu(
    bytes: &[u8],
    bits_allocated: u16,
    bits_stored: u16,
    signed: bool,
    (slope, intercept): (f64, f64),
    out: &mut [f32],
) -> std::result::Result<(), String> {
    let n = out.len();
    let width = match bits_allocated {
        8 => 1,
        16 => 2,
        32 => 4,
        b => {
            return Err(format!(
                "Bits Allocated {b} is not supported, only 8, 16 or 32"
            ))
        }
    };
    if bytes.len() < n * width {
        return Err(format!(
            "pixel data has {} bytes, the image needs {}",
            bytes.len(),
            n * width
        ));
    }
    let bits = u32::from(bits_stored.clamp(1, bits_allocated));
    let bytes = &bytes[..n * width];
    // Masking to Bits Stored and sign extension without per-pixel branches:
    // x = ((raw & mask) ^ m) - m with m = the sign bit (0 when unsigned).
    let mask = if bits >= 32 {
        u32::MAX as i64
    } else {
        (1i64 << bits) - 1
    };
    let m = if signed { 1i64 << (bits - 1) } else { 0 };
    // Integer HU in f32 arithmetic is exact for 8/16-bit samples.
    let exact_int = width <= 2 && slope == 1.0 && intercept.fract() == 0.0 && intercept.abs() < 1e6;
    // The conversion loops are monomorphic (no per-pixel dispatch) and vectorise.
    macro_rules! convert {
        ($chunk:expr, $int:ty, $raw:expr) => {{
            let raw = $raw;
            let (mask, m) = (mask as $int, m as $int);
            if exact_int {
                let c = intercept as f32;
                for (o, b) in out.iter_mut().zip(bytes.chunks_exact($chunk)) {
                    *o = ((raw(b) & mask) ^ m).wrapping_sub(m) as f32 + c;
                }
            } else {
                for (o, b) in out.iter_mut().zip(bytes.chunks_exact($chunk)) {
                    *o = (((raw(b) & mask) ^ m).wrapping_sub(m) as f64 * slope + intercept) as f32;
                }
            }
        }};
    }
    match width {
        1 => convert!(1, i32, |b: &[u8]| i32::from(b[0])),
        2 => convert!(2, i32, |b: &[u8]| i32::from(u16::from_le_bytes([
            b[0], b[1]
        ]))),
        _ => convert!(4, i64, |b: &[u8]| {
            i64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }),
    }
    Ok(())
}

/// Sets the pixels of one decoded slice that hold its Pixel Padding Value (or
/// lie in the padding range up to Pixel Padding Range Limit) to air; returns
/// how many.
pub(crate) fn padding_to_air(h: &SliceHeader, out: &mut [f32]) -> usize {
    let Some((p, limit)) = h.padding else {
        return 0;
    };
    let q = limit.unwrap_or(p);
    let hu = |v: i64| v as f64 * h.slope + h.intercept;
    let (a, b) = (hu(p.min(q)), hu(p.max(q)));
    let (lo, hi) = ((a.min(b) - 1e-3) as f32, (a.max(b) + 1e-3) as f32);
    let mut n = 0;
    for v in out.iter_mut() {
        if *v >= lo && *v <= hi {
            *v = super::resample::AIR_HU;
            n += 1;
        }
    }
    n
}

/// JPEG 2000 (Part 1 and High-Throughput) transfer syntaxes.
fn is_jpeg2000(ts: &str) -> bool {
    matches!(
        ts,
        "1.2.840.10008.1.2.4.90"
            | "1.2.840.10008.1.2.4.91"
            | "1.2.840.10008.1.2.4.201"
            | "1.2.840.10008.1.2.4.202"
            | "1.2.840.10008.1.2.4.203"
    )
}

/// Most tiles a JPEG 2000 codestream may declare.
const MAX_J2K_TILES: u64 = 1 << 16;

/// Checks a JPEG 2000 codestream's main header (its SIZ segment) against the
/// image the DICOM header describes, before a decoder sizes its buffers from
/// it: a damaged SIZ can otherwise make it allocate gigabytes.
pub(crate) fn check_j2k_header(
    frag: &[u8],
    cols: u32,
    rows: u32,
) -> std::result::Result<(), String> {
    // A raw codestream starts with SOC (FF4F) then SIZ (FF51); a JP2 file
    // holds it in its `jp2c` box.
    let at = frag
        .windows(4)
        .take(4096)
        .position(|w| w == [0xFF, 0x4F, 0xFF, 0x51])
        .ok_or("no JPEG 2000 codestream header (SOC, SIZ) found")?;
    let siz = &frag[at + 4..];
    let u32_at = |i: usize| -> std::result::Result<u64, String> {
        siz.get(i..i + 4)
            .map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
            .ok_or_else(|| "the JPEG 2000 SIZ segment is cut short".to_string())
    };
    let (xsiz, ysiz, xo, yo) = (u32_at(4)?, u32_at(8)?, u32_at(12)?, u32_at(16)?);
    let (xt, yt, xto, yto) = (u32_at(20)?, u32_at(24)?, u32_at(28)?, u32_at(32)?);
    let csiz = siz
        .get(36..38)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or("the JPEG 2000 SIZ segment is cut short")?;
    if xo >= xsiz || yo >= ysiz || xsiz - xo != u64::from(cols) || ysiz - yo != u64::from(rows) {
        return Err(format!(
            "the JPEG 2000 codestream describes a {}×{} image, the DICOM header {cols}×{rows}",
            xsiz.saturating_sub(xo),
            ysiz.saturating_sub(yo)
        ));
    }
    if csiz != 1 {
        return Err(format!(
            "the JPEG 2000 codestream has {csiz} components, not 1"
        ));
    }
    let comp = siz
        .get(38..41)
        .ok_or("the JPEG 2000 SIZ segment is cut short")?;
    if (comp[0] & 0x7F) + 1 > 32 || comp[1] != 1 || comp[2] != 1 {
        return Err("the JPEG 2000 component precision or subsampling is invalid".into());
    }
    if xt == 0 || yt == 0 || xto > xo || yto > yo {
        return Err("the JPEG 2000 tile grid is invalid".into());
    }
    let tiles = (xsiz - xto).div_ceil(xt) * (ysiz - yto).div_ceil(yt);
    if tiles > MAX_J2K_TILES {
        return Err(format!("the JPEG 2000 codestream declares {tiles} tiles"));
    }
    Ok(())
}
