//! Running a zone's agents until shutdown.
//!
//! Each agent runs on its own thread with its own small async runtime for the state database, so
//! a slow 256 MiB verification on one channel never holds up another. An agent wakes on a
//! file-system event for its folder (`notify`) and also rescans periodically, so nothing is missed
//! when events are dropped — as they are on network mounts that many gateway devices present.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tracing::{error, info, warn};

use crate::AgentError;
use crate::audit::AgentLog;
use crate::config::FerryConfig;
use crate::receiver::Receiver;
use crate::sender::Sender;
use crate::state::FerryState;

enum Wake {
    Changed,
    Stop,
}

/// Stops the agents started by [`start_zone`].
#[derive(Debug)]
pub struct RunningZone {
    stops: Vec<mpsc::Sender<Wake>>,
    threads: Vec<(String, thread::JoinHandle<Result<(), AgentError>>)>,
}

impl RunningZone {
    /// Asks every agent to finish its current batch, write its final checkpoint and stop, and
    /// waits for them. Returns the first error an agent ended with.
    pub fn stop(self) -> Result<(), AgentError> {
        for stop in &self.stops {
            let _ = stop.send(Wake::Stop);
        }
        let mut first_error = None;
        for (name, handle) in self.threads {
            match handle.join() {
                Ok(Ok(())) => info!(agent = %name, "stopped"),
                Ok(Err(err)) => {
                    error!(agent = %name, "stopped with an error: {err}");
                    first_error.get_or_insert(err);
                }
                Err(_) => {
                    error!(agent = %name, "agent thread panicked");
                    first_error.get_or_insert(AgentError::Busy(format!("agent {name} panicked")));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// True while every agent thread is alive.
    pub fn all_running(&self) -> bool {
        self.threads.iter().all(|(_, h)| !h.is_finished())
    }
}

/// Loads keys and trust, then starts one thread per configured agent.
///
/// Fails before starting anything if a key file is loose or unreadable, the trust file is invalid,
/// or an agent's folders, state or log cannot be opened.
pub fn start_zone(config: &FerryConfig) -> Result<RunningZone, AgentError> {
    let signing_key = ow_keys::load_signing_key(&config.keys.signing_key)?;
    let trust = Arc::new(ow_keys::load_trust(&config.keys.trust_file)?);
    let decryption = if config.receive.is_empty() {
        None
    } else {
        Some(Arc::new(ow_keys::load_encryption_secret(
            &config.keys.encryption_key,
        )?))
    };
    std::fs::create_dir_all(&config.data_dir).map_err(|e| AgentError::io(&config.data_dir, e))?;

    let mut running = RunningZone {
        stops: Vec::new(),
        threads: Vec::new(),
    };
    // Agents start one by one and report readiness, so that a bad folder or a broken log stops
    // the whole zone at start rather than leaving half of it running.
    for send in &config.send {
        let (wake_tx, wake_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let send = send.clone();
        let zone = config.zone;
        let state_path = config.state_db();
        let log_dir = config.log_dir(&send.name);
        let key = signing_key.clone();
        let checkpoint_every = config.log.checkpoint_every;
        let watch_tx = wake_tx.clone();
        let name = send.name.clone();
        let heartbeat = config.oneway.heartbeat;
        let heartbeat_key = signing_key.clone();
        let heartbeat_trust = Arc::clone(&trust);
        let handle = thread::Builder::new()
            .name(format!("tx:{}", send.name))
            .spawn(move || -> Result<(), AgentError> {
                let runtime = runtime()?;
                let start = runtime.block_on(async {
                    let state = FerryState::open(&state_path).await?;
                    let log = AgentLog::open(
                        &log_dir,
                        &send.name,
                        &send.channel.to_string(),
                        zone,
                        key,
                        checkpoint_every,
                    )?;
                    let mut sender = Sender::start(send.clone(), zone, state, log).await?;
                    if let Some(interval) = heartbeat {
                        sender.set_heartbeat(crate::sender::HeartbeatSource {
                            signing_key: heartbeat_key,
                            trust: heartbeat_trust,
                            interval,
                        });
                    }
                    Ok::<_, AgentError>(sender)
                });
                let mut sender = match start {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return Ok(());
                    }
                };
                sender.log_start()?;
                let _watcher = watch(&send.outbox, watch_tx);
                let mut failures = 0u32;
                loop {
                    let wait = match runtime.block_on(sender.poll()) {
                        Ok(pass) if pass.sent + pass.rejected > 0 => {
                            failures = 0;
                            continue;
                        }
                        Ok(_) => {
                            failures = 0;
                            send.rescan
                        }
                        Err(err) => {
                            failures = failures.saturating_add(1);
                            pass_failed(sender.name(), "send", failures, &err);
                            retry_wait(send.rescan, failures)
                        }
                    };
                    if wait_for_wake(&wake_rx, wait) {
                        break;
                    }
                }
                // One last pass so that nothing dropped just before the signal waits for restart.
                if let Err(err) = runtime.block_on(sender.poll()) {
                    warn!(agent = %sender.name(), "final send pass failed: {err}");
                }
                sender.shutdown()
            })
            .map_err(|e| AgentError::Busy(format!("cannot start agent thread: {e}")))?;
        if let Err(err) = await_ready(&name, &ready_rx) {
            let _ = running.stop();
            return Err(err);
        }
        running.stops.push(wake_tx);
        running.threads.push((name, handle));
    }
    for receive in &config.receive {
        let (wake_tx, wake_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let receive = receive.clone();
        let zone = config.zone;
        let state_path = config.state_db();
        let log_dir = config.log_dir(&receive.name);
        let key = signing_key.clone();
        let checkpoint_every = config.log.checkpoint_every;
        let trust = Arc::clone(&trust);
        let decryption = decryption.clone();
        let silence_alarm = config.oneway.silence_alarm;
        let watch_tx = wake_tx.clone();
        let name = receive.name.clone();
        let handle = thread::Builder::new()
            .name(format!("rx:{}", receive.name))
            .spawn(move || -> Result<(), AgentError> {
                let runtime = runtime()?;
                let start = runtime.block_on(async {
                    let decryption = decryption.ok_or_else(|| {
                        AgentError::Busy("receiver started without a decryption key".into())
                    })?;
                    let state = FerryState::open(&state_path).await?;
                    let log = AgentLog::open(
                        &log_dir,
                        &receive.name,
                        &receive.channel.to_string(),
                        zone,
                        key,
                        checkpoint_every,
                    )?;
                    let mut receiver =
                        Receiver::start(receive.clone(), zone, state, log, trust, decryption)
                            .await?;
                    if let Some(threshold) = silence_alarm {
                        receiver.set_silence_alarm(threshold).await?;
                    }
                    Ok::<_, AgentError>(receiver)
                });
                let mut receiver = match start {
                    Ok(r) => {
                        let _ = ready_tx.send(Ok(()));
                        r
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return Ok(());
                    }
                };
                receiver.log_start()?;
                let _watcher = watch(&receive.gateway, watch_tx);
                // While files are settling, look again well within the settle time.
                let settle_poll = (receive.settle / 4).max(Duration::from_millis(20));
                let mut failures = 0u32;
                loop {
                    let wait = match runtime.block_on(receiver.poll()) {
                        Ok(pass) if pass.landed + pass.rejected > 0 => {
                            failures = 0;
                            continue;
                        }
                        Ok(pass) if pass.waiting > 0 || pass.held > 0 => {
                            failures = 0;
                            settle_poll.min(receive.rescan)
                        }
                        Ok(_) => {
                            failures = 0;
                            receive.rescan
                        }
                        Err(err) => {
                            failures = failures.saturating_add(1);
                            pass_failed(receiver.name(), "receive", failures, &err);
                            retry_wait(receive.rescan, failures)
                        }
                    };
                    if wait_for_wake(&wake_rx, wait) {
                        break;
                    }
                }
                receiver.shutdown()
            })
            .map_err(|e| AgentError::Busy(format!("cannot start agent thread: {e}")))?;
        if let Err(err) = await_ready(&name, &ready_rx) {
            let _ = running.stop();
            return Err(err);
        }
        running.stops.push(wake_tx);
        running.threads.push((name, handle));
    }
    Ok(running)
}

/// Consecutive failed passes after which a failure is reported as an error, not a warning: the
/// agent keeps retrying (the cause — a full disk, a locked database — is outside it), but an
/// operator must look.
const FAILURE_BUDGET: u32 = 8;

fn pass_failed(agent: &str, role: &str, failures: u32, err: &AgentError) {
    if failures >= FAILURE_BUDGET {
        error!(
            agent,
            failures, "{role} pass keeps failing, still retrying with backoff: {err}"
        );
    } else {
        warn!(agent, failures, "{role} pass failed, will retry: {err}");
    }
}

/// The wait before retrying after `failures` consecutive failed passes: the rescan interval,
/// doubling, at most one minute (or the rescan interval if that is longer).
fn retry_wait(rescan: Duration, failures: u32) -> Duration {
    let doubled = rescan.saturating_mul(1u32 << failures.saturating_sub(1).min(10));
    doubled.min(Duration::from_secs(60).max(rescan))
}

/// Waits for a change or the timeout, folding a burst of change events into one wake. Returns
/// true when the agent must stop.
fn wait_for_wake(wake: &mpsc::Receiver<Wake>, timeout: Duration) -> bool {
    match wake.recv_timeout(timeout) {
        Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return true,
        Ok(Wake::Changed) | Err(RecvTimeoutError::Timeout) => {}
    }
    loop {
        match wake.try_recv() {
            Ok(Wake::Stop) | Err(mpsc::TryRecvError::Disconnected) => return true,
            Ok(Wake::Changed) => {}
            Err(mpsc::TryRecvError::Empty) => return false,
        }
    }
}

fn await_ready(
    name: &str,
    ready: &mpsc::Receiver<Result<(), AgentError>>,
) -> Result<(), AgentError> {
    match ready.recv() {
        Ok(Ok(())) => {
            info!(agent = %name, "started");
            Ok(())
        }
        Ok(Err(err)) => Err(err),
        Err(_) => Err(AgentError::Busy(format!("agent {name} ended during start"))),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, AgentError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AgentError::Busy(format!("cannot start an async runtime: {e}")))
}

/// Whether an event means the folder's contents may have changed. `notify` also reports opens
/// and read-only closes; the agent's own listing of the folder opens it, so waking on those would
/// make an idle agent rescan in a loop. A close after writing still counts: a file finished.
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match kind {
        notify::EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        notify::EventKind::Access(_) => false,
        _ => true,
    }
}

/// Watches `dir` and sends a wake on every change. A watcher that cannot be set up is not fatal:
/// the periodic rescan still finds everything, only later.
fn watch(dir: &Path, wake: mpsc::Sender<Wake>) -> Option<notify::RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| is_change(&e.kind)) {
            let _ = wake.send(Wake::Changed);
        }
    };
    match notify::recommended_watcher(handler) {
        Ok(mut watcher) => match watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => Some(watcher),
            Err(err) => {
                warn!(dir = %dir.display(), "cannot watch folder, relying on rescans: {err}");
                None
            }
        },
        Err(err) => {
            warn!("cannot create a file watcher, relying on rescans: {err}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{is_change, retry_wait};
    use std::time::Duration;

    #[test]
    fn failed_passes_back_off_up_to_a_minute() {
        let rescan = Duration::from_millis(500);
        assert_eq!(retry_wait(rescan, 1), rescan);
        assert_eq!(retry_wait(rescan, 3), Duration::from_secs(2));
        assert_eq!(retry_wait(rescan, 40), Duration::from_secs(60));
    }
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};

    #[test]
    fn listing_the_folder_is_not_a_change_but_writing_is() {
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
        assert!(is_change(&EventKind::Remove(RemoveKind::File)));
    }
}
