#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    use callboard::server::{
        cli::{Cli, Command},
        config::Config,
        serve, telemetry,
    };
    use clap::Parser;

    let cli = Cli::parse();
    if let Some(Command::Bench(args)) = cli.command {
        return match callboard::bench::run(args).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("callboard bench: {error}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Sim(args)) = cli.command {
        return match callboard::sim::cli::run(args).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("callboard sim: {error}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    telemetry::init(cli.log_json);
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!("configuration error: {error}");
            eprintln!("callboard: configuration error: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(Command::Hooks) = cli.command {
        return match callboard::server::hooks::print_urls(&config).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("callboard hooks: {error}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    match serve(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "ssr"))]
pub fn main() {
    // The browser entry point is `hydrate` in lib.rs.
}
