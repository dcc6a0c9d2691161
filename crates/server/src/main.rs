//! `signetd`: initialize a data directory, or serve it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "signetd", version, about = "Signet signing server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a data directory: config, database, dev key-encryption key, TLS certificate and
    /// the first admin token (printed once).
    Init {
        #[arg(long, env = "SIGNET_DATA_DIR")]
        data_dir: PathBuf,
        /// Address the server will listen on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Node name recorded in audit events.
        #[arg(long, default_value = "signetd")]
        node: String,
        /// Print one JSON object (`url`, `admin_token`, `ca_cert`, `data_dir`).
        #[arg(long)]
        json: bool,
    },
    /// Serve the API over HTTPS until SIGTERM or SIGINT.
    Serve {
        #[arg(long, env = "SIGNET_DATA_DIR")]
        data_dir: PathBuf,
        /// Override the configured listen address (port 0 picks a free port).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Serve plain HTTP (loopback addresses only).
        #[arg(long)]
        insecure_http: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("SIGNET_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init {
            data_dir,
            listen,
            node,
            json,
        } => {
            let out = signet_server::init::init(&data_dir, listen, node).await?;
            if json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                println!("initialized {}", out.data_dir.display());
                println!();
                println!("  url:         {}", out.url);
                println!("  ca_cert:     {}", out.ca_cert.display());
                println!("  admin_token: {}", out.admin_token);
                println!("  log_key:     {}", out.log_key);
                println!();
                println!("The admin token is shown only once; store it now. Then:");
                println!("  signetd serve --data-dir {}", out.data_dir.display());
                println!(
                    "  signet login --url {} --ca {} --token-stdin",
                    out.url,
                    out.ca_cert.display()
                );
            }
            Ok(())
        }
        Command::Serve {
            data_dir,
            listen,
            insecure_http,
        } => signet_server::serve::serve(&data_dir, listen, insecure_http).await,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_valid() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
