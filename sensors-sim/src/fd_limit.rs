//! The open-file limit: each device is a socket, so a large fleet needs more than the usual soft
//! limit of 1,024.

/// Raise this process's open-file limit to its hard limit (children, such as a benchmark's
/// broker, inherit it). Returns the soft limit now in force.
#[cfg(unix)]
pub fn raise() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return 0;
        }
        if l.rlim_cur < l.rlim_max {
            let want = libc::rlimit {
                rlim_cur: l.rlim_max,
                rlim_max: l.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        l.rlim_cur
    }
}

#[cfg(not(unix))]
pub fn raise() -> u64 {
    0
}
