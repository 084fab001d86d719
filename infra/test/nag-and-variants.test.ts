// cdk-nag's AWS Solutions and HIPAA Security packs run on every synthesis and fail it on
// any finding not acknowledged (lib/nag-acknowledgements.ts); and the settings that
// change the wiring (a hand-registered SMS number, a rotated secret key) are honoured.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as sns from 'aws-cdk-lib/aws-sns';
import { buildApp } from '../lib/app.js';
import { ENVIRONMENTS } from '../lib/settings.js';
import { container, environmentOf, resourcesOf, synthesize } from './synth.js';

describe('cdk-nag', () => {
  it('o2_an_unacknowledged_finding_fails_synthesis', () => {
    // The control: both packs are really on. An unencrypted topic that allows plain HTTP
    // breaks AwsSolutions-SNS3 and HIPAA.Security-SNSEncryptedKMS.
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-nag-'));
    const { app, stacks } = buildApp({ outdir });
    new sns.Topic(stacks.staging, 'UnencryptedControl');
    assert.throws(() => app.synth(), /Validation failed/);
    const report = JSON.parse(fs.readFileSync(path.join(outdir, 'validation-report.json'), 'utf8'));
    const rules = report.pluginReports.flatMap((p: any) => p.violations.map((v: any) => v.ruleName));
    assert.deepEqual(rules.sort(), ['AwsSolutions-SNS3', 'HIPAA.Security-SNSEncryptedKMS']);
    const paths = report.pluginReports.flatMap((p: any) =>
      p.violations.flatMap((v: any) => v.violatingConstructs.map((c: any) => c.constructPath)),
    );
    // Nothing else is reported: every other finding is acknowledged.
    assert.deepEqual([...new Set(paths)], ['Gatehouse-staging/UnencryptedControl/Resource']);
  });
});

describe('settings variants', () => {
  const production = {
    ...ENVIRONMENTS.production,
    sms: { ...ENVIRONMENTS.production.sms, originationNumber: '+18885550100' },
    secretKeyHasPrevious: true,
  };
  // Synthesis passes cdk-nag here too, or synthesize() throws.
  const { json } = synthesize({ settings: { production } });

  it('o2_a_hand_registered_origination_number_is_used_as_is', () => {
    assert.equal(resourcesOf(json.production, 'AWS::SMSVOICE::PhoneNumber').length, 0);
    for (const role of ['api', 'worker'] as const) {
      assert.equal(environmentOf(container(json.production, role)).env.GATEHOUSE_SMS_ORIGINATION_NUMBER, '+18885550100');
    }
    assert.equal(resourcesOf(json.staging, 'AWS::SMSVOICE::PhoneNumber').length, 1);
  });

  it('o2_after_a_rotation_the_retired_keys_reach_gatehouse_secret_key_previous', () => {
    for (const role of ['api', 'worker'] as const) {
      const { env, secrets } = environmentOf(container(json.production, role));
      assert.match(JSON.stringify(secrets.GATEHOUSE_SECRET_KEY_PREVIOUS), /:previous::"/);
      assert.equal(env.GATEHOUSE_SECRET_KEY_PREVIOUS, undefined);
    }
  });
});
