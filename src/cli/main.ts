import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { Command, CommanderError } from 'commander';
import { isMagwatchError } from '../errors.js';
import { registerBench } from './bench.js';
import { registerDemo } from './demo.js';
import { registerDetect } from './detect.js';
import { registerEvaluate } from './evaluate.js';
import { registerNab } from './nab.js';
import { registerReplay } from './replay.js';
import { registerRun } from './run.js';
import { registerSimulate } from './simulate.js';
import { registerTrain } from './train.js';
import { registerUpgrade } from './upgrade.js';

// Production mode: no banner asking for tfjs-node and no debug warnings on stderr, which is for our messages.
tf.env().set('PROD', true);

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const program = new Command('magwatch')
  .description('real-time anomaly detection for magnetometer networks')
  .version(pkg.version)
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

registerTrain(program);
registerDetect(program);
registerRun(program);
registerDemo(program);
registerReplay(program);
registerSimulate(program);
registerEvaluate(program);
registerNab(program);
registerUpgrade(program);
registerBench(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander has already printed its message (or the help text, which exits 0).
    process.exitCode = error.exitCode;
  } else if (isMagwatchError(error)) {
    process.stderr.write(`magwatch: ${error.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`magwatch: unexpected failure: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  }
}
// Every command's action resolves when its work is done (run and demo after their graceful stop); native
// inference libraries may still hold handles that would keep the process alive.
process.exit(process.exitCode ?? 0);
