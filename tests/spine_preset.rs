//! The `spine` preset (issue 3): solid vertebrae of the spine alone.
//! Phantom assertions at the targets; real-data assertions at the
//! levels measured (below the 0.90 target on the real cases: their
//! references leave out spine the preset keeps — S2 on totalseg, L4 and T12
//! on verse012; see the README's spine preset section).

mod common;

use spinemesh::evaluate::{compare, evaluate_files, EvaluateOptions};
use spinemesh::phantom::{generate, PhantomParams, LABEL_METAL, LABEL_PELVIS, LABEL_RIB};
use spinemesh::pipeline::{self, Params};
use spinemesh::run::{self, Silent};

/// Voxels of `a` that are in `b` (`inside`) or not in `b`.
fn overlap(a: &spinemesh::Mask, b: &spinemesh::Mask, inside: bool) -> usize {
    a.data
        .iter()
        .zip(&b.data)
        .filter(|(&x, &y)| x != 0 && (y != 0) == inside)
        .count()
}

/// The spine preset on the phantom `pp`: its output, the mask's Dice
/// against the spine's truth, and the rib and pelvis voxels it kept.
fn spine_on(pp: &PhantomParams) -> (pipeline::Output, f64, usize) {
    let ph = generate(pp);
    let out = pipeline::run(&ph.ct, &Params::spine(), &|_| {}).unwrap();
    let dice = compare(&out.mask, &ph.spine_truth()).unwrap().dice;
    let stray = overlap(&out.mask, &ph.mask_of(&[LABEL_RIB, LABEL_PELVIS]), true);
    (out, dice, stray)
}

/// Realistic (osteopenic, 100–200 HU cancellous), dense, osteoporotic,
/// contrast-enhanced and instrumented phantoms with ribs and pelvis: Dice ≥
/// 0.97 against the truth, not one rib, pelvis or metal voxel, and no more
/// outside the spine with enhanced vessels or implants than without.
#[test]
fn spine_preset_on_phantoms_meets_the_targets() {
    // Osteoporotic: cancellous 40–100 HU, much of it below the fill's 40 HU
    // after noise (0.981 measured; at 20–80 HU 0.979, 0.966 before the
    // canal's body rule and the dark pockets).
    let mut osteoporotic = PhantomParams::demo().realistic();
    osteoporotic.cancellous_hu = (40.0, 100.0);
    // Contrast-enhanced blood (arterial phase) in the aorta, the iliac
    // arteries and the vena cava, in front of the bodies: above the bone
    // threshold, it must not join the spine.
    let mut contrast = PhantomParams::demo().realistic();
    contrast.blood_hu = 350.0;
    // Instrumented L4–L5: pedicle screws and rods (metal, 3071 HU).
    let mut screws = PhantomParams::demo().realistic();
    screws.pedicle_screws = true;
    let mut outside_truth = Vec::new();
    for (name, pp) in [
        ("realistic", PhantomParams::demo().realistic()),
        ("dense", PhantomParams::demo().dense()),
        ("osteoporotic", osteoporotic),
        ("contrast-enhanced", contrast),
        ("instrumented", screws),
    ] {
        let ph = generate(&pp);
        let out = pipeline::run(&ph.ct, &Params::spine(), &|_| {}).unwrap();
        let truth = ph.spine_truth();
        let m = compare(&out.mask, &truth).unwrap();
        let metal = ph.mask_of(&[LABEL_METAL]);
        assert_eq!(
            overlap(&out.mask, &metal, true),
            0,
            "{name}: metal voxels in the mask"
        );
        let rep = out.spine.as_ref().unwrap();
        assert_eq!(
            rep.metal_removed_mm3 > 0.0,
            metal.count() > 0,
            "{name}: {rep:?}"
        );
        outside_truth
            .push(overlap(&out.mask, &truth, false) as f64 * out.mask.grid.voxel_volume_mm3());
        let other = ph.mask_of(&[LABEL_RIB, LABEL_PELVIS]);
        let stray = overlap(&out.mask, &other, true);
        eprintln!(
            "{name} phantom, spine preset: Dice {:.4}, rib/pelvis voxels {stray}",
            m.dice
        );
        assert!(m.dice >= 0.97, "{name}: Dice {}", m.dice);
        assert_eq!(stray, 0, "{name}: rib or pelvis voxels in the mask");
        assert!(rep.canal_slices_found > 20, "{rep:?}");
        // No bone kept beyond the spine's lateral reach: one flood sufficed.
        assert!(
            rep.beyond_reach_mm3 < 1000.0 && !rep.weak_bridges_cut,
            "{name}: {rep:?}"
        );
        assert!(
            rep.isolation_removed_mm3 > 10_000.0,
            "ribs and pelvis removed: {rep:?}"
        );
    }
    // The enhanced vessels add no more than a few voxels of partial volume
    // at the bodies' front (measured: 238 voxels, 0.23 cm³); the implants,
    // their heads and rods behind the arches add nothing (measured: 2
    // voxels fewer than without them; without the metal step the fill kept
    // 99 % of the metal and 13 cm³ more outside the spine).
    let plain = outside_truth[0];
    for (name, k) in [("contrast-enhanced vessels", 3), ("implants", 4)] {
        assert!(
            outside_truth[k] - plain <= 500.0,
            "{name} added {} mm³ outside the spine",
            outside_truth[k] - plain
        );
    }
}

/// Pedicle screws with streak artefacts (beam hardening; the dark band
/// between two screws 300 HU deep): metal and other bones stay out of the
/// mask. Uncorrected, the streaks cost Dice (0.974 → 0.911 measured):
/// bright streaks near the screw heads pass the bone threshold and join the
/// spine (+39 cm³ outside it), the dark band hollows the bodies between the
/// screws (+11 cm³ missed). The beam-hardening correction (`spinemesh::mar`)
/// fitted to this CT brings it to 0.9393 (k 184; the phantom's streaks are
/// its own simulator's, not the correction's model alone: the metal's
/// partial volume, Shepp-Logan filter, 180 views and clamping differ). This
/// asserts the level reached, not a target met.
#[test]
fn spine_preset_with_metal_streaks() {
    let mut pp = PhantomParams::demo().realistic();
    pp.pedicle_screws = true;
    pp.metal_streaks_hu = 300.0;
    let ph = generate(&pp);
    let out = pipeline::run(&ph.ct, &Params::spine(), &|_| {}).unwrap();
    let m = compare(&out.mask, &ph.spine_truth()).unwrap();
    let rep = out.spine.as_ref().unwrap();
    eprintln!(
        "instrumented phantom with streaks: Dice {:.4}, {:?}",
        m.dice, rep.metal_artefacts
    );
    assert_eq!(overlap(&out.mask, &ph.mask_of(&[LABEL_METAL]), true), 0);
    assert_eq!(
        overlap(&out.mask, &ph.mask_of(&[LABEL_RIB, LABEL_PELVIS]), true),
        0
    );
    assert!(rep.metal_removed_mm3 > 0.0);
    let mar = rep.metal_artefacts.as_ref().expect("metal found");
    assert!(
        mar.beam_hardening > 100.0 && mar.mean_change_hu > 10.0,
        "{mar:?}"
    );
    assert!(rep
        .warnings
        .iter()
        .any(|w| w.contains("metal streaks reduced")));
    assert!(m.dice >= 0.93, "Dice {}", m.dice);

    // Without the correction: where it stood.
    let mut plain = Params::spine();
    plain.spine.as_mut().unwrap().metal_artefacts = None;
    let out = pipeline::run(&ph.ct, &plain, &|_| {}).unwrap();
    let before = compare(&out.mask, &ph.spine_truth()).unwrap().dice;
    eprintln!("without the correction: Dice {before:.4}");
    assert!(before < m.dice - 0.015, "{before} vs {}", m.dice);
}

/// Thick slices (3 mm) or strong noise (80 HU, σ raised to 1.16 mm) let
/// partial volume bridge the sacroiliac joints above the bone threshold: the
/// watershed by depth then met at the thin iliac wing and kept the posterior
/// ilium (Dice 0.891 and 0.824, 59 and 115 cm³ of ilium measured). The spine
/// then reaches beyond 55 mm left or right of the canal, and the floods run
/// again with the weak bone entered last: no ilium or rib voxel is kept (at
/// 5 mm slices a few).
#[test]
fn spine_preset_cuts_joints_bridged_by_thick_slices_or_noise() {
    let fov = |slice_mm: f64, noise: f64| {
        let mut pp = PhantomParams::demo().realistic();
        pp.spacing_mm[2] = slice_mm;
        pp.dims[2] = (240.0 / slice_mm) as usize;
        pp.fov_centre_mm[2] = 10.0 - 0.5 * (pp.dims[2] - 1) as f64 * slice_mm;
        pp.noise_sd_hu = noise;
        pp.anatomy_variation = 0.08;
        pp
    };
    // At 5 mm the thin iliac fossa is weak bone too: the bone beyond the
    // spine's lateral reach seeds the ilium's flood (measured: Dice 0.929
    // and 27 ilium voxels, 22 by depth alone; 0.96 / 0.95 at 3 mm / 80 HU).
    //
    // The demo's 1.5 mm slices with the anatomy varied 8 %: seeds 4 and 6
    // put a broad sacroiliac joint where the ilium's thick back meets the
    // ala; by depth alone the floods met at the iliac wing's neck beyond it
    // (57 and 58 cm³ of ilium kept, Dice 0.900 / 0.899). Flooding bright
    // bone before dark in the second flood: seed 4 none (0.980), seed 6
    // 5.5 cm³ (0.972; the other 14 of seeds 1–16 keep none either way; 5.8
    // cm³ since the floods resolve ties by their neighbours, not by the
    // order the voxels are stored in); since no spine seed is taken behind
    // the canal far to its side (the back of seed 6's ilium lay within the
    // seed radius), none (0.980).
    let varied = |seed: u64| PhantomParams {
        anatomy_variation: 0.08,
        seed,
        ..PhantomParams::demo().realistic()
    };
    for (name, pp, want, stray_max) in [
        ("3 mm slices", fov(3.0, 20.0), 0.955, 0),
        ("80 HU noise", fov(2.0, 80.0), 0.945, 0),
        ("5 mm slices", fov(5.0, 20.0), 0.92, 100),
        ("anatomy seed 4", varied(4), 0.975, 0),
        ("anatomy seed 6", varied(6), 0.975, 0),
    ] {
        let (out, dice, stray) = spine_on(&pp);
        let rep = out.spine.as_ref().unwrap();
        eprintln!("{name}: Dice {dice:.4}, rib/pelvis voxels {stray}");
        assert!(rep.weak_bridges_cut, "{name}: {rep:?}");
        assert!(
            stray <= stray_max,
            "{name}: {stray} rib or pelvis voxels in the mask"
        );
        assert!(dice >= want, "{name}: Dice {dice}");
    }
}

/// A narrow pelvis on 1 mm voxels (the phantom's seed 6): the back of the
/// ilium (the posterior iliac spines) comes within the 30 mm the spine is
/// seeded in around the sacral canal, 26–32 mm to its side and 9–19 mm
/// behind it; seeded there, the spine kept 32 cm³ of ilium (Dice 0.934).
/// Behind the canal the spine is seeded within 22 mm of its side only:
/// none kept (measured: Dice 0.981).
#[test]
fn spine_preset_leaves_the_back_of_a_narrow_pelvis() {
    let mut pp = PhantomParams::demo().on_grid(1.0, 1.0, 179.2);
    pp.noise_sd_hu = 20.0;
    pp.cancellous_hu = (100.0, 200.0);
    pp.anatomy_variation = 0.08;
    pp.seed = 6;
    let (_, dice, stray) = spine_on(&pp);
    eprintln!("1 mm, seed 6: Dice {dice:.4}, rib/pelvis voxels {stray}");
    assert_eq!(stray, 0, "rib or pelvis voxels in the mask");
    assert!(dice >= 0.975, "Dice {dice}");
}

/// The same 3 mm phantom stored with patient z along index axis 0 (slices
/// not contiguous: the second flood reads the held smoothed box) gives the
/// same result as the usual stack (measured: Dice 0.9611 both).
#[test]
fn second_flood_on_a_stack_along_index_axis_0() {
    let mut pp = PhantomParams::demo().realistic();
    pp.spacing_mm[2] = 3.0;
    pp.dims[2] = 80;
    pp.fov_centre_mm[2] = 10.0 - 0.5 * 79.0 * 3.0;
    pp.anatomy_variation = 0.08;
    let ph = generate(&pp);
    let g = &ph.ct.grid;
    let [nx, ny, nz] = g.dims;
    let grid = spinemesh::volume::Grid {
        dims: [nz, ny, nx],
        spacing: [g.spacing[2], g.spacing[1], g.spacing[0]],
        origin: g.origin,
        direction: [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]],
    };
    let permute = |d: &[f32]| {
        let mut o = vec![0f32; d.len()];
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    o[z + nz * (y + ny * x)] = d[x + nx * (y + ny * z)];
                }
            }
        }
        o
    };
    let ct = spinemesh::Volume::new(grid.clone(), permute(&ph.ct.data)).unwrap();
    let spine: Vec<f32> = ph
        .labels
        .data
        .iter()
        .map(|&l| f32::from(spinemesh::phantom::is_spine_label(l)))
        .collect();
    let truth = spinemesh::Mask::new(
        grid.clone(),
        permute(&spine).iter().map(|&v| v as u8).collect(),
    )
    .unwrap();
    assert_eq!(grid.axial_axis(), 0);
    let out = pipeline::run(&ct, &Params::spine(), &|_| {}).unwrap();
    let usual = pipeline::run(&ph.ct, &Params::spine(), &|_| {}).unwrap();
    let (a, b) = (
        compare(&out.mask, &truth).unwrap().dice,
        compare(&usual.mask, &ph.spine_truth()).unwrap().dice,
    );
    eprintln!("3 mm phantom along index axis 0: Dice {a:.4}, usual stack {b:.4}");
    assert!(out.spine.as_ref().unwrap().weak_bridges_cut);
    assert!(usual.spine.as_ref().unwrap().weak_bridges_cut);
    assert!((a - b).abs() < 0.002 && a >= 0.955, "{a} vs {b}");
}

/// A spine-centred 110 mm field of view (as spine protocols reconstruct)
/// cuts the iliac wings before the other flood's 65 mm: no bone seeded it,
/// and the spine's flood kept the posterior ilium (Dice 0.910, 54 cm³ of
/// ilium measured). Bone cut by the field of view's side beyond 40 mm left
/// or right of the canal now seeds it: no ilium or rib voxel is kept.
#[test]
fn spine_preset_in_a_small_field_of_view() {
    let mut pp = PhantomParams::demo().realistic().on_grid(0.8, 2.0, 110.0);
    pp.anatomy_variation = 0.08;
    let (_, dice, stray) = spine_on(&pp);
    eprintln!("110 mm field of view: Dice {dice:.4}, rib/pelvis voxels {stray}");
    assert_eq!(stray, 0, "rib or pelvis voxels in the mask");
    assert!(dice >= 0.97, "Dice {dice}");
}

/// A scoliotic lumbar spine (the column 45 mm to the patient's right at L3,
/// its vertebrae turned toward the convex side, 22° there, not tilted; on
/// the midline at L1's top and at S1; 0.8 mm pixels, 2 mm slices): the
/// canal was looked for within 30 mm of the body's left-right centre only,
/// so it was lost in L2–L4, the spine's seeds missed them and the
/// vertebrae went unnamed (Dice 0.743). The bone's own centre (the spine, between the ribs and the
/// pelvis) now counts too: 0.979, L1–L5 and the sacrum named (worst
/// vertebra 0.915), no rib or ilium. The same rule finds the canal of a
/// spine 60 mm off the centre of a field of view that cuts the body on one
/// side (the body's centre then lies far from the spine): before, the canal
/// was found in 3 slices only and the largest component was kept, ribs and
/// ilium with it (Dice 0.762), now 0.980.
#[test]
fn spine_preset_finds_a_canal_off_the_body_midline() {
    let mut scoliotic = PhantomParams::demo().realistic().on_grid(0.8, 2.0, 179.2);
    scoliotic.anatomy_variation = 0.08;
    let mut off_centre = scoliotic.clone();
    scoliotic.scoliosis_mm = -45.0;
    // Shifted and turned only: this tests the canal's midline rule. Tilted
    // with a curve this strong (Cobb angle ~76°) the mask holds (0.983), but
    // L5 sits ~38° off the sacrum, beyond the split's endplate tilts, and the
    // labels are one level off (a known limit).
    scoliotic.scoliosis_tilt = 0.0;
    off_centre.fov_centre_mm[0] = 60.0;
    for (name, pp) in [("scoliotic", scoliotic), ("off-centre", off_centre)] {
        let ph = generate(&pp);
        let out = pipeline::run(&ph.ct, &Params::spine(), &|_| {}).unwrap();
        let m = compare(&out.mask, &ph.spine_truth()).unwrap();
        let rep = out.spine.as_ref().unwrap();
        eprintln!("{name} phantom: Dice {:.4}, {rep:?}", m.dice);
        assert!(m.dice >= 0.97, "{name}: Dice {}", m.dice);
        let other = ph.mask_of(&[LABEL_RIB, LABEL_PELVIS]);
        assert_eq!(
            overlap(&out.mask, &other, true),
            0,
            "{name}: rib or pelvis voxels"
        );
        let names: Vec<&str> = rep
            .vertebrae
            .as_ref()
            .unwrap()
            .vertebrae
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(names, ["L1", "L2", "L3", "L4", "L5", "sacrum"], "{name}");
    }
}

/// The realistic phantom's hollow bodies are what the paper's recipe gets
/// wrong: the spine preset must beat it clearly.
#[test]
fn spine_preset_fills_realistic_phantom_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let pp = PhantomParams::demo().realistic();
    let spine = run::demo(dir.path(), &pp, &Params::spine(), &Silent).unwrap();
    let paper = run::demo(dir.path(), &pp, &Params::paper(), &Silent).unwrap();
    eprintln!(
        "realistic phantom: spine {:.4}, paper {:.4}",
        spine.metrics.dice, paper.metrics.dice
    );
    assert!(spine.metrics.dice > paper.metrics.dice + 0.1);
    let rep = spine.report.segmentation.spine.as_ref().unwrap();
    assert!(rep.fill_added_mm3 > 10_000.0, "{rep:?}");
}

fn real_case_dice(case: &str, labels: std::ops::RangeInclusive<i64>) -> Option<f64> {
    real_case_dice_with(case, labels, &Params::spine())
}

fn real_case_dice_with(
    case: &str,
    labels: std::ops::RangeInclusive<i64>,
    params: &Params,
) -> Option<f64> {
    let case = common::shared_case(case)?;
    let dir = tempfile::tempdir().unwrap();
    let r = run::reconstruct(&case.join("ct.nii.gz"), dir.path(), params, &Silent).unwrap();
    assert!(r.mesh.watertight);
    let m = evaluate_files(
        &dir.path().join("mask.nii.gz"),
        &case.join("vertebrae.nii.gz"),
        &EvaluateOptions {
            ref_labels: labels.collect(),
            pred_labels: vec![],
            within_ref_slices: true,
        },
    )
    .unwrap();
    Some(m.dice)
}

#[test]
fn spine_preset_on_real_abdominal_ct() {
    let Some(dice) = real_case_dice("totalseg-abdomen-3mm", 26..=31) else {
        return;
    };
    eprintln!("totalseg-abdomen-3mm L1–S1, spine preset: Dice {dice:.4} (paper: 0.55)");
    // 0.9054 measured (0.9049 before the split's flood was slowed climbing
    // above a vertebra's upper disc plane, which moves the holes it fills;
    // 0.9048 before no spine seed was taken behind the canal far to its
    // side; 0.9028 before the canal chain allowed gaps of two
    // vertebrae, 0.9052 with them before the spine was seeded 60 mm past
    // the canal's ends), the same in every voxel order
    // (tests/orientation.rs).
    // As stored it was 0.9089 (0.9003 before the split cleared clefts and
    // filled each vertebra's sagittal and coronal holes), flipped front-back
    // 0.9024: the canal's first centres, in the sacrum, were dropped as
    // outliers in one order only, and with them 9 cm³ of the sacrum's back
    // (laminae and median crest behind S1–S2, which the S1-only reference
    // leaves out) went to the other flood.
    assert!(dice >= 0.90, "Dice {dice}");
}

/// A bone threshold 10–30 HU off the default (another scanner's calibration,
/// a user's choice) must not lose the canal and with it the spine: with the
/// canal looked for only among holes of the bone, 130 HU gave 0.67 on
/// totalseg and 150 HU 0.53 on verse012 (the arches open).
#[test]
fn spine_preset_survives_other_bone_thresholds() {
    for (low, min_ts, min_verse) in [
        (100.0, 0.875, 0.80),
        (140.0, 0.89, 0.79),
        (150.0, 0.885, 0.78),
    ] {
        let mut p = Params::spine();
        p.threshold_hu[0] = low;
        let Some(ts) = real_case_dice_with("totalseg-abdomen-3mm", 26..=31, &p) else {
            return;
        };
        let verse = real_case_dice_with("verse012-thoracolumbar", 20..=22, &p).unwrap();
        eprintln!("bone ≥ {low} HU: totalseg L1–S1 Dice {ts:.4}, verse012 L1–L3 {verse:.4}");
        assert!(ts >= min_ts, "{low} HU: totalseg Dice {ts}");
        assert!(verse >= min_verse, "{low} HU: verse012 Dice {verse}");
    }
}

#[test]
fn spine_preset_on_real_noisy_thoracolumbar_ct() {
    let Some(dice) = real_case_dice("verse012-thoracolumbar", 20..=22) else {
        return;
    };
    eprintln!("verse012 L1–L3, spine preset: Dice {dice:.4} (paper: 0.70)");
    // 0.8163 measured (0.8117 before the split's flood was slowed climbing
    // above a vertebra's upper disc plane; 0.785 before the split cleared
    // the discs the mask took in and filled each vertebra's holes; L4 and
    // T12 in the same slices count against it).
    assert!(dice >= 0.80, "Dice {dice}");
}

#[test]
fn spine_preset_drops_ribs_and_pelvis_on_real_petct() {
    let Some(case) = common::shared_case("acrin-petct-two-series") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spine = run::reconstruct(&case, &dir.path().join("s"), &Params::spine(), &Silent).unwrap();
    let paper = run::reconstruct(&case, &dir.path().join("p"), &Params::paper(), &Silent).unwrap();
    let rep = spine.segmentation.spine.as_ref().unwrap();
    eprintln!(
        "acrin: spine {:.0} mm³ (removed {:.0} mm³ as other bone), paper {:.0} mm³",
        spine.mask.volume_mm3, rep.isolation_removed_mm3, paper.mask.volume_mm3
    );
    // The paper's largest component holds ribs and pelvis; the spine preset
    // removes over a litre of other bone.
    assert!(rep.isolation_removed_mm3 > 1.0e6);
    assert!(spine.mask.volume_mm3 < 0.75 * paper.mask.volume_mm3);
    // The mask read back, in LPS: per axial slice its left-right width. The
    // widest part of a spine is the sacrum (≤ 120 mm in adults) or the rib
    // heads' stubs; ilia and femora make the paper's mask 250+ mm wide.
    let mask = spinemesh::io::read_label_volume(&dir.path().join("s/mask.nii.gz")).unwrap();
    let g = &mask.grid;
    let (mut max_width, mut z_lo, mut z_hi) = (0.0f64, f64::MAX, f64::MIN);
    for z in 0..g.dims[2] {
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for y in 0..g.dims[1] {
            for x in 0..g.dims[0] {
                if mask.get(x, y, z) != 0.0 {
                    let p = g.index_to_lps([x as f64, y as f64, z as f64]);
                    lo = lo.min(p[0]);
                    hi = hi.max(p[0]);
                    z_lo = z_lo.min(p[2]);
                    z_hi = z_hi.max(p[2]);
                }
            }
        }
        if hi >= lo {
            max_width = max_width.max(hi - lo + g.spacing[0]);
        }
    }
    eprintln!(
        "acrin spine mask: widest axial extent {max_width:.0} mm, superior-inferior {:.0} mm",
        z_hi - z_lo
    );
    assert!(
        max_width < 130.0,
        "{max_width} mm wide: ilium or femur kept?"
    );
    // L1 to the sacrum span ~200 mm; the series covers lower thorax to pelvis.
    assert!(z_hi - z_lo > 250.0, "{} mm long", z_hi - z_lo);
}

/// Three slices 1 mm apart (less than a vertebra): the canal cannot be
/// trusted over 2 mm, so the largest component is kept, with a warning, and
/// it is the spine (Dice against the case's spine label map). A fatty
/// vertebral body's dark interior once passed for the canal here and the
/// posterior elements were cut off (Dice 0.72).
#[test]
fn spine_preset_on_a_three_slice_slab() {
    let Some(case) = common::shared_case("ct3slice-spine-seg") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let r = run::reconstruct(&case, dir.path(), &Params::spine(), &Silent).unwrap();
    let rep = r.segmentation.spine.as_ref().unwrap();
    assert!(
        rep.warnings.iter().any(|w| w.contains("not isolated")),
        "{:?}",
        rep.warnings
    );
    let m = evaluate_files(
        &dir.path().join("mask.nii.gz"),
        &case.join("spine_seg.nrrd"),
        &EvaluateOptions::default(),
    )
    .unwrap();
    eprintln!("ct3slice-spine-seg, spine preset: Dice {:.4}", m.dice);
    assert!(m.dice >= 0.89, "Dice {}", m.dice);
}
