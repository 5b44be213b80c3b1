//! The `gantry` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    gantry::cli::main()
}
