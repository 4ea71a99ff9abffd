//! Who is calling, and for which namespace (docs/API.md section 5).
//!
//! A bearer value equal to a configured API key is that key: it acts for any user of its
//! namespaces (an application's backend). Anything else must be an HS256 user token signed with
//! the namespace's secret, carrying `sub` (the user), `exp` and `ns`: it acts only as `sub`.
//! `nbf` is checked when present; `iat` and `aud` are accepted unchecked. Every bad bearer value
//! gets the same 401 detail.
//! With no keys and no secrets configured, every request acts like a key for its namespace.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::Settings;
use crate::error::Error;
use crate::model::{Namespace, UserId};

/// The caller's identity once its credentials hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An API key, or anyone in anonymous mode: may act for any user of the namespace.
    Backend,
    /// A user token: acts only as this user, only in chats the user is a member of.
    User(UserId),
}

/// An authenticated request: its namespace and principal.
#[derive(Debug, Clone)]
pub struct Caller {
    pub ns: Namespace,
    pub principal: Principal,
}

impl Caller {
    /// The user a request acts as: `given`, or the token's `sub` when omitted. A user token
    /// naming someone else is 403.
    pub fn acting_as(&self, given: Option<UserId>) -> Result<Option<UserId>, Error> {
        match (&self.principal, given) {
            (Principal::Backend, given) => Ok(given),
            (Principal::User(sub), None) => Ok(Some(sub.clone())),
            (Principal::User(sub), Some(user)) if &user == sub => Ok(Some(user)),
            (Principal::User(sub), Some(user)) => {
                Err(Error::Forbidden(format!("a token for {sub} cannot act as {user}")))
            }
        }
    }

    /// The user whose membership gates reads: only user tokens are gated.
    pub fn reader(&self) -> Option<UserId> {
        match &self.principal {
            Principal::Backend => None,
            Principal::User(sub) => Some(sub.clone()),
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    ns: Option<String>,
}

pub struct Auth {
    anonymous: bool,
    keys: HashMap<String, Vec<String>>,
    secrets: HashMap<String, DecodingKey>,
    max_id_bytes: usize,
}

impl Auth {
    pub fn new(settings: &Settings) -> Auth {
        Auth {
            anonymous: settings.anonymous(),
            keys: settings.auth.api_keys.iter().map(|k| (k.key.expose().to_owned(), k.namespaces.clone())).collect(),
            secrets: settings
                .auth
                .user_token_secrets
                .iter()
                .map(|(ns, secret)| (ns.clone(), DecodingKey::from_secret(secret.as_bytes())))
                .collect(),
            max_id_bytes: settings.limits.max_id_bytes,
        }
    }

    /// Checks a request's credentials. `namespace` is what the request named (header or
    /// parameter), `token` the bearer value. Errors are 401, then 403 for another namespace.
    pub fn check(&self, namespace: Option<&str>, token: Option<&str>) -> Result<Caller, Error> {
        let namespace = namespace.filter(|ns| !ns.is_empty());
        let parse_ns = |ns: Option<&str>| match ns {
            Some(ns) => Namespace::parse(ns, self.max_id_bytes),
            None => Ok(Namespace::default_ns()),
        };
        if self.anonymous {
            return Ok(Caller { ns: parse_ns(namespace)?, principal: Principal::Backend });
        }
        let token =
            token.filter(|t| !t.is_empty()).ok_or_else(|| Error::Unauthorized("a bearer token is required".into()))?;
        if let Some(namespaces) = self.keys.get(token) {
            // m3o derived the tenant from the key; its clients send no namespace header.
            let only = match namespaces.as_slice() {
                [only] => Some(only.as_str()),
                _ => None,
            };
            let ns = parse_ns(namespace.or(only))?;
            if !namespaces.iter().any(|allowed| allowed == ns.as_str()) {
                return Err(Error::Forbidden("this API key is not valid for this namespace".into()));
            }
            return Ok(Caller { ns, principal: Principal::Backend });
        }
        self.user_token(namespace, token)
    }

    fn user_token(&self, namespace: Option<&str>, token: &str) -> Result<Caller, Error> {
        // Which secret to verify with: the request's namespace, or else the one the token names.
        let claimed = unverified_ns(token);
        let ns_name = namespace.map(str::to_owned).or(claimed).unwrap_or_else(|| Namespace::default_ns().to_string());
        let Some(key) = self.secrets.get(&ns_name) else {
            tracing::debug!("refused a bearer value: not an API key, and no token secret for its namespace");
            return Err(bad_token());
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_nbf = true;
        // `aud` belongs to whoever issued the token; docs/API.md section 5 accepts it unchecked.
        validation.validate_aud = false;
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| {
                tracing::debug!(reason = %e, "refused a user token");
                bad_token()
            })?
            .claims;
        if claims.ns.as_deref() != Some(ns_name.as_str()) {
            return Err(Error::Forbidden("this token is for another namespace".into()));
        }
        let ns = Namespace::parse(&ns_name, self.max_id_bytes)?;
        let sub = UserId::parse(&claims.sub, self.max_id_bytes).map_err(|_| bad_token())?;
        Ok(Caller { ns, principal: Principal::User(sub) })
    }
}

/// The one answer to every bearer value that is neither a key nor a token that verifies: which
/// check failed, or whether the namespace takes tokens at all, is nobody's business but the log's.
fn bad_token() -> Error {
    Error::Unauthorized("the bearer value is not a valid API key or user token".into())
}

/// The `ns` claim of a token, read without verifying it: it only picks the secret to verify with.
fn unverified_ns(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes).ok()?.get("ns")?.as_str().map(str::to_owned)
}
