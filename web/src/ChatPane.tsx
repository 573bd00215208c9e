/** The open conversation: its header, who is online, the messages, who is typing, and the composer. */
import { type KeyboardEvent, useEffect, useRef, useState } from "react";
import { Avatar } from "./Avatar.js";
import type { ChatState } from "./chat.js";
import { type Conversation, conversationKey, conversationTitle, publishTopic, readTopic } from "./conversation.js";
import { useChat, useConversationItems } from "./hooks.js";
import { PeopleIcon } from "./icons.js";
import { MessageList } from "./MessageList.js";
import { ConnectionIndicator } from "./Sidebar.js";

export function ChatPane(props: { state: ChatState; conversation: Conversation; narrow: boolean; onBack: () => void }) {
  const { state, conversation, narrow, onBack } = props;
  const chat = useChat();
  const items = useConversationItems(conversation);
  const [sentCount, setSentCount] = useState(0);
  const [showMembers, setShowMembers] = useState(false);
  const topic = readTopic(conversation, chat.me);
  const key = conversationKey(conversation);
  const online = state.presence.get(conversation.kind === "room" ? publishTopic(conversation) : "broadcast") ?? [];
  const typing = (state.typing.get(key) ?? []).filter((u) => u !== chat.me);
  const complete = chat.store.isComplete(topic);

  useEffect(() => {
    document.title = `${conversationTitle(conversation)} · Herald`;
  }, [conversation]);

  let subtitle: string;
  if (conversation.kind === "room") subtitle = `${online.length} online`;
  else if (conversation.kind === "dm") subtitle = online.includes(conversation.user) ? "Online" : "Offline";
  else subtitle = "Messages to everyone";

  return (
    <main className="pane" aria-label={conversationTitle(conversation)}>
      <header className="pane-header">
        {narrow && (
          <button type="button" className="icon-button back" aria-label="Back to conversations" onClick={onBack}>
            ‹
          </button>
        )}
        <div className="pane-title">
          <h1>{conversationTitle(conversation)}</h1>
          <span className="subtitle">{subtitle}</span>
        </div>
        {narrow && <ConnectionIndicator state={state.connection} socket={state.socket} compact />}
        {conversation.kind === "room" && (
          <button
            type="button"
            className="members-toggle"
            aria-expanded={showMembers}
            aria-controls="members"
            onClick={() => setShowMembers((v) => !v)}
          >
            <PeopleIcon /> {online.length}
            <span className="visually-hidden"> people online, show list</span>
          </button>
        )}
      </header>
      <div className="pane-body">
        <div className="conversation">
          <MessageList
            conversation={conversation}
            items={items}
            me={chat.me}
            loadingOlder={state.loadingOlder}
            complete={complete}
            onLoadOlder={() => void chat.loadOlder(conversation)}
            sentCount={sentCount}
          />
          <div className="typing" aria-live="polite" data-testid="typing">
            {typing.length > 0 && <TypingLine users={typing} />}
          </div>
          <Composer
            conversation={conversation}
            offline={state.connection !== "online"}
            onSend={(text) => {
              chat.send(conversation, text);
              setSentCount((n) => n + 1);
            }}
          />
        </div>
        {conversation.kind === "room" && (showMembers || !narrow) && (
          <aside id="members" className={`members${showMembers ? " open" : ""}`} aria-label="People online">
            <h2>Online — {online.length}</h2>
            <ul>
              {online.map((user) => (
                <li key={user}>
                  <button
                    type="button"
                    className="member"
                    onClick={() => chat.open({ kind: "dm", user })}
                    disabled={user === chat.me}
                    aria-label={user === chat.me ? `${user} (you)` : `Message ${user}`}
                  >
                    <Avatar name={user} size={28} online />
                    <span>{user}</span>
                    {user === chat.me && <span className="you">you</span>}
                  </button>
                </li>
              ))}
            </ul>
          </aside>
        )}
      </div>
    </main>
  );
}

function TypingLine({ users }: { users: string[] }) {
  const names =
    users.length > 3 ? `${users.length} people are` : `${users.join(", ")} ${users.length === 1 ? "is" : "are"}`;
  return (
    <span>
      <span className="typing-dots" aria-hidden="true">
        <i />
        <i />
        <i />
      </span>
      {names} typing…
    </span>
  );
}

function Composer(props: { conversation: Conversation; offline: boolean; onSend: (text: string) => void }) {
  const { conversation, offline, onSend } = props;
  const chat = useChat();
  const [text, setText] = useState("");
  const area = useRef<HTMLTextAreaElement>(null);
  const key = conversationKey(conversation);

  // A draft per conversation survives switching and reloads.
  useEffect(() => {
    setText(loadDraft(key));
    area.current?.focus();
  }, [key]);
  const update = (value: string) => {
    setText(value);
    saveDraft(key, value);
  };
  // Grow with the text, up to a limit (CSS max-height).
  // biome-ignore lint/correctness/useExhaustiveDependencies: resizes when the text changes.
  useEffect(() => {
    const el = area.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${el.scrollHeight}px`;
  }, [text]);

  const send = () => {
    const value = text.trim();
    if (!value) return;
    onSend(value);
    update("");
  };
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      send();
    }
  };
  const placeholder =
    conversation.kind === "room"
      ? `Message #${conversation.name}`
      : conversation.kind === "dm"
        ? `Message @${conversation.user}`
        : "Announce something to everyone";

  return (
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault();
        send();
      }}
    >
      {offline && (
        <p className="offline-hint" role="status">
          You are offline. Messages you send now are kept and go out when the connection is back.
        </p>
      )}
      <div className="composer-row">
        <textarea
          ref={area}
          aria-label="Message"
          placeholder={placeholder}
          rows={1}
          value={text}
          onChange={(e) => {
            update(e.target.value);
            if (e.target.value) chat.typing(conversation);
          }}
          onKeyDown={onKeyDown}
          enterKeyHint="send"
        />
        <button type="submit" className="send" aria-label="Send" disabled={!text.trim()}>
          <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
            <path fill="currentColor" d="M3.4 20.4 21 12 3.4 3.6l-.01 6.53L15 12 3.39 13.87z" />
          </svg>
        </button>
      </div>
      <p className="hint" aria-hidden="true">
        <kbd>Enter</kbd> to send · <kbd>Shift</kbd>+<kbd>Enter</kbd> for a new line
      </p>
    </form>
  );
}

function loadDraft(key: string): string {
  try {
    return sessionStorage.getItem(`herald:draft:${key}`) ?? "";
  } catch {
    return "";
  }
}

function saveDraft(key: string, text: string): void {
  try {
    if (text) sessionStorage.setItem(`herald:draft:${key}`, text);
    else sessionStorage.removeItem(`herald:draft:${key}`);
  } catch {
    // A draft is a convenience.
  }
}
