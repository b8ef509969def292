//! The config's JSON Schema: generated from the types that parse the config, committed as
//! `greenlight.schema.json`, accepted by an independent validator (PyPI check-jsonschema) for
//! every example config, and refusing every shape the parser refuses.

// Test helpers panic on purpose: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use greenlight_e2e::lambda::{binary, workspace_root};

fn validator() -> std::path::PathBuf {
    let path = workspace_root().join(".venv/jsonschema/bin/check-jsonschema");
    assert!(
        path.exists(),
        "{} is missing: run `make tools`",
        path.display()
    );
    path
}

/// Whether the independent validator accepts `file` against the committed schema.
fn schema_accepts(file: &std::path::Path) -> (bool, String) {
    let out = Command::new(validator())
        .arg("--schemafile")
        .arg(workspace_root().join("greenlight.schema.json"))
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let out = Command::new(binary("greenlight"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(workspace_root().join("greenlight.schema.json")).unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "greenlight.schema.json is stale: run `greenlight schema > greenlight.schema.json`"
    );
}

#[test]
fn every_example_config_validates_and_names_the_schema() {
    for example in ["examples/payments.yaml", "examples/local.yaml"] {
        let path = workspace_root().join(example);
        let (ok, said) = schema_accepts(&path);
        assert!(ok, "{example}: {said}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../greenlight.schema.json"),
            "{example} names its schema for editors"
        );
    }
}

#[test]
fn what_the_parser_refuses_for_shape_the_schema_refuses_too() {
    let good = r#"
secrets: { key: { env: K } }
targets: { test: { url: "http://127.0.0.1:9" } }
stages:
  AfterAllowTraffic:
    checks:
      - name: health
        http: { target: test, path: /health }
"#;
    // The good config passes both.
    let file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(file.path(), good).unwrap();
    assert!(schema_accepts(file.path()).0);
    let cases = [
        ("an unknown top-level key", good.replace("secrets:", "secret_sources: {}\nsecrets:")),
        ("an unknown key in a target", good.replace("url: \"http://127.0.0.1:9\"", "url: \"http://127.0.0.1:9\", proxy: x")),
        ("an unknown stage", good.replace("AfterAllowTraffic:", "AfterInstall:")),
        ("an unknown key in a check", good.replace("- name: health", "- name: health\n        retry: 3")),
        ("an unknown key in a request", good.replace("path: /health", "path: /health, verb: GET")),
        ("a check without a name", good.replace("- name: health\n        http:", "- http:")),
        ("retries that are not a number", good.replace("- name: health", "- name: health\n        retries: two")),
        ("targets that are a list", good.replace("targets: { test: { url: \"http://127.0.0.1:9\" } }", "targets: [ http://127.0.0.1:9 ]")),
        ("a path that is a number", good.replace("path: /health", "path: 5")),
        ("a secret source with an unknown key", good.replace("{ env: K }", "{ vault: K }")),
        ("a repeat without for", good.replace("- name: health", "- name: health\n        repeat: { every: 1m }")),
        ("a reduce that does not exist", good.replace("http: { target: test, path: /health }", "metric: { namespace: N, metric_name: M, stat: Sum, window: 5m, reduce: median, max: 1 }")),
        ("notify.on with a verdict that does not exist", good.replace("secrets:", "notify: { sns_topic: \"arn:aws:sns:us-east-1:123456789012:t\", on: [sometimes] }\nsecrets:")),
        ("a negative request count", good.replace("http: { target: test, path: /health }", "probe: { target: test, path: /health, requests: -1 }")),
    ];
    for (what, config) in cases {
        let file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
        std::fs::write(file.path(), &config).unwrap();
        let parser = Command::new(binary("greenlight"))
            .args(["validate", "-c"])
            .arg(file.path())
            .env_remove("GREENLIGHT_CONFIG")
            .output()
            .unwrap();
        assert_eq!(
            parser.status.code(),
            Some(2),
            "the parser took {what}: {config}"
        );
        let (ok, said) = schema_accepts(file.path());
        assert!(!ok, "the schema took {what}: {config}\n{said}");
    }
}
