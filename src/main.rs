use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = vkyc::cli::Cli::parse();
    match vkyc::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vkyc: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
