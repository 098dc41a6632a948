//! `ow-extranet`: the registrar back office. Thin: parse the command line, load the settings,
//! call the library.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use ow_extranet::staff::{NewStaff, Role};
use ow_extranet::{AppState, Mode, Settings};

/// OneWindow registrar back office (不动产登记业务系统, extranet zone).
#[derive(Debug, Parser)]
#[command(name = "ow-extranet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web server and the exchange with the portal until Ctrl-C or SIGTERM.
    Serve(ConfigArgs),
    /// Check that a running server answers on /healthz (exit code 0 when it does).
    Healthcheck {
        /// Base URL of the server.
        #[arg(long, default_value = "http://127.0.0.1:8082")]
        url: String,
    },
    /// Create the demo districts, staff, units, holders, rights and certificates (idempotent).
    /// Staff passwords and TOTP secrets are printed once, when the account is created.
    SeedDemo {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print a machine-readable JSON summary on stdout instead of text.
        #[arg(long)]
        json: bool,
        /// Also write the JSON summary to this file (created mode 0600: it holds the
        /// passwords and TOTP secrets of the staff created by this run).
        #[arg(long, value_name = "FILE")]
        json_out: Option<PathBuf>,
    },
    /// Manage staff accounts.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Print the exchange's counts (queued, packed, imported, dead-lettered) and each dead
    /// letter's id, kind and reason code (no personal data).
    Status {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Put a dead letter back in line after its cause was fixed; the running back office
    /// retries it on its next round and logs the retry.
    RetryDeadLetter {
        #[command(flatten)]
        config: ConfigArgs,
        /// The dead letter's id, as `status` prints it.
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Create the personal-data key file and the certificate signing key where the
    /// configuration names them, if they do not exist yet (never overwrites).
    InitKeys(ConfigArgs),
    /// After a personal-data key rotation: seal every stored material again with the active
    /// key (files sealed with it already are left alone), so an old key can be retired.
    ResealMaterials(ConfigArgs),
}

#[derive(Debug, Subcommand)]
enum StaffCommand {
    /// Create a staff account and print its initial password and TOTP secret once.
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
        /// Role: accept, review, record, certificate or district_admin (repeat for several).
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

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    if let Command::Healthcheck { url } = &cli.command {
        ow_web::health::healthcheck_blocking(url, Duration::from_secs(5))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("ok");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(cli.command))
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
            ow_extranet::serve(listener, state.clone(), shutdown_signal()).await?;
            state.store.close().await;
            Ok(())
        }
        Command::SeedDemo {
            config,
            json,
            json_out,
        } => {
            let state = AppState::open(config.load()?, Mode::Offline).await?;
            let summary = ow_extranet::seed::seed_demo(&state).await?;
            state.audit.close().await?;
            if let Some(path) = json_out {
                write_private(&path, &serde_json::to_string_pretty(&summary)?)?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print_summary(&summary);
            }
            Ok(())
        }
        Command::Staff {
            command:
                StaffCommand::Add {
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
                    Role::from_code(r).with_context(|| {
                        format!(
                            "unknown role {r:?}: use accept, review, record, certificate or district_admin"
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let state = AppState::open(config.load()?, Mode::Offline).await?;
            let created = ow_extranet::staff::create_staff(
                &state.store,
                &state.pii,
                &state.hasher,
                state.settings.login.min_password_length,
                NewStaff {
                    username,
                    display_name: name,
                    district_code: district,
                    roles,
                    password: None,
                },
                None,
                state.now_ms(),
            )
            .await?;
            state.audit.close().await?;
            println!("账号 {} 已创建（只显示一次）", created.member.username);
            println!("  初始密码:     {}", created.password);
            println!("  动态口令密钥: {}", created.totp_base32);
            println!("  验证器链接:   {}", created.otpauth_uri);
            Ok(())
        }
        Command::Status { config, json } => {
            let settings = config.load()?;
            let status = ow_extranet::ops::exchange_status(&settings).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status.to_text());
            }
            Ok(())
        }
        Command::RetryDeadLetter { config, id } => {
            let settings = config.load()?;
            let letter = ow_extranet::ops::retry_dead_letter(&settings, &id).await?;
            println!(
                "dead letter {} ({}, code {}) will be retried by the running back office",
                letter.id,
                letter.kind.as_deref().unwrap_or("-"),
                letter.code
            );
            Ok(())
        }
        Command::InitKeys(args) => {
            let settings = args.load()?;
            init_keys(&settings)
        }
        Command::ResealMaterials(args) => {
            let state = AppState::open(args.load()?, Mode::Offline).await?;
            let resealed = ow_extranet::materials::reseal_all(&state).await?;
            state.audit.close().await?;
            println!(
                "{resealed} material file(s) sealed again with key {}",
                state.pii.active_key_id()
            );
            Ok(())
        }
    }
}

fn init_keys(settings: &Settings) -> anyhow::Result<()> {
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
    let cert = &settings.certificate_key_file;
    if cert.exists() {
        println!("certificate signing key exists: {}", cert.display());
        return Ok(());
    }
    let (Some(dir), Some(name)) = (cert.parent(), cert.file_stem().and_then(|s| s.to_str())) else {
        bail!(
            "setting certificate_key_file: {} is not a file path",
            cert.display()
        );
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let generated = ow_certificate::generate_key_file(dir, name)?;
    println!(
        "created certificate signing key {} (public key {}, key id {})",
        generated.secret_path.display(),
        generated.public_path.display(),
        generated.key_id
    );
    Ok(())
}

/// `text` as a QR code drawn with Unicode half blocks, black on white whatever the terminal's
/// colours (ANSI escapes), so an authenticator app can scan it off the screen.
fn terminal_qr(text: &str) -> anyhow::Result<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::L)
        .context("the text is too long for a QR code")?;
    let drawn = code.render::<Dense1x2>().quiet_zone(true).build();
    Ok(drawn
        .lines()
        .map(|line| format!("\x1b[30;47m{line}\x1b[0m"))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Writes `text` to a new file at `path` readable by its owner only (it holds credentials).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn print_summary(s: &ow_extranet::seed::SeedSummary) {
    println!("== 演示数据 ==");
    for d in &s.districts {
        println!("区县 {} {}", d.code, d.name);
    }
    println!("-- 工作人员（密码和动态口令密钥只在创建时显示一次）--");
    for st in &s.staff {
        match (&st.password, &st.totp_secret) {
            (Some(p), Some(t)) => println!(
                "  {:<12} {} [{}] 密码 {}  动态口令密钥 {}",
                st.username,
                st.district_code,
                st.roles.join(","),
                p,
                t
            ),
            _ => println!(
                "  {:<12} {} [{}] 已存在（凭据不再显示）",
                st.username,
                st.district_code,
                st.roles.join(",")
            ),
        }
    }
    let created: Vec<_> = s
        .staff
        .iter()
        .filter_map(|st| Some((st, st.otpauth_uri.as_deref()?)))
        .collect();
    if !created.is_empty() {
        println!("-- 验证器应用：扫描二维码或导入 otpauth 链接（每位工作人员一个）--");
    }
    for (st, uri) in created {
        println!("  {} {}", st.username, uri);
        match terminal_qr(uri) {
            Ok(qr) => println!("{qr}"),
            Err(e) => println!("  （二维码无法生成：{e}；请导入上面的链接）"),
        }
    }
    println!("-- 不动产单元 --");
    for u in &s.units {
        let holders: Vec<String> = u
            .holders
            .iter()
            .map(|h| format!("{} {} {}", h.name, h.id_number, h.share))
            .collect();
        println!(
            "  {} {}{}{}\n    权利人: {}\n    证书: {} 验证码 {}",
            u.unit_code,
            u.location,
            if u.seized { " [查封]" } else { "" },
            if u.mortgaged { " [抵押]" } else { "" },
            holders.join("；"),
            u.certificate_number.as_deref().unwrap_or("-"),
            u.verification_code.as_deref().unwrap_or("-"),
        );
    }
    println!("-- 演示购房人（可用于在门户注册并申请）--");
    for b in &s.demo_buyers {
        println!("  {} {}", b.name, b.id_number);
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_qr_is_a_square_of_half_blocks_in_black_on_white() {
        let uri = "otpauth://totp/OneWindow%E4%B8%8D%E5%8A%A8%E4%BA%A7%E7%99%BB%E8%AE%B0:qz-accept?\
                   secret=6OTUCQIDXMHBIPHQO36FLBEEOH2FJ4TC&issuer=OneWindow%E4%B8%8D%E5%8A%A8%E4%BA%A7%E7%99%BB%E8%AE%B0";
        let qr = terminal_qr(uri).expect("fits in a QR code");
        let lines: Vec<&str> = qr.lines().collect();
        let width = qrcode::QrCode::with_error_correction_level(uri, qrcode::EcLevel::L)
            .expect("fits")
            .width()
            + 8;
        // Two rows of modules per line, quiet zone included.
        assert_eq!(lines.len(), width.div_ceil(2));
        for line in &lines {
            let inner = line
                .strip_prefix("\x1b[30;47m")
                .and_then(|l| l.strip_suffix("\x1b[0m"))
                .expect("every line is black on white");
            assert_eq!(inner.chars().count(), width);
            assert!(inner.chars().all(|c| " ▀▄█".contains(c)), "{inner}");
        }
        assert!(terminal_qr(&"x".repeat(5000)).is_err());
    }
}
