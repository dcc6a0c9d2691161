//! `signet audit`: list, search, export and verify the audit log.
//!
//! The log is a Merkle tree (RFC 9162) whose entries are canonical JSON carrying their own
//! `index`, covered by checkpoints signed with the log key (C2SP signed notes). `verify`
//! recomputes every leaf and the root from the entries and checks them against a signed
//! checkpoint, so an altered, deleted, reordered or truncated entry is found without trusting
//! the server or the export file. The checks live in [`LogVerifier`], which the live and the
//! export modes share.

use std::fmt;
use std::io::{BufRead, BufReader, IsTerminal, Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use signet_client::{AuditParams, Client};
use signet_core::merkle::{self, Hash, Tree};
use signet_formats::checkpoint::{Checkpoint, VerifierKey, open_note};
use signet_proto::{AuditRecord, LogEntry};

use crate::config::{self, Overrides};
use crate::print_json;

/// Entries per `GET /api/v1/log/entries` (the server's maximum).
const ENTRY_PAGE: u64 = 1000;

/// Records per `GET /api/v1/audit` while searching.
const SEARCH_PAGE: u64 = 1000;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// List audit records in log order (one page).
    List {
        #[command(flatten)]
        filters: Filters,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Find records by key, principal, action, digest and time, following every page.
    Search(SearchArgs),
    /// Write every log entry and the signed checkpoint as JSON lines (for a SIEM or archive).
    Export(ExportArgs),
    /// Check the log against its signed checkpoint: every entry, the tree and the signature.
    Verify(VerifyArgs),
    /// Print the log's verifier key as the server reports it (pin it out of band).
    Key,
}

/// The record filters shared by `audit list` and `audit search`.
#[derive(Args)]
pub struct Filters {
    /// Only records about this key name.
    #[arg(long)]
    key: Option<String>,
    /// Only records by this principal id (a token id, `init` or `anonymous`).
    #[arg(long, visible_alias = "actor")]
    principal: Option<String>,
    /// e.g. `sign`, `key_create`, `token_revoke`.
    #[arg(long)]
    action: Option<String>,
    /// Only records of this signed digest (hex).
    #[arg(long)]
    digest: Option<String>,
    /// Only records at or after this time: RFC 3339, a date (`2026-11-23`, UTC) or an age
    /// (`90d`, `12h`, `30m`, `45s` ago).
    #[arg(long)]
    since: Option<String>,
    /// Only records before this time (same forms as `--since`).
    #[arg(long)]
    until: Option<String>,
    /// Only records after this index.
    #[arg(long)]
    after: Option<u64>,
}

impl Filters {
    fn params(self, limit: Option<u32>) -> Result<AuditParams> {
        Ok(AuditParams {
            after: self.after,
            key: self.key,
            actor: self.principal,
            action: self.action,
            limit,
            digest: self.digest,
            since: self.since.as_deref().map(parse_time).transpose()?,
            until: self.until.as_deref().map(parse_time).transpose()?,
        })
    }
}

#[derive(Args)]
pub struct SearchArgs {
    #[command(flatten)]
    filters: Filters,
    /// Stop after this many records (default: all).
    #[arg(long)]
    limit: Option<u64>,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Write here instead of standard output (replaced only when the export is complete).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// First index to export (default 0; `verify --export` needs a full export).
    #[arg(long, default_value_t = 0)]
    start: u64,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The log's verifier key (`<origin>+<hash>+<key>`), or a file holding it.
    #[arg(long, value_name = "VKEY")]
    log_key: String,
    /// Verify this export (from `signet audit export`) instead of the live log.
    #[arg(long, value_name = "FILE")]
    export: Option<PathBuf>,
    /// A checkpoint saved by an earlier run (`--save-checkpoint`): the log must extend it.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// After success, write the verified checkpoint here for the next run's `--checkpoint`.
    #[arg(long, value_name = "FILE")]
    save_checkpoint: Option<PathBuf>,
}

pub async fn run(o: &Overrides, json: bool, cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::List { filters, limit } => {
            let list = config::client(o)?
                .audit(&filters.params(Some(limit))?)
                .await?;
            if json {
                return print_json(&list);
            }
            for r in &list.records {
                println!("{}\t{}", r.index, serde_json::to_string(&r.event)?);
            }
            Ok(())
        }
        AuditCommand::Search(args) => search(o, json, args).await,
        AuditCommand::Export(args) => export(o, args).await,
        AuditCommand::Verify(args) => verify(o, json, args).await,
        AuditCommand::Key => {
            let key = config::client(o)?.log_key().await?;
            if json {
                return print_json(&key);
            }
            println!("{}", key.verifier_key);
            Ok(())
        }
    }
}

/// A time filter: RFC 3339, a date (midnight UTC) or an age (`12h` = twelve hours ago), as
/// RFC 3339 for the server.
fn parse_time(s: &str) -> Result<String> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.format(&Rfc3339)?);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &date_format) {
        return Ok(d.midnight().assume_utc().format(&Rfc3339)?);
    }
    if let Ok(age) = crate::parse_duration(s) {
        return Ok((time::OffsetDateTime::now_utc() - age).format(&Rfc3339)?);
    }
    bail!(
        "invalid time `{}`; use RFC 3339 (2026-11-23T12:00:00Z), a date (2026-11-23) or an age (24h, 7d)",
        s.chars().take(40).collect::<String>()
    )
}

async fn search(o: &Overrides, json: bool, args: SearchArgs) -> Result<()> {
    match search_pages(o, json, args).await {
        Err(e) if broken_pipe(&e) => Ok(()),
        other => other,
    }
}

async fn search_pages(o: &Overrides, json: bool, args: SearchArgs) -> Result<()> {
    let client = config::client(o)?;
    let mut params = args.filters.params(None)?;
    let mut remaining = args.limit.unwrap_or(u64::MAX);
    let mut out = std::io::stdout().lock();
    while remaining > 0 {
        let page = remaining.min(SEARCH_PAGE);
        params.limit = Some(u32::try_from(page).unwrap_or(1000));
        let list = client.audit(&params).await?;
        for r in &list.records {
            if json {
                serde_json::to_writer(&mut out, r)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", record_line(r))?;
            }
        }
        out.flush()?;
        remaining = remaining.saturating_sub(list.records.len() as u64);
        match list.records.last() {
            Some(last) if (list.records.len() as u64) >= page => params.after = Some(last.index),
            _ => break,
        }
    }
    Ok(())
}

/// One record as a tab-separated line: index, time, action, actor, key@version, digest, result.
fn record_line(r: &AuditRecord) -> String {
    let ev = &r.event;
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let time = text(&ev["time"]).unwrap_or_else(|| "-".into());
    let action = text(&ev["action"]).unwrap_or_else(|| "-".into());
    let actor = match (text(&ev["actor"]["name"]), text(&ev["actor"]["id"])) {
        (Some(name), Some(id)) if name != id => format!("{name} ({id})"),
        (_, Some(id)) => id,
        (Some(name), None) => name,
        (None, None) => "-".into(),
    };
    let key = match (text(&ev["key"]["name"]), ev["key"]["version"].as_u64()) {
        (Some(name), Some(v)) => format!("{name}@{v}"),
        (Some(name), None) => name,
        _ => "-".into(),
    };
    let digest = match (
        text(&ev["digest"]["algorithm"]),
        text(&ev["digest"]["value"]),
    ) {
        (Some(alg), Some(value)) => format!("{alg}:{value}"),
        (None, Some(value)) => value,
        _ => "-".into(),
    };
    let outcome = &ev["outcome"];
    let result = match (text(&outcome["result"]), text(&outcome["code"])) {
        (Some(res), Some(code)) => format!("{res} ({code})"),
        (Some(res), None) => res,
        (None, _) => "-".into(),
    };
    format!(
        "{}\t{time}\t{action}\t{actor}\t{key}\t{digest}\t{result}",
        r.index
    )
}

/// A progress counter on standard error, drawn only when that is a terminal.
fn progress(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} {pos}/{len} entries")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_owned());
    bar
}

/// The `(size)` of a note's checkpoint body, read without checking its signature (export copies
/// the note; `verify` checks it).
fn unverified_size(note: &str) -> Result<u64> {
    let body = note
        .rfind("\n\n")
        .and_then(|at| note.get(..=at))
        .ok_or_else(|| anyhow!("the server's checkpoint is not a signed note; is this signetd?"))?;
    Ok(Checkpoint::parse_body(body)
        .context("the server's checkpoint cannot be parsed")?
        .size)
}

/// The last line of an export.
#[derive(serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLine {
    checkpoint: String,
}

async fn export(o: &Overrides, args: ExportArgs) -> Result<()> {
    let client = config::client(o)?;
    let note = client.log_checkpoint().await?;
    let size = unverified_size(&note)?;
    if args.start > size {
        bail!(
            "`--start` {} is beyond the log's checkpoint size {size}; start at {size} or lower",
            args.start
        );
    }
    let (mut out, tmp): (Box<dyn Write>, Option<PathBuf>) = match &args.output {
        Some(path) => {
            let tmp = tmp_path(path);
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create `{}`", tmp.display()))?;
            (
                Box::new(std::io::BufWriter::with_capacity(1 << 20, f)),
                Some(tmp),
            )
        }
        None => (
            Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            None,
        ),
    };
    let result = async {
        let bar = progress(size - args.start, "exported");
        let mut written = 0u64;
        let mut start = args.start;
        while start < size {
            let end = size.min(start.saturating_add(ENTRY_PAGE));
            let page = client.log_entries(start, end).await?;
            // Entries are written as stored; a gap stays a gap, for `verify` to report.
            for e in &page.entries {
                serde_json::to_writer(&mut out, e)?;
                out.write_all(b"\n")?;
            }
            written += page.entries.len() as u64;
            bar.set_position(end - args.start);
            start = end;
        }
        serde_json::to_writer(&mut out, &CheckpointLine { checkpoint: note })?;
        out.write_all(b"\n")?;
        out.flush()?;
        bar.finish_and_clear();
        Ok::<_, anyhow::Error>(written)
    }
    .await;
    drop(out);
    let written = match result {
        Ok(n) => n,
        // The reader of standard output stopped (`| head`): not an error of ours.
        Err(e) if tmp.is_none() && broken_pipe(&e) => return Ok(()),
        Err(e) => {
            if let Some(tmp) = &tmp {
                let _ = std::fs::remove_file(tmp);
            }
            return Err(e);
        }
    };
    if let (Some(tmp), Some(path)) = (&tmp, &args.output) {
        std::fs::rename(tmp, path).with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    if std::io::stderr().is_terminal() || args.output.is_some() {
        eprintln!(
            "exported {written} entries ({}..{size}) and the checkpoint of size {size}",
            args.start
        );
    }
    Ok(())
}

/// Whether writing failed because the reader of a pipe went away.
fn broken_pipe(e: &anyhow::Error) -> bool {
    let kind = e
        .downcast_ref::<std::io::Error>()
        .map(std::io::Error::kind)
        .or_else(|| {
            e.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
        });
    kind == Some(std::io::ErrorKind::BrokenPipe)
}

/// `FILE.tmp` beside `path`, written first and renamed over it when complete.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Why verification failed. Where the fault is at one entry, [`Failure::index`] names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The checkpoint being verified does not open with the log key.
    Checkpoint(String),
    /// The saved checkpoint does not open with the log key.
    SavedCheckpoint(String),
    /// The saved checkpoint is of another log.
    Origin { saved: String, current: String },
    /// The saved checkpoint is larger than the current one.
    RolledBack { saved: u64, current: u64 },
    /// An index between entries is absent.
    Missing { index: u64 },
    /// Entries stop before the checkpoint's size.
    Truncated { index: u64, size: u64 },
    /// An index comes again, or goes backwards.
    Duplicate { index: u64, after: u64 },
    /// An entry lies beyond the checkpoint.
    Beyond { index: u64, size: u64 },
    /// The entry is not a JSON object.
    NotJson { index: u64 },
    /// The entry has no integer `index` field.
    NoIndex { index: u64 },
    /// The entry's `index` field names another position.
    WrongIndex { index: u64, says: u64 },
    /// The stored leaf hash is not a hash.
    BadStoredHash { index: u64, value: String },
    /// The entry's leaf hash is not the stored one.
    LeafMismatch { index: u64 },
    /// The first `size` entries do not produce the saved checkpoint's root.
    SavedRoot { size: u64 },
    /// The entries do not produce the checkpoint's root; `matched` entries match the saved one.
    Root { size: u64, matched: Option<u64> },
}

impl Failure {
    /// The first entry found at fault, when the failure is at one entry.
    #[cfg(test)]
    pub fn index(&self) -> Option<u64> {
        match self {
            Failure::Missing { index }
            | Failure::Truncated { index, .. }
            | Failure::Duplicate { index, .. }
            | Failure::Beyond { index, .. }
            | Failure::NotJson { index }
            | Failure::NoIndex { index }
            | Failure::WrongIndex { index, .. }
            | Failure::BadStoredHash { index, .. }
            | Failure::LeafMismatch { index } => Some(*index),
            _ => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Checkpoint(e) => write!(
                f,
                "the log's checkpoint does not verify with the log key: {e}"
            ),
            Failure::SavedCheckpoint(e) => write!(
                f,
                "the saved checkpoint does not verify with the log key: {e}"
            ),
            Failure::Origin { saved, current } => write!(
                f,
                "the saved checkpoint is of log `{saved}` but the checkpoint is of `{current}`; pass a checkpoint saved from this log"
            ),
            Failure::RolledBack { saved, current } => write!(
                f,
                "the saved checkpoint covers {saved} entries but the log's checkpoint only {current}; the log was truncated or rolled back (or the export predates the saved checkpoint), keep both as evidence"
            ),
            Failure::Missing { index } => {
                write!(f, "index {index} is missing (an entry was deleted)")
            }
            Failure::Truncated { index, size } => write!(
                f,
                "index {index} is missing: the entries stop at {index} but the checkpoint covers {size} (entries were deleted or the log was truncated)"
            ),
            Failure::Duplicate { index, after } => write!(
                f,
                "index {index} comes again after index {after} (entries are duplicated or out of order)"
            ),
            Failure::Beyond { index, size } => write!(
                f,
                "entry at index {index} is beyond the checkpoint's size {size}; the entries and the checkpoint do not belong together"
            ),
            Failure::NotJson { index } => write!(
                f,
                "entry at index {index} is not a JSON object (the entry was altered)"
            ),
            Failure::NoIndex { index } => write!(
                f,
                "entry at index {index} has no integer `index` field (the entry was altered)"
            ),
            Failure::WrongIndex { index, says } => write!(
                f,
                "entry at index {index} says it is index {says} (entries were reordered, or renumbered after a deletion)"
            ),
            Failure::BadStoredHash { index, value } => write!(
                f,
                "entry at index {index} has stored leaf hash `{}`, which is not 64 hex digits (the stored hash was altered)",
                value.chars().take(80).collect::<String>()
            ),
            Failure::LeafMismatch { index } => write!(
                f,
                "entry at index {index} does not match its stored leaf hash (the entry was altered)"
            ),
            Failure::SavedRoot { size } => write!(
                f,
                "the log's first {size} entries do not produce the saved checkpoint's root; history was rewritten, the first divergence from the saved checkpoint is at or before index {}",
                size.saturating_sub(1)
            ),
            Failure::Root {
                size,
                matched: Some(m),
            } => write!(
                f,
                "the log's entries do not produce the signed root of size {size}; entries 0..{m} match the saved checkpoint, so an entry in {m}..{size} was altered together with its stored leaf hash (the first divergence is at or after index {m})"
            ),
            Failure::Root {
                size,
                matched: None,
            } => write!(
                f,
                "the log's entries do not produce the signed root of size {size}; an entry was altered together with its stored leaf hash (the first divergence is at or before index {}; pass `--checkpoint` with an earlier saved checkpoint to narrow it)",
                size.saturating_sub(1)
            ),
        }
    }
}

impl std::error::Error for Failure {}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries checked (the checkpoint's size).
    pub entries: u64,
    pub checkpoint: Checkpoint,
    /// The saved checkpoint the log was shown to extend.
    pub saved: Option<Checkpoint>,
}

/// Checks a log's entries, given in index order, against a signed checkpoint and optionally a
/// checkpoint saved earlier. Feed entries with [`LogVerifier::push`], then call
/// [`LogVerifier::finish`]; the first failure names the first entry at fault.
#[derive(Debug)]
pub struct LogVerifier {
    checkpoint: Checkpoint,
    saved: Option<Checkpoint>,
    tree: Tree,
}

impl LogVerifier {
    /// Opens the checkpoint `note` (and `saved`, a note from an earlier run) with `vkey`.
    pub fn new(note: &str, vkey: &VerifierKey, saved: Option<&str>) -> Result<Self, Failure> {
        let checkpoint = open_note(note, vkey).map_err(|e| Failure::Checkpoint(e.to_string()))?;
        let saved = saved
            .map(|s| open_note(s, vkey).map_err(|e| Failure::SavedCheckpoint(e.to_string())))
            .transpose()?;
        if let Some(s) = &saved {
            if s.origin != checkpoint.origin {
                return Err(Failure::Origin {
                    saved: s.origin.clone(),
                    current: checkpoint.origin.clone(),
                });
            }
            if s.size > checkpoint.size {
                return Err(Failure::RolledBack {
                    saved: s.size,
                    current: checkpoint.size,
                });
            }
        }
        let verifier = LogVerifier {
            checkpoint,
            saved,
            tree: Tree::new(),
        };
        verifier.check_saved_prefix()?;
        Ok(verifier)
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Entries accepted so far (the index the next entry must have).
    pub fn verified(&self) -> u64 {
        self.tree.size()
    }

    /// Checks the next entry: `index` is its position as the source gives it, `entry` its exact
    /// bytes, `stored_leaf` the hex leaf hash stored beside it, if any.
    pub fn push(
        &mut self,
        index: u64,
        entry: &[u8],
        stored_leaf: Option<&str>,
    ) -> Result<(), Failure> {
        let next = self.tree.size();
        if index < next {
            return Err(Failure::Duplicate {
                index,
                after: next.saturating_sub(1),
            });
        }
        if next >= self.checkpoint.size {
            return Err(Failure::Beyond {
                index,
                size: self.checkpoint.size,
            });
        }
        if index > next {
            return Err(Failure::Missing { index: next });
        }
        #[derive(Deserialize)]
        struct Indexed {
            index: Option<serde_json::Value>,
        }
        let parsed: Indexed =
            serde_json::from_slice(entry).map_err(|_| Failure::NotJson { index })?;
        match parsed.index.as_ref().map(serde_json::Value::as_u64) {
            Some(Some(says)) if says == index => {}
            Some(Some(says)) => return Err(Failure::WrongIndex { index, says }),
            _ => return Err(Failure::NoIndex { index }),
        }
        let leaf = merkle::leaf_hash(entry);
        if let Some(stored) = stored_leaf {
            let stored_hash = decode_hash(stored).ok_or_else(|| Failure::BadStoredHash {
                index,
                value: stored.to_owned(),
            })?;
            if stored_hash != leaf {
                return Err(Failure::LeafMismatch { index });
            }
        }
        self.tree.push(leaf);
        self.check_saved_prefix()
    }

    /// When the tree has reached the saved checkpoint's size, its root must be the saved root.
    fn check_saved_prefix(&self) -> Result<(), Failure> {
        match &self.saved {
            Some(s) if s.size == self.tree.size() && s.root != self.tree.root() => {
                Err(Failure::SavedRoot { size: s.size })
            }
            _ => Ok(()),
        }
    }

    /// Checks that every entry up to the checkpoint came and that they produce its root.
    pub fn finish(self) -> Result<Verified, Failure> {
        let size = self.checkpoint.size;
        if self.tree.size() < size {
            return Err(Failure::Truncated {
                index: self.tree.size(),
                size,
            });
        }
        if self.tree.root() != self.checkpoint.root {
            return Err(Failure::Root {
                size,
                matched: self.saved.as_ref().map(|s| s.size),
            });
        }
        Ok(Verified {
            entries: self.tree.size(),
            checkpoint: self.checkpoint,
            saved: self.saved,
        })
    }
}

/// Verifies `entries` (in the order the source gives them) against the checkpoint `note`, and
/// against `saved`, a checkpoint note from an earlier run. The commands drive [`LogVerifier`]
/// directly, page by page or line by line, so a large log is never held in memory.
#[cfg(test)]
pub fn verify_log<'a>(
    entries: impl IntoIterator<Item = &'a LogEntry>,
    note: &str,
    vkey: &VerifierKey,
    saved: Option<&str>,
) -> Result<Verified, Failure> {
    let mut v = LogVerifier::new(note, vkey, saved)?;
    for e in entries {
        v.push(e.index, e.entry.as_bytes(), e.leaf_hash.as_deref())?;
    }
    v.finish()
}

fn decode_hash(s: &str) -> Option<Hash> {
    let bytes = hex::decode(s).ok()?;
    bytes.try_into().ok()
}

/// The verifier key given on the command line: the key itself, or a file holding it.
fn load_vkey(arg: &str) -> Result<VerifierKey> {
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the log key file `{}`", path.display()))?;
        return VerifierKey::parse(text.trim()).with_context(|| {
            format!(
                "`{}` does not hold a log verifier key; put the `log_key` printed by `signetd init` in it",
                path.display()
            )
        });
    }
    match VerifierKey::parse(arg.trim()) {
        Ok(key) => Ok(key),
        Err(e) if arg.contains('+') => Err(anyhow!("invalid `--log-key`: {e}")),
        Err(_) => bail!(
            "`--log-key` `{}` is neither a verifier key nor a file; pass the `log_key` printed by `signetd init` (`<origin>+<hash>+<key>`) or a file holding it",
            arg.chars().take(80).collect::<String>()
        ),
    }
}

fn read_note(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the saved checkpoint `{}`; pass a file written by `--save-checkpoint`",
            path.display()
        )
    })
}

fn failed(f: Failure) -> anyhow::Error {
    anyhow!("verification failed: {f}")
}

async fn verify(o: &Overrides, json: bool, args: VerifyArgs) -> Result<()> {
    let vkey = load_vkey(&args.log_key)?;
    let saved = args.checkpoint.as_deref().map(read_note).transpose()?;
    let (verified, note) = match &args.export {
        Some(path) => {
            let path = path.clone();
            let vkey = vkey.clone();
            tokio::task::spawn_blocking(move || verify_export_file(&path, &vkey, saved.as_deref()))
                .await
                .context("the verification task stopped")??
        }
        None => verify_live(o, &vkey, saved.as_deref()).await?,
    };
    if let Some(path) = &args.save_checkpoint {
        let tmp = tmp_path(path);
        std::fs::write(&tmp, &note)
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("cannot save the checkpoint to `{}`", path.display()))?;
    }
    let cp = &verified.checkpoint;
    if json {
        return print_json(&serde_json::json!({
            "verified": true,
            "entries": verified.entries,
            "size": cp.size,
            "origin": cp.origin,
            "root": hex::encode(cp.root),
            "saved_size": verified.saved.as_ref().map(|s| s.size),
        }));
    }
    println!(
        "verified {} entries up to checkpoint size {} (origin {})",
        verified.entries, cp.size, cp.origin
    );
    if let Some(s) = &verified.saved {
        println!("the log extends the saved checkpoint of size {}", s.size);
    }
    if let Some(path) = &args.save_checkpoint {
        eprintln!("saved the checkpoint to {}", path.display());
    }
    Ok(())
}

/// Verifies the live log: its latest checkpoint, every entry up to it and, with a saved
/// checkpoint, the server's consistency proof from it. Returns the checkpoint note.
async fn verify_live(
    o: &Overrides,
    vkey: &VerifierKey,
    saved: Option<&str>,
) -> Result<(Verified, String)> {
    let client = config::client(o)?;
    let note = client.log_checkpoint().await?;
    let mut v = LogVerifier::new(&note, vkey, saved).map_err(failed)?;
    let size = v.checkpoint().size;
    let bar = progress(size, "verified");
    let mut start = 0;
    while start < size {
        let end = size.min(start.saturating_add(ENTRY_PAGE));
        let page = client.log_entries(start, end).await?;
        for e in &page.entries {
            v.push(e.index, e.entry.as_bytes(), e.leaf_hash.as_deref())
                .map_err(|f| {
                    bar.finish_and_clear();
                    failed(f)
                })?;
        }
        bar.set_position(v.verified());
        start = end;
    }
    bar.finish_and_clear();
    let verified = v.finish().map_err(failed)?;
    if let Some(s) = &verified.saved {
        check_consistency(&client, s, &verified.checkpoint).await?;
    }
    Ok((verified, note))
}

/// Checks the server's consistency proof from the saved checkpoint to the current one: the
/// tree the server proves from is the one its entries make.
async fn check_consistency(
    client: &Client,
    saved: &Checkpoint,
    current: &Checkpoint,
) -> Result<()> {
    let proof = if saved.size == 0 || saved.size == current.size {
        Vec::new()
    } else {
        let p = client
            .consistency_proof(saved.size, Some(current.size))
            .await?;
        if p.from != saved.size || p.to != current.size {
            bail!(
                "verification failed: the server sent a consistency proof from {} to {}, not from {} to {} as asked",
                p.from,
                p.to,
                saved.size,
                current.size
            );
        }
        p.proof
            .iter()
            .map(|h| decode_hash(h))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                anyhow!("verification failed: the server's consistency proof holds a hash that is not 64 hex digits")
            })?
    };
    merkle::verify_consistency(saved.size, current.size, &saved.root, &current.root, &proof)
        .map_err(|e| {
            anyhow!(
                "verification failed: the server's consistency proof from size {} to {} does not verify: {e}",
                saved.size,
                current.size
            )
        })
}

fn verify_export_file(
    path: &Path,
    vkey: &VerifierKey,
    saved: Option<&str>,
) -> Result<(Verified, String)> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the export `{}`", path.display()))?;
    if !file.metadata()?.is_file() {
        bail!(
            "the export `{}` is not a regular file; it is read twice, so save it to a file first",
            path.display()
        );
    }
    verify_export(file, vkey, saved)
}

/// Verifies an export (entry lines, then one checkpoint line) read twice: first for its
/// checkpoint, then for its entries. Returns the checkpoint note.
fn verify_export<R: Read + Seek>(
    mut input: R,
    vkey: &VerifierKey,
    saved: Option<&str>,
) -> Result<(Verified, String)> {
    let (lines, last) = {
        let mut reader = BufReader::with_capacity(1 << 20, &mut input);
        let mut count = 0u64;
        let mut last = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                break;
            }
            if !line.trim().is_empty() {
                count += 1;
                std::mem::swap(&mut last, &mut line);
            }
        }
        (count, last)
    };
    let note = match serde_json::from_str::<CheckpointLine>(last.trim()) {
        Ok(l) => l.checkpoint,
        Err(_) => bail!(
            "the export's last line is not `{{\"checkpoint\": …}}`; the export is incomplete, export again with `signet audit export`"
        ),
    };
    let mut v = LogVerifier::new(&note, vkey, saved).map_err(failed)?;
    let bar = progress(v.checkpoint().size, "verified");
    input.rewind()?;
    let reader = BufReader::with_capacity(1 << 20, input);
    let mut seen = 0u64;
    for (n, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        seen += 1;
        if seen == lines {
            break;
        }
        let lineno = n + 1;
        let e = match serde_json::from_str::<LogEntry>(&line) {
            Ok(e) => e,
            Err(_) if serde_json::from_str::<CheckpointLine>(&line).is_ok() => bail!(
                "line {lineno} of the export is a checkpoint before the end; an export holds one checkpoint, on its last line"
            ),
            Err(e) => bail!(
                "line {lineno} of the export is neither an entry nor the checkpoint ({e}); is this a `signet audit export` file?"
            ),
        };
        if seen == 1 && e.index > 0 {
            bar.finish_and_clear();
            bail!(
                "verification failed: index 0 is missing: the export starts at index {} (made with `--start`? `verify --export` needs a full export)",
                e.index
            );
        }
        v.push(e.index, e.entry.as_bytes(), e.leaf_hash.as_deref())
            .map_err(|f| {
                bar.finish_and_clear();
                failed(f)
            })?;
        if v.verified().is_multiple_of(ENTRY_PAGE) {
            bar.set_position(v.verified());
        }
    }
    bar.finish_and_clear();
    let verified = v.finish().map_err(failed)?;
    Ok((verified, note))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::io::Cursor;

    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use signet_formats::checkpoint::sign_note;

    use super::*;

    const ORIGIN: &str = "signet.test/audit";

    struct LogKey {
        pair: Ed25519KeyPair,
    }

    impl LogKey {
        fn generate() -> LogKey {
            LogKey {
                pair: Ed25519KeyPair::generate().unwrap(),
            }
        }

        fn public(&self) -> [u8; 32] {
            self.pair.public_key().as_ref().try_into().unwrap()
        }

        fn vkey(&self) -> VerifierKey {
            VerifierKey::new(ORIGIN, self.public()).unwrap()
        }

        /// A signed checkpoint over the leaves of `entries[..size]` as they are now.
        fn checkpoint(&self, entries: &[LogEntry], size: usize) -> String {
            let leaves: Vec<Hash> = entries[..size]
                .iter()
                .map(|e| merkle::leaf_hash(e.entry.as_bytes()))
                .collect();
            let body = Checkpoint {
                origin: ORIGIN.into(),
                size: size as u64,
                root: merkle::root(&leaves),
            }
            .to_body()
            .unwrap();
            sign_note(
                &body,
                ORIGIN,
                |msg| {
                    Ok::<_, aws_lc_rs::error::Unspecified>(
                        self.pair.sign(msg).as_ref().try_into().unwrap(),
                    )
                },
                &self.public(),
            )
            .unwrap()
        }
    }

    /// Entry `i` in the canonical shape: sorted keys, its own index.
    fn entry_bytes(i: u64, action: &str) -> String {
        format!(
            r#"{{"action":"{action}","actor":{{"id":"abc","kind":"service_account","name":"ci","role":"signer"}},"index":{i},"node":"n1","outcome":{{"result":"allowed"}},"time":"2026-11-23T12:00:00Z"}}"#
        )
    }

    fn log(n: u64) -> Vec<LogEntry> {
        (0..n)
            .map(|i| {
                let entry = entry_bytes(i, "sign");
                LogEntry {
                    index: i,
                    leaf_hash: Some(hex::encode(merkle::leaf_hash(entry.as_bytes()))),
                    entry,
                }
            })
            .collect()
    }

    fn failure(r: Result<Verified, Failure>) -> Failure {
        match r {
            Ok(v) => panic!("verified, but should not have: {v:?}"),
            Err(f) => f,
        }
    }

    #[test]
    fn an_intact_log_verifies() {
        let key = LogKey::generate();
        let entries = log(10);
        let note = key.checkpoint(&entries, 10);
        let v = verify_log(&entries, &note, &key.vkey(), None).unwrap();
        assert_eq!(v.entries, 10);
        assert_eq!(v.checkpoint.size, 10);
        assert_eq!(v.checkpoint.origin, ORIGIN);
    }

    #[test]
    fn an_empty_log_verifies() {
        let key = LogKey::generate();
        let note = key.checkpoint(&[], 0);
        let v = verify_log(&[], &note, &key.vkey(), Some(&note)).unwrap();
        assert_eq!(v.entries, 0);
    }

    #[test]
    fn entries_without_stored_leaf_hashes_verify() {
        let key = LogKey::generate();
        let mut entries = log(5);
        for e in &mut entries {
            e.leaf_hash = None;
        }
        let note = key.checkpoint(&entries, 5);
        assert!(verify_log(&entries, &note, &key.vkey(), None).is_ok());
    }

    #[test]
    fn an_edited_entry_is_named() {
        let key = LogKey::generate();
        let mut entries = log(10);
        let note = key.checkpoint(&entries, 10);
        entries[7].entry = entries[7].entry.replace("sign", "key_create");
        let f = failure(verify_log(&entries, &note, &key.vkey(), None));
        assert_eq!(f, Failure::LeafMismatch { index: 7 });
        assert_eq!(
            f.to_string(),
            "entry at index 7 does not match its stored leaf hash (the entry was altered)"
        );
    }

    #[test]
    fn an_edit_with_a_rewritten_leaf_hash_breaks_the_root() {
        let key = LogKey::generate();
        let mut entries = log(10);
        let saved = key.checkpoint(&entries, 5);
        let note = key.checkpoint(&entries, 10);
        entries[7].entry = entries[7].entry.replace("sign", "key_create");
        entries[7].leaf_hash = Some(hex::encode(merkle::leaf_hash(entries[7].entry.as_bytes())));
        let f = failure(verify_log(&entries, &note, &key.vkey(), None));
        assert_eq!(
            f,
            Failure::Root {
                size: 10,
                matched: None
            }
        );
        assert!(f.to_string().contains("at or before index 9"), "{f}");
        // The saved checkpoint of size 5 narrows it to 5..10.
        let f = failure(verify_log(&entries, &note, &key.vkey(), Some(&saved)));
        assert_eq!(
            f,
            Failure::Root {
                size: 10,
                matched: Some(5)
            }
        );
        assert!(f.to_string().contains("at or after index 5"), "{f}");
    }

    #[test]
    fn history_rewritten_before_the_saved_checkpoint_is_found_there() {
        let key = LogKey::generate();
        let mut entries = log(10);
        let saved = key.checkpoint(&entries, 6);
        entries[3].entry = entries[3].entry.replace("sign", "key_rotate");
        entries[3].leaf_hash = Some(hex::encode(merkle::leaf_hash(entries[3].entry.as_bytes())));
        // An attacker holding the log key re-signs the edited log: only the saved checkpoint,
        // kept elsewhere, shows the rewrite.
        let note = key.checkpoint(&entries, 10);
        let f = failure(verify_log(&entries, &note, &key.vkey(), Some(&saved)));
        assert_eq!(f, Failure::SavedRoot { size: 6 });
        assert!(f.to_string().contains("at or before index 5"), "{f}");
    }

    #[test]
    fn a_deleted_entry_is_named() {
        let key = LogKey::generate();
        let mut entries = log(10);
        let note = key.checkpoint(&entries, 10);
        entries.remove(7);
        let f = failure(verify_log(&entries, &note, &key.vkey(), None));
        assert_eq!(f, Failure::Missing { index: 7 });
        assert_eq!(f.to_string(), "index 7 is missing (an entry was deleted)");
    }

    #[test]
    fn a_deletion_hidden_by_renumbering_is_named() {
        let key = LogKey::generate();
        let mut entries = log(10);
        let note = key.checkpoint(&entries, 10);
        entries.remove(7);
        for (i, e) in entries.iter_mut().enumerate() {
            e.index = i as u64;
        }
        let f = failure(verify_log(&entries, &note, &key.vkey(), None));
        assert_eq!(f, Failure::WrongIndex { index: 7, says: 8 });
    }

    #[test]
    fn reordered_entries_are_named() {
        let key = LogKey::generate();
        let mut entries = log(10);
        let note = key.checkpoint(&entries, 10);
        // Swap the contents (and stored hashes) of rows 7 and 9; the row indices stay.
        let (e7, e9) = (entries[7].clone(), entries[9].clone());
        entries[7] = LogEntry { index: 7, ..e9 };
        entries[9] = LogEntry { index: 9, ..e7 };
        let f = failure(verify_log(&entries, &note, &key.vkey(), None));
        assert_eq!(f, Failure::WrongIndex { index: 7, says: 9 });
        assert_eq!(
            f.to_string(),
            "entry at index 7 says it is index 9 (entries were reordered, or renumbered after a deletion)"
        );
    }

    #[test]
    fn a_truncated_log_is_named() {
        let key = LogKey::generate();
        let mut entries = log(10);
        let note = key.checkpoint(&entries, 10);
        entries.truncate(7);
        let f = failure(verify_log(&entries, &note, &key.vkey(), None));
        assert_eq!(f, Failure::Truncated { index: 7, size: 10 });
        assert_eq!(f.index(), Some(7));
    }

    #[test]
    fn a_rollback_to_an_older_signed_checkpoint_is_caught_by_the_saved_one() {
        let key = LogKey::generate();
        let mut entries = log(10);
        let saved = key.checkpoint(&entries, 10);
        // Restored from an old backup: entries and checkpoint of size 7, all authentic.
        let old = key.checkpoint(&entries, 7);
        entries.truncate(7);
        assert!(verify_log(&entries, &old, &key.vkey(), None).is_ok());
        let f = failure(verify_log(&entries, &old, &key.vkey(), Some(&saved)));
        assert_eq!(
            f,
            Failure::RolledBack {
                saved: 10,
                current: 7
            }
        );
    }

    #[test]
    fn a_saved_checkpoint_that_the_log_extends_verifies() {
        let key = LogKey::generate();
        let entries = log(10);
        let saved = key.checkpoint(&entries, 4);
        let note = key.checkpoint(&entries, 10);
        let v = verify_log(&entries, &note, &key.vkey(), Some(&saved)).unwrap();
        assert_eq!(v.saved.map(|s| s.size), Some(4));
    }

    #[test]
    fn duplicated_and_extra_entries_are_named() {
        let key = LogKey::generate();
        let mut entries = log(10);
        let note = key.checkpoint(&entries, 10);
        let mut dup = entries.clone();
        dup.insert(5, dup[4].clone());
        let f = failure(verify_log(&dup, &note, &key.vkey(), None));
        assert_eq!(f, Failure::Duplicate { index: 4, after: 4 });
        entries.extend(log(11).pop());
        let f = failure(verify_log(&entries, &note, &key.vkey(), None));
        assert_eq!(
            f,
            Failure::Beyond {
                index: 10,
                size: 10
            }
        );
    }

    #[test]
    fn malformed_entries_and_hashes_are_named() {
        let key = LogKey::generate();
        let entries = log(4);
        let note = key.checkpoint(&entries, 4);
        let with = |i: usize, f: &dyn Fn(&mut LogEntry)| {
            let mut es = entries.clone();
            f(&mut es[i]);
            failure(verify_log(&es, &note, &key.vkey(), None))
        };
        assert_eq!(
            with(2, &|e| e.entry = "not json".into()),
            Failure::NotJson { index: 2 }
        );
        assert_eq!(
            with(2, &|e| e.entry = r#"{"action":"sign"}"#.into()),
            Failure::NoIndex { index: 2 }
        );
        assert_eq!(
            with(2, &|e| e.entry = r#"{"index":"2"}"#.into()),
            Failure::NoIndex { index: 2 }
        );
        assert_eq!(
            with(1, &|e| e.leaf_hash = Some("zz".into())),
            Failure::BadStoredHash {
                index: 1,
                value: "zz".into()
            }
        );
    }

    #[test]
    fn checkpoints_must_open_with_the_log_key() {
        let key = LogKey::generate();
        let other = LogKey::generate();
        let entries = log(3);
        let note = key.checkpoint(&entries, 3);
        let f = failure(verify_log(&entries, &note, &other.vkey(), None));
        assert!(matches!(f, Failure::Checkpoint(_)), "{f:?}");
        let forged = note.replacen("\n3\n", "\n2\n", 1);
        let f = failure(verify_log(&entries, &forged, &key.vkey(), None));
        assert!(matches!(f, Failure::Checkpoint(_)), "{f:?}");
        let saved = other.checkpoint(&entries, 2);
        let f = failure(verify_log(&entries, &note, &key.vkey(), Some(&saved)));
        assert!(matches!(f, Failure::SavedCheckpoint(_)), "{f:?}");
    }

    fn export_of(entries: &[LogEntry], note: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut out, e).unwrap();
            out.push(b'\n');
        }
        serde_json::to_writer(
            &mut out,
            &CheckpointLine {
                checkpoint: note.to_owned(),
            },
        )
        .unwrap();
        out.push(b'\n');
        out
    }

    #[test]
    fn export_lines_have_the_documented_shape() {
        let e = LogEntry {
            index: 3,
            entry: r#"{"index":3}"#.into(),
            leaf_hash: None,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"index":3,"entry":"{\"index\":3}","leaf_hash":null}"#
        );
    }

    #[test]
    fn an_export_round_trips_and_tampering_is_found() {
        let key = LogKey::generate();
        let mut entries = log(2500);
        let note = key.checkpoint(&entries, 2500);
        let (v, got) =
            verify_export(Cursor::new(export_of(&entries, &note)), &key.vkey(), None).unwrap();
        assert_eq!(v.entries, 2500);
        assert_eq!(got, note);

        entries[1234].entry = entries[1234].entry.replace("sign", "token_create");
        let e =
            verify_export(Cursor::new(export_of(&entries, &note)), &key.vkey(), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "verification failed: entry at index 1234 does not match its stored leaf hash (the entry was altered)"
        );
    }

    #[test]
    fn an_incomplete_or_partial_export_is_refused() {
        let key = LogKey::generate();
        let entries = log(5);
        let note = key.checkpoint(&entries, 5);
        let full = export_of(&entries, &note);
        let without_checkpoint: Vec<u8> = {
            let text = String::from_utf8(full.clone()).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            (lines[..lines.len() - 1].join("\n") + "\n").into_bytes()
        };
        let e = verify_export(Cursor::new(without_checkpoint), &key.vkey(), None).unwrap_err();
        assert!(e.to_string().contains("incomplete"), "{e}");
        let partial = export_of(&entries[2..], &note);
        let e = verify_export(Cursor::new(partial), &key.vkey(), None).unwrap_err();
        assert!(
            e.to_string().contains("the export starts at index 2"),
            "{e}"
        );
    }

    #[test]
    fn the_log_key_is_a_vkey_or_a_file() {
        let key = LogKey::generate();
        let vkey = key.vkey().to_string();
        assert_eq!(load_vkey(&vkey).unwrap(), key.vkey());
        let path = std::env::temp_dir().join(format!("signet-vkey-{}", std::process::id()));
        std::fs::write(&path, format!("{vkey}\n")).unwrap();
        let loaded = load_vkey(path.to_str().unwrap());
        let _ = std::fs::remove_file(&path);
        assert_eq!(loaded.unwrap(), key.vkey());
        let e = load_vkey("nonsense").unwrap_err();
        assert!(format!("{e:#}").contains("neither a verifier key nor a file"));
    }

    #[test]
    fn times_accept_rfc3339_dates_and_ages() {
        assert_eq!(
            parse_time("2026-11-23T12:00:00+01:00").unwrap(),
            "2026-11-23T12:00:00+01:00"
        );
        assert_eq!(parse_time("2026-11-23").unwrap(), "2026-11-23T00:00:00Z");
        assert!(parse_time("24h").is_ok());
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn records_print_as_one_line() {
        let r = AuditRecord {
            index: 7,
            event: serde_json::json!({
                "time": "2026-11-23T12:00:00Z",
                "action": "sign",
                "actor": {"id": "0123", "name": "ci-release", "kind": "service_account", "role": "signer"},
                "key": {"name": "release", "version": 2, "algorithm": "ed25519"},
                "digest": {"algorithm": "sha256", "value": "ab"},
                "outcome": {"result": "denied", "code": "policy_denied", "reason": "no"},
                "node": "n",
            }),
        };
        assert_eq!(
            record_line(&r),
            "7\t2026-11-23T12:00:00Z\tsign\tci-release (0123)\trelease@2\tsha256:ab\tdenied (policy_denied)"
        );
    }
}
