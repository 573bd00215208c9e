/**
 * One schema per client-to-server event (PROTOCOL.md "Client to server"). Every incoming argument
 * is checked against these before anything else; the argument types are inferred from them.
 * Objects are strict: an unknown field is `BAD_REQUEST`, and so is `null` for an optional field.
 */
import { z } from "zod";
import { ID_RE, NAME_RE } from "./topics.js";

const id = z.string().regex(ID_RE, "1-64 chars of [A-Za-z0-9_-]");
const name = z.string().regex(NAME_RE, "1-64 chars of [A-Za-z0-9._-], starting with a letter or digit");
/**
 * Any string: its form, length included, is checked by parseTopic, so that a bad one is
 * INVALID_TOPIC, not BAD_REQUEST (PROTOCOL: a name outside the topic forms is INVALID_TOPIC).
 */
const topic = z.string();
const seq = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
/**
 * Well-formed UTF-16 only: a lone surrogate has no UTF-8 form, so the store would keep U+FFFD and
 * `\ud800` and `\udfff` would read back as one key.
 */
const text = (min: number, max: number) =>
  z
    .string()
    .min(min)
    .max(max)
    .refine((s) => s.isWellFormed(), "must be well-formed UTF-16 (no lone surrogates)");
const key = text(1, 128);
/** `payload` is required but may be any JSON value; `undefined` cannot cross the wire, so absent means missing. */
const payload = z.unknown().refine((v) => v !== undefined, "payload is required");

export const publishSchema = z.strictObject({ id, topic, payload, key: key.optional() });
export const subscribeSchema = z.strictObject({ topic, from: seq.optional(), group: name.optional() });
export const unsubscribeSchema = z.strictObject({ topic, group: name.optional() });
/**
 * PROTOCOL: `seq`, or with `group` `seqs` (1-1024 distinct seqs, any order) instead: a member acks
 * a batch in one packet.
 */
export const ackSchema = z
  .strictObject({
    topic,
    seq: seq.optional(),
    seqs: z
      .array(seq)
      .min(1)
      .max(1024)
      .refine((list) => new Set(list).size === list.length, "seqs must be distinct")
      .optional(),
    group: name.optional(),
  })
  .superRefine((ack, ctx) => {
    if ((ack.seq === undefined) === (ack.seqs === undefined)) {
      ctx.addIssue({ code: "custom", message: "give seq or seqs, not both", path: ["seq"] });
    } else if (ack.seqs !== undefined && ack.group === undefined) {
      ctx.addIssue({ code: "custom", message: "seqs needs group", path: ["seqs"] });
    }
  });
export const historySchema = z.strictObject({
  topic,
  before: seq.optional(),
  after: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  limit: z.number().int().min(1).optional(),
});
export const presenceSchema = z.strictObject({ topic });
export const signalSchema = z.strictObject({ topic, payload });
export const requestSchema = z.strictObject({
  to: name,
  method: text(1, 128),
  params: z.unknown().optional(),
  timeoutMs: z.number().int().min(1).max(60000).optional(),
});
export const prepareSchema = publishSchema;
export const commitSchema = z.strictObject({ id });
export const rollbackSchema = z.strictObject({ id });

export type PublishArgs = z.infer<typeof publishSchema>;
export type SubscribeArgs = z.infer<typeof subscribeSchema>;
export type UnsubscribeArgs = z.infer<typeof unsubscribeSchema>;
export type AckArgs = z.infer<typeof ackSchema>;
export type HistoryArgs = z.infer<typeof historySchema>;
export type PresenceArgs = z.infer<typeof presenceSchema>;
export type SignalArgs = z.infer<typeof signalSchema>;
export type RequestArgs = z.infer<typeof requestSchema>;
export type PrepareArgs = z.infer<typeof prepareSchema>;
export type CommitArgs = z.infer<typeof commitSchema>;
export type RollbackArgs = z.infer<typeof rollbackSchema>;

/** The handshake's `auth` object. `token` is read in `jwt` mode, `user` in `dev` mode. */
export const authSchema = z.object({
  clientId: id,
  token: z.string().max(8192).optional(),
  user: name.optional(),
});
export type AuthArgs = z.infer<typeof authSchema>;

/** HTTP `POST /api/v1/publish` takes the same body as the `publish` event. */
export const httpPublishSchema = publishSchema;
/** The body of `POST /api/v1/topics/:topic/groups/:group/retry`: a seq range of the dead-letter topic. */
export const retryBodySchema = z.strictObject({ from: seq.optional(), to: seq.optional() });
/** The group of that route's path. */
export const groupNameSchema = name;
/** The query of `GET /api/v1/topics/:topic/messages`: numbers arrive as strings. */
export const historyQuerySchema = z.strictObject({
  before: z.coerce.number().pipe(seq).optional(),
  after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  limit: z.coerce.number().int().min(1).optional(),
});
