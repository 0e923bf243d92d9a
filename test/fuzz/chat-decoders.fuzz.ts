import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { checkInput, describe as describeInput, dictionary, keyOf, readKnownFailures, seeds } from './chat-decoders';
import { Mutator } from './mutator';

// The time-bounded fuzz loop of the chat decoders, run by `npm run fuzz`
// (scripts/test/fuzz.js) through vitest.fuzz.config.mts, never by `npm test`.
// Inputs that break a property are saved to corpus/chat_decoders/, which
// chat-decoders.test.ts replays in every test run.

const seconds = Number(process.env.IOCPNET_FUZZ_SECONDS ?? '10');
const report = process.env.IOCPNET_FUZZ_REPORT;
const corpusDir = path.join(__dirname, 'corpus', 'chat_decoders');
const maxCorpus = 2000;
const maxCrashes = 10;

it(
  `chat decoders keep their properties for ${seconds} s of mutated inputs`,
  () => {
    const corpus: Uint8Array[] = [
      ...seeds(),
      ...fs
        .readdirSync(corpusDir)
        .filter((f) => !f.endsWith('.json'))
        .map((f) => new Uint8Array(fs.readFileSync(path.join(corpusDir, f)))),
    ];
    const seed = Number(process.env.IOCPNET_FUZZ_SEED ?? Date.now() % 0xffffffff);
    const m = new Mutator(seed);
    const crashes: string[] = [];
    const seenMessages = new Set<string>();
    // Failures already on record are not new: their properties are skipped.
    const known = readKnownFailures(corpusDir);
    for (const file of Object.keys(known)) {
      try {
        checkInput(new Uint8Array(fs.readFileSync(path.join(corpusDir, file))));
      } catch (err) {
        seenMessages.add(keyOf(err));
      }
    }
    const deadline = Date.now() + seconds * 1000;
    let execs = 0;
    // Time is checked every 256 inputs; the count bound is a backstop.
    while (execs < 1e9 && crashes.length < maxCrashes && (execs % 256 !== 0 || Date.now() < deadline)) {
      const input = m.mutate(corpus[m.below(corpus.length)], dictionary, 600);
      execs++;
      try {
        checkInput(input);
        // No coverage feedback in JS: keep a few inputs so mutations can drift.
        if (m.below(64) === 0) {
          if (corpus.length < maxCorpus) corpus.push(input);
          else corpus[seeds().length + m.below(maxCorpus - seeds().length)] = input;
        }
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        // One saved input per distinct broken property.
        const key = keyOf(err);
        if (seenMessages.has(key)) continue;
        seenMessages.add(key);
        const name = `crash-${createHash('sha1').update(input).digest('hex').slice(0, 16)}`;
        fs.writeFileSync(path.join(corpusDir, name), input);
        crashes.push(`${path.join('test', 'fuzz', 'corpus', 'chat_decoders', name)}: ${message} (${describeInput(input)})`);
      }
    }
    if (report) fs.writeFileSync(report, JSON.stringify({ execs, seed, crashes, known: Object.keys(known).length }, null, 2));
    console.log(
      `chat_decoders: ${execs} executions in ${seconds} s (seed ${seed}), ${crashes.length} new crashes, ` +
        `${Object.keys(known).length} known failures (corpus/chat_decoders/known-failures.json)`,
    );
    expect(crashes).toEqual([]);
  },
  (seconds + 60) * 1000,
);
