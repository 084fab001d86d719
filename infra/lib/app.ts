// The CDK app: one stack per environment, checked by cdk-nag's AWS Solutions and HIPAA
// Security rule packs on every synthesis.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks } from 'cdk-nag';
import { GatehouseStack } from './gatehouse-stack.js';
import { applyCheckovSkips } from './checkov-skips.js';
import { acknowledgeFindings } from './nag-acknowledgements.js';
import { ENVIRONMENTS, EnvironmentName, GatehouseSettings } from './settings.js';

export interface BuildOptions {
  /** Where templates go (default: a temporary directory). */
  readonly outdir?: string;
  /** Override an environment's settings (tests). */
  readonly settings?: Partial<Record<EnvironmentName, GatehouseSettings>>;
}

export function buildApp(options: BuildOptions = {}): { app: App; stacks: Record<EnvironmentName, GatehouseStack> } {
  const app = new App({ outdir: options.outdir });
  const stacks = {} as Record<EnvironmentName, GatehouseStack>;
  for (const name of Object.keys(ENVIRONMENTS) as EnvironmentName[]) {
    const settings = options.settings?.[name] ?? ENVIRONMENTS[name];
    // No `env`: the stack is environment-agnostic, synthesized without credentials or
    // lookups; the account and region are those of the deployment.
    const stack = new GatehouseStack(app, `Gatehouse-${name}`, {
      settings,
      description: `Gatehouse (${name}): sign-in and MFA service for medical practices`,
    });
    acknowledgeFindings(stack);
    applyCheckovSkips(stack);
    stacks[name] = stack;
  }
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  Validations.of(app).addPlugins(new HIPAASecurityChecks(app, { verbose: true }));
  return { app, stacks };
}
