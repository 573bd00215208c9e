/**
 * Retention (HERALD_RETENTION_MESSAGES, HERALD_RETENTION_MS): a periodic sweep that removes old
 * messages, old publish ids, and the durable state of clients gone longer than the retention.
 * A subscriber that had not got removed messages learns of them from `gap` (delivery.ts).
 */
import type { Context } from "./context.js";

export class Retention {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: Context,
    private readonly live: (client: { user: string; clientId: string }) => boolean,
    private readonly now: () => number = Date.now,
  ) {}

  start(everyMs = 60_000): void {
    this.timer = setInterval(() => void this.sweep(), everyMs);
    this.timer.unref();
  }

  async sweep(): Promise<{ messages: number; clients: number }> {
    try {
      const { messages, clients, endedGroups } = await this.ctx.store.sweep({
        olderThan: this.now() - this.ctx.config.retentionMs,
        maxMessages: this.ctx.config.retentionMessages,
        live: this.live,
      });
      this.ctx.groups.ended(endedGroups);
      return { messages, clients };
    } catch (err) {
      this.ctx.log.error({ err }, "retention sweep failed");
      return { messages: 0, clients: 0 };
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
