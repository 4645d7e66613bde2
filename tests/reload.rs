//! Reloading from the outside: SIGHUP or a changed file swaps roles, rules,
//! users and keys without dropping connections; an invalid file is refused
//! and the running configuration kept.

mod common;

use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

fn config(port: u16, users: &str, open_policy: &str) -> String {
    format!(
        "server:\n  listen: \"127.0.0.1:{port}\"\nupstream:\n  url: \"echo:\"\nrules:\n  - path: /open/**\n    policy: {open_policy}\nusers:\n{users}"
    )
}

fn user(name: &str, hash: &str) -> String {
    format!("  - username: {name}\n    password_hash: \"{hash}\"\n")
}

fn status(g: &Gatehouse, path: &str, auth: Option<(&str, &str)>) -> u16 {
    let mut req = client().get(g.url(path));
    if let Some((u, p)) = auth {
        req = req.basic_auth(u, Some(p));
    }
    req.send().unwrap().status().as_u16()
}

#[test]
fn sighup_and_file_changes_reload_without_dropping_connections() {
    let (pw1, pw2, sue) = (
        hash_password("pw1"),
        hash_password("pw2"),
        hash_password("sue-pw"),
    );
    let g = Gatehouse::start(
        &config(0, &user("ray", &pw1), "public").replace("127.0.0.1:0", "127.0.0.1:{port}"),
    );
    let write = |text: String| std::fs::write(g.config_path(), text).unwrap();
    // Rewrite but keep the old modification time, so only the signal can
    // trigger the reload.
    let write_unseen = |text: String| {
        let path = g.config_path();
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, text).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    };
    assert_eq!(status(&g, "/open/x", None), 200);
    assert_eq!(status(&g, "/x", Some(("ray", "pw1"))), 200);
    assert_eq!(status(&g, "/x", Some(("sue", "sue-pw"))), 401);

    // A keep-alive connection opened before the reload.
    let mut conn = TcpStream::connect(g.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET /open/a HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut conn).starts_with("HTTP/1.1 200"));

    // New user, changed password, public path now denied; applied on SIGHUP.
    write_unseen(config(
        g.port,
        &(user("ray", &pw2) + &user("sue", &sue)),
        "deny",
    ));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        status(&g, "/x", Some(("sue", "sue-pw"))),
        401,
        "nothing reloads before the signal"
    );
    g.signal(libc::SIGHUP);
    eventually("reload applied", || {
        status(&g, "/x", Some(("sue", "sue-pw"))) == 200
    });
    assert_eq!(status(&g, "/open/x", None), 403, "rules reloaded");
    assert_eq!(
        status(&g, "/x", Some(("ray", "pw1"))),
        401,
        "the cached old password is gone"
    );
    assert_eq!(status(&g, "/x", Some(("ray", "pw2"))), 200);
    conn.write_all(b"GET /open/a HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert!(
        read_response(&mut conn).starts_with("HTTP/1.1 403"),
        "the old connection lives on, under the new rules"
    );

    // An invalid file is refused: the running configuration stays.
    write_unseen("upstream:\n  url: \"echo:\"\nrulez: []\n".into());
    g.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert!(g.alive(), "a bad reload must not stop the server");
    assert_eq!(status(&g, "/x", Some(("sue", "sue-pw"))), 200);
    assert_eq!(status(&g, "/open/x", None), 403);

    // A changed file is picked up without a signal.
    write(config(g.port, &user("ray", &pw2), "public"));
    eventually("file change applied", || status(&g, "/open/x", None) == 200);
    assert_eq!(
        status(&g, "/x", Some(("sue", "sue-pw"))),
        401,
        "sue was removed"
    );
}
