// Customer-managed KMS keys, one per kind of data, so a key policy names only the
// services that need it and a key can be disabled without touching the others.
import { Aws, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { GatehouseSettings } from './settings.js';

export class Keys extends Construct {
  /** The database, its Performance Insights, the cache and every secret. */
  readonly data: kms.Key;
  /** CloudWatch Logs: application, flow, database, cache, WAF and metric logs. */
  readonly logs: kms.Key;
  /** SNS topics: SES events, inbound SMS and alarms. */
  readonly messaging: kms.Key;

  constructor(scope: Construct, id: string, settings: GatehouseSettings) {
    super(scope, id);
    const common = {
      enableKeyRotation: true,
      // Losing a key loses the data it encrypts: never deleted with the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    };
    this.data = new kms.Key(this, 'Data', {
      ...common,
      alias: `alias/gatehouse-${settings.name}-data`,
      description: 'Gatehouse: RDS storage and Performance Insights, ElastiCache, Secrets Manager',
    });
    this.logs = new kms.Key(this, 'Logs', {
      ...common,
      alias: `alias/gatehouse-${settings.name}-logs`,
      description: 'Gatehouse: CloudWatch Logs log groups',
    });
    // CloudWatch Logs encrypts with the key itself, limited to this account's log groups.
    this.logs.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: {
          ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:*` },
        },
      }),
    );
    this.messaging = new kms.Key(this, 'Messaging', {
      ...common,
      alias: `alias/gatehouse-${settings.name}-messaging`,
      description: 'Gatehouse: SNS topics (SES events, inbound SMS, alarms)',
    });
    // SES (email events) and CloudWatch (alarms) publish to the encrypted topics.
    this.messaging.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [
          new iam.ServicePrincipal('ses.amazonaws.com'),
          new iam.ServicePrincipal('cloudwatch.amazonaws.com'),
        ],
        actions: ['kms:GenerateDataKey*', 'kms:Decrypt'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
    );
  }
}
