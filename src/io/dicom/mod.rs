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
//! INPUT is a folder searched recursively, a single file, or a `DICOMDIR`
//! (read as the folder it lies in). A file is DICOM when bytes 128..132 are
//! `DICM` (a standard Part 10 file with its 128-byte preamble) or when its
//! first four bytes are `DICM` (Part 10 without the preamble); file names and
//! extensions do not matter. Before any parser sees a file, its element
//! structure is checked (`header::check_structure`): every defined length
//! must fit in what remains of the file (or of its sequence or item), binary
//! values must come in whole numbers, unknown VRs are read as UN (4-byte
//! length, as parsers do), the meta group ends where (0002,0000) says, and a
//! deflated data set may inflate to 64 MiB at most. So a hostile length can
//! never make a parser allocate more than the file justifies. Headers are
//! then parsed up to the pixel data, in parallel, under `catch_unwind`.
//! Counted in `InputInfo::files_skipped`:
//! - files that are not DICOM (no `DICM` marker) and hidden files;
//! - DICOM files that are not images (no Rows/Columns: SR, RT, DICOMDIR, ...);
//! - images of the stacks not read (see below), and exact duplicates.
//!
//! Files whose structure or header is broken are skipped with a warning in
//! `InputInfo::warnings`. A slice of the chosen stack whose Pixel Data is
//! broken (a file truncated inside its pixels) or cannot be decoded is an
//! error naming the file: dropping it would leave a hole in the volume.
//!
//! # Stacks and selection
//!
//! Images are grouped by Series Instance UID and, within a series, by size,
//! orientation and pixel spacing (localizers apart): each group is a stack,
//! numbered for `spinemesh info` and [`LoadOptions::series`]. Two series are
//! never mixed. Left out by default: localizers (Image Type `LOCALIZER`, or a
//! single image of another size or orientation than the rest of its series),
//! secondary captures (SOP Class 1.2.840.10008.5.1.4.1.1.7*), dose reports
//! and screen saves, stacks whose images all lie at one position, and stacks
//! of another modality than CT ([`LoadOptions::force`] reads those). Among the
//! rest, in order: the most coverage along the slice normal (within 10 %),
//! the thinnest step (within 10 %), a kernel other than lung, the stack lying
//! lowest in the body (the lumbar spine lies below the chest), the most
//! slices, the lower series number. `InputInfo::selection` says which stack
//! was taken and why each other one lost; [`inspect`] lists them all.
//!
//! # Sorting and geometry
//!
//! Slices are sorted by their position along the slice normal
//! (`d = Image Position (Patient) · normal`), ascending; equal positions are
//! ordered by Instance Number, then file path. When any slice lacks Image
//! Position (Patient) the slices are sorted by Instance Number instead, with a
//! warning. Two slices at one position: identical pixels → one is dropped;
//! different pixels → an error. Then (`geometry::plan_stack`):
//! - a gantry tilt is found from the positions against the orientation (slice
//!   origins drifting within the image plane by more than a tenth of a
//!   pixel), never from the Gantry/Detector Tilt tag;
//! - steps within 1 % (or 0.01 mm) of their median are even; a step above
//!   1.5 × the regular step that thick slices do not cover is a gap: one
//!   missing slice (at most 2.1 × the step) is filled in, more is an error
//!   that lists every gap;
//! - a tilted or uneven stack is resampled onto the orthogonal grid with axes
//!   row, column, normal and a regular step ([`crate::io::resample::restack`]:
//!   bilinear in plane, linear between slices), with a warning; the in-plane
//!   box grows to hold every slice.
//!
//! A single slice gets its Slice Thickness (else Spacing Between Slices, else
//! 1 mm) as its step; slices without positions get Spacing Between Slices,
//! else Slice Thickness, else 1 mm. Multi-frame (enhanced) CT: each frame is a
//! slice, with position, orientation, pixel spacing and rescale from its
//! per-frame functional groups, else the shared ones, else the top level.
//!
//! # Values
//!
//! `HU = stored value × Rescale Slope + Rescale Intercept` (defaults 1 and 0),
//! per slice (per frame). Stored values are read with Bits Allocated 8, 16 or
//! 32, masked to Bits Stored and sign-extended when Pixel Representation is 1.
//! MONOCHROME1 inverts the display only, so it is read the same way (with a
//! note). Pixel data in any transfer syntax that `dicom-pixeldata` decodes is
//! read: implicit and explicit VR little endian (and the retired big endian),
//! deflated explicit VR little endian, RLE lossless, JPEG
//! baseline/extended/lossless, JPEG 2000. 12-bit JPEG Extended, which its
//! JPEG decoder lacks, goes through a small decoder here (libjpeg's integer
//! inverse DCT). Uncompressed little-endian pixel data at the end of the file
//! (the usual layout) is converted directly from its bytes. Colour images are
//! refused. Unless [`LoadOptions::keep_raw_values`]: pixels equal to the Pixel
//! Padding Value (or in its range), then every value below −1100 HU (−2000,
//! −3024 outside the scan circle), become −1000 HU (air) right after decoding,
//! before any resampling; values above 3000 HU (metal) are counted. Both go
//! into `InputInfo::notes`. Before decoding, the volume's size is compared with
//! MemAvailable (`/proc/meminfo`): a volume that cannot fit is refused with
//! how much it needs.
//!
//! # Writing
//!
//! [`write_series`] writes one CT Image Storage file per z slice (explicit VR
//! little endian, signed 16-bit, Rescale Slope 1, Rescale Intercept 0, values
//! rounded and clamped to the int16 range). UIDs are `2.25.<n>` UIDs derived
//! from [`WriteOptions::seed`] and the volume's content, so the same volume and
//! options give byte-identical files.

use super::resample::{self, AIR_HU};
use super::{atomic, InputInfo, LoadOptions, LoadedCt};
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

mod decode;
#[cfg(test)]
mod fuzz;
mod geometry;
mod header;
#[cfg(feature = "openjpeg-c")]
mod j2k_c;
mod jpeg_dct;
mod select;
#[cfg(test)]
mod tests;
mod write;

use decode::*;
use geometry::*;
use header::*;
use select::*;
pub use select::{InputSummary, SeriesSummary};
pub use write::{write_series, WriteOptions};

/// What the search of the input found.
struct Found {
    headers: Vec<SliceHeader>,
    total_files: usize,
    dicom_files: usize,
    not_dicom: usize,
    unreadable: usize,
    without_image: usize,
    warnings: Vec<String>,
}

/// Lists and scans the files of `input`; errors when nothing there is a DICOM image.
fn find(input: &Path) -> Result<Found> {
    // A DICOMDIR (or Philips DIRFILE) stands for the folder it indexes.
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().to_uppercase())
        .unwrap_or_default();
    let dir;
    let input = if input.is_file() && (name == "DICOMDIR" || name == "DIRFILE") {
        dir = input.parent().map(Path::to_path_buf).unwrap_or_default();
        dir.as_path()
    } else {
        input
    };
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
    let mut not_dicom = hidden;
    let mut dicom_files = 0;
    for s in scanned {
        match s {
            Scanned::NotDicom => not_dicom += 1,
            Scanned::Unreadable(p, e) => unreadable.push((p, e)),
            Scanned::Header(h) => {
                dicom_files += 1;
                headers.extend(h)
            }
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
    let mut non_images: Vec<String> = Vec::new();
    let mut without_image = 0;
    headers.retain(|h| {
        let image = h.rows > 0 && h.cols > 0;
        if !image {
            without_image += 1;
            non_images.push(modality_label(&h.modality));
        }
        image
    });
    if headers.is_empty() {
        non_images.sort();
        non_images.dedup();
        return Err(Error::Input(format!(
            "the {without_image} DICOM file(s) in {} hold no images (modality {}); give the folder that holds the CT slices",
            input.display(),
            non_images.join(", ")
        )));
    }
    Ok(Found {
        headers,
        total_files,
        dicom_files,
        not_dicom,
        unreadable: unreadable.len(),
        without_image,
        warnings,
    })
}

/// MemAvailable of /proc/meminfo, bytes (None where there is no /proc).
pub(crate) fn memory_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

/// Lists what `input` holds: every image stack with its geometry, and the one
/// [`read_series_with`] would read with `opts` (and why). Reads headers only.
pub fn inspect(input: &Path, opts: &LoadOptions) -> Result<InputSummary> {
    let found = find(input)?;
    let cands = group(found.headers);
    let (selected, selection) = match choose(&cands, opts, input) {
        Ok((pos, why)) => (
            Some(pos),
            why.or_else(|| Some("the only image stack".into())),
        ),
        Err(e) => (None, Some(format!("none can be read: {e}"))),
    };
    let memory_needed_mib = selected.map(|p| {
        let h = cands[p].first();
        h.rows as f64 * h.cols as f64 * cands[p].slices.len() as f64 * 4.0 / MIB
    });
    Ok(InputSummary {
        files_searched: found.total_files,
        dicom_files: found.dicom_files,
        files_not_dicom: found.not_dicom,
        files_unreadable: found.unreadable,
        files_without_image: found.without_image,
        series: cands
            .iter()
            .enumerate()
            .map(|(i, c)| summarize(c, Some(i) == selected))
            .collect(),
        selected: selected.map(|p| cands[p].index),
        selection,
        memory_needed_mib,
        memory_available_mib: memory_available().map(|b| b as f64 / MIB),
        warnings: found.warnings,
    })
}

/// Reads the CT series in `input` (a folder, searched recursively, or one
/// file) as a volume of Hounsfield units, with default [`LoadOptions`].
/// `progress(done, total)` is called as slices are decoded (from several
/// threads). See the module documentation.
pub fn read_series(input: &Path, progress: &(dyn Fn(usize, usize) + Sync)) -> Result<LoadedCt> {
    read_series_with(input, &LoadOptions::default(), progress)
}

/// As [`read_series`], with a series choice and checks from `opts`.
pub fn read_series_with(
    input: &Path,
    opts: &LoadOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<LoadedCt> {
    let found = find(input)?;
    let total_files = found.total_files;
    let cands = group(found.headers);
    let mut uids: Vec<&str> = cands.iter().map(|c| c.series_uid.as_str()).collect();
    uids.sort();
    uids.dedup();
    let series_found = uids.len();
    let (pos, selection) = choose(&cands, opts, input)?;
    let Some(chosen) = cands.into_iter().nth(pos) else {
        return Err(Error::Input(
            "internal error: the chosen series vanished".into(),
        ));
    };
    let mut warnings = found.warnings;
    if chosen.non_ct {
        warnings.push(format!(
            "the series is of modality {}, not CT (read because of --force): its values are not Hounsfield units, so the bone threshold may not fit",
            chosen.modality
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
    let what = chosen.describe();
    let volume = assemble(chosen.slices, &what, &mut info, opts, progress)?;
    info.files_skipped = total_files.saturating_sub(info.files_read);
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

/// Checks that `n` slices of `cols × rows` fit in memory.
fn check_memory(n: usize, cols: usize, rows: usize) -> Result<usize> {
    let total = (cols * rows).checked_mul(n).filter(|&t| t <= 1usize << 36);
    let need = (cols * rows) as f64 * n as f64 * 4.0;
    let avail = memory_available();
    let fits_now = avail.is_none_or(|a| need <= a as f64);
    match total {
        Some(t) if fits_now && Vec::<f32>::new().try_reserve_exact(t).is_ok() => Ok(t),
        _ => Err(Error::Input(format!(
            "the CT series has {n} slices of {cols}×{rows} pixels: the volume alone needs {:.2} GiB (32-bit values), {}; crop or downsample the series first, or run on a computer with more memory",
            need / GIB,
            match avail {
                Some(a) => format!("and only {:.2} GiB of memory is available", a as f64 / GIB),
                None => "more than this computer can hold".into(),
            }
        ))),
    }
}

/// Sorts, checks and decodes the slices of one stack into a volume; corrects
/// a gantry tilt and uneven steps by resampling.
fn assemble(
    mut slices: Vec<SliceHeader>,
    what: &str,
    info: &mut InputInfo,
    opts: &LoadOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Volume<f32>> {
    let first = slices[0].clone();
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
    let total = check_memory(n, cols, rows)?;
    // (calloc: the zero pages are only touched when written)
    let mut data = crate::volume::zeroed_f32_huge(total);
    let done = AtomicUsize::new(0);
    let padded = AtomicUsize::new(0);
    progress(0, n);
    data.par_chunks_mut(npix)
        .zip(slices.par_iter())
        .try_for_each(|(out, h)| -> Result<()> {
            decode_slice(h, out)?;
            if !opts.keep_raw_values {
                padded.fetch_add(padding_to_air(h, out), Ordering::Relaxed);
            }
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(d, n);
            Ok(())
        })?;
    let padded = padded.into_inner();
    if padded > 0 {
        info.notes.push(format!(
            "{padded} pixels equal to the Pixel Padding Value were set to {AIR_HU} HU (air) before anything else"
        ));
    }
    if !opts.keep_raw_values {
        let outside = resample::outside_to_air(&mut data);
        if outside > 0 {
            info.notes.push(format!(
                "{outside} pixels below {} HU (outside the scan field, e.g. −2000 or −3024) were set to {AIR_HU} HU (air) before anything else, so they neither count as tissue nor drag the smoothing at the field-of-view edge",
                resample::OUTSIDE_BELOW_HU
            ));
        }
    }
    if first.photometric == "MONOCHROME1" {
        info.notes.push(
            "the images are MONOCHROME1 (inverted grey scale for display); the values were read through Rescale Slope/Intercept as usual, since the inversion applies to display only"
                .into(),
        );
    }

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
    let mut files: Vec<&Path> = kept.iter().map(|s| s.path.as_path()).collect();
    files.sort();
    files.dedup();
    info.files_read = files.len();

    if !opts.keep_raw_values {
        let metal = resample::count_metal(&data);
        if metal > 0 {
            info.notes.push(format!(
                "{metal} voxels above {} HU (metal or dense contrast): they are above the bone range's usual upper end",
                resample::METAL_ABOVE_HU
            ));
        }
    }

    // A single slice: its thickness; slices without positions: their spacing.
    let fallback_step = if nz == 1 {
        first.slice_thickness.or(first.spacing_between_slices)
    } else {
        first.spacing_between_slices.or(first.slice_thickness)
    }
    .unwrap_or(1.0);
    let spacing2 = [pixel_spacing[1], pixel_spacing[0]];
    let grid = |step: f64, origin: [f64; 3]| Grid {
        dims: [cols, rows, nz],
        spacing: [spacing2[0], spacing2[1], step],
        origin,
        direction: axes,
    };
    match &positions {
        Some(_) if nz > 1 => {
            let p3: Vec<[f64; 3]> = kept
                .iter()
                .map(|s| s.position.unwrap_or_default())
                .collect();
            let plan = plan_stack(&kept, &p3, axes, spacing2, what)?;
            info.warnings.extend(plan.warnings.iter().cloned());
            info.notes.extend(plan.notes.iter().cloned());
            if plan.resample {
                let stack = resample::Stack {
                    data: &data,
                    cols,
                    rows,
                    spacing: spacing2,
                    axes,
                    positions: &p3,
                };
                check_memory(plan.resampled_slices(), cols, rows)?;
                resample::restack(&stack, plan.step, AIR_HU)
            } else {
                Volume::new(grid(plan.step, p3[0]), data)
            }
        }
        Some(_) => Volume::new(
            grid(fallback_step, kept[0].position.unwrap_or_default()),
            data,
        ),
        None => Volume::new(grid(fallback_step, [0.0; 3]), data),
    }
}
