/**
 * A small mutational input generator for the JS fuzz loop: seeded, so a run
 * can be repeated, and bounded by the caller.
 */
export class Mutator {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0 || 1;
  }

  /** xorshift32. */
  next(): number {
    let x = this.#state;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    return this.#state;
  }

  below(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }

  /** A mutated copy of input: 1 to 4 edits, splicing dictionary tokens in now and then. */
  mutate(input: Uint8Array, dictionary: readonly Uint8Array[], maxLength: number): Uint8Array {
    let b = Array.from(input);
    const edits = 1 + this.below(4);
    for (let e = 0; e < edits; e++) {
      const at = this.below(b.length + 1);
      switch (this.below(9)) {
        case 0:
          if (b.length > 0) b[this.below(b.length)] ^= 1 << this.below(8);
          break;
        case 1:
          if (b.length > 0) b[this.below(b.length)] = this.below(256);
          break;
        case 2: {
          const token = dictionary[this.below(dictionary.length)];
          b.splice(at, this.below(2) === 0 ? 0 : Math.min(token.length, b.length - at), ...token);
          break;
        }
        case 3:
          b.splice(at, 1 + this.below(8));
          break;
        case 4: {
          const n = 1 + this.below(16);
          const bytes = Array.from({ length: n }, () => this.below(256));
          b.splice(at, 0, ...bytes);
          break;
        }
        case 5:
          b = b.slice(0, this.below(b.length + 1));
          break;
        case 6: {
          // Interesting lengths in little-endian u16 fields.
          const v = [0, 1, 2, 4, 5, 6, 20, 21, 22, 255, 256, 0x7fff, 0x8000, 0xffff][this.below(14)];
          if (b.length >= 2) {
            const p = this.below(b.length - 1);
            b[p] = v & 0xff;
            b[p + 1] = v >> 8;
          }
          break;
        }
        case 7:
          // Another decoder for the same bytes.
          if (b.length > 0) b[0] = this.below(256);
          break;
        default: {
          if (b.length > 1) {
            const from = this.below(b.length);
            const len = 1 + this.below(Math.min(32, b.length - from));
            b.splice(at, 0, ...b.slice(from, from + len));
          }
          break;
        }
      }
    }
    if (b.length > maxLength) b = b.slice(0, maxLength);
    return Uint8Array.from(b);
  }
}
