//! The spine mask split into vertebrae and numbered (step 7 of the `spine`
//! preset; `vertebrae.nii.gz`).
//!
//! 1. **Body line**: per axial slice, the centre of the bone in front of the
//!    canal (the vertebral bodies), bridged across slices without enough of
//!    it, held to the mask's ends and smoothed along the spine.
//! 2. **Discs**: along that line, every mm, the median CT in a disc of
//!    `roi_radius_mm` perpendicular to it. A disc is a valley between the two
//!    bright endplates around it: its evidence is how far the CT drops below
//!    the lower of the brightest values 2–`valley_reach_mm` mm above and
//!    below, in units of the clearest valleys of the scan (noise and
//!    contrast differ tenfold between scans). Cancellous bone can be as dark
//!    as a disc (60–130 HU in the shared cases), but between endplates a
//!    body's height apart. The discs are the chain of valleys whose spacings
//!    are vertebra heights, neighbouring heights alike ([`regular_discs`]).
//!    Where metal lies near the line (screws run into bodies, never into
//!    discs) no valley counts, nor serves as an endplate: even corrected
//!    ([`crate::mar`]), a slice through two screws is darker than the body.
//! 3. **Vertebrae**: body bone between two disc planes (`disc_margin_mm`
//!    clear of them), and the bone around the canal (pedicles, laminae) in
//!    the lower part of each vertebra's span where its axial slice joins it
//!    to that vertebra's body seeds, seed one label each; the labels flood
//!    the mask from its thick, bright centres outwards (depth plus HU over
//!    `flood_hu_per_mm`), so the processes go with the arch they grow from
//!    and neighbours meet at the narrowest necks and the dark clefts the
//!    closing bridged: the discs, the facet joints, touching spinous
//!    processes. Behind the bodies a label climbing above its vertebra's
//!    upper disc plane is slowed (`climb_depth_per_mm`): through a facet
//!    joint blurred shut the vertebra below would take the inferior
//!    articular processes of the one above; and near the canal one
//!    descending well below its lower plane (`descent_depth_per_mm`), the
//!    other way round.
//!    Then the clefts where two vertebrae meet are cleared
//!    ([`super::clefts`]: discs blurred above the bone threshold, on the
//!    coarse grid when there is one) and each vertebra's holes in its
//!    sagittal and coronal planes filled ([`super::holes`]): bone the axial
//!    fill could not see, never a disc (between two vertebrae), the canal
//!    or a screw's channel. Last, specks of a label cut off from its
//!    vertebra join the label they touch most (`max_island_mm3`).
//! 4. **Numbers** (VerSe: 8–19 T1–T12, 20–24 L1–L5, 26 sacrum), counted up
//!    from the **sacrum**: the lowest pieces that the ilium touches over
//!    `si_contact_mm2`, `si_side_mm2` of it on each side (the sacroiliac
//!    joints: two; a tilted L5's transverse process may touch one ilium as
//!    much), or a long bottom piece with alae. The joints also catch a
//!    missed L5/S1 disc (steeply tilted, thick slices): a "sacrum"
//!    reaching more than `sacrum_top_mm` above the ilium's highest contact
//!    holds L5 too, and the deepest valley between (where L5 is within
//!    `height_ratio` of L4's height) is taken as that disc
//!    (`missed_lumbosacral_disc`). Without a sacrum, counted from
//!    **T12**, the lowest vertebra that a rib touches (other
//!    bone, `rib_lateral_mm` or more from the canal, over `rib_contact_mm2`
//!    and less than a sacroiliac joint). With neither, the pieces are
//!    numbered 1, 2, … from the top and reported unnamed, with a warning.
//!    Transitional anatomy (a sacralised L5, a lumbarised S1, 13 or 11 rib
//!    pairs) is not recognised: the count is anatomical only when the spine
//!    is typical.

use super::{face_neighbours, Plane};
use crate::vec3::{cross, dot, sub, V3};
use crate::{edt, Mask, Volume};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::VecDeque;

/// Parameters of the vertebra split (physical units).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VertebraParams {
    /// Body bone lies at least this far in front of the canal's centre, mm
    /// (the canal's half depth and the body's posterior wall) …
    pub body_front_mm: f64,
    /// … and at most this far left or right of it, mm (half a lumbar body).
    pub body_half_width_mm: f64,
    /// Smoothing of the body line along the slices, mm.
    pub line_sigma_mm: f64,
    /// Radius of the CT sample around the body line, mm.
    pub roi_radius_mm: f64,
    /// The endplates around a disc lie within this distance of its centre, mm.
    pub valley_reach_mm: f64,
    /// Evidence (a valley's depth over the median depth of the scan's
    /// clearest valleys) above which a disc is added where the heights
    /// allow it.
    pub disc_evidence: f64,
    /// The shortest and the tallest vertebra with its disc along the spine,
    /// mm (upper thoracic ~18, lumbar 32–40).
    pub min_height_mm: f64,
    pub max_height_mm: f64,
    /// Neighbouring vertebrae differ in height by at most this factor.
    pub height_ratio: f64,
    /// The sacrum at the bottom end is at most this long along the line, mm.
    pub sacrum_max_mm: f64,
    /// Seeds keep this far from a disc's plane, mm.
    pub disc_margin_mm: f64,
    /// The labels grow from their seeds into the deepest bone first, and
    /// into the brightest: each this many HU count as a millimetre of depth
    /// (HU/mm), so neighbours meet at thin necks and at dark clefts (the
    /// discs, the facet joints) rather than across dense cortex.
    pub flood_hu_per_mm: f64,
    /// Behind the bodies a label's flood is slowed where it climbs above
    /// its vertebra's upper disc plane (judged at the canal's depth, as the
    /// ring seeds are), from this far below that plane, mm …
    pub climb_from_mm: f64,
    /// … each mm higher counting as this much less depth (mm per mm; 0:
    /// not slowed). Where the facet joints' clefts are blurred (3 mm
    /// left–right voxels, thick slices) the vertebra below otherwise takes
    /// the inferior articular processes of the one above through the joint
    /// before that one's flood comes down its own lamina.
    pub climb_depth_per_mm: f64,
    /// Likewise below its lower disc plane, from this far below it, mm …
    pub descent_from_mm: f64,
    /// … each mm lower counting as this much less depth (mm per mm; 0: not
    /// slowed) …
    pub descent_depth_per_mm: f64,
    /// … within this far behind the canal's centre, mm: the pedicles,
    /// transverse and articular processes, where the vertebra above took
    /// the one below's through a facet joint; not the spinous processes,
    /// which in the thoracic spine reach far below their own vertebra.
    pub descent_back_mm: f64,
    /// The lowest piece is the sacrum when its body runs this far along the
    /// line, mm (a lumbar body is 25–30 mm tall; S1 and S2 fused over 50).
    pub sacrum_min_length_mm: f64,
    /// Other bone touching a vertebra this far or farther left or right of
    /// the canal is a rib, mm …
    pub rib_lateral_mm: f64,
    /// … over at least this area, mm² (a rib's neck is ~80 mm²).
    pub rib_contact_mm2: f64,
    /// Bone within this distance of the canal's centre (pedicles, laminae)
    /// also seeds its vertebra, mm …
    pub ring_seed_mm: f64,
    /// … when this far from a disc's plane, mm, and below the upper
    /// `ring_upper_share` of its vertebra's span.
    pub ring_margin_mm: f64,
    pub ring_upper_share: f64,
    /// Other bone touching a piece over this area or more is the ilium at a
    /// sacroiliac joint, mm² (a rib's neck is less) …
    pub si_contact_mm2: f64,
    /// … spread over at least this extent along the slices, mm (the joints
    /// run from S1 to S3; a rib's neck touches over 10–26 mm) …
    pub si_span_mm: f64,
    /// … with at least this much of it on each side, mm²: the joints are
    /// two, one to each ilium (250–1050 mm² a side on the shared cases and
    /// the phantom), while a tilted L5's transverse process may touch one
    /// ilium over 800 mm² (a lumbar curve of ~55°, 3 mm slices) …
    pub si_side_mm2: f64,
    /// … and the sacrum's top lies at most this far above the joints'
    /// highest contact, mm.
    pub sacrum_top_mm: f64,
    /// End pieces with less body bone than this join their neighbour, mm³.
    pub min_end_body_mm3: f64,
    /// The sacrum's alae: at least this much bone (mm³) …
    pub alae_min_mm3: f64,
    /// … this far or farther left or right of the canal, mm (beyond the
    /// bodies: transverse processes there are a few cm³).
    pub alae_from_mm: f64,
    /// CT values above this are metal, HU …
    pub metal_above_hu: f32,
    /// … and no disc lies where metal is this close to the body line in
    /// the axial slice (or inside the CT sample across the line), mm: screws
    /// run into bodies, never into discs, and the streaks between two screws
    /// darken the body's slices like a disc.
    pub metal_clear_mm: f64,
    /// … nor this far along the line from such a place, mm (the streaks
    /// fill the slices that hold the screw).
    pub metal_reach_mm: f64,
    /// Each vertebra's holes in its sagittal and coronal planes are filled
    /// ([`super::holes`]) unless they come this close to the canal's centre
    /// line, mm; negative: not filled.
    pub hole_canal_clear_mm: f64,
    /// After the clefts and holes, a piece of a label cut off from its
    /// vertebra of up to this much joins the label it touches most, mm³.
    pub max_island_mm3: f64,
    /// Clefts where two vertebrae meet (discs the mask took in) are
    /// cleared first ([`super::clefts`]); `None`: not.
    pub clefts: Option<super::clefts::CleftParams>,
}

impl Default for VertebraParams {
    fn default() -> Self {
        VertebraParams {
            body_front_mm: 10.0,
            body_half_width_mm: 30.0,
            line_sigma_mm: 5.0,
            roi_radius_mm: 8.0,
            valley_reach_mm: 8.0,
            disc_evidence: 0.5,
            min_height_mm: 18.0,
            max_height_mm: 46.0,
            height_ratio: 1.33,
            sacrum_max_mm: 130.0,
            disc_margin_mm: 3.0,
            flood_hu_per_mm: 175.0,
            climb_from_mm: 1.5,
            climb_depth_per_mm: 0.3,
            descent_from_mm: 5.0,
            descent_depth_per_mm: 0.3,
            descent_back_mm: 20.0,
            sacrum_min_length_mm: 40.0,
            rib_lateral_mm: 15.0,
            rib_contact_mm2: 100.0,
            si_contact_mm2: 800.0,
            si_span_mm: 30.0,
            si_side_mm2: 150.0,
            sacrum_top_mm: 25.0,
            ring_seed_mm: 14.0,
            ring_margin_mm: 5.0,
            ring_upper_share: 0.35,
            min_end_body_mm3: 1000.0,
            alae_min_mm3: 15000.0,
            alae_from_mm: 30.0,
            metal_above_hu: crate::io::resample::METAL_ABOVE_HU,
            metal_clear_mm: 15.0,
            metal_reach_mm: 4.0,
            hole_canal_clear_mm: 5.0,
            max_island_mm3: 1000.0,
            clefts: Some(Default::default()),
        }
    }
}

/// One labelled piece.
#[derive(Clone, Debug, Serialize)]
pub struct Vertebra {
    /// Label value in the label map.
    pub label: u8,
    /// "L3", "sacrum", … or "" when unnamed.
    pub name: String,
    pub volume_mm3: f64,
    /// Other bone touching it (ribs, the ilium) 15 mm or more from the
    /// canal, mm² …
    pub lateral_contact_mm2: f64,
    /// … over this extent along the slices, mm.
    pub contact_span_mm: f64,
}

/// What the split found (for report.json), from the top down.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VertebraReport {
    /// "sacrum", "ribs" or "none" (unnamed: labels 1, 2, … from the top).
    pub numbered_from: &'static str,
    pub discs_found: usize,
    pub vertebrae: Vec<Vertebra>,
    /// Cleared from the mask: clefts where two vertebrae meet, mm³ …
    pub clefts_cleared_mm3: f64,
    /// … and added to it: the vertebrae's holes in their sagittal and
    /// coronal planes, mm³.
    pub holes_filled_mm3: f64,
    pub warnings: Vec<String>,
}

/// Tilts of the endplate samples from perpendicular to the body line about
/// each of the sample's axes, degrees (in a lumbar curve with a Cobb angle of
/// ~63°, L5 sits 31° off the level sacrum).
const ENDPLATE_TILTS_DEG: [f64; 5] = [-30.0, -15.0, 0.0, 15.0, 30.0];

/// VerSe labels.
pub const LABEL_T12: u8 = 19;
pub const LABEL_SACRUM: u8 = 26;

/// The name of VerSe label `l`.
pub fn verse_name(l: u8) -> String {
    match l {
        1..=7 => format!("C{l}"),
        8..=19 => format!("T{}", l - 7),
        20..=25 => format!("L{}", l - 19),
        26 => "sacrum".into(),
        27 => "coccyx".into(),
        28 => "T13".into(),
        _ => String::new(),
    }
}

/// The VerSe label of a vertebra's name: "C1"–"C7", "T1"–"T12", "L1"–"L6",
/// "S" / "S1" / "sacrum" (case-insensitive); `None` for anything else.
pub fn verse_label(name: &str) -> Option<u8> {
    let n = name.trim().to_ascii_uppercase();
    if ["S", "S1", "SACRUM"].contains(&n.as_str()) {
        return Some(LABEL_SACRUM);
    }
    let (kind, num) = n.split_at(n.len().min(1));
    let k: u8 = num.parse().ok()?;
    match (kind, k) {
        ("C", 1..=7) => Some(k),
        ("T", 1..=12) => Some(7 + k),
        ("L", 1..=6) => Some(19 + k),
        _ => None,
    }
}

/// "L1–L5", or "L4" for one.
pub fn levels_name([a, b]: [u8; 2]) -> String {
    if a == b {
        verse_name(a)
    } else {
        format!("{}–{}", verse_name(a), verse_name(b))
    }
}

/// A range of vertebrae from the head down, "L1-L5", "T12-S" or one, "L4":
/// their VerSe labels (first, last).
pub fn parse_levels(s: &str) -> Result<[u8; 2], String> {
    let bad = || {
        format!(
            "'{s}' is not a range of vertebrae; write e.g. L1-L5, T12-S or L4 \
             (C1–C7, T1–T12, L1–L6, S for the sacrum)"
        )
    };
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b) = (
        verse_label(a).ok_or_else(bad)?,
        verse_label(b).ok_or_else(bad)?,
    );
    if a > b {
        return Err(format!(
            "'{s}': name the upper vertebra first ({}-{})",
            verse_name(b),
            verse_name(a)
        ));
    }
    Ok([a, b])
}

/// Where the canal is and which way is which, on the mask's grid.
#[derive(Clone, Copy)]
pub struct Frame<'a> {
    pub plane: Plane,
    /// Canal centre per slice (in-plane voxel coordinates).
    pub track: &'a [[f64; 2]],
    pub lr_is_u: bool,
    /// +1 when anterior is towards increasing index along the in-plane
    /// axis that is not left-right, −1 otherwise.
    pub anterior_sign: f64,
    /// Whether increasing slice index runs towards the head.
    pub slices_go_up: bool,
}

fn unit(a: V3) -> V3 {
    let l = dot(a, a).sqrt();
    if l > 0.0 {
        [a[0] / l, a[1] / l, a[2] / l]
    } else {
        [0.0, 0.0, 1.0]
    }
}

/// Step 7 as the segmentation leaves it: the spine's box in the final mask
/// and what the split needs there.
#[derive(Clone, Debug)]
pub struct VertebraJob {
    /// The box: its first voxel and size on the CT's (and the mask's) grid.
    pub lo: [usize; 3],
    pub dims: [usize; 3],
    /// Index axis of the axial slices.
    pub slice_axis: usize,
    /// The canal's centre per slice of the box (in-plane voxel coordinates).
    pub track: Vec<[f64; 2]>,
    pub lr_is_u: bool,
    pub anterior_sign: f64,
    pub slices_go_up: bool,
    /// Spine voxels that touched other bone in the isolation, box indices.
    pub contacts: Vec<[usize; 3]>,
    pub params: VertebraParams,
    /// Where metal and its margin were cleared from the mask (box
    /// coordinates): no hole is filled there.
    pub metal_zone: Option<super::metal::MetalZone>,
}

impl VertebraJob {
    /// Splits `mask` (the final spine mask, on `ct`'s grid) into numbered
    /// vertebrae: the label map on `ct`'s grid, 0 outside the mask.
    pub fn run(&self, ct: &Volume<f32>, mask: &Mask) -> (Volume<u8>, VertebraReport) {
        let hi: [usize; 3] = std::array::from_fn(|a| self.lo[a] + self.dims[a]);
        let boxed = mask.crop(self.lo, hi);
        let frame = Frame {
            plane: Plane::new(self.dims, self.slice_axis),
            track: &self.track,
            lr_is_u: self.lr_is_u,
            anterior_sign: self.anterior_sign,
            slices_go_up: self.slices_go_up,
        };
        let (mut labels, mut rep) = label_vertebrae_fast(
            &boxed,
            ct,
            self.lo,
            &frame,
            &self.contacts,
            &self.params,
            0.8,
        );
        let vox = mask.grid.voxel_volume_mm3();
        if self.params.hole_canal_clear_mm >= 0.0 {
            let metal = |c: [usize; 3]| self.metal_zone.as_ref().is_some_and(|z| z.contains(c));
            let n = super::holes::fill_vertebra_holes(
                &mut labels,
                frame.plane,
                &self.track,
                self.params.hole_canal_clear_mm,
                &metal,
            );
            rep.holes_filled_mm3 = n as f64 * vox;
        }
        // The clefts cleared and the fine voxels' coarse labels leave specks
        // of a label cut off from its vertebra (verse012: 1–40 voxels, 3–11
        // per vertebra): a vertebra is one piece, and its mesh one body.
        let max_island = (self.params.max_island_mm3 / vox).ceil() as usize;
        // Again from the voxels moved while any move (an island given to a
        // label whose own piece there moved too is an island again; one more
        // pass on verse012).
        let mut moved = merge_small_islands(&mut labels.data, labels.grid.dims, max_island, None);
        let mut total = moved.len();
        for _ in 0..3 {
            if moved.is_empty() {
                break;
            }
            moved =
                merge_small_islands(&mut labels.data, labels.grid.dims, max_island, Some(&moved));
            total += moved.len();
        }
        if rep.clefts_cleared_mm3 > 0.0 || rep.holes_filled_mm3 > 0.0 || total > 0 {
            set_volumes(&mut rep, &labels.data, vox);
        }
        let mut full = Volume::filled(mask.grid.clone(), 0u8);
        full.paste(&labels, self.lo);
        (full, rep)
    }
}

/// [`super::clefts::clear_clefts`] with `p.clefts` (when set) on `labels`, a
/// box of `ct` from voxel `lo`; the voxels cleared, or `None` (not run, or
/// failed: a warning in `rep`).
fn clefts_reported(
    labels: &mut Volume<u8>,
    ct: &Volume<f32>,
    lo: [usize; 3],
    plane: Plane,
    p: &VertebraParams,
    rep: &mut VertebraReport,
) -> Option<usize> {
    let cp = p.clefts.as_ref()?;
    super::clefts::clear_clefts(labels, ct, lo, plane, cp)
        .map_err(|e| {
            rep.warnings.push(format!(
                "the clefts between vertebrae were not cleared: {e}"
            ))
        })
        .ok()
}

/// Each vertebra's volume in `rep` from the label map `labels`.
fn set_volumes(rep: &mut VertebraReport, labels: &[u8], voxel_mm3: f64) {
    let mut count = [0usize; 256];
    for &l in labels {
        count[l as usize] += 1;
    }
    assign_volumes(rep, &count, voxel_mm3);
}

/// Each vertebra's volume in `rep` from its voxel count (`count[label]`).
fn assign_volumes(rep: &mut VertebraReport, count: &[usize; 256], voxel_mm3: f64) {
    for v in &mut rep.vertebrae {
        v.volume_mm3 = count[v.label as usize] as f64 * voxel_mm3;
    }
}

/// [`label_vertebrae`] on a grid coarsened 2 × 2 in-plane when the in-plane
/// voxels are smaller than `coarse_below_mm` (a coarse voxel is bone when
/// any of its 4 is; every bone voxel takes its coarse voxel's label): the
/// splits fall at discs and facet joints, a millimetre is enough to place
/// them, at a quarter of the cost. The voxels are paired in the patient's
/// space ([`crate::volume::Grid::pair_offset`]), so a grid stored the
/// other way round gives the same split.
pub fn label_vertebrae_fast(
    mask: &Mask,
    ct: &Volume<f32>,
    lo: [usize; 3],
    frame: &Frame,
    contacts: &[[usize; 3]],
    p: &VertebraParams,
    coarse_below_mm: f64,
) -> (Volume<u8>, VertebraReport) {
    let g = &mask.grid;
    let plane = frame.plane;
    let (u, v) = (plane.u, plane.v);
    if g.spacing[u].max(g.spacing[v]) >= coarse_below_mm {
        let (mut labels, mut rep) = label_vertebrae(mask, ct, lo, frame, contacts, p);
        if let Some(n) = clefts_reported(&mut labels, ct, lo, plane, p, &mut rep) {
            rep.clefts_cleared_mm3 = n as f64 * g.voxel_volume_mm3();
        }
        return (labels, rep);
    }
    // Pairs fixed in the patient's space: the same coarse voxels whichever
    // way round the grid is stored.
    let h = super::Halving::new(g, &plane);
    let dims = h.grid.dims;
    let to_c = |c: [usize; 3]| -> [usize; 3] { std::array::from_fn(|a| h.coarse(a, c[a])) };
    let [nx, ny, _] = g.dims;
    let mut coarse = Mask::filled(h.grid.clone(), 0);
    // Coarse slices are made in parallel, each from the fine rows (z, y) of
    // its one or two fine slices.
    let cplane_len = dims[0] * dims[1];
    let fine_rows = |cz: usize| {
        h.fine(2, cz)
            .flat_map(move |z| (0..ny).map(move |y| (z, y)))
    };
    coarse
        .data
        .par_chunks_mut(cplane_len.max(1))
        .enumerate()
        .for_each(|(cz, cslice)| {
            for (z, y) in fine_rows(cz) {
                let row = &mask.data[(z * ny + y) * nx..][..nx];
                for (x, &m) in row.iter().enumerate() {
                    if m != 0 {
                        let c = to_c([x, y, z]);
                        cslice[c[0] + dims[0] * c[1]] = 1;
                    }
                }
            }
        });
    let ctrack: Vec<[f64; 2]> = frame.track.iter().map(|&t| h.position(&plane, t)).collect();
    let cframe = Frame {
        plane: Plane::new(dims, plane.a),
        track: &ctrack,
        ..*frame
    };
    let ccontacts: Vec<[usize; 3]> = contacts.iter().map(|&c| to_c(c)).collect();
    // The CT averaged over each coarse voxel: the body line's profile and
    // the clefts read it (a fine voxel at a coarse voxel's place would be
    // the pair's first in one storage order and its second in the other).
    let mut cct = Volume::filled(coarse.grid.clone(), 0f32);
    cct.data
        .par_chunks_mut(cplane_len.max(1))
        .enumerate()
        .for_each(|(cz, cslice)| {
            let mut n = vec![0u8; cslice.len()];
            for (z, y) in fine_rows(cz) {
                let row = &ct.data[ct.grid.index(lo[0], lo[1] + y, lo[2] + z)..][..nx];
                for (x, &h) in row.iter().enumerate() {
                    let c = to_c([x, y, z]);
                    cslice[c[0] + dims[0] * c[1]] += h;
                    n[c[0] + dims[0] * c[1]] += 1;
                }
            }
            for (h, &k) in cslice.iter_mut().zip(&n) {
                *h /= f32::from(k.max(1));
            }
        });
    // The flood's priority reads one fine voxel per coarse one, the same
    // one in the patient whichever way round the grid is stored (the mean
    // dilutes a thin cortex and a narrow cleft: on 0.6 mm phantoms L2–L4 lost
    // 0.01–0.02 with it).
    let fine_of = |a: usize, c: usize| h.picked(a, c);
    let mut csub = Volume::filled(coarse.grid.clone(), 0f32);
    csub.data
        .par_chunks_mut(cplane_len.max(1))
        .enumerate()
        .for_each(|(cz, cslice)| {
            let z = fine_of(2, cz);
            for (cy, crow) in cslice.chunks_exact_mut(dims[0]).enumerate() {
                let row = ct.grid.index(lo[0], lo[1] + fine_of(1, cy), lo[2] + z);
                for (cx, h) in crow.iter_mut().enumerate() {
                    *h = ct.data[row + fine_of(0, cx)];
                }
            }
        });
    let (mut clabels, mut rep) = label_vertebrae_sampled(
        &coarse,
        (&cct, [0; 3]),
        (&csub, [0; 3]),
        &cframe,
        &ccontacts,
        p,
    );
    drop(csub);
    // The clefts on the coarse grid too: a cleared coarse voxel clears its
    // fine ones.
    let cleared = clefts_reported(&mut clabels, &cct, [0; 3], cframe.plane, p, &mut rep)
        .is_some_and(|n| n > 0);
    // Each fine voxel of the mask takes its coarse voxel's label, counted on
    // the way: the volumes on the fine grid, and (label 0) the clefts.
    let mut data = vec![0u8; mask.data.len()];
    let count = data
        .par_chunks_mut((nx * ny).max(1))
        .enumerate()
        .map(|(z, slice)| {
            let mut count = [0usize; 256];
            for (i, o) in slice.iter_mut().enumerate() {
                if mask.data[z * nx * ny + i] != 0 {
                    let c = to_c([i % nx, i / nx, z]);
                    *o = clabels.data[c[0] + dims[0] * (c[1] + dims[1] * c[2])];
                    count[*o as usize] += 1;
                }
            }
            count
        })
        .reduce(
            || [0usize; 256],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
                a
            },
        );
    let vox = g.voxel_volume_mm3();
    assign_volumes(&mut rep, &count, vox);
    if cleared {
        rep.clefts_cleared_mm3 = count[0] as f64 * vox;
    }
    (
        Volume {
            grid: g.clone(),
            data,
        },
        rep,
    )
}

/// Splits `mask` into vertebrae. `ct` is sampled at `mask`'s voxel centres
/// (mm from its first voxel) shifted by `ct`'s voxel `lo`. `contacts` are
/// voxels of the spine that touched other bone in the isolation (ribs, the
/// ilium), as indices of `mask`'s grid. Returns the label map on `mask`'s
/// grid (0 outside it, a label on every mask voxel).
pub fn label_vertebrae(
    mask: &Mask,
    ct: &Volume<f32>,
    lo: [usize; 3],
    frame: &Frame,
    contacts: &[[usize; 3]],
    p: &VertebraParams,
) -> (Volume<u8>, VertebraReport) {
    label_vertebrae_sampled(mask, (ct, lo), (ct, lo), frame, contacts, p)
}

/// [`label_vertebrae`] with the CT its body line's profile samples and the
/// one its flood's priority samples given apart (each a volume and the
/// voxel that `mask`'s first voxel falls on).
fn label_vertebrae_sampled(
    mask: &Mask,
    (ct, lo): (&Volume<f32>, [usize; 3]),
    (flood_ct, flood_lo): (&Volume<f32>, [usize; 3]),
    frame: &Frame,
    contacts: &[[usize; 3]],
    p: &VertebraParams,
) -> (Volume<u8>, VertebraReport) {
    let mut rep = VertebraReport {
        numbered_from: "none",
        ..Default::default()
    };
    let g = &mask.grid;
    let sp = g.spacing;
    let plane = frame.plane;
    let track = frame.track;
    let (su, sv) = (sp[plane.u], sp[plane.v]);
    let vox = g.voxel_volume_mm3();
    let (nu, nv, ns) = (plane.nu(), plane.nv(), plane.slices());
    // Index space in mm (the grid's axes are orthonormal).
    let mm = |c: [usize; 3]| {
        [
            c[0] as f64 * sp[0],
            c[1] as f64 * sp[1],
            c[2] as f64 * sp[2],
        ]
    };
    // In-plane offsets from the canal: (left-right, anterior), mm.
    let offsets = |k: usize, i: usize, j: usize| {
        let (du, dv) = ((i as f64 - track[k][0]) * su, (j as f64 - track[k][1]) * sv);
        if frame.lr_is_u {
            (du, frame.anterior_sign * dv)
        } else {
            (dv, frame.anterior_sign * du)
        }
    };
    // Nothing to split along (no body section, too short a line): the whole
    // mask is one unnamed piece.
    let whole = |mut rep: VertebraReport| {
        rep.warnings.push(
            "no vertebral body was found in front of the canal: the mask is one unnamed piece"
                .into(),
        );
        rep.vertebrae = vec![Vertebra {
            label: 1,
            name: String::new(),
            volume_mm3: mask.count() as f64 * vox,
            lateral_contact_mm2: 0.0,
            contact_span_mm: 0.0,
        }];
        (mask.map(|m| u8::from(m != 0)), rep)
    };

    // 1. Body bone and its centre per slice.
    // Body voxels with their places (index space, mm), used again below.
    let mut body: Vec<(usize, V3)> = Vec::new();
    let mut centre: Vec<Option<(V3, f64)>> = vec![None; ns];
    let mut any = vec![false; ns];
    for (k, c) in centre.iter_mut().enumerate() {
        let (mut sum, mut n) = ([0.0; 3], 0usize);
        for j in 0..nv {
            for i in 0..nu {
                let idx = plane.index(k, i, j);
                if mask.data[idx] == 0 {
                    continue;
                }
                any[k] = true;
                let (lat, ant) = offsets(k, i, j);
                if ant < p.body_front_mm || lat.abs() > p.body_half_width_mm {
                    continue;
                }
                let x = mm(g.coords(idx));
                body.push((idx, x));
                for a in 0..3 {
                    sum[a] += x[a];
                }
                n += 1;
            }
        }
        // A slice with less than a fifth of a body's section does not place
        // the line (a disc level, an end).
        let area = n as f64 * su * sv;
        if area >= 200.0 {
            let c3 = [sum[0] / n as f64, sum[1] / n as f64, sum[2] / n as f64];
            *c = Some((c3, area));
        }
    }
    let (Some(k0), Some(k1)) = (
        centre.iter().position(Option::is_some),
        centre.iter().rposition(Option::is_some),
    ) else {
        return whole(rep);
    };
    // Bridge the gaps linearly, then smooth each coordinate along the slices,
    // each slice weighted by its body section's area to the fourth power: a
    // slice that cuts an endplate obliquely holds only the body's corner,
    // whose centre lies up to 15 mm to the side (vertebrae tilted in a
    // scoliosis; L5 over the sacrum), so the full sections place the line.
    // Beyond the first and last body section the line is held to the ends
    // of the mask (a body hollow at the ends, or cut by the field of view,
    // still has its disc looked for).
    let (m0, m1) = (
        (0..ns).find(|&k| any[k]).unwrap_or(k0).min(k0),
        (0..ns).rev().find(|&k| any[k]).unwrap_or(k1).max(k1),
    );
    let held = |k: usize, c: V3| {
        let mut x = c;
        x[plane.a] = k as f64 * sp[plane.a];
        x
    };
    let largest = centre.iter().flatten().map(|c| c.1).fold(0.0, f64::max);
    // Bridged and held slices count only where no section is near.
    const FILLED_WEIGHT: f64 = 1e-6;
    let mut line: Vec<V3> = Vec::with_capacity(m1 - m0 + 1);
    let mut weight: Vec<f64> = Vec::with_capacity(m1 - m0 + 1);
    let first = centre[k0].expect("a body section").0;
    for k in m0..k0 {
        line.push(held(k, first));
        weight.push(FILLED_WEIGHT);
    }
    let mut last = k0;
    for k in k0..=k1 {
        if let Some((c, area)) = centre[k] {
            if k > last + 1 {
                let a = centre[last].map_or(c, |c| c.0);
                for m in last + 1..k {
                    let t = (m - last) as f64 / (k - last) as f64;
                    line.push(std::array::from_fn(|d| a[d] + t * (c[d] - a[d])));
                    weight.push(FILLED_WEIGHT);
                }
            }
            line.push(c);
            weight.push((area / largest).powi(4).max(FILLED_WEIGHT));
            last = k;
        }
    }
    let end = centre[k1].expect("a body section").0;
    for k in k1 + 1..=m1 {
        line.push(held(k, end));
        weight.push(FILLED_WEIGHT);
    }
    let sigma_slices = p.line_sigma_mm / sp[plane.a];
    let line: Vec<V3> = {
        let coords: Vec<Vec<f64>> = (0..3)
            .map(|d| {
                let x: Vec<f64> = line.iter().map(|c| c[d]).collect();
                weighted_gaussian_1d(&x, &weight, sigma_slices)
            })
            .collect();
        (0..line.len())
            .map(|m| [coords[0][m], coords[1][m], coords[2][m]])
            .collect()
    };
    // Resampled every mm of arc length, the samples centred on the line
    // (the same points whichever end the slices start from).
    let seg_len: Vec<f64> = line
        .windows(2)
        .map(|w| {
            let d = sub(w[1], w[0]);
            dot(d, d).sqrt()
        })
        .collect();
    let total: f64 = seg_len.iter().sum();
    let mut pts: Vec<V3> = Vec::with_capacity(total as usize + 1);
    let mut t = 0.5 * total.fract();
    let mut walked = 0.0;
    for (w, &len) in line.windows(2).zip(&seg_len) {
        while t <= walked + len && len > 0.0 {
            let f = (t - walked) / len;
            pts.push(std::array::from_fn(|a| w[0][a] + f * (w[1][a] - w[0][a])));
            t += 1.0;
        }
        walked += len;
    }
    if pts.is_empty() {
        pts.push(line[0]);
    }
    let n = pts.len();
    if n < 3 {
        return whole(rep);
    }
    let tangent: Vec<V3> = (0..n)
        .map(|m| unit(sub(pts[(m + 5).min(n - 1)], pts[m.saturating_sub(5)])))
        .collect();

    // 2. The CT along the line: median of a disc perpendicular to it.
    let cdims = ct.grid.dims;
    let r = p.roi_radius_mm;
    let ring = r.ceil() as i64;
    // The CT at a point of the box (mm from its first voxel), nearest voxel.
    let ct_at = |x: V3| -> Option<f32> {
        let mut at = [0usize; 3];
        for d in 0..3 {
            let i = (x[d] / ct.grid.spacing[d]).round() + lo[d] as f64;
            if !(i >= 0.0 && (i as usize) < cdims[d]) {
                return None;
            }
            at[d] = i as usize;
        }
        Some(ct.data[at[0] + cdims[0] * (at[1] + cdims[1] * at[2])])
    };
    // A sample's axes, in the plane with normal `nrm`: front-back and
    // left-right (from the patient's left-right axis, not the grid's first
    // one, so that a grid stored in another axis order samples the same
    // points).
    let lr_axis: V3 = {
        let mut a = [0.0; 3];
        a[if frame.lr_is_u { plane.u } else { plane.v }] = 1.0;
        a
    };
    let axes = |nrm: V3| {
        let e1 = unit(cross(nrm, lr_axis));
        (e1, cross(nrm, e1))
    };
    // The median CT over a disc of radius r around `x` perpendicular to
    // `nrm`; `vals` keeps the samples.
    let median_across = |x: V3, nrm: V3, vals: &mut Vec<f32>| -> Option<f64> {
        let (e1, e2) = axes(nrm);
        vals.clear();
        for a in -ring..=ring {
            for b in -ring..=ring {
                let (a, b) = (a as f64, b as f64);
                if a * a + b * b > r * r {
                    continue;
                }
                let y: V3 = std::array::from_fn(|d| x[d] + a * e1[d] + b * e2[d]);
                vals.extend(ct_at(y));
            }
        }
        if vals.is_empty() {
            return None;
        }
        // The median (of the two middle values for an even count, as
        // near the grid's edge: the same whichever way it is stored).
        let (mid, even) = (vals.len() / 2, vals.len() % 2 == 0);
        let (below, &mut upper, _) = vals.select_nth_unstable_by(mid, f32::total_cmp);
        Some(if even {
            let lower = below.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            0.5 * (f64::from(lower) + f64::from(upper))
        } else {
            f64::from(upper)
        })
    };
    // An endplate need not be perpendicular to the line: the line bends
    // between vertebrae tilted in a scoliosis, and L5 sits on the sacrum at
    // an angle. Its brightness is the brightest median of the disc tilted
    // by any of `ENDPLATE_TILTS_DEG` about each of its axes.
    let slopes = ENDPLATE_TILTS_DEG.map(|d: f64| d.to_radians().tan());
    let tilts: Vec<[f64; 2]> = slopes
        .iter()
        .flat_map(|&a| slopes.map(|b| [a, b]))
        .filter(|&t| t != [0.0, 0.0])
        .collect();
    let profile: Vec<(f64, f64, bool)> = (0..n)
        .into_par_iter()
        .map(|m| {
            let t = tangent[m];
            let mut vals = Vec::with_capacity(((2 * ring + 1) * (2 * ring + 1)) as usize);
            let median = median_across(pts[m], t, &mut vals);
            let rm = p.metal_clear_mm;
            let mring = rm.ceil() as i64;
            let mut metal = vals.iter().any(|&v| v > p.metal_above_hu);
            'metal: for a in (-mring..=mring).filter(|_| !metal) {
                for b in -mring..=mring {
                    let (a, b) = (a as f64, b as f64);
                    if a * a + b * b > rm * rm {
                        continue;
                    }
                    // In the axial slice: streaks lie in the slices that hold metal.
                    let (pu, pv) = (frame.plane.u, frame.plane.v);
                    let x: V3 = std::array::from_fn(|d| {
                        pts[m][d]
                            + if d == pu {
                                a
                            } else if d == pv {
                                b
                            } else {
                                0.0
                            }
                    });
                    if ct_at(x).is_some_and(|v| v > p.metal_above_hu) {
                        metal = true;
                        break 'metal;
                    }
                }
            }
            let Some(median) = median else {
                return (0.0, 0.0, metal);
            };
            let (e1, e2) = axes(t);
            let bright = tilts
                .iter()
                .filter_map(|&[ta, tb]| {
                    let nrm = unit(std::array::from_fn(|d| t[d] + ta * e1[d] + tb * e2[d]));
                    median_across(pts[m], nrm, &mut vals)
                })
                .fold(median, f64::max);
            (median, bright, metal)
        })
        .collect();
    let bright: Vec<f64> = profile.iter().map(|s| s.1).collect();
    let (profile, near_metal): (Vec<f64>, Vec<bool>) =
        profile.into_iter().map(|(m, _, metal)| (m, metal)).unzip();
    // Metal's streaks darken the slices around it, and metal itself
    // brightens the sample: no disc within `metal_reach_mm` along the line
    // of a sample near metal, and such a sample is no endplate for a
    // valley beside it.
    let reach_metal = p.metal_reach_mm.round() as usize;
    let affected: Vec<bool> = (0..n)
        .map(|m| {
            near_metal[m.saturating_sub(reach_metal)..(m + reach_metal + 1).min(n)].contains(&true)
        })
        .collect();
    // Valleys between bright endplates (in any of the tilts) below the
    // untilted sample's median.
    let reach = p.valley_reach_mm.round() as usize;
    let evidence: Vec<f64> = (0..n)
        .map(|m| {
            if m < 2 || m + 2 >= n || affected[m] {
                return 0.0;
            }
            let brightest = |r: std::ops::RangeInclusive<usize>| {
                r.filter(|&i| !near_metal[i])
                    .map(|i| bright[i])
                    .fold(f64::MIN, f64::max)
            };
            let left = brightest(m.saturating_sub(reach)..=m - 2);
            let right = brightest(m + 2..=(m + reach).min(n - 1));
            (left.min(right) - profile[m]).max(0.0)
        })
        .collect();
    // Evidence in units of the clearest discs' (the median of the strongest
    // valleys, one per two vertebra heights): noise and contrast differ
    // tenfold between scans.
    let evidence = {
        let typical = 0.5 * (p.min_height_mm + p.max_height_mm);
        let half = (0.5 * p.min_height_mm) as usize;
        let mut peaks: Vec<f64> = (0..n)
            .filter(|&m| {
                let w = &evidence[m.saturating_sub(half)..(m + half + 1).min(n)];
                evidence[m] > 0.0 && w.iter().all(|&e| e <= evidence[m])
            })
            .map(|m| evidence[m])
            .collect();
        peaks.sort_by(|a, b| b.total_cmp(a));
        let k = ((n as f64 / typical / 2.0).round() as usize).clamp(1, peaks.len().max(1));
        let unit = peaks.get(k / 2).copied().unwrap_or(1.0).max(1e-6);
        // The HU are whole numbers: a valley's floor is often a run of equal
        // values, and the disc chosen among them would depend on which end
        // the slices start from. A trace of the smoothed evidence (the
        // floor's middle, the side with the deeper surroundings) decides.
        let e: Vec<f64> = evidence.iter().map(|e| e / unit).collect();
        let tie = gaussian_1d(&e, 2.0);
        e.iter()
            .zip(&tie)
            .map(|(e, t)| e + 1e-6 * t)
            .collect::<Vec<f64>>()
    };
    // The pieces at the ends may be partial vertebrae, no longer than a
    // whole one; the bottom one may also be the sacrum, longer. Both chains
    // are found; the long bottom piece is kept when it looks like a sacrum
    // (its body runs `sacrum_min_length_mm` along the line and it holds
    // `alae_min_mm3` of bone `alae_from_mm` or more left or right of the
    // canal), else the discs go down to the end.
    let chain = |bottom_max: f64| {
        let ends = if frame.slices_go_up {
            [bottom_max, p.max_height_mm]
        } else {
            [p.max_height_mm, bottom_max]
        };
        regular_discs(
            &evidence,
            [p.min_height_mm, p.max_height_mm],
            p.height_ratio,
            ends,
            p.disc_evidence,
        )
    };
    let with_sacrum = chain(p.sacrum_max_mm);
    // The bottom piece of that chain: its body's length and its bone's
    // lateral reach.
    let sacrum_like = {
        let bottom_disc = if frame.slices_go_up {
            with_sacrum.first()
        } else {
            with_sacrum.last()
        };
        match bottom_disc {
            None => false,
            Some(&m) => {
                let (q, t) = (pts[m], tangent[m]);
                let below = |x: V3| {
                    let d = dot(sub(x, q), t);
                    if frame.slices_go_up {
                        -d
                    } else {
                        d
                    }
                };
                let length = body.iter().map(|&(_, x)| below(x)).fold(0.0, f64::max);
                // Bone beyond the bodies' sides: the alae are massive, the
                // transverse processes thin.
                let mut lateral = 0usize;
                for (idx, &v) in mask.data.iter().enumerate() {
                    if v != 0 {
                        let c = g.coords(idx);
                        if below(mm(c)) > p.disc_margin_mm {
                            let (lat, _) = offsets(c[plane.a], c[plane.u], c[plane.v]);
                            lateral += usize::from(lat.abs() >= p.alae_from_mm);
                        }
                    }
                }
                length >= p.sacrum_min_length_mm && lateral as f64 * vox >= p.alae_min_mm3
            }
        }
    };
    let discs = if sacrum_like {
        with_sacrum
    } else {
        chain(p.max_height_mm)
    };
    // A disc missed at the lumbosacral junction (steeply tilted, thick
    // slices) makes L5 and the sacrum one piece, and the count from the
    // sacrum one level off. The sacroiliac joints tell: the ilium touches
    // the sacrum up to near its top (S1), so a piece the ilium touches that
    // reaches far above its highest contact holds L5 too; the deepest valley
    // between that contact and the disc above, where L5 is about as tall as
    // L4, is taken as the L5/S1 disc.
    let mut discs = discs;
    // End pieces with little body bone (a sliver cut by the field of view)
    // join their neighbour.
    let end_body = |discs: &[usize], first: bool| {
        let m = if first {
            discs[0]
        } else {
            discs[discs.len() - 1]
        };
        let (q, t) = (pts[m], tangent[m]);
        let n = body
            .iter()
            .filter(|&&(_, x)| (dot(sub(x, q), t) > 0.0) != first)
            .count();
        n as f64 * vox
    };
    while !discs.is_empty() && end_body(&discs, true) < p.min_end_body_mm3 {
        discs.remove(0);
    }
    while !discs.is_empty() && end_body(&discs, false) < p.min_end_body_mm3 {
        discs.pop();
    }
    // Other bone touching the spine away from the canal (ribs, the ilium),
    // and whether on the right.
    let lateral_contacts: Vec<([usize; 3], bool)> = contacts
        .iter()
        .filter_map(|&c| {
            let (k, i, j) = (c[plane.a], c[plane.u], c[plane.v]);
            if k >= ns || i >= nu || j >= nv {
                return None;
            }
            let lat = offsets(k, i, j).0;
            (lat.abs() >= p.rib_lateral_mm).then_some((c, lat > 0.0))
        })
        .collect();
    let lateral: Vec<(V3, bool)> = lateral_contacts
        .iter()
        .map(|&(c, right)| (mm(c), right))
        .collect();
    if let Some(m) = missed_lumbosacral_disc(
        &discs,
        (&pts, &tangent),
        &lateral,
        (&profile, &evidence),
        vox.powf(2.0 / 3.0),
        frame,
        p,
    ) {
        discs.push(m);
        discs.sort_unstable();
    }
    rep.discs_found = discs.len();
    let planes: Vec<(V3, V3)> = discs.iter().map(|&m| (pts[m], tangent[m])).collect();
    let pieces = planes.len() + 1;
    // The piece of a point: how many disc planes it lies beyond (the line
    // runs with the slice index).
    let piece_at = |x: V3| {
        planes
            .iter()
            .filter(|(q, t)| dot(sub(x, *q), *t) > 0.0)
            .count()
    };
    let clear_of_discs = |x: V3, margin: f64| {
        planes
            .iter()
            .all(|(q, t)| dot(sub(x, *q), *t).abs() >= margin)
    };

    // 3. Seeds: body bone clear of the discs; flood by depth and brightness.
    use super::isolate::UNREACHED;
    let mut label: Vec<u8> = mask
        .data
        .iter()
        .map(|&m| if m != 0 { UNREACHED } else { 0 })
        .collect();
    let prio = flood_priority(mask, flood_ct, flood_lo, p.flood_hu_per_mm);
    const BUCKETS: usize = 1024;
    // A bucket's width in priority (mm of depth).
    const BUCKET_MM: f64 = 0.1;
    let bucket = |i: usize| ((prio[i] / BUCKET_MM as f32) as usize).min(BUCKETS - 1);
    let mut queue: Vec<VecDeque<u32>> = (0..BUCKETS).map(|_| VecDeque::new()).collect();
    let mut top = 0;
    // The pedicles and laminae: the bone right around the canal, away from
    // the disc levels (where the laminae of the vertebra above reach down),
    // seed too. The articular processes, farther out, are left to the flood:
    // those of the vertebra above lie beside those of the one below.
    //
    // Each with the point its level is judged at: moved front to back onto
    // the canal's centre in its slice. Behind a steep disc (L5/S1: 29° and
    // 35° off the slices on acrin and totalseg) the disc's plane carried
    // 10–15 mm further back, to the laminae, rises another 5–10 mm, and on
    // acrin S1's arch was judged to be in L5's span (seeded by neither,
    // flooded by L5 through the facet joints); left and right the point
    // stays where it is, as the planes follow a scoliotic tilt.
    let ap_axis = if frame.lr_is_u { plane.v } else { plane.u };
    // The canal's centre front to back in slice `k`, mm from the first voxel.
    let canal_ap_mm = |k: usize| {
        if frame.lr_is_u {
            track[k][1] * sv
        } else {
            track[k][0] * su
        }
    };
    let mut ring_bone: Vec<(usize, V3)> = Vec::new();
    for k in 0..ns {
        let canal_ap = canal_ap_mm(k);
        for j in 0..nv {
            for i in 0..nu {
                let idx = plane.index(k, i, j);
                if mask.data[idx] == 0 {
                    continue;
                }
                let (lat, ant) = offsets(k, i, j);
                if ant < p.body_front_mm && lat * lat + ant * ant <= p.ring_seed_mm * p.ring_seed_mm
                {
                    let mut level = mm(g.coords(idx));
                    level[ap_axis] = canal_ap;
                    ring_bone.push((idx, level));
                }
            }
        }
    }
    let plane_above = |c: usize| {
        if frame.slices_go_up {
            planes.get(c).copied()
        } else {
            c.checked_sub(1).map(|i| planes[i])
        }
    };
    let depth_below = |x: V3, (q, t): (V3, V3)| {
        let d = dot(sub(x, q), t);
        if frame.slices_go_up {
            -d
        } else {
            d
        }
    };
    let plane_below = |c: usize| {
        if frame.slices_go_up {
            c.checked_sub(1).map(|i| planes[i])
        } else {
            planes.get(c).copied()
        }
    };
    let typical_height = if discs.len() >= 2 {
        (discs[discs.len() - 1] - discs[0]) as f64 / (discs.len() - 1) as f64
    } else {
        p.max_height_mm
    };
    // Around the canal, only the lower part of each vertebra's span seeds
    // it: the upper part holds the laminae of the vertebra above, which
    // reach down over it.
    let ring_seed = |x: V3| {
        let c = piece_at(x);
        let below_top = plane_above(c).map_or(f64::INFINITY, |pl| depth_below(x, pl));
        let above_bottom = plane_below(c).map_or(f64::INFINITY, |pl| -depth_below(x, pl));
        // An end piece's height: its neighbours' (the discs' mean spacing).
        let height = match below_top + above_bottom {
            h if h.is_finite() => h,
            _ => typical_height,
        };
        let upper = (p.ring_upper_share * height).max(p.ring_margin_mm);
        below_top >= upper && above_bottom >= p.ring_margin_mm
    };
    // Body seeds first; a ring voxel seeds only where its slice joins it to
    // its own vertebra's body seeds (the pedicles at that level): a disc
    // plane carried 20–40 mm back from the body line misjudges the level of
    // the laminae behind a wedged disc, and a seed in bright cortex takes
    // the whole arch around it.
    let mut seeds: Vec<(usize, usize)> = body
        .iter()
        .filter(|&&(_, x)| clear_of_discs(x, p.disc_margin_mm))
        .map(|&(i, x)| (i, piece_at(x)))
        .collect();
    for &(idx, piece) in &seeds {
        label[idx] = piece.min(253) as u8 + 1;
    }
    let ring_bone: Vec<(usize, usize)> = ring_bone
        .into_iter()
        .filter(|&(_, x)| ring_seed(x))
        .map(|(i, x)| (i, piece_at(x)))
        .collect();
    let idx: Vec<usize> = ring_bone.iter().map(|&(i, _)| i).collect();
    let joined = pieces_joined_in_slice(&label, mask, plane, &idx);
    seeds.extend(
        ring_bone
            .into_iter()
            .zip(joined)
            .filter(|&((_, piece), bits)| piece < 128 && bits >> piece & 1 == 1)
            .map(|(s, _)| s),
    );
    for (idx, piece) in seeds {
        label[idx] = piece.min(253) as u8 + 1;
        let b = bucket(idx);
        queue[b].push_back(idx as u32);
        top = top.max(b);
    }
    // A voxel claimed behind the bodies above its label's climb level, or
    // below its descent level near the canal, joins a lower bucket: the
    // flood of the vertebra there, coming along its own arch, gets there
    // first (`climb_depth_per_mm`, `descent_depth_per_mm`).
    let climb_buckets = p.climb_depth_per_mm / BUCKET_MM;
    let descent_buckets = p.descent_depth_per_mm / BUCKET_MM;
    let claim_bucket = |i: usize, l: u8| {
        let b = bucket(i);
        if (climb_buckets <= 0.0 && descent_buckets <= 0.0) || l == 0 || l as usize > pieces {
            return b;
        }
        let c = g.coords(i);
        let k = c[plane.a];
        let ant = offsets(k, c[plane.u], c[plane.v]).1;
        if ant >= p.body_front_mm {
            return b;
        }
        let mut level = mm(c);
        level[ap_axis] = canal_ap_mm(k);
        let piece = l as usize - 1;
        let climb = plane_above(piece).map_or(0.0, |pl| -depth_below(level, pl) + p.climb_from_mm);
        let descent = match plane_below(piece) {
            Some(pl) if -ant <= p.descent_back_mm => depth_below(level, pl) - p.descent_from_mm,
            _ => 0.0,
        };
        b.saturating_sub(
            (climb.max(0.0) * climb_buckets) as usize
                + (descent.max(0.0) * descent_buckets) as usize,
        )
    };
    super::isolate::priority_flood(&mut label, g.dims, &mut queue, top, claim_bucket, |i| {
        prio[i]
    });
    drop(prio);
    drop(queue);
    // Bone no seed reached (apart from every body): by the disc planes.
    for (idx, l) in label.iter_mut().enumerate() {
        if *l == UNREACHED {
            *l = piece_at(mm(g.coords(idx))).min(253) as u8 + 1;
        }
    }
    merge_islands(&mut label, g.dims);
    let mut volume = vec![0usize; pieces];
    for &l in &label {
        if l != 0 {
            volume[l as usize - 1] += 1;
        }
    }

    // 4. Numbers. Other bone touching the spine away from the canal: ribs
    // (a neck each, up to a few hundred mm²) or the ilium (the sacroiliac
    // joints, a thousand and more).
    let face_mm2 = vox.powf(2.0 / 3.0);
    // Per piece: (left, right) of the canal.
    let mut contact = vec![[0f64; 2]; pieces];
    let mut touching: Vec<(usize, V3)> = Vec::new();
    for &(c, right) in &lateral_contacts {
        let l = label[plane.index(c[plane.a], c[plane.u], c[plane.v])];
        let piece = if l != 0 {
            l as usize - 1
        } else {
            piece_at(mm(c)).min(pieces - 1)
        };
        contact[piece][usize::from(right)] += face_mm2;
        touching.push((piece, mm(c)));
    }
    // How far along the slices each piece's contacts spread, mm: a
    // sacroiliac joint is long (S1 to S3), a rib's neck short.
    let mut span = vec![(f64::INFINITY, f64::NEG_INFINITY); pieces];
    for &(c, x) in &touching {
        span[c] = (span[c].0.min(x[plane.a]), span[c].1.max(x[plane.a]));
    }
    let span_mm = |c: usize| (span[c].1 - span[c].0).max(0.0);
    // Both sides together, mm².
    let contact_mm2 = |c: usize| contact[c][0] + contact[c][1];
    // Pieces from the bottom up, and the disc plane above each.
    let order: Vec<usize> = if frame.slices_go_up {
        (0..pieces).collect()
    } else {
        (0..pieces).rev().collect()
    };
    // The sacrum: the pieces at the bottom that the ilium touches (the
    // splits between them are the sacral discs' remnants), or else a long
    // bottom piece with alae (an ilium not touching). Its top must be near
    // the joints' top: a piece reaching far above them holds L5 too (its
    // disc missed), and the count would be one off.
    let si_pieces = sacral_run(&order, &contact, p);
    // The joints are long: contacts over less than `si_span_mm` are ribs
    // (a low field of view ending at T12 or L1).
    let run_span = {
        let run = &order[..si_pieces];
        let zs = touching
            .iter()
            .filter(|(c, _)| run.contains(c))
            .map(|(_, x)| x[plane.a]);
        let (lo, hi) = zs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), z| {
            (a.min(z), b.max(z))
        });
        (hi - lo).max(0.0)
    };
    let si_pieces = if run_span >= p.si_span_mm {
        si_pieces
    } else {
        0
    };
    let sacrum_pieces = if si_pieces > 0 && si_pieces < pieces {
        let top = plane_above(order[si_pieces - 1]).expect("a piece above");
        let highest = touching
            .iter()
            .filter(|(c, _)| order[..si_pieces].contains(c))
            .map(|&(_, x)| depth_below(x, top))
            .fold(f64::INFINITY, f64::min);
        if highest <= p.sacrum_top_mm {
            si_pieces
        } else {
            rep.warnings.push(format!(
                "the ilium touches the lowest vertebra {highest:.0} mm below its top: the sacrum \
                 was not told from L5, the vertebrae are not numbered from it"
            ));
            0
        }
    } else if si_pieces == 0 && pieces > 1 && sacrum_like {
        1
    } else {
        0
    };
    let lowest_rib = order.iter().position(|&c| {
        c != order[0] && contact_mm2(c) >= p.rib_contact_mm2 && contact_mm2(c) < p.si_contact_mm2
    });
    let mut numbers: Vec<u8> = vec![0; pieces];
    let count_from = |anchor_pos: usize, anchor_label: u8, numbers: &mut Vec<u8>| {
        for (pos, &c) in order.iter().enumerate() {
            let l = anchor_label as i64 + anchor_pos as i64 - pos as i64;
            numbers[c] = if (1..=25).contains(&l) { l as u8 } else { 0 };
        }
    };
    if sacrum_pieces > 0 {
        // Above the sacrum: L5 (24), not L6 (25, a transitional vertebra).
        count_from(sacrum_pieces, LABEL_SACRUM - 2, &mut numbers);
        for &c in &order[..sacrum_pieces] {
            numbers[c] = LABEL_SACRUM;
        }
        rep.numbered_from = "sacrum";
    } else if let Some(pos) = lowest_rib {
        count_from(pos, LABEL_T12, &mut numbers);
        rep.numbered_from = "ribs";
    }
    let named = rep.numbered_from != "none";
    if !named {
        rep.warnings.push(
            "neither the sacrum nor a rib was found: the vertebrae are numbered 1, 2, … from \
             the top, not named"
                .into(),
        );
        for (n, &c) in order.iter().rev().enumerate() {
            numbers[c] = (n + 1).min(254) as u8;
        }
    } else {
        // Pieces beyond the named range (above T1): high numbers from 200.
        let mut next = 200u8;
        for &c in order.iter().rev() {
            if numbers[c] == 0 {
                numbers[c] = next;
                next = next.saturating_add(1);
            }
        }
    }
    for l in label.iter_mut() {
        if *l != 0 {
            *l = numbers[*l as usize - 1];
        }
    }
    // From the top down; the sacrum's pieces as one.
    for &c in order.iter().rev() {
        match rep.vertebrae.last_mut() {
            Some(v) if v.label == numbers[c] => {
                v.volume_mm3 += volume[c] as f64 * vox;
                v.lateral_contact_mm2 += contact_mm2(c);
                v.contact_span_mm += span_mm(c);
            }
            _ => rep.vertebrae.push(Vertebra {
                label: numbers[c],
                name: if named {
                    verse_name(numbers[c])
                } else {
                    String::new()
                },
                volume_mm3: volume[c] as f64 * vox,
                lateral_contact_mm2: contact_mm2(c),
                contact_span_mm: span_mm(c),
            }),
        }
    }
    (
        Volume {
            grid: g.clone(),
            data: label,
        },
        rep,
    )
}

/// The split's flood priority per voxel of `mask`, mm: its depth in the
/// mask plus the CT there (clamped to −200…3000 HU) over `hu_per_mm`; 0
/// outside. `ct` is sampled as in [`label_vertebrae`].
fn flood_priority(mask: &Mask, ct: &Volume<f32>, lo: [usize; 3], hu_per_mm: f64) -> Vec<f32> {
    let g = &mask.grid;
    let cdims = ct.grid.dims;
    let mut prio = edt::squared_depth(mask);
    prio.par_iter_mut().enumerate().for_each(|(idx, d)| {
        if mask.data[idx] != 0 {
            let c = g.coords(idx);
            let at: [usize; 3] = std::array::from_fn(|a| {
                let x = c[a] as f64 * g.spacing[a];
                ((x / ct.grid.spacing[a]).round() as usize + lo[a]).min(cdims[a] - 1)
            });
            let hu = ct.data[at[0] + cdims[0] * (at[1] + cdims[1] * at[2])];
            *d = (d.sqrt() + hu.clamp(-200.0, 3000.0) / hu_per_mm as f32).max(0.0);
        }
    });
    prio
}

/// One more face of label `m` touched, in a piece's (label, faces) list.
fn count_touch(touches: &mut Vec<(u8, usize)>, m: u8) {
    match touches.iter_mut().find(|t| t.0 == m) {
        Some(t) => t.1 += 1,
        None => touches.push((m, 1)),
    }
}

/// The label a piece touches over the most faces (on a tie, the lower).
fn most_touched(touches: &[(u8, usize)]) -> Option<u8> {
    touches
        .iter()
        .max_by_key(|t| (t.1, std::cmp::Reverse(t.0)))
        .map(|t| t.0)
}

/// Gives each piece of a label of at most `max_voxels` voxels (6-connected)
/// that touches other labels to the one it touches most (on a tie, the
/// lower), all at once from the labels as they were; returns the voxels
/// relabelled. [`merge_islands`] on the pieces at the labels' boundaries
/// only (or those holding a voxel of `from`), each grown no further than
/// `max_voxels` or a piece already found larger: a pass over the volume in
/// parallel and a walk of its boundaries, not a labelling of every piece
/// (on the paper grid's vertebra box 16 M voxels). `label` is a volume of
/// `dims` (x fastest).
fn merge_small_islands(
    label: &mut [u8],
    dims: [usize; 3],
    max_voxels: usize,
    from: Option<&[u32]>,
) -> Vec<u32> {
    let [nx, ny, _] = dims;
    let plane = nx * ny;
    // Voxels with a face neighbour of another label, row by row in
    // parallel (or the voxels given).
    let boundary: Vec<u32> = match from {
        Some(f) => f.to_vec(),
        None => label
            .par_chunks(plane.max(1))
            .enumerate()
            .flat_map_iter(|(z, slice)| {
                let lab = &*label;
                let mut out = Vec::new();
                for (y, row) in slice.chunks_exact(nx).enumerate() {
                    if row.iter().all(|&l| l == 0) {
                        continue;
                    }
                    let at = z * plane + y * nx;
                    for (x, &l) in row.iter().enumerate() {
                        let i = at + x;
                        if l != 0
                            && super::any_face_neighbour(i, [x, y, z], dims, |j| {
                                lab[j] != 0 && lab[j] != l
                            })
                        {
                            out.push(i as u32);
                        }
                    }
                }
                out
            })
            .collect(),
    };
    // Bit sets: voxels reached (each once), and those of a piece found
    // larger than `max_voxels`. A voxel of the same label reached but not
    // large belongs to the piece being grown: a piece finished earlier is
    // all of its 6-connected voxels.
    let words = label.len().div_ceil(64);
    let (mut seen, mut large) = (vec![0u64; words], vec![0u64; words]);
    let get = |b: &[u64], i: usize| b[i / 64] >> (i % 64) & 1 != 0;
    let set = |b: &mut [u64], i: usize| b[i / 64] |= 1 << (i % 64);
    let (mut piece, mut stack) = (Vec::new(), Vec::new());
    let mut islands: Vec<(Vec<u32>, u8)> = Vec::new();
    for &start in &boundary {
        let start = start as usize;
        if get(&seen, start) {
            continue;
        }
        let l = label[start];
        piece.clear();
        let mut touches: Vec<(u8, usize)> = Vec::new();
        let mut is_large = false;
        set(&mut seen, start);
        stack.push(start);
        while let Some(i) = stack.pop() {
            piece.push(i);
            for j in face_neighbours(i, dims).into_iter().flatten() {
                let m = label[j];
                if m == l {
                    if get(&large, j) {
                        is_large = true;
                    } else if !get(&seen, j) {
                        set(&mut seen, j);
                        stack.push(j);
                    }
                } else if m != 0 {
                    count_touch(&mut touches, m);
                }
            }
            if is_large || piece.len() + stack.len() > max_voxels {
                is_large = true;
                break;
            }
        }
        if is_large {
            for &i in piece.iter().chain(&stack) {
                set(&mut large, i);
            }
            stack.clear();
            continue;
        }
        if let Some(other) = most_touched(&touches) {
            islands.push((piece.iter().map(|&i| i as u32).collect(), other));
        }
    }
    let mut moved = Vec::new();
    for (voxels, to) in islands {
        for &i in &voxels {
            label[i as usize] = to;
        }
        moved.extend(voxels);
    }
    moved
}

/// Gives each island of a label (a 6-connected piece other than its
/// largest) that touches other labels to the one it touches most (all at
/// once, from the labels as they were). A seeded piece of arch whose way to
/// its body another label took in the flood is left surrounded by that
/// label; a vertebra is one piece of bone. Islands touching no other label
/// (a process the mask broke off) keep theirs. Returns the voxels
/// relabelled. `label` is a volume of `dims` (x fastest).
fn merge_islands(label: &mut [u8], dims: [usize; 3]) -> usize {
    // Components: label, size, and the other labels' faces they touch.
    struct Piece {
        label: u8,
        size: usize,
        touches: Vec<(u8, usize)>,
    }
    let mut comp = vec![u32::MAX; label.len()];
    let mut pieces: Vec<Piece> = Vec::new();
    let mut stack = Vec::new();
    for start in 0..label.len() {
        if label[start] == 0 || comp[start] != u32::MAX {
            continue;
        }
        let id = pieces.len() as u32;
        let l = label[start];
        let mut piece = Piece {
            label: l,
            size: 0,
            touches: Vec::new(),
        };
        comp[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            piece.size += 1;
            for j in face_neighbours(i, dims).into_iter().flatten() {
                let m = label[j];
                if m == l {
                    if comp[j] == u32::MAX {
                        comp[j] = id;
                        stack.push(j);
                    }
                } else if m != 0 {
                    count_touch(&mut piece.touches, m);
                }
            }
        }
        pieces.push(piece);
    }
    let mut largest = [None::<(usize, usize)>; 256];
    for (id, p) in pieces.iter().enumerate() {
        let best = &mut largest[p.label as usize];
        if best.is_none_or(|(size, _)| p.size > size) {
            *best = Some((p.size, id));
        }
    }
    let new_label: Vec<u8> = pieces
        .iter()
        .enumerate()
        .map(|(id, p)| {
            let main = largest[p.label as usize].is_some_and(|(_, m)| m == id);
            match most_touched(&p.touches) {
                Some(other) if !main => other,
                _ => p.label,
            }
        })
        .collect();
    let mut moved = 0;
    for (l, &c) in label.iter_mut().zip(&comp) {
        if c != u32::MAX && new_label[c as usize] != *l {
            *l = new_label[c as usize];
            moved += 1;
        }
    }
    moved
}

/// For each voxel `query` (indices of `mask`'s grid), the pieces (bit
/// `l - 1` for label `l` ≤ 128) with seeds in `label` in the same 2D
/// component (4-connected) of the voxel's slice in `plane`.
fn pieces_joined_in_slice(label: &[u8], mask: &Mask, plane: Plane, query: &[usize]) -> Vec<u128> {
    let (nu, nv) = (plane.nu(), plane.nv());
    let g = &mask.grid;
    let mut by_slice: Vec<Vec<(usize, usize)>> = vec![Vec::new(); plane.slices()];
    for (n, &q) in query.iter().enumerate() {
        let c = g.coords(q);
        by_slice[c[plane.a]].push((n, c[plane.u] + nu * c[plane.v]));
    }
    let answers: Vec<Vec<(usize, u128)>> = by_slice
        .par_iter()
        .enumerate()
        .map(|(k, asked)| {
            if asked.is_empty() {
                return Vec::new();
            }
            let m = plane.gather(&mask.data, k);
            let l = plane.gather(label, k);
            let mut comp = vec![u32::MAX; nu * nv];
            let mut bits: Vec<u128> = Vec::new();
            let mut stack = Vec::new();
            for start in 0..nu * nv {
                if m[start] == 0 || comp[start] != u32::MAX {
                    continue;
                }
                let id = bits.len() as u32;
                let mut b = 0u128;
                comp[start] = id;
                stack.push(start);
                while let Some(q) = stack.pop() {
                    let s = l[q];
                    if (1..=128).contains(&s) {
                        b |= 1 << (s - 1);
                    }
                    for r in face_neighbours(q, [nu, nv, 1]).into_iter().flatten() {
                        if m[r] != 0 && comp[r] == u32::MAX {
                            comp[r] = id;
                            stack.push(r);
                        }
                    }
                }
                bits.push(b);
            }
            asked
                .iter()
                .map(|&(n, q)| {
                    (
                        n,
                        if comp[q] == u32::MAX {
                            0
                        } else {
                            bits[comp[q] as usize]
                        },
                    )
                })
                .collect()
        })
        .collect();
    let mut out = vec![0u128; query.len()];
    for (n, b) in answers.into_iter().flatten() {
        out[n] = b;
    }
    out
}

/// How many pieces from the bottom up (`order`) make the sacrum: up to the
/// last of the run of pieces that other bone touches as the sacroiliac
/// joints do (over `si_contact_mm2`, `si_side_mm2` of it or more on either
/// side; `contact[piece]` is (left, right), mm²), when that run starts at
/// one of the two lowest pieces (below the joints: the sacral apex, the
/// coccyx). 0 when there is none.
fn sacral_run(order: &[usize], contact: &[[f64; 2]], p: &VertebraParams) -> usize {
    let joints = |c: usize| {
        let [l, r] = contact[c];
        l + r >= p.si_contact_mm2 && l.min(r) >= p.si_side_mm2
    };
    let Some(first) = order.iter().take(2).position(|&c| joints(c)) else {
        return 0;
    };
    first + order[first..].iter().take_while(|&&c| joints(c)).count()
}

/// The L5/S1 disc (an index along the line of points `pts` with directions
/// `tangent`) when the discs found leave L5
/// and the sacrum one piece: the bottom pieces that other bone touches over
/// `si_contact_mm2` (the ilium) reach more than `sacrum_top_mm` above the
/// highest contact. `None` when they do not, or no valley lies between.
fn missed_lumbosacral_disc(
    discs: &[usize],
    (pts, tangent): (&[V3], &[V3]),
    lateral: &[(V3, bool)],
    (profile, evidence): (&[f64], &[f64]),
    face_mm2: f64,
    frame: &Frame,
    p: &VertebraParams,
) -> Option<usize> {
    let axis = frame.plane.a;
    let pieces = discs.len() + 1;
    let piece_at = |x: V3| {
        discs
            .iter()
            .filter(|&&m| dot(sub(x, pts[m]), tangent[m]) > 0.0)
            .count()
    };
    let mut contact = vec![[0f64; 2]; pieces];
    for &(x, right) in lateral {
        contact[piece_at(x)][usize::from(right)] += face_mm2;
    }
    let up = frame.slices_go_up;
    // Bottom-up piece order; piece c lies between discs c − 1 and c.
    let order: Vec<usize> = if up {
        (0..pieces).collect()
    } else {
        (0..pieces).rev().collect()
    };
    let si = sacral_run(&order, &contact, p);
    if si == 0 || si == pieces {
        return None;
    }
    let run = &order[..si];
    let (zlo, zhi) = lateral
        .iter()
        .map(|&(x, _)| x)
        .filter(|&x| run.contains(&piece_at(x)))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x[axis]), b.max(x[axis]))
        });
    if zhi - zlo < p.si_span_mm {
        return None;
    }
    let top_disc = if up {
        discs[si - 1]
    } else {
        discs[pieces - si - 1]
    };
    let (q, t) = (pts[top_disc], tangent[top_disc]);
    let highest = lateral
        .iter()
        .map(|&(x, _)| x)
        .filter(|&x| order[..si].contains(&piece_at(x)))
        .map(|x| {
            if up {
                -dot(sub(x, q), t)
            } else {
                dot(sub(x, q), t)
            }
        })
        .fold(f64::INFINITY, f64::min);
    if highest <= p.sacrum_top_mm {
        return None;
    }
    // L5 is about as tall as L4 above it (neighbours within `height_ratio`,
    // as in the chain): a steep L5/S1 disc's valley is faint, L5's dark
    // cancellous core is not.
    let above = if up {
        discs.get(si).map(|&m| m - top_disc)
    } else {
        (pieces - si).checked_sub(2).map(|i| top_disc - discs[i])
    };
    let (mut reach, mut min_h) = (highest, p.min_height_mm);
    if let Some(h) = above {
        reach = reach.min(h as f64 * p.height_ratio);
        min_h = min_h.max(h as f64 / p.height_ratio);
    }
    let (reach, min_h) = (reach.round() as usize, min_h.round() as usize);
    let window = if up {
        top_disc.saturating_sub(reach)..top_disc.saturating_sub(min_h) + 1
    } else {
        (top_disc + min_h).min(evidence.len())..(top_disc + reach + 1).min(evidence.len())
    };
    // The clearest valley there; without one, the darkest point.
    window.max_by(|&a, &b| {
        evidence[a]
            .total_cmp(&evidence[b])
            .then(profile[b].total_cmp(&profile[a]))
    })
}

/// Disc positions (indices, 1 mm apart) along `evidence`, chosen so that
/// the pieces between them are vertebra-sized: consecutive discs `heights`
/// mm apart (min, max), neighbouring heights within a factor `ratio` of each
/// other, the end pieces at most `ends` mm (first, last). Among such chains,
/// the one with the largest sum of `evidence − threshold` at its discs: a
/// disc with weak evidence is still placed where the regularity demands one
/// (a missed disc would make a double vertebra), one with evidence above the
/// threshold is added where the sizes allow. Dynamic programming over
/// (disc, previous height).
pub fn regular_discs(
    evidence: &[f64],
    [h_min, h_max]: [f64; 2],
    ratio: f64,
    [start_max, end_max]: [f64; 2],
    threshold: f64,
) -> Vec<usize> {
    let n = evidence.len();
    let (h_min, h_max) = (h_min.round().max(1.0) as usize, h_max.round() as usize);
    if n == 0 || h_max < h_min {
        return Vec::new();
    }
    let nh = h_max - h_min + 1;
    // Height index nh: the first disc (no previous one).
    let w = nh + 1;
    const NONE: f64 = f64::NEG_INFINITY;
    let mut best = vec![NONE; n * w];
    let mut from = vec![usize::MAX; n * w];
    for i in 0..n {
        let gain = evidence[i] - threshold;
        if i as f64 <= start_max {
            best[i * w + nh] = gain;
        }
        for g in h_min..=h_max.min(i) {
            let j = i - g;
            let (mut top, mut arg) = (NONE, usize::MAX);
            for pg in 0..=nh {
                let v = best[j * w + pg];
                if v == NONE {
                    continue;
                }
                if pg < nh {
                    let r = g as f64 / (pg + h_min) as f64;
                    if r > ratio || r < 1.0 / ratio {
                        continue;
                    }
                }
                if v > top {
                    (top, arg) = (v, pg);
                }
            }
            if top > NONE {
                best[i * w + g - h_min] = top + gain;
                from[i * w + g - h_min] = arg;
            }
        }
    }
    // The best chain whose last disc leaves a short enough end piece; no
    // disc at all when the whole is short enough.
    let mut end = None;
    let mut top = if (n as f64) <= start_max.max(end_max) {
        0.0
    } else {
        NONE
    };
    for i in 0..n {
        if ((n - 1 - i) as f64) > end_max {
            continue;
        }
        for g in 0..=nh {
            if best[i * w + g] > top {
                top = best[i * w + g];
                end = Some((i, g));
            }
        }
    }
    let mut discs = Vec::new();
    while let Some((i, g)) = end {
        discs.push(i);
        end = (g != nh).then(|| (i - (g + h_min), from[i * w + g]));
    }
    discs.reverse();
    discs
}

/// `x` smoothed with a Gaussian of `sigma` samples (edges renormalised).
fn gaussian_1d(x: &[f64], sigma: f64) -> Vec<f64> {
    weighted_gaussian_1d(x, &vec![1.0; x.len()], sigma)
}

/// [`gaussian_1d`] with each value weighted by `w` (> 0): Σ g·w·x / Σ g·w.
fn weighted_gaussian_1d(x: &[f64], weight: &[f64], sigma: f64) -> Vec<f64> {
    if sigma <= 0.0 {
        return x.to_vec();
    }
    let r = (3.0 * sigma).ceil() as isize;
    let g: Vec<f64> = (-r..=r)
        .map(|d| (-0.5 * (d as f64 / sigma).powi(2)).exp())
        .collect();
    let n = x.len() as isize;
    (0..n)
        .map(|i| {
            let (mut s, mut ws) = (0.0, 0.0);
            for (d, &gd) in (-r..=r).zip(&g) {
                let j = i + d;
                if j >= 0 && j < n {
                    let w = gd * weight[j as usize];
                    s += w * x[j as usize];
                    ws += w;
                }
            }
            s / ws
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evidence with peaks of `height` at `at` on a background of `base`.
    fn evidence(n: usize, at: &[(usize, f64)], base: f64) -> Vec<f64> {
        let mut e = vec![base; n];
        for &(i, h) in at {
            e[i] = h;
        }
        e
    }

    #[test]
    fn regular_discs_prefers_a_regular_chain_to_stray_valleys() {
        // Discs every 30 mm; stray valleys in between, weaker but above the
        // threshold, 12–14 mm from a disc (closer than a vertebra).
        let truth = [20, 50, 80, 110, 140];
        let mut at: Vec<(usize, f64)> = truth.iter().map(|&i| (i, 1.0)).collect();
        at.extend([(63, 0.8), (96, 0.8)]);
        let e = evidence(160, &at, 0.0);
        let d = regular_discs(&e, [18.0, 46.0], 1.33, [46.0, 46.0], 0.5);
        assert_eq!(d, truth);
    }

    #[test]
    fn regular_discs_places_a_weak_disc_where_the_heights_need_one() {
        // The disc at 80 is barely a valley (below the threshold); leaving
        // it out would make a 60 mm vertebra.
        let e = evidence(
            160,
            &[(20, 1.0), (50, 1.0), (80, 0.1), (110, 1.0), (140, 1.0)],
            0.0,
        );
        let d = regular_discs(&e, [18.0, 46.0], 1.33, [46.0, 46.0], 0.5);
        assert_eq!(d, [20, 50, 80, 110, 140]);
        // With a long end piece allowed (the sacrum), weak discs there are
        // left out but strong ones are still taken.
        let e = evidence(200, &[(20, 1.0), (50, 1.0), (80, 1.0), (110, 0.1)], 0.0);
        let d = regular_discs(&e, [18.0, 46.0], 1.33, [46.0, 130.0], 0.5);
        assert_eq!(d, [20, 50, 80]);
    }

    #[test]
    fn a_body_corner_barely_moves_the_line() {
        // Full sections centred at 0; two slices hold only a tilted body's
        // corner, 15 mm to the side, a third of the section's area (weight
        // (1/3)⁴). Smoothed over 2.5 slices as the line is on 2 mm slices.
        let x = [0.0, 0.0, 0.0, 0.0, 0.0, 15.0, 15.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let w: Vec<f64> = x
            .iter()
            .map(|&c| if c > 0.0 { (1.0f64 / 3.0).powi(4) } else { 1.0 })
            .collect();
        let plain = gaussian_1d(&x, 2.5);
        let weighted = weighted_gaussian_1d(&x, &w, 2.5);
        let top = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        assert!(top(&plain) > 4.0, "{plain:?}");
        assert!(top(&weighted) < 0.6, "{weighted:?}");
        // Equal weights: the plain smoothing.
        assert_eq!(weighted_gaussian_1d(&x, &[2.0; 12], 2.5), plain);
    }

    #[test]
    fn regular_discs_keeps_neighbouring_heights_alike() {
        // 30 mm vertebrae, then a valley that would make a 20 mm one next
        // to them (ratio 1.5, beyond 1.33): the regular 30 mm step is taken
        // although its valley is weaker (a strong enough valley would still
        // pull the chain to it, through heights within the ratio).
        let e = evidence(
            130,
            &[(10, 1.0), (40, 1.0), (70, 1.0), (90, 0.9), (100, 0.6)],
            0.0,
        );
        let d = regular_discs(&e, [18.0, 46.0], 1.33, [46.0, 46.0], 0.5);
        assert_eq!(d, [10, 40, 70, 100]);
        // Nothing to split: a short piece.
        assert!(regular_discs(&[0.0; 30], [18.0, 46.0], 1.33, [46.0, 46.0], 0.5).is_empty());
    }

    #[test]
    fn the_sacrum_is_the_pieces_both_ilia_touch() {
        let p = VertebraParams::default();
        let order = [0, 1, 2, 3];
        // (left, right) contact of each piece from the bottom up, mm², and
        // how many pieces make the sacrum.
        for (contact, want) in [
            // The sacrum below, a tilted L5 touching one ilium over more
            // than the joints' total.
            ([[700.0, 900.0], [0.0, 850.0], [0.0; 2], [0.0; 2]], 1),
            // Sacral pieces (a disc's remnant between them), each with both
            // joints, even when one side is weaker.
            ([[700.0, 900.0], [250.0, 650.0], [0.0; 2], [0.0; 2]], 2),
            // Below the joints, the sacral apex: the run starts above it.
            ([[0.0; 2], [700.0, 900.0], [400.0, 500.0], [0.0; 2]], 3),
            // One-sided only: no sacrum.
            ([[0.0, 1600.0], [0.0; 2], [0.0; 2], [0.0; 2]], 0),
            // Both sides, too little in all (ribs' necks).
            ([[300.0, 300.0], [0.0; 2], [0.0; 2], [0.0; 2]], 0),
        ] {
            assert_eq!(sacral_run(&order, &contact, &p), want, "{contact:?}");
        }
    }

    #[test]
    fn a_missed_lumbosacral_disc_leaves_l5_about_as_tall_as_l4() {
        // A line along z, mm = index; discs found at 58 (L4/L5) and 97
        // (L3/L4): L4 is 39 mm. The ilium touches the bottom piece from
        // z = −10 to 26 (32 mm below its top: it holds L5 too). L5's dark
        // core makes a clear valley at 36 (L5 would be 22 mm, under 39 / 1.33);
        // the faint L5/S1 disc at 28 is the darkest point where L5 is 29–32
        // mm tall (at least 39 / 1.33, and S1 reaches up to the joints).
        let n = 140;
        let pts: Vec<V3> = (0..n).map(|m| [0.0, 0.0, m as f64]).collect();
        let tangent = vec![[0.0, 0.0, 1.0]; n];
        let mut evidence = vec![0.0; n];
        evidence[36] = 0.4;
        evidence[58] = 1.2;
        evidence[97] = 1.4;
        let mut profile = vec![150.0; n];
        profile[28] = 110.0;
        profile[36] = 95.0;
        // Both ilia touch (the joints are two).
        let ilia = |z: i32| {
            [
                ([40.0, 0.0, z as f64], true),
                ([-40.0, 0.0, z as f64], false),
            ]
        };
        let lateral: Vec<(V3, bool)> = (-10..=26).flat_map(ilia).collect();
        let track = vec![[0.0, 0.0]; n];
        let frame = Frame {
            plane: Plane::new([1, 1, n], 2),
            track: &track,
            lr_is_u: true,
            anterior_sign: 1.0,
            slices_go_up: true,
        };
        let p = VertebraParams::default();
        // The same spine with the slices running down (index 139 − m).
        let flip = |v: &[f64]| v.iter().rev().copied().collect::<Vec<f64>>();
        let down = Frame {
            slices_go_up: false,
            ..frame
        };
        let lateral_down: Vec<(V3, bool)> = (113..=149).flat_map(ilia).collect();
        let (profile_down, evidence_down) = (flip(&profile), flip(&evidence));
        let up = (&frame, &lateral, &profile, &evidence);
        let dn = (&down, &lateral_down, &profile_down, &evidence_down);
        // With L4 above, its height rules; without (one disc), the clearest
        // valley wins.
        for ((frame, lateral, profile, evidence), discs, want) in [
            (up, &[58, 97][..], 28),
            (up, &[58][..], 36),
            (dn, &[42, 81][..], 111),
            (dn, &[81][..], 103),
        ] {
            let m = missed_lumbosacral_disc(
                discs,
                (&pts, &tangent),
                lateral,
                (profile, evidence),
                30.0,
                frame,
                &p,
            );
            let way = if frame.slices_go_up { "up" } else { "down" };
            assert_eq!(m, Some(want), "slices {way}, discs {discs:?}");
        }
    }

    #[test]
    fn islands_join_the_label_around_them() {
        // Slice z = 0: a row of 1s, an empty row, a row of 2s. Slice z = 1:
        // a lone 1 on the 2s (an island: it joins them) and a lone 1 that
        // touches no other label (it stays).
        let dims = [5, 3, 2];
        let mut label = vec![0u8; 30];
        for x in 0..5 {
            label[x] = 1;
            label[x + 10] = 2;
        }
        label[2 + 10 + 15] = 1;
        label[5 + 15] = 1;
        let moved = merge_islands(&mut label, dims);
        assert_eq!(moved, 1);
        assert_eq!(label[2 + 10 + 15], 2);
        assert_eq!(label[5 + 15], 1);
        assert_eq!(label.iter().filter(|&&l| l == 1).count(), 6);
    }

    #[test]
    fn small_islands_join_the_label_around_them_larger_pieces_stay() {
        // A bar 16 × 5 × 5 (in a grid 7 deep): label 1 for x < 8, 2 beyond.
        // In 2's half a speck of 1 (one voxel) and a block of 1 (2 × 3 × 3 =
        // 18 voxels, more than the 10 allowed); in 1's half a pair of 2s; a
        // lone 3 a voxel off the bar, touching nothing.
        let dims = [16, 7, 5];
        let at = |x: usize, y: usize, z: usize| x + 16 * (y + 7 * z);
        let mut label = vec![0u8; 16 * 7 * 5];
        for z in 0..5 {
            for y in 0..5 {
                for x in 0..16 {
                    label[at(x, y, z)] = if x < 8 { 1 } else { 2 };
                }
            }
        }
        label[at(10, 2, 2)] = 1;
        label[at(3, 2, 2)] = 2;
        label[at(3, 3, 2)] = 2;
        for z in 1..4 {
            for y in 1..4 {
                for x in 13..15 {
                    label[at(x, y, z)] = 1;
                }
            }
        }
        label[at(0, 6, 0)] = 3;
        let run = |mut l: Vec<u8>| {
            let moved = merge_small_islands(&mut l, dims, 10, None).len();
            (l, moved)
        };
        let (out, moved) = run(label.clone());
        assert_eq!(moved, 3);
        assert_eq!(out[at(10, 2, 2)], 2);
        assert_eq!((out[at(3, 2, 2)], out[at(3, 3, 2)]), (1, 1));
        assert_eq!(out[at(13, 2, 2)], 1, "the block is larger than 10 voxels");
        assert_eq!(out[at(0, 6, 0)], 3, "touching no other label");
        // Stored the other way round along x, the same result.
        let flip = |v: &[u8]| {
            let mut f = v.to_vec();
            for z in 0..5 {
                for y in 0..7 {
                    for x in 0..16 {
                        f[at(x, y, z)] = v[at(15 - x, y, z)];
                    }
                }
            }
            f
        };
        let (flipped, moved) = run(flip(&label));
        assert_eq!(moved, 3);
        assert_eq!(flip(&flipped), out);
    }

    #[test]
    fn labels_meet_at_a_dark_cleft_not_halfway() {
        // A bar of bone 40 mm long and 6 mm square, seeded at both ends, with
        // a 2 mm band of soft tissue (60 HU, as a facet joint the closing
        // bridged) 12 mm from one end in bone of 800 HU: the labels meet at
        // the band, where depth alone would have met at the bar's middle.
        let g = crate::Grid::new([40, 8, 8], [1.0; 3], [0.0; 3]);
        let mut mask = Mask::filled(g.clone(), 0);
        let mut ct = Volume::filled(g.clone(), -50f32);
        for z in 1..7 {
            for y in 1..7 {
                for x in 0..40 {
                    mask.set(x, y, z, 1);
                    ct.set(x, y, z, if (12..14).contains(&x) { 60.0 } else { 800.0 });
                }
            }
        }
        let prio = flood_priority(&mask, &ct, [0; 3], 175.0);
        let mut label: Vec<u8> = mask
            .data
            .iter()
            .map(|&m| {
                if m != 0 {
                    super::super::isolate::UNREACHED
                } else {
                    0
                }
            })
            .collect();
        let bucket = |i: usize| ((prio[i] / 0.1) as usize).min(1023);
        let mut queue: Vec<VecDeque<u32>> = (0..1024).map(|_| VecDeque::new()).collect();
        let mut top = 0;
        for (x, l) in [(0, 1u8), (39, 2)] {
            let i = g.index(x, 4, 4);
            label[i] = l;
            queue[bucket(i)].push_back(i as u32);
            top = top.max(bucket(i));
        }
        super::super::isolate::priority_flood(
            &mut label,
            g.dims,
            &mut queue,
            top,
            |i, _| bucket(i),
            |i| prio[i],
        );
        for x in 0..40 {
            let l = label[g.index(x, 4, 4)];
            assert_eq!(l, if x < 13 { 1 } else { 2 }, "x = {x}");
        }
    }

    #[test]
    fn ring_seeds_need_their_body_joined_in_the_slice() {
        // Slice 0: two blobs, seeded 1 and 2, and a bridge joining a third
        // blob to both; slice 1: a blob without seeds.
        let g = crate::Grid::new([12, 4, 2], [1.0; 3], [0.0; 3]);
        let mut mask = Mask::filled(g.clone(), 0);
        let mut label = vec![0u8; g.len()];
        for x in [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11] {
            mask.set(x, 0, 0, 1);
        }
        for x in 0..3 {
            mask.set(x, 2, 0, 1);
            mask.set(x, 2, 1, 1);
        }
        label[g.index(0, 0, 0)] = 1;
        label[g.index(11, 0, 0)] = 2;
        // x = 4..12 on row 0 is one blob holding seed 2 only; x = 0..3 on
        // row 0 holds seed 1; row 2 touches neither.
        let plane = Plane::new(g.dims, 2);
        let query = [
            g.index(2, 0, 0),
            g.index(5, 0, 0),
            g.index(1, 2, 0),
            g.index(1, 2, 1),
        ];
        let bits = pieces_joined_in_slice(&label, &mask, plane, &query);
        assert_eq!(bits, [0b01, 0b10, 0, 0]);
        // Joined by a bridge (x = 3), the row holds both.
        mask.set(3, 0, 0, 1);
        let bits = pieces_joined_in_slice(&label, &mask, plane, &query);
        assert_eq!(bits, [0b11, 0b11, 0, 0]);
    }

    #[test]
    fn no_body_in_front_of_the_canal_gives_one_unnamed_piece() {
        // Bone only behind the canal (an arch without its body).
        let g = crate::Grid::new([30, 30, 20], [1.0; 3], [0.0; 3]);
        let mut mask = Mask::filled(g.clone(), 0);
        for z in 0..20 {
            for y in 18..26 {
                for x in 10..20 {
                    mask.set(x, y, z, 1);
                }
            }
        }
        let ct = Volume::filled(g, 0f32);
        let track = vec![[15.0, 15.0]; 20];
        let frame = Frame {
            plane: Plane::new([30, 30, 20], 2),
            track: &track,
            lr_is_u: true,
            anterior_sign: -1.0,
            slices_go_up: true,
        };
        let (labels, rep) =
            label_vertebrae(&mask, &ct, [0; 3], &frame, &[], &VertebraParams::default());
        assert_eq!(rep.numbered_from, "none");
        assert_eq!(rep.vertebrae.len(), 1);
        assert_eq!(rep.vertebrae[0].volume_mm3, 1600.0);
        assert!(labels.data.iter().zip(&mask.data).all(|(&l, &m)| l == m));
    }

    #[test]
    fn levels_are_parsed_by_name() {
        assert_eq!(parse_levels("L1-L5"), Ok([20, 24]));
        assert_eq!(parse_levels("t12-s"), Ok([19, 26]));
        assert_eq!(parse_levels("L4"), Ok([23, 23]));
        assert_eq!(parse_levels("C1-C7"), Ok([1, 7]));
        assert!(parse_levels("L5-L1").unwrap_err().contains("L1-L5"));
        assert!(parse_levels("L7").is_err());
        assert!(parse_levels("X1-L2").is_err());
        assert!(parse_levels("").is_err());
        for l in 1..=26u8 {
            assert_eq!(verse_label(&verse_name(l)), Some(l));
        }
    }

    #[test]
    fn verse_names() {
        assert_eq!(verse_name(19), "T12");
        assert_eq!(verse_name(20), "L1");
        assert_eq!(verse_name(24), "L5");
        assert_eq!(verse_name(25), "L6");
        assert_eq!(verse_name(26), "sacrum");
        assert_eq!(verse_name(8), "T1");
        assert_eq!(verse_name(200), "");
    }
}
