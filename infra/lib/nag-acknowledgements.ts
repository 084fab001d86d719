// cdk-nag findings that are acknowledged, each on the narrowest construct it concerns and
// with the reason it is right for Gatehouse. Anything not listed here fails synthesis
// (test/nag.test.ts).
import { Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import type { GatehouseStack } from './gatehouse-stack.js';

const solutions = (rule: string) => `AwsSolutions::AwsSolutions-${rule}`;
const hipaa = (rule: string) => `HIPAA.Security::HIPAA.Security-${rule}`;

function ack(construct: IConstruct | undefined, rules: string[], reason: string): void {
  if (!construct) {
    throw new Error(`no construct to acknowledge ${rules.join(', ')} on`);
  }
  for (const id of rules) {
    Validations.of(construct).acknowledge({ id, reason });
  }
}

/** The singleton Lambda function behind every AwsCustomResource of the stack. */
const CUSTOM_RESOURCE_FUNCTION = 'AWS679f53fac002430cb0da5b7982bd2287';

export function acknowledgeFindings(stack: GatehouseStack): void {
  const { settings, network, data, messaging, compute } = stack;
  const staging = settings.name !== 'production';

  // --- Network ---------------------------------------------------------------------
  for (const subnet of network.vpc.publicSubnets) {
    ack(
      subnet,
      [hipaa('VPCNoUnrestrictedRouteToIGW')],
      'Public subnets hold only the internet-facing ALB and the NAT gateways; no task, database or cache has an address in them.',
    );
  }
  ack(
    network.vpc.node.findChild('FlowLog'),
    [hipaa('IAMNoInlinePolicy')],
    'The flow-log role has one inline policy (write to its own log group), created and deleted with the role; a managed policy would hold the same statement.',
  );

  // --- Data ------------------------------------------------------------------------
  ack(
    data.database,
    [solutions('RDS11')],
    'PostgreSQL keeps port 5432: it sits in isolated subnets and its security group admits only the API and worker tasks; another port adds no protection there.',
  );
  ack(
    data.database.node.findChild('MonitoringRole'),
    [solutions('IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole]')],
    'AmazonRDSEnhancedMonitoringRole is the AWS policy made for exactly this role (RDS publishing OS metrics to CloudWatch Logs).',
  );
  ack(
    data.database,
    [hipaa('RDSInBackupPlan')],
    'RDS automated backups with point-in-time recovery (35 days in production) and a final snapshot on deletion protect the database; an AWS Backup plan would duplicate them.',
  );
  if (staging) {
    ack(
      data.database,
      [solutions('RDS10'), hipaa('RDSInstanceDeletionProtectionEnabled')],
      'Staging holds no patient data and is torn down and rebuilt; production has deletion protection on (settings.ts), and a final snapshot is kept either way.',
    );
  }
  ack(
    data.database.node.findChild('Secret'),
    [solutions('SMG4'), hipaa('SecretsManagerRotationEnabled')],
    'The service reads PGPASSWORD at start-up: a scheduled rotation would lock running tasks out of new connections. Rotation is the operator procedure in infra/README.md (rotate, then roll the services).',
  );
  ack(
    data.redis,
    [solutions('AEC5')],
    'Redis keeps port 6379: it sits in isolated subnets, requires TLS and an AUTH token, and admits only the API and worker tasks.',
  );
  ack(
    data.redis,
    [hipaa('ElastiCacheRedisClusterAutomaticBackup')],
    'Redis holds only the queue, counters and caches (architecture.md); deliveries are durable in PostgreSQL and re-queued from there, so a short snapshot retention is enough.',
  );
  ack(
    data.redisAuthToken,
    [solutions('SMG4'), hipaa('SecretsManagerRotationEnabled')],
    'Changing the AUTH token must also change GATEHOUSE_REDIS_URL and roll the tasks; it is the deploy-driven procedure in infra/README.md, not a Lambda rotation.',
  );
  ack(
    data.redisUrl,
    [solutions('SMG4'), hipaa('SecretsManagerRotationEnabled')],
    'Derived by CloudFormation from the AUTH token secret; it changes when the token does (infra/README.md).',
  );
  ack(
    data.secretKey,
    [solutions('SMG4'), hipaa('SecretsManagerRotationEnabled')],
    'GATEHOUSE_SECRET_KEY seals stored TOTP secrets: a new key must be added with the old one kept in GATEHOUSE_SECRET_KEY_PREVIOUS, which is a reviewed procedure (infra/README.md), not a blind scheduled rotation.',
  );

  // --- Messaging -------------------------------------------------------------------
  const inboundRole = messaging.node.tryFindChild('InboundSmsRole');
  if (inboundRole) {
    ack(
      inboundRole,
      [solutions('IAM5[Action::kms:GenerateDataKey*]'), hipaa('IAMNoInlinePolicy')],
      'Publishing to the KMS-encrypted InboundSms topic needs kms:GenerateDataKey* (a family of one key\'s data-key actions) on that key only; the inline policy belongs to this one role.',
    );
  }
  ack(
    messaging.smsPreferences,
    [solutions('IAM5[Resource::*]'), hipaa('IAMNoInlinePolicy')],
    'sns:SetSMSAttributes has no resource-level permissions: the account-wide SMS preferences are its only object.',
  );
  const fn = stack.node.tryFindChild(CUSTOM_RESOURCE_FUNCTION);
  ack(
    fn,
    [
      solutions('IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]'),
      solutions('IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]'),
    ],
    'The AwsCustomResource function (SMS preferences) runs in the VPC and logs: these AWS policies grant exactly that (ENIs and its own logs).',
  );
  ack(
    fn,
    [hipaa('LambdaConcurrency'), hipaa('LambdaDLQ')],
    'The AwsCustomResource function runs only during deployments, called synchronously by CloudFormation, which reports its failures: no concurrency to reserve, no asynchronous event to dead-letter.',
  );

  // --- Compute ---------------------------------------------------------------------
  ack(
    compute.loadBalancer.connections.securityGroups[0],
    [solutions('EC23')],
    'The ALB serves the public sign-in API (EHRs, browsers, SNS webhooks) on 443 only, behind AWS WAF.',
  );
  ack(
    compute.accessLogs,
    [solutions('S1'), hipaa('S3BucketLoggingEnabled')],
    'This bucket receives the ALB access logs; server access logs of a log bucket would need yet another bucket, without adding an audit trail of value (CloudTrail records its API use).',
  );
  ack(
    compute.accessLogs,
    [hipaa('S3BucketReplicationEnabled')],
    'ALB access logs are operational records, kept with versioning for the retention period; a second-region copy is not worth its cost.',
  );
  ack(
    compute.accessLogs,
    [hipaa('S3DefaultEncryptionKMS')],
    'ELB access log delivery supports only SSE-S3 (not SSE-KMS) on the target bucket.',
  );
  if (staging) {
    ack(
      compute.loadBalancer,
      [hipaa('ELBDeletionProtectionEnabled')],
      'Staging is torn down and rebuilt; the production ALB has deletion protection on.',
    );
  }
  for (const task of Object.values(compute.tasks)) {
    ack(
      task,
      [solutions('ECS2')],
      'Plain configuration (endpoints, names, formats) is in `environment`, derived from this stack so it cannot drift; every secret (PGPASSWORD, GATEHOUSE_REDIS_URL, GATEHOUSE_SECRET_KEY) comes from Secrets Manager through `secrets`.',
    );
    ack(
      task.executionRole,
      [solutions('IAM5[Resource::*]'), hipaa('IAMNoInlinePolicy')],
      'The execution role holds ecr:GetAuthorizationToken, which has no resource-level permissions; its other statements name the image repository, log groups and secrets. The inline policy belongs to this one role.',
    );
    ack(
      task.taskRole,
      [
        solutions('IAM5[Resource::*]'),
        solutions('IAM5[Resource::<ObservabilityMetricsLogs6BB88783.Arn>:log-stream:*]'),
        hipaa('IAMNoInlinePolicy'),
      ],
      'X-Ray writes and the SNS opt-out actions have no resource-level permissions; the collector writes log streams it names itself, in the one metrics log group. The inline policy belongs to this one role.',
    );
  }
}
