//! Outgoing HTTP for component steps: every request a guest makes through
//! `wasi:http/outgoing-handler` arrives here, in wasmtime-wasi-http's
//! `send_request` hook, and is sent by gantry itself.
//!
//! In order, before anything leaves the machine: the request's scheme,
//! host and port must fall within one of the step's grants; the host name
//! is resolved here and each address checked ([`super::address`]); the
//! connection then goes to a checked address, never to the name again, so
//! a second DNS answer cannot slip past the check. HTTPS verifies the
//! server against the system's roots plus the configured private CA.
//! Redirects are not followed here: a guest that follows one makes a new
//! request, which is checked like the first.
//!
//! A refusal fails the request inside the guest with `wasi:http`'s
//! `HTTP-request-denied` (or the DNS or connection error that occurred) and
//! is reported by gantry, naming the step's destination.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Scheme as UriScheme;
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::grant::Scheme;
use super::{StepNetwork, address};

/// How long connecting, and waiting for the first byte, may take when the
/// guest sets no timeout of its own. The step's timeout still bounds all.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;

impl WasiHttpHooks for StepNetwork {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _body_done: IoFuture,
    ) -> SendFuture {
        let network = self.clone();
        Box::new(async move { network.send(request, options).await })
    }
}

impl StepNetwork {
    async fn send(
        &self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
        let uri = request.uri().clone();
        let scheme = match uri.scheme() {
            Some(s) if *s == UriScheme::HTTPS => Scheme::Https,
            Some(s) if *s == UriScheme::HTTP => Scheme::Http,
            _ => return Err(Error::HttpRequestUriInvalid),
        };
        let host = uri
            .host()
            .ok_or(Error::HttpRequestUriInvalid)?
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(match scheme {
            Scheme::Https => 443,
            _ => 80,
        });
        let destination = format!("{}://{host}:{port}", scheme.as_str());
        let Some(grant) = self.grant_for(scheme, &host, port) else {
            self.refuse(
                &destination,
                "no `permissions.network` grant of the step names it",
            );
            return Err(Error::HttpRequestDenied);
        };
        let candidates = match self.resolve(&host, port).await {
            Ok(addresses) => addresses,
            Err(e) => {
                self.refuse(&destination, &format!("its name does not resolve: {e}"));
                return Err(Error::DestinationNotFound);
            }
        };
        let mut refusal = None;
        let reachable: Vec<SocketAddr> = candidates
            .into_iter()
            .filter(|addr| match address::permitted(&grant.host, addr.ip()) {
                Ok(()) => true,
                Err(why) => {
                    refusal.get_or_insert(why);
                    false
                }
            })
            .collect();
        if reachable.is_empty() {
            let why = refusal.unwrap_or_else(|| "its name resolves to no address".into());
            self.refuse(&destination, &why);
            return Err(Error::HttpRequestDenied);
        }

        let options = options.unwrap_or_default();
        let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_TIMEOUT);
        let stream = connect_any(&reachable, connect_timeout).await?;
        // The request line carries only the path: the authority went into
        // the connection (and the `Host` header, set by wasmtime-wasi-http).
        *request.uri_mut() = http::Uri::builder()
            .path_and_query(uri.path_and_query().map_or("/", |p| p.as_str()))
            .build()
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        match scheme {
            Scheme::Https => {
                let tls = self
                    .tls
                    .client()
                    .map_err(|e| Error::InternalError(Some(format!("cannot set up TLS: {e}"))))?;
                let server = rustls::pki_types::ServerName::try_from(
                    host.trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_owned(),
                )
                .map_err(|_| Error::HttpRequestUriInvalid)?;
                let stream = tokio::time::timeout(
                    connect_timeout,
                    tokio_rustls::TlsConnector::from(tls).connect(server, stream),
                )
                .await
                .map_err(|_| Error::ConnectionTimeout)?
                .map_err(Error::Tls)?;
                exchange(stream, request, &options).await
            }
            _ => exchange(stream, request, &options).await,
        }
    }

    /// The grant that allows this destination, if any.
    fn grant_for(&self, scheme: Scheme, host: &str, port: u16) -> Option<&super::NetworkGrant> {
        self.grants
            .iter()
            .find(|grant| grant.allows(scheme, host, port))
    }

    /// The addresses of `host`: itself when it is an address, else what
    /// the host's resolver answers.
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        Ok(tokio::net::lookup_host((bare, port)).await?.collect())
    }
}

/// Connects to the first address that answers.
async fn connect_any(addresses: &[SocketAddr], timeout: Duration) -> Result<TcpStream, Error> {
    let mut last = Error::ConnectionRefused;
    for address in addresses {
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = Error::Connect(e),
            Err(_) => last = Error::ConnectionTimeout,
        }
    }
    Err(last)
}

/// Sends `request` over an HTTP/1.1 connection on `stream` and returns the
/// response as soon as its head arrives, with the future that drives the
/// rest of the connection (the body) for wasmtime-wasi-http to poll.
async fn exchange<S>(
    stream: S,
    request: http::Request<WasiBody>,
    options: &RequestOptions,
) -> Result<(http::Response<WasiBody>, IoFuture), Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let first_byte_timeout = options.first_byte_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let (mut sender, connection) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    // The connection runs on its own task so the response can be awaited;
    // its result reaches the guest through the I/O future.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = done_tx.send(connection.await);
    });
    let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    let io: IoFuture = Box::new(async move {
        match done_rx.await {
            Ok(Ok(())) | Err(_) => Ok(()),
            Ok(Err(e)) if e.is_timeout() => Err(Error::HttpResponseTimeout),
            Ok(Err(e)) => Err(e.into()),
        }
    });
    Ok((
        response.map(|body| body.map_err(Error::from).boxed_unsync()),
        io,
    ))
}

/// The TLS client settings of a run: the system's roots and the private
/// CA given by `--ca-file` or the manifest, read once, on the first HTTPS
/// request.
#[derive(Debug, Default)]
pub struct TlsRoots {
    extra_ca: Option<std::path::PathBuf>,
    client: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

impl TlsRoots {
    pub fn new(extra_ca: Option<std::path::PathBuf>) -> TlsRoots {
        TlsRoots {
            extra_ca,
            client: std::sync::OnceLock::new(),
        }
    }

    fn client(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        self.client.get_or_init(|| self.build()).clone()
    }

    fn build(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;

        let mut roots = rustls::RootCertStore::empty();
        // Unreadable system certificates are skipped, as every client does;
        // a private CA that cannot be read is an error, since it was asked for.
        let system = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(system.certs);
        if let Some(path) = &self.extra_ca {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<_, _>>())
                .map_err(|e| format!("cannot read the CA file `{}`: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "the CA file `{}` holds no PEM certificate",
                    path.display()
                ));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    format!(
                        "the CA file `{}` holds a bad certificate: {e}",
                        path.display()
                    )
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}
