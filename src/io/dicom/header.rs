//! Finding DICOM files and parsing their headers (everything before the pixel data).

use super::*;

/// What one file's header says (nothing that identifies the patient).
#[derive(Clone, Debug)]
pub(crate) struct SliceHeader {
    pub(crate) path: PathBuf,
    pub(crate) preamble: ReadPreamble,
    pub(crate) transfer_syntax: String,
    pub(crate) modality: String,
    pub(crate) series_uid: String,
    pub(crate) series_number: Option<i64>,
    pub(crate) series_description: Option<String>,
    pub(crate) rows: u32,
    pub(crate) cols: u32,
    pub(crate) samples_per_pixel: u16,
    pub(crate) photometric: String,
    pub(crate) bits_allocated: u16,
    pub(crate) bits_stored: u16,
    pub(crate) signed: bool,
    pub(crate) frames: u32,
    pub(crate) position: Option<[f64; 3]>,
    pub(crate) orientation: Option<[f64; 6]>,
    pub(crate) pixel_spacing: Option<[f64; 2]>,
    pub(crate) slice_thickness: Option<f64>,
    pub(crate) spacing_between_slices: Option<f64>,
    pub(crate) instance_number: Option<i64>,
    pub(crate) slope: f64,
    pub(crate) intercept: f64,
    pub(crate) localizer: bool,
}

/// The result of looking at one file.
pub(crate) enum Scanned {
    NotDicom,
    Unreadable(PathBuf, String),
    Header(Box<SliceHeader>),
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
    match read_header(path, preamble) {
        Ok(h) => Scanned::Header(Box::new(h)),
        Err(e) => Scanned::Unreadable(path.to_path_buf(), e),
    }
}

/// Parses one file's header (everything before the pixel data).
pub(crate) fn read_header(
    path: &Path,
    preamble: ReadPreamble,
) -> std::result::Result<SliceHeader, String> {
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
