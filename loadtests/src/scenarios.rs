//! The goose scenarios: a clinic morning (staff sign in with their second factor, then
//! the EHR checks the session on every page), admins and support at work, mistakes
//! (wrong passwords until lockouts, wrong codes); and the single-request loads the
//! limits are measured with.

use crate::api::{Account, Call, Http, Method, login, sign_in};
use crate::flaw::Flaw;
use crate::mailbox::Mailbox;
use goose::prelude::*;
use rand::Rng;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Accounts shared by the goose users: one user holds an account at a time.
#[derive(Default)]
pub struct Pool {
    inner: Mutex<PoolInner>,
}

#[derive(Default)]
struct PoolInner {
    fresh: VecDeque<Account>,
    returning: VecDeque<Account>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pool {
    pub fn new(accounts: Vec<Account>) -> Pool {
        Pool {
            inner: Mutex::new(PoolInner {
                fresh: accounts.into(),
                returning: VecDeque::new(),
            }),
        }
    }

    /// A returning user (one who signed in before) with probability `returning`, else
    /// one signing in for the first time this morning; an authenticator user only when
    /// their next code is not a replay.
    pub fn take(&self, returning: f64) -> Option<Account> {
        let mut p = lock(&self.inner);
        let back = rand::thread_rng().gen_bool(returning.clamp(0.0, 1.0));
        if back || p.fresh.is_empty() {
            let ready = p.returning.iter().take(64).position(Account::totp_ready);
            if let Some(i) = ready {
                return p.returning.remove(i);
            }
        }
        p.fresh.pop_front().or_else(|| p.returning.pop_front())
    }

    /// The next account never used yet, if any is left.
    pub fn take_fresh(&self) -> Option<Account> {
        lock(&self.inner).fresh.pop_front()
    }

    pub fn give_back(&self, a: Account) {
        lock(&self.inner).returning.push_back(a);
    }
}

/// Everything the scenarios share.
pub struct Ctx {
    pub mail: Mailbox,
    pub password: String,
    /// The clinic morning's staff.
    pub staff: Pool,
    /// Accounts the mistakes scenario types wrong passwords for.
    pub victims: Pool,
    /// Password-only accounts (a practice without MFA), used round-robin.
    pub open: Vec<Account>,
    open_next: AtomicUsize,
    /// Sessions for the session-check loads, one per goose user.
    pub tokens: Vec<String>,
    /// (company, office address, session) of practice admins.
    pub admins: Vec<(String, String, String)>,
    /// Sessions of support agents.
    pub support: Vec<String>,
    /// Sample destinations for support searches.
    pub search_terms: Vec<String>,
    /// Code sign-ins answered: (destination, when the answer arrived).
    pub answered: Mutex<Vec<(String, Instant)>>,
    /// Scenario problems by kind (what goose does not see: a code that never came).
    pub problems: Mutex<BTreeMap<String, usize>>,
    /// How staff passed the second step: code, totp, enrolled, skipped.
    pub seconds: Mutex<BTreeMap<&'static str, usize>>,
    /// Accounts locked by the mistakes scenario.
    pub lockouts: AtomicUsize,
    /// The pages' origin (`http://localhost:<port>`), sent as a browser's `Origin`.
    pub origin: String,
    /// An OpenID Connect client: (client_id, client_secret, redirect URI).
    pub oidc: Option<(String, String, String)>,
}

impl Ctx {
    pub fn new(mail: Mailbox, password: String) -> Ctx {
        Ctx {
            mail,
            password,
            staff: Pool::default(),
            victims: Pool::default(),
            open: Vec::new(),
            open_next: AtomicUsize::new(0),
            tokens: Vec::new(),
            admins: Vec::new(),
            support: Vec::new(),
            search_terms: Vec::new(),
            answered: Mutex::new(Vec::new()),
            problems: Mutex::new(BTreeMap::new()),
            seconds: Mutex::new(BTreeMap::new()),
            lockouts: AtomicUsize::new(0),
            origin: String::new(),
            oidc: None,
        }
    }

    fn problem(&self, f: &Flaw) {
        // The kind, without the details that differ every time.
        let kind: String = f.0.chars().take(60).collect();
        *lock(&self.problems).entry(kind).or_default() += 1;
    }

    fn next_open(&self) -> Option<Account> {
        if self.open.is_empty() {
            return None;
        }
        let i = self.open_next.fetch_add(1, Ordering::Relaxed);
        self.open.get(i % self.open.len()).cloned()
    }
}

type Fut<'a> = Pin<Box<dyn Future<Output = Result<(), Flaw>> + Send + 'a>>;
type Step = for<'a> fn(&'a Ctx, &'a mut GooseUser) -> Fut<'a>;

/// A goose transaction running `f`; a problem is counted, not fatal to the user.
fn tx(ctx: &Arc<Ctx>, name: &str, f: Step) -> Transaction {
    let ctx = ctx.clone();
    let func: TransactionFunction = Arc::new(move |user| {
        let ctx = ctx.clone();
        Box::pin(async move {
            if let Err(e) = f(&ctx, user).await {
                ctx.problem(&e);
            }
            Ok(())
        })
    });
    Transaction::new(func).set_name(name)
}

fn scenario(name: &str, weight: usize, t: Transaction) -> Result<Scenario, GooseError> {
    Scenario::new(name)
        .set_weight(weight)
        .map(|s| s.register_transaction(t))
}

/// The clinic morning's mix: mostly staff, some admins, support and mistakes.
pub fn morning(ctx: &Arc<Ctx>) -> Result<Vec<Scenario>, GooseError> {
    let mut s = vec![scenario("clinic staff", 12, tx(ctx, "visit", staff_visit))?];
    if !ctx.admins.is_empty() {
        s.push(scenario(
            "practice admin",
            2,
            tx(ctx, "admin work", admin_work),
        )?);
    }
    if !ctx.support.is_empty() {
        s.push(scenario(
            "support agent",
            1,
            tx(ctx, "support search", support_search),
        )?);
    }
    s.push(scenario("mistakes", 2, tx(ctx, "mistakes", mistakes))?);
    Ok(s)
}

/// Sign-ins with a password only, as fast as they go.
pub fn password_sign_ins(ctx: &Arc<Ctx>, weight: usize) -> Result<Scenario, GooseError> {
    scenario("password sign-in", weight, tx(ctx, "sign in", open_sign_in))
}

/// Password sign-ins through the pages (W1), as a browser without JavaScript makes them:
/// the sign-in page (its form token and cookie), then its form.
/// Each goose user is a browser that keeps no cookies between sign-ins (a new profile every
/// time, so each sign-in starts from the page) and follows no redirect (the answer that
/// signs in is the 303 to "My account").
pub fn page_sign_ins(ctx: &Arc<Ctx>, weight: usize) -> Result<Scenario, GooseError> {
    scenario(
        "page sign-in",
        weight,
        tx(ctx, "page sign in", page_sign_in),
    )
    .map(as_browser)
}

/// Each goose user of `s` is a browser that keeps no cookies between sign-ins and follows
/// no redirect.
fn as_browser(s: Scenario) -> Scenario {
    let fresh: TransactionFunction = Arc::new(|user| {
        Box::pin(async move {
            let builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60));
            user.set_client_builder(builder).await.map_err(Box::new)
        })
    });
    s.register_transaction(Transaction::new(fresh).set_name("browser").set_on_start())
}

/// Sign-ins of an EHR through OpenID Connect (I1): `/oauth2/authorize`, the sign-in page
/// and its form, back to the application, then the code exchanged at `/oauth2/token`; as
/// a new browser each time (see [`page_sign_ins`]).
pub fn oidc_sign_ins(ctx: &Arc<Ctx>, weight: usize) -> Result<Scenario, GooseError> {
    scenario(
        "oidc sign-in",
        weight,
        tx(ctx, "oidc sign in", oidc_sign_in),
    )
    .map(as_browser)
}

/// Session checks, as fast as they go.
pub fn session_checks(ctx: &Arc<Ctx>, weight: usize) -> Result<Scenario, GooseError> {
    scenario("session check", weight, tx(ctx, "check", session_check))
}

/// `GET /` of the bare server.
pub fn bare(ctx: &Arc<Ctx>) -> Result<Scenario, GooseError> {
    scenario("bare handler", 1, tx(ctx, "bare", bare_get))
}

/// Sign-ins whose answer sends a code: the dispatch latency's load.
pub fn code_sign_ins(ctx: &Arc<Ctx>) -> Result<Scenario, GooseError> {
    scenario("code sign-in", 1, tx(ctx, "code sign-in", code_sign_in))
}

fn staff_visit<'a>(ctx: &'a Ctx, user: &'a mut GooseUser) -> Fut<'a> {
    Box::pin(async move {
        let Some(mut a) = ctx.staff.take(0.75) else {
            return Err(Flaw("no staff account free".into()));
        };
        let done = async {
            let s = sign_in(user, &mut a, &ctx.password, &ctx.mail, false).await?;
            *lock(&ctx.seconds)
                .entry(s.second.unwrap_or("skipped"))
                .or_default() += 1;
            // The EHR checks the session on every page the user opens.
            let pages = rand::thread_rng().gen_range(20..=40);
            for _ in 0..pages {
                user.call(Call::get(
                    "session",
                    "/v1/auth/session".into(),
                    &s.token,
                    &a.ip,
                ))
                .await?;
            }
            logout(user, &s.token, &a.ip).await
        }
        .await;
        ctx.staff.give_back(a);
        done
    })
}

async fn logout<H: Http>(http: &mut H, token: &str, ip: &str) -> Result<(), Flaw> {
    http.call(Call {
        name: "logout",
        method: Method::Post,
        path: "/v1/auth/logout".into(),
        body: None,
        token: Some(token),
        ip,
        ok: &[204],
    })
    .await
    .map(drop)
}

fn admin_work<'a>(ctx: &'a Ctx, user: &'a mut GooseUser) -> Fut<'a> {
    Box::pin(async move {
        let (company, ip, token) = &ctx.admins[user.weighted_users_index % ctx.admins.len()];
        let list = user
            .call(Call::get(
                "admin: list users",
                format!("/v1/tenants/{company}/users?limit=50"),
                token,
                ip,
            ))
            .await?
            .body;
        let ids: Vec<String> = list["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let Some(id) = ids.get(rand::thread_rng().gen_range(0..ids.len().max(1))) else {
            return Err(Flaw(format!("{company} lists no users")));
        };
        user.call(Call::get(
            "admin: get user",
            format!("/v1/tenants/{company}/users/{id}"),
            token,
            ip,
        ))
        .await?;
        let n: u32 = rand::thread_rng().gen_range(0..1000);
        user.call(Call {
            name: "admin: edit user",
            method: Method::Patch,
            path: format!("/v1/tenants/{company}/users/{id}"),
            body: Some(serde_json::json!({"first_name": format!("Load {n}")})),
            token: Some(token),
            ip,
            ok: &[200],
        })
        .await?;
        user.call(Call::get(
            "admin: audit log",
            format!("/v1/tenants/{company}/audit-events?limit=50"),
            token,
            ip,
        ))
        .await
        .map(drop)
    })
}

fn support_search<'a>(ctx: &'a Ctx, user: &'a mut GooseUser) -> Fut<'a> {
    Box::pin(async move {
        let token = &ctx.support[user.weighted_users_index % ctx.support.len()];
        let ip = "198.51.100.10";
        let term = &ctx.search_terms[rand::thread_rng().gen_range(0..ctx.search_terms.len())];
        user.call(Call::get(
            "support: search users",
            format!("/v1/support/users?q={term}&limit=50"),
            token,
            ip,
        ))
        .await?;
        user.call(Call::get(
            "support: list practices",
            "/v1/tenants?limit=50".into(),
            token,
            ip,
        ))
        .await
        .map(drop)
    })
}

/// A random address in 198.19.0.0/16 (benchmarking range): each wrong password comes
/// from somewhere else, as from many clinics' desks.
fn stray_ip() -> String {
    let mut r = rand::thread_rng();
    format!("198.19.{}.{}", r.gen_range(0..=255), r.gen_range(1..=254))
}

fn mistakes<'a>(ctx: &'a Ctx, user: &'a mut GooseUser) -> Fut<'a> {
    Box::pin(async move {
        if rand::thread_rng().gen_bool(0.5) {
            // The practice's threshold of wrong passwords (5) locks the account. A lock is
            // revealed only to the right password (a wrong one answers like an unknown
            // user), so the right one, typed last, tells whether it locked.
            let Some(a) = ctx.victims.take_fresh() else {
                return Ok(());
            };
            for _ in 0..5 {
                let body = serde_json::json!({"company": a.company, "username": a.username,
                                              "password": "Not-The-Password-1!"});
                user.call(
                    Call::post(
                        "login (wrong password)",
                        "/v1/auth/login".into(),
                        body,
                        &stray_ip(),
                    )
                    .ok(&[401]),
                )
                .await?;
            }
            let body = serde_json::json!({"company": a.company, "username": a.username,
                                          "password": ctx.password});
            let r = user
                .call(
                    Call::post(
                        "login (locked, right password)",
                        "/v1/auth/login".into(),
                        body,
                        &stray_ip(),
                    )
                    .ok(&[423]),
                )
                .await?;
            if r.status == 423 {
                ctx.lockouts.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        } else {
            // A wrong code first, then the right one, on a device not remembered and from
            // outside the office (no trusted network applies). A user who enrolls instead
            // types no code: then another user tries, three at most.
            for _ in 0..3 {
                let Some(mut a) = ctx.staff.take(0.0) else {
                    return Ok(());
                };
                let device = a.device_token.take();
                let office = std::mem::replace(&mut a.ip, stray_ip());
                let done = async {
                    let s = sign_in(user, &mut a, &ctx.password, &ctx.mail, true).await?;
                    logout(user, &s.token, &a.ip).await?;
                    Ok::<_, Flaw>(s.second)
                }
                .await;
                a.ip = office;
                if a.device_token.is_none() {
                    a.device_token = device;
                }
                ctx.staff.give_back(a);
                if matches!(done?, Some("code" | "totp")) {
                    break;
                }
            }
            Ok(())
        }
    })
}

fn open_sign_in<'a>(ctx: &'a Ctx, user: &'a mut GooseUser) -> Fut<'a> {
    Box::pin(async move {
        let Some(a) = ctx.next_open() else {
            return Err(Flaw("no password-only accounts".into()));
        };
        let flow = login(user, "login (password only)", &a, &ctx.password).await?;
        if flow["status"] != "authenticated" {
            return Err(Flaw(format!(
                "password-only sign-in ended {}",
                flow["status"]
            )));
        }
        Ok(())
    })
}

/// The `value` of the page's form token.
fn form_token(html: &str) -> Option<&str> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = at + html[at..].find('"')?;
    Some(&html[at..end])
}

fn page_sign_in<'a>(ctx: &'a Ctx, user: &'a mut GooseUser) -> Fut<'a> {
    Box::pin(async move {
        let Some(a) = ctx.next_open() else {
            return Err(Flaw("no password-only accounts".into()));
        };
        // Signed in, the answer is a redirect to "My account"; a refusal draws the form
        // again with its 4xx.
        let r = password_form(ctx, user, &a, None, ("signin page", "signin form")).await?;
        let status = r.status().as_u16();
        if status != 303 {
            return Err(Flaw(format!("page sign-in answered {status}")));
        }
        Ok(())
    })
}

/// The sign-in page (`GET /signin`, with `cookie` when the browser holds one) and its
/// form posted for `a`, as a browser without JavaScript does: the answer to the post.
async fn password_form(
    ctx: &Ctx,
    user: &mut GooseUser,
    a: &Account,
    cookie: Option<&str>,
    (page, form): (&str, &str),
) -> Result<reqwest::Response, Flaw> {
    let fail = |what: &str, e: String| Flaw(format!("{what}: {e}"));
    let mut rb = user
        .get_request_builder(&GooseMethod::Get, "/signin")
        .map_err(|e| fail("GET /signin", format!("{e:?}")))?
        .header("x-forwarded-for", &a.ip);
    if let Some(c) = cookie {
        rb = rb.header("cookie", c);
    }
    let r = browse(user, rb, page).await?;
    // The seed cookie the form token is bound to (a new browser gets it with the page).
    let seed = set_cookie(&r, "__Host-gatehouse-csrf")
        .ok_or_else(|| Flaw("GET /signin set no form-token cookie".into()))?;
    let html = r
        .text()
        .await
        .map_err(|e| fail("GET /signin", e.to_string()))?;
    let token = form_token(&html)
        .ok_or_else(|| Flaw("the sign-in page has no form token".into()))?
        .to_owned();
    let cookies = match cookie {
        Some(c) => format!("{c}; {seed}"),
        None => seed,
    };
    let rb = user
        .get_request_builder(&GooseMethod::Post, "/signin")
        .map_err(|e| fail("POST /signin", format!("{e:?}")))?
        .header("x-forwarded-for", &a.ip)
        .header("origin", &ctx.origin)
        .header("cookie", cookies)
        .form(&[
            ("csrf", token.as_str()),
            ("company", a.company.as_str()),
            ("username", a.username.as_str()),
            ("password", ctx.password.as_str()),
        ]);
    browse(user, rb, form).await
}

/// One request of a browser: sent, named `name` in the report.
async fn browse(
    user: &mut GooseUser,
    rb: reqwest::RequestBuilder,
    name: &str,
) -> Result<reqwest::Response, Flaw> {
    let req = GooseRequest::builder()
        .set_request_builder(rb)
        .name(name)
        .build();
    let got = user
        .request(req)
        .await
        .map_err(|e| Flaw(format!("{name}: {e:?}")))?;
    got.response.map_err(|e| Flaw(format!("{name}: {e}")))
}

/// The `name=value` of a cookie a response sets.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// RFC 7636 Appendix B's pair: every load sign-in may use the same one.
const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn oidc_sign_in<'a>(ctx: &'a Ctx, user: &'a mut GooseUser) -> Fut<'a> {
    Box::pin(async move {
        let (Some(a), Some((client_id, secret, redirect))) = (ctx.next_open(), &ctx.oidc) else {
            return Err(Flaw("no password-only accounts or no OIDC client".into()));
        };
        let fail = |what: &str, e: String| Flaw(format!("{what}: {e}"));
        let builder = |user: &GooseUser, m: GooseMethod, path: &str| {
            user.get_request_builder(&m, path)
                .map(|rb| rb.header("x-forwarded-for", &a.ip))
                .map_err(|e| fail(path, format!("{e:?}")))
        };
        let query = {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("response_type", "code")
                .append_pair("client_id", client_id)
                .append_pair("redirect_uri", redirect)
                .append_pair("scope", "openid profile")
                .append_pair("state", "load")
                .append_pair("nonce", "load")
                .append_pair("code_challenge", PKCE_CHALLENGE)
                .append_pair("code_challenge_method", "S256")
                .append_pair("company", &a.company);
            q.finish()
        };
        let path = format!("/oauth2/authorize?{query}");
        let r = browse(user, builder(user, GooseMethod::Get, &path)?, "authorize").await?;
        let request = set_cookie(&r, "__Host-gatehouse-oidc").ok_or_else(|| {
            Flaw(format!(
                "authorize answered {} without its cookie",
                r.status()
            ))
        })?;
        let r = password_form(
            ctx,
            user,
            &a,
            Some(&request),
            ("signin page (oidc)", "signin form (oidc)"),
        )
        .await?;
        let session = set_cookie(&r, "__Host-gatehouse")
            .filter(|_| r.status().as_u16() == 303)
            .ok_or_else(|| Flaw(format!("the OIDC sign-in answered {}", r.status())))?;
        let r = browse(
            user,
            builder(user, GooseMethod::Get, "/oauth2/resume")?
                .header("cookie", format!("{request}; {session}")),
            "resume",
        )
        .await?;
        let html = r
            .text()
            .await
            .map_err(|e| fail("GET /oauth2/resume", e.to_string()))?;
        let code = html
            .split("code=")
            .nth(1)
            .and_then(|rest| rest.split(['&', '"']).next())
            .ok_or_else(|| Flaw("no code on the way back to the application".into()))?
            .to_owned();
        let r = browse(
            user,
            builder(user, GooseMethod::Post, "/oauth2/token")?
                .basic_auth(client_id, Some(secret))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", redirect.as_str()),
                    ("code_verifier", PKCE_VERIFIER),
                ]),
            "token",
        )
        .await?;
        if r.status().as_u16() != 200 {
            return Err(Flaw(format!("the token endpoint answered {}", r.status())));
        }
        Ok(())
    })
}

fn session_check<'a>(ctx: &'a Ctx, user: &'a mut GooseUser) -> Fut<'a> {
    Box::pin(async move {
        let token = &ctx.tokens[user.weighted_users_index % ctx.tokens.len().max(1)];
        user.call(Call::get(
            "session",
            "/v1/auth/session".into(),
            token,
            "198.51.100.20",
        ))
        .await
        .map(drop)
    })
}

fn bare_get<'a>(_ctx: &'a Ctx, user: &'a mut GooseUser) -> Fut<'a> {
    Box::pin(async move {
        user.call(Call {
            name: "bare",
            method: Method::Get,
            path: "/".into(),
            body: None,
            token: None,
            ip: "198.51.100.20",
            ok: &[200],
        })
        .await
        .map(drop)
    })
}

fn code_sign_in<'a>(ctx: &'a Ctx, user: &'a mut GooseUser) -> Fut<'a> {
    Box::pin(async move {
        let Some(a) = ctx.staff.take_fresh() else {
            return Err(Flaw("no fresh code account left".into()));
        };
        let flow = login(user, "login (code sent)", &a, &ctx.password).await?;
        let answered = Instant::now();
        let to = match flow["mfa"]["code_sent"]["channel"].as_str() {
            Some("sms") => a.phone.clone().unwrap_or_default(),
            Some(_) => a.email.clone(),
            None => return Err(Flaw(format!("no code sent: {flow}"))),
        };
        lock(&ctx.answered).push((to, answered));
        Ok(())
    })
}

/// One goose attack against `host`: `users` users, started at once, for `seconds`.
pub struct Attack<'a> {
    pub host: &'a str,
    pub users: usize,
    pub seconds: usize,
    /// Requests per second at most, all users together.
    pub throttle: Option<usize>,
    /// goose's HTML report.
    pub report: Option<&'a Path>,
}

impl Attack<'_> {
    pub async fn run(&self, scenarios: Vec<Scenario>) -> Result<GooseMetrics, Flaw> {
        let e = |e: GooseError| Flaw(format!("goose: {e:?}"));
        let mut a =
            GooseAttack::initialize_with_config(goose::config::GooseConfiguration::default())
                .map_err(e)?
                .set_default(GooseDefault::Host, self.host)
                .map_err(e)?
                .set_default(GooseDefault::Users, self.users)
                .map_err(e)?
                .set_default(GooseDefault::HatchRate, "1000")
                .map_err(e)?
                .set_default(GooseDefault::NoTelnet, true)
                .map_err(e)?
                .set_default(GooseDefault::NoWebSocket, true)
                .map_err(e)?
                // goose writes its report only where it prints its tables.
                .set_default(GooseDefault::NoPrintMetrics, self.report.is_none())
                .map_err(e)?
                .set_default(GooseDefault::Quiet, 1)
                .map_err(e)?;
        a = a
            .set_default(GooseDefault::RunTime, self.seconds)
            .map_err(e)?;
        if let Some(t) = self.throttle {
            a = a
                .set_default(GooseDefault::ThrottleRequests, t)
                .map_err(e)?;
        }
        if let Some(r) = self.report {
            a = a
                .set_default(GooseDefault::ReportFile, r.to_string_lossy().as_ref())
                .map_err(e)?;
        }
        let mut a = *a;
        for s in scenarios {
            a = a.register_scenario(s);
        }
        a.execute().await.map_err(e)
    }
}

/// One request's figures from an attack.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub count: usize,
    pub failures: usize,
    pub per_second: f64,
    pub p50_ms: usize,
    pub p99_ms: usize,
    pub max_ms: usize,
}

/// The figures of request `name` (e.g. `GET session`), by goose's own timings.
pub fn figures(m: &GooseMetrics, key: &str) -> Figures {
    let Some(r) = m.requests.get(key) else {
        return Figures::default();
    };
    let t = &r.raw_data;
    let at = |q: f64| {
        let target = ((t.counter as f64) * q).ceil() as usize;
        let mut seen = 0;
        for (ms, n) in &t.times {
            seen += n;
            if seen >= target.max(1) {
                return *ms;
            }
        }
        t.maximum_time
    };
    Figures {
        count: r.success_count + r.fail_count,
        failures: r.fail_count,
        per_second: (r.success_count + r.fail_count) as f64 / (m.duration.max(1) as f64),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: t.maximum_time,
    }
}

/// Every request's figures, by name.
pub fn all_figures(m: &GooseMetrics) -> BTreeMap<String, Figures> {
    m.requests
        .keys()
        .map(|k| (k.clone(), figures(m, k)))
        .collect()
}

/// How long a scenario may wait for the fake provider to receive the last codes.
pub const SETTLE: Duration = Duration::from_secs(10);
