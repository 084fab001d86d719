// One environment of Gatehouse: network, keys, data, messaging, compute and
// observability, wired so that the service's configuration comes from the resources.
import { CfnOutput, Fn, Stack, StackProps, Tags } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { Compute } from './compute.js';
import { Data } from './data.js';
import { Keys } from './keys.js';
import { Messaging } from './messaging.js';
import { Network } from './network.js';
import { Observability } from './observability.js';
import { GatehouseSettings } from './settings.js';

export interface GatehouseStackProps extends StackProps {
  readonly settings: GatehouseSettings;
}

export class GatehouseStack extends Stack {
  readonly settings: GatehouseSettings;
  readonly keys: Keys;
  readonly network: Network;
  readonly data: Data;
  readonly messaging: Messaging;
  readonly observability: Observability;
  readonly compute: Compute;

  constructor(scope: Construct, id: string, props: GatehouseStackProps) {
    super(scope, id, props);
    const settings = (this.settings = props.settings);
    Tags.of(this).add('application', 'gatehouse');
    Tags.of(this).add('environment', settings.name);

    this.keys = new Keys(this, 'Keys', settings);
    this.network = new Network(this, 'Network', { settings, logsKey: this.keys.logs });
    this.data = new Data(this, 'Data', {
      settings,
      network: this.network,
      dataKey: this.keys.data,
      logsKey: this.keys.logs,
    });
    this.messaging = new Messaging(this, 'Messaging', {
      settings,
      messagingKey: this.keys.messaging,
      logsKey: this.keys.logs,
      vpc: this.network.vpc,
      lambdaSubnets: this.network.serviceSubnets,
    });
    this.observability = new Observability(this, 'Observability', {
      settings,
      logsKey: this.keys.logs,
      messagingKey: this.keys.messaging,
    });
    this.compute = new Compute(this, 'Compute', {
      settings,
      network: this.network,
      data: this.data,
      messaging: this.messaging,
      observability: this.observability,
      logsKey: this.keys.logs,
    });
    this.observability.addAlarms({
      loadBalancer: this.compute.loadBalancer,
      queueDepthLimit: settings.worker.scaleOutQueueDepth * 4,
    });
    // SNS confirms a subscription at once: subscribe when the API can answer.
    for (const topic of [this.messaging.emailEventsTopic, this.messaging.inboundSmsTopic]) {
      topic.node.children
        .filter((child) => child instanceof sns.Subscription)
        .forEach((subscription) => subscription.node.addDependency(this.compute.api));
    }
    this.outputs();
  }

  /**
   * An environment-agnostic stack can use every AZ of its region, not just two: the
   * first `maxAzs` of the region's list (every commercial region has at least three).
   */
  override get availabilityZones(): string[] {
    const count = this.settings?.network.maxAzs ?? 2;
    return Array.from({ length: count }, (_, i) => Fn.select(i, Fn.getAzs()));
  }

  private outputs(): void {
    const out = (id: string, value: string, description: string) =>
      new CfnOutput(this, id, { value, description });
    const { messaging, data, compute, observability } = this;
    out('ApiUrl', `https://${this.settings.apiDomain}`, 'The API; point its DNS name at LoadBalancerDnsName');
    out('LoadBalancerDnsName', compute.loadBalancer.loadBalancerDnsName, 'CNAME (or alias) target of the API domain');
    out('SnsWebhookUrl', messaging.webhookUrl, 'Where both SNS topics deliver');
    out('DatabaseEndpoint', data.database.dbInstanceEndpointAddress, 'PostgreSQL (in GATEHOUSE_DATABASE_URL)');
    out('DatabaseSecretArn', data.databaseSecret.secretArn, 'PostgreSQL credentials (PGPASSWORD)');
    out('RedisEndpoint', data.redis.attrPrimaryEndPointAddress, 'Redis primary (in GATEHOUSE_REDIS_URL)');
    out('RedisUrlSecretArn', data.redisUrl.secretArn, 'GATEHOUSE_REDIS_URL');
    out('RedisAuthTokenSecretArn', data.redisAuthToken.secretArn, 'The Redis AUTH token');
    out('SecretKeySecretArn', data.secretKey.secretArn, 'GATEHOUSE_SECRET_KEY (current) and _PREVIOUS (previous)');
    out('SesConfigurationSet', messaging.configurationSet.configurationSetName, 'GATEHOUSE_SES_CONFIGURATION_SET');
    out('SesFrom', this.settings.sesFrom, 'GATEHOUSE_SES_FROM');
    out('SmsOriginationNumber', messaging.originationNumber, 'GATEHOUSE_SMS_ORIGINATION_NUMBER');
    out('EmailEventsTopicArn', messaging.emailEventsTopic.topicArn, 'SES events -> webhook');
    out('InboundSmsTopicArn', messaging.inboundSmsTopic.topicArn, 'Inbound SMS -> webhook');
    out('AlarmTopicArn', observability.alarmTopic.topicArn, 'Subscribe the on-call here');
    const identity = messaging.emailIdentity;
    const dkim = [
      [identity.dkimDnsTokenName1, identity.dkimDnsTokenValue1],
      [identity.dkimDnsTokenName2, identity.dkimDnsTokenValue2],
      [identity.dkimDnsTokenName3, identity.dkimDnsTokenValue3],
    ];
    dkim.forEach(([name, value], i) =>
      out(`DkimRecord${i + 1}`, `${name} CNAME ${value}`, `SES DKIM record ${i + 1} of ${this.settings.emailDomain}`),
    );
  }
}
