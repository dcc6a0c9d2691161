//! `signet`: the Signet command-line client. Hashes artifacts locally (only digests cross the
//! network), writes signatures and bundles, verifies them offline, and administers keys and
//! tokens.
//!
//! Exit status: 0 success, 1 failure (including a signature that does not verify), 2 usage error.

mod audit;
mod bench;
mod ca;
mod cert;
mod config;
mod keys;
mod operator;
mod sign;
mod timestamp;
mod tsa;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use signet_proto::CreateTokenRequest;
use zeroize::Zeroizing;

use crate::config::Overrides;

#[derive(Parser)]
#[command(name = "signet", version, about = "Signet code-signing client")]
struct Cli {
    /// Server URL (default: SIGNET_URL, then the `signet login` config).
    #[arg(long, global = true)]
    url: Option<String>,
    /// CA certificate to trust for the server (default: SIGNET_CA, then the login config).
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Store the server URL, CA and API token in the user's config (mode 0600).
    Login(LoginArgs),
    /// Show the server's version and custody mode.
    Status,
    /// Manage keys.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Sign files (hashed locally) or a digest.
    ///
    /// With --json, `--format raw` prints the array of bundles written (as in FILE.signet.json,
    /// with `certificate_chain` and `timestamp` when present); `--digest` prints the server's
    /// SignResponse, with `timestamp` filled in by --timestamp. `--format cms` prints an array of
    /// objects {file, output, key, key_version, digest, audit_index, signer, signing_time,
    /// timestamp?}, where `timestamp` is {time, tsa, serial, policy, root?, source?}.
    Sign(sign::SignArgs),
    /// Verify a file's signature: a bundle or raw signature, offline with --public-key or fetching
    /// the key with --key; or a detached CMS signature with --cms.
    ///
    /// A bundle's time-stamp, when it has one, is verified over the signature and its time printed;
    /// a time-stamp that does not verify fails the verification. With --json, prints {verified,
    /// file, key, key_version, algorithm, digest, public_key_fingerprint, signed_at, log?,
    /// timestamp?}, where `timestamp` is {time, tsa, serial, policy, root?}. With --cms: {verified,
    /// file, signature, digest, signer: {subject, issuer, serial, not_before, not_after},
    /// signing_time, root?, timestamp?}.
    Verify(verify::VerifyArgs),
    /// Manage API tokens for service accounts.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Measure signing throughput and latency against a running server.
    Bench(bench::BenchArgs),
    /// Custody of the server's key-encryption key: status, unseal, seal, rotate.
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
    /// Internal certificate authorities: create, list, show, CRLs.
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// Certificates of signing keys: issue, CSR, import, list, show, revoke.
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// The server's built-in RFC 3161 time-stamping authority.
    #[command(subcommand)]
    Tsa(tsa::TsaCommand),
}

#[derive(Args)]
struct LoginArgs {
    /// Read the token from standard input (recommended: keeps it out of shell history).
    #[arg(long)]
    token_stdin: bool,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; its secret is printed once.
    Create {
        name: String,
        /// `signer` or `admin`.
        #[arg(long, default_value = "signer")]
        role: String,
        /// Lifetime, e.g. `90d`, `12h`, `30m`.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            if e.downcast_ref::<Usage>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// A usage error found after parsing (arguments that parse but do not go together): exit
/// status 2, as clap's own.
#[derive(Debug)]
pub struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

/// Prints a value as pretty JSON.
pub fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

async fn run(cli: Cli) -> Result<()> {
    let overrides = Overrides {
        url: cli.url.clone(),
        ca: cli.ca.clone(),
    };
    match cli.command {
        Command::Login(args) => login(&overrides, cli.json, args).await,
        Command::Status => {
            let s = config::client(&overrides)?.status().await?;
            if cli.json {
                return print_json(&s);
            }
            println!("signetd {} on node {}", s.version, s.node);
            println!("key backend: {} (KEK: {})", s.key_backend, s.kek_source);
            println!(
                "sealed: {}; FIPS module: {}{}",
                if s.sealed { "yes" } else { "no" },
                if s.fips { "active" } else { "not active" },
                if s.fips_required { " (required)" } else { "" }
            );
            for w in &s.warnings {
                println!("warning: {w}");
            }
            Ok(())
        }
        Command::Key(cmd) => keys::run(&overrides, cli.json, cmd).await,
        Command::Sign(args) => sign::run(&overrides, cli.json, args).await,
        Command::Verify(args) => verify::run(&overrides, cli.json, args).await,
        Command::Token(cmd) => token(&overrides, cli.json, cmd).await,
        Command::Audit(cmd) => audit::run(&overrides, cli.json, cmd).await,
        Command::Bench(args) => bench::run(&overrides, cli.json, args).await,
        Command::Operator(cmd) => operator::run(&overrides, cli.json, cmd).await,
        Command::Ca(cmd) => ca::run(&overrides, cli.json, cmd).await,
        Command::Cert(cmd) => cert::run(&overrides, cli.json, cmd).await,
        Command::Tsa(cmd) => tsa::run(&overrides, cli.json, cmd).await,
    }
}

async fn login(o: &Overrides, json: bool, args: LoginArgs) -> Result<()> {
    let mut file = config::load_file()?;
    if let Some(url) = o.url.clone() {
        file.url = Some(url);
    }
    if let Some(ca) = &o.ca {
        file.ca = Some(
            ca.canonicalize()
                .with_context(|| format!("cannot find the CA certificate `{}`", ca.display()))?,
        );
    }
    if args.token_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the token from standard input")?;
        let t = line.trim();
        if t.is_empty() {
            bail!(
                "no token on standard input; pipe the token printed by `signetd init` or `signet token create`"
            );
        }
        file.token = Some(t.to_owned());
    }
    if file.url.is_none() {
        bail!("no server URL; run `signet login --url https://HOST:PORT --ca CERT --token-stdin`");
    }
    // Check the new settings before they replace working ones.
    let cfg = signet_client::ClientConfig {
        url: file.url.clone().unwrap_or_default(),
        token: file.token.clone().map(Zeroizing::new),
        ca_pem: file.ca.as_deref().map(config::read_ca).transpose()?,
        timeout: None,
    };
    signet_client::Client::new(&cfg)?
        .list_keys()
        .await
        .context("these settings do not work; nothing was saved")?;
    let path = config::save_file(&file)?;
    if json {
        return print_json(&serde_json::json!({ "saved": path }));
    }
    println!("saved {}", path.display());
    Ok(())
}

async fn token(o: &Overrides, json: bool, cmd: TokenCommand) -> Result<()> {
    let client = config::client(o)?;
    match cmd {
        TokenCommand::Create {
            name,
            role,
            expires_in,
        } => {
            let expires_at = match expires_in {
                Some(d) => Some(time::OffsetDateTime::now_utc() + parse_duration(&d)?),
                None => None,
            };
            let created = client
                .create_token(&CreateTokenRequest {
                    name,
                    role: Some(role),
                    expires_at,
                })
                .await?;
            if json {
                return print_json(&created);
            }
            eprintln!(
                "created token {} ({}, role {}); the secret below is shown only once:",
                created.info.id, created.info.name, created.info.role
            );
            println!("{}", created.token);
            Ok(())
        }
        TokenCommand::List => {
            let list = client.list_tokens().await?;
            if json {
                return print_json(&list);
            }
            println!(
                "{:<18} {:<20} {:<7} {:<10} EXPIRES",
                "ID", "NAME", "ROLE", "STATE"
            );
            for t in &list.tokens {
                let now = time::OffsetDateTime::now_utc();
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "active"
                };
                let exp = t
                    .expires_at
                    .map_or_else(|| "never".to_owned(), |e| e.to_string());
                println!(
                    "{:<18} {:<20} {:<7} {:<10} {exp}",
                    t.id, t.name, t.role, state
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            client.revoke_token(&id).await?;
            if json {
                return print_json(&serde_json::json!({ "revoked": id }));
            }
            println!("revoked {id}");
            Ok(())
        }
    }
}

/// Parses `90d`, `12h`, `30m`, `45s`.
fn parse_duration(s: &str) -> Result<time::Duration> {
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .with_context(|| format!("invalid duration `{s}`; use e.g. 90d, 12h, 30m"))?;
    Ok(match unit {
        "d" => time::Duration::days(n),
        "h" => time::Duration::hours(n),
        "m" => time::Duration::minutes(n),
        "s" => time::Duration::seconds(n),
        _ => bail!("invalid duration `{s}`; use e.g. 90d, 12h, 30m"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// Parses a command line given as one string of space-separated words.
    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("signet").chain(line.split_whitespace()))
    }

    #[test]
    fn certificate_and_time_stamp_commands_parse() {
        for ok in [
            "ca create rel --organization O=Example,C=DE --root-days 3650 --issuing-days 1825 --out-dir out",
            "ca list --json",
            "ca show rel --out-dir out",
            "ca crl rel -o rel.crl --pem",
            "cert issue release --ca-name rel --subject CN=Release --days 30 -o r.pem",
            "cert csr release --subject CN=Release",
            "cert import release chain.pem",
            "cert list",
            "cert list release",
            "cert show 0123 -o c.pem",
            "cert revoke 0123 --reason superseded",
            "key policy release",
            "key policy release --require-certificate true --require-timestamp no",
            "tsa create --ca-name rel --key tsa --algorithm ecdsa-p256 --subject CN=TSA",
            "tsa show -o chain.pem",
            "sign --key k --timestamp f",
            "sign --key k --timestamp --tsa http://a --tsa https://b --tsa-ca roots.pem f g",
            "sign --key k --format cms --timestamp f",
            "verify f --key k --tsa-ca roots.pem",
            "verify --cms f.p7s f",
        ] {
            let r = parse(ok);
            assert!(
                r.is_ok(),
                "`{ok}` should parse: {:?}",
                r.err().map(|e| e.to_string())
            );
        }
        for bad in [
            // --tsa only with --timestamp.
            "sign --key k --tsa http://a f",
            "sign --key k --format p7 f",
            // `--ca` is the global server CA, not the CA name.
            "cert issue release --ca rel --subject CN=x",
            "tsa create",
            "key policy release --require-timestamp maybe",
            // A CMS signature is checked against its certificates, not a key or a bundle.
            "verify --cms f.p7s f --key k",
            "verify --cms f.p7s f --bundle f.signet.json",
            "verify f",
        ] {
            assert!(parse(bad).is_err(), "`{bad}` should not parse");
        }
    }

    #[test]
    fn verify_cms_takes_its_root_from_the_global_ca_flag() -> Result<()> {
        let cli = parse("verify --cms f.p7s f --ca root.pem")?;
        assert_eq!(cli.ca, Some(PathBuf::from("root.pem")));
        assert!(matches!(cli.command, Command::Verify(_)));
        let cli = parse("key policy k --require-certificate yes")?;
        assert!(matches!(
            cli.command,
            Command::Key(keys::KeyCommand::Policy {
                require_certificate: Some(true),
                require_timestamp: None,
                ..
            })
        ));
        Ok(())
    }

    #[test]
    fn durations_parse() -> Result<()> {
        assert_eq!(parse_duration("90d")?, time::Duration::days(90));
        assert_eq!(parse_duration("12h")?, time::Duration::hours(12));
        for bad in ["", "d", "0d", "-1h", "5y", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        Ok(())
    }
}
