//! The `paysim` binary: parse the arguments and hand over to the library.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = paysim::Args::parse_or_exit();
    paysim::init_logging();
    match paysim::run(args).await {
        Ok(paysim::Stopped::CrashAfter(n)) => {
            eprintln!("paysim: fault crash-after={n}: exiting with status 1");
            // Exit now, as a crash would, instead of waiting for the runtime to wind down.
            std::process::exit(1)
        }
        Err(e) => {
            eprintln!("paysim: {e:#}");
            ExitCode::FAILURE
        }
    }
}
