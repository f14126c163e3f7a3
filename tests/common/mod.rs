//! Helpers shared by the integration tests: locating `../shared/data` and a
//! Python with the modules a cross-check needs. Both skip with a printed reason
//! when missing, and fail under `CI=true`, where they must be present.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// `../shared/data/<case>` beside the repository, or `None` (with a printed
/// reason) when absent. Panics under CI, where the data must be there.
pub fn shared_case(case: &str) -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let p = root.join(case);
    if p.exists() {
        return Some(p);
    }
    if in_ci() {
        panic!(
            "{} is missing and CI=true: the real-data tests must run in CI",
            p.display()
        );
    }
    eprintln!(
        "SKIPPED: {} not found (a fresh clone has no ../shared)",
        p.display()
    );
    None
}

/// A `python3` command if it imports every module in `modules`, else `None`
/// with a printed reason. Panics under CI, where .ci/run installs them.
pub fn python(modules: &[&str]) -> Option<Command> {
    let probe = format!("import {}", modules.join(", "));
    let ok = Command::new("python3")
        .args(["-c", &probe])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        let mut c = Command::new("python3");
        c.current_dir(env!("CARGO_MANIFEST_DIR"));
        return Some(c);
    }
    if in_ci() {
        panic!("python3 with {modules:?} is needed for this cross-check and CI=true");
    }
    eprintln!("SKIPPED: python3 with {modules:?} not available");
    None
}
