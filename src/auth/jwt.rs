//! Bearer tokens: verification hardened beyond the library's defaults, and minting.
//!
//! Checked on every token: the header's `alg` must be the one algorithm of the key it
//! selects (by `kid`, which must be known); `exp`, `iss`, `aud`, `sub` and `org` are
//! required, `exp`/`nbf`/`iat` must be numbers, `nbf` is honoured, leeway is bounded.
//! `jku`, `x5u` and other key-locating headers are never read. A header with `crit` is
//! refused: this service understands no JWS extensions (RFC 7515 §4.1.11).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};

use super::Principal;
use super::keys::KeySet;

/// The claims a token must carry to be accepted. Dates are integers: a string date fails
/// to deserialise and the token is refused.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub org: String,
    #[serde(default)]
    pub scope: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    pub iss: String,
    pub aud: Audience,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// `aud` may be one string or a list (RFC 7519 §4.1.3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Why a token was refused. The text is safe to show the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the access token is expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
    #[error("the access token is invalid")]
    Invalid,
    #[error("the access token was revoked")]
    Revoked,
    #[error("the access token has no usable {0} claim")]
    MissingClaim(&'static str),
    #[error("the access token names critical header extensions this service does not support")]
    CriticalExtension,
}

/// The most clock skew a deployment may allow.
pub const MAX_LEEWAY_SECS: u64 = 300;

/// A verified token: who it speaks for, and its id when it has one (for revocation).
#[derive(Debug, Clone)]
pub struct Verified {
    pub principal: Principal,
    pub jti: Option<String>,
    /// Set on access tokens this service issued to an API client.
    pub client_id: Option<String>,
    pub exp: i64,
}

#[derive(Clone)]
pub struct TokenVerifier {
    keys: KeySet,
    issuer: String,
    audience: String,
    leeway_secs: u64,
    checked: Arc<Checked>,
}

/// Tokens already verified, by their text, with the key generation they were verified
/// against. A client sends the same token with every request, and decoding and checking it
/// again cost a tenth of the CPU of a `{ __typename }` request (perf). An entry answers only
/// while its token is unexpired and the keys are unchanged; a refused token is never kept.
type Checked = quick_cache::sync::Cache<Box<str>, (u64, Verified)>;

/// How many verified tokens are remembered: callers active at once, with room to spare.
const CHECKED_TOKENS: usize = 4_096;

impl TokenVerifier {
    pub fn new(keys: KeySet, issuer: &str, audience: &str, leeway_secs: u64) -> Self {
        Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway_secs: leeway_secs.min(MAX_LEEWAY_SECS),
            checked: Arc::new(Checked::new(CHECKED_TOKENS)),
        }
    }

    /// HS256 with one secret: the development and test setup.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str, leeway_secs: u64) -> Self {
        Self::new(
            KeySet::new(vec![KeySet::hs256(secret)]),
            issuer,
            audience,
            leeway_secs,
        )
    }

    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let generation = self.keys.generation();
        if let Some((checked_with, verified)) = self.checked.get(token)
            && checked_with == generation
            && !self.expired(verified.exp)
        {
            return Ok(verified);
        }
        let verified = self.check(token)?;
        self.checked
            .insert(token.into(), (generation, verified.clone()));
        Ok(verified)
    }

    /// Past `exp` by more than the leeway, as jsonwebtoken judges it.
    fn expired(&self, exp: i64) -> bool {
        let leeway = i64::try_from(self.leeway_secs).unwrap_or(0);
        exp.saturating_add(leeway) < Utc::now().timestamp()
    }

    fn check(&self, token: &str) -> Result<Verified, TokenError> {
        // jsonwebtoken parses `crit` but never acts on it: checked here, on the raw header.
        if has_crit(token)? {
            return Err(TokenError::CriticalExtension);
        }
        // `decode_header` refuses `alg: none` and unknown algorithms outright.
        let header = decode_header(token).map_err(|_| TokenError::Invalid)?;
        let key = self
            .keys
            .select(header.alg, header.kid.as_deref())
            .ok_or(TokenError::Invalid)?;
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        let data = decode::<Claims>(token, &key.key, &validation).map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
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
        Ok(Verified {
            principal: Principal {
                scopes: Principal::parse_scopes(&claims.scope),
                sub: claims.sub,
                org: claims.org,
            },
            jti: claims.jti,
            client_id: claims.client_id,
            exp: claims.exp,
        })
    }
}

/// Whether the JOSE header (the first segment, base64url JSON) has a `crit` parameter, of
/// any value: RFC 7515 §4.1.11 makes a token whose `crit` names an extension the recipient
/// does not understand invalid, and this service understands none (an empty or malformed
/// `crit` is invalid too). Read from the raw JSON, so no library's header type can drop it.
fn has_crit(token: &str) -> Result<bool, TokenError> {
    let encoded = token.split('.').next().unwrap_or_default();
    let json = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| TokenError::Invalid)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)?;
    Ok(header.contains_key("crit"))
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
        self.mint_claims(
            self.claims(sub, org, scope, ttl),
            Header::new(Algorithm::HS256),
        )
    }

    /// An OAuth access token (RFC 9068): `typ: at+jwt`, with `jti` and `client_id`.
    pub fn mint_access_token(
        &self,
        client_id: &str,
        org: &str,
        scope: &str,
        ttl: chrono::Duration,
        jti: &str,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut claims = self.claims(client_id, org, scope, ttl);
        claims.jti = Some(jti.to_owned());
        claims.client_id = Some(client_id.to_owned());
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".to_owned());
        self.mint_claims(claims, header)
    }

    fn claims(&self, sub: &str, org: &str, scope: &str, ttl: chrono::Duration) -> Claims {
        let now = Utc::now().timestamp();
        Claims {
            sub: sub.to_owned(),
            org: org.to_owned(),
            scope: scope.to_owned(),
            exp: now + ttl.num_seconds(),
            nbf: None,
            iat: Some(now),
            iss: self.issuer.clone(),
            aud: Audience::One(self.audience.clone()),
            jti: None,
            client_id: None,
        }
    }

    fn mint_claims(
        &self,
        claims: Claims,
        header: Header,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        encode(&header, &claims, &self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a-test-secret-a-test-secret-a-test";

    fn mint(ttl_secs: i64) -> Result<String, jsonwebtoken::errors::Error> {
        TokenIssuer::hs256(SECRET, "crm", "crm-api").mint(
            "someone",
            "org-1",
            "customers:read",
            chrono::Duration::seconds(ttl_secs),
        )
    }

    #[test]
    fn a_remembered_token_is_refused_once_it_expires() -> Result<(), jsonwebtoken::errors::Error> {
        let verifier = TokenVerifier::hs256(SECRET, "crm", "crm-api", 0);
        let token = mint(1)?;
        assert_eq!(
            verifier.verify(&token).map(|v| v.principal.sub),
            Ok("someone".into())
        );
        std::thread::sleep(std::time::Duration::from_millis(2_100));
        assert_eq!(
            verifier.verify(&token).map(|_| ()),
            Err(TokenError::Expired)
        );
        Ok(())
    }

    #[test]
    fn a_remembered_token_is_checked_again_when_the_keys_change()
    -> Result<(), jsonwebtoken::errors::Error> {
        let keys = KeySet::new(Vec::new());
        keys.set_jwks(vec![KeySet::hs256(SECRET)]);
        let verifier = TokenVerifier::new(keys.clone(), "crm", "crm-api", 0);
        let token = mint(600)?;
        assert!(verifier.verify(&token).is_ok());
        keys.set_jwks(Vec::new());
        assert_eq!(
            verifier.verify(&token).map(|_| ()),
            Err(TokenError::Invalid)
        );
        Ok(())
    }

    #[test]
    fn a_refused_token_is_not_remembered() {
        let verifier = TokenVerifier::hs256(SECRET, "crm", "crm-api", 0);
        for _ in 0..2 {
            assert_eq!(
                verifier.verify("not.a.token").map(|_| ()),
                Err(TokenError::Invalid)
            );
        }
        assert_eq!(verifier.checked.len(), 0);
    }
}
