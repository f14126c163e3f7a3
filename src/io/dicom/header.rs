//! Finding DICOM files and parsing their headers (everything before the pixel data).

use super::*;
use dicom_object::InMemDicomObject;

/// What one image (a file, or one frame of a multi-frame file) says, from
/// its header: nothing that identifies the patient is kept.
#[derive(Clone, Debug)]
pub(crate) struct SliceHeader {
    pub(crate) path: PathBuf,
    pub(crate) preamble: ReadPreamble,
    pub(crate) transfer_syntax: String,
    pub(crate) modality: String,
    pub(crate) sop_class: String,
    pub(crate) series_uid: String,
    pub(crate) series_number: Option<i64>,
    pub(crate) series_description: Option<String>,
    /// Image Type, upper case, values joined by `\`.
    pub(crate) image_type: Option<String>,
    /// Convolution Kernel, values joined by `\`.
    pub(crate) kernel: Option<String>,
    pub(crate) rows: u32,
    pub(crate) cols: u32,
    pub(crate) samples_per_pixel: u16,
    pub(crate) photometric: String,
    pub(crate) bits_allocated: u16,
    pub(crate) bits_stored: u16,
    pub(crate) signed: bool,
    /// Number of frames in the file.
    pub(crate) frames: u32,
    /// Which frame of the file this image is (0 for single-frame files).
    pub(crate) frame: u32,
    pub(crate) position: Option<[f64; 3]>,
    pub(crate) orientation: Option<[f64; 6]>,
    pub(crate) pixel_spacing: Option<[f64; 2]>,
    pub(crate) slice_thickness: Option<f64>,
    pub(crate) spacing_between_slices: Option<f64>,
    pub(crate) instance_number: Option<i64>,
    pub(crate) slope: f64,
    pub(crate) intercept: f64,
    /// Pixel Padding Value and Pixel Padding Range Limit, stored values.
    pub(crate) padding: Option<(i64, Option<i64>)>,
    /// Gantry/Detector Tilt (0018,1120), degrees: shown, never trusted.
    pub(crate) tilt_tag: Option<f64>,
    pub(crate) localizer: bool,
}

/// The result of looking at one file.
pub(crate) enum Scanned {
    NotDicom,
    Unreadable(PathBuf, String),
    /// One header per frame (one for ordinary single-frame files).
    Header(Vec<SliceHeader>),
}

/// Reads up to `buf.len()` bytes; returns how many were read.
pub(crate) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
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
pub(crate) fn sniff(path: &Path) -> std::io::Result<Option<ReadPreamble>> {
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

pub(crate) fn scan(path: &Path) -> Scanned {
    let preamble = match sniff(path) {
        Ok(Some(p)) => p,
        Ok(None) => return Scanned::NotDicom,
        Err(e) => return Scanned::Unreadable(path.to_path_buf(), e.to_string()),
    };
    // A hostile header must never bring the program down.
    let parsed = std::panic::catch_unwind(|| read_header(path, preamble))
        .unwrap_or_else(|_| Err("the header could not be parsed".to_string()));
    match parsed {
        Ok(h) => Scanned::Header(h),
        Err(e) => Scanned::Unreadable(path.to_path_buf(), e),
    }
}

/// Values of a data set, trimmed; shared by the top level and functional groups.
struct Fields<'a>(&'a InMemDicomObject);

impl Fields<'_> {
    fn text(&self, tag: dicom_core::Tag) -> Option<String> {
        self.0
            .get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|v| {
                v.trim_matches(|c: char| c.is_whitespace() || c == '\0')
                    .to_string()
            })
            .filter(|v| !v.is_empty())
    }
    fn floats(&self, tag: dicom_core::Tag, n: usize) -> Option<Vec<f64>> {
        self.0
            .get(tag)
            .and_then(|e| e.to_multi_float64().ok())
            .filter(|v| v.len() >= n && v[..n].iter().all(|x| x.is_finite()))
    }
    fn float(&self, tag: dicom_core::Tag) -> Option<f64> {
        self.floats(tag, 1).map(|v| v[0])
    }
    fn int(&self, tag: dicom_core::Tag) -> Option<i64> {
        let e = self.0.get(tag)?;
        e.to_int::<i64>().ok().or_else(|| {
            e.to_float64()
                .ok()
                .filter(|v| v.is_finite() && v.abs() < 1e15)
                .map(|v| v.round() as i64)
        })
    }
    fn uint(&self, tag: dicom_core::Tag) -> Option<u32> {
        self.int(tag).and_then(|v| u32::try_from(v).ok())
    }
    /// The first item of sequence `tag`.
    fn item(&self, tag: dicom_core::Tag) -> Option<Fields<'_>> {
        self.0
            .get(tag)
            .and_then(|e| e.items())
            .and_then(|i| i.first())
            .map(Fields)
    }
    fn position(&self) -> Option<[f64; 3]> {
        self.floats(tags::IMAGE_POSITION_PATIENT, 3)
            .map(|v| [v[0], v[1], v[2]])
    }
    fn orientation(&self) -> Option<[f64; 6]> {
        self.floats(tags::IMAGE_ORIENTATION_PATIENT, 6)
            .map(|v| [v[0], v[1], v[2], v[3], v[4], v[5]])
    }
    fn pixel_spacing(&self) -> Option<[f64; 2]> {
        self.floats(tags::PIXEL_SPACING, 2)
            .or_else(|| self.floats(tags::IMAGER_PIXEL_SPACING, 2))
            .filter(|v| v[0] > 0.0 && v[1] > 0.0 && v[0] < 1e6 && v[1] < 1e6)
            .map(|v| [v[0], v[1]])
    }
}

/// Most frames a multi-frame file may hold.
const MAX_FRAMES: u32 = 1 << 16;

/// Parses one file's header (everything before the pixel data): one
/// [`SliceHeader`] per frame.
pub(crate) fn read_header(
    path: &Path,
    preamble: ReadPreamble,
) -> std::result::Result<Vec<SliceHeader>, String> {
    let obj = OpenFileOptions::new()
        .read_preamble(preamble)
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| e.to_string())?;
    let f = Fields(&obj);
    let bits_allocated = f.uint(tags::BITS_ALLOCATED).unwrap_or(16).min(64) as u16;
    let signed = f.int(tags::PIXEL_REPRESENTATION) == Some(1);
    // Pixel Padding Value is US or SS: read as unsigned, it must be reinterpreted.
    let stored = |v: i64| -> i64 {
        if signed && bits_allocated == 16 && (32768..65536).contains(&v) {
            v - 65536
        } else {
            v
        }
    };
    let padding = f.int(tags::PIXEL_PADDING_VALUE).map(|p| {
        (
            stored(p),
            f.int(tags::PIXEL_PADDING_RANGE_LIMIT).map(stored),
        )
    });
    let frames = f.uint(tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    if frames > MAX_FRAMES {
        return Err(format!(
            "the file claims {frames} frames, more than the {MAX_FRAMES} spinemesh accepts"
        ));
    }
    let image_type = f.text(tags::IMAGE_TYPE).map(|t| t.to_uppercase());
    let base = SliceHeader {
        path: path.to_path_buf(),
        preamble,
        transfer_syntax: obj.meta().transfer_syntax().to_string(),
        modality: f.text(tags::MODALITY).unwrap_or_default().to_uppercase(),
        sop_class: f
            .text(tags::SOP_CLASS_UID)
            .unwrap_or_else(|| obj.meta().media_storage_sop_class_uid().to_string()),
        series_uid: f.text(tags::SERIES_INSTANCE_UID).unwrap_or_default(),
        series_number: f.int(tags::SERIES_NUMBER),
        series_description: f.text(tags::SERIES_DESCRIPTION),
        localizer: image_type
            .as_deref()
            .is_some_and(|t| t.contains("LOCALIZER")),
        image_type,
        kernel: f.text(tags::CONVOLUTION_KERNEL),
        rows: f.uint(tags::ROWS).unwrap_or(0),
        cols: f.uint(tags::COLUMNS).unwrap_or(0),
        samples_per_pixel: f.uint(tags::SAMPLES_PER_PIXEL).unwrap_or(1).min(16) as u16,
        photometric: f
            .text(tags::PHOTOMETRIC_INTERPRETATION)
            .unwrap_or_else(|| "MONOCHROME2".into())
            .to_uppercase(),
        bits_allocated,
        bits_stored: f
            .uint(tags::BITS_STORED)
            .map(|b| b.min(bits_allocated as u32) as u16)
            .unwrap_or(bits_allocated),
        signed,
        frames,
        frame: 0,
        position: f.position(),
        orientation: f.orientation(),
        pixel_spacing: f.pixel_spacing(),
        slice_thickness: f.float(tags::SLICE_THICKNESS).filter(|&v| v > 0.0),
        spacing_between_slices: f.float(tags::SPACING_BETWEEN_SLICES).filter(|&v| v > 0.0),
        instance_number: f.int(tags::INSTANCE_NUMBER),
        slope: f
            .float(tags::RESCALE_SLOPE)
            .filter(|&v| v != 0.0)
            .unwrap_or(1.0),
        intercept: f.float(tags::RESCALE_INTERCEPT).unwrap_or(0.0),
        padding,
        tilt_tag: f.float(tags::GANTRY_DETECTOR_TILT),
    };
    let per_frame = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items());
    let shared = f.item(tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    if frames == 1 && per_frame.is_none() && shared.is_none() {
        return Ok(vec![base]);
    }
    // Multi-frame (enhanced) image: geometry and rescale per frame, from the
    // per-frame functional groups, else the shared ones, else the top level.
    let mut out = Vec::with_capacity(frames as usize);
    for k in 0..frames {
        let own = per_frame
            .and_then(|items| items.get(k as usize))
            .map(Fields);
        let group = |seq| {
            own.as_ref()
                .and_then(|o| o.item(seq))
                .or_else(|| shared.as_ref().and_then(|s| s.item(seq)))
        };
        let mut h = base.clone();
        h.frame = k;
        if let Some(g) = group(tags::PLANE_POSITION_SEQUENCE) {
            h.position = g.position();
        } else if frames > 1 {
            h.position = None;
        }
        if let Some(o) = group(tags::PLANE_ORIENTATION_SEQUENCE).and_then(|g| g.orientation()) {
            h.orientation = Some(o);
        }
        if let Some(g) = group(tags::PIXEL_MEASURES_SEQUENCE) {
            h.pixel_spacing = g.pixel_spacing().or(h.pixel_spacing);
            h.slice_thickness = g
                .float(tags::SLICE_THICKNESS)
                .filter(|&v| v > 0.0)
                .or(h.slice_thickness);
            h.spacing_between_slices = g
                .float(tags::SPACING_BETWEEN_SLICES)
                .filter(|&v| v > 0.0)
                .or(h.spacing_between_slices);
        }
        if let Some(g) = group(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE) {
            if let Some(s) = g.float(tags::RESCALE_SLOPE).filter(|&v| v != 0.0) {
                h.slope = s;
            }
            if let Some(i) = g.float(tags::RESCALE_INTERCEPT) {
                h.intercept = i;
            }
        }
        if let Some(t) = group(tags::CT_IMAGE_FRAME_TYPE_SEQUENCE)
            .and_then(|g| g.text(tags::FRAME_TYPE))
            .map(|t| t.to_uppercase())
        {
            h.localizer = t.contains("LOCALIZER");
            h.image_type = Some(t);
        }
        // Frames order within the file when positions are missing.
        h.instance_number = Some(
            h.instance_number
                .unwrap_or(0)
                .saturating_mul(i64::from(MAX_FRAMES))
                .saturating_add(i64::from(k)),
        );
        out.push(h);
    }
    Ok(out)
}

/// All files under `input` (recursively), sorted, and how many hidden files were passed over.
pub(crate) fn list_files(input: &Path) -> Result<(Vec<PathBuf>, usize)> {
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
