//! Runs `scenarios/` as test cases: `cargo test --test scenarios [FILTER]` or cargo-nextest.
//! A Rust project does the same with its own folder: this file is the whole recipe.

fn main() -> std::process::ExitCode {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    // The canonical path reads better in failure messages than `harness/../scenarios`.
    let scenarios = folder.canonicalize().unwrap_or(folder);
    let options = seatrial::libtest::SuiteOptions {
        paths: vec![scenarios],
        // Set SEATRIAL_JUNIT to also get seatrial's JUnit report (nextest writes its own).
        junit: std::env::var_os("SEATRIAL_JUNIT").map(Into::into),
        keep: false,
        json: None,
        timings: false,
        // The workspace is the project that build contexts stay in, also in a copy without `.git`.
        root: Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")),
    };
    seatrial::libtest::run_suite(&libtest_mimic::Arguments::from_args(), &options)
}
