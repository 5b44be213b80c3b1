//! `gantry plugin push`'s registry side: publishes a plugin in the CNCF
//! wasm artifact layout (a `application/vnd.wasm.config.v0+json` config and
//! one `application/wasm` layer) with its `gantry:step` metadata as
//! manifest annotations, and optionally attaches a Sigstore bundle to it by
//! the referrers convention.
//!
//! The manifest is serialized here, and its digest is the sha256 of exactly
//! the bytes sent, so the digest printed is the one a pull checks.

use std::collections::BTreeMap;

use oci_client::Reference;
use oci_client::client::Client;
use oci_client::manifest::OciImageIndex;
use serde_json::json;

use super::RegistryError;
use super::{
    MANIFEST_MEDIA_TYPE, OciRef, OciTarget, SIGSTORE_BUNDLE_MEDIA_TYPE, WASM_CONFIG_MEDIA_TYPE,
    WASM_LAYER_MEDIA_TYPE, block_on, client_for, registry_error,
};
use crate::plugin::{PluginKind, metadata, sha256_hex};

/// The OCI empty descriptor's media type: the config of an artifact that
/// needs none (a signature bundle's manifest).
const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// What a push published.
#[derive(Debug)]
pub struct Pushed {
    /// The pushed manifest at its digest: what a pipeline pins.
    pub pinned: OciRef,
    /// The sha256 of the wasm: the `sha256:` pin.
    pub wasm_hex: String,
    /// The digest of the bundle's referrer manifest, if one was attached.
    pub bundle_manifest_hex: Option<String>,
}

/// The manifest annotations for a plugin: its title, and its `gantry:step`
/// metadata, both as a whole and key by key for registry UIs.
pub fn annotations(wasm: &[u8], title: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    out.insert("org.opencontainers.image.title".into(), title.to_owned());
    out.insert(
        "dev.gantry.step.kind".into(),
        PluginKind::of(wasm).as_str().to_owned(),
    );
    let meta = metadata::read(wasm).map_err(|e| format!("its `gantry:step` metadata: {e}"))?;
    if let Some(meta) = meta {
        out.insert("dev.gantry.step.name".into(), meta.name.clone());
        if let Some(version) = &meta.version {
            out.insert("dev.gantry.step.version".into(), version.clone());
            out.insert("org.opencontainers.image.version".into(), version.clone());
        }
        if let Some(description) = &meta.description {
            out.insert("dev.gantry.step.description".into(), description.clone());
            out.insert(
                "org.opencontainers.image.description".into(),
                description.clone(),
            );
        }
        out.insert(
            "dev.gantry.step.metadata".into(),
            serde_json::to_string(&meta).map_err(|e| e.to_string())?,
        );
    }
    Ok(out)
}

/// Pushes `wasm` to `target` (a tag reference) with `annotations`, and
/// attaches `bundle` (a Sigstore bundle's bytes) as a referrer.
pub fn push(
    wasm: &[u8],
    annotations: &BTreeMap<String, String>,
    target: &OciRef,
    bundle: Option<&[u8]>,
) -> Result<Pushed, RegistryError> {
    let OciTarget::Tag(_) = &target.target else {
        return Err(format!(
            "`{target}` names a digest; push to a tag (`oci://REGISTRY/REPO:TAG`)"
        )
        .into());
    };
    let (client, auth) = client_for(&target.registry)?;
    let registry = target.registry.as_str();
    block_on(async {
        let image = target.client_reference();
        client
            .store_auth_if_needed(image.resolve_registry(), &auth)
            .await;
        let wasm_hex = sha256_hex(wasm);
        let os = match PluginKind::of(wasm) {
            PluginKind::Module => "wasip1",
            PluginKind::Component => "wasip2",
        };
        let config = serde_json::to_vec(&json!({
            "architecture": "wasm",
            "os": os,
            "layerDigests": [format!("sha256:{wasm_hex}")],
        }))
        .map_err(|e| RegistryError::from(e.to_string()))?;
        let config_hex = sha256_hex(&config);
        push_blob(&client, &image, wasm, &wasm_hex, registry).await?;
        push_blob(&client, &image, &config, &config_hex, registry).await?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": WASM_CONFIG_MEDIA_TYPE,
                "digest": format!("sha256:{config_hex}"),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": WASM_LAYER_MEDIA_TYPE,
                "digest": format!("sha256:{wasm_hex}"),
                "size": wasm.len(),
            }],
            "annotations": annotations,
        }))
        .map_err(|e| RegistryError::from(e.to_string()))?;
        let manifest_hex = sha256_hex(&manifest);
        client
            .push_manifest_raw(
                &image,
                manifest.clone(),
                MANIFEST_MEDIA_TYPE.parse().unwrap(),
            )
            .await
            .map_err(|e| registry_error(e, registry))?;
        let pinned = target.at_digest(&manifest_hex);
        let bundle_manifest_hex = match bundle {
            Some(bundle) => {
                Some(attach_bundle(&client, &pinned, manifest.len(), bundle, registry).await?)
            }
            None => None,
        };
        Ok(Pushed {
            pinned,
            wasm_hex,
            bundle_manifest_hex,
        })
    })?
}

async fn push_blob(
    client: &Client,
    image: &Reference,
    bytes: &[u8],
    hex: &str,
    registry: &str,
) -> Result<(), RegistryError> {
    let digest = format!("sha256:{hex}");
    if client.blob_exists(image, &digest).await.unwrap_or(false) {
        return Ok(());
    }
    client
        .push_blob(image, bytes.to_vec(), &digest)
        .await
        .map(|_| ())
        .map_err(|e| registry_error(e, registry))
}

/// Pushes a Sigstore bundle as an artifact whose `subject` is the plugin's
/// manifest, and makes it findable: registries with the referrers API
/// index it themselves; for the others the referrers tag
/// (`sha256-<manifest hex>`) gets an index listing it.
async fn attach_bundle(
    client: &Client,
    subject: &OciRef,
    subject_size: usize,
    bundle: &[u8],
    registry: &str,
) -> Result<String, RegistryError> {
    let subject_image = subject.client_reference();
    let subject_hex = subject.digest().expect("a pinned reference").to_owned();
    let empty = b"{}";
    let empty_hex = sha256_hex(empty);
    let bundle_hex = sha256_hex(bundle);
    push_blob(client, &subject_image, empty, &empty_hex, registry).await?;
    push_blob(client, &subject_image, bundle, &bundle_hex, registry).await?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": SIGSTORE_BUNDLE_MEDIA_TYPE,
        "config": {
            "mediaType": EMPTY_CONFIG_MEDIA_TYPE,
            "digest": format!("sha256:{empty_hex}"),
            "size": empty.len(),
        },
        "layers": [{
            "mediaType": SIGSTORE_BUNDLE_MEDIA_TYPE,
            "digest": format!("sha256:{bundle_hex}"),
            "size": bundle.len(),
        }],
        "subject": {
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": format!("sha256:{subject_hex}"),
            "size": subject_size,
        },
    }))
    .map_err(|e| RegistryError::from(e.to_string()))?;
    let manifest_hex = sha256_hex(&manifest);
    let referrer = subject.at_digest(&manifest_hex).client_reference();
    client
        .push_manifest_raw(
            &referrer,
            manifest.clone(),
            MANIFEST_MEDIA_TYPE.parse().unwrap(),
        )
        .await
        .map_err(|e| registry_error(e, registry))?;
    // `pull_referrers` asks the referrers API and falls back to the tag
    // schema by itself: if the bundle is listed either way, it is found.
    let listed = client
        .pull_referrers(&subject_image, None)
        .await
        .unwrap_or_else(|_| empty_index());
    if listed
        .manifests
        .iter()
        .any(|entry| entry.digest == format!("sha256:{manifest_hex}"))
    {
        return Ok(manifest_hex);
    }
    let mut index = listed;
    index.manifests.push(oci_client::manifest::ImageIndexEntry {
        media_type: MANIFEST_MEDIA_TYPE.to_owned(),
        digest: format!("sha256:{manifest_hex}"),
        size: manifest.len() as i64,
        platform: None,
        annotations: None,
        artifact_type: Some(SIGSTORE_BUNDLE_MEDIA_TYPE.to_owned()),
    });
    let index_bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
        "manifests": index.manifests,
    }))
    .map_err(|e| RegistryError::from(e.to_string()))?;
    let tag = Reference::with_tag(
        subject.registry.clone(),
        subject.repository.clone(),
        format!("sha256-{subject_hex}"),
    );
    client
        .push_manifest_raw(
            &tag,
            index_bytes,
            oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE
                .parse()
                .unwrap(),
        )
        .await
        .map_err(|e| registry_error(e, registry))?;
    Ok(manifest_hex)
}

fn empty_index() -> OciImageIndex {
    OciImageIndex {
        schema_version: 2,
        media_type: Some(oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE.to_owned()),
        manifests: Vec::new(),
        annotations: None,
        artifact_type: None,
    }
}
