/**
 * The ids that are open from the JS thread's view (see Backend): added when
 * their Connect record is dispatched, deleted when their Disconnect record
 * is, or when the application closes them. The engine numbers connections
 * slot + generation * capacity (native/core/connection_table.h), so id %
 * capacity indexes an array and the check on every send is one array read;
 * an id whose slot is taken by another open id (a numbering this code does
 * not expect) goes to a Set instead, so the answer is right for any ids.
 * JS thread only.
 */
export class OpenIds {
  readonly #capacity: number;
  /** The open id of each slot, 0 for none (the engine never uses id 0). */
  readonly #slots: Uint32Array;
  readonly #others = new Set<number>();

  constructor(capacity: number) {
    this.#capacity = capacity;
    this.#slots = new Uint32Array(capacity);
  }

  add(id: number): void {
    const slot = id % this.#capacity;
    if (id !== 0 && id >>> 0 === id && this.#slots[slot] === 0) this.#slots[slot] = id;
    else this.#others.add(id);
  }

  has(id: number): boolean {
    return (id !== 0 && this.#slots[id % this.#capacity] === id) || (this.#others.size > 0 && this.#others.has(id));
  }

  /** Removes id; returns whether it was open. */
  delete(id: number): boolean {
    const slot = id % this.#capacity;
    if (id !== 0 && this.#slots[slot] === id) {
      this.#slots[slot] = 0;
      return true;
    }
    return this.#others.delete(id);
  }
}
