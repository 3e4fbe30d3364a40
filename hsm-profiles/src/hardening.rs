//! Process hardening at start (DESIGN §5): no core files, not dumpable (which also stops
//! ptrace attach by non-root users of the same uid), and memory locked where the OS allows.
//!
//! Memory locking and `MCL_FUTURE`: with `mlockall(MCL_CURRENT | MCL_FUTURE)` every later
//! mapping (heap growth, thread stacks) is locked too, and once the process exceeds
//! `RLIMIT_MEMLOCK` further allocations *fail* (and Rust aborts on allocation failure). So the
//! default mode, [`MemoryLock::Auto`], locks current and future memory only when no limit
//! applies: the process has `CAP_IPC_LOCK` or `RLIMIT_MEMLOCK` is unlimited (the shipped
//! systemd unit grants both). Otherwise it locks nothing and returns a warning that says how
//! to enable it. The explicit modes `current` and `current-and-future` do what they say and
//! report failures as warnings; choose `current-and-future` only with a large enough limit.
//!
//! Future memory is locked **on fault** (`MCL_ONFAULT`, Linux 4.4+): a page is locked the
//! moment it is first touched, so every page that ever holds data (a secret included) stays
//! unswappable, but a mapping is not populated in advance. Without it, `MCL_FUTURE` makes every
//! byte the process maps resident at once: 2 MiB per thread stack, and zeroed allocations that
//! are never written (sled allocates 21 MiB of metrics histograms with `calloc` at open and,
//! built with its default `no_metrics`, never writes them). A page that was never touched
//! holds nothing to protect. If the kernel refuses `MCL_ONFAULT` (`EINVAL`: older than 4.4,
//! or a sandbox that does not know the flag), locking falls back to `MCL_CURRENT |
//! MCL_FUTURE` and the report says so ([`MemoryLockOutcome::Locked`] `on_fault: false`).
//! Locked memory counts as resident.

use serde::Deserialize;

use crate::error::HardeningError;

/// How much memory to lock.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryLock {
    /// Do not lock memory.
    Off,
    /// Lock current and future memory if no limit applies (`CAP_IPC_LOCK` or unlimited
    /// `RLIMIT_MEMLOCK`); otherwise lock nothing and warn.
    #[default]
    Auto,
    /// Lock what is mapped now (`MCL_CURRENT`); later allocations are not locked.
    Current,
    /// Lock what is mapped now and everything mapped later (`MCL_CURRENT | MCL_FUTURE`).
    /// Allocations beyond `RLIMIT_MEMLOCK` then fail.
    CurrentAndFuture,
}

/// The `[hardening]` section of a profile. Every field defaults to the hardened choice.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HardeningSettings {
    /// `setrlimit(RLIMIT_CORE, 0)` (soft and hard): no core files.
    pub disable_core_dumps: bool,
    /// `prctl(PR_SET_DUMPABLE, 0)`: no core dumps, `/proc/<pid>/mem` and ptrace attach
    /// limited to root (`CAP_SYS_PTRACE`).
    pub not_dumpable: bool,
    /// Memory locking; see [`MemoryLock`].
    pub lock_memory: MemoryLock,
}

impl Default for HardeningSettings {
    fn default() -> Self {
        Self {
            disable_core_dumps: true,
            not_dumpable: true,
            lock_memory: MemoryLock::Auto,
        }
    }
}

/// What happened to memory locking.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum MemoryLockOutcome {
    /// Not requested (`lock_memory = "off"`).
    Off,
    /// `mlockall` succeeded; `future` says whether `MCL_FUTURE` was set.
    Locked {
        /// Whether later allocations are locked too.
        future: bool,
        /// Whether future pages are locked when first touched (`MCL_ONFAULT`) rather than
        /// populated when mapped; always `false` without `future`.
        on_fault: bool,
    },
    /// Not attempted, for the given reason (also in the warnings).
    Skipped(String),
    /// `mlockall` failed with the given reason (also in the warnings).
    Failed(String),
}

/// What [`harden`] did.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HardeningReport {
    /// Core files are disabled (`RLIMIT_CORE` = 0).
    pub core_dumps_disabled: bool,
    /// The process is not dumpable.
    pub not_dumpable: bool,
    /// Memory locking result.
    pub memory_lock: MemoryLockOutcome,
    /// Everything that was not applied although the settings asked for it.
    pub warnings: Vec<String>,
}

/// Decision of [`MemoryLock::Auto`] and the explicit modes, separated from the system calls
/// so it can be tested for every limit.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum LockPlan {
    Off,
    Lock { future: bool },
    Skip(String),
}

/// `memlock_soft_limit`: `None` means unlimited.
pub(crate) fn plan_memory_lock(
    mode: MemoryLock,
    memlock_soft_limit: Option<u64>,
    has_ipc_lock: bool,
) -> LockPlan {
    match mode {
        MemoryLock::Off => LockPlan::Off,
        MemoryLock::Current => LockPlan::Lock { future: false },
        MemoryLock::CurrentAndFuture => LockPlan::Lock { future: true },
        MemoryLock::Auto => match (has_ipc_lock, memlock_soft_limit) {
            (true, _) | (false, None) => LockPlan::Lock { future: true },
            (false, Some(limit)) => LockPlan::Skip(format!(
                "memory not locked: RLIMIT_MEMLOCK is {limit} bytes and CAP_IPC_LOCK is missing, \
                 so locking future allocations could make them fail; run with \
                 LimitMEMLOCK=infinity and AmbientCapabilities=CAP_IPC_LOCK (the shipped unit \
                 does), or set lock_memory = \"current\""
            )),
        },
    }
}

/// Applies `settings` to this process and reports what was done. Call it first thing in
/// `main`, before secrets are loaded and before threads are started.
///
/// # Errors
/// [`HardeningError::CoreLimit`] or [`HardeningError::Dumpable`] if those (always permitted)
/// calls fail: a process that cannot turn off core dumps must not hold secrets.
/// [`HardeningError::Unsupported`] on systems other than Linux. Memory-locking problems are
/// warnings in the report, never errors.
#[cfg(target_os = "linux")]
pub fn harden(settings: &HardeningSettings) -> Result<HardeningReport, HardeningError> {
    use rustix::mm::{mlockall, MlockAllFlags};
    use rustix::process::{
        getrlimit, set_dumpable_behavior, setrlimit, DumpableBehavior, Resource, Rlimit,
    };
    use rustix::thread::{capabilities, CapabilitySet};

    let mut warnings = Vec::new();
    if settings.disable_core_dumps {
        setrlimit(
            Resource::Core,
            Rlimit {
                current: Some(0),
                maximum: Some(0),
            },
        )
        .map_err(|e| HardeningError::CoreLimit(e.into()))?;
    } else {
        warnings.push("core dumps left enabled (disable_core_dumps = false)".to_owned());
    }
    if settings.not_dumpable {
        set_dumpable_behavior(DumpableBehavior::NotDumpable)
            .map_err(|e| HardeningError::Dumpable(e.into()))?;
    } else {
        warnings.push("process left dumpable and ptrace-able (not_dumpable = false)".to_owned());
    }

    let has_ipc_lock = capabilities(None)
        .map(|c| c.effective.contains(CapabilitySet::IPC_LOCK))
        .unwrap_or(false);
    let limit = getrlimit(Resource::Memlock).current;
    let memory_lock = match plan_memory_lock(settings.lock_memory, limit, has_ipc_lock) {
        LockPlan::Off => MemoryLockOutcome::Off,
        LockPlan::Skip(reason) => {
            warnings.push(reason.clone());
            MemoryLockOutcome::Skipped(reason)
        }
        LockPlan::Lock { future } => {
            let result = if future {
                // on fault first; the populating form only where the kernel refuses the flag
                match mlockall(
                    MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT,
                ) {
                    Ok(()) => Ok(true),
                    Err(rustix::io::Errno::INVAL) => {
                        mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE).map(|()| false)
                    }
                    Err(e) => Err(e),
                }
            } else {
                mlockall(MlockAllFlags::CURRENT).map(|()| false)
            };
            match result {
                Ok(on_fault) => MemoryLockOutcome::Locked { future, on_fault },
                Err(e) => {
                    let reason = format!(
                        "memory not locked: mlockall failed ({e}); RLIMIT_MEMLOCK soft limit {}, \
                         CAP_IPC_LOCK {}",
                        limit.map_or("unlimited".to_owned(), |l| format!("{l} bytes")),
                        if has_ipc_lock { "present" } else { "missing" }
                    );
                    warnings.push(reason.clone());
                    MemoryLockOutcome::Failed(reason)
                }
            }
        }
    };

    for w in &warnings {
        tracing::warn!("hardening: {w}");
    }
    tracing::info!(
        core_dumps_disabled = settings.disable_core_dumps,
        not_dumpable = settings.not_dumpable,
        memory_lock = ?memory_lock,
        "process hardening applied"
    );
    Ok(HardeningReport {
        core_dumps_disabled: settings.disable_core_dumps,
        not_dumpable: settings.not_dumpable,
        memory_lock,
        warnings,
    })
}

/// Hardening is only implemented for Linux.
///
/// # Errors
/// Always [`HardeningError::Unsupported`].
#[cfg(not(target_os = "linux"))]
pub fn harden(_settings: &HardeningSettings) -> Result<HardeningReport, HardeningError> {
    Err(HardeningError::Unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_locks_future_memory_only_without_a_limit() {
        assert_eq!(
            plan_memory_lock(MemoryLock::Auto, None, false),
            LockPlan::Lock { future: true }
        );
        assert_eq!(
            plan_memory_lock(MemoryLock::Auto, Some(8 << 20), true),
            LockPlan::Lock { future: true }
        );
        match plan_memory_lock(MemoryLock::Auto, Some(8 << 20), false) {
            LockPlan::Skip(reason) => {
                assert!(reason.contains("8388608 bytes"), "{reason}");
                assert!(reason.contains("LimitMEMLOCK"), "{reason}");
            }
            other => unreachable!("expected a skip, got {other:?}"),
        }
    }

    #[test]
    fn explicit_modes_do_what_they_say() {
        for (limit, cap) in [(None, false), (Some(0), false), (Some(1 << 30), true)] {
            assert_eq!(plan_memory_lock(MemoryLock::Off, limit, cap), LockPlan::Off);
            assert_eq!(
                plan_memory_lock(MemoryLock::Current, limit, cap),
                LockPlan::Lock { future: false }
            );
            assert_eq!(
                plan_memory_lock(MemoryLock::CurrentAndFuture, limit, cap),
                LockPlan::Lock { future: true }
            );
        }
    }

    #[test]
    fn defaults_are_hardened() {
        let d = HardeningSettings::default();
        assert!(d.disable_core_dumps && d.not_dumpable);
        assert_eq!(d.lock_memory, MemoryLock::Auto);
    }
}
