//! A browser without JavaScript, driven over HTTP: its cookies, its origin, no automatic
//! redirects; and what the tests read from a page. Shared by the page and OpenID Connect
//! tests.

use crate::helpers::TestApp;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use std::collections::BTreeMap;

/// One browser without JavaScript: its cookies, its origin, no automatic redirects.
pub(crate) struct Browser<'a> {
    pub(crate) app: &'a TestApp,
    pub(crate) client: reqwest::Client,
    pub(crate) jar: BTreeMap<String, String>,
    /// The last page drawn.
    pub(crate) html: String,
}

/// A response as the tests look at it.
pub(crate) struct Seen {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) html: String,
}

impl<'a> Browser<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: BTreeMap::new(),
            html: String::new(),
        }
    }

    pub(crate) fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(crate) fn keep(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let attrs = attrs.to_ascii_lowercase();
            if value.is_empty() || attrs.contains("max-age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub(crate) async fn seen(&mut self, r: reqwest::Response) -> Seen {
        self.keep(&r);
        let status = r.status();
        let headers = r.headers().clone();
        let html = r.text().await.unwrap();
        self.html = html.clone();
        Seen {
            status,
            headers,
            html,
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Seen {
        let r = self
            .client
            .get(self.app.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.seen(r).await
    }

    /// Posts a form from this browser's last page (its CSRF token) with `fields`.
    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Seen {
        let token = field_value(&self.html, "csrf").expect("the page has a form token");
        let mut form: Vec<(&str, &str)> = vec![("csrf", &token)];
        form.extend_from_slice(fields);
        self.post_raw(path, &form, Some(&self.app.public_origin.clone()))
            .await
    }

    pub(crate) async fn post_raw(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Seen {
        let mut req = self
            .client
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .form(form);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let r = req.send().await.unwrap();
        self.seen(r).await
    }

    /// Follows a 303 to where it points.
    pub(crate) async fn follow(&mut self, s: &Seen) -> Seen {
        assert_eq!(s.status, StatusCode::SEE_OTHER, "{}", s.html);
        let to = s.headers["location"].to_str().unwrap().to_owned();
        self.get(&to).await
    }

    pub(crate) fn has(&self, cookie: &str) -> bool {
        self.jar.contains_key(cookie)
    }
}

/// The `value` of the input named `name` on a page.
pub(crate) fn field_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + "value=\"".len();
    let end = tag[v..].find('"')?;
    Some(tag[v..v + end].to_owned())
}

/// The text of the `role="alert"` element, if the page has one.
pub(crate) fn alert(html: &str) -> Option<String> {
    let at = html.find("role=\"alert\"")?;
    let start = at + html[at..].find('>')? + 1;
    let end = start + html[start..].find("</div>")?;
    Some(html[start..end].to_owned())
}

/// How many audit events the database holds, every practice's.
pub(crate) async fn audit_count(app: &TestApp) -> i64 {
    rows(app, "audit_events").await
}

/// How many rows a table holds.
pub(crate) async fn rows(app: &TestApp, table: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    app.raw
        .query_one_raw(sea_orm::Statement::from_string(
            app.raw.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}
