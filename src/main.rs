fn main() -> std::process::ExitCode {
    parc::cli::main()
}
