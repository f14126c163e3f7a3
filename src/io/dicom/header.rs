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
    /// Why the Pixel Data element is broken (it claims more bytes than remain).
    pub(crate) broken_pixels: Option<String>,
}

/// Panics of the DICOM parsing or decoding libraries caught and turned into
/// errors (the fuzz harness reports them).
pub(crate) static SAFETY_NET_PANICS: AtomicUsize = AtomicUsize::new(0);

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
    // A broken structure before the pixel data: the file is unreadable. A
    // broken Pixel Data element (a truncated file): the header is read and
    // decoding that slice reports it, naming the file.
    let mut broken_pixels = None;
    let checked =
        std::panic::catch_unwind(|| check_structure(path, preamble)).unwrap_or_else(|_| {
            SAFETY_NET_PANICS.fetch_add(1, Ordering::Relaxed);
            Err("the file's structure could not be checked".to_string())
        });
    if let Err(e) = checked {
        if e.starts_with("element (7FE0,0010)") {
            broken_pixels = Some(e);
        } else {
            return Scanned::Unreadable(path.to_path_buf(), e);
        }
    }
    // A hostile header must never bring the program down.
    let parsed = std::panic::catch_unwind(|| read_header(path, preamble)).unwrap_or_else(|_| {
        SAFETY_NET_PANICS.fetch_add(1, Ordering::Relaxed);
        Err("the header could not be parsed".to_string())
    });
    match parsed {
        Ok(mut h) => {
            for s in &mut h {
                s.broken_pixels = broken_pixels.clone();
            }
            Scanned::Header(h)
        }
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
        broken_pixels: None,
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

/// Largest inflated size of a deflated data set that is checked.
const MAX_INFLATED: u64 = 64 << 20;

/// Checks the element structure of a Part 10 file before a parser sees it:
/// every defined length must fit in the bytes that remain (of the file, or
/// of the enclosing sequence or item), so no claimed length can make the
/// parser allocate more than the file holds. Returns why the file is broken.
pub(crate) fn check_structure(
    path: &Path,
    preamble: ReadPreamble,
) -> std::result::Result<(), String> {
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let start = if matches!(preamble, ReadPreamble::Always) {
        132
    } else {
        4
    };
    f.seek(SeekFrom::Start(start)).map_err(|e| e.to_string())?;
    let mut r = std::io::BufReader::with_capacity(8192, f);
    // File meta group: explicit VR little endian; find the transfer syntax.
    let mut ts = String::new();
    let mut pos = start;
    let mut meta_end: Option<u64> = None;
    loop {
        let mut head = [0u8; 8];
        if read_up_to(&mut r, &mut head).map_err(|e| e.to_string())? < 8 {
            return Err("the file ends inside its file meta information".into());
        }
        // The meta group ends where (0002,0000) says (as parsers read it), or
        // at the first element of another group.
        let past_end = meta_end.is_some_and(|e| pos >= e);
        if past_end || (meta_end.is_none() && u16::from_le_bytes([head[0], head[1]]) != 2) {
            r.seek_relative(-8).map_err(|e| e.to_string())?;
            break;
        }
        let elem = u16::from_le_bytes([head[2], head[3]]);
        if !known_vr([head[4], head[5]]) {
            return Err("the file meta information holds an element without a valid value representation: the file is damaged".into());
        }
        let (vlen, hlen) = if !short_vr([head[4], head[5]]) {
            let mut l = [0u8; 4];
            r.read_exact(&mut l)
                .map_err(|_| "the file ends inside its file meta information")?;
            (u64::from(u32::from_le_bytes(l)), 12)
        } else {
            (u64::from(u16::from_le_bytes([head[6], head[7]])), 8)
        };
        pos += hlen;
        if vlen > len - pos.min(len) || vlen > 1 << 16 {
            return Err(format!("a file meta element (0002,{elem:04X}) claims {vlen} bytes, more than the file holds"));
        }
        let mut v = vec![0u8; vlen as usize];
        r.read_exact(&mut v)
            .map_err(|_| "the file ends inside its file meta information")?;
        pos += vlen;
        if elem == 0x0000 && vlen == 4 && meta_end.is_none() {
            meta_end = Some(pos + u64::from(u32::from_le_bytes([v[0], v[1], v[2], v[3]])));
        }
        if elem == 0x0010 {
            ts = String::from_utf8_lossy(&v)
                .trim_matches(|c: char| c == '\0' || c.is_whitespace())
                .to_string();
        }
    }
    let explicit = ts != "1.2.840.10008.1.2";
    let big = ts == "1.2.840.10008.1.2.2";
    if ts == "1.2.840.10008.1.2.1.99" {
        let mut raw = Vec::new();
        flate2::read::DeflateDecoder::new(r)
            .take(MAX_INFLATED + 1)
            .read_to_end(&mut raw)
            .map_err(|e| format!("the deflated data set cannot be inflated ({e})"))?;
        if raw.len() as u64 > MAX_INFLATED {
            return Err("the deflated data set inflates to more than 64 MiB".into());
        }
        let n = raw.len() as u64;
        return walk(&mut std::io::Cursor::new(raw), n, explicit, big, 0).map(|_| ());
    }
    walk(&mut r, len - pos.min(len), explicit, big, 0).map(|_| ())
}

/// Value representations with a 2-byte length in explicit VR. Parsers read
/// any other (unknown) VR as UN, with a 4-byte length: so does the check.
fn short_vr(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

/// The value representations of the standard (explicit VR files carry one of
/// them; anything else means the file is damaged, and parsers disagree on how
/// long such an element is).
fn known_vr(vr: [u8; 2]) -> bool {
    short_vr(vr)
        || matches!(
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

/// Readers that can skip forward (and back a little) cheaply.
trait Skip: Read {
    fn skip(&mut self, n: i64) -> std::io::Result<()>;
}

impl Skip for std::io::BufReader<std::fs::File> {
    fn skip(&mut self, n: i64) -> std::io::Result<()> {
        self.seek_relative(n)
    }
}

impl Skip for std::io::Cursor<Vec<u8>> {
    fn skip(&mut self, n: i64) -> std::io::Result<()> {
        let p = self.position() as i64 + n;
        self.set_position(p.max(0) as u64);
        Ok(())
    }
}

/// Deepest nesting of sequences checked.
const MAX_DEPTH: usize = 64;

/// Walks the elements of `limit` bytes (a data set, sequence or item);
/// returns the bytes consumed.
fn walk<R: Skip>(
    r: &mut R,
    limit: u64,
    explicit: bool,
    big: bool,
    depth: usize,
) -> std::result::Result<u64, String> {
    if depth > MAX_DEPTH {
        return Err(format!("sequences are nested more than {MAX_DEPTH} deep"));
    }
    let u16_ = |b: [u8; 2]| {
        if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_ = |b: [u8; 4]| {
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let io = |e: std::io::Error| e.to_string();
    let bad = |tag: (u16, u16), v: u64, left: u64| {
        format!(
            "element ({:04X},{:04X}) claims {v} bytes but only {left} remain: the file is truncated or damaged",
            tag.0, tag.1
        )
    };
    let mut used = 0u64;
    // Inside encapsulated pixel data, items are fragments (bytes, not elements).
    let mut fragments = false;
    while used + 8 <= limit {
        let mut h = [0u8; 8];
        if read_up_to(r, &mut h).map_err(io)? < 8 {
            return Ok(used); // a short tail: the parser reports it
        }
        used += 8;
        let tag = (u16_([h[0], h[1]]), u16_([h[2], h[3]]));
        let (vr, vlen) = if tag.0 == 0xFFFE || !explicit {
            (None, u32_([h[4], h[5], h[6], h[7]]))
        } else if !known_vr([h[4], h[5]]) {
            return Err(format!(
                "element ({:04X},{:04X}) has no valid value representation: the file is damaged",
                tag.0, tag.1
            ));
        } else if !short_vr([h[4], h[5]]) {
            let mut l = [0u8; 4];
            if read_up_to(r, &mut l).map_err(io)? < 4 {
                return Ok(used);
            }
            used += 4;
            (Some([h[4], h[5]]), u32_(l))
        } else {
            (Some([h[4], h[5]]), u32::from(u16_([h[6], h[7]])))
        };
        if used > limit {
            return Err(format!(
                "element ({:04X},{:04X}) runs past the end of its sequence or item: the file is damaged",
                tag.0, tag.1
            ));
        }
        let left = limit - used;
        if tag == (0xFFFE, 0xE0DD) {
            fragments = false;
        }
        if tag.0 == 0xFFFE && !matches!(tag.1, 0xE000 | 0xE00D | 0xE0DD) {
            return Err(format!(
                "a damaged item tag (FFFE,{:04X}) was found: the file is damaged",
                tag.1
            ));
        }
        if tag.0 == 0xFFFE && tag.1 != 0xE000 {
            continue; // delimiters: parsers ignore their length field
        }
        if vlen == u32::MAX {
            fragments |= tag == (0x7FE0, 0x0010);
            continue; // undefined length: items and delimiters follow as tokens
        }
        let v = u64::from(vlen);
        if v > left {
            return Err(bad(tag, v, left));
        }
        // Binary values must come in whole numbers (a parser reading 40 of
        // 81 bytes as US would lose its place in the file).
        let width = match vr.as_ref().map(|v| &v[..]) {
            Some(b"US" | b"SS" | b"OW") => 2,
            Some(b"UL" | b"SL" | b"FL" | b"AT" | b"OL" | b"OF") => 4,
            Some(b"FD" | b"OD" | b"SV" | b"UV" | b"OV") => 8,
            _ => 1,
        };
        if v % width != 0 {
            return Err(format!(
                "element ({:04X},{:04X}) has {v} bytes, not a whole number of its {width}-byte values: the file is damaged",
                tag.0, tag.1
            ));
        }
        // Items, sequences (and, in implicit VR, values that start like an
        // item) are walked inside; anything else is skipped.
        let surely = (tag == (0xFFFE, 0xE000) && !fragments) || vr == Some(*b"SQ");
        let mut maybe = false;
        if !surely && tag.0 != 0xFFFE && tag != (0x7FE0, 0x0010) && vr.is_none() && v >= 8 {
            // Implicit VR: a value that starts with an item tag is a sequence.
            let mut peek = [0u8; 4];
            r.read_exact(&mut peek).map_err(io)?;
            r.skip(-4).map_err(io)?;
            maybe = u16_([peek[0], peek[1]]) == 0xFFFE && u16_([peek[2], peek[3]]) == 0xE000;
        }
        let done = if surely {
            walk(r, v, explicit, big, depth + 1)?
        } else if maybe && v <= 16 << 20 {
            let mut buf = vec![0u8; v as usize];
            r.read_exact(&mut buf).map_err(io)?;
            walk(&mut std::io::Cursor::new(buf), v, explicit, big, depth + 1)?;
            v
        } else {
            0
        };
        r.skip(v.saturating_sub(done) as i64).map_err(io)?;
        used += v;
    }
    Ok(used)
}
