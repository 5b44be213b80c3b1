//! Real servers on 127.0.0.1 for the network tests: a small HTTP/1.1 server
//! and a TCP server that answers each line. Each listens on a port of its
//! own, serves from a thread, and stops when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

/// What the HTTP server answers to one request: status, extra headers and
/// body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn ok(body: &str) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn redirect(to: &str) -> Reply {
        Reply {
            status: 302,
            headers: vec![("Location".into(), to.into())],
            body: String::new(),
        }
    }
}

/// Answers a request line's method and path.
pub type Route = dyn Fn(&str, &str) -> Reply + Send + Sync;

/// A server running on its own thread until dropped.
pub struct Server {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// An HTTP/1.1 server answering each request with `route`, closing the
    /// connection after each answer.
    pub fn http(route: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) -> Server {
        let route: Arc<Route> = Arc::new(route);
        Server::start(move |stream| {
            let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                return;
            }
            // The headers, up to the blank line; requests here have no body.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let mut parts = request_line.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
            let reply = route(method, path);
            let mut response = format!(
                "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                reply.status,
                reply.body.len()
            );
            for (name, value) in &reply.headers {
                response.push_str(&format!("{name}: {value}\r\n"));
            }
            response.push_str("\r\n");
            response.push_str(&reply.body);
            let mut stream = stream;
            let _ = stream.write_all(response.as_bytes());
        })
    }

    /// A TCP server that answers every line it reads with `pong`.
    pub fn tcp_pong() -> Server {
        Server::start(|stream| {
            let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
            let mut line = String::new();
            let mut stream = stream;
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                let _ = stream.write_all(b"pong\n");
                line.clear();
            }
        })
    }

    fn start(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let address = listener.local_addr().expect("the bound address");
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, served) = (stop.clone(), served.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        served.fetch_add(1, Ordering::SeqCst);
                        handle(stream);
                    }
                }
            })
        };
        Server {
            address,
            stop,
            served,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.address)
    }

    /// How many connections it accepted.
    pub fn connections(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A name other than `localhost` that this machine's hosts file maps to a
/// loopback address (the machine's own name usually is): a grant of it is
/// not a literal grant of loopback, so gantry must refuse what it resolves
/// to.
pub fn loopback_alias() -> String {
    let hosts = std::fs::read_to_string("/etc/hosts").expect("read /etc/hosts");
    hosts
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address: std::net::IpAddr = fields.next()?.parse().ok()?;
            address
                .is_loopback()
                .then(|| fields.find(|name| *name != "localhost"))
                .flatten()
                .map(str::to_owned)
        })
        .next()
        .expect("/etc/hosts maps some name besides localhost to a loopback address (the machine's name)")
}
