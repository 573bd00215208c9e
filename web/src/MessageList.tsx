/**
 * The messages of one conversation in a virtualized list: author, time, consecutive messages of one
 * author grouped, http(s) links in the text, day dividers, own messages' status (sending, sent,
 * failed), gap notices, and a jump-to-latest button when scrolled up. Each message element carries
 * `data-message-id` and `data-seq` (empty while pending) for tests and tools.
 */
import { Fragment, memo, useCallback, useEffect, useRef, useState } from "react";
import { Avatar } from "./Avatar.js";
import type { Conversation } from "./conversation.js";
import { conversationTitle } from "./conversation.js";
import { linkify } from "./linkify.js";
import type { ListItem, MessageItem } from "./messageStore.js";
import { payloadText } from "./messageStore.js";
import { VirtualList } from "./VirtualList.js";

const GROUP_MS = 5 * 60 * 1000;

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

function dayLabel(ts: number): string {
  const d = new Date(ts);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (d.toDateString() === today.toDateString()) return "Today";
  if (d.toDateString() === yesterday.toDateString()) return "Yesterday";
  return dayFormat.format(d);
}

export interface MessageListProps {
  conversation: Conversation;
  items: ListItem[];
  me: string;
  loadingOlder: boolean;
  complete: boolean;
  onLoadOlder: () => void;
  /** Bumped when the user sends, to bring the list to the bottom. */
  sentCount: number;
}

export function MessageList({
  conversation,
  items,
  me,
  loadingOlder,
  complete,
  onLoadOlder,
  sentCount,
}: MessageListProps) {
  const [atBottom, setAtBottom] = useState(true);
  const [jump, setJump] = useState(0);
  const convKey = conversation.kind === "dm" ? `dm:${conversation.user}` : conversationTitle(conversation);
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new conversation starts at the bottom.
  useEffect(() => setAtBottom(true), [convKey]);

  const renderItem = useCallback(
    (item: ListItem, index: number) => {
      if (item.kind === "gap") return <GapNotice from={item.from} to={item.to} />;
      const prev = previousMessage(items, index);
      const newDay = !prev || new Date(prev.ts).toDateString() !== new Date(item.ts).toDateString();
      const grouped = !newDay && prev !== undefined && prev.from === item.from && item.ts - prev.ts < GROUP_MS;
      return <Row item={item} grouped={grouped} newDay={newDay} mine={item.from === me} />;
    },
    [items, me],
  );

  const header = complete ? (
    <div className="list-start">
      <strong>{conversationTitle(conversation)}</strong>
      <span>
        {conversation.kind === "dm" ? "This is the start of your conversation." : "This is the very beginning."}
      </span>
    </div>
  ) : (
    <div className="list-loading" aria-live="polite">
      {loadingOlder ? "Loading older messages…" : ""}
    </div>
  );

  // New messages from others, for screen readers.
  const last = items[items.length - 1];
  const [announce, setAnnounce] = useState("");
  const lastKey = useRef<string | undefined>(undefined);
  useEffect(() => {
    const key = last?.key;
    if (lastKey.current !== undefined && key !== lastKey.current && last?.kind === "message" && last.from !== me) {
      setAnnounce(`${last.from}: ${payloadText(last.payload)}`);
    }
    lastKey.current = key;
  }, [last, me]);

  return (
    <div className="message-area">
      <div className="visually-hidden" aria-live="polite">
        {announce}
      </div>
      <VirtualList
        key={convKey}
        items={items}
        itemKey={itemKey}
        renderItem={renderItem}
        onReachTop={complete ? undefined : onLoadOlder}
        onAtBottomChange={setAtBottom}
        bottomSignal={`${jump}:${sentCount}`}
        header={header}
        label={`Messages in ${conversationTitle(conversation)}`}
      />
      {!atBottom && (
        <button type="button" className="jump" onClick={() => setJump((n) => n + 1)}>
          Jump to latest ↓
        </button>
      )}
    </div>
  );
}

const itemKey = (item: ListItem) => item.key;

function previousMessage(items: ListItem[], index: number): MessageItem | undefined {
  const prev = items[index - 1];
  return prev?.kind === "message" ? prev : undefined;
}

function GapNotice({ from, to }: { from: number; to: number }) {
  const n = to - from + 1;
  return (
    <div className="gap" role="note" data-gap-from={from} data-gap-to={to}>
      {n === 1 ? "1 message was" : `${n} messages were`} removed by retention before you got {n === 1 ? "it" : "them"}.
    </div>
  );
}

const Row = memo(function Row({
  item,
  grouped,
  newDay,
  mine,
}: {
  item: MessageItem;
  grouped: boolean;
  newDay: boolean;
  mine: boolean;
}) {
  const text = payloadText(item.payload);
  const time = timeFormat.format(item.ts);
  return (
    <>
      {newDay && (
        <div className="day">
          <span>{dayLabel(item.ts)}</span>
        </div>
      )}
      <article
        className={`msg${grouped ? " grouped" : ""}${mine ? " mine" : ""} ${item.status}`}
        data-message-id={item.id}
        data-seq={item.seq ?? ""}
        data-from={item.from}
        data-status={item.status}
        aria-label={`${item.from} at ${time}`}
      >
        <div className="gutter">
          {grouped ? (
            <time className="hover-time" dateTime={new Date(item.ts).toISOString()} title={fullFormat.format(item.ts)}>
              {time}
            </time>
          ) : (
            <Avatar name={item.from} />
          )}
        </div>
        <div className="body">
          {!grouped && (
            <div className="meta">
              <span className="author">{item.from}</span>
              <time dateTime={new Date(item.ts).toISOString()} title={fullFormat.format(item.ts)}>
                {time}
              </time>
            </div>
          )}
          <MessageText text={text} />
          {mine && item.status !== "delivered" && <Status item={item} />}
        </div>
      </article>
    </>
  );
});

/** Text nodes and http(s) anchors only: whatever a message holds, React escapes it. */
function MessageText({ text }: { text: string }) {
  let offset = 0;
  return (
    <div className="text">
      {linkify(text).map((part) => {
        const key = offset;
        offset += part.text.length;
        return "href" in part ? (
          <a key={key} href={part.href} target="_blank" rel="noopener noreferrer">
            {part.text}
          </a>
        ) : (
          <Fragment key={key}>{part.text}</Fragment>
        );
      })}
    </div>
  );
}

function Status({ item }: { item: MessageItem }) {
  if (item.status === "pending") return <div className="status">Sending…</div>;
  if (item.status === "failed") return <div className="status error">Not sent: {item.error ?? "refused"}</div>;
  return <div className="status">Sent</div>;
}
