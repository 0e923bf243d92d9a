/**
 * Connection slots with generation-tagged ids, as native/core's
 * ConnectionTable: an id is slot + generation * capacity with generation
 * >= 1, so it is never 0, always a u32, and a reused slot gets a new id (a
 * stale id never names the slot's next connection). JS thread only; the
 * table holds its entries, it does not own their sockets.
 */
export class ConnectionTable<T extends { readonly id: number }> {
  readonly capacity: number;
  /** Slot index to entry; a slot is held from acquire() until release(). */
  readonly #slots: Array<T | null> = [];
  readonly #generations: number[] = [];
  readonly #freeSlots: number[] = [];
  readonly #maxGeneration: number;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#maxGeneration = Math.floor((0xffffffff - capacity) / capacity);
  }

  /** Takes a free slot and gives it a new id; returns 0 when every slot is taken. */
  acquire(): number {
    let slot: number;
    if (this.#freeSlots.length > 0) {
      slot = this.#freeSlots.pop() as number;
    } else {
      slot = this.#slots.length;
      if (slot >= this.capacity) return 0;
      this.#slots.push(null);
      this.#generations.push(0);
    }
    let generation = this.#generations[slot] + 1;
    if (generation > this.#maxGeneration) generation = 1;
    this.#generations[slot] = generation;
    return slot + generation * this.capacity;
  }

  /** Puts entry, whose id acquire() returned, in its slot. */
  set(entry: T): void {
    this.#slots[entry.id % this.capacity] = entry;
  }

  /** The entry with exactly this id, while its slot holds it. */
  get(id: number): T | undefined {
    const entry = this.#slots[id % this.capacity];
    return entry !== null && entry !== undefined && entry.id === id ? entry : undefined;
  }

  /** Frees the slot of id for the next acquire(). */
  release(id: number): void {
    const slot = id % this.capacity;
    this.#slots[slot] = null;
    this.#freeSlots.push(slot);
  }
}
