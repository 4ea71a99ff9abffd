//! Who a request comes from ([`Who`]: its namespace header and bearer value), the fixture API
//! keys and token secrets of namespaces acme and beta, and JWT user token minting.

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};

/// acme's API key.
pub const ACME_KEY: &str = "acme-backend-key-0123456789";
/// beta's API key.
pub const BETA_KEY: &str = "beta-backend-key-9876543210";
/// An API key bound to both acme and beta.
pub const BOTH_KEY: &str = "acme-and-beta-key-5555555555";
/// The secret acme's user tokens are signed with.
pub const ACME_SECRET: &str = "acme signs its user tokens with this";
/// The secret beta's user tokens are signed with.
pub const BETA_SECRET: &str = "beta signs its user tokens with that";

/// Who a request comes from: its `micro-namespace` header and bearer value, each optional.
#[derive(Debug, Clone, Default)]
pub struct Who {
    pub ns: Option<String>,
    pub bearer: Option<String>,
}

impl Who {
    /// No credentials, in namespace `ns`.
    pub fn in_namespace(ns: &str) -> Who {
        Who { ns: Some(ns.to_owned()), bearer: None }
    }

    /// The headers a request from `self` carries.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(ns) = &self.ns {
            headers.push(("micro-namespace", ns.clone()));
        }
        if let Some(b) = &self.bearer {
            headers.push(("authorization", format!("Bearer {b}")));
        }
        headers
    }
}

/// An API key used in namespace `ns`.
pub fn key(key: &str, ns: &str) -> Who {
    bearer(key, Some(ns))
}

/// A bearer `value` (a key or a token), with a namespace header or without.
pub fn bearer(value: &str, ns: Option<&str>) -> Who {
    Who { ns: ns.map(str::to_owned), bearer: Some(value.to_owned()) }
}

/// A JWT of `claims`, signed HS256 with `secret`.
pub fn jwt(secret: &str, claims: &Value) -> String {
    jwt_with(Header::default(), secret, claims)
}

/// A JWT of `claims` with `header`, signed with `secret`.
pub fn jwt_with(header: Header, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret.as_bytes())).expect("a token")
}

/// A valid user token: `sub` in `ns` (acme or beta), signed with `ns`'s secret, good for an hour.
pub fn user_token(ns: &str, sub: &str) -> String {
    let secret = match ns {
        "acme" => ACME_SECRET,
        "beta" => BETA_SECRET,
        other => panic!("no secret for {other}"),
    };
    jwt(secret, &json!({ "sub": sub, "exp": now_secs() + 3600, "ns": ns }))
}

/// The three dot-separated parts of a token.
pub fn split3(token: &str) -> (&str, &str, &str) {
    let mut parts = token.split('.');
    let mut next = || parts.next().unwrap_or_else(|| panic!("not three parts: {token}"));
    (next(), next(), next())
}

/// Now, in seconds since the epoch.
pub fn now_secs() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("the clock is past 1970");
    now.as_secs() as i64
}
