//! Child processes of the devnet (signers, the coordinator): spawned with their output in a
//! log file under the devnet directory, watched for an early exit, and killed (SIGKILL) and
//! reaped when the set is dropped, so neither an error nor Ctrl-C leaves one behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::DevnetError;

/// One child.
struct Running {
    name: String,
    log: PathBuf,
    child: Child,
}

/// The devnet's child processes, killed in reverse start order on drop.
#[derive(Default)]
pub struct Processes {
    running: Vec<Running>,
}

impl std::fmt::Debug for Processes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.running.iter().map(|r| &r.name))
            .finish()
    }
}

fn open_log(path: &Path) -> Result<(std::fs::File, std::fs::File), DevnetError> {
    let io = |source| DevnetError::Io {
        what: format!("opening {}", path.display()),
        source,
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    let err = log.try_clone().map_err(io)?;
    Ok((log, err))
}

/// Puts the child in a process group of its own: Ctrl-C in the terminal then reaches only the
/// devnet, which stops its children itself (instead of every child dying at once and the
/// devnet reporting the first death as a failure).
pub fn own_process_group(command: &mut Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    #[cfg(not(unix))]
    let _ = command;
}

/// Runs `command` to completion with its output appended to `log`; an exit other than 0 is
/// an error naming `name` and the log.
pub fn run_once(name: &str, mut command: Command, log: &Path) -> Result<(), DevnetError> {
    let (out, err) = open_log(log)?;
    let status = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|source| DevnetError::Io {
            what: format!("running {name}"),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(DevnetError::Process {
            name: name.to_owned(),
            detail: format!("exited with {status}; see {}", log.display()),
        })
    }
}

impl Processes {
    /// Starts `command` as `name`, its stdout and stderr appended to `log`.
    pub fn spawn(
        &mut self,
        name: &str,
        mut command: Command,
        log: &Path,
    ) -> Result<(), DevnetError> {
        let (out, err) = open_log(log)?;
        own_process_group(&mut command);
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| DevnetError::Io {
                what: format!("starting {name}"),
                source,
            })?;
        tracing::debug!(name, pid = child.id(), "started");
        self.running.push(Running {
            name: name.to_owned(),
            log: log.to_owned(),
            child,
        });
        Ok(())
    }

    /// Fails if any child has exited.
    pub fn check(&mut self) -> Result<(), DevnetError> {
        for r in &mut self.running {
            if let Ok(Some(status)) = r.child.try_wait() {
                return Err(DevnetError::Process {
                    name: r.name.clone(),
                    detail: format!("exited with {status}; see {}", r.log.display()),
                });
            }
        }
        Ok(())
    }

    /// Waits until something accepts TCP connections on `port` of 127.0.0.1, failing if a
    /// child exits or `limit` passes.
    pub async fn wait_for_port(
        &mut self,
        name: &str,
        port: u16,
        limit: Duration,
    ) -> Result<(), DevnetError> {
        let deadline = Instant::now() + limit;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            self.check()?;
            if Instant::now() >= deadline {
                return Err(DevnetError::Timeout {
                    what: format!("{name} to listen on port {port}"),
                    after: limit,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills every child (last started first) and reaps it.
    pub fn kill_all(&mut self) {
        while let Some(mut r) = self.running.pop() {
            let _ = r.child.kill();
            let _ = r.child.wait();
            tracing::debug!(name = r.name, "stopped");
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.kill_all();
    }
}
