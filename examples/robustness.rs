//! Robustness of the `spine` preset on the phantom across what clinical CT
//! varies: slice thickness, noise, bone density, in-plane pixel size.
//!
//! `cargo run --release --example robustness [SEEDS]` prints, per case
//! (with its scoliosis, mm at L3) and seed, Dice against the phantom's
//! truth, the rib and ilium volume kept (should be 0), the spine missed and the volume kept outside it, the σ the
//! noise led to, the bone the first flood left to the spine beyond its
//! lateral reach, whether the isolation ran again with weak bone last, the
//! vertebrae found (`L1…S` when L1–L5 and the sacrum are found and named,
//! else their names or count) and the lowest Dice of a vertebra against its
//! truth.
//!
//! `cargo run --release --example robustness SEEDS metal` renders every case
//! with pedicle screws and rods in L4–L5 and their streaks (a dark band of
//! 300 HU between two screws); `… SEEDS metal uncorrected` segments those
//! without reducing the streaks first (`--no-metal-correction`).
//!
//! Each case renders the same field of view (L1 to the sacrum with ribs and
//! pelvis, 179 × 166 × 240 mm; two a spine-centred 110 mm square one, which
//! cuts the iliac wings and the ribs) on its own grid; two with a
//! scoliotic column (25 mm to the left, 15 mm to the right at L3; its
//! vertebrae tilted with the curve); the last on voxels 3 mm left to right
//! and 1 mm otherwise (pixel "3×1"), a sagittal slab as verse012's, where the
//! facet joints, running front to back, are blurred away.

use spinemesh::evaluate::{compare, label_dice};
use spinemesh::phantom::{
    generate, PhantomParams, LABEL_L1, LABEL_PELVIS, LABEL_RIB, LABEL_SACRUM,
};
use spinemesh::pipeline::{self, Params};

/// (in-plane mm, slice mm, noise HU, lowest cancellous HU (the range is
/// 100 HU wide), in-plane field of view mm, scoliosis mm: the column's
/// offset to the left at L3).
const CASES: [(f64, f64, f64, f64, f64, f64); 16] = [
    (0.8, 0.5, 20.0, 100.0, 179.2, 0.0),
    (0.8, 1.0, 20.0, 100.0, 179.2, 0.0),
    (0.8, 2.0, 20.0, 100.0, 179.2, 0.0),
    (0.8, 3.0, 20.0, 100.0, 179.2, 0.0),
    (0.8, 5.0, 20.0, 100.0, 179.2, 0.0),
    (0.6, 1.25, 30.0, 100.0, 179.2, 0.0),
    (1.0, 2.5, 40.0, 120.0, 179.2, 0.0),
    (0.8, 2.0, 60.0, 100.0, 179.2, 0.0),
    (0.8, 2.0, 120.0, 100.0, 179.2, 0.0),
    (0.8, 3.0, 50.0, 60.0, 179.2, 0.0),
    (0.8, 2.0, 30.0, 50.0, 179.2, 0.0),
    (0.8, 2.0, 30.0, 20.0, 179.2, 0.0),
    (0.8, 2.0, 20.0, 100.0, 110.0, 0.0),
    (0.8, 3.0, 20.0, 100.0, 110.0, 0.0),
    (0.8, 2.0, 20.0, 100.0, 179.2, 25.0),
    (0.8, 2.0, 20.0, 100.0, 179.2, -15.0),
];

fn main() -> anyhow::Result<()> {
    let seeds: u64 = match std::env::args().nth(1) {
        Some(s) => s.parse()?,
        None => 1,
    };
    let metal = std::env::args().nth(2).as_deref() == Some("metal");
    let uncorrected = std::env::args().nth(3).as_deref() == Some("uncorrected");
    let mut params = Params::spine();
    if uncorrected {
        if let Some(sp) = params.spine.as_mut() {
            sp.metal_artefacts = None;
        }
    }
    println!(
        "{:>6} {:>6} {:>8} {:>6} {:>6} {:>9} {:>4} {:>7} {:>9} {:>9} {:>9} {:>6} {:>9} {:>6} {:>10} {:>8}",
        "FOV mm",
        "scol.",
        "pixel mm",
        "slice",
        "noise",
        "cancel.",
        "seed",
        "Dice",
        "rib+ilium",
        "missed",
        "extra",
        "σ mm",
        "beyond",
        "rerun",
        "vertebrae",
        "worst"
    );
    // (the phantom on its grid, how its pixel is printed)
    let mut grids: Vec<(PhantomParams, String, [f64; 5])> = CASES
        .iter()
        .map(|&(px, slice, noise, cancellous, fov, scoliosis)| {
            let pp = PhantomParams::demo().on_grid(px, slice, fov);
            (
                pp,
                px.to_string(),
                [slice, noise, cancellous, fov, scoliosis],
            )
        })
        .collect();
    // The sagittal slab: 3 mm left to right.
    let mut slab = PhantomParams::demo().on_grid(1.0, 1.0, 179.2);
    slab.spacing_mm[0] = 3.0;
    slab.dims[0] = (179.2 / 3.0) as usize;
    grids.push((slab, "3×1".into(), [1.0, 20.0, 100.0, 179.2, 0.0]));
    for (grid, px, [slice, noise, cancellous, fov, scoliosis]) in &grids {
        for seed in 1..=seeds {
            let mut pp = grid.clone();
            pp.noise_sd_hu = *noise;
            pp.cancellous_hu = (*cancellous, cancellous + 100.0);
            pp.anatomy_variation = 0.08;
            pp.scoliosis_mm = *scoliosis;
            pp.seed = seed;
            if metal {
                pp.pedicle_screws = true;
                pp.metal_streaks_hu = 300.0;
            }
            let ph = generate(&pp);
            let out = pipeline::run(&ph.ct, &params, &|_| {})?;
            let truth = ph.spine_truth();
            let dice = compare(&out.mask, &truth)?.dice;
            let cm3 = |n: usize| n as f64 * out.mask.grid.voxel_volume_mm3() / 1000.0;
            let count = |a: &spinemesh::Mask, b: &spinemesh::Mask, inside: bool| {
                a.data
                    .iter()
                    .zip(&b.data)
                    .filter(|(&x, &y)| x != 0 && (y != 0) == inside)
                    .count()
            };
            let other = ph.mask_of(&[LABEL_RIB, LABEL_PELVIS]);
            let rep = out.spine.as_ref().expect("the spine preset reports");
            // The vertebrae: named L1–L5 and sacrum (then the worst Dice of
            // one against its truth), or what was found instead.
            let (found, worst) = match (rep.vertebrae.as_ref(), out.vertebrae.as_ref()) {
                (Some(v), Some(labels)) => {
                    let names: Vec<&str> = v.vertebrae.iter().map(|x| x.name.as_str()).collect();
                    if names == ["L1", "L2", "L3", "L4", "L5", "sacrum"] {
                        let worst = (LABEL_L1..LABEL_L1 + 5)
                            .zip(20u8..25)
                            .chain([(LABEL_SACRUM, 26)])
                            .map(|(t, p)| label_dice(&labels.data, p, &ph.labels.data, t))
                            .fold(1.0, f64::min);
                        ("L1…S".to_string(), format!("{worst:.3}"))
                    } else if v.numbered_from == "none" {
                        (format!("{} unnamed", names.len()), "—".into())
                    } else {
                        (names.join(","), "—".into())
                    }
                }
                _ => ("—".into(), "—".into()),
            };
            println!(
                "{fov:>6} {scoliosis:>6} {px:>8} {slice:>6} {noise:>6} {:>9} {seed:>4} {dice:>7.4} {:>6.1} cm³ {:>6.1} cm³ {:>6.1} cm³ {:>6.2} {:>5.1} cm³ {:>6} {found:>10} {worst:>8}",
                format!("{cancellous}–{}", cancellous + 100.0),
                cm3(count(&out.mask, &other, true)),
                cm3(count(&truth, &out.mask, false)),
                cm3(count(&out.mask, &truth, false)),
                rep.sigma_used_mm,
                rep.beyond_reach_mm3 / 1000.0,
                rep.weak_bridges_cut
            );
        }
    }
    Ok(())
}
