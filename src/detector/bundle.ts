import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { MagwatchError } from '../errors.js';

export const BUNDLE_FORMAT = 'magwatch-bundle';
export const BUNDLE_VERSION = 1;

const voteSchema = z.union([
  z.object({ minChannels: z.number().int().positive() }).strict(),
  z.object({ fraction: z.number().gt(0).lte(1) }).strict(),
]);
export type VoteRule = z.infer<typeof voteSchema>;

const channelSchema = z.object({
  model: z.string().min(1),
  sensor: z.string().min(1),
  component: z.string().min(1),
  group: z.string().min(1),
});
export type ChannelEntry = z.infer<typeof channelSchema>;

const manifestSchema = z
  .object({
    format: z.literal(BUNDLE_FORMAT),
    version: z.literal(BUNDLE_VERSION),
    window: z.number().int().min(2),
    step: z.number().int().positive(),
    latent: z.number().int().positive(),
    k: z.number().nonnegative(),
    vote: voteSchema,
    channels: z.record(z.string(), channelSchema).refine((c) => Object.keys(c).length > 0, 'no channels'),
    /** Window preprocessing beyond the reference; absent means the reference's (scaler only). */
    preprocess: z.enum(['none', 'window-mean']).optional(),
    /**
     * Median interval (ms) between the training samples: the feed's cadence. The live detector sizes its
     * time-based defaults from it; absent in bundles older than the key or made from the reference.
     */
    cadenceMs: z.number().positive().optional(),
    createdAt: z.string().optional(),
    magwatchVersion: z.string().optional(),
  })
  .passthrough();
export type Manifest = z.infer<typeof manifestSchema>;

const scalersSchema = z.record(z.string(), z.object({ mean: z.number(), scale: z.number().positive() }));
export type Scalers = z.infer<typeof scalersSchema>;
const thresholdsSchema = z.record(z.string(), z.number().nonnegative());
export type Thresholds = z.infer<typeof thresholdsSchema>;

/** Per channel training record; free-form beyond these keys. */
export interface ChannelTraining {
  samples: number;
  windows: number;
  loss: number[];
  valLoss: number[];
  rmseQuantiles: Record<string, number>;
}

/** A bundle in memory, minus the models themselves, which engines load through `modelPaths`. */
export interface Bundle {
  readonly dir: string;
  readonly manifest: Manifest;
  readonly scalers: Scalers;
  readonly thresholds: Thresholds;
  /** Distinct model names, in first-use order of the manifest's channels. */
  readonly models: string[];
}

export function modelDir(bundleDir: string, model: string): string {
  return join(bundleDir, 'models', model);
}

export function onnxPath(bundleDir: string, model: string): string {
  return join(bundleDir, 'models', `${model}.onnx`);
}

async function readJson<T>(file: string, schema: z.ZodType<T>, what: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new MagwatchError(
      'MW_BUNDLE_MISSING_FILE',
      `${file}: missing; is this a model bundle made by 'magwatch train'?`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new MagwatchError(
      'MW_BUNDLE_BAD_JSON',
      `${file}: not valid JSON (${(error as Error).message}); retrain or restore the bundle`,
    );
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.join('.') || '(root)';
    throw new MagwatchError(
      'MW_BUNDLE_INVALID',
      `${file}: ${what} field '${path}' ${issue.message}; retrain or fix the bundle`,
    );
  }
  return parsed.data;
}

/** Loads and cross-checks a bundle's JSON files; names the broken file on any error. */
export async function loadBundle(dir: string): Promise<Bundle> {
  const root = resolve(dir);
  const manifest = await readJson(join(root, 'manifest.json'), manifestSchema, 'manifest');
  const scalers = await readJson(join(root, 'scalers.json'), scalersSchema, 'scaler');
  const thresholds = await readJson(join(root, 'thresholds.json'), thresholdsSchema, 'threshold');
  const models: string[] = [];
  for (const [channel, entry] of Object.entries(manifest.channels)) {
    if (!scalers[channel]) {
      throw new MagwatchError(
        'MW_BUNDLE_MISMATCH',
        `${join(root, 'scalers.json')}: no scaler for channel '${channel}' of the manifest; retrain the bundle`,
      );
    }
    if (thresholds[channel] === undefined) {
      throw new MagwatchError(
        'MW_BUNDLE_MISMATCH',
        `${join(root, 'thresholds.json')}: no threshold for channel '${channel}' of the manifest; retrain the bundle`,
      );
    }
    if (!models.includes(entry.model)) models.push(entry.model);
  }
  return { dir: root, manifest, scalers, thresholds, models };
}

/** Loads one model of a bundle in TensorFlow.js layers format. */
export async function loadLayersModel(bundleDir: string, model: string): Promise<tf.LayersModel> {
  const dir = modelDir(bundleDir, model);
  try {
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    const weightData = await readFile(join(dir, 'weights.bin'));
    const weightSpecs = json.weightsManifest.flatMap((group: { weights: unknown[] }) => group.weights);
    return await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs,
        weightData: weightData.buffer.slice(
          weightData.byteOffset,
          weightData.byteOffset + weightData.byteLength,
        ),
      }),
    );
  } catch (error) {
    throw new MagwatchError(
      'MW_BUNDLE_BAD_MODEL',
      `${join(dir, 'model.json')}: cannot load model '${model}' (${(error as Error).message}); retrain the bundle`,
      { cause: error },
    );
  }
}

/** Saves a model in TensorFlow.js layers format: model.json plus one weights.bin. */
export async function saveLayersModel(
  bundleDir: string,
  model: string,
  layers: tf.LayersModel,
): Promise<void> {
  const dir = modelDir(bundleDir, model);
  await mkdir(dir, { recursive: true });
  await layers.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData as ArrayBuffer;
      const json = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version['tfjs-layers']}`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      await writeFile(join(dir, 'model.json'), JSON.stringify(json));
      await writeFile(join(dir, 'weights.bin'), Buffer.from(weightData));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}

export interface BundleFiles {
  manifest: Manifest;
  scalers: Scalers;
  thresholds: Thresholds;
  training: Record<string, unknown>;
}

/**
 * Writes the JSON files of a bundle into `staging`, then moves the whole directory into place, so a failed
 * training run never leaves a half-written bundle at `dir`.
 */
export async function writeBundleJson(staging: string, files: BundleFiles): Promise<void> {
  await mkdir(staging, { recursive: true });
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  await writeFile(join(staging, 'manifest.json'), json(files.manifest));
  await writeFile(join(staging, 'scalers.json'), json(files.scalers));
  await writeFile(join(staging, 'thresholds.json'), json(files.thresholds));
  await writeFile(join(staging, 'training.json'), json(files.training));
}

export async function commitStaging(staging: string, dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(resolve(dir, '..'), { recursive: true });
  await rename(staging, dir);
}
