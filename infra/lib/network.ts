// The VPC: public subnets for the load balancer and NAT only, private subnets for the
// services, isolated subnets (no route out at all) for the database and the cache.
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { RemovalPolicy } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { GatehouseSettings } from './settings.js';

export interface NetworkProps {
  readonly settings: GatehouseSettings;
  readonly logsKey: kms.IKey;
}

export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  readonly flowLogGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    const { settings } = props;
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(settings.network.cidr),
      maxAzs: settings.network.maxAzs,
      natGateways: settings.network.natGateways,
      subnetConfiguration: [
        // Nothing here gets a public address by default: the ALB and the NAT gateways
        // bring their own.
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        { name: 'services', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
        { name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      // The default security group allows nothing (CIS 5.4).
      restrictDefaultSecurityGroup: true,
    });
    this.flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      retention: settings.logRetentionDays as logs.RetentionDays,
      encryptionKey: props.logsKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(this.flowLogGroup),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });
  }

  /** The subnets the services run in. */
  get serviceSubnets(): ec2.SubnetSelection {
    return { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
  }

  /** The subnets of the database and the cache. */
  get dataSubnets(): ec2.SubnetSelection {
    return { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
  }

  /** The CIDRs the ALB's nodes have addresses in: the only proxies the API believes. */
  get loadBalancerCidrs(): string[] {
    return this.vpc.publicSubnets.map((s) => s.ipv4CidrBlock);
  }
}
