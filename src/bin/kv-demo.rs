//! The `kv-demo` worker as its own executable, so `ps aux | grep kv-demo`
//! finds it. Everything lives in `plumdash::demo`.

fn main() -> std::process::ExitCode {
    plumdash::demo::run_cli()
}
