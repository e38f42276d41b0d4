import { MultiBar, Presets, type SingleBar } from 'cli-progress';

/** Per-model epoch progress: bars on a terminal, one plain line per epoch otherwise (logs, CI). */
export interface TrainProgress {
  start(model: string, epochs: number): void;
  epoch(model: string, epoch: number, loss: number, valLoss: number | undefined): void;
  stop(): void;
}

const fixed = (n: number | undefined) => (n === undefined ? '-' : n.toFixed(4));

export function trainProgress(stream: NodeJS.WriteStream = process.stderr): TrainProgress {
  const epochs = new Map<string, number>();
  if (!stream.isTTY) {
    return {
      start: (model, total) => epochs.set(model, total),
      epoch: (model, epoch, loss, valLoss) =>
        stream.write(
          `train: ${model} epoch ${epoch}/${epochs.get(model)} loss ${fixed(loss)} val_loss ${fixed(valLoss)}\n`,
        ),
      stop: () => {},
    };
  }
  const multi = new MultiBar(
    {
      stream,
      format: ' {model} |{bar}| epoch {value}/{total} loss {loss} val_loss {val}',
      hideCursor: true,
      clearOnComplete: false,
    },
    Presets.shades_classic,
  );
  const bars = new Map<string, SingleBar>();
  return {
    start: (model, total) =>
      bars.set(model, multi.create(total, 0, { model: model.padEnd(24), loss: '-', val: '-' })),
    epoch: (model, epoch, loss, valLoss) =>
      bars.get(model)?.update(epoch, { loss: fixed(loss), val: fixed(valLoss) }),
    stop: () => multi.stop(),
  };
}
