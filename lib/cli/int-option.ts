import { InvalidArgumentError } from 'commander';

/** A commander argument parser that accepts only a decimal integer in [min, max]. */
export function intOption(min: number, max: number): (value: string) => number {
  return (value: string) => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`must be an integer between ${min} and ${max}.`);
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer between ${min} and ${max}.`);
    return n;
  };
}
