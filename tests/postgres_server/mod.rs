//! A real PostgreSQL server (Debian package `postgresql`) for one test or
//! example: each test binary runs `initdb` once, and each server is a copy
//! of that cluster in its own temp dir, started directly (not through
//! `pg_ctl`) on a free loopback port, and stopped by pid. Never port 5432;
//! nothing is left running. As root, the server runs as the `postgres`
//! user (PostgreSQL refuses root).
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where the server's programs are (`postgres`, `initdb`, `pg_isready`,
/// `psql`), if this machine has them.
fn bindir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("postgres").exists() && bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

/// Whether this machine has PostgreSQL. Without it the tests say so and
/// pass, except where `CI` or `PERSISTED_REQUIRE_POSTGRES` is set: there a
/// missing server fails them (`.ci/run` installs it).
pub fn available() -> bool {
    if bindir().is_some() {
        return true;
    }
    let required = std::env::var_os("CI").is_some()
        || std::env::var_os("PERSISTED_REQUIRE_POSTGRES").is_some();
    assert!(
        !required,
        "PostgreSQL is required here (CI or PERSISTED_REQUIRE_POSTGRES is set): apt-get install \
         postgresql"
    );
    eprintln!(
        "NOT RUN: this PostgreSQL test needs the server (Debian: apt-get install postgresql); \
         install it and run `cargo test --all-features --test postgres`"
    );
    false
}

/// The uid and gid of the `postgres` user when running as root.
fn postgres_user() -> Option<(u32, u32)> {
    // SAFETY-free: read the ids from `id`, which every system has.
    let is_root = Command::new("id").arg("-u").output().ok()?.stdout == b"0\n";
    if !is_root {
        return None;
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

fn as_server_user(command: &mut Command) -> &mut Command {
    if let Some((uid, gid)) = postgres_user() {
        command.uid(uid).gid(gid);
    }
    command
}

fn chown_to_server_user(path: &Path) {
    if let Some((uid, gid)) = postgres_user() {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(path)
            .status()
            .expect("chown");
        assert!(status.success());
    }
}

/// Runs `initdb` into `data` (trust auth for local test connections).
fn initdb(data: &Path) {
    let mut initdb = Command::new(bindir().unwrap().join("initdb"));
    let status = as_server_user(&mut initdb)
        .arg("-D")
        .arg(data)
        .args(["-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
        .arg("--locale=C")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run initdb");
    assert!(status.success(), "initdb failed");
}

/// The cluster `initdb` made once, to copy: kept in cargo's scratch dir
/// for tests (`CARGO_TARGET_TMPDIR`, under `target/`), so it is made once
/// per build and nothing is left in `/tmp`. `None` outside tests (an
/// example starts one server and runs `initdb` for it directly).
fn template() -> Option<&'static Path> {
    static TEMPLATE: OnceLock<Option<PathBuf>> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let scratch = PathBuf::from(option_env!("CARGO_TARGET_TMPDIR")?);
            let version = bindir()?
                .parent()?
                .file_name()?
                .to_string_lossy()
                .to_string();
            let template = scratch.join(format!("postgres-{version}-template"));
            if template.join("data/PG_VERSION").exists() {
                return Some(template);
            }
            // Made beside it and renamed into place, so test binaries that
            // start at once never see half a cluster.
            std::fs::create_dir_all(&scratch).unwrap();
            let building = tempfile::tempdir_in(&scratch).unwrap();
            chown_to_server_user(building.path());
            initdb(&building.path().join("data"));
            let building = building.keep();
            if std::fs::rename(&building, &template).is_err() {
                // Another binary got there first: use its copy.
                let _ = std::fs::remove_dir_all(&building);
            }
            Some(template)
        })
        .as_deref()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert_ne!(port, 5432);
    port
}

pub struct PostgresServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Whether the server fsyncs (off for speed, on for durability tests).
    fsync: bool,
    /// Whether the server takes TLS connections (a self-signed
    /// certificate for 127.0.0.1 and localhost, `cert.pem` in its dir).
    tls: bool,
}

impl PostgresServer {
    /// Starts a server (`fsync` off); `None` when this machine has none.
    pub fn start() -> Option<PostgresServer> {
        PostgresServer::start_with(false)
    }

    /// Starts a server that fsyncs, for durability tests.
    pub fn start_durable() -> Option<PostgresServer> {
        PostgresServer::start_with(true)
    }

    /// Starts a server that also takes TLS connections, with a
    /// self-signed certificate ([`PostgresServer::certificate`]).
    pub fn start_tls() -> Option<PostgresServer> {
        PostgresServer::start_with_tls(false, true)
    }

    /// The server's certificate (PEM), when it takes TLS.
    pub fn certificate(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn start_with(fsync: bool) -> Option<PostgresServer> {
        PostgresServer::start_with_tls(fsync, false)
    }

    fn start_with_tls(fsync: bool, tls: bool) -> Option<PostgresServer> {
        if !available() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        chown_to_server_user(dir.path());
        match template() {
            Some(template) => {
                let status = Command::new("cp")
                    .arg("-a")
                    .arg(template.join("data"))
                    .arg(dir.path().join("data"))
                    .status()
                    .expect("copy the cluster");
                assert!(status.success());
            }
            None => initdb(&dir.path().join("data")),
        }
        let mut server = PostgresServer {
            child: None,
            port: free_port(),
            dir,
            fsync,
            tls,
        };
        if tls {
            server.make_certificate();
        }
        server.spawn();
        Some(server)
    }

    /// A self-signed certificate and its key (`openssl`, which Debian's
    /// `postgresql` brings), the key readable by the server only.
    fn make_certificate(&self) {
        let key = self.dir.path().join("key.pem");
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
            // A server certificate, not a CA's (rustls refuses a CA's
            // certificate presented by a server).
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(self.certificate())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl req failed");
        chown_to_server_user(self.dir.path());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn spawn(&mut self) {
        let mut command = Command::new(bindir().unwrap().join("postgres"));
        command
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", if self.fsync { "fsync=on" } else { "fsync=off" }]);
        if self.tls {
            command
                .args(["-c", "ssl=on"])
                .arg("-c")
                .arg(format!("ssl_cert_file={}", self.certificate().display()))
                .arg("-c")
                .arg(format!(
                    "ssl_key_file={}",
                    self.dir.path().join("key.pem").display()
                ));
        }
        command
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(self.dir.path().join("server.log")).unwrap(),
            ))
            // Its own process group, so a crash kills every backend too.
            .process_group(0);
        let child = as_server_user(&mut command)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.ready() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        panic!("postgres on port {} did not start:\n{log}", self.port);
    }

    fn ready(&self) -> bool {
        Command::new(bindir().unwrap().join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    fn signal_group(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([signal, "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// SIGKILL of the server and every backend, like a crash.
    pub fn kill9(&mut self) {
        self.signal_group("-KILL");
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        // The backends go with the group; wait for the port to be free.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline
            && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again on the same port and data (crash recovery).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Runs `psql` against this server; returns its output (unaligned,
    /// tuples only).
    pub fn psql(&self, sql: &str) -> String {
        let psql = bindir().unwrap().join("psql");
        let out = Command::new(psql)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", "postgres", "-At", "-c", sql])
            .output()
            .expect("run psql");
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // A fast shutdown (SIGINT), then SIGKILL of whatever is left.
        self.signal_group("-INT");
        if let Some(child) = &mut self.child {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.kill9();
    }
}
