//! The `greenlight` CLI as the tests run it: the binary `cargo build` made, with a config
//! written to a temporary file, and nothing of the shell's `GREENLIGHT_CONFIG`.

use std::process::Output;

use crate::lambda::binary;

/// A config written to a temporary file (removed when dropped).
pub fn config_file(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("cannot create a temporary config file");
    std::fs::write(file.path(), text).expect("cannot write the temporary config file");
    file
}

/// The CLI's command: `greenlight ARGS` with `env`, killed if the test drops it.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary("greenlight"));
    command
        .args(args)
        .env_remove("GREENLIGHT_CONFIG")
        .envs(env.iter().copied())
        .kill_on_drop(true);
    command
}

/// Run `greenlight ARGS` with `env` to the end.
pub async fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    command(args, env)
        .output()
        .await
        .expect("cannot run the greenlight CLI")
}
