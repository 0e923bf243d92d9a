import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkInput, readKnownFailures, seeds } from './chat-decoders';

// Replays the chat-decoder fuzz corpus (every input that once broke a
// property stays here) and the seeds. Inputs listed in known-failures.json
// are bugs reported but not fixed yet: they are expected to fail, and this
// suite fails as soon as one passes, so that the list is kept honest.

const corpusDir = path.join(__dirname, 'corpus', 'chat_decoders');
const known = readKnownFailures(corpusDir);
const files = fs
  .readdirSync(corpusDir)
  .filter((f) => !f.endsWith('.json'))
  .sort();

describe('chat decoder fuzz corpus', () => {
  it('has every known failure on file', () => {
    for (const name of Object.keys(known)) expect(files).toContain(name);
  });

  it('seeds keep every property', () => {
    for (const s of seeds()) checkInput(s);
  });

  for (const name of files) {
    const input = new Uint8Array(fs.readFileSync(path.join(corpusDir, name)));
    if (name in known) {
      it.fails(`${name} still fails: ${known[name]}`, () => checkInput(input));
    } else {
      it(`${name} keeps every property`, () => checkInput(input));
    }
  }
});
