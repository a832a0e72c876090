// The replay's entry point: the captures opened in the order given, their
// frames read one by one into a ReplayLoop (loop.ts), which decodes them and
// drives every policy runner on the capture's clock. A capture that breaks off
// (truncated, corrupt) ends its file there: what was read before is replayed
// and reported, and the error is kept for the report. A fault of the replay's
// own code on one frame skips that frame, counted, and the rest is read.
import { CaptureError, CaptureReader, type Frame } from './capture.js';
import { newTotals, ReplayLoop, type CaptureTotals, type LoopOptions } from './loop.js';
import type { PolicyRunner } from './runner.js';

interface ReplayOptions extends LoopOptions {
  /** called now and then with bytes read and the total size of all captures */
  readonly progress?: (done: number, total: number) => void;
}

/** frames between two progress reports */
const PROGRESS_EVERY = 65_536;

/** Replays `files` in the order given (as tcpdump -C/-G names them) through every runner. */
export function replay(files: string[], runners: readonly PolicyRunner[], opts: ReplayOptions): CaptureTotals {
  const readers = openAll(files);
  const loop = new ReplayLoop(runners, opts, newTotals(files));
  const reading = new Reading(loop, readers.reduce((a, r) => a + r.size, 0), opts.progress);
  try {
    for (const reader of readers) {
      reading.file(reader);
    }
  } finally {
    for (const r of readers) r.close();
  }
  return loop.finish();
}

function openAll(files: string[]): CaptureReader[] {
  const readers: CaptureReader[] = [];
  try {
    for (const f of files) readers.push(new CaptureReader(f));
  } catch (err) {
    for (const r of readers) r.close();
    throw err;
  }
  return readers;
}

/** The captures read in turn into the loop, with progress reports and what breaks off. */
class Reading {
  /** bytes of the files read before the current one */
  private doneBefore = 0;
  private sinceProgress = 0;
  /** the byte offset of the frame being replayed, for the report of a fault */
  private frameAt = 0;

  constructor(
    private readonly loop: ReplayLoop,
    private readonly totalSize: number,
    private readonly progress: ((done: number, total: number) => void) | undefined,
  ) {}

  /** Every frame of `reader`, up to its end or to where it breaks off. */
  file(reader: CaptureReader): void {
    const totals = this.loop.totals;
    for (;;) {
      try {
        this.frames(reader);
        break;
      } catch (err) {
        if (err instanceof CaptureError) {
          // the file breaks off here: what came before it stands, the next file is read
          totals.captureErrors.push({ file: err.file, offset: err.offset, message: err.message });
          break;
        }
        // a fault of our own on one frame: counted, the frame skipped, the rest read (the fuzz tests keep this at 0)
        totals.skipped.internal_error++;
        totals.internalError ??= `${(err as Error).message ?? String(err)} (frame at byte offset ${this.frameAt} of ${reader.file})`;
      }
    }
    this.doneBefore += reader.size;
    totals.bytesRead += reader.size;
    this.progress?.(this.doneBefore, this.totalSize);
  }

  private frames(reader: CaptureReader): void {
    let frame: Frame | null;
    while ((frame = reader.next()) !== null) {
      this.frameAt = frame.offset;
      if (++this.sinceProgress === PROGRESS_EVERY) {
        this.sinceProgress = 0;
        this.progress?.(this.doneBefore + reader.position, this.totalSize);
      }
      this.loop.frame(frame);
    }
  }
}
