//! The API reference at `/docs`, rendered on the server from the same OpenAPI document
//! as `/openapi.json`.
//!
//! Why not a JavaScript viewer: they load their script and fonts from a CDN, and the
//! service runs in networks without internet and handles patient-adjacent data, so a
//! third-party script on an identity provider's page is a risk. The page is plain HTML
//! with one inline style sheet, allowed by its hash in a Content-Security-Policy that
//! forbids everything else (no script at all).

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// The rendered page and the Content-Security-Policy it is served with.
pub struct Reference {
    pub html: String,
    pub csp: String,
}

const STYLE: &str = "
body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d2329;background:#fff}
header{background:#12344d;color:#fff;padding:1.2rem 2rem}
header h1{margin:0;font-size:1.5rem}
header p{margin:.3rem 0 0}
header a{color:#cfe3f3}
main{display:flex;align-items:flex-start}
nav{position:sticky;top:0;max-height:100vh;overflow:auto;width:21rem;flex:none;padding:1rem;border-right:1px solid #dde3e8;font-size:13px}
nav h2{font-size:.8rem;text-transform:uppercase;letter-spacing:.05em;color:#5a6570;margin:1rem 0 .3rem}
nav ul{list-style:none;margin:0;padding:0}
nav a{color:#1d2329;text-decoration:none;display:block;padding:1px 0}
nav a:hover,nav a:focus{text-decoration:underline}
article{padding:1rem 2rem 4rem;min-width:0;flex:1}
section.op{border:1px solid #dde3e8;border-radius:6px;margin:1.2rem 0;padding:.8rem 1rem}
section.op h3{margin:0;font-size:1rem;font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
.m{display:inline-block;min-width:4.2em;text-align:center;border-radius:4px;color:#fff;font-size:.8rem;padding:0 .4em;margin-right:.5em}
.get{background:#1f6feb}.post{background:#1a7f37}.put{background:#9a6700}.patch{background:#8250df}.delete{background:#cf222e}
table{border-collapse:collapse;margin:.4rem 0;width:100%}
th,td{border-bottom:1px solid #eef1f4;text-align:left;padding:.25rem .5rem;vertical-align:top}
th{font-size:.8rem;color:#5a6570;font-weight:600}
code,.t{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem}
.req{color:#cf222e;font-size:.75rem}
.lock{font-size:.8rem;color:#5a6570}
h2.area{border-bottom:2px solid #12344d;padding-bottom:.2rem;margin-top:2rem}
section.schema{margin:1rem 0}
section.schema h3{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:1rem;margin:.5rem 0 0}
";

/// An operation: its method, its path and its OpenAPI object.
type Op<'a> = (String, String, &'a Value);
/// The operations of one tag.
type Group<'a> = (String, Vec<Op<'a>>);

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// HTML-escapes text for element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A fragment id made of safe characters.
fn anchor(prefix: &str, s: &str) -> String {
    let body: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{prefix}-{body}")
}

/// A short, human description of a schema's type, with links to named schemas.
fn type_of(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#{}\">{}</a>", anchor("schema", name), esc(name));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema.get(key).and_then(Value::as_array) {
            let joined: Vec<String> = parts.iter().map(type_of).collect();
            return joined.join(if key == "allOf" { " &amp; " } else { " | " });
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let vs: Vec<String> = values
            .iter()
            .map(|v| match v {
                Value::String(s) => format!("<code>{}</code>", esc(s)),
                other => format!("<code>{}</code>", esc(&other.to_string())),
            })
            .collect();
        return format!("one of {}", vs.join(", "));
    }
    let types: Vec<String> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let mut parts = Vec::new();
    for t in &types {
        let text = match t.as_str() {
            "array" => format!(
                "array of {}",
                schema.get("items").map(type_of).unwrap_or_default()
            ),
            other => {
                let mut s = esc(other);
                if let Some(f) = schema.get("format").and_then(Value::as_str) {
                    let _ = write!(s, " ({})", esc(f));
                }
                s
            }
        };
        parts.push(text);
    }
    if parts.is_empty() {
        if schema.get("properties").is_some() {
            return "object".into();
        }
        return "any".into();
    }
    parts.join(" | ")
}

fn text_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .map(esc)
        .unwrap_or_default()
}

/// The operations of the document, grouped by their first tag in document order.
fn operations(doc: &Value) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return groups;
    };
    for (path, item) in paths {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let tag = op
                .get("tags")
                .and_then(|t| t.get(0))
                .and_then(Value::as_str)
                .unwrap_or("other")
                .to_owned();
            let entry = (m.to_owned(), path.clone(), op);
            match groups.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, ops)) => ops.push(entry),
                None => groups.push((tag, vec![entry])),
            }
        }
    }
    groups
}

fn render_operation(out: &mut String, method: &str, path: &str, op: &Value) {
    let id = anchor("op", &format!("{method} {path}"));
    let _ = write!(
        out,
        "<section class=\"op\" id=\"{id}\"><h3><span class=\"m {method}\">{}</span>{}</h3>",
        method.to_uppercase(),
        esc(path)
    );
    let secured = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
    if secured {
        out.push_str(
            "<p class=\"lock\">Needs <code>Authorization: Bearer &lt;session token&gt;</code></p>",
        );
    }
    for key in ["summary", "description"] {
        let t = text_of(op, key);
        let repeats_summary = key == "description" && op.get("summary") == op.get("description");
        if !t.is_empty() && !repeats_summary {
            let _ = write!(out, "<p>{t}</p>");
        }
    }
    if let Some(params) = op.get("parameters").and_then(Value::as_array)
        && !params.is_empty()
    {
        out.push_str("<h4>Parameters</h4><table><tr><th>Name</th><th>In</th><th>Type</th><th>Description</th></tr>");
        for p in params {
            let required = p.get("required").and_then(Value::as_bool) == Some(true);
            let _ = write!(
                out,
                "<tr><td><code>{}</code>{}</td><td>{}</td><td class=\"t\">{}</td><td>{}</td></tr>",
                text_of(p, "name"),
                if required {
                    " <span class=\"req\">required</span>"
                } else {
                    ""
                },
                text_of(p, "in"),
                p.get("schema").map(type_of).unwrap_or_default(),
                text_of(p, "description"),
            );
        }
        out.push_str("</table>");
    }
    if let Some(body) = op.get("requestBody") {
        let required = body.get("required").and_then(Value::as_bool) == Some(true);
        let _ = write!(
            out,
            "<h4>Request body{}</h4><table><tr><th>Content type</th><th>Schema</th></tr>",
            if required {
                " <span class=\"req\">required</span>"
            } else {
                " (optional)"
            }
        );
        if let Some(content) = body.get("content").and_then(Value::as_object) {
            for (ct, c) in content {
                let _ = write!(
                    out,
                    "<tr><td><code>{}</code></td><td class=\"t\">{}</td></tr>",
                    esc(ct),
                    c.get("schema").map(type_of).unwrap_or_default()
                );
            }
        }
        out.push_str("</table>");
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        out.push_str("<h4>Responses</h4><table><tr><th>Status</th><th>Description</th><th>Content type</th><th>Schema</th></tr>");
        for (status, r) in responses {
            let content: Vec<(&String, &Value)> = r
                .get("content")
                .and_then(Value::as_object)
                .map(|c| c.iter().collect())
                .unwrap_or_default();
            let (ct, schema) = match content.first() {
                Some((ct, c)) => (
                    format!("<code>{}</code>", esc(ct)),
                    c.get("schema").map(type_of).unwrap_or_default(),
                ),
                None => (String::new(), String::new()),
            };
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{ct}</td><td class=\"t\">{schema}</td></tr>",
                esc(status),
                text_of(r, "description"),
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</section>");
}

fn render_schema(out: &mut String, name: &str, schema: &Value) {
    let _ = write!(
        out,
        "<section class=\"schema\" id=\"{}\"><h3>{}</h3>",
        anchor("schema", name),
        esc(name)
    );
    let d = text_of(schema, "description");
    if !d.is_empty() {
        let _ = write!(out, "<p>{d}</p>");
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match schema.get("properties").and_then(Value::as_object) {
        Some(props) => {
            out.push_str("<table><tr><th>Field</th><th>Type</th><th>Description</th></tr>");
            for (field, p) in props {
                let _ = write!(
                    out,
                    "<tr><td><code>{}</code>{}</td><td class=\"t\">{}</td><td>{}</td></tr>",
                    esc(field),
                    if required.contains(&field.as_str()) {
                        " <span class=\"req\">required</span>"
                    } else {
                        ""
                    },
                    type_of(p),
                    text_of(p, "description"),
                );
            }
            out.push_str("</table>");
        }
        None => {
            let _ = write!(out, "<p class=\"t\">{}</p>", type_of(schema));
        }
    }
    out.push_str("</section>");
}

/// Renders the reference of an OpenAPI document (as JSON).
pub fn render(doc: &Value) -> Reference {
    let title = doc
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("API");
    let groups = operations(doc);
    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} API reference</title><style>{STYLE}</style></head><body>\
         <header><h1>{} API reference</h1><p>{} Version {}. The machine-readable document: \
         <a href=\"/openapi.json\">/openapi.json</a>.</p></header><main><nav aria-label=\"Operations\">",
        esc(title),
        esc(title),
        text_of(&doc["info"], "description"),
        text_of(&doc["info"], "version"),
    );
    for (tag, ops) in &groups {
        let _ = write!(out, "<h2>{}</h2><ul>", esc(tag));
        for (m, p, _) in ops {
            let _ = write!(
                out,
                "<li><a href=\"#{}\">{} {}</a></li>",
                anchor("op", &format!("{m} {p}")),
                m.to_uppercase(),
                esc(p)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str(
        "<h2>Schemas</h2><ul><li><a href=\"#schemas\">All schemas</a></li></ul></nav><article>",
    );
    for (tag, ops) in &groups {
        let _ = write!(
            out,
            "<h2 class=\"area\" id=\"{}\">{}</h2>",
            anchor("tag", tag),
            esc(tag)
        );
        for (m, p, op) in ops {
            render_operation(&mut out, m, p, op);
        }
    }
    out.push_str("<h2 class=\"area\" id=\"schemas\">Schemas</h2>");
    if let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        for (name, s) in schemas {
            render_schema(&mut out, name, s);
        }
    }
    out.push_str("</article></main></body></html>");

    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    let csp = format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self' data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    Reference { html: out, csp }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_escapes_text_and_lists_operations_and_schemas() {
        let doc = json!({
            "info": {"title": "T<script>", "version": "1"},
            "paths": {"/a/{id}": {"get": {"tags": ["x"], "summary": "<b>", "responses":
                {"200": {"description": "ok", "content": {"application/json":
                    {"schema": {"$ref": "#/components/schemas/Thing"}}}}}}}},
            "components": {"schemas": {"Thing": {"type": "object", "required": ["k"],
                "properties": {"k": {"type": "string", "enum": ["a", "b"]}}}}}
        });
        let r = render(&doc);
        assert!(!r.html.contains("<script>"));
        assert!(r.html.contains("T&lt;script&gt;"));
        assert!(r.html.contains("/a/{id}"));
        assert!(r.html.contains("href=\"#schema-Thing\""));
        assert!(r.html.contains("one of <code>a</code>, <code>b</code>"));
        assert!(r.csp.contains("style-src 'sha256-"));
        assert!(r.csp.contains("default-src 'none'"));
    }
}
