//! The reconstruction pipeline, step by step as the paper lists it.
//!
//! ```text
//! HU volume ─ 1 Gaussian σ mm ─ 2 threshold [low, high] HU ─ 3 closing r mm
//!           ─ 4 drop components < V mm³, keep the largest ─ 5 crop to bbox + margin mm
//!           ─ 6 marching cubes (LPS mm) ─ 7 mesh: smooth, decimate, check ([`crate::mesh`])
//!           ─→ mask on the input grid + mesh
//! ```
//!
//! The `spine` preset replaces steps 1–4 with [`crate::segment::spine_mask`],
//! run on the CT with its metal streaks reduced ([`crate::mar`]) when it
//! holds metal, and splits the mask into vertebrae before steps 5–7 (the
//! split clears the clefts where vertebrae meet and fills each vertebra's
//! holes in its sagittal and coronal planes; the mask and the mesh follow).
//!
//! Reading the CT and writing the outputs happen outside, in [`crate::run`];
//! here every step is a pure function of the previous one.

use crate::components::{self, Connectivity, SelectionReport};
use crate::crop::{self, CropBox};
use crate::segment::vertebrae::VertebraReport;
use crate::surface::{self, Mesh};
use crate::{morphology, smooth, Error, Mask, Result, Volume};
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

/// Named parameter sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Solid vertebrae of the spine alone (see [`crate::segment`]).
    Spine,
    /// Exactly the paper's pipeline and Table 1 values.
    Paper,
}

/// Every parameter of the pipeline, in physical units.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Params {
    pub preset: Preset,
    /// Gaussian σ, mm (the same along every axis).
    pub sigma_mm: f64,
    /// Bone range, HU (inclusive).
    pub threshold_hu: [f32; 2],
    /// Closing radius, mm.
    pub closing_mm: f64,
    /// Components below this volume are removed, mm³.
    pub min_component_mm3: f64,
    /// Keep only the largest remaining component.
    pub keep_largest: bool,
    /// Crop margin around the kept component, mm.
    pub margin_mm: f64,
    /// Voxel connectivity for components (6 or 26).
    pub connectivity: u32,
    /// Truncation of the Gaussian kernel, in σ.
    pub gaussian_truncate_sigmas: f64,
    /// Level of marching cubes on the binary mask.
    pub surface_level: f32,
    /// The `spine` preset's segmentation; `None` runs the paper's steps.
    pub spine: Option<crate::segment::SpineParams>,
    /// Smoothing, decimation and file format of the mesh.
    pub mesh: crate::mesh::MeshParams,
    /// Write `overview.png` (slices with the mask outlined, and its projection).
    pub overview: bool,
    /// Keep only these vertebrae (VerSe labels, first and last, from the
    /// head down) in the mask and the mesh (`spine` preset).
    pub levels: Option<[u8; 2]>,
    /// Also make one mesh per vertebra ([`crate::vertebra_mesh`]; `spine`
    /// preset with the vertebra split).
    pub vertebra_meshes: bool,
}

impl Params {
    /// The paper's Table 1: σ 0.6 mm, 150–3000 HU, closing 1.2 mm, 5000 mm³,
    /// largest component, 2 mm margin.
    pub fn paper() -> Self {
        Params {
            preset: Preset::Paper,
            sigma_mm: 0.6,
            threshold_hu: [150.0, 3000.0],
            closing_mm: 1.2,
            min_component_mm3: 5000.0,
            keep_largest: true,
            margin_mm: 2.0,
            connectivity: 6,
            gaussian_truncate_sigmas: smooth::TRUNCATE_SIGMAS,
            surface_level: 0.5,
            spine: None,
            mesh: crate::mesh::MeshParams::paper(),
            overview: true,
            levels: None,
            vertebra_meshes: false,
        }
    }

    /// Solid vertebrae, spine isolated from other bones; FE-ready mesh
    /// (smoothed, decimated to 250 000 triangles).
    pub fn spine() -> Self {
        let sp = crate::segment::SpineParams::default();
        Params {
            preset: Preset::Spine,
            sigma_mm: sp.sigma_mm,
            threshold_hu: [sp.bone_low_hu, sp.bone_high_hu],
            closing_mm: sp.closing_mm,
            min_component_mm3: sp.min_component_mm3,
            spine: Some(sp),
            mesh: crate::mesh::MeshParams::fe(),
            ..Self::paper()
        }
    }

    pub fn from_preset(p: Preset) -> Self {
        match p {
            Preset::Paper => Self::paper(),
            Preset::Spine => Self::spine(),
        }
    }

    fn connectivity(&self) -> Result<Connectivity> {
        match self.connectivity {
            6 => Ok(Connectivity::Six),
            26 => Ok(Connectivity::TwentySix),
            c => Err(Error::Parameter(format!(
                "connectivity {c} is not supported; use 6 or 26"
            ))),
        }
    }
}

/// Time spent in one step. Steps made alongside others (the overview and
/// the files, the Hausdorff binning) overlap them: the stages can add up to
/// more than the run took.
#[derive(Clone, Debug, Serialize)]
pub struct Stage {
    pub name: &'static str,
    pub seconds: f64,
}

/// What the pipeline produced.
#[derive(Clone, Debug)]
pub struct Output {
    /// The final mask on the input's grid.
    pub mask: Mask,
    /// Vertebra labels on the input's grid (`spine` preset).
    pub vertebrae: Option<crate::Volume<u8>>,
    /// One mesh per vertebra, from the head down (`vertebra_meshes`).
    pub vertebra_meshes: Option<Vec<crate::vertebra_mesh::VertebraMesh>>,
    /// The crop box of the surface step, in input voxel indices.
    pub crop: CropBox,
    /// The surface, LPS mm.
    pub mesh: Mesh,
    /// Voxels after thresholding and after closing (for the report).
    pub threshold_voxels: usize,
    pub closing_voxels: usize,
    /// The paper's component selection (`paper` preset).
    pub components: Option<SelectionReport>,
    /// What the spine segmentation did (`spine` preset).
    pub spine: Option<crate::segment::SpineReport>,
    /// What the mesh steps did, and the final mesh's topology.
    pub mesh_report: crate::mesh::ProcessReport,
    pub stages: Vec<Stage>,
}

/// Runs the pipeline on a CT in HU. `on_stage` is called with each step's
/// name before it starts (for progress display).
pub fn run(ct: &Volume<f32>, params: &Params, on_stage: &dyn Fn(&str)) -> Result<Output> {
    run_with(ct, params, on_stage, &|_, _| {}, &|_| {})
}

/// The vertebra labels on the input's grid and what the split found.
pub type Split<'a> = (&'a crate::Volume<u8>, &'a VertebraReport);

/// [`run`], calling `with_mask` with the final mask (and the vertebra
/// labels, if any) as soon as it is made,
/// on another thread while the surface and mesh steps run, and `with_mesh`
/// with the final mesh as soon as it is made, while the mesh is checked and
/// measured: for outputs (an overview, the files) made alongside. Both have
/// returned when this does.
pub fn run_with(
    ct: &Volume<f32>,
    params: &Params,
    on_stage: &dyn Fn(&str),
    with_mask: &(dyn Fn(&Mask, Option<Split>) + Sync),
    with_mesh: &(dyn Fn(&Mesh) + Sync),
) -> Result<Output> {
    let conn = params.connectivity()?;
    params.mesh.validate()?;
    let mut stages = Vec::new();
    let timed = |name: &'static str| {
        on_stage(name);
        let t = Instant::now();
        move |stages: &mut Vec<Stage>| {
            stages.push(Stage {
                name,
                seconds: t.elapsed().as_secs_f64(),
            })
        }
    };

    let needs_split = params
        .levels
        .map(crate::segment::vertebrae::levels_name)
        .or(params
            .vertebra_meshes
            .then(|| "a mesh per vertebra".to_string()));
    if let Some(what) = needs_split {
        let what = if params.levels.is_some() {
            format!("keeping {what}")
        } else {
            format!("making {what}")
        };
        match &params.spine {
            None => {
                return Err(Error::Parameter(format!(
                    "{what} needs the spine preset (the paper's pipeline does not \
                     tell the vertebrae apart)"
                )))
            }
            Some(sp) if sp.vertebrae.is_none() => {
                return Err(Error::Parameter(format!(
                    "{what} needs the vertebra split: leave out --no-vertebrae"
                )))
            }
            _ => {}
        }
    }
    // Metal artefact reduction (spine preset, when the CT holds metal): the
    // segmentation and the vertebra split read the corrected CT; the
    // caller's overview shows the CT as read.
    let mut corrected: Option<crate::Volume<f32>> = None;
    // `within`: a box of the grid holding the whole mask (all of it when
    // nothing narrower is known).
    let (mask, within, components, threshold_voxels, closing_voxels, spine, vertebrae) =
        match &params.spine {
            None => {
                let (mask, components, t, c) =
                    paper_segmentation(ct, params, conn, &timed, &mut stages)?;
                let all = ([0; 3], mask.grid.dims);
                (mask, all, Some(components), t, c, None, None)
            }
            Some(sp) => {
                let mut sp = sp.clone();
                // The shared options (--sigma-mm, --threshold, …) act on the spine preset too.
                sp.sigma_mm = params.sigma_mm;
                sp.bone_low_hu = params.threshold_hu[0];
                sp.bone_high_hu = params.threshold_hu[1];
                sp.closing_mm = params.closing_mm;
                sp.min_component_mm3 = params.min_component_mm3;
                let mar = sp.metal_artefacts.clone().and_then(|mut m| {
                    m.metal_above_hu = sp.metal_above_hu;
                    let done = timed("metal artefacts");
                    let r = crate::mar::reduce_metal_artefacts(ct, ct.grid.axial_axis(), &m);
                    done(&mut stages);
                    r
                });
                let mar_report = mar.map(|m| {
                    corrected = m.corrected;
                    m.report
                });
                let done = timed("segment");
                let out = crate::segment::spine_mask(corrected.as_ref().unwrap_or(ct), &sp)?;
                let (mask, within, mut rep) = (out.mask, out.within, out.report);
                if let Some(r) = mar_report.as_ref().filter(|r| r.beam_hardening > 0.0) {
                    rep.warnings.push(format!(
                        "metal streaks reduced before the segmentation in {} slices ({:.0} mm³ of metal; \
                         mean change {:.0} HU); overview.png shows the CT as read",
                        r.slices, r.metal_mm3, r.mean_change_hu
                    ));
                }
                rep.metal_artefacts = mar_report;
                done(&mut stages);
                let job = out.vertebrae;
                let vox = ct.grid.voxel_volume_mm3();
                let t = (rep.bone_mm3 / vox).round() as usize;
                let c = t + (rep.closing_added_mm3 / vox).round() as usize;
                (mask, within, None, t, c, Some(rep), job)
            }
        };

    let ct = corrected.as_ref().unwrap_or(ct);

    // The vertebra split (spine preset) comes before the mesh: it clears
    // the clefts where vertebrae meet and fills each vertebra's holes in its
    // sagittal and coronal planes, and the mask follows; with chosen levels
    // the mask keeps them only. Then what the caller makes of the mask
    // (overview, files) runs alongside the surface and mesh steps.
    let (mut mask, mut spine) = (mask, spine);
    let split = match vertebrae {
        Some(job) => {
            let t = Instant::now();
            let (labels, rep) = job.run(ct, &mask);
            // The split labels every voxel of the mask, less the clefts it
            // cleared and plus the holes it filled; all inside `within`.
            let (lo, hi) = within;
            let [nx, ny, _] = mask.grid.dims;
            mask.data
                .par_chunks_mut(nx * ny)
                .zip(labels.data.par_chunks(nx * ny))
                .enumerate()
                .filter(|(z, _)| (lo[2]..hi[2]).contains(z))
                .for_each(|(_, (m, l))| {
                    for y in lo[1]..hi[1] {
                        let r = y * nx;
                        for (m, &l) in m[r + lo[0]..r + hi[0]]
                            .iter_mut()
                            .zip(&l[r + lo[0]..r + hi[0]])
                        {
                            *m = u8::from(l != 0);
                        }
                    }
                });
            let labels = match params.levels {
                Some(levels) => {
                    let (labels, kept) = keep_levels(labels, &rep, levels)?;
                    if let Some(s) = spine.as_mut() {
                        s.levels_removed_mm3 =
                            (mask.count() - kept.count()) as f64 * ct.grid.voxel_volume_mm3();
                    }
                    mask = kept;
                    labels
                }
                None => labels,
            };
            stages.push(Stage {
                name: "vertebrae",
                seconds: t.elapsed().as_secs_f64(),
            });
            Some((labels, rep))
        }
        None => {
            if let Some(levels) = params.levels {
                return Err(Error::Empty(format!(
                    "cannot keep {}: without a spinal canal the vertebrae were not split",
                    crate::segment::vertebrae::levels_name(levels)
                )));
            }
            None
        }
    };
    let processed = rayon::in_place_scope(|scope| {
        scope.spawn(|_| with_mask(&mask, split.as_ref().map(|(l, r)| (l, r))));

        let done = timed("crop");
        let (cropped, crop) = crop::crop_to_mask_in(&mask, params.margin_mm, within)?;
        done(&mut stages);

        let done = timed("surface");
        let mesh = surface::marching_cubes(&cropped.pad([1, 1, 1], 0), params.surface_level);
        done(&mut stages);

        let processed = crate::mesh::process_with(mesh, &params.mesh, on_stage, with_mesh)?;
        for &(name, seconds) in &processed.stages {
            stages.push(Stage { name, seconds });
        }
        Ok::<_, crate::Error>((processed, crop))
    });
    let (processed, crop) = processed?;
    // The split's report joins the segmentation's; its time is a stage of
    // its own.
    let vertebra_meshes = match (&split, params.vertebra_meshes) {
        (Some((labels, rep)), true) => {
            let done = timed("vertebra meshes");
            let meshes = crate::vertebra_mesh::vertebra_meshes(labels, rep, &params.mesh)?;
            done(&mut stages);
            Some(meshes)
        }
        (None, true) => {
            if let Some(s) = spine.as_mut() {
                s.warnings.push(
                    "no mesh per vertebra: without a spinal canal the vertebrae were not split"
                        .into(),
                );
            }
            None
        }
        _ => None,
    };
    let vertebrae = split.map(|(labels, rep)| {
        if let Some(s) = spine.as_mut() {
            s.warnings.extend(rep.warnings.iter().cloned());
            s.vertebrae = Some(rep);
        }
        labels
    });

    Ok(Output {
        mask,
        vertebrae,
        vertebra_meshes,
        crop,
        mesh: processed.mesh,
        mesh_report: processed.report,
        threshold_voxels,
        closing_voxels,
        components,
        spine,
        stages,
    })
}

/// The paper's steps 1–4: smooth + threshold (fused), closing, components.
fn paper_segmentation<F, D>(
    ct: &Volume<f32>,
    params: &Params,
    conn: Connectivity,
    timed: &F,
    stages: &mut Vec<Stage>,
) -> Result<(Mask, SelectionReport, usize, usize)>
where
    F: Fn(&'static str) -> D,
    D: FnOnce(&mut Vec<Stage>),
{
    // Steps 1–2 fused: each smoothed slice is thresholded at once, so no
    // full-size smoothed volume is kept (same result as one after the other).
    let done = timed("smooth+threshold");
    let bone = smooth::gaussian_threshold(
        ct,
        [params.sigma_mm; 3],
        params.threshold_hu[0],
        params.threshold_hu[1],
    )?;
    done(stages);

    // (The voxel counts, before and after, come out of the closing.)
    let done = timed("closing");
    let (closed, threshold_voxels, closing_voxels) =
        morphology::closing_into_counted(bone, params.closing_mm)?;
    done(stages);
    if threshold_voxels == 0 {
        return Err(Error::Empty(format!(
            "no voxel lies in {}–{} HU after smoothing; is this a CT in Hounsfield units?",
            params.threshold_hu[0], params.threshold_hu[1]
        )));
    }

    let done = timed("components");
    let (mask, components) =
        components::select(&closed, params.min_component_mm3, params.keep_largest, conn)?;
    done(stages);
    Ok((mask, components, threshold_voxels, closing_voxels))
}

/// The mask and labels of the vertebrae `[first, last]` only (VerSe labels).
/// An error when the vertebrae are not named, or none of those is in view.
fn keep_levels(
    mut labels: crate::Volume<u8>,
    rep: &VertebraReport,
    [first, last]: [u8; 2],
) -> Result<(crate::Volume<u8>, Mask)> {
    let wanted = crate::segment::vertebrae::levels_name([first, last]);
    if rep.numbered_from == "none" {
        return Err(Error::Empty(format!(
            "cannot keep {wanted}: the vertebrae could not be named (no sacrum or rib found); \
             run without --levels and pick them from vertebrae.nii.gz"
        )));
    }
    for l in labels.data.iter_mut() {
        if *l < first || *l > last {
            *l = 0;
        }
    }
    let mask = labels.map(|l| u8::from(l != 0));
    if mask.count() == 0 {
        let found: Vec<&str> = rep.vertebrae.iter().map(|v| v.name.as_str()).collect();
        return Err(Error::Empty(format!(
            "none of {wanted} is in the field of view (found: {})",
            found.join(" ")
        )));
    }
    Ok((labels, mask))
}
