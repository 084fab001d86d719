// Synthesizes every environment's template without the CDK CLI, credentials or lookups:
//   node --import tsx bin/synth.ts [outdir]      (default: cdk.out)
// `cdk deploy --app 'npx tsx bin/synth.ts'` uses the same entry point (README).
import { buildApp } from '../lib/app.js';

const outdir = process.argv[2] ?? process.env.CDK_OUTDIR ?? 'cdk.out';
const { app } = buildApp({ outdir });
const assembly = app.synth();
for (const stack of assembly.stacks) {
  console.log(`${stack.stackName}: ${stack.templateFullPath}`);
}
