//! `lock_memory = "current-and-future"` locks future memory on fault: a large zeroed
//! allocation made afterwards is not resident until it is written, and every page written is
//! locked. `harden()` changes process-wide state, so this is its own test binary with exactly
//! one test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hsm_profiles::{harden, HardeningSettings, MemoryLock, MemoryLockOutcome};

/// Size of the test allocation: far above glibc's mmap threshold, so it gets its own mapping.
const SIZE: usize = 32 << 20;

/// (Rss, Locked) in KiB of the mapping that contains `addr`, from /proc/self/smaps.
fn mapping_kib(addr: usize) -> (u64, u64) {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut inside = false;
    let (mut rss, mut locked) = (None, None);
    for line in smaps.lines() {
        let range = line.split_whitespace().next().unwrap_or("");
        if let Some((start, end)) = range.split_once('-') {
            if let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) {
                if inside {
                    break;
                }
                inside = (start..end).contains(&addr);
                continue;
            }
        }
        let field = |name: &str| -> Option<u64> {
            line.strip_prefix(name)?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        };
        if inside {
            rss = rss.or(field("Rss:"));
            locked = locked.or(field("Locked:"));
        }
    }
    (rss.unwrap(), locked.unwrap())
}

#[test]
fn future_memory_is_locked_when_touched_not_when_mapped() {
    let report = harden(&HardeningSettings {
        lock_memory: MemoryLock::CurrentAndFuture,
        ..HardeningSettings::default()
    })
    .unwrap();
    match &report.memory_lock {
        MemoryLockOutcome::Locked {
            future: true,
            on_fault: true,
        } => {}
        MemoryLockOutcome::Locked {
            future: true,
            on_fault: false,
        } => {
            // a kernel without MCL_ONFAULT: the populating fallback, nothing more to check
            eprintln!("SKIPPED: this kernel refused MCL_ONFAULT; locked with MCL_FUTURE");
            return;
        }
        MemoryLockOutcome::Failed(reason) => {
            // no CAP_IPC_LOCK and a small RLIMIT_MEMLOCK: mlockall fails, as it says
            assert!(reason.contains("mlockall"), "{reason}");
            eprintln!("SKIPPED: memory locking not permitted here: {reason}");
            return;
        }
        other => panic!("lock_memory = current-and-future gave {other:?}"),
    }

    // zeroed and never written: mapped, locked in principle, but not populated
    let mut buf = vec![0u8; SIZE];
    let addr = buf.as_ptr() as usize;
    let (rss, _) = mapping_kib(addr);
    assert!(
        rss < 1024,
        "an untouched 32 MiB allocation is {rss} KiB resident"
    );
    // written: every page resident and locked
    for page in buf.chunks_mut(4096) {
        page[0] = 1;
    }
    let (rss, locked) = mapping_kib(addr);
    let size_kib = (SIZE / 1024) as u64;
    assert!(rss >= size_kib, "written: {rss} KiB resident");
    assert!(locked >= size_kib, "written: only {locked} KiB locked");
    let written: u64 = buf.chunks(4096).map(|page| u64::from(page[0])).sum();
    assert_eq!(written, (SIZE / 4096) as u64);
}
