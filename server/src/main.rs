//! `gridsync`: the one binary. Today it runs the local demo and the device
//! benchmark; the relay (`gridsync serve`) arrives with the sync issue.

mod bench;
mod demo;
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "gridsync",
    version,
    about = "gridsync: offline-first sync for grid workers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a simulated day of one community's work on local devices and print the
    /// timelines and figures.
    Demo {
        /// Keep the devices' databases in this folder (default: a temporary folder).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Language of the output.
        #[arg(long, value_enum, default_value_t = Lang::Zh)]
        lang: Lang,
    },
    /// Benchmarks; each prints one JSON line per figure.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The device engine: report, act, list, search, open, bytes per case and per
    /// patrol-hour.
    Device {
        /// Cases stored on the device for the list/open figures.
        #[arg(long, default_value_t = 50_000)]
        cases: usize,
        /// Samples for the per-operation timings.
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
}

/// Output language: Simplified Chinese by default.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// 简体中文.
    Zh,
    /// English.
    En,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { data, lang } => demo::run(data, lang),
        Command::Bench {
            which: BenchCommand::Device { cases, samples },
        } => bench::device(cases, samples),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gridsync: {e}");
            ExitCode::FAILURE
        }
    }
}
