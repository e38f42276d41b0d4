import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { DetectResult } from './detect.js';

/** Column names of the results CSV, in the order of DESIGN section 1. */
export function resultColumns(result: DetectResult): string[] {
  return [
    'timestamp',
    ...result.channels,
    ...result.channels.map((c) => `${c}_flag`),
    ...result.channels.map((c) => `${c}_rmse`),
    ...result.groups.map((g) => `${g.group}_votes`),
    'global_votes',
    'final_cross_obs_flag',
  ];
}

const rmseText = (value: number) => (Number.isNaN(value) ? '' : String(Number(value.toPrecision(9))));

/**
 * Writes the results CSV: the wide table, per-channel flags and RMSE, group votes, global votes and the final
 * flag. The file appears only when complete (written beside it, then renamed).
 */
export async function writeResultsCsv(path: string, result: DetectResult): Promise<void> {
  const partial = `${path}.partial-${process.pid}`;
  const out = createWriteStream(partial);
  try {
    const write = async (line: string) => {
      if (!out.write(line)) await once(out, 'drain');
    };
    await write(`${resultColumns(result).join(',')}\n`);
    const n = result.timestamps.length;
    for (let i = 0; i < n; i++) {
      const cells: string[] = [new Date(result.timestamps[i]!).toISOString()];
      for (const column of result.values) cells.push(String(column[i]));
      for (const flags of result.flags) cells.push(flags[i] ? '1' : '0');
      for (const rmse of result.sampleRmse) cells.push(rmseText(rmse[i]!));
      for (const group of result.groups) cells.push(String(group.votes[i]));
      cells.push(String(result.globalVotes[i]), result.final[i] ? '1' : '0');
      await write(`${cells.join(',')}\n`);
    }
    out.end();
    await once(out, 'finish');
    await rename(partial, path);
  } catch (error) {
    out.destroy();
    await rm(partial, { force: true });
    throw error;
  }
}
