// Synthesizes the app once per test file (cdk-nag runs as part of it) and hands out the
// templates and the helpers the assertions share.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp, BuildOptions } from '../lib/app.js';
import { EnvironmentName } from '../lib/settings.js';

export interface Synthesized {
  readonly templates: Record<EnvironmentName, Template>;
  readonly json: Record<EnvironmentName, any>;
  readonly outdir: string;
}

export function synthesize(options: Omit<BuildOptions, 'outdir'> = {}): Synthesized {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-cdk-'));
  const { app } = buildApp({ ...options, outdir });
  const assembly = app.synth();
  const json = {} as Record<EnvironmentName, any>;
  const templates = {} as Record<EnvironmentName, Template>;
  for (const name of ['staging', 'production'] as EnvironmentName[]) {
    json[name] = assembly.getStackByName(`Gatehouse-${name}`).template;
    templates[name] = Template.fromJSON(json[name]);
  }
  return { templates, json, outdir };
}

/** The resources of one type, as [logicalId, resource] pairs. */
export function resourcesOf(template: any, type: string): [string, any][] {
  return Object.entries(template.Resources as Record<string, any>).filter(([, r]) => r.Type === type);
}

/** The one resource of a type whose logical id starts with `prefix`. */
export function resource(template: any, type: string, prefix: string): [string, any] {
  const found = resourcesOf(template, type).filter(([id]) => id.startsWith(prefix));
  if (found.length !== 1) {
    throw new Error(`expected one ${type} named ${prefix}*, found ${found.map(([id]) => id).join(', ') || 'none'}`);
  }
  return found[0];
}

/** The `gatehouse` container of the API or worker task definition. */
export function container(template: any, role: 'api' | 'worker'): any {
  const [, task] = resource(template, 'AWS::ECS::TaskDefinition', role === 'api' ? 'ComputeApiTask' : 'ComputeWorkerTask');
  return task.Properties.ContainerDefinitions.find((c: any) => c.Name === 'gatehouse');
}

/** The task's environment variables (name -> value) and secrets (name -> ValueFrom). */
export function environmentOf(c: any): { env: Record<string, any>; secrets: Record<string, any> } {
  const env = Object.fromEntries((c.Environment ?? []).map((e: any) => [e.Name, e.Value]));
  const secrets = Object.fromEntries((c.Secrets ?? []).map((s: any) => [s.Name, s.ValueFrom]));
  return { env, secrets };
}

/** The policy statements attached to a role (by the role's logical id). */
export function statementsOf(template: any, roleId: string): any[] {
  return resourcesOf(template, 'AWS::IAM::Policy')
    .filter(([, p]) => (p.Properties.Roles ?? []).some((r: any) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
}

export const actionsOf = (statements: any[]): string[] =>
  statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
