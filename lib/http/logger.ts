/**
 * The logger the library writes to when it is handed one: pino's Logger fits
 * it, and so does any object with these four methods. Without one the library
 * logs nothing.
 */
export interface Logger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}
