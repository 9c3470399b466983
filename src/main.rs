//! `plumdash`: the command line lives in the library (`plumdash::cli`), so
//! it can be tested and its pages generated from the same definitions.

fn main() -> std::process::ExitCode {
    plumdash::cli::main()
}
