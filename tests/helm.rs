//! The Helm charts: `helm/gatehouse` (standalone, and its sidecar templates)
//! and `helm/examples/sidecar-app` (an app using them).
//!
//! - `helm lint --strict` passes for both, with every values file kept in the
//!   repo (`helm/gatehouse/ci/*.yaml`);
//! - what they render passes `kubernetes-validate --strict -k 1.30.0` (PyPI),
//!   every object but the two CRD kinds the validator has no schema for
//!   (`ServiceMonitor`, `HTTPRoute`: it prints a WARN and exits 0 for them),
//!   whose references this file checks against the rendered Service instead;
//! - what they render runs: the rendered `gatehouse.yaml`, the container's
//!   args and env are given to the real binary, which passes `check-config`,
//!   then answers the probes' paths on the probes' port and `/metrics` on the
//!   metrics port, and exits 0 on SIGTERM;
//! - several pods on SQLite are refused at template time.
//!
//! Tools come from the environment, each check printing a SKIP line without
//! its tool: `GATEHOUSE_TEST_HELM` (the helm binary) and
//! `GATEHOUSE_TEST_KUBE_VALIDATE` (a `PYTHONPATH` folder holding PyPI's
//! `kubernetes-validate`, run as `python3 -m kubernetes_validate`). `.ci/run`
//! installs both under `target/ci-tools`.

mod common;

use common::*;
use serde::Deserialize;
use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Kinds from CRDs, which kubernetes-validate has no schema for.
const CRD_KINDS: [&str; 2] = ["ServiceMonitor", "HTTPRoute"];

fn helm_bin(test: &str) -> Option<PathBuf> {
    let helm = std::env::var_os("GATEHOUSE_TEST_HELM").map(PathBuf::from);
    if helm.is_none() {
        println!("SKIP {test}: GATEHOUSE_TEST_HELM (the helm binary) is not set");
    }
    helm
}

fn kube_validate(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("GATEHOUSE_TEST_KUBE_VALIDATE").map(PathBuf::from);
    if dir.is_none() {
        println!(
            "SKIP {test}: GATEHOUSE_TEST_KUBE_VALIDATE (a PYTHONPATH folder with kubernetes-validate) is not set"
        );
    }
    dir
}

/// A copy of the repository's `helm/` folder, with the example's dependency on
/// `file://../../gatehouse` fetched into its `charts/` (no network), made once
/// per test binary so that no test writes into the source tree.
struct Charts {
    dir: tempfile::TempDir,
}

impl Charts {
    fn gatehouse(&self) -> PathBuf {
        self.dir.path().join("helm/gatehouse")
    }
    fn example(&self) -> PathBuf {
        self.dir.path().join("helm/examples/sidecar-app")
    }
    fn helm_home(&self) -> PathBuf {
        self.dir.path().join("helm-home")
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        // A developer's own `helm dependency update` output is not the repo's.
        if name == "charts" || name == "Chart.lock" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

fn charts(helm: &Path) -> &'static Charts {
    static CHARTS: OnceLock<Charts> = OnceLock::new();
    CHARTS.get_or_init(|| {
        let charts = Charts {
            dir: tempfile::tempdir().unwrap(),
        };
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("helm"),
            &charts.dir.path().join("helm"),
        );
        let example = charts.example().display().to_string();
        let (ok, out) = run_helm(
            helm,
            &charts,
            &["dependency", "update", "--skip-refresh", &example],
        );
        assert!(ok, "helm dependency update {example}:\n{out}");
        charts
    })
}

/// Run helm with its home folders in the copy (it touches nothing of the
/// user's); returns (success, stdout + stderr).
fn run_helm(helm: &Path, charts: &Charts, args: &[&str]) -> (bool, String) {
    let home = charts.helm_home();
    let out = Command::new(helm)
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("run helm");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `helm template gh CHART ARGS…`: the manifests, or helm's error.
fn template(helm: &Path, charts: &Charts, chart: &Path, args: &[&str]) -> Result<String, String> {
    let chart = chart.display().to_string();
    let mut all = vec!["template", "gh", chart.as_str()];
    all.extend_from_slice(args);
    let home = charts.helm_home();
    let out = Command::new(helm)
        .args(&all)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("run helm");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The objects of a multi-document YAML stream.
fn objects(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or("")
}

fn one<'a>(objs: &'a [Value], k: &str) -> &'a Value {
    let found: Vec<&Value> = objs.iter().filter(|o| kind(o) == k).collect();
    assert_eq!(found.len(), 1, "expected one {k}, got {}", found.len());
    found[0]
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v:?}"))
}

/// The values files the tests render the standalone chart with.
fn standalone_cases() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("defaults", vec![]),
        (
            "ci/standalone-values.yaml",
            vec!["ci/standalone-values.yaml"],
        ),
        (
            "ci/forward-auth-values.yaml",
            vec!["ci/forward-auth-values.yaml"],
        ),
        (
            "ci/postgres-ha-values.yaml",
            vec!["ci/postgres-ha-values.yaml"],
        ),
    ]
}

fn values_args(chart: &Path, files: &[&str]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| ["-f".to_owned(), chart.join(f).display().to_string()])
        .collect()
}

#[test]
fn both_charts_pass_helm_lint_strict() {
    let Some(helm) = helm_bin("helm lint") else {
        return;
    };
    let charts = charts(&helm);
    let gatehouse = charts.gatehouse();
    for (name, files) in standalone_cases() {
        let mut args = vec![
            "lint".to_owned(),
            "--strict".to_owned(),
            gatehouse.display().to_string(),
        ];
        args.extend(values_args(&gatehouse, &files));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out) = run_helm(&helm, charts, &args);
        assert!(ok, "helm lint --strict gatehouse ({name}):\n{out}");
    }
    let example = charts.example().display().to_string();
    let (ok, out) = run_helm(&helm, charts, &["lint", "--strict", &example]);
    assert!(ok, "helm lint --strict sidecar-app:\n{out}");

    // The values schema is enforced: a typo'd key or a wrong type fails.
    let err = template(&helm, charts, &gatehouse, &["--set", "replicaCount=two"]).unwrap_err();
    assert!(err.contains("replicaCount"), "{err}");
    let err = template(&helm, charts, &gatehouse, &["--set", "imag.tag=1"]).unwrap_err();
    assert!(err.contains("imag"), "{err}");
}

/// Run kubernetes-validate on `manifests`: (exit success, its output).
fn validate(pythonpath: &Path, manifests: &str) -> (bool, String) {
    let mut child = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict", "-k", "1.30.0", "-"])
        .env("PYTHONPATH", pythonpath)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 -m kubernetes_validate");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifests.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The validator passed every object it knows and said so, one INFO line
/// each; the CRD objects got its "no schema" WARN (so they are checked by
/// [`check_crd_objects`] instead).
fn assert_valid(pythonpath: &Path, what: &str, manifests: &str) {
    let (ok, said) = validate(pythonpath, manifests);
    assert!(ok, "kubernetes-validate refused {what}:\n{said}");
    assert!(!said.contains("ERROR"), "{what}:\n{said}");
    for o in objects(manifests) {
        let k = kind(&o);
        let name = s(&o["metadata"]["name"]);
        if CRD_KINDS.contains(&k) {
            assert!(
                said.contains(&format!("Couldn't find schema for kind {k}")),
                "{what}: expected the validator's no-schema WARN for {k}:\n{said}"
            );
        } else {
            let line = format!("passed for resource {}/{name}", k.to_lowercase());
            assert!(
                said.contains(&line),
                "{what}: {k}/{name} was not validated:\n{said}"
            );
        }
    }
}

/// What the validator cannot check for the CRD objects, checked here: they
/// point at the rendered Service, by its name, its port and its labels.
fn check_crd_objects(what: &str, objs: &[Value]) {
    for o in objs.iter().filter(|o| CRD_KINDS.contains(&kind(o))) {
        let service = one(objs, "Service");
        let ports = service["spec"]["ports"].as_sequence().unwrap();
        let labels = service["metadata"]["labels"].as_mapping().unwrap();
        match kind(o) {
            "ServiceMonitor" => {
                assert_eq!(o["apiVersion"], "monitoring.coreos.com/v1", "{what}");
                for (k, v) in o["spec"]["selector"]["matchLabels"].as_mapping().unwrap() {
                    assert_eq!(labels.get(k), Some(v), "{what}: ServiceMonitor selector");
                }
                for e in o["spec"]["endpoints"].as_sequence().unwrap() {
                    assert!(
                        ports.iter().any(|p| p["name"] == e["port"]),
                        "{what}: ServiceMonitor port {:?} is not the Service's",
                        e["port"]
                    );
                    assert_eq!(e["path"], "/metrics", "{what}");
                }
            }
            "HTTPRoute" => {
                assert_eq!(o["apiVersion"], "gateway.networking.k8s.io/v1", "{what}");
                assert!(
                    !o["spec"]["parentRefs"].as_sequence().unwrap().is_empty(),
                    "{what}"
                );
                for rule in o["spec"]["rules"].as_sequence().unwrap() {
                    for b in rule["backendRefs"].as_sequence().unwrap() {
                        assert_eq!(b["name"], service["metadata"]["name"], "{what}");
                        assert!(
                            ports.iter().any(|p| p["port"] == b["port"]),
                            "{what}: HTTPRoute port {:?} is not the Service's",
                            b["port"]
                        );
                    }
                }
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn rendered_manifests_pass_kubernetes_validate() {
    let Some(helm) = helm_bin("kubernetes-validate") else {
        return;
    };
    let Some(pythonpath) = kube_validate("kubernetes-validate") else {
        return;
    };
    let charts = charts(&helm);
    let gatehouse = charts.gatehouse();
    let mut crds_seen = Vec::new();
    for (name, files) in standalone_cases() {
        let args = values_args(&gatehouse, &files);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let manifests = template(&helm, charts, &gatehouse, &args)
            .unwrap_or_else(|e| panic!("helm template gatehouse ({name}): {e}"));
        assert_valid(&pythonpath, name, &manifests);
        let objs = objects(&manifests);
        check_crd_objects(name, &objs);
        crds_seen.extend(objs.iter().map(|o| kind(o).to_owned()));
    }
    for k in CRD_KINDS {
        assert!(
            crds_seen.iter().any(|c| c == k),
            "no values file renders a {k}"
        );
    }
    let manifests = template(&helm, charts, &charts.example(), &[]).unwrap();
    assert_valid(&pythonpath, "sidecar-app", &manifests);

    // The validator does look: an unknown field in the Deployment fails --strict.
    let broken = manifests.replace("      initContainers:", "      initContainer:");
    assert_ne!(broken, manifests);
    let (ok, said) = validate(&pythonpath, &broken);
    assert!(!ok, "a misspelt field passed:\n{said}");
}

#[test]
fn several_pods_on_sqlite_are_refused_at_template_time() {
    let Some(helm) = helm_bin("sqlite refusal") else {
        return;
    };
    let charts = charts(&helm);
    let gatehouse = charts.gatehouse();
    let refused = |chart: &Path, args: &[&str]| {
        let err = template(&helm, charts, chart, args)
            .err()
            .unwrap_or_else(|| panic!("helm template {args:?} was not refused"));
        assert!(
            err.contains("the store is SQLite") && err.contains("PostgreSQL"),
            "{args:?}: {err}"
        );
    };
    refused(&gatehouse, &["--set", "replicaCount=3"]);
    refused(&gatehouse, &["--set", "autoscaling.enabled=true"]);
    refused(&charts.example(), &["--set", "replicaCount=2"]);
    // A value from the environment that is SQLite counts too.
    refused(
        &gatehouse,
        &[
            "--set",
            "replicaCount=2",
            "--set",
            "config.store.url=postgres://gh@db/gh",
            "--set",
            "extraEnv[0].name=GATEHOUSE__STORE__URL",
            "--set",
            "extraEnv[0].value=sqlite:///var/lib/gatehouse/x.db",
        ],
    );
    // PostgreSQL (in the config, or from a Secret through the env) is fine.
    template(
        &helm,
        charts,
        &gatehouse,
        &[
            "--set",
            "replicaCount=3",
            "--set",
            "config.store.url=postgres://gh@db/gh",
        ],
    )
    .unwrap();
    let pg = gatehouse
        .join("ci/postgres-ha-values.yaml")
        .display()
        .to_string();
    template(&helm, charts, &gatehouse, &["-f", &pg]).unwrap();
    // One SQLite pod at a time, also during a rollout.
    let objs = objects(&template(&helm, charts, &gatehouse, &[]).unwrap());
    assert_eq!(
        one(&objs, "Deployment")["spec"]["strategy"]["type"],
        "Recreate"
    );

    // The other refusal: a drain longer than Kubernetes waits.
    let err = template(
        &helm,
        charts,
        &gatehouse,
        &["--set", "config.server.grace_period=30s"],
    )
    .unwrap_err();
    assert!(err.contains("terminationGracePeriodSeconds"), "{err}");
}

#[test]
fn a_config_change_rolls_the_pods() {
    let Some(helm) = helm_bin("config checksum") else {
        return;
    };
    let charts = charts(&helm);
    let checksum = |chart: &Path, args: &[&str], key: &str| {
        let objs = objects(&template(&helm, charts, chart, args).unwrap());
        let cm = one(&objs, "ConfigMap");
        let annotation = one(&objs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
            [key]
            .as_str()
            .unwrap()
            .to_owned();
        (annotation, s(&cm["data"]["gatehouse.yaml"]).to_owned())
    };
    let g = charts.gatehouse();
    let (a, ca) = checksum(&g, &[], "checksum/config");
    let (b, cb) = checksum(
        &g,
        &["--set", "config.portal.title=Other"],
        "checksum/config",
    );
    assert!(cb.contains("title: Other") && !ca.contains("title: Other"));
    assert_ne!(a, b);
    let e = charts.example();
    let (a, _) = checksum(&e, &[], "checksum/gatehouse");
    let (b, _) = checksum(
        &e,
        &["--set", "gatehouseSidecar.config.portal.title=Other"],
        "checksum/gatehouse",
    );
    assert_ne!(a, b);
}

/// The pieces of a rendered pod that running Gatehouse needs.
struct Rendered {
    config_map: String,
    container: Value,
    volumes: Vec<Value>,
    pod: Value,
    termination_grace: u64,
}

fn rendered_pod(objs: &[Value], sidecar: bool) -> Rendered {
    let cm = objs
        .iter()
        .find(|o| kind(o) == "ConfigMap" && !o["data"]["gatehouse.yaml"].is_null())
        .expect("a ConfigMap with gatehouse.yaml");
    let pod = one(objs, "Deployment")["spec"]["template"]["spec"].clone();
    let list = if sidecar {
        "initContainers"
    } else {
        "containers"
    };
    let container = pod[list]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gatehouse")
        .unwrap_or_else(|| panic!("no gatehouse container in {list}"))
        .clone();
    // The config file is this ConfigMap's.
    let volumes = pod["volumes"].as_sequence().unwrap().clone();
    let cm_volume = volumes
        .iter()
        .find(|v| v["configMap"]["name"] == cm["metadata"]["name"])
        .expect("the ConfigMap is a volume");
    assert!(
        container["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|m| m["name"] == cm_volume["name"]),
        "the container mounts the ConfigMap"
    );
    Rendered {
        config_map: s(&cm["data"]["gatehouse.yaml"]).to_owned(),
        container,
        volumes,
        termination_grace: pod["terminationGracePeriodSeconds"].as_u64().unwrap(),
        pod,
    }
}

fn port_of(listen: &str) -> u16 {
    listen.rsplit(':').next().unwrap().parse().unwrap()
}

/// The container port a probe or Service names (by name or number).
fn container_port(container: &Value, port: &Value) -> u16 {
    if let Some(n) = port.as_u64() {
        return n as u16;
    }
    let name = s(port);
    container["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port named {name}")) as u16
}

/// A Gatehouse process started from the rendered args, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run the binary the way the pod would: the rendered ConfigMap as the file
/// the args name, the rendered args and env. Rewritten, because this is a
/// test host and not a pod: the listen addresses (to free loopback ports),
/// the paths under the pod's mounts (the config file, the SQLite store on the
/// data volume, the Secret's files, /tmp) to folders of a temp dir, and an
/// upstream host named `*.svc.cluster.local` to 127.0.0.1. Then
/// check-config, serve, the probes, /metrics and a SIGTERM.
fn run_as_rendered(what: &str, r: &Rendered, metrics_port_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mounts: Vec<(String, String, Option<String>)> = r.container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| {
            (
                s(&m["name"]).to_owned(),
                s(&m["mountPath"]).to_owned(),
                m["subPath"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let volume = |name: &str| {
        r.volumes
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("{what}: no volume {name}"))
    };
    // Where each mount lands on this host.
    let mut local: Vec<(String, PathBuf)> = Vec::new();
    for (i, (name, path, sub)) in mounts.iter().enumerate() {
        let here = dir.path().join(format!("mount{i}"));
        let v = volume(name);
        if !v["configMap"].is_null() {
            let sub = sub
                .as_deref()
                .expect("the config is mounted with a subPath");
            assert_eq!(sub, "gatehouse.yaml", "{what}");
            local.push((path.clone(), here.clone()));
            continue;
        }
        std::fs::create_dir_all(&here).unwrap();
        if !v["secret"].is_null() {
            assert_eq!(
                r.container["volumeMounts"][i]["readOnly"], true,
                "{what}: the Secret is mounted read-only"
            );
        }
        local.push((path.clone(), here));
    }
    let map_path = |p: &str| -> Option<PathBuf> {
        local.iter().find_map(|(mount, here)| {
            if p == mount {
                Some(here.clone())
            } else {
                p.strip_prefix(&format!("{mount}/"))
                    .map(|rest| here.join(rest))
            }
        })
    };

    // The rendered config, with the rewrites described above.
    let mut config: Mapping = serde_norway::from_str(&r.config_map).unwrap();
    let server = config
        .get_mut("server")
        .and_then(Value::as_mapping_mut)
        .unwrap();
    let listen = s(&server["listen"]).to_owned();
    let metrics_listen = s(&server["metrics_listen"]).to_owned();
    let (port, metrics_port) = (free_port(), free_port());
    server.insert("listen".into(), format!("127.0.0.1:{port}").into());
    server.insert(
        "metrics_listen".into(),
        format!("127.0.0.1:{metrics_port}").into(),
    );
    let grace = humantime_secs(server.get("grace_period").and_then(Value::as_str));
    assert!(
        grace < r.termination_grace,
        "{what}: grace_period {grace}s must be below terminationGracePeriodSeconds {}",
        r.termination_grace
    );
    let store = s(&config["store"]["url"]).to_owned();
    let db = store
        .strip_prefix("sqlite://")
        .unwrap_or_else(|| panic!("{what}: expected a SQLite store, got {store}"));
    let db_here = map_path(db).unwrap_or_else(|| {
        panic!("{what}: the SQLite file {db} is on no mounted volume (the root filesystem is read-only)")
    });
    config["store"].as_mapping_mut().unwrap().insert(
        "url".into(),
        format!("sqlite://{}", db_here.display()).into(),
    );
    // A cluster's Service name does not resolve on a test host, and
    // check-config resolves the upstream: such a host becomes 127.0.0.1,
    // same scheme and port (nothing is proxied in this test).
    if let Some(up) = config
        .get_mut("upstream")
        .and_then(|u| u.get_mut("url"))
        .filter(|u| u.as_str().is_some_and(|u| u.contains(".svc.cluster.local")))
    {
        let url = url::Url::parse(s(up)).unwrap();
        let port = url.port_or_known_default().unwrap();
        *up = format!("{}://127.0.0.1:{port}", url.scheme()).into();
    }
    // Every *_file key names a file of a mounted Secret: the test puts a
    // stand-in there (32+ characters, as a 2FA key needs).
    let mut text = serde_norway::to_string(&config).unwrap();
    for (mount, here) in &local {
        let Some(v) = mounts
            .iter()
            .find(|(_, p, _)| p == mount)
            .map(|(n, _, _)| volume(n))
        else {
            continue;
        };
        if v["secret"].is_null() {
            continue;
        }
        for line in r.config_map.lines() {
            if let Some(p) = line
                .split_once("_file: ")
                .map(|(_, p)| p.trim().trim_matches('"'))
                .filter(|p| p.starts_with(&format!("{mount}/")))
            {
                let f = map_path(p).unwrap();
                std::fs::write(&f, "a-stand-in-secret-of-more-than-32-characters").unwrap();
            }
        }
        text = text.replace(&format!("{mount}/"), &format!("{}/", here.display()));
    }

    // The args name the config file at the ConfigMap's mount.
    let args: Vec<String> = r.container["args"]
        .as_sequence()
        .expect("the container has args")
        .iter()
        .map(|a| s(a).to_owned())
        .collect();
    let c = args.iter().position(|a| a == "-c").expect("-c FILE");
    let config_here = map_path(&args[c + 1])
        .unwrap_or_else(|| panic!("{what}: {} is not the ConfigMap's mount", args[c + 1]));
    std::fs::write(&config_here, &text).unwrap();
    let mut args_here = args.clone();
    args_here[c + 1] = config_here.display().to_string();

    // The env, as rendered (values only: no Secret to read here).
    let mut env: Vec<(String, String)> = Vec::new();
    for e in r.container["env"].as_sequence().into_iter().flatten() {
        let value = e["value"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: env {:?} is not a plain value", e["name"]));
        env.push((s(&e["name"]).to_owned(), value.to_owned()));
    }
    // The pod's /tmp (Gatehouse's pid file goes there) is a mounted volume.
    let tmp = map_path("/tmp").unwrap_or_else(|| panic!("{what}: /tmp is not a volume"));

    // check-config: the same file, the same env.
    let mut check = args_here.clone();
    check[0] = "check-config".into();
    assert_eq!(args[0], "serve", "{what}: the args run serve");
    let out = Command::new(BIN)
        .args(&check)
        .envs(env.clone())
        .env_remove("GATEHOUSE_CONFIG")
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: check-config refused the rendered config:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // serve, with exactly the rendered args.
    let mut running = Running(
        Command::new(BIN)
            .args(&args_here)
            .envs(env)
            .env_remove("GATEHOUSE_CONFIG")
            .env("TMPDIR", &tmp)
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    // The probes: each on the port it names, which is the config's listen port.
    let to_local = |container_port: u16| {
        if container_port == port_of(&listen) {
            port
        } else if container_port == port_of(&metrics_listen) {
            metrics_port
        } else {
            panic!("{what}: port {container_port} is neither listen nor metrics_listen")
        }
    };
    let get = |port: u16, path: &str| {
        client()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    let probes: Vec<(&str, u16, String)> = ["startupProbe", "livenessProbe", "readinessProbe"]
        .iter()
        .map(|p| {
            let h = &r.container[*p]["httpGet"];
            assert!(!h.is_null(), "{what}: no {p}");
            (
                *p,
                to_local(container_port(&r.container, &h["port"])),
                s(&h["path"]).to_owned(),
            )
        })
        .collect();
    assert_eq!(probes[0].1, port, "{what}: the probes use the proxy port");
    // As the kubelet does: the startup probe first, until it answers.
    eventually(&format!("{what}: startup probe {}", probes[0].2), || {
        assert!(
            running.0.try_wait().unwrap().is_none(),
            "{what}: gatehouse exited"
        );
        get(probes[0].1, &probes[0].2) == 200
    });
    for (p, port, path) in &probes {
        assert_eq!(get(*port, path), 200, "{what}: {p} GET {path}");
    }
    // /metrics on the port the Service's metrics entry targets.
    let metrics = to_local(container_port(
        &r.container,
        &Value::from(metrics_port_name),
    ));
    let body = client()
        .get(format!("http://127.0.0.1:{metrics}/metrics"))
        .send()
        .unwrap();
    assert_eq!(body.status(), 200, "{what}: /metrics");
    assert!(body.text().unwrap().contains("gatehouse_"), "{what}");
    assert!(
        std::fs::read_dir(&tmp).unwrap().next().is_some(),
        "{what}: gatehouse wrote its run folder under the temp dir"
    );
    // The SQLite store was created on the data volume.
    assert!(db_here.exists(), "{what}: no {}", db_here.display());

    // SIGTERM: a clean exit within the pod's grace period.
    unsafe {
        libc::kill(running.0.id() as i32, libc::SIGTERM);
    }
    let start = Instant::now();
    let status = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(r.termination_grace),
            "{what}: still running after terminationGracePeriodSeconds"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{what}: SIGTERM exit: {status}");
}

/// Whole seconds of a humantime duration ("20s", "1m"); 0 when absent.
fn humantime_secs(v: Option<&str>) -> u64 {
    v.map(|v| {
        let (n, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
        let n: u64 = n.parse().unwrap();
        match unit {
            "s" | "" => n,
            "m" => n * 60,
            _ => panic!("unexpected duration {v}"),
        }
    })
    .unwrap_or(0)
}

/// The security settings every Gatehouse container gets.
fn assert_locked_down(what: &str, container: &Value) {
    let sc = &container["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true, "{what}");
    assert_eq!(sc["runAsUser"], 65532, "{what}");
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
    assert_eq!(
        sc["capabilities"]["drop"],
        Value::from(vec![Value::from("ALL")]),
        "{what}"
    );
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{what}");
}

#[test]
fn the_standalone_chart_runs_as_rendered() {
    let Some(helm) = helm_bin("standalone chart run") else {
        return;
    };
    let charts = charts(&helm);
    let gatehouse = charts.gatehouse();
    for (name, files) in [
        ("defaults", vec![]),
        (
            "ci/standalone-values.yaml",
            vec!["ci/standalone-values.yaml"],
        ),
    ] {
        let args = values_args(&gatehouse, &files);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let objs = objects(&template(&helm, charts, &gatehouse, &args).unwrap());
        let r = rendered_pod(&objs, false);
        assert_locked_down(name, &r.container);
        // The Service sends its proxy port to the container's http port.
        let service = one(&objs, "Service");
        let ports: BTreeMap<String, Value> = service["spec"]["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| (s(&p["name"]).to_owned(), p["targetPort"].clone()))
            .collect();
        assert_eq!(
            ports["http"],
            r.container["livenessProbe"]["httpGet"]["port"]
        );
        let metrics_target = s(&ports["metrics"]).to_owned();
        if name != "defaults" {
            // existingSecret is mounted, and the config reads files from it.
            assert!(r
                .config_map
                .contains("client_secret_file: /etc/gatehouse/secrets/"));
            assert!(r
                .volumes
                .iter()
                .any(|v| v["secret"]["secretName"] == "gatehouse-secrets"));
            assert!(r
                .volumes
                .iter()
                .any(|v| !v["persistentVolumeClaim"].is_null()));
        }
        assert_eq!(r.pod["securityContext"]["runAsNonRoot"], true);
        run_as_rendered(name, &r, &metrics_target);
    }
}

#[test]
fn the_sidecar_example_runs_as_rendered() {
    let Some(helm) = helm_bin("sidecar example run") else {
        return;
    };
    let charts = charts(&helm);
    let objs = objects(&template(&helm, charts, &charts.example(), &[]).unwrap());
    // Only the example's own objects: the dependency renders nothing itself.
    for o in &objs {
        assert!(
            !s(&o["metadata"]["name"]).ends_with("-gatehouse"),
            "the dependency rendered {}",
            kind(o)
        );
    }
    let r = rendered_pod(&objs, true);
    assert_locked_down("sidecar", &r.container);
    // A native sidecar.
    assert_eq!(r.container["restartPolicy"], "Always");
    // The app listens on 127.0.0.1 only, at the port Gatehouse proxies to.
    let app = &r.pod["containers"][0];
    let listen = app["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .find_map(|a| s(a).strip_prefix("-listen="))
        .expect("the app's -listen");
    assert!(
        listen.starts_with("127.0.0.1:"),
        "the app listens on {listen}"
    );
    assert!(app["ports"].is_null(), "the app exposes no port");
    let config: Value = serde_norway::from_str(&r.config_map).unwrap();
    assert_eq!(
        config["upstream"]["url"],
        Value::from(format!("http://{listen}"))
    );
    // The Service and the NetworkPolicy let in Gatehouse's port only (and
    // its metrics port, from the peers listed for it).
    let service = one(&objs, "Service");
    let targets: Vec<&Value> = service["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| &p["targetPort"])
        .collect();
    assert_eq!(targets, [&r.container["livenessProbe"]["httpGet"]["port"]]);
    let policy = one(&objs, "NetworkPolicy");
    let allowed: Vec<&Value> = policy["spec"]["ingress"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["ports"].as_sequence().unwrap())
        .map(|p| &p["port"])
        .collect();
    assert_eq!(allowed, targets);
    run_as_rendered("sidecar-app", &r, "gh-metrics");
}
