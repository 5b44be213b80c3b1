//! A real OCI registry on 127.0.0.1 for the registry tests: Debian's
//! `docker-registry` (the CNCF distribution registry), with filesystem
//! storage in a temp folder, optionally behind htpasswd authentication.
//! It is started on a free port, waited for until it answers, and killed
//! when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs the registry.
const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// A running registry.
pub struct Registry {
    child: Child,
    port: u16,
    folder: tempfile::TempDir,
}

impl Registry {
    /// Whether the registry (and `htpasswd`, for the credential tests) is
    /// installed. Under `GANTRY_REQUIRE_TOOLS=1` a missing one fails the
    /// test; otherwise it says why the test stops and returns false.
    #[track_caller]
    pub fn available() -> bool {
        let missing = [REGISTRY_BINARY, "/usr/bin/htpasswd"]
            .into_iter()
            .find(|path| !Path::new(path).is_file());
        let Some(missing) = missing else {
            return true;
        };
        let required = std::env::var("GANTRY_REQUIRE_TOOLS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "`{missing}` is not installed, and GANTRY_REQUIRE_TOOLS=1 says it must be (apt-get install docker-registry apache2-utils)"
        );
        eprintln!(
            "skipping the rest of this test: `{missing}` is not installed (apt-get install docker-registry apache2-utils)"
        );
        false
    }

    /// A registry anyone may push to and pull from.
    pub fn start() -> Registry {
        Registry::launch(None)
    }

    /// A registry that requires HTTP Basic credentials `user`/`password`.
    pub fn start_with_auth(user: &str, password: &str) -> Registry {
        Registry::launch(Some((user, password)))
    }

    fn launch(credentials: Option<(&str, &str)>) -> Registry {
        let folder = tempfile::Builder::new()
            .prefix("gantry-test-registry-")
            .tempdir()
            .expect("temp folder");
        let auth = match credentials {
            Some((user, password)) => {
                let htpasswd = Command::new("htpasswd")
                    .args(["-nbB", user, password])
                    .output()
                    .expect("running htpasswd");
                assert!(htpasswd.status.success(), "htpasswd failed");
                let file = folder.path().join("htpasswd");
                std::fs::write(&file, &htpasswd.stdout).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: gantry-test\n    path: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        let storage = folder.path().join("storage");
        let mut last_error = String::new();
        // The free port is found by binding and releasing it; another
        // process may take it in between, so a failed start is retried.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free loopback port")
                .port();
            let config = folder.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  redirect:\n    disable: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: gantry-test-secret\n{auth}",
                    storage.display()
                ),
            )
            .expect("write the registry config");
            let mut child = Command::new(REGISTRY_BINARY)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starting docker-registry");
            match wait_listening(&mut child, port) {
                Ok(()) => {
                    return Registry {
                        child,
                        port,
                        folder,
                    };
                }
                Err(error) => last_error = error,
            }
        }
        panic!("docker-registry did not start: {last_error}");
    }

    /// `127.0.0.1:PORT`, as written in an `oci://` reference.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The file the registry serves the blob with sha256 `hex` from.
    pub fn blob_file(&self, hex: &str) -> PathBuf {
        self.folder
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `port` accepts connections, or says why the registry
/// stopped.
fn wait_listening(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            return Err(format!("it exited with {status}: {stderr}"));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!("nothing answered on port {port} within 20 s"))
}
