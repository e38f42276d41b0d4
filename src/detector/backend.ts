import * as tf from '@tensorflow/tfjs';

/** One TensorFlow.js backend and the package that registers it; `null` for the backend built into tfjs. */
export interface BackendCandidate {
  readonly backend: string;
  readonly module: string | null;
}

/**
 * Fastest first: native TensorFlow with CUDA, native TensorFlow on the CPU, WebAssembly, plain JavaScript.
 * The two native packages are optional dependencies whose install downloads libtensorflow, so they are
 * often absent; WebAssembly ships with magwatch and `cpu` with tfjs itself.
 */
export const BACKEND_CANDIDATES: readonly BackendCandidate[] = [
  { backend: 'tensorflow', module: '@tensorflow/tfjs-node-gpu' },
  { backend: 'tensorflow', module: '@tensorflow/tfjs-node' },
  { backend: 'wasm', module: '@tensorflow/tfjs-backend-wasm' },
  { backend: 'cpu', module: null },
];

/** How backends are brought in; replaceable so that the fallback order can be checked without native packages. */
export interface BackendLoader {
  /** Imports a package for its side effect of registering a backend; rejects when it is not installed. */
  importModule(specifier: string): Promise<unknown>;
  /** Makes `backend` the active one; resolves false when it is not registered or fails to initialise. */
  activate(backend: string): Promise<boolean>;
}

export const defaultBackendLoader: BackendLoader = {
  importModule: (specifier) => import(specifier),
  activate: (backend) => tf.setBackend(backend),
};

export interface BackendAttempt {
  readonly backend: string;
  readonly module: string | null;
  /** Why this candidate was passed over; absent for the one chosen. */
  readonly error?: string;
}

export interface BackendSelection {
  /** The backend now active in TensorFlow.js. */
  readonly backend: string;
  /** Every candidate tried, in order, the chosen one last. */
  readonly tried: BackendAttempt[];
}

/**
 * Activates the first TensorFlow.js backend that works here and returns it with the failed attempts.
 * `preferred` (`tensorflow`, `wasm`, `cpu`, or any registered name) is tried first and the usual order
 * follows it as the fallback, so asking for a backend that is not installed still leaves a working one
 * active; callers that need exactly `preferred` compare it with the result.
 */
export async function selectTfBackend(
  preferred?: string,
  loader: BackendLoader = defaultBackendLoader,
): Promise<BackendSelection> {
  const first = preferred ? BACKEND_CANDIDATES.filter((c) => c.backend === preferred) : [];
  const candidates = [
    ...(first.length > 0 || !preferred ? first : [{ backend: preferred, module: null }]),
    ...BACKEND_CANDIDATES.filter((c) => !first.includes(c)),
  ];
  const tried: BackendAttempt[] = [];
  for (const candidate of candidates) {
    try {
      if (candidate.module) await loader.importModule(candidate.module);
      if (await loader.activate(candidate.backend)) {
        tried.push({ backend: candidate.backend, module: candidate.module });
        return { backend: candidate.backend, tried };
      }
      tried.push({ ...candidate, error: `backend '${candidate.backend}' did not initialise` });
    } catch (error) {
      tried.push({ ...candidate, error: firstLine(error) });
    }
  }
  // Unreachable in practice: `cpu` is built into tfjs. Keep the record of why everything failed anyway.
  throw new Error(
    `no TensorFlow.js backend works: ${tried.map((t) => `${t.backend}: ${t.error}`).join('; ')}`,
  );
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n', 1)[0]!;
}
