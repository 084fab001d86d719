// The containers' environment covers what the binary needs in production: every variable
// `gatehouse serve --help` and `gatehouse worker --help` list is either set by the stack
// or deliberately left to its default, and a variable the binary gains fails this test
// until it is placed in one of the two lists. Needs the built binary (GATEHOUSE_BIN).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { container, environmentOf, synthesize } from './synth.js';

const infraDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const binary = process.env.GATEHOUSE_BIN ?? path.resolve(infraDir, '..', 'target', 'debug', 'gatehouse');

/** What the stack sets, per process (secrets included). */
const SET = {
  both: [
    'GATEHOUSE_DATABASE_URL',
    'GATEHOUSE_REDIS_URL',
    'GATEHOUSE_DELIVERY',
    'GATEHOUSE_SES_FROM',
    'GATEHOUSE_SES_CONFIGURATION_SET',
    'GATEHOUSE_SMS_ORIGINATION_NUMBER',
    'GATEHOUSE_SMS_SENDER_ID',
    'GATEHOUSE_SECRET_KEY',
    'GATEHOUSE_SNS_CERT_URL_PREFIXES',
    'GATEHOUSE_LOG_FORMAT',
  ],
  serve: ['GATEHOUSE_LISTEN', 'GATEHOUSE_PUBLIC_URL', 'GATEHOUSE_TRUSTED_PROXIES', 'GATEHOUSE_SNS_TOPIC_ARNS'],
  worker: ['GATEHOUSE_WORKER_LISTEN'],
};

/** Variables --help does not list that production needs all the same. */
const SET_OUTSIDE_HELP = [
  'PGPASSWORD', // the database password; sqlx reads it when the URL has none
  'AWS_REGION', // the SDK's region, and the default SNS certificate prefix
  'OTEL_EXPORTER_OTLP_ENDPOINT', // the collector sidecar
  'OTEL_SERVICE_NAME',
];

/** What production leaves to the binary's default, and why that is right. */
const DEFAULTED: Record<string, string> = {
  GATEHOUSE_OPERATOR_COMPANY: "the vendor's tenant keeps its default id, operator",
  GATEHOUSE_SECRET_KEY_FILE: 'the key comes from GATEHOUSE_SECRET_KEY (Secrets Manager), not a file',
  GATEHOUSE_SECRET_KEY_PREVIOUS: 'set from the secret once a rotation has retired a key (settings.secretKeyHasPrevious)',
  GATEHOUSE_OUTBOX_PATH: 'only for GATEHOUSE_DELIVERY=outbox; production delivers through AWS',
  GATEHOUSE_REDIS_PREFIX: 'one deployment per Redis replication group',
  GATEHOUSE_LOGIN_RATE_PER_IP_PER_MINUTE: 'the service default (30) is the product rule',
  GATEHOUSE_SESSION_IDLE_MINUTES: 'the service default (30) is the product rule',
  GATEHOUSE_SESSION_ABSOLUTE_HOURS: 'the service default (12) is the product rule',
  GATEHOUSE_SMS_OPT_IN_NUMBER: 'defaults to the origination number, which is where users text START',
  GATEHOUSE_SMS_OPT_OUT_SYNC_MINUTES: 'the default (10) keeps the opt-out list fresh',
  GATEHOUSE_WORKER_CONCURRENCY: 'the default (64) suits one Fargate worker task; scaling adds tasks',
  GATEHOUSE_REQUEUE_AFTER_SECONDS: 'the default (30) is shorter than any code lifetime',
  GATEHOUSE_SEND_RATE_EMAIL: "the default (14/s) is SES's starting production quota; raise with the quota",
  GATEHOUSE_SEND_RATE_SMS: "the default (20/s) is SNS's SMS rate; raise with the quota",
  GATEHOUSE_FAIR_BURST: 'the default lanes keep one practice from starving the others (D8)',
};

function helpEnv(subcommand: 'serve' | 'worker'): string[] {
  if (!fs.existsSync(binary)) {
    assert.fail(
      `the gatehouse binary is missing at ${binary}: build it first (cargo build -p gatehouse, from the repository root) or set GATEHOUSE_BIN`,
    );
  }
  const help = execFileSync(binary, [subcommand, '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  const names = [...help.matchAll(/\[env: ([A-Z0-9_]+)/g)].map((m) => m[1]);
  assert.ok(names.length > 10, `${subcommand} --help lists its variables`);
  return [...new Set(names)].sort();
}

const { json } = synthesize();

for (const [subcommand, role] of [['serve', 'api'], ['worker', 'worker']] as const) {
  describe(`gatehouse ${subcommand} (${role} task)`, () => {
    // Read inside each test, so that a missing binary fails them (and says why).
    let cached: string[] | undefined;
    const listedVariables = () => (cached ??= helpEnv(subcommand));
    const required = [...SET.both, ...SET[subcommand]];

    it('o2_every_variable_the_binary_reads_is_set_or_deliberately_defaulted', () => {
      const listed = listedVariables();
      const unplaced = listed.filter((v) => !required.includes(v) && !(v in DEFAULTED));
      assert.deepEqual(unplaced, [], `new variables: set them in lib/service-env.ts or add them to DEFAULTED with a reason`);
    });

    it('o2_what_the_stack_sets_is_what_the_binary_reads', () => {
      const listed = listedVariables();
      const unknown = required.filter((v) => !listed.includes(v));
      assert.deepEqual(unknown, [], `${subcommand} --help does not list these`);
    });

    for (const environment of ['production', 'staging'] as const) {
      it(`o2_the_${environment}_${role}_container_sets_every_required_variable`, () => {
        const listed = listedVariables();
        const { env, secrets } = environmentOf(container(json[environment], role));
        const present = new Set([...Object.keys(env), ...Object.keys(secrets)]);
        const missing = [...required, ...SET_OUTSIDE_HELP].filter((v) => !present.has(v));
        assert.deepEqual(missing, []);
        // No stray GATEHOUSE_ variable the binary would not read.
        const stray = [...present].filter(
          (v) => v.startsWith('GATEHOUSE_') && !listed.includes(v),
        );
        assert.deepEqual(stray, []);
        assert.equal(env.GATEHOUSE_DELIVERY, 'aws');
        assert.equal(env.GATEHOUSE_LOG_FORMAT, 'json');
        assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://127.0.0.1:4318');
        assert.equal(env.OTEL_SERVICE_NAME, `gatehouse-${role}`);
        // Without a previous key, the variable must stay unset: the binary refuses ''.
        assert.equal(secrets.GATEHOUSE_SECRET_KEY_PREVIOUS, undefined);
      });
    }
  });
}

describe('values the stack derives', () => {
  it('o2_trusted_proxies_are_the_load_balancer_subnets', () => {
    const { env } = environmentOf(container(json.production, 'api'));
    const publicCidrs = Object.entries(json.production.Resources as Record<string, any>)
      .filter(([id, r]) => r.Type === 'AWS::EC2::Subnet' && id.includes('publicSubnet'))
      .map(([, r]) => r.Properties.CidrBlock);
    assert.deepEqual(env.GATEHOUSE_TRUSTED_PROXIES.split(',').sort(), publicCidrs.sort());
  });

  it('o2_the_public_url_is_the_api_domain_over_https', () => {
    const { env } = environmentOf(container(json.production, 'api'));
    assert.equal(env.GATEHOUSE_PUBLIC_URL, 'https://auth.gatehouse.example');
  });

  it('o2_endpoints_and_names_come_from_the_resources_not_copies', () => {
    const { env, secrets } = environmentOf(container(json.production, 'worker'));
    const text = (v: unknown) => JSON.stringify(v);
    assert.match(text(env.GATEHOUSE_DATABASE_URL), /DataPostgres[A-Z0-9]+","Endpoint\.Address"/);
    assert.match(text(env.GATEHOUSE_SES_CONFIGURATION_SET), /"Ref":"MessagingConfigurationSet/);
    assert.match(text(env.GATEHOUSE_SMS_ORIGINATION_NUMBER), /MessagingOriginationNumber[A-Z0-9]+","PhoneNumber"/);
    assert.match(text(env.GATEHOUSE_SNS_CERT_URL_PREFIXES), /https:\/\/sns\.","?\{?"?Ref"?:"AWS::Region"/);
    assert.match(text(env.AWS_REGION), /AWS::Region/);
    assert.match(text(secrets.GATEHOUSE_REDIS_URL), /"Ref":"DataRedisUrl/);
  });

  it('o2_the_webhook_believes_exactly_the_stacks_two_topics', () => {
    // SNS signs any account's messages: the API must list its own topics, and only them.
    const { env } = environmentOf(container(json.production, 'api'));
    const joined = env.GATEHOUSE_SNS_TOPIC_ARNS as unknown as { 'Fn::Join': [string, unknown[]] };
    assert.ok(joined['Fn::Join'], JSON.stringify(env.GATEHOUSE_SNS_TOPIC_ARNS));
    const [separator, parts] = joined['Fn::Join'];
    assert.equal(separator, ',');
    const refs = parts.map((p) => (p as { Ref: string }).Ref).sort();
    const topics = Object.entries(json.production.Resources as Record<string, any>)
      .filter(([id, r]) => r.Type === 'AWS::SNS::Topic' && id.startsWith('Messaging'))
      .map(([id]) => id)
      .sort();
    assert.equal(topics.length, 2, topics.join(', '));
    assert.deepEqual(refs, topics);
  });
});
