//! NRRD volumes (`.nrrd` with attached header, `.nhdr` with a detached data
//! file), as 3D Slicer and ITK write label maps and segmentations.
//!
//! Supported: encodings `raw`, `gzip` (`gz`) and `ascii` (`text`, `txt`);
//! all integer types from int8 to uint64, `float`, `double`; `endian`;
//! `space` (any of the anatomical 3D spaces: left/right, anterior/posterior,
//! superior/inferior, long or short names, e.g. `left-posterior-superior`,
//! `RAS`), `space directions`, `space origin`, `space units` (mm, cm, m), or
//! `spacings` when there is no space; `line skip`, `byte skip` (−1 for raw).
//! A 4D NRRD is accepted when its one non-spatial axis (a `none` space
//! direction or a `list`/`vector`-like kind) has size 1; Slicer segmentations
//! with several layers are refused with a message.

use crate::{Error, Grid, Result, Volume};
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq)]
enum NType {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl NType {
    fn parse(s: &str) -> Option<NType> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "signed char" | "int8" | "int8_t" => NType::I8,
            "uchar" | "unsigned char" | "uint8" | "uint8_t" => NType::U8,
            "short" | "short int" | "signed short" | "signed short int" | "int16" | "int16_t" => {
                NType::I16
            }
            "ushort" | "unsigned short" | "unsigned short int" | "uint16" | "uint16_t" => {
                NType::U16
            }
            "int" | "signed int" | "int32" | "int32_t" => NType::I32,
            "uint" | "unsigned int" | "uint32" | "uint32_t" => NType::U32,
            "longlong"
            | "long long"
            | "long long int"
            | "signed long long"
            | "signed long long int"
            | "int64"
            | "int64_t" => NType::I64,
            "ulonglong"
            | "unsigned long long"
            | "unsigned long long int"
            | "uint64"
            | "uint64_t" => NType::U64,
            "float" => NType::F32,
            "double" => NType::F64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            NType::I8 | NType::U8 => 1,
            NType::I16 | NType::U16 => 2,
            NType::I32 | NType::U32 | NType::F32 => 4,
            NType::I64 | NType::U64 | NType::F64 => 8,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Encoding {
    Raw,
    Gzip,
    Ascii,
}

/// Parsed header fields we use.
#[derive(Default, Debug)]
struct Header {
    fields: Vec<(String, String)>,
}

impl Header {
    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Normalises a field name: lower case, single spaces ("datafile" → "data file").
fn norm_key(k: &str) -> String {
    let k = k.trim().to_ascii_lowercase();
    let k = k.split_whitespace().collect::<Vec<_>>().join(" ");
    match k.as_str() {
        "datafile" => "data file".into(),
        "lineskip" => "line skip".into(),
        "byteskip" => "byte skip".into(),
        "centerings" => "centers".into(),
        _ => k,
    }
}

/// Parses a vector "(a,b,c)"; `None` for the word `none`.
fn parse_vector(s: &str) -> Option<Option<Vec<f64>>> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("none") {
        return Some(None);
    }
    let inner = s.strip_prefix('(')?.strip_suffix(')')?;
    let v: Option<Vec<f64>> = inner
        .split(',')
        .map(|x| x.trim().parse::<f64>().ok())
        .collect();
    Some(Some(v?))
}

/// Splits "(a,b,c) none (d,e,f)" into its items.
fn split_vectors(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for ch in s.chars() {
        match ch {
            '(' => {
                depth += 1;
                cur.push(ch);
            }
            ')' => {
                depth -= 1;
                cur.push(ch);
                if depth == 0 {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.trim().is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                cur.clear();
            }
            c => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

/// Sign flips that take vectors in the NRRD `space` to LPS.
fn space_to_lps(space: &str) -> Option<[f64; 3]> {
    let s = space.trim().to_ascii_lowercase();
    let s = s.strip_prefix("3d-").unwrap_or(&s);
    let short: String = match s {
        "left-posterior-superior" | "lps" => "lps".into(),
        "right-anterior-superior" | "ras" => "ras".into(),
        "left-anterior-superior" | "las" => "las".into(),
        "right-posterior-superior" | "rps" => "rps".into(),
        "left-posterior-inferior" | "lpi" => "lpi".into(),
        "right-anterior-inferior" | "rai" => "rai".into(),
        "left-anterior-inferior" | "lai" => "lai".into(),
        "right-posterior-inferior" | "rpi" => "rpi".into(),
        "scanner-xyz" | "right-handed" | "3d-right-handed" => "lps".into(),
        _ => return None,
    };
    let b = short.as_bytes();
    Some([
        if b[0] == b'l' { 1.0 } else { -1.0 },
        if b[1] == b'p' { 1.0 } else { -1.0 },
        if b[2] == b's' { 1.0 } else { -1.0 },
    ])
}

fn fmt_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::format(path, msg)
}

/// Reads the header lines (up to the blank line or EOF for a detached header).
fn read_header(path: &Path, reader: &mut impl BufRead) -> Result<Header> {
    let mut magic = Vec::new();
    reader
        .read_until(b'\n', &mut magic)
        .map_err(|e| Error::io("cannot read", path, e))?;
    if !magic.starts_with(b"NRRD000") {
        return Err(fmt_err(
            path,
            "not a NRRD file (it does not start with \"NRRD000\"); give a .nrrd or .nhdr file",
        ));
    }
    let mut header = Header::default();
    let mut line = Vec::new();
    for _ in 0..10_000 {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io("cannot read", path, e))?;
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            break;
        }
        if text.starts_with('#') || text.contains(":=") {
            continue; // comment or key/value pair
        }
        let Some((k, v)) = text.split_once(':') else {
            return Err(fmt_err(
                path,
                format!(
                    "header line \"{}\" is not a \"field: value\" line",
                    text.chars().take(80).collect::<String>()
                ),
            ));
        };
        header.fields.push((norm_key(k), v.trim().to_string()));
    }
    Ok(header)
}

fn convert(raw: &[u8], t: NType, little: bool, out: &mut [f32]) {
    macro_rules! conv {
        ($ty:ty, $n:expr) => {{
            for (o, c) in out.iter_mut().zip(raw.chunks_exact($n)) {
                let b: [u8; $n] = c.try_into().unwrap_or([0; $n]);
                let v = if little {
                    <$ty>::from_le_bytes(b)
                } else {
                    <$ty>::from_be_bytes(b)
                };
                *o = v as f32;
            }
        }};
    }
    match t {
        NType::I8 => conv!(i8, 1),
        NType::U8 => conv!(u8, 1),
        NType::I16 => conv!(i16, 2),
        NType::U16 => conv!(u16, 2),
        NType::I32 => conv!(i32, 4),
        NType::U32 => conv!(u32, 4),
        NType::I64 => conv!(i64, 8),
        NType::U64 => conv!(u64, 8),
        NType::F32 => conv!(f32, 4),
        NType::F64 => conv!(f64, 8),
    }
}

/// Geometry: dims of the 3 spatial axes, which input axis is non-spatial
/// (if any), and the LPS grid.
struct Layout {
    /// Sizes of all axes, in file order.
    sizes: Vec<usize>,
    grid: Grid,
}

fn parse_layout(path: &Path, h: &Header) -> Result<Layout> {
    let dimension: usize = h
        .get("dimension")
        .ok_or_else(|| fmt_err(path, "the header has no \"dimension\" field"))?
        .trim()
        .parse()
        .map_err(|_| fmt_err(path, "the \"dimension\" field is not a number"))?;
    let sizes: Vec<usize> = h
        .get("sizes")
        .ok_or_else(|| fmt_err(path, "the header has no \"sizes\" field"))?
        .split_whitespace()
        .map(|s| s.parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| fmt_err(path, "the \"sizes\" field is not a list of whole numbers"))?;
    if sizes.len() != dimension {
        return Err(fmt_err(
            path,
            format!(
                "\"sizes\" lists {} axes but \"dimension\" is {dimension}",
                sizes.len()
            ),
        ));
    }
    if !(3..=4).contains(&dimension) {
        return Err(fmt_err(
            path,
            format!("the image has {dimension} dimensions; only 3D volumes (or 4D with a single component) are read"),
        ));
    }
    if sizes.contains(&0) {
        return Err(fmt_err(path, "an axis has size 0"));
    }

    let kinds: Vec<String> = h
        .get("kinds")
        .map(|k| {
            k.split_whitespace()
                .map(|s| s.to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let directions: Option<Vec<Option<Vec<f64>>>> = match h.get("space directions") {
        Some(s) => {
            let items = split_vectors(s);
            let parsed: Option<Vec<_>> = items.iter().map(|i| parse_vector(i)).collect();
            let parsed = parsed
                .ok_or_else(|| fmt_err(path, format!("cannot parse \"space directions: {s}\"")))?;
            if parsed.len() != dimension {
                return Err(fmt_err(
                    path,
                    format!(
                        "\"space directions\" has {} entries for {dimension} axes",
                        parsed.len()
                    ),
                ));
            }
            Some(parsed)
        }
        None => None,
    };

    // Spatial axes: from space directions (non-"none"), else from kinds.
    let spatial: Vec<usize> = match &directions {
        Some(d) => (0..dimension).filter(|&a| d[a].is_some()).collect(),
        None if kinds.len() == dimension => (0..dimension)
            .filter(|&a| {
                matches!(
                    kinds[a].as_str(),
                    "domain" | "space" | "time" | "???" | "none"
                )
            })
            .collect(),
        None => (0..dimension).collect(),
    };
    let spatial: Vec<usize> = if spatial.len() == 3 {
        spatial
    } else if dimension == 3 {
        (0..3).collect()
    } else {
        return Err(fmt_err(
            path,
            format!("cannot tell which 3 of the {dimension} axes are spatial (kinds: {kinds:?})"),
        ));
    };
    if let Some(other) = (0..dimension).find(|a| !spatial.contains(a)) {
        if sizes[other] != 1 {
            return Err(fmt_err(
                path,
                format!(
                    "axis {other} holds {} components or segmentation layers (kinds: {}); export a single label map (e.g. Slicer: \"Export to labelmap\") and give that",
                    sizes[other],
                    kinds.join(" ")
                ),
            ));
        }
        if other != 0 && other != dimension - 1 {
            return Err(fmt_err(
                path,
                "a non-spatial axis between spatial axes is not supported",
            ));
        }
    }

    let space = h.get("space");
    let space_dim = h.get("space dimension");
    let flip = match space {
        Some(s) => space_to_lps(s).ok_or_else(|| {
            fmt_err(
                path,
                format!("space \"{s}\" is not a 3D anatomical space (like left-posterior-superior); cannot place the volume in the patient"),
            )
        })?,
        None => {
            if let Some(sd) = space_dim {
                if sd.trim() != "3" {
                    return Err(fmt_err(path, format!("space dimension {sd} is not 3")));
                }
            }
            [1.0, 1.0, 1.0] // no anatomical space: taken as LPS, as ITK does
        }
    };
    let unit_scale = match h.get("space units") {
        None => 1.0,
        Some(u) => {
            let units: Vec<String> = u
                .split_whitespace()
                .map(|s| s.trim_matches('"').to_ascii_lowercase())
                .collect();
            let scale = |s: &str| match s {
                "mm" | "millimeter" | "millimeters" | "" => Some(1.0),
                "cm" => Some(10.0),
                "m" => Some(1000.0),
                "um" | "µm" => Some(1e-3),
                _ => None,
            };
            let first = units.first().map(String::as_str).unwrap_or("mm");
            let s = scale(first)
                .ok_or_else(|| fmt_err(path, format!("space units \"{u}\" are not mm, cm or m")))?;
            if units.iter().any(|x| scale(x) != Some(s)) {
                return Err(fmt_err(
                    path,
                    format!("mixed space units \"{u}\" are not supported"),
                ));
            }
            s
        }
    };

    let dims = [sizes[spatial[0]], sizes[spatial[1]], sizes[spatial[2]]];
    let mut grid = Grid::new(dims, [1.0; 3], [0.0; 3]);
    if let Some(d) = &directions {
        for (i, &a) in spatial.iter().enumerate() {
            let v = d[a]
                .as_ref()
                .ok_or_else(|| fmt_err(path, "a spatial axis has no direction"))?;
            if v.len() != 3 {
                return Err(fmt_err(
                    path,
                    format!(
                        "space direction of axis {a} has {} components; only 3D spaces are read",
                        v.len()
                    ),
                ));
            }
            let v = [
                v[0] * flip[0] * unit_scale,
                v[1] * flip[1] * unit_scale,
                v[2] * flip[2] * unit_scale,
            ];
            let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
            if !(n.is_finite() && n > 0.0) {
                return Err(fmt_err(
                    path,
                    format!("space direction of axis {a} is zero or invalid"),
                ));
            }
            grid.spacing[i] = n;
            grid.direction[i] = [v[0] / n, v[1] / n, v[2] / n];
        }
    } else if let Some(sp) = h.get("spacings") {
        let vals: Vec<f64> = sp
            .split_whitespace()
            .map(|s| s.parse::<f64>().unwrap_or(f64::NAN))
            .collect();
        for (i, &a) in spatial.iter().enumerate() {
            let s = vals.get(a).copied().unwrap_or(f64::NAN).abs();
            grid.spacing[i] = if s.is_finite() && s > 0.0 { s } else { 1.0 };
        }
    }
    if let Some(o) = h.get("space origin") {
        let v = parse_vector(o)
            .flatten()
            .filter(|v| v.len() == 3 && v.iter().all(|x| x.is_finite()))
            .ok_or_else(|| fmt_err(path, format!("cannot parse \"space origin: {o}\"")))?;
        grid.origin = [
            v[0] * flip[0] * unit_scale,
            v[1] * flip[1] * unit_scale,
            v[2] * flip[2] * unit_scale,
        ];
    }
    if crate::volume::det3(&grid.index_matrix()).abs() < 1e-12 {
        return Err(fmt_err(
            path,
            "the space directions are degenerate (not three independent axes)",
        ));
    }
    Ok(Layout { sizes, grid })
}

/// Reads a 3D NRRD volume (see the module documentation for what is supported)
/// as f32 values on an LPS grid.
pub fn read_nrrd(path: &Path) -> Result<Volume<f32>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let h = read_header(path, &mut reader)?;
    let layout = parse_layout(path, &h)?;
    let t = {
        let s = h
            .get("type")
            .ok_or_else(|| fmt_err(path, "the header has no \"type\" field"))?;
        NType::parse(s).ok_or_else(|| {
            fmt_err(
                path,
                format!("NRRD type \"{s}\" is not supported; use an integer or float type"),
            )
        })?
    };
    let encoding = {
        let s = h
            .get("encoding")
            .ok_or_else(|| fmt_err(path, "the header has no \"encoding\" field"))?;
        match s.trim().to_ascii_lowercase().as_str() {
            "raw" => Encoding::Raw,
            "gzip" | "gz" => Encoding::Gzip,
            "ascii" | "text" | "txt" => Encoding::Ascii,
            other => {
                return Err(fmt_err(
                    path,
                    format!("NRRD encoding \"{other}\" is not supported; save the file with raw or gzip encoding"),
                ))
            }
        }
    };
    let little = match h.get("endian").map(|e| e.trim().to_ascii_lowercase()) {
        None => true,
        Some(e) if e == "little" => true,
        Some(e) if e == "big" => false,
        Some(e) => {
            return Err(fmt_err(
                path,
                format!("endian \"{e}\" is neither little nor big"),
            ))
        }
    };
    let line_skip: usize = match h.get("line skip") {
        None => 0,
        Some(s) => s
            .trim()
            .parse()
            .map_err(|_| fmt_err(path, "\"line skip\" is not a number"))?,
    };
    let byte_skip: i64 = match h.get("byte skip") {
        None => 0,
        Some(s) => s
            .trim()
            .parse()
            .map_err(|_| fmt_err(path, "\"byte skip\" is not a number"))?,
    };
    if byte_skip < -1 {
        return Err(fmt_err(path, "\"byte skip\" must be -1 or more"));
    }

    let n = layout
        .sizes
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .filter(|&n| n.checked_mul(8).is_some())
        .ok_or_else(|| {
            fmt_err(
                path,
                "the \"sizes\" field declares an impossibly large volume",
            )
        })?;
    let nbytes = n * t.size();

    // The data source: the rest of this file, or the detached data file.
    let mut source: Box<dyn BufRead> = match h.get("data file") {
        None => {
            if path
                .extension()
                .map(|e| e.eq_ignore_ascii_case("nhdr"))
                .unwrap_or(false)
            {
                return Err(fmt_err(
                    path,
                    "a .nhdr header without a \"data file\" field",
                ));
            }
            Box::new(reader)
        }
        Some(df) => {
            let df = df.trim();
            if df.starts_with("LIST") || df.split_whitespace().count() > 1 {
                return Err(fmt_err(
                    path,
                    "data split over several files is not supported; save the volume as a single .nrrd",
                ));
            }
            let p: PathBuf = if Path::new(df).is_absolute() {
                PathBuf::from(df)
            } else {
                path.parent().unwrap_or(Path::new(".")).join(df)
            };
            let f = std::fs::File::open(&p)
                .map_err(|e| Error::io("cannot open the data file", &p, e))?;
            let mut r = BufReader::with_capacity(1 << 20, f);
            if encoding == Encoding::Raw && byte_skip == -1 {
                let len = r
                    .get_ref()
                    .metadata()
                    .map_err(|e| Error::io("cannot read", &p, e))?
                    .len();
                if len < nbytes as u64 {
                    return Err(fmt_err(
                        &p,
                        "the data file is shorter than the volume; it is truncated",
                    ));
                }
                r.seek(std::io::SeekFrom::Start(len - nbytes as u64))
                    .map_err(|e| Error::io("cannot read", &p, e))?;
            }
            Box::new(r)
        }
    };
    if byte_skip == -1 && (encoding != Encoding::Raw || h.get("data file").is_none()) {
        return Err(fmt_err(
            path,
            "\"byte skip: -1\" is only supported for a raw detached data file",
        ));
    }
    let mut junk = Vec::new();
    for _ in 0..line_skip {
        junk.clear();
        source
            .read_until(b'\n', &mut junk)
            .map_err(|e| Error::io("cannot read", path, e))?;
    }
    let mut data_reader: Box<dyn Read> = match encoding {
        Encoding::Gzip => Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(source),
        )),
        _ => Box::new(source),
    };
    if byte_skip > 0 {
        let skipped = std::io::copy(
            &mut (&mut data_reader).take(byte_skip as u64),
            &mut std::io::sink(),
        )
        .map_err(|e| Error::io("cannot read", path, e))?;
        if skipped != byte_skip as u64 {
            return Err(fmt_err(
                path,
                "the data end before \"byte skip\" bytes; the file is truncated",
            ));
        }
    }

    let mut data = crate::io::nifti::alloc_voxels(path, n)?;
    if encoding == Encoding::Ascii {
        let mut text = String::new();
        data_reader
            .read_to_string(&mut text)
            .map_err(|e| Error::io("cannot read", path, e))?;
        let mut it = text
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty());
        for o in data.iter_mut() {
            let s = it.next().ok_or_else(|| {
                fmt_err(
                    path,
                    "the ascii data hold fewer values than the volume needs",
                )
            })?;
            *o = s
                .parse::<f64>()
                .map_err(|_| fmt_err(path, format!("\"{s}\" in the ascii data is not a number")))?
                as f32;
        }
    } else {
        let chunk = 1 << 18;
        let mut raw = vec![0u8; chunk * t.size()];
        for out in data.chunks_mut(chunk) {
            let bytes = &mut raw[..out.len() * t.size()];
            data_reader.read_exact(bytes).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    fmt_err(
                        path,
                        "the data end before all voxels were read; the file is truncated",
                    )
                } else {
                    Error::format(path, format!("cannot read the image data: {e}"))
                }
            })?;
            convert(bytes, t, little, out);
        }
    }
    // With a leading singleton axis the memory order is unchanged.
    Volume::new(layout.grid, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, header: &str, data: &[u8]) -> PathBuf {
        let p = dir.join(name);
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(header.as_bytes()).unwrap();
        f.write_all(data).unwrap();
        p
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn raw_big_endian_ras_space() {
        let dir = tempfile::tempdir().unwrap();
        let vals: Vec<i16> = (0..24).map(|v| v - 3).collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
        let hdr = "NRRD0004\n# comment\ntype: short\ndimension: 3\nspace: right-anterior-superior\nsizes: 2 3 4\n\
                   space directions: (0.5,0,0) (0,0.7,0) (0,0,2)\nkinds: domain domain domain\nendian: big\n\
                   encoding: raw\nspace origin: (10,20,30)\nkey:=value\n\n";
        let p = write(dir.path(), "a.nrrd", hdr, &bytes);
        let v = read_nrrd(&p).unwrap();
        assert_eq!(v.grid.dims, [2, 3, 4]);
        assert_eq!(v.grid.spacing, [0.5, 0.7, 2.0]);
        assert_eq!(v.grid.origin, [-10.0, -20.0, 30.0]);
        assert_eq!(v.grid.direction[0], [-1.0, 0.0, 0.0]);
        assert_eq!(v.grid.direction[1], [0.0, -1.0, 0.0]);
        assert_eq!(v.data[0], -3.0);
        assert_eq!(v.data[23], 20.0);
    }

    #[test]
    fn gzip_and_leading_singleton_axis_and_detached() {
        let dir = tempfile::tempdir().unwrap();
        let vals: Vec<f32> = (0..24).map(|v| v as f32 * 0.5).collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let hdr = "NRRD0005\ntype: float\ndimension: 4\nspace: left-posterior-superior\nsizes: 1 2 3 4\n\
                   space directions: none (1,0,0) (0,1,0) (0,0,1)\nkinds: list domain domain domain\nendian: little\n\
                   encoding: gzip\nspace origin: (1,2,3)\n\n";
        let p = write(dir.path(), "b.seg.nrrd", hdr, &gz(&bytes));
        let v = read_nrrd(&p).unwrap();
        assert_eq!(v.grid.dims, [2, 3, 4]);
        assert_eq!(v.data, vals);
        assert_eq!(v.grid.origin, [1.0, 2.0, 3.0]);

        // Detached header with a raw data file.
        std::fs::write(dir.path().join("c.raw"), &bytes).unwrap();
        let hdr = "NRRD0004\ntype: float\ndimension: 3\nsizes: 2 3 4\nspacings: 0.5 0.5 3\nencoding: raw\n\
                   endian: little\ndata file: c.raw\n";
        let p = write(dir.path(), "c.nhdr", hdr, b"");
        let v = read_nrrd(&p).unwrap();
        assert_eq!(v.grid.spacing, [0.5, 0.5, 3.0]);
        assert_eq!(v.data, vals);
    }

    #[test]
    fn clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let hdr = "NRRD0004\ntype: uchar\ndimension: 4\nsizes: 3 2 2 2\n\
                   space directions: none (1,0,0) (0,1,0) (0,0,1)\nkinds: list domain domain domain\nencoding: raw\n\n";
        let p = write(dir.path(), "d.nrrd", hdr, &[0u8; 24]);
        let e = read_nrrd(&p).unwrap_err().to_string();
        assert!(e.contains("layers"), "{e}");
        let hdr = "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: raw\n\n";
        let p = write(dir.path(), "e.nrrd", hdr, &[0u8; 5]);
        let e = read_nrrd(&p).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        let hdr = "NRRD0004\ntype: block\ndimension: 3\nsizes: 2 2 2\nencoding: raw\n\n";
        let p = write(dir.path(), "f.nrrd", hdr, &[0u8; 8]);
        assert!(read_nrrd(&p).is_err());
        let p = write(dir.path(), "g.nrrd", "P5\n", &[0u8; 8]);
        assert!(read_nrrd(&p)
            .unwrap_err()
            .to_string()
            .contains("not a NRRD"));
        let hdr =
            "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 100000 100000 100000\nencoding: raw\n\n";
        let p = write(dir.path(), "huge.nrrd", hdr, &[0u8; 8]);
        assert!(read_nrrd(&p).unwrap_err().to_string().contains("large"));
        let hdr = "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 2\nencoding: bzip2\n\n";
        let p = write(dir.path(), "h.nrrd", hdr, &[0u8; 8]);
        assert!(read_nrrd(&p).unwrap_err().to_string().contains("bzip2"));
    }

    #[test]
    fn reads_real_slicer_label_maps_when_present() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/ct3slice-spine-seg");
        if !dir.exists() {
            assert!(
                !matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1")),
                "real data folder {} is missing",
                dir.display()
            );
            eprintln!("skipping: {} not found", dir.display());
            return;
        }
        for name in ["spine_seg.nrrd", "liver_spine_seg.nrrd", "liver_seg.nrrd"] {
            let v = read_nrrd(&dir.join(name)).unwrap();
            assert_eq!(v.grid.dims, [512, 512, 3]);
            assert!((v.grid.spacing[0] - 0.810547).abs() < 1e-6);
            assert!((v.grid.spacing[2] - 1.0).abs() < 1e-9);
            assert!((v.grid.origin[0] + 235.2).abs() < 1e-4);
            assert!((v.grid.origin[2] + 128.69).abs() < 1e-4);
            let nonzero = v.data.iter().filter(|&&x| x != 0.0).count();
            assert!(nonzero > 100, "{name}: {nonzero} labelled voxels");
            assert!(v.data.iter().all(|x| x.fract() == 0.0 && *x >= 0.0));
        }
    }
}
