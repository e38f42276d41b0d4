// tsc compiles only TypeScript; the dashboard's page files travel beside the compiled modules.
import { cpSync } from 'node:fs';

cpSync(
  new URL('../src/dashboard/static/', import.meta.url),
  new URL('../dist/dashboard/static/', import.meta.url),
  {
    recursive: true,
  },
);
