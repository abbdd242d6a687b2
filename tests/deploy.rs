//! The Kubernetes manifests under deploy/ parse, hang together (the
//! Indexed Job's shard count, the daemon's metrics port and probes) and
//! carry a config that `ocirepl sync --check` accepts, ready for --daemon.

mod support;

use std::path::Path;

use support::*;

fn documents(name: &str) -> Vec<serde_json::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn one(name: &str, kind: &str) -> serde_json::Value {
    documents(name)
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {name}"))
}

fn args(pod_spec: &serde_json::Value) -> Vec<String> {
    pod_spec["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_manifests_hang_together_and_carry_a_valid_config() {
    let config = one("configmap.yaml", "ConfigMap");
    let text = config["data"]["mirror.yaml"].as_str().expect("mirror.yaml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mirror.yaml");
    std::fs::write(&path, text).unwrap();
    let (code, _, err) = run(&["sync", "--check", &path.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("jobs, valid") && !err.contains("not for --daemon"),
        "{err}"
    );

    let cron = one("cronjob.yaml", "CronJob");
    let pod = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert!(args(pod).contains(&"--metrics-file".to_string()));
    assert_eq!(
        args(pod).last().map(String::as_str),
        Some("/config/mirror.yaml")
    );

    let job = one("indexed-job.yaml", "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], spec["parallelism"]);
    let a = args(&spec["template"]["spec"]);
    let shards = a.iter().position(|x| x == "--shards").expect("--shards");
    assert_eq!(a[shards + 1], spec["completions"].to_string());

    let deploy = one("deployment.yaml", "Deployment");
    let pod = &deploy["spec"]["template"]["spec"];
    let a = args(pod);
    assert!(a.contains(&"--daemon".to_string()));
    let addr = &a[a.iter().position(|x| x == "--listen").expect("--listen") + 1];
    let container = &pod["containers"][0];
    assert_eq!(
        addr.rsplit(':').next().unwrap(),
        container["ports"][0]["containerPort"].to_string()
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    // The Service reaches the same port, by its name.
    let service = one("deployment.yaml", "Service");
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"],
        container["ports"][0]["name"]
    );
    assert_eq!(
        service["spec"]["selector"]["app"],
        deploy["spec"]["template"]["metadata"]["labels"]["app"]
    );
    // Every secret variable the pod reads, the Secret provides.
    let secret = one("secret.yaml", "Secret");
    for env in container["env"].as_array().unwrap() {
        if let Some(key) = env["valueFrom"]["secretKeyRef"]["key"].as_str() {
            assert!(secret["stringData"][key].is_string(), "{key}");
        }
    }
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(
        documents("deployment.yaml")
            .iter()
            .any(|d| d["kind"] == "PersistentVolumeClaim")
    );
    // Every pod reads the same config map and credentials.
    for (name, kind) in [
        ("cronjob.yaml", "CronJob"),
        ("indexed-job.yaml", "Job"),
        ("deployment.yaml", "Deployment"),
    ] {
        let text = serde_json::to_string(&one(name, kind)).unwrap();
        assert!(
            text.contains("ocirepl-config") && text.contains("ocirepl-credentials"),
            "{name}"
        );
    }
    let _ = one("secret.yaml", "Secret");
}
