//! A private SoftHSM2 for one test binary: its own configuration and token directory in a
//! temporary directory, and one fresh token per test.
//!
//! `SOFTHSM2_CONF` is process-global, so it is set once per binary (before any PKCS#11 use)
//! and every test that touches a token holds [`lock`]. Tokens are never shared between tests:
//! each test creates its own with a unique label.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use super::secret_file;

/// The token user PIN every test token gets.
pub const USER_PIN: &str = "test-user-pin-0001";
const SO_PIN: &str = "test-so-pin-0001";

/// Where SoftHSM2's module may be; the first that exists is used.
const MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
];

pub struct SoftHsm {
    _dir: tempfile::TempDir,
    pub conf: PathBuf,
    pub module: PathBuf,
}

static HSM: OnceLock<SoftHsm> = OnceLock::new();
static LOCK: Mutex<()> = Mutex::new(());

/// Serialises the tests of this binary that use the token.
pub fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The binary's SoftHSM2; fails the test (never skips it) when SoftHSM2 is not installed.
pub fn softhsm() -> &'static SoftHsm {
    HSM.get_or_init(|| {
        let util = Command::new("softhsm2-util").arg("--version").output();
        assert!(
            util.is_ok_and(|o| o.status.success()),
            "SoftHSM2 is not installed (softhsm2-util not found): run scripts/install-softhsm.sh"
        );
        let module = MODULE_CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists());
        assert!(
            module.is_some(),
            "libsofthsm2.so not found in {MODULE_CANDIDATES:?}: run scripts/install-softhsm.sh"
        );
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .unwrap();
        // Set once, before the first PKCS#11 call of this process (callers hold `lock`).
        std::env::set_var("SOFTHSM2_CONF", &conf);
        SoftHsm {
            _dir: dir,
            conf,
            module: module.unwrap(),
        }
    })
}

impl SoftHsm {
    /// Initialises a fresh token labelled `label` with [`USER_PIN`].
    pub fn new_token(&self, label: &str) {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &self.conf)
            .args(["--init-token", "--free", "--label", label])
            .args(["--so-pin", SO_PIN, "--pin", USER_PIN])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A PIN file holding [`USER_PIN`] in `dir`.
    pub fn pin_file(&self, dir: &Path) -> PathBuf {
        secret_file(dir, "user.pin", USER_PIN.as_bytes())
    }
}
