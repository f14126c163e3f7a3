//! The end-to-end jobs behind the CLI: read a CT, run the pipeline, write the
//! outputs (`reconstruct`), and the self-contained `demo`. All file I/O of a
//! run happens here, at the edges; every output is written to a temporary
//! name and renamed, and the input is never written to.

use crate::io::{self, atomic, LoadOptions, LoadedCt};
use crate::overview::{self, OverviewParams};
use crate::pipeline::{self, Params};
use crate::report::{self, MaskReport, MeshReport, Outputs, Report, Segmentation, Tool};
use crate::{evaluate, phantom, Error, Result};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

/// Receives progress: stage names and slice counts while loading.
pub trait Progress: Sync {
    fn stage(&self, _name: &str) {}
    fn loading(&self, _done: usize, _total: usize) {}
}

/// Progress that goes nowhere.
pub struct Silent;
impl Progress for Silent {}

/// File names written into the output folder (the mesh's is `spine.<ext>`
/// by default, see [`crate::mesh::MeshParams::file_name`]).
pub const MESH_FILE: &str = "spine.stl";
pub const MASK_FILE: &str = "mask.nii.gz";
/// The vertebra label map's file name (`spine` preset).
pub const VERTEBRAE_FILE: &str = "vertebrae.nii.gz";
pub const REPORT_FILE: &str = "report.json";
/// The folder of the vertebrae's meshes (`--vertebra-meshes`).
pub const VERTEBRA_MESH_DIR: &str = "vertebrae";
pub const OVERVIEW_FILE: &str = "overview.png";

/// Reads a CT from a DICOM folder or a `.nii` / `.nii.gz` file.
pub fn load_ct(input: &Path, progress: &dyn Progress) -> Result<LoadedCt> {
    load_ct_with(input, &LoadOptions::default(), progress)
}

/// As [`load_ct`], with a series choice and checks (`opts`). Values below
/// −1100 HU (padding, outside the scan field) become −1000 HU air unless
/// `opts.keep_raw_values`; the report's `input.notes` says so.
pub fn load_ct_with(input: &Path, opts: &LoadOptions, progress: &dyn Progress) -> Result<LoadedCt> {
    let meta = std::fs::metadata(input).map_err(|e| Error::io("cannot open", input, e))?;
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if meta.is_dir() || name == "dicomdir" || name == "dirfile" {
        return io::dicom::read_series_with(input, opts, &|d, t| progress.loading(d, t));
    }
    if name.ends_with(".nii") || name.ends_with(".nii.gz") {
        let mut ct = io::nifti::read_ct(input)?;
        if !opts.keep_raw_values {
            let n = io::resample::outside_to_air(&mut ct.volume.data);
            if n > 0 {
                ct.info.notes.push(format!(
                    "{n} voxels below {} HU (padding, outside the scan field) were set to {} HU (air) before anything else",
                    io::resample::OUTSIDE_BELOW_HU,
                    io::resample::AIR_HU
                ));
            }
        }
        Ok(ct)
    } else {
        Err(Error::Input(format!(
            "{} is neither a folder of DICOM files nor a .nii/.nii.gz volume; \
             give the folder that holds the series, or a NIfTI file",
            input.display()
        )))
    }
}

/// Refuses an output folder that is the input folder or lies inside it: the
/// input is never written to.
fn check_output_outside_input(input: &Path, out_dir: &Path) -> Result<()> {
    let Ok(input) = input.canonicalize() else {
        return Ok(());
    };
    // The output may not exist yet: resolve its nearest existing ancestor.
    let mut probe = out_dir.to_path_buf();
    let mut tail = Vec::new();
    let base = loop {
        if let Ok(c) = probe.canonicalize() {
            break c;
        }
        match (probe.file_name().map(|n| n.to_owned()), probe.parent()) {
            (Some(n), Some(p)) => {
                tail.push(n);
                probe = if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                };
            }
            _ => return Ok(()),
        }
    };
    let out = tail.iter().rev().fold(base, |p, n| p.join(n));
    if input.is_dir() && out.starts_with(&input) {
        return Err(Error::Parameter(format!(
            "the output folder {} lies inside the input folder {}; spinemesh never writes into its input: choose an output folder elsewhere",
            out_dir.display(),
            input.display()
        )));
    }
    Ok(())
}

/// Runs the pipeline on `input` and writes `spine.stl`, `mask.nii.gz`,
/// `overview.png` (unless `params.overview` is false) and `report.json` into
/// `out_dir` (created if needed).
pub fn reconstruct(
    input: &Path,
    out_dir: &Path,
    params: &Params,
    progress: &dyn Progress,
) -> Result<Report> {
    reconstruct_with(input, out_dir, params, &LoadOptions::default(), progress)
}

/// As [`reconstruct`], with a series choice and checks (`load`).
pub fn reconstruct_with(
    input: &Path,
    out_dir: &Path,
    params: &Params,
    load: &LoadOptions,
    progress: &dyn Progress,
) -> Result<Report> {
    let start = Instant::now();
    check_output_outside_input(input, out_dir)?;
    progress.stage("read");
    let t = Instant::now();
    let ct = load_ct_with(input, load, progress)?;
    let read_seconds = t.elapsed().as_secs_f64();
    reconstruct_volume(ct, out_dir, params, progress, start, read_seconds)
}

/// As [`reconstruct`], for a CT already in memory.
pub fn reconstruct_volume(
    ct: LoadedCt,
    out_dir: &Path,
    params: &Params,
    progress: &dyn Progress,
    start: Instant,
    read_seconds: f64,
) -> Result<Report> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io("cannot create", out_dir, e))?;
    let LoadedCt { volume, mut info } = ct;
    let mesh_file = params.mesh.file_name();
    let mesh_path = out_dir.join(&mesh_file);
    let mask_path = out_dir.join(MASK_FILE);
    let report_path = out_dir.join(REPORT_FILE);
    // The overview and the files are made alongside the steps that follow
    // what they show: the overview and the mask's file while the surface and
    // mesh steps run, the mesh's file while the mesh is checked and
    // measured. They are written under temporary names and put in place
    // only once the whole run has succeeded (a failed run leaves the folder
    // as it was). Their stage times overlap those of the steps they ran
    // alongside.
    let (format, frame) = (params.mesh.format, params.mesh.frame);
    type MaskSide = (
        Option<(atomic::Staged, f64)>,
        atomic::Staged,
        Option<atomic::Staged>,
        f64,
    );
    let mask_side: OnceLock<Result<MaskSide>> = OnceLock::new();
    let mesh_side: OnceLock<Result<(atomic::Staged, f64)>> = OnceLock::new();
    let with_mask =
        |mask: &crate::Mask,
         vertebrae: Option<(&crate::Mask, &crate::segment::vertebrae::VertebraReport)>| {
            let made = (|| -> Result<MaskSide> {
                let overview = if params.overview {
                    let t = Instant::now();
                    let names: Vec<(u8, String)> = vertebrae
                        .map(|(_, r)| {
                            r.vertebrae
                                .iter()
                                .map(|v| (v.label, v.name.clone()))
                                .collect()
                        })
                        .unwrap_or_default();
                    let img = overview::render_overview_labelled(
                        &volume,
                        mask,
                        vertebrae.map(|(v, _)| (v, names.as_slice())),
                        &OverviewParams::default(),
                    );
                    let staged = overview::stage_png(&out_dir.join(OVERVIEW_FILE), &img)?;
                    Some((staged, t.elapsed().as_secs_f64()))
                } else {
                    None
                };
                let t = Instant::now();
                let mask_file = io::nifti::stage_mask(&mask_path, mask)?;
                let labels_file = vertebrae
                    .map(|(v, _)| io::nifti::stage_labels(&out_dir.join(VERTEBRAE_FILE), v))
                    .transpose()?;
                Ok((overview, mask_file, labels_file, t.elapsed().as_secs_f64()))
            })();
            let _ = mask_side.set(made);
        };
    let with_mesh = |mesh: &crate::surface::Mesh| {
        let t = Instant::now();
        let made = io::mesh::stage_mesh(mesh, &mesh_path, format, frame)
            .map(|staged| (staged, t.elapsed().as_secs_f64()));
        let _ = mesh_side.set(made);
    };
    let out = pipeline::run_with(
        &volume,
        params,
        &|s| progress.stage(s),
        &with_mask,
        &with_mesh,
    )?;
    drop(volume);
    let missing = |what: &str| Error::Empty(format!("the pipeline produced no {what} to write"));
    let (overview, mask_file, labels_file, mask_seconds) =
        mask_side.into_inner().ok_or_else(|| missing("mask"))??;
    let (mesh_file_staged, mesh_seconds) =
        mesh_side.into_inner().ok_or_else(|| missing("mesh"))??;

    progress.stage("write");
    let t = Instant::now();
    // The vertebrae's meshes: staged all, then put in place with the rest.
    let vertebra_files = match &out.vertebra_meshes {
        Some(meshes) => {
            let dir = out_dir.join(VERTEBRA_MESH_DIR);
            std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
            let staged = meshes
                .iter()
                .map(|m| {
                    let name = crate::vertebra_mesh::file_name(m, format.extension());
                    let staged = io::mesh::stage_mesh(&m.mesh, &dir.join(&name), format, frame)?;
                    Ok((format!("{VERTEBRA_MESH_DIR}/{name}"), staged))
                })
                .collect::<Result<Vec<_>>>()?;
            Some(staged)
        }
        None => None,
    };
    let mesh_bytes = mesh_file_staged.commit()?;
    mask_file.commit()?;
    let wrote_labels = labels_file.is_some();
    if let Some(f) = labels_file {
        f.commit()?;
    }
    let overview_seconds = match overview {
        Some((png, seconds)) => {
            png.commit()?;
            Some(seconds)
        }
        None => None,
    };
    let vertebra_reports = match (vertebra_files, &out.vertebra_meshes) {
        (Some(files), Some(meshes)) => {
            let mut reports = Vec::with_capacity(files.len());
            let vox = out.mask.grid.voxel_volume_mm3();
            for ((file, staged), m) in files.into_iter().zip(meshes) {
                let bytes = staged.commit()?;
                let c = &m.report.check;
                reports.push(report::VertebraMeshReport {
                    label: m.label,
                    name: m.name.clone(),
                    file,
                    triangles: m.mesh.triangles.len(),
                    label_mm3: m.voxels as f64 * vox,
                    contact_mm3: m.contact_voxels as f64 * vox,
                    volume_mm3: c.volume_mm3,
                    watertight: c.closed && c.misoriented_edges == 0,
                    manifold: c.manifold,
                    components: c.components,
                    hausdorff_to_raw_mm: m.report.hausdorff_to_raw_mm(),
                    bytes,
                });
            }
            Some(reports)
        }
        _ => None,
    };
    let written: Vec<&str> = vertebra_reports
        .iter()
        .flatten()
        .map(|v| v.file.as_str())
        .collect();
    let (removed_stale, not_removed) =
        remove_stale_outputs(out_dir, wrote_labels, overview_seconds.is_some(), &written);
    info.warnings.extend(not_removed);
    let write_seconds = mask_seconds + mesh_seconds + t.elapsed().as_secs_f64();

    let mut stages = vec![pipeline::Stage {
        name: "read",
        seconds: read_seconds,
    }];
    stages.extend(out.stages.iter().cloned());
    if let Some(seconds) = overview_seconds {
        stages.push(pipeline::Stage {
            name: "overview",
            seconds,
        });
    }
    stages.push(pipeline::Stage {
        name: "write",
        seconds: write_seconds,
    });
    let voxel_mm3 = out.mask.grid.voxel_volume_mm3();
    let (lo, hi) = out.mesh.bounds().unwrap_or(([0.0; 3], [0.0; 3]));
    // Bounds in the file's frame (RAS negates x and y, swapping min and max).
    let (lo, hi) = match frame {
        io::mesh::Frame::Lps => (lo, hi),
        io::mesh::Frame::Ras => ([-hi[0], -hi[1], lo[2]], [-lo[0], -lo[1], hi[2]]),
    };
    let mask_voxels = out.mask.count();
    let mask_mm3 = mask_voxels as f64 * voxel_mm3;
    let mr = &out.mesh_report;
    let c = &mr.check;
    let report = Report {
        tool: Tool::default(),
        input: info,
        parameters: params.clone(),
        stages,
        seconds_total: start.elapsed().as_secs_f64(),
        segmentation: Segmentation {
            threshold_mm3: out.threshold_voxels as f64 * voxel_mm3,
            closing_added_mm3: (out.closing_voxels - out.threshold_voxels) as f64 * voxel_mm3,
            components: out.components.clone(),
            spine: out.spine.clone(),
        },
        mask: MaskReport {
            voxels: mask_voxels,
            volume_mm3: mask_mm3,
            crop_lo: out.crop.lo,
            crop_hi: out.crop.hi,
        },
        mesh: MeshReport {
            triangles: out.mesh.triangles.len(),
            vertices: out.mesh.vertices.len(),
            volume_mm3: c.volume_mm3,
            area_mm2: c.area_mm2,
            watertight: c.closed && c.misoriented_edges == 0,
            closed: c.closed,
            manifold: c.manifold,
            outward: c.outward,
            edges_not_shared_by_two: c.edges_not_shared_by_two,
            non_manifold_vertices: c.non_manifold_vertices,
            degenerate_triangles: c.degenerate_triangles,
            duplicate_triangles: c.duplicate_triangles,
            components: c.components,
            euler_characteristic: c.euler_characteristic,
            volume_vs_mask_percent: if mask_mm3 > 0.0 {
                100.0 * (c.volume_mm3 - mask_mm3) / mask_mm3
            } else {
                0.0
            },
            hausdorff_to_raw_mm: mr.hausdorff_to_raw_mm(),
            format: format.name(),
            frame: frame.name(),
            bounds_min: lo,
            bounds_max: hi,
            bytes: mesh_bytes,
            processing: mr.clone(),
            vertebrae: vertebra_reports,
        },
        outputs: Outputs {
            mesh: mesh_file,
            mask: MASK_FILE.into(),
            vertebrae: wrote_labels.then(|| VERTEBRAE_FILE.into()),
            report: REPORT_FILE.into(),
            overview: params.overview.then(|| OVERVIEW_FILE.into()),
            vertebra_meshes: out
                .vertebra_meshes
                .is_some()
                .then(|| VERTEBRA_MESH_DIR.into()),
            removed_stale,
        },
        peak_memory_mb: report::peak_memory_mb(),
    };
    let json = serde_json::to_string_pretty(&report).expect("report serialises");
    io::atomic::write_bytes(&report_path, json.as_bytes())?;
    Ok(report)
}

/// Whether `name` is one this tool gives a vertebra's mesh: a vertebra's
/// name (`L3`, `T12`, `sacrum`, …) or `vertebra-N`, then `.stl`, `.ply` or
/// `.obj`.
fn is_vertebra_mesh_name(name: &str) -> bool {
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    let ours = ["stl", "ply", "obj"].contains(&ext);
    let numbered = stem
        .strip_prefix("vertebra-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let named = (1..=28u8).any(|l| {
        let n = crate::segment::vertebrae::verse_name(l);
        !n.is_empty() && n == stem
    });
    ours && (numbered || named)
}

/// Removes what an earlier run left in `out_dir` that this run did not
/// write, so that nothing there is taken for this run's output: the label
/// map (`vertebrae.nii.gz`) and the overview when this run made none, and
/// in the vertebra meshes' folder every file named as this tool names
/// them (see [`is_vertebra_mesh_name`]) but not in `vertebra_files` (paths
/// relative to `out_dir`); the folder itself when that leaves it empty.
/// Files with other names are never touched. Returns what was removed and,
/// as warnings, what could not be (this run's files are in place by then: a
/// file that cannot be removed does not fail the run), relative to `out_dir`.
fn remove_stale_outputs(
    out_dir: &Path,
    wrote_labels: bool,
    wrote_overview: bool,
    vertebra_files: &[&str],
) -> (Vec<String>, Vec<String>) {
    let (mut removed, mut failed) = (Vec::new(), Vec::new());
    let mut remove = |rel: String| match std::fs::remove_file(out_dir.join(&rel)) {
        Ok(()) => removed.push(rel),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => failed.push(format!(
            "{rel} in the output folder is left from an earlier run and could not be \
                 removed ({e}); it is not this run's"
        )),
    };
    if !wrote_labels && out_dir.join(VERTEBRAE_FILE).is_file() {
        remove(VERTEBRAE_FILE.into());
    }
    if !wrote_overview && out_dir.join(OVERVIEW_FILE).is_file() {
        remove(OVERVIEW_FILE.into());
    }
    let dir = out_dir.join(VERTEBRA_MESH_DIR);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut stale: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_vertebra_mesh_name(n))
            .map(|n| format!("{VERTEBRA_MESH_DIR}/{n}"))
            .filter(|rel| !vertebra_files.contains(&rel.as_str()))
            .collect();
        stale.sort();
        for rel in stale {
            remove(rel);
        }
        if vertebra_files.is_empty() {
            // Only when empty: anything else in it is the user's.
            let _ = std::fs::remove_dir(&dir);
        }
    }
    (removed, failed)
}

/// What the demo did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DemoSummary {
    pub out_dir: PathBuf,
    pub dicom_dir: PathBuf,
    pub truth: PathBuf,
    pub result_dir: PathBuf,
    pub phantom_seconds: f64,
    pub metrics: evaluate::Metrics,
    /// Each vertebra's Dice against its truth, by VerSe name (`spine`
    /// preset; the truth's labels are in `truth_vertebrae.nii.gz`).
    pub vertebra_dice: Vec<(String, f64)>,
    pub report: Report,
}

/// Generates the synthetic lumbar phantom, writes it as a DICOM series with its
/// truth mask, reconstructs it with `params`, and scores the result.
pub fn demo(
    out_dir: &Path,
    phantom_params: &phantom::PhantomParams,
    params: &Params,
    progress: &dyn Progress,
) -> Result<DemoSummary> {
    phantom_params.validate()?;
    progress.stage("phantom");
    let t = Instant::now();
    let ph = phantom::generate(phantom_params);
    let dicom_dir = out_dir.join("phantom-dicom");
    let truth_path = out_dir.join("truth.nii.gz");
    let result_dir = out_dir.join("result");
    if dicom_dir.exists() {
        // Only ever our own earlier demo output: never mix two phantoms.
        std::fs::remove_dir_all(&dicom_dir)
            .map_err(|e| Error::io("cannot clear", &dicom_dir, e))?;
    }
    std::fs::create_dir_all(&dicom_dir).map_err(|e| Error::io("cannot create", &dicom_dir, e))?;
    io::dicom::write_series(&ph.ct, &dicom_dir, &io::dicom::WriteOptions::default())?;
    let truth = ph.spine_truth();
    io::nifti::write_mask(&truth_path, &truth)?;
    // The vertebrae's truth in VerSe numbers (L1–L5 20–24, sacrum 26).
    let verse = |l: u8| match l {
        phantom::LABEL_SACRUM => crate::segment::vertebrae::LABEL_SACRUM,
        l if (phantom::LABEL_L1..phantom::LABEL_SACRUM).contains(&l) => 20 + l - phantom::LABEL_L1,
        _ => 0,
    };
    let truth_vertebrae = ph.labels.map(verse);
    io::nifti::stage_labels(&out_dir.join("truth_vertebrae.nii.gz"), &truth_vertebrae)?.commit()?;
    let phantom_seconds = t.elapsed().as_secs_f64();
    drop(ph);

    let report = reconstruct(&dicom_dir, &result_dir, params, progress)?;
    progress.stage("evaluate");
    let pred = crate::io::nifti::read_nifti(&result_dir.join(MASK_FILE))?.volume;
    let pred = pred.map(|v| (v != 0.0) as u8);
    let metrics = evaluate::compare(&pred, &truth)?;
    let vertebra_dice = match &report.outputs.vertebrae {
        Some(f) => {
            let labels = crate::io::nifti::read_nifti(&result_dir.join(f))?.volume;
            let labels: Vec<u8> = labels.data.iter().map(|&x| x as u8).collect();
            let found = report
                .segmentation
                .spine
                .as_ref()
                .and_then(|s| s.vertebrae.as_ref())
                .map(|v| v.vertebrae.clone())
                .unwrap_or_default();
            found
                .iter()
                .map(|v| {
                    let name = if v.name.is_empty() {
                        v.label.to_string()
                    } else {
                        v.name.clone()
                    };
                    let d = evaluate::label_dice(&labels, v.label, &truth_vertebrae.data, v.label);
                    (name, d)
                })
                .collect()
        }
        None => Vec::new(),
    };
    Ok(DemoSummary {
        vertebra_dice,
        out_dir: out_dir.to_path_buf(),
        dicom_dir,
        truth: truth_path,
        result_dir,
        phantom_seconds,
        metrics,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vertebra_mesh_names_are_recognised() {
        for ours in [
            "L1.stl",
            "T12.ply",
            "C7.obj",
            "sacrum.stl",
            "vertebra-3.obj",
            "L6.ply",
        ] {
            assert!(is_vertebra_mesh_name(ours), "{ours}");
        }
        for other in [
            "spine.stl",
            "L1.txt",
            "L7.stl",
            "l1.stl",
            "vertebra-.stl",
            "vertebra-x2.stl",
            "notes",
            "L1.stl.bak",
            ".stl",
        ] {
            assert!(!is_vertebra_mesh_name(other), "{other}");
        }
    }
}
