fn main() -> std::process::ExitCode {
    hotspot_cli::main()
}
