//! The `warden` binary: parse the command line, hand over to `cli::run`.

mod cli;
mod demo;
mod serve;

fn main() -> std::process::ExitCode {
    cli::main()
}
