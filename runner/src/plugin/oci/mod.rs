//! Plugins from OCI registries: `source: oci://REGISTRY/REPO@sha256:DIGEST`
//! (or `:TAG`, which only `gantry lock` resolves), in the CNCF wasm
//! artifact layout — config `application/vnd.wasm.config.v0+json` and
//! exactly one `application/wasm` layer.
//!
//! What is trusted, and why:
//! - a manifest is fetched by its digest and its bytes are hashed here,
//!   whatever the registry claims in its headers;
//! - the layer is hashed while it streams in, and refused unless it
//!   matches the manifest's descriptor; the caller then checks the
//!   plugin's `sha256:` pin against exactly those bytes, which are the
//!   bytes it compiles;
//! - both go to the content cache ([`blobs`]) by digest, and are
//!   re-hashed when read back, so a run works offline once pulled.
//!
//! Registry access goes through `oci-client` (rustls with ring). Plain
//! HTTP is used only for `localhost`/loopback registries and for hosts
//! named with `--insecure-registry`.

pub mod auth;
pub mod blobs;
pub mod push;

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use blobs::{BlobCache, cached_bundle_path};

use crate::plan::is_sha256_hex;
use crate::plugin::{MAX_PLUGIN_BYTES, sha256_hex};

/// The scheme of a registry source.
pub const SCHEME: &str = "oci://";
/// The config media type of the CNCF wasm artifact layout.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The media type of its one layer.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The OCI image manifest media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The artifact type (and layer media type) of a Sigstore bundle referrer.
pub const SIGSTORE_BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Manifests are small; anything bigger is refused before parsing.
const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Sigstore bundles are a few kilobytes.
const MAX_BUNDLE_BYTES: u64 = 1024 * 1024;

/// Whether a `source:` names a registry rather than a file.
pub fn is_oci(source: &str) -> bool {
    source.starts_with(SCHEME)
}

/// How gantry talks to registries, from the command line.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `--registry-token` (with `--registry-user`): sent as HTTP Basic
    /// credentials to every registry, instead of docker's config.
    pub token: Option<(String, String)>,
    /// `--insecure-registry`: hosts (`host` or `host:port`) reached over
    /// plain HTTP although they are not loopback.
    pub insecure: Vec<String>,
}

static OPTIONS: OnceLock<RegistryOptions> = OnceLock::new();

/// Sets the registry options for this process; the command line does it
/// once, before any command runs.
pub fn configure(options: RegistryOptions) {
    let _ = OPTIONS.set(options);
}

fn options() -> &'static RegistryOptions {
    OPTIONS.get_or_init(RegistryOptions::default)
}

/// What a registry reference points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OciTarget {
    /// A manifest digest (64 lowercase hex of its sha256).
    Digest(String),
    /// A tag: mutable, so only `gantry lock` resolves it.
    Tag(String),
}

/// A parsed `oci://REGISTRY/REPO@sha256:HEX` or `oci://REGISTRY/REPO:TAG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRef {
    /// `host[:port]`.
    pub registry: String,
    pub repository: String,
    pub target: OciTarget,
}

impl OciRef {
    /// Parses a source; the error says what is wrong and what the form is.
    pub fn parse(source: &str) -> Result<OciRef, String> {
        const FORM: &str = "write `oci://REGISTRY/REPO@sha256:DIGEST` (or `oci://REGISTRY/REPO:TAG` and run `gantry lock`)";
        let bad = |what: String| Err(format!("{what}; {FORM}"));
        let Some(rest) = source.strip_prefix(SCHEME) else {
            return bad(format!("`{source}` does not start with `{SCHEME}`"));
        };
        let Some((registry, path)) = rest.split_once('/') else {
            return bad(format!("`{source}` names no repository"));
        };
        if registry.is_empty()
            || !registry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        {
            return bad(format!("`{registry}` is not a registry host"));
        }
        let (repository, target) = if let Some((repository, digest)) = path.split_once('@') {
            let Some(hex) = digest.strip_prefix("sha256:") else {
                return bad(format!("the digest `{digest}` is not `sha256:` and 64 hex"));
            };
            if !is_sha256_hex(hex) {
                return bad(format!(
                    "the digest `{digest}` is not `sha256:` and 64 lowercase hex"
                ));
            }
            (repository, OciTarget::Digest(hex.to_owned()))
        } else {
            let last = path.rfind('/').map_or(0, |i| i + 1);
            let Some(colon) = path[last..].rfind(':').map(|i| last + i) else {
                return bad(format!("`{source}` names neither a digest nor a tag"));
            };
            let tag = &path[colon + 1..];
            let valid_tag = tag.len() <= 128
                && tag
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !valid_tag {
                return bad(format!("`{tag}` is not a valid tag"));
            }
            (&path[..colon], OciTarget::Tag(tag.to_owned()))
        };
        let valid_repository = !repository.is_empty()
            && repository.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                    && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            });
        if !valid_repository {
            return bad(format!(
                "`{repository}` is not a repository name (lowercase letters, digits, `.`, `_`, `-`, `/`)"
            ));
        }
        Ok(OciRef {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            target,
        })
    }

    /// The same repository at the manifest digest `hex`.
    pub fn at_digest(&self, hex: &str) -> OciRef {
        OciRef {
            target: OciTarget::Digest(hex.to_owned()),
            ..self.clone()
        }
    }

    /// The manifest digest, for a digest reference.
    pub fn digest(&self) -> Option<&str> {
        match &self.target {
            OciTarget::Digest(hex) => Some(hex),
            OciTarget::Tag(_) => None,
        }
    }

    fn client_reference(&self) -> Reference {
        match &self.target {
            OciTarget::Digest(hex) => Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                format!("sha256:{hex}"),
            ),
            OciTarget::Tag(tag) => {
                Reference::with_tag(self.registry.clone(), self.repository.clone(), tag.clone())
            }
        }
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        match &self.target {
            OciTarget::Digest(hex) => write!(f, "@sha256:{hex}"),
            OciTarget::Tag(tag) => write!(f, ":{tag}"),
        }
    }
}

/// The host of `host[:port]` (brackets kept off an IPv6 literal).
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(host, _)| host)
}

/// Whether gantry may speak plain HTTP to `registry`: a loopback name or
/// address, or a host the user named with `--insecure-registry`.
pub fn plain_http_allowed(registry: &str, insecure: &[String]) -> bool {
    let host = host_of(registry);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || insecure
            .iter()
            .any(|allowed| allowed == registry || allowed == host)
}

/// A wasm plugin pulled (or found in the cache) and checked against its
/// manifest digest.
#[derive(Debug)]
pub struct Pulled {
    /// The manifest digest, 64 hex.
    pub manifest_hex: String,
    /// The wasm bytes: these were hashed, and are what gets compiled.
    pub wasm: Vec<u8>,
    /// Their sha256, which is the layer's digest.
    pub wasm_hex: String,
    /// Whether they came from the content cache without asking the registry.
    pub from_cache: bool,
}

/// The wasm layer a manifest names.
struct Layout {
    layer_hex: String,
    layer_size: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestDoc {
    #[serde(default)]
    media_type: Option<String>,
    config: Option<DescriptorDoc>,
    #[serde(default)]
    layers: Vec<DescriptorDoc>,
    #[serde(default)]
    manifests: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorDoc {
    media_type: String,
    digest: String,
    size: u64,
}

/// Checks a manifest has the wasm artifact layout: the wasm config media
/// type and exactly one `application/wasm` layer.
fn parse_layout(bytes: &[u8]) -> Result<Layout, String> {
    let doc: ManifestDoc = serde_json::from_slice(bytes)
        .map_err(|e| format!("its manifest is not an OCI image manifest: {e}"))?;
    if doc.manifests.is_some() {
        return Err(format!(
            "it is an image index (`{}`), not a wasm artifact; reference one of its manifests by digest",
            doc.media_type.as_deref().unwrap_or("no media type")
        ));
    }
    if let Some(media_type) = &doc.media_type
        && media_type != MANIFEST_MEDIA_TYPE
    {
        return Err(format!(
            "its manifest has media type `{media_type}`, expected `{MANIFEST_MEDIA_TYPE}`"
        ));
    }
    let config = doc
        .config
        .ok_or("its manifest has no `config`: it is not a wasm artifact")?;
    if config.media_type != WASM_CONFIG_MEDIA_TYPE {
        return Err(format!(
            "it is not a wasm artifact: the config media type is `{}`, expected `{WASM_CONFIG_MEDIA_TYPE}`",
            config.media_type
        ));
    }
    let [layer] = doc.layers.as_slice() else {
        return Err(format!(
            "it is not a wasm artifact: it has {} layers ({}), expected exactly one `{WASM_LAYER_MEDIA_TYPE}` layer",
            doc.layers.len(),
            doc.layers
                .iter()
                .map(|l| format!("`{}`", l.media_type))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    if layer.media_type != WASM_LAYER_MEDIA_TYPE {
        return Err(format!(
            "its layer has media type `{}`, expected `{WASM_LAYER_MEDIA_TYPE}`",
            layer.media_type
        ));
    }
    let layer_hex = layer
        .digest
        .strip_prefix("sha256:")
        .filter(|hex| is_sha256_hex(hex))
        .ok_or_else(|| format!("its layer digest `{}` is not sha256", layer.digest))?;
    if layer.size > MAX_PLUGIN_BYTES {
        return Err(format!(
            "its layer is {} bytes, over the {MAX_PLUGIN_BYTES}-byte plugin limit",
            layer.size
        ));
    }
    Ok(Layout {
        layer_hex: layer_hex.to_owned(),
        layer_size: layer.size,
    })
}

/// Why a registry did not give (or take) a plugin: what happened, and the
/// fix when there is an obvious one (`docker login`,
/// `--insecure-registry`), kept apart so that it is printed as a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryError {
    message: String,
    hint: Option<String>,
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RegistryError {}

impl crate::hint::Hinted for RegistryError {
    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}

/// A problem with no obvious fix.
impl From<String> for RegistryError {
    fn from(message: String) -> RegistryError {
        RegistryError {
            message,
            hint: None,
        }
    }
}

/// Runs registry work on a private runtime in its own thread, so it can be
/// called from anywhere, inside a tokio runtime or not.
fn block_on<F>(future: F) -> Result<F::Output, RegistryError>
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|runtime| runtime.block_on(future))
                    .map_err(|e| {
                        RegistryError::from(format!("cannot start the registry client: {e}"))
                    })
            })
            .join()
            .unwrap_or_else(|_| {
                Err(RegistryError::from(
                    "the registry client panicked".to_owned(),
                ))
            })
    })
}

/// A client for `registry` and its credentials.
fn client_for(registry: &str) -> Result<(Client, RegistryAuth), RegistryError> {
    // reqwest is built without a TLS provider of its own: it takes the
    // process's, which is ring as everywhere else in gantry.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = options();
    let protocol = if plain_http_allowed(registry, &options.insecure) {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    let client = Client::new(ClientConfig {
        protocol,
        platform_resolver: None,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        user_agent: concat!("gantry/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    });
    let auth = auth::credentials_for(registry, options.token.as_ref())?;
    Ok((client, auth))
}

/// Words a registry error for a person: what the registry said, and the
/// fix when there is an obvious one.
fn registry_error(error: OciDistributionError, registry: &str) -> RegistryError {
    let text = error.to_string();
    let unauthorized = match &error {
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
        OciDistributionError::ServerError { code, .. } => *code == 401 || *code == 403,
        _ => false,
    };
    let mut message = format!("the registry said: {text}");
    let mut hint = None;
    if let OciDistributionError::RequestError(inner) = &error {
        // reqwest's top line hides the cause (refused, TLS, DNS).
        let mut source = std::error::Error::source(inner);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        message = format!(
            "cannot reach the registry: {}",
            message.trim_start_matches("the registry said: ")
        );
        if !plain_http_allowed(registry, &options().insecure) {
            hint = Some(format!(
                "gantry reaches `{registry}` over HTTPS; if it only speaks plain HTTP, and you trust the network to it, pass `--insecure-registry {}`",
                host_of(registry)
            ));
        }
    }
    if unauthorized {
        hint = Some(format!(
            "log in with `docker login {registry}` (gantry reads the `auths` of docker's config.json), or pass `--registry-token` (and `--registry-user`)"
        ));
    }
    RegistryError { message, hint }
}

/// Pulls the plugin at a digest reference, or takes it from the cache.
/// The returned bytes match the manifest's layer digest, and the manifest
/// matches the reference's digest.
pub fn pull(reference: &OciRef) -> Result<Pulled, RegistryError> {
    let Some(manifest_hex) = reference.digest() else {
        return Err(format!("`{reference}` names a tag, which only `gantry lock` resolves").into());
    };
    let cache = BlobCache::open_default().ok();
    if let Some(cache) = &cache
        && let Some(manifest) = cache.read(manifest_hex, MAX_MANIFEST_BYTES)
        && let Ok(layout) = parse_layout(&manifest)
        && let Some(wasm) = cache.read(&layout.layer_hex, MAX_PLUGIN_BYTES)
    {
        return Ok(Pulled {
            manifest_hex: manifest_hex.to_owned(),
            wasm,
            wasm_hex: layout.layer_hex,
            from_cache: true,
        });
    }
    pull_from_registry(reference, cache.as_ref())
}

/// Resolves a tag (or re-checks a digest) at the registry and pulls the
/// plugin it names: `gantry lock`'s way in.
pub fn resolve(reference: &OciRef) -> Result<Pulled, RegistryError> {
    pull_from_registry(reference, BlobCache::open_default().ok().as_ref())
}

fn pull_from_registry(
    reference: &OciRef,
    cache: Option<&BlobCache>,
) -> Result<Pulled, RegistryError> {
    let (client, auth) = client_for(&reference.registry)?;
    block_on(async {
        let image = reference.client_reference();
        let accepted = [
            MANIFEST_MEDIA_TYPE,
            oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
            oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
        ];
        let (manifest, _) = client
            .pull_manifest_raw(&image, &auth, &accepted)
            .await
            .map_err(|e| registry_error(e, &reference.registry))?;
        if manifest.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(format!("its manifest is larger than {MAX_MANIFEST_BYTES} bytes").into());
        }
        // The digest is computed here, never taken from the registry.
        let manifest_hex = sha256_hex(&manifest);
        if let Some(expected) = reference.digest()
            && expected != manifest_hex
        {
            return Err(format!(
                "the registry served a manifest whose sha256 is {manifest_hex}, not the digest asked for ({expected})"
            ).into());
        }
        let layout = parse_layout(&manifest)?;
        let at_digest = reference.at_digest(&manifest_hex).client_reference();
        let wasm = pull_layer(&client, &at_digest, &layout, &reference.registry).await?;
        if let Some(cache) = cache {
            // The cache is a convenience: a run goes on without it.
            let _ = cache.write(&manifest_hex, &manifest);
            let _ = cache.write(&layout.layer_hex, &wasm);
            pull_bundle(&client, &auth, &at_digest, &layout.layer_hex, cache).await;
        }
        Ok(Pulled {
            manifest_hex,
            wasm,
            wasm_hex: layout.layer_hex,
            from_cache: false,
        })
    })?
}

/// Streams a layer, hashing every chunk as it arrives, and refuses it
/// unless its sha256 and length are the descriptor's.
async fn pull_layer(
    client: &Client,
    image: &Reference,
    layout: &Layout,
    registry: &str,
) -> Result<Vec<u8>, RegistryError> {
    let descriptor = OciDescriptor {
        media_type: WASM_LAYER_MEDIA_TYPE.to_owned(),
        digest: format!("sha256:{}", layout.layer_hex),
        size: layout.layer_size as i64,
        ..OciDescriptor::default()
    };
    let mut stream = client
        .pull_blob_stream(image, &descriptor)
        .await
        .map_err(|e| registry_error(e, registry))?;
    let mut hasher = Sha256::new();
    let mut bytes = Vec::with_capacity(layout.layer_size.min(64 << 20) as usize);
    let mismatch = |found: &str| {
        format!(
            "the registry served a layer that does not match its manifest: expected sha256 {}, found {found}",
            layout.layer_hex
        )
    };
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                // oci-client checks the digest too, failing the stream's
                // last read: by then every byte is here to name the culprit.
                if bytes.len() as u64 == layout.layer_size {
                    let found = crate::digest::hex(&hasher.clone().finalize());
                    if found != layout.layer_hex {
                        return Err(mismatch(&found).into());
                    }
                }
                return Err(format!("reading the layer from the registry failed: {error}").into());
            }
        };
        if (bytes.len() + chunk.len()) as u64 > layout.layer_size {
            return Err(format!(
                "the registry served more than the {} bytes its manifest gives the layer",
                layout.layer_size
            )
            .into());
        }
        hasher.update(&chunk);
        bytes.extend_from_slice(&chunk);
    }
    let found = crate::digest::hex(&hasher.finalize());
    if found != layout.layer_hex {
        return Err(mismatch(&found).into());
    }
    Ok(bytes)
}

/// Fetches the Sigstore bundle attached to the plugin manifest by the
/// referrers convention, if any, into the cache beside the wasm. Its
/// absence is normal; a bundle that cannot be fetched is left out, and
/// signature verification then reports it missing.
async fn pull_bundle(
    client: &Client,
    auth: &RegistryAuth,
    image: &Reference,
    wasm_hex: &str,
    cache: &BlobCache,
) {
    let Ok(index) = client
        .pull_referrers(image, Some(SIGSTORE_BUNDLE_MEDIA_TYPE))
        .await
    else {
        return;
    };
    for entry in index.manifests {
        if entry.artifact_type.as_deref() != Some(SIGSTORE_BUNDLE_MEDIA_TYPE) {
            continue;
        }
        let Some(hex) = entry.digest.strip_prefix("sha256:") else {
            continue;
        };
        let referrer = Reference::with_digest(
            image.registry().to_owned(),
            image.repository().to_owned(),
            entry.digest.clone(),
        );
        let Ok((manifest, _)) = client
            .pull_manifest_raw(&referrer, auth, &[MANIFEST_MEDIA_TYPE])
            .await
        else {
            continue;
        };
        if sha256_hex(&manifest) != hex {
            continue;
        }
        let Ok(doc) = serde_json::from_slice::<ManifestDoc>(&manifest) else {
            continue;
        };
        let [layer] = doc.layers.as_slice() else {
            continue;
        };
        if layer.media_type != SIGSTORE_BUNDLE_MEDIA_TYPE || layer.size > MAX_BUNDLE_BYTES {
            continue;
        }
        let mut bundle = Vec::new();
        if client
            .pull_blob(&referrer, layer.digest.as_str(), &mut bundle)
            .await
            .is_ok()
            && Some(sha256_hex(&bundle).as_str()) == layer.digest.strip_prefix("sha256:")
        {
            let _ = cache.write_bundle(wasm_hex, &bundle);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_digest_and_tag_references() {
        let hex = "ab".repeat(32);
        let digest =
            OciRef::parse(&format!("oci://127.0.0.1:5000/steps/hello@sha256:{hex}")).unwrap();
        assert_eq!(digest.registry, "127.0.0.1:5000");
        assert_eq!(digest.repository, "steps/hello");
        assert_eq!(digest.target, OciTarget::Digest(hex.clone()));
        assert_eq!(
            digest.to_string(),
            format!("oci://127.0.0.1:5000/steps/hello@sha256:{hex}")
        );
        let tag = OciRef::parse("oci://ghcr.io/acme/steps/render:1.2.0").unwrap();
        assert_eq!(tag.registry, "ghcr.io");
        assert_eq!(tag.repository, "acme/steps/render");
        assert_eq!(tag.target, OciTarget::Tag("1.2.0".into()));
        assert_eq!(
            tag.at_digest(&hex).to_string(),
            format!("oci://ghcr.io/acme/steps/render@sha256:{hex}")
        );
        for bad in [
            "oci://ghcr.io/acme/render",
            "oci://ghcr.io/acme/render@sha256:ABC",
            "oci://ghcr.io/Acme/render:1",
            "oci:///render:1",
            "oci://ghcr.io",
            "oci://ghcr.io/acme/render:-x",
        ] {
            let error = OciRef::parse(bad).unwrap_err();
            assert!(
                error.contains("oci://REGISTRY/REPO@sha256:DIGEST"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn plain_http_only_for_loopback_or_named_hosts() {
        for loopback in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.8.0.1",
            "[::1]:5000",
        ] {
            assert!(plain_http_allowed(loopback, &[]), "{loopback}");
        }
        for remote in [
            "192.0.2.2:5000",
            "ghcr.io",
            "localhost.example.com:5000",
            "[2001:db8::1]:5000",
        ] {
            assert!(!plain_http_allowed(remote, &[]), "{remote}");
        }
        assert!(plain_http_allowed("reg.lan:5000", &["reg.lan".into()]));
        assert!(plain_http_allowed("reg.lan:5000", &["reg.lan:5000".into()]));
        assert!(!plain_http_allowed(
            "reg.lan:5000",
            &["reg.lan:6000".into()]
        ));
    }

    fn manifest(config: &str, layers: &[&str]) -> Vec<u8> {
        let layers: Vec<_> = layers
            .iter()
            .map(|media_type| {
                serde_json::json!({"mediaType": media_type, "digest": format!("sha256:{}", "cd".repeat(32)), "size": 3})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": config, "digest": format!("sha256:{}", "ef".repeat(32)), "size": 2},
            "layers": layers,
        }))
        .unwrap()
    }

    #[test]
    fn only_the_wasm_artifact_layout_is_accepted() {
        let good =
            parse_layout(&manifest(WASM_CONFIG_MEDIA_TYPE, &[WASM_LAYER_MEDIA_TYPE])).unwrap();
        assert_eq!(good.layer_hex, "cd".repeat(32));
        assert_eq!(good.layer_size, 3);
        let wrong_layer = parse_layout(&manifest(
            WASM_CONFIG_MEDIA_TYPE,
            &["application/vnd.oci.image.layer.v1.tar"],
        ))
        .err()
        .unwrap();
        assert!(
            wrong_layer
                .contains("`application/vnd.oci.image.layer.v1.tar`, expected `application/wasm`"),
            "{wrong_layer}"
        );
        let two = parse_layout(&manifest(
            WASM_CONFIG_MEDIA_TYPE,
            &[WASM_LAYER_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE],
        ))
        .err()
        .unwrap();
        assert!(two.contains("has 2 layers"), "{two}");
        let config = parse_layout(&manifest(
            "application/vnd.oci.image.config.v1+json",
            &[WASM_LAYER_MEDIA_TYPE],
        ))
        .err()
        .unwrap();
        assert!(
            config.contains("config media type is `application/vnd.oci.image.config.v1+json`"),
            "{config}"
        );
        let index = parse_layout(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#)
            .err()
            .unwrap();
        assert!(index.contains("image index"), "{index}");
    }
}
