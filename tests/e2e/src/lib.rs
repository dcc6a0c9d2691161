//! End-to-end test harness: runs the real `signetd` binary in a temporary data directory, talks
//! to it over HTTPS with a client that trusts only the server's own certificate, and checks
//! signatures with the real `openssl` command.
//!
//! Binaries are found in `SIGNET_BIN_DIR` if set, else next to the test executable's parent
//! (`target/debug/deps/..` → `target/debug`); build them first with `cargo build -p signet-server`.
//!
//! Every wait here is bounded: a server that never binds, never answers or never exits makes a
//! test fail with its log, not hang.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use reqwest::blocking::Client;
use reqwest::header::HeaderMap;
use serde_json::Value;
use sha2::Digest as _;
use tempfile::TempDir;

pub use serde_json::json;

pub mod tlog;

/// `Content-Type` of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Every key algorithm with the digest algorithms it accepts.
pub const ALGORITHMS: [(&str, &[&str]); 7] = [
    ("ed25519", &["sha256", "sha384", "sha512"]),
    ("ecdsa-p256", &["sha256"]),
    ("ecdsa-p384", &["sha384"]),
    ("rsa-3072-pss", &["sha256", "sha384", "sha512"]),
    ("rsa-3072-pkcs1", &["sha256", "sha384", "sha512"]),
    ("rsa-4096-pss", &["sha256", "sha384", "sha512"]),
    ("rsa-4096-pkcs1", &["sha256", "sha384", "sha512"]),
];

/// How long a server may take to bind, to exit after SIGTERM, and a command to finish.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

// ---- binaries and processes -----------------------------------------------------------------

/// The directory holding `signetd` (and later `signet`).
pub fn bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("SIGNET_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().context("cannot locate the test executable")?;
    // target/debug/deps/<test> → target/debug
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .context("test executable has no grandparent directory; set SIGNET_BIN_DIR")
}

/// Path to a binary in [`bin_dir`], checked to exist.
pub fn bin(name: &str) -> Result<PathBuf> {
    let path = bin_dir()?.join(name);
    ensure!(
        path.is_file(),
        "`{}` not found; build it first (`cargo build -p signet-server`) or set SIGNET_BIN_DIR",
        path.display()
    );
    Ok(path)
}

/// A `signetd` command with no inherited `SIGNET_*` settings.
pub fn signetd() -> Result<Command> {
    let mut cmd = Command::new(bin("signetd")?);
    for var in [
        "SIGNET_LISTEN",
        "SIGNET_NODE",
        "SIGNET_MAX_BODY_BYTES",
        "SIGNET_DATA_DIR",
        "SIGNET_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    Ok(cmd)
}

/// Sends `signal` (e.g. `TERM`, `KILL`) to a process with `kill(1)`.
pub fn send_signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .context("cannot run `kill`")?;
    ensure!(status.success(), "`kill -{signal} {pid}` failed: {status}");
    Ok(())
}

/// Waits for a child to exit, at most `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command to completion with captured output, killing it after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    run_with_input(cmd, None, timeout)
}

/// Like [`run_with_timeout`], with `input` (when given) written to the command's stdin, which
/// is then closed.
pub fn run_with_input(
    cmd: &mut Command,
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output> {
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let feeder = match (input, child.stdin.take()) {
        (Some(bytes), Some(mut stdin)) => {
            let bytes = bytes.to_vec();
            // A thread, so a child that never reads cannot block us past the timeout.
            Some(thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            }))
        }
        _ => None,
    };
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = match wait_timeout(&mut child, timeout)? {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{cmd:?} did not finish within {timeout:?}");
        }
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        buf
    })
}

// ---- the server -----------------------------------------------------------------------------

/// What `signetd init --json` prints.
#[derive(Debug, Clone)]
pub struct InitOutput {
    pub url: String,
    pub admin_token: String,
    pub ca_cert: PathBuf,
    pub data_dir: PathBuf,
    /// The audit log's C2SP verifier key (`origin+hash+base64key`), when `init` printed one.
    pub log_key: Option<String>,
    /// Shamir custody: the key-encryption key shares, printed once.
    pub shares: Vec<String>,
    /// The whole JSON line.
    pub raw: String,
    pub stderr: String,
}

/// Runs `signetd init --json --listen 127.0.0.1:0 --dev` on `data_dir` (dev custody: the
/// server starts unsealed).
pub fn init_data_dir(data_dir: &Path) -> Result<InitOutput> {
    init_data_dir_with(data_dir, &["--dev"])
}

/// Runs `signetd init --json --listen 127.0.0.1:0` with `extra` arguments, e.g.
/// `["--shares", "3", "--threshold", "2"]`.
pub fn init_data_dir_with(data_dir: &Path, extra: &[&str]) -> Result<InitOutput> {
    init_data_dir_env(data_dir, extra, &[])
}

/// [`init_data_dir_with`], with extra environment for `signetd init` (e.g. `SOFTHSM2_CONF`).
pub fn init_data_dir_env(
    data_dir: &Path,
    extra: &[&str],
    env: &[(String, String)],
) -> Result<InitOutput> {
    let mut cmd = signetd()?;
    cmd.arg("init")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0", "--json"])
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_with_timeout(&mut cmd, COMMAND_TIMEOUT)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(
        out.status.success(),
        "signetd init failed ({}):\n{stderr}",
        out.status
    );
    let line = stdout.trim();
    ensure!(
        line.lines().count() == 1,
        "init --json printed more than one line: {line}"
    );
    let v: Value = serde_json::from_str(line)
        .with_context(|| format!("init --json printed non-JSON: {line}"))?;
    let field = |name: &str| -> Result<String> {
        v.get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("init --json has no string `{name}`: {line}"))
    };
    Ok(InitOutput {
        url: field("url")?,
        admin_token: field("admin_token")?,
        ca_cert: PathBuf::from(field("ca_cert")?),
        data_dir: PathBuf::from(field("data_dir")?),
        log_key: v.get("log_key").and_then(Value::as_str).map(str::to_owned),
        shares: v
            .get("shares")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        raw: line.to_owned(),
        stderr,
    })
}

/// How to start `signetd serve`.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Extra environment, e.g. `SIGNET_LOG=debug`.
    pub env: Vec<(String, String)>,
    /// Serve plain HTTP on loopback.
    pub insecure_http: bool,
    /// `Some((threshold, shares))`: production custody — the KEK is split into shares and the
    /// server starts sealed. `None` (default): dev custody (`--dev`), unsealed at start.
    pub shamir: Option<(u8, u8)>,
    /// Custom `signetd init` arguments (e.g. PKCS#11 auto-unseal); `serve` then runs without
    /// `--dev`. `init` gets `env` too.
    pub init_args: Option<Vec<String>>,
}

/// A running `signetd serve` on its own temporary data directory. Dropping it sends SIGTERM and
/// waits (then SIGKILL if it will not exit).
pub struct Server {
    root: TempDir,
    data_dir: PathBuf,
    ca_cert: PathBuf,
    admin_token: String,
    log_key: Option<String>,
    shares: Vec<String>,
    base_url: String,
    options: ServeOptions,
    child: Option<Child>,
    starts: u32,
    client: Client,
}

impl Server {
    /// Initializes a new data directory and serves it over HTTPS.
    pub fn start() -> Result<Server> {
        Server::start_with(ServeOptions::default())
    }

    pub fn start_with(options: ServeOptions) -> Result<Server> {
        let root = tempfile::Builder::new().prefix("signet-e2e-").tempdir()?;
        std::fs::create_dir(root.path().join("logs"))?;
        let data = root.path().join("data");
        let init = match (&options.init_args, options.shamir) {
            (Some(args), _) => {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                init_data_dir_env(&data, &args, &options.env)?
            }
            (None, None) => init_data_dir(&data)?,
            (None, Some((threshold, shares))) => init_data_dir_with(
                &data,
                &[
                    "--threshold",
                    &threshold.to_string(),
                    "--shares",
                    &shares.to_string(),
                ],
            )?,
        };
        // init's own log is kept with the others, so secret scans cover it.
        std::fs::write(root.path().join("logs").join("init.log"), &init.stderr)?;
        let pem = std::fs::read(&init.ca_cert)
            .with_context(|| format!("cannot read `{}`", init.ca_cert.display()))?;
        let client = client_trusting(&pem)?;
        let mut server = Server {
            data_dir: init.data_dir,
            ca_cert: init.ca_cert,
            admin_token: init.admin_token,
            log_key: init.log_key,
            shares: init.shares,
            base_url: String::new(),
            options,
            child: None,
            starts: 0,
            client,
            root,
        };
        server.start_serving()?;
        Ok(server)
    }

    /// Starts `signetd serve` on this data directory (which must not be running).
    pub fn start_serving(&mut self) -> Result<()> {
        ensure!(self.child.is_none(), "server is already running");
        self.starts += 1;
        let log_path = self.log_dir().join(format!("serve-{}.log", self.starts));
        let log = File::create(&log_path)?;
        let mut cmd = signetd()?;
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen", "127.0.0.1:0"]);
        if self.options.insecure_http {
            cmd.arg("--insecure-http");
        }
        if self.options.shamir.is_none() && self.options.init_args.is_none() {
            cmd.arg("--dev");
        }
        for (k, v) in &self.options.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .context("cannot start signetd serve")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Keep draining so the server never blocks on a full pipe.
                    continue;
                }
            }
        });
        self.child = Some(child);
        let url = match wait_for_listening(&rx) {
            Ok(url) => url,
            Err(e) => {
                let _ = self.kill9();
                bail!(
                    "{e:#}\n--- server log ---\n{}",
                    self.logs().unwrap_or_default()
                );
            }
        };
        self.base_url = url;
        self.wait_healthy()
    }

    /// Polls `/healthz` until it answers 200 (at most 200 × 50 ms).
    fn wait_healthy(&self) -> Result<()> {
        let mut last = String::new();
        for _ in 0..200 {
            match self.client.get(self.url("/healthz")).send() {
                Ok(r) if r.status().as_u16() == 200 => return Ok(()),
                Ok(r) => last = format!("status {}", r.status()),
                Err(e) => last = format!("{e:#}"),
            }
            thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "server at {} never became healthy (last: {last})\n--- server log ---\n{}",
            self.base_url,
            self.logs().unwrap_or_default()
        )
    }

    /// SIGTERM, then waits for the exit (bounded). Returns the exit status.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        let mut child = self.child.take().context("server is not running")?;
        send_signal(child.id(), "TERM")?;
        match wait_timeout(&mut child, STOP_TIMEOUT)? {
            Some(status) => Ok(status),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("signetd did not exit within {STOP_TIMEOUT:?} of SIGTERM")
            }
        }
    }

    /// Stops gracefully (which must succeed) and serves the same data directory again. The port
    /// may change; [`Server::url`] follows it.
    pub fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            let status = self.stop()?;
            ensure!(
                status.success(),
                "signetd exited with {status} on SIGTERM\n--- server log ---\n{}",
                self.logs().unwrap_or_default()
            );
        }
        self.start_serving()
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), "KILL")?;
            child.wait()?;
        }
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> Result<bool> {
        match self.child.as_mut() {
            None => Ok(false),
            Some(c) => Ok(c.try_wait()?.is_none()),
        }
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The audit log's verifier key as `signetd init --json` printed it (`log_key`).
    pub fn log_key(&self) -> Option<&str> {
        self.log_key.as_deref()
    }

    /// The key-encryption key shares `init` printed (shamir custody only).
    pub fn shares(&self) -> &[String] {
        &self.shares
    }

    /// The SQLite database of this data directory (the default `store.sqlite`, `signet.db`).
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("signet.db")
    }

    /// Runs `signetd serve` on this data directory (which must not be running) expecting it to
    /// exit on its own, e.g. because it refuses the data; returns its output. Fails if it is
    /// still running after `timeout` (it is then killed). Its stderr is kept with the logs.
    pub fn serve_expecting_exit(&mut self, timeout: Duration) -> Result<Output> {
        ensure!(self.child.is_none(), "server is already running");
        self.starts += 1;
        let mut cmd = signetd()?;
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen", "127.0.0.1:0"]);
        if self.options.insecure_http {
            cmd.arg("--insecure-http");
        }
        if self.options.shamir.is_none() && self.options.init_args.is_none() {
            cmd.arg("--dev");
        }
        for (k, v) in &self.options.env {
            cmd.env(k, v);
        }
        let out = run_with_timeout(&mut cmd, timeout)
            .context("signetd serve was expected to exit by itself but kept running")?;
        let log_path = self.log_dir().join(format!("serve-{}.log", self.starts));
        std::fs::write(&log_path, &out.stderr)?;
        Ok(out)
    }

    pub fn ca_cert(&self) -> &Path {
        &self.ca_cert
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A scratch directory for test files (outside the data directory).
    pub fn scratch(&self) -> Result<PathBuf> {
        let dir = self.root.path().join("scratch");
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// An empty directory for `XDG_CONFIG_HOME` of `signet` commands (new on each call), so
    /// no test ever reads or writes the real user's config.
    pub fn config_home(&self) -> Result<PathBuf> {
        let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = self.root.path().join(format!("xdg-config-{n}"));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// A `signet` command configured for this server by environment (`SIGNET_URL`,
    /// `SIGNET_CA`, and `SIGNET_TOKEN` when `token` is given), with an empty config directory
    /// and the scratch directory as working directory.
    pub fn signet_command(&self, token: Option<&str>) -> Result<Command> {
        let mut cmd = signet(&self.config_home()?)?;
        cmd.env("SIGNET_URL", &self.base_url)
            .env("SIGNET_CA", &self.ca_cert)
            .current_dir(self.scratch()?);
        if let Some(t) = token {
            cmd.env("SIGNET_TOKEN", t);
        }
        Ok(cmd)
    }

    /// Runs `signet ARGS` as the admin.
    pub fn signet<I, S>(&self, args: I) -> Result<CliOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.signet_as(&self.admin_token, args)
    }

    /// Runs `signet ARGS` with `token` in `SIGNET_TOKEN`.
    pub fn signet_as<I, S>(&self, token: &str, args: I) -> Result<CliOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.signet_command(Some(token))?;
        cmd.args(args);
        run_cli(&mut cmd, None)
    }

    fn log_dir(&self) -> PathBuf {
        self.root.path().join("logs")
    }

    /// Everything the server wrote to stderr, over all its runs, plus `init`'s log.
    pub fn logs(&self) -> Result<String> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.log_dir())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        let mut all = String::new();
        for n in names {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(&n)?));
        }
        Ok(all)
    }

    /// Every regular file under the data directory, recursively.
    pub fn data_files(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut stack = vec![self.data_dir.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let ty = entry.file_type()?;
                if ty.is_dir() {
                    stack.push(entry.path());
                } else if ty.is_file() {
                    out.push(entry.path());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    // ---- HTTP ---------------------------------------------------------------------------------

    /// Sends a request and reads the whole response.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Response> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req
            .send()
            .with_context(|| format!("request to {path} failed"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text()?;
        Ok(Response {
            status,
            headers,
            text,
        })
    }

    pub fn get_resp(&self, path: &str, token: Option<&str>) -> Result<Response> {
        self.request("GET", path, token, None, None)
    }

    pub fn post_resp(&self, path: &str, token: Option<&str>, body: &Value) -> Result<Response> {
        self.request(
            "POST",
            path,
            token,
            Some("application/json"),
            Some(serde_json::to_vec(body)?),
        )
    }

    /// `GET`: status and JSON body (`null` when the body is empty or not JSON).
    pub fn get(&self, path: &str, token: Option<&str>) -> Result<(u16, Value)> {
        let r = self.get_resp(path, token)?;
        Ok((r.status, r.json_or_null()))
    }

    /// `POST` a JSON body: status and JSON body (`null` when the body is empty or not JSON).
    pub fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Result<(u16, Value)> {
        let r = self.post_resp(path, token, body)?;
        Ok((r.status, r.json_or_null()))
    }

    // ---- API shortcuts (admin token; fail on any non-success) ---------------------------------

    fn admin_ok(&self, method: &str, path: &str, body: Option<&Value>, want: u16) -> Result<Value> {
        let r = match body {
            Some(b) => self.request(
                method,
                path,
                Some(&self.admin_token),
                Some("application/json"),
                Some(serde_json::to_vec(b)?),
            )?,
            None => self.request(method, path, Some(&self.admin_token), None, None)?,
        };
        ensure!(
            r.status == want,
            "{method} {path}: expected {want}, got {}: {}",
            r.status,
            r.text
        );
        Ok(r.json_or_null())
    }

    /// Creates a key; returns its `KeyInfo`.
    pub fn create_key(&self, name: &str, algorithm: &str) -> Result<Value> {
        self.admin_ok(
            "POST",
            "/api/v1/keys",
            Some(&json!({"name": name, "algorithm": algorithm})),
            201,
        )
    }

    pub fn key_info(&self, name: &str) -> Result<Value> {
        self.admin_ok("GET", &format!("/api/v1/keys/{name}"), None, 200)
    }

    /// The names of all keys, sorted.
    pub fn key_names(&self) -> Result<Vec<String>> {
        let v = self.admin_ok("GET", "/api/v1/keys", None, 200)?;
        let mut names: Vec<String> = v["keys"]
            .as_array()
            .context("`keys` is not an array")?
            .iter()
            .filter_map(|k| k["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    pub fn key_action(&self, name: &str, action: &str) -> Result<Value> {
        self.admin_ok("POST", &format!("/api/v1/keys/{name}/{action}"), None, 200)
    }

    /// The public key PEM and fingerprint of one version of a key.
    pub fn public_key(&self, name: &str, version: u64) -> Result<(String, String)> {
        let info = self.key_info(name)?;
        let v = info["versions"]
            .as_array()
            .context("`versions` is not an array")?
            .iter()
            .find(|v| v["version"].as_u64() == Some(version))
            .with_context(|| format!("key `{name}` has no version {version}: {info}"))?;
        Ok((
            v["public_key_pem"]
                .as_str()
                .context("no public_key_pem")?
                .to_owned(),
            v["fingerprint"]
                .as_str()
                .context("no fingerprint")?
                .to_owned(),
        ))
    }

    /// Signs a digest (hex) with the admin token; returns the `SignResponse`.
    pub fn sign(&self, key: &str, digest_algorithm: &str, digest_hex: &str) -> Result<Value> {
        self.sign_as(&self.admin_token, key, digest_algorithm, digest_hex)
    }

    pub fn sign_as(
        &self,
        token: &str,
        key: &str,
        digest_algorithm: &str,
        digest_hex: &str,
    ) -> Result<Value> {
        let r = self.post_resp(
            "/api/v1/sign",
            Some(token),
            &json!({"key": key, "digest_algorithm": digest_algorithm, "digest": digest_hex}),
        )?;
        ensure!(r.status == 200, "sign failed: {} {}", r.status, r.text);
        r.json()
    }

    /// Creates a token; returns `(id, secret)`.
    pub fn create_token(
        &self,
        name: &str,
        role: &str,
        expires_at: Option<&str>,
    ) -> Result<(String, String)> {
        let mut body = json!({"name": name, "role": role});
        if let Some(e) = expires_at {
            body["expires_at"] = json!(e);
        }
        let v = self.admin_ok("POST", "/api/v1/tokens", Some(&body), 201)?;
        Ok((
            v["info"]["id"].as_str().context("no info.id")?.to_owned(),
            v["token"].as_str().context("no token")?.to_owned(),
        ))
    }

    pub fn revoke_token(&self, id: &str) -> Result<()> {
        self.admin_ok("POST", &format!("/api/v1/tokens/{id}/revoke"), None, 204)?;
        Ok(())
    }

    /// The raw text of `GET /api/v1/audit?limit=10000` (for secret scans).
    pub fn audit_raw(&self) -> Result<String> {
        let r = self.get_resp("/api/v1/audit?limit=10000", Some(&self.admin_token))?;
        ensure!(r.status == 200, "audit failed: {} {}", r.status, r.text);
        Ok(r.text)
    }

    /// Every audit record, in log order.
    pub fn audit(&self) -> Result<Vec<Value>> {
        let v: Value = serde_json::from_str(&self.audit_raw()?)?;
        Ok(v["records"]
            .as_array()
            .context("`records` is not an array")?
            .clone())
    }

    /// Audit events with this action and outcome result (`allowed`, `denied`, `failed`).
    pub fn audit_events(&self, action: &str, result: &str) -> Result<Vec<Value>> {
        Ok(self
            .audit()?
            .into_iter()
            .map(|r| r["event"].clone())
            .filter(|e| e["action"] == action && e["outcome"]["result"] == result)
            .collect())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = send_signal(child.id(), "TERM");
            if !matches!(wait_timeout(&mut child, STOP_TIMEOUT), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn wait_for_listening(rx: &mpsc::Receiver<String>) -> Result<String> {
    const PREFIX: &str = "signetd listening on ";
    let deadline = Instant::now() + START_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        ensure!(
            !left.is_zero(),
            "signetd did not announce its address within {START_TIMEOUT:?}; stdout: {seen:?}"
        );
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(url) = line.trim().strip_prefix(PREFIX) {
                    return Ok(url.trim_end_matches('/').to_owned());
                }
                seen.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("signetd exited before announcing its address; stdout: {seen:?}")
            }
        }
    }
}

/// A blocking client that trusts only `ca_pem` (no built-in roots, no proxy).
pub fn client_trusting(ca_pem: &[u8]) -> Result<Client> {
    let cert = reqwest::Certificate::from_pem(ca_pem)?;
    Ok(Client::builder()
        .tls_certs_only([cert])
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()?)
}

/// A response read in full.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Response {
    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.text)
            .with_context(|| format!("response ({}) is not JSON: {}", self.status, self.text))
    }

    pub fn json_or_null(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Checks this is an RFC 9457 problem with the given status and code.
    pub fn expect_problem(&self, status: u16, code: &str) -> Result<()> {
        let ct = self.header("content-type").unwrap_or_default();
        ensure!(
            self.status == status,
            "expected status {status} ({code}), got {}: {}",
            self.status,
            self.text
        );
        ensure!(
            ct.starts_with(PROBLEM_JSON),
            "expected content-type {PROBLEM_JSON}, got `{ct}` ({})",
            self.text
        );
        let v = self.json()?;
        ensure!(
            v["code"] == code,
            "expected code `{code}`, got {}",
            self.text
        );
        ensure!(
            v["status"] == status,
            "problem `status` is not {status}: {}",
            self.text
        );
        ensure!(
            v["type"] == format!("urn:signet:problem:{code}"),
            "problem `type` does not name `{code}`: {}",
            self.text
        );
        ensure!(
            v["title"].as_str().is_some_and(|t| !t.is_empty()),
            "problem has no title: {}",
            self.text
        );
        if status == 401 {
            let www = self.header("www-authenticate").unwrap_or_default();
            ensure!(
                www.to_ascii_lowercase().starts_with("bearer"),
                "401 without a Bearer WWW-Authenticate header (got `{www}`)"
            );
        }
        Ok(())
    }
}

// ---- the CLI ----------------------------------------------------------------------------------

/// Every environment variable `signet` reads (directly or as a flag default).
pub const SIGNET_CLI_ENV: [&str; 7] = [
    "SIGNET_URL",
    "SIGNET_TOKEN",
    "SIGNET_CA",
    "SIGNET_REASON",
    "SIGNET_BUILD_REPOSITORY",
    "SIGNET_BUILD_COMMIT",
    "SIGNET_BUILD_PIPELINE",
];

/// A `signet` command with no inherited `SIGNET_*` settings, `XDG_CONFIG_HOME` (and `HOME`) set
/// to `config_home`, and stdin from `/dev/null`.
pub fn signet(config_home: &Path) -> Result<Command> {
    let mut cmd = Command::new(bin("signet")?);
    for var in SIGNET_CLI_ENV {
        cmd.env_remove(var);
    }
    cmd.env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    Ok(cmd)
}

/// What a CLI run produced.
#[derive(Debug)]
pub struct CliOutput {
    /// The command line, for messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Fails unless the command exited 0.
    pub fn ok(&self) -> Result<&Self> {
        ensure!(
            self.code() == Some(0),
            "`{}` failed ({}):\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command,
            self.status,
            self.stdout,
            self.stderr
        );
        Ok(self)
    }

    /// Fails unless the command exited with `code` and its stderr contains `needle`
    /// (case-insensitive).
    pub fn fails_with(&self, code: i32, needle: &str) -> Result<&Self> {
        ensure!(
            self.code() == Some(code),
            "`{}`: expected exit {code}, got {}:\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command,
            self.status,
            self.stdout,
            self.stderr
        );
        ensure!(
            self.stderr
                .to_ascii_lowercase()
                .contains(&needle.to_ascii_lowercase()),
            "`{}`: stderr does not mention `{needle}`:\n{}",
            self.command,
            self.stderr
        );
        Ok(self)
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("`{}` printed non-JSON: {}", self.command, self.stdout))
    }
}

fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Runs a CLI command (bounded by the command timeout), with `stdin` piped in when given.
pub fn run_cli(cmd: &mut Command, stdin: Option<&[u8]>) -> Result<CliOutput> {
    let out = run_with_input(cmd, stdin, COMMAND_TIMEOUT)?;
    Ok(CliOutput {
        command: describe(cmd),
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// A CLI run with its peak resident set size.
#[derive(Debug)]
pub struct Measured {
    pub output: CliOutput,
    /// Peak RSS in KiB.
    pub peak_rss_kib: u64,
    pub wall: Duration,
    /// `"time"` (GNU `/usr/bin/time -f %M`) or `"proc"` (polling `VmHWM`).
    pub method: &'static str,
}

/// Runs `cmd` (killed after `timeout`) and measures its peak RSS: with GNU `/usr/bin/time` when
/// installed (unless `SIGNET_E2E_RSS=proc`), else by polling `VmHWM` in `/proc/PID/status`
/// while it runs.
pub fn run_measuring_rss(cmd: &mut Command, timeout: Duration) -> Result<Measured> {
    let time_bin = Path::new("/usr/bin/time");
    let force_proc = std::env::var_os("SIGNET_E2E_RSS").is_some_and(|v| v == "proc");
    if time_bin.is_file() && !force_proc {
        let report = tempfile::NamedTempFile::new()?;
        let mut wrapped = Command::new(time_bin);
        wrapped
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(report.path())
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .stdin(Stdio::null());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        let start = Instant::now();
        let out = run_with_timeout(&mut wrapped, timeout)?;
        let wall = start.elapsed();
        let text = std::fs::read_to_string(report.path())?;
        // GNU time writes "Command exited with non-zero status N" before the figure.
        let peak_rss_kib = text
            .lines()
            .rev()
            .find_map(|l| l.trim().parse::<u64>().ok())
            .with_context(|| format!("no peak RSS in /usr/bin/time's report: {text:?}"))?;
        return Ok(Measured {
            output: CliOutput {
                command: describe(cmd),
                status: out.status,
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            peak_rss_kib,
            wall,
            method: "time",
        });
    }

    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status_path = format!("/proc/{}/status", child.id());
    let deadline = start + timeout;
    let mut peak = 0u64;
    let status = loop {
        // Read before try_wait: once reaped, the figure is gone.
        if let Ok(text) = std::fs::read_to_string(&status_path)
            && let Some(kib) = text.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        {
            peak = peak.max(kib);
        }
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{cmd:?} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let wall = start.elapsed();
    ensure!(peak > 0, "never read VmHWM of {cmd:?}");
    Ok(Measured {
        output: CliOutput {
            command: describe(cmd),
            status,
            stdout: String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned(),
            stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
        },
        peak_rss_kib: peak,
        wall,
        method: "proc",
    })
}

/// A loopback TCP port nothing listens on (bound, then released).
pub fn closed_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

// ---- SQLite, behind the server's back ----------------------------------------------------------

/// Runs an SQL script on a database file with the `sqlite3` command, or with Python's `sqlite3`
/// module when that command is not installed; returns what it printed (`sqlite3` output mode,
/// or nothing with Python). For tampering tests only: the server must not be running.
pub fn sqlite_exec(db: &Path, sql: &str) -> Result<String> {
    let mut cli = Command::new("sqlite3");
    cli.arg("-bail").arg(db).stdin(Stdio::null());
    let out = match run_with_input(&mut cli, Some(sql.as_bytes()), COMMAND_TIMEOUT) {
        Ok(out) => out,
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
            }) =>
        {
            let mut py = Command::new("python3");
            py.arg("-c")
                .arg("import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.executescript(sys.stdin.read())\nc.commit()\nc.close()\n")
                .arg(db);
            run_with_input(&mut py, Some(sql.as_bytes()), COMMAND_TIMEOUT)?
        }
        Err(e) => return Err(e),
    };
    ensure!(
        out.status.success(),
        "SQL on `{}` failed ({}):\n{sql}\n{}",
        db.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An SQL string literal (single quotes doubled).
pub fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

// ---- data, digests and OpenSSL ----------------------------------------------------------------

/// `n` random bytes from the OS.
pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    File::open("/dev/urandom")?
        .take(n as u64)
        .read_to_end(&mut buf)?;
    ensure!(buf.len() == n, "short read from /dev/urandom");
    Ok(buf)
}

/// The hex digest of `data` (`sha256`, `sha384` or `sha512`), computed locally.
pub fn digest_hex(algorithm: &str, data: &[u8]) -> Result<String> {
    Ok(match algorithm {
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        "sha384" => hex::encode(sha2::Sha384::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        other => bail!("no local digest `{other}`"),
    })
}

/// Decodes standard base64.
pub fn b64decode(s: &str) -> Result<Vec<u8>> {
    Ok(base64::engine::general_purpose::STANDARD.decode(s)?)
}

/// `sha256:` + hex SHA-256 of the DER inside a public key PEM.
pub fn spki_fingerprint(pem: &str) -> Result<String> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = b64decode(&body)?;
    Ok(format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(&der))
    ))
}

/// An RFC 3339 UTC time `secs` seconds from now (negative: in the past).
pub fn rfc3339_from_now(secs: i64) -> Result<String> {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    Ok(t.format(&time::format_description::well_known::Rfc3339)?)
}

static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file name unique within this process.
pub fn unique(prefix: &str, ext: &str) -> String {
    let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{n}.{ext}")
}

/// Runs `openssl ARGS` in `dir`.
pub fn openssl(dir: &Path, args: &[&str]) -> Result<Output> {
    let mut cmd = Command::new("openssl");
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    run_with_timeout(&mut cmd, COMMAND_TIMEOUT)
}

/// Runs `openssl ARGS` in `dir` and fails unless it succeeds; returns stdout.
pub fn openssl_ok(dir: &Path, args: &[&str]) -> Result<String> {
    let out = openssl(dir, args)?;
    ensure!(
        out.status.success(),
        "openssl {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Writes bytes to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let path = dir.join(name);
    let mut f = File::create(&path)?;
    f.write_all(bytes)?;
    Ok(path)
}

/// How `openssl` should check a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMode {
    /// `pkeyutl -verify -rawin` over the digest bytes (Ed25519).
    RawDigest,
    /// `dgst -verify` over the file (ECDSA, RSA PKCS#1 v1.5).
    Dgst,
    /// `dgst -verify` with PSS padding and salt length = digest length.
    DgstPss,
}

impl VerifyMode {
    /// The mode the server's documentation gives for a key algorithm.
    pub fn for_algorithm(algorithm: &str) -> Result<VerifyMode> {
        Ok(match algorithm {
            "ed25519" => VerifyMode::RawDigest,
            "ecdsa-p256" | "ecdsa-p384" | "rsa-3072-pkcs1" | "rsa-4096-pkcs1" => VerifyMode::Dgst,
            "rsa-3072-pss" | "rsa-4096-pss" => VerifyMode::DgstPss,
            other => bail!("unknown algorithm `{other}`"),
        })
    }
}

/// Verifies `signature` over the file `data` with `openssl`. `Ok(false)` only when OpenSSL
/// reports a verification failure; any other error (bad arguments, unreadable key) is an `Err`,
/// so a negative test cannot pass because the command itself was wrong.
pub fn openssl_verify(
    dir: &Path,
    mode: VerifyMode,
    digest_algorithm: &str,
    public_key_pem: &str,
    data: &Path,
    signature: &[u8],
) -> Result<bool> {
    let pubkey = write_file(dir, &unique("pub", "pem"), public_key_pem.as_bytes())?;
    let sig = write_file(dir, &unique("sig", "bin"), signature)?;
    let pubkey = path_str(&pubkey)?;
    let sig = path_str(&sig)?;
    let data = path_str(data)?;
    let dgst_flag = format!("-{digest_algorithm}");
    let out = match mode {
        VerifyMode::RawDigest => {
            let digest = dir.join(unique("digest", "bin"));
            let digest = path_str(&digest)?;
            openssl_ok(
                dir,
                &[
                    "dgst",
                    &dgst_flag,
                    "-binary",
                    "-out",
                    digest.as_str(),
                    data.as_str(),
                ],
            )?;
            openssl(
                dir,
                &[
                    "pkeyutl",
                    "-verify",
                    "-pubin",
                    "-inkey",
                    pubkey.as_str(),
                    "-rawin",
                    "-in",
                    digest.as_str(),
                    "-sigfile",
                    sig.as_str(),
                ],
            )?
        }
        VerifyMode::Dgst => openssl(
            dir,
            &[
                "dgst",
                &dgst_flag,
                "-verify",
                pubkey.as_str(),
                "-signature",
                sig.as_str(),
                data.as_str(),
            ],
        )?,
        VerifyMode::DgstPss => openssl(
            dir,
            &[
                "dgst",
                &dgst_flag,
                "-verify",
                pubkey.as_str(),
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
                "-signature",
                sig.as_str(),
                data.as_str(),
            ],
        )?,
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lower = text.to_ascii_lowercase();
    if out.status.success() {
        ensure!(
            lower.contains("verified ok") || lower.contains("signature verified successfully"),
            "openssl exited 0 without saying the signature verified: {text}"
        );
        Ok(true)
    } else if lower.contains("verification failure") {
        Ok(false)
    } else {
        bail!(
            "openssl could not check the signature ({}): {text}",
            out.status
        )
    }
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_owned)
        .with_context(|| format!("non-UTF-8 path `{}`", p.display()))
}

/// Whether `needle` occurs anywhere in `haystack` (bytes).
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The secret part of a `signet_<id>_<secret>` token.
pub fn token_secret_part(token: &str) -> Result<String> {
    token
        .strip_prefix("signet_")
        .and_then(|rest| rest.split_once('_'))
        .map(|(_, secret)| secret.to_owned())
        .with_context(|| format!("`{token}` is not a signet token"))
}

// ---- certificates, CRLs and time-stamps ---------------------------------------------------------

/// A response read in full as bytes: DER bodies (CRLs, time-stamp replies) are not text.
#[derive(Debug)]
pub struct BinaryResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl BinaryResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The body as text (for problem documents and messages).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Server {
    /// Sends a request and reads the whole response as bytes.
    pub fn request_bytes(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<BinaryResponse> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req
            .send()
            .with_context(|| format!("request to {path} failed"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes()?.to_vec();
        Ok(BinaryResponse {
            status,
            headers,
            body,
        })
    }
}

/// The PEM blocks (`-----BEGIN X-----` through `-----END X-----`, each ending in a newline) in
/// `text`, in order.
pub fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN ") {
            current = Some(String::new());
        }
        if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
        }
        if line.starts_with("-----END ")
            && let Some(block) = current.take()
        {
            blocks.push(block);
        }
    }
    blocks
}

/// The DER inside one PEM block (the base64 between its armor lines).
pub fn pem_der(pem: &str) -> Result<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    ensure!(!body.is_empty(), "no PEM body in {pem:?}");
    b64decode(&body)
}
