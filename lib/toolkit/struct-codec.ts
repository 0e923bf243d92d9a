import { ProtocolError } from './protocol-error';

/**
 * Declarative codecs for packed little-endian structs, the packet bodies of
 * PROTOCOL.md section 3 and of any game's own packets. Pure functions of
 * their input; any thread.
 */

export type NumberFieldType = 'u8' | 'u16' | 'i16' | 'u32' | 'i32';

export interface NumberField<N extends string = string> {
  readonly name: N;
  readonly type: NumberFieldType;
}

/** A fixed-size byte array; its value is the bytes up to the first NUL or the end of the field. */
export interface CharField<N extends string = string> {
  readonly name: N;
  readonly type: 'char';
  readonly length: number;
}

export type FieldSpec = NumberField | CharField;

/** Decoded values: numbers, and char fields as Buffers (views into the decoded body). */
export type StructValues<F extends readonly FieldSpec[]> = {
  [K in F[number] as K['name']]: K extends CharField ? Buffer : number;
};

/** Values to encode: char fields take a string (UTF-8) or bytes; a missing field is written as zeros. */
export type StructInput<F extends readonly FieldSpec[]> = {
  [K in F[number] as K['name']]?: K extends CharField ? string | Uint8Array : number;
};

export function u8<N extends string>(name: N): NumberField<N> {
  return { name, type: 'u8' };
}
export function u16<N extends string>(name: N): NumberField<N> {
  return { name, type: 'u16' };
}
export function i16<N extends string>(name: N): NumberField<N> {
  return { name, type: 'i16' };
}
export function u32<N extends string>(name: N): NumberField<N> {
  return { name, type: 'u32' };
}
export function i32<N extends string>(name: N): NumberField<N> {
  return { name, type: 'i32' };
}
export function char<N extends string>(name: N, length: number): CharField<N> {
  if (!Number.isInteger(length) || length < 1 || length > 0xffff) {
    throw new RangeError(`char field '${name}' length must be an integer between 1 and 65535, got ${length}`);
  }
  return { name, type: 'char', length };
}

const NUMBER_SIZE: Record<NumberFieldType, number> = { u8: 1, u16: 2, i16: 2, u32: 4, i32: 4 };
const NUMBER_RANGE: Record<NumberFieldType, [number, number]> = {
  u8: [0, 0xff],
  u16: [0, 0xffff],
  i16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff],
};

interface Slot {
  readonly name: string;
  readonly type: NumberFieldType | 'char';
  readonly offset: number;
  readonly size: number;
}

/**
 * Encodes and decodes one packed struct. decode() accepts a body shorter
 * than the layout as if the missing bytes were zero, and throws a
 * ProtocolError for a longer one (PROTOCOL.md section 3).
 */
export class StructCodec<F extends readonly FieldSpec[]> {
  readonly name: string;
  readonly fields: F;
  /** Bytes of the packed layout. */
  readonly size: number;
  readonly #slots: Slot[];
  readonly #zero: Buffer;

  constructor(name: string, fields: F) {
    this.name = name;
    this.fields = fields;
    const seen = new Set<string>();
    const slots: Slot[] = [];
    let offset = 0;
    for (const f of fields) {
      if (seen.has(f.name)) throw new TypeError(`struct ${name} has two fields named '${f.name}'`);
      seen.add(f.name);
      const size = f.type === 'char' ? f.length : NUMBER_SIZE[f.type];
      if (size === undefined) throw new TypeError(`struct ${name}: field '${f.name}' has unknown type '${String(f.type)}'`);
      slots.push({ name: f.name, type: f.type, offset, size });
      offset += size;
    }
    this.size = offset;
    this.#slots = slots;
    this.#zero = Buffer.alloc(offset);
  }

  /**
   * Decodes body. Char values are views into body (or into a zero-filled
   * copy when body is short), so they are valid as long as body is.
   */
  decode(body: Uint8Array): StructValues<F> {
    if (body.length > this.size) {
      throw new ProtocolError(`${this.name} body is ${body.length} bytes, the layout has ${this.size}`);
    }
    let buf = Buffer.from(body.buffer, body.byteOffset, body.length);
    if (body.length < this.size) {
      const full = Buffer.alloc(this.size);
      buf.copy(full);
      buf = full;
    }
    const out: Record<string, number | Buffer> = {};
    for (const s of this.#slots) out[s.name] = readSlot(buf, s);
    return out as StructValues<F>;
  }

  /** A new body with values written in and every other byte zero. */
  encode(values: StructInput<F> = {}): Buffer {
    const out = Buffer.alloc(this.size);
    this.encodeInto(out, 0, values);
    return out;
  }

  /**
   * Writes the struct at offset of out (zero bytes where values has no
   * field); returns the offset after it. Throws a RangeError for a number
   * out of its type's range or a char value longer than its field.
   */
  encodeInto(out: Uint8Array, offset: number, values: StructInput<F>): number {
    if (offset < 0 || offset + this.size > out.length) {
      throw new RangeError(`${this.name} needs ${this.size} bytes at offset ${offset}, the buffer has ${out.length}`);
    }
    const buf = Buffer.from(out.buffer, out.byteOffset, out.length);
    this.#zero.copy(buf, offset);
    const v = values as Record<string, unknown>;
    for (const s of this.#slots) {
      const value = v[s.name];
      if (value === undefined) continue;
      writeSlot(buf, offset, s, value, this.name);
    }
    return offset + this.size;
  }
}

/** Declares a struct; `as const` is not needed on the field list. */
export function defineStruct<const F extends readonly FieldSpec[]>(name: string, fields: F): StructCodec<F> {
  return new StructCodec(name, fields);
}

/** The bytes of a char field's value: up to the first NUL, or the whole field. */
export function charValue(field: Uint8Array): Buffer {
  const buf = Buffer.from(field.buffer, field.byteOffset, field.length);
  const nul = buf.indexOf(0);
  return nul < 0 ? buf : buf.subarray(0, nul);
}

function readSlot(buf: Buffer, s: Slot): number | Buffer {
  switch (s.type) {
    case 'u8':
      return buf.readUInt8(s.offset);
    case 'u16':
      return buf.readUInt16LE(s.offset);
    case 'i16':
      return buf.readInt16LE(s.offset);
    case 'u32':
      return buf.readUInt32LE(s.offset);
    case 'i32':
      return buf.readInt32LE(s.offset);
    case 'char':
      return charValue(buf.subarray(s.offset, s.offset + s.size));
  }
}

function writeSlot(buf: Buffer, base: number, s: Slot, value: unknown, struct: string): void {
  const at = base + s.offset;
  if (s.type === 'char') {
    let bytes: Uint8Array;
    if (typeof value === 'string') bytes = Buffer.from(value, 'utf8');
    else if (value instanceof Uint8Array) bytes = value;
    else throw new TypeError(`${struct}.${s.name} must be a string or Uint8Array, got ${typeof value}`);
    if (bytes.length > s.size) {
      throw new RangeError(`${struct}.${s.name} holds at most ${s.size} bytes, got ${bytes.length}`);
    }
    buf.set(bytes, at);
    return;
  }
  const [min, max] = NUMBER_RANGE[s.type];
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${struct}.${s.name} must be an integer, got ${typeof value === 'number' ? value : typeof value}`);
  }
  if (value < min || value > max) throw new RangeError(`${struct}.${s.name} must be between ${min} and ${max}, got ${value}`);
  switch (s.type) {
    case 'u8':
      buf.writeUInt8(value, at);
      break;
    case 'u16':
      buf.writeUInt16LE(value, at);
      break;
    case 'i16':
      buf.writeInt16LE(value, at);
      break;
    case 'u32':
      buf.writeUInt32LE(value, at);
      break;
    case 'i32':
      buf.writeInt32LE(value, at);
      break;
  }
}

/** The field builders, for `defineStruct('Move', [Field.i32('x'), Field.char('name', 21)])`. */
export const Field = { u8, u16, i16, u32, i32, char } as const;
