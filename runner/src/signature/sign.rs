//! Making signatures: `gantry plugin keygen` writes an ECDSA P-256 key pair
//! (the Sigstore and cosign default), `gantry plugin sign` writes a
//! Sigstore bundle v0.3 for a file, and the run attestation is signed with
//! the same kind of key.

use std::path::Path;

use sigstore_verify::bundle::{BundleV03, VerificationMaterialV03};
use sigstore_verify::crypto::KeyPair;
use sigstore_verify::types::bundle::{MessageDigest, MessageSignature, SignatureContent};
use sigstore_verify::types::{DerPublicKey, HashAlgorithm, Sha256Hash};

use super::fingerprint;
use crate::digest::sha256_hex;

/// A private signing key and its public half.
pub struct SigningKey {
    pair: KeyPair,
    public: DerPublicKey,
}

impl SigningKey {
    /// Reads a PEM PKCS#8 private key (`-----BEGIN PRIVATE KEY-----`), as
    /// `gantry plugin keygen` and `openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256` write it.
    pub fn from_pem_file(path: &Path) -> Result<SigningKey, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the key `{}`: {e}", path.display()))?;
        let parsed = pem::parse(&text)
            .map_err(|e| format!("the key `{}` is not a PEM file: {e}", path.display()))?;
        if parsed.tag() != "PRIVATE KEY" {
            return Err(format!(
                "the key `{}` is a `{}` PEM block, not a PKCS#8 `PRIVATE KEY`\n  hint: convert it with `openssl pkcs8 -topk8 -nocrypt -in OLD -out NEW`",
                path.display(),
                parsed.tag()
            ));
        }
        let pair = KeyPair::from_pkcs8_der(parsed.contents()).map_err(|e| {
            format!(
                "the key `{}` is not an ECDSA P-256 private key gantry can sign with: {e}",
                path.display()
            )
        })?;
        let public = pair
            .public_key_der()
            .map_err(|e| format!("cannot derive the public key: {e}"))?;
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
