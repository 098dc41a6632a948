//! The browser end-to-end suite (`e2e/browser/`, docs/browser-tests.md), run from `cargo test` so
//! the README's one test command runs it: Playwright for Python drives Debian's Chromium against
//! the stack as `deploy/local/run.sh` starts it, with the binaries this test was built beside.
//!
//! Without Chromium, Playwright, pytest or the suite's npm packages the test says what is missing
//! and passes; with `OW_REQUIRE_BROWSER=1` (set by `.ci/run`) it fails instead, so CI cannot pass
//! without the suite having run. Screenshots, page-by-page figures and the stack's logs are kept
//! in `target/browser-artifacts/`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ has a parent")
        .to_path_buf()
}

fn python() -> String {
    std::env::var("OW_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// What the suite needs that this machine lacks, each with how to get it.
fn missing_prerequisites(suite: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    let chromium = std::env::var("OW_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).is_file() {
        missing.push(format!(
            "Chromium at {chromium} (apt-get install chromium chromium-driver)"
        ));
    }
    let imports = Command::new(python())
        .args(["-c", "import playwright.sync_api, pytest"])
        .output();
    if !imports.is_ok_and(|o| o.status.success()) {
        missing.push(format!(
            "Playwright and pytest for {} (pip install playwright pytest; never `playwright install`)",
            python()
        ));
    }
    for package in ["axe-core/axe.min.js", "jsqr/dist/jsQR.js"] {
        if !suite.join("node_modules").join(package).is_file() {
            missing.push(format!(
                "e2e/browser/node_modules/{package} (npm ci in e2e/browser)"
            ));
        }
    }
    missing
}

#[test]
fn browser_suite() {
    let root = workspace();
    let suite = root.join("e2e").join("browser");
    let missing = missing_prerequisites(&suite);
    if !missing.is_empty() {
        let list = missing.join("\n  - ");
        if std::env::var("OW_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("OW_REQUIRE_BROWSER=1 but the browser suite cannot run; missing:\n  - {list}");
        }
        eprintln!(
            "SKIPPED: the browser suite (e2e/browser) did not run; missing:\n  - {list}\n\
             (.ci/run installs these; set OW_REQUIRE_BROWSER=1 to make their absence a failure)"
        );
        return;
    }

    // The binaries `cargo test` built, handed to run.sh so it builds nothing.
    let bin_dir = ow_e2e::binary("ow-internet")
        .and_then(|_| ow_e2e::binary("ow-extranet"))
        .and_then(|_| ow_e2e::binary("ow-ferry"))
        .expect("the zone binaries are built")
        .parent()
        .expect("a binary has a folder")
        .to_path_buf();
    let artifacts = bin_dir
        .parent()
        .expect("target/<profile> has a parent")
        .join("browser-artifacts");

    let started = Instant::now();
    let out = Command::new(python())
        .args(["-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider"])
        .arg(&suite)
        .current_dir(&suite)
        .env("OW_BIN_DIR", &bin_dir)
        .env("OW_BROWSER_ARTIFACTS", &artifacts)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("cannot run pytest");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    println!(
        "browser suite: {:.0} s; screenshots and logs in {}",
        took.as_secs_f64(),
        artifacts.display()
    );
    assert!(
        out.status.success(),
        "the browser suite failed ({}); screenshots and logs in {}:\n{stdout}\n{stderr}",
        out.status,
        artifacts.display()
    );
    let summary = stdout.lines().rev().find(|l| l.contains(" passed"));
    assert!(
        summary.is_some_and(|l| !l.contains("failed") && !l.contains("error")),
        "the browser suite ran no test or reported a failure:\n{stdout}"
    );
}
