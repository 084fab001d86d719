// Logs, the OpenTelemetry collector sidecar, metrics and alarms (A2).
import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { OTLP_HTTP_PORT, Role } from './service-env.js';
import { GatehouseSettings } from './settings.js';

export interface ObservabilityProps {
  readonly settings: GatehouseSettings;
  readonly logsKey: kms.IKey;
  readonly messagingKey: kms.IKey;
}

export class Observability extends Construct {
  readonly logGroups: Record<Role, logs.LogGroup>;
  /** Where the collector writes metrics as CloudWatch embedded metric format. */
  readonly metricsLogGroup: logs.LogGroup;
  readonly metricsNamespace: string;
  readonly alarmTopic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  private readonly settings: GatehouseSettings;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const { settings, logsKey } = props;
    this.settings = settings;
    const group = (name: string) =>
      new logs.LogGroup(this, name, {
        retention: settings.logRetentionDays as logs.RetentionDays,
        encryptionKey: logsKey,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    this.logGroups = { api: group('ApiLogs'), worker: group('WorkerLogs') };
    this.metricsLogGroup = group('MetricsLogs');
    this.metricsNamespace = `Gatehouse/${settings.name}`;
    this.alarmTopic = new sns.Topic(this, 'Alarms', {
      displayName: `Gatehouse ${settings.name} alarms`,
      masterKey: props.messagingKey,
      enforceSSL: true,
    });
    if (settings.alarmEmail) {
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(settings.alarmEmail));
    }
  }

  /** The collector's configuration: OTLP in; traces to X-Ray, metrics to CloudWatch. */
  collectorConfig(): string {
    // The metrics that alarms and scaling read, with the labels that become dimensions.
    // Others stay in the EMF log (queryable with Logs Insights) without costing a metric.
    const declarations = [
      { dimensions: [['channel']], metric_name_selectors: ['^gatehouse_queue_depth$'] },
      { dimensions: [['channel', 'status']], metric_name_selectors: ['^gatehouse_codes_sent$'] },
      { dimensions: [['outcome']], metric_name_selectors: ['^gatehouse_signins$'] },
      { dimensions: [['provider', 'kind']], metric_name_selectors: ['^gatehouse_provider_errors$'] },
    ];
    const config = {
      extensions: { health_check: {} },
      receivers: {
        otlp: {
          protocols: {
            // Loopback only: the application containers share the task's network namespace.
            grpc: { endpoint: '127.0.0.1:4317' },
            http: { endpoint: `127.0.0.1:${OTLP_HTTP_PORT}` },
          },
        },
      },
      processors: { batch: { timeout: '10s' } },
      exporters: {
        awsxray: { region: Aws.REGION },
        awsemf: {
          region: Aws.REGION,
          namespace: this.metricsNamespace,
          log_group_name: this.metricsLogGroup.logGroupName,
          log_stream_name: 'otel-{TaskId}',
          dimension_rollup_option: 'NoDimensionRollup',
          metric_declarations: declarations,
        },
      },
      service: {
        extensions: ['health_check'],
        pipelines: {
          traces: { receivers: ['otlp'], processors: ['batch'], exporters: ['awsxray'] },
          metrics: { receivers: ['otlp'], processors: ['batch'], exporters: ['awsemf'] },
        },
      },
    };
    // JSON is YAML: the collector reads it as is, and tokens (region, log group) resolve.
    return JSON.stringify(config);
  }

  /** Adds the ADOT collector sidecar to a task definition, with the rights it uses. */
  addCollector(task: ecs.FargateTaskDefinition, role: Role): ecs.ContainerDefinition {
    const collector = task.addContainer('otel-collector', {
      image: ecs.ContainerImage.fromRegistry(this.settings.collectorImage),
      // A collector outage must not take sign-in down: the task goes on without it.
      essential: false,
      cpu: 64,
      memoryReservationMiB: 128,
      readonlyRootFilesystem: true,
      user: '10001',
      environment: { AOT_CONFIG_CONTENT: this.collectorConfig() },
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroups[role], streamPrefix: 'otel-collector' }),
    });
    task.addToTaskRolePolicy(
      new iam.PolicyStatement({
        // X-Ray's write actions have no resource-level permissions.
        actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
        resources: ['*'],
      }),
    );
    task.addToTaskRolePolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        resources: [this.metricsLogGroup.logGroupArn, `${this.metricsLogGroup.logGroupArn}:log-stream:*`],
      }),
    );
    return collector;
  }

  /** The deliveries waiting to be sent (email + sms), as every worker reports it. */
  queueDepth(): cloudwatch.IMetric {
    const depth = (channel: string) =>
      new cloudwatch.Metric({
        namespace: this.metricsNamespace,
        metricName: 'gatehouse_queue_depth',
        dimensionsMap: { channel },
        // Every worker reads the same depth from the database: the maximum is the depth.
        statistic: cloudwatch.Stats.MAXIMUM,
        period: Duration.minutes(1),
      });
    return new cloudwatch.MathExpression({
      expression: 'FILL(email, 0) + FILL(sms, 0)',
      usingMetrics: { email: depth('email'), sms: depth('sms') },
      label: 'Deliveries queued',
      period: Duration.minutes(1),
    });
  }

  /** Final delivery failures of codes and notices (email + sms). */
  deliveryFailures(): cloudwatch.IMetric {
    const failed = (channel: string) =>
      new cloudwatch.Metric({
        namespace: this.metricsNamespace,
        metricName: 'gatehouse_codes_sent',
        dimensionsMap: { channel, status: 'failed' },
        statistic: cloudwatch.Stats.SUM,
        period: Duration.minutes(5),
      });
    return new cloudwatch.MathExpression({
      expression: 'FILL(email, 0) + FILL(sms, 0)',
      usingMetrics: { email: failed('email'), sms: failed('sms') },
      label: 'Code deliveries failed',
      period: Duration.minutes(5),
    });
  }

  /** The alarms of the running service; each notifies the alarm topic. */
  addAlarms(props: { loadBalancer: elbv2.ApplicationLoadBalancer; queueDepthLimit: number }): void {
    const lb = props.loadBalancer.metrics;
    const fiveMinutes = { period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM };
    const errorRate = new cloudwatch.MathExpression({
      expression: 'IF(requests > 0, 100 * (FILL(target5xx, 0) + FILL(lb5xx, 0)) / requests, 0)',
      usingMetrics: {
        requests: lb.requestCount(fiveMinutes),
        target5xx: lb.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, fiveMinutes),
        lb5xx: lb.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, fiveMinutes),
      },
      label: 'API 5xx responses (%)',
      period: Duration.minutes(5),
    });
    this.alarm('Api5xxRate', errorRate, {
      threshold: this.settings.max5xxPercent,
      evaluationPeriods: 2,
      description: `More than ${this.settings.max5xxPercent}% of API responses were 5xx for 10 minutes.`,
    });
    this.alarm('CodeDeliveryFailures', this.deliveryFailures(), {
      threshold: 10,
      evaluationPeriods: 1,
      description: 'More than 10 codes or notices failed for good (SES/SNS) within 5 minutes.',
    });
    this.alarm('QueueDepth', this.queueDepth(), {
      threshold: props.queueDepthLimit,
      evaluationPeriods: 10,
      description: `More than ${props.queueDepthLimit} deliveries queued for 10 minutes: workers are not keeping up.`,
    });
  }

  private alarm(
    id: string,
    metric: cloudwatch.IMetric,
    props: { threshold: number; evaluationPeriods: number; description: string },
  ): void {
    const alarm = new cloudwatch.Alarm(this, id, {
      alarmName: `gatehouse-${this.settings.name}-${id}`,
      alarmDescription: props.description,
      metric,
      threshold: props.threshold,
      evaluationPeriods: props.evaluationPeriods,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new actions.SnsAction(this.alarmTopic));
    alarm.addOkAction(new actions.SnsAction(this.alarmTopic));
    this.alarms.push(alarm);
  }
}
