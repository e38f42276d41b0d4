#!/usr/bin/env python3
"""Golden outputs for the LSTM autoencoder, from an independent NumPy forward pass in float64.

For every shape in SHAPES this writes two files under test/fixtures/golden/:
  lstm_ae_w<W>_l<latent>.inputs.json    the weight seed and scale, and the windows
  lstm_ae_w<W>_l<latent>.expected.json  a checksum of the weights and the reconstruction of every window, float64

The weights are integers k in [-512, 512] from xorshift32 (seeded from the inputs file) divided by the weight
scale, drawn in Keras layout and layer order: for each LSTM kernel [in, 4u], recurrent kernel [u, 4u],
bias [4u] (gates i, f, c, o), then the Dense kernel [64] and bias [1]. test/detector/golden.test.ts draws
them the same way and checks the checksum first, so a generator mismatch cannot pass as a model mismatch.
Everything is deterministic: a rerun rewrites identical files.
"""

import json
import math
import pathlib

import numpy as np

OUTER_UNITS = 64
SHAPES = [(16, 8), (64, 32)]
# Weights are k / WEIGHT_SCALE with integer k in [-512, 512]: uniform-ish in [-0.5, 0.5] and exact in float32.
WEIGHT_SCALE = 1024
# Window samples are multiples of 1/SAMPLE_SCALE, also exact in float32.
SAMPLE_SCALE = 4096
FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "test" / "fixtures" / "golden"


class Xorshift32:
    """Marsaglia's xorshift32; a 32-bit state, so any language can reproduce the stream."""

    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFF or 1

    def next(self):
        x = self.state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.state = x
        return x

    def integers(self, count, low, high):
        """`count` integers in [low, high]."""
        return [low + self.next() % (high - low + 1) for _ in range(count)]


def make_weights(latent, seed):
    """Integer weights in Keras layout; see the module doc for the order, which the test repeats."""
    rng = Xorshift32(seed)
    layers = []
    for input_size, units in [(1, OUTER_UNITS), (OUTER_UNITS, latent), (latent, latent), (latent, OUTER_UNITS)]:
        layers.append(
            {
                "units": units,
                "inputSize": input_size,
                "kernel": rng.integers(input_size * 4 * units, -512, 512),
                "recurrentKernel": rng.integers(units * 4 * units, -512, 512),
                "bias": rng.integers(4 * units, -512, 512),
            }
        )
    dense = {"kernel": rng.integers(OUTER_UNITS, -512, 512), "bias": rng.integers(1, -512, 512)}
    return layers, dense


def make_inputs(window, latent):
    seed = window * 1000 + latent
    # A separate stream for the random window, so the weights depend on the seed alone.
    rng = Xorshift32(seed + 1)

    def quantise(values):
        return [round(v * SAMPLE_SCALE) / SAMPLE_SCALE for v in values]

    steps = range(window)
    windows = {
        "sine": quantise(1.5 * math.sin(2 * math.pi * 2 * t / window) for t in steps),
        "step": quantise(-1.0 if t < window // 2 else 2.0 for t in steps),
        "random": [k / SAMPLE_SCALE for k in rng.integers(window, -3 * SAMPLE_SCALE, 3 * SAMPLE_SCALE)],
        "zeros": [0.0] * window,
    }
    return {"window": window, "latent": latent, "weightSeed": seed, "weightScale": WEIGHT_SCALE, "windows": windows}


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm(x, layer, scale, return_sequences):
    """Keras LSTM: gates i, f, c, o; tanh activation, sigmoid recurrent activation; x is [batch, steps, in]."""
    units, input_size = layer["units"], layer["inputSize"]
    kernel = np.array(layer["kernel"], dtype=np.float64).reshape(input_size, 4 * units) / scale
    recurrent = np.array(layer["recurrentKernel"], dtype=np.float64).reshape(units, 4 * units) / scale
    bias = np.array(layer["bias"], dtype=np.float64) / scale
    batch, steps, _ = x.shape
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    outputs = []
    for t in range(steps):
        z = x[:, t, :] @ kernel + h @ recurrent + bias
        i = sigmoid(z[:, :units])
        f = sigmoid(z[:, units : 2 * units])
        g = np.tanh(z[:, 2 * units : 3 * units])
        o = sigmoid(z[:, 3 * units :])
        c = f * c + i * g
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1) if return_sequences else h


def forward(fixture, layers, dense, x):
    """The reference autoencoder on x [batch, W]; returns reconstructions [batch, W]."""
    scale = fixture["weightScale"]
    window = fixture["window"]
    enc1, enc2, dec1, dec2 = layers
    y = lstm(x[:, :, None], enc1, scale, True)
    latent = lstm(y, enc2, scale, False)
    repeated = np.repeat(latent[:, None, :], window, axis=1)
    y = lstm(repeated, dec1, scale, True)
    y = lstm(y, dec2, scale, True)
    kernel = np.array(dense["kernel"], dtype=np.float64) / scale
    bias = dense["bias"][0] / scale
    return y @ kernel + bias


def main():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for window, latent in SHAPES:
        stem = f"lstm_ae_w{window}_l{latent}"
        inputs_path = FIXTURES / f"{stem}.inputs.json"
        inputs_path.write_text(json.dumps(make_inputs(window, latent), indent=1) + "\n")
        fixture = json.loads(inputs_path.read_text())
        names = list(fixture["windows"])
        x = np.array([fixture["windows"][name] for name in names], dtype=np.float64)
        layers, dense = make_weights(fixture["latent"], fixture["weightSeed"])
        drawn = [v for layer in layers for key in ("kernel", "recurrentKernel", "bias") for v in layer[key]]
        drawn += dense["kernel"] + dense["bias"]
        reconstruction = forward(fixture, layers, dense, x)
        expected = {
            "window": window,
            "latent": latent,
            "weightCheck": {"count": len(drawn), "sum": sum(drawn), "first": drawn[:8], "last": drawn[-8:]},
            "reconstruction": {name: [float(v) for v in row] for name, row in zip(names, reconstruction)},
        }
        (FIXTURES / f"{stem}.expected.json").write_text(json.dumps(expected, indent=1) + "\n")
        print(f"{stem}: {len(names)} windows, output range [{reconstruction.min():.3f}, {reconstruction.max():.3f}]")


if __name__ == "__main__":
    main()
