//! The credentials a registry may be given, as one type: a user name and
//! password, or an OAuth2 refresh token. Its `Debug` never shows the
//! secret.
//!
//! Owns the values only. Never decides where they are sent (that is the
//! transport's) or where they come from (the rest of `credentials`).

use std::fmt;

/// What we may present to one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password: HTTP Basic, or Basic to the token server.
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (docker's `identitytoken`): exchanged at the
    /// token server for access tokens.
    IdentityToken { username: String, token: String },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username:?}, ***)"),
            Credentials::IdentityToken { username, .. } => {
                write!(f, "IdentityToken({username:?}, ***)")
            }
        }
    }
}

impl Credentials {
    pub fn basic(username: &str, password: &str) -> Credentials {
        Credentials::Basic {
            username: username.to_string(),
            password: password.to_string(),
        }
    }

    pub fn identity_token(username: &str, token: &str) -> Credentials {
        Credentials::IdentityToken {
            username: username.to_string(),
            token: token.to_string(),
        }
    }

    /// Parses `USER:PASS` (the password may contain colons).
    pub fn parse(s: &str) -> Option<Credentials> {
        let (u, p) = s.split_once(':')?;
        (!u.is_empty()).then(|| Credentials::basic(u, p))
    }

    pub fn username(&self) -> &str {
        match self {
            Credentials::Basic { username, .. } | Credentials::IdentityToken { username, .. } => {
                username
            }
        }
    }

    /// `USER:PASS` as HTTP Basic sends it (before base64). An identity
    /// token without a user name goes as docker's `<token>` user, the GET
    /// fallback of the refresh-token flow.
    pub fn basic_text(&self) -> String {
        match self {
            Credentials::Basic { username, password } => format!("{username}:{password}"),
            Credentials::IdentityToken { username, token } => {
                let user = if username.is_empty() {
                    "<token>"
                } else {
                    username
                };
                format!("{user}:{token}")
            }
        }
    }
}
