//! Making signatures: `gantry plugin keygen` writes an ECDSA P-256 key pair
//! (the Sigstore and cosign default), `gantry plugin sign` writes a
//! Sigstore bundle v0.3 for a file, and the run attestation is signed with
//! the same kind of key.

use std::path::{Path, PathBuf};

use sigstore_verify::bundle::{BundleV03, VerificationMaterialV03};
use sigstore_verify::crypto::KeyPair;
use sigstore_verify::types::bundle::{MessageDigest, MessageSignature, SignatureContent};
use sigstore_verify::types::{DerPublicKey, HashAlgorithm, Sha256Hash};

use super::fingerprint;
use crate::digest::sha256_hex;

/// Why a private key file cannot be used to sign.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the key `{}` is not a PEM file", path.display())]
    NotPem {
        path: PathBuf,
        #[source]
        source: pem::PemError,
    },
    #[error("the key `{}` is a `{tag}` PEM block, not a PKCS#8 `PRIVATE KEY`", path.display())]
    NotPkcs8 { path: PathBuf, tag: String },
    #[error("the key `{}` is not an ECDSA P-256 private key gantry can sign with: {reason}", path.display())]
    NotP256 { path: PathBuf, reason: String },
    #[error("cannot derive the public key of `{}`: {reason}", path.display())]
    NoPublic { path: PathBuf, reason: String },
}

impl crate::hint::Hinted for KeyError {
    fn hint(&self) -> Option<String> {
        match self {
            KeyError::NotPkcs8 { .. } => {
                Some("convert it with `openssl pkcs8 -topk8 -nocrypt -in OLD -out NEW`".into())
            }
            _ => None,
        }
    }
}

/// A private signing key and its public half.
pub struct SigningKey {
    pair: KeyPair,
    public: DerPublicKey,
}

impl SigningKey {
    /// Reads a PEM PKCS#8 private key (`-----BEGIN PRIVATE KEY-----`), as
    /// `gantry plugin keygen` and `openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256` write it.
    pub fn from_pem_file(path: &Path) -> Result<SigningKey, KeyError> {
        let path_buf = || path.to_owned();
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path_buf(),
            source,
        })?;
        let parsed = pem::parse(&text).map_err(|source| KeyError::NotPem {
            path: path_buf(),
            source,
        })?;
        if parsed.tag() != "PRIVATE KEY" {
            return Err(KeyError::NotPkcs8 {
                path: path_buf(),
                tag: parsed.tag().to_owned(),
            });
        }
        let pair = KeyPair::from_pkcs8_der(parsed.contents()).map_err(|e| KeyError::NotP256 {
            path: path_buf(),
            reason: e.to_string(),
        })?;
        let public = pair.public_key_der().map_err(|e| KeyError::NoPublic {
            path: path_buf(),
            reason: e.to_string(),
        })?;
        Ok(SigningKey { pair, public })
    }

    /// The public key, DER SubjectPublicKeyInfo.
    pub fn public_key(&self) -> &DerPublicKey {
        &self.public
    }

    /// Signs `data` (ECDSA over its SHA-256), DER-encoded.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        self.pair
            .sign(data)
            .map(|signature| signature.as_bytes().to_vec())
            .map_err(|e| format!("cannot sign: {e}"))
    }

    /// A Sigstore bundle v0.3 (JSON) holding a signature over the sha256 of
    /// `bytes`, naming the key by its fingerprint. It has no transparency-log
    /// entry: it is for verification against the key itself.
    pub fn bundle_for(&self, bytes: &[u8]) -> Result<String, String> {
        let digest = Sha256Hash::from_hex(&sha256_hex(bytes)).map_err(|e| e.to_string())?;
        let signature = self
            .pair
            .sign_digest(&digest)
            .map_err(|e| format!("cannot sign: {e}"))?;
        let content = SignatureContent::MessageSignature(
            MessageSignature::new(signature).with_message_digest(MessageDigest::new(
                HashAlgorithm::Sha2256,
                digest.as_bytes().to_vec().into(),
            )),
        );
        let material = VerificationMaterialV03::PublicKey {
            hint: fingerprint(&self.public),
        };
        let bundle = BundleV03::new(material, content).into_bundle();
        bundle
            .to_json_pretty()
            .map(|mut json| {
                json.push('\n');
                json
            })
            .map_err(|e| e.to_string())
    }
}

/// A new ECDSA P-256 key pair: the private key as PEM PKCS#8 and the public
/// key as PEM SubjectPublicKeyInfo.
pub fn generate_key_pair() -> Result<(String, String), String> {
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| "cannot generate a key pair".to_string())?;
    let pair = KeyPair::from_pkcs8_der(pkcs8.as_ref()).map_err(|e| e.to_string())?;
    let public = pair.public_key_der().map_err(|e| e.to_string())?;
    let private = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref()));
    Ok((private, public.to_pem()))
}
