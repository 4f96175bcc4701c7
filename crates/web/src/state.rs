//! What every handler can reach, and the one-hop unit of work with authentication.
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::{Method, header, request::Parts};
use kernel::identity::{sessions, tokens};
use kernel::{Db, Error, Principal, Tx};

use crate::error::ApiError;
use crate::i18n::I18n;
use crate::metrics::Metrics;
use crate::pages::customers::panels::{CustomerPanel, Panels};

#[derive(Debug, Clone)]
pub struct Config {
    /// Mark cookies `Secure` (set when Rapport is served over https).
    pub secure_cookies: bool,
    /// The permission catalogue of every area in this build.
    pub permissions: Vec<(&'static str, &'static str)>,
    /// The record types approvals can guard (expense claims; areas add theirs).
    pub workflow: workflow::Registry,
}

impl Default for Config {
    fn default() -> Self {
        let permissions =
            [kernel::identity::permissions::FOUNDATION, customers::PERMISSIONS, workflow::PERMISSIONS].concat();
        Config { secure_cookies: false, permissions, workflow: workflow::Registry::standard() }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub i18n: Arc<I18n>,
    pub metrics: Arc<Metrics>,
    /// The panels of the account and contact pages (customer 360): the built-in ones and
    /// those later areas register with [`AppState::with_panel`].
    pub panels: Panels,
    /// Sessions and tokens whose last use this node is recording right now, so a burst
    /// of requests with one credential writes once, not once per request.
    touching: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl AppState {
    pub fn new(db: Db, config: Config) -> Self {
        AppState {
            db,
            config: Arc::new(config),
            i18n: Arc::new(I18n::load()),
            metrics: Arc::new(Metrics::default()),
            panels: Panels::builtin(),
            touching: Arc::default(),
        }
    }

    /// Adds a panel to the account and contact pages (sales, service, loyalty and
    /// analytics register theirs in `main`, without touching the customer pages).
    pub fn with_panel(mut self, panel: Arc<dyn CustomerPanel>) -> Self {
        self.panels = self.panels.with(panel);
        self
    }

    pub fn permission_names(&self) -> Vec<&'static str> {
        self.config.permissions.iter().map(|(p, _)| *p).collect()
    }

    /// Runs `work` as one read unit of work for the authenticated caller: the principal is
    /// resolved in the same hop as the work itself.
    pub async fn read<T, F>(&self, creds: Credentials, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Tx<'_>, &Principal) -> kernel::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (out, touch) = self.db.read(as_caller(creds, work)).await?;
        self.touch_later(touch);
        Ok(out)
    }

    /// Like [`AppState::read`], in one read-write transaction.
    pub async fn write<T, F>(&self, creds: Credentials, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Tx<'_>, &Principal) -> kernel::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (out, touch) = self.db.write(as_caller(creds, work)).await?;
        self.touch_later(touch);
        Ok(out)
    }

    /// Refreshes a session's or token's last-use time after the response, so reads stay
    /// reads; failures only cost an early idle timeout, so they are logged, not raised.
    fn touch_later(&self, touch: Touch) {
        let Some((creds, who)) = touch else { return };
        let key = match &creds.secret {
            Secret::Session(s) => s.clone(),
            Secret::Bearer(t) => t.clone(),
            Secret::None => return,
        };
        {
            let mut touching = self.touching.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !touching.insert(key.clone()) {
                return;
            }
        }
        let db = self.db.clone();
        let touching = self.touching.clone();
        tokio::spawn(async move {
            let result = db
                .write(move |tx| match &creds.secret {
                    Secret::Session(s) => sessions::touch(tx, s),
                    Secret::Bearer(_) => tokens::touch(tx, &who),
                    Secret::None => Ok(()),
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "could not record session or token use");
            }
            touching.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
        });
    }
}

/// A unit of work that first resolves who is calling, then runs `work` as them; it also
/// hands back the credentials when their last-use time is due for a refresh.
type Touch = Option<(Credentials, Principal)>;

fn as_caller<T, F>(creds: Credentials, work: F) -> impl FnOnce(&mut Tx<'_>) -> kernel::Result<(T, Touch)>
where
    F: FnOnce(&mut Tx<'_>, &Principal) -> kernel::Result<T>,
{
    move |tx| {
        let (who, touch) = creds.resolve(tx)?;
        work(tx, &who).map(|out| (out, touch.then_some((creds, who))))
    }
}

#[derive(Debug, Clone)]
pub enum Secret {
    Bearer(String),
    Session(String),
    None,
}

pub const SESSION_COOKIE: &str = "rapport_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the request presented to prove who it is; checked inside the unit of work.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub secret: Secret,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// State-changing requests made with a session cookie must carry the session's
    /// CSRF token (header for htmx and scripts, form field for plain forms).
    pub needs_csrf: bool,
    pub csrf: Option<String>,
}

impl Credentials {
    /// The form's CSRF field, for page handlers that read it from the body.
    pub fn with_csrf(mut self, token: Option<String>) -> Self {
        if self.csrf.is_none() {
            self.csrf = token;
        }
        self
    }

    pub fn session_secret(&self) -> Option<&str> {
        match &self.secret {
            Secret::Session(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self.secret, Secret::None)
    }

    /// Returns the principal and whether its last-use time should be refreshed.
    pub fn resolve(&self, tx: &mut Tx<'_>) -> kernel::Result<(Principal, bool)> {
        let (mut who, touch) = match &self.secret {
            Secret::Bearer(token) => tokens::resolve(tx, token)?.ok_or(Error::Unauthenticated)?,
            Secret::Session(secret) => {
                let live = sessions::resolve(tx, secret)?.ok_or(Error::Unauthenticated)?;
                if self.needs_csrf && self.csrf.as_deref() != Some(live.csrf_token.as_str()) {
                    return Err(Error::Forbidden("a valid CSRF token (reload the page and try again)".into()));
                }
                (live.principal, live.needs_touch)
            }
            Secret::None => return Err(Error::Unauthenticated),
        };
        who.ip = self.ip.clone();
        who.request_id = self.request_id.clone();
        Ok((who, touch))
    }
}

pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub fn client_ip(parts: &Parts) -> Option<String> {
    parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string())
}

impl<S: Send + Sync> FromRequestParts<S> for Credentials {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|t| t.trim().to_owned());
        let secret = match (bearer, cookie(parts, SESSION_COOKIE)) {
            (Some(token), _) => Secret::Bearer(token),
            (None, Some(session)) if !session.is_empty() => Secret::Session(session.to_owned()),
            _ => Secret::None,
        };
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        Ok(Credentials {
            needs_csrf: !safe && matches!(secret, Secret::Session(_)),
            secret,
            ip: client_ip(parts),
            request_id: parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned),
            csrf: parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned),
        })
    }
}
