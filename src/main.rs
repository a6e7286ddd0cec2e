//! Temporary entry point for developing `parc lab`; the main CLI replaces it.

use clap::Parser;

#[derive(Parser)]
#[command(name = "parc")]
enum Cli {
    #[command(subcommand)]
    Lab(parc::lab::cli::LabCommand),
}

fn main() -> std::process::ExitCode {
    let Cli::Lab(cmd) = Cli::parse();
    match parc::lab::cli::run(cmd) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parc: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
