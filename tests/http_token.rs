//! The write token of the real `dustwatch serve`: 128 random bits printed only when generated;
//! settable by the config file, a file, or the environment, and never printed then.

mod support;

use support::http::*;

const LEVEL: &str = r#"{"level":"blue"}"#;

fn put_level(port: u16, token: &str) -> u16 {
    request(port, "PUT", "/api/city/level", Some(token), LEVEL).status
}

#[test]
fn a_generated_token_is_printed_and_a_configured_one_never() {
    let dir = tempfile::tempdir().expect("temp dir");

    // Nothing configured: a new 32-hex-digit token, printed, and it works.
    let p = ServeProcess::start(dir.path(), &[], &[]);
    let token = p
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("write token "))
        .map(str::trim)
        .expect("the generated token is printed")
        .to_owned();
    assert_eq!(token.len(), 32, "{}", p.stdout);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    assert_eq!(put_level(p.port, &token), 200);
    drop(p);

    // In the config file: not printed.
    let configured = "configured-token-0123456789";
    let config = dir.path().join("dustwatch.toml");
    std::fs::write(&config, format!("[http]\nwrite_token = \"{configured}\"\n")).expect("config");
    let config_arg = config.to_str().expect("utf-8 path").to_owned();
    let p = ServeProcess::start(dir.path(), &["--config", &config_arg], &[]);
    assert!(!p.stdout.contains(configured), "{}", p.stdout);
    assert_eq!(put_level(p.port, configured), 200);
    drop(p);

    // The environment wins over the config file; neither is printed.
    let from_env = "environment-token-0123456789";
    let p = ServeProcess::start(
        dir.path(),
        &["--config", &config_arg],
        &[("DUSTWATCH_WRITE_TOKEN", from_env)],
    );
    assert!(!p.stdout.contains(from_env) && !p.stdout.contains(configured));
    assert_eq!(put_level(p.port, from_env), 200);
    assert_eq!(put_level(p.port, configured), 401);
    drop(p);

    // A token file.
    let file = dir.path().join("token");
    std::fs::write(&file, "file-token-0123456789\n").expect("token file");
    let file_arg = file.to_str().expect("utf-8 path").to_owned();
    let p = ServeProcess::start(dir.path(), &["--write-token-file", &file_arg], &[]);
    assert!(!p.stdout.contains("file-token-0123456789"), "{}", p.stdout);
    assert_eq!(put_level(p.port, "file-token-0123456789"), 200);
}
