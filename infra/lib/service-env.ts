// The service's configuration, derived from the resources of this stack: one function
// builds the environment of both containers, so the deployment and the service's
// configuration (architecture.md, "How it runs") cannot drift apart. Values that are
// secrets come from Secrets Manager through ECS `secrets`, never `environment`.
import { Aws, Fn } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { Data, DATABASE_NAME, DATABASE_USER, RDS_CA_BUNDLE_PATH } from './data.js';
import { Messaging } from './messaging.js';
import { GatehouseSettings } from './settings.js';

/** The API's port inside the task, behind the ALB. */
export const API_PORT = 8080;
/** The worker's /healthz and /metrics listener: loopback only, for its health check. */
export const WORKER_PROBE_PORT = 9090;
/** The ADOT collector's OTLP/HTTP receiver, on the task's loopback. */
export const OTLP_HTTP_PORT = 4318;

export type Role = 'api' | 'worker';

export interface ServiceEnvironment {
  readonly environment: Record<string, string>;
  readonly secrets: Record<string, ecs.Secret>;
}

export interface ServiceEnvironmentProps {
  readonly settings: GatehouseSettings;
  readonly data: Data;
  readonly messaging: Messaging;
  /** GATEHOUSE_TRUSTED_PROXIES: the load balancer's subnets. */
  readonly trustedProxies: string[];
}

export function serviceEnvironment(role: Role, props: ServiceEnvironmentProps): ServiceEnvironment {
  const { settings, data, messaging } = props;
  const db = data.database;
  // The password is not in the URL: sqlx takes it from PGPASSWORD when the URL has none,
  // so the URL is plain configuration and the password alone is a secret (rotation-safe:
  // a rotated password reaches new tasks without rebuilding a URL). verify-full checks
  // the server's certificate against the RDS bundle baked into the image.
  const databaseUrl =
    `postgres://${DATABASE_USER}@${db.dbInstanceEndpointAddress}:${db.dbInstanceEndpointPort}/${DATABASE_NAME}` +
    `?sslmode=verify-full&sslrootcert=${RDS_CA_BUNDLE_PATH}`;

  const environment: Record<string, string> = {
    GATEHOUSE_DATABASE_URL: databaseUrl,
    GATEHOUSE_DELIVERY: 'aws',
    GATEHOUSE_SES_FROM: settings.sesFrom,
    GATEHOUSE_SES_CONFIGURATION_SET: messaging.configurationSet.configurationSetName,
    GATEHOUSE_SMS_ORIGINATION_NUMBER: messaging.originationNumber,
    // The webhook trusts certificates, and the workers confirm subscriptions, only at
    // this region's SNS.
    GATEHOUSE_SNS_CERT_URL_PREFIXES: `https://sns.${Aws.REGION}.amazonaws.com/`,
    GATEHOUSE_LOG_FORMAT: 'json',
    AWS_REGION: Aws.REGION,
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${OTLP_HTTP_PORT}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_SERVICE_NAME: `gatehouse-${role}`,
    OTEL_RESOURCE_ATTRIBUTES: `deployment.environment=${settings.name}`,
  };
  if (settings.sms.senderId) {
    environment.GATEHOUSE_SMS_SENDER_ID = settings.sms.senderId;
  }
  if (role === 'api') {
    environment.GATEHOUSE_LISTEN = `0.0.0.0:${API_PORT}`;
    // The origin people reach (the ALB's certificate names it): the sign-in pages' cookies
    // and same-origin checks, and later the OIDC issuer.
    environment.GATEHOUSE_PUBLIC_URL = `https://${settings.apiDomain}`;
    environment.GATEHOUSE_TRUSTED_PROXIES = props.trustedProxies.join(',');
    // The webhook believes only this stack's topics: SNS signs any account's messages, so
    // without the list anyone's topic could post a STOP or a bounce (unset: it accepts
    // nothing). Joined at deploy time from the topics' ARNs.
    environment.GATEHOUSE_SNS_TOPIC_ARNS = Fn.join(',', [
      messaging.emailEventsTopic.topicArn,
      messaging.inboundSmsTopic.topicArn,
    ]);
  } else {
    environment.GATEHOUSE_WORKER_LISTEN = `127.0.0.1:${WORKER_PROBE_PORT}`;
  }

  const secrets: Record<string, ecs.Secret> = {
    PGPASSWORD: ecs.Secret.fromSecretsManager(data.databaseSecret, 'password'),
    GATEHOUSE_REDIS_URL: ecs.Secret.fromSecretsManager(data.redisUrl),
    GATEHOUSE_SECRET_KEY: ecs.Secret.fromSecretsManager(data.secretKey, 'current'),
  };
  if (settings.secretKeyHasPrevious) {
    secrets.GATEHOUSE_SECRET_KEY_PREVIOUS = ecs.Secret.fromSecretsManager(data.secretKey, 'previous');
  }
  return { environment, secrets };
}
