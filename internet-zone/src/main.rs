//! `ow-internet`: the citizen portal binary. Thin: parse the command line, load the settings,
//! build the state, serve.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// OneWindow citizen portal (不动产登记网上一窗办事平台).
#[derive(Debug, Parser)]
#[command(name = "ow-internet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the portal: HTTP server and bundle exchange, until Ctrl-C or SIGTERM.
    Serve {
        /// TOML settings file; relative paths in it are relative to its folder.
        #[arg(long, short = 'c', value_name = "FILE", env = "OW_CONFIG")]
        config: Option<PathBuf>,
        /// Override one setting, e.g. `--set listen=0.0.0.0:8080` (repeatable; wins over the
        /// file and OW_ environment variables).
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
        set: Vec<(String, String)>,
    },
    /// Exit 0 when the portal's /healthz answers 200, 1 otherwise (for service managers).
    Healthcheck {
        /// Base URL of the running portal.
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Seconds to wait for the answer.
        #[arg(long, value_name = "SECONDS", default_value_t = 5)]
        timeout: u64,
    },
    /// Create a new personal-data key file (mode 0600); never overwrites an existing one.
    InitPiiKey {
        /// Where to write it (the `pii_key_file` setting).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print the exchange's counts (queued, packed, imported, dead-lettered) and each dead
    /// letter's id, kind and reason code (no personal data).
    Status {
        /// TOML settings file.
        #[arg(long, short = 'c', value_name = "FILE", env = "OW_CONFIG")]
        config: Option<PathBuf>,
        /// Override one setting (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
        set: Vec<(String, String)>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Put a dead letter back in line after its cause was fixed; the running portal retries it
    /// on its next round and logs the retry.
    RetryDeadLetter {
        /// TOML settings file.
        #[arg(long, short = 'c', value_name = "FILE", env = "OW_CONFIG")]
        config: Option<PathBuf>,
        /// Override one setting (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
        set: Vec<(String, String)>,
        /// The dead letter's id, as `status` prints it.
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Print the effective settings (secrets redacted) and exit.
    ShowConfig {
        /// TOML settings file.
        #[arg(long, short = 'c', value_name = "FILE", env = "OW_CONFIG")]
        config: Option<PathBuf>,
        /// Override one setting (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
        set: Vec<(String, String)>,
    },
}

fn parse_set(arg: &str) -> Result<(String, String), String> {
    ow_config::parse_set_arg(arg).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ow-internet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Healthcheck { url, timeout } => {
            match ow_web::health::healthcheck_blocking(&url, Duration::from_secs(timeout)) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("ow-internet healthcheck: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::InitPiiKey { file } => {
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create the folder {}", dir.display()))?;
            }
            let id = ow_pii::PiiKeyring::generate_key_file(&file)
                .with_context(|| format!("cannot create {}", file.display()))?;
            println!("wrote {} (key id {id:?})", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { config, set, json } => {
            let settings = ow_internet::Settings::load(config.as_deref(), &set)?;
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            let status = runtime.block_on(ow_internet::ops::exchange_status(&settings))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status.to_text());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::RetryDeadLetter { config, set, id } => {
            let settings = ow_internet::Settings::load(config.as_deref(), &set)?;
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            let letter = runtime.block_on(ow_internet::ops::retry_dead_letter(&settings, &id))?;
            println!(
                "dead letter {} ({}, code {}) will be retried by the running portal",
                letter.id,
                letter.kind.as_deref().unwrap_or("-"),
                letter.code
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::ShowConfig { config, set } => {
            let settings = ow_internet::Settings::load(config.as_deref(), &set)?;
            println!("{}", toml_like(&settings)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { config, set } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .init();
            let settings = ow_internet::Settings::load(config.as_deref(), &set)?;
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(settings.listen)
                    .await
                    .with_context(|| {
                        format!("cannot listen on {} (setting listen)", settings.listen)
                    })?;
                let state = ow_internet::App::build(settings).await?;
                ow_internet::serve(listener, state, shutdown_signal()).await?;
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn toml_like(settings: &ow_internet::Settings) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(settings)?)
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
}
