//! Output helpers: one-line errors, JSON, amounts for people.

use std::process::ExitCode;

use serde::Serialize;

/// Prints `error: ...` with the cause chain on one line and returns exit code 1.
pub fn fail(e: &anyhow::Error) -> ExitCode {
    let line = format!("{e:#}").replace('\n', " ");
    eprintln!("error: {line}");
    ExitCode::from(1)
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
