//! A component step that reaches for the network as its inputs say, so the
//! tests can check every grant gantry enforces from inside a guest.
//!
//! - `action: get`, `url`: an HTTP GET through `wasi:http`; with `follow:
//!   true` it follows redirects itself, as HTTP clients do, each one a new
//!   request. Prints `status=N` and `body=<first line>`, sets the output
//!   `status`; a refused request prints `error=<the wasi:http error code>`
//!   and exits 1.
//! - `action: tcp`, `address` (`host:port`): a raw TCP connection through
//!   `wasi:sockets`; sends `ping`, prints `reply=<first line>`; a refused
//!   connect prints `error=<the I/O error>` and exits 1.

#[cfg(all(target_os = "wasi", target_env = "p2"))]
fn main() {
    let input =
        |name: &str| std::env::var(format!("INPUT_{}", name.to_uppercase())).unwrap_or_default();
    let result = match input("action").as_str() {
        "get" => http::get(&input("url"), input("follow") == "true"),
        "tcp" => tcp(&input("address")),
        other => Err(format!("unknown action `{other}`")),
    };
    if let Err(error) = result {
        println!("error={error}");
        std::process::exit(1);
    }
}

#[cfg(not(all(target_os = "wasi", target_env = "p2")))]
fn main() {
    eprintln!("the network probe is a wasm32-wasip2 component");
    std::process::exit(2);
}

#[cfg(all(target_os = "wasi", target_env = "p2"))]
fn tcp(address: &str) -> Result<(), String> {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream.write_all(b"ping\n").map_err(|e| e.to_string())?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(|e| e.to_string())?;
    println!("reply={}", reply.trim_end());
    Ok(())
}

#[cfg(all(target_os = "wasi", target_env = "p2"))]
mod http {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, IncomingResponse, OutgoingRequest, Scheme};

    pub fn get(url: &str, follow: bool) -> Result<(), String> {
        let mut url = url.to_owned();
        for _ in 0..5 {
            let response = send(&url)?;
            let status = response.status();
            let location = response
                .headers()
                .get("location")
                .first()
                .map(|value| String::from_utf8_lossy(value).into_owned());
            if follow
                && (300..400).contains(&status)
                && let Some(next) = location
            {
                println!("redirect={next}");
                url = next;
                continue;
            }
            let body = read_body(&response)?;
            println!("status={status}");
            println!("body={}", body.lines().next().unwrap_or_default());
            if let Ok(path) = std::env::var("GANTRY_OUTPUT") {
                std::fs::write(path, format!("status={status}\n")).map_err(|e| e.to_string())?;
            }
            return Ok(());
        }
        Err("too many redirects".into())
    }

    fn send(url: &str) -> Result<IncomingResponse, String> {
        let (scheme, rest) = url.split_once("://").ok_or("the url has no scheme")?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let request = OutgoingRequest::new(Fields::new());
        let scheme = match scheme {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            other => Scheme::Other(other.to_owned()),
        };
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| "bad scheme")?;
        request
            .set_authority(Some(authority))
            .map_err(|()| "bad authority")?;
        request
            .set_path_with_query(Some(path))
            .map_err(|()| "bad path")?;
        let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
        pending.subscribe().block();
        match pending.get() {
            Some(Ok(Ok(response))) => Ok(response),
            Some(Ok(Err(code))) => Err(format!("{code:?}")),
            Some(Err(())) => Err("the response was taken twice".into()),
            None => Err("no response after waiting for it".into()),
        }
    }

    fn read_body(response: &IncomingResponse) -> Result<String, String> {
        let body = response.consume().map_err(|()| "no body")?;
        let stream = body.stream().map_err(|()| "no body stream")?;
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(wasip2::io::streams::StreamError::Closed) => break,
                Err(e) => return Err(format!("reading the body: {e:?}")),
            }
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}
