import { describe, expect, it } from 'vitest';
import { trainingWorkers } from '../../src/detector/train.js';

describe('trainingWorkers', () => {
  it('takes one worker per core when the models divide evenly', () => {
    expect(trainingWorkers(8, 2)).toBe(2);
    expect(trainingWorkers(12, 4)).toBe(4);
  });

  it('adds workers when one per core would leave a core idle in the last round', () => {
    // 5 + 4 on two cores against three rounds of three sharing both.
    expect(trainingWorkers(9, 2)).toBe(3);
    expect(trainingWorkers(3, 2)).toBe(3);
  });

  it('never takes more workers than models, nor fewer than one', () => {
    expect(trainingWorkers(1, 8)).toBe(1);
    expect(trainingWorkers(2, 8)).toBe(2);
    expect(trainingWorkers(0, 2)).toBe(1);
  });

  it('stops at two workers per core', () => {
    expect(trainingWorkers(1000, 2)).toBeLessThanOrEqual(4);
  });
});
