//! Mesh files: binary STL (default), ASCII STL, binary PLY and Wavefront OBJ,
//! written in millimetres in LPS (default) or RAS patient coordinates, and
//! read back (also ASCII PLY) for `spinemesh check`.
//!
//! Every file states its frame the way 3D Slicer writes and reads it:
//! `SPACE=LPS` or `SPACE=RAS` in the binary STL header, on the `solid` line
//! of an ASCII STL, in a PLY `comment` and in an OBJ `#` comment. Slicer
//! then places the mesh on the CT. RAS is LPS with x and y negated; negating
//! two axes is a rotation (by 180° about z), so the triangles keep their
//! outward winding. No patient data ever goes into a mesh file.

use crate::surface::Mesh;
use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// File format of a mesh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeshFormat {
    /// Binary STL (`.stl`): the most widely read; 50 bytes per triangle, no
    /// shared vertices.
    Stl,
    /// ASCII STL (`.stl`): the same, as text.
    StlAscii,
    /// Binary little-endian PLY (`.ply`): shared vertices, compact.
    Ply,
    /// Wavefront OBJ (`.obj`): shared vertices, text.
    Obj,
}

impl clap::ValueEnum for MeshFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            MeshFormat::Stl,
            MeshFormat::StlAscii,
            MeshFormat::Ply,
            MeshFormat::Obj,
        ]
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(
            clap::builder::PossibleValue::new(self.name()).help(match self {
                MeshFormat::Stl => "binary STL",
                MeshFormat::StlAscii => "ASCII STL",
                MeshFormat::Ply => "binary little-endian PLY",
                MeshFormat::Obj => "Wavefront OBJ",
            }),
        )
    }
}

impl MeshFormat {
    /// The name used on the command line and in report.json.
    pub fn name(self) -> &'static str {
        match self {
            MeshFormat::Stl => "stl",
            MeshFormat::StlAscii => "stl-ascii",
            MeshFormat::Ply => "ply",
            MeshFormat::Obj => "obj",
        }
    }

    /// File extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            MeshFormat::Stl | MeshFormat::StlAscii => "stl",
            MeshFormat::Ply => "ply",
            MeshFormat::Obj => "obj",
        }
    }

    /// The format a file name's extension implies (`.stl` → binary STL).
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_string_lossy().to_lowercase();
        match ext.as_str() {
            "stl" => Some(MeshFormat::Stl),
            "ply" => Some(MeshFormat::Ply),
            "obj" => Some(MeshFormat::Obj),
            _ => None,
        }
    }
}

/// Patient coordinate frame of the vertices in a file.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Frame {
    /// DICOM patient coordinates: x → left, y → posterior, z → superior.
    #[default]
    Lps,
    /// x → right, y → anterior, z → superior (LPS with x and y negated).
    Ras,
}

impl Frame {
    pub fn name(self) -> &'static str {
        match self {
            Frame::Lps => "LPS",
            Frame::Ras => "RAS",
        }
    }

    /// Maps an LPS point into this frame (and back: the map is its own inverse).
    #[inline]
    pub fn from_lps(self, p: [f32; 3]) -> [f32; 3] {
        match self {
            Frame::Lps => p,
            Frame::Ras => [-p[0], -p[1], p[2]],
        }
    }
}

/// The text every header carries, e.g. `SPACE=LPS UNITS=mm`.
fn space_tag(frame: Frame) -> String {
    format!("SPACE={} UNITS=mm", frame.name())
}

/// The 80-byte binary STL header for a mesh in `frame`, millimetres.
pub fn stl_header_for(frame: Frame) -> [u8; 80] {
    let text = format!("spinemesh {}", space_tag(frame));
    let mut h = [b' '; 80];
    h[..text.len()].copy_from_slice(text.as_bytes());
    h
}

/// The 80-byte STL header for a mesh in LPS millimetres.
pub fn stl_header() -> [u8; 80] {
    stl_header_for(Frame::Lps)
}

fn unit_normal(a: [f32; 3], b: [f32; 3], c: [f32; 3]) -> [f32; 3] {
    let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    let v = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
    let n = [
        u[1] * v[2] - u[2] * v[1],
        u[2] * v[0] - u[0] * v[2],
        u[0] * v[1] - u[1] * v[0],
    ];
    let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
    if len > 0.0 {
        n.map(|x| x / len)
    } else {
        n
    }
}

fn triangle_count_u32(mesh: &Mesh, what: &str) -> std::io::Result<u32> {
    mesh.triangles.len().try_into().map_err(|_| {
        std::io::Error::other(format!(
            "too many triangles for {what} (more than 2³² − 1); decimate the mesh first"
        ))
    })
}

/// Streams a binary STL in `frame` (facet normals computed from the winding).
pub fn write_stl_binary_in(mesh: &Mesh, frame: Frame, w: &mut dyn Write) -> std::io::Result<()> {
    let n = triangle_count_u32(mesh, "STL")?;
    w.write_all(&stl_header_for(frame))?;
    w.write_all(&n.to_le_bytes())?;
    let mut rec = [0u8; 50];
    for t in &mesh.triangles {
        let [a, b, c] = t.map(|i| frame.from_lps(mesh.vertices[i as usize]));
        let nrm = unit_normal(a, b, c);
        for (k, val) in nrm.iter().chain(&a).chain(&b).chain(&c).enumerate() {
            rec[4 * k..4 * k + 4].copy_from_slice(&val.to_le_bytes());
        }
        w.write_all(&rec)?;
    }
    Ok(())
}

/// Streams a binary STL in LPS.
pub fn write_stl_binary(mesh: &Mesh, w: &mut dyn Write) -> std::io::Result<()> {
    write_stl_binary_in(mesh, Frame::Lps, w)
}

/// Streams an ASCII STL in `frame`; the frame is on the `solid` line.
pub fn write_stl_ascii(mesh: &Mesh, frame: Frame, w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, "solid spinemesh {}", space_tag(frame))?;
    for t in &mesh.triangles {
        let [a, b, c] = t.map(|i| frame.from_lps(mesh.vertices[i as usize]));
        let n = unit_normal(a, b, c);
        // `{:e}` of f32 prints the shortest representation that reads back
        // to the same value, so the file round-trips exactly.
        writeln!(w, "  facet normal {:e} {:e} {:e}", n[0], n[1], n[2])?;
        writeln!(w, "    outer loop")?;
        for p in [a, b, c] {
            writeln!(w, "      vertex {:e} {:e} {:e}", p[0], p[1], p[2])?;
        }
        writeln!(w, "    endloop")?;
        writeln!(w, "  endfacet")?;
    }
    writeln!(w, "endsolid spinemesh")
}

/// Streams a binary little-endian PLY in `frame` (float x y z; faces as
/// `uchar` counts and `int` indices, which every PLY reader accepts).
pub fn write_ply(mesh: &Mesh, frame: Frame, w: &mut dyn Write) -> std::io::Result<()> {
    triangle_count_u32(mesh, "PLY")?;
    write!(
        w,
        "ply\nformat binary_little_endian 1.0\ncomment spinemesh\ncomment {}\n\
         element vertex {}\nproperty float x\nproperty float y\nproperty float z\n\
         element face {}\nproperty list uchar int vertex_indices\nend_header\n",
        space_tag(frame),
        mesh.vertices.len(),
        mesh.triangles.len()
    )?;
    let mut buf = Vec::with_capacity(1 << 16);
    for p in &mesh.vertices {
        for v in frame.from_lps(*p) {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        if buf.len() >= 1 << 16 {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    for t in &mesh.triangles {
        buf.push(3);
        for &i in t {
            let i: i32 = i
                .try_into()
                .map_err(|_| std::io::Error::other("vertex index too large for PLY int"))?;
            buf.extend_from_slice(&i.to_le_bytes());
        }
        if buf.len() >= 1 << 16 {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)
}

/// Streams a Wavefront OBJ in `frame` (1-based indices).
pub fn write_obj(mesh: &Mesh, frame: Frame, w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, "# spinemesh")?;
    writeln!(w, "# {}", space_tag(frame))?;
    for p in &mesh.vertices {
        let p = frame.from_lps(*p);
        writeln!(w, "v {} {} {}", p[0], p[1], p[2])?;
    }
    for t in &mesh.triangles {
        writeln!(w, "f {} {} {}", t[0] + 1, t[1] + 1, t[2] + 1)?;
    }
    Ok(())
}

/// Streams `mesh` (LPS mm) as `format` in `frame`.
pub fn write_mesh(
    mesh: &Mesh,
    format: MeshFormat,
    frame: Frame,
    w: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        MeshFormat::Stl => write_stl_binary_in(mesh, frame, w),
        MeshFormat::StlAscii => write_stl_ascii(mesh, frame, w),
        MeshFormat::Ply => write_ply(mesh, frame, w),
        MeshFormat::Obj => write_obj(mesh, frame, w),
    }
}

/// Writes `mesh` (LPS mm) atomically as `format` in `frame`; returns the
/// file size in bytes.
pub fn save_mesh(mesh: &Mesh, path: &Path, format: MeshFormat, frame: Frame) -> Result<u64> {
    stage_mesh(mesh, path, format, frame)?.commit()
}

/// [`save_mesh`] up to the last step: the file is complete under a
/// temporary name and appears at `path` when committed.
pub fn stage_mesh(
    mesh: &Mesh,
    path: &Path,
    format: MeshFormat,
    frame: Frame,
) -> Result<crate::io::atomic::Staged> {
    crate::io::atomic::stage_with(path, |w| write_mesh(mesh, format, frame, w))
}

/// Writes a binary STL in LPS atomically; returns its size in bytes.
pub fn save_stl(mesh: &Mesh, path: &Path) -> Result<u64> {
    save_mesh(mesh, path, MeshFormat::Stl, Frame::Lps)
}

// ---------------------------------------------------------------------------
// Reading.

/// What a mesh file said about itself.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MeshFileInfo {
    pub format: MeshFormat,
    /// The frame stated in the file (`SPACE=…`), if any.
    pub frame: Option<Frame>,
    /// Vertices as stored (STL stores three per triangle; they are merged on
    /// reading by exact position).
    pub stored_vertices: usize,
}

fn frame_in(text: &str) -> Option<Frame> {
    let t = text.to_ascii_uppercase();
    if t.contains("SPACE=RAS") {
        Some(Frame::Ras)
    } else if t.contains("SPACE=LPS") {
        Some(Frame::Lps)
    } else {
        None
    }
}

/// Vertex merging by exact position (STL has no shared vertices).
#[derive(Default)]
struct Merger {
    mesh: Mesh,
    index: std::collections::HashMap<[u32; 3], u32>,
}

impl Merger {
    fn vertex(&mut self, p: [f32; 3]) -> u32 {
        // +0.0 and −0.0 are the same point.
        let key = p.map(|v| if v == 0.0 { 0 } else { v.to_bits() });
        let mesh = &mut self.mesh;
        *self.index.entry(key).or_insert_with(|| {
            mesh.vertices.push(p);
            (mesh.vertices.len() - 1) as u32
        })
    }
}

/// Reads any supported mesh file (format from its content), converting the
/// vertices to LPS when the file says `SPACE=RAS`.
pub fn read_mesh(path: &Path) -> Result<(Mesh, MeshFileInfo)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
    let (mut mesh, info) = parse_mesh(&bytes).map_err(|m| Error::format(path, m))?;
    if info.frame == Some(Frame::Ras) {
        for p in &mut mesh.vertices {
            *p = Frame::Ras.from_lps(*p);
        }
    }
    Ok((mesh, info))
}

/// Parses a mesh file's bytes; the error is one sentence about the content.
pub fn parse_mesh(bytes: &[u8]) -> std::result::Result<(Mesh, MeshFileInfo), String> {
    if bytes.starts_with(b"ply") {
        return parse_ply(bytes);
    }
    if bytes.len() >= 84 {
        let n = u32::from_le_bytes([bytes[80], bytes[81], bytes[82], bytes[83]]) as u64;
        if bytes.len() as u64 == 84 + 50 * n {
            return parse_stl_binary(bytes);
        }
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]);
    if head.trim_start().starts_with("solid") {
        return parse_stl_ascii(bytes);
    }
    if head
        .lines()
        .any(|l| l.starts_with("v ") || l.starts_with("f ") || l.starts_with('#'))
    {
        return parse_obj(bytes);
    }
    if bytes.len() >= 84 {
        let n = u32::from_le_bytes([bytes[80], bytes[81], bytes[82], bytes[83]]);
        return Err(format!(
            "looks like a binary STL but says {n} triangles while holding {} bytes (expected {}); \
             the file is truncated or not an STL",
            bytes.len(),
            84 + 50 * n as u64
        ));
    }
    Err("not a mesh spinemesh can read: give a binary or ASCII STL, a PLY or an OBJ file".into())
}

fn parse_stl_binary(bytes: &[u8]) -> std::result::Result<(Mesh, MeshFileInfo), String> {
    let n = u32::from_le_bytes([bytes[80], bytes[81], bytes[82], bytes[83]]) as usize;
    let frame = frame_in(&String::from_utf8_lossy(&bytes[..80]));
    let mut m = Merger::default();
    m.mesh.triangles.reserve(n);
    for t in 0..n {
        let rec = &bytes[84 + 50 * t..][..50];
        let tri: [u32; 3] = std::array::from_fn(|k| {
            let p: [f32; 3] = std::array::from_fn(|a| {
                let o = 12 + 12 * k + 4 * a;
                f32::from_le_bytes([rec[o], rec[o + 1], rec[o + 2], rec[o + 3]])
            });
            m.vertex(p)
        });
        m.mesh.triangles.push(tri);
    }
    Ok((
        m.mesh,
        MeshFileInfo {
            format: MeshFormat::Stl,
            frame,
            stored_vertices: 3 * n,
        },
    ))
}

fn parse_stl_ascii(bytes: &[u8]) -> std::result::Result<(Mesh, MeshFileInfo), String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| "ASCII STL with non-text bytes".to_string())?;
    let first = text.lines().next().unwrap_or("");
    let frame = frame_in(first);
    let mut m = Merger::default();
    let mut poly: Vec<u32> = Vec::new();
    let mut stored = 0;
    for (ln, line) in text.lines().enumerate() {
        let mut it = line.split_whitespace();
        match it.next() {
            Some("vertex") => {
                let mut p = [0f32; 3];
                for v in &mut p {
                    *v = it
                        .next()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| format!("line {}: a vertex needs three numbers", ln + 1))?;
                }
                poly.push(m.vertex(p));
                stored += 1;
            }
            Some("endloop") => {
                if poly.len() < 3 {
                    return Err(format!(
                        "line {}: a facet with fewer than 3 vertices",
                        ln + 1
                    ));
                }
                for k in 1..poly.len() - 1 {
                    m.mesh.triangles.push([poly[0], poly[k], poly[k + 1]]);
                }
                poly.clear();
            }
            _ => {}
        }
    }
    Ok((
        m.mesh,
        MeshFileInfo {
            format: MeshFormat::StlAscii,
            frame,
            stored_vertices: stored,
        },
    ))
}

fn parse_obj(bytes: &[u8]) -> std::result::Result<(Mesh, MeshFileInfo), String> {
    let text = String::from_utf8_lossy(bytes);
    let mut mesh = Mesh::default();
    let mut frame = None;
    let mut faces: Vec<(usize, Vec<i64>)> = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(c) = line.strip_prefix('#') {
            if frame.is_none() {
                frame = frame_in(c);
            }
            continue;
        }
        let mut it = line.split_whitespace();
        match it.next() {
            Some("v") => {
                let mut p = [0f32; 3];
                for v in &mut p {
                    *v = it
                        .next()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| format!("line {}: `v` needs three numbers", ln + 1))?;
                }
                mesh.vertices.push(p);
            }
            Some("f") => {
                let idx = it
                    .map(|s| {
                        s.split('/')
                            .next()
                            .and_then(|i| i.parse::<i64>().ok())
                            .ok_or_else(|| format!("line {}: `{s}` is not a vertex index", ln + 1))
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                if idx.len() < 3 {
                    return Err(format!("line {}: a face needs at least 3 vertices", ln + 1));
                }
                faces.push((ln, idx));
            }
            _ => {}
        }
    }
    let nv = mesh.vertices.len() as i64;
    for (ln, idx) in faces {
        let resolve = |i: i64| -> std::result::Result<u32, String> {
            // 1-based; negative counts back from the last vertex.
            let j = if i > 0 { i - 1 } else { nv + i };
            if i == 0 || j < 0 || j >= nv {
                Err(format!(
                    "line {}: vertex index {i} is outside the {nv} vertices",
                    ln + 1
                ))
            } else {
                Ok(j as u32)
            }
        };
        let v = idx
            .into_iter()
            .map(resolve)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for k in 1..v.len() - 1 {
            mesh.triangles.push([v[0], v[k], v[k + 1]]);
        }
    }
    let stored = mesh.vertices.len();
    Ok((
        mesh,
        MeshFileInfo {
            format: MeshFormat::Obj,
            frame,
            stored_vertices: stored,
        },
    ))
}

/// Scalar types of PLY properties.
#[derive(Clone, Copy, Debug)]
enum PlyType {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl PlyType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "char" | "int8" => PlyType::I8,
            "uchar" | "uint8" => PlyType::U8,
            "short" | "int16" => PlyType::I16,
            "ushort" | "uint16" => PlyType::U16,
            "int" | "int32" => PlyType::I32,
            "uint" | "uint32" => PlyType::U32,
            "float" | "float32" => PlyType::F32,
            "double" | "float64" => PlyType::F64,
            _ => return None,
        })
    }
    fn size(self) -> usize {
        match self {
            PlyType::I8 | PlyType::U8 => 1,
            PlyType::I16 | PlyType::U16 => 2,
            PlyType::I32 | PlyType::U32 | PlyType::F32 => 4,
            PlyType::F64 => 8,
        }
    }
    fn read(self, b: &[u8], big: bool) -> f64 {
        macro_rules! num {
            ($t:ty, $n:expr) => {{
                let a: [u8; $n] = b[..$n].try_into().unwrap_or([0; $n]);
                (if big {
                    <$t>::from_be_bytes(a)
                } else {
                    <$t>::from_le_bytes(a)
                }) as f64
            }};
        }
        match self {
            PlyType::I8 => b[0] as i8 as f64,
            PlyType::U8 => b[0] as f64,
            PlyType::I16 => num!(i16, 2),
            PlyType::U16 => num!(u16, 2),
            PlyType::I32 => num!(i32, 4),
            PlyType::U32 => num!(u32, 4),
            PlyType::F32 => num!(f32, 4),
            PlyType::F64 => num!(f64, 8),
        }
    }
}

#[derive(Debug)]
enum PlyProp {
    Scalar(String, PlyType),
    List(String, PlyType, PlyType),
}

#[derive(Debug)]
struct PlyElement {
    name: String,
    count: usize,
    props: Vec<PlyProp>,
}

fn parse_ply(bytes: &[u8]) -> std::result::Result<(Mesh, MeshFileInfo), String> {
    // Header: text lines up to "end_header\n".
    let end = bytes
        .windows(10)
        .position(|w| w == b"end_header")
        .ok_or("PLY without end_header")?;
    let mut body = end + 10;
    while body < bytes.len() && bytes[body] != b'\n' {
        body += 1;
    }
    body += 1;
    let header = String::from_utf8_lossy(&bytes[..end]);
    let mut format = "";
    let mut frame = None;
    let mut elements: Vec<PlyElement> = Vec::new();
    for line in header.lines() {
        let mut it = line.split_whitespace();
        match it.next() {
            Some("format") => {
                format = if line.contains("ascii") {
                    "ascii"
                } else if line.contains("binary_big_endian") {
                    "be"
                } else if line.contains("binary_little_endian") {
                    "le"
                } else {
                    return Err(format!("unknown PLY format line `{line}`"));
                }
            }
            Some("comment") | Some("obj_info") if frame.is_none() => {
                frame = frame_in(line);
            }
            Some("element") => {
                let name = it.next().unwrap_or("").to_string();
                let count = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("PLY element line `{line}` has no count"))?;
                elements.push(PlyElement {
                    name,
                    count,
                    props: Vec::new(),
                });
            }
            Some("property") => {
                let el = elements
                    .last_mut()
                    .ok_or("PLY property before any element")?;
                let words: Vec<&str> = it.collect();
                let bad = || format!("PLY property line `{line}` is not understood");
                if words.first() == Some(&"list") {
                    if words.len() < 4 {
                        return Err(bad());
                    }
                    let ct = PlyType::parse(words[1]).ok_or_else(bad)?;
                    let it = PlyType::parse(words[2]).ok_or_else(bad)?;
                    el.props.push(PlyProp::List(words[3].to_string(), ct, it));
                } else {
                    if words.len() < 2 {
                        return Err(bad());
                    }
                    let t = PlyType::parse(words[0]).ok_or_else(bad)?;
                    el.props.push(PlyProp::Scalar(words[1].to_string(), t));
                }
            }
            _ => {}
        }
    }
    if format.is_empty() {
        return Err("PLY header without a format line".into());
    }
    let data = &bytes[body.min(bytes.len())..];
    // Values are read through one cursor for either encoding.
    let mut ascii_tokens = if format == "ascii" {
        Some(
            std::str::from_utf8(data)
                .map_err(|_| "ASCII PLY with non-text bytes")?
                .split_ascii_whitespace(),
        )
    } else {
        None
    };
    let big = format == "be";
    let mut pos = 0usize;
    let mut next = |t: PlyType| -> std::result::Result<f64, String> {
        if let Some(tokens) = ascii_tokens.as_mut() {
            tokens
                .next()
                .and_then(|s| s.parse::<f64>().ok())
                .ok_or_else(|| "ASCII PLY ends early or holds a non-number".to_string())
        } else {
            let s = t.size();
            if pos + s > data.len() {
                return Err("PLY data ends before all elements are read (truncated file)".into());
            }
            let v = t.read(&data[pos..], big);
            pos += s;
            Ok(v)
        }
    };
    let mut mesh = Mesh::default();
    let mut have_faces = false;
    for el in &elements {
        // A sanity bound: every element takes at least one byte (binary) or
        // one character (ASCII).
        if el.count > bytes.len() {
            return Err(format!(
                "PLY says {} {} elements, more than the file can hold",
                el.count, el.name
            ));
        }
        let is_vertex = el.name == "vertex";
        let is_face = el.name == "face";
        let coord = |name: &str| match name {
            "x" => Some(0),
            "y" => Some(1),
            "z" => Some(2),
            _ => None,
        };
        if is_vertex {
            for a in ["x", "y", "z"] {
                if !el
                    .props
                    .iter()
                    .any(|p| matches!(p, PlyProp::Scalar(n, _) if n == a))
                {
                    return Err(format!("PLY vertices have no `{a}` property"));
                }
            }
            mesh.vertices.reserve(el.count);
        }
        let mut poly: Vec<u32> = Vec::new();
        for _ in 0..el.count {
            let mut p = [0f32; 3];
            for prop in &el.props {
                match prop {
                    PlyProp::Scalar(name, t) => {
                        let v = next(*t)?;
                        if is_vertex {
                            if let Some(a) = coord(name) {
                                p[a] = v as f32;
                            }
                        }
                    }
                    PlyProp::List(name, ct, it) => {
                        let n = next(*ct)?;
                        if !(0.0..=1e6).contains(&n) {
                            return Err(format!("PLY list of {n} entries is not plausible"));
                        }
                        let n = n as usize;
                        let wanted =
                            is_face && (name == "vertex_indices" || name == "vertex_index");
                        poly.clear();
                        for _ in 0..n {
                            let v = next(*it)?;
                            if wanted {
                                if !(v >= 0.0 && v < u32::MAX as f64) || v.fract() != 0.0 {
                                    return Err(format!(
                                        "PLY face index {v} is not a vertex index"
                                    ));
                                }
                                poly.push(v as u32);
                            }
                        }
                        if wanted {
                            have_faces = true;
                            if poly.len() < 3 {
                                return Err("a PLY face with fewer than 3 vertices".into());
                            }
                            for k in 1..poly.len() - 1 {
                                mesh.triangles.push([poly[0], poly[k], poly[k + 1]]);
                            }
                        }
                    }
                }
            }
            if is_vertex {
                mesh.vertices.push(p);
            }
        }
    }
    if !have_faces && elements.iter().any(|e| e.name == "face" && e.count > 0) {
        return Err("PLY faces have no vertex_indices list".into());
    }
    let nv = mesh.vertices.len();
    if let Some(bad) = mesh.triangles.iter().flatten().find(|&&i| i as usize >= nv) {
        return Err(format!(
            "PLY face refers to vertex {bad} but the file has {nv} vertices"
        ));
    }
    Ok((
        mesh,
        MeshFileInfo {
            format: MeshFormat::Ply,
            frame,
            stored_vertices: nv,
        },
    ))
}

/// Reads a binary STL into a mesh (LPS as stored), merging identical vertex
/// positions.
pub fn read_stl_binary(path: &Path) -> Result<Mesh> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
    if bytes.len() < 84 {
        return Err(Error::format(path, "too short for a binary STL"));
    }
    let n = u32::from_le_bytes([bytes[80], bytes[81], bytes[82], bytes[83]]) as u64;
    if bytes.len() as u64 != 84 + 50 * n {
        return Err(Error::format(
            path,
            format!(
                "binary STL says {n} triangles but holds {} bytes",
                bytes.len()
            ),
        ));
    }
    parse_stl_binary(&bytes)
        .map(|(m, _)| m)
        .map_err(|m| Error::format(path, m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{surface::mask_surface, Grid, Mask};

    fn sample() -> Mesh {
        let mut m = Mask::filled(Grid::new([6, 6, 6], [0.5, 0.6, 1.2], [10.0, 20.0, 30.0]), 0);
        for (x, y, z) in [(2, 2, 2), (3, 2, 2), (3, 3, 2), (3, 3, 3)] {
            m.set(x, y, z, 1);
        }
        mask_surface(&m)
    }

    #[test]
    fn stl_round_trip_keeps_the_closed_surface() {
        let mesh = sample();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.stl");
        let bytes = save_stl(&mesh, &p).unwrap();
        assert_eq!(bytes as usize, 84 + 50 * mesh.triangles.len());
        let raw = std::fs::read(&p).unwrap();
        assert!(raw[..80].windows(9).any(|w| w == b"SPACE=LPS"));
        let back = read_stl_binary(&p).unwrap();
        assert_eq!(back.triangles.len(), mesh.triangles.len());
        assert_eq!(back.vertices.len(), mesh.vertices.len());
        assert!(back.is_watertight());
        assert!((back.volume_mm3() - mesh.volume_mm3()).abs() < 1e-6);
    }

    #[test]
    fn every_format_and_frame_round_trips_exactly() {
        let mesh = sample();
        let dir = tempfile::tempdir().unwrap();
        for format in [
            MeshFormat::Stl,
            MeshFormat::StlAscii,
            MeshFormat::Ply,
            MeshFormat::Obj,
        ] {
            for frame in [Frame::Lps, Frame::Ras] {
                let p = dir.path().join(format!(
                    "m-{}-{}.{}",
                    format.name(),
                    frame.name(),
                    format.extension()
                ));
                save_mesh(&mesh, &p, format, frame).unwrap();
                let (back, info) = read_mesh(&p).unwrap();
                assert_eq!(info.format, format);
                assert_eq!(info.frame, Some(frame));
                assert_eq!(back.triangles.len(), mesh.triangles.len());
                assert_eq!(back.vertices.len(), mesh.vertices.len());
                assert!(back.is_watertight(), "{format:?} {frame:?}");
                let (v0, v1) = (mesh.volume_mm3(), back.volume_mm3());
                assert!(
                    (v0 - v1).abs() < 1e-9 * v0,
                    "{format:?} {frame:?}: {v0} vs {v1}"
                );
                // Read back into LPS: the same bounds.
                let (a, b) = (mesh.bounds().unwrap(), back.bounds().unwrap());
                for k in 0..3 {
                    assert_eq!(a.0[k], b.0[k]);
                    assert_eq!(a.1[k], b.1[k]);
                }
            }
        }
    }

    #[test]
    fn ras_negates_x_and_y_and_keeps_triangles_outward() {
        let mesh = sample();
        let mut buf = Vec::new();
        write_obj(&mesh, Frame::Ras, &mut buf).unwrap();
        let (raw, info) = parse_mesh(&buf).unwrap();
        assert_eq!(info.frame, Some(Frame::Ras));
        // Parsed as stored (no conversion): RAS coordinates.
        for (p, q) in mesh.vertices.iter().zip(&raw.vertices) {
            assert_eq!([-p[0], -p[1], p[2]], *q);
        }
        assert!(raw.volume_mm3() > 0.0, "RAS file must stay outward");
    }

    #[test]
    fn broken_files_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            b"",
            b"solid x\n facet normal 0 0 1\n outer loop\n vertex 0 0\n",
            b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n\x00\x00",
            b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n3 0 1 2\n",
            b"ply\nformat ascii 1.0\nelement vertex 99999999999\nend_header\n",
            b"# obj\nv 0 0 0\nf 1 2 3\n",
            b"# obj\nv 0 0 0\nf 1 a 3\n",
            &[0u8; 100],
        ];
        for c in cases {
            assert!(parse_mesh(c).is_err(), "{:?}", String::from_utf8_lossy(c));
        }
    }
}
