use std::io::Write;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Http {
    listen: SocketAddr,
    max_body_mb: u16,
    public_url: String,
}

impl Default for Http {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_mb: 20,
            public_url: "http://localhost:8080".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Settings {
    http: Http,
    site_name: String,
    log_format: LogFormat,
    data_dir: PathBuf,
    db_password: Secret,
    workers: Option<u32>,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.http.max_body_mb == 0 {
            return Err(ConfigError::invalid(
                "http.max_body_mb",
                "must be at least 1; raise it",
            ));
        }
        Ok(())
    }
}

fn toml_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.flush().unwrap();
    f
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn set(pairs: &[&str]) -> Vec<(String, String)> {
    pairs.iter().map(|a| parse_set_arg(a).unwrap()).collect()
}

fn load_t(
    file: Option<&Path>,
    vars: &[(&str, &str)],
    overrides: &[&str],
) -> Result<Settings, ConfigError> {
    load_with_env(file, "OW_", env(vars), &set(overrides))
}

#[test]
fn defaults_alone() {
    let s = load_t(None, &[], &[]).unwrap();
    assert_eq!(s.http, Http::default());
    assert_eq!(s.log_format, LogFormat::Text);
    assert!(s.db_password.is_empty());
    assert_eq!(s.workers, None);
}

#[test]
fn file_beats_default() {
    let f = toml_file(
        "site_name = \"北京市不动产登记中心\"\nlog_format = \"json\"\nworkers = 4\n\
         [http]\nlisten = \"0.0.0.0:9000\"\n",
    );
    let s = load_t(Some(f.path()), &[], &[]).unwrap();
    assert_eq!(s.http.listen, "0.0.0.0:9000".parse::<SocketAddr>().unwrap());
    assert_eq!(
        s.http.max_body_mb, 20,
        "keys the file leaves out keep their defaults"
    );
    assert_eq!(s.site_name, "北京市不动产登记中心");
    assert_eq!(s.log_format, LogFormat::Json);
    assert_eq!(s.workers, Some(4));
}

#[test]
fn env_beats_file_and_override_beats_env() {
    let f = toml_file("[http]\nlisten = \"0.0.0.0:9000\"\nmax_body_mb = 5\n");
    let vars = [
        ("OW_HTTP__LISTEN", "10.0.0.1:7000"),
        ("OW_HTTP__MAX_BODY_MB", "6"),
    ];
    let s = load_t(Some(f.path()), &vars, &[]).unwrap();
    assert_eq!(
        s.http.listen,
        "10.0.0.1:7000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(s.http.max_body_mb, 6);

    let s = load_t(Some(f.path()), &vars, &["http.listen=127.0.0.2:7001"]).unwrap();
    assert_eq!(
        s.http.listen,
        "127.0.0.2:7001".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        s.http.max_body_mb, 6,
        "env still beats the file where no override is given"
    );
}

#[test]
fn env_prefix_is_respected_and_foreign_variables_ignored() {
    let vars = [
        ("OTHER_HTTP__LISTEN", "10.0.0.1:1"),
        ("OW_CONFIG", "/etc/ow/internet.toml"),
        ("PATH", "/usr/bin"),
        ("OW_", "x"),
        ("OW_HTTP____LISTEN", "x"),
    ];
    let s = load_t(None, &vars, &[]).unwrap();
    assert_eq!(s.http, Http::default());
}

#[test]
fn env_prefix_matches_case_insensitively_and_keys_are_lowercased() {
    let s: Settings = load_with_env(None, "ow_", env(&[("OW_LOG_FORMAT", "json")]), &[]).unwrap();
    assert_eq!(s.log_format, LogFormat::Json);
}

#[test]
fn numeric_text_stays_text_where_the_default_is_text() {
    let s = load_t(
        None,
        &[("OW_SITE_NAME", "110000"), ("OW_DB_PASSWORD", "123456")],
        &["http.public_url=8080"],
    )
    .unwrap();
    assert_eq!(s.site_name, "110000");
    assert_eq!(s.db_password.expose(), "123456");
    assert_eq!(s.http.public_url, "8080");
}

#[test]
fn unknown_key_in_file_is_named() {
    let f = toml_file("[http]\nlisen = \"0.0.0.0:9000\"\n");
    let err = load_t(Some(f.path()), &[], &[]).unwrap_err();
    match &err {
        ConfigError::UnknownKey {
            setting,
            origin,
            expected,
        } => {
            assert_eq!(setting, "http.lisen");
            assert!(origin.contains(&f.path().display().to_string()), "{origin}");
            assert!(expected.contains(&"listen".to_owned()));
        }
        other => panic!("expected UnknownKey, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("http.lisen") && msg.contains("listen"),
        "{msg}"
    );
    assert!(err.message_zh().contains("http.lisen"));
}

#[test]
fn unknown_top_level_key_in_file_is_named() {
    let f = toml_file("sitename = \"x\"\n");
    let err = load_t(Some(f.path()), &[], &[]).unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownKey { setting, .. } if setting == "sitename"),
        "{err:?}"
    );
}

#[test]
fn unknown_key_under_known_section_in_env_names_the_variable() {
    let err = load_t(None, &[("OW_HTTP__LISEN", "1.2.3.4:5")], &[]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("http.lisen") && msg.contains("OW_HTTP__LISEN"),
        "{msg}"
    );
}

#[test]
fn unknown_key_in_override_is_named() {
    let err = load_t(None, &[], &["http.lisen=1.2.3.4:5"]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("http.lisen") && msg.contains("--set http.lisen"),
        "{msg}"
    );
}

#[test]
fn type_error_names_setting_and_expected_type() {
    let f = toml_file("[http]\nlisten = \"abc\"\n");
    let err = load_t(Some(f.path()), &[], &[]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("setting http.listen: \"abc\" is not a socket address"),
        "{msg}"
    );
    assert!(msg.contains(&f.path().display().to_string()), "{msg}");

    let err = load_t(None, &[("OW_HTTP__LISTEN", "abc")], &[]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("http.listen") && msg.contains("OW_HTTP__LISTEN"),
        "{msg}"
    );

    let err = load_t(None, &[], &["http.max_body_mb=70000"]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("http.max_body_mb") && msg.contains("an integer from 0 to 65535"),
        "{msg}"
    );

    let err = load_t(None, &[], &["log_format=xml"]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("log_format") && msg.contains("`json`"),
        "{msg}"
    );
}

#[test]
fn type_error_hides_secret_values() {
    let f = toml_file("db_password = [\"hunter2\"]\n");
    let err = load_t(Some(f.path()), &[], &[]).unwrap_err();
    let msg = format!("{err} {err:?} {}", err.message_zh());
    assert!(msg.contains("db_password"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let err = load_t(Some(&path), &[], &[]).unwrap_err();
    assert!(matches!(&err, ConfigError::FileMissing { path: p } if p == &path));
    assert!(err.to_string().contains("nope.toml"));
    assert!(err.message_zh().contains("nope.toml"));
}

#[test]
fn syntax_error_names_file_and_line() {
    let f = toml_file("site_name = \"a\"\n\n[http\nlisten = 1\n");
    let err = load_t(Some(f.path()), &[], &[]).unwrap_err();
    match &err {
        ConfigError::FileSyntax { path, line, .. } => {
            assert_eq!(path, f.path());
            assert_eq!(*line, 3);
        }
        other => panic!("expected FileSyntax, got {other:?}"),
    }
    assert!(err.to_string().contains("line 3"), "{err}");
}

#[test]
fn missing_required_setting_names_the_env_var() {
    // A setting with no built-in default (left out of the serialized defaults) is required.
    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Db {
        #[serde(skip_serializing)]
        password: Secret,
    }
    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        db: Db,
    }
    let err = load_with_env::<Outer, _>(None, "OW_", Vec::new(), &[]).unwrap_err();
    match &err {
        ConfigError::Missing { setting, env_var } => {
            assert_eq!(setting, "db.password");
            assert_eq!(env_var, "OW_DB__PASSWORD");
        }
        other => panic!("expected Missing, got {other:?}"),
    }
    let s: Outer = load_with_env(None, "OW_", env(&[("OW_DB__PASSWORD", "pw")]), &[]).unwrap();
    assert_eq!(s.db.password.expose(), "pw");
}

#[test]
fn validate_reports_invalid() {
    let f = toml_file("[http]\nmax_body_mb = 0\n");
    let s = load_t(Some(f.path()), &[], &[]).unwrap();
    let err = s.validate().unwrap_err();
    assert!(matches!(&err, ConfigError::Invalid { setting, .. } if setting == "http.max_body_mb"));
    assert!(err.to_string().contains("must be at least 1"));
}

#[test]
fn secret_is_redacted() {
    let f = toml_file("db_password = \"s3cr3t-pw\"\n");
    let s = load_t(Some(f.path()), &[], &[]).unwrap();
    assert_eq!(s.db_password.expose(), "s3cr3t-pw");
    assert_eq!(s.db_password.expose_secret(), "s3cr3t-pw");
    let debug = format!("{s:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(debug.contains("[redacted]"));
    let dumped = toml::to_string(&s).unwrap();
    assert!(!dumped.contains("s3cr3t"), "{dumped}");
    assert!(dumped.contains("[redacted]"));
}

#[test]
fn dumped_placeholder_is_refused() {
    let f = toml_file("db_password = \"[redacted]\"\n");
    let err = load_t(Some(f.path()), &[], &[]).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Rejected { setting, .. } if setting == "db_password"),
        "{err:?}"
    );
    assert!(err.to_string().contains("placeholder"), "{err}");
}

#[test]
fn set_arg_parsing() {
    assert_eq!(
        parse_set_arg("http.listen=0.0.0.0:80").unwrap(),
        ("http.listen".into(), "0.0.0.0:80".into())
    );
    assert_eq!(
        parse_set_arg(" a = b=c").unwrap(),
        ("a".into(), " b=c".into())
    );
    assert_eq!(parse_set_arg("a=").unwrap(), ("a".into(), String::new()));
    for bad in ["http.listen", "=x", "a..b=1", "a b=1", ".a=1"] {
        let err = parse_set_arg(bad).unwrap_err();
        assert!(matches!(err, ConfigError::BadSetArg { .. }), "{bad}");
        assert!(err.to_string().contains("key=value"), "{err}");
    }
    let err = parse_set_arg("db.pass word=hunter2").unwrap_err();
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn relative_paths_resolve_against_the_file() {
    let file = Path::new("/etc/ow/internet.toml");
    assert_eq!(
        relative_to(Some(file), Path::new("data")),
        PathBuf::from("/etc/ow/data")
    );
    assert_eq!(
        relative_to(Some(file), Path::new("/var/ow")),
        PathBuf::from("/var/ow")
    );
    assert_eq!(relative_to(None, Path::new("data")), PathBuf::from("data"));
    assert_eq!(
        relative_to(Some(Path::new("ow.toml")), Path::new("data")),
        PathBuf::from("data")
    );
}

#[test]
fn line_column_counts_characters() {
    assert_eq!(line_column("ab\ncd", 0), (1, 1));
    assert_eq!(line_column("ab\ncd", 4), (2, 2));
    assert_eq!(line_column("中文\nx", 3), (1, 2));
}

/// Runs only inside the child process started by `the_process_environment_is_read`.
#[test]
fn env_child_probe() {
    if std::env::var_os("OW_CFGCHILD_PROBE").is_none() {
        return;
    }
    let s: Settings = load(None, "OW_CFGCHILD_", &[]).unwrap();
    assert_eq!(
        s.http.listen,
        "127.0.0.9:9999".parse::<SocketAddr>().unwrap()
    );
}

/// `load` reads the real process environment. `set_var` is unsafe (and unsafe code is
/// forbidden here), so the variables are given to a child run of this test binary.
#[test]
fn the_process_environment_is_read() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "tests::env_child_probe", "--test-threads=1"])
        .env("OW_CFGCHILD_PROBE", "1")
        .env("OW_CFGCHILD_HTTP__LISTEN", "127.0.0.9:9999")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
}
