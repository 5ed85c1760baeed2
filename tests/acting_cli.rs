//! `dustwatch user add|list|disable|token` on the store of a running aggregator: users the CLI
//! adds can log in and use their tokens at once, and disabling one stops them at once.

mod support;

use std::path::{Path, PathBuf};
use support::acting::*;

/// `dustwatch [--config FILE] user ARGS --data DIR`.
fn dustwatch(data: &Path, config: Option<&Path>, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dustwatch"));
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.arg("user").args(args).arg("--data").arg(data);
    cmd
}

fn cli(
    (data, config): (&Path, Option<&Path>),
    args: &[&str],
    password: Option<&str>,
) -> (bool, String, String) {
    let mut cmd = dustwatch(data, config, args);
    cmd.env_remove("DUSTWATCH_USER_PASSWORD");
    if let Some(p) = password {
        cmd.env("DUSTWATCH_USER_PASSWORD", p);
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("dustwatch runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_command_works_on_the_store_of_a_running_aggregator() {
    user_command(Office::start().await, None).await;
}

/// The same against a PostgreSQL config: the users are the database's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_command_works_on_a_postgres_config() {
    let Some(pg) = dustwatch_testkit::Postgres::start() else {
        return;
    };
    let url = pg.database();
    let office = Office::start_on_postgres(&url).await;
    let config = office.data.path().join("pg.toml");
    std::fs::write(
        &config,
        format!("[store]\nbackend = \"postgres\"\n\n[store.postgres]\nurl = \"{url}\"\n"),
    )
    .expect("config file");
    user_command(office, Some(config)).await;
}

async fn user_command(office: Office, config: Option<PathBuf>) {
    let port = office.port;
    let dir = office.data.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let dir = (dir.as_path(), config.as_deref());
        let (ok_, out, err) = cli(
            dir,
            &["add", "chen", "--role", "inspector"],
            Some("chen-password"),
        );
        assert!(ok_, "{out}{err}");
        let (ok_, _, err) = cli(dir, &["add", "zhao", "--role", "viewer"], Some("short"));
        assert!(!ok_ && err.contains("at least 8"), "{err}");
        let (ok_, _, err) = cli(dir, &["add", "zhao", "--role", "boss"], Some("long enough"));
        assert!(!ok_ && err.contains("viewer, inspector or admin"), "{err}");
        // The password from the first line of standard input.
        let mut child = dustwatch(dir.0, dir.1, &["add", "zhou", "--role", "viewer"])
            .env_remove("DUSTWATCH_USER_PASSWORD")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("dustwatch runs");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(b"zhou-password\n").expect("write");
        }
        assert!(child.wait().expect("exit").success());
        assert!(login(port, "zhou", "zhou-password").is_some());
        let (_, list, _) = cli(dir, &["list"], None);
        assert_eq!(list, "chen\tinspector\tenabled\nzhou\tviewer\tenabled\n");
        let (ok_, token, err) = cli(dir, &["token", "chen", "--label", "phone"], None);
        assert!(ok_, "{err}");
        let chen = Auth::Bearer(token.trim().to_string());
        let c = ok(
            port,
            "POST",
            "/api/patrol/s1",
            &chen,
            r#"{"result":"working"}"#,
        );
        assert_eq!(c["by"], "chen");
        assert!(login(port, "chen", "chen-password").is_some());
        let (ok_, _, err) = cli(dir, &["disable", "chen"], None);
        assert!(ok_, "{err}");
        let (s, _) = call(
            port,
            "POST",
            "/api/patrol/s1",
            &chen,
            r#"{"result":"working"}"#,
        );
        assert_eq!(s, 401);
        let (_, list, _) = cli(dir, &["list"], None);
        assert_eq!(list, "chen\tinspector\tdisabled\nzhou\tviewer\tenabled\n");
        if dir.1.is_some() {
            assert!(
                !dir.0.join("dustwatch.db").exists(),
                "the users are in PostgreSQL, not in a SQLite file"
            );
        }
    })
    .await
    .expect("cli");
    office.stop().await;
}
