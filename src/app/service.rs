//! The daemon's endpoints: `/metrics`, `/healthz` and `/readyz` for the
//! platform, and, with a `service:` block in the config, `/v1`: events and
//! webhooks that start narrow runs, a job run on request, and each job's
//! status.
//!
//! Owns who may call `/v1` (a bearer token; `?token=` for senders that
//! can set no header, as Docker Hub and Quay; GitHub's signature with its
//! secret), dropping a delivery sent twice, and the answers. Every `/v1`
//! request is checked before its body is parsed; a body that is not what
//! its sender documents is a 400; an event that concerns no job is
//! answered 202 and counted (a registry retries anything else, forever).
//! Never routes an event or starts a run itself: the scheduler does.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::server::{Handler, Request, Response};
use crate::credentials::ServiceSecret;
use crate::sync::daemon::{Control, Shared};
use crate::sync::events::{self, Sender};
use crate::sync::metrics::CONTENT_TYPE;

/// Delivery ids remembered, to drop a retry of what was taken already.
const REMEMBERED: usize = 4096;

/// What the endpoints need.
pub struct Service {
    pub shared: Arc<Shared>,
    pub control: mpsc::Sender<Control>,
    /// `None`: no `service:` block, no `/v1`.
    pub token: Option<ServiceSecret>,
    pub github: Option<ServiceSecret>,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

impl Seen {
    /// Whether `id` was seen before (and remembers it).
    fn again(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return true;
        }
        if self.order.len() >= REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        self.order.push_back(id.to_string());
        self.ids.insert(id.to_string());
        false
    }
}

impl Service {
    pub fn new(
        shared: Arc<Shared>,
        control: mpsc::Sender<Control>,
        token: Option<ServiceSecret>,
        github: Option<ServiceSecret>,
    ) -> Service {
        Service {
            shared,
            control,
            token,
            github,
            seen: Mutex::default(),
        }
    }

    pub fn handler(self: Arc<Self>) -> Handler {
        Arc::new(move |req| {
            let this = self.clone();
            Box::pin(async move { this.answer(req).await })
        })
    }

    async fn answer(&self, req: Request) -> Response {
        use hyper::Method;
        let path = req.path.clone();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (&req.method, parts.as_slice()) {
            (&Method::GET | &Method::HEAD, ["metrics"]) => Response {
                status: 200,
                content_type: CONTENT_TYPE,
                body: self.shared.metrics.encode(&self.shared.stores),
            },
            (&Method::GET | &Method::HEAD, ["healthz"]) => match self.shared.health.alive() {
                true => Response::text(200, "ok\n"),
                false => Response::text(503, "the scheduler is stuck\n"),
            },
            (&Method::GET | &Method::HEAD, ["readyz"]) => match self.shared.health.ready() {
                true => Response::text(200, "ready\n"),
                false => Response::text(503, "first runs still going\n"),
            },
            (_, ["v1", ..]) if self.token.is_none() => {
                Response::text(404, "no /v1 endpoints: the config has no service: block\n")
            }
            (&Method::GET, ["v1", "status"]) => match self.bearer(&req) {
                true => Response::json(200, &self.shared.status()),
                false => unauthorized(),
            },
            (&Method::POST, ["v1", "jobs", job, "run"]) => match self.bearer(&req) {
                true => self.run_job(job).await,
                false => unauthorized(),
            },
            (&Method::POST, ["v1", "events", name]) => match Sender::from_path(name) {
                Some(sender) => self.events(sender, &req).await,
                None => Response::text(404, "no such event sender\n"),
            },
            (_, ["v1", ..]) | (_, ["metrics" | "healthz" | "readyz"]) => {
                Response::text(405, "method not allowed\n")
            }
            _ => Response::text(404, "not found\n"),
        }
    }

    /// `Authorization: Bearer <token>`.
    fn bearer(&self, req: &Request) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        req.header("authorization")
            .is_some_and(|h| token.authorizes(h))
    }

    /// The bearer token, or `?token=` (for senders that can set no
    /// header), or, from GitHub with a secret configured, its signature.
    fn sender_proven(&self, sender: Sender, req: &Request) -> bool {
        if sender == Sender::GitHub
            && let Some(secret) = &self.github
        {
            return req
                .header("x-hub-signature-256")
                .is_some_and(|sig| secret.signed(&req.body, sig));
        }
        if self.bearer(req) {
            return true;
        }
        let (Some(token), Some(query)) = (&self.token, &req.query) else {
            return false;
        };
        query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("token="))
            .any(|t| token.matches(t.as_bytes()))
    }

    async fn run_job(&self, job: &str) -> Response {
        let (reply, answer) = oneshot::channel();
        let control = Control::RunJob {
            job: job.to_string(),
            reply,
        };
        match ask(&self.control, control, answer).await {
            Some(true) => Response::json(202, &json!({"job": job, "queued": true})),
            Some(false) => Response::json(404, &json!({"error": format!("no job {job:?}")})),
            None => Response::text(503, "the scheduler did not answer\n"),
        }
    }

    async fn events(&self, sender: Sender, req: &Request) -> Response {
        let name = sender.name();
        let metrics = &self.shared.metrics;
        if !self.sender_proven(sender, req) {
            metrics.event(name, "unauthorized");
            tracing::warn!(
                sender = name,
                "an event without a valid token or signature: refused"
            );
            return unauthorized();
        }
        let kind = req.header("x-github-event");
        let parsed = match events::parse(sender, kind, &req.body) {
            Ok(e) => e,
            Err(e) => {
                metrics.event(name, "invalid");
                tracing::warn!("{e}");
                return Response::json(400, &json!({"error": e.to_string()}));
            }
        };
        let delivery = req.header("x-github-delivery").map(str::to_string);
        let mut fresh = Vec::new();
        let mut answers = Vec::new();
        for (i, e) in parsed.into_iter().enumerate() {
            let id =
                e.id.clone()
                    .or_else(|| delivery.as_ref().map(|d| format!("{d}#{i}")));
            let again = id
                .as_deref()
                .is_some_and(|id| self.seen.lock().is_ok_and(|mut s| s.again(id)));
            if again {
                metrics.event(name, "duplicate");
                answers.push(json!({"repository": e.repository, "tag": e.tag, "duplicate": true}));
            } else {
                fresh.push(e);
            }
        }
        if fresh.is_empty() {
            return Response::json(202, &json!({"events": answers}));
        }
        let (reply, answer) = oneshot::channel();
        let described: Vec<(String, Option<String>)> = fresh
            .iter()
            .map(|e| (format!("{}/{}", e.host, e.repository), e.tag.clone()))
            .collect();
        let control = Control::Events {
            events: fresh,
            reply,
        };
        let Some(routed) = ask(&self.control, control, answer).await else {
            return Response::text(503, "the scheduler did not answer\n");
        };
        for ((repository, tag), r) in described.into_iter().zip(routed) {
            match r {
                Ok(to) => {
                    metrics.event(name, "queued");
                    let jobs: Vec<&str> = to.iter().map(|r| r.job.as_str()).collect();
                    tracing::info!(sender = name, repository, tag, ?jobs, "event queued");
                    answers.push(json!({"repository": repository, "tag": tag, "jobs": jobs}));
                }
                Err(why) => {
                    metrics.event(name, "ignored");
                    tracing::info!(sender = name, repository, tag, "event ignored: {why}");
                    answers.push(json!({"repository": repository, "tag": tag, "ignored": why}));
                }
            }
        }
        Response::json(202, &json!({"events": answers}))
    }
}

/// Sends a control and waits (briefly) for the scheduler's answer.
async fn ask<T>(
    control: &mpsc::Sender<Control>,
    message: Control,
    answer: oneshot::Receiver<T>,
) -> Option<T> {
    let wait = Duration::from_secs(5);
    tokio::time::timeout(wait, control.send(message))
        .await
        .ok()?
        .ok()?;
    tokio::time::timeout(wait, answer).await.ok()?.ok()
}

fn unauthorized() -> Response {
    Response::text(401, "a valid token is required\n")
}
