// checkov findings skipped in the template itself (Metadata.checkov.skip, which checkov
// reads), each on one resource and with its reason. Anything else fails
// scripts/check-templates.
import { CfnResource, Stack } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import type { GatehouseStack } from './gatehouse-stack.js';

interface Skip {
  readonly id: string;
  readonly comment: string;
}

function skip(construct: IConstruct, skips: Skip[]): void {
  const resource = construct instanceof CfnResource ? construct : construct.node.defaultChild;
  if (!(resource instanceof CfnResource)) {
    throw new Error(`${construct.node.path}: no CloudFormation resource to skip checkov checks on`);
  }
  const existing = (resource.getMetadata('checkov') as { skip?: Skip[] } | undefined)?.skip ?? [];
  resource.addMetadata('checkov', { skip: [...existing, ...skips] });
}

const deployTimeFunction: Skip[] = [
  {
    id: 'CKV_AWS_115',
    comment: 'Runs only while CloudFormation deploys (a CDK custom resource handler): nothing to reserve concurrency for.',
  },
  {
    id: 'CKV_AWS_116',
    comment: 'Invoked synchronously by CloudFormation, which reports its failures: there is no asynchronous event to dead-letter.',
  },
];

export function applyCheckovSkips(stack: GatehouseStack): void {
  // Lambda functions that CDK adds for custom resources (SMS preferences, closing the
  // VPC's default security group).
  for (const node of Stack.of(stack).node.findAll()) {
    if (node instanceof CfnResource && node.cfnResourceType === 'AWS::Lambda::Function') {
      const skips = [...deployTimeFunction];
      if (node.node.path.includes('VpcRestrictDefaultSG')) {
        skips.push({
          id: 'CKV_AWS_117',
          comment:
            'CDK\'s handler that removes the default security group\'s rules: it calls only the EC2 API during deployment and is not configurable into the VPC.',
        });
      }
      skip(node, skips);
    }
  }
  skip(stack.compute.accessLogs, [
    {
      id: 'CKV_AWS_18',
      comment: 'This bucket receives the ALB access logs; logging a log bucket needs yet another bucket and adds no audit value (CloudTrail records its API use).',
    },
  ]);
}
