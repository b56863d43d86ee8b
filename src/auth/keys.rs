//! Verification keys: the HS256 secret, public keys from PEM files, and JWKS (a file, or a
//! URL refreshed in the background). Each key carries the one algorithm it verifies, so a
//! token can never choose how it is checked (no `none`, no HS256 signed with an RSA public
//! key). A token naming an unknown `kid` is refused on the spot: no fetch is ever made
//! because of what a token says.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

#[derive(Clone)]
pub struct VerificationKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no RSA, EC P-256 or Ed25519 public key in PEM form")]
    Pem { path: String },
    #[error("the JWKS is not valid JSON Web Key Set JSON: {0}")]
    Jwks(String),
    #[error("cannot fetch the JWKS from {url}: {reason}")]
    Fetch { url: String, reason: String },
}

/// The keys in force. Cloning shares them, so a background refresh reaches every clone.
#[derive(Clone, Default)]
pub struct KeySet {
    static_keys: Arc<Vec<VerificationKey>>,
    jwks: Arc<RwLock<Arc<Vec<VerificationKey>>>>,
    /// Bumped whenever the keys change, so what was verified with others is checked again.
    generation: Arc<AtomicU64>,
}

impl KeySet {
    pub fn new(static_keys: Vec<VerificationKey>) -> Self {
        Self {
            static_keys: Arc::new(static_keys),
            jwks: Arc::default(),
            generation: Arc::default(),
        }
    }

    pub fn hs256(secret: &[u8]) -> VerificationKey {
        VerificationKey {
            kid: None,
            alg: Algorithm::HS256,
            key: DecodingKey::from_secret(secret),
        }
    }

    /// Replaces the JWKS keys (on start and at each refresh).
    pub fn set_jwks(&self, keys: Vec<VerificationKey>) {
        if let Ok(mut slot) = self.jwks.write() {
            *slot = Arc::new(keys);
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Which set of keys is in force: it changes with every `set_jwks`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.static_keys.is_empty() && self.jwks.read().map(|k| k.is_empty()).unwrap_or(true)
    }

    /// The key for a token's header: by `kid` when it names one (which must then exist),
    /// otherwise the one key without a `kid` for the header's algorithm.
    pub fn select(&self, alg: Algorithm, kid: Option<&str>) -> Option<VerificationKey> {
        let jwks = self.jwks.read().map(|k| Arc::clone(&k)).unwrap_or_default();
        let all = self.static_keys.iter().chain(jwks.iter());
        let found = match kid {
            Some(kid) => all
                .filter(|k| k.kid.as_deref() == Some(kid))
                .find(|k| k.alg == alg),
            None => all.filter(|k| k.kid.is_none()).find(|k| k.alg == alg),
        };
        found.cloned()
    }
}

/// A public key from a PEM file; the algorithm follows from the key type (RSA: RS256,
/// EC P-256: ES256, Ed25519: EdDSA). The `kid` is the file name without extension.
pub fn from_pem_file(path: &Path) -> Result<VerificationKey, KeyError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| KeyError::Read {
        path: shown.clone(),
        source,
    })?;
    let kid = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let (alg, key) = if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        (Algorithm::RS256, key)
    } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
        (Algorithm::ES256, key)
    } else if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
        (Algorithm::EdDSA, key)
    } else {
        return Err(KeyError::Pem { path: shown });
    };
    Ok(VerificationKey { kid, alg, key })
}

/// The usable signing keys of a JWKS document. Keys without a supported algorithm are
/// skipped, as RFC 7517 §5 allows.
pub fn from_jwks(json: &str) -> Result<Vec<VerificationKey>, KeyError> {
    let set: JwkSet = serde_json::from_str(json).map_err(|e| KeyError::Jwks(e.to_string()))?;
    Ok(set
        .keys
        .iter()
        .filter_map(|jwk| {
            let alg = match (&jwk.common.key_algorithm, &jwk.algorithm) {
                (Some(KeyAlgorithm::RS256), _) => Algorithm::RS256,
                (Some(KeyAlgorithm::ES256), _) => Algorithm::ES256,
                (Some(KeyAlgorithm::EdDSA), _) => Algorithm::EdDSA,
                (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
                (None, AlgorithmParameters::EllipticCurve(_)) => Algorithm::ES256,
                (None, AlgorithmParameters::OctetKeyPair(_)) => Algorithm::EdDSA,
                _ => return None,
            };
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some(VerificationKey {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            })
        })
        .collect())
}

pub fn from_jwks_file(path: &Path) -> Result<Vec<VerificationKey>, KeyError> {
    let json = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    from_jwks(&json)
}

pub async fn fetch_jwks(
    client: &reqwest::Client,
    url: &str,
) -> Result<Vec<VerificationKey>, KeyError> {
    let fail = |reason: String| KeyError::Fetch {
        url: url.to_owned(),
        reason,
    };
    let res = client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !res.status().is_success() {
        return Err(fail(format!("status {}", res.status())));
    }
    let body = res.text().await.map_err(|e| fail(e.to_string()))?;
    from_jwks(&body)
}
