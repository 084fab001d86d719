// What differs between Gatehouse's environments. Everything else is the same code, so
// staging proves what production will run.

/** The environments this app deploys. */
export type EnvironmentName = 'staging' | 'production';

export interface TaskSize {
  /** Fargate CPU units (1024 = one vCPU). */
  readonly cpu: number;
  readonly memoryMiB: number;
  readonly minTasks: number;
  readonly maxTasks: number;
}

export interface GatehouseSettings {
  readonly name: EnvironmentName;
  /** The API's public host name (the ALB's certificate and the SNS webhook URL). */
  readonly apiDomain: string;
  /** The domain verified in SES (DKIM); GATEHOUSE_SES_FROM must be an address in it. */
  readonly emailDomain: string;
  /** GATEHOUSE_SES_FROM: the sender of code emails. */
  readonly sesFrom: string;
  readonly sms: {
    /**
     * An origination number the operator already owns (E.164), registered by hand
     * (toll-free verification or 10DLC). Unset: the stack requests a new toll-free number
     * with AWS::SMSVOICE::PhoneNumber; it can send only once its registration is approved.
     */
    readonly originationNumber?: string;
    /** ISO country of the number requested when `originationNumber` is unset. */
    readonly isoCountryCode: string;
    /** SNS's account-wide monthly SMS spend limit, in US dollars (D7: cost control). */
    readonly monthlySpendLimitUsd: number;
    /** GATEHOUSE_SMS_SENDER_ID, where the destination country allows one. */
    readonly senderId?: string;
  };
  readonly network: {
    readonly cidr: string;
    readonly maxAzs: number;
    /** One per AZ in production so an AZ outage cannot cut the others off from AWS APIs. */
    readonly natGateways: number;
  };
  readonly database: {
    /** An RDS instance class without the `db.` prefix, such as `t4g.medium`. */
    readonly instanceType: string;
    readonly allocatedStorageGiB: number;
    readonly maxAllocatedStorageGiB: number;
    readonly backupRetentionDays: number;
    readonly deletionProtection: boolean;
  };
  readonly cache: {
    /** An ElastiCache node type such as `cache.t4g.small`. */
    readonly nodeType: string;
    /** Nodes in the replication group: a primary and its replicas (>= 2 for failover). */
    readonly nodes: number;
  };
  readonly api: TaskSize & { readonly targetCpuPercent: number };
  readonly worker: TaskSize & {
    /** Queued deliveries (email + sms) above which another worker task starts. */
    readonly scaleOutQueueDepth: number;
  };
  /** CloudWatch Logs retention of every log group, in days (a RetentionDays value). */
  readonly logRetentionDays: number;
  /** The ADOT collector image (pinned: a collector upgrade is a reviewed change). */
  readonly collectorImage: string;
  /**
   * Whether the secret-key secret holds retired keys under `previous` (after the first
   * rotation, README): then GATEHOUSE_SECRET_KEY_PREVIOUS is set from it. Off at first,
   * because the service refuses an empty GATEHOUSE_SECRET_KEY_PREVIOUS.
   */
  readonly secretKeyHasPrevious: boolean;
  /** Where alarms are sent by email (optional; the alarm topic is an output either way). */
  readonly alarmEmail?: string;
  /** Alarm when more than this share of API responses are 5xx over 5 minutes. */
  readonly max5xxPercent: number;
}

const collectorImage = 'public.ecr.aws/aws-observability/aws-otel-collector:v0.43.0';

export const ENVIRONMENTS: Record<EnvironmentName, GatehouseSettings> = {
  staging: {
    name: 'staging',
    apiDomain: 'auth.staging.gatehouse.example',
    emailDomain: 'mail.staging.gatehouse.example',
    sesFrom: 'Gatehouse Staging <no-reply@mail.staging.gatehouse.example>',
    sms: { isoCountryCode: 'US', monthlySpendLimitUsd: 50, senderId: 'Gatehouse' },
    network: { cidr: '10.40.0.0/16', maxAzs: 2, natGateways: 1 },
    database: {
      instanceType: 't4g.medium',
      allocatedStorageGiB: 20,
      maxAllocatedStorageGiB: 100,
      backupRetentionDays: 7,
      deletionProtection: false,
    },
    cache: { nodeType: 'cache.t4g.small', nodes: 2 },
    api: { cpu: 512, memoryMiB: 1024, minTasks: 2, maxTasks: 4, targetCpuPercent: 60 },
    worker: { cpu: 256, memoryMiB: 512, minTasks: 1, maxTasks: 3, scaleOutQueueDepth: 200 },
    logRetentionDays: 30,
    collectorImage,
    secretKeyHasPrevious: false,
    max5xxPercent: 5,
  },
  production: {
    name: 'production',
    apiDomain: 'auth.gatehouse.example',
    emailDomain: 'mail.gatehouse.example',
    sesFrom: 'Gatehouse <no-reply@mail.gatehouse.example>',
    sms: { isoCountryCode: 'US', monthlySpendLimitUsd: 1000, senderId: 'Gatehouse' },
    network: { cidr: '10.50.0.0/16', maxAzs: 3, natGateways: 3 },
    database: {
      instanceType: 'm7g.large',
      allocatedStorageGiB: 100,
      maxAllocatedStorageGiB: 1000,
      backupRetentionDays: 35,
      deletionProtection: true,
    },
    cache: { nodeType: 'cache.m7g.large', nodes: 3 },
    // Sign-in is bound by Argon2id: the API scales on CPU, from two vCPUs per task.
    api: { cpu: 2048, memoryMiB: 4096, minTasks: 3, maxTasks: 20, targetCpuPercent: 60 },
    worker: { cpu: 512, memoryMiB: 1024, minTasks: 2, maxTasks: 10, scaleOutQueueDepth: 500 },
    // HIPAA asks for six years of audit records; the audit log itself lives in the
    // database, these are the operational logs.
    logRetentionDays: 365,
    collectorImage,
    secretKeyHasPrevious: false,
    max5xxPercent: 1,
  },
};
