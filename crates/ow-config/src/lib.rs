//! Layered, typed configuration: defaults, TOML file, `OW_` environment variables, command line.
//!
//! [`load`] builds one typed settings value `T` from four layers, each overriding the one
//! before it:
//!
//! 1. **defaults**: `T::default()`;
//! 2. **the TOML file**, when one is given (`--config PATH`): a missing file or invalid TOML is
//!    an error naming the file (and the line and column of a syntax error);
//! 3. **environment variables** starting with the prefix (normally `OW_`): the rest of the name,
//!    lower-cased, split on `__` into the nested key, so `OW_HTTP__LISTEN=127.0.0.1:8080` sets
//!    `http.listen`;
//! 4. **command-line overrides** (`--set http.listen=127.0.0.1:8080`, parsed with
//!    [`parse_set_arg`]), dotted keys.
//!
//! # Writing a settings type
//!
//! Put `#[serde(deny_unknown_fields)]` on every settings struct so that a misspelt key in the
//! file, an `OW_…` variable or a `--set` is an error naming it instead of being silently
//! ignored, and give every struct a `Default` (the built-in defaults are layer 1):
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use std::net::SocketAddr;
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! #[serde(deny_unknown_fields, default)]
//! struct Http {
//!     listen: SocketAddr,
//! }
//!
//! impl Default for Http {
//!     fn default() -> Self {
//!         Self { listen: SocketAddr::from(([127, 0, 0, 1], 8080)) }
//!     }
//! }
//!
//! #[derive(Debug, Default, Serialize, Deserialize)]
//! #[serde(deny_unknown_fields, default)]
//! struct Settings {
//!     http: Http,
//!     database_url: ow_config::Secret,
//! }
//!
//! let overrides = vec![ow_config::parse_set_arg("http.listen=0.0.0.0:9000").unwrap()];
//! let s: Settings = ow_config::load(None, "OW_DOCTEST_", &overrides).unwrap();
//! assert_eq!(s.http.listen.port(), 9000);
//! assert_eq!(format!("{:?}", s.database_url), "[redacted]");
//! ```
//!
//! Passwords, tokens and connection URLs with credentials are held in [`Secret`], which prints as
//! `[redacted]` in `Debug` (and serializes as `[redacted]`), so a settings value can be logged.
//!
//! # Environment variables
//!
//! A variable with the prefix whose first key segment is not a setting of `T` at all (such as
//! `OW_CONFIG`, which the binaries use for the path of the file) is ignored, so the binaries'
//! own variables can share the prefix. Below a known section, an unknown key is an error, so
//! `OW_HTTP__LISEN` is reported. Values are read as TOML-like scalars (`8080` is a number,
//! `true` a boolean, `[1, 2]` a list), except where the default of that setting is a string: then
//! the value is taken as written, so `OW_DB__PASSWORD=123456` is the text `123456`.
//!
//! # Errors
//!
//! Every [`ConfigError`] names the setting (dotted path), where the value came from (the file,
//! the environment variable, the `--set` option) and what to do. A value of a setting whose name
//! suggests a secret (`password`, `secret`, `token`, `key`, `url`) is never repeated in an error.
//!
//! # Relative paths and validation
//!
//! A relative path in the file means a path relative to the file's directory: resolve it with
//! [`relative_to`]. Checks that serde cannot express (ranges, one setting requiring another)
//! go in a [`Validate`] impl; [`load_validated`] loads and validates in one call.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use secrecy::ExposeSecret;

/// Why the configuration could not be loaded, or is not acceptable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file given does not exist.
    #[error(
        "configuration file {} does not exist; check the path given with --config, \
         or create the file",
        path.display()
    )]
    FileMissing {
        /// The path given.
        path: PathBuf,
    },
    /// The configuration file exists but could not be read.
    #[error(
        "cannot read configuration file {}: {source}; check that it is a readable file",
        path.display()
    )]
    FileUnreadable {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error(
        "configuration file {} is not valid TOML at line {line}, column {column}: {message}; \
         fix the syntax there",
        path.display()
    )]
    FileSyntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// What the TOML parser reported.
        message: String,
    },
    /// A key that is not a setting.
    #[error(
        "unknown setting `{setting}` in {origin}; check its spelling{}",
        expected_list(expected)
    )]
    UnknownKey {
        /// Dotted path of the unknown key.
        setting: String,
        /// Where it came from (file, environment variable, `--set`).
        origin: String,
        /// The settings that are known at that level.
        expected: Vec<String>,
    },
    /// A value of the wrong type or form.
    #[error(
        "setting {setting}: {found} is not {expected} (from {origin}); correct the value{}",
        quote_hint(found, expected)
    )]
    WrongType {
        /// Dotted path of the setting.
        setting: String,
        /// Where the value came from.
        origin: String,
        /// The value found (hidden for secrets).
        found: String,
        /// What was expected, with its article ("a socket address").
        expected: String,
    },
    /// A value the setting's type refused for a reason of its own.
    #[error("setting {setting} (from {origin}) was refused: {reason}; correct the value")]
    Rejected {
        /// Dotted path of the setting.
        setting: String,
        /// Where the value came from.
        origin: String,
        /// The reason given by the type.
        reason: String,
    },
    /// A required setting has no value in any layer.
    #[error(
        "setting {setting} is required but not set; set it in the configuration file, \
         with the environment variable {env_var}, or with --set {setting}=…"
    )]
    Missing {
        /// Dotted path of the setting.
        setting: String,
        /// The environment variable that would set it.
        env_var: String,
    },
    /// A value that loaded but breaks a rule of the program ([`Validate`]).
    #[error("setting {setting} is invalid: {reason}")]
    Invalid {
        /// Dotted path of the setting.
        setting: String,
        /// What is wrong and what to do, in one phrase.
        reason: String,
    },
    /// A `--set` argument that is not `key=value`.
    #[error(
        "--set {arg}: {reason}; write it as --set key=value, e.g. --set http.listen=127.0.0.1:8080"
    )]
    BadSetArg {
        /// The argument, cut to its key part.
        arg: String,
        /// What is wrong.
        reason: String,
    },
    /// The built-in defaults could not be turned into a table (a bug in the settings type).
    #[error(
        "the built-in default settings cannot be used: {message}; this is a bug in the program"
    )]
    Defaults {
        /// What went wrong.
        message: String,
    },
    /// Any other configuration error.
    #[error(
        "configuration error: {message}; check the configuration file, OW_ variables and --set options"
    )]
    Other {
        /// What went wrong.
        message: String,
    },
}

fn expected_list(expected: &[String]) -> String {
    if expected.is_empty() {
        String::new()
    } else {
        format!(" (known settings here: {})", expected.join(", "))
    }
}

fn quote_hint(found: &str, expected: &str) -> &'static str {
    let scalar = found.starts_with(|c: char| c.is_ascii_digit() || c == '-')
        || found == "true"
        || found == "false";
    if scalar && expected.contains("string") {
        "; to give it as text, quote it (in an environment variable or --set: '\"…\"')"
    } else {
        ""
    }
}

impl ConfigError {
    /// A short Chinese message for the operator.
    pub fn message_zh(&self) -> String {
        match self {
            Self::FileMissing { path } => {
                format!(
                    "配置文件 {} 不存在，请检查 --config 参数给出的路径",
                    path.display()
                )
            }
            Self::FileUnreadable { path, .. } => {
                format!("无法读取配置文件 {}，请检查文件权限", path.display())
            }
            Self::FileSyntax {
                path, line, column, ..
            } => format!(
                "配置文件 {} 第{line}行第{column}列不是有效的 TOML 语法，请修改后重试",
                path.display()
            ),
            Self::UnknownKey {
                setting, origin, ..
            } => {
                format!("未知的配置项 {setting}（来自{origin}），请检查拼写")
            }
            Self::WrongType {
                setting,
                found,
                expected,
                ..
            } => {
                format!("配置项 {setting} 的值 {found} 格式不正确（应为：{expected}），请更正")
            }
            Self::Rejected {
                setting, reason, ..
            } => {
                format!("配置项 {setting} 的值不被接受：{reason}，请更正")
            }
            Self::Missing { setting, env_var } => format!(
                "缺少必填配置项 {setting}，请在配置文件中设置，或设置环境变量 {env_var}，或使用 --set"
            ),
            Self::Invalid { setting, reason } => {
                format!("配置项 {setting} 不符合要求：{reason}")
            }
            Self::BadSetArg { arg, .. } => {
                format!("--set {arg} 格式不正确，应写作 --set 配置项=值")
            }
            Self::Defaults { .. } => "程序内置的默认配置有误，请联系开发人员".into(),
            Self::Other { message } => format!("配置有误：{message}"),
        }
    }

    /// An [`ConfigError::Invalid`] for a [`Validate`] impl.
    pub fn invalid(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

/// Checks a loaded settings value against rules serde cannot express.
pub trait Validate {
    /// `Ok` when every setting is acceptable; otherwise the first problem, normally
    /// [`ConfigError::Invalid`] (see [`ConfigError::invalid`]).
    fn validate(&self) -> Result<(), ConfigError>;
}

/// A secret setting (password, token, connection URL with credentials).
///
/// Wraps [`secrecy::SecretString`]: the value is zeroed when dropped and reached only through
/// [`Secret::expose`] (or [`ExposeSecret`]). `Debug` prints `[redacted]`. It serializes as
/// `[redacted]` (or `""` when empty), so a serialized settings value can be shown to an operator;
/// the consequence is that a `Secret`'s built-in default must be empty — a secret never has a
/// default in code. Deserializing the literal `[redacted]` is refused, which catches a dumped
/// configuration used as input. Numbers and booleans are accepted as their text, so
/// `OW_DB__PASSWORD=123456` works.
#[derive(Clone, Default)]
pub struct Secret(secrecy::SecretString);

/// What a [`Secret`] shows instead of its value.
pub const REDACTED: &str = "[redacted]";

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(secrecy::SecretString::from(value.into()))
    }

    /// The clear value. Never log it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether the secret is empty (not configured).
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl ExposeSecret<str> for Secret {
    fn expose_secret(&self) -> &str {
        self.expose()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.is_empty() { "" } else { REDACTED })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;

        impl serde::de::Visitor<'_> for SecretVisitor {
            type Value = Secret;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret string")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                if v == REDACTED {
                    return Err(E::custom(
                        "the value is the placeholder [redacted], not a secret; put the real secret here",
                    ));
                }
                Ok(Secret::new(v))
            }

            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }

            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }

            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }
        }

        deserializer.deserialize_any(SecretVisitor)
    }
}

/// Splits a `--set key=value` argument into its dotted key and its value.
///
/// Usable as a clap `value_parser`. The key is trimmed and must be dotted segments of letters,
/// digits, `_` or `-`; the value is everything after the first `=` (it may contain `=` and may be
/// empty).
pub fn parse_set_arg(arg: &str) -> Result<(String, String), ConfigError> {
    let Some((key, value)) = arg.split_once('=') else {
        return Err(ConfigError::BadSetArg {
            arg: arg.to_owned(),
            reason: "there is no `=` between the key and the value".into(),
        });
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(ConfigError::BadSetArg {
            arg: "=…".into(),
            reason: "the key before `=` is empty".into(),
        });
    }
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if !key.split('.').all(segment_ok) {
        return Err(ConfigError::BadSetArg {
            arg: format!("{key}=…"),
            reason: "the key must be dotted names of letters, digits, `_` or `-` \
                     (such as http.listen)"
                .into(),
        });
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Resolves a path from the configuration file: a relative `p` is taken relative to the
/// directory of `file`; an absolute `p`, or any `p` when there is no file, is returned as is
/// (relative to the working directory).
pub fn relative_to(file: Option<&Path>, p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    match file.and_then(Path::parent) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(p),
        _ => p.to_path_buf(),
    }
}

/// Loads `T` from defaults, the TOML `file` (when given), environment variables starting with
/// `env_prefix`, and `overrides` (from `--set`), each layer overriding the one before.
/// See the [crate docs](crate).
pub fn load<T>(
    file: Option<&Path>,
    env_prefix: &str,
    overrides: &[(String, String)],
) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    // Variables whose name or value is not Unicode cannot be settings: skip them (`env::vars`
    // would panic on them).
    let vars = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)));
    load_with_env(file, env_prefix, vars, overrides)
}

/// [`load`], then [`Validate::validate`].
pub fn load_validated<T>(
    file: Option<&Path>,
    env_prefix: &str,
    overrides: &[(String, String)],
) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    let settings: T = load(file, env_prefix, overrides)?;
    settings.validate()?;
    Ok(settings)
}

/// [`load`] with the environment given as `(name, value)` pairs instead of read from the process,
/// for tests and for callers that filter the environment.
pub fn load_with_env<T, I>(
    file: Option<&Path>,
    env_prefix: &str,
    env: I,
    overrides: &[(String, String)],
) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
    I: IntoIterator<Item = (String, String)>,
{
    let defaults = match Value::serialize(T::default()) {
        Ok(Value::Dict(_, dict)) => dict,
        Ok(other) => {
            return Err(ConfigError::Defaults {
                message: format!(
                    "the settings type serializes to {}, not to a table",
                    other.to_actual()
                ),
            });
        }
        Err(e) => {
            return Err(ConfigError::Defaults {
                message: e.to_string(),
            });
        }
    };

    let mut figment = Figment::new().merge(Layer {
        name: "the built-in defaults".into(),
        source: None,
        dict: defaults.clone(),
    });

    if let Some(path) = file {
        figment = figment.merge(read_toml_file(path)?);
    }

    let mut env_layers: Vec<(String, Layer)> = env
        .into_iter()
        .filter_map(|(name, value)| env_layer(&defaults, env_prefix, name, &value))
        .collect();
    // Deterministic order whatever order the process environment lists them in.
    env_layers.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, layer) in env_layers {
        figment = figment.merge(layer);
    }

    for (key, value) in overrides {
        let value = typed_value(&defaults, key, value);
        figment = figment.merge(Layer {
            name: format!("the command-line option --set {key}"),
            source: None,
            dict: nest(key, value),
        });
    }

    figment
        .extract::<T>()
        .map_err(|e| convert_error(e, env_prefix, &figment))
}

/// One layer of settings with a name saying where it came from.
struct Layer {
    name: String,
    source: Option<PathBuf>,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let md = Metadata::named(self.name.clone());
        match &self.source {
            Some(path) => md.source(path.as_path()),
            None => md,
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut map = Map::new();
        map.insert(Profile::Default, self.dict.clone());
        Ok(map)
    }
}

fn read_toml_file(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ConfigError::FileMissing {
                path: path.to_path_buf(),
            }
        } else {
            ConfigError::FileUnreadable {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start).min(text.len());
        let (line, column) = line_column(&text, offset);
        ConfigError::FileSyntax {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })?;
    let dict = table
        .into_iter()
        .map(|(k, v)| (k, toml_to_value(v)))
        .collect();
    Ok(Layer {
        name: format!("the configuration file {}", path.display()),
        source: Some(path.to_path_buf()),
        dict,
    })
}

/// 1-based line and character column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset;
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn toml_to_value(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::from(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::from(b),
        toml::Value::Datetime(d) => Value::from(d.to_string()),
        toml::Value::Array(a) => Value::from(a.into_iter().map(toml_to_value).collect::<Vec<_>>()),
        toml::Value::Table(t) => Value::from(
            t.into_iter()
                .map(|(k, v)| (k, toml_to_value(v)))
                .collect::<Dict>(),
        ),
    }
}

/// The layer for one environment variable, or `None` when it is not ours.
fn env_layer(defaults: &Dict, prefix: &str, name: String, value: &str) -> Option<(String, Layer)> {
    let rest = strip_prefix_ignore_case(&name, prefix)?;
    let segments: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    if segments.iter().any(String::is_empty) {
        return None;
    }
    // Not a setting at all (such as OW_CONFIG): leave it to whoever uses it.
    if !defaults.contains_key(segments.first()?) {
        return None;
    }
    let key = segments.join(".");
    let value = typed_value(defaults, &key, value);
    let layer = Layer {
        name: format!("the environment variable {name}"),
        source: None,
        dict: nest(&key, value),
    };
    Some((name, layer))
}

fn strip_prefix_ignore_case<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let head = name.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        name.get(prefix.len()..)
    } else {
        None
    }
}

/// A string from the environment or `--set`, typed: kept as text where the default is text,
/// otherwise parsed as a TOML-like scalar or list.
fn typed_value(defaults: &Dict, key: &str, raw: &str) -> Value {
    let default = defaults_find(defaults, key);
    if matches!(default, Some(Value::String(..))) {
        Value::from(raw.to_owned())
    } else {
        raw.parse()
            .unwrap_or_else(|never: std::convert::Infallible| match never {})
    }
}

fn defaults_find<'a>(defaults: &'a Dict, key: &str) -> Option<&'a Value> {
    let mut segments = key.split('.');
    let mut current = defaults.get(segments.next()?)?;
    for segment in segments {
        current = current.as_dict()?.get(segment)?;
    }
    Some(current)
}

fn nest(key: &str, value: Value) -> Dict {
    match figment::util::nest(key, value) {
        Value::Dict(_, dict) => dict,
        // `key` is never empty here, so `nest` always gives a table.
        other => {
            let mut dict = Dict::new();
            dict.insert(key.to_owned(), other);
            dict
        }
    }
}

/// Whether a setting's name suggests its value must not be repeated.
fn is_sensitive(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "key",
        "url",
        "dsn",
        "credential",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

fn origin_of(e: &figment::Error) -> String {
    match &e.metadata {
        Some(md) => md.name.to_string(),
        None => "the configuration".into(),
    }
}

fn describe_actual(actual: &figment::error::Actual) -> String {
    use figment::error::Actual;
    match actual {
        Actual::Str(s) => format!("{s:?}"),
        Actual::Bool(b) => b.to_string(),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Signed(n) => n.to_string(),
        Actual::Float(n) => n.to_string(),
        Actual::Char(c) => format!("{c:?}"),
        Actual::Map => "a table".into(),
        Actual::Seq => "a list".into(),
        Actual::Unit | Actual::Option => "an empty value".into(),
        other => other.to_string(),
    }
}

/// "socket address" → "a socket address"; "u16" → "an integer from 0 to 65535".
fn describe_expected(expected: &str) -> String {
    let range = |lo: &str, hi: &str| format!("an integer from {lo} to {hi}");
    match expected {
        "u8" => range("0", "255"),
        "u16" => range("0", "65535"),
        "u32" => range("0", "4294967295"),
        "u64" | "u128" | "usize" => "a non-negative integer".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        e if e.starts_with("struct ") || e.starts_with("map") => "a table of settings".into(),
        e if e.starts_with("a ") || e.starts_with("an ") || e.starts_with("one of") => e.into(),
        e if e.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {e}"),
        e => format!("a {e}"),
    }
}

/// What the standard library's `FromStr` parse errors mean, for the types settings use.
fn std_parse_expectation(message: &str) -> Option<&'static str> {
    Some(match message {
        "invalid socket address syntax" => "a socket address (such as 127.0.0.1:8080)",
        "invalid IP address syntax" => "an IP address (such as 127.0.0.1)",
        "invalid digit found in string" => "a whole number",
        "number too large to fit in target type" | "number too small to fit in target type" => {
            "a number in range"
        }
        "invalid float literal" => "a number",
        "provided string was not `true` or `false`" => "true or false",
        _ => return None,
    })
}

fn convert_error(e: figment::Error, env_prefix: &str, figment: &Figment) -> ConfigError {
    use figment::error::Kind;
    let origin = origin_of(&e);
    let path = e.path.join(".");
    // figment puts an unknown field at the end of the path already, a missing one not.
    let child = |field: &str| {
        if path.is_empty() {
            field.to_owned()
        } else if e.path.last().is_some_and(|last| last == field) {
            path.clone()
        } else {
            format!("{path}.{field}")
        }
    };
    match &e.kind {
        Kind::UnknownField(field, expected) => ConfigError::UnknownKey {
            setting: child(field),
            origin,
            expected: expected.iter().map(|s| (*s).to_owned()).collect(),
        },
        Kind::MissingField(field) => {
            let setting = child(field);
            let env_var = format!(
                "{}{}",
                env_prefix.to_ascii_uppercase(),
                setting.to_ascii_uppercase().replace('.', "__")
            );
            ConfigError::Missing { setting, env_var }
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            let found = if is_sensitive(&path) {
                "the value given".to_owned()
            } else {
                describe_actual(actual)
            };
            ConfigError::WrongType {
                setting: path,
                origin,
                found,
                expected: describe_expected(expected),
            }
        }
        Kind::InvalidLength(len, expected) => ConfigError::WrongType {
            setting: path,
            origin,
            found: format!("a list of {len}"),
            expected: describe_expected(expected),
        },
        Kind::UnknownVariant(variant, expected) => {
            let choices: Vec<String> = expected.iter().map(|s| format!("`{s}`")).collect();
            ConfigError::WrongType {
                setting: path,
                origin,
                found: format!("{variant:?}"),
                expected: format!("one of {}", choices.join(", ")),
            }
        }
        Kind::Message(message) if !path.is_empty() => {
            // Types parsed with `FromStr` report only their parse error: name the value too.
            let found = match figment.find_value(&path) {
                Ok(_) if is_sensitive(&path) => "the value given".to_owned(),
                Ok(value) => describe_actual(&value.to_actual()),
                Err(_) => "the value given".to_owned(),
            };
            match std_parse_expectation(message) {
                Some(expected) => ConfigError::WrongType {
                    setting: path,
                    origin,
                    found,
                    expected: expected.into(),
                },
                None => ConfigError::Rejected {
                    setting: path,
                    origin,
                    reason: format!("{found}: {message}"),
                },
            }
        }
        other => {
            if path.is_empty() {
                ConfigError::Other {
                    message: other.to_string(),
                }
            } else {
                ConfigError::Rejected {
                    setting: path,
                    origin,
                    reason: other.to_string(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
