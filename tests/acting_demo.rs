//! `dustwatch demo` on a new store makes an office admin and an inspector with random passwords
//! and prints them once; the inspector can log in with what was printed.

mod support;

use support::acting::login;
use support::{free_port, DemoProcess};

#[test]
fn the_demo_prints_users_who_can_log_in() {
    let mqtt = format!("127.0.0.1:{}", free_port());
    let (demo, line) = DemoProcess::start_listening(&mqtt, "demo user inspector");
    let password = line
        .split_whitespace()
        .last()
        .expect("the line ends with the password")
        .to_string();
    assert_eq!(password.len(), 32, "{line}");
    assert!(login(demo.http_port, "inspector", "wrong-password").is_none());
    assert!(
        login(demo.http_port, "inspector", &password).is_some(),
        "{line}"
    );
    demo.interrupt();
}
