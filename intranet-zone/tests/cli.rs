//! The binary's offline commands: `--help`, `init-keys`, `seed-demo` (idempotent, credentials
//! once), `surveyor add`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ow-intranet"));
    c.env("OW_LOG", "warn");
    c
}

#[test]
fn offline_commands_work_on_a_fresh_folder() {
    let help = bin().arg("--help").output().unwrap();
    let text = String::from_utf8(help.stdout).unwrap();
    for command in ["serve", "healthcheck", "init-keys", "seed-demo", "surveyor"] {
        assert!(text.contains(command), "{command} in {text}");
    }

    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    ow_keys::generate_zone_keys(&keys, ow_bundle::Zone::Intranet).unwrap();
    let config = dir.path().join("intranet.toml");
    std::fs::write(
        &config,
        "data_dir = \"data\"\npii_key_file = \"keys/intranet.pii.keys\"\n\
         [exchange]\nsigning_key_file = \"keys/intranet.sign.secret\"\n\
         encryption_key_file = \"keys/intranet.enc.secret\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();

    let out = bin()
        .args(["init-keys", "--config", config])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(keys.join("intranet.pii.keys").exists());

    let out = bin()
        .args(["seed-demo", "--json", "--config", config])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let surveyors = summary["surveyors"].as_array().unwrap();
    assert!(surveyors.len() >= 3);
    assert!(surveyors.iter().all(|s| s["totp_secret"].is_string()));
    assert!(
        summary["parcels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["parcel_code"] == "370781001001GB00001")
    );
    // Again: nothing new, no credentials shown.
    let out = bin()
        .args(["seed-demo", "--json", "--config", config])
        .output()
        .unwrap();
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        again["surveyors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["password"].is_null())
    );

    let out = bin()
        .args([
            "surveyor",
            "add",
            "--config",
            config,
            "--username",
            "qz-new",
            "--name",
            "王测绘",
            "--district",
            "370781",
            "--role",
            "surveyor",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("动态口令密钥"));
    let out = bin()
        .args(["status", "--json", "--config", config])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(status["register_gaps"].as_array().unwrap().is_empty());
    assert!(status["exchange"].is_object(), "{status}");
    let out = bin()
        .args([
            "surveyor",
            "add",
            "--config",
            config,
            "--username",
            "qz-new2",
            "--name",
            "王测绘",
            "--district",
            "370781",
            "--role",
            "boss",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("surveyor or chief"));
}

#[test]
fn the_local_stack_configuration_loads() {
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/intranet.toml");
    let s = ow_intranet::Settings::load(Some(&file), &[]).unwrap();
    assert_eq!(s.listen.port(), 8083);
    assert!(s.exchange.outbox.ends_with(".run/intranet/outbox/extranet"));
    assert!(
        s.exchange
            .packer_state
            .ends_with(".run/intranet/ferry/ferry-state.db")
    );
}
