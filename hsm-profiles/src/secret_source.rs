//! Where a passphrase or PIN comes from: a file, an environment variable or a systemd
//! credential. There is no default and no built-in secret; an empty secret is refused.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::SecretSourceError;

/// Largest secret file read, in bytes.
pub const MAX_SECRET_FILE_LEN: u64 = 4096;

/// Where to read a passphrase or PIN.
///
/// In a profile: `passphrase = { file = "/etc/custody/passphrase" }`,
/// `passphrase = { env = "CUSTODY_SEAL_PASSPHRASE" }` or
/// `pin = { systemd_credential = "hsm-pin" }`.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSource {
    /// A file readable only by its owner (mode 0600 or 0400). One trailing newline (`\n` or
    /// `\r\n`) is removed, so `echo ... > file` works; other bytes are used as they are.
    File(PathBuf),
    /// An environment variable, used verbatim. Visible in `/proc/<pid>/environ` to the same
    /// user and root: prefer a file or a systemd credential in production.
    Env(String),
    /// A credential passed by systemd (`LoadCredential=NAME:/path`), read from
    /// `$CREDENTIALS_DIRECTORY/NAME`; same rules as `File`.
    SystemdCredential(String),
}

impl SecretSource {
    /// Where the secret comes from, for messages. Never the secret.
    pub fn describe(&self) -> String {
        match self {
            Self::File(p) => format!("file {}", p.display()),
            Self::Env(v) => format!("environment variable {v}"),
            Self::SystemdCredential(n) => format!("systemd credential {n}"),
        }
    }

    /// The same source with a relative file path resolved against `base`.
    pub fn resolved(&self, base: &Path) -> Self {
        match self {
            Self::File(p) if p.is_relative() => Self::File(base.join(p)),
            other => other.clone(),
        }
    }

    /// Reads the secret.
    ///
    /// # Errors
    /// A [`SecretSourceError`] naming the source if it is missing, unreadable, too open, too
    /// large or empty.
    pub fn read(&self) -> Result<Zeroizing<Vec<u8>>, SecretSourceError> {
        let secret = match self {
            Self::File(path) => read_secret_file(path)?,
            Self::Env(var) => match std::env::var(var) {
                Ok(value) => Zeroizing::new(value.into_bytes()),
                Err(std::env::VarError::NotPresent) => {
                    return Err(SecretSourceError::EnvMissing(var.clone()))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(SecretSourceError::EnvNotUnicode(var.clone()))
                }
            },
            Self::SystemdCredential(name) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY")
                    .ok_or_else(|| SecretSourceError::NoCredentialsDirectory(name.clone()))?;
                read_secret_file(&Path::new(&dir).join(name))?
            }
        };
        if secret.is_empty() {
            return Err(SecretSourceError::Empty(self.describe()));
        }
        Ok(secret)
    }
}

fn read_secret_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, SecretSourceError> {
    let io = |source| SecretSourceError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretSourceError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    if meta.len() > MAX_SECRET_FILE_LEN {
        return Err(SecretSourceError::TooLarge {
            path: path.to_owned(),
            max: MAX_SECRET_FILE_LEN,
        });
    }
    // Read at most one byte past the cap, in case the file grows between stat and read.
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_SECRET_FILE_LEN as usize + 1));
    file.by_ref()
        .take(MAX_SECRET_FILE_LEN + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_SECRET_FILE_LEN {
        return Err(SecretSourceError::TooLarge {
            path: path.to_owned(),
            max: MAX_SECRET_FILE_LEN,
        });
    }
    let strip = if buf.ends_with(b"\r\n") {
        2
    } else if buf.ends_with(b"\n") {
        1
    } else {
        0
    };
    let keep = buf.len() - strip;
    buf.truncate(keep);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::fs;

    fn secret_file(dir: &Path, name: &str, content: &[u8], mode: u32) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn file_source_strips_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = secret_file(dir.path(), "a", b"pass phrase\n", 0o600);
        assert_eq!(
            SecretSource::File(p).read().unwrap().as_slice(),
            b"pass phrase"
        );
        let p = secret_file(dir.path(), "b", b"pin\r\n", 0o400);
        assert_eq!(SecretSource::File(p).read().unwrap().as_slice(), b"pin");
        let p = secret_file(dir.path(), "c", b"x\n\n", 0o600);
        assert_eq!(SecretSource::File(p).read().unwrap().as_slice(), b"x\n");
    }

    #[test]
    fn file_source_refuses_open_permissions_empty_and_large_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = secret_file(dir.path(), "open", b"secret", 0o640);
        assert!(matches!(
            SecretSource::File(p).read(),
            Err(SecretSourceError::TooOpen { mode: 0o640, .. })
        ));
        let p = secret_file(dir.path(), "empty", b"\n", 0o600);
        assert!(matches!(
            SecretSource::File(p).read(),
            Err(SecretSourceError::Empty(_))
        ));
        let p = secret_file(dir.path(), "big", &[b'a'; 4097], 0o600);
        assert!(matches!(
            SecretSource::File(p).read(),
            Err(SecretSourceError::TooLarge { .. })
        ));
        let missing = dir.path().join("missing");
        assert!(matches!(
            SecretSource::File(missing).read(),
            Err(SecretSourceError::Io { .. })
        ));
    }

    #[test]
    fn env_source_reads_and_refuses_missing_or_empty() {
        // Variable names unique to this test; std serialises its own env access.
        std::env::set_var("HSM_PROFILES_TEST_ENV_SOURCE_SET", "from env");
        std::env::set_var("HSM_PROFILES_TEST_ENV_SOURCE_EMPTY", "");
        let set = SecretSource::Env("HSM_PROFILES_TEST_ENV_SOURCE_SET".into());
        assert_eq!(set.read().unwrap().as_slice(), b"from env");
        let empty = SecretSource::Env("HSM_PROFILES_TEST_ENV_SOURCE_EMPTY".into());
        assert!(matches!(empty.read(), Err(SecretSourceError::Empty(_))));
        let missing = SecretSource::Env("HSM_PROFILES_TEST_ENV_SOURCE_MISSING".into());
        assert!(matches!(
            missing.read(),
            Err(SecretSourceError::EnvMissing(_))
        ));
    }

    #[test]
    fn relative_files_resolve_against_the_base() {
        let s = SecretSource::File("pin".into()).resolved(Path::new("/data"));
        assert_eq!(s, SecretSource::File("/data/pin".into()));
        let abs = SecretSource::File("/etc/pin".into()).resolved(Path::new("/data"));
        assert_eq!(abs, SecretSource::File("/etc/pin".into()));
    }

    #[test]
    fn errors_never_contain_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let p = secret_file(dir.path(), "open", b"hunter2-very-secret", 0o644);
        let err = SecretSource::File(p).read().unwrap_err();
        assert!(!format!("{err} {err:?}").contains("hunter2"));
    }
}
