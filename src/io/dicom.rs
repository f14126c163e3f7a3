//! DICOM CT series: reading a folder of slices into a volume of Hounsfield
//! units ([`read_series`]) and writing a volume as a standard CT series
//! ([`write_series`]).
//!
//! # Coordinates
//!
//! Everything is in DICOM patient coordinates, LPS (x to the patient's Left,
//! y to Posterior, z to Superior), in mm. The volume's index axes are
//! x = column (fastest in memory), y = row, z = slice, and its [`Grid`] has
//! `direction = [row cosine, column cosine, slice normal]` (the row and column
//! cosines are the two vectors of Image Orientation (Patient), the normal is
//! their cross product), `origin` = Image Position (Patient) of the first
//! slice after sorting, `spacing = [column spacing, row spacing, slice step]`.
//! Note DICOM's Pixel Spacing order: its first value is the spacing between
//! rows (along y), the second the spacing between columns (along x).
//!
//! # What is read, what is skipped
//!
//! INPUT is a folder searched recursively (or a single file). A file is DICOM
//! when bytes 128..132 are `DICM` (a standard Part 10 file with its 128-byte
//! preamble) or when its first four bytes are `DICM` (Part 10 without the
//! preamble); file names and extensions do not matter. Headers are parsed up
//! to the pixel data, in parallel. Counted in `InputInfo::files_skipped`:
//! - files that are not DICOM (no `DICM` marker: NIfTI, NRRD, text, raw
//!   data sets without a file meta header) and hidden files (name starting
//!   with `.`; hidden subfolders are not searched);
//! - DICOM files that are not images (no Rows/Columns: SR, RT, DICOMDIR, ...);
//! - images of other series, and of modalities other than CT;
//! - localizer (scout) images (Image Type contains `LOCALIZER`) and images
//!   whose size, orientation or pixel spacing differs from the largest
//!   consistent stack of their series;
//! - exact duplicates (same position, same pixels) of a slice.
//!
//! Files with a `DICM` marker whose header cannot be parsed (for example a
//! file truncated inside its header) are skipped with a warning in
//! `InputInfo::warnings`. A slice of the chosen series whose pixel data
//! cannot be decoded (for example a file truncated inside its pixel data) is
//! an error naming the file: dropping it would leave a hole in the volume.
//!
//! # Series selection
//!
//! Files are grouped by Series Instance UID; two series are never mixed into
//! one volume. Only CT image series are candidates (if the input holds image
//! series but none of modality CT, reading fails with a message). Among CT
//! series the one with the most slices (distinct slice positions, then
//! files) is taken; ties are broken, in order,
//! by the thinner slice step, then by the series lying lower in the body
//! (smaller mean LPS z of its slice positions: the lumbar spine lies below the
//! chest), then by the lower Series Number, then by the Series Instance UID.
//! `InputInfo::selection` says which series was taken and why. To read
//! another series, give a folder that holds only its files.
//!
//! # Sorting and geometry
//!
//! Slices are sorted by their position along the slice normal
//! (`position = Image Position (Patient) · normal`), ascending; equal
//! positions are ordered by Instance Number, then file path. When any slice
//! lacks Image Position (Patient) the slices are sorted by Instance Number
//! instead, with a warning. The slice step is the median of the differences
//! of consecutive positions; a warning is added when steps differ from it by
//! more than 1 % or 0.01 mm. Two slices at one position with different pixels,
//! or all slices at one position, are an error. A gantry tilt (slice origins
//! drifting sideways, i.e. the line through the first and last Image Position
//! not parallel to the normal) gives a warning; the volume is then stacked
//! along the normal without correction. A single slice gets its Slice
//! Thickness (else Spacing Between Slices, else 1 mm) as its step; slices
//! without positions get Spacing Between Slices, else Slice Thickness, else 1 mm.
//!
//! # Values
//!
//! `HU = stored value × Rescale Slope + Rescale Intercept` (defaults 1 and 0),
//! per slice. Stored values are read with Bits Allocated 8, 16 or 32, masked
//! to Bits Stored and sign-extended when Pixel Representation is 1. Pixel data
//! in any transfer syntax that `dicom-pixeldata` decodes is read: implicit
//! and explicit VR little endian (and the retired big endian), deflated
//! explicit VR little endian, RLE lossless, JPEG baseline/extended/lossless,
//! JPEG 2000. 12-bit JPEG Extended, which its JPEG decoder lacks, goes
//! through a small decoder here (libjpeg's integer inverse DCT). Uncompressed
//! little-endian pixel data at the end of the file (the usual layout) is
//! converted directly from its bytes. MONOCHROME1, colour images and
//! multi-frame (enhanced) images are refused with a message.
//!
//! # Writing
//!
//! [`write_series`] writes one CT Image Storage file per z slice (explicit VR
//! little endian, signed 16-bit, Rescale Slope 1, Rescale Intercept 0, values
//! rounded and clamped to the int16 range). UIDs are `2.25.<n>` UIDs derived
//! from [`WriteOptions::seed`] and the volume's content, so the same volume and
//! options give byte-identical files.

use super::{atomic, InputInfo, LoadedCt};
use crate::{Error, Grid, Result, Volume};
use dicom_core::DicomValue;
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::OpenFileOptions;
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// SOP Class UID of CT Image Storage.
const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
/// Transfer Syntax UID of Explicit VR Little Endian.
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// spinemesh's Implementation Class UID (a fixed UUID-derived UID).
const IMPLEMENTATION_CLASS_UID: &str = "2.25.201959455335813786306287390327931473917";
/// Implementation Version Name (SH, at most 16 characters).
const IMPLEMENTATION_VERSION: &str = "SPINEMESH";

/// Positions closer than this (mm) along the normal count as one position.
const SAME_POSITION_MM: f64 = 1e-3;

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// What one file's header says (nothing that identifies the patient).
#[derive(Clone, Debug)]
struct SliceHeader {
    path: PathBuf,
    preamble: ReadPreamble,
    transfer_syntax: String,
    modality: String,
    series_uid: String,
    series_number: Option<i64>,
    series_description: Option<String>,
    rows: u32,
    cols: u32,
    samples_per_pixel: u16,
    photometric: String,
    bits_allocated: u16,
    bits_stored: u16,
    signed: bool,
    frames: u32,
    position: Option<[f64; 3]>,
    orientation: Option<[f64; 6]>,
    pixel_spacing: Option<[f64; 2]>,
    slice_thickness: Option<f64>,
    spacing_between_slices: Option<f64>,
    instance_number: Option<i64>,
    slope: f64,
    intercept: f64,
    localizer: bool,
}

/// The result of looking at one file.
enum Scanned {
    NotDicom,
    Unreadable(PathBuf, String),
    Header(Box<SliceHeader>),
}

/// Reads up to `buf.len()` bytes; returns how many were read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Whether a file is DICOM Part 10, and whether it has the 128-byte preamble.
fn sniff(path: &Path) -> std::io::Result<Option<ReadPreamble>> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = [0u8; 132];
    let n = read_up_to(&mut f, &mut buf)?;
    Ok(if n >= 132 && &buf[128..132] == b"DICM" {
        Some(ReadPreamble::Always)
    } else if n >= 4 && &buf[..4] == b"DICM" {
        Some(ReadPreamble::Never)
    } else {
        None
    })
}

fn scan(path: &Path) -> Scanned {
    let preamble = match sniff(path) {
        Ok(Some(p)) => p,
        Ok(None) => return Scanned::NotDicom,
        Err(e) => return Scanned::Unreadable(path.to_path_buf(), e.to_string()),
    };
    match read_header(path, preamble) {
        Ok(h) => Scanned::Header(Box::new(h)),
        Err(e) => Scanned::Unreadable(path.to_path_buf(), e),
    }
}

/// Parses one file's header (everything before the pixel data).
fn read_header(path: &Path, preamble: ReadPreamble) -> std::result::Result<SliceHeader, String> {
    let obj = OpenFileOptions::new()
        .read_preamble(preamble)
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| e.to_string())?;
    let text = |tag| {
        obj.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|v| {
                v.trim_matches(|c: char| c.is_whitespace() || c == '\0')
                    .to_string()
            })
            .filter(|v| !v.is_empty())
    };
    let floats = |tag, n: usize| {
        obj.get(tag)
            .and_then(|e| e.to_multi_float64().ok())
            .filter(|v| v.len() >= n && v[..n].iter().all(|x| x.is_finite()))
    };
    let float = |tag| floats(tag, 1).map(|v| v[0]);
    let int = |tag| {
        let e = obj.get(tag)?;
        e.to_int::<i64>().ok().or_else(|| {
            e.to_float64()
                .ok()
                .filter(|v| v.is_finite() && v.abs() < 1e15)
                .map(|v| v.round() as i64)
        })
    };
    let uint = |tag| int(tag).and_then(|v| u32::try_from(v).ok());
    let bits_allocated = uint(tags::BITS_ALLOCATED).unwrap_or(16).min(64) as u16;
    Ok(SliceHeader {
        path: path.to_path_buf(),
        preamble,
        transfer_syntax: obj.meta().transfer_syntax().to_string(),
        modality: text(tags::MODALITY).unwrap_or_default().to_uppercase(),
        series_uid: text(tags::SERIES_INSTANCE_UID).unwrap_or_default(),
        series_number: int(tags::SERIES_NUMBER),
        series_description: text(tags::SERIES_DESCRIPTION),
        rows: uint(tags::ROWS).unwrap_or(0),
        cols: uint(tags::COLUMNS).unwrap_or(0),
        samples_per_pixel: uint(tags::SAMPLES_PER_PIXEL).unwrap_or(1).min(16) as u16,
        photometric: text(tags::PHOTOMETRIC_INTERPRETATION)
            .unwrap_or_else(|| "MONOCHROME2".into())
            .to_uppercase(),
        bits_allocated,
        bits_stored: uint(tags::BITS_STORED)
            .map(|b| b.min(bits_allocated as u32) as u16)
            .unwrap_or(bits_allocated),
        signed: int(tags::PIXEL_REPRESENTATION) == Some(1),
        frames: uint(tags::NUMBER_OF_FRAMES).unwrap_or(1),
        position: floats(tags::IMAGE_POSITION_PATIENT, 3).map(|v| [v[0], v[1], v[2]]),
        orientation: floats(tags::IMAGE_ORIENTATION_PATIENT, 6)
            .map(|v| [v[0], v[1], v[2], v[3], v[4], v[5]]),
        pixel_spacing: floats(tags::PIXEL_SPACING, 2)
            .or_else(|| floats(tags::IMAGER_PIXEL_SPACING, 2))
            .filter(|v| v[0] > 0.0 && v[1] > 0.0)
            .map(|v| [v[0], v[1]]),
        slice_thickness: float(tags::SLICE_THICKNESS).filter(|&v| v > 0.0),
        spacing_between_slices: float(tags::SPACING_BETWEEN_SLICES).filter(|&v| v > 0.0),
        instance_number: int(tags::INSTANCE_NUMBER),
        slope: float(tags::RESCALE_SLOPE)
            .filter(|&v| v != 0.0)
            .unwrap_or(1.0),
        intercept: float(tags::RESCALE_INTERCEPT).unwrap_or(0.0),
        localizer: text(tags::IMAGE_TYPE)
            .map(|t| t.to_uppercase().contains("LOCALIZER"))
            .unwrap_or(false),
    })
}

/// All files under `input` (recursively), sorted, and how many hidden files were passed over.
fn list_files(input: &Path) -> Result<(Vec<PathBuf>, usize)> {
    let meta = std::fs::metadata(input).map_err(|e| Error::io("cannot read", input, e))?;
    if meta.is_file() {
        return Ok((vec![input.to_path_buf()], 0));
    }
    let mut files = Vec::new();
    let mut hidden = 0;
    let mut stack = vec![input.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| Error::io("cannot list folder", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("cannot list folder", &dir, e))?;
            let path = entry.path();
            let is_hidden = entry.file_name().to_string_lossy().starts_with('.');
            let file_type = entry
                .file_type()
                .map_err(|e| Error::io("cannot read", &path, e))?;
            if file_type.is_dir() {
                if !is_hidden {
                    stack.push(path);
                }
                continue;
            }
            // Symbolic links are followed to files only (never to folders: no cycles).
            let is_file = file_type.is_file()
                || (file_type.is_symlink()
                    && std::fs::metadata(&path)
                        .map(|m| m.is_file())
                        .unwrap_or(false));
            if !is_file {
                continue;
            }
            if is_hidden {
                hidden += 1;
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok((files, hidden))
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Row cosine, column cosine and normal of an Image Orientation (Patient).
fn orientation_axes(iop: &[f64; 6]) -> Option<[[f64; 3]; 3]> {
    let r = [iop[0], iop[1], iop[2]];
    let c = [iop[3], iop[4], iop[5]];
    let (nr, nc) = (norm(r), norm(c));
    if !(nr > 0.5 && nc > 0.5 && nr < 1.5 && nc < 1.5) {
        return None;
    }
    let r = scale(r, 1.0 / nr);
    let c = scale(c, 1.0 / nc);
    if dot(r, c).abs() > 1e-3 {
        return None;
    }
    let n = cross(r, c);
    // `+ 0.0` turns -0.0 into 0.0 (tidier reports).
    let tidy = |v: [f64; 3]| v.map(|x| x + 0.0);
    Some([tidy(r), tidy(c), tidy(scale(n, 1.0 / norm(n)))])
}

/// A consistent stack of slices from one series: a candidate volume.
struct Candidate {
    series_uid: String,
    series_number: Option<i64>,
    description: Option<String>,
    slices: Vec<SliceHeader>,
    /// Slices left out of this series' stack (localizers, other geometry).
    left_out: Vec<String>,
    /// Number of distinct slice positions (the number of slices when unknown).
    distinct: usize,
    /// Median step along the normal, when positions are known.
    step: Option<f64>,
    /// Range and mean of LPS z of the slice positions, when known.
    z_range: Option<(f64, f64, f64)>,
}

impl Candidate {
    fn describe(&self) -> String {
        let mut s = match self.series_number {
            Some(n) => format!("series {n}"),
            None => "a series without number".to_string(),
        };
        if let Some(d) = &self.description {
            s.push_str(&format!(" '{d}'"));
        }
        s.push_str(&format!(" ({} slices", self.slices.len()));
        if let Some(step) = self.step {
            s.push_str(&format!(", step {step:.2} mm"));
        }
        if let Some((lo, hi, _)) = self.z_range {
            s.push_str(&format!(", z {lo:.1} to {hi:.1} mm"));
        }
        s.push(')');
        s
    }
}

/// Positions along the normal of slices that all have IPP and share one orientation.
fn normal_positions(slices: &[SliceHeader]) -> Option<([[f64; 3]; 3], Vec<f64>)> {
    let axes = orientation_axes(slices.first()?.orientation.as_ref()?)?;
    let pos = slices
        .iter()
        .map(|s| s.position.map(|p| dot(p, axes[2])))
        .collect::<Option<Vec<f64>>>()?;
    Some((axes, pos))
}

/// Number of distinct positions.
fn distinct_positions(positions: &[f64]) -> usize {
    let mut p = positions.to_vec();
    p.sort_by(f64::total_cmp);
    1 + p
        .windows(2)
        .filter(|w| w[1] - w[0] > SAME_POSITION_MM)
        .count()
}

/// Median of the steps between distinct sorted positions.
fn median_step(positions: &[f64]) -> Option<f64> {
    let mut p = positions.to_vec();
    p.sort_by(f64::total_cmp);
    let steps: Vec<f64> = p
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|&d| d > SAME_POSITION_MM)
        .collect();
    (!steps.is_empty()).then(|| median(&steps))
}

/// Builds the candidate stack of one CT series.
fn candidate(series_uid: String, mut slices: Vec<SliceHeader>) -> Option<Candidate> {
    let mut left_out = Vec::new();
    let localizers = slices.iter().filter(|s| s.localizer).count();
    if localizers > 0 && localizers < slices.len() {
        slices.retain(|s| !s.localizer);
        left_out.push(format!("{localizers} localizer image(s)"));
    }
    // Split by geometry; keep the largest consistent stack.
    type Key = (u32, u32, Option<[i64; 6]>, Option<[i64; 2]>);
    let key = |s: &SliceHeader| -> Key {
        (
            s.rows,
            s.cols,
            s.orientation.map(|o| o.map(|v| (v * 1e3).round() as i64)),
            s.pixel_spacing.map(|p| p.map(|v| (v * 1e4).round() as i64)),
        )
    };
    let mut by_key: BTreeMap<Key, Vec<SliceHeader>> = BTreeMap::new();
    for s in slices {
        by_key.entry(key(&s)).or_default().push(s);
    }
    let total: usize = by_key.values().map(Vec::len).sum();
    let slices = by_key
        .into_values()
        .reduce(|a, b| if b.len() > a.len() { b } else { a })?;
    if slices.len() < total {
        left_out.push(format!(
            "{} image(s) of another size, orientation or pixel spacing",
            total - slices.len()
        ));
    }
    let first = &slices[0];
    let (distinct, step, z_range) = match normal_positions(&slices) {
        Some((_, pos)) => {
            let zs: Vec<f64> = slices
                .iter()
                .filter_map(|s| s.position.map(|p| p[2]))
                .collect();
            let lo = zs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = zs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = zs.iter().sum::<f64>() / zs.len() as f64;
            (
                distinct_positions(&pos),
                median_step(&pos),
                Some((lo, hi, mean)),
            )
        }
        None => (slices.len(), None, None),
    };
    Some(Candidate {
        series_uid,
        series_number: first.series_number,
        description: first.series_description.clone(),
        left_out,
        distinct,
        step,
        z_range,
        slices,
    })
}

/// Orders candidates best first (see the module documentation).
fn rank(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    let opt = |x: Option<f64>| x.unwrap_or(f64::INFINITY);
    b.distinct
        .cmp(&a.distinct)
        .then(b.slices.len().cmp(&a.slices.len()))
        .then(opt(a.step).total_cmp(&opt(b.step)))
        .then(opt(a.z_range.map(|z| z.2)).total_cmp(&opt(b.z_range.map(|z| z.2))))
        .then(
            a.series_number
                .unwrap_or(i64::MAX)
                .cmp(&b.series_number.unwrap_or(i64::MAX)),
        )
        .then(a.series_uid.cmp(&b.series_uid))
}

/// Why `best` was preferred over `next`.
fn reason(best: &Candidate, next: &Candidate) -> &'static str {
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6,
        (None, None) => true,
        _ => false,
    };
    if best.distinct != next.distinct {
        "it has the most slice positions"
    } else if best.slices.len() != next.slices.len() {
        "it has the most slices"
    } else if !close(best.step, next.step) {
        "same number of slices, and it has the thinner slice step"
    } else if !close(best.z_range.map(|z| z.2), next.z_range.map(|z| z.2)) {
        "same number of slices and step, and it lies lower in the body (the lumbar spine lies below the chest)"
    } else if best.series_number != next.series_number {
        "same number of slices, step and position, and it has the lower series number"
    } else {
        "the series are alike, so the first by Series Instance UID was taken"
    }
}

fn ts_label(uid: &str) -> String {
    match TransferSyntaxRegistry.get(uid) {
        Some(ts) => format!("{uid} ({})", ts.name()),
        None => uid.to_string(),
    }
}

/// Reads the CT series in `input` (a folder, searched recursively, or one
/// file) as a volume of Hounsfield units. `progress(done, total)` is called
/// as slices are decoded (from several threads). See the module documentation
/// for which files are read, how the series is chosen and how slices are sorted.
pub fn read_series(input: &Path, progress: &(dyn Fn(usize, usize) + Sync)) -> Result<LoadedCt> {
    let (files, hidden) = list_files(input)?;
    let total_files = files.len() + hidden;
    if total_files == 0 {
        return Err(Error::Input(format!(
            "{} holds no files; give the folder that contains the CT slices (DICOM files, any names)",
            input.display()
        )));
    }
    let scanned: Vec<Scanned> = files.par_iter().map(|p| scan(p)).collect();
    let mut unreadable = Vec::new();
    let mut headers = Vec::new();
    for s in scanned {
        match s {
            Scanned::NotDicom => {}
            Scanned::Unreadable(p, e) => unreadable.push((p, e)),
            Scanned::Header(h) => headers.push(*h),
        }
    }
    let mut warnings = Vec::new();
    if let Some((p, e)) = unreadable.first() {
        if headers.is_empty() {
            return Err(Error::Input(format!(
                "{}: {} file(s) look like DICOM but none could be read (first: {}: {e}); the files may be truncated or damaged",
                input.display(),
                unreadable.len(),
                p.display()
            )));
        }
        warnings.push(format!(
            "{} file(s) look like DICOM but could not be read and were skipped (first: {}: {e})",
            unreadable.len(),
            p.display()
        ));
    }
    if headers.is_empty() {
        return Err(Error::Input(format!(
            "no DICOM files in {} ({total_files} file(s) searched, subfolders included); give the folder that holds the CT's DICOM slices",
            input.display()
        )));
    }
    let non_images: Vec<SliceHeader> = headers
        .iter()
        .filter(|h| h.rows == 0 || h.cols == 0)
        .cloned()
        .collect();
    headers.retain(|h| h.rows > 0 && h.cols > 0);
    if headers.is_empty() {
        let mut kinds: Vec<String> = non_images
            .iter()
            .map(|h| modality_label(&h.modality))
            .collect();
        kinds.sort();
        kinds.dedup();
        return Err(Error::Input(format!(
            "the {} DICOM file(s) in {} hold no images (modality {}); give the folder that holds the CT slices",
            non_images.len(),
            input.display(),
            kinds.join(", ")
        )));
    }
    let mut series: BTreeMap<String, Vec<SliceHeader>> = BTreeMap::new();
    for h in headers {
        series.entry(h.series_uid.clone()).or_default().push(h);
    }
    let series_found = series.len();
    let mut others: Vec<String> = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (uid, slices) in series {
        let modality = slices[0].modality.clone();
        if modality == "CT" {
            candidates.extend(candidate(uid, slices));
        } else {
            others.push(modality_label(&modality));
        }
    }
    if candidates.is_empty() {
        others.sort();
        others.dedup();
        return Err(Error::Input(format!(
            "no CT series in {}: found {series_found} image series of modality {}; spinemesh needs a CT series (values in Hounsfield units)",
            input.display(),
            others.join(", ")
        )));
    }
    candidates.sort_by(rank);
    let selection = if candidates.len() > 1 {
        let best = &candidates[0];
        let rest: Vec<String> = candidates[1..].iter().map(Candidate::describe).collect();
        Some(format!(
            "{} CT series found; took {} over {}: {}; to read another series, give a folder holding only its files",
            candidates.len(),
            best.describe(),
            rest.join(", "),
            reason(best, &candidates[1])
        ))
    } else if !others.is_empty() {
        others.sort();
        others.dedup();
        Some(format!(
            "took the only CT series; {} other image series ({}) skipped",
            series_found - 1,
            others.join(", ")
        ))
    } else {
        None
    };
    let chosen = candidates.swap_remove(0);
    if !chosen.left_out.is_empty() {
        warnings.push(format!(
            "left out of the chosen series: {}",
            chosen.left_out.join(", ")
        ));
    }
    let mut info = InputInfo {
        kind: "dicom".into(),
        series_description: chosen.description.clone(),
        series_number: chosen.series_number,
        series_found,
        selection,
        warnings,
        ..Default::default()
    };
    let volume = assemble(chosen.slices, &mut info, progress)?;
    info.files_read = volume.grid.dims[2];
    info.files_skipped = total_files - info.files_read;
    info.dims = volume.grid.dims;
    info.spacing_mm = volume.grid.spacing;
    Ok(LoadedCt { volume, info })
}

fn modality_label(m: &str) -> String {
    if m.is_empty() {
        "unknown".into()
    } else {
        m.to_string()
    }
}

/// Sorts, checks and decodes the slices of one stack into a volume.
fn assemble(
    mut slices: Vec<SliceHeader>,
    info: &mut InputInfo,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Volume<f32>> {
    let first = slices[0].clone();
    if first.frames > 1 {
        return Err(Error::format(
            &first.path,
            format!(
                "this is a multi-frame (enhanced) CT image with {} frames, which spinemesh does not read yet; export the series as classic single-frame CT slices",
                first.frames
            ),
        ));
    }
    let (rows, cols) = (first.rows as usize, first.cols as usize);
    let axes = match first.orientation.as_ref() {
        Some(iop) => orientation_axes(iop).ok_or_else(|| {
            Error::format(
                &first.path,
                "Image Orientation (Patient) is not two perpendicular unit vectors, so the slice geometry is unknown; fix or re-export the series",
            )
        })?,
        None => {
            info.warnings.push(
                "the slices have no Image Orientation (Patient); assumed axial (rows along L, columns along P)"
                    .into(),
            );
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
        }
    };
    let pixel_spacing = match first.pixel_spacing {
        Some(p) => p,
        None => {
            info.warnings
                .push("the slices have no Pixel Spacing; assumed 1 mm × 1 mm pixels".into());
            [1.0, 1.0]
        }
    };
    let by_instance = |a: &SliceHeader, b: &SliceHeader| {
        a.instance_number
            .unwrap_or(i64::MAX)
            .cmp(&b.instance_number.unwrap_or(i64::MAX))
            .then_with(|| a.path.cmp(&b.path))
    };
    let have_positions = slices.iter().all(|s| s.position.is_some());
    let mut positions: Option<Vec<f64>> = None;
    if have_positions {
        let pos_of = |s: &SliceHeader| dot(s.position.unwrap_or_default(), axes[2]);
        slices.sort_by(|a, b| {
            pos_of(a)
                .total_cmp(&pos_of(b))
                .then_with(|| by_instance(a, b))
        });
        let pos: Vec<f64> = slices.iter().map(pos_of).collect();
        if slices.len() > 1 && pos[pos.len() - 1] - pos[0] <= SAME_POSITION_MM {
            return Err(Error::Input(format!(
                "all {} slices of the CT series lie at one position ({:.2} mm along the slice normal), so they do not form a volume (e.g. repeated scans of one slice); give a series of slices through the body",
                slices.len(),
                pos[0]
            )));
        }
        positions = Some(pos);
    } else {
        slices.sort_by(by_instance);
        info.warnings.push(
            "some slices have no Image Position (Patient): slices were stacked by Instance Number, and the volume's place in the patient is unknown"
                .into(),
        );
    }

    // Decode every slice, in parallel.
    let n = slices.len();
    let npix = rows * cols;
    let total = npix.checked_mul(n).filter(|&t| t <= 1usize << 36);
    let fits = total.is_some_and(|t| Vec::<f32>::new().try_reserve_exact(t).is_ok());
    let (Some(total), true) = (total, fits) else {
        return Err(Error::Input(format!(
            "the CT series has {n} slices of {cols}×{rows} pixels, more than this computer can hold in memory; crop or downsample the series first"
        )));
    };
    // (calloc: the zero pages are only touched when written)
    let mut data = vec![0f32; total];
    let done = AtomicUsize::new(0);
    progress(0, n);
    data.par_chunks_mut(npix)
        .zip(slices.par_iter())
        .try_for_each(|(out, h)| -> Result<()> {
            decode_slice(h, out)?;
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(d, n);
            Ok(())
        })?;

    let mut ts: Vec<&str> = slices.iter().map(|s| s.transfer_syntax.as_str()).collect();
    ts.sort();
    ts.dedup();
    info.transfer_syntax = Some(
        ts.iter()
            .map(|u| ts_label(u))
            .collect::<Vec<_>>()
            .join(", "),
    );

    // Duplicates: same position. Identical pixels → keep one; different → error.
    let mut keep: Vec<usize> = Vec::with_capacity(n);
    if let Some(pos) = &positions {
        let mut duplicates = 0;
        for i in 0..n {
            match keep.last() {
                Some(&j) if pos[i] - pos[j] <= SAME_POSITION_MM => {
                    if data[i * npix..(i + 1) * npix] != data[j * npix..(j + 1) * npix] {
                        return Err(Error::Input(format!(
                            "two slices of the CT series lie at one position ({:.2} mm along the slice normal) but have different pixels ({} and {}): the series probably holds several scans or phases; put the slices of one scan in a folder of their own",
                            pos[i],
                            slices[j].path.display(),
                            slices[i].path.display()
                        )));
                    }
                    duplicates += 1;
                }
                _ => keep.push(i),
            }
        }
        if duplicates > 0 {
            info.warnings.push(format!(
                "{duplicates} duplicate slice(s) (same position, same pixels) were left out"
            ));
            let mut w = 0;
            for &i in &keep {
                if i != w {
                    data.copy_within(i * npix..(i + 1) * npix, w * npix);
                }
                w += 1;
            }
            data.truncate(w * npix);
        }
    } else {
        keep.extend(0..n);
    }
    let kept: Vec<&SliceHeader> = keep.iter().map(|&i| &slices[i]).collect();
    let nz = kept.len();

    // Step along the normal, evenness, tilt.
    // A single slice: its thickness; slices without positions: their spacing.
    let fallback_step = if nz == 1 {
        first.slice_thickness.or(first.spacing_between_slices)
    } else {
        first.spacing_between_slices.or(first.slice_thickness)
    }
    .unwrap_or(1.0);
    let (step, origin) = match &positions {
        Some(pos) if nz > 1 => {
            let p: Vec<f64> = keep.iter().map(|&i| pos[i]).collect();
            let steps: Vec<f64> = p.windows(2).map(|w| w[1] - w[0]).collect();
            let step = median(&steps);
            let lo = steps.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = steps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if (hi - step).max(step - lo) > (0.01 * step).max(0.01) {
                info.warnings.push(format!(
                    "uneven slice steps: from {lo:.3} to {hi:.3} mm (median {step:.3} mm); the volume is stacked at the median step, so distances along the slice axis are wrong where the step differs (a large step may mean missing slices)"
                ));
            }
            let a = kept[0].position.unwrap_or_default();
            let b = kept[nz - 1].position.unwrap_or_default();
            let v = sub(b, a);
            let along = dot(v, axes[2]);
            let sideways = norm(sub(v, scale(axes[2], along)));
            let angle = sideways.atan2(along.abs()).to_degrees();
            if sideways > 0.05 && angle > 0.1 {
                info.warnings.push(format!(
                    "the slices are sheared (gantry tilt of about {angle:.1}°): slice origins drift {sideways:.1} mm sideways over the stack; the volume is stacked along the slice normal without tilt correction, so anatomy is shifted by up to {sideways:.1} mm"
                ));
            }
            (step, a)
        }
        Some(_) => (fallback_step, kept[0].position.unwrap_or_default()),
        None => (fallback_step, [0.0; 3]),
    };
    let grid = Grid {
        dims: [cols, rows, nz],
        spacing: [pixel_spacing[1], pixel_spacing[0], step],
        origin,
        direction: axes,
    };
    Volume::new(grid, data)
}

/// Error for a slice whose pixels cannot be read.
fn pixel_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::format(
        path,
        format!("cannot read the slice's pixels ({what}); the file may be truncated or damaged: remove or replace it"),
    )
}

/// An error and its sources, joined by ": ".
fn error_chain(e: &dyn std::error::Error) -> String {
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
fn is_jpeg_dct(ts: &str) -> bool {
    ts == "1.2.840.10008.1.2.4.50" || ts == "1.2.840.10008.1.2.4.51"
}

/// Error for compressed pixel data that the decoders cannot decode.
fn decode_error(h: &SliceHeader, cause: &str) -> Error {
    Error::format(
        &h.path,
        format!(
            "cannot decode the pixel data in {} ({cause}); the file may be damaged or its compression unsupported: decompress the series first (e.g. with `dcmdjpeg` or `gdcmconv --raw`)",
            ts_label(&h.transfer_syntax)
        ),
    )
}

/// Decodes one slice into `out` (Hounsfield units).
fn decode_slice(h: &SliceHeader, out: &mut [f32]) -> Result<()> {
    if h.samples_per_pixel != 1 || !h.photometric.starts_with("MONOCHROME") {
        return Err(Error::format(
            &h.path,
            format!(
                "the image is in colour ({}, {} samples per pixel), not a CT grey-scale image; give a CT series",
                h.photometric, h.samples_per_pixel
            ),
        ));
    }
    if h.photometric == "MONOCHROME1" {
        return Err(Error::format(
            &h.path,
            "the image is MONOCHROME1 (inverted grey scale), which spinemesh does not read yet; convert the series to MONOCHROME2",
        ));
    }
    if h.frames > 1 {
        return Err(Error::format(
            &h.path,
            "multi-frame (enhanced) CT images are not read yet; export the series as classic single-frame CT slices",
        ));
    }
    if read_native_tail(h, out)? {
        return Ok(());
    }
    decode_parsed(h, out)
}

/// Decodes one slice by parsing the whole file (any transfer syntax).
fn decode_parsed(h: &SliceHeader, out: &mut [f32]) -> Result<()> {
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
            samples_to_hu(
                &bytes,
                h.bits_allocated,
                h.bits_stored,
                h.signed,
                rescale,
                out,
            )
            .map_err(|e| pixel_error(&h.path, e))
        }
        DicomValue::PixelSequence(seq) => {
            let decoded = match obj.decode_pixel_data() {
                Ok(d) => d,
                Err(e) if is_jpeg_dct(&h.transfer_syntax) => {
                    // jpeg-decoder has no 12-bit DCT: our own sequential decoder.
                    let stream: Vec<u8> = seq.fragments().iter().flatten().copied().collect();
                    let (w, ht, samples) = jpeg_dct::decode(&stream)
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

thread_local! {
    /// Per-thread buffer for the raw pixel bytes of one slice.
    static RAW: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Fast path for uncompressed little-endian pixel data that ends the file
/// (the usual layout): checks the Pixel Data element header just before the
/// expected number of bytes at the end of the file and converts those bytes
/// directly, without parsing the file again. Returns `Ok(false)` when the
/// file is laid out otherwise (the caller then parses it in full).
fn read_native_tail(h: &SliceHeader, out: &mut [f32]) -> Result<bool> {
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
    let padded = expected + expected % 2;
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
        buf.resize(header_len + padded, 0);
        f.seek(SeekFrom::Start(start)).map_err(io_err)?;
        f.read_exact(&mut buf).map_err(io_err)?;
        let tag_ok = buf[..4] == [0xE0, 0x7F, 0x10, 0x00];
        let len_ok = if header_len == 12 {
            matches!(&buf[4..8], b"OW\0\0" | b"OB\0\0") && buf[8..12] == value_len.to_le_bytes()
        } else {
            buf[4..8] == value_len.to_le_bytes()
        };
        if !(tag_ok && len_ok) {
            return Ok(false);
        }
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
fn samples_to_hu(
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

/// A decoder for sequential-DCT, Huffman-coded, single-component JPEG with 8-
/// or 12-bit samples (JPEG Baseline and Extended, processes 1, 2 and 4). It
/// backs up `jpeg-decoder`, which lacks 12-bit precision. Its inverse DCT is
/// libjpeg's integer one, so it decodes as DCMTK and GDCM do.
mod jpeg_dct {
    /// Zig-zag position → natural (row-major) position in an 8×8 block.
    const ZIGZAG: [usize; 64] = [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27,
        20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ];

    /// A canonical Huffman table.
    #[derive(Clone, Default)]
    struct Huffman {
        /// Largest code of each length 1..=16 (-1: none).
        max_code: [i32; 17],
        /// Index into `values` of the first code of each length, minus that code.
        offset: [i32; 17],
        values: Vec<u8>,
    }

    impl Huffman {
        fn new(counts: &[u8; 16], values: Vec<u8>) -> Result<Huffman, String> {
            let mut h = Huffman {
                max_code: [-1; 17],
                offset: [0; 17],
                values,
            };
            let (mut code, mut k) = (0i32, 0i32);
            for len in 1..=16 {
                let n = i32::from(counts[len - 1]);
                h.offset[len] = k - code;
                if n > 0 {
                    code += n;
                    k += n;
                    h.max_code[len] = code - 1;
                }
                code <<= 1;
            }
            if k as usize > h.values.len() || code > (1 << 17) {
                return Err("bad Huffman table".into());
            }
            Ok(h)
        }
    }

    /// Reads entropy-coded bits, removing stuffed zero bytes; at a marker it feeds zeros.
    struct Bits<'a> {
        data: &'a [u8],
        pos: usize,
        acc: u32,
        n: u32,
        marker: bool,
    }

    impl Bits<'_> {
        fn bit(&mut self) -> u32 {
            if self.n == 0 {
                let mut byte = 0;
                if !self.marker && self.pos < self.data.len() {
                    byte = self.data[self.pos];
                    if byte == 0xFF {
                        if self.data.get(self.pos + 1) == Some(&0) {
                            self.pos += 2;
                        } else {
                            self.marker = true;
                            byte = 0;
                        }
                    } else {
                        self.pos += 1;
                    }
                }
                self.acc = u32::from(byte);
                self.n = 8;
            }
            self.n -= 1;
            (self.acc >> self.n) & 1
        }

        fn bits(&mut self, count: u32) -> u32 {
            (0..count).fold(0, |v, _| (v << 1) | self.bit())
        }

        fn decode(&mut self, h: &Huffman) -> Result<u8, String> {
            let mut code = 0i32;
            for len in 1..=16 {
                code = (code << 1) | self.bit() as i32;
                if code <= h.max_code[len] {
                    return h
                        .values
                        .get((code + h.offset[len]) as usize)
                        .copied()
                        .ok_or_else(|| "bad Huffman code".to_string());
                }
            }
            Err("bad Huffman code in the JPEG data".into())
        }

        /// A `size`-bit difference, sign-extended (JPEG's RECEIVE and EXTEND).
        fn receive(&mut self, size: u8) -> i32 {
            if size == 0 {
                return 0;
            }
            let size = u32::from(size.min(16));
            let v = self.bits(size) as i32;
            if v < 1 << (size - 1) {
                v - (1 << size) + 1
            } else {
                v
            }
        }

        /// Moves past the next RSTn marker (a restart: byte-aligned, fresh state).
        fn restart(&mut self) {
            self.n = 0;
            self.marker = false;
            while self.pos + 1 < self.data.len()
                && !(self.data[self.pos] == 0xFF
                    && (0xD0..=0xD7).contains(&self.data[self.pos + 1]))
            {
                self.pos += 1;
            }
            self.pos = (self.pos + 2).min(self.data.len());
        }
    }

    fn u16_at(d: &[u8], at: usize) -> Result<usize, String> {
        d.get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(|| "the JPEG stream ends early".to_string())
    }

    /// What the frame and scan headers say.
    struct Frame {
        precision: u32,
        width: usize,
        height: usize,
        quant: [u16; 64],
        restart_interval: usize,
    }

    /// Decodes a single-component sequential DCT JPEG: (width, height, samples).
    pub(super) fn decode(d: &[u8]) -> Result<(u32, u32, Vec<u16>), String> {
        if d.get(..2) != Some(&[0xFF, 0xD8][..]) {
            return Err("no JPEG start-of-image marker".into());
        }
        let mut quant = [[0u16; 64]; 4];
        let mut dc: [Huffman; 4] = Default::default();
        let mut ac: [Huffman; 4] = Default::default();
        // precision, width, height, quantisation table
        let mut frame: Option<(u32, usize, usize, usize)> = None;
        let mut restart_interval = 0usize;
        let mut pos = 2;
        loop {
            while d.get(pos) == Some(&0xFF) && d.get(pos + 1) == Some(&0xFF) {
                pos += 1;
            }
            if d.get(pos) != Some(&0xFF) {
                return Err("a JPEG marker was expected".into());
            }
            let marker = *d.get(pos + 1).ok_or("the JPEG stream ends early")?;
            pos += 2;
            if marker == 0xD9 {
                return Err("the JPEG stream has no scan".into());
            }
            if (0xD0..=0xD8).contains(&marker) || marker == 0x01 {
                continue; // markers without a length
            }
            let len = u16_at(d, pos)?;
            if len < 2 {
                return Err("a JPEG segment has an invalid length".into());
            }
            let seg = d
                .get(pos + 2..pos + len)
                .ok_or("a JPEG segment runs past the end")?;
            match marker {
                0xDB => {
                    let mut i = 0;
                    while i < seg.len() {
                        let (wide, t) = (seg[i] >> 4 != 0, usize::from(seg[i] & 3));
                        i += 1;
                        for (k, q) in quant[t].iter_mut().enumerate() {
                            *q = if wide {
                                u16_at(seg, i + 2 * k)? as u16
                            } else {
                                u16::from(*seg.get(i + k).ok_or("short JPEG DQT segment")?)
                            };
                        }
                        i += if wide { 128 } else { 64 };
                    }
                }
                0xC4 => {
                    let mut i = 0;
                    while i + 17 <= seg.len() {
                        let (class, t) = (seg[i] >> 4, usize::from(seg[i] & 3));
                        let mut counts = [0u8; 16];
                        counts.copy_from_slice(&seg[i + 1..i + 17]);
                        let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
                        let values = seg
                            .get(i + 17..i + 17 + n)
                            .ok_or("short JPEG DHT segment")?
                            .to_vec();
                        let table = Huffman::new(&counts, values)?;
                        if class == 0 {
                            dc[t] = table;
                        } else {
                            ac[t] = table;
                        }
                        i += 17 + n;
                    }
                }
                0xC0 | 0xC1 => {
                    if seg.len() < 9 || seg[5] != 1 {
                        return Err("only single-component (grey-scale) JPEG is supported".into());
                    }
                    let precision = u32::from(seg[0]);
                    if precision != 8 && precision != 12 {
                        return Err(format!(
                            "JPEG sample precision {precision} is not supported"
                        ));
                    }
                    let (h, w) = (u16_at(seg, 1)?, u16_at(seg, 3)?);
                    if w == 0 || h == 0 {
                        return Err("the JPEG image has no size".into());
                    }
                    frame = Some((precision, w, h, usize::from(seg[8] & 3)));
                }
                0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                    return Err("only sequential Huffman-coded DCT JPEG is supported here".into());
                }
                0xDD => restart_interval = u16_at(seg, 0)?,
                0xDA => {
                    let (precision, width, height, qt) =
                        frame.ok_or("JPEG scan before the frame header")?;
                    let tables = *seg.get(2).ok_or("short JPEG SOS segment")?;
                    let (dct, act) = (usize::from(tables >> 4) & 3, usize::from(tables & 3));
                    let f = Frame {
                        precision,
                        width,
                        height,
                        quant: quant[qt],
                        restart_interval,
                    };
                    return decode_scan(&d[pos + len..], &f, &dc[dct], &ac[act]);
                }
                _ => {}
            }
            pos += len;
        }
    }

    /// The inverse DCT of one dequantised block (natural order), exactly as
    /// libjpeg's `jpeg_idct_islow` (IJG 6b, `jidctint.c`) computes it, so
    /// decoded samples match libjpeg-based decoders (DCMTK, GDCM). Returns
    /// samples before the level shift, rounded.
    fn idct_islow(coef: &[i64; 64], precision: u32) -> [i64; 64] {
        const CONST_BITS: u32 = 13;
        let pass1: u32 = if precision == 8 { 2 } else { 1 };
        let descale = |x: i64, n: u32| (x + (1 << (n - 1))) >> n;
        // One 8-point pass over `v[0..8]` (stride already applied); returns the
        // 8 outputs before descaling.
        let pass = |v: [i64; 8]| -> [i64; 8] {
            let (z2, z3) = (v[2], v[6]);
            let z1 = (z2 + z3) * 4433;
            let tmp2 = z1 - z3 * 15137;
            let tmp3 = z1 + z2 * 6270;
            let tmp0 = (v[0] + v[4]) << CONST_BITS;
            let tmp1 = (v[0] - v[4]) << CONST_BITS;
            let (t10, t13, t11, t12) = (tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2);
            let (o0, o1, o2, o3) = (v[7], v[5], v[3], v[1]);
            let (z1, z2, z3, z4) = (o0 + o3, o1 + o2, o0 + o2, o1 + o3);
            let z5 = (z3 + z4) * 9633;
            let (o0, o1, o2, o3) = (o0 * 2446, o1 * 16819, o2 * 25172, o3 * 12299);
            let (z1, z2) = (z1 * -7373, z2 * -20995);
            let (z3, z4) = (z3 * -16069 + z5, z4 * -3196 + z5);
            let (o0, o1, o2, o3) = (o0 + z1 + z3, o1 + z2 + z4, o2 + z2 + z3, o3 + z1 + z4);
            [
                t10 + o3,
                t11 + o2,
                t12 + o1,
                t13 + o0,
                t13 - o0,
                t12 - o1,
                t11 - o2,
                t10 - o3,
            ]
        };
        let mut ws = [0i64; 64];
        for c in 0..8 {
            let col = pass(std::array::from_fn(|r| coef[r * 8 + c]));
            for r in 0..8 {
                ws[r * 8 + c] = descale(col[r], CONST_BITS - pass1);
            }
        }
        let mut out = [0i64; 64];
        for r in 0..8 {
            let row = pass(std::array::from_fn(|c| ws[r * 8 + c]));
            for c in 0..8 {
                out[r * 8 + c] = descale(row[c], CONST_BITS + pass1 + 3);
            }
        }
        out
    }

    fn decode_scan(
        data: &[u8],
        f: &Frame,
        dc: &Huffman,
        ac: &Huffman,
    ) -> Result<(u32, u32, Vec<u16>), String> {
        let (w, h) = (f.width, f.height);
        let (bw, bh) = (w.div_ceil(8), h.div_ceil(8));
        let mut out = vec![0u16; w * h];
        let mut bits = Bits {
            data,
            pos: 0,
            acc: 0,
            n: 0,
            marker: false,
        };
        let (level, top) = (1i64 << (f.precision - 1), (1i64 << f.precision) - 1);
        let q = &f.quant;
        let mut pred = 0i32;
        for block in 0..bw * bh {
            if f.restart_interval > 0 && block > 0 && block % f.restart_interval == 0 {
                bits.restart();
                pred = 0;
            }
            let mut coef = [0i64; 64];
            let t = bits.decode(dc)?;
            pred = pred.wrapping_add(bits.receive(t));
            coef[0] = i64::from(pred) * i64::from(q[0]);
            let mut k = 1;
            while k < 64 {
                let rs = bits.decode(ac)?;
                let (run, size) = (usize::from(rs >> 4), rs & 15);
                if size == 0 {
                    if run == 15 {
                        k += 16;
                        continue;
                    }
                    break;
                }
                k += run;
                if k > 63 {
                    return Err("corrupt JPEG data (coefficient index past 63)".into());
                }
                coef[ZIGZAG[k]] = i64::from(bits.receive(size)) * i64::from(q[k]);
                k += 1;
            }
            let samples = idct_islow(&coef, f.precision);
            let (bx, by) = (block % bw * 8, block / bw * 8);
            for y in 0..8.min(h - by) {
                for x in 0..8.min(w - bx) {
                    let v = samples[y * 8 + x] + level;
                    out[(by + y) * w + bx + x] = v.clamp(0, top) as u16;
                }
            }
        }
        Ok((w as u32, h as u32, out))
    }
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// Options for [`write_series`].
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Seed of the generated Study/Series/SOP Instance UIDs (together with the
    /// volume's content): the same volume and options give byte-identical files.
    pub seed: u64,
    /// Series Description (0008,103E), at most 64 characters.
    pub series_description: String,
    /// Series Number (0020,0011).
    pub series_number: i32,
    /// Patient's Name (0010,0010), at most 64 characters.
    pub patient_name: String,
    /// Patient ID (0010,0020), at most 64 characters.
    pub patient_id: String,
    /// When true, file names `IMnnnnn.dcm` and Instance Numbers follow a
    /// pseudo-random permutation of the slices (from `seed`) instead of the
    /// slice order, so readers must sort by position.
    pub shuffle_names: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            seed: 0,
            series_description: "spinemesh CT".into(),
            series_number: 1,
            patient_name: "PHANTOM^SPINEMESH".into(),
            patient_id: "PHANTOM".into(),
            shuffle_names: false,
        }
    }
}

/// SplitMix64 finaliser.
fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A small deterministic 128-bit hash (two independent 64-bit lanes).
#[derive(Clone, Copy)]
struct Hash128(u64, u64);

impl Hash128 {
    fn new(seed: u64) -> Self {
        Hash128(mix64(seed ^ 0x5350_494E_454D_4553), mix64(!seed))
    }
    fn add(&mut self, w: u64) {
        self.0 = mix64(self.0 ^ w);
        self.1 = mix64(self.1.rotate_left(17) ^ w.wrapping_mul(0xA24B_AED4_963E_E407));
    }
    fn add_bytes(&mut self, b: &[u8]) {
        self.add(b.len() as u64);
        for c in b.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
    }
    /// A `2.25.<decimal>` UID for (`kind`, `index`).
    fn uid(&self, kind: u64, index: u64) -> String {
        let mut h = *self;
        h.add(kind);
        h.add(index);
        let v = (u128::from(h.0) << 64 | u128::from(h.1)) >> 1; // stays below 2^127
        format!("2.25.{}", v.max(1))
    }
}

/// Hash of one slice's values (bit patterns), four independent lanes for speed.
fn hash_values(values: &[f32]) -> u64 {
    let mut lanes = [1u64, 2, 3, 4];
    let chunks = values.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l = (*l ^ u64::from(v.to_bits())).wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    let mut h = Hash128::new(values.len() as u64);
    for l in lanes {
        h.add(l);
    }
    for v in rest {
        h.add(u64::from(v.to_bits()));
    }
    h.0
}

/// A decimal string (DS) of at most 16 characters.
fn ds(v: f64) -> String {
    fn trim(s: String) -> String {
        let s = if s.contains('.') && !s.contains('e') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        if s == "-0" {
            "0".into()
        } else {
            s
        }
    }
    if !v.is_finite() {
        return "0".into();
    }
    let s = format!("{v}");
    if s.len() <= 16 {
        return trim(s);
    }
    for prec in (0..=15).rev() {
        let s = trim(format!("{v:.prec$}"));
        if s.len() <= 16 && (s != "0" || v.abs() < 5e-15) {
            return s;
        }
    }
    for prec in (0..=10).rev() {
        let s = format!("{v:.prec$e}");
        if s.len() <= 16 {
            return s;
        }
    }
    "0".into()
}

fn ds_multi(values: &[f64]) -> String {
    values.iter().map(|&v| ds(v)).collect::<Vec<_>>().join("\\")
}

/// Value representations with a 4-byte length in explicit VR.
fn long_vr(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

/// Encodes data elements (in ascending tag order) into bytes.
struct Encoder {
    buf: Vec<u8>,
    explicit: bool,
}

impl Encoder {
    fn new(explicit: bool, capacity: usize) -> Self {
        Encoder {
            buf: Vec::with_capacity(capacity),
            explicit,
        }
    }

    fn header(&mut self, tag: u32, vr: [u8; 2], len: u32) {
        self.buf
            .extend_from_slice(&((tag >> 16) as u16).to_le_bytes());
        self.buf.extend_from_slice(&(tag as u16).to_le_bytes());
        if self.explicit {
            self.buf.extend_from_slice(&vr);
            if long_vr(vr) {
                self.buf.extend_from_slice(&[0, 0]);
                self.buf.extend_from_slice(&len.to_le_bytes());
            } else {
                self.buf.extend_from_slice(&(len as u16).to_le_bytes());
            }
        } else {
            self.buf.extend_from_slice(&len.to_le_bytes());
        }
    }

    /// An element; pads odd values (NUL for UI and binary VRs, space for text).
    fn put(&mut self, tag: u32, vr: [u8; 2], value: &[u8]) {
        let pad = value.len() % 2;
        self.header(tag, vr, (value.len() + pad) as u32);
        self.buf.extend_from_slice(value);
        if pad == 1 {
            let byte = if matches!(&vr, b"UI" | b"OB" | b"UN") {
                0
            } else {
                b' '
            };
            self.buf.push(byte);
        }
    }

    fn text(&mut self, tag: u32, vr: [u8; 2], value: &str) {
        self.put(tag, vr, value.as_bytes());
    }

    fn us(&mut self, tag: u32, value: u16) {
        self.put(tag, *b"US", &value.to_le_bytes());
    }
}

/// Preamble, `DICM` and the file meta group (always explicit VR little endian).
fn file_meta(sop_class: &str, sop_instance: &str, transfer_syntax: &str) -> Vec<u8> {
    let mut group = Encoder::new(true, 256);
    group.put(0x0002_0001, *b"OB", &[0, 1]);
    group.text(0x0002_0002, *b"UI", sop_class);
    group.text(0x0002_0003, *b"UI", sop_instance);
    group.text(0x0002_0010, *b"UI", transfer_syntax);
    group.text(0x0002_0012, *b"UI", IMPLEMENTATION_CLASS_UID);
    group.text(0x0002_0013, *b"SH", IMPLEMENTATION_VERSION);
    let mut out = Encoder::new(true, 132 + 12 + group.buf.len());
    out.buf.extend_from_slice(&[0u8; 128]);
    out.buf.extend_from_slice(b"DICM");
    out.put(0x0002_0000, *b"UL", &(group.buf.len() as u32).to_le_bytes());
    out.buf.extend_from_slice(&group.buf);
    out.buf
}

/// What every slice of a written series shares.
struct SeriesHeader {
    charset: Option<&'static str>,
    study_uid: String,
    series_uid: String,
    frame_uid: String,
    description: String,
    series_number: String,
    patient_name: String,
    patient_id: String,
    orientation: String,
    pixel_spacing: String,
    slice_thickness: String,
    rows: u16,
    cols: u16,
}

/// The data set of one slice, without the pixel data element.
fn slice_dataset(
    s: &SeriesHeader,
    explicit: bool,
    sop_uid: &str,
    instance: usize,
    position: [f64; 3],
    location: f64,
    capacity: usize,
) -> Encoder {
    let mut e = Encoder::new(explicit, capacity);
    if let Some(cs) = s.charset {
        e.text(0x0008_0005, *b"CS", cs);
    }
    e.text(0x0008_0008, *b"CS", "DERIVED\\SECONDARY\\AXIAL");
    e.text(0x0008_0016, *b"UI", CT_IMAGE_STORAGE);
    e.text(0x0008_0018, *b"UI", sop_uid);
    e.text(0x0008_0020, *b"DA", "");
    e.text(0x0008_0030, *b"TM", "");
    e.text(0x0008_0050, *b"SH", "");
    e.text(0x0008_0060, *b"CS", "CT");
    e.text(0x0008_0070, *b"LO", "");
    e.text(0x0008_0090, *b"PN", "");
    e.text(0x0008_103E, *b"LO", &s.description);
    e.text(0x0010_0010, *b"PN", &s.patient_name);
    e.text(0x0010_0020, *b"LO", &s.patient_id);
    e.text(0x0010_0030, *b"DA", "");
    e.text(0x0010_0040, *b"CS", "");
    e.text(0x0018_0050, *b"DS", &s.slice_thickness);
    e.text(0x0018_0060, *b"DS", "");
    e.text(0x0020_000D, *b"UI", &s.study_uid);
    e.text(0x0020_000E, *b"UI", &s.series_uid);
    e.text(0x0020_0010, *b"SH", "");
    e.text(0x0020_0011, *b"IS", &s.series_number);
    e.text(0x0020_0012, *b"IS", "");
    e.text(0x0020_0013, *b"IS", &instance.to_string());
    e.text(0x0020_0032, *b"DS", &ds_multi(&position));
    e.text(0x0020_0037, *b"DS", &s.orientation);
    e.text(0x0020_0052, *b"UI", &s.frame_uid);
    e.text(0x0020_1040, *b"LO", "");
    e.text(0x0020_1041, *b"DS", &ds(location));
    e.us(0x0028_0002, 1);
    e.text(0x0028_0004, *b"CS", "MONOCHROME2");
    e.us(0x0028_0010, s.rows);
    e.us(0x0028_0011, s.cols);
    e.text(0x0028_0030, *b"DS", &s.pixel_spacing);
    e.us(0x0028_0100, 16);
    e.us(0x0028_0101, 16);
    e.us(0x0028_0102, 15);
    e.us(0x0028_0103, 1);
    e.text(0x0028_1052, *b"DS", "0");
    e.text(0x0028_1053, *b"DS", "1");
    e.text(0x0028_1054, *b"LO", "HU");
    e
}

/// HU (f32) to the stored int16: rounded, clamped; NaN gives 0.
#[inline]
fn to_i16(v: f32) -> i16 {
    v.round().clamp(-32768.0, 32767.0) as i16
}

/// Appends a slice's values as little-endian int16.
fn push_i16(buf: &mut Vec<u8>, values: &[f32]) {
    let start = buf.len();
    buf.resize(start + 2 * values.len(), 0);
    for (c, &v) in buf[start..].chunks_exact_mut(2).zip(values) {
        c.copy_from_slice(&to_i16(v).to_le_bytes());
    }
}

fn check_text(what: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max || value.chars().any(|c| c.is_control() || c == '\\') {
        return Err(Error::Parameter(format!(
            "the DICOM {what} must be at most {max} characters without backslashes or control characters"
        )));
    }
    Ok(())
}

/// A pseudo-random permutation of `0..n` from `seed` (Fisher–Yates).
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    let mut state = mix64(seed ^ 0x5348_5546_464C_4521);
    for i in (1..n).rev() {
        state = mix64(state);
        let j = (state % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

/// Everything needed to write the slices of one volume.
struct SeriesPlan {
    header: SeriesHeader,
    uids: Hash128,
    /// File number (1-based, also the Instance Number) of each z slice.
    numbers: Vec<usize>,
}

fn plan_series(volume: &Volume<f32>, opts: &WriteOptions) -> Result<SeriesPlan> {
    let g = &volume.grid;
    let [nx, ny, nz] = g.dims;
    if nx == 0 || ny == 0 || nz == 0 || volume.data.len() != g.len() {
        return Err(Error::Parameter(format!(
            "cannot write an empty or inconsistent volume ({nx}×{ny}×{nz} voxels, {} values) as DICOM",
            volume.data.len()
        )));
    }
    if nx > 65535 || ny > 65535 {
        return Err(Error::Parameter(format!(
            "cannot write slices of {nx}×{ny} pixels as DICOM: rows and columns must be at most 65535"
        )));
    }
    let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
    let valid = finite(&g.spacing)
        && g.spacing.iter().all(|&s| s > 0.0)
        && finite(&g.origin)
        && g.direction.iter().all(|d| finite(d));
    if !valid {
        return Err(Error::Parameter(
            "cannot write DICOM: the volume's spacing must be positive and its origin and directions finite"
                .into(),
        ));
    }
    let (r, c) = (g.direction[0], g.direction[1]);
    if (norm(r) - 1.0).abs() > 1e-3 || (norm(c) - 1.0).abs() > 1e-3 || dot(r, c).abs() > 1e-3 {
        return Err(Error::Parameter(
            "cannot write DICOM: the volume's x and y directions must be perpendicular unit vectors"
                .into(),
        ));
    }
    check_text("series description", &opts.series_description, 64)?;
    check_text("patient name", &opts.patient_name, 64)?;
    check_text("patient ID", &opts.patient_id, 64)?;

    // UIDs: from the seed, the geometry, the options and every slice's content.
    let npix = nx * ny;
    let slice_hashes: Vec<u64> = volume.data.par_chunks(npix).map(hash_values).collect();
    let mut h = Hash128::new(opts.seed);
    for d in g.dims {
        h.add(d as u64);
    }
    for v in g
        .spacing
        .iter()
        .chain(&g.origin)
        .chain(g.direction.iter().flatten())
    {
        h.add(v.to_bits());
    }
    h.add_bytes(opts.series_description.as_bytes());
    h.add(opts.series_number as u64);
    for s in slice_hashes {
        h.add(s);
    }
    let numbers: Vec<usize> = if opts.shuffle_names {
        permutation(nz, opts.seed)
            .into_iter()
            .map(|i| i + 1)
            .collect()
    } else {
        (1..=nz).collect()
    };
    let ascii = [
        &opts.series_description,
        &opts.patient_name,
        &opts.patient_id,
    ]
    .iter()
    .all(|s| s.is_ascii());
    let header = SeriesHeader {
        charset: (!ascii).then_some("ISO_IR 192"),
        study_uid: h.uid(1, 0),
        series_uid: h.uid(2, 0),
        frame_uid: h.uid(3, 0),
        description: opts.series_description.clone(),
        series_number: opts.series_number.to_string(),
        patient_name: opts.patient_name.clone(),
        patient_id: opts.patient_id.clone(),
        orientation: ds_multi(&[r[0], r[1], r[2], c[0], c[1], c[2]]),
        pixel_spacing: ds_multi(&[g.spacing[1], g.spacing[0]]),
        slice_thickness: ds(g.spacing[2]),
        rows: ny as u16,
        cols: nx as u16,
    };
    Ok(SeriesPlan {
        header,
        uids: h,
        numbers,
    })
}

/// The complete Part 10 bytes of slice `k` (explicit VR little endian).
fn slice_file(volume: &Volume<f32>, plan: &SeriesPlan, k: usize) -> Vec<u8> {
    let g = &volume.grid;
    let npix = g.dims[0] * g.dims[1];
    let sop_uid = plan.uids.uid(4, k as u64);
    let position = g.index_to_lps([0.0, 0.0, k as f64]);
    let normal = cross(g.direction[0], g.direction[1]);
    let location = dot(position, scale(normal, 1.0 / norm(normal)));
    let meta = file_meta(CT_IMAGE_STORAGE, &sop_uid, EXPLICIT_VR_LE);
    let mut e = slice_dataset(
        &plan.header,
        true,
        &sop_uid,
        plan.numbers[k],
        position,
        location,
        meta.len() + 2048 + 2 * npix,
    );
    let mut bytes = meta;
    bytes.append(&mut e.buf);
    let mut px = Encoder::new(true, 12);
    px.header(0x7FE0_0010, *b"OW", (2 * npix) as u32);
    bytes.extend_from_slice(&px.buf);
    push_i16(&mut bytes, &volume.data[k * npix..(k + 1) * npix]);
    bytes
}

/// Writes a CT volume (HU) into `dir` as a DICOM series, one CT Image Storage
/// file per z slice (`IM00001.dcm`, ...; see [`WriteOptions::shuffle_names`]).
/// Creates `dir` if needed; each file is written atomically. Returns the file
/// paths in slice order (z index 0 first).
pub fn write_series(volume: &Volume<f32>, dir: &Path, opts: &WriteOptions) -> Result<Vec<PathBuf>> {
    let plan = plan_series(volume, opts)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create folder", dir, e))?;
    (0..volume.grid.dims[2])
        .into_par_iter()
        .map(|k| {
            let path = dir.join(format!("IM{:05}.dcm", plan.numbers[k]));
            atomic::write_bytes(&path, &slice_file(volume, &plan, k))?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn no_progress(_: usize, _: usize) {}

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

    const ROWS: usize = 16;
    const COLS: usize = 20;
    const NPIX: usize = ROWS * COLS;

    /// How stored samples are laid out in a test slice.
    #[derive(Clone, Copy)]
    struct Layout {
        bits_allocated: u16,
        bits_stored: u16,
        signed: bool,
        slope: f64,
        intercept: f64,
    }

    const SIGNED16: Layout = Layout {
        bits_allocated: 16,
        bits_stored: 16,
        signed: true,
        slope: 1.0,
        intercept: 0.0,
    };

    /// A minimal CT data set (explicit or implicit VR), without pixel data.
    fn test_dataset(explicit: bool, k: usize, l: Layout) -> Vec<u8> {
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
    fn native_pixels(explicit: bool, bytes: &[u8]) -> Vec<u8> {
        let mut e = Encoder::new(explicit, bytes.len() + 12);
        e.put(0x7FE0_0010, *b"OW", bytes);
        e.buf
    }

    /// Encapsulated pixel data element: empty offset table, one fragment.
    fn encapsulated(frame: &[u8]) -> Vec<u8> {
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
    fn packbits(b: &[u8], out: &mut Vec<u8>) {
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
    fn rle_frame(samples: &[u16]) -> Vec<u8> {
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
    struct BitWriter {
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
    fn jpeg_lossless(samples: &[u16]) -> Vec<u8> {
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
    fn samples16(k: usize) -> Vec<i16> {
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

    fn write_file(dir: &Path, name: &str, ts: &str, k: usize, dataset: &[u8], pixels: &[u8]) {
        let mut bytes = file_meta(CT_IMAGE_STORAGE, &format!("2.25.{}", 1000 + k), ts);
        if ts == "1.2.840.10008.1.2.1.99" {
            let mut z =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(dataset).unwrap();
            z.write_all(pixels).unwrap();
            bytes.extend(z.finish().unwrap());
        } else {
            bytes.extend_from_slice(dataset);
            bytes.extend_from_slice(pixels);
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    fn read_dir(dir: &Path) -> LoadedCt {
        read_series(dir, &no_progress).unwrap()
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
            let (mut fast, mut full) = (vec![0f32; NPIX], vec![0f32; NPIX]);
            assert_eq!(read_native_tail(&h, &mut fast).unwrap(), k < 2);
            decode_parsed(&h, &mut full).unwrap();
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
            let (w, h, ours) = jpeg_dct::decode(&stream).unwrap();
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
    fn refuses_colour_monochrome1_and_multiframe() {
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
            let e = read_series(&dir, &no_progress).err().unwrap().to_string();
            assert!(
                e.contains(if k == 0 { "MONOCHROME1" } else { "multi-frame" }),
                "{e}"
            );
        }
    }

    /// A 12-bit JPEG Extended stream of blocks with constant values (DC
    /// only, quantiser 8, so each block decodes exactly to its value), with
    /// a restart marker every 2 blocks. Image 24×16 (3×2 blocks).
    fn jpeg12_blocks(values: &[u16; 6]) -> Vec<u8> {
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
        let (w, h, samples) = jpeg_dct::decode(&jpeg12_blocks(&values[0])).unwrap();
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
            expected.extend(
                (0..24 * 16).map(|i| f32::from(v[(i / 24 / 8) * 3 + (i % 24) / 8]) - 1024.0),
            );
        }
        let ct = read_dir(tmp.path());
        assert_eq!(ct.volume.grid.dims, [24, 16, 2]);
        assert_eq!(ct.volume.data, expected);
    }

    /// Decodes one file the way `read_series` decodes a slice.
    fn decode_file(path: &Path) -> Result<(SliceHeader, Vec<f32>)> {
        let Scanned::Header(h) = scan(path) else {
            return Err(Error::Input("not readable".into()));
        };
        let mut out = vec![0f32; h.rows as usize * h.cols as usize];
        decode_slice(&h, &mut out)?;
        Ok((*h, out))
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
                return skip(
                    "python3 with pydicom, pylibjpeg and pylibjpeg-openjpeg is not available",
                )
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
}
