//! The generated API description agrees with the routes actually served.

// A test fails by panicking: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers::{Db, TestApp, problem};
use crate::on_both_databases;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

on_both_databases!(
    openapi_documents_every_served_route_with_its_methods_and_bearer_security,
    docs_page_answers_html,
);

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
/// Served, but describing the API rather than being part of it.
const SELF_DESCRIBING: [&str; 2] = ["/openapi.json", "/docs"];

/// Every `resource("path", "ALLOW")` registered under services/api/src/routes, with the methods
/// routed on it, read from the source so that new routes are checked without editing this test.
fn served_routes() -> BTreeMap<String, BTreeSet<String>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/src/routes");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let raw = std::fs::read_to_string(&path).unwrap();
        // rustfmt may break a long `resource(` call after the parenthesis.
        let src = raw
            .split("resource(")
            .map(str::trim_start)
            .collect::<Vec<_>>()
            .join("resource(");
        for part in src.split("resource(\"").skip(1) {
            let (route, rest) = part.split_once('"').unwrap();
            // The methods chained on this resource: up to the next resource.
            let methods: BTreeSet<String> = METHODS
                .iter()
                .filter(|m| rest.contains(&format!("web::{m}()")))
                .map(|m| m.to_string())
                .collect();
            assert!(!methods.is_empty(), "{route} in {}", path.display());
            // Actix may constrain a parameter ({id:regex}); OpenAPI names it only.
            let mut clean = String::new();
            let mut in_param = false;
            let mut skipping = false;
            for c in route.chars() {
                match c {
                    '{' => {
                        in_param = true;
                        clean.push(c);
                    }
                    '}' => {
                        in_param = false;
                        skipping = false;
                        clean.push(c);
                    }
                    ':' if in_param => skipping = true,
                    _ if skipping => {}
                    _ => clean.push(c),
                }
            }
            out.entry(clean).or_default().extend(methods);
        }
    }
    out
}

/// A concrete URL for a templated path.
fn concrete(path: &str) -> String {
    path.replace("{company}", "operator")
        .replace("{user_id}", "someone")
        .replace("{flow_id}", &uuid::Uuid::new_v4().to_string())
}

async fn openapi_documents_every_served_route_with_its_methods_and_bearer_security(db: Db) {
    let app = TestApp::spawn(db).await;
    let served = served_routes();
    assert!(
        served.len() >= 15,
        "the route table was not read: {served:?}"
    );
    assert!(served.contains_key("/v1/auth/login"));
    assert!(served.contains_key("/v1/tenants/{company}/users/{user_id}"));

    let r = app.get("/openapi.json", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/json"), "{ct}");
    let doc: Value = r.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string());

    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeMap<String, BTreeSet<String>> = paths
        .iter()
        .map(|(p, item)| {
            let methods = METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| m.to_string())
                .collect();
            (p.clone(), methods)
        })
        .collect();

    // Every served route and method is documented; nothing is documented that is not served.
    let mut missing = Vec::new();
    for (path, methods) in &served {
        if SELF_DESCRIBING.contains(&path.as_str()) {
            continue;
        }
        for m in methods {
            if !documented.get(path).is_some_and(|d| d.contains(m)) {
                missing.push(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "served but not in /openapi.json: {missing:?}"
    );
    let mut phantom = Vec::new();
    for (path, methods) in &documented {
        for m in methods {
            if !served.get(path).is_some_and(|s| s.contains(m)) {
                phantom.push(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    assert!(phantom.is_empty(), "documented but not served: {phantom:?}");

    // The bearer scheme exists and is HTTP bearer.
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(
        scheme["scheme"].as_str().map(str::to_lowercase).as_deref(),
        Some("bearer")
    );

    // An operation declares bearer security exactly when the server demands a token for it.
    let mut wrong = Vec::new();
    for (path, methods) in &documented {
        for m in methods {
            let op = &paths[path][m];
            let declares = op["security"]
                .as_array()
                .is_some_and(|reqs| reqs.iter().any(|r| r.get("bearer").is_some()));
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let mut req = app.client.request(method.clone(), app.url(&concrete(path)));
            if method != Method::GET {
                req = req.json(&json!({}));
            }
            let r = req.send().await.unwrap();
            let status = r.status();
            let demands = if status == StatusCode::UNAUTHORIZED {
                let body = problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
                body["code"] == "unauthenticated"
            } else {
                assert!(
                    status.as_u16() < 500,
                    "{m} {path} without a token: {status}"
                );
                false
            };
            if declares != demands {
                wrong.push(format!(
                    "{} {path}: declares bearer {declares}, demands a token {demands}",
                    m.to_uppercase()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

async fn docs_page_answers_html(db: Db) {
    let app = TestApp::spawn(db).await;
    let r = app.get("/docs", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/html"), "{ct}");
    let html = r.text().await.unwrap();
    assert!(
        html.to_lowercase().contains("<html"),
        "{}",
        &html[..html.len().min(200)]
    );
    // The page carries or points at the same API description.
    assert!(
        html.contains("Gatehouse") || html.contains("/openapi.json"),
        "no API in the page"
    );
}
