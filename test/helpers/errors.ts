import { expect } from 'vitest';
import { MagwatchError } from '../../src/errors.js';

/** The MagwatchError that `action` throws; fails the test when it throws nothing or something else. */
export function thrown(action: () => unknown): MagwatchError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(MagwatchError);
    return error as MagwatchError;
  }
  throw new Error('expected a MagwatchError');
}
