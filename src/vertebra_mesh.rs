//! One closed mesh per vertebra, from the vertebra label map (step 7 of the
//! `spine` preset): for surgical planning of one level, or a finite-element
//! model that gives each vertebra its own body.
//!
//! Each vertebra's voxels become a mesh as the whole spine does (marching
//! cubes in LPS mm, then smoothing, decimation and the checks of
//! [`crate::mesh`]), its triangle budget the spine's in proportion to its
//! volume. Where two vertebrae touch in the label map (a facet joint or an
//! endplate the mask bridged), the surfaces would share the faces between
//! them, which a finite-element mesher takes for one body: there the
//! voxels on the contact enter marching cubes at [`CONTACT_LEVEL`] instead
//! of 1, so each surface crosses a sixth of a voxel beyond its own voxel's
//! centre and the two keep two thirds of a voxel apart, more than the
//! smoothing moves a vertex (each vertebra gives up a third of a voxel along
//! the contact, not a whole layer).

use crate::mesh::{self, MeshParams, ProcessReport};
use crate::segment::vertebrae::VertebraReport;
use crate::surface::{self, Mesh};
use crate::{Result, Volume};
use rayon::prelude::*;

/// The fewest triangles a vertebra's mesh is decimated to.
pub const MIN_TRIANGLES: usize = 5_000;

/// Value of a vertebra's voxel on a contact with another in the field
/// meshed at 0.5: the surface crosses (0.6 − 0.5) / 0.6 = ⅙ voxel from it.
pub const CONTACT_LEVEL: f32 = 0.6;

/// One vertebra's mesh.
#[derive(Clone, Debug)]
pub struct VertebraMesh {
    /// VerSe label in the label map.
    pub label: u8,
    /// "L3", "sacrum", … or "" when unnamed.
    pub name: String,
    /// Voxels of the label, and those of them on a contact with another.
    pub voxels: usize,
    pub contact_voxels: usize,
    pub mesh: Mesh,
    pub report: ProcessReport,
}

/// The field meshed for `label` in the box `[lo, hi)` of `labels`, padded by
/// one empty voxel (so that the surface closes): 1 on its voxels,
/// [`CONTACT_LEVEL`] on those with a neighbour (of 26) of another
/// vertebra, 0 elsewhere; and the number of contact voxels.
fn separated(
    labels: &Volume<u8>,
    label: u8,
    lo: [usize; 3],
    hi: [usize; 3],
) -> (Volume<f32>, usize) {
    let g = &labels.grid;
    let d = g.dims;
    let strides = [1, d[0], d[0] * d[1]];
    let box_lo: [isize; 3] = std::array::from_fn(|a| lo[a] as isize - 1);
    let mut part = Volume::filled(
        g.sub_grid(box_lo, std::array::from_fn(|a| hi[a] - lo[a] + 2)),
        0f32,
    );
    let mut n = 0;
    let pd = part.grid.dims;
    for z in lo[2]..hi[2] {
        for y in lo[1]..hi[1] {
            for x in lo[0]..hi[0] {
                let i = g.index(x, y, z);
                if labels.data[i] != label {
                    continue;
                }
                // Any of the 26 neighbours: two vertebrae meeting only
                // along an edge or at a corner would share that point too.
                let c = [x, y, z];
                let range = |a: usize| c[a].saturating_sub(1)..(c[a] + 2).min(d[a]);
                let touches = range(2).any(|zz| {
                    range(1).any(|yy| {
                        range(0).any(|xx| {
                            let m = labels.data[xx + strides[1] * yy + strides[2] * zz];
                            m != 0 && m != label
                        })
                    })
                });
                let (px, py, pz) = (x - lo[0] + 1, y - lo[1] + 1, z - lo[2] + 1);
                part.data[px + pd[0] * (py + pd[1] * pz)] = if touches {
                    n += 1;
                    CONTACT_LEVEL
                } else {
                    1.0
                };
            }
        }
    }
    (part, n)
}

/// A mesh per vertebra of `labels` (the split's label map on the CT's grid,
/// `rep` what it found), processed as `params` say; the triangle target is
/// shared out by volume (at least [`MIN_TRIANGLES`] each). Vertebrae in the
/// order of `rep`, from the head down; one without voxels is skipped.
pub fn vertebra_meshes(
    labels: &Volume<u8>,
    rep: &VertebraReport,
    params: &MeshParams,
) -> Result<Vec<VertebraMesh>> {
    params.validate()?;
    // Each label's voxel count and bounding box, in one pass.
    let d = labels.grid.dims;
    let mut count = [0usize; 256];
    let mut lo = [[usize::MAX; 3]; 256];
    let mut hi = [[0usize; 3]; 256];
    for (i, &l) in labels.data.iter().enumerate() {
        if l != 0 {
            let c = [i % d[0], (i / d[0]) % d[1], i / (d[0] * d[1])];
            let l = l as usize;
            count[l] += 1;
            for a in 0..3 {
                lo[l][a] = lo[l][a].min(c[a]);
                hi[l][a] = hi[l][a].max(c[a] + 1);
            }
        }
    }
    let total: usize = rep.vertebrae.iter().map(|v| count[v.label as usize]).sum();
    let made: Vec<Result<Option<VertebraMesh>>> = rep
        .vertebrae
        .par_iter()
        .map(|v| {
            let l = v.label as usize;
            if count[l] == 0 {
                return Ok(None);
            }
            let (part, n) = separated(labels, v.label, lo[l], hi[l]);
            let raw = surface::marching_cubes(&part, 0.5);
            drop(part);
            let mut p = params.clone();
            p.target_triangles = p.target_triangles.map(|t| {
                ((t as f64 * count[l] as f64 / total.max(1) as f64).round() as usize)
                    .max(MIN_TRIANGLES)
            });
            let processed = mesh::process(raw, &p, &|_| {})?;
            Ok(Some(VertebraMesh {
                label: v.label,
                name: v.name.clone(),
                voxels: count[l],
                contact_voxels: n,
                mesh: processed.mesh,
                report: processed.report,
            }))
        })
        .collect();
    let mut out = Vec::new();
    for m in made {
        if let Some(m) = m? {
            out.push(m);
        }
    }
    Ok(out)
}

/// The file name of a vertebra's mesh: its name ("L3.stl"), or its label
/// when unnamed ("vertebra-3.stl").
pub fn file_name(m: &VertebraMesh, extension: &str) -> String {
    if m.name.is_empty() {
        format!("vertebra-{}.{extension}", m.label)
    } else {
        format!("{}.{extension}", m.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::vertebrae::Vertebra;

    fn vertebra(label: u8, name: &str) -> Vertebra {
        Vertebra {
            label,
            name: name.into(),
            volume_mm3: 0.0,
            lateral_contact_mm2: 0.0,
            contact_span_mm: 0.0,
        }
    }

    #[test]
    fn touching_vertebrae_get_separate_closed_meshes() {
        // Two boxes stacked along z, touching over a whole face: L4 below,
        // L5 above (labels 23, 24), 1 mm voxels.
        let g = crate::Grid::new([20, 20, 30], [1.0; 3], [0.0; 3]);
        let mut labels = Volume::filled(g.clone(), 0u8);
        for z in 3..27 {
            for y in 4..16 {
                for x in 4..16 {
                    labels.set(x, y, z, if z < 15 { 23 } else { 24 });
                }
            }
        }
        let rep = VertebraReport {
            numbered_from: "sacrum",
            discs_found: 1,
            vertebrae: vec![vertebra(23, "L4"), vertebra(24, "L5")],
            ..Default::default()
        };
        let meshes = vertebra_meshes(&labels, &rep, &MeshParams::paper()).unwrap();
        assert_eq!(meshes.len(), 2);
        for m in &meshes {
            let c = mesh::check(&m.mesh);
            assert!(c.closed && c.manifold && c.outward, "{}: {c:?}", m.name);
            // The contact: one slice of 12 × 12.
            assert_eq!(m.voxels, 12 * 12 * 12);
            assert_eq!(m.contact_voxels, 12 * 12);
        }
        // Two thirds of a voxel between them: L4's top (z 14 + ⅙) below
        // L5's bottom (z 15 − ⅙).
        let top = |m: &Mesh| m.vertices.iter().map(|v| v[2]).fold(f32::MIN, f32::max);
        let bottom = |m: &Mesh| m.vertices.iter().map(|v| v[2]).fold(f32::MAX, f32::min);
        assert!((top(&meshes[0].mesh) - (14.0 + 1.0 / 6.0)).abs() < 1e-4);
        assert!((bottom(&meshes[1].mesh) - (15.0 - 1.0 / 6.0)).abs() < 1e-4);
        assert_eq!(file_name(&meshes[0], "stl"), "L4.stl");
        let unnamed = VertebraMesh {
            name: String::new(),
            ..meshes.into_iter().next().unwrap()
        };
        assert_eq!(file_name(&unnamed, "stl"), "vertebra-23.stl");
    }
}
