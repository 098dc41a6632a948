//! Memory per upload request: uploads stream to sealed staging files, so a request of several
//! large files holds a few chunks of each, not the files. Measured with a counting allocator
//! over the whole process (portal and client are in it), so this binary holds one test only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use peak_alloc::PeakAlloc;
use reqwest::StatusCode;

/// Counts the bytes allocated now and the most allocated at once since the last reset.
#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// Resets the peak to what is allocated now; returns that baseline.
fn reset_peak() -> usize {
    ALLOCATOR.reset_peak_usage();
    ALLOCATOR.current_usage()
}

fn peak_above(baseline: usize) -> usize {
    ALLOCATOR.peak_usage().saturating_sub(baseline)
}

const MIB: usize = 1 << 20;

/// A PDF-looking file of `size` bytes whose content differs by `tag`.
fn big_pdf(tag: u8, size: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.resize(size, tag);
    bytes
}

fn form(csrf: &str, files: Vec<(&str, Vec<u8>)>) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new().text("csrf", csrf.to_owned());
    for (code, bytes) in files {
        form = form.part(
            code.to_owned(),
            reqwest::multipart::Part::bytes(bytes)
                .file_name("扫描件.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    }
    form
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_request_holds_chunks_not_files() {
    let largest = 8 * MIB;
    let p = start_with(None, |s| s.uploads.max_file_bytes = largest as u64).await;
    let c = browser();
    let id = id_number("37078119900101123");
    register(&p, &c, "张三", &id, "13800138000").await;
    login(&p, &c, &id, PASSWORD).await;
    let draft = new_draft(&p, &c).await;
    let url = p.url(&format!("/drafts/{draft}/materials"));
    let (_, _, html) = page(&c, &url).await;
    let csrf = csrf_of(&html);

    // Six files at the limit in one request: 48 MiB. The request body exists before the
    // baseline (the client sends it from these buffers without copying them).
    let codes = [
        "application_form",
        "applicant_identity",
        "title_certificate",
        "sale_contract",
        "tax_receipt",
        "marital_status",
    ];
    let files: Vec<_> = codes
        .iter()
        .enumerate()
        .map(|(i, code)| (*code, big_pdf(b'a' + i as u8, largest)))
        .collect();
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    let body = form(&csrf, files);
    let baseline = reset_peak();
    let r = c.post(&url).multipart(body).send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    let peak = peak_above(baseline);
    assert_eq!(status, StatusCode::OK, "{text}");
    println!(
        "six files of {} MiB ({} MiB in all): peak above baseline {:.1} MiB",
        largest / MIB,
        total / MIB,
        peak as f64 / MIB as f64
    );
    assert!(
        peak < 2 * largest,
        "an upload of {} MiB peaked at {} bytes above the baseline: more than twice the largest \
         part ({largest} bytes)",
        total / MIB,
        peak
    );
    assert_eq!(p.state.files.count(), codes.len(), "every file stored");
    assert_eq!(
        std::fs::read_dir(p.state.files.staging_dir())
            .unwrap()
            .count(),
        0,
        "nothing left in staging"
    );

    // A file five times over the limit: refused with the limit named, read to its end without
    // being kept, and nothing stored or left in staging.
    let (_, _, html) = page(&c, &url).await;
    let csrf = csrf_of(&html);
    let body = form(
        &csrf,
        vec![("power_of_attorney", big_pdf(b'z', 5 * largest))],
    );
    let baseline = reset_peak();
    let r = c.post(&url).multipart(body).send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    let peak = peak_above(baseline);
    println!(
        "one file of {} MiB over an {} MiB limit: peak above baseline {:.1} MiB",
        5 * largest / MIB,
        largest / MIB,
        peak as f64 / MIB as f64
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("过大"), "{text}");
    assert!(peak < 2 * largest, "peak {peak} bytes");
    assert_eq!(p.state.files.count(), codes.len(), "nothing more stored");
    assert_eq!(
        std::fs::read_dir(p.state.files.staging_dir())
            .unwrap()
            .count(),
        0,
        "the refused file left nothing in staging"
    );
}
