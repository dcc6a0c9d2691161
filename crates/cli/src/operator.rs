//! `signet operator …`: the server's key-encryption key — seal status, unseal, seal, rotation.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use signet_proto::{RotateKekRequest, SealStatus};
use zeroize::Zeroizing;

use crate::config::{self, Overrides};
use crate::print_json;

#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Show whether the server is sealed and the unseal progress (no token needed).
    Status,
    /// Submit your key share (custodians; no token needed). Reads the share from standard
    /// input, or from --share-file.
    Unseal {
        /// A file holding the share line (as written by `signetd init --share-dir`).
        #[arg(long)]
        share_file: Option<PathBuf>,
    },
    /// Seal the server now (admin): signing stops until custodians unseal it.
    Seal,
    /// Re-seal every software key under a new key-encryption key (admin). Prints the new
    /// shares once; the old shares stop working.
    RotateKek {
        /// New number of shares (with --threshold; default: keep the current split).
        #[arg(long, requires = "threshold")]
        shares: Option<u8>,
        #[arg(long, requires = "shares")]
        threshold: Option<u8>,
    },
}

fn print_status(s: &SealStatus) {
    let state = if s.sealed { "sealed" } else { "unsealed" };
    println!("{state} (custody: {})", s.mode);
    if let (Some(t), Some(n)) = (s.threshold, s.shares) {
        println!(
            "shares: {t} of {n} needed (split {})",
            s.share_set.as_deref().unwrap_or("-")
        );
        if s.sealed {
            println!("progress: {} of {t} submitted", s.progress);
        }
    }
}

fn read_share(file: Option<PathBuf>) -> Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    match file {
        Some(path) => {
            *line = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the share file `{}`", path.display()))?;
        }
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("paste your share (signet-share-v1-…) and press Enter:");
            }
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the share from standard input")?;
        }
    }
    let trimmed = Zeroizing::new(line.trim().to_owned());
    if trimmed.is_empty() {
        bail!("no share given; pipe it on standard input or use --share-file FILE");
    }
    Ok(trimmed)
}

pub async fn run(o: &Overrides, json: bool, cmd: OperatorCommand) -> Result<()> {
    let client = config::client(o)?;
    match cmd {
        OperatorCommand::Status => {
            let s = client.seal_status().await?;
            if json {
                return print_json(&s);
            }
            print_status(&s);
        }
        OperatorCommand::Unseal { share_file } => {
            let share = read_share(share_file)?;
            let s = client.unseal(&share).await?;
            if json {
                return print_json(&s);
            }
            print_status(&s);
            if s.sealed {
                println!("share accepted; waiting for more custodians");
            } else {
                println!("the server is unsealed");
            }
        }
        OperatorCommand::Seal => {
            let s = client.seal().await?;
            if json {
                return print_json(&s);
            }
            print_status(&s);
        }
        OperatorCommand::RotateKek { shares, threshold } => {
            let r = client
                .rotate_kek(&RotateKekRequest { shares, threshold })
                .await?;
            if json {
                return print_json(&r);
            }
            eprintln!(
                "re-sealed {} key versions under a new key-encryption key",
                r.rewrapped
            );
            if !r.shares.is_empty() {
                eprintln!(
                    "new shares (split {}), shown only once — hand one to each custodian; the old shares no longer work:",
                    r.share_set.as_deref().unwrap_or("-")
                );
                for s in &r.shares {
                    println!("{s}");
                }
            }
        }
    }
    Ok(())
}
