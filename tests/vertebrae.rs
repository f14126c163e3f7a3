//! The spine split into numbered vertebrae (`vertebrae.nii.gz`): against the
//! phantom's per-vertebra truth, and on the real cases (VerSe numbering:
//! 17 T10 … 19 T12, 20 L1 … 24 L5, 26 sacrum).

mod common;

use spinemesh::evaluate::{evaluate_files, label_dice as dice, EvaluateOptions};
use spinemesh::phantom::{generate, PhantomParams, LABEL_L1, LABEL_SACRUM};
use spinemesh::pipeline::{self, Params};
use spinemesh::run::{self, Silent, VERTEBRAE_FILE};
use spinemesh::segment::vertebrae::VertebraReport;

/// Realistic and dense phantoms (L1 to the sacrum, ribs, pelvis), and one
/// of 0.5 mm slices with its anatomy varied: L1–L5 and the sacrum found,
/// named from the sacrum, each against its truth.
/// Each of our labels L1–L5 and sacrum (VerSe 20–24, 26): the label, its
/// name and its Dice against the phantom's vertebra.
fn phantom_vertebra_dice(labels: &[u8], truth: &[u8]) -> Vec<(u8, String, f64)> {
    (LABEL_L1..LABEL_L1 + 5)
        .zip(20u8..25)
        .chain([(LABEL_SACRUM, 26)])
        .map(|(t, pred)| {
            let name = spinemesh::segment::vertebrae::verse_name(pred);
            (pred, name, dice(labels, pred, truth, t))
        })
        .collect()
}

/// The robustness sweep's grid (0.8 mm pixels, 2 mm slices, 179 mm field
/// of view), anatomy varied 8 %, seed 1.
fn sweep_phantom() -> PhantomParams {
    let mut pp = PhantomParams::demo().on_grid(0.8, 2.0, 179.2);
    pp.anatomy_variation = 0.08;
    pp.seed = 1;
    pp
}

/// The spine preset on phantom `pp` (`name` in the messages): its mask's
/// Dice at least `mask_least`, each of L1–L5 and the sacrum at least
/// `vertebra_least` against its truth; the report, for further checks.
fn assert_phantom_split(
    name: &str,
    pp: &PhantomParams,
    mask_least: f64,
    vertebra_least: f64,
) -> spinemesh::segment::SpineReport {
    let ph = generate(pp);
    let out = pipeline::run(&ph.ct, &Params::spine(), &|_| {}).unwrap();
    let m = spinemesh::evaluate::compare(&out.mask, &ph.spine_truth()).unwrap();
    let rep = out.spine.clone().unwrap();
    eprintln!("{name}: Dice {:.4}, {rep:?}", m.dice);
    assert!(m.dice >= mask_least, "{name}: Dice {}", m.dice);
    let labels = out.vertebrae.as_ref().expect("vertebra labels");
    for (_, vertebra, d) in phantom_vertebra_dice(&labels.data, &ph.labels.data) {
        eprintln!("{name}: {vertebra} Dice {d:.4}");
        assert!(d >= vertebra_least, "{name}: {vertebra}: Dice {d}");
    }
    rep
}

/// Severely osteoporotic bone (cancellous 20–120 HU, the robustness sweep's
/// darkest case: 0.8 mm pixels, 2 mm slices, 30 HU noise, anatomy varied 8 %,
/// seed 1): L1's body, the darkest, is a hole as dark as the canal, 17 mm in
/// front of it. The canal's chain ran through L1's and L2's bodies there (the
/// canal is no hole where the arch is open, the body is), so L1's body stayed
/// hollow (as the canal, it was kept open) and its arch went to L2: Dice
/// 0.970, L1 0.695. With the candidates that have a canal behind them left
/// out, and the dark pockets in front of the canal filled: 0.978, L1 0.976
/// (on this grid, the sweep's 223 × 208 × 120; with 224 columns 0.974, every
/// vertebra ≥ 0.96).
#[test]
fn canal_is_not_tracked_through_dark_vertebral_bodies() {
    let mut pp = sweep_phantom();
    pp.noise_sd_hu = 30.0;
    pp.cancellous_hu = (20.0, 120.0);
    let rep = assert_phantom_split("osteoporotic", &pp, 0.975, 0.95);
    assert!(rep.pockets_filled_mm3 > 2000.0, "{rep:?}");
}

/// Scoliotic spines whose vertebrae tilt with the curve (0.8 mm pixels,
/// 2 mm slices, anatomy varied 8 %, seed 1; the sacrum level, so the L5/S1
/// disc is a wedge): 15 mm to the left (Cobb angle ~29°), 15 mm to the
/// right with osteoporotic bone (cancellous 20–120 HU, 30 HU noise), 25 mm
/// to the left (~47°), 30 mm to the right (~55°) and 35 mm to the left
/// (~63°). An axial slice near a disc holds only one corner of a tilted
/// body, whose centre lies up to 15 mm to the side; the body line ran
/// through those corners in a zigzag, the samples across it cut the L5/S1
/// endplates obliquely, the disc's valley was too faint and L5 went with
/// the sacrum: five pieces, every label one level off (Dice ~0 for L1–L5)
/// at 15 mm either way. With the line placed by the full sections and the
/// endplates sampled tilted too: L1–L5 and the sacrum named, each ≥ 0.92
/// (the 25 mm case needs both; at 35 mm L5 sits 31° off the sacrum, and
/// tilts of 15° were not enough). At 30 mm the canal was lost first (Dice
/// 0.635): a tilted arch's ring is closed in an axial slice only near its
/// middle, and the canal chain, allowed gaps of 40 mm, broke at the 64 mm
/// between the sacral canal and L5's; with gaps of two vertebrae (70 mm),
/// 0.982. At 35 mm L1 then lost its upper half (0.52, mask 0.954): above
/// the last slice with a canal found, it was not seeded as spine (30 mm
/// past the canal's ends); with 60 mm, 0.974 and 0.982.
///
/// On 3 mm slices, 30 mm to the left: L5's transverse process, tilted down
/// to the iliac crest, touches the ilium over 845 mm², more than the
/// sacroiliac joints' 800 mm², and L5 was taken as the sacrum's top piece
/// (labels one off, Dice ~0). It touches one ilium only; the joints are
/// two: with both sides needed, named, each ≥ 0.93 (mask 0.969).
#[test]
fn vertebrae_of_a_scoliotic_spine_are_counted() {
    for (shift, osteoporotic, slice_mm, mask_least) in [
        (15.0, false, 2.0, 0.97),
        (-15.0, true, 2.0, 0.97),
        (25.0, false, 2.0, 0.97),
        (-30.0, false, 2.0, 0.97),
        (35.0, false, 2.0, 0.97),
        (30.0, false, 3.0, 0.96),
    ] {
        let mut pp = sweep_phantom().on_grid(0.8, slice_mm, 179.2);
        pp.scoliosis_mm = shift;
        if osteoporotic {
            pp.noise_sd_hu = 30.0;
            pp.cancellous_hu = (20.0, 120.0);
        }
        let name = format!("scoliosis {shift} mm, {slice_mm} mm slices");
        assert_phantom_split(&name, &pp, mask_least, 0.92);
    }
}

#[test]
fn vertebrae_of_the_phantom_are_found_and_named() {
    let mut thin = PhantomParams::demo();
    thin.spacing_mm = [0.8, 0.8, 0.5];
    thin.dims = [224, 208, 480];
    thin.fov_centre_mm = [0.0, -2.0, 10.0 - 0.5 * 479.0 * 0.5];
    thin.anatomy_variation = 0.08;
    for (name, pp) in [
        ("realistic", PhantomParams::demo().realistic()),
        ("dense", PhantomParams::demo().dense()),
        ("0.5 mm slices", thin),
    ] {
        let ph = generate(&pp);
        let out = pipeline::run(&ph.ct, &Params::spine(), &|_| {}).unwrap();
        let labels = out.vertebrae.as_ref().expect("vertebra labels");
        let rep = out.spine.as_ref().unwrap().vertebrae.as_ref().unwrap();
        eprintln!("{name}: {rep:?}");
        assert_eq!(rep.numbered_from, "sacrum", "{name}");
        let names: Vec<&str> = rep.vertebrae.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["L1", "L2", "L3", "L4", "L5", "sacrum"], "{name}");
        // The labels cover exactly the mask.
        for (&l, &m) in labels.data.iter().zip(&out.mask.data) {
            assert_eq!(l != 0, m != 0);
        }
        let mut worst = 1f64;
        for (_, vertebra, d) in phantom_vertebra_dice(&labels.data, &ph.labels.data) {
            eprintln!("{name}: {vertebra} Dice {d:.4}");
            worst = worst.min(d);
        }
        assert!(worst >= 0.96, "{name}: worst vertebra Dice {worst}");
    }
}

/// 1 mm pixels and 3 mm slices, seed 6 of the varied anatomy: L1 took the
/// pedicle and transverse process of one side of L2 through the facet
/// joint before L2's own flood came up its pedicle (L1 0.847). With a
/// label's flood slowed where it descends more than 5 mm below its lower
/// disc plane near the canal (`descent_depth_per_mm`): L1 0.957, L2 0.960,
/// every vertebra ≥ 0.92 (L5 0.928).
#[test]
fn an_arch_goes_with_its_own_body_not_the_vertebra_above() {
    let mut pp = PhantomParams::demo().realistic().on_grid(1.0, 3.0, 179.2);
    pp.anatomy_variation = 0.08;
    pp.seed = 6;
    assert_phantom_split("1 × 1 × 3 mm, seed 6", &pp, 0.95, 0.92);
}

/// A sagittal slab (3 mm left to right, 1 mm otherwise, as verse012; the
/// robustness sweep's "3×1" case, seeds 1 and 2): the facet joints, running
/// front to back, are blurred away, and the vertebra below took the
/// inferior articular processes of the one above through them before that
/// one's flood came down its own lamina (seed 2: worst vertebra 0.889, mean
/// 0.924). With a label's flood slowed where it climbs above its vertebra's
/// upper disc plane (`climb_depth_per_mm`): 0.906 and 0.934; seed 1 0.904 →
/// 0.925.
#[test]
fn facet_joints_of_a_sagittal_slab_go_with_the_vertebra_above() {
    for seed in [1, 2] {
        let mut pp = PhantomParams::demo().on_grid(1.0, 1.0, 179.2);
        pp.spacing_mm[0] = 3.0;
        pp.dims[0] = (179.2 / 3.0) as usize;
        pp.cancellous_hu = (100.0, 200.0);
        pp.anatomy_variation = 0.08;
        pp.seed = seed;
        let name = format!("3 × 1 × 1 mm slab, seed {seed}");
        assert_phantom_split(&name, &pp, 0.95, 0.90);
    }
}

/// Pedicle screws in L4 and L5 with streak artefacts (a dark band 300 HU
/// deep between two screws): the streaks darken the bodies at the screws'
/// slices like a disc, and the split cut L5 or L4 in two or merged L5 with
/// the sacrum, so every name above was wrong (2 of seeds 1–8 named right).
/// With the CT corrected (`spinemesh::mar`) and no disc taken where metal is
/// near the body line, 7 of 8 are (seed 5: L5 with the sacrum). L4 and L5
/// lose the bone around the screws (0.77–0.80, 0.83–0.85).
#[test]
fn vertebrae_of_the_instrumented_phantom_with_streaks() {
    for seed in [1, 2, 3] {
        let mut pp = PhantomParams::demo().realistic();
        pp.pedicle_screws = true;
        pp.metal_streaks_hu = 300.0;
        pp.seed = seed;
        let ph = generate(&pp);
        let out = pipeline::run(&ph.ct, &Params::spine(), &|_| {}).unwrap();
        let labels = out.vertebrae.as_ref().expect("vertebra labels");
        let rep = out.spine.as_ref().unwrap().vertebrae.as_ref().unwrap();
        let names: Vec<&str> = rep.vertebrae.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            ["L1", "L2", "L3", "L4", "L5", "sacrum"],
            "seed {seed}"
        );
        for (pred, vertebra, d) in phantom_vertebra_dice(&labels.data, &ph.labels.data) {
            eprintln!("seed {seed}: {vertebra} Dice {d:.4}");
            let least = if (23..25).contains(&pred) { 0.75 } else { 0.95 };
            assert!(d >= least, "seed {seed}: {vertebra} Dice {d}");
        }
    }
}

/// Reconstructs a shared case; its vertebra report and output folder.
fn reconstruct_case(case: &str, input: &str) -> Option<(VertebraReport, tempfile::TempDir)> {
    let case = common::shared_case(case)?;
    let dir = tempfile::tempdir().unwrap();
    let r = run::reconstruct(&case.join(input), dir.path(), &Params::spine(), &Silent).unwrap();
    let rep = r.segmentation.spine.unwrap().vertebrae.unwrap();
    assert_eq!(r.outputs.vertebrae.as_deref(), Some(VERTEBRAE_FILE));
    Some((rep, dir))
}

fn label_dice(dir: &std::path::Path, case: &str, labels: &[i64], within: bool) -> f64 {
    let case = common::shared_case(case).unwrap();
    evaluate_files(
        &dir.join(VERTEBRAE_FILE),
        &case.join("vertebrae.nii.gz"),
        &EvaluateOptions {
            ref_labels: labels.to_vec(),
            pred_labels: labels.to_vec(),
            within_ref_slices: within,
        },
    )
    .unwrap()
    .dice
}

/// verse012 (a 3 mm sagittal slab, T9 to L4, ribs cut by the slab's sides):
/// numbered from T12, the lowest vertebra a rib touches; L1–L3 by their
/// own labels, so that L4 and T12 in the same slices no longer count
/// against them (0.785 with the whole mask): 0.9036 (0.8962 before the
/// flood was slowed climbing above a vertebra's upper disc plane: 1 397
/// voxels of L3's inferior articular processes were L4's; 0.9021 before it
/// was slowed descending near the canal too).
#[test]
fn vertebrae_of_the_real_thoracolumbar_slab() {
    let case = "verse012-thoracolumbar";
    let Some((rep, dir)) = reconstruct_case(case, "ct.nii.gz") else {
        return;
    };
    assert_eq!(rep.numbered_from, "ribs", "{rep:?}");
    let names: Vec<&str> = rep.vertebrae.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4"]);
    let l1_l3 = label_dice(dir.path(), case, &[20, 21, 22], true);
    let t10_l3 = label_dice(dir.path(), case, &[17, 18, 19, 20, 21, 22], true);
    eprintln!("verse012 by vertebra labels: L1–L3 Dice {l1_l3:.4}, T10–L3 {t10_l3:.4}");
    assert!(l1_l3 >= 0.90, "L1–L3 Dice {l1_l3}");
    assert!(t10_l3 >= 0.89, "T10–L3 Dice {t10_l3}");
    // Its thoracic and upper lumbar discs, blurred above the bone threshold
    // on this noisy slab, are cleared where two vertebrae meet (33 cm³).
    assert!(
        rep.clefts_cleared_mm3 > 15_000.0,
        "{}",
        rep.clefts_cleared_mm3
    );
    // … and leave no specks cut off (18 pieces of 3–21 mm³ before they
    // went too): the mask is one piece.
    let mask = spinemesh::io::nifti::read_nifti(&dir.path().join("mask.nii.gz"))
        .unwrap()
        .volume
        .map(|v| u8::from(v != 0.0));
    let pieces = spinemesh::components::label(&mask, spinemesh::components::Connectivity::Six);
    assert_eq!(pieces.count(), 1, "{:?}", pieces.sizes);
    // Each vertebra is one piece too (its mesh one body): the clefts left
    // specks of 1–40 voxels cut off from their vertebra, 3–11 per label,
    // until pieces of up to 1 cm³ joined the label they touch most.
    let labels = spinemesh::io::nifti::read_nifti(&dir.path().join(VERTEBRAE_FILE))
        .unwrap()
        .volume;
    for l in 16u8..=23 {
        let one = labels.map(|v| u8::from(v as u8 == l));
        let pieces = spinemesh::components::label(&one, spinemesh::components::Connectivity::Six);
        assert_eq!(pieces.count(), 1, "label {l}: {:?}", pieces.sizes);
    }
    // Measured: T10 0.790, T11 0.815, T12 0.860, L1 0.861, L2 0.875, L3
    // 0.870 (before the climb and descent were slowed: 0.784, 0.802,
    // 0.836, 0.844, 0.855, 0.853).
    for l in 17..=22 {
        let d = label_dice(dir.path(), case, &[l], false);
        eprintln!("verse012 label {l}: Dice {d:.4}");
        assert!(d >= 0.785, "label {l}: Dice {d}");
    }
}

/// acrin (5 mm PET/CT, lower thorax to pelvis): numbered from the sacrum,
/// which the ilium touches at the sacroiliac joints; L1–L5 above it, each
/// lower than the one before, and L5 without S1's arch.
#[test]
fn vertebrae_of_the_real_lumbar_spine_with_pelvis() {
    let Some((rep, dir)) = reconstruct_case("acrin-petct-two-series", "") else {
        return;
    };
    assert_eq!(rep.numbered_from, "sacrum", "{rep:?}");
    let names: Vec<&str> = rep.vertebrae.iter().map(|v| v.name.as_str()).collect();
    let tail = &names[names.len() - 7..];
    assert_eq!(
        tail,
        ["T12", "L1", "L2", "L3", "L4", "L5", "sacrum"],
        "{names:?}"
    );
    // Label centres run down the patient from T12 to the sacrum.
    let v = spinemesh::io::nifti::read_nifti(&dir.path().join(VERTEBRAE_FILE))
        .unwrap()
        .volume;
    let centre_z = |l: u8| {
        let (mut s, mut n) = (0.0, 0usize);
        for (i, &x) in v.data.iter().enumerate() {
            if x as u8 == l {
                let c = v.grid.coords(i);
                s += v.grid.index_to_lps([c[0] as f64, c[1] as f64, c[2] as f64])[2];
                n += 1;
            }
        }
        s / n.max(1) as f64
    };
    let z: Vec<f64> = [19u8, 20, 21, 22, 23, 24, 26]
        .iter()
        .map(|&l| centre_z(l))
        .collect();
    assert!(z.windows(2).all(|w| w[0] > w[1]), "{z:?}");
    // S1's arch is the sacrum's: judged at its own place behind the steep
    // L5/S1 disc (29° off the slices), it lay in L5's span, no seed took
    // it, and L5 flooded it through the facet joints (L5 108 cm³, 1.86 ×
    // L4; the sacrum 91 cm³). Judged at the canal's depth: L5 99 cm³, 1.71 ×
    // L4, the sacrum 103 cm³ (the facets' level and bits of the alae's top
    // are still L5's). L4's arch behind its body was L5's too (flooded up
    // through the facet joints, 5 mm slices); with the flood slowed
    // climbing above a vertebra's upper disc plane: L4 58 → 65 cm³, L5 99
    // → 92 cm³ (1.42 × L4); and L5's label reached into the sacrum's
    // dorsal bone behind S1–S2 until it was slowed descending near the
    // canal: L5 73 cm³ (1.13 × L4), the sacrum 103 → 124 cm³.
    let volume = |name: &str| {
        rep.vertebrae
            .iter()
            .find(|v| v.name == name)
            .map_or(0.0, |v| v.volume_mm3)
    };
    let (l4, l5, sacrum) = (volume("L4"), volume("L5"), volume("sacrum"));
    assert!(
        l5 < 1.5 * l4 && l5 < sacrum,
        "L4 {l4}, L5 {l5}, sacrum {sacrum}"
    );
}

/// totalseg (3 mm, T11 to S1 with the field of view cutting the sacrum):
/// numbered from the sacrum; the tilted L5/S1 disc, too faint a valley for
/// the chain, is placed from the sacroiliac joints (the ilium touches the
/// piece far below its top). Each vertebra against the reference's label
/// (totalseg: 26 S1, 27 L5 … 31 L1, 32 T12).
#[test]
fn vertebrae_of_the_real_abdominal_ct() {
    let case = "totalseg-abdomen-3mm";
    let Some((rep, dir)) = reconstruct_case(case, "ct.nii.gz") else {
        return;
    };
    assert_eq!(rep.numbered_from, "sacrum", "{rep:?}");
    let pred = spinemesh::io::nifti::read_nifti(&dir.path().join(VERTEBRAE_FILE))
        .unwrap()
        .volume;
    // Marrow darker than the fill's limit in narrow spinous processes: holes
    // of their vertebra in its sagittal planes (9.2 cm³ filled measured),
    // which the written mask holds too, as it leaves out the clefts cleared.
    assert!(rep.holes_filled_mm3 > 4000.0, "{}", rep.holes_filled_mm3);
    let mask = spinemesh::io::nifti::read_nifti(&dir.path().join("mask.nii.gz"))
        .unwrap()
        .volume;
    assert!(pred
        .data
        .iter()
        .zip(&mask.data)
        .all(|(&l, &m)| (l != 0.0) == (m != 0.0)));
    let reference = spinemesh::io::nifti::read_nifti(
        &common::shared_case(case).unwrap().join("vertebrae.nii.gz"),
    )
    .unwrap()
    .volume;
    let p: Vec<u8> = pred.data.iter().map(|&x| x as u8).collect();
    let r: Vec<u8> = reference.data.iter().map(|&x| x as u8).collect();
    // Measured (whole volume): sacrum 0.689, L5 0.879, L4 0.929, L3 0.934,
    // L2 0.940, L1 0.933, T12 0.876, in every voxel order (0.677, 0.856,
    // 0.912, 0.931, 0.938, 0.933, 0.876 before the flood was slowed
    // climbing above a vertebra's upper disc plane; 0.712, 0.834,
    // 0.882, 0.904, 0.898, 0.924, 0.876 before the body line was weighted
    // by the body's section and the canal chain allowed gaps of two
    // vertebrae; the sacrum 0.712 → 0.677 since the spine is seeded 60 mm
    // past the canal's ends: 5.7 cm³ of S2–S3's posterior bone, below the
    // S1-only reference). As stored before the voxel-order fixes (ties in storage
    // order): 0.757, 0.871, 0.935, 0.899, 0.876, 0.910, 0.876 — which side
    // of a facet joint a tie falls on moves a few cm³ between neighbours;
    // the sacrum and L5 also hold the sacrum's back now (see
    // spine_preset.rs), outside the S1-only reference.
    for (ours, theirs, least) in [
        (26u8, 26u8, 0.66),
        (24, 27, 0.86),
        (23, 28, 0.92),
        (22, 29, 0.92),
        (21, 30, 0.92),
        (20, 31, 0.92),
        (19, 32, 0.86),
    ] {
        let d = dice(&p, ours, &r, theirs);
        let name = spinemesh::segment::vertebrae::verse_name(ours);
        eprintln!("totalseg {name}: Dice {d:.4}");
        assert!(d >= least, "{name}: Dice {d}");
    }
}

/// `--levels`: the mask, the mesh and the label map keep the chosen
/// vertebrae only (phantom L2–L4 against their truth); the paper preset and
/// unnamed vertebrae refuse with a clear error.
#[test]
fn chosen_levels_are_kept_alone() {
    let ph = generate(&PhantomParams::demo().realistic());
    let mut params = Params::spine();
    params.levels = Some([21, 23]);
    let out = pipeline::run(&ph.ct, &params, &|_| {}).unwrap();
    let labels = out.vertebrae.as_ref().unwrap();
    let present: std::collections::BTreeSet<u8> =
        labels.data.iter().copied().filter(|&l| l != 0).collect();
    assert_eq!(present.into_iter().collect::<Vec<_>>(), [21, 22, 23]);
    for (&l, &m) in labels.data.iter().zip(&out.mask.data) {
        assert_eq!(l != 0, m != 0);
    }
    let truth = ph.mask_of(&[LABEL_L1 + 1, LABEL_L1 + 2, LABEL_L1 + 3]);
    let m = spinemesh::evaluate::compare(&out.mask, &truth).unwrap();
    eprintln!("phantom L2–L4 kept alone: Dice {:.4}", m.dice);
    assert!(m.dice >= 0.95, "Dice {}", m.dice);
    let rep = out.spine.as_ref().unwrap();
    assert!(
        rep.levels_removed_mm3 > 100_000.0,
        "{}",
        rep.levels_removed_mm3
    );
    // The mesh is of those three only: well under the whole spine's volume.
    assert!(out.mesh_report.check.volume_mm3 < 0.5 * rep.kept_mm3);

    let mut paper = Params::paper();
    paper.levels = Some([20, 24]);
    let e = pipeline::run(&ph.ct, &paper, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("spine preset"), "{e}");
    let mut none = Params::spine();
    none.levels = Some([20, 24]);
    none.spine.as_mut().unwrap().vertebrae = None;
    let e = pipeline::run(&ph.ct, &none, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("--no-vertebrae"), "{e}");
}

/// verse012 with `--levels L1-L3`: the mask itself now scores what its
/// labels did (0.9036 within the reference's slices; IoU 0.824, HD95 3 mm).
#[test]
fn real_thoracolumbar_slab_with_chosen_levels() {
    let case = "verse012-thoracolumbar";
    let Some(dir) = common::shared_case(case) else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let mut params = Params::spine();
    params.levels = Some([20, 22]);
    let r = run::reconstruct(&dir.join("ct.nii.gz"), out.path(), &params, &Silent).unwrap();
    assert!(r.mesh.watertight);
    let d = evaluate_files(
        &out.path().join("mask.nii.gz"),
        &dir.join("vertebrae.nii.gz"),
        &EvaluateOptions {
            ref_labels: vec![20, 21, 22],
            pred_labels: vec![],
            within_ref_slices: true,
        },
    )
    .unwrap()
    .dice;
    eprintln!("verse012 --levels L1-L3: mask Dice {d:.4}");
    assert!(d >= 0.90, "Dice {d}");
}

/// Whether `p` lies inside the closed mesh `m`: the parity of its triangles
/// crossed by a ray from `p` along +z (nudged off the grid's planes, so that
/// it meets no edge or vertex of a marching-cubes surface).
fn inside_mesh(m: &spinemesh::surface::Mesh, p: [f32; 3]) -> bool {
    let (px, py, pz) = (p[0] as f64 + 1.3e-4, p[1] as f64 + 0.7e-4, p[2] as f64);
    let mut crossings = 0;
    for t in &m.triangles {
        let v = t.map(|i| m.vertices[i as usize].map(|c| c as f64));
        let (x0, x1) = (
            v[0][0].min(v[1][0]).min(v[2][0]),
            v[0][0].max(v[1][0]).max(v[2][0]),
        );
        let (y0, y1) = (
            v[0][1].min(v[1][1]).min(v[2][1]),
            v[0][1].max(v[1][1]).max(v[2][1]),
        );
        if px < x0 || px > x1 || py < y0 || py > y1 {
            continue;
        }
        // Barycentric coordinates of (px, py) in the projected triangle.
        let d =
            (v[1][1] - v[2][1]) * (v[0][0] - v[2][0]) + (v[2][0] - v[1][0]) * (v[0][1] - v[2][1]);
        if d.abs() < 1e-12 {
            continue;
        }
        let a = ((v[1][1] - v[2][1]) * (px - v[2][0]) + (v[2][0] - v[1][0]) * (py - v[2][1])) / d;
        let b = ((v[2][1] - v[0][1]) * (px - v[2][0]) + (v[0][0] - v[2][0]) * (py - v[2][1])) / d;
        let c = 1.0 - a - b;
        if a < 0.0 || b < 0.0 || c < 0.0 {
            continue;
        }
        if a * v[0][2] + b * v[1][2] + c * v[2][2] > pz {
            crossings += 1;
        }
    }
    crossings % 2 == 1
}

/// `--vertebra-meshes`: one closed 2-manifold mesh per vertebra of the
/// phantom, each about its truth's volume, apart from its neighbours (no
/// vertex inside another's mesh); refused without the split.
#[test]
fn a_mesh_per_vertebra() {
    let ph = generate(&PhantomParams::demo().realistic());
    let mut params = Params::spine();
    params.vertebra_meshes = true;
    let out = pipeline::run(&ph.ct, &params, &|_| {}).unwrap();
    let labels = out.vertebrae.as_ref().unwrap();
    let meshes = out.vertebra_meshes.as_ref().expect("vertebra meshes");
    let names: Vec<&str> = meshes.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["L1", "L2", "L3", "L4", "L5", "sacrum"]);
    let g = &labels.grid;
    let vox = g.voxel_volume_mm3();
    for (m, truth) in meshes
        .iter()
        .zip((LABEL_L1..LABEL_L1 + 5).chain([LABEL_SACRUM]))
    {
        let c = &m.report.check;
        assert!(c.closed && c.manifold && c.outward, "{}: {c:?}", m.name);
        let truth_mm3 = ph.labels.data.iter().filter(|&&l| l == truth).count() as f64 * vox;
        let ratio = c.volume_mm3 / truth_mm3;
        eprintln!(
            "{}: {} triangles, {:.0} mm³ ({ratio:.3} of its truth), contact {:.0} mm³",
            m.name,
            m.mesh.triangles.len(),
            c.volume_mm3,
            m.contact_voxels as f64 * vox
        );
        assert!(
            (0.93..1.05).contains(&ratio),
            "{}: volume ratio {ratio}",
            m.name
        );
    }
    // No vertex of a vertebra's mesh lies inside its neighbours'.
    for pair in meshes.windows(2) {
        for (a, b) in [(&pair[0], &pair[1]), (&pair[1], &pair[0])] {
            let (lo, hi) = b.mesh.bounds().unwrap();
            let inside = a
                .mesh
                .vertices
                .iter()
                .filter(|v| (0..3).all(|k| (lo[k]..=hi[k]).contains(&(v[k] as f64))))
                .filter(|v| inside_mesh(&b.mesh, **v))
                .count();
            assert_eq!(
                inside, 0,
                "{} has {inside} vertices inside {}",
                a.name, b.name
            );
        }
    }
    let total: usize = meshes.iter().map(|m| m.mesh.triangles.len()).sum();
    assert!(
        total <= spinemesh::mesh::FE_TARGET_TRIANGLES + 6 * 5_000,
        "{total}"
    );

    let mut paper = Params::paper();
    paper.vertebra_meshes = true;
    let e = pipeline::run(&ph.ct, &paper, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("spine preset"), "{e}");
    let mut none = Params::spine();
    none.vertebra_meshes = true;
    none.spine.as_mut().unwrap().vertebrae = None;
    let e = pipeline::run(&ph.ct, &none, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("--no-vertebrae"), "{e}");
}
