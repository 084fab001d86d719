//! The generated API description agrees with the routes actually served.

// A test fails by panicking: unwrap and expect are its assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::helpers::{Db, TestApp, problem};
use gatehouse_testkit::on_both_databases;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

on_both_databases!(
    openapi_documents_every_served_route_with_its_methods_and_bearer_security,
    openapi_problems_are_problem_json_with_401_and_422_enums_and_optional_bodies,
    docs_is_served_whole_from_the_binary_under_a_csp,
    openapi_document_agrees_with_the_service_under_schemathesis,
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

/// The origin-less URLs of an attribute (`src=`, `href=`, ...) in a page: each value.
fn attribute_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!("{attr}=\"");
    html.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            rest.split_once('"').map(|(v, _)| v)
        })
        .collect()
}

async fn docs_is_served_whole_from_the_binary_under_a_csp(db: Db) {
    let app = TestApp::spawn(db).await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let r = app.get("/docs", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let ct = header("content-type");
    assert!(ct.starts_with("text/html"), "{ct}");
    assert_eq!(header("x-content-type-options"), "nosniff");
    let csp = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("script-src"), "no script is allowed: {csp}");
    assert!(!csp.contains("http"), "no other origin is allowed: {csp}");
    let html = r.text().await.unwrap();

    // Nothing is loaded from anywhere: no script at all, no link, image or frame elsewhere.
    let lower = html.to_lowercase();
    assert!(!lower.contains("<script"), "a script in /docs");
    for attr in ["src", "href", "action", "srcset", "data"] {
        for v in attribute_values(&lower, attr) {
            assert!(
                v.starts_with('#') || v.starts_with('/') && !v.starts_with("//"),
                "{attr}=\"{v}\" points elsewhere"
            );
        }
    }
    assert!(
        !lower.contains("@import") && !lower.contains("url("),
        "CSS loads something"
    );
    // The one inline style sheet is the one the policy's hash allows.
    let style = html
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .map(|(s, _)| s)
        .expect("an inline style sheet");
    use base64::Engine;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(style));
    assert!(
        csp.contains(&format!("style-src 'sha256-{hash}'")),
        "{csp} does not allow the page's style"
    );

    // It is a reference: every path and operation of the document, its schemas.
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        assert!(html.contains(&format!(">{path}<")), "{path} not in /docs");
        for m in METHODS {
            if item.get(m).is_some() {
                let anchor: String = format!("op-{m} {path}")
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
                assert!(html.contains(&format!("id=\"{anchor}\"")), "{m} {path}");
            }
        }
    }
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        let anchor: String = format!("schema-{name}")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        assert!(html.contains(&format!("id=\"{anchor}\"")), "{name}");
        assert!(html.contains(&format!(">{name}<")), "{name}");
    }
    assert!(html.contains("application/problem+json"));
    assert!(
        html.contains("<code>recovery_code</code>"),
        "enums are listed"
    );
}

/// The operations of the document: (METHOD path, operation).
fn operations(doc: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                out.push((format!("{} {path}", m.to_uppercase()), op));
            }
        }
    }
    out
}

async fn openapi_problems_are_problem_json_with_401_and_422_enums_and_optional_bodies(db: Db) {
    let app = TestApp::spawn(db).await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let mut wrong = Vec::new();
    for (name, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        for (status, r) in responses {
            if r["description"].as_str().unwrap_or_default().is_empty() {
                wrong.push(format!("{name} {status}: no description"));
            }
            let problem = status.starts_with('4') || status == "500";
            if problem {
                let types: Vec<&String> = r["content"]
                    .as_object()
                    .map(|c| c.keys().collect())
                    .unwrap_or_default();
                if types != ["application/problem+json"] {
                    wrong.push(format!("{name} {status}: {types:?}"));
                }
            }
        }
        let bearer = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        if bearer && !responses.contains_key("401") {
            wrong.push(format!("{name}: bearer but no 401"));
        }
        let query = op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
        let json_body = op["requestBody"]["content"]
            .get("application/json")
            .is_some();
        if (json_body || query) && !responses.contains_key("422") {
            wrong.push(format!("{name}: takes input but no 422"));
        }
        if let Some(ps) = op["parameters"].as_array() {
            for p in ps {
                if p["in"] == "path"
                    && !name.contains(&format!("{{{}}}", p["name"].as_str().unwrap()))
                {
                    wrong.push(format!("{name}: {} is not in the path", p["name"]));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");

    // Both ways of typing a password take a try first (P4, finding 7): a lock reached
    // answers 423, too many tries from one address 429. Schemathesis met an undocumented
    // 429 here only when its fuzzing happened to trip the limit.
    for path in ["/v1/auth/login", "/v1/me/password"] {
        let responses = &doc["paths"][path]["post"]["responses"];
        for status in ["423", "429"] {
            assert!(
                responses.get(status).is_some(),
                "{path} does not document {status}: {responses}"
            );
        }
    }

    // The three bodies that may be left out are not required.
    for (path, optional) in [
        ("/v1/auth/flows/{flow_id}/enroll/totp", true),
        ("/v1/auth/flows/{flow_id}/enroll/{channel}", true),
        ("/v1/me/mfa/totp", true),
        ("/v1/escalations/{id}/execute", true),
        ("/v1/auth/login", false),
    ] {
        let body = &doc["paths"][path]["post"]["requestBody"];
        assert_eq!(
            body["required"].as_bool().unwrap_or(false),
            !optional,
            "{path}: {body}"
        );
    }
    // An omitted body and a `null` one are both "no body": taken, not refused as invalid.
    let admin = app.practice("docs-clinic").await;
    let mut answers = Vec::new();
    for body in ["", "null"] {
        let r = app
            .client
            .post(app.url("/v1/me/mfa/totp"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        answers.push(r.status());
    }
    assert!(
        answers
            .iter()
            .all(|s| s.is_success() || *s == StatusCode::FORBIDDEN),
        "{answers:?}"
    );
    assert_eq!(answers[0], answers[1]);

    // Closed sets are enums, with exactly the words the service accepts.
    let schemas = &doc["components"]["schemas"];
    let words = |name: &str| -> Vec<String> {
        schemas[name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is not an enum: {}", schemas[name]))
            .iter()
            .map(|w| w.as_str().unwrap().to_owned())
            .collect()
    };
    let field = |schema: &str, f: &str| schemas[schema]["properties"][f].to_string();
    assert_eq!(words("Proof"), ["code", "totp", "recovery_code"]);
    assert_eq!(
        words("StepUpProof"),
        ["code", "totp", "recovery_code", "password"]
    );
    assert_eq!(words("Channel"), ["email", "sms"]);
    assert_eq!(words("UserMethod"), ["none", "email", "sms", "totp"]);
    assert_eq!(words("Enrollment"), ["next_login", "prompt", "require"]);
    assert_eq!(
        words("Role"),
        ["staff", "practice_admin", "support_agent", "support_admin"]
    );
    for (schema, f, e) in [
        ("VerifyRequest", "method", "Proof"),
        ("StepUpRequest", "method", "StepUpProof"),
        ("ChannelRequest", "channel", "Channel"),
        ("SetMethodRequest", "method", "UserMethod"),
        ("AdminMfaRequest", "method", "UserMethod"),
        ("AdminMfaRequest", "enrollment", "Enrollment"),
        ("CreateUserRequest", "role", "Role"),
        ("UpdateUserRequest", "role", "Role"),
        ("CreateEscalationRequest", "action", "EscalationAction"),
        ("Flow", "status", "FlowStatus"),
        ("UserDto", "role", "Role"),
    ] {
        assert!(
            field(schema, f).contains(&format!("#/components/schemas/{e}")),
            "{schema}.{f}: {}",
            field(schema, f)
        );
    }
    // A word outside the set is a 422 naming the field, as api.md has it.
    let r = app
        .post(
            "/v1/tenants/docs-clinic/users",
            Some(&admin),
            &json!({"username": "carl", "first_name": "Carl", "last_name": "C",
                    "role": "owner", "password": "Temporary-Pass-1234!"}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(p["errors"][0]["field"], "role", "{p}");
}

/// The schemathesis CLI: `GATEHOUSE_SCHEMATHESIS` (scripts/test sets it, so in CI the
/// check always runs), else the virtualenv scripts/test makes in the user's cache.
fn schemathesis() -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var("GATEHOUSE_SCHEMATHESIS") {
        let p = std::path::PathBuf::from(p);
        assert!(
            p.is_file(),
            "GATEHOUSE_SCHEMATHESIS={} does not exist",
            p.display()
        );
        return Some(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")))?;
    let st = cache.join(format!(
        "gatehouse/schemathesis-{SCHEMATHESIS_VERSION}/bin/st"
    ));
    st.is_file().then_some(st)
}

/// The version scripts/test installs.
const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// schemathesis with every check, as a practice admin, against this app: the document
/// and the service agree on statuses, content types, headers, bodies and the values each
/// field accepts. Bounded: a few examples per operation, and a time limit.
async fn openapi_document_agrees_with_the_service_under_schemathesis(db: Db) {
    let Some(st) = schemathesis() else {
        eprintln!(
            "SKIPPED openapi_document_agrees_with_the_service_under_schemathesis: schemathesis \
             is not installed (scripts/test installs it into ~/.cache/gatehouse/schemathesis-{SCHEMATHESIS_VERSION})"
        );
        return;
    };
    let app = TestApp::spawn(db).await;
    let company = "fuzz-clinic";
    let admin = app.practice(company).await;
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/schemathesis.toml");
    let work = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(&st)
        .current_dir(work.path())
        .env("GATEHOUSE_ST_COMPANY", company)
        .env("NO_COLOR", "1")
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(app.url("/openapi.json"))
        .args(["--checks", "all", "--max-examples", "5", "--workers", "2"])
        .args([
            "--request-timeout",
            "10",
            "--no-color",
            "--max-failures",
            "20",
        ])
        // Logging out would end the session the rest of the run uses.
        .args(["--exclude-path", "/v1/auth/logout"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {admin}"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(240), run)
        .await
        .expect("schemathesis ran for more than 4 minutes")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found differences between /openapi.json and the service:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
