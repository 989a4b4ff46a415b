//! API keys (DESIGN.md 10): 256-bit random secrets, kept only as their SHA-256, compared in
//! constant time, each with one scope.
//!
//! A secret reads `sk_{id}_{64 hex digits}`: the id (public, 8 hex digits) finds the stored
//! digest without comparing secrets one by one, and the digest of the whole secret is compared
//! with `subtle`'s constant-time equality, so the time taken says nothing about how much of a
//! guess was right. The key file (`DIR/keys.json`) never holds a secret: a leaked file does not
//! open the service.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a key may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everything, including key management through the command line.
    Admin,
    /// Send events (prices, fills, transfers), and read.
    Feeder,
    /// Read everything, change nothing (the dashboard's key).
    Viewer,
    /// Read one account and compute on it; nothing about other accounts.
    Account(String),
}

impl Scope {
    /// Whether the key may send events.
    #[must_use]
    pub fn can_write(&self) -> bool {
        matches!(self, Self::Admin | Self::Feeder)
    }

    /// Whether the key may read account `id`.
    #[must_use]
    pub fn can_read_account(&self, id: &str) -> bool {
        match self {
            Self::Admin | Self::Feeder | Self::Viewer => true,
            Self::Account(own) => own == id,
        }
    }

    /// Whether the key may read what concerns every account (rankings, the fund, liquidations).
    #[must_use]
    pub fn can_read_book(&self) -> bool {
        !matches!(self, Self::Account(_))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Admin => formatter.write_str("admin"),
            Self::Feeder => formatter.write_str("feeder"),
            Self::Viewer => formatter.write_str("viewer"),
            Self::Account(id) => write!(formatter, "account:{id}"),
        }
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "admin" => Ok(Self::Admin),
            "feeder" => Ok(Self::Feeder),
            "viewer" => Ok(Self::Viewer),
            other => match other.strip_prefix("account:") {
                Some(id) if !id.trim().is_empty() && id.trim() == id => {
                    Ok(Self::Account(id.to_owned()))
                }
                _ => Err(format!(
                    "unknown scope {other:?}: expected admin, feeder, viewer or account:<id>"
                )),
            },
        }
    }
}

/// A stored key: never the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredKey {
    /// The public part of the secret.
    pub id: String,
    /// The scope, as `admin`, `feeder`, `viewer` or `account:<id>`.
    pub scope: String,
    /// SHA-256 of the whole secret, in hex.
    pub sha256: String,
    /// When it was made (RFC 3339).
    pub created: String,
    /// Whether it was revoked (kept, so its id is never reused).
    pub revoked: bool,
}

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file cannot be read or written.
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        problem: String,
    },
    /// The system's random source failed.
    #[error("no randomness for a secret: {0}")]
    Random(String),
    /// No such key.
    #[error("no key {0:?}")]
    Unknown(String),
}

/// The keys of a service.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: Vec<StoredKey>,
    scopes: Vec<Option<Scope>>,
    path: Option<PathBuf>,
}

impl KeyRing {
    /// Keys kept in memory only (a `--demo` run).
    #[must_use]
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// The keys in `dir/keys.json` (none if the file does not exist yet).
    ///
    /// # Errors
    /// [`KeyError::File`] naming the file and the field.
    pub fn open(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join("keys.json");
        let fail = |problem: String| KeyError::File {
            path: path.display().to_string(),
            problem,
        };
        let keys: Vec<StoredKey> = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let deserializer = &mut serde_json::Deserializer::from_str(&text);
                serde_path_to_error::deserialize(deserializer)
                    .map_err(|error| fail(format!("{}: {}", error.path(), error.inner())))?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(fail(error.to_string())),
        };
        let mut scopes = Vec::with_capacity(keys.len());
        for (index, key) in keys.iter().enumerate() {
            let scope = key
                .scope
                .parse::<Scope>()
                .map_err(|problem| fail(format!("[{index}].scope: {problem}")))?;
            if key.sha256.len() != 64 || hex::decode(&key.sha256).is_err() {
                return Err(fail(format!("[{index}].sha256: expected 64 hex digits")));
            }
            scopes.push((!key.revoked).then_some(scope));
        }
        Ok(Self {
            keys,
            scopes,
            path: Some(path),
        })
    }

    /// Makes a key with `scope`, stores its digest and returns the secret (shown once).
    ///
    /// # Errors
    /// [`KeyError::Random`], or [`KeyError::File`] if the ring is kept in a file that cannot be
    /// written.
    pub fn add(&mut self, scope: Scope, created: &str) -> Result<String, KeyError> {
        let mut bytes = [0u8; 36];
        getrandom::fill(&mut bytes).map_err(|error| KeyError::Random(error.to_string()))?;
        let (id_bytes, secret_bytes) = bytes.split_at(4);
        let id = hex::encode(id_bytes);
        if self.keys.iter().any(|key| key.id == id) {
            // 2^-32 per key: draw again rather than shadow an old key.
            return self.add(scope, created);
        }
        let secret = format!("sk_{id}_{}", hex::encode(secret_bytes));
        self.keys.push(StoredKey {
            id,
            scope: scope.to_string(),
            sha256: hex::encode(Sha256::digest(secret.as_bytes())),
            created: created.to_owned(),
            revoked: false,
        });
        self.scopes.push(Some(scope));
        self.save()?;
        Ok(secret)
    }

    /// Revokes key `id`.
    ///
    /// # Errors
    /// [`KeyError::Unknown`], [`KeyError::File`].
    pub fn revoke(&mut self, id: &str) -> Result<(), KeyError> {
        let index = self
            .keys
            .iter()
            .position(|key| key.id == id)
            .ok_or_else(|| KeyError::Unknown(id.to_owned()))?;
        self.keys[index].revoked = true;
        self.scopes[index] = None;
        self.save()
    }

    /// Every key, revoked ones included.
    #[must_use]
    pub fn list(&self) -> &[StoredKey] {
        &self.keys
    }

    /// The scope of `secret`, if it is a live key.
    #[must_use]
    pub fn check(&self, secret: &str) -> Option<&Scope> {
        let id = secret.strip_prefix("sk_")?.split('_').next()?;
        let index = self.keys.iter().position(|key| key.id == id)?;
        let stored = hex::decode(&self.keys[index].sha256).ok()?;
        let digest = Sha256::digest(secret.as_bytes());
        if bool::from(digest.as_slice().ct_eq(&stored)) {
            self.scopes[index].as_ref()
        } else {
            None
        }
    }

    fn save(&self) -> Result<(), KeyError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let fail = |problem: String| KeyError::File {
            path: path.display().to_string(),
            problem,
        };
        let text =
            serde_json::to_string_pretty(&self.keys).map_err(|error| fail(error.to_string()))?;
        // Written aside and renamed: a crash leaves the old file or the new one, never half.
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, text + "\n").map_err(|error| fail(error.to_string()))?;
        std::fs::rename(&temporary, path).map_err(|error| fail(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn a_secret_opens_its_own_scope_only_until_revoked() {
        let mut ring = KeyRing::in_memory();
        let admin = ring.add(Scope::Admin, "2026-12-04T00:00:00Z").unwrap();
        let reader = ring
            .add(Scope::Account("a1".to_owned()), "2026-12-04T00:00:00Z")
            .unwrap();
        assert_eq!(admin.len(), 3 + 8 + 1 + 64);
        assert_eq!(ring.check(&admin), Some(&Scope::Admin));
        assert_eq!(ring.check(&reader), Some(&Scope::Account("a1".to_owned())));
        // A guess with the right id and a wrong secret, and a truncated secret, open nothing.
        let mut wrong = admin.clone();
        wrong.replace_range(admin.len() - 1.., "x");
        assert_eq!(ring.check(&wrong), None);
        assert_eq!(ring.check(&admin[..20]), None);
        assert_eq!(ring.check("garbage"), None);
        let id = ring.list()[0].id.clone();
        ring.revoke(&id).unwrap();
        assert_eq!(ring.check(&admin), None);
        assert!(
            ring.list()
                .iter()
                .all(|key| !key.sha256.contains(&admin[12..]))
        );
    }

    #[test]
    fn the_key_file_keeps_digests_and_survives_a_reopen() {
        let dir = std::env::temp_dir().join(format!("solvent-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ring = KeyRing::open(&dir).unwrap();
        let secret = ring.add(Scope::Viewer, "2026-12-04T00:00:00Z").unwrap();
        let text = std::fs::read_to_string(dir.join("keys.json")).unwrap();
        assert!(!text.contains(&secret[12..]));
        let reopened = KeyRing::open(&dir).unwrap();
        assert_eq!(reopened.check(&secret), Some(&Scope::Viewer));
        std::fs::write(
            dir.join("keys.json"),
            r#"[{"id":"x","scope":"root","sha256":"","created":"","revoked":false}]"#,
        )
        .unwrap();
        let error = KeyRing::open(&dir).unwrap_err().to_string();
        assert!(
            error.contains("[0].scope") && error.contains("root"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
