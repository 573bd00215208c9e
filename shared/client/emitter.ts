/**
 * A tiny typed event emitter that runs in browsers and Node alike (no `node:events`). A listener
 * that throws does not stop the others; its error goes to `reportError` (browsers) or `console.error`.
 */

// biome-ignore lint/suspicious/noExplicitAny: listener maps are keyed by event name, any argument list.
export type EventMap = Record<string, (...args: any[]) => void>;

export class Emitter<Events extends EventMap> {
  private readonly listeners = new Map<keyof Events, Set<Events[keyof Events]>>();

  /** Adds a listener; returns the function that removes it. */
  on<E extends keyof Events>(event: E, listener: Events[E]): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Adds a listener that is removed after its first call. */
  once<E extends keyof Events>(event: E, listener: Events[E]): () => void {
    const wrapper = ((...args: Parameters<Events[E]>) => {
      off();
      listener(...args);
    }) as Events[E];
    const off = this.on(event, wrapper);
    return off;
  }

  off<E extends keyof Events>(event: E, listener: Events[E]): void {
    const set = this.listeners.get(event);
    if (set?.delete(listener) && set.size === 0) this.listeners.delete(event);
  }

  listenerCount(event: keyof Events): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  protected emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (err) {
        // One broken listener must not stop the client's own bookkeeping.
        if (typeof globalThis.reportError === "function") globalThis.reportError(err);
        else console.error("herald: an event listener threw", err);
      }
    }
  }
}
