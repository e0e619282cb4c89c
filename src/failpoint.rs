//! Failpoints for crash tests: `TONGBAO_FAILPOINT=<name>` makes the process abort at that point,
//! as a power cut or SIGKILL would. Unset (always, outside tests), they do nothing.

/// Aborts the process if `TONGBAO_FAILPOINT` names this point.
pub fn hit(name: &str) {
    if std::env::var("TONGBAO_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
