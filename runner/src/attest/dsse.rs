//! The DSSE envelope a signed run attestation travels in: the statement's
//! JSON as its payload, `application/vnd.in-toto+json` as its type, and one
//! ECDSA signature over the pre-authentication encoding (PAE) of both, so
//! neither the payload nor its type can be swapped without the signature
//! failing.

use sigstore_verify::crypto::{KeyAlgorithm, verify_signature};
use sigstore_verify::types::{
    DerPublicKey, DsseEnvelope, DsseSignature, KeyId, PayloadBytes, SignatureBytes, pae,
};

use crate::signature::fingerprint;
use crate::signature::sign::SigningKey;

/// The payload type of an in-toto statement in DSSE.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A signed attestation as read from a file.
#[derive(Debug, Clone)]
pub struct Envelope {
    inner: DsseEnvelope,
}

impl Envelope {
    /// Signs `payload` (a statement's JSON) with `key`; the signature names
    /// the key by its fingerprint.
    pub fn sign(payload: &[u8], key: &SigningKey) -> Result<Envelope, String> {
        let signature = key.sign(&pae(PAYLOAD_TYPE, payload))?;
        let signature = DsseSignature::new(
            SignatureBytes::new(signature),
            KeyId::new(fingerprint(key.public_key())),
        );
        Ok(Envelope {
            inner: DsseEnvelope::new(PAYLOAD_TYPE, PayloadBytes::new(payload.to_vec()), signature),
        })
    }

    /// Parses an envelope; `None` when the JSON is not one (has no
    /// `payloadType`), an error when it claims to be one and is malformed.
    pub fn parse(json: &serde_json::Value) -> Option<Result<Envelope, String>> {
        json.get("payloadType")?;
        Some(
            serde_json::from_value::<DsseEnvelope>(json.clone())
                .map(|inner| Envelope { inner })
                .map_err(|e| format!("not a DSSE envelope: {e}")),
        )
    }

    /// The envelope's JSON.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(&self.inner).expect("an envelope serializes");
        json.push('\n');
        json
    }

    /// The key id the signature names (unchecked: only a hint).
    pub fn key_id(&self) -> &str {
        self.inner.signature.keyid.as_str()
    }

    /// Checks the signature with `key` and the payload type; returns the
    /// payload when both hold, else what was found instead.
    pub fn verify(&self, key: &DerPublicKey) -> Result<&[u8], String> {
        let scheme = KeyAlgorithm::from_spki(key)
            .map_err(|e| format!("a key gantry cannot use: {e}"))?
            .default_signing_scheme();
        verify_signature(key, &self.inner.pae(), &self.inner.signature.sig, scheme).map_err(
            |_| {
                format!(
                    "a signature that does not verify with that key (the envelope names key `{}`)",
                    self.key_id()
                )
            },
        )?;
        if self.inner.payload_type != PAYLOAD_TYPE {
            return Err(format!(
                "payload type `{}`, not `{PAYLOAD_TYPE}`",
                self.inner.payload_type
            ));
        }
        Ok(self.inner.payload.as_bytes())
    }
}
