//! Registry credentials: `--registry-token` (or `GANTRY_REGISTRY_TOKEN`),
//! else the `auths` of docker's `config.json` (`$DOCKER_CONFIG/config.json`,
//! else `~/.docker/config.json`), else anonymous.
//!
//! Only the plain `auth` entries (base64 of `user:password`) are read;
//! credential helpers are programs gantry does not run. Credentials never
//! appear in a message: errors name the file and the registry, not the
//! secret.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

/// The largest docker config gantry reads.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
}

/// The docker config file gantry reads credentials from.
pub fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir).join("config.json")),
        _ => std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(|home| PathBuf::from(home).join(".docker").join("config.json")),
    }
}

/// The credentials for `registry` (`host[:port]`).
pub fn credentials_for(
    registry: &str,
    token: Option<&(String, String)>,
) -> Result<RegistryAuth, String> {
    if let Some((user, token)) = token {
        return Ok(RegistryAuth::Basic(user.clone(), token.clone()));
    }
    let Some(path) = docker_config_path() else {
        return Ok(RegistryAuth::Anonymous);
    };
    let bytes = match crate::fsutil::read_capped(&path, MAX_CONFIG_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(format!("`{}` is larger than 1 MiB", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistryAuth::Anonymous),
        Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
    };
    let config: DockerConfig = serde_json::from_slice(&bytes)
        .map_err(|e| format!("`{}` is not a docker config: {e}", path.display()))?;
    from_config(&config, registry)
        .map_err(|reason| format!("`{}`: the entry for `{registry}` {reason}", path.display()))
}

fn from_config(config: &DockerConfig, registry: &str) -> Result<RegistryAuth, String> {
    // docker writes keys as `host:port`, sometimes with a scheme and a
    // path (`https://host/v1/`): compare the host part only.
    let entry = config.auths.iter().find(|(key, _)| {
        let key = key
            .strip_prefix("https://")
            .or_else(|| key.strip_prefix("http://"))
            .unwrap_or(key);
        key.split('/').next() == Some(registry)
    });
    let Some(encoded) = entry.and_then(|(_, auth)| auth.auth.as_deref()) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| "has an `auth` that is not base64".to_owned())?;
    let decoded = String::from_utf8(decoded).map_err(|_| "has an `auth` that is not UTF-8")?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or("has an `auth` that is not `user:password` in base64")?;
    Ok(RegistryAuth::Basic(user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> DockerConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn finds_the_entry_by_host_whatever_its_spelling() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("ann:s3cret");
        for key in ["reg.example:5000", "https://reg.example:5000/v1/"] {
            let found = from_config(
                &config(&format!(
                    r#"{{"auths":{{"{key}":{{"auth":"{encoded}"}}}}}}"#
                )),
                "reg.example:5000",
            )
            .unwrap();
            assert!(
                matches!(&found, RegistryAuth::Basic(u, p) if u == "ann" && p == "s3cret"),
                "{key}: {found:?}"
            );
        }
        let other = from_config(
            &config(&format!(
                r#"{{"auths":{{"reg.example":{{"auth":"{encoded}"}}}}}}"#
            )),
            "reg.example:5000",
        )
        .unwrap();
        assert!(matches!(other, RegistryAuth::Anonymous));
        let bad = from_config(&config(r#"{"auths":{"r":{"auth":"!!"}}}"#), "r").unwrap_err();
        assert!(bad.contains("not base64"), "{bad}");
    }
}
