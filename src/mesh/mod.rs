//! Mesh processing after marching cubes, for meshes a finite-element mesher
//! accepts: topology checks ([`topology`]), smoothing without shrinkage
//! ([`smooth`]), decimation that keeps a closed 2-manifold ([`mod@decimate`]),
//! and the Hausdorff distance between two surfaces ([`mod@hausdorff`]).
//!
//! [`process`] chains them after the surface step, as [`MeshParams`] say:
//!
//! ```text
//! raw marching-cubes surface ─ smooth (Taubin λ/μ, volume kept) ─ decimate to N triangles
//!                            ─ check (closed, manifold, outward) ─ Hausdorff to the raw surface
//! ```

pub mod decimate;
pub mod hausdorff;
pub mod smooth;
pub mod topology;

pub use crate::io::mesh::{Frame, MeshFormat};
pub use decimate::{decimate, DecimateReport};
pub use hausdorff::{hausdorff, Hausdorff, HausdorffOptions};
pub use smooth::{taubin, SmoothParams, SmoothReport};
pub use topology::{check, MeshCheck};

use crate::surface::Mesh;
use crate::{Error, Result};
use std::sync::OnceLock;
use std::time::Instant;

/// The FE preset's triangle target.
pub const FE_TARGET_TRIANGLES: usize = 250_000;

/// What happens to the surface after marching cubes, and how it is written.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MeshParams {
    /// Taubin smoothing; `None` keeps the marching-cubes surface.
    pub smooth: Option<SmoothParams>,
    /// Decimate to about this many triangles; `None` keeps them all.
    pub target_triangles: Option<usize>,
    /// File format of the mesh.
    pub format: MeshFormat,
    /// Coordinate frame of the mesh file.
    pub frame: Frame,
    /// File name inside the output folder; `None`: `spine.<extension>`.
    pub file_name: Option<String>,
    /// Measure the Hausdorff distance of the result to the raw surface (and
    /// of the decimated to the undecimated one) when the mesh was changed.
    pub hausdorff: bool,
}

impl MeshParams {
    /// The paper: the marching-cubes surface as it is, binary STL, LPS.
    pub fn paper() -> Self {
        MeshParams {
            smooth: None,
            target_triangles: None,
            format: MeshFormat::Stl,
            frame: Frame::Lps,
            file_name: None,
            hausdorff: true,
        }
    }

    /// FE-ready: smoothed without shrinkage and decimated to 250 000
    /// triangles, still a closed 2-manifold; binary STL, LPS.
    pub fn fe() -> Self {
        MeshParams {
            smooth: Some(SmoothParams::default()),
            target_triangles: Some(FE_TARGET_TRIANGLES),
            ..Self::paper()
        }
    }

    /// The mesh file's name in the output folder.
    pub fn file_name(&self) -> String {
        self.file_name
            .clone()
            .unwrap_or_else(|| format!("spine.{}", self.format.extension()))
    }

    pub fn validate(&self) -> Result<()> {
        if let Some(s) = &self.smooth {
            s.validate()?;
        }
        if let Some(n) = self.target_triangles {
            if n < 4 {
                return Err(Error::Parameter(format!(
                    "--target-triangles {n} is too few for a closed surface; give at least 4 \
                     (250000 is a good size for finite-element work)"
                )));
            }
        }
        if let Some(name) = &self.file_name {
            let p = std::path::Path::new(name);
            let plain = p.file_name() == Some(std::ffi::OsStr::new(name)) && !name.starts_with('.');
            if !plain {
                return Err(Error::Parameter(format!(
                    "mesh file name '{name}' must be a plain file name (no folders), \
                     e.g. spine.ply; it is written into the output folder"
                )));
            }
            let ext = MeshFormat::from_path(p).map(|f| f.extension());
            if ext != Some(self.format.extension()) {
                return Err(Error::Parameter(format!(
                    "mesh file name '{name}' does not end in .{} as format {} needs; \
                     name it *.{} or choose the format that matches",
                    self.format.extension(),
                    self.format.name(),
                    self.format.extension()
                )));
            }
        }
        Ok(())
    }
}

impl Default for MeshParams {
    fn default() -> Self {
        Self::paper()
    }
}

/// What [`process`] did to the surface and what the result is.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ProcessReport {
    /// Triangles of the marching-cubes surface.
    pub raw_triangles: usize,
    pub smoothing: Option<SmoothReport>,
    pub decimation: Option<DecimateReport>,
    /// Hausdorff distance from the final mesh to the raw marching-cubes
    /// surface, mm (0 when the surface was not changed).
    pub hausdorff_to_raw: Option<Hausdorff>,
    /// Hausdorff distance from the decimated mesh to the undecimated
    /// (smoothed) one, mm: what decimation alone cost.
    pub hausdorff_decimation: Option<Hausdorff>,
    /// Topology and size of the final mesh (in report.json these are the
    /// `mesh` fields themselves).
    #[serde(skip)]
    pub check: MeshCheck,
}

impl ProcessReport {
    /// Hausdorff distance to the raw surface, mm: 0 when the mesh is the
    /// raw surface, `None` when it was changed but not measured.
    pub fn hausdorff_to_raw_mm(&self) -> Option<f64> {
        match &self.hausdorff_to_raw {
            Some(h) => Some(h.hausdorff_mm),
            None if self.smoothing.is_none() && self.decimation.is_none() => Some(0.0),
            None => None,
        }
    }
}

/// The processed mesh, its report, and the time of each step.
pub struct Processed {
    pub mesh: Mesh,
    pub report: ProcessReport,
    /// (step name, seconds), in order.
    pub stages: Vec<(&'static str, f64)>,
}

/// Smooths, decimates, checks and measures `raw` as `params` say.
/// `on_stage` is called with each step's name before it starts.
pub fn process(raw: Mesh, params: &MeshParams, on_stage: &dyn Fn(&str)) -> Result<Processed> {
    process_with(raw, params, on_stage, &|_| {})
}

/// [`process`], calling `with_final` with the final mesh as soon as it is
/// made, on another thread while the check and the measurements run (to
/// write it, say). It has returned when this does.
pub fn process_with(
    raw: Mesh,
    params: &MeshParams,
    on_stage: &dyn Fn(&str),
    with_final: &(dyn Fn(&Mesh) + Sync),
) -> Result<Processed> {
    params.validate()?;
    let mut stages = Vec::new();
    let mut report = ProcessReport {
        raw_triangles: raw.triangles.len(),
        ..Default::default()
    };
    // Decimation's target, when there is anything to decimate.
    let target = params.target_triangles.filter(|&n| n < raw.triangles.len());
    let changes = params.smooth.is_some() || target.is_some();
    // The raw surface is only kept when something will be measured against it.
    let keep_raw = changes && params.hausdorff;
    let kept = keep_raw.then(|| raw.clone());
    let mut mesh = raw;
    let raw = kept;

    // The surfaces measured against are binned for the Hausdorff distance
    // while the next steps run: the raw one during smoothing and decimation,
    // the smoothed (undecimated) one during decimation. The binning has
    // serial parts, and these steps leave some of the two cores idle.
    let measure_undecimated = params.hausdorff && params.smooth.is_some() && target.is_some();
    let (raw_index, smoothed_index) = (OnceLock::new(), OnceLock::new());
    let decimated = rayon::in_place_scope(|scope| -> Result<Option<Mesh>> {
        if let Some(raw) = &raw {
            scope.spawn(|_| {
                let _ = raw_index.set(hausdorff::Index::new(raw));
            });
        }
        // Rings and pieces, computed once for smoothing and decimation
        // (which never changes the connectivity it starts from).
        let mut shared = None;
        if let Some(sp) = &params.smooth {
            on_stage("mesh smooth");
            let t = Instant::now();
            let rings = decimate::Rings::new(mesh.vertices.len(), &mesh.triangles);
            let (comp, n) = topology::vertex_components(&mesh);
            report.smoothing = Some(smooth::taubin_with(
                &mut mesh,
                sp,
                Some((&rings, &comp, n)),
            )?);
            shared = Some((rings, comp, n));
            stages.push(("mesh smooth", t.elapsed().as_secs_f64()));
        }
        let Some(n) = target else {
            return Ok(None);
        };
        let smoothed = &mesh;
        if measure_undecimated {
            scope.spawn(|_| {
                let _ = smoothed_index.set(hausdorff::Index::new(smoothed));
            });
        }
        on_stage("mesh decimate");
        let t = Instant::now();
        let (d, r) = decimate::decimate_with(smoothed, n, shared.take())?;
        report.decimation = Some(r);
        stages.push(("mesh decimate", t.elapsed().as_secs_f64()));
        Ok(Some(d))
    })?;
    let mut undecimated = None;
    if let Some(d) = decimated {
        let before = std::mem::replace(&mut mesh, d);
        if measure_undecimated {
            undecimated = Some(before);
        }
    }
    rayon::in_place_scope(|scope| {
        scope.spawn(|_| with_final(&mesh));
        on_stage("mesh check");
        let t = Instant::now();
        // The final surface is binned (for the measurements) with the check.
        let (chk, fin_index) = rayon::join(
            || check(&mesh),
            || raw.is_some().then(|| hausdorff::Index::new(&mesh)),
        );
        report.check = chk;
        stages.push(("mesh check", t.elapsed().as_secs_f64()));
        if let (Some(raw), Some(fin_index)) = (&raw, fin_index) {
            on_stage("mesh hausdorff");
            let t = Instant::now();
            let opts = HausdorffOptions::default();
            // (Binned here after all if the index made earlier is missing.)
            fn surface(m: &Mesh, index: Option<hausdorff::Index>) -> hausdorff::Surface<'_> {
                index
                    .and_then(|i| hausdorff::Surface::with_index(m, i))
                    .unwrap_or_else(|| hausdorff::Surface::new(m))
            }
            let fin = surface(&mesh, Some(fin_index));
            let rs = surface(raw, raw_index.into_inner());
            if let Some(u) = &undecimated {
                // The undecimated (smoothed) surface has the raw one's triangles:
                // the final surface's samples serve both.
                let us = surface(u, smoothed_index.into_inner());
                let (dec, raw) = hausdorff::hausdorff_between_pair(&fin, &us, &rs, &opts);
                report.hausdorff_decimation = Some(dec);
                report.hausdorff_to_raw = Some(raw);
            } else {
                report.hausdorff_to_raw = Some(hausdorff::hausdorff_between(&fin, &rs, &opts));
                if report.decimation.is_some() {
                    // Decimation alone: the raw surface is the undecimated one.
                    report.hausdorff_decimation = report.hausdorff_to_raw;
                }
            }
            stages.push(("mesh hausdorff", t.elapsed().as_secs_f64()));
        }
    });
    Ok(Processed {
        mesh,
        report,
        stages,
    })
}
