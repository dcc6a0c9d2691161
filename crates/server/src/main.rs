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
    /// Create a data directory: config, database, key-encryption key (split into custodian
    /// shares, or a dev file with --dev), TLS certificate and the first admin token (printed once).
    Init {
        #[arg(long, env = "SIGNET_DATA_DIR")]
        data_dir: PathBuf,
        /// Address the server will listen on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Node name recorded in audit events.
        #[arg(long, default_value = "signetd")]
        node: String,
        /// Print one JSON object (`url`, `admin_token`, `ca_cert`, `data_dir`, `log_key`,
        /// `custody`, `shares` or `share_files`).
        #[arg(long)]
        json: bool,
        /// Split the key-encryption key into this many custodian shares.
        #[arg(long, default_value_t = 5, conflicts_with = "dev")]
        shares: u8,
        /// Shares needed to unseal the server.
        #[arg(long, default_value_t = 3, conflicts_with = "dev")]
        threshold: u8,
        /// Write one share per file (mode 0600) into this directory instead of printing them.
        #[arg(long, conflicts_with = "dev")]
        share_dir: Option<PathBuf>,
        /// Dev mode: keep the key-encryption key in a local file and start unsealed. Anyone who
        /// can read the data directory can use every software key: never for production keys.
        #[arg(long)]
        dev: bool,
        /// Auto-unseal: wrap the key-encryption key with an AES key inside this PKCS#11 module's
        /// token (instead of custodian shares). The token can hold signing keys too.
        #[arg(
            long,
            value_name = "MODULE",
            conflicts_with = "dev",
            requires = "pkcs11_pin_file"
        )]
        pkcs11_module: Option<PathBuf>,
        /// The token's label.
        #[arg(long, value_name = "LABEL", requires = "pkcs11_module")]
        pkcs11_token_label: Option<String>,
        /// A file (mode 0600) holding the token's user PIN.
        #[arg(long, value_name = "FILE", requires = "pkcs11_module")]
        pkcs11_pin_file: Option<PathBuf>,
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
        /// Allow serving a dev-mode data directory (key-encryption key in a local file).
        #[arg(long)]
        dev: bool,
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
            shares,
            threshold,
            share_dir,
            dev,
            pkcs11_module,
            pkcs11_token_label,
            pkcs11_pin_file,
        } => {
            let custody = if dev {
                signet_server::init::Custody::Dev
            } else if let Some(module) = pkcs11_module {
                let pin_file = match pkcs11_pin_file {
                    Some(p) => Some(std::path::absolute(&p)?),
                    None => None,
                };
                signet_server::init::Custody::Pkcs11(signet_server::config::Pkcs11Section {
                    module,
                    token_label: pkcs11_token_label,
                    token_serial: None,
                    pin_file,
                    pin_env: None,
                    max_sessions: None,
                })
            } else {
                signet_server::init::Custody::Shamir {
                    shares,
                    threshold,
                    share_dir,
                }
            };
            let out = signet_server::init::init(&data_dir, listen, node, custody).await?;
            if json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                println!("initialized {}", out.data_dir.display());
                println!();
                println!("  url:         {}", out.url);
                println!("  ca_cert:     {}", out.ca_cert.display());
                println!("  admin_token: {}", out.admin_token);
                println!("  log_key:     {}", out.log_key);
                println!("  custody:     {}", out.custody);
                println!();
                if !out.shares.is_empty() {
                    println!(
                        "Key-encryption key shares ({} needed to unseal). Each is shown only once;",
                        out.threshold.unwrap_or_default()
                    );
                    println!("hand one to each custodian now:");
                    for s in &out.shares {
                        println!("  {s}");
                    }
                    println!();
                }
                for f in &out.share_files {
                    println!("  share file:  {}", f.display());
                }
                println!("The admin token is shown only once; store it now. Then:");
                let dev_flag = if out.custody == "dev-key-file" {
                    " --dev"
                } else {
                    ""
                };
                println!(
                    "  signetd serve --data-dir {}{dev_flag}",
                    out.data_dir.display()
                );
                if out.threshold.is_some() {
                    println!(
                        "  signet operator unseal   (run by {} custodians, each with a share)",
                        out.threshold.unwrap_or_default()
                    );
                }
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
            dev,
        } => signet_server::serve::serve(&data_dir, listen, insecure_http, dev).await,
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
