//! The `spinemesh` command line: a thin layer over the library.

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use spinemesh::pipeline::{Params, Preset};
use spinemesh::run::{self, Progress};
use spinemesh::{evaluate, phantom};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "spinemesh",
    version,
    about = "CT (DICOM series or NIfTI) to a 3D mesh of the lumbar spine, in patient coordinates"
)]
struct Cli {
    /// No progress output on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reconstruct the spine: writes spine.stl (or .ply/.obj), mask.nii.gz,
    /// overview.png and report.json.
    Reconstruct(ReconstructArgs),
    /// Compare a predicted mask with a reference (Dice, IoU, HD95, ASSD).
    Evaluate(EvaluateArgs),
    /// Generate a synthetic lumbar CT with known truth, reconstruct and score it.
    Demo(DemoArgs),
    /// List the image series in a DICOM folder and which one reconstruct reads.
    Info(InfoArgs),
    /// Check a mesh file (STL, PLY, OBJ): closed, 2-manifold, outward, volume.
    Check(CheckArgs),
}

#[derive(Args)]
struct CheckArgs {
    /// The mesh file: binary or ASCII STL, PLY (binary or ASCII) or OBJ.
    mesh: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct MeshArgs {
    /// FE-ready mesh: Taubin smoothing without shrinkage and decimation to
    /// 250 000 triangles, still a closed 2-manifold.
    #[arg(long)]
    fe: bool,
    /// Decimate to about N triangles, or `none` [paper: none; --fe: 250000].
    #[arg(long, value_name = "N|none", value_parser = parse_target)]
    target_triangles: Option<TargetArg>,
    /// Smoothing λ/μ iteration pairs; 0 for none [paper: 0; --fe: 10].
    #[arg(long, value_name = "N", conflicts_with = "no_smooth")]
    smooth_iterations: Option<usize>,
    /// No smoothing (also with --fe).
    #[arg(long)]
    no_smooth: bool,
    /// Mesh file format [default: from --mesh-file's extension, else stl].
    #[arg(long, value_enum)]
    format: Option<spinemesh::mesh::MeshFormat>,
    /// Coordinate frame of the mesh file, stated in its header as 3D Slicer
    /// does (SPACE=LPS / SPACE=RAS) [default: lps].
    #[arg(long, value_enum)]
    frame: Option<spinemesh::mesh::Frame>,
    /// File name of the mesh in OUT_DIR, e.g. spine.ply; .stl, .ply or .obj
    /// picks the format [default: spine.<format's extension>].
    #[arg(long, value_name = "NAME")]
    mesh_file: Option<String>,
}

#[derive(Clone)]
struct TargetArg(Option<usize>);

fn parse_target(s: &str) -> Result<TargetArg, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(TargetArg(None));
    }
    s.replace(['_', ','], "")
        .parse::<usize>()
        .map(|n| TargetArg(Some(n)))
        .map_err(|_| format!("'{s}' is not a triangle count (e.g. 250000) or 'none'"))
}

impl MeshArgs {
    fn apply(&self, mut m: spinemesh::mesh::MeshParams) -> spinemesh::mesh::MeshParams {
        use spinemesh::mesh::{MeshFormat, MeshParams, SmoothParams};
        if self.fe {
            let fe = MeshParams::fe();
            m.smooth = fe.smooth;
            m.target_triangles = fe.target_triangles;
        }
        if let Some(TargetArg(t)) = self.target_triangles {
            m.target_triangles = t;
        }
        if let Some(n) = self.smooth_iterations {
            m.smooth = (n > 0).then(|| SmoothParams {
                iterations: n,
                ..m.smooth.unwrap_or_default()
            });
        }
        if self.no_smooth {
            m.smooth = None;
        }
        if let Some(name) = &self.mesh_file {
            m.file_name = Some(name.clone());
            if let Some(f) = MeshFormat::from_path(std::path::Path::new(name)) {
                m.format = f;
            }
        }
        if let Some(f) = self.format {
            m.format = f;
        }
        if let Some(f) = self.frame {
            m.frame = f;
        }
        m
    }
}

#[derive(Args)]
struct PipelineArgs {
    /// Parameter set: `spine` (default) gives solid vertebrae of the spine
    /// alone and an FE-ready mesh; `paper` is exactly the paper's pipeline (Table 1).
    #[arg(long, value_enum, default_value = "spine")]
    preset: Preset,
    /// Bone range in HU, LOW:HIGH [spine: 120:3000, paper: 150:3000].
    #[arg(long, value_name = "LOW:HIGH", value_parser = parse_range)]
    threshold: Option<(f32, f32)>,
    /// Gaussian σ in mm [spine: 0.6, raised with the noise up to 1.5; paper: 0.6].
    #[arg(long, value_name = "MM")]
    sigma_mm: Option<f64>,
    /// Closing radius in mm [paper: 1.2].
    #[arg(long, value_name = "MM")]
    closing_mm: Option<f64>,
    /// Remove components smaller than this, mm³ [paper: 5000; spine: only without a canal].
    #[arg(long, value_name = "MM3")]
    min_component_mm3: Option<f64>,
    /// Crop margin around the spine, mm [paper: 2].
    #[arg(long, value_name = "MM")]
    margin_mm: Option<f64>,
    #[command(flatten)]
    mesh: MeshArgs,
    /// Do not write overview.png (CT slices with the mask outlined, and the
    /// mask's projection).
    #[arg(long)]
    no_overview: bool,
    /// Do not split the spine into numbered vertebrae (vertebrae.nii.gz;
    /// spine preset); the mask then keeps the discs the split clears where
    /// vertebrae meet and lacks the holes it fills.
    #[arg(long)]
    no_vertebrae: bool,
    /// Segment the CT as read even when it holds metal: no reduction of
    /// metal streaks (spine preset).
    #[arg(long)]
    no_metal_correction: bool,
    /// Keep only these vertebrae in the mask and the mesh, from the head
    /// down: e.g. L1-L5, L3-S (S: the sacrum), T12-L2 or L4 (spine preset;
    /// the vertebrae must be named, from the sacrum or the ribs).
    #[arg(long, value_name = "FIRST-LAST", value_parser = spinemesh::segment::vertebrae::parse_levels)]
    levels: Option<[u8; 2]>,
    /// Also write one closed mesh per vertebra into OUT_DIR/vertebrae/
    /// (L1.stl, …, sacrum.stl; in the mesh's format and frame): where two
    /// vertebrae touch, each surface stays a third of a voxel back, so the
    /// meshes keep apart (spine preset).
    #[arg(long)]
    vertebra_meshes: bool,
}

impl PipelineArgs {
    fn params(&self) -> Params {
        let mut p = Params::from_preset(self.preset);
        if let Some((lo, hi)) = self.threshold {
            p.threshold_hu = [lo, hi];
        }
        if let Some(v) = self.sigma_mm {
            p.sigma_mm = v;
        }
        if let Some(v) = self.closing_mm {
            p.closing_mm = v;
        }
        if let Some(v) = self.min_component_mm3 {
            p.min_component_mm3 = v;
        }
        if let Some(v) = self.margin_mm {
            p.margin_mm = v;
        }
        p.mesh = self.mesh.apply(p.mesh);
        p.overview = !self.no_overview;
        if let Some(sp) = p.spine.as_mut() {
            if self.no_vertebrae {
                sp.vertebrae = None;
            }
            if self.no_metal_correction {
                sp.metal_artefacts = None;
            }
        }
        p.levels = self.levels;
        p.vertebra_meshes = self.vertebra_meshes;
        p
    }
}

#[derive(Args)]
struct ReconstructArgs {
    /// A folder of DICOM files (searched recursively) or a .nii / .nii.gz file.
    input: PathBuf,
    /// Output folder (created if needed).
    #[arg(short, long, value_name = "OUT_DIR")]
    output: PathBuf,
    #[command(flatten)]
    pipeline: PipelineArgs,
    #[command(flatten)]
    load: LoadArgs,
    /// Also print report.json on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct LoadArgs {
    /// Series to read: its number in `spinemesh info` or its Series Instance UID
    /// [default: the CT volume that best fits, see `info`].
    #[arg(long, value_name = "INDEX|UID")]
    series: Option<String>,
    /// Read a series that is not CT anyway (values are then not HU).
    #[arg(long)]
    force: bool,
}

impl LoadArgs {
    fn options(&self) -> spinemesh::io::LoadOptions {
        spinemesh::io::LoadOptions {
            series: self.series.clone(),
            force: self.force,
            ..Default::default()
        }
    }
}

#[derive(Args)]
struct InfoArgs {
    /// A folder of DICOM files (searched recursively), a DICOMDIR, or one file.
    input: PathBuf,
    #[command(flatten)]
    load: LoadArgs,
    /// Print the listing as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EvaluateArgs {
    /// Predicted mask (.nii, .nii.gz or .nrrd).
    #[arg(long)]
    pred: PathBuf,
    /// Reference mask or label map (.nii, .nii.gz or .nrrd).
    #[arg(long = "ref")]
    reference: PathBuf,
    /// Reference labels to use, e.g. 26-31 or 20,21,22 [default: any non-zero].
    #[arg(long)]
    ref_labels: Option<String>,
    /// Predicted labels to use [default: any non-zero].
    #[arg(long)]
    pred_labels: Option<String>,
    /// Only compare the axial slices that hold the selected reference labels.
    #[arg(long)]
    within_ref_slices: bool,
    /// Print the metrics as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DemoArgs {
    /// Where to write the phantom, its truth and the result.
    #[arg(short, long, default_value = "spinemesh-demo")]
    output: PathBuf,
    /// Cancellous bone density of the phantom: realistic (100–200 HU, as in
    /// older adults; the default) or dense (all bone ≥ 250 HU).
    #[arg(long, value_enum, default_value = "realistic")]
    bone: BoneDensity,
    /// Phantom random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BoneDensity {
    Dense,
    Realistic,
}

fn parse_range(s: &str) -> Result<(f32, f32), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not LOW:HIGH (e.g. 150:3000)"))?;
    let lo: f32 = a
        .trim()
        .parse()
        .map_err(|_| format!("'{a}' is not a number"))?;
    let hi: f32 = b
        .trim()
        .parse()
        .map_err(|_| format!("'{b}' is not a number"))?;
    if lo > hi {
        return Err(format!("LOW {lo} is above HIGH {hi}"));
    }
    Ok((lo, hi))
}

/// Progress on stderr: bars on a terminal, plain lines otherwise, nothing with -q.
struct Reporter {
    mode: Mode,
    bar: Mutex<Option<ProgressBar>>,
    start: Instant,
}

#[derive(PartialEq)]
enum Mode {
    Quiet,
    Lines,
    Bars,
}

impl Reporter {
    fn new(quiet: bool) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        Reporter {
            mode,
            bar: Mutex::new(None),
            start: Instant::now(),
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}

impl Progress for Reporter {
    fn stage(&self, name: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines => eprintln!("[{:6.2} s] {name}", self.start.elapsed().as_secs_f64()),
            Mode::Bars => {
                let mut slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(b) = slot.take() {
                    b.finish_and_clear();
                }
                let b = ProgressBar::new_spinner();
                b.set_style(
                    ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                b.set_message(name.to_string());
                b.enable_steady_tick(std::time::Duration::from_millis(100));
                *slot = Some(b);
            }
        }
    }

    fn loading(&self, done: usize, total: usize) {
        if self.mode != Mode::Bars {
            return;
        }
        let mut slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        let need_new = slot
            .as_ref()
            .map(|b| b.length() != Some(total as u64))
            .unwrap_or(true);
        if need_new {
            if let Some(b) = slot.take() {
                b.finish_and_clear();
            }
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} slices")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            *slot = Some(b);
        }
        if let Some(b) = slot.as_ref() {
            b.set_position(done as u64);
        }
    }
}

fn main() -> ExitCode {
    spinemesh::alloc::retain_freed_memory();
    // Output piped into a program that stops reading (`| head -1`) ends this
    // one quietly, as other command-line tools do, instead of a panic on the
    // closed stdout (Rust ignores SIGPIPE by default).
    #[cfg(target_os = "linux")]
    // SAFETY: restoring a signal's default disposition before any thread
    // starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let reporter = Reporter::new(cli.quiet);
    let result = match cli.command {
        Command::Reconstruct(a) => reconstruct(a, &reporter),
        Command::Evaluate(a) => evaluate_cmd(a),
        Command::Demo(a) => demo(a, &reporter),
        Command::Info(a) => info_cmd(a),
        Command::Check(a) => check_cmd(a),
    };
    reporter.finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn reconstruct(a: ReconstructArgs, reporter: &Reporter) -> anyhow::Result<()> {
    let params = a.pipeline.params();
    let report = run::reconstruct_with(&a.input, &a.output, &params, &a.load.options(), reporter)?;
    reporter.finish();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !matches!(reporter.mode, Mode::Quiet) {
        eprintln!(
            "{} triangles ({}), mask {:.0} mm³, {:.2} s → {}",
            report.mesh.triangles,
            mesh_state(&report.mesh),
            report.mask.volume_mm3,
            report.seconds_total,
            a.output.display()
        );
    }
    let spine = report.segmentation.spine.as_ref();
    if let Some(v) = spine.and_then(|s| s.vertebrae.as_ref()) {
        if !a.json && !matches!(reporter.mode, Mode::Quiet) && !v.vertebrae.is_empty() {
            let names: Vec<&str> = v.vertebrae.iter().map(|x| x.name.as_str()).collect();
            let first = v.vertebrae.first().map(|x| x.label).unwrap_or(0);
            let last = v.vertebrae.last().map(|x| x.label).unwrap_or(0);
            if v.numbered_from == "none" {
                eprintln!(
                    "{} vertebrae, unnamed (labels {first}–{last}) → {}",
                    names.len(),
                    run::VERTEBRAE_FILE
                );
            } else {
                let kept = report.parameters.levels.map_or(String::new(), |l| {
                    format!("; kept {}", spinemesh::segment::vertebrae::levels_name(l))
                });
                eprintln!(
                    "vertebrae {} (numbered from the {}{kept}) → {}",
                    names.join(" "),
                    v.numbered_from,
                    run::VERTEBRAE_FILE
                );
            }
        }
    }
    if let Some(v) = &report.mesh.vertebrae {
        if !a.json && !matches!(reporter.mode, Mode::Quiet) {
            let triangles: usize = v.iter().map(|m| m.triangles).sum();
            let closed = v.iter().all(|m| m.watertight && m.manifold);
            eprintln!(
                "vertebra meshes: {} files, {triangles} triangles{} → {}/",
                v.len(),
                if closed {
                    ", each closed 2-manifold"
                } else {
                    "; NOT all closed 2-manifolds (see report.json)"
                },
                run::VERTEBRA_MESH_DIR
            );
        }
    }
    if !report.outputs.removed_stale.is_empty() && !a.json && !matches!(reporter.mode, Mode::Quiet)
    {
        eprintln!(
            "removed what an earlier run left and this one did not make: {}",
            report.outputs.removed_stale.join(", ")
        );
    }
    let spine_warnings = spine.map(|s| s.warnings.as_slice()).unwrap_or_default();
    for w in report.input.warnings.iter().chain(spine_warnings) {
        eprintln!("warning: {w}");
    }
    if !matches!(reporter.mode, Mode::Quiet) {
        for n in &report.input.notes {
            eprintln!("note: {n}");
        }
    }
    Ok(())
}

fn info_cmd(a: InfoArgs) -> anyhow::Result<()> {
    let s = spinemesh::io::dicom::inspect(&a.input, &a.load.options())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!(
        "{} file(s) searched: {} DICOM, {} not DICOM, {} unreadable, {} without an image",
        s.files_searched,
        s.dicom_files,
        s.files_not_dicom,
        s.files_unreadable,
        s.files_without_image
    );
    let opt = |v: Option<f64>, unit: &str| {
        v.map(|x| format!("{x:.2}{unit}"))
            .unwrap_or_else(|| "?".into())
    };
    for x in &s.series {
        println!();
        println!(
            "{} #{}  series {}  {}  '{}'",
            if x.selected { "*" } else { " " },
            x.index,
            x.series_number
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            x.modality,
            x.description.as_deref().unwrap_or("")
        );
        println!("    uid          {}", x.series_instance_uid);
        println!(
            "    image type   {}   kernel {}",
            x.image_type.as_deref().unwrap_or("-"),
            x.convolution_kernel.as_deref().unwrap_or("-")
        );
        println!(
            "    slices       {} ({} images{}), {} × {} pixels of {}",
            x.slices,
            x.images,
            if x.multi_frame { ", multi-frame" } else { "" },
            x.columns,
            x.rows,
            x.pixel_spacing_mm
                .map(|p| format!("{:.3} × {:.3} mm", p[1], p[0]))
                .unwrap_or_else(|| "? mm".into())
        );
        println!(
            "    step         {} ({}), coverage {:.1} mm{}",
            opt(x.slice_step_mm, " mm"),
            match (x.slice_step_uniform, x.slice_step_range_mm) {
                (Some(true), _) => "uniform".to_string(),
                (Some(false), Some([lo, hi])) => format!("uneven: {lo:.2} to {hi:.2} mm"),
                _ => "unknown".to_string(),
            },
            x.coverage_mm,
            x.z_range_mm
                .map(|z| format!(", z {:.1} to {:.1} mm", z[0], z[1]))
                .unwrap_or_default()
        );
        println!(
            "    orientation  {}, gantry tilt {} from positions{}",
            x.orientation,
            opt(x.gantry_tilt_deg, "°"),
            x.gantry_tilt_tag_deg
                .map(|t| format!(" (tag says {t:.1}°)"))
                .unwrap_or_default()
        );
        println!("    transfer     {}", x.transfer_syntax);
        if let Some(why) = &x.left_out_because {
            println!("    left out     {why}");
        }
    }
    println!();
    match s.selected {
        Some(i) => println!("reconstruct reads #{i} (marked *)"),
        None => println!("reconstruct cannot read any series"),
    }
    if let Some(why) = &s.selection {
        println!("  {why}");
    }
    if let (Some(need), Some(avail)) = (s.memory_needed_mib, s.memory_available_mib) {
        println!("  memory: the volume needs {need:.0} MiB; {avail:.0} MiB available");
    }
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

fn evaluate_cmd(a: EvaluateArgs) -> anyhow::Result<()> {
    let labels = |s: &Option<String>| -> anyhow::Result<Vec<i64>> {
        Ok(s.as_deref()
            .map(evaluate::parse_labels)
            .transpose()?
            .unwrap_or_default())
    };
    let opts = evaluate::EvaluateOptions {
        ref_labels: labels(&a.ref_labels)?,
        pred_labels: labels(&a.pred_labels)?,
        within_ref_slices: a.within_ref_slices,
    };
    let m = evaluate::evaluate_files(&a.pred, &a.reference, &opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&m)?);
    } else {
        println!("Dice   {:.4}", m.dice);
        println!("IoU    {:.4}", m.iou);
        println!("HD95   {}", fmt_mm(m.hd95_mm));
        println!("ASSD   {}", fmt_mm(m.assd_mm));
        println!(
            "volume predicted {:.0} mm³, reference {:.0} mm³",
            m.pred_volume_mm3, m.ref_volume_mm3
        );
        if let (Some(axis), Some([a0, a1])) = (m.axial_axis, m.ref_slice_range) {
            println!("compared slices {a0}–{a1} along index axis {axis} (the reference's extent)");
        }
        if m.pred_resampled {
            println!("the prediction was resampled onto the reference grid (nearest neighbour)");
        }
        for w in &m.warnings {
            eprintln!("warning: {w}");
        }
    }
    Ok(())
}

fn demo(a: DemoArgs, reporter: &Reporter) -> anyhow::Result<()> {
    let params = a.pipeline.params();
    let mut pp = phantom::PhantomParams::demo();
    pp.seed = a.seed;
    let pp = match a.bone {
        BoneDensity::Dense => pp.dense(),
        BoneDensity::Realistic => pp.realistic(),
    };
    let s = run::demo(&a.output, &pp, &params, reporter)?;
    reporter.finish();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let i = &s.report.input;
    println!(
        "spinemesh demo: synthetic lumbar spine CT (L1–S1, ribs, pelvis), preset {:?}",
        params.preset
    );
    println!(
        "  phantom   {} × {} × {} voxels of {:.2} × {:.2} × {:.2} mm, written as {} DICOM files in {:.2} s",
        i.dims[0], i.dims[1], i.dims[2], i.spacing_mm[0], i.spacing_mm[1], i.spacing_mm[2], i.files_read, s.phantom_seconds
    );
    println!(
        "  time      {:.2} s (read + reconstruct + write)",
        s.report.seconds_total
    );
    println!(
        "  accuracy  Dice {:.3}, IoU {:.3}, HD95 {}, ASSD {} against the phantom's truth",
        s.metrics.dice,
        s.metrics.iou,
        fmt_mm(s.metrics.hd95_mm),
        fmt_mm(s.metrics.assd_mm)
    );
    if !s.vertebra_dice.is_empty() {
        let each: Vec<String> = s
            .vertebra_dice
            .iter()
            .map(|(n, d)| format!("{n} {d:.3}"))
            .collect();
        println!(
            "  vertebrae Dice {} (each against its truth)",
            each.join(", ")
        );
    }
    println!(
        "  mesh      {} triangles, {} vertices, {}, {:.0} mm³ (mask {:.0} mm³)",
        s.report.mesh.triangles,
        s.report.mesh.vertices,
        mesh_state(&s.report.mesh),
        s.report.mesh.volume_mm3,
        s.report.mask.volume_mm3
    );
    println!("  files     {}", s.result_dir.display());
    println!(
        "            {} ({} mm), mask.nii.gz, {}{}report.json; input: {}, truth: {}",
        s.report.outputs.mesh,
        s.report.mesh.frame,
        s.report
            .outputs
            .vertebrae
            .as_ref()
            .map_or(String::new(), |v| format!("{v}, ")),
        s.report
            .outputs
            .overview
            .as_ref()
            .map_or(String::new(), |o| format!("{o}, ")),
        s.dicom_dir.display(),
        s.truth.display()
    );
    Ok(())
}

/// "closed 2-manifold" or what is wrong with the mesh, in a few words.
fn mesh_state(m: &spinemesh::report::MeshReport) -> String {
    if m.closed && m.manifold && m.outward {
        "closed 2-manifold".into()
    } else if !m.closed {
        format!(
            "NOT closed: {} edges not shared by two",
            m.edges_not_shared_by_two
        )
    } else {
        "NOT a clean 2-manifold, see report.json".into()
    }
}

fn check_cmd(a: CheckArgs) -> anyhow::Result<()> {
    let (mesh, info) = spinemesh::io::mesh::read_mesh(&a.mesh)?;
    let c = spinemesh::mesh::check(&mesh);
    if a.json {
        let mut v = serde_json::to_value(&c)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("file".into(), a.mesh.display().to_string().into());
            o.insert("format".into(), info.format.name().into());
            o.insert(
                "frame".into(),
                info.frame.map(|f| f.name()).unwrap_or("unstated").into(),
            );
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let frame = info.frame.map(|f| f.name()).unwrap_or("not stated");
        println!(
            "{}: {}, frame {frame}",
            a.mesh.display(),
            info.format.name()
        );
        println!("  triangles                {}", c.triangles);
        println!("  vertices                 {}", c.vertices);
        println!("  closed                   {}", c.closed);
        println!("  manifold                 {}", c.manifold);
        println!("  outward                  {}", c.outward);
        println!("  edges_not_shared_by_two  {}", c.edges_not_shared_by_two);
        println!("  non_manifold_vertices    {}", c.non_manifold_vertices);
        println!("  degenerate_triangles     {}", c.degenerate_triangles);
        println!("  duplicate_triangles      {}", c.duplicate_triangles);
        println!("  misoriented_edges        {}", c.misoriented_edges);
        println!("  components               {}", c.components);
        println!("  euler_characteristic     {}", c.euler_characteristic);
        println!("  volume_mm3               {:.1}", c.volume_mm3);
        println!("  area_mm2                 {:.1}", c.area_mm2);
    }
    if !c.is_valid_solid() {
        anyhow::bail!(
            "{} is not a closed, outward 2-manifold: {}",
            a.mesh.display(),
            c.summary()
        );
    }
    Ok(())
}

fn fmt_mm(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2} mm"))
        .unwrap_or_else(|| "n/a".into())
}
