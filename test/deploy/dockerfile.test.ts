import { existsSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { startHttpServer } from '../../src/ops/http.js';
import { runHealthcheck } from './services.js';
import {
  COMPOSE_CONFIG_PATH,
  healthcheckCommand,
  type Instruction,
  ignoredBy,
  REPO,
  readDockerfile,
  readDockerignore,
  readText,
} from './stack.js';

const instructions = readDockerfile();
const ignore = readDockerignore();
const finalStage = Math.max(...instructions.map((i) => i.stage));
const runtime = instructions.filter((i) => i.stage === finalStage);

interface Copy {
  readonly from: string | undefined;
  readonly sources: string[];
  readonly destination: string;
  /** The destination ends in `/` or takes several sources: files land in it under their own names. */
  readonly intoDirectory: boolean;
  readonly stage: number;
}

/** COPY instructions, with relative destinations resolved against the stage's WORKDIR. */
function copies(): Copy[] {
  const found: Copy[] = [];
  const workdir = new Map<number, string>();
  for (const instruction of instructions) {
    if (instruction.keyword === 'WORKDIR') workdir.set(instruction.stage, instruction.args);
    if (instruction.keyword !== 'COPY') continue;
    const words = instruction.args.split(/\s+/);
    const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
    const paths = words.filter((w) => !w.startsWith('--'));
    const destination = paths.pop()!;
    found.push({
      from,
      sources: paths,
      destination: posix.resolve(workdir.get(instruction.stage) ?? '/', destination),
      intoDirectory: destination.endsWith('/') || paths.length > 1,
      stage: instruction.stage,
    });
  }
  return found;
}

/** The exec-form (JSON array) arguments of an instruction. */
function execForm(instruction: Instruction | undefined): string[] {
  expect(instruction, 'instruction present').toBeDefined();
  const args = instruction!.args.replace(/^--\S+\s+/g, '');
  return JSON.parse(args.slice(args.indexOf('['))) as string[];
}

function last(keyword: string): Instruction | undefined {
  return runtime.filter((i) => i.keyword === keyword).at(-1);
}

/**
 * Where a path of the image comes from in the repository, through the runtime stage's COPY lines: a
 * directory's contents land in the destination, a file lands in it by name when it is a directory.
 */
function repositoryPathOf(imagePath: string): string | undefined {
  for (const copy of copies().filter((c) => c.stage === finalStage && c.from === undefined)) {
    for (const source of copy.sources) {
      const directory = statSync(join(REPO, source)).isDirectory();
      const target =
        !directory && copy.intoDirectory
          ? posix.join(copy.destination, posix.basename(source))
          : copy.destination;
      if (imagePath === target) return source;
      if (directory && imagePath.startsWith(`${target}/`))
        return join(source, imagePath.slice(target.length + 1));
    }
  }
  return undefined;
}

describe('Dockerfile', () => {
  it('builds on node:20-bookworm-slim in two stages', () => {
    const bases = instructions.filter((i) => i.keyword === 'FROM').map((i) => i.args);
    expect(bases).toEqual(['node:20-bookworm-slim AS build', 'node:20-bookworm-slim']);
  });

  it('copies only files that exist in the repository and that .dockerignore lets through', () => {
    for (const copy of copies().filter((c) => c.from === undefined)) {
      for (const source of copy.sources) {
        expect(existsSync(join(REPO, source)), `COPY ${source}`).toBe(true);
        for (const pattern of ignore)
          expect(ignoredBy(pattern, source), `${source} vs ${pattern}`).toBe(false);
      }
    }
  });

  it('installs from the lock file, builds, then drops the dev dependencies', () => {
    const build = instructions.filter((i) => i.stage === 0);
    const runs = build.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    const lockCopied = build.findIndex((i) => i.keyword === 'COPY' && i.args.includes('package-lock.json'));
    const installed = build.findIndex((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args));
    expect(lockCopied).toBeGreaterThanOrEqual(0);
    expect(installed).toBeGreaterThan(lockCopied);
    expect(runs.some((r) => r.includes('npm run build') && r.includes('npm prune --omit=dev'))).toBe(true);
  });

  it('copies into the runtime stage everything that package.json publishes', () => {
    const published = (JSON.parse(readText(join(REPO, 'package.json'))) as { files: string[] }).files;
    const present = copies()
      .filter((c) => c.stage === finalStage)
      .flatMap((c) => c.sources.map((s) => s.replace(/^\/app\//, '').replace(/\/$/, '')));
    for (const entry of [...published, 'package.json', 'node_modules'])
      expect(present, entry).toContain(entry);
  });

  it('copies into the build stage every file that the build script reads', () => {
    const pkg = JSON.parse(readText(join(REPO, 'package.json'))) as { scripts: Record<string, string> };
    const needed = new Set<string>(['package.json']);
    for (const step of pkg.scripts['build']!.split('&&')) {
      const [program, ...args] = step.trim().split(/\s+/);
      if (program === 'node') needed.add(args[0]!);
      if (program === 'tsc') {
        // `include` of the nearest config that sets it applies; `extends` chains the rest.
        let project: string | undefined = args[args.indexOf('-p') + 1];
        let include: string[] | undefined;
        while (project !== undefined) {
          needed.add(project);
          const tsconfig = JSON.parse(readText(join(REPO, project))) as {
            extends?: string;
            include?: string[];
          };
          include ??= tsconfig.include;
          project = tsconfig.extends === undefined ? undefined : posix.normalize(tsconfig.extends);
        }
        for (const path of include ?? []) needed.add(path);
      }
    }
    const built = copies().filter((c) => c.stage === 0 && c.from === undefined);
    for (const path of needed) {
      const covered = built.some((c) => c.sources.some((s) => path === s || path.startsWith(`${s}/`)));
      expect(covered, `the build stage copies ${path}`).toBe(true);
    }
  });

  it('runs as an unprivileged user', () => {
    const user = last('USER')?.args;
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user!.split(':')[0]);
  });

  it('starts bin/magwatch.js with the compose configuration by default', () => {
    const entrypoint = execForm(last('ENTRYPOINT'));
    expect(entrypoint).toEqual(['node', '/app/bin/magwatch.js']);
    expect(repositoryPathOf(entrypoint[1]!)).toBe(join('bin', 'magwatch.js'));

    const command = execForm(last('CMD'));
    expect(command.slice(0, 2)).toEqual(['run', '--config']);
    const config = repositoryPathOf(command[2]!);
    expect(config).toBeDefined();
    expect(join(REPO, config!)).toBe(COMPOSE_CONFIG_PATH);
  });

  it('exposes and health-checks the HTTP port of the compose configuration', () => {
    const { port } = loadConfig(COMPOSE_CONFIG_PATH, {}).http;
    expect(last('EXPOSE')?.args).toBe(String(port));
    const probe = healthcheckCommand(instructions).join(' ');
    expect(probe.startsWith('node -e')).toBe(true);
    expect(probe).toContain('/healthz');
    expect(probe).toContain(`process.env.MAGWATCH_HTTP_PORT || ${port}`);
  });
});

describe('the HEALTHCHECK probe', () => {
  it("passes against magwatch's HTTP server, with a token set, on MAGWATCH_HTTP_PORT", async () => {
    const server = await startHttpServer({
      port: 0,
      token: 'secret',
      ready: () => false,
      registry: new Registry(),
    });
    try {
      expect(await runHealthcheck(server.port)).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('fails when nothing answers', async () => {
    const server = await startHttpServer({ port: 0, ready: () => true, registry: new Registry() });
    const { port } = server;
    await server.close();
    expect(await runHealthcheck(port)).toBe(1);
  });
});

describe('.dockerignore', () => {
  it('keeps dependencies, builds, models, git history and test artefacts out of the build context', () => {
    for (const path of [
      'node_modules',
      'dist',
      'models/site/manifest.json',
      '.git',
      'coverage',
      'results.csv',
    ]) {
      expect(
        ignore.some((pattern) => ignoredBy(pattern, path)),
        path,
      ).toBe(true);
    }
  });
});
