//! `harden()` changes process-wide state, so it runs in this dedicated test binary, which has
//! exactly one test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hsm_profiles::{harden, HardeningSettings, MemoryLock, MemoryLockOutcome};
use rustix::process::{dumpable_behavior, getrlimit, DumpableBehavior, Resource};

/// `VmLck` of this process from /proc/self/status, in KiB.
fn locked_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmLck:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn harden_disables_core_dumps_and_dumpable_and_reports_memory_locking() {
    assert_eq!(dumpable_behavior().unwrap(), DumpableBehavior::Dumpable);
    let report = harden(&HardeningSettings {
        lock_memory: MemoryLock::Current,
        ..HardeningSettings::default()
    })
    .unwrap();

    let core = getrlimit(Resource::Core);
    assert_eq!(core.current, Some(0), "RLIMIT_CORE soft limit");
    assert_eq!(core.maximum, Some(0), "RLIMIT_CORE hard limit");
    assert_eq!(dumpable_behavior().unwrap(), DumpableBehavior::NotDumpable);
    assert!(report.core_dumps_disabled && report.not_dumpable);

    // Whether mlockall is permitted depends on the machine (CAP_IPC_LOCK, RLIMIT_MEMLOCK);
    // the report must match what the kernel says either way.
    match &report.memory_lock {
        MemoryLockOutcome::Locked { future, on_fault } => {
            assert!(!future && !on_fault);
            assert!(locked_kib() > 0, "report says locked but VmLck is 0");
            assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        }
        MemoryLockOutcome::Failed(reason) => {
            assert!(reason.contains("mlockall"), "{reason}");
            assert_eq!(report.warnings, vec![reason.clone()]);
        }
        other => unreachable!("lock_memory = current gave {other:?}"),
    }
}
