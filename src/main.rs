use clap::Parser;

// glibc's allocator spent a sixth of a busy server's time in malloc and free; mimalloc's
// per-thread heaps cost a fraction of that (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
