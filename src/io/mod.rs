//! Input and output at the edges of the pipeline: DICOM series, NIfTI and NRRD
//! volumes, meshes, and atomic file writing.

pub mod atomic;
pub mod dicom;
pub mod mesh;
pub mod nifti;
pub mod nrrd;
pub mod resample;

use crate::{Result, Volume};
use std::path::Path;

/// Reads a mask or label volume (`.nii`, `.nii.gz`, `.nrrd`, `.nhdr`) as f32 values.
pub fn read_label_volume(path: &Path) -> Result<Volume<f32>> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if name.ends_with(".nrrd") || name.ends_with(".nhdr") {
        nrrd::read_nrrd(path)
    } else if name.ends_with(".nii") || name.ends_with(".nii.gz") {
        Ok(nifti::read_nifti(path)?.volume)
    } else {
        Err(crate::Error::Input(format!(
            "{}: unknown mask format; give a .nii, .nii.gz or .nrrd file",
            path.display()
        )))
    }
}

/// What was read, for the report. Holds no patient identifiers.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct InputInfo {
    /// "dicom" or "nifti".
    pub kind: String,
    /// Files that made up the volume.
    pub files_read: usize,
    /// Files found but not used (not DICOM, other series, not images).
    pub files_skipped: usize,
    /// Series Description (0008,103E), if any.
    pub series_description: Option<String>,
    /// Series Number (0020,0011), if any.
    pub series_number: Option<i64>,
    /// How many image series the input held.
    pub series_found: usize,
    /// Why this series was taken, when there was a choice.
    pub selection: Option<String>,
    /// Voxels along x (columns), y (rows), z (slices).
    pub dims: [usize; 3],
    /// Voxel size along x, y, z, mm.
    pub spacing_mm: [f64; 3],
    /// Transfer syntax UID and name (DICOM), or the NIfTI data type.
    pub transfer_syntax: Option<String>,
    /// Things the user should know (e.g. uneven slice spacing).
    pub warnings: Vec<String>,
    /// What was done to the values or the geometry on reading (padding set
    /// to air, slices resampled, ...).
    pub notes: Vec<String>,
}

/// How to read the input (series choice and checks).
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Which series to read: its index in `spinemesh info` (1-based) or its
    /// Series Instance UID. `None`: the best CT volume.
    pub series: Option<String>,
    /// Read a series of a modality other than CT anyway.
    pub force: bool,
    /// Keep values as stored: no padding or outside-the-scan-field values
    /// set to air (−1000 HU). For round-trip tests.
    pub keep_raw_values: bool,
}

/// A CT volume in Hounsfield units plus what was read.
pub struct LoadedCt {
    pub volume: Volume<f32>,
    pub info: InputInfo,
}
