//! The [`Transport`] of the component: one blocking request through
//! `wasi:http/outgoing-handler`, its body streamed in and the response
//! body hashed as it streams out.
//!
//! On any target but `wasm32-wasip2` there is no `wasi:http`, so the
//! transport there only says so; the rest of the plugin is the same code
//! on every target, which is what lets its tests run on the host.

use std::time::Duration;

use crate::client::{Request, Response, SendError, Transport};

/// Sends through the host's `wasi:http`.
pub struct WasiHttp;

/// The most of a response body kept in memory for `output-json`; bigger
/// bodies are still hashed, but not kept.
pub const KEEP_LIMIT: u64 = 16 * 1024 * 1024;

#[cfg(all(target_os = "wasi", target_env = "p2"))]
impl Transport for WasiHttp {
    fn send(&mut self, request: &Request, keep_body: bool) -> Result<Response, SendError> {
        imp::send(request, keep_body)
    }

    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

#[cfg(not(all(target_os = "wasi", target_env = "p2")))]
impl Transport for WasiHttp {
    fn send(&mut self, _: &Request, _: bool) -> Result<Response, SendError> {
        Err(SendError {
            message: "this build has no `wasi:http`: the plugin runs as a wasm32-wasip2 component"
                .into(),
            retryable: false,
            reached: false,
        })
    }

    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

#[cfg(all(target_os = "wasi", target_env = "p2"))]
mod imp {
    use sha2::{Digest, Sha256};
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, HeaderError, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
        RequestOptions, Scheme,
    };
    use wasip2::io::streams::StreamError;

    use super::KEEP_LIMIT;
    use crate::client::{Request, Response, SendError};
    use crate::request;

    /// A failure before the request could have left the step.
    fn local(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            retryable: false,
            reached: false,
        }
    }

    pub fn send(request: &Request, keep_body: bool) -> Result<Response, SendError> {
        let outgoing = build(request)?;
        let body = outgoing
            .body()
            .map_err(|()| local("wasi:http gave no request body"))?;
        let options = options(request)?;
        // The request goes out first and its body after: the host reads
        // the body as it sends, so writing all of it before `handle` could
        // fill the stream's buffer with nobody reading.
        let pending = outgoing_handler::handle(outgoing, options).map_err(from_code)?;
        let written = write_body(body, request.body.as_deref().unwrap_or_default());
        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(from_code(code)),
            Some(Err(())) => return Err(local("wasi:http: the response was taken twice")),
            None => return Err(local("wasi:http: no response after waiting for it")),
        };
        // A body cut short while the server already answered: the answer
        // is what counts (a server may refuse before reading the body).
        if let Err(error) = written {
            eprintln!("note: the request body was not sent in full: {error}");
        }
        read(response, keep_body)
    }

    fn build(request: &Request) -> Result<OutgoingRequest, SendError> {
        let mut entries: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone().into_bytes()))
            .collect();
        // A known length, not chunked encoding: every server and WebDAV
        // module takes it. A bodiless request says `0` too, except GET and
        // HEAD, which are sent without a body anyway: without a length the
        // sender would announce a chunked body, and nginx's WebDAV refuses
        // a DELETE or MKCOL with a body (415).
        let bodiless = matches!(request.method.as_str(), "GET" | "HEAD");
        let length = request.body.as_ref().map_or(0, Vec::len);
        if (request.body.is_some() || !bodiless)
            && !request
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("content-length"))
        {
            entries.push(("content-length".into(), length.to_string().into_bytes()));
        }
        let fields = Fields::from_list(&entries).map_err(|e| {
            local(match e {
                HeaderError::Forbidden => {
                    "a header of `headers` is one the host sets itself (Host, Connection, …)"
                }
                HeaderError::InvalidSyntax => "a header of `headers` is not valid",
                HeaderError::Immutable => "wasi:http refused the headers",
            })
        })?;
        let outgoing = OutgoingRequest::new(fields);
        let method = match request.method.as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "CONNECT" => Method::Connect,
            "OPTIONS" => Method::Options,
            "TRACE" => Method::Trace,
            "PATCH" => Method::Patch,
            other => Method::Other(other.to_owned()),
        };
        let scheme = match request.url.scheme {
            request::Scheme::Http => Scheme::Http,
            request::Scheme::Https => Scheme::Https,
        };
        outgoing
            .set_method(&method)
            .map_err(|()| local(format!("wasi:http refused the method `{}`", request.method)))?;
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| local("wasi:http refused the scheme"))?;
        outgoing
            .set_authority(Some(&request.url.authority))
            .map_err(|()| local("wasi:http refused the URL's host"))?;
        outgoing
            .set_path_with_query(Some(&request.url.path_and_query))
            .map_err(|()| local("wasi:http refused the URL's path"))?;
        Ok(outgoing)
    }

    fn options(request: &Request) -> Result<Option<RequestOptions>, SendError> {
        let Some(timeout) = request.timeout else {
            return Ok(None);
        };
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        let options = RequestOptions::new();
        let unsupported = |what: &str| local(format!("the host does not support a {what} timeout"));
        options
            .set_connect_timeout(Some(nanos))
            .map_err(|()| unsupported("connect"))?;
        options
            .set_first_byte_timeout(Some(nanos))
            .map_err(|()| unsupported("first-byte"))?;
        options
            .set_between_bytes_timeout(Some(nanos))
            .map_err(|()| unsupported("between-bytes"))?;
        Ok(Some(options))
    }

    /// Writes `bytes` into the request body and finishes it.
    fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), String> {
        {
            let stream = body
                .write()
                .map_err(|()| "wasi:http gave no body stream".to_owned())?;
            // `blocking-write-and-flush` takes at most 4096 bytes a call.
            for chunk in bytes.chunks(4096) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| stream_error(&e))?;
            }
            // The stream must be dropped before the body is finished.
        }
        OutgoingBody::finish(body, None).map_err(|code| describe(&code))
    }

    /// Reads the response: status, headers, and the body hashed (and kept,
    /// if asked and small enough).
    fn read(response: IncomingResponse, keep_body: bool) -> Result<Response, SendError> {
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| local("wasi:http gave no response body"))?;
        let stream = incoming
            .stream()
            .map_err(|()| local("wasi:http gave no response body stream"))?;
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut kept = keep_body.then(Vec::new);
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    hasher.update(&chunk);
                    bytes += chunk.len() as u64;
                    if bytes > KEEP_LIMIT {
                        kept = None;
                    }
                    if let Some(kept) = &mut kept {
                        kept.extend_from_slice(&chunk);
                    }
                }
                Err(StreamError::Closed) => break,
                Err(e) => {
                    return Err(SendError {
                        message: format!("reading the response body: {}", stream_error(&e)),
                        retryable: true,
                        reached: true,
                    });
                }
            }
        }
        let sha256 = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Response {
            status,
            headers,
            sha256,
            bytes,
            body: kept,
        })
    }

    fn stream_error(error: &StreamError) -> String {
        match error {
            StreamError::Closed => "the stream was closed".into(),
            StreamError::LastOperationFailed(e) => e.to_debug_string(),
        }
    }

    /// `wasi:http`'s error, in words.
    fn describe(code: &ErrorCode) -> String {
        match code {
            ErrorCode::HttpRequestDenied => {
                "the request was denied (is its destination granted in the step's `permissions.network`?)"
                    .into()
            }
            ErrorCode::DestinationNotFound => "the host name was not found".into(),
            ErrorCode::ConnectionRefused => "the connection was refused".into(),
            ErrorCode::ConnectionTimeout => "connecting timed out".into(),
            ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
                "the response timed out".into()
            }
            ErrorCode::ConnectionTerminated => "the connection was closed early".into(),
            ErrorCode::HttpResponseIncomplete => "the response was incomplete".into(),
            ErrorCode::TlsCertificateError => "the server's TLS certificate was refused".into(),
            ErrorCode::InternalError(Some(why)) => format!("internal error: {why}"),
            other => format!("{other:?}"),
        }
    }

    /// Sorts a `wasi:http` error into [`SendError`]'s two questions: may
    /// another attempt help, and may this one have reached the server?
    fn from_code(code: ErrorCode) -> SendError {
        let (retryable, reached) = match &code {
            // Never left the machine, or never connected.
            ErrorCode::DnsTimeout
            | ErrorCode::DnsError(_)
            | ErrorCode::ConnectionRefused
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionLimitReached
            | ErrorCode::DestinationUnavailable
            | ErrorCode::DestinationIpUnroutable => (true, false),
            // Connected, then lost: the server may have acted on it.
            ErrorCode::ConnectionTerminated
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseIncomplete
            | ErrorCode::HttpResponseTimeout
            | ErrorCode::HttpProtocolError => (true, true),
            // Refused before sending: trying again changes nothing.
            ErrorCode::HttpRequestDenied
            | ErrorCode::DestinationNotFound
            | ErrorCode::DestinationIpProhibited
            | ErrorCode::HttpRequestMethodInvalid
            | ErrorCode::HttpRequestUriInvalid
            | ErrorCode::HttpRequestUriTooLong
            | ErrorCode::HttpRequestLengthRequired
            | ErrorCode::TlsCertificateError
            | ErrorCode::TlsAlertReceived(_)
            | ErrorCode::TlsProtocolError
            | ErrorCode::ConfigurationError => (false, false),
            // Anything else: assume the worst for the rollback, and do not
            // hammer the server.
            _ => (false, true),
        };
        SendError {
            message: describe(&code),
            retryable,
            reached,
        }
    }
}
