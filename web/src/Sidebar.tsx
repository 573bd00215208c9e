/** The navigation: who I am, the connection, announcements, rooms and direct messages with unread counts. */
import { type FormEvent, useState } from "react";
import { NAME_RE } from "../../shared/topics.js";
import { Avatar } from "./Avatar.js";
import type { ChatState } from "./chat.js";
import { type Conversation, conversationKey, conversationPath, sameConversation } from "./conversation.js";
import { useChat } from "./hooks.js";
import { HashIcon, MegaphoneIcon } from "./icons.js";

/** The connection, for people (a dot and a word) and for tests (`data-state`). */
export function ConnectionIndicator({
  state,
  socket,
  compact,
}: {
  state: ChatState["connection"];
  socket: ChatState["socket"];
  compact?: boolean;
}) {
  const label = state === "online" ? "Online" : state === "offline" ? "Offline" : "Connecting…";
  return (
    <output
      className={`conn ${state}${compact ? " compact" : ""}`}
      data-state={state}
      data-socket={socket}
      aria-live="polite"
      aria-label={`Connection: ${label}`}
      title={label}
    >
      <span className="conn-dot" aria-hidden="true" />
      {(!compact || state !== "online") && label}
    </output>
  );
}

export function Sidebar({ state, onNavigate }: { state: ChatState; onNavigate: () => void }) {
  const chat = useChat();
  const online = new Set(state.presence.get("broadcast") ?? []);
  const go = (c: Conversation) => (e: { preventDefault(): void }) => {
    e.preventDefault();
    chat.open(c);
    onNavigate();
  };
  const link = (c: Conversation, label: React.ReactNode, name: string) => {
    const unread = state.unread.get(conversationKey(c)) ?? 0;
    const current = sameConversation(state.active, c);
    return (
      <a
        href={conversationPath(c)}
        onClick={go(c)}
        className={`nav-link${current ? " current" : ""}${unread ? " has-unread" : ""}`}
        aria-current={current ? "page" : undefined}
        aria-label={unread ? `${name}, ${unread} unread` : name}
      >
        {label}
        {unread > 0 && (
          <span className="badge" aria-hidden="true">
            {unread > 99 ? "99+" : unread}
          </span>
        )}
      </a>
    );
  };

  return (
    <nav className="sidebar" aria-label="Conversations">
      <header className="me">
        <Avatar name={chat.me} size={32} />
        <div className="me-text">
          <strong>{chat.me}</strong>
          <ConnectionIndicator state={state.connection} socket={state.socket} />
        </div>
      </header>

      <div className="nav-scroll">
        <ul className="nav-list">
          <li>
            {link(
              { kind: "announcements" },
              <>
                <span className="nav-icon" aria-hidden="true">
                  <MegaphoneIcon />
                </span>
                <span className="nav-name">Announcements</span>
              </>,
              "Announcements",
            )}
          </li>
        </ul>

        <section aria-labelledby="rooms-h">
          <h2 id="rooms-h">Rooms</h2>
          <ul className="nav-list">
            {state.rooms.map((room) => (
              <li key={room} className="nav-row">
                {link(
                  { kind: "room", name: room },
                  <>
                    <span className="nav-icon" aria-hidden="true">
                      <HashIcon />
                    </span>
                    <span className="nav-name">{room}</span>
                  </>,
                  `Room ${room}`,
                )}
                <button
                  type="button"
                  className="icon-button leave"
                  aria-label={`Leave room ${room}`}
                  title="Leave room"
                  onClick={() => void chat.leaveRoom(room)}
                >
                  ×
                </button>
              </li>
            ))}
          </ul>
          <NameForm
            label="Join or create a room"
            placeholder="Join or create a room"
            button="Join"
            onSubmit={(name) => {
              chat.open({ kind: "room", name });
              onNavigate();
            }}
          />
        </section>

        <section aria-labelledby="dms-h">
          <h2 id="dms-h">Direct messages</h2>
          <ul className="nav-list">
            {state.dms.map((user) => (
              <li key={user} className="nav-row">
                {link(
                  { kind: "dm", user },
                  <>
                    <Avatar name={user} size={22} online={online.has(user)} />
                    <span className="nav-name">{user}</span>
                  </>,
                  `Direct messages with ${user}`,
                )}
                <button
                  type="button"
                  className="icon-button leave"
                  aria-label={`Close conversation with ${user}`}
                  title="Close conversation"
                  onClick={() => chat.closeDm(user)}
                >
                  ×
                </button>
              </li>
            ))}
          </ul>
          <NameForm
            label="Message a user"
            placeholder="Message a user by name"
            button="Start"
            onSubmit={(user) => {
              chat.open({ kind: "dm", user });
              onNavigate();
            }}
          />
        </section>
      </div>
    </nav>
  );
}

function NameForm(props: { label: string; placeholder: string; button: string; onSubmit: (name: string) => void }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const name = value.trim().replace(/^[#@]/, "");
    if (!NAME_RE.test(name)) {
      setError("Letters, digits, dot, dash and underscore; up to 64.");
      return;
    }
    setError("");
    setValue("");
    props.onSubmit(name);
  };
  return (
    <form className="name-form" onSubmit={submit}>
      <input
        aria-label={props.label}
        placeholder={props.placeholder}
        value={value}
        onChange={(e) => setValue(e.target.value)}
        aria-invalid={error ? true : undefined}
        autoCapitalize="off"
        autoCorrect="off"
        spellCheck={false}
      />
      <button type="submit" className="small-button">
        {props.button}
      </button>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
