// The two Fargate services: the API (`gatehouse serve --no-workers`) behind an HTTPS
// load balancer, and the delivery workers (`gatehouse worker`), scaled apart.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArnFormat, Aws, CfnCondition, Duration, Fn, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { FactName } from 'aws-cdk-lib/region-info';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { Data } from './data.js';
import { Messaging } from './messaging.js';
import { Network } from './network.js';
import { Observability } from './observability.js';
import { API_PORT, Role, serviceEnvironment, WORKER_PROBE_PORT } from './service-env.js';
import { GatehouseSettings } from './settings.js';

/** The repository root: the Docker build context of the service's image. */
export const REPOSITORY_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The user the containers run as (the Dockerfile's non-root user). */
export const CONTAINER_USER = '10001';

export interface ComputeProps {
  readonly settings: GatehouseSettings;
  readonly network: Network;
  readonly data: Data;
  readonly messaging: Messaging;
  readonly observability: Observability;
  readonly logsKey: kms.IKey;
}

export class Compute extends Construct {
  readonly cluster: ecs.Cluster;
  readonly image: ecs.ContainerImage;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly certificate: acm.Certificate;
  readonly api: ecs.FargateService;
  readonly worker: ecs.FargateService;
  readonly tasks: Record<Role, ecs.FargateTaskDefinition>;
  readonly containers: Record<Role, ecs.ContainerDefinition>;
  readonly accessLogs: s3.Bucket;
  readonly webAcl: wafv2.CfnWebACL;

  constructor(scope: Construct, id: string, props: ComputeProps) {
    super(scope, id);
    const { settings, network, data, messaging, observability } = props;
    const production = settings.name === 'production';

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: network.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENHANCED,
    });
    // Built from the repository's Dockerfile and pushed by `cdk deploy` (README).
    this.image = ecs.ContainerImage.fromAsset(REPOSITORY_ROOT, {
      file: 'Dockerfile',
      platform: ecrAssets.Platform.LINUX_AMD64,
    });

    // --- Load balancer ----------------------------------------------------------------
    // DNS validation: CloudFormation waits until the record ACM asks for exists (README).
    this.certificate = new acm.Certificate(this, 'Certificate', {
      domainName: settings.apiDomain,
      validation: acm.CertificateValidation.fromDns(),
    });
    const lbSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: network.vpc,
      description: 'Gatehouse ALB: HTTPS from the internet (EHRs, browsers, SNS)',
      allowAllOutbound: false,
    });
    lbSecurityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS from anywhere');
    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: network.vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      securityGroup: lbSecurityGroup,
      dropInvalidHeaderFields: true,
      deletionProtection: production,
      http2Enabled: true,
    });
    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      // ALB access logs support only SSE-S3.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        {
          expiration: Duration.days(settings.logRetentionDays),
          noncurrentVersionExpiration: Duration.days(30),
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.enableAccessLogs();
    const listener = this.loadBalancer.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      certificates: [this.certificate],
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      open: false,
    });
    this.webAcl = this.firewall(settings, props.logsKey);
    new wafv2.CfnWebACLAssociation(this, 'FirewallAssociation', {
      resourceArn: this.loadBalancer.loadBalancerArn,
      webAclArn: this.webAcl.attrArn,
    });

    // --- Tasks ------------------------------------------------------------------------
    const envProps = { settings, data, messaging, trustedProxies: network.loadBalancerCidrs };
    const makeTask = (role: Role, size: { cpu: number; memoryMiB: number }) => {
      const task = new ecs.FargateTaskDefinition(this, `${role === 'api' ? 'Api' : 'Worker'}Task`, {
        cpu: size.cpu,
        memoryLimitMiB: size.memoryMiB,
        runtimePlatform: {
          cpuArchitecture: ecs.CpuArchitecture.X86_64,
          operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
        },
      });
      const { environment, secrets } = serviceEnvironment(role, envProps);
      const container = task.addContainer('gatehouse', {
        image: this.image,
        command: role === 'api' ? ['serve', '--no-workers'] : ['worker', '--no-migrate'],
        essential: true,
        environment,
        secrets,
        user: CONTAINER_USER,
        // Production writes nothing to disk: no outbox, no key file, no SQLite.
        readonlyRootFilesystem: true,
        logging: ecs.LogDrivers.awsLogs({ logGroup: observability.logGroups[role], streamPrefix: role }),
        // The worker finishes the sends in flight on SIGTERM.
        stopTimeout: Duration.seconds(role === 'worker' ? 60 : 30),
        portMappings: role === 'api' ? [{ containerPort: API_PORT }] : [],
        healthCheck:
          role === 'worker'
            ? {
                // The image has bash but no HTTP client: a GET over /dev/tcp to the
                // worker's own /healthz.
                command: [
                  'CMD',
                  'bash',
                  '-c',
                  `exec 3<>/dev/tcp/127.0.0.1/${WORKER_PROBE_PORT} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '`,
                ],
                interval: Duration.seconds(30),
                timeout: Duration.seconds(5),
                retries: 3,
                startPeriod: Duration.seconds(60),
              }
            : undefined,
      });
      const collector = observability.addCollector(task, role);
      container.addContainerDependencies({ container: collector, condition: ecs.ContainerDependencyCondition.START });
      return { task, container };
    };
    const api = makeTask('api', settings.api);
    const worker = makeTask('worker', settings.worker);
    this.tasks = { api: api.task, worker: worker.task };
    this.containers = { api: api.container, worker: worker.container };

    // Only the worker sends: SES for email, SNS for SMS (least privilege; the API's role
    // has neither).
    worker.task.addToTaskRolePolicy(
      new iam.PolicyStatement({
        actions: ['ses:SendEmail'],
        resources: [
          messaging.emailIdentity.emailIdentityArn,
          Stack.of(this).formatArn({
            service: 'ses',
            resource: 'configuration-set',
            resourceName: messaging.configurationSet.configurationSetName,
          }),
        ],
        conditions: { StringLike: { 'ses:FromAddress': `*@${settings.emailDomain}` } },
      }),
    );
    worker.task.addToTaskRolePolicy(
      new iam.PolicyStatement({
        // Publishing straight to a phone number: every topic is excluded, so the workers
        // cannot publish to any topic.
        actions: ['sns:Publish'],
        notResources: ['arn:aws:sns:*:*:*'],
      }),
    );
    worker.task.addToTaskRolePolicy(
      new iam.PolicyStatement({
        // The opt-out list (D3); these actions have no resource-level permissions.
        actions: ['sns:CheckIfPhoneNumberIsOptedOut', 'sns:ListPhoneNumbersOptedOut', 'sns:OptInPhoneNumber'],
        resources: ['*'],
      }),
    );

    // --- Services ---------------------------------------------------------------------
    const serviceSecurityGroup = (role: Role) => {
      const sg = new ec2.SecurityGroup(this, `${role === 'api' ? 'Api' : 'Worker'}SecurityGroup`, {
        vpc: network.vpc,
        description: `Gatehouse ${role} tasks`,
        // Out: PostgreSQL, Redis (added below) and HTTPS to AWS APIs and SNS certificates.
        allowAllOutbound: false,
      });
      sg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS APIs (through NAT)');
      sg.addEgressRule(data.databaseSecurityGroup, ec2.Port.tcp(5432), 'PostgreSQL');
      sg.addEgressRule(data.redisSecurityGroup, ec2.Port.tcp(6379), 'Redis');
      data.allowFrom(sg, `${role} tasks`);
      return sg;
    };
    const apiSecurityGroup = serviceSecurityGroup('api');
    apiSecurityGroup.addIngressRule(lbSecurityGroup, ec2.Port.tcp(API_PORT), 'API from the load balancer');
    lbSecurityGroup.addEgressRule(apiSecurityGroup, ec2.Port.tcp(API_PORT), 'To the API tasks');

    const common = {
      cluster: this.cluster,
      vpcSubnets: network.serviceSubnets,
      assignPublicIp: false,
      circuitBreaker: { enable: true, rollback: true },
      enableExecuteCommand: false,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
    };
    this.api = new ecs.FargateService(this, 'Api', {
      ...common,
      taskDefinition: api.task,
      desiredCount: settings.api.minTasks,
      securityGroups: [apiSecurityGroup],
      // The first start applies the migrations before answering /readyz.
      healthCheckGracePeriod: Duration.seconds(120),
    });
    listener.addTargets('Api', {
      port: API_PORT,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targets: [this.api.loadBalancerTarget({ containerName: 'gatehouse', containerPort: API_PORT })],
      healthCheck: {
        path: '/readyz',
        healthyHttpCodes: '200',
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
      deregistrationDelay: Duration.seconds(30),
    });
    this.worker = new ecs.FargateService(this, 'Worker', {
      ...common,
      taskDefinition: worker.task,
      desiredCount: settings.worker.minTasks,
      securityGroups: [serviceSecurityGroup('worker')],
    });
    // Workers start with --no-migrate: they wait for the API, which applies the migrations.
    this.worker.node.addDependency(this.api);

    // --- Scaling ----------------------------------------------------------------------
    // The API on CPU: sign-in is bound by Argon2id.
    this.api
      .autoScaleTaskCount({ minCapacity: settings.api.minTasks, maxCapacity: settings.api.maxTasks })
      .scaleOnCpuUtilization('Cpu', {
        targetUtilizationPercent: settings.api.targetCpuPercent,
        scaleInCooldown: Duration.minutes(5),
        scaleOutCooldown: Duration.minutes(1),
      });
    // The workers on the deliveries waiting to be sent.
    const depth = settings.worker.scaleOutQueueDepth;
    this.worker
      .autoScaleTaskCount({ minCapacity: settings.worker.minTasks, maxCapacity: settings.worker.maxTasks })
      .scaleOnMetric('QueueDepth', {
        metric: observability.queueDepth(),
        adjustmentType: appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
        scalingSteps: [
          { upper: Math.floor(depth / 10), change: -1 },
          { lower: depth, change: +1 },
          { lower: depth * 4, change: +3 },
        ],
        cooldown: Duration.minutes(2),
      });
  }

  /**
   * ALB access logs into `accessLogs`. (The L2 `logAccessLogs` needs a concrete region;
   * this stack is environment-agnostic.) Regions opened before August 2022 deliver as a
   * regional ELB account, newer ones as a service principal: the bucket allows both,
   * the account through a mapping of the regions that have one.
   */
  private enableAccessLogs(): void {
    const stack = Stack.of(this);
    const prefix = 'alb';
    const objects = this.accessLogs.arnForObjects(`${prefix}/AWSLogs/${Aws.ACCOUNT_ID}/*`);
    const none = 'none';
    const elbAccount = stack.regionalFact(FactName.ELBV2_ACCOUNT, none);
    const hasElbAccount = new CfnCondition(this, 'RegionHasElbAccount', {
      expression: Fn.conditionNot(Fn.conditionEquals(elbAccount, none)),
    });
    // In a region without an ELB account the statement names this account instead: a
    // grant the account already has.
    const accountArn = Fn.conditionIf(
      hasElbAccount.logicalId,
      `arn:${Aws.PARTITION}:iam::${elbAccount}:root`,
      `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:root`,
    ).toString();
    this.accessLogs.addToResourcePolicy(
      new iam.PolicyStatement({ principals: [new iam.ArnPrincipal(accountArn)], actions: ['s3:PutObject'], resources: [objects] }),
    );
    this.accessLogs.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('logdelivery.elasticloadbalancing.amazonaws.com')],
        actions: ['s3:PutObject'],
        resources: [objects],
      }),
    );
    this.loadBalancer.setAttribute('access_logs.s3.enabled', 'true');
    this.loadBalancer.setAttribute('access_logs.s3.bucket', this.accessLogs.bucketName);
    this.loadBalancer.setAttribute('access_logs.s3.prefix', prefix);
    // The ALB checks that it can write when the attribute is set.
    this.loadBalancer.node.addDependency(this.accessLogs);
  }

  /** AWS WAF in front of the API: AWS's managed rules and a per-IP rate limit. */
  private firewall(settings: GatehouseSettings, logsKey: kms.IKey): wafv2.CfnWebACL {
    const managed = (name: string, priority: number, excluded: string[] = []) => ({
      name,
      priority,
      overrideAction: { none: {} },
      statement: {
        managedRuleGroupStatement: {
          vendorName: 'AWS',
          name,
          ruleActionOverrides: excluded.map((rule) => ({ name: rule, actionToUse: { count: {} } })),
        },
      },
      visibilityConfig: { sampledRequestsEnabled: true, cloudWatchMetricsEnabled: true, metricName: name },
    });
    const acl = new wafv2.CfnWebACL(this, 'Firewall', {
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: {
        sampledRequestsEnabled: true,
        cloudWatchMetricsEnabled: true,
        metricName: `gatehouse-${settings.name}`,
      },
      rules: [
        // SNS notifications (SES events) can exceed the common rule set's 8 KB body
        // limit: that rule only counts.
        managed('AWSManagedRulesCommonRuleSet', 1, ['SizeRestrictions_BODY']),
        managed('AWSManagedRulesKnownBadInputsRuleSet', 2),
        managed('AWSManagedRulesAmazonIpReputationList', 3),
        {
          // Far above any practice's office (the service's own per-IP sign-in limit is
          // finer): this only stops floods.
          name: 'RateLimitPerIp',
          priority: 4,
          action: { block: {} },
          statement: { rateBasedStatement: { limit: 3000, aggregateKeyType: 'IP' } },
          visibilityConfig: { sampledRequestsEnabled: true, cloudWatchMetricsEnabled: true, metricName: 'RateLimitPerIp' },
        },
      ],
    });
    // WAF writes only to log groups whose name starts with aws-waf-logs-.
    const wafLogs = new logs.LogGroup(this, 'FirewallLogs', {
      logGroupName: `aws-waf-logs-gatehouse-${settings.name}`,
      retention: settings.logRetentionDays as logs.RetentionDays,
      encryptionKey: logsKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    new wafv2.CfnLoggingConfiguration(this, 'FirewallLogging', {
      resourceArn: acl.attrArn,
      // WAF wants the group's ARN without the trailing ':*' that logGroupArn carries.
      logDestinationConfigs: [
        Stack.of(this).formatArn({
          service: 'logs',
          resource: 'log-group',
          resourceName: wafLogs.logGroupName,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ],
      // Sign-in bodies are never logged by WAF (it logs headers only); the tokens are.
      redactedFields: [{ singleHeader: { Name: 'authorization' } }, { singleHeader: { Name: 'cookie' } }],
    });
    return acl;
  }
}
