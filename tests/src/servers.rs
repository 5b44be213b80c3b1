//! Real servers on 127.0.0.1 for the network tests: a small HTTP/1.1 server
//! and a TCP server that answers each line. Each listens on a port of its
//! own, serves from a thread, and stops when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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

/// Reads one request from `input` and writes `route`'s reply to `output`.
fn answer(route: &Route, input: impl Read, mut output: impl Write) {
    let mut reader = BufReader::new(input);
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
    let _ = output.write_all(response.as_bytes());
    let _ = output.flush();
}

/// One TLS stream, read and written from the same thread.
struct SharedTls(Arc<Mutex<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>>);

impl Read for SharedTls {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().read(buf)
    }
}

impl Write for SharedTls {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut tls = self.0.lock().unwrap();
        tls.flush()?;
        tls.conn.send_close_notify();
        tls.flush()
    }
}

/// A certificate authority made for one test, trusted by nothing else.
pub struct PrivateCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl PrivateCa {
    pub fn new() -> PrivateCa {
        let key = rcgen::KeyPair::generate().expect("a CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "gantry test CA");
        let cert = params.self_signed(&key).expect("a self-signed CA");
        PrivateCa {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    fn server_config(&self, name: &str) -> rustls::ServerConfig {
        let key = rcgen::KeyPair::generate().expect("a server key");
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("server params");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a server certificate");
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("a PKCS#8 key");
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("a server TLS config")
    }
}

impl Default for PrivateCa {
    fn default() -> Self {
        PrivateCa::new()
    }
}

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
            let reader = stream.try_clone().expect("clone the stream");
            answer(&*route, reader, stream);
        })
    }

    /// An HTTPS server for `localhost` answering with `route`, its
    /// certificate issued by `ca`.
    pub fn https(
        ca: &PrivateCa,
        route: impl Fn(&str, &str) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let route: Arc<Route> = Arc::new(route);
        let config = Arc::new(ca.server_config("localhost"));
        Server::start(move |stream| {
            let Ok(connection) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            let tls = Arc::new(Mutex::new(rustls::StreamOwned::new(connection, stream)));
            answer(&*route, SharedTls(tls.clone()), SharedTls(tls));
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
