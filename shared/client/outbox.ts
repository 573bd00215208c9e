/**
 * The outbox: publishes that have not been answered yet, keyed by id, in the order they were made.
 * After a reconnect every one of them is sent again with the same id, in that order; the server
 * deduplicates by (user, id), so a publish whose reply was lost is stored once
 * (PROTOCOL.md `publish`: `duplicate: true`).
 *
 * Persistence is pluggable: the default keeps the list in memory; the web app passes a storage on
 * localStorage so that a reload still sends what the user wrote offline.
 */
import type { PublishOk } from "../protocol.js";

/** A publish the server has not answered yet. */
export interface PendingPublish {
  id: string;
  topic: string;
  payload: unknown;
  key?: string;
  /** When the publish was made (ms since epoch, client clock): for showing it as "pending". */
  createdAt: number;
}

/** Where the outbox keeps its list. `load` is called once, `save` after every change. */
export interface OutboxStorage {
  load(): PendingPublish[] | Promise<PendingPublish[]>;
  save(list: PendingPublish[]): void;
}

/** The default: nothing survives the page or the process. */
export class MemoryOutboxStorage implements OutboxStorage {
  private list: PendingPublish[] = [];
  load(): PendingPublish[] {
    return [...this.list];
  }
  save(list: PendingPublish[]): void {
    this.list = [...list];
  }
}

interface Entry {
  pending: PendingPublish;
  /** The connection (by number) it was last sent on; 0 when not yet sent. */
  sentOn: number;
  /** Absent for entries loaded from storage: nobody in this process waits for them. */
  waiter?: { resolve(ok: PublishOk): void; reject(err: unknown): void };
}

export class Outbox {
  private readonly entries = new Map<string, Entry>();
  /** Resolves once the stored list is merged in, ahead of anything added meanwhile (it is older). */
  readonly ready: Promise<void>;
  /** Nothing is saved before the stored list was read, or the first save would overwrite it. */
  private loaded = false;

  constructor(
    private readonly storage: OutboxStorage,
    private readonly changed: () => void = () => {},
  ) {
    let stored: PendingPublish[] | Promise<PendingPublish[]>;
    try {
      stored = storage.load();
    } catch {
      stored = [];
    }
    this.ready = Promise.resolve(stored).then(
      (list) => this.merge(list),
      () => this.merge([]),
    );
  }

  private merge(stored: PendingPublish[]): void {
    this.loaded = true;
    const added = [...this.entries.values()];
    this.entries.clear();
    for (const pending of Array.isArray(stored) ? stored : []) {
      if (typeof pending?.id === "string" && !added.some((e) => e.pending.id === pending.id)) {
        this.entries.set(pending.id, { pending, sentOn: 0 });
      }
    }
    for (const e of added) this.entries.set(e.pending.id, e);
    if (this.entries.size > added.length) this.persist();
    else if (added.length > 0) this.save();
  }

  /** Adds a publish; the promise settles on its reply (`settle`) or when the client closes (`failAll`). */
  add(pending: PendingPublish): Promise<PublishOk> {
    const existing = this.entries.get(pending.id);
    return new Promise<PublishOk>((resolve, reject) => {
      if (existing) {
        // The same id again while the first is pending: one message, both callers get its reply.
        const first = existing.waiter;
        existing.waiter = {
          resolve: (ok) => {
            first?.resolve(ok);
            resolve(ok);
          },
          reject: (err) => {
            first?.reject(err);
            reject(err);
          },
        };
        return;
      }
      this.entries.set(pending.id, { pending, sentOn: 0, waiter: { resolve, reject } });
      this.persist();
    });
  }

  /** The entries not yet sent on connection `connection`, oldest first; marks them sent on it. */
  takeUnsent(connection: number): PendingPublish[] {
    const out: PendingPublish[] = [];
    for (const e of this.entries.values()) {
      if (e.sentOn === connection) continue;
      e.sentOn = connection;
      out.push(e.pending);
    }
    return out;
  }

  /** The server answered: the entry leaves the outbox. An answer for an unknown id is ignored. */
  resolve(id: string, ok: PublishOk): void {
    const e = this.entries.get(id);
    if (!e) return;
    this.entries.delete(id);
    this.persist();
    e.waiter?.resolve(ok);
  }

  /** The server refused: the entry leaves the outbox; returns whether someone was waiting. */
  reject(id: string, err: unknown): boolean {
    const e = this.entries.get(id);
    if (!e) return false;
    this.entries.delete(id);
    this.persist();
    e.waiter?.reject(err);
    return e.waiter !== undefined;
  }

  /** The client closed: waiters fail, the entries stay stored for whoever opens the storage next. */
  failAll(err: unknown): void {
    for (const e of this.entries.values()) {
      e.waiter?.reject(err);
      delete e.waiter;
    }
  }

  list(): PendingPublish[] {
    return [...this.entries.values()].map((e) => e.pending);
  }

  get size(): number {
    return this.entries.size;
  }

  private persist(): void {
    this.save();
    this.changed();
  }

  private save(): void {
    if (!this.loaded) return;
    try {
      this.storage.save(this.list());
    } catch {
      // A full or unavailable storage (private browsing) still leaves the in-memory outbox working.
    }
  }
}
