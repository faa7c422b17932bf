use clap::Parser;

fn main() -> std::process::ExitCode {
    seatrial::cli::main_with(seatrial::cli::Cli::parse())
}
