// A progress bar on stderr for long captures, only when stderr is a terminal
// (a pipe or a log file gets nothing), redrawn at most ten times a second.
interface Progress {
  update(done: number, total: number): void;
  end(): void;
}

const NONE: Progress = { update: () => undefined, end: () => undefined };

export function progressBar(stream: NodeJS.WriteStream = process.stderr, label = 'replay'): Progress {
  if (!stream.isTTY) return NONE;
  const started = Date.now();
  let last = 0;
  let drawn = false;
  return {
    update(done, total) {
      const t = Date.now();
      if (t - last < 100 || total <= 0) return;
      last = t;
      const share = Math.min(1, done / total);
      const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - 50));
      const full = Math.round(share * width);
      const mib = (n: number): string => (n / 2 ** 20).toFixed(1);
      const rate = done / Math.max(0.001, (t - started) / 1000);
      stream.write(`\r${label} [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(share * 100).toFixed(0).padStart(3)}% ${mib(done)}/${mib(total)} MiB ${mib(rate)} MiB/s`);
      drawn = true;
    },
    end() {
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}
