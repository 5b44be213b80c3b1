//! A real nginx with WebDAV on 127.0.0.1, for the `http` plugin's tests:
//! started from the same configuration the `http-deploy` example uses, in a
//! fresh temporary folder, as the current user, and stopped when dropped.
//!
//! Where nginx is missing, [`Nginx::available`] says so and the tests stop
//! there, except under `GANTRY_REQUIRE_TOOLS=1` (as `.ci/run` sets it),
//! where a missing nginx fails them: they must not pass by never running.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The example's configuration, with `@DIR@`, `@PORT@` and `@HEALTH@`.
const CONFIG: &str = include_str!("../../examples/http-deploy/nginx.conf.in");

/// The user the configuration's `htpasswd` lets write.
pub const DAV_USER: &str = "deploy";

/// How long nginx may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// One nginx process serving `root()` on `origin()`.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    password: String,
}

impl Nginx {
    /// Whether nginx is installed; see [`crate::installed_tool`] for what a
    /// test does when it is not.
    pub fn available() -> bool {
        let found = find_nginx().is_some();
        if !found {
            let required = std::env::var("GANTRY_REQUIRE_TOOLS").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "nginx is not installed, and GANTRY_REQUIRE_TOOLS=1 says it must be (`apt-get install nginx-light`)"
            );
            eprintln!(
                "skipping the rest of this test: nginx is not installed (`apt-get install nginx-light`, or set NGINX)"
            );
        }
        found
    }

    /// nginx whose `/healthz` answers 200.
    pub fn start() -> Nginx {
        Nginx::start_with_health(200)
    }

    /// nginx whose `/healthz` answers `health` (e.g. 503, for a failing
    /// smoke test).
    pub fn start_with_health(health: u16) -> Nginx {
        let binary = nginx_binary();
        let dir = tempfile::Builder::new()
            .prefix("gantry-nginx-")
            .tempdir()
            .expect("a temporary folder for nginx");
        std::fs::create_dir(dir.path().join("www")).expect("the web root");
        // A password of the moment: nothing but this server accepts it.
        let password = format!("pw-{}-{}", std::process::id(), port_of_moment());
        std::fs::write(
            dir.path().join("htpasswd"),
            format!("{DAV_USER}:{{PLAIN}}{password}\n"),
        )
        .expect("write htpasswd");
        // The free port is found by binding and releasing it; another
        // process may take it in between, so a failed start tries again.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = port_of_moment();
            let config = CONFIG
                .replace("@DIR@", &dir.path().display().to_string())
                .replace("@PORT@", &port.to_string())
                .replace("@HEALTH@", &health.to_string());
            let config_path = dir.path().join("nginx.conf");
            std::fs::write(&config_path, config).expect("write nginx.conf");
            let mut child = Command::new(&binary)
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("starting `{}`: {e}", binary.display()));
            match wait_listening(&mut child, port) {
                Ok(()) => {
                    return Nginx {
                        child,
                        dir,
                        port,
                        password,
                    };
                }
                Err(why) => last_error = why,
            }
        }
        let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
        panic!("nginx did not start: {last_error}\n--- error.log\n{log}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, also the grant a step needs.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The folder served, on the host.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    /// The value of an `Authorization` header that may write.
    pub fn authorization(&self) -> String {
        format!(
            "Basic {}",
            base64(format!("{DAV_USER}:{}", self.password).as_bytes())
        )
    }

    /// The file served at `path`, if there is one.
    pub fn served(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root().join(path.trim_start_matches('/'))).ok()
    }

    /// nginx's access log so far: one line per request.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // One process (`master_process off`): killing it leaves nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx from `$NGINX`, else `PATH`, else `/usr/sbin` (Debian's place,
/// not on a normal user's `PATH`).
fn nginx_binary() -> PathBuf {
    find_nginx().unwrap_or_else(|| {
        panic!(
            "nginx is not installed, and the http plugin's tests need it: \
             `apt-get install nginx-light` (or set NGINX to its path)"
        )
    })
}

/// `$NGINX`, else `nginx` on the PATH or in /usr/sbin.
fn find_nginx() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NGINX") {
        return Some(PathBuf::from(path)).filter(|path| path.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

/// A loopback port that was free a moment ago.
fn port_of_moment() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Waits until `port` accepts connections, or says why nginx stopped.
fn wait_listening(child: &mut Child, port: u16) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < START_TIMEOUT {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            return Err(format!("nginx exited ({status}): {}", stderr.trim()));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!(
        "nothing listened on port {port} after {START_TIMEOUT:?}"
    ))
}

/// Standard base64 with padding, for a Basic `Authorization` value.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_rfc_examples() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(plain.as_bytes()), encoded);
        }
    }
}
