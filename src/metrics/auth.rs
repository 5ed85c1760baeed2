//! Logins and refused credentials: a rising failure count is someone guessing.

use std::sync::atomic::AtomicU64;

#[derive(Debug, Default)]
pub struct AuthMetrics {
    /// Logins through `/login` that opened a session.
    pub logins: AtomicU64,
    /// Logins refused (wrong name or password, or a disabled user).
    pub login_failures: AtomicU64,
    /// Requests whose bearer token or session cookie matched nobody (401).
    pub bad_credentials: AtomicU64,
}

impl AuthMetrics {
    pub(super) fn render(&self, out: &mut String) {
        let counters: [(&str, &str, &AtomicU64); 3] = [
            (
                "dustwatch_auth_logins_total",
                "Logins that opened a browser session.",
                &self.logins,
            ),
            (
                "dustwatch_auth_login_failures_total",
                "Logins refused: wrong name or password, or a disabled user.",
                &self.login_failures,
            ),
            (
                "dustwatch_auth_bad_credentials_total",
                "Requests refused with 401 for a token or session cookie that matched nobody.",
                &self.bad_credentials,
            ),
        ];
        super::write_counters(out, &counters);
    }
}
