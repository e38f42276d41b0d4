#!/usr/bin/env node
// Regenerates examples/ from the compiled simulator (run `npm run build` first). The output is
// deterministic, so a clean checkout reproduces the committed files byte for byte.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { writeExamples } = await import(pathToFileURL(join(root, 'dist', 'sim', 'examples.js')).href).catch(
  (error) => {
    process.stderr.write(
      `make-examples: cannot load dist/sim/examples.js (${error.code ?? error.message}); run npm run build\n`,
    );
    process.exit(1);
  },
);

for (const path of await writeExamples(join(root, 'examples'))) process.stdout.write(`wrote ${path}\n`);
