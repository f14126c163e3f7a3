//! `report.json`: what was read, every parameter used, what each step did and
//! how long it took, and what was written. No patient identifiers.

use crate::components::SelectionReport;
use crate::io::InputInfo;
use crate::pipeline::{Params, Stage};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub tool: Tool,
    pub input: InputInfo,
    pub parameters: Params,
    pub stages: Vec<Stage>,
    pub seconds_total: f64,
    pub segmentation: Segmentation,
    pub mask: MaskReport,
    pub mesh: MeshReport,
    pub outputs: Outputs,
    /// Peak resident memory of the process, MB (Linux), if known.
    pub peak_memory_mb: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

impl Default for Tool {
    fn default() -> Self {
        Tool {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// What each segmentation step kept or changed, mm³.
#[derive(Clone, Debug, Serialize)]
pub struct Segmentation {
    pub threshold_mm3: f64,
    pub closing_added_mm3: f64,
    /// The paper's component selection (`paper` preset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<SelectionReport>,
    /// Fill, canal and isolation figures (`spine` preset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spine: Option<crate::segment::SpineReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MaskReport {
    pub voxels: usize,
    pub volume_mm3: f64,
    /// Crop box of the surface step in input voxel indices, `[lo, hi)`.
    pub crop_lo: [usize; 3],
    pub crop_hi: [usize; 3],
}

#[derive(Clone, Debug, Serialize)]
pub struct MeshReport {
    pub triangles: usize,
    pub vertices: usize,
    pub volume_mm3: f64,
    pub area_mm2: f64,
    /// Every edge shared by exactly two consistently oriented triangles.
    pub watertight: bool,
    /// Every edge shared by exactly two triangles (no holes, no fins).
    pub closed: bool,
    /// Closed, every vertex a single fan of triangles, no degenerate or
    /// duplicate triangles: a 2-manifold.
    pub manifold: bool,
    /// Consistent winding with normals pointing out (positive volume).
    pub outward: bool,
    pub edges_not_shared_by_two: usize,
    pub non_manifold_vertices: usize,
    pub degenerate_triangles: usize,
    pub duplicate_triangles: usize,
    /// Connected pieces of the surface.
    pub components: usize,
    /// V − E + F: 2 per closed piece without tunnels, 2 − 2g with g tunnels.
    pub euler_characteristic: i64,
    /// (mesh volume − mask volume) / mask volume, percent.
    pub volume_vs_mask_percent: f64,
    /// Hausdorff distance to the raw marching-cubes surface, mm (0 when the
    /// mesh is that surface; absent when not measured).
    pub hausdorff_to_raw_mm: Option<f64>,
    /// File format of the mesh.
    pub format: &'static str,
    /// Coordinate frame of the vertices.
    pub frame: &'static str,
    /// Bounds of the vertices, mm, in that frame.
    pub bounds_min: [f64; 3],
    pub bounds_max: [f64; 3],
    pub bytes: u64,
    /// What smoothing and decimation did (and their Hausdorff distances).
    pub processing: crate::mesh::ProcessReport,
    /// One mesh per vertebra (`--vertebra-meshes`), from the head down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vertebrae: Option<Vec<VertebraMeshReport>>,
}

/// One vertebra's mesh file.
#[derive(Clone, Debug, Serialize)]
pub struct VertebraMeshReport {
    /// VerSe label in `vertebrae.nii.gz`, and its name ("" when unnamed).
    pub label: u8,
    pub name: String,
    /// Path inside the output folder.
    pub file: String,
    pub triangles: usize,
    /// The label's volume, and that of its voxels touching another
    /// vertebra (where the mesh keeps a third of a voxel back), mm³.
    pub label_mm3: f64,
    pub contact_mm3: f64,
    /// The mesh's enclosed volume, mm³.
    pub volume_mm3: f64,
    pub watertight: bool,
    pub manifold: bool,
    pub components: usize,
    /// Hausdorff distance to its raw marching-cubes surface, mm.
    pub hausdorff_to_raw_mm: Option<f64>,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outputs {
    pub mesh: String,
    pub mask: String,
    /// `vertebrae.nii.gz`, the vertebra label map (`spine` preset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vertebrae: Option<String>,
    pub report: String,
    /// `overview.png`, unless `--no-overview`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overview: Option<String>,
    /// The folder of the vertebrae's meshes (`--vertebra-meshes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vertebra_meshes: Option<String>,
    /// Files an earlier run left in the folder that this one did not make
    /// (a label map, an overview, vertebra meshes of other levels or in
    /// another format), removed so that none is taken for this run's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed_stale: Vec<String>,
}

/// Peak resident set size of this process in MB (VmHWM), on Linux.
pub fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
