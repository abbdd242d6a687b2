//! From an announced push to the narrow run it asks for: which jobs read
//! the repository the event names (on the registry that sent it, under
//! any name the config gives that registry), and whether their filters
//! keep the tag.
//!
//! Owns that routing and the [`Trigger`] a run is narrowed to. An event
//! never widens what a job copies: a triggered run is the job's own run
//! (its filters, `latest`, immutable tags, verification) restricted to
//! the named repositories and tags, and never prunes. Pure: never reads a
//! registry.

use std::collections::{BTreeMap, BTreeSet};

use super::events::{Action, Event};
use super::job::{Config, Endpoint, Job};
use crate::manifest::referrers::is_attachment_tag;
use crate::reference::Place;

/// What a triggered run of one job may copy: source repositories (paths
/// on the job's source registry) and their tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trigger {
    pub repositories: BTreeMap<String, BTreeSet<String>>,
}

impl Trigger {
    pub fn add(&mut self, repository: &str, tag: &str) {
        self.repositories
            .entry(repository.to_string())
            .or_default()
            .insert(tag.to_string());
    }

    /// Adds everything `other` names (events that arrived while this run
    /// waited).
    pub fn merge(&mut self, other: Trigger) {
        for (repo, tags) in other.repositories {
            self.repositories.entry(repo).or_default().extend(tags);
        }
    }

    /// Whether this run may copy `tag` of `repository`.
    pub fn admits(&self, repository: &str, tag: &str) -> bool {
        self.repositories
            .get(repository)
            .is_some_and(|t| t.contains(tag))
    }

    pub fn tags(&self) -> usize {
        self.repositories.values().map(BTreeSet::len).sum()
    }
}

/// One job an event concerns, and what of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub job: String,
    pub repository: String,
    pub tag: String,
}

/// The jobs `event` concerns, or why it concerns none (for the log and
/// the event counter).
pub fn route(config: &Config, event: &Event) -> Result<Vec<Routed>, String> {
    match &event.action {
        Action::Push => {}
        Action::Delete => {
            return Err("a delete: a mirror copies, it does not follow deletes".into());
        }
        Action::Other(what) => return Err(format!("not a push ({what})")),
    }
    let Some(tag) = &event.tag else {
        return Err("a push by digest, without a tag: jobs mirror tags".into());
    };
    let routed: Vec<Routed> = config
        .jobs
        .iter()
        .filter(|j| reads_from(config, j, &event.host))
        .filter_map(|j| {
            let repository = covered(j, &event.repository)?;
            let kept =
                j.tags.admits(tag) && !(j.options.verify.is_some() && is_attachment_tag(tag));
            kept.then(|| Routed {
                job: j.name.clone(),
                repository,
                tag: tag.clone(),
            })
        })
        .collect();
    match routed.is_empty() {
        true => Err(format!(
            "no job reads {}/{}:{tag} (or its filters leave the tag out)",
            event.host, event.repository
        )),
        false => Ok(routed),
    }
}

/// Whether `host` (as an event names it) is the registry `job` reads:
/// the same server however spelled, or a name `registries.HOST.aliases`
/// gives it.
fn reads_from(config: &Config, job: &Job, host: &str) -> bool {
    let source = job.source.registry();
    let named = Place::of_registry(host);
    if named.same(&Place::of_registry(source)) {
        return true;
    }
    let source_place = Place::of_registry(source);
    config.registries.iter().any(|r| {
        Place::of_registry(&r.host).same(&source_place)
            && r.aliases.iter().any(|a| Place::of_registry(a).same(&named))
    })
}

/// The source repository of `job` that is `repository`, if the job reads
/// it (its own repository; or one below its namespace the repository
/// filters keep).
fn covered(job: &Job, repository: &str) -> Option<String> {
    match &job.source {
        Endpoint::Repository(r) => (r.repository() == repository).then(|| repository.to_string()),
        Endpoint::Namespace { prefix, .. } => {
            let below = repository.strip_prefix(prefix.as_str())?;
            (!below.is_empty() && job.repositories.admits(below)).then(|| repository.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::config::parse;
    use crate::sync::job::validate;

    fn config(text: &str) -> Config {
        let path = std::path::Path::new("t.yaml");
        validate(path, parse(path, text).unwrap()).unwrap()
    }

    fn push(host: &str, repo: &str, tag: Option<&str>) -> Event {
        Event {
            id: None,
            action: Action::Push,
            host: host.into(),
            repository: repo.into(),
            tag: tag.map(str::to_string),
            digest: None,
        }
    }

    const JOBS: &str = r#"
version: 1
registries:
  "registry.internal:5000":
    aliases: ["registry.example.com"]
jobs:
  - name: app
    source: localhost:5000/team/app
    target: mirror.example.com/app
    tags: {include: ["v*"], exclude: ["*-rc"]}
  - name: team
    source: registry.internal:5000/acme/
    repositories: {include: ["svc-*"]}
    target: mirror.example.com/acme/
"#;

    #[test]
    fn an_event_reaches_the_jobs_that_read_it_and_never_more() {
        let c = config(JOBS);
        let to = |e: &Event| route(&c, e).map(|r| r.into_iter().map(|r| r.job).collect::<Vec<_>>());
        // The same server however spelled.
        assert_eq!(
            to(&push("127.0.0.1:5000", "team/app", Some("v1"))),
            Ok(vec!["app".into()])
        );
        // Filters leave these out; another repository or registry too.
        assert!(to(&push("127.0.0.1:5000", "team/app", Some("v1-rc"))).is_err());
        assert!(to(&push("127.0.0.1:5000", "team/app", Some("latest"))).is_err());
        assert!(to(&push("127.0.0.1:5000", "team/other", Some("v1"))).is_err());
        assert!(to(&push("127.0.0.1:5001", "team/app", Some("v1"))).is_err());
        assert!(to(&push("127.0.0.1:5000", "team/app", None)).is_err());
        // A namespace job, under the name the registry calls itself.
        assert_eq!(
            to(&push("registry.example.com", "acme/svc-a", Some("1"))),
            Ok(vec!["team".into()])
        );
        assert!(to(&push("registry.example.com", "acme/db", Some("1"))).is_err());
        assert!(to(&push("elsewhere.example.com", "acme/svc-a", Some("1"))).is_err());
        let mut deleted = push("127.0.0.1:5000", "team/app", Some("v1"));
        deleted.action = Action::Delete;
        assert!(to(&deleted).is_err());
    }

    #[test]
    fn triggers_merge_and_admit_only_what_they_name() {
        let mut a = Trigger::default();
        a.add("team/app", "v1");
        let mut b = Trigger::default();
        b.add("team/app", "v2");
        b.add("team/other", "v1");
        a.merge(b);
        assert!(a.admits("team/app", "v1") && a.admits("team/app", "v2"));
        assert!(!a.admits("team/app", "v3"));
        assert_eq!(a.tags(), 3);
    }
}
