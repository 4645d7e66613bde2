//! Why a store cannot be opened, said in one line that names the database
//! and the cause ("data/gatehouse.db is not a SQLite database", "cannot
//! reach PostgreSQL at db:5432: connection refused").
//!
//! The store is probed with one connection before its pool exists, so a
//! broken database fails at once with this line instead of a pool retrying
//! (and logging) until its acquire timeout. Owns the SQLite file checks
//! that come before SQLite itself, and the mapping from driver errors
//! (SQLite result codes, PostgreSQL SQLSTATEs, I/O errors) to plain words.

use std::io::{ErrorKind, Read};
use std::path::Path;

/// What the database is, for messages: the SQLite file's path, or
/// PostgreSQL's user, host, port and database name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    Sqlite {
        path: String,
    },
    Postgres {
        user: String,
        host: String,
        database: String,
    },
}

impl Target {
    /// Read from a store URL already known to be SQLite or PostgreSQL.
    pub(super) fn of(url: &str) -> Target {
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = rest.split_once('?').map_or(rest, |(p, _)| p);
            return Target::Sqlite {
                path: path.to_owned(),
            };
        }
        let parsed = url::Url::parse(url).ok();
        let host = parsed
            .as_ref()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "localhost".to_owned());
        let port = parsed.as_ref().and_then(|u| u.port()).unwrap_or(5432);
        let user = parsed
            .as_ref()
            .map(|u| u.username().to_owned())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "postgres".to_owned());
        let database = parsed
            .as_ref()
            .map(|u| u.path().trim_start_matches('/').to_owned())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| user.clone());
        Target::Postgres {
            user,
            host: format!("{host}:{port}"),
            database,
        }
    }
}

/// The SQLite file checks SQLite would otherwise answer with a bare result
/// code: a folder or a foreign file where the database should be, a file
/// Gatehouse may not write, a folder it may not create the file in.
pub(super) fn check_sqlite_file(path: &str) -> Result<(), String> {
    if path == ":memory:" {
        return Ok(());
    }
    let file = Path::new(path);
    match std::fs::metadata(file) {
        Ok(meta) if meta.is_dir() => Err(format!("{path} is a folder, not a SQLite database")),
        Ok(_) => {
            let mut header = [0u8; 16];
            let read = std::fs::File::open(file)
                .and_then(|mut f| read_up_to(&mut f, &mut header))
                .map_err(|e| format!("cannot read {path}: {}", io_words(&e)))?;
            if read > 0 && (read < header.len() || &header != b"SQLite format 3\0") {
                return Err(format!(
                    "{path} is not a SQLite database (another program wrote it, or it is damaged); \
                     move it away to start with an empty store"
                ));
            }
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(file)
                .map_err(|e| match e.kind() {
                    ErrorKind::PermissionDenied => format!(
                        "{path} is read-only: Gatehouse must be able to write to it \
                         (check its owner and mode)"
                    ),
                    _ if is_read_only_fs(&e) => {
                        format!("{path} is on a read-only file system")
                    }
                    _ => format!("cannot open {path} for writing: {}", io_words(&e)),
                })?;
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let dir = folder_of(file);
            if !dir.is_dir() {
                // sqlite_url creates missing folders; only a file in the way is left.
                return Err(format!(
                    "cannot create {path}: {} is not a folder",
                    dir.display()
                ));
            }
            // SQLite creates the file, and its -wal and -shm files, here.
            let probe = dir.join(format!(".gatehouse-probe-{}", std::process::id()));
            match std::fs::File::create(&probe) {
                Ok(_) => {
                    let _ = std::fs::remove_file(&probe);
                    Ok(())
                }
                Err(e) => Err(format!(
                    "cannot create {path}: {} {}",
                    folder_name(&dir),
                    folder_words(&e)
                )),
            }
        }
        Err(e) => Err(format!("cannot read {path}: {}", io_words(&e))),
    }
}

/// The one-line message for a folder that cannot be made (`mkdir -p`).
pub(super) fn cannot_create_folder(dir: &Path, e: &std::io::Error) -> String {
    format!("cannot create {}: {}", folder_name(dir), io_words(e))
}

/// A driver error met while connecting to, preparing or migrating `target`,
/// in plain words.
pub(super) fn describe(target: &Target, e: &sqlx::Error) -> String {
    match target {
        Target::Sqlite { path } => describe_sqlite(path, e),
        Target::Postgres { .. } => describe_postgres(target, e),
    }
}

fn describe_sqlite(path: &str, e: &sqlx::Error) -> String {
    let dir = folder_name(&folder_of(Path::new(path)));
    if let sqlx::Error::Database(db) = e {
        // Extended result codes keep the primary code in the low byte.
        let primary = db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .map(|c| c & 0xff);
        return match primary {
            Some(26) => format!(
                "{path} is not a SQLite database (another program wrote it, or it is damaged)"
            ),
            Some(11) => format!(
                "{path} is damaged (SQLite: {}); restore it from a backup",
                db.message()
            ),
            // The file itself was found writable (`check_sqlite_file`):
            // what SQLite could not write is its -wal and -shm files.
            Some(8) | Some(14) => format!(
                "cannot write in {dir} ({}): SQLite keeps {path}-wal and {path}-shm \
                 next to the database, so the folder must be writable",
                db.message()
            ),
            Some(5) | Some(6) => format!("{path} is locked by another program: {}", db.message()),
            Some(13) => format!("cannot write {path}: the disk is full"),
            _ => format!("{path}: {}", db.message()),
        };
    }
    match e {
        sqlx::Error::Io(io) => format!("cannot open {path}: {}", io_words(io)),
        sqlx::Error::Migrate(m) => {
            format!("{path}: the schema could not be brought up to date: {m}")
        }
        other => format!("{path}: {other}"),
    }
}

fn describe_postgres(target: &Target, e: &sqlx::Error) -> String {
    let Target::Postgres {
        user,
        host,
        database,
    } = target
    else {
        return e.to_string();
    };
    match e {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01") => format!("PostgreSQL at {host} refused the password of user `{user}`"),
            Some("28000") => format!(
                "PostgreSQL at {host} refused user `{user}`: {}",
                db.message()
            ),
            Some("3D000") => format!(
                "database `{database}` does not exist on PostgreSQL at {host} \
                 (create it: createdb -h {} {database})",
                host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h)
            ),
            Some("42501") => format!(
                "user `{user}` may not use database `{database}` on {host}: {}",
                db.message()
            ),
            _ => format!("PostgreSQL at {host}: {}", db.message()),
        },
        sqlx::Error::Io(io) => format!("cannot reach PostgreSQL at {host}: {}", io_words(io)),
        sqlx::Error::PoolTimedOut => {
            format!("cannot reach PostgreSQL at {host}: no answer within 5 seconds")
        }
        sqlx::Error::Tls(t) => format!("cannot reach PostgreSQL at {host}: TLS failed: {t}"),
        sqlx::Error::Migrate(m) => format!(
            "database `{database}` on {host}: the schema could not be brought up to date: {m}"
        ),
        other => format!("PostgreSQL at {host}: {other}"),
    }
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn folder_of(file: &Path) -> std::path::PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

fn folder_name(dir: &Path) -> String {
    let shown = dir.display().to_string();
    if shown.ends_with('/') {
        shown
    } else {
        format!("{shown}/")
    }
}

fn is_read_only_fs(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::ReadOnlyFilesystem
}

fn folder_words(e: &std::io::Error) -> String {
    if e.kind() == ErrorKind::PermissionDenied {
        "is not writable (permission denied)".to_owned()
    } else if is_read_only_fs(e) {
        "is on a read-only file system".to_owned()
    } else {
        format!("cannot be written: {}", io_words(e))
    }
}

/// An I/O error without Rust's `(os error N)` suffix.
fn io_words(e: &std::io::Error) -> String {
    if is_read_only_fs(e) {
        return "read-only file system".to_owned();
    }
    match e.kind() {
        ErrorKind::PermissionDenied => "permission denied".to_owned(),
        ErrorKind::NotFound => "not found".to_owned(),
        ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        ErrorKind::TimedOut => "timed out".to_owned(),
        _ => {
            let text = e.to_string();
            match text.split_once(" (os error") {
                Some((words, _)) => words.to_owned(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_the_file_or_the_server() {
        assert_eq!(
            Target::of("sqlite://data/g.db?mode=rwc"),
            Target::Sqlite {
                path: "data/g.db".into()
            }
        );
        assert_eq!(
            Target::of("postgres://app:pw@db.internal:6543/gh"),
            Target::Postgres {
                user: "app".into(),
                host: "db.internal:6543".into(),
                database: "gh".into()
            }
        );
        assert_eq!(
            Target::of("postgres://db"),
            Target::Postgres {
                user: "postgres".into(),
                host: "db:5432".into(),
                database: "postgres".into()
            }
        );
    }

    #[test]
    fn a_foreign_file_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        std::fs::write(&path, b"this is not sqlite at all, just text\n").unwrap();
        let msg = check_sqlite_file(path.to_str().unwrap()).unwrap_err();
        assert!(
            msg.ends_with("move it away to start with an empty store"),
            "{msg}"
        );
        assert!(msg.contains("is not a SQLite database"), "{msg}");
        // An empty file is a new database to SQLite.
        std::fs::write(&path, b"").unwrap();
        assert_eq!(check_sqlite_file(path.to_str().unwrap()), Ok(()));
        let msg = check_sqlite_file(dir.path().to_str().unwrap()).unwrap_err();
        assert!(msg.contains("is a folder"), "{msg}");
    }
}
