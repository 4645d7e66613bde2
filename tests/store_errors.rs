//! A store that cannot be opened says why in one line that names the
//! database and the cause, from `serve` and from the CLI alike, with no
//! pool retrying (and logging) until a timeout.

mod common;

use common::gatehouse_cmd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

fn config(dir: &Path, store_url: &str) -> String {
    let path = dir.join("gatehouse.yaml");
    std::fs::write(
        &path,
        format!(
            "server:\n  listen: \"127.0.0.1:{}\"\nupstream:\n  url: \"echo:\"\nstore:\n  url: \"{store_url}\"\n",
            common::free_port()
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

/// The one line a failed command printed, after checking it printed only
/// that (no driver log lines, no pool timeout).
fn one_line(code: i32, stderr: &str) -> String {
    assert_eq!(code, 1, "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected, got:\n{stderr}");
    assert!(!stderr.contains("sqlx"), "{stderr}");
    assert!(!stderr.contains("timed out"), "{stderr}");
    lines[0].to_owned()
}

/// Both ways in: the CLI and the server.
fn both_say(dir: &Path, cfg: &str, as_nobody: bool, expected: &str) {
    for args in [&["user", "list", "-c", cfg][..], &["serve", "-c", cfg][..]] {
        let (code, _, stderr) = if as_nobody {
            run_as_nobody(dir, args)
        } else {
            in_dir(dir, args)
        };
        let line = one_line(code, &stderr);
        assert!(
            line.contains(expected),
            "`{}` said {line:?}, expected {expected:?}",
            args[0]
        );
        assert!(line.contains("store.url: "), "{line}");
    }
}

fn in_dir(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("GATEHOUSE_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Permissions do not bind root, so as root the command runs as `nobody`
/// (uid 65534, through util-linux `setpriv`); anyone else is already bound.
fn run_as_nobody(dir: &Path, args: &[&str]) -> (i32, String, String) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return in_dir(dir, args);
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin_for_nobody())
        .args(args)
        .current_dir(dir)
        .env_remove("GATEHOUSE_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("setpriv (util-linux) runs the binary as nobody");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The binary where `nobody` may run it: where it is, when every folder
/// above it lets others in; else a copy in a folder that does (a checkout
/// under `/root` does not), made once and left for the system's temp cleanup.
fn bin_for_nobody() -> &'static Path {
    static BIN_FOR_NOBODY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN_FOR_NOBODY.get_or_init(|| {
        let runs = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                BIN,
                "--version",
            ])
            .output()
            .is_ok_and(|o| o.status.success());
        if runs {
            return BIN.into();
        }
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-bin-")
            .tempdir()
            .unwrap()
            .keep();
        chmod(&dir, 0o755);
        let copy = dir.join("gatehouse");
        std::fs::copy(BIN, &copy).unwrap();
        chmod(&copy, 0o755);
        copy
    })
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_nobody(path: &Path) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
    }
}

/// A folder everybody may read and enter (tempdirs are 0700), that only
/// its owner may write.
fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    dir
}

/// A folder holding `data/gatehouse.db`, a real database made by the CLI,
/// and its config.
fn real_database() -> (tempfile::TempDir, String) {
    let dir = shared_dir();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let cfg = config(dir.path(), "sqlite://data/gatehouse.db");
    let (code, _, err) = in_dir(dir.path(), &["user", "list", "-c", &cfg]);
    assert_eq!(code, 0, "{err}");
    (dir, cfg)
}

#[test]
fn a_file_that_is_not_sqlite_is_named_at_once() {
    let dir = shared_dir();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/gatehouse.db"),
        "garbage, not a database: ".repeat(200),
    )
    .unwrap();
    let cfg = config(dir.path(), "sqlite://data/gatehouse.db");
    both_say(
        dir.path(),
        &cfg,
        false,
        "data/gatehouse.db is not a SQLite database",
    );
    // Nothing was lost: the file is as it was.
    let kept = std::fs::read_to_string(dir.path().join("data/gatehouse.db")).unwrap();
    assert!(kept.starts_with("garbage"));
}

#[test]
fn a_read_only_database_file_is_named() {
    // A real database, then made read-only for its user.
    let (dir, cfg) = real_database();
    let data = dir.path().join("data");
    chown_nobody(&data);
    chmod(&data.join("gatehouse.db"), 0o444);
    both_say(dir.path(), &cfg, true, "data/gatehouse.db is read-only");
}

#[test]
fn a_read_only_data_folder_is_named() {
    let dir = shared_dir();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    chmod(&data, 0o555);
    let cfg = config(dir.path(), "sqlite://data/gatehouse.db");
    both_say(
        dir.path(),
        &cfg,
        true,
        "cannot create data/gatehouse.db: data/ is not writable (permission denied)",
    );

    // The database exists and may be written, but its folder may not: SQLite
    // cannot make its -wal and -shm files.
    let (dir, cfg) = real_database();
    let data = dir.path().join("data");
    for leftover in ["gatehouse.db-wal", "gatehouse.db-shm"] {
        let _ = std::fs::remove_file(data.join(leftover));
    }
    chown_nobody(&data.join("gatehouse.db"));
    chmod(&data, 0o555);
    both_say(dir.path(), &cfg, true, "cannot write in data/");
}

#[test]
fn a_folder_that_cannot_be_created_is_named() {
    let dir = shared_dir();
    let cfg = config(dir.path(), "sqlite://data/gatehouse.db");
    both_say(
        dir.path(),
        &cfg,
        true,
        "cannot create data/: permission denied",
    );
}

#[test]
fn postgres_unreachable_is_named() {
    let dir = shared_dir();
    let port = common::free_port();
    let cfg = config(
        dir.path(),
        &format!("postgres://app@127.0.0.1:{port}/gatehouse"),
    );
    both_say(
        dir.path(),
        &cfg,
        false,
        &format!("cannot reach PostgreSQL at 127.0.0.1:{port}: connection refused"),
    );
}

#[test]
fn postgres_unknown_user_and_missing_database_are_named() {
    let Some(admin) = std::env::var("GATEHOUSE_TEST_POSTGRES").ok() else {
        println!("SKIP postgres_unknown_user_and_missing_database_are_named: GATEHOUSE_TEST_POSTGRES is not set");
        return;
    };
    let url = url::Url::parse(&admin).unwrap();
    let host = format!(
        "{}:{}",
        url.host_str().unwrap_or("localhost"),
        url.port().unwrap_or(5432)
    );
    let dir = shared_dir();

    let mut missing_db = url.clone();
    missing_db.set_path("gatehouse_no_such_database");
    let cfg = config(dir.path(), missing_db.as_str());
    both_say(
        dir.path(),
        &cfg,
        false,
        &format!("database `gatehouse_no_such_database` does not exist on PostgreSQL at {host}"),
    );

    let mut stranger = url.clone();
    stranger.set_username("gatehouse_no_such_role").unwrap();
    let cfg = config(dir.path(), stranger.as_str());
    both_say(
        dir.path(),
        &cfg,
        false,
        &format!("PostgreSQL at {host} refused user `gatehouse_no_such_role`"),
    );
    // gatehouse_cmd is the usual way in; it must agree.
    let (code, _, stderr) = gatehouse_cmd(&["user", "list", "-c", &cfg], None);
    assert!(one_line(code, &stderr).contains("gatehouse_no_such_role"));
}
