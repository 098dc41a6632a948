//! `ow-intranet`: the cadastral zone's server and its offline commands. Argument parsing and
//! wiring only; the work is in the library.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use ow_intranet::surveyors::{NewSurveyor, Role};
use ow_intranet::{AppState, Mode, Settings};

/// OneWindow cadastral zone (权籍调查成果审查, intranet): surveyors review survey packages
/// against the cadastral database; the register mirror follows the extranet's register log.
#[derive(Debug, Parser)]
#[command(name = "ow-intranet", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web server and the exchange with the extranet until Ctrl-C or SIGTERM.
    Serve(ConfigArgs),
    /// Check that a running server answers on /healthz (exit code 0 when it does).
    Healthcheck {
        /// Base URL of the server.
        #[arg(long, default_value = "http://127.0.0.1:8083")]
        url: String,
    },
    /// Create the personal-data key file where the configuration names it, if it does not
    /// exist yet (never overwrites). Zone keys come from `ow-ferry keygen --zone intranet`.
    InitKeys(ConfigArgs),
    /// Create the demo districts, surveyors and existing parcels (idempotent). Passwords and
    /// TOTP secrets are printed once, when an account is created.
    SeedDemo {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print a JSON summary instead of text.
        #[arg(long)]
        json: bool,
        /// Also write the JSON summary to this file (mode 0600: it holds credentials).
        #[arg(long, value_name = "FILE")]
        json_out: Option<PathBuf>,
        /// Also write demo survey files (界址点坐标 TXT) into this folder: one that overlaps a
        /// demo parcel and one that passes, to submit on the portal.
        #[arg(long, value_name = "DIR")]
        surveys_out: Option<PathBuf>,
    },
    /// Print the exchange's counts (queued, packed, imported, dead-lettered), each dead letter's
    /// id, kind and reason code, and any gap in the register log (no personal data).
    Status {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Put a dead letter back in line after its cause was fixed; the running server retries it.
    RetryDeadLetter {
        #[command(flatten)]
        config: ConfigArgs,
        /// The dead letter's id, as `status` prints it.
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Manage surveyor accounts.
    Surveyor {
        #[command(subcommand)]
        command: SurveyorCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SurveyorCommand {
    /// Create a surveyor account and print its initial password and TOTP secret once.
    Add {
        #[command(flatten)]
        config: ConfigArgs,
        /// Login name (3–32 of a-z 0-9 . _ -).
        #[arg(long)]
        username: String,
        /// Display (work) name.
        #[arg(long)]
        name: String,
        /// District code (6 digits), e.g. 370781.
        #[arg(long)]
        district: String,
        /// Role: surveyor or chief (repeat for several).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// The TOML configuration file (relative paths in it are relative to its folder).
    #[arg(long, env = "OW_CONFIG")]
    config: PathBuf,
    /// Override one setting, e.g. --set listen=127.0.0.1:9000 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl ConfigArgs {
    fn load(&self) -> anyhow::Result<Settings> {
        let overrides = self
            .set
            .iter()
            .map(|s| ow_config::parse_set_arg(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Settings::load(Some(&self.config), &overrides)?)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("OW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    if let Command::Healthcheck { url } = &cli.command {
        ow_web::health::healthcheck_blocking(url, Duration::from_secs(5))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("ok");
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(run(cli.command))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Healthcheck { .. } => Ok(()),
        Command::Serve(args) => {
            let settings = args.load()?;
            let listen = settings.listen;
            let state = AppState::open(settings, Mode::Serve).await?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen} (setting `listen`)"))?;
            ow_intranet::serve(listener, state.clone(), shutdown_signal()).await?;
            state.store.close().await;
            Ok(())
        }
        Command::Status { config, json } => {
            let settings = config.load()?;
            let store =
                ow_store::Store::open(&settings.database_url(), &ow_store::OpenOptions::default())
                    .await?;
            ow_intranet::db::migrate(&store).await?;
            let status = ow_exchange::status(&store).await?;
            let gaps = ow_intranet::register::gaps(&store).await?;
            store.close().await;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "exchange": status,
                        "register_gaps": gaps,
                    }))?
                );
            } else {
                print!("{}", status.to_text());
                for g in &gaps {
                    println!(
                        "register log gap: district {} entries {}–{} missing, {} held",
                        g.district_code, g.missing_from, g.missing_to, g.held
                    );
                }
            }
            Ok(())
        }
        Command::RetryDeadLetter { config, id } => {
            let settings = config.load()?;
            let store =
                ow_store::Store::open(&settings.database_url(), &ow_store::OpenOptions::default())
                    .await?;
            let letter = ow_exchange::request_retry(&store, &id).await;
            store.close().await;
            let letter = letter?;
            println!(
                "dead letter {} ({}, code {}) will be retried by the running server",
                letter.id,
                letter.kind.as_deref().unwrap_or("-"),
                letter.code
            );
            Ok(())
        }
        Command::InitKeys(args) => {
            let settings = args.load_unvalidated_keys()?;
            let pii = &settings.pii_key_file;
            if pii.exists() {
                println!("personal-data key file exists: {}", pii.display());
            } else {
                if let Some(dir) = pii.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                ow_pii::PiiKeyring::generate_key_file(pii)?;
                println!("created personal-data key file {}", pii.display());
            }
            Ok(())
        }
        Command::SeedDemo {
            config,
            json,
            json_out,
            surveys_out,
        } => {
            let state = AppState::open(config.load()?, Mode::Offline).await?;
            let summary = ow_intranet::seed::seed_demo(&state).await?;
            state.store.close().await;
            let text = serde_json::to_string_pretty(&summary)?;
            if let Some(path) = json_out {
                write_private(&path, &text)?;
            }
            if let Some(dir) = surveys_out {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                for (name, content) in ow_intranet::seed::demo_surveys() {
                    let path = dir.join(name);
                    std::fs::write(&path, content)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
            }
            if json {
                println!("{text}");
            } else {
                print_summary(&summary);
            }
            Ok(())
        }
        Command::Surveyor {
            command:
                SurveyorCommand::Add {
                    config,
                    username,
                    name,
                    district,
                    roles,
                },
        } => {
            let roles = roles
                .iter()
                .map(|r| {
                    Role::from_code(r)
                        .with_context(|| format!("unknown role {r:?}: use surveyor or chief"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let state = AppState::open(config.load()?, Mode::Offline).await?;
            let created = ow_intranet::surveyors::create_surveyor(
                &state.store,
                &state.pii,
                &state.hasher,
                state.settings.login.min_password_length,
                NewSurveyor {
                    username,
                    display_name: name,
                    district_code: district,
                    roles,
                    password: None,
                },
                state.now_ms(),
            )
            .await?;
            state.store.close().await;
            println!("账号 {} 已创建（只显示一次）", created.surveyor.username);
            println!("  初始密码:     {}", created.password);
            println!("  动态口令密钥: {}", created.totp_base32);
            println!("  验证器链接:   {}", created.otpauth_uri);
            Ok(())
        }
    }
}

impl ConfigArgs {
    /// `init-keys` runs before the key files exist, so only the parts it needs are checked.
    fn load_unvalidated_keys(&self) -> anyhow::Result<Settings> {
        let overrides = self
            .set
            .iter()
            .map(|s| ow_config::parse_set_arg(s))
            .collect::<Result<Vec<_>, _>>()?;
        let settings: Settings = ow_config::load(Some(&self.config), "OW_", &overrides)?;
        let settings = settings.resolve(Some(&self.config));
        if settings.pii_key_file.as_os_str().is_empty() {
            anyhow::bail!(
                "setting pii_key_file is empty; give the path of the personal-data key file"
            );
        }
        Ok(settings)
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn print_summary(s: &ow_intranet::seed::SeedSummary) {
    println!("== 业务内网演示数据 ==");
    for (code, name) in &s.districts {
        println!("区县 {code} {name}");
    }
    println!("-- 调查审查员（密码和动态口令密钥只在创建时显示一次）--");
    for v in &s.surveyors {
        match (&v.password, &v.totp_secret) {
            (Some(p), Some(t)) => println!(
                "  {:<10} {} [{}] 密码 {}  动态口令密钥 {}",
                v.username,
                v.district_code,
                v.roles.join(","),
                p,
                t
            ),
            _ => println!(
                "  {:<10} {} [{}] 已存在（凭据不再显示）",
                v.username,
                v.district_code,
                v.roles.join(",")
            ),
        }
    }
    println!("-- 已有宗地 --");
    for p in &s.parcels {
        println!(
            "  {} {} 平方米{}",
            p.parcel_code,
            p.area_m2,
            if p.created { "" } else { "（已存在）" }
        );
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
