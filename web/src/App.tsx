/** The chat's layout: the sidebar and the open conversation side by side, or one at a time on a phone. */
import { useEffect, useState } from "react";
import { ChatPane } from "./ChatPane.js";
import { type Conversation, sameConversation } from "./conversation.js";
import { useChat, useChatState, useNarrow } from "./hooks.js";
import { Sidebar } from "./Sidebar.js";

export function App({ onSignOut }: { onSignOut: () => void }) {
  const chat = useChat();
  const state = useChatState();
  const narrow = useNarrow();
  const [showNav, setShowNav] = useState(false);

  useEffect(() => {
    const onPop = () => chat.openFromLocation();
    // Alt+ArrowUp / Alt+ArrowDown: the previous or next conversation in the sidebar.
    const onKey = (e: KeyboardEvent) => {
      if (!e.altKey || (e.key !== "ArrowUp" && e.key !== "ArrowDown")) return;
      const s = chat.getState();
      const all: Conversation[] = [
        { kind: "announcements" },
        ...s.rooms.map((name): Conversation => ({ kind: "room", name })),
        ...s.dms.map((user): Conversation => ({ kind: "dm", user })),
      ];
      const at = all.findIndex((c) => sameConversation(c, s.active));
      const next = all[(at + (e.key === "ArrowUp" ? all.length - 1 : 1)) % all.length];
      if (next) {
        e.preventDefault();
        chat.open(next);
      }
    };
    window.addEventListener("keydown", onKey);
    const onVisible = () => chat.markRead();
    window.addEventListener("popstate", onPop);
    document.addEventListener("visibilitychange", onVisible);
    return () => {
      window.removeEventListener("popstate", onPop);
      window.removeEventListener("keydown", onKey);
      document.removeEventListener("visibilitychange", onVisible);
    };
  }, [chat]);
  // biome-ignore lint/correctness/useExhaustiveDependencies: remember the conversation whenever it changes.
  useEffect(() => chat.rememberLast(), [chat, state.active]);

  const total = [...state.unread.values()].reduce((a, b) => a + b, 0);
  useEffect(() => {
    const base = document.title.replace(/^\(\d+\) /, "");
    document.title = total > 0 ? `(${total}) ${base}` : base;
  });

  const navVisible = !narrow || showNav || !state.active;
  return (
    <div className={`app${narrow ? " narrow" : ""}`}>
      {state.notice && (
        <div className="notice" role="alert">
          {state.notice}
          <button type="button" className="small-button" onClick={onSignOut}>
            Sign in again
          </button>
        </div>
      )}
      {navVisible && (
        <div className="nav-wrap">
          <Sidebar state={state} onNavigate={() => setShowNav(false)} />
          <button type="button" className="sign-out" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      )}
      {state.active && (!narrow || !showNav) && (
        <ChatPane state={state} conversation={state.active} narrow={narrow} onBack={() => setShowNav(true)} />
      )}
    </div>
  );
}
