//! Metal artefact reduction by a beam-hardening correction fitted to the
//! image (after Park et al. 2015, "Metal artifact reduction for
//! polychromatic X-ray CT based on a beam-hardening corrector").
//!
//! Streaks around implants come from the rays that cross metal: the beam
//! hardens in metal, so the measured line integral falls short of the true
//! one by about `k · L²` (L: the ray's path through metal), and filtered
//! back-projection spreads that error along the rays — dark bands between
//! two screws, bright flanks beside them. On pedicle-screw CT the bright
//! streaks read as bone in the muscles and enclose soft tissue that the fill
//! takes for cancellous bone; the dark band reads as a disc inside the body.
//!
//! Without the scanner's raw data, each axial slice's metal (CT above
//! `metal_above_hu`; the pixels beside it part metal, read linearly from
//! `rim_tissue_hu`) is projected (parallel beam, `views` over 180°): `L`
//! per ray, and the image of the error's shape `F = FBP(L²)` follows
//! (Shepp-Logan filter, only the rays that cross metal projected). The
//! slice is corrected to `I + k·F`, with one `k` for the whole scan (the
//! metal and the beam are the same in every slice) chosen to minimise the
//! squared gradient of the corrected tissue: streaks are sharp lines that
//! `F` shares, anatomy is not, so `k = −Σ ∇I·∇F / Σ |∇F|²`, over the
//! tissue of the metal's slices more than `fit_clear_mm` from it, both
//! images smoothed by `fit_sigma_mm` (at the pixel scale `F` carries
//! view-sampling ripples and `I` noise, which pulled `k` to a tenth of the
//! right value on the phantom). Unlike
//! interpolating the metal trace, this keeps what the rays through metal
//! saw — bone around a screw that lies in the slice, whose trace spans
//! most views, stays bone. A scan whose streaks do not follow `F` gets
//! `k ≈ 0` and is left nearly as it is; a fitted `k ≤ 0` changes nothing.
//!
//! Not corrected: photon-starvation noise, scatter, out-of-plane effects,
//! anything but the `L²` term. Metal voxels keep their value (the metal step
//! removes them and their rim from the mask).

use crate::segment::Plane;
use crate::volume::Volume;
use rayon::prelude::*;
use serde::Serialize;
use std::f64::consts::PI;

/// Parameters of [`reduce_metal_artefacts`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MarParams {
    /// CT values above this are metal, HU.
    pub metal_above_hu: f32,
    /// Pixels within this of metal are left out of the fit of `k`, mm: the
    /// implant's blurred rim and what the smoothing of the fit spreads of it.
    pub fit_clear_mm: f64,
    /// The fit compares the images smoothed by this Gaussian σ, mm.
    pub fit_sigma_mm: f64,
    /// A pixel next to metal reading this is no part metal; at
    /// `metal_above_hu` it is all metal, HU (bone around a screw: 300).
    pub rim_tissue_hu: f32,
    /// Views over 180°.
    pub views: usize,
    /// The error's shape is computed on pixels at least about this size,
    /// mm (along a finer axis: every `shape_pixel_mm / pixel`-th pixel,
    /// the rest interpolated).
    pub shape_pixel_mm: f64,
    /// Less metal than this in the whole CT is left alone, mm³ (a few
    /// saturated voxels are not an implant).
    pub min_metal_mm3: f64,
    /// Pixels below this are left out of the fit, HU: air, and tissue
    /// that a dark streak pushed to the scanner's floor (its gradient no
    /// longer follows the error).
    pub air_below_hu: f32,
}

impl Default for MarParams {
    fn default() -> Self {
        MarParams {
            metal_above_hu: crate::io::resample::METAL_ABOVE_HU,
            fit_clear_mm: 3.0,
            fit_sigma_mm: 1.5,
            rim_tissue_hu: 300.0,
            views: 180,
            shape_pixel_mm: 1.0,
            min_metal_mm3: 20.0,
            air_below_hu: -1000.0,
        }
    }
}

/// What [`reduce_metal_artefacts`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MarReport {
    /// Axial slices with metal.
    pub slices: usize,
    /// Metal in the CT, mm³.
    pub metal_mm3: f64,
    /// The fitted beam-hardening coefficient `k` (HU·mm of error per mm² of
    /// squared metal path); 0 when the fit found none (nothing corrected).
    pub beam_hardening: f64,
    /// Mean absolute change of the corrected slices' non-metal pixels, HU.
    pub mean_change_hu: f64,
    pub seconds: f64,
}

/// What [`reduce_metal_artefacts`] gives.
#[derive(Clone, Debug)]
pub struct MetalArtefacts {
    /// The CT with the streaks reduced; `None` when the fit found none
    /// (`beam_hardening` 0): the CT as it was is the one to use.
    pub corrected: Option<Volume<f32>>,
    pub report: MarReport,
}

/// The beam-hardening streaks of metal reduced in each slice across axis
/// `axial` (see the module docs), or `None` when the CT holds less metal
/// than `p.min_metal_mm3`.
pub fn reduce_metal_artefacts(
    ct: &Volume<f32>,
    axial: usize,
    p: &MarParams,
) -> Option<MetalArtefacts> {
    reduce_keeping(ct, axial, p, KEEP_SHAPES_BYTES)
}

/// [`reduce_metal_artefacts`], keeping the shapes up to `keep_bytes`.
fn reduce_keeping(
    ct: &Volume<f32>,
    axial: usize,
    p: &MarParams,
    keep_bytes: usize,
) -> Option<MetalArtefacts> {
    let t0 = std::time::Instant::now();
    let plane = Plane::new(ct.grid.dims, axial);
    let (nu, nv) = (plane.nu(), plane.nv());
    // Metal voxels per slice (axial stacks are read in place; most scans
    // have none).
    let counts: Vec<usize> = (0..plane.slices())
        .into_par_iter()
        .map(|k| {
            plane
                .gather(&ct.data, k)
                .iter()
                .filter(|&&h| h > p.metal_above_hu)
                .count()
        })
        .collect();
    let metal_voxels: usize = counts.iter().sum();
    let metal_mm3 = metal_voxels as f64 * ct.grid.voxel_volume_mm3();
    if metal_voxels == 0 || metal_mm3 < p.min_metal_mm3 {
        return None;
    }
    let spacing = [ct.grid.spacing[plane.u], ct.grid.spacing[plane.v]];
    let metal_slices: Vec<usize> = (0..plane.slices()).filter(|&k| counts[k] > 0).collect();
    // The shapes are kept for the correction when they fit in
    // KEEP_SHAPES_BYTES (a lumbar fusion: tens of slices); a long construct
    // on thin slices has them computed again, a batch at a time.
    let keep = metal_slices.len() * nu * nv * 4 <= keep_bytes;
    let shapes: Vec<Fitted> = metal_slices
        .par_iter()
        .filter_map(|&k| {
            let img = plane.gather(&ct.data, k);
            let e = error_shape(&img, nu, nv, spacing, p)?;
            let sums = gradient_sums(&img, &e, nu, nv, spacing, p);
            Some((k, keep.then_some(e.shape), sums))
        })
        .collect();
    let (cross, energy) = shapes
        .iter()
        .fold((0.0, 0.0), |(a, b), (_, _, (c, e))| (a + c, b + e));
    let k = if energy > 0.0 {
        (-cross / energy).max(0.0)
    } else {
        0.0
    };
    let (mut sum, mut n) = (0.0, 0usize);
    let corrected = (k > 0.0).then(|| {
        let mut out = ct.clone();
        for batch in shapes.chunks(BATCH_SLICES) {
            let again: Vec<Option<Vec<f32>>> = batch
                .par_iter()
                .map(|(z, kept, _)| match kept {
                    Some(_) => None,
                    None => error_shape(&plane.gather(&ct.data, *z), nu, nv, spacing, p)
                        .map(|e| e.shape),
                })
                .collect();
            for ((z, kept, _), again) in batch.iter().zip(&again) {
                let Some(shape) = kept.as_ref().or(again.as_ref()) else {
                    continue;
                };
                for j in 0..nv {
                    for i in 0..nu {
                        let at = plane.index(*z, i, j);
                        if out.data[at] <= p.metal_above_hu {
                            // What was not metal does not become metal (the
                            // metal step would widen the implants' gap).
                            let h = out.data[at];
                            let d = (h + k as f32 * shape[i + nu * j]).min(p.metal_above_hu) - h;
                            out.data[at] = h + d;
                            sum += f64::from(d.abs());
                            n += 1;
                        }
                    }
                }
            }
        }
        out
    });
    let report = MarReport {
        slices: shapes.len(),
        metal_mm3,
        beam_hardening: k,
        mean_change_hu: if n > 0 { sum / n as f64 } else { 0.0 },
        seconds: t0.elapsed().as_secs_f64(),
    };
    Some(MetalArtefacts { corrected, report })
}

/// Parallel-beam geometry of one slice: pixel (i, j) lies at
/// ((i − cu)·su, (j − cv)·sv) mm; bin b of a view at offset (b − cs)·ds mm.
struct Geometry {
    nu: usize,
    nv: usize,
    su: f64,
    sv: f64,
    cu: f64,
    cv: f64,
    ds: f64,
    bins: usize,
    cs: f64,
    views: usize,
}

impl Geometry {
    fn new(nu: usize, nv: usize, [su, sv]: [f64; 2], views: usize) -> Self {
        let ds = su.min(sv);
        let half = 0.5 * (nu as f64 * su).hypot(nv as f64 * sv);
        let bins = 2 * (half / ds).ceil() as usize + 3;
        Geometry {
            nu,
            nv,
            su,
            sv,
            cu: 0.5 * (nu as f64 - 1.0),
            cv: 0.5 * (nv as f64 - 1.0),
            ds,
            bins,
            cs: 0.5 * (bins as f64 - 1.0),
            views: views.max(1),
        }
    }

    fn angle(&self, k: usize) -> (f64, f64) {
        let theta = PI * k as f64 / self.views as f64;
        (theta.cos(), theta.sin())
    }

    /// Line integral (value × mm) of a slice padded by one zero pixel on
    /// every side (`pad`, (nu + 2) × (nv + 2)) along the ray of view
    /// (c, s) = (cos θ, sin θ) and bin `b`: bilinear samples every `ds`,
    /// over the part of the ray inside `clip` (padded pixel coordinates,
    /// `[lo, hi)` per axis, within the padded slice; zero outside it).
    fn ray(&self, pad: &[f32], (c, s): (f64, f64), b: usize, clip: [[f64; 2]; 2]) -> f64 {
        let off = (b as f64 - self.cs) * self.ds;
        // Padded pixel coordinates along the ray: p(t) = p0 + t·dp.
        let p0 = [
            off * c / self.su + self.cu + 1.0,
            off * s / self.sv + self.cv + 1.0,
        ];
        let dp = [-s / self.su, c / self.sv];
        let (mut t0, mut t1) = (f64::NEG_INFINITY, f64::INFINITY);
        for a in 0..2 {
            let [lo, hi] = clip[a];
            if dp[a].abs() < 1e-12 {
                if p0[a] < lo || p0[a] >= hi {
                    return 0.0;
                }
            } else {
                let (ta, tb) = ((lo - p0[a]) / dp[a], (hi - 1e-9 - p0[a]) / dp[a]);
                t0 = t0.max(ta.min(tb));
                t1 = t1.min(ta.max(tb));
            }
        }
        if t1 < t0 {
            return 0.0;
        }
        let w = self.nu + 2;
        let first = (t0 / self.ds).ceil() as i64;
        let last = (t1 / self.ds).floor() as i64;
        let mut sum = 0.0f64;
        for q in first..=last {
            let t = q as f64 * self.ds;
            let (fi, fj) = (
                (p0[0] + t * dp[0]).clamp(clip[0][0], clip[0][1]),
                (p0[1] + t * dp[1]).clamp(clip[1][0], clip[1][1]),
            );
            // The + 1 neighbours may be the far padding column or row only
            // when their weight is zero; clamp them.
            let (i0, j0) = (fi as usize, fj as usize);
            let (wx, wy) = ((fi - i0 as f64) as f32, (fj - j0 as f64) as f32);
            let (i1, j1) = ((i0 + 1).min(w - 1), (j0 + 1).min(self.nv + 1));
            let top = pad[i0 + w * j0] * (1.0 - wx) + pad[i1 + w * j0] * wx;
            let bottom = pad[i0 + w * j1] * (1.0 - wx) + pad[i1 + w * j1] * wx;
            sum += f64::from(top * (1.0 - wy) + bottom * wy);
        }
        sum * self.ds
    }

    /// The slice as attenuation relative to air (air and the world outside
    /// read 0), padded by one pixel.
    fn padded(&self, img: &[f32], value: impl Fn(f32) -> f32) -> Vec<f32> {
        let w = self.nu + 2;
        let mut pad = vec![0f32; w * (self.nv + 2)];
        for j in 0..self.nv {
            for i in 0..self.nu {
                pad[i + 1 + w * (j + 1)] = value(img[i + self.nu * j]);
            }
        }
        pad
    }

    /// Ramp-filtered back-projection of sparse projection changes (per view:
    /// (bin, change)), added to `out` (HU).
    /// Only the pixels of `within` (columns, rows: `[start, end)`) are
    /// written.
    ///
    /// With a stride > 1 only every `stride[a]`-th pixel along axis a (from
    /// the box's first) is back-projected and those between are
    /// interpolated bilinearly (the box's last row and column from the
    /// nearest computed ones).
    fn back_project(
        &self,
        changes: &[Vec<(usize, f64)>],
        out: &mut [f32],
        within: [[usize; 2]; 2],
        stride: [usize; 2],
    ) {
        let [[i0, i1], [j0, j1]] = within;
        if i1 <= i0 || j1 <= j0 {
            return;
        }
        let [su_step, sv_step] = stride.map(|s| s.max(1));
        // The computed lattice: (cu, cv) points.
        let (cu, cv) = ((i1 - i0).div_ceil(su_step), (j1 - j0).div_ceil(sv_step));
        let mut coarse = vec![0f32; cu * cv];
        let n = self.bins;
        // Shepp-Logan kernel over offsets −(n − 1)…(n − 1), ÷ ds (the ramp
        // with its highest frequencies damped: fewer ripples from the
        // finite number of views than Ram-Lak's).
        let kernel: Vec<f32> = (0..2 * n - 1)
            .map(|k| {
                let d = k.abs_diff(n - 1) as f64;
                (-2.0 / (PI * PI * (4.0 * d * d - 1.0)) / self.ds) as f32
            })
            .collect();
        let weight = (PI / self.views as f64) as f32;
        let mut q = vec![0f32; n];
        let mut lerp = vec![[0f32; 2]; n];
        for (k, change) in changes.iter().enumerate() {
            if change.is_empty() {
                continue;
            }
            q.iter_mut().for_each(|x| *x = 0.0);
            for &(j, d) in change {
                let d = d as f32 * weight;
                for (x, &c) in q.iter_mut().zip(&kernel[n - 1 - j..2 * n - 1 - j]) {
                    *x += c * d;
                }
            }
            // Linear interpolation between bins as value + slope × fraction,
            // the bin position in 16.16 fixed point: one look-up per pixel.
            for (f, pair) in lerp.iter_mut().enumerate() {
                *pair = [q[f], q[(f + 1).min(n - 1)] - q[f]];
            }
            let (c, s) = self.angle(k);
            let step = (self.su * (su_step as f64) * c / self.ds * 65536.0).round() as i64;
            for (b_row, row) in coarse.chunks_mut(cu).enumerate() {
                let y = ((j0 + sv_step * b_row) as f64 - self.cv) * self.sv;
                let x = (i0 as f64 - self.cu) * self.su;
                // Bins span the diagonal: every pixel's position lies in
                // [1, n − 2].
                let mut b = (((x * c + y * s) / self.ds + self.cs) * 65536.0).round() as i64;
                for r in row.iter_mut() {
                    let [v, slope] = lerp[(b >> 16) as usize];
                    *r += v + slope * ((b & 0xffff) as f32 * (1.0 / 65536.0));
                    b += step;
                }
            }
        }
        // Offset `d` from the box's start on a lattice of `len` points
        // `step` apart: the lattice points around it and the weight of the
        // second.
        let around = |d: usize, step: usize, len: usize| -> (usize, usize, f32) {
            let f = d as f32 / step as f32;
            let a = (f as usize).min(len - 1);
            if a + 1 < len {
                (a, a + 1, f - a as f32)
            } else {
                (a, a, 0.0)
            }
        };
        for j in j0..j1 {
            let (y0, y1, wy) = around(j - j0, sv_step, cv);
            for i in i0..i1 {
                let (x0, x1, wx) = around(i - i0, su_step, cu);
                let top = coarse[x0 + cu * y0] * (1.0 - wx) + coarse[x1 + cu * y0] * wx;
                let bottom = coarse[x0 + cu * y1] * (1.0 - wx) + coarse[x1 + cu * y1] * wx;
                out[i + self.nu * j] += top * (1.0 - wy) + bottom * wy;
            }
        }
    }
}

/// Per view, the runs of bins whose rays cross `pixels` (slice
/// coordinates, mm), as half-open ranges within 1 … bins − 1 (a pixel
/// covers half its projected width either side).
fn trace_runs(g: &Geometry, pixels: &[(f64, f64)]) -> Vec<Vec<(usize, usize)>> {
    (0..g.views)
        .map(|k| {
            let (c, s) = g.angle(k);
            let mut hit = vec![false; g.bins];
            let half_w = 0.5 * ((g.su * c).abs() + (g.sv * s).abs());
            for &(x, y) in pixels {
                let off = x * c + y * s;
                let lo = ((off - half_w) / g.ds + g.cs).floor().max(1.0) as usize;
                let hi = (((off + half_w) / g.ds + g.cs).ceil() as usize).min(g.bins - 2);
                hit[lo..=hi].iter_mut().for_each(|h| *h = true);
            }
            let mut runs = Vec::new();
            let mut b = 0;
            while b < g.bins {
                if hit[b] {
                    let start = b;
                    while hit[b] {
                        b += 1;
                    }
                    runs.push((start, b));
                }
                b += 1;
            }
            runs
        })
        .collect()
}

/// A metal slice: its index, its error shape when kept, its fit sums.
type Fitted = (usize, Option<Vec<f32>>, (f64, f64));

/// The error shapes of all metal slices are kept until `k` is known when
/// they take at most this many bytes; otherwise they are computed again.
const KEEP_SHAPES_BYTES: usize = 256 << 20;
/// Slices whose shapes are computed again together (in parallel).
const BATCH_SLICES: usize = 16;

/// Darker than this is air, not tissue, HU.
const TISSUE_ABOVE_HU: f32 = -500.0;

/// One slice's metal and the image of its beam-hardening error shape.
struct SliceError {
    /// Filtered back-projection of the squared metal path length, per pixel.
    shape: Vec<f32>,
    /// Pixels within `fit_clear_mm` of metal (left out of the fit).
    near_metal: Vec<bool>,
    /// The box (columns, rows: `[start, end)`) where `shape` was computed:
    /// the tissue's; zero outside, and left out of the fit.
    body: [[usize; 2]; 2],
}

/// The box (columns, rows: `[start, end)`) of the pixels of a slice `nu`
/// wide for which `pred` holds; empty (start > end) when none does.
fn pixel_box(img: &[f32], nu: usize, pred: impl Fn(f32) -> bool) -> [[usize; 2]; 2] {
    let mut b = [[usize::MAX, 0usize]; 2];
    for (j, row) in img.chunks(nu).enumerate() {
        let mut hits = row
            .iter()
            .enumerate()
            .filter(|(_, &v)| pred(v))
            .map(|(i, _)| i);
        if let Some(first) = hits.next() {
            let last = hits.last().unwrap_or(first);
            b[0] = [b[0][0].min(first), b[0][1].max(last + 1)];
            b[1] = [b[1][0].min(j), j + 1];
        }
    }
    b
}

/// The error shape of one slice (`nu` × `nv`, row-major in u): the squared
/// metal path `L²` (mm²) of every ray that crosses metal, ramp-filtered and
/// back-projected. `None` without metal.
fn error_shape(
    img: &[f32],
    nu: usize,
    nv: usize,
    spacing: [f64; 2],
    p: &MarParams,
) -> Option<SliceError> {
    let g = Geometry::new(nu, nv, spacing, p.views);
    let [su, sv] = spacing;
    let metal: Vec<usize> = (0..nu * nv)
        .filter(|&i| img[i] > p.metal_above_hu)
        .collect();
    if metal.is_empty() {
        return None;
    }
    // Metal fraction: 1 above the limit; the pixels next to metal are part
    // metal (its blurred edge, a third of a 6 mm screw's width on 0.8 mm
    // pixels), read linearly between `rim_tissue_hu` and the limit.
    let mut fraction = vec![0f32; nu * nv];
    let span = p.metal_above_hu - p.rim_tissue_hu;
    for &m in &metal {
        let (i, j) = (m % nu, m / nu);
        for b in j.saturating_sub(1)..(j + 2).min(nv) {
            for a in i.saturating_sub(1)..(i + 2).min(nu) {
                let h = img[a + nu * b];
                fraction[a + nu * b] = ((h - p.rim_tissue_hu) / span).clamp(0.0, 1.0);
            }
        }
    }
    let at = |i: usize| (((i % nu) as f64 - g.cu) * su, ((i / nu) as f64 - g.cv) * sv);
    let part: Vec<(f64, f64)> = (0..nu * nv)
        .filter(|&i| fraction[i] > 0.0)
        .map(at)
        .collect();
    let runs = trace_runs(&g, &part);
    let pad = g.padded(&fraction, |f| f);
    // Rays are sampled only across the metal's box, in padded coordinates
    // (pixel i lies at i + 1; its bilinear reach ends at i + 2).
    let [[ilo, ihi], [jlo, jhi]] = pixel_box(&fraction, nu, |f| f > 0.0);
    let bx = [
        [ilo as f64, (ihi + 1) as f64],
        [jlo as f64, (jhi + 1) as f64],
    ];
    let squared: Vec<Vec<(usize, f64)>> = runs
        .iter()
        .enumerate()
        .map(|(k, runs)| {
            let cs = g.angle(k);
            runs.iter()
                .flat_map(|&(a, b)| a..b)
                .map(|b| (b, g.ray(&pad, cs, b, bx).powi(2)))
                .collect()
        })
        .collect();
    // The shape is needed where there is tissue: the box of the pixels
    // above TISSUE_ABOVE_HU (air stays air whatever the streaks).
    let body = pixel_box(img, nu, |h| h >= TISSUE_ABOVE_HU);
    let mut shape = vec![0f32; nu * nv];
    // Along an axis whose pixels are finer than `shape_pixel_mm`, every
    // other one (or fewer) is back-projected and the rest interpolated: the correction is smooth at
    // that scale beyond the metal's rim, which the mask leaves out anyway.
    let stride = [su, sv].map(|s| (p.shape_pixel_mm / s).floor().max(1.0) as usize);
    g.back_project(&squared, &mut shape, body, stride);
    // Pixels within fit_clear_mm of metal.
    let disc: Vec<[isize; 3]> = crate::morphology::ellipsoid(p.fit_clear_mm, [su, sv, 1.0])
        .into_iter()
        .filter(|o| o[2] == 0)
        .collect();
    let mut near_metal = vec![false; nu * nv];
    for &m in &metal {
        let (i, j) = ((m % nu) as isize, (m / nu) as isize);
        for &[di, dj, _] in &disc {
            let (a, b) = (i + di, j + dj);
            if a >= 0 && b >= 0 && (a as usize) < nu && (b as usize) < nv {
                near_metal[a as usize + nu * b as usize] = true;
            }
        }
    }
    Some(SliceError {
        shape,
        near_metal,
        body,
    })
}

/// The slice's sums for the fit of `k`: Σ ∇I·∇F and Σ |∇F|² over pixel
/// pairs (neighbours along u and along v) that are both tissue (not air,
/// not within `fit_clear_mm` of metal), both images smoothed by
/// `fit_sigma_mm` first (metal read as water): at the pixel scale `F`
/// carries the ripples of a finite number of views and `I` its noise,
/// neither of which the other shares, and they would pull `k` towards 0.
fn gradient_sums(
    img: &[f32],
    e: &SliceError,
    nu: usize,
    nv: usize,
    spacing: [f64; 2],
    p: &MarParams,
) -> (f64, f64) {
    let [su, sv] = spacing;
    let grid = crate::Grid::new([nu, nv, 1], [su, sv, 1.0], [0.0; 3]);
    // (A σ the smoothing refuses leaves the slice as it is.)
    let smooth = |data: Vec<f32>| -> Vec<f32> {
        let v = Volume {
            grid: grid.clone(),
            data,
        };
        match crate::smooth::gaussian(&v, [p.fit_sigma_mm, p.fit_sigma_mm, 0.0]) {
            Ok(s) => s.data,
            Err(_) => v.data,
        }
    };
    let si = smooth(
        img.iter()
            .map(|&h| if h > p.metal_above_hu { 0.0 } else { h })
            .collect(),
    );
    let sf = smooth(
        e.shape
            .iter()
            .zip(img)
            .map(|(&f, &h)| if h > p.metal_above_hu { 0.0 } else { f })
            .collect(),
    );
    let [[i0, i1], [j0, j1]] = e.body;
    let ok = |v: usize| {
        let (i, j) = (v % nu, v / nu);
        (i0..i1).contains(&i)
            && (j0..j1).contains(&j)
            && !e.near_metal[v]
            && img[v] >= p.air_below_hu
    };
    let (mut cross, mut energy) = (0.0, 0.0);
    for j in 0..nv {
        for i in 0..nu {
            let v = i + nu * j;
            if !ok(v) {
                continue;
            }
            let right = (i + 1 < nu).then_some((v + 1, su));
            let down = (j + 1 < nv).then_some((v + nu, sv));
            for (w, s) in [right, down].into_iter().flatten() {
                if ok(w) {
                    let di = f64::from(si[w] - si[v]) / s;
                    let df = f64::from(sf[w] - sf[v]) / s;
                    cross += di * df;
                    energy += df * df;
                }
            }
        }
    }
    (cross, energy)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole padded slice as a clip box for [`Geometry::ray`].
    fn whole(g: &Geometry) -> [[f64; 2]; 2] {
        [[0.0, g.nu as f64 + 1.0], [0.0, g.nv as f64 + 1.0]]
    }

    /// A disc of `value` and radius `r` mm at (x, y) mm on a slice of
    /// `n` × `n` pixels of `s` mm.
    fn disc(n: usize, s: f64, (x0, y0): (f64, f64), r: f64, value: f32) -> Vec<f32> {
        let c = 0.5 * (n as f64 - 1.0);
        (0..n * n)
            .map(|i| {
                let (x, y) = (((i % n) as f64 - c) * s, ((i / n) as f64 - c) * s);
                if (x - x0).hypot(y - y0) <= r {
                    value
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn projection_and_filtered_back_projection_give_the_image_back() {
        let (n, s) = (96, 0.8);
        let img = disc(n, s, (5.0, -3.0), 20.0, 1000.0);
        let g = Geometry::new(n, n, [s, s], 180);
        let pad = g.padded(&img, |v| v);
        let all: Vec<Vec<(usize, f64)>> = (0..g.views)
            .map(|k| {
                (0..g.bins)
                    .map(|b| (b, g.ray(&pad, g.angle(k), b, whole(&g))))
                    .collect()
            })
            .collect();
        let mut out = vec![0f32; n * n];
        g.back_project(&all, &mut out, [[0, n], [0, n]], [1, 1]);
        let c = 0.5 * (n as f64 - 1.0);
        let at =
            |x: f64, y: f64| out[(x / s + c).round() as usize + n * (y / s + c).round() as usize];
        eprintln!(
            "centre {} edge-in {} outside {}",
            at(5.0, -3.0),
            at(5.0, 12.0),
            at(-30.0, 30.0)
        );
        assert!((at(5.0, -3.0) - 1000.0).abs() < 30.0, "{}", at(5.0, -3.0));
        assert!(at(-30.0, 30.0).abs() < 30.0);
        // Every other pixel back-projected, the rest interpolated: the same
        // away from the disc's edge, up to the ripples 180 views leave
        // around a sharp edge (±25 HU here), sampled differently.
        let mut coarse = vec![0f32; n * n];
        g.back_project(&all, &mut coarse, [[0, n], [0, n]], [2, 2]);
        let (mut worst, mut sum, mut compared) = (0f32, 0f32, 0);
        for (i, (&a, &b)) in out.iter().zip(&coarse).enumerate() {
            let (x, y) = (((i % n) as f64 - c) * s, ((i / n) as f64 - c) * s);
            if ((x - 5.0).hypot(y + 3.0) - 20.0).abs() > 2.0 {
                worst = worst.max((a - b).abs());
                sum += (a - b).abs();
                compared += 1;
            }
        }
        let mean = sum / compared as f32;
        assert!(
            compared > n * n / 2 && mean < 5.0 && worst < 60.0,
            "mean {mean}, worst {worst}"
        );
    }

    #[test]
    fn a_ct_without_metal_or_with_a_speck_of_it_is_left_alone() {
        let grid = crate::Grid::new([40, 40, 6], [0.8, 0.8, 2.0], [0.0; 3]);
        let mut ct = Volume::filled(grid, 40f32);
        for z in 0..6 {
            for (i, v) in disc(40, 0.8, (0.0, 0.0), 8.0, 1.0).iter().enumerate() {
                ct.data[i + 1600 * z] += 400.0 * v;
            }
        }
        assert!(reduce_metal_artefacts(&ct, 2, &MarParams::default()).is_none());
        // 4 voxels of 1.28 mm³: below min_metal_mm3.
        for i in [500, 501, 540, 541] {
            ct.data[i] = 3071.0;
        }
        assert!(reduce_metal_artefacts(&ct, 2, &MarParams::default()).is_none());
    }

    /// Mean absolute difference between `a` and `b` over the pixels of the
    /// slices holding metal that are tissue in `clean` (−900 … 3000 HU) and
    /// more than 3 mm (in-plane) from its metal.
    fn streak_error(a: &Volume<f32>, clean: &Volume<f32>) -> f64 {
        let [nx, ny, nz] = clean.grid.dims;
        let [sx, sy, _] = clean.grid.spacing;
        let (mut sum, mut n) = (0.0, 0usize);
        for z in 0..nz {
            let plane = &clean.data[nx * ny * z..nx * ny * (z + 1)];
            let metal: Vec<(f64, f64)> = (0..nx * ny)
                .filter(|&i| plane[i] > 3000.0)
                .map(|i| ((i % nx) as f64 * sx, (i / nx) as f64 * sy))
                .collect();
            if metal.is_empty() {
                continue;
            }
            for (i, &c) in plane.iter().enumerate() {
                let (x, y) = ((i % nx) as f64 * sx, (i / nx) as f64 * sy);
                if !(-900.0..=3000.0).contains(&c)
                    || metal.iter().any(|&(mx, my)| (mx - x).hypot(my - y) <= 3.0)
                {
                    continue;
                }
                sum += f64::from((a.data[nx * ny * z + i] - c).abs());
                n += 1;
            }
        }
        sum / n.max(1) as f64
    }

    /// The phantom's streaks (its own simulator: the metal fraction's `−L²`
    /// Shepp-Logan filtered over 180 views, clamped to the scanner's range)
    /// against the same phantom without them: the error away from the
    /// screws is about halved, `k` doubles with the streaks' strength, and
    /// screws without streaks are left alone.
    #[test]
    fn phantom_streaks_are_halved_and_the_fit_follows_their_strength() {
        use crate::phantom::{generate, PhantomParams};
        let phantom = |streaks: f64| {
            let mut p = PhantomParams::demo().realistic();
            p.pedicle_screws = true;
            p.metal_streaks_hu = streaks;
            generate(&p).ct
        };
        let clean = phantom(0.0);
        let none = reduce_metal_artefacts(&clean, 2, &MarParams::default()).unwrap();
        assert!(none.corrected.is_none(), "{:?}", none.report);
        assert!(none.report.slices > 0 && none.report.metal_mm3 > 5000.0);
        let mut k = Vec::new();
        for hu in [150.0, 300.0] {
            let ct = phantom(hu);
            let m = reduce_metal_artefacts(&ct, 2, &MarParams::default()).unwrap();
            let (before, after) = (
                streak_error(&ct, &clean),
                streak_error(m.corrected.as_ref().unwrap(), &clean),
            );
            eprintln!(
                "{hu} HU: error {before:.1} -> {after:.1} HU, {:?}",
                m.report
            );
            assert!(after < 0.65 * before, "{hu} HU: {before} -> {after}");
            k.push(m.report.beam_hardening);
            if hu == 300.0 {
                // The same slices stored with the axial axis first: the
                // same correction.
                let [nx, ny, nz] = ct.grid.dims;
                let [sx, sy, sz] = ct.grid.spacing;
                let grid = crate::Grid::new([nz, nx, ny], [sz, sx, sy], [0.0; 3]);
                let at = |x: usize, y: usize, z: usize| x + nx * (y + ny * z);
                let mut moved = Volume::filled(grid, 0f32);
                for z in 0..nz {
                    for y in 0..ny {
                        for x in 0..nx {
                            moved.data[z + nz * (x + nx * y)] = ct.data[at(x, y, z)];
                        }
                    }
                }
                let m2 = reduce_metal_artefacts(&moved, 0, &MarParams::default()).unwrap();
                // Shapes computed again instead of kept: the same CT.
                let m3 = reduce_keeping(&ct, 2, &MarParams::default(), 0).unwrap();
                assert_eq!(m3.corrected, m.corrected);
                assert_eq!(m3.report.mean_change_hu, m.report.mean_change_hu);
                assert!(
                    (m2.report.beam_hardening - m.report.beam_hardening).abs()
                        < 1e-6 * m.report.beam_hardening
                );
                let (a, b) = (
                    m.corrected.as_ref().unwrap(),
                    m2.corrected.as_ref().unwrap(),
                );
                for z in (0..nz).step_by(7) {
                    for y in 0..ny {
                        for x in 0..nx {
                            assert_eq!(a.data[at(x, y, z)], b.data[z + nz * (x + nx * y)]);
                        }
                    }
                }
            }
        }
        assert!((1.8..2.2).contains(&(k[1] / k[0])), "{k:?}");
    }
}
