//! A real `redis-server` (Debian package `redis-server`) for one test or
//! example: started on a free loopback port in its own temp dir, stopped by
//! pid (SIGKILL) when dropped. Never port 6379; nothing is left running.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the server keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aof {
    /// `appendonly yes`, `appendfsync always`: `Durability::Sync` works.
    Always,
    /// `appendonly yes`, `appendfsync everysec`.
    Everysec,
}

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    aof: Aof,
}

/// Whether this machine has `redis-server`. Without it the Redis tests say
/// so and pass, except where `CI` or `PERSISTED_REQUIRE_REDIS` is set:
/// there a missing server fails them (`.ci/run` installs it).
pub fn available() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let required = std::env::var_os("CI").is_some()
            || std::env::var_os("PERSISTED_REQUIRE_REDIS").is_some();
        assert!(
            !required,
            "redis-server is required here (CI or PERSISTED_REQUIRE_REDIS is set): \
             apt-get install redis-server"
        );
        eprintln!(
            "NOT RUN: this Redis test needs `redis-server` (Debian: apt-get install \
             redis-server); install it and run `cargo test --all-features --test redis`"
        );
    }
    found
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert_ne!(port, 6379);
    port
}

impl RedisServer {
    /// Starts a server; `None` when this machine has none (see
    /// [`available`]).
    pub fn start(aof: Aof) -> Option<RedisServer> {
        if !available() {
            return None;
        }
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            aof,
        };
        server.spawn();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn spawn(&mut self) {
        let fsync = match self.aof {
            Aof::Always => "always",
            Aof::Everysec => "everysec",
        };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", fsync])
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// SIGKILL, like a crash of the server.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data directory (it reloads its
    /// append-only file).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Runs `redis-cli` against this server; returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
