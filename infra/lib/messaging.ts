// Email (SES) and SMS (End User Messaging / SNS): the sending identities, the two event
// topics and their HTTPS subscriptions to the service's webhook, and the account's SMS
// preferences.
import { Aws } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as ses from 'aws-cdk-lib/aws-ses';
import * as smsvoice from 'aws-cdk-lib/aws-smsvoice';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as cr from 'aws-cdk-lib/custom-resources';
import { RemovalPolicy } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { GatehouseSettings } from './settings.js';

/** The path of the service's SNS webhook (architecture.md, "Inbound events"). */
export const SNS_WEBHOOK_PATH = '/v1/webhooks/aws/sns';

export interface MessagingProps {
  readonly settings: GatehouseSettings;
  readonly messagingKey: kms.IKey;
  readonly logsKey: kms.IKey;
  readonly vpc: ec2.IVpc;
  readonly lambdaSubnets: ec2.SubnetSelection;
}

export class Messaging extends Construct {
  readonly emailIdentity: ses.EmailIdentity;
  readonly configurationSet: ses.ConfigurationSet;
  /** SES bounce, complaint and delivery events. */
  readonly emailEventsTopic: sns.Topic;
  /** Inbound SMS (STOP, START, ...) to the origination number. */
  readonly inboundSmsTopic: sns.Topic;
  /** GATEHOUSE_SMS_ORIGINATION_NUMBER (E.164): configured, or the requested number's. */
  readonly originationNumber: string;
  /** The requested number, when the settings name none. */
  readonly phoneNumber?: smsvoice.CfnPhoneNumber;
  readonly webhookUrl: string;
  readonly smsPreferences: cr.AwsCustomResource;

  constructor(scope: Construct, id: string, props: MessagingProps) {
    super(scope, id);
    const { settings, messagingKey } = props;
    this.webhookUrl = `https://${settings.apiDomain}${SNS_WEBHOOK_PATH}`;

    // --- Email ------------------------------------------------------------------------
    this.configurationSet = new ses.ConfigurationSet(this, 'ConfigurationSet', {
      configurationSetName: `gatehouse-${settings.name}`,
      // Codes go only over TLS to the recipient's mail server.
      tlsPolicy: ses.ConfigurationSetTlsPolicy.REQUIRE,
      reputationMetrics: true,
      sendingEnabled: true,
    });
    this.emailEventsTopic = new sns.Topic(this, 'EmailEvents', {
      displayName: `Gatehouse ${settings.name}: SES bounce, complaint and delivery events`,
      masterKey: messagingKey,
      enforceSSL: true,
    });
    this.configurationSet.addEventDestination('ToSns', {
      destination: ses.EventDestination.snsTopic(this.emailEventsTopic),
      events: [ses.EmailSendingEvent.BOUNCE, ses.EmailSendingEvent.COMPLAINT, ses.EmailSendingEvent.DELIVERY],
    });
    this.emailIdentity = new ses.EmailIdentity(this, 'EmailIdentity', {
      identity: ses.Identity.domain(settings.emailDomain),
      configurationSet: this.configurationSet,
      dkimSigning: true,
      feedbackForwarding: false,
    });

    // --- SMS --------------------------------------------------------------------------
    this.inboundSmsTopic = new sns.Topic(this, 'InboundSms', {
      displayName: `Gatehouse ${settings.name}: inbound SMS (STOP, START)`,
      masterKey: messagingKey,
      enforceSSL: true,
    });
    if (settings.sms.originationNumber) {
      // A number registered by hand: its two-way channel is pointed at InboundSms by hand
      // too (README, "Manual steps").
      this.originationNumber = settings.sms.originationNumber;
    } else {
      // End User Messaging delivers inbound messages to the topic through this role.
      const twoWayRole = new iam.Role(this, 'InboundSmsRole', {
        assumedBy: new iam.ServicePrincipal('sms-voice.amazonaws.com', {
          conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
        }),
        description: 'Lets AWS End User Messaging SMS publish inbound SMS to the InboundSms topic',
      });
      this.inboundSmsTopic.grantPublish(twoWayRole);
      this.phoneNumber = new smsvoice.CfnPhoneNumber(this, 'OriginationNumber', {
        isoCountryCode: settings.sms.isoCountryCode,
        numberType: 'TOLL_FREE',
        numberCapabilities: ['SMS'],
        mandatoryKeywords: {
          help: { message: 'Gatehouse sign-in codes. Reply STOP to stop, START to receive codes again.' },
          stop: { message: 'You will no longer receive Gatehouse sign-in codes. Reply START to receive them again.' },
        },
        twoWay: { enabled: true, channelArn: this.inboundSmsTopic.topicArn, channelRole: twoWayRole.roleArn },
        deletionProtectionEnabled: settings.name === 'production',
      });
      this.originationNumber = this.phoneNumber.attrPhoneNumber;
    }

    // Both topics go to the one webhook; the service tells the kinds apart by content and
    // confirms the subscriptions itself. Raw delivery stays off: the handler verifies the
    // SNS envelope's signature.
    for (const topic of [this.emailEventsTopic, this.inboundSmsTopic]) {
      topic.addSubscription(
        new subscriptions.UrlSubscription(this.webhookUrl, {
          protocol: sns.SubscriptionProtocol.HTTPS,
          rawMessageDelivery: false,
        }),
      );
    }

    // --- SMS preferences --------------------------------------------------------------
    // CloudFormation has no resource for SNS's account-wide SMS attributes, so a custom
    // resource calls SetSMSAttributes on every deploy: transactional routing (codes are
    // time-critical) and the monthly spend limit (D7).
    const preferencesLog = new logs.LogGroup(this, 'SmsPreferencesLog', {
      retention: settings.logRetentionDays as logs.RetentionDays,
      encryptionKey: props.logsKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const setAttributes: cr.AwsSdkCall = {
      service: 'SNS',
      action: 'SetSMSAttributes',
      parameters: {
        attributes: {
          DefaultSMSType: 'Transactional',
          MonthlySpendLimit: String(settings.sms.monthlySpendLimitUsd),
        },
      },
      physicalResourceId: cr.PhysicalResourceId.of(`gatehouse-${settings.name}-sms-preferences`),
    };
    this.smsPreferences = new cr.AwsCustomResource(this, 'SmsPreferences', {
      onCreate: setAttributes,
      onUpdate: setAttributes,
      policy: cr.AwsCustomResourcePolicy.fromStatements([
        // SetSMSAttributes has no resource-level permissions.
        new iam.PolicyStatement({ actions: ['sns:SetSMSAttributes'], resources: ['*'] }),
      ]),
      installLatestAwsSdk: false,
      vpc: props.vpc,
      vpcSubnets: props.lambdaSubnets,
      logGroup: preferencesLog,
    });
  }
}
