//! Each vertebra's holes in its sagittal and coronal planes, filled.
//!
//! The solid fill ([`super::fill`]) works in axial slices, where a vertebra's
//! canal is a hole too; it misses cancellous bone whose cortex is open in the
//! axial plane: a spinous process one or two pixels wide on 3 mm slices, the
//! lateral part of a body on a thick sagittal slab, marrow darker than the
//! fill's limit. In a sagittal or coronal plane that bone is a hole of its
//! own vertebra. A hole of the *mask* in those planes may be a disc (the
//! endplates above and below and the rims the closing bridged), so the test
//! needs the labels: a disc lies between two vertebrae, a cancellous hole
//! inside one. Holes that hold another vertebra's bone (a facet joint around
//! an articular process) or come near the canal's centre line (the sacral
//! canal, closed off by the sacrum's own bone) stay open.

use super::Plane;
use crate::Volume;
use rayon::prelude::*;

/// Fills, for every label of `labels`, the 4-connected background holes of
/// that label in the planes perpendicular to the two in-plane axes of
/// `axial` (sagittal and coronal slices) that hold only unlabelled voxels
/// and none within `canal_clear_mm` of the canal centre `track` (per axial
/// slice, in-plane voxel coordinates) or `excluded` (voxel coordinates; the
/// channels left where metal was cleared). Holes are found on the labels as
/// given, then filled with their vertebra's label. Returns the number of
/// voxels filled.
pub fn fill_vertebra_holes(
    labels: &mut Volume<u8>,
    axial: Plane,
    track: &[[f64; 2]],
    canal_clear_mm: f64,
    excluded: &(dyn Fn([usize; 3]) -> bool + Sync),
) -> usize {
    let grid = &labels.grid;
    let near_canal = |c: [usize; 3]| -> bool {
        let Some(t) = track.get(c[axial.a]) else {
            return false;
        };
        let du = (c[axial.u] as f64 - t[0]) * grid.spacing[axial.u];
        let dv = (c[axial.v] as f64 - t[1]) * grid.spacing[axial.v];
        du.hypot(dv) <= canal_clear_mm
    };
    // Each label's box on its own (its slices are short strides), then every
    // slice of every box in parallel: one box (the sacrum) can hold half
    // the work.
    let boxes: Vec<(u8, [usize; 3], Volume<u8>)> = label_boxes(labels)
        .into_par_iter()
        .map(|(l, lo, hi)| (l, lo, labels.crop(lo, std::array::from_fn(|a| hi[a] + 1))))
        .collect();
    let slices: Vec<(usize, usize, usize)> = boxes
        .iter()
        .enumerate()
        .flat_map(|(b, (_, _, v))| {
            [axial.u, axial.v]
                .into_iter()
                .flat_map(move |a| (0..v.grid.dims[a]).map(move |k| (b, a, k)))
        })
        .collect();
    let fills: Vec<(u8, Vec<usize>)> = slices
        .into_par_iter()
        .map(|(b, a, k)| {
            let (l, lo, v) = &boxes[b];
            let plane = Plane::new(v.grid.dims, a);
            let cells = plane.gather(&v.data, k);
            let to_volume = |p: usize| -> [usize; 3] {
                let mut c = [0usize; 3];
                c[a] = k;
                c[plane.u] = p % plane.nu();
                c[plane.v] = p / plane.nu();
                std::array::from_fn(|d| lo[d] + c[d])
            };
            let holes = slice_holes(&cells, plane.nu(), plane.nv(), *l, |p| {
                let c = to_volume(p);
                !near_canal(c) && !excluded(c)
            });
            let found = holes
                .into_iter()
                .map(|p| {
                    let c = to_volume(p);
                    grid.index(c[0], c[1], c[2])
                })
                .collect();
            (*l, found)
        })
        .collect();
    let mut filled = 0;
    for (l, idx) in fills {
        for i in idx {
            // A voxel can be a hole of two vertebrae (each in one plane):
            // the first keeps it.
            if labels.data[i] == 0 {
                labels.data[i] = l;
                filled += 1;
            }
        }
    }
    filled
}

/// Each label present with the first and last voxel of its box.
fn label_boxes(labels: &Volume<u8>) -> Vec<(u8, [usize; 3], [usize; 3])> {
    let [nx, ny, nz] = labels.grid.dims;
    let mut boxes: Vec<Option<([usize; 3], [usize; 3])>> = vec![None; 256];
    for z in 0..nz {
        for y in 0..ny {
            let row = &labels.data[(z * ny + y) * nx..][..nx];
            for (x, &l) in row.iter().enumerate().filter(|(_, &l)| l != 0) {
                let b = boxes[l as usize].get_or_insert(([x, y, z], [x, y, z]));
                b.0 = [b.0[0].min(x), b.0[1].min(y), b.0[2].min(z)];
                b.1 = [b.1[0].max(x), b.1[1].max(y), b.1[2].max(z)];
            }
        }
    }
    (1..=255u8)
        .filter_map(|l| boxes[l as usize].map(|(lo, hi)| (l, lo, hi)))
        .collect()
}

/// The holes of label `l` in one slice (`nu` × `nv` cells, u fastest): the
/// 4-connected components of other cells that cannot reach the slice's
/// border without crossing `l`, made only of unlabelled cells (0) of which
/// every one is `keep`. Returns their cell indices.
///
/// A cell outside the span of `l` along its row or its column has a straight
/// way out; so only cells inside both spans are candidates, and a component
/// of candidates is a hole unless it touches another cell that is not `l`.
fn slice_holes(
    cells: &[u8],
    nu: usize,
    nv: usize,
    l: u8,
    keep: impl Fn(usize) -> bool,
) -> Vec<usize> {
    // Each row's and each column's first and last cell of `l`.
    let mut rows = vec![(usize::MAX, 0usize); nv];
    let mut cols = vec![(usize::MAX, 0usize); nu];
    for (j, row) in cells.chunks_exact(nu).enumerate() {
        let Some(first) = row.iter().position(|&c| c == l) else {
            continue;
        };
        let last = row.iter().rposition(|&c| c == l).unwrap_or(first);
        rows[j] = (first, last);
        for (i, _) in row[first..=last]
            .iter()
            .enumerate()
            .filter(|(_, &c)| c == l)
        {
            let col = &mut cols[first + i];
            col.0 = col.0.min(j);
            col.1 = j;
        }
    }
    // 1: a candidate, 2: a candidate visited.
    let mut cand = vec![0u8; nu * nv];
    let mut any = false;
    for (j, row) in cells.chunks_exact(nu).enumerate() {
        let (first, last) = rows[j];
        if first == usize::MAX {
            continue;
        }
        for i in first + 1..last {
            if row[i] != l && cols[i].0 < j && j < cols[i].1 {
                cand[i + nu * j] = 1;
                any = true;
            }
        }
    }
    let mut out = Vec::new();
    if !any {
        return out;
    }
    let (mut comp, mut stack) = (Vec::new(), Vec::new());
    for p in 0..nu * nv {
        if cand[p] != 1 {
            continue;
        }
        cand[p] = 2;
        stack.push(p);
        comp.clear();
        let mut hole = true;
        while let Some(q) = stack.pop() {
            comp.push(q);
            hole &= cells[q] == 0;
            // Candidates are never on the border, so all 4 neighbours exist.
            for r in [q - 1, q + 1, q - nu, q + nu] {
                match cand[r] {
                    1 => {
                        cand[r] = 2;
                        stack.push(r);
                    }
                    0 if cells[r] != l => hole = false,
                    _ => {}
                }
            }
        }
        if hole && comp.iter().all(|&q| keep(q)) {
            out.extend_from_slice(&comp);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Grid;

    const DIMS: [usize; 3] = [24, 24, 30];

    /// Label `l` on the box [lo, hi] (inclusive) of a 24 × 24 × 30 volume of
    /// 0.8 × 0.8 × 3 mm voxels (a thick-slice CT), axial slices along z.
    fn put(v: &mut Volume<u8>, lo: [usize; 3], hi: [usize; 3], l: u8) {
        for z in lo[2]..=hi[2] {
            for y in lo[1]..=hi[1] {
                for x in lo[0]..=hi[0] {
                    v.set(x, y, z, l);
                }
            }
        }
    }

    fn empty() -> Volume<u8> {
        Volume::filled(Grid::new(DIMS, [0.8, 0.8, 3.0], [0.0; 3]), 0)
    }

    fn axial() -> Plane {
        Plane::new(DIMS, 2)
    }

    /// The canal far from everything (no hole comes near it).
    fn far_track() -> Vec<[f64; 2]> {
        vec![[-100.0, -100.0]; DIMS[2]]
    }

    #[test]
    fn a_tunnel_open_in_the_axial_plane_is_filled() {
        // A body with a dark core running left-right through it: open at
        // both sides in every axial and coronal slice, a hole in each
        // sagittal one.
        let mut v = empty();
        put(&mut v, [4, 4, 4], [19, 19, 12], 1);
        put(&mut v, [4, 9, 7], [19, 13, 9], 0);
        let tunnel = 16 * 5 * 3;
        let mut expect = v.clone();
        put(&mut expect, [4, 9, 7], [19, 13, 9], 1);
        let n = fill_vertebra_holes(&mut v, axial(), &far_track(), 5.0, &|_| false);
        assert_eq!(n, tunnel);
        assert_eq!(v.data, expect.data);
    }

    #[test]
    fn a_disc_between_two_vertebrae_stays_open() {
        // Two bodies, their rims touching around the disc between them:
        // the disc is a hole of the mask in the sagittal and coronal planes,
        // but of neither vertebra alone.
        let mut v = empty();
        put(&mut v, [4, 4, 2], [19, 19, 8], 1);
        put(&mut v, [4, 4, 11], [19, 19, 17], 2);
        for (l, z) in [(1, 9), (2, 10)] {
            put(&mut v, [4, 4, z], [19, 5, z], l);
            put(&mut v, [4, 18, z], [19, 19, z], l);
            put(&mut v, [4, 4, z], [5, 19, z], l);
            put(&mut v, [18, 4, z], [19, 19, z], l);
        }
        let before = v.clone();
        assert_eq!(
            fill_vertebra_holes(&mut v, axial(), &far_track(), 5.0, &|_| false),
            0
        );
        assert_eq!(v.data, before.data);
    }

    #[test]
    fn holes_around_another_vertebra_or_near_the_canal_stay_open() {
        let mut v = empty();
        put(&mut v, [4, 4, 4], [19, 19, 12], 1);
        put(&mut v, [4, 9, 7], [19, 13, 9], 0);
        // Another vertebra's process inside the tunnel (a facet joint).
        put(&mut v, [4, 11, 8], [19, 11, 8], 2);
        let before = v.clone();
        assert_eq!(
            fill_vertebra_holes(&mut v, axial(), &far_track(), 5.0, &|_| false),
            0
        );
        assert_eq!(v.data, before.data);

        // The tunnel alone, where a slice of it is excluded (metal was
        // cleared there): the other 15 sagittal slices of it are filled.
        put(&mut v, [4, 11, 8], [19, 11, 8], 0);
        let excluded = |c: [usize; 3]| c[0] == 10;
        assert_eq!(
            fill_vertebra_holes(&mut v, axial(), &far_track(), 5.0, &excluded),
            15 * 15
        );
        assert!((9..14).all(|y| v.get(10, y, 8) == 0 && v.get(11, y, 8) == 1));

        // A closed pocket (the sacral canal, capped by the sacrum's own
        // bone) around the canal's centre line: open; 8 mm from it: filled.
        let mut v = empty();
        put(&mut v, [4, 4, 4], [19, 19, 12], 1);
        put(&mut v, [9, 9, 6], [14, 14, 10], 0);
        let before = v.clone();
        let track = vec![[11.5, 11.5]; DIMS[2]];
        assert_eq!(
            fill_vertebra_holes(&mut v, axial(), &track, 5.0, &|_| false),
            0
        );
        assert_eq!(v.data, before.data);
        let track = vec![[11.5, 24.0]; DIMS[2]];
        assert_eq!(
            fill_vertebra_holes(&mut v, axial(), &track, 5.0, &|_| false),
            6 * 6 * 5
        );
    }

    #[test]
    fn the_canal_of_a_ring_in_the_axial_plane_is_no_hole_here() {
        // A vertebral ring around the canal (an axial hole through all its
        // slices) is open in the sagittal and coronal planes.
        let mut v = empty();
        put(&mut v, [4, 4, 4], [19, 19, 12], 1);
        put(&mut v, [9, 9, 4], [14, 14, 12], 0);
        let before = v.clone();
        assert_eq!(
            fill_vertebra_holes(&mut v, axial(), &far_track(), 5.0, &|_| false),
            0
        );
        assert_eq!(v.data, before.data);
    }
}
