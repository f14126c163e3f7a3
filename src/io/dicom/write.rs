//! Writing a volume as a DICOM CT series.

use super::*;

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
    /// Patient's Birth Date (0010,0030), `YYYYMMDD` or empty.
    pub patient_birth_date: String,
    /// Accession Number (0008,0050), at most 16 characters.
    pub accession_number: String,
    /// Institution Name (0008,0080), at most 64 characters.
    pub institution_name: String,
    /// Referring Physician's Name (0008,0090), at most 64 characters.
    pub referring_physician: String,
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
            patient_birth_date: String::new(),
            accession_number: String::new(),
            institution_name: String::new(),
            referring_physician: String::new(),
            shuffle_names: false,
        }
    }
}

/// SplitMix64 finaliser.
pub(crate) fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A small deterministic 128-bit hash (two independent 64-bit lanes).
#[derive(Clone, Copy)]
pub(crate) struct Hash128(u64, u64);

impl Hash128 {
    pub(crate) fn new(seed: u64) -> Self {
        Hash128(mix64(seed ^ 0x5350_494E_454D_4553), mix64(!seed))
    }
    pub(crate) fn add(&mut self, w: u64) {
        self.0 = mix64(self.0 ^ w);
        self.1 = mix64(self.1.rotate_left(17) ^ w.wrapping_mul(0xA24B_AED4_963E_E407));
    }
    pub(crate) fn add_bytes(&mut self, b: &[u8]) {
        self.add(b.len() as u64);
        for c in b.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
    }
    /// A `2.25.<decimal>` UID for (`kind`, `index`).
    pub(crate) fn uid(&self, kind: u64, index: u64) -> String {
        let mut h = *self;
        h.add(kind);
        h.add(index);
        let v = (u128::from(h.0) << 64 | u128::from(h.1)) >> 1; // stays below 2^127
        format!("2.25.{}", v.max(1))
    }
}

/// Hash of one slice's values (bit patterns), four independent lanes for speed.
pub(crate) fn hash_values(values: &[f32]) -> u64 {
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
pub(crate) fn ds(v: f64) -> String {
    pub(crate) fn trim(s: String) -> String {
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

pub(crate) fn ds_multi(values: &[f64]) -> String {
    values.iter().map(|&v| ds(v)).collect::<Vec<_>>().join("\\")
}

/// Value representations with a 4-byte length in explicit VR.
pub(crate) fn long_vr(vr: [u8; 2]) -> bool {
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
pub(crate) struct Encoder {
    pub(crate) buf: Vec<u8>,
    pub(crate) explicit: bool,
}

impl Encoder {
    pub(crate) fn new(explicit: bool, capacity: usize) -> Self {
        Encoder {
            buf: Vec::with_capacity(capacity),
            explicit,
        }
    }

    pub(crate) fn header(&mut self, tag: u32, vr: [u8; 2], len: u32) {
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
    pub(crate) fn put(&mut self, tag: u32, vr: [u8; 2], value: &[u8]) {
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

    pub(crate) fn text(&mut self, tag: u32, vr: [u8; 2], value: &str) {
        self.put(tag, vr, value.as_bytes());
    }

    pub(crate) fn us(&mut self, tag: u32, value: u16) {
        self.put(tag, *b"US", &value.to_le_bytes());
    }
}

/// Preamble, `DICM` and the file meta group (always explicit VR little endian).
pub(crate) fn file_meta(sop_class: &str, sop_instance: &str, transfer_syntax: &str) -> Vec<u8> {
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
pub(crate) struct SeriesHeader {
    pub(crate) charset: Option<&'static str>,
    pub(crate) study_uid: String,
    pub(crate) series_uid: String,
    pub(crate) frame_uid: String,
    pub(crate) description: String,
    pub(crate) series_number: String,
    pub(crate) patient_name: String,
    pub(crate) patient_id: String,
    pub(crate) birth_date: String,
    pub(crate) accession: String,
    pub(crate) institution: String,
    pub(crate) physician: String,
    pub(crate) orientation: String,
    pub(crate) pixel_spacing: String,
    pub(crate) slice_thickness: String,
    pub(crate) rows: u16,
    pub(crate) cols: u16,
}

/// The data set of one slice, without the pixel data element.
pub(crate) fn slice_dataset(
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
    e.text(0x0008_0050, *b"SH", &s.accession);
    e.text(0x0008_0060, *b"CS", "CT");
    e.text(0x0008_0070, *b"LO", "");
    e.text(0x0008_0080, *b"LO", &s.institution);
    e.text(0x0008_0090, *b"PN", &s.physician);
    e.text(0x0008_103E, *b"LO", &s.description);
    e.text(0x0010_0010, *b"PN", &s.patient_name);
    e.text(0x0010_0020, *b"LO", &s.patient_id);
    e.text(0x0010_0030, *b"DA", &s.birth_date);
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
pub(crate) fn to_i16(v: f32) -> i16 {
    v.round().clamp(-32768.0, 32767.0) as i16
}

/// Appends a slice's values as little-endian int16.
pub(crate) fn push_i16(buf: &mut Vec<u8>, values: &[f32]) {
    let start = buf.len();
    buf.resize(start + 2 * values.len(), 0);
    for (c, &v) in buf[start..].chunks_exact_mut(2).zip(values) {
        c.copy_from_slice(&to_i16(v).to_le_bytes());
    }
}

pub(crate) fn check_text(what: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max || value.chars().any(|c| c.is_control() || c == '\\') {
        return Err(Error::Parameter(format!(
            "the DICOM {what} must be at most {max} characters without backslashes or control characters"
        )));
    }
    Ok(())
}

/// A pseudo-random permutation of `0..n` from `seed` (Fisher–Yates).
pub(crate) fn permutation(n: usize, seed: u64) -> Vec<usize> {
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
pub(crate) struct SeriesPlan {
    pub(crate) header: SeriesHeader,
    pub(crate) uids: Hash128,
    /// File number (1-based, also the Instance Number) of each z slice.
    pub(crate) numbers: Vec<usize>,
}

pub(crate) fn plan_series(volume: &Volume<f32>, opts: &WriteOptions) -> Result<SeriesPlan> {
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
    check_text("patient birth date", &opts.patient_birth_date, 8)?;
    check_text("accession number", &opts.accession_number, 16)?;
    check_text("institution name", &opts.institution_name, 64)?;
    check_text("referring physician", &opts.referring_physician, 64)?;

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
        &opts.institution_name,
        &opts.referring_physician,
        &opts.accession_number,
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
        birth_date: opts.patient_birth_date.clone(),
        accession: opts.accession_number.clone(),
        institution: opts.institution_name.clone(),
        physician: opts.referring_physician.clone(),
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
pub(crate) fn slice_file(volume: &Volume<f32>, plan: &SeriesPlan, k: usize) -> Vec<u8> {
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
