//! A docker token server for a real registry in `auth: token` mode: checks
//! Basic credentials or an OAuth2 refresh token, grants the scopes its
//! policy allows, signs the JWT, and records every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use super::fake::{FakeRegistry, Reply, Rule, Seen};
use super::pki::TokenSigner;

pub const SERVICE: &str = "ocirepl-registry";
pub const ISSUER: &str = "ocirepl-token-issuer";

/// Who may do what: user → (password, may push).
#[derive(Clone, Default)]
pub struct Policy {
    pub users: HashMap<String, (String, bool)>,
    /// refresh token → user
    pub refresh_tokens: HashMap<String, String>,
    /// Answer the OAuth2 POST with a new refresh token (rotation).
    pub rotate_to: Option<String>,
    /// Refuse the POST form (404), forcing the GET fallback.
    pub no_oauth_post: bool,
}

/// One token request as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub method: String,
    pub user: Option<String>,
    pub scopes: Vec<String>,
    pub refresh_token: Option<String>,
}

pub struct TokenServer {
    pub fake: FakeRegistry,
    pub signer: TokenSigner,
    pub requests: Arc<Mutex<Vec<TokenRequest>>>,
}

impl TokenServer {
    pub fn start(policy: Policy) -> TokenServer {
        let fake = FakeRegistry::start();
        let signer = TokenSigner::new();
        let requests: Arc<Mutex<Vec<TokenRequest>>> = Arc::default();
        for method in ["GET", "POST"] {
            let (signer, requests, policy) = (signer.clone(), requests.clone(), policy.clone());
            fake.rule(Rule::map(method, "/token", move |seen, _| {
                answer(seen, &policy, &signer, &requests)
            }));
        }
        TokenServer {
            fake,
            signer,
            requests,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://{}/token", self.fake.host())
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }
}

fn decode_query(q: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

fn answer(
    seen: &Seen,
    policy: &Policy,
    signer: &TokenSigner,
    log: &Arc<Mutex<Vec<TokenRequest>>>,
) -> Reply {
    let query = seen.target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut params = decode_query(query);
    if seen.method == "POST" {
        if policy.no_oauth_post {
            return Reply::status(404);
        }
        params.extend(decode_query(&String::from_utf8_lossy(&seen.body)));
    }
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let mut scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .collect();
    scopes.retain(|s| !s.is_empty());
    let refresh_token = get("refresh_token");
    let basic_user = seen.header("authorization").and_then(|h| {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(h.strip_prefix("Basic ")?)
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (u, p) = text.split_once(':')?;
        Some((u.to_string(), p.to_string()))
    });
    let user = match (&refresh_token, &basic_user) {
        (Some(rt), _) => match policy.refresh_tokens.get(rt) {
            Some(u) => Some(u.clone()),
            None => return Reply::status(401),
        },
        (None, Some((u, p))) => match policy.users.get(u) {
            Some((pw, _)) if pw == p => Some(u.clone()),
            // The GET fallback of the OAuth2 flow presents the refresh token as a password.
            _ => match policy.refresh_tokens.get(p) {
                Some(owner) => Some(owner.clone()),
                None => return Reply::status(401),
            },
        },
        (None, None) => None,
    };
    log.lock().unwrap().push(TokenRequest {
        method: seen.method.clone(),
        user: user.clone(),
        scopes: scopes.clone(),
        refresh_token: refresh_token.clone(),
    });
    let may_push = user
        .as_ref()
        .and_then(|u| policy.users.get(u))
        .is_some_and(|(_, push)| *push);
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            let granted: Vec<&str> = actions
                .split(',')
                .filter(|a| user.is_some() && (*a == "pull" || (*a == "push" && may_push)))
                .collect();
            Some(serde_json::json!({"type": kind, "name": name, "actions": granted}))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": user.clone().unwrap_or_default(),
        "aud": get("service").unwrap_or_default(),
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("{now}-{}", log.lock().unwrap().len()),
        "access": access,
    });
    let jwt = signer.sign(&claims);
    let mut body = serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": 300});
    if refresh_token.is_some()
        && let Some(next) = &policy.rotate_to
    {
        body["refresh_token"] = serde_json::Value::String(next.clone());
    }
    Reply::status(200)
        .header("Content-Type", "application/json")
        .body(body.to_string().into_bytes())
}
