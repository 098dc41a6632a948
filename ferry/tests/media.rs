//! Offline media through the real `ow-ferry media export` / `media import`: a folder stands for
//! the disc. The round trip, every refusal an operator can meet (each importing nothing), and the
//! Library of Congress `bagit.py --validate` on an exported bag.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Pair, RxOptions, ferry, names};

/// A pair of zones with a media route each way of the internet-to-extranet channel.
struct Media {
    pair: Pair,
    outbox: PathBuf,
    sent: PathBuf,
    refused: PathBuf,
}

impl Media {
    fn new() -> Self {
        let pair = Pair::new(RxOptions::default());
        let mut tx = fs::read_to_string(&pair.sender_config).unwrap();
        tx.push_str(
            "[[media]]\nchannel = \"internet-to-extranet\"\noutbox = \"internet/media-outbox\"\n\
             sent = \"internet/media-sent\"\n",
        );
        fs::write(&pair.sender_config, tx).unwrap();
        let mut rx = fs::read_to_string(&pair.receiver_config).unwrap();
        rx.push_str(
            "[[media]]\nchannel = \"internet-to-extranet\"\ninbox = \"extranet/inbox\"\n\
             refused = \"extranet/refused-media\"\n",
        );
        fs::write(&pair.receiver_config, rx).unwrap();
        let root = pair.root().to_path_buf();
        Self {
            outbox: root.join("internet/media-outbox"),
            sent: root.join("internet/media-sent"),
            refused: root.join("extranet/refused-media"),
            pair,
        }
    }

    /// Packs `n` small bundles into the media outbox with the real CLI.
    fn pack(&self, n: usize) {
        fs::create_dir_all(&self.outbox).unwrap();
        for i in 0..n {
            let item = self.pair.root().join(format!("survey-{i}.txt"));
            fs::write(&item, format!("survey result {i}\n").repeat(50)).unwrap();
            let out = ferry(&[
                "pack",
                "--config",
                self.pair.sender_config.to_str().unwrap(),
                "--channel",
                "internet-to-extranet",
                "--kind",
                "demo.item",
                "--out",
                self.outbox.to_str().unwrap(),
                item.to_str().unwrap(),
            ]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
    }

    fn export(&self, disc: &Path) -> Output {
        ferry(&[
            "media",
            "export",
            "--config",
            self.pair.sender_config.to_str().unwrap(),
            "--disc",
            disc.to_str().unwrap(),
        ])
    }

    fn import(&self, disc: &Path) -> Output {
        ferry(&[
            "media",
            "import",
            "--config",
            self.pair.receiver_config.to_str().unwrap(),
            "--disc",
            disc.to_str().unwrap(),
        ])
    }

    /// Packs `n` bundles and exports them to a new disc folder; returns the disc.
    fn disc(&self, name: &str, n: usize) -> PathBuf {
        self.pack(n);
        let disc = self.pair.root().join(name);
        let out = self.export(&disc);
        assert!(out.status.success(), "{}", stderr(&out));
        disc
    }

    fn rx_media_log(&self) -> PathBuf {
        self.pair
            .root()
            .join("extranet/ferry/log/internet-to-extranet-media-rx")
    }

    fn tx_media_log(&self) -> PathBuf {
        self.pair
            .root()
            .join("internet/ferry/log/internet-to-extranet-media-tx")
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Events of a ferry log, in order.
fn events(log: &Path) -> Vec<String> {
    let out = ferry(&["log", "show", "--log", log.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["event"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn count(events: &[String], name: &str) -> usize {
    events.iter().filter(|e| *e == name).count()
}

/// Asserts the import was refused with `code`, landed nothing, and was logged and explained.
fn assert_refused(media: &Media, out: &Output, code: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    assert!(
        stderr(out).contains(&format!("[{code}]")),
        "expected {code}: {}",
        stderr(out)
    );
    assert!(media.pair.inbox_bundles().is_empty(), "something landed");
    let log = events(&media.rx_media_log());
    assert!(count(&log, "media-refused") >= 1, "{log:?}");
    assert_eq!(count(&log, "landed"), 0, "{log:?}");
    let reasons: Vec<String> = names(&media.refused)
        .into_iter()
        .filter(|n| n.ends_with(".reason"))
        .collect();
    assert!(!reasons.is_empty());
    let last: serde_json::Value =
        serde_json::from_slice(&fs::read(media.refused.join(reasons.last().unwrap())).unwrap())
            .unwrap();
    assert!(
        reasons.iter().any(|r| {
            let v: serde_json::Value =
                serde_json::from_slice(&fs::read(media.refused.join(r)).unwrap()).unwrap();
            v["code"] == code
        }),
        "{last}"
    );
}

/// Flips one byte of `file` at `at`.
fn flip(file: &Path, at: usize) {
    let mut bytes = fs::read(file).unwrap();
    bytes[at] ^= 0x01;
    fs::write(file, bytes).unwrap();
}

fn disc_bundles(disc: &Path) -> Vec<PathBuf> {
    names(&disc.join("data/bundles"))
        .into_iter()
        .map(|n| disc.join("data/bundles").join(n))
        .collect()
}

#[test]
fn a_disc_round_trips_exactly_once() {
    let media = Media::new();
    media.pack(3);
    let disc = media.pair.root().join("disc-1");
    let out = media.export(&disc);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["bundles"], 3);
    assert_eq!(report["sequences"], serde_json::json!([1, 3]));
    assert!(
        names(&media.outbox).is_empty(),
        "exported bundles left the outbox"
    );
    assert_eq!(names(&media.sent).len(), 3);
    for tag in [
        "bagit.txt",
        "bag-info.txt",
        "manifest-sha256.txt",
        "manifest-sha512.txt",
        "manifest-blake3.txt",
        "tagmanifest-sha256.txt",
        "ow-media-manifest.txt",
    ] {
        assert!(disc.join(tag).is_file(), "{tag} missing");
    }
    let info = fs::read_to_string(disc.join("bag-info.txt")).unwrap();
    assert!(info.contains("Bag-Count: 1 of 1"), "{info}");
    assert!(info.contains("OW-Sequence-Range: 1-3"), "{info}");
    assert_eq!(count(&events(&media.tx_media_log()), "media-exported"), 3);

    // Nothing pending: a second export says so and writes nothing.
    let again = media.pair.root().join("disc-empty");
    let out = media.export(&again);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nothing to export"),
        "{}",
        stderr(&out)
    );

    let out = media.import(&disc);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["landed"], 3, "{report}");
    assert_eq!(media.pair.inbox_bundles().len(), 3);
    let log = events(&media.rx_media_log());
    assert_eq!(count(&log, "landed"), 3, "{log:?}");
    assert_eq!(count(&log, "media-imported"), 1, "{log:?}");
    // The disc itself is untouched (a disc is read-only).
    assert_eq!(disc_bundles(&disc).len(), 3);

    // The same disc again: refused as a whole, nothing twice.
    let out = media.import(&disc);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("[replayed]"), "{}", stderr(&out));
    assert_eq!(media.pair.inbox_bundles().len(), 3);
    let log = events(&media.rx_media_log());
    assert_eq!(count(&log, "landed"), 3);
    assert_eq!(count(&log, "media-refused"), 1);

    // A copy of the disc under another name is the same disc.
    let copy = media.pair.root().join("disc-1-copy");
    copy_dir(&disc, &copy);
    let out = media.import(&copy);
    assert!(stderr(&out).contains("[replayed]"), "{}", stderr(&out));
    assert_eq!(media.pair.inbox_bundles().len(), 3);

    // The log of each side verifies.
    for (log, zone) in [
        (media.rx_media_log(), "extranet"),
        (media.tx_media_log(), "internet"),
    ] {
        let key = media.pair.keys.join(format!("{zone}.sign.pub"));
        let out = ferry(&[
            "log",
            "verify",
            "--log",
            log.to_str().unwrap(),
            "--public-key",
            key.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn one_altered_byte_refuses_the_whole_disc_and_the_restored_disc_imports() {
    let media = Media::new();
    let disc = media.disc("disc-altered", 3);
    let bundles = disc_bundles(&disc);
    // A byte deep in the last bundle: the first two are intact, and still nothing lands.
    let last = bundles.last().unwrap();
    let len = fs::metadata(last).unwrap().len() as usize;
    flip(last, len - 10);
    let out = media.import(&disc);
    assert_refused(&media, &out, "altered");
    assert!(
        stderr(&out).contains("at least one byte was changed"),
        "{}",
        stderr(&out)
    );

    // Altered tag files are caught by the tag manifest and the signature.
    flip(last, len - 10);
    let info = disc.join("bag-info.txt");
    let original = fs::read(&info).unwrap();
    fs::write(
        &info,
        String::from_utf8(original.clone())
            .unwrap()
            .replace("1-3", "1-4"),
    )
    .unwrap();
    assert_refused(&media, &media.import(&disc), "altered");
    fs::write(&info, &original).unwrap();
    let signed = disc.join("ow-media-manifest.txt");
    let original_signed = fs::read_to_string(&signed).unwrap();
    fs::write(&signed, original_signed.replace("bundles 3", "bundles 2")).unwrap();
    assert_refused(&media, &media.import(&disc), "altered");
    fs::write(&signed, &original_signed).unwrap();

    // Restored, the disc imports in full: the refusals recorded nothing.
    let out = media.import(&disc);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(media.pair.inbox_bundles().len(), 3);
}

#[test]
fn a_disc_signed_by_an_unknown_key_is_foreign() {
    let media = Media::new();
    let stranger = Media::new();
    let disc = stranger.disc("disc-foreign", 2);
    assert_refused(&media, &media.import(&disc), "foreign");
    // The stranger's own zone takes it.
    let out = stranger.import(&disc);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn incomplete_discs_are_refused_naming_what_is_missing() {
    let media = Media::new();
    let disc = media.disc("disc-incomplete", 3);
    let bundles = disc_bundles(&disc);
    let moved = media.pair.root().join("held-back.owb");
    fs::rename(&bundles[1], &moved).unwrap();
    let out = media.import(&disc);
    assert_refused(&media, &out, "incomplete");
    assert!(
        stderr(&out).contains("1 of 3 payload files missing"),
        "{}",
        stderr(&out)
    );
    fs::rename(&moved, &bundles[1]).unwrap();

    // A disc whose burn stopped before the signed manifest was written.
    let signed = disc.join("ow-media-manifest.txt");
    let kept = fs::read(&signed).unwrap();
    fs::remove_file(&signed).unwrap();
    assert_refused(&media, &media.import(&disc), "incomplete");
    fs::write(&signed, kept).unwrap();
    assert!(media.import(&disc).status.success());
}

#[test]
fn symlinks_and_path_tricks_on_a_disc_are_refused() {
    let media = Media::new();
    let disc = media.disc("disc-tricks", 2);
    let secret = media.pair.root().join("secret.txt");
    fs::write(&secret, "not for the disc").unwrap();

    // A symlink beside the bundles, and one in place of a bundle.
    let link = disc.join("data/bundles/extra.owb");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    assert_refused(&media, &media.import(&disc), "path-trick");
    fs::remove_file(&link).unwrap();
    let bundle = disc_bundles(&disc)[0].clone();
    let kept = media.pair.root().join("kept.owb");
    fs::rename(&bundle, &kept).unwrap();
    std::os::unix::fs::symlink(&kept, &bundle).unwrap();
    assert_refused(&media, &media.import(&disc), "path-trick");
    fs::remove_file(&bundle).unwrap();
    fs::rename(&kept, &bundle).unwrap();

    // A symlinked tag file, and names a bag may not hold.
    let bagit = disc.join("bagit.txt");
    let kept_bagit = fs::read(&bagit).unwrap();
    fs::remove_file(&bagit).unwrap();
    std::os::unix::fs::symlink(&secret, &bagit).unwrap();
    assert_refused(&media, &media.import(&disc), "path-trick");
    fs::remove_file(&bagit).unwrap();
    fs::write(&bagit, kept_bagit).unwrap();
    for name in ["~root", "a\\b"] {
        let odd = disc.join("data").join(name);
        fs::write(&odd, "x").unwrap();
        assert_refused(&media, &media.import(&disc), "path-trick");
        fs::remove_file(&odd).unwrap();
    }
    // A FIFO where a file should be.
    let fifo = disc.join("data/bundles/pipe.owb");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    assert_refused(&media, &media.import(&disc), "path-trick");
    fs::remove_file(&fifo).unwrap();

    // Cleaned, the disc imports, and the file the links pointed at was never read into it.
    let out = media.import(&disc);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(media.pair.inbox_bundles().len(), 2);
}

/// The Library of Congress reference tool (`bagit.py` from PyPI, also `python3 -m bagit`) must
/// accept every bag the ferry writes. Absent the tool, the test passes unless
/// `OW_REQUIRE_BAGIT=1` (CI sets it).
#[test]
fn exported_bags_validate_with_bagit_py() {
    let media = Media::new();
    let disc = media.disc("disc-bagit", 4);
    let candidates: [(&str, &[&str]); 2] = [("bagit.py", &[]), ("python3", &["-m", "bagit"])];
    let mut ran = false;
    for (program, prefix) in candidates {
        let probe = Command::new(program).args(prefix).arg("--help").output();
        if !matches!(&probe, Ok(out) if out.status.success()) {
            continue;
        }
        let out = Command::new(program)
            .args(prefix)
            .arg("--validate")
            .arg(&disc)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} --validate refused the bag: {}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
        // And it notices one changed byte.
        let bundle = disc_bundles(&disc)[0].clone();
        flip(&bundle, 200);
        let out = Command::new(program)
            .args(prefix)
            .arg("--validate")
            .arg(&disc)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{program} accepted an altered bag");
        ran = true;
        break;
    }
    if !ran {
        assert!(
            std::env::var("OW_REQUIRE_BAGIT").as_deref() != Ok("1"),
            "OW_REQUIRE_BAGIT=1 but neither `bagit.py` nor `python3 -m bagit` runs; install it \
             with `pip install bagit`"
        );
        eprintln!("bagit.py not installed: bag validation with the reference tool skipped");
    }
}

/// `kill -9` of the real import at many points: whatever was interrupted, importing the same disc
/// again finishes the job — every bundle lands once, none is lost, and then the disc is a replay.
#[test]
fn an_import_killed_at_any_point_finishes_exactly_once_when_run_again() {
    let media = Media::new();
    let disc = media.disc("disc-kill", 30);
    for attempt in 0u64..12 {
        let mut child = Command::new(common::BIN)
            .args([
                "media",
                "import",
                "--config",
                media.pair.receiver_config.to_str().unwrap(),
                "--disc",
                disc.to_str().unwrap(),
            ])
            .env("OW_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Spread the kills over the whole run: checks, staging, landing, recording.
        std::thread::sleep(std::time::Duration::from_millis((attempt * 37 + 5) % 400));
        let _ = child.kill();
        let _ = child.wait();
        // Never a bundle twice, never a half-landed file under a final name.
        let landed = media.pair.inbox_bundles();
        let unique: std::collections::BTreeSet<&String> = landed.iter().collect();
        assert_eq!(unique.len(), landed.len());
        assert!(landed.len() <= 30);
    }
    // A kill after the disc was recorded as imported but before the process exited leaves a
    // finished import: the last run then says the disc was replayed, and the count below proves
    // that nothing was lost.
    let out = media.import(&disc);
    assert!(
        out.status.success() || stderr(&out).contains("[replayed]"),
        "{}",
        stderr(&out)
    );
    assert_eq!(media.pair.inbox_bundles().len(), 30, "bundles lost");
    let leftovers: Vec<String> = names(&media.pair.inbox)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let out = media.import(&disc);
    assert!(stderr(&out).contains("[replayed]"), "{}", stderr(&out));
    assert_eq!(media.pair.inbox_bundles().len(), 30);
    let key = media.pair.keys.join("extranet.sign.pub");
    let out = ferry(&[
        "log",
        "verify",
        "--log",
        media.rx_media_log().to_str().unwrap(),
        "--public-key",
        key.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Bytes no compressor shrinks (xorshift), so a packed bundle is about as large as its item.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

impl Media {
    /// Packs one bundle whose item is `bytes` long.
    fn pack_large(&self, bytes: usize, seed: u64) {
        fs::create_dir_all(&self.outbox).unwrap();
        let item = self.pair.root().join(format!("scan-{seed}.bin"));
        fs::write(&item, noise(bytes, seed)).unwrap();
        let out = ferry(&[
            "pack",
            "--config",
            self.pair.sender_config.to_str().unwrap(),
            "--channel",
            "internet-to-extranet",
            "--kind",
            "demo.item",
            "--out",
            self.outbox.to_str().unwrap(),
            item.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    fn export_set(&self, set: &Path, capacity: &str) -> Output {
        ferry(&[
            "media",
            "export",
            "--config",
            self.pair.sender_config.to_str().unwrap(),
            "--set",
            set.to_str().unwrap(),
            "--capacity",
            capacity,
        ])
    }
}

/// The disc folders of an exported set, in disc order.
fn set_discs(report: &serde_json::Value) -> Vec<PathBuf> {
    report["discs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| PathBuf::from(d["folder"].as_str().unwrap()))
        .collect()
}

/// Runs the reference BagIt validator on `bag` if it is installed; true if it ran.
fn bagit_validate(bag: &Path) -> bool {
    let candidates: [(&str, &[&str]); 2] = [("bagit.py", &[]), ("python3", &["-m", "bagit"])];
    for (program, prefix) in candidates {
        let probe = Command::new(program).args(prefix).arg("--help").output();
        if !matches!(&probe, Ok(out) if out.status.success()) {
            continue;
        }
        let out = Command::new(program)
            .args(prefix)
            .arg("--validate")
            .arg(bag)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} --validate refused {}: {}{}",
            bag.display(),
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
        return true;
    }
    assert!(
        std::env::var("OW_REQUIRE_BAGIT").as_deref() != Ok("1"),
        "OW_REQUIRE_BAGIT=1 but neither `bagit.py` nor `python3 -m bagit` runs; install it with \
         `pip install bagit`"
    );
    false
}

/// A set of discs made with `--capacity`: small bundles whole, a bundle larger than a disc split
/// into parts; imported in shuffled order, each disc lands what it can, names the discs still
/// missing, and the split bundle lands once its last part comes — the same bytes that were sent.
#[test]
fn a_set_of_discs_imports_in_any_order_and_reassembles_a_split_bundle() {
    let media = Media::new();
    media.pack(2);
    media.pack_large(2_500_000, 7);
    media.pack(2);
    let big_sent: Vec<u8> = {
        let mut names = names(&media.outbox);
        names.sort();
        fs::read(media.outbox.join(&names[2])).unwrap()
    };
    assert!(big_sent.len() > 2_500_000);

    // Capacity 5 MB leaves about 0.8 MB of payload per disc after the tag-file reserve.
    let set = media.pair.root().join("set-1");
    let out = media.export_set(&set, "5M");
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["bundles"], 5, "{report}");
    assert_eq!(report["split"], 1, "{report}");
    let discs = set_discs(&report);
    let n = discs.len();
    assert!(n >= 4, "{report}");
    assert_eq!(report["disc_count"], n);
    assert!(names(&media.outbox).is_empty());
    let set_id = report["set_id"].as_str().unwrap().to_owned();
    for (k, disc) in discs.iter().enumerate() {
        let info = fs::read_to_string(disc.join("bag-info.txt")).unwrap();
        assert!(
            info.contains(&format!("Bag-Count: {} of {n}", k + 1)),
            "{info}"
        );
        assert!(
            info.contains(&format!("Bag-Group-Identifier: {set_id}")),
            "{info}"
        );
        assert!(info.contains("OW-Set-Sequence-Range: 1-5"), "{info}");
        let signed = fs::read_to_string(disc.join("ow-media-manifest.txt")).unwrap();
        assert!(
            signed.contains(&format!("disc {} of {n}\n", k + 1)),
            "{signed}"
        );
        assert!(signed.contains(&format!("set-id {set_id}\n")), "{signed}");
        bagit_validate(disc);
    }
    assert_eq!(count(&events(&media.tx_media_log()), "media-exported"), 5);

    // One altered byte in a part refuses its disc and holds nothing of it.
    let middle = &discs[n / 2];
    let part = names(&middle.join("data/parts"))[0].clone();
    let part = middle.join("data/parts").join(part);
    flip(&part, 1000);
    assert_refused(&media, &media.import(middle), "altered");
    flip(&part, 1000);

    // Shuffled: the last disc, the first, then the rest from the back.
    let mut order: Vec<usize> = vec![n - 1, 0];
    order.extend((1..n - 1).rev());
    let mut landed_before = 0;
    for (i, &k) in order.iter().enumerate() {
        let out = media.import(&discs[k]);
        assert!(out.status.success(), "disc {}: {}", k + 1, stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let missing: Vec<u64> = report["discs_missing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (1..=n as u64)
            .filter(|d| !order[..=i].contains(&(*d as usize - 1)))
            .collect();
        assert_eq!(missing, expected, "{report}");
        let landed = media.pair.inbox_bundles().len();
        if i + 1 < n {
            // The split bundle waits for its last part; the whole ones land as they come.
            assert!(
                report["set_status"]
                    .as_str()
                    .unwrap()
                    .contains("waiting for disc")
            );
            assert!(
                landed < 5,
                "the split bundle landed before all its parts came"
            );
        } else {
            assert_eq!(report["assembled"], 1, "{report}");
            assert_eq!(landed, 5, "{report}");
        }
        assert!(landed >= landed_before);
        landed_before = landed;
    }
    let log = events(&media.rx_media_log());
    assert_eq!(count(&log, "landed"), 5, "{log:?}");
    assert_eq!(count(&log, "media-imported"), n, "{log:?}");
    // The landed bytes are the bytes sent.
    let mut landed = media.pair.inbox_bundles();
    landed.sort();
    assert_eq!(
        fs::read(media.pair.inbox.join(&landed[2])).unwrap(),
        big_sent
    );

    // Any disc of the set again is a replay; nothing twice.
    for disc in &discs {
        let out = media.import(disc);
        assert!(stderr(&out).contains("[replayed]"), "{}", stderr(&out));
    }
    assert_eq!(media.pair.inbox_bundles().len(), 5);
}

/// `--disc` writes one disc: a bundle larger than the disc is refused with the way out, and the
/// disc that the rest fill leaves what does not fit pending for the next.
#[test]
fn a_single_disc_export_names_the_set_option_for_a_bundle_larger_than_the_disc() {
    let media = Media::new();
    media.pack_large(1_500_000, 3);
    let disc = media.pair.root().join("disc-small");
    let out = ferry(&[
        "media",
        "export",
        "--config",
        media.pair.sender_config.to_str().unwrap(),
        "--disc",
        disc.to_str().unwrap(),
        "--capacity",
        "5M",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--set"), "{}", stderr(&out));
    assert_eq!(
        names(&media.outbox).len(),
        1,
        "the bundle must stay pending"
    );
}

/// Disc folders (with a signed manifest: complete or nearly) under `root`'s export folders.
fn written_discs(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for set in names(root)
        .into_iter()
        .filter(|n| n.starts_with("kill-set-"))
    {
        for disc in names(&root.join(&set)) {
            let disc = root.join(&set).join(disc);
            if disc.join("ow-media-manifest.txt").is_file() {
                found.push(disc);
            }
        }
    }
    found
}

/// `kill -9` of the real `media export` at many points, each followed by the next export: the
/// next export names the interrupted discs (complete and recorded: carry them) or empties them
/// (not recorded: their bundles are still pending). Carrying what the exports named, the
/// receiving side gets every bundle exactly once, and no other complete disc is left behind.
#[test]
fn an_export_killed_at_any_point_loses_nothing_and_exports_nothing_twice() {
    let media = Media::new();
    let root = media.pair.root().to_path_buf();
    let mut carry: Vec<PathBuf> = Vec::new();
    let mut packed = 0;
    for attempt in 0u64..8 {
        media.pack(4);
        media.pack_large(1_200_000, 100 + attempt);
        packed += 5;
        let set = root.join(format!("kill-set-{attempt}"));
        let child = Command::new(common::BIN)
            .args([
                "media",
                "export",
                "--config",
                media.pair.sender_config.to_str().unwrap(),
                "--set",
                set.to_str().unwrap(),
                "--capacity",
                "5M",
            ])
            .env("OW_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis((attempt * 53 + 3) % 350));
        // SIGKILL, as `kill -9`.
        let _ = Command::new("kill")
            .args(["-9", &child.id().to_string()])
            .status();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            carry.extend(set_discs(&report));
        }
        // The next export deals with what the killed one left, then exports what is pending.
        for retry in 0..3 {
            let next = root.join(format!("kill-set-{attempt}-next-{retry}"));
            let out = media.export_set(&next, "5M");
            let err = stderr(&out);
            eprintln!(
                "attempt {attempt}, next export {retry}: {}",
                err.lines().last().unwrap_or("summary printed")
            );
            if out.status.success() {
                let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                carry.extend(set_discs(&report));
                break;
            }
            assert_eq!(out.status.code(), Some(2), "{err}");
            if err.contains("must be carried") {
                for disc in names(&set) {
                    let disc = set.join(disc);
                    assert!(err.contains(&disc.display().to_string()), "{err}");
                    carry.push(disc);
                }
            } else if err.contains("were emptied") {
                assert!(written_discs(&root).iter().all(|d| !d.starts_with(&set)));
            } else {
                assert!(err.contains("nothing to export"), "{err}");
                break;
            }
        }
    }
    carry.sort();
    carry.dedup();
    // No complete disc lies anywhere that the exports did not name.
    for disc in written_discs(&root) {
        assert!(
            carry.contains(&disc),
            "{} was neither named nor emptied",
            disc.display()
        );
    }
    for disc in carry.iter().rev() {
        let out = media.import(disc);
        assert!(out.status.success(), "{}: {}", disc.display(), stderr(&out));
    }
    let landed = media.pair.inbox_bundles();
    let unique: std::collections::BTreeSet<&String> = landed.iter().collect();
    assert_eq!(unique.len(), landed.len(), "a bundle landed twice");
    assert_eq!(landed.len(), packed, "bundles lost");
    assert!(names(&media.outbox).is_empty());
}

/// The narrowest window of a killed export — after its discs were recorded, before its summary
/// was printed — left as the kill leaves it (the journal still there): the next export refuses to
/// start and names the recorded discs to carry; the one after exports normally.
#[test]
fn an_export_stopped_after_recording_names_its_discs_on_the_next_run() {
    let media = Media::new();
    media.pack(3);
    let set = media.pair.root().join("set-recorded");
    let out = media.export_set(&set, "25G");
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let journal = media
        .pair
        .root()
        .join("internet/ferry/media-exports/internet-to-extranet-media-tx.json");
    assert!(
        !journal.exists(),
        "the journal outlived the printed summary"
    );
    fs::write(
        &journal,
        serde_json::json!({
            "set_id": report["set_id"],
            "discs": set_discs(&report),
            "set_folder": set,
            "started_at": "2026-03-01T08:00:00Z",
        })
        .to_string(),
    )
    .unwrap();
    media.pack(1);
    let out = media.export_set(&media.pair.root().join("set-after"), "25G");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("must be carried"), "{err}");
    for disc in set_discs(&report) {
        assert!(err.contains(&disc.display().to_string()), "{err}");
        assert!(
            disc.join("ow-media-manifest.txt").is_file(),
            "a recorded disc was touched"
        );
    }
    let out = media.export_set(&media.pair.root().join("set-after"), "25G");
    assert!(out.status.success(), "{}", stderr(&out));
    let after: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(after["bundles"], 1);
}

/// A route with `order = "strict"` refuses a disc whose set leaves a gap after what landed,
/// naming the missing sequences; once the gap is filled the same disc imports, and the discs of a
/// set in shuffled order still import.
#[test]
fn a_strict_route_refuses_a_gap_and_takes_a_shuffled_set() {
    let media = Media::new();
    let rx = fs::read_to_string(&media.pair.receiver_config).unwrap();
    fs::write(
        &media.pair.receiver_config,
        format!("{rx}order = \"strict\"\n"),
    )
    .unwrap();
    let first = media.disc("disc-first", 2);
    let second = media.disc("disc-second", 2);

    let out = media.import(&second);
    assert_refused(&media, &out, "out-of-order");
    assert!(stderr(&out).contains("sequence(s) 1–2"), "{}", stderr(&out));
    assert!(media.import(&first).status.success());
    let out = media.import(&second);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(media.pair.inbox_bundles().len(), 4);

    // A set of three discs (one bundle each), imported last disc first.
    for seed in 0..3 {
        media.pack_large(500_000, 40 + seed);
    }
    let out = media.export_set(&media.pair.root().join("set-strict"), "5M");
    assert!(out.status.success(), "{}", stderr(&out));
    let discs = set_discs(&serde_json::from_slice(&out.stdout).unwrap());
    assert_eq!(discs.len(), 3);
    for disc in discs.iter().rev() {
        let out = media.import(disc);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(media.pair.inbox_bundles().len(), 7);

    // A gap in the middle of what landed is named too.
    media.pack(1);
    let skipped = media.pair.root().join("disc-skipped");
    assert!(media.export(&skipped).status.success());
    let late = media.disc("disc-late", 1);
    let out = media.import(&late);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("[out-of-order]"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sequence(s) 8 of"),
        "{}",
        stderr(&out)
    );
}

/// `--iso`: an ISO 9660/Joliet image per disc of a set, its volume id naming set and disc, and
/// `media import --disc IMAGE` reads it (xorriso extracts it to a private folder first). Absent
/// xorriso the test passes unless `OW_REQUIRE_XORRISO=1`; the export then says how to get it.
#[test]
fn a_set_round_trips_through_iso_images() {
    let media = Media::new();
    let have = Command::new("xorriso")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    // Without xorriso on PATH, --iso refuses before writing anything and says how to get it.
    let empty_path = media.pair.root().join("no-tools");
    fs::create_dir_all(&empty_path).unwrap();
    media.pack(2);
    media.pack_large(1_000_000, 9);
    let images = media.pair.root().join("images");
    fs::create_dir_all(&images).unwrap();
    let iso = images.join("out.iso");
    let export = |path: Option<&Path>| {
        let mut command = Command::new(common::BIN);
        command.args([
            "media",
            "export",
            "--config",
            media.pair.sender_config.to_str().unwrap(),
            "--set",
            media.pair.root().join("set-iso").to_str().unwrap(),
            "--capacity",
            "5M",
            "--iso",
            iso.to_str().unwrap(),
        ]);
        if let Some(path) = path {
            command.env("PATH", path);
        }
        command.env("OW_LOG", "error").output().unwrap()
    };
    let out = export(Some(&empty_path));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("apt install xorriso"),
        "{}",
        stderr(&out)
    );
    assert_eq!(names(&media.outbox).len(), 3, "nothing may be exported");
    if !have {
        assert!(
            std::env::var("OW_REQUIRE_XORRISO").as_deref() != Ok("1"),
            "OW_REQUIRE_XORRISO=1 but xorriso does not run; apt install xorriso"
        );
        eprintln!("xorriso not installed: the ISO round trip is skipped");
        return;
    }
    let out = export(None);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = report["disc_count"].as_u64().unwrap();
    assert!(n >= 2, "{report}");
    let written: Vec<PathBuf> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .collect();
    assert_eq!(written.len() as u64, n);
    let set_tail: String =
        report["set_id"].as_str().unwrap().replace('-', "")[20..].to_ascii_uppercase();
    for (k, image) in written.iter().enumerate() {
        assert_eq!(image, &images.join(format!("out-{}-of-{n}.iso", k + 1)));
        let info = Command::new("xorriso")
            .args(["-indev", image.to_str().unwrap(), "-pvd_info"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(
            text.contains(&format!("OW_{set_tail}_{}OF{n}", k + 1)),
            "{text}"
        );
    }
    // Imported from the images alone, last first; the disc folders are gone.
    fs::remove_dir_all(media.pair.root().join("set-iso")).unwrap();
    for image in written.iter().rev() {
        let out = media.import(image);
        assert!(
            out.status.success(),
            "{}: {}",
            image.display(),
            stderr(&out)
        );
    }
    assert_eq!(media.pair.inbox_bundles().len(), 3);
    // No extracted copy is left behind, and an image of something else is refused with why.
    let staging = media
        .pair
        .root()
        .join("extranet/ferry/media-staging/internet-to-extranet-media-rx");
    assert!(
        names(&staging).iter().all(|n| !n.starts_with(".iso-")),
        "{:?}",
        names(&staging)
    );
    let junk = images.join("junk.iso");
    fs::write(&junk, vec![0u8; 100_000]).unwrap();
    let out = media.import(&junk);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("[unreadable]"), "{}", stderr(&out));
    assert!(stderr(&out).contains("junk.iso"), "{}", stderr(&out));
    // Recorded like any refused disc: a reason file naming the image, a media-refused entry.
    assert!(names(&media.refused).contains(&"junk.iso.disc.reason".to_owned()));
    assert_eq!(count(&events(&media.rx_media_log()), "media-refused"), 1);
    assert_eq!(media.pair.inbox_bundles().len(), 3);
}

/// `kill -9` of the real import of each disc of a set with a split bundle, at many points, then
/// the same disc again: every bundle — the split one too — lands exactly once, nothing is lost.
#[test]
fn a_set_import_killed_at_any_point_lands_every_bundle_exactly_once() {
    let media = Media::new();
    media.pack(3);
    media.pack_large(2_000_000, 11);
    media.pack(3);
    let out = media.export_set(&media.pair.root().join("set-kill"), "5M");
    assert!(out.status.success(), "{}", stderr(&out));
    let discs = set_discs(&serde_json::from_slice(&out.stdout).unwrap());
    assert!(discs.len() >= 3);
    let mut order: Vec<&PathBuf> = discs.iter().collect();
    order.rotate_left(1);
    for (i, disc) in order.into_iter().enumerate() {
        for attempt in 0u64..3 {
            let mut child = Command::new(common::BIN)
                .args([
                    "media",
                    "import",
                    "--config",
                    media.pair.receiver_config.to_str().unwrap(),
                    "--disc",
                    disc.to_str().unwrap(),
                ])
                .env("OW_LOG", "error")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let delay = (i as u64 * 71 + attempt * 43 + 7) % 300;
            std::thread::sleep(std::time::Duration::from_millis(delay));
            let _ = child.kill();
            let _ = child.wait();
            let landed = media.pair.inbox_bundles();
            let unique: std::collections::BTreeSet<&String> = landed.iter().collect();
            assert_eq!(unique.len(), landed.len(), "a bundle landed twice");
        }
        let out = media.import(disc);
        assert!(
            out.status.success() || stderr(&out).contains("[replayed]"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(media.pair.inbox_bundles().len(), 7, "bundles lost");
    for disc in &discs {
        let out = media.import(disc);
        assert!(stderr(&out).contains("[replayed]"), "{}", stderr(&out));
    }
    assert_eq!(media.pair.inbox_bundles().len(), 7);
}

/// Re-signs a copy of `disc` at `to` with the sender's real key after `edit` changed its signed
/// manifest (and `Bag-Count`): a disc the sending zone really signed, yet at odds with its set.
fn resign(
    media: &Media,
    disc: &Path,
    to: &Path,
    edit: impl Fn(&mut ow_ferry::media::signed::MediaManifest),
) {
    use ow_ferry::media::signed::MediaManifest;
    copy_dir(disc, to);
    let trust = ow_keys::load_trust(&media.pair.root().join("trust.toml")).unwrap();
    let key = ow_keys::load_signing_key(&media.pair.keys.join("internet.sign.secret")).unwrap();
    let text = fs::read_to_string(to.join("ow-media-manifest.txt")).unwrap();
    let (mut manifest, _) = MediaManifest::open(&text, &trust).unwrap();
    let before = (manifest.disc_index, manifest.disc_count);
    edit(&mut manifest);
    let info = fs::read_to_string(to.join("bag-info.txt"))
        .unwrap()
        .replace(
            &format!("Bag-Count: {} of {}", before.0, before.1),
            &format!(
                "Bag-Count: {} of {}",
                manifest.disc_index, manifest.disc_count
            ),
        );
    let info = info.replace(
        &text
            .lines()
            .find_map(|l| l.strip_prefix("disc-id "))
            .map(|id| format!("External-Identifier: {id}"))
            .unwrap(),
        &format!("External-Identifier: {}", manifest.disc_id),
    );
    fs::write(to.join("bag-info.txt"), &info).unwrap();
    let mut lines = String::new();
    for name in [
        "bagit.txt",
        "bag-info.txt",
        "manifest-sha256.txt",
        "manifest-sha512.txt",
        "manifest-blake3.txt",
        "ow-contents.txt",
    ] {
        let bytes = fs::read(to.join(name)).unwrap();
        let digest: String = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        lines.push_str(&format!("{digest}  {name}\n"));
    }
    fs::write(to.join("tagmanifest-sha256.txt"), &lines).unwrap();
    manifest.tagmanifest_sha256 = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(lines.as_bytes()))
    };
    fs::write(to.join("ow-media-manifest.txt"), manifest.sign(&key)).unwrap();
}

/// Discs the sender signed but that disagree with their set are refused through the binary: a
/// second disc for a place already imported (`replayed`), a disc giving the set another disc
/// count (`altered`). The set's genuine discs then import.
#[test]
fn discs_at_odds_with_their_set_are_refused() {
    let media = Media::new();
    media.pack(1);
    media.pack_large(1_200_000, 21);
    let out = media.export_set(&media.pair.root().join("set-odd"), "5M");
    assert!(out.status.success(), "{}", stderr(&out));
    let discs = set_discs(&serde_json::from_slice(&out.stdout).unwrap());
    let n = discs.len() as u32;
    assert!(n >= 2);
    assert!(media.import(&discs[0]).status.success());

    let twin = media.pair.root().join("disc-twin");
    resign(&media, &discs[0], &twin, |m| {
        m.disc_id = "0193f5c2-7d7e-7a40-9c55-000000000001".into();
    });
    let out = media.import(&twin);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("[replayed]"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already imported"),
        "{}",
        stderr(&out)
    );

    let recount = media.pair.root().join("disc-recount");
    resign(&media, &discs[1], &recount, |m| {
        m.disc_id = "0193f5c2-7d7e-7a40-9c55-000000000002".into();
        m.disc_count = n + 1;
    });
    let out = media.import(&recount);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("[altered]"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("said {n}")),
        "{}",
        stderr(&out)
    );

    for disc in &discs[1..] {
        let out = media.import(disc);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(media.pair.inbox_bundles().len(), 2);
}

/// A disc the sender really signed whose part of a split bundle disagrees with the part already
/// held from another disc of the set (here: another BLAKE3 for the whole bundle) is `altered`,
/// holds nothing, and leaves the held part alone: the genuine disc then completes the bundle,
/// which lands exactly as sent.
#[test]
fn a_part_that_disagrees_with_the_held_parts_refuses_its_disc() {
    let media = Media::new();
    media.pack_large(1_200_000, 33);
    let sent = {
        let names = names(&media.outbox);
        assert_eq!(names.len(), 1);
        fs::read(media.outbox.join(&names[0])).unwrap()
    };
    let out = media.export_set(&media.pair.root().join("set-held"), "5M");
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["split"], 1, "{report}");
    let discs = set_discs(&report);
    assert_eq!(discs.len(), 2, "{report}");
    let out = media.import(&discs[0]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        media.pair.inbox_bundles().is_empty(),
        "landed before its last part"
    );

    // Disc 2, its part line naming another whole-bundle BLAKE3, re-signed by the sender.
    let edited = media.pair.root().join("disc-2-edited");
    copy_dir(&discs[1], &edited);
    let contents = fs::read_to_string(edited.join("ow-contents.txt")).unwrap();
    let mut changed = 0;
    let contents: String = contents
        .lines()
        .map(|line| {
            let mut fields: Vec<String> = line.split(' ').map(str::to_owned).collect();
            if fields[0] == "part" {
                // `part <path> <bytes> <id> <sequence> <k> <n> <offset> <bundle bytes> <blake3> …`
                let blake3 = &mut fields[9];
                let first = if blake3.starts_with('0') { "1" } else { "0" };
                blake3.replace_range(0..1, first);
                changed += 1;
            }
            fields.join(" ") + "\n"
        })
        .collect();
    assert_eq!(changed, 1, "{contents}");
    fs::write(edited.join("ow-contents.txt"), contents).unwrap();
    let forged = media.pair.root().join("disc-2-forged");
    resign(&media, &edited, &forged, |_| {});
    let out = media.import(&forged);
    assert_refused(&media, &out, "altered");
    assert!(
        stderr(&out)
            .contains("disagrees with part 1 of 2 of the same bundle held from another disc"),
        "{}",
        stderr(&out)
    );

    // The genuine disc 2 completes the bundle from the part still held.
    let out = media.import(&discs[1]);
    assert!(out.status.success(), "{}", stderr(&out));
    let landed = media.pair.inbox_bundles();
    assert_eq!(landed.len(), 1);
    assert_eq!(fs::read(media.pair.inbox.join(&landed[0])).unwrap(), sent);
}
