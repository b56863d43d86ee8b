//! Client secrets: random, shown once, stored as Argon2id PHC strings. Hashing runs on the
//! blocking pool: it is slow on purpose and must not stall the request threads.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

use crate::domain::{Error, Result};

pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("cs_{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub async fn hash(secret: &str) -> Result<String> {
    let secret = secret.to_owned();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(secret.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("hashing a secret: {e}").into()))
    })
    .await
    .map_err(Error::internal)?
}

pub async fn verify_secret(secret: &str, phc: &str) -> bool {
    let (secret, phc) = (secret.to_owned(), phc.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// Does the work of one verification for nothing.
pub async fn burn(secret: &str) {
    let _ = hash(secret).await;
}
