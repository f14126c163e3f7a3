//! NIfTI-1 volumes (`.nii`, `.nii.gz`): reading CT and label volumes, writing
//! masks and CT volumes.
//!
//! NIfTI stores a voxel → RAS affine; spinemesh works in DICOM LPS. The
//! conversion goes through [`Grid::from_ras_affine`] and [`Grid::ras_affine`].
//!
//! Which affine is used when reading (the NIfTI-1 standard's precedence, as
//! nibabel does it):
//! 1. the sform (`srow_x/y/z`) when `sform_code > 0`;
//! 2. else the qform (quaternion, `pixdim[0]` = qfac, `qoffset_x/y/z`) when
//!    `qform_code > 0`;
//! 3. else `pixdim[1..=3]` alone: a diagonal affine with the origin at 0 (the
//!    standard's "method 1"; the image then has no known place in the patient).
//!
//! Written files carry the same RAS affine in both the sform (code 1,
//! scanner) and the qform (code 1), `xyzt_units` = mm, `scl_slope` = 1, and
//! are gzip-compressed without a time stamp, so equal input gives byte-equal
//! files.

use crate::io::{atomic, InputInfo, LoadedCt};
use crate::{Error, Grid, Mask, Result, Volume};
use std::io::{BufReader, Read, Write};
use std::path::Path;

/// A NIfTI volume as read: values after `scl_slope`/`scl_inter`, on its grid.
#[derive(Debug)]
pub struct NiftiVolume {
    pub volume: Volume<f32>,
    /// The stored data type, e.g. "int16", "float32".
    pub datatype: String,
}

/// NIfTI-1 data type codes we read.
#[derive(Clone, Copy, Debug, PartialEq)]
enum DType {
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl DType {
    fn from_code(code: i16) -> Option<DType> {
        Some(match code {
            2 => DType::U8,
            4 => DType::I16,
            8 => DType::I32,
            16 => DType::F32,
            64 => DType::F64,
            256 => DType::I8,
            512 => DType::U16,
            768 => DType::U32,
            1024 => DType::I64,
            1280 => DType::U64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            DType::U8 | DType::I8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::U16 => "uint16",
            DType::I32 => "int32",
            DType::U32 => "uint32",
            DType::I64 => "int64",
            DType::U64 => "uint64",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
}

fn type_name_of_code(code: i16) -> String {
    match code {
        1 => "binary (1 bit)".into(),
        32 => "complex64".into(),
        128 => "RGB24".into(),
        1536 => "float128".into(),
        1792 => "complex128".into(),
        2048 => "complex256".into(),
        2304 => "RGBA32".into(),
        c => format!("code {c}"),
    }
}

/// Converts raw bytes of one type into f32 values (`out.len()` values).
fn convert(raw: &[u8], t: DType, little: bool, slope: f64, inter: f64, out: &mut [f32]) {
    macro_rules! conv {
        ($ty:ty, $n:expr) => {{
            for (o, c) in out.iter_mut().zip(raw.chunks_exact($n)) {
                let b: [u8; $n] = c.try_into().unwrap_or([0; $n]);
                let v = if little {
                    <$ty>::from_le_bytes(b)
                } else {
                    <$ty>::from_be_bytes(b)
                };
                *o = (v as f64 * slope + inter) as f32;
            }
        }};
    }
    match t {
        DType::U8 => conv!(u8, 1),
        DType::I8 => conv!(i8, 1),
        DType::I16 => conv!(i16, 2),
        DType::U16 => conv!(u16, 2),
        DType::I32 => conv!(i32, 4),
        DType::U32 => conv!(u32, 4),
        DType::I64 => conv!(i64, 8),
        DType::U64 => conv!(u64, 8),
        DType::F32 => conv!(f32, 4),
        DType::F64 => conv!(f64, 8),
    }
}

/// Opens a file, transparently gunzipping it when it starts with the gzip magic.
fn open_maybe_gz(path: &Path) -> Result<Box<dyn Read>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let head =
        std::io::BufRead::fill_buf(&mut reader).map_err(|e| Error::io("cannot read", path, e))?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

/// An f32 header value as the f64 with the shortest decimal form that rounds
/// to it (0.6f32 → 0.6, not 0.6000000238…), so spacings and positions keep the
/// values the writer meant.
fn nice(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

/// The voxel → RAS affine of a header, and which source it came from.
fn header_affine(h: &nifti::NiftiHeader) -> ([[f64; 4]; 4], &'static str) {
    let mut a = [[0.0; 4]; 4];
    a[3][3] = 1.0;
    let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
    if h.sform_code > 0 && finite(&h.srow_x) && finite(&h.srow_y) && finite(&h.srow_z) {
        for (row, srow) in a.iter_mut().zip([&h.srow_x, &h.srow_y, &h.srow_z]) {
            for (o, &v) in row.iter_mut().zip(srow.iter()) {
                *o = nice(v);
            }
        }
        return (a, "sform");
    }
    let pix = |i: usize| {
        let p = nice(h.pixdim[i]).abs();
        if p.is_finite() && p > 0.0 {
            p
        } else {
            1.0
        }
    };
    let (dx, dy, dz) = (pix(1), pix(2), pix(3));
    if h.qform_code > 0 {
        let (mut b, mut c, mut d) = (h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
        let s = 1.0 - (b * b + c * c + d * d);
        let aq = if s > 1e-7 {
            s.sqrt()
        } else {
            // Nearly 180° rotation: renormalise (b, c, d) as nifti1_io does.
            let n = (b * b + c * c + d * d).sqrt();
            if n > 0.0 {
                b /= n;
                c /= n;
                d /= n;
            }
            0.0
        };
        let r = [
            [
                aq * aq + b * b - c * c - d * d,
                2.0 * (b * c - aq * d),
                2.0 * (b * d + aq * c),
            ],
            [
                2.0 * (b * c + aq * d),
                aq * aq + c * c - b * b - d * d,
                2.0 * (c * d - aq * b),
            ],
            [
                2.0 * (b * d - aq * c),
                2.0 * (c * d + aq * b),
                aq * aq + d * d - c * c - b * b,
            ],
        ];
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let scale = [dx, dy, dz * qfac];
        for row in 0..3 {
            for col in 0..3 {
                a[row][col] = r[row][col] * scale[col];
            }
        }
        a[0][3] = nice(h.quatern_x);
        a[1][3] = nice(h.quatern_y);
        a[2][3] = nice(h.quatern_z);
        if a.iter().flatten().all(|v| v.is_finite()) {
            return (a, "qform");
        }
    }
    let mut a = [[0.0; 4]; 4];
    a[0][0] = dx;
    a[1][1] = dy;
    a[2][2] = dz;
    a[3][3] = 1.0;
    (a, "pixdim")
}

/// Reads a `.nii` or `.nii.gz` file (gzip is recognised by content).
///
/// Values are returned as f32 after `scl_slope`/`scl_inter` (a slope of 0 or
/// non-finite means "no scaling"). Data types: uint8, int8, int16, uint16,
/// int32, uint32, int64, uint64, float32, float64. A 4th (or higher)
/// dimension of size 1 is accepted; a true 4D image is refused. See the
/// module documentation for which affine is used. The data are streamed one
/// slice at a time, so only the output volume is held in memory.
pub fn read_nifti(path: &Path) -> Result<NiftiVolume> {
    let mut reader = open_maybe_gz(path)?;
    let h = nifti::NiftiHeader::from_reader(&mut reader).map_err(|e| {
        Error::format(
            path,
            format!("not a readable NIfTI-1 file ({e}); give a .nii or .nii.gz image"),
        )
    })?;
    if h.sizeof_hdr != 348 {
        return Err(Error::format(
            path,
            format!(
                "header size is {} instead of 348 (NIfTI-2 or not NIfTI); convert the image to NIfTI-1",
                h.sizeof_hdr
            ),
        ));
    }
    if &h.magic != b"n+1\0" {
        return Err(Error::format(
            path,
            "this is a .hdr/.img pair or an ANALYZE header, not a single-file NIfTI; convert it to .nii or .nii.gz",
        ));
    }
    let rank = h.dim[0] as usize;
    if !(1..=7).contains(&rank) {
        return Err(Error::format(
            path,
            format!(
                "dim[0] = {} is not a valid number of dimensions (1 to 7)",
                h.dim[0]
            ),
        ));
    }
    let mut dims = [1usize; 3];
    for (a, d) in dims.iter_mut().enumerate().take(rank.min(3)) {
        let n = h.dim[a + 1] as i16;
        if n <= 0 {
            return Err(Error::format(
                path,
                format!("dimension {} has size {n}; the header is broken", a + 1),
            ));
        }
        *d = n as usize;
    }
    let extra: usize = (4..=rank)
        .map(|a| (h.dim[a] as i16).max(0) as usize)
        .product();
    if rank > 3 && extra != 1 {
        return Err(Error::format(
            path,
            format!(
                "the image is {rank}D with {extra} volumes ({:?}); give a single 3D volume",
                &h.dim[1..=rank]
            ),
        ));
    }
    let t = DType::from_code(h.datatype).ok_or_else(|| {
        Error::format(
            path,
            format!(
                "NIfTI data type {} is not supported; convert the image to an integer or float type",
                type_name_of_code(h.datatype)
            ),
        )
    })?;
    let (affine, _source) = header_affine(&h);
    let grid =
        Grid::from_ras_affine(dims, &affine).map_err(|e| Error::format(path, e.to_string()))?;

    let (mut slope, mut inter) = (h.scl_slope as f64, h.scl_inter as f64);
    if slope == 0.0 || !slope.is_finite() {
        slope = 1.0;
        inter = 0.0;
    }
    if !inter.is_finite() {
        inter = 0.0;
    }
    let little = h.endianness == nifti::Endianness::Little;

    // Skip to the data (extensions between byte 348 and vox_offset).
    let vox_offset = h.vox_offset as f64;
    if !(vox_offset.is_finite() && (0.0..1e12).contains(&vox_offset)) {
        return Err(Error::format(
            path,
            format!("vox_offset {vox_offset} is invalid"),
        ));
    }
    let skip = (vox_offset as u64).saturating_sub(348);
    let skipped = std::io::copy(&mut (&mut reader).take(skip), &mut std::io::sink())
        .map_err(|e| Error::io("cannot read", path, e))?;
    if skipped != skip {
        return Err(Error::format(
            path,
            "the file ends before its image data starts; it is truncated",
        ));
    }

    let n = grid.len();
    // The header's size is only a claim: never allocate more than the data
    // that actually arrives (a hostile header may declare terabytes).
    alloc_voxels(path, 0)?;
    if n > (1usize << 36) {
        return Err(Error::format(
            path,
            format!("the header declares {n} voxels, more than spinemesh accepts; the file is broken or too large"),
        ));
    }
    let file_len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(u64::MAX);
    let gz = std::fs::File::open(path)
        .and_then(|mut f| {
            let mut m = [0u8; 2];
            f.read_exact(&mut m).map(|_| m == [0x1f, 0x8b])
        })
        .unwrap_or(false);
    if !gz
        && (n as u64).saturating_mul(t.size() as u64) > file_len.saturating_sub(vox_offset as u64)
    {
        return Err(Error::format(
            path,
            format!(
                "the header declares {n} voxels of {} bytes but the file holds only {} bytes of image data; it is truncated or its header is broken",
                t.size(),
                file_len.saturating_sub(vox_offset as u64)
            ),
        ));
    }
    let mut data: Vec<f32> = Vec::new();
    let first = if gz { n.min(1 << 24) } else { n };
    if data.try_reserve_exact(first).is_err() {
        return Err(Error::format(
            path,
            format!("the header declares {n} voxels, more than this computer can hold; the file is broken or too large"),
        ));
    }
    let chunk = 1 << 18;
    let mut raw = vec![0u8; chunk * t.size()];
    let mut left = n;
    while left > 0 {
        let m = left.min(chunk);
        left -= m;
        let start = data.len();
        if data.try_reserve(m).is_err() {
            return Err(Error::format(
                path,
                format!("the header declares {n} voxels, more than this computer can hold; the file is broken or too large"),
            ));
        }
        data.resize(start + m, 0.0);
        let out = &mut data[start..];
        let bytes = &mut raw[..out.len() * t.size()];
        reader.read_exact(bytes).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::format(
                    path,
                    "the file ends before all voxels were read; it is truncated",
                )
            } else {
                Error::io("cannot read", path, e)
            }
        })?;
        convert(bytes, t, little, slope, inter, out);
    }
    Ok(NiftiVolume {
        volume: Volume::new(grid, data)?,
        datatype: t.name().to_string(),
    })
}

/// A zeroed f32 buffer for `n` voxels, or an error (instead of an abort) when
/// the header asks for more memory than there is.
pub(crate) fn alloc_voxels(path: &Path, n: usize) -> Result<Vec<f32>> {
    let mut v: Vec<f32> = Vec::new();
    if n > (1usize << 36) || v.try_reserve_exact(n).is_err() {
        return Err(Error::format(
            path,
            format!("the header declares {n} voxels, more than this computer can hold; the file is broken or too large"),
        ));
    }
    v.resize(n, 0.0);
    Ok(v)
}

/// Reads a CT volume from NIfTI (values in HU after scaling).
pub fn read_ct(path: &Path) -> Result<LoadedCt> {
    let nv = read_nifti(path)?;
    let info = InputInfo {
        kind: "nifti".into(),
        files_read: 1,
        dims: nv.volume.grid.dims,
        spacing_mm: nv.volume.grid.spacing,
        transfer_syntax: Some(format!("nifti {}", nv.datatype)),
        ..Default::default()
    };
    Ok(LoadedCt {
        volume: nv.volume,
        info,
    })
}

/// Quaternion (b, c, d) and qfac of the rotation part of a RAS affine
/// (nifti1_io's `nifti_mat44_to_quatern`, without re-orthogonalisation).
fn quaternion(grid: &Grid) -> ([f64; 3], f64) {
    let aff = grid.ras_affine();
    // Unit columns.
    let mut r = [[0.0; 3]; 3];
    for col in 0..3 {
        let n = (0..3).map(|row| aff[row][col].powi(2)).sum::<f64>().sqrt();
        for row in 0..3 {
            r[row][col] = if n > 0.0 { aff[row][col] / n } else { 0.0 };
        }
    }
    let det = crate::volume::det3(&r);
    let qfac = if det < 0.0 { -1.0 } else { 1.0 };
    if qfac < 0.0 {
        for row in r.iter_mut() {
            row[2] = -row[2];
        }
    }
    let (r11, r12, r13) = (r[0][0], r[0][1], r[0][2]);
    let (r21, r22, r23) = (r[1][0], r[1][1], r[1][2]);
    let (r31, r32, r33) = (r[2][0], r[2][1], r[2][2]);
    let trace1 = r11 + r22 + r33 + 1.0;
    let (a, mut b, mut c, mut d): (f64, f64, f64, f64);
    if trace1 > 0.5 {
        a = 0.5 * trace1.sqrt();
        b = 0.25 * (r32 - r23) / a;
        c = 0.25 * (r13 - r31) / a;
        d = 0.25 * (r21 - r12) / a;
    } else {
        let xd = 1.0 + r11 - (r22 + r33);
        let yd = 1.0 + r22 - (r11 + r33);
        let zd = 1.0 + r33 - (r11 + r22);
        if xd > 1.0 {
            b = 0.5 * xd.sqrt();
            c = 0.25 * (r12 + r21) / b;
            d = 0.25 * (r13 + r31) / b;
            a = 0.25 * (r32 - r23) / b;
        } else if yd > 1.0 {
            c = 0.5 * yd.sqrt();
            b = 0.25 * (r12 + r21) / c;
            d = 0.25 * (r23 + r32) / c;
            a = 0.25 * (r13 - r31) / c;
        } else {
            d = 0.5 * zd.sqrt();
            b = 0.25 * (r13 + r31) / d;
            c = 0.25 * (r23 + r32) / d;
            a = 0.25 * (r21 - r12) / d;
        }
        if a < 0.0 {
            b = -b;
            c = -c;
            d = -d;
        }
    }
    let fix = |v: f64| if v.is_finite() { v } else { 0.0 };
    ([fix(b), fix(c), fix(d)], qfac)
}

/// The 352-byte header (348 + empty extension flag) for a 3D image on `grid`.
fn build_header(grid: &Grid, datatype: i16, bitpix: i16, cal: (f32, f32)) -> Result<Vec<u8>> {
    for (a, &n) in grid.dims.iter().enumerate() {
        if n == 0 || n > i16::MAX as usize {
            return Err(Error::Input(format!(
                "cannot write NIfTI: axis {a} has {n} voxels, but NIfTI-1 allows 1 to 32767"
            )));
        }
    }
    let aff = grid.ras_affine();
    if !aff.iter().flatten().all(|v| v.is_finite()) {
        return Err(Error::Input(
            "cannot write NIfTI: the grid's geometry has non-finite values".into(),
        ));
    }
    let mut h = vec![0u8; 352];
    let put_i16 =
        |h: &mut Vec<u8>, off: usize, v: i16| h[off..off + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 =
        |h: &mut Vec<u8>, off: usize, v: f32| h[off..off + 4].copy_from_slice(&v.to_le_bytes());
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    h[38] = b'r';
    let dim = [
        3,
        grid.dims[0] as i16,
        grid.dims[1] as i16,
        grid.dims[2] as i16,
        1,
        1,
        1,
        1,
    ];
    for (i, &d) in dim.iter().enumerate() {
        put_i16(&mut h, 40 + 2 * i, d);
    }
    put_i16(&mut h, 70, datatype);
    put_i16(&mut h, 72, bitpix);
    let (q, qfac) = quaternion(grid);
    let pixdim = [
        qfac as f32,
        grid.spacing[0] as f32,
        grid.spacing[1] as f32,
        grid.spacing[2] as f32,
        1.0,
        1.0,
        1.0,
        1.0,
    ];
    for (i, &p) in pixdim.iter().enumerate() {
        put_f32(&mut h, 76 + 4 * i, p);
    }
    put_f32(&mut h, 108, 352.0); // vox_offset
    put_f32(&mut h, 112, 1.0); // scl_slope
    put_f32(&mut h, 116, 0.0); // scl_inter
    h[123] = 2; // xyzt_units: NIFTI_UNITS_MM, time unknown
    put_f32(&mut h, 124, cal.1); // cal_max
    put_f32(&mut h, 128, cal.0); // cal_min
    let descrip = b"spinemesh";
    h[148..148 + descrip.len()].copy_from_slice(descrip);
    put_i16(&mut h, 252, 1); // qform_code: scanner
    put_i16(&mut h, 254, 1); // sform_code: scanner
    put_f32(&mut h, 256, q[0] as f32);
    put_f32(&mut h, 260, q[1] as f32);
    put_f32(&mut h, 264, q[2] as f32);
    put_f32(&mut h, 268, aff[0][3] as f32);
    put_f32(&mut h, 272, aff[1][3] as f32);
    put_f32(&mut h, 276, aff[2][3] as f32);
    for (row, arow) in aff.iter().take(3).enumerate() {
        for (col, &v) in arow.iter().enumerate() {
            put_f32(&mut h, 280 + 16 * row + 4 * col, v as f32);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    // Bytes 348..352: extension flag 0 (no extensions).
    Ok(h)
}

/// Writes header + data, gzip-compressed when the name ends in `.gz`.
fn write_file(
    path: &Path,
    header: &[u8],
    mut data: impl FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> Result<u64> {
    let gz = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase().ends_with(".gz"))
        .unwrap_or(false);
    atomic::write_with(path, |w| {
        if gz {
            // GzBuilder without a file name or time stamp: deterministic bytes.
            let mut enc = flate2::GzBuilder::new()
                .mtime(0)
                .operating_system(255)
                .write(w, flate2::Compression::new(4));
            enc.write_all(header)?;
            data(&mut enc)?;
            enc.finish()?;
            Ok(())
        } else {
            w.write_all(header)?;
            data(w)
        }
    })
}

/// Writes a mask as a uint8 0/1 NIfTI (`.nii.gz` compresses) on the mask's
/// grid. Any non-zero voxel is written as 1. Returns the bytes written.
///
/// `.nii.gz` is compressed in parallel, pigz style: the bytes are cut into
/// blocks of `GZ_BLOCK` bytes, each deflated on its own (ending on a byte
/// boundary with a sync flush, the last one finished), and the pieces are
/// written in order as one ordinary gzip member with the CRC of the whole.
pub fn write_mask(path: &Path, mask: &Mask) -> Result<u64> {
    stage_mask(path, mask)?.commit()
}

/// [`write_mask`] up to the last step: the file is complete under a
/// temporary name and appears at `path` when committed.
pub fn stage_mask(path: &Path, mask: &Mask) -> Result<atomic::Staged> {
    stage_u8(path, mask, true)
}

/// A label map (uint8, values as they are, e.g. vertebra numbers), staged
/// as [`stage_mask`] does.
pub fn stage_labels(path: &Path, labels: &Mask) -> Result<atomic::Staged> {
    stage_u8(path, labels, false)
}

/// Writes `v` as uint8, as 0/1 when `binary`.
fn stage_u8(path: &Path, v: &Mask, binary: bool) -> Result<atomic::Staged> {
    if v.data.len() != v.grid.len() {
        return Err(Error::Input(
            "cannot write the mask: its data length does not match its grid".into(),
        ));
    }
    let max = if binary {
        1.0
    } else {
        v.data.iter().copied().max().unwrap_or(0).max(1) as f32
    };
    let header = build_header(&v.grid, 2, 8, (0.0, max))?;
    let out = |x: u8| if binary { u8::from(x != 0) } else { x };
    if is_gz(path) {
        return atomic::stage_with(path, |w| write_gz_parallel(w, &header, &v.data, binary));
    }
    atomic::stage_with(path, |w| {
        w.write_all(&header)?;
        let mut buf = vec![0u8; 1 << 16];
        for chunk in v.data.chunks(1 << 16) {
            for (o, &x) in buf.iter_mut().zip(chunk) {
                *o = out(x);
            }
            w.write_all(&buf[..chunk.len()])?;
        }
        Ok(())
    })
}

fn is_gz(path: &Path) -> bool {
    path.file_name()
        .map(|n| n.to_string_lossy().to_lowercase().ends_with(".gz"))
        .unwrap_or(false)
}

/// Bytes per independently deflated block of [`write_gz_parallel`].
const GZ_BLOCK: usize = 4 << 20;

/// One gzip member (no name, time stamp 0, OS 255: deterministic bytes) of
/// `header` followed by `data` (mapped to 0/1 when `binary`), deflated block by block in
/// parallel (level 1: masks are long runs, and this is the slowest output).
fn write_gz_parallel(
    w: &mut dyn Write,
    header: &[u8],
    data: &[u8],
    binary: bool,
) -> std::io::Result<()> {
    use flate2::{Compress, Compression, Crc, FlushCompress};
    use rayon::prelude::*;
    let n_blocks = data.len().div_ceil(GZ_BLOCK).max(1);
    let blocks: Vec<(Vec<u8>, Crc)> = (0..n_blocks)
        .into_par_iter()
        .map(|b| -> std::io::Result<(Vec<u8>, Crc)> {
            let part = &data[(b * GZ_BLOCK).min(data.len())..((b + 1) * GZ_BLOCK).min(data.len())];
            let mut input = Vec::with_capacity(part.len() + header.len());
            if b == 0 {
                input.extend_from_slice(header);
            }
            if binary {
                input.extend(part.iter().map(|&v| u8::from(v != 0)));
            } else {
                input.extend_from_slice(part);
            }
            let mut crc = Crc::new();
            crc.update(&input);
            let last = b + 1 == n_blocks;
            let flush = if last {
                FlushCompress::Finish
            } else {
                FlushCompress::Sync
            };
            let mut c = Compress::new(Compression::fast(), false);
            let mut out = Vec::with_capacity(input.len() / 8 + 1024);
            loop {
                let consumed = c.total_in() as usize;
                let status = c
                    .compress_vec(&input[consumed..], &mut out, flush)
                    .map_err(std::io::Error::other)?;
                let done = if last {
                    status == flate2::Status::StreamEnd
                } else {
                    c.total_in() as usize == input.len() && out.len() < out.capacity()
                };
                if done {
                    break;
                }
                out.reserve(out.capacity().max(1 << 16));
            }
            Ok((out, crc))
        })
        .collect::<std::io::Result<_>>()?;
    // gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS 255.
    w.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
    let mut crc = Crc::new();
    for (bytes, c) in &blocks {
        w.write_all(bytes)?;
        crc.combine(c);
    }
    w.write_all(&crc.sum().to_le_bytes())?;
    w.write_all(&crc.amount().to_le_bytes())?;
    Ok(())
}

/// Writes a CT volume as int16 NIfTI (values rounded and clamped to the int16
/// range; NaN is written as 0). Returns the bytes written.
pub fn write_volume_i16(path: &Path, volume: &Volume<f32>) -> Result<u64> {
    if volume.data.len() != volume.grid.len() {
        return Err(Error::Input(
            "cannot write the volume: its data length does not match its grid".into(),
        ));
    }
    let header = build_header(&volume.grid, 4, 16, (0.0, 0.0))?;
    write_file(path, &header, |w| {
        let mut buf = vec![0u8; 2 << 15];
        for chunk in volume.data.chunks(1 << 15) {
            for (o, &v) in buf.chunks_exact_mut(2).zip(chunk) {
                let q = if v.is_nan() {
                    0
                } else {
                    v.round().clamp(i16::MIN as f32, i16::MAX as f32) as i16
                };
                o.copy_from_slice(&q.to_le_bytes());
            }
            w.write_all(&buf[..2 * chunk.len()])?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oblique_grid(mirror: bool) -> Grid {
        let (c, s) = (25f64.to_radians().cos(), 25f64.to_radians().sin());
        let (c2, s2) = (10f64.to_radians().cos(), 10f64.to_radians().sin());
        // Rotation about z by 25°, then about x by 10°.
        let d0 = [c, s, 0.0];
        let d1 = [-s * c2, c * c2, s2];
        let mut d2 = [
            d0[1] * d1[2] - d0[2] * d1[1],
            d0[2] * d1[0] - d0[0] * d1[2],
            d0[0] * d1[1] - d0[1] * d1[0],
        ];
        if mirror {
            d2 = [-d2[0], -d2[1], -d2[2]];
        }
        Grid {
            dims: [7, 5, 4],
            spacing: [0.8, 1.1, 2.5],
            origin: [-12.5, 40.25, 101.0],
            direction: [d0, d1, d2],
        }
    }

    fn pattern_mask(grid: Grid) -> Mask {
        let data = (0..grid.len())
            .map(|i| u8::from((i * 7919) % 5 < 2))
            .collect();
        Volume::new(grid, data).unwrap()
    }

    fn close_grids(a: &Grid, b: &Grid) -> bool {
        a.dims == b.dims
            && (0..3).all(|i| {
                (a.spacing[i] - b.spacing[i]).abs() < 1e-5
                    && (a.origin[i] - b.origin[i]).abs() < 1e-4
                    && (0..3).all(|c| (a.direction[i][c] - b.direction[i][c]).abs() < 1e-5)
            })
    }

    #[test]
    fn mask_round_trip_oblique_and_mirrored() {
        let dir = tempfile::tempdir().unwrap();
        for mirror in [false, true] {
            let m = pattern_mask(oblique_grid(mirror));
            let p = dir.path().join("m.nii.gz");
            let n = write_mask(&p, &m).unwrap();
            assert_eq!(n, std::fs::metadata(&p).unwrap().len());
            let back = read_nifti(&p).unwrap();
            assert_eq!(back.datatype, "uint8");
            assert!(
                close_grids(&back.volume.grid, &m.grid),
                "{:?}",
                back.volume.grid
            );
            let vals: Vec<u8> = back.volume.data.iter().map(|&v| v as u8).collect();
            assert_eq!(vals, m.data);
        }
    }

    #[test]
    fn qform_alone_gives_the_same_grid() {
        // Zero the sform code: the reader must fall back on the quaternion.
        for mirror in [false, true] {
            let g = oblique_grid(mirror);
            let mut h = build_header(&g, 2, 8, (0.0, 1.0)).unwrap();
            h[254..256].copy_from_slice(&0i16.to_le_bytes());
            h.extend(std::iter::repeat_n(1u8, g.len()));
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("q.nii");
            std::fs::write(&p, &h).unwrap();
            let back = read_nifti(&p).unwrap();
            assert!(
                close_grids(&back.volume.grid, &g),
                "mirror {mirror}: {:?}",
                back.volume.grid
            );
        }
    }

    #[test]
    fn pixdim_only_and_scaling_and_big_endian() {
        let g = Grid::new([3, 2, 2], [0.5, 0.6, 2.0], [0.0; 3]);
        let mut h = build_header(&g, 4, 16, (0.0, 0.0)).unwrap();
        h[252..256].copy_from_slice(&[0, 0, 0, 0]); // no qform, no sform
        h[112..116].copy_from_slice(&2.0f32.to_le_bytes());
        h[116..120].copy_from_slice(&(-1024.0f32).to_le_bytes());
        for v in 0..12i16 {
            h.extend_from_slice(&(v * 100).to_le_bytes());
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.nii");
        std::fs::write(&p, &h).unwrap();
        let back = read_nifti(&p).unwrap().volume;
        assert_eq!(back.grid.spacing, [0.5, 0.6, 2.0]);
        // Pixdim-only affine is RAS-diagonal: LPS direction flips x and y.
        assert_eq!(back.grid.direction[0], [-1.0, 0.0, 0.0]);
        assert_eq!(back.data[3], 3.0 * 100.0 * 2.0 - 1024.0);

        // Big-endian copy of the same file (swap every header field by hand
        // is tedious; instead check the data path with a swapped int16 file).
        let mut be = build_header(&g, 4, 16, (0.0, 0.0)).unwrap();
        swap_header_to_be(&mut be);
        for v in 0..12i16 {
            be.extend_from_slice(&(v - 5).to_be_bytes());
        }
        let p = dir.path().join("be.nii");
        std::fs::write(&p, &be).unwrap();
        let back = read_nifti(&p).unwrap().volume;
        assert_eq!(back.data[0], -5.0);
        assert_eq!(back.data[11], 6.0);
        assert!(close_grids(&back.grid, &g));
    }

    /// Byte-swaps the numeric fields of a little-endian header we built.
    fn swap_header_to_be(h: &mut [u8]) {
        let swap = |h: &mut [u8], off: usize, n: usize| h[off..off + n].reverse();
        swap(h, 0, 4);
        swap(h, 32, 4);
        swap(h, 36, 2);
        for i in 0..8 {
            swap(h, 40 + 2 * i, 2);
        }
        for off in [56, 60, 64] {
            swap(h, off, 4);
        }
        for off in [68, 70, 72, 74] {
            swap(h, off, 2);
        }
        for i in 0..8 {
            swap(h, 76 + 4 * i, 4);
        }
        for off in [108, 112, 116] {
            swap(h, off, 4);
        }
        swap(h, 120, 2);
        for off in [124, 128, 132, 136, 140, 144] {
            swap(h, off, 4);
        }
        swap(h, 252, 2);
        swap(h, 254, 2);
        for i in 0..18 {
            swap(h, 256 + 4 * i, 4);
        }
    }

    #[test]
    fn output_is_deterministic_and_int16_volume_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let g = oblique_grid(false);
        let data: Vec<f32> = (0..g.len()).map(|i| i as f32 * 37.4 - 1000.0).collect();
        let v = Volume::new(g, data).unwrap();
        let (a, b) = (dir.path().join("a.nii.gz"), dir.path().join("b.nii.gz"));
        write_volume_i16(&a, &v).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        write_volume_i16(&b, &v).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let back = read_ct(&a).unwrap();
        assert_eq!(back.info.transfer_syntax.as_deref(), Some("nifti int16"));
        assert_eq!(back.info.kind, "nifti");
        for (x, y) in back.volume.data.iter().zip(&v.data) {
            assert_eq!(*x, y.round().clamp(-32768.0, 32767.0));
        }
    }

    /// A mask of several gzip blocks is one gzip member (a single-member
    /// decoder reads it all), reads back equal, and is written identically twice.
    #[test]
    fn parallel_gzip_mask_is_one_member_and_round_trips() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let g = Grid::new([256, 251, 140], [0.5, 0.5, 1.0], [1.0, 2.0, 3.0]);
        assert!(g.len() > 2 * GZ_BLOCK);
        let data: Vec<u8> = (0..g.len())
            .map(|i| u8::from((i / 7 + i / 1000) % 5 == 0) * (1 + (i % 3) as u8))
            .collect();
        let m = Mask::new(g, data).unwrap();
        let (a, b) = (dir.path().join("a.nii.gz"), dir.path().join("b.nii.gz"));
        write_mask(&a, &m).unwrap();
        write_mask(&b, &m).unwrap();
        let bytes = std::fs::read(&a).unwrap();
        assert_eq!(bytes, std::fs::read(&b).unwrap());
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut raw)
            .unwrap();
        assert_eq!(raw.len(), 352 + m.data.len());
        assert!(raw[352..]
            .iter()
            .zip(&m.data)
            .all(|(&r, &v)| r == u8::from(v != 0)));
        let back = read_nifti(&a).unwrap().volume;
        assert!(back.grid.same_as(&m.grid));
        assert!(back
            .data
            .iter()
            .zip(&m.data)
            .all(|(&r, &v)| r == f32::from(u8::from(v != 0))));
    }

    #[test]
    fn bad_files_give_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk.nii");
        std::fs::write(&p, b"hello").unwrap();
        assert!(read_nifti(&p).is_err());
        // Truncated data.
        let g = Grid::new([4, 4, 4], [1.0; 3], [0.0; 3]);
        let mut h = build_header(&g, 2, 8, (0.0, 1.0)).unwrap();
        h.extend([1u8; 10]);
        std::fs::write(&p, &h).unwrap();
        let e = read_nifti(&p).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        // Real 4D.
        let mut h = build_header(&g, 2, 8, (0.0, 1.0)).unwrap();
        h[40..42].copy_from_slice(&4i16.to_le_bytes());
        h[48..50].copy_from_slice(&3i16.to_le_bytes());
        h.extend(vec![0u8; 3 * 64]);
        std::fs::write(&p, &h).unwrap();
        let e = read_nifti(&p).unwrap_err().to_string();
        assert!(e.contains("4D"), "{e}");
        // Singleton 4th dimension is fine.
        let mut h = build_header(&g, 2, 8, (0.0, 1.0)).unwrap();
        h[40..42].copy_from_slice(&4i16.to_le_bytes());
        h.extend(vec![0u8; 64]);
        std::fs::write(&p, &h).unwrap();
        assert_eq!(read_nifti(&p).unwrap().volume.grid.dims, [4, 4, 4]);
        // Unsupported type.
        let mut h = build_header(&g, 2, 8, (0.0, 1.0)).unwrap();
        h[70..72].copy_from_slice(&128i16.to_le_bytes());
        h.extend(vec![0u8; 3 * 64]);
        std::fs::write(&p, &h).unwrap();
        let e = read_nifti(&p).unwrap_err().to_string();
        assert!(e.contains("RGB24"), "{e}");
        // Absurd size: an error, not an allocation abort.
        let mut h = build_header(&g, 2, 8, (0.0, 1.0)).unwrap();
        for i in 1..4 {
            h[40 + 2 * i..42 + 2 * i].copy_from_slice(&32767i16.to_le_bytes());
        }
        std::fs::write(&p, &h).unwrap();
        let e = read_nifti(&p).unwrap_err().to_string();
        assert!(e.contains("too large"), "{e}");
        // Missing file.
        assert!(read_nifti(&dir.path().join("none.nii")).is_err());
    }

    #[test]
    fn reads_real_totalseg_ct_when_present() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/totalseg-abdomen-3mm");
        if !dir.exists() {
            assert!(
                !matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1")),
                "real data folder {} is missing",
                dir.display()
            );
            eprintln!("skipping: {} not found", dir.display());
            return;
        }
        let ct = read_ct(&dir.join("ct.nii.gz")).unwrap();
        assert_eq!(ct.info.dims, [122, 101, 112]);
        assert_eq!(ct.info.transfer_syntax.as_deref(), Some("nifti int32"));
        for s in ct.info.spacing_mm {
            assert!((s - 3.0).abs() < 1e-3);
        }
        let min = ct.volume.data.iter().cloned().fold(f32::INFINITY, f32::min);
        let max = ct
            .volume
            .data
            .iter()
            .cloned()
            .fold(f32::NEG_INFINITY, f32::max);
        assert!(min <= -900.0 && max >= 1000.0, "HU range {min}..{max}");
    }
}
