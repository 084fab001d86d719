// I1 with a stock relying party in Node (oidc.md "What proves it"): openid-client v6
// drives the whole exchange against a running `gatehouse serve --demo`, with
// playwright-core driving the system's Chromium through the hosted pages.
//
// Run by test_oidc_openid_client.py, which asserts on the JSON this prints on stdout.
// Environment: GATEHOUSE_ISSUER (http://localhost:<port>), GATEHOUSE_OUTBOX (the outbox
// file, for the SMS codes), GATEHOUSE_CLIENT_SECRET (demo-ehr's, as `serve --demo`
// printed it), GATEHOUSE_CHROMIUM (the browser; never a downloaded one).
// Every check that openid-client makes by itself (discovery, `state`, `iss` of the
// authorization response, PKCE, the ID token's signature against the JWKS, `iss`, `aud`,
// `exp`, `iat`, `nonce`, userinfo's `sub`) fails the script; what it cannot know is
// printed for the test to judge.

import dns from 'node:dns'
import { readFileSync } from 'node:fs'
import { inspect } from 'node:util'
import * as client from 'openid-client'
import { chromium } from 'playwright-core'

// Gatehouse listens on 127.0.0.1; "localhost" must not go to ::1 first.
dns.setDefaultResultOrder('ipv4first')

const env = (name) => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set`)
  return value
}
const ISSUER = new URL(env('GATEHOUSE_ISSUER'))
const OUTBOX = env('GATEHOUSE_OUTBOX')
const SECRET = env('GATEHOUSE_CLIENT_SECRET')
const CHROMIUM = env('GATEHOUSE_CHROMIUM')

const COMPANY = 'demo-clinic'
const NURSE = ['nurse.joy', 'Quiet-Meadow-2026!']
const REDIRECT_URI = 'http://localhost:8400/callback'
const POST_LOGOUT_URI = 'http://localhost:8400/signed-out'
const SCOPE = 'openid profile email phone offline_access'

// The outbox: one JSON object a line, appended by the server.
function outboxLines() {
  let text
  try {
    text = readFileSync(OUTBOX, 'utf8')
  } catch {
    return []
  }
  const lines = text.split('\n')
  lines.pop() // what follows the last newline is not a whole line yet
  return lines.map((l) => JSON.parse(l))
}

const mark = () => outboxLines().length

async function codeAfter(from, channel) {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const found = outboxLines().slice(from).filter((m) => m.channel === channel)
    if (found.length) {
      const code = found.at(-1).body.split(/\s+/).find((w) => /^\d{6}$/.test(w))
      if (code) return code
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`no ${channel} message in the outbox after line ${from}`)
}

// The hosted sign-in page: company (unless filled), user ID, password, then the code.
async function signIn(page, who, channel) {
  const company = page.getByLabel('Company')
  await company.waitFor()
  if ((await company.inputValue()) !== COMPANY) await company.fill(COMPANY)
  await page.getByLabel('User ID').fill(who[0])
  await page.getByLabel('Password').fill(who[1])
  const from = mark()
  await page.getByRole('button', { name: 'Sign in' }).click()
  if (channel) {
    const code = page.getByLabel('Code', { exact: true })
    await code.waitFor()
    await code.fill(await codeAfter(from, channel))
    await page.getByRole('button', { name: 'Verify' }).click()
  }
}

// Waits until the browser lands on `uri` (a redirect, or a page of ours on the way).
async function landedOn(page, uri) {
  await page.waitForURL((u) => u.origin + u.pathname === uri)
  return new URL(page.url())
}

// A new authorization request: PKCE S256, state and nonce all made by openid-client.
async function authorization(config, extra = {}) {
  const verifier = client.randomPKCECodeVerifier()
  const checks = {
    pkceCodeVerifier: verifier,
    expectedState: client.randomState(),
    expectedNonce: client.randomNonce(),
    idTokenExpected: true,
  }
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: checks.expectedState,
    nonce: checks.expectedNonce,
    ...extra,
  })
  return { url, checks }
}

// The error a call was refused with (openid-client's errors carry the OAuth `error`).
async function refusal(promise) {
  try {
    await promise
    return { error: null }
  } catch (e) {
    return { error: e.error ?? e.code ?? String(e), status: e.status ?? null, kind: e.constructor?.name }
  }
}

const tokenAnswer = (t) => ({
  token_type: t.token_type,
  expires_in: t.expires_in,
  scope: t.scope,
  has_id_token: Boolean(t.id_token),
  has_refresh_token: Boolean(t.refresh_token),
})

async function main() {
  const insecure = { execute: [client.allowInsecureRequests] } // http://localhost
  // The confidential client with the library's default authentication
  // (client_secret_post), the public one with none: client_id and PKCE alone.
  const ehr = await client.discovery(ISSUER, 'demo-ehr', SECRET, undefined, insecure)
  const pub = await client.discovery(ISSUER, 'demo-ehr-public', {}, client.None(), insecure)
  const meta = ehr.serverMetadata()
  const out = {
    discovery: {
      issuer: meta.issuer,
      authorization_endpoint: meta.authorization_endpoint,
      token_endpoint: meta.token_endpoint,
      userinfo_endpoint: meta.userinfo_endpoint,
      jwks_uri: meta.jwks_uri,
      end_session_endpoint: meta.end_session_endpoint,
    },
  }

  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] })
  try {
    // 1. The nurse signs in for the EHR: password, SMS code.
    let context = await browser.newContext()
    let page = await context.newPage()
    page.setDefaultTimeout(20_000)
    let req = await authorization(ehr, { company: COMPANY })
    await page.goto(req.url.href)
    await signIn(page, NURSE, 'sms')
    let callback = await landedOn(page, REDIRECT_URI)
    const first = await client.authorizationCodeGrant(ehr, callback, req.checks)
    const claims = first.claims()
    const userinfo = await client.fetchUserInfo(ehr, first.access_token, claims.sub)
    out.signin = {
      callback_params: [...callback.searchParams.keys()].sort(),
      token: tokenAnswer(first),
      claims,
      userinfo,
    }

    // 2. Refresh, twice: a new refresh token each time.
    const second = await client.refreshTokenGrant(ehr, first.refresh_token)
    const third = await client.refreshTokenGrant(ehr, second.refresh_token)
    out.refresh = {
      token: tokenAnswer(second),
      distinct_refresh_tokens: new Set([first.refresh_token, second.refresh_token, third.refresh_token]).size,
      distinct_access_tokens: new Set([first.access_token, second.access_token, third.access_token]).size,
      userinfo_sub: (await client.fetchUserInfo(ehr, third.access_token, claims.sub)).sub,
    }

    // 3. Single sign-on: the public client gets a code with no page; the code works once.
    let from = mark()
    req = await authorization(pub)
    await page.goto(req.url.href)
    callback = await landedOn(page, REDIRECT_URI)
    const pubTokens = await client.authorizationCodeGrant(pub, callback, req.checks)
    out.sso = {
      codes_sent: mark() - from,
      token: tokenAnswer(pubTokens),
      claims: pubTokens.claims(),
      replay: await refusal(client.authorizationCodeGrant(pub, callback, req.checks)),
    }

    // 4. RP-initiated logout, then: the EHR's refresh token and the public client's
    // prompt=none are both refused.
    const logout = client.buildEndSessionUrl(ehr, {
      id_token_hint: first.id_token,
      post_logout_redirect_uri: POST_LOGOUT_URI,
      state: 'xyz',
    })
    await page.goto(logout.href)
    const signedOut = await landedOn(page, POST_LOGOUT_URI)
    req = await authorization(pub, { prompt: 'none' })
    await page.goto(req.url.href)
    callback = await landedOn(page, REDIRECT_URI)
    out.logout = {
      end_session_url: logout.origin + logout.pathname,
      landed: signedOut.origin + signedOut.pathname,
      state: signedOut.searchParams.get('state'),
      refresh: await refusal(client.refreshTokenGrant(ehr, third.refresh_token)),
      prompt_none: await refusal(client.authorizationCodeGrant(pub, callback, req.checks)),
    }
    await context.close()

    // 5. Refresh token reuse, in a new sign-in: the used one and the newest both refused.
    context = await browser.newContext()
    page = await context.newPage()
    page.setDefaultTimeout(20_000)
    req = await authorization(ehr)
    await page.goto(req.url.href)
    await signIn(page, NURSE, 'sms')
    callback = await landedOn(page, REDIRECT_URI)
    const again = await client.authorizationCodeGrant(ehr, callback, req.checks)
    const next = await client.refreshTokenGrant(ehr, again.refresh_token)
    out.reuse = {
      claims_sub: again.claims().sub,
      used: await refusal(client.refreshTokenGrant(ehr, again.refresh_token)),
      newest: await refusal(client.refreshTokenGrant(ehr, next.refresh_token)),
    }
    await context.close()
  } finally {
    await browser.close()
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`)
  if (e?.cause !== undefined) process.stderr.write(`cause: ${inspect(e.cause, { depth: 4 })}\n`)
  process.exit(1)
})
