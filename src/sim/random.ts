/**
 * A small seeded PRNG, so that a simulation is the same bytes on every machine and Node version.
 * Math.random cannot be seeded, and a dependency for forty lines is not worth its supply chain.
 */

/** A stream of uniform and Gaussian numbers from one 32-bit seed. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [low, high). */
  uniform(low: number, high: number): number;
  /** Standard normal (mean 0, std 1). */
  normal(): number;
  /** -1 or +1 with equal odds. */
  sign(): number;
}

/** splitmix32's finaliser: spreads nearby seeds (1, 2, 3, …) into unrelated states. */
function mix32(value: number): number {
  let z = (value + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a of a tag, so that each part of a simulation draws from its own stream. */
function hashTag(tag: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < tag.length; i++) {
    hash = Math.imul(hash ^ tag.charCodeAt(i), 0x01000193);
  }
  return hash >>> 0;
}

/**
 * A mulberry32 generator for `seed` and `tag`. Different tags give independent streams, so that adding an
 * anomaly does not change the noise drawn for the background.
 */
export function createRandom(seed: number, tag = ''): Random {
  let state = mix32((Math.trunc(seed) >>> 0) ^ mix32(hashTag(tag)));
  // A Box-Muller draw yields two normals; keep the second for the next call.
  let spare: number | undefined;

  const next = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  const normal = (): number => {
    if (spare !== undefined) {
      const value = spare;
      spare = undefined;
      return value;
    }
    // 1 - next() is in (0, 1], so the logarithm stays finite.
    const radius = Math.sqrt(-2 * Math.log(1 - next()));
    const angle = 2 * Math.PI * next();
    spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  };

  return {
    next,
    uniform: (low, high) => low + (high - low) * next(),
    normal,
    sign: () => (next() < 0.5 ? -1 : 1),
  };
}
