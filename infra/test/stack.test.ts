// O2: the synthesized templates describe what the deployment promises: encryption,
// Multi-AZ, TLS, the SES -> SNS -> webhook wiring, least privilege, scaling and alarms.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { ENVIRONMENTS } from '../lib/settings.js';
import { actionsOf, container, environmentOf, resource, resourcesOf, statementsOf, synthesize } from './synth.js';

const { templates, json } = synthesize();
const prod = json.production;
const staging = json.staging;
const isKeyRef = (v: any) => JSON.stringify(v).includes('KeysData');

describe('network', () => {
  it('o2_the_vpc_spans_three_azs_in_production_and_two_in_staging_with_private_subnets', () => {
    for (const [template, azs] of [[prod, 3], [staging, 2]] as const) {
      const subnets = resourcesOf(template, 'AWS::EC2::Subnet');
      const named = (kind: string) => subnets.filter(([id]) => id.includes(`${kind}Subnet`));
      assert.equal(named('public').length, azs);
      assert.equal(named('services').length, azs);
      assert.equal(named('data').length, azs);
      // Distinct AZs: Fn::Select 0..azs-1 of Fn::GetAZs.
      const zones = new Set(subnets.map(([, s]) => JSON.stringify(s.Properties.AvailabilityZone)));
      assert.equal(zones.size, azs);
      for (const [, s] of subnets) {
        assert.equal(s.Properties.MapPublicIpOnLaunch, false);
      }
    }
  });

  it('o2_vpc_flow_logs_record_all_traffic_to_an_encrypted_log_group', () => {
    templates.production.hasResourceProperties('AWS::EC2::FlowLog', {
      TrafficType: 'ALL',
      LogDestinationType: 'cloud-watch-logs',
    });
  });

  it('o2_every_log_group_has_a_retention_and_a_customer_managed_key', () => {
    const groups = resourcesOf(prod, 'AWS::Logs::LogGroup');
    assert.ok(groups.length >= 8, `${groups.length} log groups`);
    for (const [id, g] of groups) {
      assert.equal(g.Properties.RetentionInDays, 365, id);
      assert.ok(JSON.stringify(g.Properties.KmsKeyId).includes('KeysLogs'), `${id} is encrypted with the logs key`);
    }
    for (const [, g] of resourcesOf(staging, 'AWS::Logs::LogGroup')) {
      assert.equal(g.Properties.RetentionInDays, ENVIRONMENTS.staging.logRetentionDays);
    }
  });
});

describe('database', () => {
  it('o2_postgres_is_multi_az_encrypted_with_a_cmk_backed_up_and_protected_in_production', () => {
    const [, db] = resource(prod, 'AWS::RDS::DBInstance', 'DataPostgres');
    const p = db.Properties;
    assert.equal(p.Engine, 'postgres');
    assert.equal(p.MultiAZ, true);
    assert.equal(p.StorageEncrypted, true);
    assert.ok(isKeyRef(p.KmsKeyId), 'storage key is the data CMK');
    assert.equal(p.DeletionProtection, true);
    assert.equal(p.BackupRetentionPeriod, 35);
    assert.equal(p.PubliclyAccessible, false);
    assert.equal(p.EnablePerformanceInsights, true);
    assert.ok(isKeyRef(p.PerformanceInsightsKMSKeyId));
    assert.ok(p.MonitoringInterval > 0, 'enhanced monitoring');
    assert.ok(p.MonitoringRoleArn);
    assert.deepEqual(p.EnableCloudwatchLogsExports, ['postgresql', 'upgrade']);
    assert.equal(db.DeletionPolicy, 'Snapshot');
  });

  it('o2_staging_keeps_backups_but_can_be_torn_down', () => {
    const [, db] = resource(staging, 'AWS::RDS::DBInstance', 'DataPostgres');
    assert.equal(db.Properties.MultiAZ, true);
    assert.equal(db.Properties.DeletionProtection, false);
    assert.ok(db.Properties.BackupRetentionPeriod >= 1);
  });

  it('o2_postgres_requires_tls_through_rds_force_ssl', () => {
    templates.production.hasResourceProperties('AWS::RDS::DBParameterGroup', {
      Parameters: Match.objectLike({ 'rds.force_ssl': '1' }),
    });
  });

  it('o2_the_database_password_is_generated_in_secrets_manager_and_only_referenced', () => {
    const [, db] = resource(prod, 'AWS::RDS::DBInstance', 'DataPostgres');
    const password = JSON.stringify(db.Properties.MasterUserPassword);
    assert.match(password, /\{\{resolve:secretsmanager:/);
    templates.production.hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: 'gatehouse/production/database',
      KmsKeyId: Match.anyValue(),
      GenerateSecretString: Match.objectLike({ GenerateStringKey: 'password' }),
    });
  });
});

describe('cache', () => {
  it('o2_redis_fails_over_across_azs_with_tls_encryption_at_rest_and_an_auth_token', () => {
    const [, rg] = resource(prod, 'AWS::ElastiCache::ReplicationGroup', 'DataRedis');
    const p = rg.Properties;
    assert.equal(p.AutomaticFailoverEnabled, true);
    assert.equal(p.MultiAZEnabled, true);
    assert.ok(p.NumCacheClusters >= 2);
    assert.equal(p.TransitEncryptionEnabled, true);
    assert.equal(p.AtRestEncryptionEnabled, true);
    assert.ok(isKeyRef(p.KmsKeyId));
    assert.match(JSON.stringify(p.AuthToken), /\{\{resolve:secretsmanager:/);
  });

  it('o2_redis_never_evicts_because_the_queue_lives_there', () => {
    templates.production.hasResourceProperties('AWS::ElastiCache::ParameterGroup', {
      Properties: { 'maxmemory-policy': 'noeviction' },
    });
  });

  it('o2_the_redis_url_secret_is_composed_from_the_token_reference_and_the_primary_endpoint', () => {
    const [, secret] = resource(prod, 'AWS::SecretsManager::Secret', 'DataRedisUrl');
    const value = JSON.stringify(secret.Properties.SecretString);
    assert.match(value, /rediss:\/\/:/);
    assert.match(value, /\{\{resolve:secretsmanager:/);
    assert.match(value, /PrimaryEndPoint\.Address/);
  });
});

describe('messaging', () => {
  it('o2_ses_events_bounce_complaint_delivery_go_to_the_encrypted_email_events_topic', () => {
    const [topicId, topic] = resource(prod, 'AWS::SNS::Topic', 'MessagingEmailEvents');
    assert.ok(JSON.stringify(topic.Properties.KmsMasterKeyId).includes('KeysMessaging'));
    const [, destination] = resource(prod, 'AWS::SES::ConfigurationSetEventDestination', 'MessagingConfigurationSet');
    const d = destination.Properties.EventDestination;
    assert.equal(d.Enabled, true);
    assert.deepEqual([...d.MatchingEventTypes].sort(), ['bounce', 'complaint', 'delivery']);
    assert.deepEqual(d.SnsDestination.TopicARN, { Ref: topicId });
    templates.production.hasResourceProperties('AWS::SES::EmailIdentity', {
      EmailIdentity: ENVIRONMENTS.production.emailDomain,
      ConfigurationSetAttributes: Match.objectLike({ ConfigurationSetName: Match.anyValue() }),
    });
    templates.production.hasResourceProperties('AWS::SES::ConfigurationSet', {
      DeliveryOptions: { TlsPolicy: 'REQUIRE' },
    });
  });

  it('o2_both_topics_are_subscribed_over_https_to_the_sns_webhook', () => {
    const url = `https://${ENVIRONMENTS.production.apiDomain}/v1/webhooks/aws/sns`;
    const subscriptions = resourcesOf(prod, 'AWS::SNS::Subscription').filter(([, s]) => s.Properties.Protocol === 'https');
    const [emailTopic] = resource(prod, 'AWS::SNS::Topic', 'MessagingEmailEvents');
    const [smsTopic] = resource(prod, 'AWS::SNS::Topic', 'MessagingInboundSms');
    assert.deepEqual(
      subscriptions.map(([, s]) => s.Properties.TopicArn.Ref).sort(),
      [emailTopic, smsTopic].sort(),
    );
    for (const [, s] of subscriptions) {
      assert.equal(s.Properties.Endpoint, url);
      // The webhook verifies the SNS envelope: raw delivery would strip it.
      assert.notEqual(s.Properties.RawMessageDelivery, true);
      // Subscribed once the API service is up, so the confirmation reaches it.
      assert.ok((s.DependsOn ?? []).some((d: string) => d.startsWith('ComputeApiService')));
    }
  });

  it('o2_inbound_sms_reach_their_topic_from_the_origination_number', () => {
    const [smsTopic] = resource(prod, 'AWS::SNS::Topic', 'MessagingInboundSms');
    const [, number] = resource(prod, 'AWS::SMSVOICE::PhoneNumber', 'MessagingOriginationNumber');
    assert.deepEqual(number.Properties.TwoWay.ChannelArn, { Ref: smsTopic });
    assert.equal(number.Properties.TwoWay.Enabled, true);
    assert.deepEqual(number.Properties.NumberCapabilities, ['SMS']);
    assert.equal(number.Properties.DeletionProtectionEnabled, true);
  });

  it('o2_sms_preferences_are_transactional_with_a_monthly_spend_limit', () => {
    const [, prefs] = resource(prod, 'Custom::AWS', 'MessagingSmsPreferences');
    const create = JSON.stringify(prefs.Properties.Create);
    assert.match(create, /SetSMSAttributes/);
    assert.match(create, /\\"DefaultSMSType\\":\\"Transactional\\"/);
    assert.match(create, new RegExp(`\\\\"MonthlySpendLimit\\\\":\\\\"${ENVIRONMENTS.production.sms.monthlySpendLimitUsd}\\\\"`));
  });
});

describe('compute', () => {
  it('o2_the_api_runs_serve_no_workers_and_the_worker_runs_worker', () => {
    assert.deepEqual(container(prod, 'api').Command, ['serve', '--no-workers']);
    assert.deepEqual(container(prod, 'worker').Command, ['worker', '--no-migrate']);
    for (const role of ['api', 'worker'] as const) {
      const c = container(prod, role);
      assert.equal(c.User, '10001');
      assert.equal(c.ReadonlyRootFilesystem, true);
      assert.match(JSON.stringify(c.Image), /cdk-hnb659fds-container-assets/);
    }
    assert.equal(resourcesOf(prod, 'AWS::ECS::Service').length, 2);
    for (const [, s] of resourcesOf(prod, 'AWS::ECS::Service')) {
      assert.equal(s.Properties.LaunchType, 'FARGATE');
      assert.equal(s.Properties.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp, 'DISABLED');
    }
  });

  it('o2_the_alb_terminates_tls_and_checks_readyz', () => {
    templates.production.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Protocol: 'HTTPS',
      Certificates: [Match.objectLike({ CertificateArn: Match.anyValue() })],
      SslPolicy: Match.stringLikeRegexp('TLS13'),
    });
    assert.equal(resourcesOf(prod, 'AWS::ElasticLoadBalancingV2::Listener').length, 1, 'no plain-HTTP listener');
    templates.production.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      HealthCheckPath: '/readyz',
      Port: 8080,
    });
    templates.production.hasResourceProperties('AWS::CertificateManager::Certificate', {
      DomainName: ENVIRONMENTS.production.apiDomain,
      ValidationMethod: 'DNS',
    });
    templates.production.hasResourceProperties('AWS::WAFv2::WebACLAssociation', {});
    const [, lb] = resource(prod, 'AWS::ElasticLoadBalancingV2::LoadBalancer', 'ComputeLoadBalancer');
    const attributes = Object.fromEntries(lb.Properties.LoadBalancerAttributes.map((a: any) => [a.Key, a.Value]));
    assert.equal(attributes['routing.http.drop_invalid_header_fields.enabled'], 'true');
    assert.equal(attributes['access_logs.s3.enabled'], 'true');
    assert.equal(attributes['deletion_protection.enabled'], 'true');
  });

  it('o2_the_worker_has_a_health_check_on_its_own_healthz', () => {
    const check = container(prod, 'worker').HealthCheck;
    assert.match(check.Command.join(' '), /\/dev\/tcp\/127\.0\.0\.1\/9090.*GET \/healthz/);
    assert.equal(environmentOf(container(prod, 'worker')).env.GATEHOUSE_WORKER_LISTEN, '127.0.0.1:9090');
  });

  it('o2_the_api_scales_on_cpu_and_the_worker_on_queue_depth', () => {
    const policies = resourcesOf(prod, 'AWS::ApplicationAutoScaling::ScalingPolicy');
    const cpu = policies.find(([, p]) => p.Properties.PolicyType === 'TargetTrackingScaling');
    assert.equal(
      cpu?.[1].Properties.TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType,
      'ECSServiceAverageCPUUtilization',
    );
    assert.ok(JSON.stringify(cpu?.[1].Properties.ScalingTargetId).includes('ComputeApi'));
    const steps = policies.filter(([, p]) => p.Properties.PolicyType === 'StepScaling');
    assert.ok(steps.length >= 2, 'scale-out and scale-in steps');
    for (const [, p] of steps) {
      assert.ok(JSON.stringify(p.Properties.ScalingTargetId).includes('ComputeWorker'));
    }
    const scalingAlarms = resourcesOf(prod, 'AWS::CloudWatch::Alarm').filter(([id]) => id.includes('QueueDepth') && id.startsWith('Compute'));
    assert.ok(scalingAlarms.length >= 2);
    for (const [, a] of scalingAlarms) {
      assert.match(JSON.stringify(a.Properties.Metrics), /gatehouse_queue_depth/);
    }
    const targets = resourcesOf(prod, 'AWS::ApplicationAutoScaling::ScalableTarget');
    assert.deepEqual(
      targets.map(([, t]) => [t.Properties.MinCapacity, t.Properties.MaxCapacity]).sort(),
      [
        [ENVIRONMENTS.production.api.minTasks, ENVIRONMENTS.production.api.maxTasks],
        [ENVIRONMENTS.production.worker.minTasks, ENVIRONMENTS.production.worker.maxTasks],
      ].sort(),
    );
  });

  it('o2_both_tasks_run_an_adot_collector_sidecar_receiving_otlp', () => {
    for (const prefix of ['ComputeApiTask', 'ComputeWorkerTask']) {
      const [, task] = resource(prod, 'AWS::ECS::TaskDefinition', prefix);
      const collector = task.Properties.ContainerDefinitions.find((c: any) => c.Name === 'otel-collector');
      assert.match(collector.Image, /aws-otel-collector:v\d+\.\d+\.\d+$/);
      const config = JSON.stringify(collector.Environment);
      assert.match(config, /AOT_CONFIG_CONTENT/);
      assert.match(config, /otlp/);
      assert.match(config, /awsemf/);
      const app = task.Properties.ContainerDefinitions.find((c: any) => c.Name === 'gatehouse');
      assert.deepEqual(app.DependsOn, [{ ContainerName: 'otel-collector', Condition: 'START' }]);
    }
  });
});

describe('secrets and permissions', () => {
  it('o2_secrets_reach_the_containers_only_through_secrets_manager', () => {
    for (const role of ['api', 'worker'] as const) {
      const { env, secrets } = environmentOf(container(prod, role));
      for (const name of ['GATEHOUSE_SECRET_KEY', 'GATEHOUSE_REDIS_URL', 'PGPASSWORD']) {
        assert.ok(secrets[name], `${role}: ${name} is a secret`);
        assert.equal(env[name], undefined, `${role}: ${name} is not in the environment`);
      }
      assert.match(JSON.stringify(secrets.GATEHOUSE_SECRET_KEY), /:current::"/);
      assert.match(JSON.stringify(secrets.PGPASSWORD), /:password::"/);
      // The database URL carries no password: user@host only.
      const url = JSON.stringify(env.GATEHOUSE_DATABASE_URL);
      assert.match(url, /postgres:\/\/gatehouse@/);
      assert.match(url, /sslmode=verify-full/);
    }
  });

  it('o2_the_secret_key_is_generated_from_an_alphabet_that_always_decodes_to_32_bytes', () => {
    const [, secret] = resource(prod, 'AWS::SecretsManager::Secret', 'DataSecretKey');
    const g = secret.Properties.GenerateSecretString;
    assert.equal(g.GenerateStringKey, 'current');
    assert.equal(g.PasswordLength, 43);
    const allowed = Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i)).filter(
      (c) => !g.ExcludeCharacters.includes(c),
    );
    assert.equal(allowed.join(''), '048AEIMQUYcgkosw');
    // Any such string is a canonical base64url encoding of exactly 32 bytes.
    for (let n = 0; n < 200; n++) {
      const key = Array.from({ length: 43 }, () => allowed[Math.floor(Math.random() * allowed.length)]).join('');
      const bytes = Buffer.from(key, 'base64url');
      assert.equal(bytes.length, 32);
      assert.equal(bytes.toString('base64url'), key);
    }
    assert.equal(secret.DeletionPolicy, 'Retain');
  });

  it('o2_only_the_worker_may_send_email_and_sms', () => {
    const roleOf = (prefix: string) => resource(prod, 'AWS::IAM::Role', prefix)[0];
    const apiActions = actionsOf([
      ...statementsOf(prod, roleOf('ComputeApiTaskTaskRole')),
      ...statementsOf(prod, roleOf('ComputeApiTaskExecutionRole')),
    ]);
    for (const forbidden of ['ses:SendEmail', 'ses:SendRawEmail', 'sns:Publish', 'ses:*', 'sns:*', '*']) {
      assert.ok(!apiActions.includes(forbidden), `the API may not ${forbidden}`);
    }
    const worker = statementsOf(prod, roleOf('ComputeWorkerTaskTaskRole'));
    const send = worker.find((s) => s.Action === 'ses:SendEmail');
    assert.ok(send, 'the worker sends email');
    assert.equal(send.Condition.StringLike['ses:FromAddress'], `*@${ENVIRONMENTS.production.emailDomain}`);
    const publish = worker.find((s) => s.Action === 'sns:Publish');
    assert.deepEqual(publish.NotResource, 'arn:aws:sns:*:*:*', 'SMS to phone numbers only, no topic');
    assert.equal(publish.Resource, undefined);
  });

  it('o2_every_kms_key_rotates_and_is_kept', () => {
    const keys = resourcesOf(prod, 'AWS::KMS::Key');
    assert.equal(keys.length, 3);
    for (const [, k] of keys) {
      assert.equal(k.Properties.EnableKeyRotation, true);
      assert.equal(k.DeletionPolicy, 'Retain');
    }
  });
});

describe('observability', () => {
  it('o2_alarms_watch_5xx_rate_delivery_failures_and_queue_depth', () => {
    const alarms = resourcesOf(prod, 'AWS::CloudWatch::Alarm').filter(([id]) => id.startsWith('Observability'));
    const text = (id: string) => JSON.stringify(alarms.find(([a]) => a.startsWith(`Observability${id}`))?.[1]);
    assert.match(text('Api5xxRate'), /HTTPCode_Target_5XX_Count/);
    assert.match(text('Api5xxRate'), /HTTPCode_ELB_5XX_Count/);
    assert.match(text('CodeDeliveryFailures'), /gatehouse_codes_sent/);
    assert.match(text('CodeDeliveryFailures'), /"Value":"failed"/);
    assert.match(text('QueueDepth'), /gatehouse_queue_depth/);
    const [alarmTopic] = resource(prod, 'AWS::SNS::Topic', 'ObservabilityAlarms');
    for (const [, a] of alarms) {
      assert.deepEqual(a.Properties.AlarmActions, [{ Ref: alarmTopic }]);
    }
  });
});
