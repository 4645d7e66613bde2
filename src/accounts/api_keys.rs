//! Stored API keys: what a new key's name and permissions must be, and its
//! creation (a fresh random key, of which only the SHA-256 is stored), and
//! when a key given a lifetime expires. `gatehouse apikey create`, `POST
//! api/me/api-keys` and the account page create keys here.

use super::users::valid_name;
use crate::permission::{Permission, PermissionSet};
use crate::store::{Store, StoreError, StoredApiKey};

/// Why a key cannot be created as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("an API key's name is 1-128 letters, digits, `_`, `-`, `.` or `@`")]
    InvalidName,
    #[error("`{0}` is not a permission like `posts:read`")]
    InvalidPermission(String),
    /// The permission parses but is outside the bound the key must stay
    /// within (the permissions of whoever asks for it).
    #[error("`{0}` is not held by the key's owner, so the key cannot hold it")]
    NotAllowed(String),
    #[error("a key's lifetime is a positive number of seconds or a duration like `30d`")]
    InvalidLifetime,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A key to create.
#[derive(Debug, Clone, Copy)]
pub struct NewApiKey<'a> {
    /// A label for lists and logs: see [`valid_name`].
    pub name: &'a str,
    /// The user the key acts as.
    pub owner: &'a str,
    /// The permissions the key is narrowed to; `None`: its owner's.
    pub permissions: Option<&'a [String]>,
    /// When given, every permission of the key must be allowed by it.
    pub within: Option<&'a PermissionSet>,
    /// Unix seconds; `None`: until revoked.
    pub expires_at: Option<i64>,
}

/// A key just created: `key` is its only plaintext copy.
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    pub key: String,
    pub stored: StoredApiKey,
}

/// Check a key's name, then its permissions in order: each must parse, and,
/// when `within` is given, be allowed by it.
pub fn check_api_key(
    name: &str,
    permissions: Option<&[String]>,
    within: Option<&PermissionSet>,
) -> Result<(), ApiKeyError> {
    if !valid_name(name) {
        return Err(ApiKeyError::InvalidName);
    }
    for p in permissions.unwrap_or_default() {
        match p.parse::<Permission>() {
            Err(_) => return Err(ApiKeyError::InvalidPermission(p.clone())),
            Ok(perm) if within.is_some_and(|w| !w.allows(&perm)) => {
                return Err(ApiKeyError::NotAllowed(p.clone()))
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

/// When a key created at `now` (Unix seconds) with `lifetime` (`30d`,
/// `12h`, or a number of seconds; more than zero) expires.
pub fn expires_after(lifetime: &str, now: i64) -> Result<i64, ApiKeyError> {
    match crate::config::parse_duration(lifetime) {
        Ok(d) if !d.is_zero() => {
            let secs = i64::try_from(d.as_secs()).map_err(|_| ApiKeyError::InvalidLifetime)?;
            now.checked_add(secs).ok_or(ApiKeyError::InvalidLifetime)
        }
        _ => Err(ApiKeyError::InvalidLifetime),
    }
}

/// Check `new` ([`check_api_key`]) and store a fresh key for it. Whether the
/// owner exists is the caller's to know (config-file users own keys too).
pub async fn create_api_key(
    store: &Store,
    new: NewApiKey<'_>,
) -> Result<CreatedApiKey, ApiKeyError> {
    check_api_key(new.name, new.permissions, new.within)?;
    let key = crate::authn::generate_api_key();
    let hash = crate::authn::api_key_hash(&key);
    let stored = store
        .create_api_key(
            new.name,
            new.owner,
            hash.trim_start_matches("sha256:"),
            new.permissions,
            new.expires_at,
        )
        .await?;
    Ok(CreatedApiKey { key, stored })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name, a permission list, a bound, and what the check answers.
    type Case<'a> = (
        &'a str,
        Option<Vec<String>>,
        Option<&'a PermissionSet>,
        Result<(), ApiKeyError>,
    );

    fn perms(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn checks_name_then_permissions_in_order() {
        let held = PermissionSet::new(vec![
            "posts:*".parse().unwrap(),
            "echo:read".parse().unwrap(),
        ]);
        let too_long = "k".repeat(129);
        let cases: Vec<Case> = vec![
            ("ci", None, None, Ok(())),
            ("ci", None, Some(&held), Ok(())),
            (
                "ci-2.deploy@x_y",
                Some(perms(&["posts:read", "*"])),
                None,
                Ok(()),
            ),
            (
                "ci",
                Some(perms(&["posts:read", "echo:read"])),
                Some(&held),
                Ok(()),
            ),
            ("", None, None, Err(ApiKeyError::InvalidName)),
            (&too_long, None, None, Err(ApiKeyError::InvalidName)),
            ("my key", None, None, Err(ApiKeyError::InvalidName)),
            // The name is checked before the permissions.
            (
                "my key",
                Some(perms(&["bad"])),
                None,
                Err(ApiKeyError::InvalidName),
            ),
            (
                "ci",
                Some(perms(&["posts"])),
                None,
                Err(ApiKeyError::InvalidPermission("posts".into())),
            ),
            (
                "ci",
                Some(perms(&["posts:read", "a b:c"])),
                None,
                Err(ApiKeyError::InvalidPermission("a b:c".into())),
            ),
            // Without a bound any valid permission goes; with one, only held ones.
            ("ci", Some(perms(&["admin:*"])), None, Ok(())),
            (
                "ci",
                Some(perms(&["admin:*"])),
                Some(&held),
                Err(ApiKeyError::NotAllowed("admin:*".into())),
            ),
            (
                "ci",
                Some(perms(&["*"])),
                Some(&held),
                Err(ApiKeyError::NotAllowed("*".into())),
            ),
            // The first problem in list order wins.
            (
                "ci",
                Some(perms(&["admin:x", "bad"])),
                Some(&held),
                Err(ApiKeyError::NotAllowed("admin:x".into())),
            ),
            (
                "ci",
                Some(perms(&["bad", "admin:x"])),
                Some(&held),
                Err(ApiKeyError::InvalidPermission("bad".into())),
            ),
        ];
        for (name, list, within, want) in cases {
            assert_eq!(
                check_api_key(name, list.as_deref(), within),
                want,
                "{name:?} {list:?} within {within:?}"
            );
        }
    }

    #[test]
    fn lifetimes() {
        let now = 1_000;
        for (lifetime, want) in [
            ("30d", Ok(1_000 + 30 * 86_400)),
            ("12h", Ok(1_000 + 12 * 3_600)),
            ("90", Ok(1_090)),
            (" 1h ", Ok(4_600)),
            ("0", Err(ApiKeyError::InvalidLifetime)),
            ("0s", Err(ApiKeyError::InvalidLifetime)),
            ("", Err(ApiKeyError::InvalidLifetime)),
            ("soon", Err(ApiKeyError::InvalidLifetime)),
            ("-5", Err(ApiKeyError::InvalidLifetime)),
            ("99999999999999999999", Err(ApiKeyError::InvalidLifetime)),
        ] {
            assert_eq!(expires_after(lifetime, now), want, "{lifetime:?}");
        }
    }

    #[tokio::test]
    async fn creates_a_key_stored_by_its_hash_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/keys.db", dir.path().display()))
            .await
            .unwrap();
        let list = perms(&["posts:read"]);
        let amys = |name, permissions, within| NewApiKey {
            name,
            owner: "amy",
            permissions,
            within,
            expires_at: None,
        };
        let new = NewApiKey {
            expires_at: Some(4_000_000_000),
            ..amys("ci", Some(&list), None)
        };
        let created = create_api_key(&store, new).await.unwrap();
        assert!(created.key.starts_with("gh_"), "{}", created.key);
        let hex = crate::authn::api_key_hash(&created.key);
        let hex = hex.trim_start_matches("sha256:");
        assert_eq!(created.stored.sha256, hex);
        assert_ne!(created.stored.sha256, created.key);
        assert_eq!(created.stored.name, "ci");
        assert_eq!(created.stored.username, "amy");
        assert_eq!(created.stored.permissions, Some(list.clone()));
        assert_eq!(created.stored.expires_at, Some(4_000_000_000));
        assert_eq!(
            store.api_key_by_hash(hex).await.unwrap(),
            Some(created.stored.clone())
        );

        // A refused key is not stored.
        let refused = create_api_key(&store, amys("bad name", None, None)).await;
        assert_eq!(refused.unwrap_err(), ApiKeyError::InvalidName);
        let bound = PermissionSet::new(vec!["echo:read".parse().unwrap()]);
        let refused = create_api_key(&store, amys("ci2", Some(&list), Some(&bound))).await;
        assert_eq!(
            refused.unwrap_err(),
            ApiKeyError::NotAllowed("posts:read".into())
        );
        let keys = store.list_api_keys(Some("amy")).await.unwrap();
        assert_eq!(keys, vec![created.stored]);
    }
}
