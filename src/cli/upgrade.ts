import type { Command } from 'commander';
import { loadBundle } from '../detector/bundle.js';
import { exportBundleOnnx } from '../detector/onnx/export.js';

export function registerUpgrade(program: Command): void {
  program
    .command('upgrade')
    .description('add what an older bundle lacks: the ONNX copy of each model, for ONNX Runtime')
    .requiredOption('--model <dir>', 'model bundle directory')
    .action(async (options: { model: string }) => {
      await loadBundle(options.model);
      const written = await exportBundleOnnx(options.model);
      process.stderr.write(`upgrade: wrote ${written.length} ONNX model(s) into ${options.model}\n`);
    });
}
