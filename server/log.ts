/** Structured logs through pino: one root logger per server, a child per module, quiet by default. */
import pino from "pino";

export type Logger = pino.Logger;

export function createLogger(level: string, nodeId: string): Logger {
  return pino({ level, base: { node: nodeId } });
}
