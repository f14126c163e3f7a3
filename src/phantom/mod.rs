//! Synthetic lumbar-spine CT phantom with a known ground truth.
//!
//! [`generate`] renders a CT volume in Hounsfield units (HU) and a label volume
//! on the same grid. It powers `spinemesh demo`, the tests and the benchmarks.
//! Everything is defined analytically (signed distance functions in mm), so the
//! phantom can be rendered on any grid, isotropic or not, and the truth is
//! exact: a voxel belongs to a structure when its *centre* lies inside it.
//!
//! # Coordinates and units
//!
//! All lengths are millimetres, all intensities HU. The volume uses DICOM
//! patient coordinates (LPS): x increases towards the patient's **left**, y
//! towards **posterior**, z towards **superior**; the grid has identity
//! direction cosines, so the z index increases superiorly. The anatomy is
//! fixed in patient space: the centre of L1's superior endplate is at
//! (0, 0, 0), the spine runs down the midline plane x = 0, and the grid is
//! placed by [`PhantomParams::fov_centre_mm`] (the presets put the top slice
//! 10 mm above L1, so the scan starts in the T12/L1 disc).
//!
//! # Anatomy (adult lumbar sizes)
//!
//! * **L1–L5**: vertebral bodies are elliptic cylinders with a flat posterior
//!   wall, rounded edges and a concave waist: 42→50 mm wide (L-R), 30→34 mm
//!   deep (A-P), 25→27 mm tall. A cortical shell (`cortical_thickness_mm`, at
//!   cortical HU; 1.3 mm thicker at the ring apophysis of the endplates)
//!   encloses cancellous bone whose HU varies smoothly in space and between
//!   levels. Posterior elements: two pedicles (7.5→15 mm wide, converging
//!   anteriorly), two laminae closing the arch around the spinal canal
//!   (17→20 mm wide, 15–16 mm deep), a spinous process (24–29 mm long, tilted
//!   15° caudally), two transverse processes (tips 33–43 mm from the midline)
//!   and superior/inferior articular processes forming facet joints with a
//!   1.5 mm joint space. Posterior elements have a thin cortex around dense
//!   bone (`posterior_hu`). Bodies and posterior elements are joined by smooth
//!   unions (fillets); the canal is carved out of the arch.
//! * **Discs** (80 HU) of 7–11 mm between the bodies (T12/L1 … L5/S1), slightly
//!   bulging; lordotic wedging follows from the curve.
//! * **Lordosis**: the column centre line is a circular arc in the sagittal
//!   plane (default 40° from the L1 superior to the S1 superior endplate, apex
//!   at L3/L4). The sacrum is tilted a further 12° (sacral slope ≈ 32°).
//! * **Sacrum**: a tapered, anteriorly concave S1–S5 core (S1 body 52 mm
//!   wide), alae reaching 52 mm from the midline, a posterior plate with a
//!   median crest, a tapering sacral canal and the S1 superior articular
//!   processes.
//! * **Ribs** (optional): the 11th and 12th ribs on both sides, 10 mm tubes
//!   with a cortical shell; the 12th starts about 5 mm lateral to the L1
//!   transverse process tip and curves antero-laterally and down.
//! * **Pelvis** (optional): iliac wings (thick posteriorly, thin in the iliac
//!   fossa, with a thickened crest at the L4/L5 level) sweeping antero-laterally
//!   from the sacroiliac joints, plus the ilium body down to the acetabular
//!   level. The sacroiliac joint surfaces are conformal to the sacral alae.
//! * Every non-spine bone keeps a gap of at least 4.5 mm (ilium, against the
//!   sacrum, L4 and L5) or 4 mm (ribs, against L1 and L2) from the spine, by
//!   construction, so a 1.2 mm closing cannot bridge it.
//! * **Soft tissue**: an elliptic body outline (300 × 224 mm, widening over the
//!   pelvis) with a 14 mm subcutaneous fat layer (−100 HU) around 35 HU soft
//!   tissue, psoas and erector spinae muscles (50 HU), the aorta anterior-left
//!   of the spine (bifurcating at L4) and the inferior vena cava (40 HU), CSF in
//!   the canal (15 HU), air outside the body (−1000 HU). Optionally a few small
//!   calcified plaques (300–550 HU, 1–1.6 mm radius) on the aortic wall.
//!
//! # Labels
//!
//! 0 background, 1–5 = L1–L5, 6 = sacrum (together: the spine truth, bodies
//! and posterior elements, cortex and cancellous), 10 = intervertebral disc,
//! 11 = spinal canal, 20 = rib, 21 = pelvis (ilium), 22 = aortic calcification.
//! See [`label_names`](Phantom::label_names).
//!
//! # Image formation
//!
//! Partial volume is analytic: for a voxel near a surface the covered fraction
//! of each layer (bone, and the cortex/cancellous boundary inside it) is a
//! linear ramp of the signed distance, whose width is the voxel's extent along
//! the surface normal (exact for axis-aligned surfaces), so edges blur like a
//! scanner's box-shaped voxels. Gaussian noise (`noise_sd_hu`) is white and
//! keyed by voxel index and seed: the output is deterministic and independent of
//! the number of threads. Values are clamped to [−1024, 3071].
//!
//! # Simplifications
//!
//! No T12 or thoracic spine, no foramina, no osteophytes, no scanner blur beyond
//! partial volume, white (not textured) noise, no kidneys, bowel or CT table;
//! the lower pelvis (acetabulum, pubis, femora) is reduced to a thick ilium
//! column, and the sacral foramina and coccyx are left out.

use crate::{Error, Grid, Mask, Result, Volume};
use rayon::prelude::*;

mod streaks;
use serde::{Deserialize, Serialize};

/// Label of voxels that belong to nothing in particular (soft tissue, air).
pub const LABEL_BACKGROUND: u8 = 0;
/// Label of L1; L2–L5 follow (2..=5).
pub const LABEL_L1: u8 = 1;
/// Label of the sacrum.
pub const LABEL_SACRUM: u8 = 6;
/// Label of the intervertebral discs.
pub const LABEL_DISC: u8 = 10;
/// Label of the spinal canal (CSF and neural tissue).
pub const LABEL_CANAL: u8 = 11;
/// Label of the ribs.
pub const LABEL_RIB: u8 = 20;
/// Label of the pelvis (iliac bones).
pub const LABEL_PELVIS: u8 = 21;
/// Label of the aortic wall calcifications.
pub const LABEL_CALCIFICATION: u8 = 22;
/// Label of metal implants (pedicle screws and rods).
pub const LABEL_METAL: u8 = 23;

const LABEL_NAMES: [(u8, &str); 13] = [
    (LABEL_BACKGROUND, "background"),
    (1, "L1"),
    (2, "L2"),
    (3, "L3"),
    (4, "L4"),
    (5, "L5"),
    (LABEL_SACRUM, "sacrum"),
    (LABEL_DISC, "intervertebral disc"),
    (LABEL_CANAL, "spinal canal"),
    (LABEL_RIB, "rib"),
    (LABEL_PELVIS, "pelvis (ilium)"),
    (LABEL_CALCIFICATION, "aortic calcification"),
    (LABEL_METAL, "metal implant"),
];

/// True for the labels of the spine truth (L1–L5 and the sacrum).
pub fn is_spine_label(label: u8) -> bool {
    (LABEL_L1..=LABEL_SACRUM).contains(&label)
}

// Soft-tissue values, HU.
const HU_AIR: f64 = -1000.0;
const HU_FAT: f64 = -100.0;
const HU_SOFT: f64 = 35.0;
const HU_MUSCLE: f64 = 50.0;
const HU_BLOOD: f64 = 40.0;
const HU_CSF: f64 = 15.0;
const HU_DISC: f64 = 80.0;
const HU_MIN: f64 = -1024.0;
const HU_MAX: f64 = 3071.0;

/// Height of the first slice above the centre of L1's superior endplate in the presets, mm.
const TOP_MARGIN_MM: f64 = 10.0;

/// Parameters of the phantom. Start from [`demo`](Self::demo) or
/// [`paper_grid`](Self::paper_grid) and adjust with struct-update syntax or
/// [`dense`](Self::dense) / [`realistic`](Self::realistic).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhantomParams {
    /// Voxels along x (left), y (posterior), z (superior).
    pub dims: [usize; 3],
    /// Voxel size along x, y, z, mm.
    pub spacing_mm: [f64; 3],
    /// LPS position (mm) of the grid centre. The anatomy is fixed in patient
    /// space (L1's superior endplate centre at the origin, spine at x = 0,
    /// running down to z ≈ −180 mm at S1 and −290 mm at the sacral tip), so
    /// this chooses what the field of view shows.
    pub fov_centre_mm: [f64; 3],
    /// Range of the cancellous bone of the vertebral bodies and sacrum (and the
    /// marrow of ribs and ilium), HU; the value varies smoothly in space.
    pub cancellous_hu: (f64, f64),
    /// Range of the dense interior of the posterior elements, HU.
    pub posterior_hu: (f64, f64),
    /// Range of cortical bone, HU.
    pub cortical_hu: (f64, f64),
    /// Thickness of the cortical shell, mm (the endplate rims add 1.3 mm).
    pub cortical_thickness_mm: f64,
    /// Standard deviation of the white Gaussian noise, HU (0 for none).
    pub noise_sd_hu: f64,
    /// Lordosis from L1's superior to S1's superior endplate, degrees (0–80).
    pub lordosis_deg: f64,
    /// Relative random variation of vertebral sizes, disc heights and
    /// lordosis per seed (0 = the same anatomy for every seed; at most 0.1).
    pub anatomy_variation: f64,
    /// Render the 11th and 12th ribs.
    pub ribs: bool,
    /// Render the iliac bones.
    pub pelvis: bool,
    /// Render small calcified plaques on the aortic wall.
    pub calcifications: bool,
    /// Blood in the aorta, the iliac arteries and the inferior vena cava,
    /// HU: 40 unenhanced; 150–400 after iodinated contrast (portal-venous
    /// to arterial phase), the common case in abdominal CT.
    pub blood_hu: f64,
    /// Instrumented L4–L5: a titanium pedicle screw (6.5 mm, through the
    /// pedicle into the body) on each side of L4 and L5, its head behind the
    /// arch, and a 5.5 mm rod joining the heads on each side. Metal reads
    /// as the scanner's maximum (3071 HU) and replaces what it covers.
    pub pedicle_screws: bool,
    /// Metal streak artefacts (beam hardening, see `streaks.rs`): the dark
    /// band between two screws 40 mm apart reads this many HU below the
    /// anatomy (titanium pedicle screws: 100–500 HU); 0 for none.
    #[serde(default)]
    pub metal_streaks_hu: f64,
    /// Scoliosis: the column's offset to the patient's left (+x, negative:
    /// right) at mid-lumbar level, mm; one lumbar curve, half a sine from
    /// L1's superior endplate to S1's (both stay on the midline, as do the
    /// ribs and the pelvis); each vertebra turned about the column's axis
    /// toward the convex side, 0.5° per mm of its shift, and tilted with the
    /// curve (see `scoliosis_tilt`). The muscles and vessels stay where
    /// they are. 0 for none. The Cobb angle (between L1's superior and L5's
    /// inferior endplates) is about 2·atan(π·shift / 180 mm): 29° at 15 mm,
    /// 55° at 30 mm.
    #[serde(default)]
    pub scoliosis_mm: f64,
    /// The share of the curve's slope each scoliotic vertebra tilts by in
    /// the coronal plane: 1, its endplates perpendicular to the curve (as
    /// in a real scoliosis; the sacrum stays level, so the L5/S1 disc is a
    /// wedge); 0, shifted and turned only, its endplates level.
    #[serde(default = "full_tilt")]
    pub scoliosis_tilt: f64,
    /// Seed of the noise, the density fields and the anatomical variation.
    pub seed: u64,
}

fn full_tilt() -> f64 {
    1.0
}

/// Grid centre that puts the top slice `TOP_MARGIN_MM` above L1's superior endplate.
fn top_anchored(dims: [usize; 3], spacing: [f64; 3], y: f64) -> [f64; 3] {
    let half_extent = 0.5 * (dims[2].max(1) - 1) as f64 * spacing[2];
    [0.0, y, TOP_MARGIN_MM - half_extent]
}

impl PhantomParams {
    /// A small, fast phantom (224 × 208 × 160 voxels of 0.8 × 0.8 × 1.5 mm,
    /// 179 × 166 × 240 mm): L1 to the upper sacrum with the lower ribs and the
    /// medial iliac wings, healthy-adult cancellous bone (160–260 HU),
    /// 20 HU noise.
    pub fn demo() -> Self {
        let dims = [224, 208, 160];
        let spacing_mm = [0.8, 0.8, 1.5];
        PhantomParams {
            dims,
            spacing_mm,
            fov_centre_mm: top_anchored(dims, spacing_mm, -2.0),
            cancellous_hu: (160.0, 260.0),
            posterior_hu: (320.0, 480.0),
            cortical_hu: (700.0, 1500.0),
            cortical_thickness_mm: 1.2,
            noise_sd_hu: 20.0,
            lordosis_deg: 40.0,
            anatomy_variation: 0.03,
            ribs: true,
            pelvis: true,
            calcifications: true,
            blood_hu: HU_BLOOD,
            pedicle_screws: false,
            metal_streaks_hu: 0.0,
            scoliosis_mm: 0.0,
            scoliosis_tilt: full_tilt(),
            seed: 1,
        }
    }

    /// The paper's grid: 512 × 512 × 320 voxels of 0.5 × 0.5 × 1.0 mm
    /// (256 × 256 × 320 mm, L1 to the sacral tip), otherwise like [`demo`](Self::demo).
    pub fn paper_grid() -> Self {
        let dims = [512, 512, 320];
        let spacing_mm = [0.5, 0.5, 1.0];
        PhantomParams {
            dims,
            spacing_mm,
            fov_centre_mm: top_anchored(dims, spacing_mm, -35.0),
            ..Self::demo()
        }
    }

    /// This phantom on pixels of `pixel_mm` and slices of `slice_mm`, over a
    /// field of view `fov_mm` wide (front to back at most the demo's
    /// 166.4 mm) and 240 mm tall, its top 10 mm above L1 as in the demo: the
    /// grids of the robustness sweep and of the tests that use them.
    pub fn on_grid(self, pixel_mm: f64, slice_mm: f64, fov_mm: f64) -> Self {
        let extent = [fov_mm, fov_mm.min(166.4), 240.0];
        let spacing_mm = [pixel_mm, pixel_mm, slice_mm];
        let dims = std::array::from_fn(|a| (extent[a] / spacing_mm[a]) as usize);
        PhantomParams {
            dims,
            spacing_mm,
            fov_centre_mm: top_anchored(dims, spacing_mm, -2.0),
            ..self
        }
    }

    /// Dense bone: cancellous 260–360 HU and posterior elements ≥ 350 HU, so
    /// every bone voxel is far above the paper's 150 HU threshold.
    pub fn dense(self) -> Self {
        PhantomParams {
            cancellous_hu: (260.0, 360.0),
            posterior_hu: (
                self.posterior_hu.0.max(350.0),
                self.posterior_hu.1.max(500.0),
            ),
            cortical_hu: (self.cortical_hu.0.max(700.0), self.cortical_hu.1.max(700.0)),
            ..self
        }
    }

    /// Realistic (middle-aged to older adult) cancellous bone of 100–200 HU,
    /// partly below the paper's 150 HU threshold.
    pub fn realistic(self) -> Self {
        PhantomParams {
            cancellous_hu: (100.0, 200.0),
            ..self
        }
    }

    /// The grid the phantom is rendered on.
    pub fn grid(&self) -> Grid {
        let mut origin = [0.0; 3];
        for (a, o) in origin.iter_mut().enumerate() {
            let half = 0.5 * (self.dims[a].max(1) - 1) as f64 * self.spacing_mm[a];
            *o = self.fov_centre_mm[a] - half;
        }
        Grid::new(self.dims, self.spacing_mm, origin)
    }

    /// Checks that every parameter is usable.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Parameter(m));
        if self.dims.contains(&0) {
            return bad(format!("phantom dims {:?} must all be positive", self.dims));
        }
        if self.dims.iter().product::<usize>() > 2_000_000_000 {
            return bad(format!("phantom dims {:?} are too large", self.dims));
        }
        if !self
            .spacing_mm
            .iter()
            .all(|s| s.is_finite() && *s >= 0.05 && *s <= 20.0)
        {
            return bad(format!(
                "phantom spacing {:?} mm must be between 0.05 and 20 mm",
                self.spacing_mm
            ));
        }
        if !self.fov_centre_mm.iter().all(|c| c.is_finite()) {
            return bad("phantom field-of-view centre must be finite".into());
        }
        for (name, (lo, hi)) in [
            ("cancellous_hu", self.cancellous_hu),
            ("posterior_hu", self.posterior_hu),
            ("cortical_hu", self.cortical_hu),
        ] {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi && lo >= HU_MIN && hi <= HU_MAX) {
                return bad(format!(
                    "phantom {name} range ({lo}, {hi}) must be ordered and within [{HU_MIN}, {HU_MAX}] HU"
                ));
            }
        }
        if !(self.blood_hu.is_finite() && (HU_MIN..=HU_MAX).contains(&self.blood_hu)) {
            return bad(format!(
                "phantom blood {} HU must be within [{HU_MIN}, {HU_MAX}] HU",
                self.blood_hu
            ));
        }
        // (name, value, lowest, highest, unit)
        for (name, v, lo, hi, unit) in [
            (
                "cortical thickness",
                self.cortical_thickness_mm,
                0.3,
                4.0,
                " mm",
            ),
            ("noise SD", self.noise_sd_hu, 0.0, 1000.0, " HU"),
            ("metal streaks", self.metal_streaks_hu, 0.0, 2000.0, " HU"),
            ("scoliosis", self.scoliosis_mm, -60.0, 60.0, " mm"),
            ("scoliosis tilt", self.scoliosis_tilt, 0.0, 1.0, ""),
            ("lordosis", self.lordosis_deg, 0.0, 80.0, "°"),
            ("anatomy variation", self.anatomy_variation, 0.0, 0.1, ""),
        ] {
            // Written so that NaN fails too.
            if !(v >= lo && v <= hi) {
                return bad(format!(
                    "phantom {name} {v}{unit} must be between {lo} and {hi}{unit}"
                ));
            }
        }
        Ok(())
    }
}

/// A rendered phantom: CT in HU and the label volume on the same grid.
#[derive(Clone, Debug)]
pub struct Phantom {
    /// CT intensities, HU.
    pub ct: Volume<f32>,
    /// Labels (see the module documentation and [`label_names`](Self::label_names)).
    pub labels: Volume<u8>,
    /// The parameters it was generated from.
    pub params: PhantomParams,
}

impl Phantom {
    /// The spine truth (the "ideal manual mask"): voxels whose centre lies in
    /// L1–L5 or the sacrum, bodies and posterior elements.
    pub fn spine_truth(&self) -> Mask {
        self.labels.map(|l| u8::from(is_spine_label(l)))
    }

    /// Voxels with any of the given labels.
    pub fn mask_of(&self, labels: &[u8]) -> Mask {
        self.labels.map(|l| u8::from(labels.contains(&l)))
    }

    /// All bone: spine, ribs and pelvis.
    pub fn bone(&self) -> Mask {
        self.labels
            .map(|l| u8::from(is_spine_label(l) || l == LABEL_RIB || l == LABEL_PELVIS))
    }

    /// Every label the phantom uses, with its name.
    pub fn label_names() -> &'static [(u8, &'static str)] {
        &LABEL_NAMES
    }
}

/// Renders the phantom. Parallel over slices; deterministic for given
/// parameters (independent of the number of threads).
///
/// # Panics
/// If [`PhantomParams::validate`] fails.
pub fn generate(params: &PhantomParams) -> Phantom {
    render(params, true)
}

/// [`generate`], optionally without the whole-tile shortcuts (for testing them).
fn render(params: &PhantomParams, tiles: bool) -> Phantom {
    if let Err(e) = params.validate() {
        panic!("{e}");
    }
    let grid = params.grid();
    let mut anatomy = Anatomy::new(params, &grid);
    anatomy.tiles = tiles;
    let [nx, ny, _] = grid.dims;
    let mut ct = vec![0f32; grid.len()];
    let mut labels = vec![0u8; grid.len()];
    ct.par_chunks_mut(nx * ny)
        .zip(labels.par_chunks_mut(nx * ny))
        .enumerate()
        .for_each_init(Scratch::default, |scratch, (k, (c, l))| {
            anatomy.fill_slice(&grid, k, c, l, scratch)
        });
    Phantom {
        ct: Volume {
            grid: grid.clone(),
            data: ct,
        },
        labels: Volume { grid, data: labels },
        params: params.clone(),
    }
}

// ---------------------------------------------------------------------------
// Small vector and SDF helpers.

use crate::vec3::{add, cross, dot, norm, scale, sub, V3};
const INF: f64 = f64::INFINITY;
/// Radius of the smooth unions (fillets) inside a bone, mm.
const SMOOTH_K: f64 = 2.5;
/// In-plane edge of the tiles that are tested as a whole, mm.
const TILE_MM: f64 = 5.0;
/// Safety factor on the Lipschitz constant of the approximate distance functions.
const LIPSCHITZ_SAFETY: f64 = 1.25;
/// Extra cortical thickness at the endplate rims, mm.
const RIM_EXTRA_MM: f64 = 1.3;
/// Step of the finite differences for surface normals, mm.
const GRAD_EPS: f64 = 0.05;

fn normalize(a: V3) -> V3 {
    scale(a, 1.0 / norm(a))
}
#[inline]
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    a + (b - a) * t
}
/// Polynomial smooth minimum (1-Lipschitz).
#[inline]
fn smin(a: f64, b: f64, k: f64) -> f64 {
    let h = (k - (a - b).abs()).max(0.0) / k;
    a.min(b) - h * h * k * 0.25
}
#[inline]
fn smax(a: f64, b: f64, k: f64) -> f64 {
    -smin(-a, -b, k)
}
#[inline]
fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}
/// Approximate signed distance to an ellipse with semi-axes a, b (exact on
/// the axes, accurate near the curve).
#[inline]
fn ellipse_sdf(u: f64, v: f64, a: f64, b: f64) -> f64 {
    let (pu, pv) = (u / a, v / b);
    let k0 = (pu * pu + pv * pv).sqrt();
    let (qu, qv) = (pu / a, pv / b);
    let k1 = (qu * qu + qv * qv).sqrt();
    if k1 < 1e-12 {
        return -a.min(b);
    }
    k0 * (k0 - 1.0) / k1
}
/// Distance of p to the segment a–b.
#[inline]
fn segment_dist(p: V3, a: V3, b: V3) -> f64 {
    let ab = sub(b, a);
    let ap = sub(p, a);
    let t = (dot(ap, ab) / dot(ab, ab).max(1e-12)).clamp(0.0, 1.0);
    norm(sub(ap, scale(ab, t)))
}
/// Rounded box from per-axis excess distances `q` (already reduced by the rounding radius).
#[inline]
fn rounded(q: V3, r: f64) -> f64 {
    let out = (q[0].max(0.0).powi(2) + q[1].max(0.0).powi(2) + q[2].max(0.0).powi(2)).sqrt();
    out + q[0].max(q[1]).max(q[2]).min(0.0) - r
}
/// Fraction of a voxel inside a surface at signed distance d (negative
/// inside), for a voxel of extent w along the normal.
#[inline]
fn coverage(d: f64, w: f64) -> f64 {
    (0.5 - d / w).clamp(0.0, 1.0)
}

/// A fast sine (|error| < 2e-6), for the smooth density fields.
#[inline]
fn fast_sin(x: f64) -> f64 {
    use std::f64::consts::{FRAC_PI_2, PI, TAU};
    let mut x = x - TAU * (x / TAU).round();
    if x > FRAC_PI_2 {
        x = PI - x;
    } else if x < -FRAC_PI_2 {
        x = -PI - x;
    }
    let x2 = x * x;
    x * (1.0
        + x2 * (-1.0 / 6.0 + x2 * (1.0 / 120.0 + x2 * (-1.0 / 5040.0 + x2 * (1.0 / 362_880.0)))))
}

/// SplitMix64: the seeded random source of the anatomy and the noise.
struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
}
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
/// Two independent standard normal values for a key (Marsaglia's polar
/// method on a hash of the key: deterministic, no trigonometry).
#[inline]
fn gauss_pair(seed: u64, key: u64) -> (f64, f64) {
    let mut h = seed ^ key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    loop {
        h = mix64(h.wrapping_add(0xD1B5_4A32_D192_ED03));
        let u = (h >> 32) as f64 * (2.0 / 4_294_967_296.0) - 1.0;
        let v = (h & 0xFFFF_FFFF) as f64 * (2.0 / 4_294_967_296.0) - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            let f = (-2.0 * s.ln() / s).sqrt();
            return (u * f, v * f);
        }
    }
}

/// A smooth random field in [−1, 1]: three plane waves of 25–60 mm wavelength.
struct Field {
    k: [V3; 3],
    phase: [f64; 3],
    amp: [f64; 3],
}
impl Field {
    fn new(rng: &mut Rng) -> Field {
        let mut k = [[0.0; 3]; 3];
        let mut phase = [0.0; 3];
        let mut amp = [0.0; 3];
        for j in 0..3 {
            let dir = normalize([
                rng.range(-1.0, 1.0),
                rng.range(-1.0, 1.0),
                rng.range(-1.0, 1.0) + 1e-3,
            ]);
            let wavelength = rng.range(25.0, 60.0);
            k[j] = scale(dir, std::f64::consts::TAU / wavelength);
            phase[j] = rng.range(0.0, std::f64::consts::TAU);
            amp[j] = rng.range(0.5, 1.0);
        }
        let total: f64 = amp.iter().sum();
        for a in &mut amp {
            *a /= total;
        }
        Field { k, phase, amp }
    }
    fn at(&self, p: V3) -> f64 {
        (0..3)
            .map(|j| self.amp[j] * fast_sin(dot(self.k[j], p) + self.phase[j]))
            .sum()
    }
}

// ---------------------------------------------------------------------------
// Geometry: frames and primitives.

/// An orthonormal local frame (u = left, v = posterior, w = superior along the column).
#[derive(Clone, Copy, Debug)]
struct Frame {
    o: V3,
    u: V3,
    v: V3,
    w: V3,
}
/// Two orthonormal axes rotated by `angle` in their plane (`a` toward `b`).
fn rotated(a: V3, b: V3, angle: f64) -> (V3, V3) {
    let (s, c) = angle.sin_cos();
    (add(scale(a, c), scale(b, s)), sub(scale(b, c), scale(a, s)))
}

impl Frame {
    /// A frame rotated by `phi` about the x axis: w = (0, sin φ, cos φ).
    fn sagittal(o: V3, phi: f64) -> Frame {
        let (s, c) = phi.sin_cos();
        Frame {
            o,
            u: [1.0, 0.0, 0.0],
            v: [0.0, c, -s],
            w: [0.0, s, c],
        }
    }
    #[inline]
    fn to_local(self, p: V3) -> V3 {
        let d = sub(p, self.o);
        [dot(d, self.u), dot(d, self.v), dot(d, self.w)]
    }
    fn to_world(self, q: V3) -> V3 {
        add(
            self.o,
            add(
                scale(self.u, q[0]),
                add(scale(self.v, q[1]), scale(self.w, q[2])),
            ),
        )
    }
    /// The frame tilted by `psi` about its own v axis (w toward u).
    fn tilted(self, psi: f64) -> Frame {
        let (w, u) = rotated(self.w, self.u, psi);
        Frame { w, u, ..self }
    }
    /// The frame turned by `theta` about its own w axis (u toward v).
    fn turned(self, theta: f64) -> Frame {
        let (u, v) = rotated(self.u, self.v, theta);
        Frame { u, v, ..self }
    }
    fn shifted(&self, dw: f64) -> Frame {
        Frame {
            o: add(self.o, scale(self.w, dw)),
            ..*self
        }
    }
}

/// Oriented rounded box: centre, axes, half extents (including the rounding radius).
#[derive(Clone, Debug)]
struct RBox {
    c: V3,
    ax: [V3; 3],
    half: V3,
    r: f64,
}
impl RBox {
    /// Axis-aligned box spanning `lo`..`hi`.
    fn aligned(lo: V3, hi: V3, r: f64) -> RBox {
        let half = scale(sub(hi, lo), 0.5);
        RBox {
            c: scale(add(lo, hi), 0.5),
            ax: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            r: r.min(half[0]).min(half[1]).min(half[2]),
            half,
        }
    }
    /// A bar from a to b; `up` fixes the height axis; half thickness and half height across it.
    fn bar(a: V3, b: V3, up: V3, half_thick: f64, half_height: f64, r: f64) -> RBox {
        let e1 = normalize(sub(b, a));
        let e3 = normalize(sub(up, scale(e1, dot(up, e1))));
        let e2 = cross(e3, e1);
        let half = [0.5 * norm(sub(b, a)), half_thick, half_height];
        RBox {
            c: scale(add(a, b), 0.5),
            ax: [e1, e2, e3],
            r: r.min(half[0]).min(half[1]).min(half[2]),
            half,
        }
    }
    #[inline]
    fn sdf(&self, q: V3) -> f64 {
        let d = sub(q, self.c);
        let r = self.r;
        rounded(
            [
                dot(d, self.ax[0]).abs() - (self.half[0] - r),
                dot(d, self.ax[1]).abs() - (self.half[1] - r),
                dot(d, self.ax[2]).abs() - (self.half[2] - r),
            ],
            r,
        )
    }
    fn bounds(&self) -> (V3, f64) {
        (self.c, norm(self.half))
    }
}

/// A vertebral body (or the tapering sacral core): elliptic cross-section
/// with a flat posterior wall at `flat · b`, linear taper from the top
/// (a0, b0) to the bottom (a1, b1), a concave waist and rounded edges.
#[derive(Clone, Debug)]
struct BodyShape {
    a0: f64,
    b0: f64,
    a1: f64,
    b1: f64,
    wc: f64,
    hh: f64,
    flat: f64,
    waist: f64,
    re: f64,
    rim_top: bool,
    rim_bottom: bool,
    lip: f64,
}
impl BodyShape {
    fn new(top: (f64, f64), bottom: (f64, f64), wc: f64, hh: f64, waist: f64, re: f64) -> Self {
        let slope = (top.0 - bottom.0).abs().max((top.1 - bottom.1).abs()) / (2.0 * hh);
        BodyShape {
            a0: top.0,
            b0: top.1,
            a1: bottom.0,
            b1: bottom.1,
            wc,
            hh,
            flat: 0.7,
            waist,
            re,
            rim_top: true,
            rim_bottom: true,
            lip: 1.0 / (1.0 + slope * slope).sqrt(),
        }
    }
    #[inline]
    fn axes_at(&self, w: f64) -> (f64, f64) {
        let t = ((self.hh - w) / (2.0 * self.hh)).clamp(0.0, 1.0);
        (lerp(self.a0, self.a1, t), lerp(self.b0, self.b1, t))
    }
    #[inline]
    fn sdf(&self, q: V3) -> f64 {
        let w = q[2] - self.wc;
        let (a, b) = self.axes_at(w);
        let e = ellipse_sdf(q[0], q[1], a, b);
        let mut d2 = smax(e, q[1] - self.flat * b, 4.0);
        let z = w / self.hh;
        d2 += self.waist * (1.0 - z * z).max(0.0);
        d2 *= self.lip;
        let dz = w.abs() - self.hh;
        let (qx, qz) = (d2 + self.re, dz + self.re);
        (qx.max(0.0).powi(2) + qz.max(0.0).powi(2)).sqrt() + qx.max(qz).min(0.0) - self.re
    }
    /// 1 in the thick peripheral ring of an endplate, 0 elsewhere.
    fn rim(&self, q: V3) -> f64 {
        let w = q[2] - self.wc;
        let top = if self.rim_top {
            smoothstep(self.hh - 3.5, self.hh - 0.5, w)
        } else {
            0.0
        };
        let bottom = if self.rim_bottom {
            smoothstep(self.hh - 3.5, self.hh - 0.5, -w)
        } else {
            0.0
        };
        let end = top.max(bottom);
        if end == 0.0 {
            return 0.0;
        }
        let (a, b) = self.axes_at(w);
        let rho = ((q[0] / a).powi(2) + (q[1] / b).powi(2))
            .sqrt()
            .max(q[1] / (self.flat * b));
        end * smoothstep(0.6, 0.9, rho)
    }
    fn bounds(&self) -> (V3, f64) {
        let a = self.a0.max(self.a1);
        let b = self.b0.max(self.b1);
        (
            [0.0, 0.0, self.wc],
            (a * a + b * b + self.hh * self.hh).sqrt(),
        )
    }
}

/// A box whose u half-width and v range change linearly with w (sacral parts).
#[derive(Clone, Debug)]
struct Taper {
    w0: f64,
    w1: f64,
    hu: (f64, f64),
    vmin: (f64, f64),
    vmax: (f64, f64),
    r: f64,
    lip: f64,
}
impl Taper {
    fn new(w0: f64, w1: f64, hu: (f64, f64), vmin: (f64, f64), vmax: (f64, f64), r: f64) -> Self {
        let dw = w1 - w0;
        let su = (hu.1 - hu.0).abs() / dw;
        let sv = ((vmin.1 - vmin.0).abs() + (vmax.1 - vmax.0).abs()) / dw;
        Taper {
            w0,
            w1,
            hu,
            vmin,
            vmax,
            r,
            lip: 1.0 / (1.0 + su.max(sv).powi(2)).sqrt(),
        }
    }
    #[inline]
    fn sdf(&self, q: V3) -> f64 {
        let t = ((q[2] - self.w0) / (self.w1 - self.w0)).clamp(0.0, 1.0);
        let hu = lerp(self.hu.0, self.hu.1, t);
        let vmin = lerp(self.vmin.0, self.vmin.1, t);
        let vmax = lerp(self.vmax.0, self.vmax.1, t);
        let r = self.r;
        rounded(
            [
                (q[0].abs() - (hu - r)) * self.lip,
                ((q[1] - 0.5 * (vmin + vmax)).abs() - (0.5 * (vmax - vmin) - r)) * self.lip,
                (q[2] - 0.5 * (self.w0 + self.w1)).abs() - (0.5 * (self.w1 - self.w0) - r),
            ],
            r,
        )
    }
    fn bounds(&self) -> (V3, f64) {
        let vlo = self.vmin.0.min(self.vmin.1);
        let vhi = self.vmax.0.max(self.vmax.1);
        let hu = self.hu.0.max(self.hu.1);
        let c = [0.0, 0.5 * (vlo + vhi), 0.5 * (self.w0 + self.w1)];
        let h = [hu, 0.5 * (vhi - vlo), 0.5 * (self.w1 - self.w0)];
        (c, norm(h))
    }
}

/// The spinal canal: an elliptic cylinder along w (tapering between w0 and
/// w1, ending below `w_end`).
#[derive(Clone, Debug)]
struct Canal {
    w0: f64,
    w1: f64,
    vc: (f64, f64),
    su: (f64, f64),
    sv: (f64, f64),
    w_end: f64,
}
impl Canal {
    #[inline]
    fn sdf(&self, q: V3) -> f64 {
        let t = ((q[2] - self.w0) / (self.w1 - self.w0)).clamp(0.0, 1.0);
        let e = ellipse_sdf(
            q[0],
            q[1] - lerp(self.vc.0, self.vc.1, t),
            lerp(self.su.0, self.su.1, t),
            lerp(self.sv.0, self.sv.1, t),
        );
        e.max(self.w_end - q[2])
    }
}

#[derive(Clone, Debug)]
enum Shape {
    Body(BodyShape),
    Box(RBox),
    Taper(Taper),
}
impl Shape {
    #[inline]
    fn sdf(&self, q: V3) -> f64 {
        match self {
            Shape::Body(b) => b.sdf(q),
            Shape::Box(b) => b.sdf(q),
            Shape::Taper(t) => t.sdf(q),
        }
    }
    fn bounds(&self) -> (V3, f64) {
        match self {
            Shape::Body(b) => b.bounds(),
            Shape::Box(b) => b.bounds(),
            Shape::Taper(t) => t.bounds(),
        }
    }
}

/// One primitive of a vertebra, with its bounding sphere (local coordinates).
#[derive(Clone, Debug)]
struct Part {
    shape: Shape,
    /// Part of the body (cancellous interior) rather than the posterior elements.
    body: bool,
    bc: V3,
    br: f64,
}
impl Part {
    fn new(shape: Shape, body: bool) -> Part {
        let (bc, br) = shape.bounds();
        Part {
            shape,
            body,
            bc,
            br,
        }
    }
}

/// A vertebra (or the sacrum): smooth union of parts in a local frame, with
/// the canal carved out. `bend` curves the sacrum (v shifts by −bend·w² below w = 0).
#[derive(Clone, Debug)]
struct Vert {
    frame: Frame,
    bend: f64,
    parts: Vec<Part>,
    canal: Canal,
}

struct VertEval {
    d: f64,
    d_body: f64,
    d_post: f64,
    q: V3,
}

impl Vert {
    #[inline]
    fn local(&self, p: V3) -> (V3, f64) {
        let mut q = self.frame.to_local(p);
        if self.bend > 0.0 && q[2] < 0.0 {
            q[1] += self.bend * q[2] * q[2];
            let slope = 2.0 * self.bend * q[2];
            (q, 1.0 / (1.0 + slope * slope).sqrt())
        } else {
            (q, 1.0)
        }
    }
    /// Evaluates the parts whose bit is set in `mask` (the others must be
    /// farther than `cut + SMOOTH_K + 0.5` from p).
    #[inline]
    fn eval(&self, p: V3, cut: f64, mask: u32) -> VertEval {
        let (q, lip) = self.local(p);
        let lim = cut / lip + SMOOTH_K + 0.5;
        let mut acc = INF;
        let mut d_body = INF;
        let mut d_post = INF;
        let mut lb_min = INF;
        for (k, part) in self.parts.iter().enumerate() {
            if mask & (1 << k) == 0 {
                continue;
            }
            let lb = norm(sub(q, part.bc)) - part.br;
            if lb > lim {
                lb_min = lb_min.min(lb);
                continue;
            }
            let d = part.shape.sdf(q);
            if part.body {
                d_body = d_body.min(d);
            } else {
                d_post = d_post.min(d);
            }
            acc = smin(acc, d, SMOOTH_K);
        }
        if acc.is_infinite() {
            return VertEval {
                d: lb_min * lip,
                d_body,
                d_post,
                q,
            };
        }
        acc = acc.max(-self.canal.sdf(q));
        VertEval {
            d: acc * lip,
            d_body,
            d_post,
            q,
        }
    }
    /// World bounding spheres of the parts (in part order).
    fn spheres(&self) -> Vec<(V3, f64)> {
        self.parts
            .iter()
            .map(|part| {
                let mut c = part.bc;
                let mut r = part.br;
                if self.bend > 0.0 && c[2] < 0.0 {
                    let w = c[2].abs() + r;
                    c[1] -= self.bend * c[2] * c[2];
                    r += self.bend * (w * w - c[2] * c[2]);
                }
                (self.frame.to_world(c), r)
            })
            .collect()
    }
}

/// A rib: a chain of capsules, kept `gap` mm away from the guard vertebrae.
#[derive(Clone, Debug)]
struct Rib {
    segs: Vec<(V3, V3)>,
    r: f64,
    guards: Vec<(usize, f64)>,
}

/// An iliac bone: a curved plate (polyline in axial planes that shifts with
/// height) joined to a thick column (the ilium body), kept `gap` mm from the
/// guard objects (sacrum, L4, L5).
#[derive(Clone, Debug)]
struct Ilium {
    side: f64,
    /// Polyline vertices (x·side, y − y_s) at zr = 0, and their curve parameter t in [0, 1].
    verts: Vec<(f64, f64, f64)>,
    y_s: f64,
    z_s: f64,
    column: (V3, V3, f64),
    guards: Vec<(usize, f64)>,
}
impl Ilium {
    /// Height of the iliac crest above S1 at curve parameter t (0 posterior, 1 anterior).
    fn crest(t: f64) -> f64 {
        44.0 - 52.0 * ((t - 0.45) / 0.55).powi(2)
    }
    /// Lower edge of the plate relative to S1.
    fn bottom(t: f64) -> f64 {
        -55.0 - 45.0 * (1.0 - t)
    }
    /// Posterior shift and lateral flare of the plate's polyline at height zr above S1.
    fn shift(zr: f64) -> (f64, f64) {
        (-0.6 * zr.min(0.0) - 0.2 * zr.max(0.0), 0.12 * zr)
    }
    fn raw(&self, p: V3) -> f64 {
        let xs = p[0] * self.side;
        let zr = p[2] - self.z_s;
        let yr = p[1] - self.y_s;
        let (dy, flare) = Ilium::shift(zr);
        // Closest point on the polyline in this axial plane.
        let mut best = (INF, 0.0);
        for w in self.verts.windows(2) {
            let (ax, ay, at) = (w[0].0 + flare * w[0].2, w[0].1 + dy, w[0].2);
            let (bx, by, bt) = (w[1].0 + flare * w[1].2, w[1].1 + dy, w[1].2);
            let (ex, ey) = (bx - ax, by - ay);
            let s = (((xs - ax) * ex + (yr - ay) * ey) / (ex * ex + ey * ey)).clamp(0.0, 1.0);
            let (cx, cy) = (ax + s * ex - xs, ay + s * ey - yr);
            let d2 = cx * cx + cy * cy;
            if d2 < best.0 {
                best = (d2, lerp(at, bt, s));
            }
        }
        let (d2, t) = best;
        let crest = Ilium::crest(t);
        let bottom = Ilium::bottom(t);
        let half_thick = 2.6
            + 8.5 * (1.0 - smoothstep(0.12, 0.42, t))
            + 3.0 * smoothstep(crest - 14.0, crest - 2.0, zr);
        let plate = d2.sqrt() - half_thick;
        let vertical = ((zr - crest) / 1.4).max(bottom - zr);
        let wing = smax(plate, vertical, 3.0);
        let (a, b, r) = self.column;
        smin(wing, segment_dist(p, a, b) - r, 6.0)
    }
}

#[derive(Clone, Debug)]
enum Kind {
    Vert(Box<Vert>),
    Rib(Rib),
    Ilium(Box<Ilium>),
    Blob {
        c: V3,
        r: f64,
        hu: f64,
    },
    /// Metal: a capsule around the segment a–b.
    Rod {
        a: V3,
        b: V3,
        r: f64,
    },
}

/// A structure rendered with partial volume: bones and calcifications.
#[derive(Clone, Debug)]
struct Object {
    label: u8,
    kind: Kind,
    /// World bounding box, widened by the evaluation margin.
    lo: V3,
    hi: V3,
    /// Per-object density offset in [−1, 1].
    level: f64,
    /// World bounding spheres: vertebra parts (in part order), rib segments, the blob.
    spheres: Vec<(V3, f64)>,
}

/// What the renderer needs to know about a point near an object.
struct Hit {
    d: f64,
    /// Cortical thickness here (infinite: uniform object).
    t: f64,
    /// Weight of the posterior-element interior (0: cancellous).
    post: f64,
    /// How far (in distance difference) p is from where `post` changes.
    post_margin: f64,
}

/// A rectangle of voxels in one slice.
struct Tile {
    i: std::ops::Range<usize>,
    j: std::ops::Range<usize>,
    z: f64,
}

impl Tile {
    /// Each voxel of the tile: its index in the slice and its position.
    fn voxels<'a>(&'a self, grid: &'a Grid) -> impl Iterator<Item = (usize, V3)> + 'a {
        let (nx, [sx, sy, _], o) = (grid.dims[0], grid.spacing, grid.origin);
        self.j.clone().flat_map(move |j| {
            let y = o[1] + j as f64 * sy;
            self.i
                .clone()
                .map(move |i| (i + nx * j, [o[0] + i as f64 * sx, y, self.z]))
        })
    }
}

/// Per-thread bone accumulators of one slice.
#[derive(Default)]
struct Scratch {
    /// Covered bone fraction.
    frac: Vec<f32>,
    /// Sum of fraction × HU.
    acc: Vec<f32>,
    /// Smallest signed distance seen (who owns the label).
    best: Vec<f32>,
    /// Covered metal fraction: metal replaces what it covers.
    metal: Vec<f32>,
}
impl Scratch {
    fn reset(&mut self, n: usize) {
        self.frac.clear();
        self.frac.resize(n, 0.0);
        self.acc.clear();
        self.acc.resize(n, 0.0);
        self.best.clear();
        self.best.resize(n, f32::INFINITY);
        self.metal.clear();
        self.metal.resize(n, 0.0);
    }
}

/// Indices [i0, i1) of the voxels whose centre lies in [lo, hi] along one axis.
fn index_range(lo: f64, hi: f64, origin: f64, step: f64, n: usize) -> Option<(usize, usize)> {
    let i0 = ((lo - origin) / step).ceil().clamp(0.0, n as f64) as usize;
    let i1 = (((hi - origin) / step).floor() + 1.0).clamp(0.0, n as f64) as usize;
    (i0 < i1).then_some((i0, i1))
}

/// An intervertebral disc: between two endplate planes, inside a bulging cross-section.
#[derive(Clone, Debug)]
struct Disc {
    up: Frame,
    up_w: f64,
    lo: Frame,
    lo_w: f64,
    mid: Frame,
    a: f64,
    b: f64,
    flat: f64,
}
impl Disc {
    fn contains(&self, p: V3) -> bool {
        if self.up.to_local(p)[2] > self.up_w || self.lo.to_local(p)[2] < self.lo_w {
            return false;
        }
        let q = self.mid.to_local(p);
        smax(
            ellipse_sdf(q[0], q[1], self.a, self.b),
            q[1] - self.flat,
            4.0,
        ) < 0.0
    }
}

/// The column's centre line: a circular arc in the sagittal plane,
/// parameterised by arc length s from L1's superior endplate (s = 0) down.
#[derive(Clone, Copy, Debug)]
struct Arc {
    r: f64,
    phi0: f64,
    oy: f64,
    oz: f64,
    /// Scoliosis: left offset at mid-length, mm, the arc's length, and
    /// the share of the curve's slope the frames tilt by.
    lateral: f64,
    length: f64,
    tilt: f64,
}
impl Arc {
    fn new(length: f64, lordosis_deg: f64, lateral: f64, tilt: f64) -> Arc {
        let total = lordosis_deg.max(0.5).to_radians();
        let r = length / total;
        let phi0 = 0.5 * total;
        let mut arc = Arc {
            r,
            phi0,
            oy: 0.0,
            oz: 0.0,
            lateral,
            length,
            tilt,
        };
        let p = arc.point(0.0);
        arc.oy = -p[1];
        arc.oz = -p[2];
        arc
    }
    fn phi(&self, s: f64) -> f64 {
        self.phi0 - s / self.r
    }
    fn point(&self, s: f64) -> V3 {
        let phi = self.phi(s);
        let h = (0.5 * phi).sin();
        let t = (s / self.length).clamp(0.0, 1.0);
        [
            self.lateral * (std::f64::consts::PI * t).sin(),
            2.0 * self.r * h * h + self.oy,
            self.r * phi.sin() + self.oz,
        ]
    }
    /// The local frame at `s`; in a scoliotic curve tilted with it (w
    /// along the curve, by the `tilt` share) and turned about its axis so
    /// that the body faces the convex side.
    fn frame(&self, s: f64) -> Frame {
        use std::f64::consts::PI;
        let p = self.point(s);
        let t = (s / self.length).clamp(0.0, 1.0);
        // dx/ds; s runs down and w up, so w leans by −dx/ds.
        let slope = self.lateral * PI / self.length * (PI * t).cos();
        Frame::sagittal(p, self.phi(s))
            .tilted((-self.tilt * slope).atan())
            .turned(SCOLIOSIS_TURN_DEG_PER_MM.to_radians() * p[0])
    }
    /// Arc length of the point of the arc nearest to (y, z).
    #[inline]
    fn s_of(&self, y: f64, z: f64) -> f64 {
        let phi = (z - self.oz).atan2(self.r - (y - self.oy));
        self.r * (self.phi0 - phi)
    }
    /// y of the centre line at height z (clamped to the circle).
    fn y_at(&self, z: f64) -> f64 {
        let sphi = ((z - self.oz) / self.r).clamp(-1.0, 1.0);
        let c = (1.0 - sphi * sphi).sqrt();
        self.r * (1.0 - c) + self.oy
    }
}

// Per-level lumbar dimensions (L1..L5), mm.
const BODY_W: [f64; 5] = [42.0, 44.0, 46.0, 48.0, 50.0];
const BODY_D: [f64; 5] = [30.0, 31.0, 32.0, 33.0, 34.0];
const BODY_H: [f64; 5] = [25.0, 26.0, 27.0, 27.0, 27.0];
/// T12/L1, L1/2, L2/3, L3/4, L4/5, L5/S1.
const DISC_H: [f64; 6] = [7.0, 8.0, 9.0, 10.0, 11.0, 10.0];
const CANAL_W: [f64; 5] = [17.0, 17.5, 18.0, 19.0, 20.0];
const CANAL_D: [f64; 5] = [16.0, 15.5, 15.0, 15.0, 15.0];
const PED_W: [f64; 5] = [7.5, 8.5, 10.0, 12.0, 15.0];
const PED_H: [f64; 5] = [15.0, 15.0, 14.5, 14.0, 13.0];
const PED_ANGLE_DEG: [f64; 5] = [8.0, 10.0, 13.0, 17.0, 22.0];
const TP_TIP: [f64; 5] = [33.0, 38.0, 43.0, 42.0, 40.0];
const SP_LEN: [f64; 5] = [26.0, 28.0, 29.0, 28.0, 24.0];
const SP_H: [f64; 5] = [16.0, 18.0, 19.0, 19.0, 17.0];
/// Axial rotation of a scoliotic vertebra per mm of its shift, degrees
/// (the body turns toward the convex side: ~20° at the apex of a curve
/// whose apex lies 40 mm off the midline).
const SCOLIOSIS_TURN_DEG_PER_MM: f64 = 0.5;
/// Facet joint space, mm.
const FACET_GAP: f64 = 1.5;
/// Body A-P depth = `BODY_DEPTH_FACTOR` × ellipse semi-axis b (flat back at 0.7 b).
const BODY_DEPTH_FACTOR: f64 = 1.7;
/// Extra lordotic tilt of the sacrum relative to the arc, degrees.
const SACRAL_EXTRA_TILT_DEG: f64 = 12.0;
/// Length of the sacrum along its axis, mm.
const SACRUM_LEN: f64 = 100.0;
/// Anterior curvature of the sacrum: v shifts by −SACRAL_BEND·w².
const SACRAL_BEND: f64 = 0.0025;
/// Subcutaneous fat thickness, mm.
const FAT_MM: f64 = 14.0;

/// Dimensions of one lumbar level after the per-seed variation.
#[derive(Clone, Copy, Debug)]
struct Level {
    a: f64,
    b: f64,
    hh: f64,
    canal_half_w: f64,
    canal_d: f64,
    ped_w: f64,
    ped_h: f64,
    /// u of the facet joint plane this level's articular processes use.
    art_u: f64,
}

/// Everything needed to render: the arc, the objects and the soft tissues.
struct Anatomy {
    arc: Arc,
    objects: Vec<Object>,
    discs: Vec<Disc>,
    /// Arc lengths separating the segments L1 | L2 | … | L5 | sacrum.
    seg_bounds: [f64; 5],
    levels: [Level; 5],
    z_l1: f64,
    z_s1: f64,
    z_l4: f64,
    z_bif: f64,
    body_yc: f64,
    fields: [Field; 3],
    cancellous: (f64, f64),
    posterior: (f64, f64),
    cortical: (f64, f64),
    t_c: f64,
    noise_sd: f64,
    noise_seed: u64,
    blood: f64,
    spacing: V3,
    /// Half the voxel diagonal: beyond this distance a surface does not touch the voxel.
    cut: f64,
    /// Margin around bounding spheres within which parts must be evaluated.
    row_margin: f64,
    /// Decide whole tiles from one evaluation where possible.
    tiles: bool,
    /// Metal streak artefacts, when asked for.
    streaks: Option<streaks::Streaks>,
}

impl Anatomy {
    fn new(p: &PhantomParams, grid: &Grid) -> Anatomy {
        let mut rng = Rng(p.seed ^ 0x5EED_0F5E_u64.wrapping_mul(0x1000_0000_01B3));
        let var = p.anatomy_variation;
        let jitter = |rng: &mut Rng| 1.0 + var * rng.range(-1.0, 1.0);
        let level_scale: Vec<f64> = (0..6).map(|_| jitter(&mut rng)).collect();
        let disc_scale: Vec<f64> = (0..6).map(|_| jitter(&mut rng)).collect();
        let lordosis = (p.lordosis_deg * (1.0 + 3.0 * var * rng.range(-1.0, 1.0))).clamp(0.0, 85.0);
        let fields = [
            Field::new(&mut rng),
            Field::new(&mut rng),
            Field::new(&mut rng),
        ];

        // Levels and their arc positions.
        let mut levels = [Level {
            a: 0.0,
            b: 0.0,
            hh: 0.0,
            canal_half_w: 0.0,
            canal_d: 0.0,
            ped_w: 0.0,
            ped_h: 0.0,
            art_u: 0.0,
        }; 5];
        let disc_h: Vec<f64> = (0..6).map(|i| DISC_H[i] * disc_scale[i]).collect();
        let mut s_top = [0.0; 5];
        let mut s = 0.0;
        for i in 0..5 {
            let sc = level_scale[i];
            let l = &mut levels[i];
            l.a = 0.5 * BODY_W[i] * sc;
            l.b = BODY_D[i] * sc / BODY_DEPTH_FACTOR;
            l.hh = 0.5 * BODY_H[i] * sc;
            l.canal_half_w = 0.5 * CANAL_W[i] * sc;
            l.canal_d = CANAL_D[i] * sc;
            l.ped_w = PED_W[i] * sc;
            l.ped_h = PED_H[i] * sc;
            l.art_u = l.canal_half_w + 0.5 * l.ped_w + 1.5;
            s_top[i] = s;
            s += 2.0 * l.hh + disc_h[i + 1];
        }
        let s_s1 = s;
        let arc = Arc::new(s_s1, lordosis, p.scoliosis_mm, p.scoliosis_tilt);
        let centre_s = |i: usize| s_top[i] + levels[i].hh;
        let frames: Vec<Frame> = (0..5).map(|i| arc.frame(centre_s(i))).collect();
        let sacral_scale = level_scale[5];
        let phi_s = arc.phi(s_s1) - SACRAL_EXTRA_TILT_DEG.to_radians() * (2.0 - level_scale[5]);
        let sacral_frame = Frame::sagittal(arc.point(s_s1), phi_s);
        // S1 articular processes sit wider than L5's.
        let s1_art_u = 10.5 * sacral_scale + 8.0 * sacral_scale + 1.5;

        let mut objects = Vec::new();
        for i in 0..5 {
            let above = if i == 0 {
                levels[0].art_u
            } else {
                0.5 * (levels[i - 1].art_u + levels[i].art_u)
            };
            let below = if i == 4 {
                0.5 * (levels[4].art_u + s1_art_u)
            } else {
                0.5 * (levels[i].art_u + levels[i + 1].art_u)
            };
            let vert = lumbar(
                i,
                &levels[i],
                frames[i],
                disc_h[i],
                disc_h[i + 1],
                above,
                below,
            );
            objects.push(vert_object(vert, LABEL_L1 + i as u8, rng.range(-1.0, 1.0)));
        }
        let sacrum = sacrum(
            sacral_frame,
            sacral_scale,
            0.5 * (levels[4].art_u + s1_art_u),
            disc_h[5],
        );
        objects.push(vert_object(sacrum, LABEL_SACRUM, rng.range(-1.0, 1.0)));

        // Discs: T12/L1 (above L1 only), L1/2 … L4/5, L5/S1.
        let mut discs = Vec::new();
        {
            let l = &levels[0];
            let f = frames[0];
            discs.push(Disc {
                up: f,
                up_w: l.hh + disc_h[0],
                lo: f,
                lo_w: l.hh - 0.3,
                mid: f.shifted(l.hh + 0.5 * disc_h[0]),
                a: l.a + 0.8,
                b: l.b + 0.8,
                flat: 0.7 * l.b + 0.8,
            });
        }
        for i in 0..5 {
            let up = &levels[i];
            let (lo_frame, lo_w, lo_a, lo_b) = if i < 4 {
                (
                    frames[i + 1],
                    levels[i + 1].hh - 0.3,
                    levels[i + 1].a,
                    levels[i + 1].b,
                )
            } else {
                (sacral_frame, -0.3, 26.0 * sacral_scale, 20.0 * sacral_scale)
            };
            let s_mid = centre_s(i) + up.hh + 0.5 * disc_h[i + 1];
            let (a, b) = (0.5 * (up.a + lo_a), 0.5 * (up.b + lo_b));
            discs.push(Disc {
                up: frames[i],
                up_w: -up.hh + 0.3,
                lo: lo_frame,
                lo_w,
                mid: arc.frame(s_mid),
                a: a + 0.8,
                b: b + 0.8,
                flat: 0.7 * b + 0.8,
            });
        }
        let mut seg_bounds = [0.0; 5];
        for (i, sb) in seg_bounds.iter_mut().enumerate() {
            *sb = centre_s(i) + levels[i].hh + 0.5 * disc_h[i + 1];
        }

        let z_l1 = arc.point(0.0)[2];
        let z_s1 = arc.point(s_s1)[2];
        let z_l4 = frames[3].o[2];
        let z_bif = frames[3].o[2] + 0.3 * levels[3].hh;
        let body_yc = arc.point(0.5 * s_s1)[1] - 22.0;

        if p.ribs {
            // The L1 transverse process tips.
            let l = &levels[0];
            for side in [-1.0, 1.0] {
                let tip = frames[0].to_world([
                    side * TP_TIP[0] * level_scale[0],
                    l.b * 0.7 + 12.0,
                    0.15 * l.hh + 3.0,
                ]);
                let at = |dx: f64, dy: f64, dz: f64| add(tip, [side * dx, dy, dz]);
                let ribs = [
                    // 12th rib: about 5 mm lateral to the L1 transverse process.
                    vec![
                        at(14.0, 14.0, 40.0),
                        at(10.0, 3.0, 5.0),
                        at(35.0, -15.0, -22.0),
                        at(58.0, -50.0, -42.0),
                        at(66.0, -85.0, -50.0),
                    ],
                    // 11th rib: higher and more lateral.
                    vec![
                        at(30.0, 20.0, 70.0),
                        at(40.0, 8.0, 25.0),
                        at(62.0, -20.0, -5.0),
                        at(80.0, -60.0, -25.0),
                        at(85.0, -100.0, -30.0),
                    ],
                ];
                for pts in ribs {
                    let rib = Rib {
                        segs: catmull_rom(&pts, 6),
                        r: 5.0,
                        guards: vec![(0, 4.0), (1, 4.0)],
                    };
                    let spheres: Vec<(V3, f64)> = rib
                        .segs
                        .iter()
                        .map(|&(a, b)| (scale(add(a, b), 0.5), 0.5 * norm(sub(b, a)) + rib.r))
                        .collect();
                    let (lo, hi) = spheres_aabb(&spheres);
                    let level = rng.range(-1.0, 1.0);
                    objects.push(Object {
                        label: LABEL_RIB,
                        kind: Kind::Rib(rib),
                        lo,
                        hi,
                        level,
                        spheres,
                    });
                }
            }
        }

        if p.pelvis {
            let o = sacral_frame.o;
            let base: [(f64, f64); 6] = [
                (40.0, 40.0),
                (55.0, 24.0),
                (61.0, -2.0),
                (80.0, -30.0),
                (104.0, -52.0),
                (117.0, -64.0),
            ];
            let mut len = vec![0.0];
            for w in base.windows(2) {
                let d = ((w[1].0 - w[0].0).powi(2) + (w[1].1 - w[0].1).powi(2)).sqrt();
                len.push(len.last().unwrap() + d);
            }
            let total = *len.last().unwrap();
            let sc = sacral_scale;
            let verts: Vec<(f64, f64, f64)> = base
                .iter()
                .zip(&len)
                .map(|(&(x, y), &l)| (x * sc, y * sc, l / total))
                .collect();
            for side in [-1.0, 1.0] {
                let column = (
                    [side * 64.0 * sc, o[1] + 30.0 * sc, o[2] - 45.0],
                    [side * 82.0 * sc, o[1] - 5.0 * sc, o[2] - 170.0],
                    15.0,
                );
                let ilium = Ilium {
                    side,
                    verts: verts.clone(),
                    y_s: o[1],
                    z_s: o[2],
                    column,
                    guards: vec![(5, 4.5), (4, 4.5), (3, 4.5)],
                };
                // Bounds: the plate over its height range and the column.
                let mut lo = [INF; 3];
                let mut hi = [-INF; 3];
                let mut grow = |q: V3, r: f64| {
                    for k in 0..3 {
                        lo[k] = lo[k].min(q[k] - r);
                        hi[k] = hi[k].max(q[k] + r);
                    }
                };
                for zr in [-100.0, -55.0, 0.0, 44.0] {
                    let (dy, flare) = Ilium::shift(zr);
                    for &(x, y, t) in &verts {
                        grow([side * (x + flare * t), o[1] + y + dy, o[2] + zr], 16.0);
                    }
                }
                grow(column.0, column.2);
                grow(column.1, column.2);
                let level = rng.range(-1.0, 1.0);
                objects.push(Object {
                    label: LABEL_PELVIS,
                    kind: Kind::Ilium(Box::new(ilium)),
                    lo,
                    hi,
                    level,
                    spheres: Vec::new(),
                });
            }
        }

        if p.calcifications {
            let n = 6 + (rng.next_u64() % 4) as usize;
            for _ in 0..n {
                let z = rng.range(z_bif + 5.0, z_l1 + 5.0);
                let (ax, ay, ar) = aorta_at(&arc, &levels, z_l1, z_s1, z);
                let ang = rng.range(-1.4, 1.4);
                let (sa, ca) = f64::sin_cos(ang);
                let c = [ax + (ar - 0.4) * sa, ay - (ar - 0.4) * ca, z];
                let r = rng.range(0.9, 1.6);
                let hu = rng.range(300.0, 550.0);
                objects.push(Object {
                    label: LABEL_CALCIFICATION,
                    kind: Kind::Blob { c, r, hu },
                    lo: sub(c, [r; 3]),
                    hi: add(c, [r; 3]),
                    level: 0.0,
                    spheres: vec![(c, r)],
                });
            }
        }

        if p.pedicle_screws {
            let rod = |a: V3, b: V3, r: f64| {
                let (lo, hi) = spheres_aabb(&[(a, r), (b, r)]);
                Object {
                    label: LABEL_METAL,
                    kind: Kind::Rod { a, b, r },
                    lo,
                    hi,
                    level: 0.0,
                    spheres: vec![(scale(add(a, b), 0.5), 0.5 * norm(sub(b, a)) + r)],
                }
            };
            // L4 and L5: shaft 42 mm (30 mm of it in front of the pedicle's
            // centre), head 10 mm behind the arch, rods joining the heads.
            let mut heads = [[[0.0; 3]; 2]; 2];
            for (n, i) in [3usize, 4].into_iter().enumerate() {
                for (k, side) in [-1.0f64, 1.0].into_iter().enumerate() {
                    let (m, dir) = pedicle_axis(i, &levels[i], side);
                    let at = |t: f64| frames[i].to_world(add(m, scale(dir, t)));
                    objects.push(rod(at(-30.0), at(12.0), 3.25));
                    objects.push(rod(at(12.0), at(22.0), 5.5));
                    heads[n][k] = at(18.0);
                }
            }
            for k in 0..2 {
                let (a, b) = (heads[0][k], heads[1][k]);
                let u = scale(sub(b, a), 1.0 / norm(sub(b, a)));
                objects.push(rod(sub(a, scale(u, 6.0)), add(b, scale(u, 6.0)), 2.75));
            }
        }

        let spacing = grid.spacing;
        let cut = 0.5 * norm(spacing);
        for ob in &mut objects {
            let m = cut + 0.5;
            ob.lo = sub(ob.lo, [m; 3]);
            ob.hi = add(ob.hi, [m; 3]);
        }
        Anatomy {
            arc,
            objects,
            discs,
            seg_bounds,
            levels,
            z_l1,
            z_s1,
            z_l4,
            z_bif,
            body_yc,
            fields,
            cancellous: p.cancellous_hu,
            posterior: p.posterior_hu,
            cortical: p.cortical_hu,
            t_c: p.cortical_thickness_mm,
            noise_sd: p.noise_sd_hu,
            blood: p.blood_hu,
            noise_seed: mix64(p.seed.wrapping_add(0xA5A5_5A5A_0F0F_F0F0)),
            spacing,
            cut,
            row_margin: (cut + GRAD_EPS) / 0.85 + SMOOTH_K + 0.6,
            tiles: true,
            streaks: (p.metal_streaks_hu > 0.0).then(|| streaks::Streaks::new(p.metal_streaks_hu)),
        }
    }

    /// Signed distance to object `i` (exact enough below `cut`; some value ≥ cut beyond).
    fn dist(&self, i: usize, p: V3, cut: f64) -> f64 {
        self.dist_masked(i, p, cut, u32::MAX)
    }

    /// [`dist`](Self::dist) with the vertebra parts restricted to `mask`.
    fn dist_masked(&self, i: usize, p: V3, cut: f64, mask: u32) -> f64 {
        match &self.objects[i].kind {
            Kind::Vert(v) => v.eval(p, cut, mask).d,
            Kind::Rib(r) => {
                let mut d = INF;
                for (k, &(a, b)) in r.segs.iter().enumerate() {
                    if mask & (1 << k.min(31)) != 0 {
                        d = d.min(segment_dist(p, a, b));
                    }
                }
                self.guarded(d - r.r, &r.guards, p, cut)
            }
            Kind::Ilium(il) => self.guarded(il.raw(p), &il.guards, p, cut),
            Kind::Blob { c, r, .. } => norm(sub(p, *c)) - r,
            Kind::Rod { a, b, r } => segment_dist(p, *a, *b) - r,
        }
    }

    /// Keeps `d` at least `gap` away from each guard object.
    fn guarded(&self, mut d: f64, guards: &[(usize, f64)], p: V3, cut: f64) -> f64 {
        if d < cut {
            for &(g, gap) in guards {
                let ob = &self.objects[g];
                if (0..3).any(|a| p[a] < ob.lo[a] - gap || p[a] > ob.hi[a] + gap) {
                    continue;
                }
                let dg = self.dist(g, p, gap + 1.0);
                d = d.max(gap - dg);
            }
        }
        d
    }

    /// Parts (vertebra) or segments (rib) of object `i` that may come
    /// within `cut` of a point less than `r` from `p`; all bits for other objects.
    fn tile_mask(&self, i: usize, p: V3, r: f64) -> u32 {
        let ob = &self.objects[i];
        if matches!(ob.kind, Kind::Ilium(_)) {
            return u32::MAX;
        }
        let reach = r + self.row_margin;
        let mut mask = 0u32;
        for (k, &(c, rc)) in ob.spheres.iter().enumerate() {
            if norm(sub(p, c)) - rc < reach {
                mask |= 1 << k.min(31);
            }
        }
        if matches!(ob.kind, Kind::Blob { .. } | Kind::Rod { .. }) && mask != 0 {
            mask = u32::MAX;
        }
        mask
    }

    fn hit(&self, i: usize, p: V3, cut: f64, mask: u32) -> Hit {
        match &self.objects[i].kind {
            Kind::Vert(v) => {
                let e = v.eval(p, cut, mask);
                if e.d >= cut {
                    return Hit {
                        d: e.d,
                        t: self.t_c,
                        post: 0.0,
                        post_margin: INF,
                    };
                }
                let post = smoothstep(-1.5, 1.5, e.d_body - e.d_post);
                let post_margin = (e.d_body - e.d_post).abs() - 1.5;
                let rim = match &v.parts[0].shape {
                    Shape::Body(b) if post < 1.0 => b.rim(e.q) * (1.0 - post),
                    _ => 0.0,
                };
                Hit {
                    d: e.d,
                    t: self.t_c + RIM_EXTRA_MM * rim,
                    post,
                    post_margin: if post_margin.is_nan() {
                        INF
                    } else {
                        post_margin
                    },
                }
            }
            Kind::Blob { .. } => Hit {
                d: self.dist_masked(i, p, cut, mask),
                t: INF,
                post: 0.0,
                post_margin: INF,
            },
            _ => Hit {
                d: self.dist_masked(i, p, cut, mask),
                t: self.t_c,
                post: 0.0,
                post_margin: INF,
            },
        }
    }

    /// Extent of a voxel along the surface normal of object `i` at p.
    fn normal_width(&self, i: usize, p: V3, d0: f64, mask: u32) -> f64 {
        let mut n = [0.0; 3];
        for (a, na) in n.iter_mut().enumerate() {
            let mut q = p;
            q[a] += GRAD_EPS;
            *na = (self.dist_masked(i, q, self.cut + GRAD_EPS, mask) - d0) / GRAD_EPS;
        }
        let l = norm(n);
        if l.is_nan() || l <= 1e-6 {
            return 2.0 * self.cut / 3f64.sqrt();
        }
        let w: f64 = (0..3)
            .map(|a| (n[a] / l * self.spacing[a]).powi(2))
            .sum::<f64>();
        w.sqrt().max(1e-3)
    }

    #[inline]
    fn mix(&self, field: usize, p: V3, level: f64) -> f64 {
        (0.5 + 0.3 * self.fields[field].at(p) + 0.2 * level).clamp(0.0, 1.0)
    }

    /// Cortical and interior HU at p (before partial volume and noise).
    fn bone_hu(&self, ob: &Object, p: V3, post: f64) -> (f64, f64) {
        if let Kind::Blob { hu, .. } = ob.kind {
            return (hu, hu);
        }
        let cort = lerp(self.cortical.0, self.cortical.1, self.mix(2, p, ob.level));
        let mut inner = lerp(
            self.cancellous.0,
            self.cancellous.1,
            self.mix(0, p, ob.level),
        );
        if post > 0.0 {
            let dense = lerp(self.posterior.0, self.posterior.1, self.mix(1, p, ob.level));
            inner = lerp(inner, dense, post);
        }
        (cort, inner)
    }

    /// Soft tissue (HU, label) along the row (y, z); `sl` holds the per-slice values.
    fn soft_row(
        &self,
        y: f64,
        z: f64,
        sl: &SliceInfo,
        grid: &Grid,
        bg: &mut [f32],
        lab: &mut [u8],
    ) {
        let nx = bg.len();
        let (x0, sx) = (grid.origin[0], grid.spacing[0]);
        let range = |xa: f64, xb: f64| -> (usize, usize) {
            let i0 = ((xa - x0) / sx).ceil().clamp(0.0, nx as f64) as usize;
            let i1 = (((xb - x0) / sx).floor() + 1.0).clamp(0.0, nx as f64) as usize;
            (i0, i1.max(i0))
        };
        bg.fill(HU_AIR as f32);
        lab.fill(LABEL_BACKGROUND);
        let dy = y - self.body_yc;
        // Half-width at this row of an ellipse with semi-axes a, b centred on the body.
        let half = |a: f64, b: f64| -> Option<f64> {
            let t = dy / b;
            (t.abs() < 1.0).then(|| a * (1.0 - t * t).sqrt())
        };
        let band = 3.0 * self.cut;
        let Some(x_out) = half(sl.body_a + band, sl.body_b + band) else {
            return;
        };
        // Fat everywhere inside the outline, soft tissue inside the fat layer.
        let x_in = half(sl.body_a - band, sl.body_b - band);
        if let Some(xi) = x_in {
            let (i0, i1) = range(-xi, xi);
            bg[i0..i1].fill(HU_FAT as f32);
        }
        if let Some(xf) = half(sl.body_a - FAT_MM, sl.body_b - FAT_MM) {
            let (i0, i1) = range(-xf, xf);
            bg[i0..i1].fill(HU_SOFT as f32);
            for &(ex, ey, rx, ry, h) in &sl.ellipses {
                let t = (y - ey) / ry;
                if t.abs() < 1.0 {
                    let hw = rx * (1.0 - t * t).sqrt();
                    let (j0, j1) = range((ex - hw).max(-xf), (ex + hw).min(xf));
                    bg[j0..j1].fill(h as f32);
                }
            }
            if y > sl.spine_y - 45.0 && y < sl.spine_y + 50.0 {
                let (j0, j1) = range(-40.0, 40.0);
                for i in j0..j1 {
                    if let Some((h, l)) = self.spine_soft([x0 + i as f64 * sx, y, z]) {
                        bg[i] = h as f32;
                        lab[i] = l;
                    }
                }
            }
        }
        // Partial volume at the skin.
        let (o0, o1) = range(-x_out, x_out);
        let (n0, n1) = x_in.map_or((o1, o1), |xi| range(-xi, xi));
        let (a2, b2) = (sl.body_a * sl.body_a, sl.body_b * sl.body_b);
        for i in (o0..n0).chain(n1.max(n0)..o1) {
            let x = x0 + i as f64 * sx;
            let r = ellipse_sdf(x, dy, sl.body_a, sl.body_b);
            let (gx, gy) = (x / a2, dy / b2);
            let l = (gx * gx + gy * gy).sqrt().max(1e-12);
            let w = ((gx / l * sx).powi(2) + (gy / l * grid.spacing[1]).powi(2)).sqrt();
            let c = coverage(r, w.max(1e-3));
            bg[i] = (c * HU_FAT + (1.0 - c) * HU_AIR) as f32;
        }
    }

    /// Disc or canal at p, if any.
    fn spine_soft(&self, p: V3) -> Option<(f64, u8)> {
        let s = self.arc.s_of(p[1], p[2]);
        let seg = self.seg_bounds.iter().filter(|&&b| s > b).count();
        for di in [seg, seg + 1] {
            if di < self.discs.len() && self.discs[di].contains(p) {
                return Some((HU_DISC, LABEL_DISC));
            }
        }
        if let Kind::Vert(v) = &self.objects[seg].kind {
            let (q, _) = v.local(p);
            if v.canal.sdf(q) < 0.0 {
                return Some((HU_CSF, LABEL_CANAL));
            }
        }
        None
    }

    fn slice_info(&self, z: f64) -> SliceInfo {
        let below_s1 = (self.z_s1 - z).max(0.0);
        let below_l4 = (self.z_l4 - z).max(0.0);
        let spine_y = self.arc.y_at(z.max(self.z_s1));
        let t = ((self.z_l1 - z) / (self.z_l1 - self.z_s1)).clamp(0.0, 1.0);
        let (l1, l5) = (&self.levels[0], &self.levels[4]);
        let body_a = lerp(l1.a, l5.a, t);
        let body_b = lerp(l1.b, l5.b, t);
        let mut ellipses = Vec::with_capacity(10);
        // Retroperitoneal fat in front of and beside the column.
        ellipses.push((
            0.0,
            spine_y - 12.0,
            body_a + 40.0,
            body_b + 22.0,
            HU_FAT + 10.0,
        ));
        // The column itself (bodies and discs are drawn over it; above L1 it
        // stands for the absent T12).
        ellipses.push((0.0, spine_y - 2.0, body_a + 1.0, body_b + 1.0, HU_SOFT));
        if below_s1 < 40.0 {
            for side in [-1.0, 1.0] {
                ellipses.push((side * 32.0, spine_y + 50.0, 21.0, 19.0, HU_MUSCLE));
            }
        }
        let (rx, ry) = (8.0 + 14.0 * t, 7.0 + 11.0 * t);
        for side in [-1.0, 1.0] {
            ellipses.push((
                side * (body_a + rx + 1.5 + 0.45 * below_s1),
                spine_y + 3.0 - 4.0 * t - 0.5 * below_s1,
                rx,
                ry,
                HU_MUSCLE,
            ));
        }
        if z > self.z_bif - 10.0 {
            ellipses.push((-22.0, spine_y - body_b - 14.0, 12.0, 9.0, self.blood));
        }
        if z > self.z_bif {
            let (ax, ay, ar) = aorta_at(&self.arc, &self.levels, self.z_l1, self.z_s1, z);
            ellipses.push((ax, ay, ar, ar, self.blood));
        } else if z > self.z_bif - 80.0 {
            let dz = self.z_bif - z;
            let (_, ay, _) = aorta_at(&self.arc, &self.levels, self.z_l1, self.z_s1, z);
            for side in [-1.0, 1.0] {
                ellipses.push((
                    side * (8.0 + 0.45 * dz),
                    ay - 0.2 * dz,
                    7.0,
                    7.0,
                    self.blood,
                ));
            }
        }
        SliceInfo {
            body_a: 150.0 + 0.12 * below_l4,
            body_b: 112.0 + 0.18 * below_s1,
            spine_y,
            ellipses,
        }
    }

    /// Renders slice `k` into `ct` and `labels`; `scratch` holds the bone
    /// accumulators (reused between slices).
    fn fill_slice(
        &self,
        grid: &Grid,
        k: usize,
        ct: &mut [f32],
        labels: &mut [u8],
        scratch: &mut Scratch,
    ) {
        let [nx, ny, _] = grid.dims;
        let [sx, sy, sz] = grid.spacing;
        let o = grid.origin;
        let z = o[2] + k as f64 * sz;
        let sl = self.slice_info(z);
        for j in 0..ny {
            let y = o[1] + j as f64 * sy;
            let row = j * nx..(j + 1) * nx;
            self.soft_row(y, z, &sl, grid, &mut ct[row.clone()], &mut labels[row]);
        }
        scratch.reset(nx * ny);
        let tx = ((TILE_MM / sx).round() as usize).max(1);
        let ty = ((TILE_MM / sy).round() as usize).max(1);
        for (c, ob) in self.objects.iter().enumerate() {
            if z < ob.lo[2] || z > ob.hi[2] {
                continue;
            }
            let (Some((i_lo, i_hi)), Some((j_lo, j_hi))) = (
                index_range(ob.lo[0], ob.hi[0], o[0], sx, nx),
                index_range(ob.lo[1], ob.hi[1], o[1], sy, ny),
            ) else {
                continue;
            };
            for tj in (j_lo..j_hi).step_by(ty) {
                for ti in (i_lo..i_hi).step_by(tx) {
                    let tile = Tile {
                        i: ti..(ti + tx).min(i_hi),
                        j: tj..(tj + ty).min(j_hi),
                        z,
                    };
                    self.render_tile(c, grid, &tile, labels, scratch);
                }
            }
        }
        for (idx, v) in ct.iter_mut().enumerate() {
            let f = scratch.frac[idx];
            if f > 0.0 {
                let a = scratch.acc[idx];
                *v = if f >= 1.0 { a / f } else { (1.0 - f) * *v + a };
            }
            let m = scratch.metal[idx].min(1.0);
            if m > 0.0 {
                *v = (1.0 - m) * *v + m * HU_MAX as f32;
            }
        }
        if let Some(st) = &self.streaks {
            st.add(&scratch.metal, nx, ny, [sx, sy], ct);
        }
        if self.noise_sd > 0.0 {
            for j in 0..ny {
                let start = grid.index(0, j, k) as u64;
                let out = &mut ct[j * nx..(j + 1) * nx];
                let mut i = 0;
                while i < nx {
                    let (g0, g1) = gauss_pair(self.noise_seed, start + i as u64);
                    out[i] += (g0 * self.noise_sd) as f32;
                    if i + 1 < nx {
                        out[i + 1] += (g1 * self.noise_sd) as f32;
                    }
                    i += 2;
                }
            }
        }
        for v in ct.iter_mut() {
            *v = v.clamp(HU_MIN as f32, HU_MAX as f32);
        }
    }

    /// Adds object `c` within one tile of a slice. A single evaluation at
    /// the tile centre decides whether the object misses the tile entirely
    /// or covers it with pure interior; only the other tiles are evaluated
    /// voxel by voxel.
    fn render_tile(&self, c: usize, grid: &Grid, tile: &Tile, labels: &mut [u8], s: &mut Scratch) {
        let ob = &self.objects[c];
        let [sx, sy, _] = grid.spacing;
        let o = grid.origin;
        let (i0, i1, j0, j1) = (tile.i.start, tile.i.end, tile.j.start, tile.j.end);
        let centre = [
            o[0] + 0.5 * (i0 + i1 - 1) as f64 * sx,
            o[1] + 0.5 * (j0 + j1 - 1) as f64 * sy,
            tile.z,
        ];
        let rt = 0.5
            * (((i1 - i0 - 1) as f64 * sx).powi(2) + ((j1 - j0 - 1) as f64 * sy).powi(2)).sqrt();
        let mask = self.tile_mask(c, centre, rt);
        if mask == 0 {
            return;
        }
        let cut = self.cut;
        if let Kind::Rod { .. } = ob.kind {
            // Metal replaces what it covers and owns its label.
            for (idx, p) in tile.voxels(grid) {
                let d = self.dist_masked(c, p, cut, mask);
                if d >= cut {
                    continue;
                }
                if d < 0.0 {
                    labels[idx] = ob.label;
                    s.best[idx] = f32::NEG_INFINITY;
                }
                let f = if d > -cut {
                    coverage(d, self.normal_width(c, p, d, mask))
                } else {
                    1.0
                };
                s.metal[idx] += f as f32;
            }
            return;
        }
        if self.tiles && rt > 0.0 {
            let reach = LIPSCHITZ_SAFETY * rt;
            let tc = reach + cut;
            let h = self.hit(c, centre, tc, mask);
            if h.d >= tc {
                return;
            }
            let interior = h.d + self.t_c + RIM_EXTRA_MM < -tc && h.post_margin > 2.0 * reach;
            if interior {
                for (idx, p) in tile.voxels(grid) {
                    let (_, inner) = self.bone_hu(ob, p, h.post);
                    s.frac[idx] += 1.0;
                    s.acc[idx] += inner as f32;
                    let upper = (h.d + reach) as f32;
                    if upper < s.best[idx] {
                        s.best[idx] = upper;
                        labels[idx] = ob.label;
                    }
                }
                return;
            }
        }
        for (idx, p) in tile.voxels(grid) {
            let h = self.hit(c, p, cut, mask);
            if h.d >= cut {
                continue;
            }
            if (h.d as f32) < s.best[idx] {
                s.best[idx] = h.d as f32;
                if h.d < 0.0 {
                    labels[idx] = ob.label;
                }
            }
            let (fb, fi) = if h.d > -cut || (h.d + h.t).abs() < cut {
                let w = self.normal_width(c, p, h.d, mask);
                (coverage(h.d, w), coverage(h.d + h.t, w))
            } else if h.d + h.t < 0.0 {
                (1.0, 1.0)
            } else {
                (1.0, 0.0)
            };
            if fb <= 0.0 {
                continue;
            }
            let (cort, inner) = self.bone_hu(ob, p, h.post);
            s.frac[idx] += fb as f32;
            s.acc[idx] += ((fb - fi) * cort + fi * inner) as f32;
        }
    }
}

/// Per-slice soft-tissue layout.
struct SliceInfo {
    body_a: f64,
    body_b: f64,
    spine_y: f64,
    /// (x, y, rx, ry, HU): muscles and vessels; later entries win.
    ellipses: Vec<(f64, f64, f64, f64, f64)>,
}

/// Centre and radius of the aorta at height z (anterior-left of the bodies).
fn aorta_at(arc: &Arc, levels: &[Level; 5], z_l1: f64, z_s1: f64, z: f64) -> (f64, f64, f64) {
    let t = ((z_l1 - z) / (z_l1 - z_s1)).clamp(0.0, 1.0);
    let b = lerp(levels[0].b, levels[4].b, t);
    (16.0, arc.y_at(z) - b - 17.0, 11.0)
}

/// Catmull–Rom spline through `pts` as a chain of segments.
fn catmull_rom(pts: &[V3], per_span: usize) -> Vec<(V3, V3)> {
    let n = pts.len();
    let get = |i: isize| pts[i.clamp(0, n as isize - 1) as usize];
    let mut out = Vec::new();
    let mut prev = pts[0];
    for i in 0..n - 1 {
        let (p0, p1, p2, p3) = (
            get(i as isize - 1),
            get(i as isize),
            get(i as isize + 1),
            get(i as isize + 2),
        );
        for k in 1..=per_span {
            let t = k as f64 / per_span as f64;
            let (t2, t3) = (t * t, t * t * t);
            let mut q = [0.0; 3];
            for a in 0..3 {
                q[a] = 0.5
                    * (2.0 * p1[a]
                        + (p2[a] - p0[a]) * t
                        + (2.0 * p0[a] - 5.0 * p1[a] + 4.0 * p2[a] - p3[a]) * t2
                        + (3.0 * p1[a] - p0[a] - 3.0 * p2[a] + p3[a]) * t3);
            }
            out.push((prev, q));
            prev = q;
        }
    }
    out
}

fn vert_object(vert: Vert, label: u8, level: f64) -> Object {
    let spheres = vert.spheres();
    let (lo, hi) = spheres_aabb(&spheres);
    Object {
        label,
        kind: Kind::Vert(Box::new(vert)),
        lo,
        hi,
        level,
        spheres,
    }
}

fn spheres_aabb(spheres: &[(V3, f64)]) -> (V3, V3) {
    let mut lo = [INF; 3];
    let mut hi = [-INF; 3];
    for &(c, r) in spheres {
        for a in 0..3 {
            lo[a] = lo[a].min(c[a] - r);
            hi[a] = hi[a].max(c[a] + r);
        }
    }
    (lo, hi)
}

/// Centre and (posterolateral) direction of the axis of lumbar level `i`'s
/// pedicle on `side` (−1 right, +1 left), in the vertebra's frame.
fn pedicle_axis(i: usize, l: &Level, side: f64) -> (V3, V3) {
    let beta = PED_ANGLE_DEG[i].to_radians();
    (
        [
            side * (l.canal_half_w + 0.6 + 0.5 * l.ped_w),
            0.7 * l.b + 3.5,
            0.18 * l.hh,
        ],
        [side * beta.sin(), beta.cos(), 0.0],
    )
}

/// A lumbar vertebra in its frame (origin at the body centre).
/// `disc_above/below`: disc heights; `joint_above/below`: u of the facet joint planes.
fn lumbar(
    i: usize,
    l: &Level,
    frame: Frame,
    disc_above: f64,
    disc_below: f64,
    joint_above: f64,
    joint_below: f64,
) -> Vert {
    let (a, b, hh) = (l.a, l.b, l.hh);
    let vb = 0.7 * b; // posterior wall of the body
    let (cw, cd) = (l.canal_half_w, l.canal_d);
    let (pw, ph) = (l.ped_w, l.ped_h);
    let sc = l.a / (0.5 * BODY_W[i]);
    let up = [0.0, 0.0, 1.0];
    let mut parts = vec![Part::new(
        Shape::Body(BodyShape::new((a, b), (a, b), 0.0, hh, 1.2, 2.0)),
        true,
    )];
    let post = |s: Shape| Part::new(s, false);
    let wl = -0.1 * hh; // lamina centre height
    for side in [-1.0f64, 1.0] {
        // Pedicle: from inside the body to the arch, diverging posteriorly.
        let (m, dir) = pedicle_axis(i, l, side);
        parts.push(post(Shape::Box(RBox::bar(
            sub(m, scale(dir, 7.5)),
            add(m, scale(dir, 7.5)),
            up,
            0.5 * pw,
            0.5 * ph,
            0.45 * pw.min(ph),
        ))));
        // Lamina: from the pedicle to the midline behind the canal.
        let la = [side * (cw + 0.6 + 0.5 * pw), vb + 11.0, wl];
        let lb = [-side * 1.5, vb + cd + 3.5 + 0.3, wl];
        parts.push(post(Shape::Box(RBox::bar(la, lb, up, 3.2, 0.7 * hh, 2.5))));
        // Transverse process.
        let (tp_t, tp_h) = if i == 4 { (5.0, 7.5) } else { (3.0, 5.0) };
        let t0 = [side * (cw + 0.6 + 0.6 * pw), vb + 7.0, 0.15 * hh];
        let t1 = [side * TP_TIP[i] * sc, vb + 12.0, 0.15 * hh + 3.0];
        parts.push(post(Shape::Box(RBox::bar(
            t0,
            t1,
            up,
            tp_t * sc,
            tp_h * sc,
            2.5,
        ))));
        // Superior articular process (lateral member of the joint with the level above).
        let u0 = joint_above + 0.5 * FACET_GAP;
        parts.push(post(Shape::Box(RBox::aligned(
            [
                side * u0 - if side < 0.0 { 6.0 } else { 0.0 },
                vb + 8.0,
                0.1 * hh,
            ],
            [
                side * u0 + if side > 0.0 { 6.0 } else { 0.0 },
                vb + 21.0,
                hh + 0.5 * disc_above + 5.0,
            ],
            2.5,
        ))));
        // Inferior articular process (medial member of the joint with the level below).
        let u1 = joint_below - 0.5 * FACET_GAP;
        parts.push(post(Shape::Box(RBox::aligned(
            [
                side * u1 - if side > 0.0 { 6.0 } else { 0.0 },
                vb + 10.0,
                -hh - 0.5 * disc_below - 5.0,
            ],
            [
                side * u1 + if side < 0.0 { 6.0 } else { 0.0 },
                vb + 21.0,
                -0.3 * hh,
            ],
            2.5,
        ))));
    }
    // Spinous process: posterior and 15° caudal.
    let alpha = 15f64.to_radians();
    let s0 = [0.0, vb + cd + 3.0, wl - 1.0];
    let s1 = add(s0, scale([0.0, alpha.cos(), -alpha.sin()], SP_LEN[i] * sc));
    parts.push(post(Shape::Box(RBox::bar(
        s0,
        s1,
        up,
        3.5,
        0.5 * SP_H[i] * sc,
        3.0,
    ))));
    let canal = Canal {
        w0: 0.0,
        w1: 1.0,
        vc: (vb + 0.5 + 0.5 * cd, vb + 0.5 + 0.5 * cd),
        su: (cw, cw),
        sv: (0.5 * cd, 0.5 * cd),
        w_end: -INF,
    };
    Vert {
        frame,
        bend: 0.0,
        parts,
        canal,
    }
}

/// The sacrum in its frame (origin at the centre of S1's superior endplate,
/// w along the sacral axis). `joint` is the u of the L5/S1 facet joint plane.
fn sacrum(frame: Frame, sc: f64, joint: f64, disc_above: f64) -> Vert {
    let len = SACRUM_LEN * sc;
    let (a0, b0) = (26.0 * sc, 20.0 * sc);
    let (a1, b1) = (11.0 * sc, 8.0 * sc);
    let mut core = BodyShape::new((a0, b0), (a1, b1), -0.5 * len, 0.5 * len, 0.0, 3.0);
    core.rim_bottom = false;
    // Canal: anterior wall 0.5 mm behind the core's posterior wall; tapering.
    let w_lo = -0.9 * len;
    let b_at = |w: f64| lerp(b0, b1, -w / len);
    let (cd0, cd1) = (12.0 * sc, 5.0 * sc);
    let (cw0, cw1) = (11.0 * sc, 4.0 * sc);
    let vfront = |w: f64| 0.7 * b_at(w) + 0.5;
    let cd_at = |w: f64| lerp(cd1, cd0, (w - w_lo) / -w_lo);
    let back = |w: f64| vfront(w) + cd_at(w);
    let canal = Canal {
        w0: w_lo,
        w1: 0.0,
        vc: (vfront(w_lo) + 0.5 * cd1, vfront(0.0) + 0.5 * cd0),
        su: (cw1, cw0),
        sv: (0.5 * cd1, 0.5 * cd0),
        w_end: w_lo,
    };
    let mut parts = vec![
        Part::new(Shape::Body(core), true),
        // Alae (lateral masses, auricular surfaces at their lateral faces).
        Part::new(
            Shape::Taper(Taper::new(
                -0.5 * len,
                -2.0,
                (38.0 * sc, 52.0 * sc),
                (-4.0 * sc, -8.0 * sc),
                (22.0 * sc, 20.0 * sc),
                9.0,
            )),
            true,
        ),
    ];
    // Posterior plate (fused laminae) behind the canal, and the median crest.
    let (pw0, pw1) = (cw1 + 4.0, cw0 + 7.0);
    // Its top stays below L5's inferior articular processes (the L5/S1 interlaminar space).
    let plate_top = -12.0;
    let plate_lo = (back(-0.88 * len) - 1.0, back(plate_top) - 1.0);
    let plate_hi = (plate_lo.0 + 7.0, plate_lo.1 + 8.0);
    parts.push(Part::new(
        Shape::Taper(Taper::new(
            -0.88 * len,
            plate_top,
            (pw0, pw1),
            plate_lo,
            plate_hi,
            2.5,
        )),
        false,
    ));
    parts.push(Part::new(
        Shape::Taper(Taper::new(
            -0.75 * len,
            plate_top - 6.0,
            (2.5, 3.5),
            (plate_hi.0 - 1.0, plate_hi.1 - 1.0),
            (plate_hi.0 + 5.0, plate_hi.1 + 7.0),
            2.0,
        )),
        false,
    ));
    // S1 superior articular processes (lateral members of the L5/S1 facet joints).
    let vb = 0.7 * b0;
    let u0 = joint + 0.5 * FACET_GAP;
    for side in [-1.0f64, 1.0] {
        parts.push(Part::new(
            Shape::Box(RBox::aligned(
                [
                    side * u0 - if side < 0.0 { 7.0 } else { 0.0 },
                    vb + 6.0,
                    -8.0,
                ],
                [
                    side * u0 + if side > 0.0 { 7.0 } else { 0.0 },
                    vb + 20.0,
                    0.5 * disc_above + 2.0,
                ],
                2.5,
            )),
            false,
        ));
    }
    Vert {
        frame,
        bend: SACRAL_BEND,
        parts,
        canal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Writes a slice of the CT as a PGM (window −200..1000 HU), for eyeballing.
    fn dump(ph: &Phantom, axis: usize, index: usize, path: &str) {
        dump_window(ph, axis, index, path, (-200.0, 1000.0))
    }

    fn dump_window(ph: &Phantom, axis: usize, index: usize, path: &str, win: (f32, f32)) {
        let [nx, ny, nz] = ph.ct.dims();
        let (w, h) = match axis {
            0 => (ny, nz),
            1 => (nx, nz),
            _ => (nx, ny),
        };
        let mut out = format!("P5\n{w} {h}\n255\n").into_bytes();
        for r in 0..h {
            for c in 0..w {
                // Superior up (sagittal, coronal), anterior up (axial); patient left on the right.
                let v = match axis {
                    0 => ph.ct.get(index, c, nz - 1 - r),
                    1 => ph.ct.get(nx - 1 - c, index, nz - 1 - r),
                    _ => ph.ct.get(nx - 1 - c, r, index),
                };
                out.push(((v - win.0) / (win.1 - win.0) * 255.0).clamp(0.0, 255.0) as u8);
            }
        }
        std::fs::write(path, out).unwrap();
    }

    /// The mid-sagittal slice as text (anterior left, superior up): `#`
    /// cortical, `+` other bone, `o` disc, `.` canal, `-` soft tissue, `_` fat, ` ` air.
    fn ascii_mid_sagittal(ph: &Phantom, step_mm: f64) -> String {
        let [nx, ny, nz] = ph.ct.dims();
        let sp = ph.ct.grid.spacing;
        let (dy, dz) = (
            ((step_mm / sp[1]).round() as usize).max(1),
            ((step_mm / sp[2]).round() as usize).max(1),
        );
        let x = nx / 2;
        let mut out = String::new();
        for k in (0..nz).rev().step_by(dz) {
            for j in (0..ny).step_by(dy) {
                let v = ph.ct.get(x, j, k);
                let l = ph.labels.get(x, j, k);
                out.push(match (l, v) {
                    (_, v) if v >= 600.0 => '#',
                    (l, _) if is_spine_label(l) => '+',
                    (LABEL_DISC, _) => 'o',
                    (LABEL_CANAL, _) => '.',
                    (_, v) if v > -50.0 => '-',
                    (_, v) if v > -500.0 => '_',
                    _ => ' ',
                });
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn pedicle_screws_are_metal_in_l4_and_l5() {
        let mut p = PhantomParams::demo().realistic();
        p.pedicle_screws = true;
        let ph = generate(&p);
        let metal: Vec<usize> = (0..ph.labels.data.len())
            .filter(|&i| ph.labels.data[i] == LABEL_METAL)
            .collect();
        // Four 6.5 × 42 mm shafts, four heads, two rods: about 12 cm³.
        let mm3 = metal.len() as f64 * ph.ct.grid.voxel_volume_mm3();
        assert!((9_000.0..15_000.0).contains(&mm3), "{mm3} mm³");
        // Metal replaces what it covers: the cores read the scanner's maximum.
        let full = metal.iter().filter(|&&i| ph.ct.data[i] >= 3000.0).count();
        assert!(full * 10 >= metal.len() * 7, "{full} of {}", metal.len());
        // Screws in L4 and L5, rods joining them: all metal lies between
        // L4's top and L5's bottom slice (the rods' ends within 8 slices).
        let z_of = |label: u8| -> Vec<usize> {
            (0..ph.labels.data.len())
                .filter(|&i| ph.labels.data[i] == label)
                .map(|i| ph.labels.grid.coords(i)[2])
                .collect()
        };
        let span = |zs: &[usize]| (*zs.iter().min().unwrap(), *zs.iter().max().unwrap());
        let (l4, l5) = (span(&z_of(4)), span(&z_of(5)));
        let (mlo, mhi) = span(
            &metal
                .iter()
                .map(|&i| ph.labels.grid.coords(i)[2])
                .collect::<Vec<_>>(),
        );
        assert!(
            mlo >= l4.0.min(l5.0).saturating_sub(8) && mhi <= l4.1.max(l5.1) + 8,
            "{mlo}–{mhi} vs {l4:?} {l5:?}"
        );
        // Without the option: no metal at all.
        assert!(!generate(&PhantomParams::demo().realistic())
            .labels
            .data
            .contains(&LABEL_METAL));
    }

    #[test]
    fn metal_streaks_darken_the_bone_between_screws_only_where_metal_is() {
        let mut p = PhantomParams::demo().realistic();
        p.pedicle_screws = true;
        let plain = generate(&p);
        p.metal_streaks_hu = 300.0;
        let streaked = generate(&p);
        // The same anatomy and labels; the CT differs only in slices with metal.
        assert_eq!(plain.labels.data, streaked.labels.data);
        let [nx, ny, nz] = plain.ct.grid.dims;
        let plane = nx * ny;
        let (mut darkest_bone, mut slices_changed) = (0f32, 0);
        for z in 0..nz {
            let range = z * plane..(z + 1) * plane;
            let has_metal = plain.labels.data[range.clone()].contains(&LABEL_METAL);
            let changed = plain.ct.data[range.clone()] != streaked.ct.data[range.clone()];
            assert_eq!(changed, has_metal, "slice {z}");
            slices_changed += usize::from(changed);
            for i in range {
                let l = plain.labels.data[i];
                if l == 4 || l == 5 {
                    darkest_bone = darkest_bone.min(streaked.ct.data[i] - plain.ct.data[i]);
                }
            }
        }
        assert!(slices_changed > 10, "{slices_changed}");
        // The band between the screws runs through the vertebral bodies.
        assert!(darkest_bone < -200.0, "{darkest_bone}");
    }

    #[test]
    #[ignore]
    fn dump_views() {
        let p = PhantomParams::demo();
        let t = Instant::now();
        let ph = generate(&p);
        eprintln!("demo: {:.3} s", t.elapsed().as_secs_f64());
        let [nx, ny, nz] = p.dims;
        dump(&ph, 0, nx / 2, "/tmp/ph_sag.pgm");
        dump(&ph, 1, ny / 2, "/tmp/ph_cor.pgm");
        for (name, k) in [
            ("l1", nz - 20),
            ("l3", nz / 2 + 10),
            ("l5", nz / 3),
            ("s1", nz / 6),
        ] {
            dump(&ph, 2, k, &format!("/tmp/ph_ax_{name}.pgm"));
        }
        let jpost = ((30.0 - ph.ct.grid.origin[1]) / p.spacing_mm[1]) as usize;
        dump(&ph, 1, jpost, "/tmp/ph_cor_post.pgm");
        dump(&ph, 0, nx / 2 + 20, "/tmp/ph_sag_para.pgm");
        dump_window(&ph, 2, nz / 2 + 10, "/tmp/ph_soft_l3.pgm", (-150.0, 150.0));
        dump_window(&ph, 0, nx / 2, "/tmp/ph_soft_sag.pgm", (-150.0, 150.0));
        dump_window(&ph, 2, 12, "/tmp/ph_soft_low.pgm", (-150.0, 150.0));
        eprintln!("spine truth {:.0} mm3", ph.spine_truth().volume_mm3());
    }

    /// 1 mm isotropic grid around the whole spine (L1 to the sacral tip).
    fn whole_spine(seed: u64, variation: f64) -> PhantomParams {
        PhantomParams {
            dims: [130, 150, 316],
            spacing_mm: [1.0; 3],
            fov_centre_mm: [0.0, 28.0, -146.0],
            noise_sd_hu: 0.0,
            anatomy_variation: variation,
            seed,
            ..PhantomParams::demo()
        }
    }

    fn label_volumes_cm3(ph: &Phantom) -> [f64; 256] {
        let mut v = [0.0; 256];
        let vox = ph.labels.grid.voxel_volume_mm3() / 1000.0;
        for &l in &ph.labels.data {
            v[l as usize] += vox;
        }
        v
    }

    fn noise_free(p: PhantomParams) -> PhantomParams {
        PhantomParams {
            noise_sd_hu: 0.0,
            ..p
        }
    }

    /// Centres (mm) of the voxels with a label in `set` that touch a voxel without one.
    fn boundary_points(labels: &Volume<u8>, set: &[u8]) -> Vec<V3> {
        let g = &labels.grid;
        let [nx, ny, nz] = g.dims;
        let inside = |x: isize, y: isize, z: isize| {
            x >= 0
                && y >= 0
                && z >= 0
                && (x as usize) < nx
                && (y as usize) < ny
                && (z as usize) < nz
                && set.contains(&labels.get(x as usize, y as usize, z as usize))
        };
        let mut out = Vec::new();
        for z in 0..nz as isize {
            for y in 0..ny as isize {
                for x in 0..nx as isize {
                    if inside(x, y, z)
                        && !(inside(x - 1, y, z)
                            && inside(x + 1, y, z)
                            && inside(x, y - 1, z)
                            && inside(x, y + 1, z)
                            && inside(x, y, z - 1)
                            && inside(x, y, z + 1))
                    {
                        out.push(g.index_to_lps([x as f64, y as f64, z as f64]));
                    }
                }
            }
        }
        out
    }

    /// Smallest distance (mm) between centres of voxels with labels in `a`
    /// and in `b` (disjoint sets), searched up to `limit_mm` (returned if none closer).
    fn min_distance_mm(labels: &Volume<u8>, a: &[u8], b: &[u8], limit_mm: f64) -> f64 {
        use std::collections::HashMap;
        let cell = |p: V3| -> [i64; 3] { p.map(|v| (v / limit_mm).floor() as i64) };
        let mut buckets: HashMap<[i64; 3], Vec<V3>> = HashMap::new();
        for p in boundary_points(labels, b) {
            buckets.entry(cell(p)).or_default().push(p);
        }
        let mut best = limit_mm;
        for p in boundary_points(labels, a) {
            let c = cell(p);
            for dz in -1..=1 {
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        if let Some(v) = buckets.get(&[c[0] + dx, c[1] + dy, c[2] + dz]) {
                            for q in v {
                                best = best.min(norm(sub(p, *q)));
                            }
                        }
                    }
                }
            }
        }
        best
    }

    const SPINE: [u8; 6] = [1, 2, 3, 4, 5, 6];

    #[test]
    fn deterministic_and_independent_of_threads() {
        let p = PhantomParams {
            dims: [96, 90, 60],
            fov_centre_mm: [10.0, 5.0, -120.0],
            ..PhantomParams::demo()
        };
        let a = generate(&p);
        let b = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| generate(&p));
        assert_eq!(a.ct.data, b.ct.data);
        assert_eq!(a.labels.data, b.labels.data);
        assert!(a.ct.grid.same_as(&p.grid()));
        // Another seed: other noise and density; the same anatomy without variation.
        let fixed = PhantomParams {
            anatomy_variation: 0.0,
            ..p.clone()
        };
        let c = generate(&fixed);
        let d = generate(&PhantomParams { seed: 7, ..fixed });
        assert_ne!(c.ct.data, d.ct.data);
        assert_eq!(c.labels.data, d.labels.data);
        // With variation the anatomy changes with the seed.
        let e = generate(&PhantomParams { seed: 7, ..p });
        assert_ne!(a.labels.data, e.labels.data);
    }

    #[test]
    fn tile_shortcuts_change_nothing() {
        let p = PhantomParams {
            dims: [150, 130, 90],
            spacing_mm: [0.9, 0.9, 1.7],
            fov_centre_mm: [25.0, 5.0, -150.0],
            noise_sd_hu: 0.0,
            ..PhantomParams::demo()
        };
        let fast = render(&p, true);
        let slow = render(&p, false);
        assert_eq!(fast.labels.data, slow.labels.data);
        let worst = fast
            .ct
            .data
            .iter()
            .zip(&slow.ct.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 0.05, "largest difference {worst} HU");
    }

    /// Volume of a body from its cross-section (ellipse minus the part behind
    /// the flat posterior wall at 0.7 b) times its height, ignoring edges and waist.
    fn body_estimate_cm3(level: usize) -> f64 {
        let a = 0.5 * BODY_W[level];
        let b = BODY_D[level] / BODY_DEPTH_FACTOR;
        let theta = 0.7f64.acos();
        let segment = theta - 0.7 * (1.0 - 0.49f64).sqrt();
        (std::f64::consts::PI - segment) * a * b * BODY_H[level] / 1000.0
    }

    #[test]
    fn truth_volume_matches_the_anatomy() {
        let ph = generate(&whole_spine(1, 0.0));
        let v = label_volumes_cm3(&ph);
        // Each lumbar vertebra: the body (≈ 31–42 cm³ from its dimensions,
        // less ~10% for rounded edges and waist) plus 8–16 cm³ of posterior elements.
        let expected = [36.9, 42.4, 47.2, 49.5, 55.2];
        for i in 0..5 {
            let body = body_estimate_cm3(i);
            let got = v[i + 1];
            assert!(
                got > 1.05 * body && got < 1.6 * body,
                "L{}: {got:.1} cm³ vs body {body:.1}",
                i + 1
            );
            assert!(
                (got - expected[i]).abs() < 0.03 * expected[i],
                "L{}: {got:.1} cm³",
                i + 1
            );
        }
        // Sacrum (S1–S5 with alae): 150–190 cm³.
        assert!(v[6] > 150.0 && v[6] < 190.0, "sacrum {:.1}", v[6]);
        let total: f64 = SPINE.iter().map(|&l| v[l as usize]).sum();
        assert!(total > 380.0 && total < 420.0, "total {total:.1} cm³");
        assert!((ph.spine_truth().volume_mm3() / 1000.0 - total).abs() < 1e-6);
        // Discs 7–11 mm high: 70–90 cm³ including T12/L1.
        assert!(v[10] > 65.0 && v[10] < 95.0, "discs {:.1}", v[10]);
        // Per-seed variation stays within ±10%.
        for seed in [2, 3] {
            let t = generate(&whole_spine(seed, 0.03))
                .spine_truth()
                .volume_mm3()
                / 1000.0;
            assert!((t - total).abs() < 0.1 * total, "seed {seed}: {t:.1}");
        }
    }

    #[test]
    fn bone_hu_follows_the_parameters_before_noise() {
        // 0.5 mm isotropic around L3 (and parts of L2, L4).
        let probe = PhantomParams {
            anatomy_variation: 0.0,
            ..noise_free(PhantomParams::demo())
        };
        let l3 = match &Anatomy::new(&probe, &probe.grid()).objects[2].kind {
            Kind::Vert(v) => v.frame.o,
            _ => unreachable!(),
        };
        let p = PhantomParams {
            dims: [120, 170, 80],
            spacing_mm: [0.5; 3],
            fov_centre_mm: [0.0, l3[1] + 28.0, l3[2]],
            ..probe
        };
        let ph = generate(&p);
        let grid = p.grid();
        let an = Anatomy::new(&p, &grid);
        let cut = an.cut;
        let (mut n_cort, mut n_canc, mut n_post, mut n_disc) = (0, 0, 0, 0);
        for (idx, (&l, &v)) in ph.labels.data.iter().zip(&ph.ct.data).enumerate() {
            let v = v as f64;
            if l == LABEL_DISC {
                let c = grid.coords(idx);
                let q = grid.index_to_lps([c[0] as f64, c[1] as f64, c[2] as f64]);
                if (0..an.objects.len()).all(|o| an.dist(o, q, cut) >= cut) {
                    assert_eq!(v, HU_DISC);
                    n_disc += 1;
                }
                continue;
            }
            if !is_spine_label(l) {
                continue;
            }
            let c = grid.coords(idx);
            let q = grid.index_to_lps([c[0] as f64, c[1] as f64, c[2] as f64]);
            let own = (l - 1) as usize;
            if (0..an.objects.len()).any(|o| o != own && an.dist(o, q, cut) < cut) {
                continue;
            }
            let h = an.hit(own, q, cut, u32::MAX);
            assert!(h.d < 0.0);
            if h.d < -cut && h.d + h.t > cut {
                assert!((700.0..=1500.0).contains(&v), "cortex {v}");
                n_cort += 1;
            } else if h.d + h.t < -cut && h.post == 0.0 {
                assert!((160.0..=260.0).contains(&v), "cancellous {v}");
                n_canc += 1;
            } else if h.d + h.t < -cut && h.post == 1.0 {
                assert!((320.0..=480.0).contains(&v), "posterior {v}");
                n_post += 1;
            }
        }
        eprintln!("checked {n_cort} cortical, {n_canc} cancellous, {n_post} posterior, {n_disc} disc voxels");
        assert!(n_cort > 20_000 && n_canc > 100_000 && n_post > 20_000 && n_disc > 50_000);
        // The ranges are used: cortex spans several hundred HU, cancellous tens.
        let truth: Vec<f32> = ph
            .ct
            .data
            .iter()
            .zip(&ph.labels.data)
            .filter(|(_, &l)| is_spine_label(l))
            .map(|(&v, _)| v)
            .collect();
        let max = truth.iter().cloned().fold(f32::MIN, f32::max);
        assert!(max > 1100.0 && max <= 1500.0, "max {max}");
    }

    #[test]
    fn ribs_and_pelvis_keep_clear_of_the_spine() {
        for p in [
            noise_free(PhantomParams::demo()),
            whole_spine(1, 0.0),
            whole_spine(5, 0.1),
        ] {
            let ph = generate(&p);
            let v = label_volumes_cm3(&ph);
            assert!(v[LABEL_RIB as usize] > 1.0, "ribs in view");
            assert!(v[LABEL_PELVIS as usize] > 50.0, "pelvis in view");
            let d = min_distance_mm(&ph.labels, &[LABEL_RIB, LABEL_PELVIS], &SPINE, 5.0);
            assert!(d >= 3.0, "{:?}: {d} mm", p.spacing_mm);
            // ... and the ribs really start close to L1 (3–6 mm).
            let r = min_distance_mm(&ph.labels, &[LABEL_RIB], &[1], 10.0);
            assert!(r < 7.0, "rib to L1 {r} mm");
            let s = min_distance_mm(&ph.labels, &[LABEL_PELVIS], &[6], 10.0);
            assert!(s < 6.5, "ilium to sacrum {s} mm");
        }
    }

    #[test]
    fn dense_bone_is_above_250_hu() {
        let ph = generate(&noise_free(PhantomParams::demo().dense()));
        let truth = ph.spine_truth();
        let [nx, ny, nz] = truth.dims();
        let (mut total, mut low, mut interior_low) = (0usize, 0usize, 0usize);
        for z in 1..nz - 1 {
            for y in 1..ny - 1 {
                for x in 1..nx - 1 {
                    if truth.get(x, y, z) == 0 {
                        continue;
                    }
                    total += 1;
                    if ph.ct.get(x, y, z) >= 250.0 {
                        continue;
                    }
                    low += 1;
                    let interior = truth.get(x - 1, y, z) != 0
                        && truth.get(x + 1, y, z) != 0
                        && truth.get(x, y - 1, z) != 0
                        && truth.get(x, y + 1, z) != 0
                        && truth.get(x, y, z - 1) != 0
                        && truth.get(x, y, z + 1) != 0;
                    if interior {
                        interior_low += 1;
                    }
                }
            }
        }
        eprintln!("dense: {low} of {total} truth voxels below 250 HU ({interior_low} interior)");
        assert_eq!(interior_low, 0);
        assert!((low as f64) < 0.002 * total as f64);
    }

    #[test]
    fn realistic_cancellous_bone_is_100_to_200_hu() {
        let ph = generate(&noise_free(PhantomParams::demo().realistic()));
        let an = Anatomy::new(&ph.params, &ph.ct.grid);
        let grid = &ph.ct.grid;
        let mut n = 0;
        let mut below_150 = 0;
        for (idx, &l) in ph.labels.data.iter().enumerate() {
            if !is_spine_label(l) {
                continue;
            }
            let c = grid.coords(idx);
            let q = grid.index_to_lps([c[0] as f64, c[1] as f64, c[2] as f64]);
            let h = an.hit((l - 1) as usize, q, an.cut, u32::MAX);
            if h.d + h.t < -an.cut && h.post == 0.0 {
                let v = ph.ct.data[idx];
                assert!((100.0..=200.0).contains(&v), "{v}");
                n += 1;
                below_150 += usize::from(v < 150.0);
            }
        }
        assert!(n > 50_000, "{n}");
        // A real share of the core falls below the paper's 150 HU threshold.
        assert!(
            below_150 > n / 5 && below_150 < 4 * n / 5,
            "{below_150} of {n}"
        );
    }

    #[test]
    fn noise_has_the_requested_sd_and_no_bias() {
        let p = PhantomParams {
            dims: [64, 64, 24],
            spacing_mm: [1.0; 3],
            fov_centre_mm: [0.0, -80.0, -100.0],
            noise_sd_hu: 25.0,
            ..PhantomParams::demo()
        };
        let a = generate(&p);
        let b = generate(&noise_free(p));
        let diffs: Vec<f64> =
            a.ct.data
                .iter()
                .zip(&b.ct.data)
                .map(|(x, y)| (x - y) as f64)
                .collect();
        let n = diffs.len() as f64;
        let mean = diffs.iter().sum::<f64>() / n;
        let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!(mean.abs() < 0.3, "mean {mean}");
        assert!((sd - 25.0).abs() < 0.5, "sd {sd}");
    }

    #[test]
    fn on_grid_gives_the_sweeps_grids() {
        let p = PhantomParams::demo().on_grid(0.8, 2.0, 179.2);
        assert_eq!(p.dims, [223, 208, 120]);
        assert_eq!(p.spacing_mm, [0.8, 0.8, 2.0]);
        assert_eq!(p.fov_centre_mm, [0.0, -2.0, 10.0 - 0.5 * 119.0 * 2.0]);
        assert_eq!(
            PhantomParams::demo().on_grid(0.8, 2.0, 110.0).dims,
            [137, 137, 120]
        );
        p.validate().unwrap();
    }

    /// The scoliotic column: L3's centroid 30 mm to the left (+x in LPS),
    /// L1 and the sacrum, near the curve's ends, much less; the canal moves
    /// with its vertebra; the vertebrae tilt with the curve.
    #[test]
    fn scoliosis_shifts_the_column_to_the_left() {
        let ph = generate(&PhantomParams {
            scoliosis_mm: 30.0,
            ..whole_spine(1, 0.0)
        });
        let g = &ph.labels.grid;
        let mean_x = |label: u8| {
            let (mut sum, mut n) = (0.0, 0usize);
            for (idx, _) in ph
                .labels
                .data
                .iter()
                .enumerate()
                .filter(|(_, &l)| l == label)
            {
                let c = g.coords(idx);
                sum += g.index_to_lps([c[0] as f64, c[1] as f64, c[2] as f64])[0];
                n += 1;
            }
            sum / n as f64
        };
        let (l1, l3, sacrum) = (mean_x(LABEL_L1), mean_x(LABEL_L1 + 2), mean_x(LABEL_SACRUM));
        assert!((l3 - 30.0).abs() < 3.0, "L3 at x = {l3}");
        assert!(l1 < 15.0 && sacrum.abs() < 8.0, "L1 {l1}, sacrum {sacrum}");
        assert!((mean_x(LABEL_CANAL) - 15.0).abs() < 10.0);
        // Tilted with the curve (~25° at L2 and L4), each vertebra's
        // endplates are perpendicular to it: L2's rise to the left (+x; the
        // curve heads back to the midline above it), L4's to the right. A
        // vertebra is wider than tall, so its upper half lies on the side its
        // endplates rise toward (4–7 mm); untilted, above its lower half.
        let lean = |ph: &Phantom, label: u8| {
            let g = &ph.labels.grid;
            let pts: Vec<[f64; 3]> = ph
                .labels
                .data
                .iter()
                .enumerate()
                .filter(|(_, &l)| l == label)
                .map(|(idx, _)| {
                    let c = g.coords(idx);
                    g.index_to_lps([c[0] as f64, c[1] as f64, c[2] as f64])
                })
                .collect();
            let mid = pts.iter().map(|p| p[2]).sum::<f64>() / pts.len() as f64;
            let half = |up: bool| {
                let xs: Vec<f64> = pts
                    .iter()
                    .filter(|p| (p[2] > mid) == up)
                    .map(|p| p[0])
                    .collect();
                xs.iter().sum::<f64>() / xs.len() as f64
            };
            half(true) - half(false)
        };
        let (l2, l4) = (lean(&ph, LABEL_L1 + 1), lean(&ph, LABEL_L1 + 3));
        assert!(
            l2 > 2.5 && l4 < -2.5,
            "L2's upper half {l2} mm to the left, L4's {l4} mm"
        );
        let level = generate(&PhantomParams {
            scoliosis_mm: 30.0,
            scoliosis_tilt: 0.0,
            ..whole_spine(1, 0.0)
        });
        for label in [LABEL_L1 + 1, LABEL_L1 + 3] {
            let d = lean(&level, label);
            assert!(
                d.abs() < 1.0,
                "untilted vertebra {label}: upper half {d} mm to the left"
            );
        }
        assert!(PhantomParams {
            scoliosis_mm: 80.0,
            ..PhantomParams::demo()
        }
        .validate()
        .is_err());
        assert!(PhantomParams {
            scoliosis_tilt: 1.5,
            ..PhantomParams::demo()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn anatomy_is_in_lps_with_lordosis() {
        let ph = generate(&whole_spine(1, 0.0));
        let g = &ph.labels.grid;
        // Centroids and most posterior points per label.
        let mut sum = [[0.0f64; 3]; 7];
        let mut count = [0usize; 7];
        let mut back = [[f64::MIN; 3]; 7];
        for (idx, &l) in ph.labels.data.iter().enumerate() {
            if !is_spine_label(l) {
                continue;
            }
            let c = g.coords(idx);
            let p = g.index_to_lps([c[0] as f64, c[1] as f64, c[2] as f64]);
            let l = l as usize;
            for a in 0..3 {
                sum[l][a] += p[a];
            }
            count[l] += 1;
            if p[1] > back[l][1] {
                back[l] = p;
            }
        }
        let cen: Vec<V3> = (1..=6)
            .map(|l| scale(sum[l], 1.0 / count[l] as f64))
            .collect();
        for l in 0..6 {
            assert!(cen[l][0].abs() < 0.5, "midline {:?}", cen[l]);
            if l > 0 {
                assert!(cen[l][2] < cen[l - 1][2] - 25.0, "L{} below L{}", l + 1, l);
            }
        }
        // The spinous processes point posteriorly (+y), in the midline.
        for l in 1..=5 {
            assert!(
                back[l][1] > cen[l - 1][1] + 30.0 && back[l][0].abs() < 4.0,
                "{:?}",
                back[l]
            );
        }
        // Lordosis: L3 lies anterior (−y) of L1 and L5.
        assert!(cen[2][1] < cen[0][1] - 5.0 && cen[2][1] < cen[4][1] - 5.0);
        // Soft tissue anterior to the spine, air behind the back (paper field of view).
        let paper = PhantomParams::paper_grid().grid();
        let mid = paper.index_to_lps([256.0, 0.0, 160.0]);
        assert!(mid[1] < -140.0);
    }

    #[test]
    fn labels_are_documented_and_truth_is_the_spine() {
        let ph = generate(&PhantomParams::demo());
        let names = Phantom::label_names();
        let mut seen = [false; 256];
        for &l in &ph.labels.data {
            seen[l as usize] = true;
        }
        for (l, s) in seen.iter().enumerate() {
            if *s {
                assert!(names.iter().any(|(n, _)| *n as usize == l), "label {l}");
            }
        }
        for l in [0, 1, 2, 3, 4, 5, 6, 10, 11, 20, 21] {
            assert!(seen[l], "label {l} missing from the demo");
        }
        let truth = ph.spine_truth();
        for (t, l) in truth.data.iter().zip(&ph.labels.data) {
            assert_eq!(*t == 1, (1..=6).contains(l));
        }
        assert_eq!(ph.mask_of(&SPINE).data, truth.data);
        assert!(ph.bone().count() > truth.count());
        // The demo's posterior air and the L1 top are in view.
        let g = &ph.ct.grid;
        assert!(ph.ct.get(g.dims[0] / 2, g.dims[1] - 1, g.dims[2] / 2) < -900.0);
    }

    #[test]
    fn vertebrae_do_not_overlap() {
        let p = whole_spine(1, 0.0);
        let grid = p.grid();
        let an = Anatomy::new(&p, &grid);
        let mut inside_two = 0;
        let mut checked = 0;
        for k in (0..grid.dims[2]).step_by(2) {
            for j in (0..grid.dims[1]).step_by(2) {
                for i in (0..grid.dims[0]).step_by(2) {
                    let q = grid.index_to_lps([i as f64, j as f64, k as f64]);
                    // Within 0.4 mm of two vertebrae: touching (facet joints keep 1.5 mm).
                    let n = (0..6).filter(|&o| an.dist(o, q, 1.0) < 0.4).count();
                    inside_two += usize::from(n > 1);
                    checked += usize::from(n > 0);
                }
            }
        }
        assert!(checked > 40_000);
        assert_eq!(inside_two, 0);
    }

    #[test]
    fn partial_volume_blurs_edges() {
        let ph = generate(&noise_free(PhantomParams::demo()));
        // Voxels outside the truth but touching it carry some bone.
        let truth = ph.spine_truth();
        let [nx, ny, nz] = truth.dims();
        let mut mixed = 0;
        let mut edge = 0;
        for z in 1..nz - 1 {
            for y in 1..ny - 1 {
                for x in 1..nx - 1 {
                    if truth.get(x, y, z) != 0 || truth.get(x + 1, y, z) == 0 {
                        continue;
                    }
                    edge += 1;
                    let v = ph.ct.get(x, y, z);
                    if v > 120.0 && v < 700.0 {
                        mixed += 1;
                    }
                }
            }
        }
        assert!(mixed * 3 > edge, "{mixed} of {edge}");
    }

    #[test]
    fn parameters_are_validated() {
        let ok = PhantomParams::demo();
        assert!(ok.validate().is_ok());
        assert!(PhantomParams::paper_grid().validate().is_ok());
        let bad = [
            PhantomParams {
                dims: [0, 10, 10],
                ..ok.clone()
            },
            PhantomParams {
                spacing_mm: [0.5, -1.0, 1.0],
                ..ok.clone()
            },
            PhantomParams {
                cancellous_hu: (200.0, 100.0),
                ..ok.clone()
            },
            PhantomParams {
                noise_sd_hu: f64::NAN,
                ..ok.clone()
            },
            PhantomParams {
                lordosis_deg: 120.0,
                ..ok.clone()
            },
            PhantomParams {
                cortical_thickness_mm: 0.0,
                ..ok.clone()
            },
        ];
        for p in bad {
            assert!(matches!(p.validate(), Err(Error::Parameter(_))), "{p:?}");
        }
        // Presets.
        let d = ok.clone().dense();
        assert!(d.cancellous_hu.0 >= 250.0 && d.posterior_hu.0 >= 250.0);
        assert_eq!(ok.clone().realistic().cancellous_hu, (100.0, 200.0));
        let g = PhantomParams::paper_grid();
        assert_eq!(g.dims, [512, 512, 320]);
        assert_eq!(g.spacing_mm, [0.5, 0.5, 1.0]);
        // A straight spine works too.
        let straight = generate(&PhantomParams {
            lordosis_deg: 0.0,
            dims: [64, 64, 40],
            ..ok
        });
        assert!(straight.spine_truth().count() > 0);
    }

    #[test]
    fn mid_sagittal_view_shows_the_column() {
        let ph = generate(&noise_free(PhantomParams::demo()));
        let art = ascii_mid_sagittal(&ph, 3.0);
        eprintln!("{art}");
        let rows: Vec<&str> = art.lines().collect();
        // Every third of the column shows bone, a disc and the canal.
        let bone_rows = rows.iter().filter(|r| r.contains('#')).count();
        assert!(
            bone_rows * 10 > rows.len() * 7,
            "{bone_rows} of {}",
            rows.len()
        );
        assert!(rows.iter().filter(|r| r.contains('o')).count() >= 10);
        assert!(rows.iter().filter(|r| r.contains('.')).count() * 10 > rows.len() * 8);
        // Bone lies posterior (right) of the anterior soft tissue in each row with a disc.
        for r in rows.iter().filter(|r| r.contains('o')) {
            let disc = r.find('o').unwrap();
            let canal = r.rfind('.').unwrap_or(0);
            assert!(disc < canal, "{r}");
        }
    }

    /// Prints the label volumes and clearances (`--ignored --nocapture`).
    #[test]
    #[ignore]
    fn print_anatomy_numbers() {
        let ph = generate(&whole_spine(1, 0.0));
        let v = label_volumes_cm3(&ph);
        for (l, name) in Phantom::label_names() {
            eprintln!("{name:>22}: {:7.1} cm³", v[*l as usize]);
        }
        eprintln!(
            "spine truth: {:.1} cm³",
            ph.spine_truth().volume_mm3() / 1000.0
        );
        for (a, b, name) in [
            (&[LABEL_RIB][..], &SPINE[..], "rib–spine"),
            (&[LABEL_PELVIS][..], &SPINE[..], "ilium–spine"),
            (&[LABEL_PELVIS][..], &[LABEL_SACRUM][..], "ilium–sacrum"),
            (
                &[LABEL_CALCIFICATION][..],
                &SPINE[..],
                "calcification–spine",
            ),
        ] {
            eprintln!("{name}: {:.2} mm", min_distance_mm(&ph.labels, a, b, 30.0));
        }
    }
}
