//! `overview.png`: a one-picture check of a segmentation.
//!
//! Four panels side by side, all at one scale (the same millimetres per
//! pixel, so every panel is in physical proportion whatever the voxel size):
//!
//! 1. **axial** slice through the mask's centre of mass, seen from the feet
//!    (radiological: patient's right on the image left, anterior up);
//! 2. **coronal** slice through the centre of mass (superior up, patient's
//!    right on the image left);
//! 3. **sagittal** slice through the centre of mass (superior up, anterior on
//!    the left);
//! 4. the mask's **projection along the anterior–posterior axis** (coronal
//!    view as panel 2): brightness is the mask's thickness along that line,
//!    so the whole spine is seen at once.
//!
//! The slices show the CT in a bone window (level 400 / width 1800 HU by
//! default) with the mask's boundary in that plane drawn 1 pixel wide in red
//! (with vertebra labels, [`render_overview_labelled`]: the boundaries
//! between vertebrae in light blue and their names, "T12", "L3", "S", at
//! their centres in the sagittal slice); small cyan ticks on the panel edges mark where the other slices cut, and
//! letters (R/L, A/P, S/I) name the sides. Every panel is sampled in patient
//! space (LPS): for each pixel its LPS point is mapped back into the CT's and
//! the mask's grids, so any orientation (axial, sagittal or coronal stacks,
//! flipped or permuted axes, RAS NIfTI files) comes out the same way round.
//! The CT is sampled trilinearly, the mask by nearest voxel.
//!
//! Only the three slices and one pass over the mask (centre of mass and
//! projection together) are touched, a few tens of milliseconds for a
//! 512×512×300 CT.

use crate::io::atomic;
use crate::volume::invert3;
use crate::{Grid, Mask, Result, Volume};
use image::{Rgb, RgbImage};
use rayon::prelude::*;
use std::path::Path;

/// How the overview is drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct OverviewParams {
    /// Length of the CT's largest physical extent, pixels: sets the common
    /// scale (mm per pixel) of all panels.
    pub long_side_px: usize,
    /// Grey window centre, HU.
    pub window_level: f32,
    /// Grey window width, HU.
    pub window_width: f32,
}

impl Default for OverviewParams {
    fn default() -> Self {
        OverviewParams {
            long_side_px: 512,
            window_level: 400.0,
            window_width: 1800.0,
        }
    }
}

const OUTLINE: Rgb<u8> = Rgb([255, 40, 40]);
/// Boundaries between vertebrae.
const SPLIT: Rgb<u8> = Rgb([40, 220, 255]);
const TICK: Rgb<u8> = Rgb([0, 220, 255]);
const LETTER: Rgb<u8> = Rgb([255, 230, 0]);
const GAP_COLOUR: Rgb<u8> = Rgb([40, 40, 40]);
const GAP_PX: u32 = 4;

/// LPS axes.
const LR: usize = 0;
const AP: usize = 1;
const SI: usize = 2;

/// One panel's geometry: image column `c` runs along LPS axis `u` (towards
/// +u when `u_sign` is 1), row `r` along `v`; the panel passes through the
/// frame's centre on the remaining axis.
#[derive(Clone, Copy, Debug)]
struct View {
    u: usize,
    u_sign: f64,
    v: usize,
    v_sign: f64,
    /// Letters at the image left, right, top and bottom.
    letters: [u8; 4],
}

/// Axial from the feet: column → patient left (+L), row → posterior (+P).
const AXIAL: View = View {
    u: LR,
    u_sign: 1.0,
    v: AP,
    v_sign: 1.0,
    letters: [b'R', b'L', b'A', b'P'],
};
/// Coronal from the front: column → +L, row → inferior (−S).
const CORONAL: View = View {
    u: LR,
    u_sign: 1.0,
    v: SI,
    v_sign: -1.0,
    letters: [b'R', b'L', b'S', b'I'],
};
/// Sagittal from the patient's left: column → posterior (+P), row → −S.
const SAGITTAL: View = View {
    u: AP,
    u_sign: 1.0,
    v: SI,
    v_sign: -1.0,
    letters: [b'A', b'P', b'S', b'I'],
};

/// Where the panels cut and at what scale.
#[derive(Clone, Debug)]
struct Frame {
    /// LPS bounding box of the CT (voxel edges), mm.
    lo: [f64; 3],
    hi: [f64; 3],
    /// mm per pixel.
    mm_per_px: f64,
    /// LPS point the three slices pass through.
    centre: [f64; 3],
}

impl Frame {
    fn size(&self, view: &View) -> (u32, u32) {
        // The longest side is exactly `long_side_px`, not one more from rounding.
        let n = |a: usize| {
            ((self.hi[a] - self.lo[a]) / self.mm_per_px - 1e-6)
                .ceil()
                .max(1.0) as u32
        };
        (n(view.u), n(view.v))
    }

    /// LPS point of the centre of pixel (c, r) of `view`, and the LPS steps
    /// of one column and one row.
    fn pixel_geometry(&self, view: &View) -> ([f64; 3], [f64; 3], [f64; 3]) {
        let s = self.mm_per_px;
        let mut p0 = self.centre;
        p0[view.u] = if view.u_sign > 0.0 {
            self.lo[view.u] + 0.5 * s
        } else {
            self.hi[view.u] - 0.5 * s
        };
        p0[view.v] = if view.v_sign > 0.0 {
            self.lo[view.v] + 0.5 * s
        } else {
            self.hi[view.v] - 0.5 * s
        };
        let mut du = [0.0; 3];
        du[view.u] = view.u_sign * s;
        let mut dv = [0.0; 3];
        dv[view.v] = view.v_sign * s;
        (p0, du, dv)
    }

    /// Pixel position (column or row) of LPS coordinate `x` on axis `a` of a
    /// panel axis with `sign`.
    fn pixel_of(&self, a: usize, sign: f64, x: f64) -> f64 {
        if sign > 0.0 {
            (x - self.lo[a]) / self.mm_per_px - 0.5
        } else {
            (self.hi[a] - x) / self.mm_per_px - 0.5
        }
    }
}

/// Maps LPS points to continuous voxel indices of a grid: `idx = m·(p − o)`.
#[derive(Clone, Copy)]
struct ToIndex {
    m: [[f64; 3]; 3],
    o: [f64; 3],
}

impl ToIndex {
    fn new(g: &Grid) -> Option<ToIndex> {
        Some(ToIndex {
            m: invert3(&g.index_matrix())?,
            o: g.origin,
        })
    }
    fn point(&self, p: [f64; 3]) -> [f64; 3] {
        let d = [p[0] - self.o[0], p[1] - self.o[1], p[2] - self.o[2]];
        self.vector(d)
    }
    fn vector(&self, d: [f64; 3]) -> [f64; 3] {
        let m = &self.m;
        [
            m[0][0] * d[0] + m[0][1] * d[1] + m[0][2] * d[2],
            m[1][0] * d[0] + m[1][1] * d[1] + m[1][2] * d[2],
            m[2][0] * d[0] + m[2][1] * d[1] + m[2][2] * d[2],
        ]
    }
}

fn add(a: [f64; 3], b: [f64; 3], k: f64) -> [f64; 3] {
    [a[0] + k * b[0], a[1] + k * b[1], a[2] + k * b[2]]
}

/// LPS bounding box of a grid's voxels (outer edges).
fn lps_bounds(g: &Grid) -> ([f64; 3], [f64; 3]) {
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for corner in 0..8 {
        let idx = [0, 1, 2].map(|a| {
            if corner >> a & 1 == 0 {
                -0.5
            } else {
                g.dims[a] as f64 - 0.5
            }
        });
        let p = g.index_to_lps(idx);
        for a in 0..3 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    (lo, hi)
}

/// Nearest voxel of a continuous index, if inside the grid.
#[inline]
fn nearest(dims: [usize; 3], idx: [f64; 3]) -> Option<[usize; 3]> {
    let mut out = [0usize; 3];
    for a in 0..3 {
        let r = idx[a].round();
        if !(r >= 0.0 && r < dims[a] as f64) {
            return None;
        }
        out[a] = r as usize;
    }
    Some(out)
}

/// Trilinear CT value at a continuous index; `None` outside the voxels.
#[inline]
fn trilinear(ct: &Volume<f32>, idx: [f64; 3]) -> Option<f32> {
    let d = ct.grid.dims;
    let mut i0 = [0usize; 3];
    let mut i1 = [0usize; 3];
    let mut f = [0f32; 3];
    for a in 0..3 {
        let x = idx[a];
        if !(x >= -0.5 && x <= d[a] as f64 - 0.5) {
            return None;
        }
        let x = x.clamp(0.0, (d[a] - 1) as f64);
        let b = (x.floor() as usize).min(d[a] - 1);
        i0[a] = b;
        i1[a] = (b + 1).min(d[a] - 1);
        f[a] = (x - b as f64) as f32;
    }
    let g = |x: usize, y: usize, z: usize| ct.data[ct.grid.index(x, y, z)];
    let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
    let c00 = lerp(g(i0[0], i0[1], i0[2]), g(i1[0], i0[1], i0[2]), f[0]);
    let c10 = lerp(g(i0[0], i1[1], i0[2]), g(i1[0], i1[1], i0[2]), f[0]);
    let c01 = lerp(g(i0[0], i0[1], i1[2]), g(i1[0], i0[1], i1[2]), f[0]);
    let c11 = lerp(g(i0[0], i1[1], i1[2]), g(i1[0], i1[1], i1[2]), f[0]);
    Some(lerp(lerp(c00, c10, f[1]), lerp(c01, c11, f[1]), f[2]))
}

/// One pass over the mask: voxel count, centre of mass (index space) and the
/// count of set voxels along index axis `proj_axis` for every position of the
/// other two axes (`(a1, a2)`, ascending; stored `i1 + n1 * i2`).
struct MaskSummary {
    count: u64,
    sum: [f64; 3],
    proj_axis: usize,
    proj: Vec<u32>,
}

fn summarise(mask: &Mask, proj_axis: usize) -> MaskSummary {
    let [nx, ny, _] = mask.grid.dims;
    let (a1, a2) = other_axes(proj_axis);
    let n1 = mask.grid.dims[a1];
    let plen = n1 * mask.grid.dims[a2];
    // Offset in the projection of one step along each index axis.
    let mut stride = [0usize; 3];
    stride[a1] = 1;
    stride[a2] = n1;
    let empty = || (0u64, [0f64; 3], Vec::<u32>::new());
    let (count, sum, proj) = mask
        .data
        .par_chunks(nx * ny.max(1))
        .enumerate()
        .fold(empty, |(mut count, mut sum, mut proj), (z, slice)| {
            if proj.is_empty() {
                proj = vec![0u32; plen];
            }
            for y in 0..ny {
                let row = &slice[y * nx..(y + 1) * nx];
                // Most rows are empty: a vectorised OR skips them.
                if !row
                    .chunks(64)
                    .any(|c| c.iter().fold(0u8, |a, &b| a | b) != 0)
                {
                    continue;
                }
                let base = y * stride[1] + z * stride[2];
                let mut row_n = 0u64;
                let mut row_x = 0u64;
                for (x, &v) in row.iter().enumerate() {
                    if v != 0 {
                        row_n += 1;
                        row_x += x as u64;
                        proj[base + x * stride[0]] += 1;
                    }
                }
                count += row_n;
                sum[0] += row_x as f64;
                sum[1] += (row_n * y as u64) as f64;
                sum[2] += (row_n * z as u64) as f64;
            }
            (count, sum, proj)
        })
        .reduce(empty, |a, b| {
            let proj = match (a.2.is_empty(), b.2.is_empty()) {
                (true, _) => b.2,
                (_, true) => a.2,
                _ => {
                    let mut p = a.2;
                    for (x, y) in p.iter_mut().zip(&b.2) {
                        *x += y;
                    }
                    p
                }
            };
            (
                a.0 + b.0,
                [a.1[0] + b.1[0], a.1[1] + b.1[1], a.1[2] + b.1[2]],
                proj,
            )
        });
    let proj = if proj.is_empty() {
        vec![0u32; plen]
    } else {
        proj
    };
    MaskSummary {
        count,
        sum,
        proj_axis,
        proj,
    }
}

fn other_axes(a: usize) -> (usize, usize) {
    match a {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    }
}

/// Index axis of `g` most aligned with LPS axis `lps`.
fn index_axis_along(g: &Grid, lps: usize) -> usize {
    (0..3)
        .max_by(|&a, &b| {
            g.direction[a][lps]
                .abs()
                .total_cmp(&g.direction[b][lps].abs())
        })
        .unwrap_or(lps)
}

/// Draws the overview of `ct` with `mask` outlined (see the module docs).
/// The mask may lie on another grid than the CT (both are placed in patient
/// space); an empty mask gives the CT alone, centred on the CT.
pub fn render_overview(ct: &Volume<f32>, mask: &Mask, params: &OverviewParams) -> RgbImage {
    render_overview_labelled(ct, mask, None, params)
}

/// Vertebra labels on the mask's grid, with each label's name ("L3", "",
/// …; an empty name shows the label's number).
pub type Labelled<'a> = (&'a Volume<u8>, &'a [(u8, String)]);

/// [`render_overview`] with the vertebrae told apart: the boundaries
/// between them drawn in cyan in the slices, and their names written in the
/// sagittal slice.
pub fn render_overview_labelled(
    ct: &Volume<f32>,
    mask: &Mask,
    labels: Option<Labelled>,
    params: &OverviewParams,
) -> RgbImage {
    // Labels on another grid than the mask's are not drawn.
    let labels = labels.filter(|(l, _)| l.grid.dims == mask.grid.dims);
    let panels = render_panels(ct, mask, labels, params);
    let width: u32 =
        panels.iter().map(|p| p.width()).sum::<u32>() + GAP_PX * (panels.len() as u32 - 1);
    let height = panels.iter().map(|p| p.height()).max().unwrap_or(1);
    let mut out = RgbImage::from_pixel(width, height, GAP_COLOUR);
    let mut x0 = 0;
    for p in &panels {
        image::imageops::replace(&mut out, p, x0 as i64, 0);
        x0 += p.width() + GAP_PX;
    }
    out
}

/// The four panels: axial, coronal, sagittal slices and the projection.
fn render_panels(
    ct: &Volume<f32>,
    mask: &Mask,
    labels: Option<Labelled>,
    params: &OverviewParams,
) -> Vec<RgbImage> {
    let (lo, hi) = lps_bounds(&ct.grid);
    let extent = (0..3).map(|a| hi[a] - lo[a]).fold(0.0f64, f64::max);
    let long = params.long_side_px.max(16) as f64;
    let mm_per_px = if extent.is_finite() && extent > 0.0 {
        extent / long
    } else {
        1.0
    };
    let ap_axis = index_axis_along(&mask.grid, AP);
    let summary = summarise(mask, ap_axis);
    let centre = if summary.count > 0 {
        let n = summary.count as f64;
        mask.grid
            .index_to_lps([summary.sum[0] / n, summary.sum[1] / n, summary.sum[2] / n])
    } else {
        [0, 1, 2].map(|a| 0.5 * (lo[a] + hi[a]))
    };
    let frame = Frame {
        lo,
        hi,
        mm_per_px,
        centre,
    };
    let ct_index = ToIndex::new(&ct.grid);
    let mask_index = ToIndex::new(&mask.grid);

    let mut panels: Vec<(View, RgbImage)> = [AXIAL, CORONAL, SAGITTAL]
        .par_iter()
        .map(|view| {
            (
                *view,
                slice_panel(ct, mask, labels, ct_index, mask_index, &frame, view, params),
            )
        })
        .collect();
    panels.push((
        CORONAL,
        projection_panel(mask, mask_index, &summary, &frame),
    ));
    panels
        .into_iter()
        .map(|(view, mut img)| {
            draw_ticks(&mut img, &frame, &view);
            draw_letters(&mut img, &view.letters);
            img
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn slice_panel(
    ct: &Volume<f32>,
    mask: &Mask,
    labels: Option<Labelled>,
    ct_index: Option<ToIndex>,
    mask_index: Option<ToIndex>,
    frame: &Frame,
    view: &View,
    params: &OverviewParams,
) -> RgbImage {
    let (w, h) = frame.size(view);
    let (p0, du, dv) = frame.pixel_geometry(view);
    let lo_hu = params.window_level - 0.5 * params.window_width;
    let scale = 255.0 / params.window_width.max(1e-3);
    let (wu, hu) = (w as usize, h as usize);
    let mut buf = vec![0u8; 3 * wu * hu];
    // Per pixel: 0 outside the mask, else its vertebra's label (1 without).
    let mut inside = vec![0u8; wu * hu];
    let ct_rows = ct_index.map(|ti| (ti.point(p0), ti.vector(du), ti.vector(dv)));
    let mask_rows = mask_index.map(|ti| (ti.point(p0), ti.vector(du), ti.vector(dv)));
    buf.par_chunks_mut(3 * wu)
        .zip(inside.par_chunks_mut(wu))
        .enumerate()
        .for_each(|(r, (pixels, inside))| {
            if let Some((i0, iu, iv)) = ct_rows {
                let row0 = add(i0, iv, r as f64);
                for (c, px) in pixels.chunks_exact_mut(3).enumerate() {
                    if let Some(v) = trilinear(ct, add(row0, iu, c as f64)) {
                        let g = ((v - lo_hu) * scale).clamp(0.0, 255.0) as u8;
                        px.copy_from_slice(&[g, g, g]);
                    }
                }
            }
            if let Some((i0, iu, iv)) = mask_rows {
                let row0 = add(i0, iv, r as f64);
                for (c, inside) in inside.iter_mut().enumerate() {
                    if let Some([x, y, z]) = nearest(mask.grid.dims, add(row0, iu, c as f64)) {
                        *inside = match labels {
                            Some((l, _)) if mask.get(x, y, z) != 0 => l.get(x, y, z).max(1),
                            _ => u8::from(mask.get(x, y, z) != 0),
                        };
                    }
                }
            }
        });
    let mut img = RgbImage::from_raw(w, h, buf).expect("buffer of the panel's size");
    // Per label: the sum of its pixels' columns and rows, and their count.
    let mut centres = [(0usize, 0usize, 0usize); 256];
    for r in 0..hu {
        for c in 0..wu {
            let l = inside[c + wu * r];
            if l == 0 {
                continue;
            }
            let at = |cc: isize, rr: isize| {
                if cc < 0 || rr < 0 || cc >= wu as isize || rr >= hu as isize {
                    0
                } else {
                    inside[cc as usize + wu * rr as usize]
                }
            };
            let (ci, ri) = (c as isize, r as isize);
            let n = [
                at(ci - 1, ri),
                at(ci + 1, ri),
                at(ci, ri - 1),
                at(ci, ri + 1),
            ];
            if n.contains(&0) {
                img.put_pixel(c as u32, r as u32, OUTLINE);
            } else if n.iter().any(|&m| m != l) {
                img.put_pixel(c as u32, r as u32, SPLIT);
            }
            let e = &mut centres[l as usize];
            *e = (e.0 + c, e.1 + r, e.2 + 1);
        }
    }
    // Names in the sagittal slice, at each vertebra's centre there.
    if let (Some((_, names)), true) = (labels, view.letters == SAGITTAL.letters) {
        for (l, name) in names {
            let (sc, sr, n) = centres[*l as usize];
            if n < 50 {
                continue;
            }
            let text = match name.as_str() {
                "" => l.to_string(),
                "sacrum" => "S".to_string(),
                s => s.to_string(),
            };
            draw_text(&mut img, text.as_bytes(), (sc / n) as i64, (sr / n) as i64);
        }
    }
    img
}

/// The mask's thickness along its most anterior–posterior index axis, shown
/// in the coronal geometry.
fn projection_panel(
    mask: &Mask,
    mask_index: Option<ToIndex>,
    summary: &MaskSummary,
    frame: &Frame,
) -> RgbImage {
    let view = CORONAL;
    let (w, h) = frame.size(&view);
    let mut img = RgbImage::new(w, h);
    let Some(ti) = mask_index else {
        return img;
    };
    let max = summary.proj.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return img;
    }
    let (a1, a2) = other_axes(summary.proj_axis);
    let dims = mask.grid.dims;
    let (p0, du, dv) = frame.pixel_geometry(&view);
    let (i0, iu, iv) = (ti.point(p0), ti.vector(du), ti.vector(dv));
    for r in 0..h {
        for c in 0..w {
            let mut idx = add(add(i0, iu, c as f64), iv, r as f64);
            // The projection has no depth: any position along its axis.
            idx[summary.proj_axis] = 0.0;
            let Some(v) = nearest(dims, idx) else {
                continue;
            };
            let n = summary.proj[v[a1] + dims[a1] * v[a2]];
            if n == 0 {
                continue;
            }
            let t = (n as f32 / max as f32).sqrt();
            let g = 60.0 + 195.0 * t;
            img.put_pixel(c, r, Rgb([g as u8, (g * 0.92) as u8, (g * 0.6) as u8]));
        }
    }
    img
}

/// Short ticks on the panel edges where the other two slices cut.
fn draw_ticks(img: &mut RgbImage, frame: &Frame, view: &View) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let len = 8.min(w / 4).min(h / 4);
    // A vertical line position (column) marks the plane across u.
    let col = frame
        .pixel_of(view.u, view.u_sign, frame.centre[view.u])
        .round() as i64;
    let row = frame
        .pixel_of(view.v, view.v_sign, frame.centre[view.v])
        .round() as i64;
    let mut put = |c: i64, r: i64| {
        if c >= 0 && r >= 0 && c < w && r < h {
            img.put_pixel(c as u32, r as u32, TICK);
        }
    };
    for k in 0..len {
        for d in 0..2 {
            put(col + d, k);
            put(col + d, h - 1 - k);
            put(k, row + d);
            put(w - 1 - k, row + d);
        }
    }
}

/// 5×7 glyphs of the side letters.
fn glyph(ch: u8) -> [u8; 7] {
    match ch {
        b'R' => [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001,
        ],
        b'L' => [
            0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111,
        ],
        b'A' => [
            0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
        ],
        b'P' => [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000,
        ],
        b'S' => [
            0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110,
        ],
        b'I' => [
            0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
        ],
        b'T' => [
            0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100,
        ],
        b'C' => [
            0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110,
        ],
        b'0' => [
            0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110,
        ],
        b'1' => [
            0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
        ],
        b'2' => [
            0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111,
        ],
        b'3' => [
            0b11110, 0b00001, 0b00001, 0b01110, 0b00001, 0b00001, 0b11110,
        ],
        b'4' => [
            0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010,
        ],
        b'5' => [
            0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110,
        ],
        b'6' => [
            0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110,
        ],
        b'7' => [
            0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000,
        ],
        b'8' => [
            0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110,
        ],
        b'9' => [
            0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100,
        ],
        _ => [0; 7],
    }
}

/// `text` centred on pixel (x, y), 2× size, yellow on a black shadow.
fn draw_text(img: &mut RgbImage, text: &[u8], x: i64, y: i64) {
    const S: i64 = 2;
    let (w, h) = (img.width() as i64, img.height() as i64);
    let x0 = x - (6 * S * text.len() as i64 - S) / 2;
    let y0 = y - 7 * S / 2;
    for (shadow, colour) in [(1, Rgb([0, 0, 0])), (0, LETTER)] {
        for (k, &ch) in text.iter().enumerate() {
            for (r, bits) in glyph(ch).iter().enumerate() {
                for c in 0..5 {
                    if bits >> (4 - c) & 1 == 0 {
                        continue;
                    }
                    for dy in 0..S {
                        for dx in 0..S {
                            let px = x0 + (6 * k as i64 + c) * S + dx + shadow;
                            let py = y0 + r as i64 * S + dy + shadow;
                            if px >= 0 && py >= 0 && px < w && py < h {
                                img.put_pixel(px as u32, py as u32, colour);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Letters at the middle of the left, right, top and bottom edges (2× size).
fn draw_letters(img: &mut RgbImage, letters: &[u8; 4]) {
    const S: i64 = 2;
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (gw, gh) = (5 * S, 7 * S);
    if w < 4 * gw || h < 4 * gh {
        return;
    }
    let m = 14; // clear of the ticks
    let places = [
        (m, h / 2 - gh / 2),
        (w - m - gw, h / 2 - gh / 2),
        (w / 2 - gw / 2, m),
        (w / 2 - gw / 2, h - m - gh),
    ];
    for (&ch, &(x0, y0)) in letters.iter().zip(&places) {
        let g = glyph(ch);
        for (r, bits) in g.iter().enumerate() {
            for c in 0..5 {
                if bits >> (4 - c) & 1 == 1 {
                    for dy in 0..S {
                        for dx in 0..S {
                            let (x, y) = (x0 + c * S + dx, y0 + r as i64 * S + dy);
                            if x >= 0 && y >= 0 && x < w && y < h {
                                img.put_pixel(x as u32, y as u32, LETTER);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Encodes `img` as PNG and writes it atomically (temporary file, then
/// rename). Returns the bytes written.
pub fn write_png(path: &Path, img: &RgbImage) -> Result<u64> {
    stage_png(path, img)?.commit()
}

/// [`write_png`] up to the last step: the file is complete under a
/// temporary name and appears at `path` when committed.
pub fn stage_png(path: &Path, img: &RgbImage) -> Result<atomic::Staged> {
    use image::ImageEncoder;
    atomic::stage_with(path, |w| {
        image::codecs::png::PngEncoder::new(w)
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )
            .map_err(std::io::Error::other)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LPS box of the synthetic patient, mm: 120 left–right, 60 front–back,
    /// 90 head–feet.
    const BOX_LO: [f64; 3] = [0.0, 0.0, 0.0];
    const BOX_HI: [f64; 3] = [120.0, 60.0, 90.0];
    /// A marker at the patient's right (small L), anterior (small P) and
    /// superior (large S).
    const MARKER: [f64; 3] = [25.0, 15.0, 70.0];
    const MARKER_R: f64 = 10.0;

    /// A grid covering the box whose index axis `a` runs along LPS axis
    /// `axes[a]` with sign `signs[a]`, voxels `spacing[a]` mm.
    fn grid(axes: [usize; 3], signs: [f64; 3], spacing: [f64; 3]) -> Grid {
        let mut dims = [0; 3];
        let mut origin = [0.0; 3];
        let mut direction = [[0.0; 3]; 3];
        for a in 0..3 {
            let k = axes[a];
            let ext = BOX_HI[k] - BOX_LO[k];
            dims[a] = (ext / spacing[a]).round() as usize;
            direction[a][k] = signs[a];
            origin[k] = if signs[a] > 0.0 {
                BOX_LO[k] + 0.5 * spacing[a]
            } else {
                BOX_HI[k] - 0.5 * spacing[a]
            };
        }
        Grid {
            dims,
            spacing,
            origin,
            direction,
        }
    }

    /// CT of soft tissue (40 HU) with a bone ball (1200 HU) at the marker,
    /// and the ball as mask.
    fn phantom(g: &Grid) -> (Volume<f32>, Mask) {
        let mut ct = Volume::filled(g.clone(), 40.0f32);
        let mut mask = Mask::filled(g.clone(), 0);
        let [nx, ny, nz] = g.dims;
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let p = g.index_to_lps([x as f64, y as f64, z as f64]);
                    let d2: f64 = (0..3).map(|a| (p[a] - MARKER[a]).powi(2)).sum();
                    if d2 <= MARKER_R * MARKER_R {
                        ct.set(x, y, z, 1200.0);
                        mask.set(x, y, z, 1);
                    }
                }
            }
        }
        (ct, mask)
    }

    /// Centre (column, row) of the pixels of a colour, as fractions of the
    /// panel's width and height, and their count.
    fn where_is(img: &RgbImage, keep: impl Fn(&Rgb<u8>) -> bool) -> (f64, f64, usize) {
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0usize);
        for (x, y, p) in img.enumerate_pixels() {
            if keep(p) {
                sx += x as f64 + 0.5;
                sy += y as f64 + 0.5;
                n += 1;
            }
        }
        let n1 = n.max(1) as f64;
        (
            sx / n1 / img.width() as f64,
            sy / n1 / img.height() as f64,
            n,
        )
    }

    /// Expected place of the marker in each panel: (column, row) fractions.
    /// Axial: right → left, anterior → top. Coronal: right → left, superior
    /// → top. Sagittal: anterior → left, superior → top. Projection: coronal.
    fn expected() -> [(f64, f64); 4] {
        let f = |a: usize, x: f64, flip: bool| {
            let t = (x - BOX_LO[a]) / (BOX_HI[a] - BOX_LO[a]);
            if flip {
                1.0 - t
            } else {
                t
            }
        };
        let (l, p, s) = (
            f(0, MARKER[0], false),
            f(1, MARKER[1], false),
            f(2, MARKER[2], true),
        );
        [(l, p), (l, s), (p, s), (l, s)]
    }

    fn check_orientation(g: &Grid) {
        let (ct, mask) = phantom(g);
        assert!(mask.count() > 100, "{:?}", g.dims);
        let params = OverviewParams {
            long_side_px: 240,
            ..Default::default()
        };
        let panels = render_panels(&ct, &mask, None, &params);
        assert_eq!(panels.len(), 4);
        // One scale for all panels: 120 mm → 240 px, so 2 px per mm.
        let sizes: Vec<_> = panels.iter().map(|p| (p.width(), p.height())).collect();
        assert_eq!(
            sizes,
            [(240, 120), (240, 180), (120, 180), (240, 180)],
            "{g:?}"
        );
        let exp = expected();
        for (i, panel) in panels.iter().enumerate() {
            let (cx, cy, n) = if i < 3 {
                where_is(panel, |p| *p == OUTLINE)
            } else {
                where_is(panel, |p| p.0[2] > 0 && p.0[2] < p.0[0])
            };
            assert!(n > 20, "panel {i}: only {n} marker pixels, {g:?}");
            let (ex, ey) = exp[i];
            assert!(
                (cx - ex).abs() < 0.04 && (cy - ey).abs() < 0.04,
                "panel {i}: marker at ({cx:.3}, {cy:.3}), expected ({ex:.3}, {ey:.3}); {g:?}"
            );
        }
        // The bone shows white inside the outline in the axial slice.
        let (bx, by, nb) = where_is(&panels[0], |p| p.0[0] > 230 && p.0[0] == p.0[2]);
        assert!(nb > 50);
        assert!((bx - exp[0].0).abs() < 0.04 && (by - exp[0].1).abs() < 0.04);
        // Soft tissue in the bone window: grey (40 HU → (40 + 500) / 1800).
        let soft = ((40.0 + 500.0) * 255.0 / 1800.0) as u8;
        assert_eq!(panels[1].get_pixel(200, 150).0, [soft; 3]);
    }

    #[test]
    fn vertebrae_are_told_apart_and_named_in_the_sagittal_slice() {
        let g = grid([0, 1, 2], [1.0; 3], [1.0; 3]);
        let (ct, mask) = phantom(&g);
        // The marker's upper and lower halves (LPS z) as two vertebrae.
        let labels = Volume {
            grid: g.clone(),
            data: mask
                .data
                .iter()
                .enumerate()
                .map(|(i, &m)| {
                    let c = g.coords(i);
                    let z = g.index_to_lps([c[0] as f64, c[1] as f64, c[2] as f64])[2];
                    match (m, z >= MARKER[2]) {
                        (0, _) => 0,
                        (_, true) => 20,
                        (_, false) => 21,
                    }
                })
                .collect(),
        };
        let names = [(20u8, "L1".to_string()), (21, "L2".to_string())];
        let params = OverviewParams {
            long_side_px: 240,
            ..Default::default()
        };
        let plain = render_panels(&ct, &mask, None, &params);
        let panels = render_panels(&ct, &mask, Some((&labels, &names)), &params);
        // The boundary between them in the coronal and sagittal slices (the
        // axial one lies within one), the outline still red.
        for (i, panel) in panels.iter().enumerate().take(3) {
            let (_, _, split) = where_is(panel, |p| *p == SPLIT);
            let (_, _, outline) = where_is(panel, |p| *p == OUTLINE);
            assert_eq!(split > 5, i > 0, "panel {i}: {split} boundary pixels");
            assert!(outline > 20, "panel {i}");
        }
        // Names only in the sagittal slice: more yellow there than without.
        let yellow = |img: &RgbImage| where_is(img, |p| *p == LETTER).2;
        assert_eq!(yellow(&panels[1]), yellow(&plain[1]));
        assert!(yellow(&panels[2]) > yellow(&plain[2]) + 40);
    }

    #[test]
    fn axial_stack_in_lps_is_shown_radiologically() {
        check_orientation(&grid([0, 1, 2], [1.0; 3], [1.0; 3]));
    }

    #[test]
    fn flipped_permuted_anisotropic_grids_look_the_same() {
        // A sagittal stack (slices along L), rows running feet→head, columns
        // back→front, 3 × 1 × 1.5 mm voxels.
        check_orientation(&grid([0, 2, 1], [-1.0, -1.0, -1.0], [3.0, 1.0, 1.5]));
        // A coronal stack with flipped x and anisotropic voxels.
        check_orientation(&grid([2, 0, 1], [1.0, -1.0, 1.0], [1.5, 2.0, 3.0]));
    }

    #[test]
    fn ras_nifti_grid_comes_out_the_same_way_round() {
        // What a NIfTI file with a positive diagonal RAS affine gives: index
        // x runs to the patient's right, y to the front, z up.
        let dims = [60, 30, 45];
        let affine = [
            [2.0, 0.0, 0.0, -119.0],
            [0.0, 2.0, 0.0, -59.0],
            [0.0, 0.0, 2.0, 1.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let g = Grid::from_ras_affine(dims, &affine).unwrap();
        assert_eq!(g.direction[0], [-1.0, 0.0, 0.0]);
        let (lo, hi) = lps_bounds(&g);
        for a in 0..3 {
            assert!((lo[a] - BOX_LO[a]).abs() < 1e-9 && (hi[a] - BOX_HI[a]).abs() < 1e-9);
        }
        check_orientation(&g);
    }

    #[test]
    fn empty_mask_draws_the_ct_alone() {
        let g = grid([0, 1, 2], [1.0; 3], [2.0; 3]);
        let (ct, _) = phantom(&g);
        let mask = Mask::filled(g, 0);
        let img = render_overview(&ct, &mask, &OverviewParams::default());
        assert_eq!(img.height(), 384);
        assert_eq!(img.width(), 512 + 512 + 256 + 512 + 3 * GAP_PX);
        assert!(!img.pixels().any(|p| *p == OUTLINE));
        let soft = ((40.0 + 500.0) * 255.0 / 1800.0) as u8;
        assert!(img.pixels().any(|p| p.0 == [soft; 3]));
    }

    #[test]
    fn png_round_trip() {
        let g = grid([0, 1, 2], [1.0; 3], [3.0; 3]);
        let (ct, mask) = phantom(&g);
        let img = render_overview(&ct, &mask, &OverviewParams::default());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("overview.png");
        let bytes = write_png(&path, &img).unwrap();
        assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!(back, img);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
