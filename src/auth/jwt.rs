//! HS256 bearer tokens: verification with every registered claim required, and minting for
//! `crm token` and dev mode.

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use super::Principal;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub org: String,
    #[serde(default)]
    pub scope: String,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub aud: String,
}

/// Why a token was refused. The text is safe to show the client.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is expired")]
    Expired,
    #[error("the access token is invalid")]
    Invalid,
    #[error("the access token has no {0} claim")]
    MissingClaim(&'static str),
}

#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str, leeway_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = leeway_secs;
        validation.validate_nbf = true;
        Self {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let data = decode::<Claims>(token, &self.key, &self.validation).map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::MissingRequiredClaim(_) => TokenError::Invalid,
                _ => TokenError::Invalid,
            }
        })?;
        let claims = data.claims;
        if claims.org.trim().is_empty() || claims.org.len() > 64 {
            return Err(TokenError::MissingClaim("org"));
        }
        if claims.sub.trim().is_empty() || claims.sub.len() > 255 {
            return Err(TokenError::MissingClaim("sub"));
        }
        Ok(Principal {
            scopes: Principal::parse_scopes(&claims.scope),
            sub: claims.sub,
            org: claims.org,
        })
    }
}

/// Mints HS256 tokens with the same secret, issuer and audience the verifier checks.
#[derive(Clone)]
pub struct TokenIssuer {
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl TokenIssuer {
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            key: EncodingKey::from_secret(secret),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    pub fn mint(
        &self,
        sub: &str,
        org: &str,
        scope: &str,
        ttl: chrono::Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: sub.to_owned(),
            org: org.to_owned(),
            scope: scope.to_owned(),
            exp: now + ttl.num_seconds(),
            iat: now,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.key)
    }
}
