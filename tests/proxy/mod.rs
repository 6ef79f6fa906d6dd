//! A loopback proxy in front of a server (Redis, PostgreSQL) that loses the
//! reply to a commit on demand: what the tests of "a lost reply is resolved
//! by its commit id, never a blind retry" need.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A loopback proxy in front of a server that, when armed, forwards the
/// next request holding `marker` (a commit) and then cuts both connections
/// before the reply comes back: the commit is applied but its reply is
/// lost. With `loading` above 0 it answers that many such requests itself
/// with `busy`, the reply of a server still reading its data after a
/// restart.
pub struct Proxy {
    pub port: u16,
    pub arm: Arc<AtomicBool>,
    pub loading: Arc<AtomicU32>,
}

impl Proxy {
    pub fn start(server_port: u16, marker: &'static [u8], busy: &'static [u8]) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let arm = Arc::new(AtomicBool::new(false));
        let loading = Arc::new(AtomicU32::new(0));
        let (armed, still_loading) = (Arc::clone(&arm), Arc::clone(&loading));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", server_port)) else {
                    continue;
                };
                let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let knobs = Knobs {
                    marker,
                    busy,
                    armed: Arc::clone(&armed),
                    loading: Arc::clone(&still_loading),
                    cutting: Arc::new(AtomicBool::new(false)),
                };
                let cutting = Arc::clone(&knobs.cutting);
                std::thread::spawn(move || requests(client, upstream, knobs));
                std::thread::spawn(move || replies(u2, c2, cutting));
            }
        });
        Proxy { port, arm, loading }
    }
}

/// What one proxied connection does to the requests it forwards.
struct Knobs {
    marker: &'static [u8],
    busy: &'static [u8],
    armed: Arc<AtomicBool>,
    loading: Arc<AtomicU32>,
    cutting: Arc<AtomicBool>,
}

/// Client to server; when armed, the next commit is forwarded and the
/// connection cut before its reply can come back; while `loading`, a
/// commit is answered `busy` and not forwarded.
fn requests(mut from: TcpStream, mut to: TcpStream, knobs: Knobs) {
    let mut buf = [0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        let marker = knobs.marker;
        let is_commit = buf[..n].windows(marker.len()).any(|w| w == marker);
        let loading = is_commit
            && knobs
                .loading
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if loading {
            if from.write_all(knobs.busy).is_err() {
                break;
            }
            continue;
        }
        let cut = is_commit && knobs.armed.swap(false, Ordering::SeqCst);
        if cut {
            knobs.cutting.store(true, Ordering::SeqCst);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        if cut {
            // Let the server run it; its reply is dropped.
            std::thread::sleep(Duration::from_millis(50));
            break;
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// Server to client, except once a cut began.
fn replies(mut from: TcpStream, mut to: TcpStream, cutting: Arc<AtomicBool>) {
    let mut buf = [0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        if cutting.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}
